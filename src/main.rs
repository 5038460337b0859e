//! `apphostd --config FILE`: the NETCONF agent daemon.
//! `apphostd image convert IN OUT`: offline OCI/docker archive → SquashFS.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use apphost::config::Config;

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Offline image tools (no agent is started).
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Flattens an oci-archive or docker-archive (optionally gzipped) into a
    /// SquashFS image OUT, with its image config beside it (OUT's extension
    /// replaced by .json).
    Convert { input: PathBuf, output: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Image {
        command: ImageCommand::Convert { input, output },
    }) = &args.command
    {
        return apphost::image::oci::convert_cli(input, output)
            .with_context(|| format!("converting {}", input.display()));
    }
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
    rt.block_on(apphost::daemon::serve(config, shutdown_signal()))
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
