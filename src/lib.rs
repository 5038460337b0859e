//! apphost: a NETCONF/YANG agent that hosts containerized applications.
//!
//! Layers, data flowing one way:
//! SSH ([`ssh`]) → NETCONF session ([`netconf`]) → datastores ([`datastore`])
//! → reconciler ([`apphost`]) → OS ([`os`]).

pub mod apphost;
pub mod config;
pub mod daemon;
pub mod datastore;
pub mod error;
pub mod image;
pub mod license;
pub mod nacm;
pub mod netconf;
pub mod notify;
pub mod os;
pub mod reconciler;
pub mod schema;
pub mod server;
pub mod ssh;
