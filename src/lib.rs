//! apphost: a NETCONF/YANG agent that hosts containerized applications.
//!
//! Layers, data flowing one way:
//! SSH ([`ssh`]) → NETCONF session ([`netconf`]) → datastores ([`datastore`])
//! → reconciler ([`apphost`]) → OS ([`os`]).

pub mod datastore;
pub mod error;
pub mod image;
pub mod license;
pub mod schema;
