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
use std::fmt;

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
    /// The first app on it, as an error names it, and where that entry starts.
    pub(super) app: String,
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
    /// Refused at byte `at` (the start of the entry refused, or of what is not JSON).
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
        // Where the app's ID starts: what a refusal of the entry points at.
        let entry = at;
        let other = match read_id(bytes, &mut at, max_app) {
            Ok(Id::Valid(app)) => Ok(app),
            Ok(Id::Other(Token::Plain(id))) => {
                app_id(std::str::from_utf8(id).unwrap_or("\u{fffd}"), max_app).map(App::owned)
            }
            Ok(Id::Other(Token::Decoded(id))) => app_id(&id, max_app).map(App::owned),
            Err(TokenError::Short) => return short,
            Err(TokenError::Invalid(why)) => return failed(entry, &why),
        };
        let app = match other {
            Ok(app) => app,
            Err(why) => return failed(entry, &why.0),
        };
        if bytes.get(at..at + 3) == Some(b": \"") {
            at += 2;
        } else {
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
        }
        // The common cluster first: a short spelling met before, found by one word.
        let cluster = match recent.find(bytes, &mut at) {
            Some(index) => Ok(index),
            None => match string(bytes, &mut at) {
                Ok(cluster) => Err(cluster),
                Err(TokenError::Short) => return short,
                Err(TokenError::Invalid(why)) => return failed(entry, &why),
            },
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
            Ok(index) => *index,
            Err(Token::Plain(spelling)) => {
                let index = cluster_index(spelling, known, part, &app, entry);
                recent.insert(spelling, index);
                index
            }
            Err(Token::Decoded(spelling)) => {
                cluster_index(spelling.as_bytes(), known, part, &app, entry)
            }
        };
        let added = match app {
            App::Numeric(id) => (part.numeric)
                .push(id, index)
                .map_err(|_| OUT_OF_MEMORY.into()),
            App::Named(id) => (part.named)
                .push(id, index)
                .map_err(|error| super::strings_error(error, part.named.len())),
            App::Owned(app) => match *app {
                OwnedAppId::Numeric(id) => (part.numeric)
                    .push(id, index)
                    .map_err(|_| OUT_OF_MEMORY.into()),
                OwnedAppId::Named { bytes, len } => (part.named)
                    .push(&bytes[..usize::from(len)], index)
                    .map_err(|error| super::strings_error(error, part.named.len())),
            },
        };
        if let Err(why) = added {
            return failed(entry, &why.0);
        }
        if closed {
            return Stop::Closed { after: at };
        }
        first = false;
    }
}

/// An app ID read and checked, in the form that costs least to keep until it is added.
enum App<'a> {
    Numeric(u64),
    /// Valid as it stands, not folded yet (the table folds it as it keeps it).
    Named(&'a [u8]),
    /// Read by the general path (rare: boxed, to keep the others small).
    Owned(Box<OwnedAppId>),
}

impl App<'_> {
    fn owned(app: OwnedAppId) -> Self {
        Self::Owned(Box::new(app))
    }
}

/// As [`OwnedAppId`] shows an app: the folded ID, quoted.
impl fmt::Display for App<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Numeric(id) => write!(f, "\"{id}\""),
            Self::Named(id) => write!(f, "{:?}", String::from_utf8_lossy(&id.to_ascii_lowercase())),
            Self::Owned(app) => app.fmt(f),
        }
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
    #[inline(always)]
    fn word(spelling: &[u8]) -> Option<u64> {
        if spelling.len() > 7 {
            return None;
        }
        let mut word = (spelling.len() as u64) << 56;
        for (i, &byte) in spelling.iter().enumerate() {
            word |= u64::from(byte) << (8 * i);
        }
        Some(word)
    }

    #[inline]
    fn slot(word: u64) -> usize {
        (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    /// The index of the string token at `at` (its opening quote) when it is a spelling
    /// met before; `at` then moves past it. Only plain tokens are kept: one with an escape
    /// never matches.
    #[inline(always)]
    fn find(&self, bytes: &[u8], at: &mut usize) -> Option<u32> {
        const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
        const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
        let start = *at + 1;
        let chunk = u64::from_le_bytes(*bytes.get(start..)?.first_chunk::<8>()?);
        let quoted = chunk ^ QUOTES;
        let zeros = quoted.wrapping_sub(ONES) & !quoted & HIGHS;
        let len = (zeros.trailing_zeros() / 8) as usize;
        if len > 7 {
            return None;
        }
        let word = (chunk & !(u64::MAX << (8 * len))) | (len as u64) << 56;
        let (found, index) = self.slots[Self::slot(word)];
        if found != word {
            return None;
        }
        *at = start + len + 1;
        Some(index)
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
    app: &App,
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
        app: app.to_string(),
        at,
    });
    NEW_CLUSTER | (new.len() - 1) as u32
}

/// An app ID token.
enum Id<'a> {
    /// Plain and valid, read in one pass: most IDs.
    Valid(App<'a>),
    /// Any other: left to [`app_id`], which checks it and says why it is refused.
    Other(Token<'a>),
}

/// What a byte is in an app ID (bits of [`CLASSES`]).
const DIGIT: u8 = 1;
const LETTER: u8 = 2;
const HYPHEN: u8 = 4;
/// Another printable ASCII byte but the quote and backslash: an ID with one is refused.
const OTHER: u8 = 8;
/// The quote, the backslash, a control character or a non-ASCII byte: the token is not
/// plain, or ends.
const SPECIAL: u8 = 16;

const CLASSES: [u8; 256] = {
    let mut classes = [SPECIAL; 256];
    let mut byte = 0x20;
    while byte < 0x7f {
        classes[byte] = match byte as u8 {
            b'0'..=b'9' => DIGIT,
            b'a'..=b'z' | b'A'..=b'Z' => LETTER,
            b'-' => HYPHEN,
            b'"' | b'\\' => SPECIAL,
            _ => OTHER,
        };
        byte += 1;
    }
    classes
};

/// The app ID token at `at` (its opening quote); `at` moves past it. A plain ID is checked
/// and classified as [`app_id`] does in the one pass that finds its end (a number read as
/// it goes), then a named one folded.
#[inline]
fn read_id<'a>(bytes: &'a [u8], at: &mut usize, max_app: usize) -> Result<Id<'a>, TokenError> {
    let start = *at + 1;
    let end = find_quote(bytes, start).ok_or(TokenError::Short)?;
    let len = end - start;
    // The common ID first: a number, checked eight digits at a time.
    if (1..=MAX_NUMERIC_DIGITS.min(max_app)).contains(&len)
        && bytes[start] != b'0'
        && all_digits(bytes, start, end)
    {
        *at = end + 1;
        return Ok(Id::Valid(App::Numeric(digits_value(bytes, start, end))));
    }
    let id = &bytes[start..end];
    // Each byte's class looked up independently of the others: no chain from byte to byte.
    let seen = id
        .iter()
        .fold(0, |seen, &byte| seen | CLASSES[usize::from(byte)]);
    if seen & SPECIAL != 0 {
        return string(bytes, at).map(Id::Other);
    }
    *at = end + 1;
    if len == 0 || len > max_app || seen & OTHER != 0 {
        return Ok(Id::Other(Token::Plain(id)));
    }
    if seen == DIGIT && len <= MAX_NUMERIC_DIGITS && (id[0] != b'0' || len == 1) {
        return Ok(Id::Valid(App::Numeric(digits_value(bytes, start, end))));
    }
    if id[0] == b'-' || id[len - 1] == b'-' {
        return Ok(Id::Other(Token::Plain(id)));
    }
    Ok(Id::Valid(App::Named(id)))
}

/// Where the first `"` at or after `from` is, eight bytes at a time; `None` when the bytes
/// end first.
#[inline(always)]
fn find_quote(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    while let Some(&chunk) = bytes.get(from..).and_then(|rest| rest.first_chunk::<8>()) {
        // A zero byte where a quote was; the lowest flag is exact (a borrow only flags
        // bytes above a true zero).
        let word = u64::from_le_bytes(chunk) ^ QUOTES;
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(from + (zeros.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    memchr::memchr(b'"', bytes.get(from..)?).map(|offset| from + offset)
}

/// Whether `bytes[start..end]` are all ASCII digits, eight at a time (a byte at a time
/// when the eight bytes before `end` are not there).
#[inline(always)]
fn all_digits(bytes: &[u8], start: usize, mut end: usize) -> bool {
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    while end > start {
        let len = (end - start).min(8);
        let Some(&chunk) = end
            .checked_sub(8)
            .and_then(|from| bytes[from..].first_chunk::<8>())
        else {
            return bytes[start..end].iter().all(u8::is_ascii_digit);
        };
        // A digit becomes 0-9, and 0x76 more stays below 0x80; any other byte reaches it
        // (or had it). A carry out of a byte only ever sets a flag above it, never clears one.
        let word = u64::from_le_bytes(chunk) ^ u64::from_ne_bytes([b'0'; 8]);
        let flags = (word.wrapping_add(u64::from_ne_bytes([0x76; 8])) | word) & HIGHS;
        // The ID's bytes are the top `len` of the eight.
        if flags & (u64::MAX << (8 * (8 - len))) != 0 {
            return false;
        }
        end -= len;
    }
    true
}

/// The number written by the ASCII digits `bytes[start..end]` (at most 19 of them),
/// eight at a time.
#[inline(always)]
fn digits_value(bytes: &[u8], start: usize, end: usize) -> u64 {
    match end - start {
        0..=8 => up_to_eight_digits(bytes, start, end),
        9..=16 => {
            let high = up_to_eight_digits(bytes, start, end - 8);
            high * 100_000_000 + up_to_eight_digits(bytes, end - 8, end)
        }
        _ => {
            let high = up_to_eight_digits(bytes, start, end - 16);
            let middle = up_to_eight_digits(bytes, end - 16, end - 8);
            (high * 100_000_000 + middle) * 100_000_000 + up_to_eight_digits(bytes, end - 8, end)
        }
    }
}

/// [`digits_value`] of at most eight digits.
#[inline(always)]
fn up_to_eight_digits(bytes: &[u8], start: usize, end: usize) -> u64 {
    let Some(&chunk) = end
        .checked_sub(8)
        .and_then(|from| bytes[from..].first_chunk::<8>())
    else {
        let digits = &bytes[start..end];
        return digits
            .iter()
            .fold(0, |value, &digit| value * 10 + u64::from(digit - b'0'));
    };
    // The eight bytes before `end`: the digits at the top (little-endian), the bytes before
    // them replaced by zeros.
    let leading = 8 - (end - start);
    let below = u64::MAX.checked_shr(64 - 8 * leading as u32).unwrap_or(0);
    let word = (u64::from_le_bytes(chunk) & !below) | (u64::from_ne_bytes([b'0'; 8]) & below);
    eight_digits(word)
}

/// The value of eight ASCII digits in a little-endian word, the first the most significant
/// (simdjson's `parse_eight_digits_unrolled`).
#[inline]
fn eight_digits(word: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064; // 100 + (1_000_000 << 32)
    const MUL2: u64 = 0x0000_2710_0000_0001; // 1 + (10_000 << 32)
    let mut value = word.wrapping_sub(u64::from_ne_bytes([b'0'; 8]));
    value = value.wrapping_mul(10).wrapping_add(value >> 8);
    let high = (value & MASK).wrapping_mul(MUL1);
    let low = ((value >> 16) & MASK).wrapping_mul(MUL2);
    (high.wrapping_add(low) >> 32) as u32 as u64
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
#[inline(always)]
fn string<'a>(bytes: &'a [u8], at: &mut usize) -> Result<Token<'a>, TokenError> {
    let start = *at + 1;
    let end = find_quote(bytes, start).ok_or(TokenError::Short)?;
    let text = &bytes[start..end];
    if text
        .iter()
        .all(|&byte| CLASSES[usize::from(byte)] != SPECIAL)
    {
        *at = end + 1;
        return Ok(Token::Plain(text));
    }
    decoded(bytes, at)
}

/// A string token with an escape, a control character or a non-ASCII byte: it ends at the
/// first quote not escaped, and serde_json reads it.
#[cold]
fn decoded(bytes: &[u8], at: &mut usize) -> Result<Token<'static>, TokenError> {
    let mut end = *at + 1;
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
                12,
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
    fn digits_and_quotes_found_by_words_as_by_bytes() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for len in 1..=19 {
            for round in 0..200 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let digits: String = (0..len)
                    .map(|i| char::from(b'0' + ((state >> (i * 3)) % 10) as u8))
                    .collect();
                let digits = if round == 0 { "9".repeat(len) } else { digits };
                let expected: u64 = digits.parse().unwrap();
                for before in ["", "\"", "xxxxxxxxx\""] {
                    let text = format!("{before}{digits}\"");
                    let start = before.len();
                    let end = find_quote(text.as_bytes(), start);
                    assert_eq!(end, Some(text.len() - 1), "{text}");
                    assert_eq!(
                        digits_value(text.as_bytes(), start, text.len() - 1),
                        expected,
                        "{text}"
                    );
                }
            }
        }
        for text in [
            "12a4",
            "x123456789",
            "1234567/",
            "12345678:",
            "/",
            "1 2",
            "123456789012é",
        ] {
            let expected = text.bytes().all(|byte| byte.is_ascii_digit());
            for before in ["", "\"", "\"\"\"\"\"\"\"\"\""] {
                let padded = format!("{before}{text}");
                let start = before.len();
                assert_eq!(
                    all_digits(padded.as_bytes(), start, padded.len()),
                    expected,
                    "{padded}"
                );
            }
        }
        assert!(all_digits(b"\"1234567890123456789", 1, 20));
        assert_eq!(find_quote(b"abcdefghijklmnop", 0), None);
        assert_eq!(find_quote(b"\"", 1), None);
        assert_eq!(find_quote(b"ab\"cdefghij\"", 3), Some(11));
    }

    #[test]
    fn plain_ids_read_as_app_id_reads_them() {
        let long = "a".repeat(MAX_APP);
        let longer = "a".repeat(MAX_APP + 1);
        let ids = [
            "0",
            "7",
            "10",
            "0123",
            "1234567890123456789",
            "12345678901234567890",
            "12a",
            "Ab-C",
            "-a",
            "a-",
            "a_b",
            "a b",
            "",
            &long,
            &longer,
            "a.b",
            "Z9",
        ];
        for id in ids {
            let token = format!("\"{id}\"");
            let mut at = 0;
            let fast = match read_id(token.as_bytes(), &mut at, MAX_APP) {
                Ok(Id::Valid(app)) => Some(app.to_string()),
                Ok(Id::Other(Token::Plain(plain))) => {
                    assert_eq!(plain, id.as_bytes());
                    None
                }
                _ => panic!("{id}: not plain"),
            };
            assert_eq!(at, token.len(), "{id}");
            let general = app_id(id, MAX_APP).ok().map(|app| app.to_string());
            match fast {
                Some(_) => assert_eq!(fast, general, "{id}"),
                // Left to app_id: refused there, or a valid ID the one pass does not take.
                None => assert!(general.is_none(), "{id}: {general:?}"),
            }
        }
    }
}
