//! cnamed: an authoritative DNS server that answers `{service}-{app}.{zone}` with a CNAME to
//! `{service}-{cluster}.{suffix}`, from an app -> cluster snapshot reloaded on SIGHUP.
//!
//! Layers, each importing only those listed before it (tests aside):
//! - [`wire`]: bytes <-> borrowed views of a DNS message, and the record encoder;
//! - [`sys`]: the only `unsafe` code: batched UDP, signals, scheduling, clocks, memory
//!   advice (it reads `wire` for the largest UDP response);
//! - [`log`](mod@log): log lines to stderr, written by a thread of their own (`sys`);
//! - [`cookie`] (RFC 7873/9018) and [`rrl`] (response rate limiting): pure but for the
//!   randomness of a fresh secret, keyed by SipHash (`siphash`);
//! - [`journal`]: the durable, checksummed record of acknowledged changes, for DNS UPDATE
//!   (issue 23; the server does not use it yet) (`siphash`);
//! - [`tsig`]: RFC 8945 records, keys, signing and verifying chains of messages, key files
//!   (`wire`);
//! - [`snapshot`]: dump -> immutable lookup with answers pre-encoded (`wire`, `sys`, `log`);
//! - [`answer`]: query -> response, pure (`wire`, `snapshot`, `cookie`, `tsig`);
//! - [`update`]: an RFC 2136 UPDATE judged against the zone served: prerequisites, the
//!   policy (the zone's shape) and the per-app changes, pure (`wire`, `snapshot`);
//! - [`xfr`]: zone transfers, one folder per direction: `outbound` (AXFR, IXFR, NOTIFY out,
//!   who may transfer) and `inbound` (a secondary's client and reader), over the vocabulary
//!   both share (`wire`, `tsig`, `snapshot`, `sys`, `log`);
//! - [`metrics`]: per-worker counters and each subsystem's exposition (`answer`, `xfr`);
//! - [`config`]: the defaults and checks of the operator's settings (limits, and the zone
//!   they make: `snapshot`, `xfr`, `cookie`);
//! - [`server`]: sockets, workers, the pipeline every message takes, the main loop and its
//!   events, reload, transfers on their threads, the control socket, using all of the above.
//!
//! At the top: [`cli`] (argv -> `Config`: the flags' syntax and values, and which go with which
//! command), [`control`] (the control socket's protocol and client), [`updater`] (`cnamed
//! update`: one UPDATE built, signed and sent) and [`zonefile`] (a snapshot as a master file),
//! used by `main.rs`; `testing` (hidden) holds what tests,
//! benches and tools share.

pub mod answer;
pub mod cli;
pub mod config;
pub mod control;
pub mod cookie;
pub mod dnstap;
pub mod histogram;
pub mod journal;
pub mod log;
pub mod metrics;
pub mod progress;
pub mod rrl;
pub mod server;
mod siphash;
pub mod snapshot;
pub mod sys;
#[doc(hidden)]
pub mod testing;
pub mod tsig;
pub mod update;
pub mod updater;
pub mod wire;
pub mod xfr;
pub mod zonefile;
