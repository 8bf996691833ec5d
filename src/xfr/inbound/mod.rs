//! A secondary's side of zone transfers (`serve --primary`, `cnamed fetch`):
//!
//! - `client`: asks the primaries for the zone (SOA first, then IXFR or AXFR, TSIG-signed
//!   with a key), and turns what came into the next snapshot;
//! - `reader`: checks each message of a transfer against our zone and collects the apps
//!   (a whole zone) or the changes (an IXFR), which `resolve` turns into per-app changes
//!   against the snapshot served; `received`: what a transfer gave;
//! - `full_zone`: a whole zone read straight into a snapshot's tables (`message_targets`:
//!   the clusters of the targets met in one message);
//! - `secondary`: what the secondary knows of its primaries: the last transfer, the SOA
//!   timers, expiry.

pub mod client;
mod error;
mod full_zone;
mod message_targets;
pub mod reader;
mod received;
pub mod resolve;
pub mod secondary;
