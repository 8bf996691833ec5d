//! The entries of a dump's `"apps"` object read straight from its bytes, one part of them at
//! a time (a part is what one thread reads): `"ID": "CLUSTER"` pairs separated by commas,
//! with any JSON whitespace between tokens. A plain string (printable ASCII, no backslash)
//! is used where it lies; any other string token is decoded by serde_json, so every spelling
//! serde_json accepts is read as it reads it, and what it refuses is refused.
//!
//! A part's clusters are looked up among those already known; a new spelling is given a
//! provisional index ([`NEW_CLUSTER`] and its place in [`Part::new_clusters`]) and checked
//! afterwards, in order, by the one thread that interns clusters.

use std::borrow::Cow;

use fxhash::FxHashMap;

use super::{app_id, OwnedAppId, OUT_OF_MEMORY};
use crate::snapshot::strings::StringsBuilder;
use crate::snapshot::table::NumericBuilder;
use crate::snapshot::MAX_NUMERIC_DIGITS;

/// Marks a provisional cluster index: the low bits index [`Part::new_clusters`].
pub(super) const NEW_CLUSTER: u32 = 1 << 31;

/// What one part of the apps read: its entries, collected for the tables, and where and
/// why it stopped.
#[derive(Default)]
pub(super) struct Part {
    pub(super) numeric: NumericBuilder,
    pub(super) named: StringsBuilder,
    /// Cluster spellings not known when the part was read, in order of first use.
    pub(super) new_clusters: Vec<NewCluster>,
}

/// A cluster spelling met for the first time in a part.
pub(super) struct NewCluster {
    pub(super) spelling: Box<str>,
    /// The first app on it, and where that entry starts: an error about the cluster names
    /// them.
    pub(super) app: OwnedAppId,
    pub(super) at: usize,
}

/// Where reading a part stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The bytes ran out at the start of an entry, `at` (just after `{` or a comma; `first`
    /// when no comma came yet, so that `}` may close the object).
    Short { at: usize, first: bool },
    /// The object closed: `after` is the byte after its `}`.
    Closed { after: usize },
    /// Refused at byte `at`.
    Failed { at: usize, why: String },
}

/// Cluster spellings already checked, with their index.
#[derive(Default)]
pub(super) struct KnownClusters {
    index: FxHashMap<Box<[u8]>, u32>,
}

/// Spellings remembered (bounded: a dump that spells one cluster a million ways must not
/// grow the map without end; the others are checked again, part by part).
const MAX_KNOWN: usize = 4096;

impl KnownClusters {
    pub(super) fn insert(&mut self, spelling: &str, index: u32) {
        if self.index.len() < MAX_KNOWN {
            self.index.insert(spelling.as_bytes().into(), index);
        }
    }

    fn get(&self, spelling: &[u8]) -> Option<u32> {
        self.index.get(spelling).copied()
    }
}

/// A string token: where a plain one lies, or a decoded one.
enum Token<'a> {
    Plain(&'a [u8]),
    Decoded(String),
}

/// Why a string token was not read.
enum TokenError {
    /// The bytes end inside it.
    Short,
    Invalid(String),
}

/// Reads the entries of `bytes` from `at`, an entry's start (`first`: no comma yet), into
/// `part`, until the bytes end, the object closes or an entry is refused. An entry is added
/// once the comma or brace after it is read, so that one cut short is read again whole.
pub(super) fn read_part(
    bytes: &[u8],
    mut at: usize,
    mut first: bool,
    known: &KnownClusters,
    max_app: usize,
    part: &mut Part,
) -> Stop {
    let mut recent = RecentClusters::default();
    loop {
        let start = at;
        let short = Stop::Short { at: start, first };
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            None => return short,
            Some(b'}') if first => return Stop::Closed { after: at + 1 },
            Some(b'"') => {}
            Some(_) if first => return failed(at, "expected an app ID or '}'"),
            Some(_) => return failed(at, "expected an app ID after ','"),
        }
        let app = match string(bytes, &mut at) {
            Ok(Token::Plain(id)) => numeric_id(id, max_app).map_or_else(
                || app_id(std::str::from_utf8(id).unwrap_or("\u{fffd}"), max_app),
                Ok,
            ),
            Ok(Token::Decoded(id)) => app_id(&id, max_app),
            Err(TokenError::Short) => return short,
            Err(TokenError::Invalid(why)) => return failed(start, &why),
        };
        let app = match app {
            Ok(app) => app,
            Err(why) => return failed(start, &why.0),
        };
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            None => return short,
            Some(b':') => at += 1,
            Some(_) => return failed(at, &format!("expected ':' after app {app}")),
        }
        at = skip_whitespace(bytes, at);
        match bytes.get(at) {
            None => return short,
            Some(b'"') => {}
            Some(_) => return failed(at, &format!("expected a cluster name for app {app}")),
        }
        let cluster = match string(bytes, &mut at) {
            Ok(cluster) => cluster,
            Err(TokenError::Short) => return short,
            Err(TokenError::Invalid(why)) => return failed(start, &why),
        };
        at = skip_whitespace(bytes, at);
        let closed = match bytes.get(at) {
            None => return short,
            Some(b',') => false,
            Some(b'}') => true,
            Some(_) => {
                let why = format!("expected ',' or '}}' after the cluster of app {app}");
                return failed(at, &why);
            }
        };
        at += 1;
        let index = match &cluster {
            Token::Plain(spelling) => match recent.get(spelling) {
                Some(index) => index,
                None => {
                    let index = cluster_index(spelling, known, part, &app, start);
                    recent.insert(spelling, index);
                    index
                }
            },
            Token::Decoded(spelling) => {
                cluster_index(spelling.as_bytes(), known, part, &app, start)
            }
        };
        let added = match app {
            OwnedAppId::Numeric(id) => part
                .numeric
                .push(id, index)
                .map_err(|_| OUT_OF_MEMORY.into()),
            OwnedAppId::Named { bytes, len } => (part.named)
                .push(&bytes[..usize::from(len)], index)
                .map_err(|error| super::strings_error(error, part.named.len())),
        };
        if let Err(why) = added {
            return failed(start, &why.0);
        }
        if closed {
            return Stop::Closed { after: at };
        }
        first = false;
    }
}

/// Short cluster spellings met in this part, by their bytes as one word: most apps' cluster
/// is found with one comparison, without hashing or comparing its bytes.
struct RecentClusters {
    slots: [(u64, u32); RECENT_SLOTS],
}

const RECENT_SLOTS: usize = 64;
/// Marks an empty slot: no spelling of at most 7 bytes has this word (its top byte is the
/// length).
const NO_WORD: u64 = u64::MAX;

impl Default for RecentClusters {
    fn default() -> Self {
        Self {
            slots: [(NO_WORD, 0); RECENT_SLOTS],
        }
    }
}

impl RecentClusters {
    /// A spelling of up to 7 bytes as one word: its bytes, and its length in the top byte.
    #[inline]
    fn word(spelling: &[u8]) -> Option<u64> {
        if spelling.len() > 7 {
            return None;
        }
        let mut bytes = [0u8; 8];
        bytes[..spelling.len()].copy_from_slice(spelling);
        bytes[7] = spelling.len() as u8;
        Some(u64::from_le_bytes(bytes))
    }

    #[inline]
    fn slot(word: u64) -> usize {
        (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    #[inline]
    fn get(&self, spelling: &[u8]) -> Option<u32> {
        let word = Self::word(spelling)?;
        let (found, index) = self.slots[Self::slot(word)];
        (found == word).then_some(index)
    }

    fn insert(&mut self, spelling: &[u8], index: u32) {
        if let Some(word) = Self::word(spelling) {
            self.slots[Self::slot(word)] = (word, index);
        }
    }
}

fn failed(at: usize, why: &str) -> Stop {
    Stop::Failed {
        at,
        why: why.to_owned(),
    }
}

/// The index of a cluster spelling: known, or provisional (see [`NEW_CLUSTER`]).
fn cluster_index(
    spelling: &[u8],
    known: &KnownClusters,
    part: &mut Part,
    app: &OwnedAppId,
    at: usize,
) -> u32 {
    if let Some(index) = known.get(spelling) {
        return index;
    }
    let new = &mut part.new_clusters;
    if let Some(place) = new.iter().position(|n| n.spelling.as_bytes() == spelling) {
        return NEW_CLUSTER | place as u32;
    }
    // A token is valid UTF-8: plain ones are ASCII, others were decoded.
    let spelling = String::from_utf8_lossy(spelling);
    new.push(NewCluster {
        spelling: spelling.into(),
        app: app.clone(),
        at,
    });
    NEW_CLUSTER | (new.len() - 1) as u32
}

/// A numeric app ID as [`app_id`] reads one (no leading zero, at most 19 digits and the
/// longest app), in one pass over its digits; `None` for any other ID.
#[inline]
fn numeric_id(id: &[u8], max_app: usize) -> Option<OwnedAppId> {
    if id.is_empty()
        || id.len() > max_app.min(MAX_NUMERIC_DIGITS)
        || (id[0] == b'0' && id.len() > 1)
    {
        return None;
    }
    let mut value = 0u64;
    for &digit in id {
        let digit = digit.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some(OwnedAppId::Numeric(value))
}

/// JSON's whitespace (RFC 8259 §2): space, tab, line feed, carriage return.
#[inline]
fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The string token at `at` (its opening quote); `at` moves past its closing quote.
#[inline]
fn string<'a>(bytes: &'a [u8], at: &mut usize) -> Result<Token<'a>, TokenError> {
    let start = *at + 1;
    let mut end = start;
    loop {
        match bytes.get(end) {
            None => return Err(TokenError::Short),
            Some(b'"') => {
                *at = end + 1;
                return Ok(Token::Plain(&bytes[start..end]));
            }
            Some(&byte) if byte == b'\\' || !(0x20..0x80).contains(&byte) => break,
            Some(_) => end += 1,
        }
    }
    // An escape, a control character or a non-ASCII byte: the token ends at the first
    // quote not escaped, and serde_json reads it.
    while let Some(&byte) = bytes.get(end) {
        match byte {
            b'\\' => end += 2,
            b'"' => {
                let token = &bytes[*at..=end];
                *at = end + 1;
                return match serde_json::from_slice::<Cow<str>>(token) {
                    Ok(text) => Ok(Token::Decoded(text.into_owned())),
                    Err(error) => Err(TokenError::Invalid(error.to_string())),
                };
            }
            _ => end += 1,
        }
    }
    Err(TokenError::Short)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_APP: usize = 56;

    fn read(text: &str, first: bool) -> (Stop, Part) {
        let mut part = Part::default();
        let mut known = KnownClusters::default();
        known.insert("mt1", 0);
        let stop = read_part(text.as_bytes(), 0, first, &known, MAX_APP, &mut part);
        (stop, part)
    }

    #[test]
    fn entries_until_the_object_closes() {
        let (stop, part) = read("\n \"12\" :\t\"mt1\",\r\n\"ab\":\"mt2\" }, x", true);
        assert_eq!(stop, Stop::Closed { after: 29 });
        assert_eq!(part.numeric.len(), 1);
        assert_eq!(part.named.len(), 1);
        assert_eq!(part.new_clusters.len(), 1);
        assert_eq!(&*part.new_clusters[0].spelling, "mt2");
    }

    #[test]
    fn an_entry_cut_short_is_left_whole() {
        let text = "\"1\": \"mt1\", \"2\": \"mt1\"";
        for cut in 12..text.len() {
            let (stop, part) = read(&text[..cut], true);
            assert_eq!(
                stop,
                Stop::Short {
                    at: 11,
                    first: false
                },
                "cut at {cut}"
            );
            assert_eq!(part.numeric.len(), 1);
        }
        assert_eq!(read("", true).0, Stop::Short { at: 0, first: true });
        assert_eq!(
            read(" ", false).0,
            Stop::Short {
                at: 0,
                first: false
            }
        );
    }

    #[test]
    fn escapes_are_decoded_and_control_characters_refused() {
        let (stop, part) = read(r#""\u0061b": "m\u00741"}"#, true);
        assert!(matches!(stop, Stop::Closed { .. }), "{stop:?}");
        assert_eq!(part.named.len(), 1);
        assert!(part.new_clusters.is_empty(), "decoded to the known mt1");
        let (stop, _) = read("\"a\tb\": \"mt1\"}", true);
        assert!(
            matches!(stop, Stop::Failed { at: 0, ref why } if why.contains("control character")),
            "{stop:?}"
        );
        let (stop, _) = read(r#""a\"b": "mt1"}"#, true);
        assert!(
            matches!(stop, Stop::Failed { at: 0, ref why } if why.contains("contains '\"'")),
            "{stop:?}"
        );
    }

    #[test]
    fn refusals_say_where() {
        let cases = [
            (r#"}"#, false, 0, "expected an app ID after ','"),
            (r#"5: "mt1"}"#, true, 0, "expected an app ID or '}'"),
            (r#""1" "mt1"}"#, true, 4, "expected ':'"),
            (
                r#""1": 5}"#,
                true,
                5,
                "expected a cluster name for app \"1\"",
            ),
            (r#""1": "mt1" "2""#, true, 11, "expected ',' or '}'"),
            (
                r#""1": "mt1", "1 2": "mt1"}"#,
                true,
                11,
                "app \"1 2\" contains ' '",
            ),
        ];
        for (text, first, at, why) in cases {
            match read(text, first).0 {
                Stop::Failed { at: got, why: said } => {
                    assert_eq!(got, at, "{text}");
                    assert!(said.contains(why), "{text}: {said}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn numbers_read_as_app_id_reads_them() {
        for id in [
            "0",
            "7",
            "10",
            "0123",
            "18446744073709551615",
            "1234567890123456789",
            "12a",
        ] {
            let fast = numeric_id(id.as_bytes(), MAX_APP).map(|app| app.to_string());
            let general = match app_id(id, MAX_APP).unwrap() {
                app @ OwnedAppId::Numeric(_) => Some(app.to_string()),
                OwnedAppId::Named { .. } => None,
            };
            assert_eq!(fast, general, "{id}");
        }
        assert!(
            numeric_id(b"123", 2).is_none(),
            "longer than the longest app"
        );
    }
}
