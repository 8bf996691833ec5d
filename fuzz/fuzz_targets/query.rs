//! Arbitrary bytes as one query, over UDP and TCP, through the whole answer path; see
//! oracles/query.rs for what every reply must satisfy.
#![no_main]

use std::sync::OnceLock;

use cnamed::config::Config;
use cnamed::snapshot::{Snapshot, Zone};
use libfuzzer_sys::fuzz_target;

#[path = "../oracles/query.rs"]
mod oracle;

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let zone = Zone::new(&Config {
            identity: Some("fuzz".into()),
            ..Config::default()
        })
        .unwrap();
        Snapshot::from_json(include_bytes!("../../data/apps.json"), &zone).unwrap()
    })
}

fuzz_target!(|packet: &[u8]| oracle::check(packet, snapshot()));
