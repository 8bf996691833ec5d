//! Arbitrary bytes as a JSON dump; see oracles/dump.rs for what an accepted dump must satisfy.
#![no_main]

use std::sync::OnceLock;

use cnamed::config::Config;
use cnamed::snapshot::Zone;
use libfuzzer_sys::fuzz_target;

#[path = "../oracles/dump.rs"]
mod oracle;

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| Config::default().zone().unwrap())
}

fuzz_target!(|json: &[u8]| oracle::check(json, zone()));
