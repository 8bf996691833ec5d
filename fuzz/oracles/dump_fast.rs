//! The oracle of the `dump_fast` fuzz target, shared with tests/fuzz_corpus.rs: the fast
//! dump reader (on one thread in large blocks, and on three threads in blocks of a few
//! bytes, so that entries are cut and parts split everywhere; reading a stream, and bytes
//! in memory where they lie) against the general one,
//! serde_json's: the same serial and apps, or both refuse.
//!
//! The input's first byte chooses what is read: odd, the rest of the bytes as they are;
//! even, a dump built from them ([`dump_shaped`]), so that most inputs are dumps with a
//! few surprises rather than text the readers refuse at the first byte.

use cnamed::snapshot::{DumpReader, Reading, Snapshot, Zone};

pub(crate) fn check(input: &[u8], zone: &Zone) {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let json = match mode % 2 {
        1 => rest.to_vec(),
        _ => dump_shaped(rest),
    };
    let general = Snapshot::from_json_read_by(&json, zone, DumpReader::General);
    let small = Reading {
        threads: 3,
        block: 1 + usize::from(mode / 2) % 40,
    };
    let readings = [
        DumpReader::Stream(Reading {
            threads: 1,
            block: 1 << 20,
        }),
        DumpReader::Stream(small),
        DumpReader::InPlace(small),
    ];
    for reading in readings {
        let fast = Snapshot::from_json_read_by(&json, zone, reading);
        match (&general, &fast) {
            (Ok(general), Ok(fast)) => {
                assert_eq!(general.serial, fast.serial, "{reading:?}");
                let (mut want, mut got) = (general.apps(), fast.apps());
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(want, got, "{reading:?}");
                assert_eq!(general.cluster_count(), fast.cluster_count(), "{reading:?}");
            }
            (Err(_), Err(_)) => {}
            (general, fast) => panic!(
                "{reading:?}: the general reader {} and the fast one {}\n{}",
                verdict(general),
                verdict(fast),
                String::from_utf8_lossy(&json)
            ),
        }
    }
}

fn verdict(result: &Result<Snapshot, cnamed::snapshot::LoadError>) -> String {
    match result {
        Ok(snapshot) => format!("accepts it ({} apps)", snapshot.app_count()),
        Err(error) => format!("refuses it ({error})"),
    }
}

const STARTS: &[&str] = &[
    r#"{"serial": 5, "apps": {"#,
    "{\"apps\":{",
    "{ \"serial\" :\t1 ,\r\n\"apps\" : {\n",
    r#"{"x": [1, {"apps": {}}], "serial": 2, "apps": {"#,
    r#"{"serial": 4294967296, "apps": {"#,
    r#"{"serial": 07, "apps": {"#,
    r#"{"serial": "1", "apps": {"#,
    r#"{"serial": 3, "\u0061pps": {"#,
    r#"{"serial": 3, "serial": 4, "apps": {"#,
    r#"  {"serial":9,"apps":{"#,
];

const ENDS: &[&str] = &[
    "}}",
    "\n}\n}\n",
    r#"}, "serial": 9}"#,
    "}} x",
    r#"}, "apps": {}}"#,
    "}",
    r#"}, "serial": 1, "serial": 2}"#,
    r#"}, "more": {"apps": {"1": 2}}}"#,
    "},}",
];

const IDS: &[&str] = &[
    "1",
    "0",
    "01",
    "1234567890123456789",
    "12345678901234567890",
    "ab",
    "Ab",
    "a-b",
    "-a",
    "a_b",
    r"\u0061",
    r"\u0031",
    "é",
    r#"a\"b"#,
    "1 2",
    "",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    r"\ud800",
    "a\tb",
    r"a\/b",
    "a,b",
];

const CLUSTERS: &[&str] = &[
    "mt1",
    "MT1",
    "mt2",
    r"m\u0074",
    "bad_",
    "",
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
    "é",
    "a,b",
    r#"a\"b"#,
    r"\\",
];

const SEPARATORS: &[&str] = &[",", ", ", ",\n", "\n,\t", " , ", ""];

/// A dump from `recipe`: a start, entries (IDs and clusters from small lists of common
/// and awkward spellings, or numbers), separators and an end, each picked by a byte.
pub(crate) fn dump_shaped(recipe: &[u8]) -> Vec<u8> {
    let mut bytes = recipe.iter().copied();
    let mut pick = || bytes.next().map(usize::from);
    let mut json = String::new();
    json.push_str(STARTS[pick().unwrap_or(0) % STARTS.len()]);
    let end = ENDS[pick().unwrap_or(0) % ENDS.len()];
    let mut first = true;
    while let (Some(id), Some(cluster), Some(separator)) = (pick(), pick(), pick()) {
        if !first {
            json.push_str(match separator % 16 {
                0..=5 => SEPARATORS[separator % SEPARATORS.len()],
                _ => ",\n",
            });
        }
        first = false;
        match id % 4 {
            0 => json.push_str(&format!("\"{}\"", IDS[(id / 4) % IDS.len()])),
            _ => json.push_str(&format!("\"{}\"", id * 7919 + separator)),
        }
        json.push_str(if separator % 7 == 0 { " : " } else { ": " });
        match cluster % 8 {
            0 => json.push_str(&format!("\"{}\"", CLUSTERS[(cluster / 8) % CLUSTERS.len()])),
            1 if cluster > 250 => json.push('5'),
            _ => json.push_str(&format!("\"mt{}\"", cluster % 5)),
        }
    }
    json.push_str(end);
    json.into_bytes()
}
