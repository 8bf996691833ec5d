//! The tokens of a dump's apps: string tokens, plain (printable ASCII, no backslash) where
//! they lie or decoded by serde_json; app IDs checked, classified and read in the pass that
//! finds their end; quotes found and digits read eight bytes at a time (SWAR: several bytes
//! in one 64-bit word).

use std::borrow::Cow;
use std::fmt;

use super::OwnedAppId;
use crate::snapshot::MAX_NUMERIC_DIGITS;

/// A string token: where a plain one lies, or a decoded one.
pub(super) enum Token<'a> {
    Plain(&'a [u8]),
    Decoded(String),
}

/// Why a string token was not read.
pub(super) enum TokenError {
    /// The bytes end inside it.
    Short,
    Invalid(String),
}

/// An app ID read and checked, in the form that costs least to keep until it is added.
pub(super) enum App<'a> {
    Numeric(u64),
    /// Valid as it stands, not folded yet (the table folds it as it keeps it).
    Named(&'a [u8]),
    /// Read by the general path (rare: boxed, to keep the others small).
    Owned(Box<OwnedAppId>),
}

impl App<'_> {
    pub(super) fn owned(app: OwnedAppId) -> Self {
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

/// An app ID token.
pub(super) enum Id<'a> {
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
/// it goes), then a named one folded. (The common short number was tried before, by
/// [`short_number`].)
#[inline]
pub(super) fn read_id<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    max_app: usize,
) -> Result<Id<'a>, TokenError> {
    let start = *at + 1;
    let end = find_quote(bytes, start).ok_or(TokenError::Short)?;
    let len = end - start;
    // A number, checked eight digits at a time.
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

/// The most common ID read from two words: 1 to 15 digits, the first not a zero, and the
/// closing quote, at `start` with 16 bytes to read from there. Its value and length; `None`
/// for anything else (left to the general steps).
#[inline(always)]
pub(super) fn short_number(bytes: &[u8], start: usize) -> Option<(u64, usize)> {
    let chunk = bytes.get(start..)?.first_chunk::<16>()?;
    let (low, high) = chunk.split_at(8);
    let low = u64::from_le_bytes(low.try_into().ok()?);
    if chunk[0] == b'0' {
        return None;
    }
    // Up to 7 digits: the first word alone, the second never looked at.
    let quote_low = quotes(low);
    if quote_low != 0 {
        let len = (quote_low.trailing_zeros() / 8) as usize;
        if len == 0 || not_digits(low) & first_bytes(len) != 0 {
            return None;
        }
        return Some((first_digits(low, len), len));
    }
    let high = u64::from_le_bytes(high.try_into().ok()?);
    let in_high = (quotes(high).trailing_zeros() / 8) as usize;
    if in_high >= 8 || not_digits(low) | not_digits(high) & first_bytes(in_high) != 0 {
        return None;
    }
    let value = eight_digits(low) * POWERS_OF_TEN[in_high] + first_digits(high, in_high);
    Some((value, 8 + in_high))
}

/// The value of a number of `len` (1 to 7) digits at the start of `word`, the first not a
/// zero: what [`short_number`] reads when its closing quote follows; `None` for anything
/// else.
#[inline(always)]
pub(super) fn short_digits(word: u64, len: usize) -> Option<u64> {
    if word as u8 == b'0' || not_digits(word) & first_bytes(len) != 0 {
        return None;
    }
    Some(first_digits(word, len))
}

/// The common string ID read a word at a time: 1 to 31 letters, digits and hyphens, not a
/// number (all digits, one or no leading zero: [`read_id`] reads those as numbers), no
/// hyphen first or last, at most `max_app` bytes, and the closing quote, at `start` with 32
/// bytes to read from there. Its length; `None` for anything else (left to the general
/// steps, which read what this accepts as the same named ID).
#[inline(always)]
pub(super) fn short_name(bytes: &[u8], start: usize, max_app: usize) -> Option<usize> {
    let window = bytes.get(start..)?.first_chunk::<32>()?;
    let mut all_digits = true;
    for (index, chunk) in window.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = quotes(word);
        let in_id = match quote {
            0 => u64::MAX,
            _ => first_bytes((quote.trailing_zeros() / 8) as usize),
        };
        if not_name_bytes(word) & in_id != 0 {
            return None;
        }
        all_digits &= not_digits(word) & in_id == 0;
        if quote != 0 {
            let len = 8 * index + (quote.trailing_zeros() / 8) as usize;
            if len == 0 || len > max_app {
                return None;
            }
            let numeric = all_digits && (len == 1 || window[0] != b'0');
            let hyphen_at_end = window[0] == b'-' || window[len - 1] == b'-';
            return (!numeric && !hyphen_at_end).then_some(len);
        }
    }
    None
}

/// The high bit of each byte of `word` that may not be in an app ID: not an ASCII letter,
/// digit or hyphen. With the top bits cleared no addition carries out of a byte.
#[inline(always)]
fn not_name_bytes(word: u64) -> u64 {
    const TOP_BITS: u64 = 0x8080_8080_8080_8080;
    let ascii = !word & TOP_BITS;
    let low = word & !TOP_BITS;
    // Upper case folded to lower; nothing else lands in `a..=z`.
    let folded = low | u64::from_ne_bytes([0x20; 8]);
    let at_least_a = folded + u64::from_ne_bytes([0x80 - b'a'; 8]);
    let past_z = folded + u64::from_ne_bytes([0x80 - b'z' - 1; 8]);
    let letter = at_least_a & !past_z;
    // A hyphen's byte is zero after the xor: adding 0x7f leaves its top bit clear.
    let hyphen = !((low ^ u64::from_ne_bytes([b'-'; 8])) + u64::from_ne_bytes([0x7f; 8]));
    let digit = !not_digits(word);
    !((letter | hyphen | digit) & ascii) & TOP_BITS
}

/// The high bit of each byte of `word` that is a quote: a zero byte where a quote was. The
/// lowest flag is exact (a borrow only flags bytes above a true zero).
#[inline(always)]
pub(super) fn quotes(word: u64) -> u64 {
    let word = word ^ u64::from_ne_bytes([b'"'; 8]);
    word.wrapping_sub(u64::from_ne_bytes([0x01; 8])) & !word & u64::from_ne_bytes([0x80; 8])
}

/// The high bit of each byte of `word` that is not an ASCII digit: a digit becomes 0-9, and
/// 0x76 more stays below 0x80; any other byte reaches it (or had it). A carry out of a byte
/// only ever sets a flag above it, never clears one.
#[inline(always)]
fn not_digits(word: u64) -> u64 {
    let word = word ^ u64::from_ne_bytes([b'0'; 8]);
    (word.wrapping_add(u64::from_ne_bytes([0x76; 8])) | word) & u64::from_ne_bytes([0x80; 8])
}

/// The bits of a little-endian word's first `count` (0 to 8) bytes.
#[inline(always)]
pub(super) fn first_bytes(count: usize) -> u64 {
    u64::MAX.checked_shr(64 - 8 * count as u32).unwrap_or(0)
}

/// The value of the first `count` (1 to 8) digits of `word`: moved to its top, zeros
/// before them.
#[inline(always)]
fn first_digits(word: u64, count: usize) -> u64 {
    let shift = 8 * (8 - count) as u32;
    let zeros = u64::from_ne_bytes([b'0'; 8]) & first_bytes(8 - count);
    eight_digits(word.checked_shl(shift).unwrap_or(0) | zeros)
}

const POWERS_OF_TEN: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Where the first `"` at or after `from` is, eight bytes at a time; `None` when the bytes
/// end first.
#[inline(always)]
fn find_quote(bytes: &[u8], mut from: usize) -> Option<usize> {
    while let Some(&chunk) = bytes.get(from..).and_then(|rest| rest.first_chunk::<8>()) {
        let zeros = quotes(u64::from_le_bytes(chunk));
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
    while end > start {
        let len = (end - start).min(8);
        let Some(&chunk) = end
            .checked_sub(8)
            .and_then(|from| bytes[from..].first_chunk::<8>())
        else {
            return bytes[start..end].iter().all(u8::is_ascii_digit);
        };
        // The ID's bytes are the top `len` of the eight.
        if not_digits(u64::from_le_bytes(chunk)) & (u64::MAX << (8 * (8 - len))) != 0 {
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
#[inline(always)]
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
pub(super) fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The string token at `at` (its opening quote); `at` moves past its closing quote.
#[inline(always)]
pub(super) fn string<'a>(bytes: &'a [u8], at: &mut usize) -> Result<Token<'a>, TokenError> {
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
    use super::super::app_id;
    use super::*;

    const MAX_APP: usize = 56;

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
        for len in 1..=15 {
            let digits = &"987654321012345"[..len];
            for after in ["\"xxxxxxxxxxxxxxxx", "\": \"mt1\",\n\"12345\": \"mt2\""] {
                let text = format!("\"{digits}{after}");
                let expected = (text.len() >= 17).then(|| (digits.parse().unwrap(), len));
                assert_eq!(short_number(text.as_bytes(), 1), expected, "{text}");
            }
        }
        for text in [
            "\"0123\"xxxxxxxxxxxx",
            "\"12a4\"xxxxxxxxxxxx",
            "\"1234567890123456\"",
            "\"\"xxxxxxxxxxxxxxxxx",
            "\"123/\"xxxxxxxxxxxx",
            "\"1234567:9\"xxxxxxx",
        ] {
            assert_eq!(short_number(text.as_bytes(), 1), None, "{text}");
        }
        assert_eq!(find_quote(b"abcdefghijklmnop", 0), None);
        assert_eq!(find_quote(b"\"", 1), None);
        assert_eq!(find_quote(b"ab\"cdefghij\"", 3), Some(11));
    }

    /// What the one-word-at-a-time name step accepts, `read_id` reads as the same named ID;
    /// and it accepts the common names (every byte value tried at every position).
    #[test]
    fn short_names_read_as_read_id_reads_them() {
        let agrees = |id: &[u8], max_app: usize| {
            let mut text = b"\"".to_vec();
            text.extend_from_slice(id);
            text.extend_from_slice(b"\": \"mt1\",\n\"1234567890123456789\": \"mt1\"");
            let found = short_name(&text, 1, max_app);
            if let Some(len) = found {
                let mut at = 0;
                match read_id(&text, &mut at, max_app) {
                    Ok(Id::Valid(App::Named(named))) => assert_eq!(named, &text[1..1 + len]),
                    _ => panic!("{:?} taken as a name", String::from_utf8_lossy(id)),
                }
                assert_eq!(at, len + 2, "{:?}", String::from_utf8_lossy(id));
            }
            found
        };
        for id in [
            "happy-fox-1a",
            "Blue-Tiger-3-PROD",
            "007",
            "00",
            "a",
            "x1",
            "a-b",
        ] {
            assert_eq!(agrees(id.as_bytes(), MAX_APP), Some(id.len()), "{id}");
        }
        let longest = "q".repeat(31);
        assert_eq!(agrees(longest.as_bytes(), MAX_APP), Some(31));
        for id in [
            "",
            "7",
            "123",
            "-ab",
            "ab-",
            "a b",
            "a_b",
            "a.b",
            "é",
            &"q".repeat(32),
        ] {
            assert_eq!(agrees(id.as_bytes(), MAX_APP), None, "{id:?}");
        }
        assert_eq!(agrees(b"abcdef", 5), None, "longer than max_app");
        for len in [1, 7, 8, 9, 17, 30] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut id = b"k3y-abcdefghijklmnopqrstuvwxyz9"[..len].to_vec();
                    id[at] = byte;
                    let expected = byte.is_ascii_alphanumeric() || byte == b'-';
                    let found = agrees(&id, MAX_APP);
                    if found.is_some() != expected {
                        // Refused for another reason: a hyphen at an end, or all digits.
                        let edge = id[0] == b'-' || id[len - 1] == b'-';
                        let number = id.iter().all(u8::is_ascii_digit);
                        assert!(!expected || edge || number, "{byte:#x} at {at} of {len}");
                    }
                }
            }
        }
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
