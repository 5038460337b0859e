//! The pure planner: `plan(desired, observed)` compares the configuration
//! (plus the agent's run intent) with what exists and returns the actions
//! that converge them. Level-triggered and idempotent: planning again on the
//! result of the actions plans nothing. No I/O here, so every transition is
//! unit-tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::model::{AppConfig, Desired, NetnsMode};

/// What exists, as seen by the reconciler, plus the agent's in-memory run
/// intent and label resolution (both are inputs the planner must not
/// compute itself: they depend on RPCs and on when `reload` ran).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Limits last set on the parent cgroup (None: not set since start).
    pub limits: Option<(u8, u8)>,
    /// Every app that has anything on the system: a container, a rootfs
    /// mount, a netns, links, a start record.
    pub apps: BTreeMap<String, ObservedApp>,
    /// Apps the agent was asked to keep running: autostart apps after agent
    /// start or a commit, apps started by the `start` RPC, adopted apps.
    pub requested: BTreeSet<String>,
    /// The image file each app's label resolves to. Pinned by the
    /// reconciler: a moved label changes it only after `reload`.
    pub images: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedApp {
    /// Host pid of a running container.
    pub running: Option<u32>,
    /// Fingerprint of the config the running container was started with.
    pub fingerprint: Option<String>,
    /// Anything left besides a running container (a stopped container,
    /// rootfs mount, netns, veths, moved ports, start record).
    pub leftovers: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set the shared CPU/RAM limits on the parent cgroup (live, no restart).
    SetLimits { cpu: u8, ram: u8 },
    /// SIGTERM → grace → SIGKILL, delete the container, return ports, delete
    /// veths and netns, unmount the rootfs, remove the cgroup.
    StopApp { name: String },
    /// netns, veths, ports, rootfs mount, bundle, run.
    StartApp {
        name: String,
        image: PathBuf,
        fingerprint: String,
    },
}

/// Whether `app` should be running now.
pub fn should_run(app: &AppConfig, observed: &Observed) -> bool {
    app.enable && observed.requested.contains(&app.name) && observed.images.contains_key(&app.name)
}

/// Plans the actions converging `observed` to `desired`. Order: stops first
/// (they free ports and veth names a start may need), then limits, then
/// starts.
pub fn plan(desired: &Desired, observed: &Observed) -> Vec<Action> {
    let mut stops = Vec::new();
    let mut starts = Vec::new();

    for (name, o) in &observed.apps {
        let wanted = desired
            .apps
            .get(name)
            .is_some_and(|a| should_run(a, observed));
        if !wanted && (o.running.is_some() || o.leftovers) {
            stops.push(Action::StopApp { name: name.clone() });
        }
    }
    for (name, app) in &desired.apps {
        if !should_run(app, observed) {
            continue;
        }
        let Some(image) = observed.images.get(name) else {
            continue;
        };
        let fp = fingerprint(app, image);
        let start = Action::StartApp {
            name: name.clone(),
            image: image.clone(),
            fingerprint: fp.clone(),
        };
        match observed.apps.get(name) {
            Some(o) if o.running.is_some() && o.fingerprint.as_deref() == Some(fp.as_str()) => {}
            Some(o) if o.running.is_some() || o.leftovers => {
                stops.push(Action::StopApp { name: name.clone() });
                starts.push(start);
            }
            _ => starts.push(start),
        }
    }

    let mut actions = stops;
    if observed.limits != Some((desired.cpu, desired.ram)) {
        actions.push(Action::SetLimits {
            cpu: desired.cpu,
            ram: desired.ram,
        });
    }
    actions.extend(starts);
    actions
}

/// A digest of everything that shapes the running container: a change of it
/// restarts the app. Enable/autostart/description/shell do not (shell is for
/// attach only).
pub fn fingerprint(app: &AppConfig, image: &std::path::Path) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different configs serialise alike.
    let mut put = |tag: &str, v: &str| {
        h.update(tag.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    put("image", &image.to_string_lossy());
    put("cmd", if app.cmd_explicit { &app.cmd } else { "" });
    put(
        "netns",
        if app.netns == NetnsMode::HostOs {
            "host-os"
        } else {
            "user-ns"
        },
    );
    let mut caps = app.capabilities.clone();
    caps.sort();
    for c in &caps {
        put("cap", c);
    }
    let mut ports = app.ports.clone();
    ports.sort();
    for p in &ports {
        put("port", &p.name);
        put("port-as", &p.as_name);
    }
    let mut veths = app.veths.clone();
    veths.sort();
    for v in &veths {
        put("veth", &v.name);
        put("veth-as", &v.as_name);
    }
    let mut media = app.media.clone();
    media.sort();
    for m in &media {
        put("media", &m.media);
        put("media-path", &m.path);
        put("media-as", &m.as_path);
    }
    for (k, v) in &app.env {
        put("env", k);
        put("env-value", v);
    }
    hex::encode(h.finalize())
}

/// Applies actions to an observed state as a perfect executor would; used to
/// check idempotency (plan on the result must be empty).
pub fn simulate(observed: &Observed, actions: &[Action]) -> Observed {
    let mut o = observed.clone();
    let mut next_pid = 1000 + o.apps.len() as u32;
    for a in actions {
        match a {
            Action::SetLimits { cpu, ram } => o.limits = Some((*cpu, *ram)),
            Action::StopApp { name } => {
                o.apps.remove(name);
            }
            Action::StartApp {
                name, fingerprint, ..
            } => {
                next_pid += 1;
                o.apps.insert(
                    name.clone(),
                    ObservedApp {
                        running: Some(next_pid),
                        fingerprint: Some(fingerprint.clone()),
                        leftovers: true,
                    },
                );
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apphost::model::{MediaShare, PortShare, VethShare};

    type Change = Box<dyn Fn(&mut AppConfig)>;

    fn app(name: &str, enable: bool) -> AppConfig {
        let mut a = AppConfig::new(name);
        a.enable = enable;
        a.autostart = true;
        a.image = Some(format!("{name}-label"));
        a
    }

    fn desired(apps: &[AppConfig]) -> Desired {
        let mut d = Desired::default();
        for a in apps {
            d.apps.insert(a.name.clone(), a.clone());
        }
        d
    }

    fn img(name: &str) -> PathBuf {
        PathBuf::from(format!("/media/app/images/{name}.img"))
    }

    /// Observed with the limits already set and every named app requested
    /// and resolvable.
    fn observed(d: &Desired, requested: &[&str]) -> Observed {
        let mut o = Observed {
            limits: Some((d.cpu, d.ram)),
            ..Default::default()
        };
        for n in requested {
            o.requested.insert(n.to_string());
            o.images.insert(n.to_string(), img(n));
        }
        o
    }

    fn running(d: &Desired, o: &mut Observed, name: &str, pid: u32) {
        let fp = fingerprint(&d.apps[name], &o.images[name]);
        o.apps.insert(
            name.into(),
            ObservedApp {
                running: Some(pid),
                fingerprint: Some(fp),
                leftovers: true,
            },
        );
    }

    /// The plan converges in one step: planning on its simulated result
    /// plans nothing.
    fn assert_converges(d: &Desired, o: &Observed) {
        let a = plan(d, o);
        let after = simulate(o, &a);
        assert_eq!(plan(d, &after), vec![], "not idempotent after {a:?}");
    }

    fn start(name: &str, d: &Desired, o: &Observed) -> Action {
        Action::StartApp {
            name: name.into(),
            image: o.images[name].clone(),
            fingerprint: fingerprint(&d.apps[name], &o.images[name]),
        }
    }

    fn stop(name: &str) -> Action {
        Action::StopApp { name: name.into() }
    }

    #[test]
    fn first_run_sets_limits_and_starts_requested() {
        let d = desired(&[app("a", true), app("b", true)]);
        let mut o = observed(&d, &["a"]);
        o.limits = None;
        assert_eq!(
            plan(&d, &o),
            vec![Action::SetLimits { cpu: 25, ram: 25 }, start("a", &d, &o)]
        );
        assert_converges(&d, &o);
    }

    #[test]
    fn nothing_to_do_when_converged() {
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        running(&d, &mut o, "a", 42);
        assert_eq!(plan(&d, &o), vec![]);
    }

    #[test]
    fn adoption_when_fingerprint_matches() {
        // After an agent restart the reconciler observes the container with
        // its stored fingerprint: same config → adopt (same pid), no action.
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        running(&d, &mut o, "a", 4242);
        assert!(plan(&d, &o).is_empty());
        // A missing fingerprint record (unknown origin) is not adopted.
        o.apps.get_mut("a").unwrap().fingerprint = None;
        assert_eq!(plan(&d, &o), vec![stop("a"), start("a", &d, &o)]);
    }

    #[test]
    fn disabled_app_is_stopped() {
        let d0 = desired(&[app("a", true)]);
        let mut o = observed(&d0, &["a"]);
        running(&d0, &mut o, "a", 42);
        let d = desired(&[app("a", false)]);
        assert_eq!(plan(&d, &o), vec![stop("a")]);
        assert_converges(&d, &o);
    }

    #[test]
    fn deleted_app_is_stopped() {
        let d0 = desired(&[app("a", true), app("b", true)]);
        let mut o = observed(&d0, &["a", "b"]);
        running(&d0, &mut o, "a", 42);
        running(&d0, &mut o, "b", 43);
        let d = desired(&[app("b", true)]);
        assert_eq!(plan(&d, &o), vec![stop("a")]);
        assert_converges(&d, &o);
    }

    #[test]
    fn leftovers_of_unwanted_app_are_removed() {
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &[]);
        o.apps.insert(
            "a".into(),
            ObservedApp {
                running: None,
                fingerprint: None,
                leftovers: true,
            },
        );
        o.apps.insert(
            "ghost".into(),
            ObservedApp {
                running: None,
                fingerprint: None,
                leftovers: true,
            },
        );
        assert_eq!(plan(&d, &o), vec![stop("a"), stop("ghost")]);
        assert_converges(&d, &o);
    }

    #[test]
    fn leftovers_of_wanted_app_cleaned_before_start() {
        // The container exited (crash) but its mounts/netns remain: a
        // requested start first tears them down.
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        o.apps.insert(
            "a".into(),
            ObservedApp {
                running: None,
                fingerprint: Some("x".into()),
                leftovers: true,
            },
        );
        assert_eq!(plan(&d, &o), vec![stop("a"), start("a", &d, &o)]);
        assert_converges(&d, &o);
    }

    #[test]
    fn not_requested_app_does_not_start() {
        // enabled, not autostart, no start RPC: stays stopped.
        let d = desired(&[app("a", true)]);
        let o = observed(&d, &[]);
        assert_eq!(plan(&d, &o), vec![]);
    }

    #[test]
    fn requested_but_no_image_does_not_start() {
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        o.images.clear();
        assert_eq!(plan(&d, &o), vec![]);
        // And a running one whose image vanished from resolution stops.
        let mut o2 = observed(&d, &["a"]);
        running(&d, &mut o2, "a", 5);
        o2.images.clear();
        assert_eq!(plan(&d, &o2), vec![stop("a")]);
    }

    #[test]
    fn config_change_restarts_only_that_app() {
        let d0 = desired(&[app("a", true), app("b", true)]);
        let mut o = observed(&d0, &["a", "b"]);
        running(&d0, &mut o, "a", 42);
        running(&d0, &mut o, "b", 43);
        let changes: Vec<Change> = vec![
            Box::new(|a| a.cmd_explicit = true),
            Box::new(|a| a.capabilities.push("CAP_NET_ADMIN".into())),
            Box::new(|a| a.netns = NetnsMode::HostOs),
            Box::new(|a| {
                a.ports.push(PortShare {
                    name: "eth3".into(),
                    as_name: "eth3".into(),
                })
            }),
            Box::new(|a| {
                a.veths.push(VethShare {
                    name: "v1".into(),
                    as_name: "eth0".into(),
                })
            }),
            Box::new(|a| {
                a.media.push(MediaShare {
                    media: "m".into(),
                    path: "p".into(),
                    as_path: "/p".into(),
                })
            }),
            Box::new(|a| a.env.push(("X".into(), "1".into()))),
        ];
        for change in changes {
            let mut a = app("a", true);
            change(&mut a);
            let d = desired(&[a, app("b", true)]);
            assert_eq!(plan(&d, &o), vec![stop("a"), start("a", &d, &o)]);
            assert_converges(&d, &o);
        }
    }

    #[test]
    fn cosmetic_changes_do_not_restart() {
        let d0 = desired(&[app("a", true)]);
        let mut o = observed(&d0, &["a"]);
        running(&d0, &mut o, "a", 42);
        let mut a = app("a", true);
        a.description = Some("new".into());
        a.shell = "bash".into();
        a.autostart = false;
        assert_eq!(plan(&desired(&[a]), &o), vec![]);
    }

    #[test]
    fn cpu_ram_change_only_sets_limits() {
        let d0 = desired(&[app("a", true)]);
        let mut o = observed(&d0, &["a"]);
        running(&d0, &mut o, "a", 42);
        let mut d = d0.clone();
        d.cpu = 40;
        d.ram = 10;
        assert_eq!(plan(&d, &o), vec![Action::SetLimits { cpu: 40, ram: 10 }]);
        assert_converges(&d, &o);
    }

    #[test]
    fn image_change_restarts_but_label_move_waits_for_reload() {
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        running(&d, &mut o, "a", 42);
        // A moved label does not touch `o.images` (pinned) → nothing.
        assert_eq!(plan(&d, &o), vec![]);
        // After reload the reconciler re-pins the new file → restart.
        o.images.insert("a".into(), img("other"));
        assert_eq!(plan(&d, &o), vec![stop("a"), start("a", &d, &o)]);
        assert_converges(&d, &o);
    }

    #[test]
    fn stop_request_stops_and_start_request_starts() {
        let d = desired(&[app("a", true)]);
        let mut o = observed(&d, &["a"]);
        running(&d, &mut o, "a", 42);
        o.requested.clear();
        assert_eq!(plan(&d, &o), vec![stop("a")]);
        let o2 = simulate(&o, &plan(&d, &o));
        assert!(o2.apps.is_empty());
        let mut o3 = o2.clone();
        o3.requested.insert("a".into());
        assert_eq!(plan(&d, &o3), vec![start("a", &d, &o3)]);
    }

    #[test]
    fn stops_come_before_starts() {
        // b takes over a port a gives up in the same commit.
        let mut a0 = app("a", true);
        a0.ports.push(PortShare {
            name: "eth3".into(),
            as_name: "eth3".into(),
        });
        let d0 = desired(&[a0, app("b", true)]);
        let mut o = observed(&d0, &["a", "b"]);
        running(&d0, &mut o, "a", 42);
        let mut b = app("b", true);
        b.ports.push(PortShare {
            name: "eth3".into(),
            as_name: "eth3".into(),
        });
        let d = desired(&[app("a", false), b]);
        let p = plan(&d, &o);
        assert_eq!(p, vec![stop("a"), start("b", &d, &o)]);
    }

    #[test]
    fn fingerprint_is_order_insensitive_for_sets_and_sensitive_for_values() {
        let mut a = app("a", true);
        a.capabilities = vec!["CAP_A".into(), "CAP_B".into()];
        let mut b = a.clone();
        b.capabilities.reverse();
        assert_eq!(fingerprint(&a, &img("x")), fingerprint(&b, &img("x")));
        assert_ne!(fingerprint(&a, &img("x")), fingerprint(&a, &img("y")));
        // The implicit default cmd and an image entrypoint: cmd not
        // explicit means the image decides; explicit cmd differs.
        let mut c = a.clone();
        c.cmd_explicit = true;
        assert_ne!(fingerprint(&a, &img("x")), fingerprint(&c, &img("x")));
    }
}
