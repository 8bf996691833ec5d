//! Arbitrary bytes as one query, over UDP and TCP, through the whole answer path; see
//! oracles/query.rs for what every reply must satisfy.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracles/query.rs"]
mod oracle;

fuzz_target!(|packet: &[u8]| oracle::check(packet, oracle::sample_snapshot()));
