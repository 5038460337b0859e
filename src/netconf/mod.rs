//! NETCONF (RFC 6241) over SSH (RFC 6242): framing, hello, sessions,
//! operations, and the rendering of replies and errors.

pub mod agent;
pub mod framing;
pub mod hello;
pub mod output;
pub mod reply;
pub mod rpc;
pub mod session;
