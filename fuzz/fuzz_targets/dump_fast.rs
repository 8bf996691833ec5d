//! The fast dump reader against serde_json's, on arbitrary bytes and on dump-shaped text;
//! see oracles/dump_fast.rs.
#![no_main]

use std::sync::OnceLock;

use cnamed::config::Config;
use cnamed::snapshot::Zone;
use libfuzzer_sys::fuzz_target;

#[path = "../oracles/dump_fast.rs"]
mod oracle;

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| Config::default().zone().unwrap())
}

fuzz_target!(|input: &[u8]| oracle::check(input, zone()));
