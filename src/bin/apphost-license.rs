//! Vendor tool: make signing keys, sign and check apphost licences.
//!
//! ```text
//! apphost-license keygen vendor.key vendor.pub
//! apphost-license sign --key vendor.key --device $(cat /etc/machine-id) --expires 2027-12-31 > license.txt
//! apphost-license verify --pub vendor.pub --device ID license.txt
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

use apphost::license;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "apphost-license", about = "Sign and check apphost licences")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a new Ed25519 key pair (private key mode 0600).
    Keygen { out_priv: PathBuf, out_pub: PathBuf },
    /// Print a licence for one device, signed with the private key.
    Sign {
        #[arg(long)]
        key: PathBuf,
        /// The device's identity (its /etc/machine-id).
        #[arg(long)]
        device: String,
        /// Expiry: RFC 3339 or YYYY-MM-DD (end of that day, UTC).
        #[arg(long)]
        expires: String,
        /// Issue date (default: now).
        #[arg(long)]
        issued: Option<String>,
    },
    /// Check a licence file as the agent would.
    Verify {
        #[arg(long = "pub")]
        public: PathBuf,
        #[arg(long)]
        device: String,
        file: PathBuf,
    },
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Keygen { out_priv, out_pub } => {
            let (sk, pk) = license::keygen();
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out_priv)
                .map_err(|e| format!("{}: {e}", out_priv.display()))?;
            f.write_all(sk.as_bytes())
                .map_err(|e| format!("{}: {e}", out_priv.display()))?;
            fs::write(&out_pub, pk).map_err(|e| format!("{}: {e}", out_pub.display()))?;
            Ok(())
        }
        Cmd::Sign {
            key,
            device,
            expires,
            issued,
        } => {
            let text = fs::read_to_string(&key).map_err(|e| format!("{}: {e}", key.display()))?;
            let sk = license::parse_private_key(&text).map_err(|e| e.to_string())?;
            let expires = license::parse_date(&expires)?;
            let issued = match issued {
                Some(s) => license::parse_date(&s)?,
                None => chrono::Utc::now(),
            };
            if device.trim().is_empty() {
                return Err("--device must not be empty".into());
            }
            let lic = license::new_license(device.trim(), issued, expires);
            let out = license::sign(&lic, &sk).map_err(|e| e.to_string())?;
            print!("{out}");
            Ok(())
        }
        Cmd::Verify {
            public,
            device,
            file,
        } => {
            let pk =
                fs::read_to_string(&public).map_err(|e| format!("{}: {e}", public.display()))?;
            let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let lic = license::verify(&text, &pk, &device, chrono::Utc::now())
                .map_err(|e| e.to_string())?;
            println!(
                "valid: device {} expires {}",
                lic.device_id,
                lic.expires.to_rfc3339()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apphost-license: {e}");
            ExitCode::FAILURE
        }
    }
}
