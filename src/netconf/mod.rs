//! NETCONF (RFC 6241) over SSH (RFC 6242): framing, hello, sessions,
//! operations, filters, data printing, monitoring, and the rendering of
//! replies and errors.

pub mod agent;
pub mod filter;
pub mod framing;
pub mod hello;
pub mod monitoring;
pub mod output;
pub mod print;
pub mod reply;
pub mod rpc;
pub mod session;
pub mod yanglib;
