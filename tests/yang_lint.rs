//! Checks of the YANG modules with the reference tools: `yanglint` (Debian
//! `libyang2-tools`) on every module of `yang/`, `pyang --lint` on our own
//! module, and `docs/yang-tree.txt` up to date with `pyang -f tree`.
//!
//! The tools are installed by `tools/test.sh` (apt + `.venv`). A missing
//! tool fails the test: a silently skipped check is no check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OUR_MODULE: &str = "app-hosting@2026-12-03.yang";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) -> Output {
    match cmd.current_dir(root()).output() {
        Ok(o) => o,
        Err(e) => {
            panic!("cannot run {what}: {e}. Run ./tools/test.sh once: it installs the YANG tools")
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `.venv/bin/pyang` (made by tools/test.sh), else `pyang` on PATH.
fn pyang() -> PathBuf {
    let venv = root().join(".venv/bin/pyang");
    if venv.is_file() {
        return venv;
    }
    let on_path = Command::new("pyang").arg("--version").output();
    match on_path {
        Ok(o) if o.status.success() => PathBuf::from("pyang"),
        _ => panic!(
            "pyang not found (neither .venv/bin/pyang nor pyang on PATH). \
             Run ./tools/test.sh: it creates .venv and installs pyang from tools/requirements.txt"
        ),
    }
}

fn modules() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("yang"))
        .expect("read yang/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yang"))
        .collect();
    v.sort();
    assert!(
        v.iter().any(|p| p.ends_with(OUR_MODULE)),
        "{OUR_MODULE} missing from yang/"
    );
    v
}

#[test]
fn yanglint_accepts_every_module() {
    let mut failures = Vec::new();
    for module in modules() {
        let mut cmd = Command::new("yanglint");
        cmd.arg("-p").arg("yang");
        // libyang builds ietf-datastores (imported by ietf-netconf-nmda) into
        // every context, the agent's too; yanglint's own copy lives here.
        let libyang_models = Path::new("/usr/share/yang/modules/libyang");
        if libyang_models.is_dir() {
            cmd.arg("-p").arg(libyang_models);
        }
        cmd.arg(&module);
        let out = run(&mut cmd, "yanglint (apt install libyang2-tools)");
        let name = module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let msg = text(&out);
        if !out.status.success() {
            failures.push(format!("{name}: yanglint failed:\n{msg}"));
        } else if name == OUR_MODULE && !msg.trim().is_empty() {
            // Standard modules may draw warnings we cannot fix; ours may not.
            failures.push(format!("{name}: yanglint warnings:\n{msg}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pyang_lint_app_hosting_has_no_errors() {
    let out = run(
        Command::new(pyang())
            .args(["--lint", "-p", "yang"])
            .arg(Path::new("yang").join(OUR_MODULE)),
        "pyang",
    );
    let msg = text(&out);
    let errors: Vec<&str> = msg.lines().filter(|l| l.contains(": error:")).collect();
    assert!(
        out.status.success() && errors.is_empty(),
        "pyang --lint reports errors:\n{msg}"
    );
    // Warnings (e.g. enums without description) are allowed but shown.
    if !msg.trim().is_empty() {
        eprintln!("pyang --lint warnings:\n{msg}");
    }
}

#[test]
fn yang_tree_doc_is_current() {
    let out = run(
        Command::new(pyang())
            .args(["-f", "tree", "-p", "yang"])
            .arg(Path::new("yang").join(OUR_MODULE)),
        "pyang",
    );
    assert!(
        out.status.success(),
        "pyang -f tree failed:\n{}",
        text(&out)
    );
    let want = String::from_utf8_lossy(&out.stdout);
    let have = std::fs::read_to_string(root().join("docs/yang-tree.txt")).unwrap_or_default();
    assert!(
        have == want,
        "docs/yang-tree.txt is not the current tree of {OUR_MODULE}: run ./tools/gen-yang-tree.sh and commit it"
    );
}
