//! cnamed: an authoritative DNS server that answers `{service}-{app}.{zone}` with a CNAME to
//! `{service}-{cluster}.{suffix}`, from an app -> cluster snapshot reloaded on SIGHUP.
//!
//! Layers, each importing only those listed before it (tests aside):
//! - [`wire`]: bytes <-> borrowed views of a DNS message, and the record encoder;
//! - [`sys`]: the only `unsafe` code: batched UDP, signals, scheduling, clocks (it reads
//!   `wire` for the largest UDP response);
//! - [`cookie`] (RFC 7873/9018) and [`rrl`] (response rate limiting): pure but for the
//!   randomness of a fresh secret, keyed by SipHash (`siphash`);
//! - [`snapshot`]: dump -> immutable lookup with answers pre-encoded (`wire`, `sys` clock);
//! - [`answer`]: query -> response, pure (`wire`, `snapshot`, `cookie`);
//! - [`metrics`]: per-worker counters and their exposition, counting what `answer` reports;
//! - [`config`]: every check of the operator's settings, which become the zone (`snapshot`);
//! - [`server`]: sockets, workers, signals, reload, using all of the above.
//!
//! At the top: [`cli`] (argv -> `Config`), [`control`] (the control socket's protocol and
//! client) and [`zonefile`] (a snapshot as a master file), used by `main.rs`; `testing` (hidden) holds what tests, benches and tools share.

pub mod answer;
pub mod cli;
pub mod config;
pub mod control;
pub mod cookie;
pub mod log;
pub mod metrics;
pub mod rrl;
pub mod server;
mod siphash;
pub mod snapshot;
pub mod sys;
#[doc(hidden)]
pub mod testing;
pub mod tsig;
pub mod wire;
pub mod xfr;
pub mod zonefile;
