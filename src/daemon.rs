//! Start-up of `apphostd`: YANG context, persisted datastores, pending
//! confirmed commit, the app-hosting domain on the real OS, then the SSH
//! server until SIGTERM/SIGINT.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use crate::apphost::{Apphost, ApphostConfig};
use crate::config::Config;
use crate::datastore::confirmed::ConfirmedCommit;
use crate::datastore::persist::Store;
use crate::datastore::{Datastores, DsName};
use crate::license::Licensing;
use crate::netconf::agent::{Agent, Limits};
use crate::netconf::rpc::app::AppHostingRpcs;
use crate::netconf::rpc::import_image;
use crate::os::{Os, OsConfig};
use crate::reconciler::{NoopReconciler, Reconciler, States};
use crate::server::{self, ServerOptions};
use crate::ssh::{self, auth::Users, SshContext};

/// Media name → mount point, from `[media]`.
pub fn media_map(config: &Config) -> HashMap<String, PathBuf> {
    let mut m = HashMap::new();
    if let Some(media) = &config.media {
        for (name, path) in [
            ("external", &media.external),
            ("internal", &media.internal),
            ("usb", &media.usb),
        ] {
            if let Some(p) = path {
                m.insert(name.to_string(), p.clone());
            }
        }
    }
    m
}

/// The OS seams' settings from `[runtime]`.
pub fn os_config(config: &Config) -> OsConfig {
    let mut os = OsConfig::default();
    if let Some(rt) = &config.runtime {
        if let Some(b) = &rt.binary {
            os.runtime_binary = b.clone();
        }
        if let Some(r) = &rt.root {
            os.runtime_root = r.clone();
        }
        if let Some(c) = &rt.cgroup {
            os.cgroup_parent = c.clone();
        }
    }
    os
}

/// Runs the agent until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let extra = crate::schema::ExtraModules {
        dir: config.yang.as_ref().and_then(|y| y.dir.clone()),
        modules: config
            .yang
            .as_ref()
            .map(|y| y.modules.clone())
            .unwrap_or_default(),
    };
    crate::schema::init(&extra).context("loading YANG modules")?;
    let state_dir = &config.state_dir;
    let (store, loaded) = Store::open(state_dir)
        .with_context(|| format!("opening the datastores in {}", state_dir.display()))?;
    for w in &loaded.warnings {
        tracing::error!("{w}");
    }
    let host_key = ssh::hostkey::load_or_create(state_dir)?;
    if config.users.is_empty() {
        tracing::warn!("no [[user]] configured: nobody can log in");
    }
    let mut ds = Datastores::from_trees(loaded.running, loaded.startup);
    ds.set_saver(store.into_saver());
    let (confirmed, rollback) = ConfirmedCommit::recover(state_dir, &mut ds)
        .context("recovering the pending confirmed commit")?;
    if let Some(rb) = &rollback {
        tracing::warn!(
            event = rb.event.kind.as_str(),
            "a confirmed commit was not confirmed before the agent stopped: rolled back"
        );
    }

    let licensing = Arc::new(licensing_at_start(&config));
    let apphost = if licensing.enabled() {
        start_apphost(&config)
    } else {
        None
    };
    let reconciler: Arc<dyn Reconciler> = match &apphost {
        Some(a) => Arc::new(a.clone()),
        None => Arc::new(NoopReconciler),
    };
    let limits = Limits {
        max_message_size: config.netconf.max_message_size,
        idle_timeout: config.netconf.idle_timeout(),
    };
    let agent = Agent::new(ds, reconciler, limits);
    agent.core().confirmed = confirmed;
    // Image import events go on the agent's bus. A weak reference: the
    // agent owns these RPCs.
    let weak = Arc::downgrade(&agent);
    let publish: import_image::Publish = Arc::new(move |ev| {
        if let Some(a) = weak.upgrade() {
            a.publish(Ok(ev));
        }
    });
    agent.set_yang_rpcs(Arc::new(AppHostingRpcs::new(
        apphost.clone().map(Arc::new),
        licensing.clone(),
        publish,
    )));
    let mut states: Vec<Arc<dyn crate::netconf::agent::StateProvider>> = vec![licensing];
    if let Some(a) = &apphost {
        states.push(Arc::new(a.clone()));
    }
    agent.set_state_provider(Arc::new(States(states)));
    if let Some(a) = &apphost {
        // Before the first pass, so its state changes are notified too.
        agent.forward_app_events(a.subscribe());
        // Level-triggered: the first pass adopts what still runs, starts
        // autostart apps and removes what is no longer configured.
        a.apply(agent.core().ds.tree(DsName::Running));
        remove_image_leftovers(&config, agent.core().ds.tree(DsName::Running));
    }
    if let Some(rb) = rollback {
        agent.publish_commit(None, rb.commit);
        agent.confirmed_event(rb.event);
    }

    let (shutdown_tx, _) = tokio::sync::broadcast::channel(1);
    let ctx = Arc::new(SshContext {
        agent,
        users: Users::from_config(&config.users),
        shutdown: shutdown_tx,
        apphost,
    });
    let listeners = server::bind(&config.netconf.listen).await?;
    let opts = ServerOptions {
        max_sessions: config.netconf.max_sessions,
        login_grace: std::time::Duration::from_secs(config.netconf.login_grace_time),
    };
    server::run(
        listeners,
        ctx,
        Arc::new(ssh::server_config(host_key)),
        opts,
        shutdown,
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// The licence gate (config `license-key`): decided once, here. While off,
/// module app-hosting is hidden from clients and no domain runs; only
/// install-license and the licence status are served.
fn licensing_at_start(config: &Config) -> Licensing {
    let l = Licensing::at_start(
        &config.state_dir,
        config.license_key.clone(),
        std::path::Path::new(crate::license::DEFAULT_DEVICE_ID_FILE),
        chrono::Utc::now(),
    );
    crate::schema::set_app_hosting_enabled(l.enabled());
    if !l.enabled() {
        tracing::warn!(
            status = %l.status(chrono::Utc::now()),
            "Application Hosting is off: no valid licence (install-license, then restart)"
        );
    }
    l
}

/// Removes what imports interrupted by a crash left in the storage
/// directory (`.NAME.partial-*`, `.rootfs-*`), before any import can run.
fn remove_image_leftovers(config: &Config, running: &yang2::data::DataTree<'static>) {
    let storage = crate::apphost::model::Desired::from_tree(running).storage;
    let Ok(dir) = crate::apphost::images::Images::new(media_map(config), storage).dir() else {
        return;
    };
    match crate::image::remove_leftovers(&dir) {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(dir = %dir.display(), removed = n, "removed leftovers of interrupted imports")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove leftovers of interrupted imports")
        }
    }
}

/// The app-hosting domain on the real OS. Without it (no root, no cgroups)
/// the agent still serves its datastores, and says why loudly.
fn start_apphost(config: &Config) -> Option<Apphost> {
    let os = match Os::real(&os_config(config)) {
        Ok(os) => os,
        Err(e) => {
            tracing::error!(error = %e, "application hosting is unavailable: the OS layer cannot be set up (apphostd needs root, cgroups and crun or runc); serving the datastores only");
            return None;
        }
    };
    let cfg = ApphostConfig::new(config.state_dir.clone(), media_map(config));
    match Apphost::new(cfg, os) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(error = %e, "application hosting is unavailable; serving the datastores only");
            None
        }
    }
}
