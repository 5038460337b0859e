//! OCI runtime bundle generation: `config.json` from a [`BundleSpec`].
//!
//! Pure (apart from writing the file), so it is unit-tested without root.
//! Defaults follow `runc spec`/`crun spec`: masked and read-only /proc paths,
//! a device cgroup that denies everything but the runtime's own allow list,
//! /dev as tmpfs with devpts, shm and mqueue, /sys read-only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    get_default_maskedpaths, get_default_readonly_paths, Capabilities, Capability, LinuxBuilder,
    LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
};

use super::{BundleSpec, OsError};

/// PATH given to the container when the spec has none: busybox's shell
/// finds nothing otherwise.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Writes `dir/config.json` for `spec`. `dir` must exist.
pub fn write_bundle(dir: &Path, spec: &BundleSpec) -> Result<(), OsError> {
    let oci = build_spec(spec)?;
    let json = serde_json::to_vec_pretty(&oci).map_err(|e| OsError::Spec(e.to_string()))?;
    let path = dir.join("config.json");
    std::fs::write(&path, json).map_err(|e| OsError::io(format!("write {}", path.display()), e))
}

/// Parses "CAP_NET_ADMIN" (or "NET_ADMIN", any case) into a capability.
pub fn parse_capability(name: &str) -> Result<Capability, OsError> {
    let upper = name.to_ascii_uppercase();
    let stripped = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(stripped)
        .map_err(|_| OsError::Spec(format!("unknown capability {name:?}")))
}

fn spec_err(e: impl std::fmt::Display) -> OsError {
    OsError::Spec(e.to_string())
}

/// The OCI spec for `spec`; see [`write_bundle`].
pub fn build_spec(spec: &BundleSpec) -> Result<Spec, OsError> {
    if spec.args.is_empty() {
        return Err(OsError::Spec("no command to run (args empty)".into()));
    }
    let caps: Capabilities = spec
        .capabilities
        .iter()
        .map(|c| parse_capability(c))
        .collect::<Result<HashSet<_>, _>>()?;
    // Bounding, permitted and effective get exactly the list. Inheritable and
    // ambient stay empty (as Docker does since CVE-2022-24769): the process
    // runs as uid 0, so execve recomputes permitted = bounding and
    // effective = permitted; CapEff inside equals the list without handing
    // inheritable bits to non-root children executing files with file caps.
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(spec_err)?;

    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }

    let process = ProcessBuilder::default()
        .terminal(false)
        .args(spec.args.clone())
        .env(env)
        .cwd(if spec.cwd.is_empty() { "/" } else { &spec.cwd })
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(spec_err)?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(spec_err)?,
        );
    }
    // No network namespace entry at all means the host's: the app then sees
    // the host's interfaces, which is what "no netns" asks for.
    if let Some(netns) = &spec.netns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(netns.clone())
                .build()
                .map_err(spec_err)?,
        );
    }

    // Deny every device; the runtimes add their standard allow list
    // (null, zero, full, tty, random, urandom, ptmx, pts) on top.
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .map_err(spec_err)?])
        .build()
        .map_err(spec_err)?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&spec.cgroup_path))
        .resources(resources)
        .masked_paths(get_default_maskedpaths())
        .readonly_paths(get_default_readonly_paths())
        .build()
        .map_err(spec_err)?;

    let root = RootBuilder::default()
        .path(spec.rootfs.clone())
        // The overlay's tmpfs upper layer is writable by design.
        .readonly(false)
        .build()
        .map_err(spec_err)?;

    let mut mounts = default_mounts()?;
    for m in &spec.mounts {
        if !m.destination.starts_with('/') {
            return Err(OsError::Spec(format!(
                "mount destination {:?} is not absolute",
                m.destination
            )));
        }
        mounts.push(mount(
            &m.destination,
            "bind",
            &m.source.to_string_lossy(),
            &["rbind", if m.readonly { "ro" } else { "rw" }],
        )?);
    }

    SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .hostname(spec.hostname.clone())
        .root(root)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_err)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OsError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

fn default_mounts() -> Result<Vec<Mount>, OsError> {
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::BindMount;
    use serde_json::Value;

    fn sample() -> BundleSpec {
        BundleSpec {
            id: "web".into(),
            rootfs: "/var/lib/apphost/web/rootfs".into(),
            args: vec!["/sbin/init".into(), "-x".into()],
            env: vec![("FOO".into(), "bar baz".into())],
            cwd: "/".into(),
            capabilities: vec!["CAP_NET_ADMIN".into(), "CAP_NET_RAW".into()],
            hostname: "web-host".into(),
            netns: Some("/run/netns/web".into()),
            cgroup_path: "/apphost/web".into(),
            mounts: vec![
                BindMount {
                    source: "/media/usb0".into(),
                    destination: "/mnt/usb".into(),
                    readonly: true,
                },
                BindMount {
                    source: "/media/sd".into(),
                    destination: "/mnt/sd".into(),
                    readonly: false,
                },
            ],
        }
    }

    fn json(spec: &BundleSpec) -> Value {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(dir.path(), spec).unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn strings(v: &Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn process_section() {
        let v = json(&sample());
        let p = &v["process"];
        assert_eq!(p["terminal"], false);
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(strings(&p["args"]), ["-x", "/sbin/init"]);
        assert_eq!(p["args"][0], "/sbin/init");
        assert_eq!(p["cwd"], "/");
        let env = strings(&p["env"]);
        assert!(env.contains(&"FOO=bar baz".to_string()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        let caps = &p["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(
                strings(&caps[set]),
                ["CAP_NET_ADMIN", "CAP_NET_RAW"],
                "{set}"
            );
        }
        for set in ["inheritable", "ambient"] {
            assert!(caps[set].as_array().unwrap().is_empty(), "{set}");
        }
    }

    #[test]
    fn given_path_is_kept() {
        let mut s = sample();
        s.env.push(("PATH".into(), "/bin".into()));
        let v = json(&s);
        let env = strings(&v["process"]["env"]);
        let paths: Vec<_> = env.iter().filter(|e| e.starts_with("PATH=")).collect();
        assert_eq!(paths, ["PATH=/bin"]);
    }

    #[test]
    fn linux_section() {
        let v = json(&sample());
        assert_eq!(v["hostname"], "web-host");
        assert_eq!(v["root"]["path"], "/var/lib/apphost/web/rootfs");
        assert_eq!(v["root"]["readonly"], false);
        let l = &v["linux"];
        assert_eq!(l["cgroupsPath"], "/apphost/web");
        let ns: Vec<(String, Option<String>)> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["type"].as_str().unwrap().to_string(),
                    n.get("path").and_then(|p| p.as_str()).map(str::to_string),
                )
            })
            .collect();
        for t in ["pid", "ipc", "uts", "mount", "cgroup"] {
            assert!(ns.contains(&(t.to_string(), None)), "{t} in {ns:?}");
        }
        assert!(ns.contains(&("network".to_string(), Some("/run/netns/web".to_string()))));
        assert_eq!(ns.len(), 6);
        assert!(strings(&l["maskedPaths"]).contains(&"/proc/kcore".to_string()));
        assert!(strings(&l["readonlyPaths"]).contains(&"/proc/sys".to_string()));
        assert_eq!(l["resources"]["devices"][0]["allow"], false);
    }

    #[test]
    fn host_network_has_no_netns_entry() {
        let mut s = sample();
        s.netns = None;
        let v = json(&s);
        let types: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(!types.contains(&"network"));
        assert_eq!(types.len(), 5);
    }

    #[test]
    fn mounts() {
        let v = json(&sample());
        let mounts = v["mounts"].as_array().unwrap();
        let find = |d: &str| {
            mounts
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap_or_else(|| panic!("no mount {d}"))
        };
        assert_eq!(find("/proc")["type"], "proc");
        assert_eq!(find("/dev")["type"], "tmpfs");
        assert_eq!(find("/dev/pts")["type"], "devpts");
        assert_eq!(find("/dev/shm")["type"], "tmpfs");
        assert_eq!(find("/dev/mqueue")["type"], "mqueue");
        let sys = find("/sys");
        assert_eq!(sys["type"], "sysfs");
        assert_eq!(
            strings(&sys["options"]),
            ["nodev", "noexec", "nosuid", "ro"]
        );
        let cg = find("/sys/fs/cgroup");
        assert_eq!(cg["type"], "cgroup");
        assert!(strings(&cg["options"]).contains(&"ro".to_string()));
        let usb = find("/mnt/usb");
        assert_eq!(usb["source"], "/media/usb0");
        assert_eq!(usb["type"], "bind");
        assert_eq!(strings(&usb["options"]), ["rbind", "ro"]);
        assert_eq!(strings(&find("/mnt/sd")["options"]), ["rbind", "rw"]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut s = sample();
        s.capabilities.push("CAP_FLY".into());
        assert!(build_spec(&s).is_err());
        let mut s = sample();
        s.args.clear();
        assert!(build_spec(&s).is_err());
        let mut s = sample();
        s.mounts[0].destination = "relative".into();
        assert!(build_spec(&s).is_err());
    }

    #[test]
    fn capability_names() {
        assert_eq!(
            parse_capability("CAP_SYS_ADMIN").unwrap(),
            Capability::SysAdmin
        );
        assert_eq!(parse_capability("net_raw").unwrap(), Capability::NetRaw);
        assert!(parse_capability("CAP_").is_err());
    }
}
