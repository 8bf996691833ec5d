//! cnamed: an authoritative DNS server that answers `{service}-{app}.{zone}` with a CNAME to
//! `{service}-{cluster}.{suffix}`, from an app -> cluster snapshot reloaded on SIGHUP.
//!
//! Layers, each depending only on those above it in this list:
//! [`wire`] (bytes <-> views), [`snapshot`] (dump -> lookup), [`answer`] (query -> response),
//! [`server`] (sockets, threads, signals); [`sys`] holds the only `unsafe` code.

pub mod answer;
pub mod cli;
pub mod config;
pub mod server;
pub mod snapshot;
pub mod sys;
pub mod wire;
pub mod zonefile;
