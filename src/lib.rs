//! cnamed: an authoritative DNS server that answers `{service}-{app}.{zone}` with a CNAME to
//! `{service}-{cluster}.{suffix}`, from an app -> cluster snapshot reloaded on SIGHUP.
//!
//! Layers, each depending only on those above it in this list:
//! [`wire`] (bytes <-> views), [`snapshot`] (dump -> lookup), [`answer`] (query -> response),
//! [`server`] (sockets, threads, signals); [`sys`] holds the only `unsafe` code. Beside
//! them, pure and used by `answer` and `server`: [`cookie`] (RFC 7873/9018 cookies),
//! [`rrl`] (response rate limiting) and [`metrics`] (counters and their exposition).

pub mod answer;
pub mod cli;
pub mod config;
pub mod cookie;
pub mod metrics;
pub mod rrl;
pub mod server;
pub mod snapshot;
pub mod sys;
#[doc(hidden)]
pub mod testing;
pub mod wire;
pub mod zonefile;
