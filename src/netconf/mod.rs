//! The NETCONF layer (RFC 6241).

pub mod filter;
pub mod monitoring;
pub mod print;
pub mod yanglib;
