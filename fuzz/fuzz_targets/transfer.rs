//! Arbitrary bytes as a zone transfer from a primary (AXFR or IXFR); see oracles/transfer.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracles/transfer.rs"]
mod oracle;

fuzz_target!(|input: &[u8]| oracle::check(input, oracle::base_snapshot()));
