//! `apphostd --config FILE`: the NETCONF agent daemon.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use apphost::config::Config;
use apphost::datastore::Datastores;
use apphost::netconf::agent::{Agent, Limits};
use apphost::reconciler::NoopReconciler;
use apphost::server::{self, ServerOptions};
use apphost::ssh::{self, auth::Users, SshContext};

#[derive(Parser, Debug)]
#[command(
    name = "apphostd",
    version,
    about = "NETCONF/YANG agent for application hosting"
)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', default_value = "/etc/apphostd.toml")]
    config: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(&args.config)?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.log_level.as_deref().unwrap_or("info")))
        .context("log-level")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    // One thread: sessions are I/O bound and datastore work is short and
    // serialized by one mutex anyway; this keeps memory small.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let extra = apphost::schema::ExtraModules {
        dir: config.yang.as_ref().and_then(|y| y.dir.clone()),
        modules: config
            .yang
            .as_ref()
            .map(|y| y.modules.clone())
            .unwrap_or_default(),
    };
    apphost::schema::init(&extra).context("loading YANG modules")?;
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state dir {}", config.state_dir.display()))?;
    let host_key = ssh::hostkey::load_or_create(&config.state_dir)?;
    if config.users.is_empty() {
        tracing::warn!("no [[user]] configured: nobody can log in");
    }
    let datastores = Datastores::new_empty();
    let limits = Limits {
        max_message_size: config.netconf.max_message_size,
        idle_timeout: config.netconf.idle_timeout(),
    };
    let agent = Agent::new(datastores, Arc::new(NoopReconciler), limits);
    let (shutdown_tx, _) = tokio::sync::broadcast::channel(1);
    let ctx = Arc::new(SshContext {
        agent,
        users: Users::from_config(&config.users),
        shutdown: shutdown_tx,
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
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}
