//! An UPDATE message from the fuzzer's bytes, read and judged against a small zone; see
//! oracles/update.rs for what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../oracles/update.rs"]
mod oracle;

fuzz_target!(|message: &[u8]| oracle::check(message, oracle::base_snapshot()));
