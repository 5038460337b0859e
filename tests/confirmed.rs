//! Confirmed commit (RFC 6241 §8.4) against real libyang datastores and real
//! state files: timeout, confirm, cancel, session end, persist tokens,
//! follow-up commits, and recovery after an agent restart.

use std::path::Path;
use std::time::{Duration, SystemTime};

use apphost::datastore::confirmed::{
    CommitParams, ConfirmEvent, ConfirmedCommit, Event, Rollback, ROLLBACK_FILE, STATE_FILE,
};
use apphost::datastore::persist::{Store, RUNNING_FILE};
use apphost::datastore::{Datastores, DsName, EditOptions};
use apphost::error::{ErrorTag, RpcError};
use yang2::data::{Data, DataTree};

const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const AH: &str = "urn:apphost:yang:app-hosting";
const CPU: &str = "/app-hosting:app-hosting/cpu";
const R: DsName = DsName::Running;
const C: DsName = DsName::Candidate;
const BOOT: &str = "confirmed-test-boot";

// ===== helpers =====

fn edit(ds: &mut Datastores, target: DsName, body: &str) {
    let xml =
        format!(r#"<config xmlns="{NC}"><app-hosting xmlns="{AH}">{body}</app-hosting></config>"#);
    let doc = roxmltree::Document::parse(&xml).expect("test XML parses");
    let out = ds.edit(target, doc.root_element(), &EditOptions::default());
    assert!(out.errors.is_empty(), "edit {body}: {:?}", out.errors);
}

fn set_cpu(ds: &mut Datastores, cpu: u8) {
    edit(ds, C, &format!("<cpu>{cpu}</cpu>"));
}

fn cpu_of(t: &DataTree<'static>) -> Option<String> {
    t.find_path(CPU)
        .ok()
        .map(|n| n.value_canonical().unwrap_or_default())
}

fn cpu(ds: &Datastores, which: DsName) -> Option<String> {
    cpu_of(ds.tree(which))
}

/// Running with cpu 30, committed plainly (the rollback point of the tests).
fn base(ds: &mut Datastores) {
    set_cpu(ds, 30);
    ds.commit().expect("base commit");
    assert_eq!(cpu(ds, R).as_deref(), Some("30"));
}

fn confirmed(timeout_s: u64, persist: Option<&str>, persist_id: Option<&str>) -> CommitParams {
    CommitParams {
        confirmed: true,
        timeout: Duration::from_secs(timeout_s),
        persist: persist.map(str::to_string),
        persist_id: persist_id.map(str::to_string),
    }
}

fn plain(persist_id: Option<&str>) -> CommitParams {
    CommitParams {
        persist_id: persist_id.map(str::to_string),
        ..CommitParams::default()
    }
}

fn one(errs: Vec<RpcError>) -> RpcError {
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().expect("one error")
}

/// Datastores persisted in `dir` through the real store, as the daemon does.
fn open_persisted(dir: &Path) -> Datastores {
    let (store, loaded) = Store::open_with_boot_id(dir, BOOT).expect("store opens");
    let mut ds = Datastores::from_trees(loaded.running, loaded.startup);
    ds.set_saver(store.into_saver());
    ds
}

/// cpu in `running.xml` as a fresh store loads it (same boot: running kept).
fn cpu_on_disk(dir: &Path) -> Option<String> {
    let (_, loaded) = Store::open_with_boot_id(dir, BOOT).expect("store opens");
    cpu_of(&loaded.running)
}

type Recovered = (ConfirmedCommit, Option<Rollback>);

/// Agent start in the test's boot, at `now`.
fn recover_at(dir: &Path, ds: &mut Datastores, now: SystemTime) -> Recovered {
    ConfirmedCommit::recover_at(dir, ds, now, BOOT).expect("recover")
}

fn recover(dir: &Path, ds: &mut Datastores) -> Recovered {
    recover_at(dir, ds, SystemTime::now())
}

fn state_files(dir: &Path) -> (bool, bool) {
    (
        dir.join(STATE_FILE).exists(),
        dir.join(ROLLBACK_FILE).exists(),
    )
}

// ===== timeout =====

#[test]
fn timeout_rolls_back_to_the_old_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = open_persisted(dir.path());
    base(&mut ds);
    let (mut cc, none) = recover(dir.path(), &mut ds);
    assert!(none.is_none());
    assert!(!cc.pending());

    set_cpu(&mut ds, 40);
    let before = SystemTime::now();
    let out = cc
        .commit(&mut ds, 1, &confirmed(600, None, None))
        .expect("confirmed commit");
    let commit = out.commit.expect("running changed");
    assert_eq!(cpu_of(&commit.old).as_deref(), Some("30"));
    assert_eq!(cpu_of(&commit.new).as_deref(), Some("40"));
    assert_eq!(
        out.event,
        Some(Event {
            kind: ConfirmEvent::Start,
            session: Some(1),
            timeout: Some(600)
        })
    );
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    assert!(cc.pending());
    assert_eq!(state_files(dir.path()), (true, true));
    let deadline = cc.deadline().expect("deadline");
    let after = SystemTime::now();
    assert!(deadline >= before + Duration::from_secs(600));
    assert!(deadline <= after + Duration::from_secs(600));

    // Before the deadline the timer does nothing.
    let early = cc
        .expire(&mut ds, deadline - Duration::from_secs(1))
        .expect("expire");
    assert!(early.is_none());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));

    let rb = cc
        .expire(&mut ds, deadline + Duration::from_secs(1))
        .expect("expire")
        .expect("rolled back");
    assert_eq!(rb.event.kind, ConfirmEvent::Timeout);
    assert_eq!(rb.event.session, None);
    assert_eq!(cpu_of(&rb.commit.old).as_deref(), Some("40"));
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, C).as_deref(), Some("30"));
    assert!(!ds.candidate_modified());
    assert!(!cc.pending());
    assert_eq!(cc.deadline(), None);
    assert_eq!(state_files(dir.path()), (false, false));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("30"));
}

// ===== confirm =====

#[test]
fn plain_commit_of_the_same_session_confirms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = open_persisted(dir.path());
    base(&mut ds);
    let (mut cc, _) = recover(dir.path(), &mut ds);
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(60, None, None))
        .expect("confirmed commit");

    // The confirming commit may carry more changes.
    edit(&mut ds, C, "<ram>20</ram>");
    let out = cc
        .commit(&mut ds, 1, &plain(None))
        .expect("confirming commit");
    assert_eq!(out.event.map(|e| e.kind), Some(ConfirmEvent::Complete));
    assert!(out.commit.is_some());
    assert!(!cc.pending());
    assert_eq!(state_files(dir.path()), (false, false));

    let later = SystemTime::now() + Duration::from_secs(3600);
    assert!(cc.expire(&mut ds, later).expect("expire").is_none());
    assert!(cc.session_ended(&mut ds, 1).expect("end").is_none());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("40"));
}

#[test]
fn plain_commit_with_nothing_pending_is_an_ordinary_commit() {
    let mut ds = Datastores::new_empty();
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 45);
    let out = cc.commit(&mut ds, 7, &plain(None)).expect("commit");
    assert!(out.event.is_none());
    assert_eq!(out.commit.map(|c| cpu_of(&c.new)), Some(Some("45".into())));
    assert!(!cc.pending());
}

// ===== session end =====

#[test]
fn end_of_the_owning_session_rolls_back_without_persist() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(600, None, None))
        .expect("confirmed commit");

    // Another session ending changes nothing.
    assert!(cc.session_ended(&mut ds, 2).expect("end").is_none());
    assert!(cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));

    let rb = cc
        .session_ended(&mut ds, 1)
        .expect("end")
        .expect("rolled back");
    assert_eq!(rb.event.kind, ConfirmEvent::Cancel);
    assert_eq!(rb.event.session, Some(1));
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert!(!cc.pending());
}

#[test]
fn other_sessions_cannot_act_on_a_session_bound_commit() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(600, None, None))
        .expect("confirmed commit");

    let e = one(cc
        .commit(&mut ds, 2, &plain(None))
        .expect_err("commit by 2"));
    assert_eq!(e.tag, ErrorTag::InUse);
    assert!(e.info.contains(&("session-id".into(), "1".into())), "{e:?}");
    let e = one(cc
        .commit(&mut ds, 2, &confirmed(60, None, None))
        .expect_err("follow-up by 2"));
    assert_eq!(e.tag, ErrorTag::InUse);
    let e = one(cc.cancel(&mut ds, 2, None).expect_err("cancel by 2"));
    assert_eq!(e.tag, ErrorTag::InUse);
    // A persist-id when none was given is an unknown token.
    let e = one(cc.cancel(&mut ds, 1, Some("x")).expect_err("persist-id"));
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert!(cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));

    // The owner cancels: back to 30, candidate reset to it.
    set_cpu(&mut ds, 47);
    let rb = cc.cancel(&mut ds, 1, None).expect("cancel by owner");
    assert_eq!(rb.event.kind, ConfirmEvent::Cancel);
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, C).as_deref(), Some("30"));
    assert!(!ds.candidate_modified());
}

// ===== persist =====

#[test]
fn persist_survives_session_end_and_is_confirmed_from_another_session() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(600, Some("tok"), None))
        .expect("confirmed commit");
    assert_eq!(cc.persist_id(), Some("tok"));

    assert!(cc.session_ended(&mut ds, 1).expect("end").is_none());
    assert!(cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));

    let e = one(cc
        .commit(&mut ds, 2, &plain(Some("wrong")))
        .expect_err("wrong persist-id"));
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert!(e
        .info
        .contains(&("bad-element".into(), "persist-id".into())));
    let e = one(cc
        .commit(&mut ds, 2, &plain(None))
        .expect_err("no persist-id"));
    assert_eq!(e.tag, ErrorTag::InUse);
    // Even the issuing session needs the token (RFC 6241 §8.4.1).
    let e = one(cc
        .commit(&mut ds, 1, &plain(None))
        .expect_err("no persist-id"));
    assert_eq!(e.tag, ErrorTag::InUse);
    let e = one(cc.cancel(&mut ds, 2, Some("wrong")).expect_err("wrong id"));
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert!(cc.pending());

    let out = cc
        .commit(&mut ds, 2, &plain(Some("tok")))
        .expect("confirm with persist-id");
    assert_eq!(
        out.event,
        Some(Event {
            kind: ConfirmEvent::Complete,
            session: Some(2),
            timeout: None
        })
    );
    assert!(!cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert!(cc.expire(&mut ds, later).expect("expire").is_none());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
}

#[test]
fn persist_id_with_nothing_pending_is_refused() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    let e = one(cc
        .commit(&mut ds, 1, &plain(Some("tok")))
        .expect_err("commit"));
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    // Nothing was committed.
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    let e = one(cc.cancel(&mut ds, 1, Some("tok")).expect_err("cancel"));
    assert_eq!(e.tag, ErrorTag::OperationFailed);
    let e = one(cc.cancel(&mut ds, 1, None).expect_err("cancel"));
    assert_eq!(e.tag, ErrorTag::OperationFailed);
}

// ===== cancel =====

#[test]
fn cancel_commit_with_persist_id_from_another_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = open_persisted(dir.path());
    base(&mut ds);
    let (mut cc, _) = recover(dir.path(), &mut ds);
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(600, Some("tok"), None))
        .expect("confirmed commit");
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("40"));

    set_cpu(&mut ds, 45); // uncommitted, dropped by the cancel
    let rb = cc.cancel(&mut ds, 3, Some("tok")).expect("cancel");
    assert_eq!(
        rb.event,
        Event {
            kind: ConfirmEvent::Cancel,
            session: Some(3),
            timeout: None
        }
    );
    assert_eq!(cpu_of(&rb.commit.old).as_deref(), Some("40"));
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, C).as_deref(), Some("30"));
    assert!(!cc.pending());
    assert_eq!(state_files(dir.path()), (false, false));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("30"));
}

// ===== follow-up confirmed commit =====

#[test]
fn follow_up_extends_and_keeps_the_first_rollback_point() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(60, Some("a"), None))
        .expect("confirmed commit");
    let first = cc.deadline().expect("deadline");

    // Follow-up from another session with the token, new changes, new
    // timeout and no persist: now bound to session 2.
    set_cpu(&mut ds, 50);
    let out = cc
        .commit(&mut ds, 2, &confirmed(1200, None, Some("a")))
        .expect("follow-up");
    assert_eq!(
        out.event,
        Some(Event {
            kind: ConfirmEvent::Extend,
            session: Some(2),
            timeout: Some(1200)
        })
    );
    let commit = out.commit.expect("running changed");
    assert_eq!(cpu_of(&commit.old).as_deref(), Some("40"));
    assert_eq!(cpu_of(&commit.new).as_deref(), Some("50"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("50"));
    let second = cc.deadline().expect("deadline");
    assert!(second >= first + Duration::from_secs(1000));
    assert_eq!(cc.persist_id(), None);
    assert_eq!(cc.session(), Some(2));

    // The old deadline passes: nothing happens.
    assert!(cc
        .expire(&mut ds, first + Duration::from_secs(1))
        .expect("expire")
        .is_none());
    assert_eq!(cpu(&ds, R).as_deref(), Some("50"));

    let rb = cc
        .expire(&mut ds, second)
        .expect("expire")
        .expect("rolled back");
    assert_eq!(cpu_of(&rb.commit.old).as_deref(), Some("50"));
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
}

#[test]
fn session_bound_follow_up_by_the_owner() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(60, None, None))
        .expect("confirmed commit");
    set_cpu(&mut ds, 50);
    let out = cc
        .commit(&mut ds, 1, &confirmed(60, None, None))
        .expect("follow-up");
    assert_eq!(out.event.map(|e| e.kind), Some(ConfirmEvent::Extend));
    let rb = cc.cancel(&mut ds, 1, None).expect("cancel");
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
}

// ===== failures =====

#[test]
fn a_failed_confirmed_commit_leaves_nothing_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = open_persisted(dir.path());
    base(&mut ds);
    let (mut cc, _) = recover(dir.path(), &mut ds);
    // Valid in candidate, refused at commit (must: host-os-share).
    edit(
        &mut ds,
        C,
        "<app><name>web</name><netns>host-os</netns><share><port><name>eth3</name></port></share></app>",
    );
    let errs = cc
        .commit(&mut ds, 1, &confirmed(60, None, None))
        .expect_err("invalid candidate");
    assert_eq!(errs[0].app_tag.as_deref(), Some("host-os-share"));
    assert!(!cc.pending());
    assert_eq!(state_files(dir.path()), (false, false));
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));

    let e = one(cc
        .commit(&mut ds, 1, &confirmed(0, None, None))
        .expect_err("zero timeout"));
    assert_eq!(e.tag, ErrorTag::InvalidValue);
    assert!(!cc.pending());
}

#[test]
fn a_failed_follow_up_keeps_the_pending_state() {
    let mut ds = Datastores::new_empty();
    base(&mut ds);
    let mut cc = ConfirmedCommit::in_memory();
    set_cpu(&mut ds, 40);
    cc.commit(&mut ds, 1, &confirmed(60, Some("a"), None))
        .expect("confirmed commit");
    let deadline = cc.deadline();
    edit(
        &mut ds,
        C,
        "<app><name>web</name><netns>host-os</netns><share><port><name>eth3</name></port></share></app>",
    );
    cc.commit(&mut ds, 1, &confirmed(600, Some("b"), Some("a")))
        .expect_err("invalid candidate");
    assert_eq!(cc.deadline(), deadline);
    assert_eq!(cc.persist_id(), Some("a"));
    cc.commit(&mut ds, 1, &plain(Some("a")))
        .expect_err("confirming commit of an invalid candidate fails too");
    assert!(cc.pending());
    let rb = cc.cancel(&mut ds, 9, Some("a")).expect("cancel");
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
}

// ===== restart =====

#[test]
fn recover_inside_the_window_rearms_with_the_same_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deadline;
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(600, Some("tok"), None))
            .expect("confirmed commit");
        deadline = cc.deadline().expect("deadline");
        // The agent stops: the struct and the datastores are dropped.
    }
    let mut ds = open_persisted(dir.path());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    let (mut cc, rb) = recover(dir.path(), &mut ds);
    assert!(rb.is_none());
    assert!(cc.pending());
    assert_eq!(cc.persist_id(), Some("tok"));
    let again = cc.deadline().expect("deadline");
    let diff = again
        .duration_since(deadline)
        .unwrap_or_else(|e| e.duration());
    assert!(
        diff < Duration::from_millis(1),
        "deadline moved by {diff:?}"
    );
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));

    // Still cancellable with the token, and the timer still fires.
    assert!(cc
        .expire(&mut ds, again - Duration::from_secs(1))
        .expect("expire")
        .is_none());
    let rb = cc
        .expire(&mut ds, again)
        .expect("expire")
        .expect("rolled back");
    assert_eq!(rb.event.kind, ConfirmEvent::Timeout);
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("30"));
    assert_eq!(state_files(dir.path()), (false, false));
}

#[test]
fn recover_after_the_window_rolls_back_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deadline;
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        edit(
            &mut ds,
            C,
            "<app><name>web</name><enable>true</enable></app>",
        );
        cc.commit(&mut ds, 1, &confirmed(60, Some("tok"), None))
            .expect("confirmed commit");
        deadline = cc.deadline().expect("deadline");
    }
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("40"));
    let mut ds = open_persisted(dir.path());
    let (cc, rb) = recover_at(dir.path(), &mut ds, deadline + Duration::from_secs(5));
    let rb = rb.expect("rolled back at start");
    assert_eq!(rb.event.kind, ConfirmEvent::Timeout);
    assert_eq!(rb.event.session, None);
    assert_eq!(cpu_of(&rb.commit.old).as_deref(), Some("40"));
    assert_eq!(cpu_of(&rb.commit.new).as_deref(), Some("30"));
    assert!(rb
        .commit
        .new
        .find_path("/app-hosting:app-hosting/app[name='web']")
        .is_err());
    assert!(!cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu(&ds, C).as_deref(), Some("30"));
    assert_eq!(state_files(dir.path()), (false, false));
    // running.xml holds the restored configuration.
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("30"));
    let text = std::fs::read_to_string(dir.path().join(RUNNING_FILE)).expect("running.xml");
    assert!(!text.contains("web"), "{text}");

    // A second start finds nothing pending.
    let mut ds = open_persisted(dir.path());
    let (cc, rb) = recover(dir.path(), &mut ds);
    assert!(rb.is_none());
    assert!(!cc.pending());
}

#[test]
fn recover_rolls_back_a_session_bound_commit_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(600, None, None))
            .expect("confirmed commit");
    }
    let mut ds = open_persisted(dir.path());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    let (cc, rb) = recover(dir.path(), &mut ds);
    let rb = rb.expect("rolled back: the session is gone");
    assert_eq!(rb.event.kind, ConfirmEvent::Cancel);
    assert_eq!(rb.event.session, None);
    assert!(!cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("30"));
}

#[test]
fn recover_with_an_empty_rollback_point() {
    // The first configuration ever is committed confirmed: rolling back
    // means the empty configuration (with its defaults).
    let dir = tempfile::tempdir().expect("tempdir");
    let deadline;
    {
        let mut ds = open_persisted(dir.path());
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(60, Some("t"), None))
            .expect("confirmed commit");
        deadline = cc.deadline().expect("deadline");
    }
    let mut ds = open_persisted(dir.path());
    let (_, rb) = recover_at(dir.path(), &mut ds, deadline + Duration::from_secs(1));
    assert!(rb.is_some());
    // cpu falls back to its default (25), not explicitly set any more.
    assert_eq!(cpu(&ds, R).as_deref(), Some("25"));
    assert_eq!(cpu_on_disk(dir.path()).as_deref(), Some("25"));
}

#[test]
fn recover_sets_aside_an_unreadable_state_and_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(600, Some("t"), None))
            .expect("confirmed commit");
    }
    std::fs::write(dir.path().join(ROLLBACK_FILE), "<not-xml").expect("corrupt");
    let mut ds = open_persisted(dir.path());
    let (cc, rb) = recover(dir.path(), &mut ds);
    assert!(rb.is_none());
    assert!(!cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
    assert_eq!(state_files(dir.path()), (false, false));
    let aside = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(aside, 2, "rollback point and state set aside");
}

#[test]
fn recover_after_a_reboot_rolls_back_at_once() {
    // RFC 6241 §8.4.1: a reboot before the confirmation restores the
    // configuration from before the confirmed commit, persist or not.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = recover(dir.path(), &mut ds);
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(600, Some("tok"), None))
            .expect("confirmed commit");
    }
    // New boot: the store starts running as a copy of (empty) startup.
    let (store, loaded) = Store::open_with_boot_id(dir.path(), "another-boot").expect("store");
    let mut ds = Datastores::from_trees(loaded.running, loaded.startup);
    ds.set_saver(store.into_saver());
    assert_eq!(cpu(&ds, R).as_deref(), Some("25"));
    let (cc, rb) =
        ConfirmedCommit::recover_at(dir.path(), &mut ds, SystemTime::now(), "another-boot")
            .expect("recover");
    let rb = rb.expect("rolled back after the reboot");
    assert_eq!(rb.event.kind, ConfirmEvent::Cancel);
    assert_eq!(rb.event.session, None);
    assert!(!cc.pending());
    assert_eq!(cpu(&ds, R).as_deref(), Some("30"));
    assert_eq!(state_files(dir.path()), (false, false));
    let (_, loaded) = Store::open_with_boot_id(dir.path(), "another-boot").expect("store");
    assert_eq!(cpu_of(&loaded.running).as_deref(), Some("30"));
}

#[test]
fn recover_with_the_kernel_boot_id() {
    // The daemon's entry point: the real boot id, saved and compared.
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut ds = open_persisted(dir.path());
        base(&mut ds);
        let (mut cc, _) = ConfirmedCommit::recover(dir.path(), &mut ds).expect("recover");
        set_cpu(&mut ds, 40);
        cc.commit(&mut ds, 1, &confirmed(600, Some("tok"), None))
            .expect("confirmed commit");
    }
    let saved = std::fs::read_to_string(dir.path().join(STATE_FILE)).expect("state");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    assert!(saved.contains(kernel.trim()), "{saved}");
    let mut ds = open_persisted(dir.path());
    let (cc, rb) = ConfirmedCommit::recover(dir.path(), &mut ds).expect("recover");
    assert!(rb.is_none(), "same boot, inside the window: re-armed");
    assert_eq!(cc.persist_id(), Some("tok"));
    assert_eq!(cpu(&ds, R).as_deref(), Some("40"));
}
