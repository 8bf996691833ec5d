//! Domain names in uncompressed wire form: a sequence of length-prefixed labels ending in the
//! root label (RFC 1035 §3.1).

use std::fmt;

/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;
/// Longest name in wire form, root label included (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// Top two bits of a label length byte that mark a compression pointer (RFC 1035 §4.1.4).
pub(crate) const POINTER_BITS: u8 = 0xC0;

/// How a label length byte must be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LabelKind {
    /// A normal label of this many bytes; 0 is the root.
    Normal(u8),
    /// A compression pointer; the low 6 bits and the next byte form the offset.
    Pointer,
    /// 0x40 (extended label types, RFC 6891 §5) and 0x80: nothing we accept.
    Reserved,
}

impl LabelKind {
    pub(crate) fn classify(byte: u8) -> Self {
        match byte & POINTER_BITS {
            0 => Self::Normal(byte),
            POINTER_BITS => Self::Pointer,
            _ => Self::Reserved,
        }
    }
}

/// Which bytes a label may hold: the one label rule, for names in flags, app IDs, clusters
/// and services alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// Letters, digits, '-' and '_': labels of names an operator gives (`_dns`, say).
    Name,
    /// Letters, digits and '-', not at either end: a host name label (RFC 1123 §2.1), for app
    /// IDs and cluster names.
    Hostname,
    /// Letters and digits: service names, since the first '-' of `{service}-{app}` splits it.
    Alphanumeric,
}

impl Charset {
    fn allows(self, byte: char) -> bool {
        byte.is_ascii_alphanumeric()
            || match self {
                Self::Name => byte == '-' || byte == '_',
                Self::Hostname => byte == '-',
                Self::Alphanumeric => false,
            }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Name => "letters, digits, '-' and '_'",
            Self::Hostname => "letters, digits and '-'",
            Self::Alphanumeric => "letters and digits",
        }
    }
}

/// Why a label was refused; its `Display` completes a sentence that starts with the label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelError {
    Empty,
    TooLong {
        max: usize,
    },
    Forbidden {
        byte: char,
        charset: Charset,
    },
    /// A host name label starts or ends with '-'.
    HyphenAtEnd,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong { max } => write!(f, "is longer than {max} bytes"),
            Self::Forbidden { byte, charset } => write!(
                f,
                "contains {byte:?}; only {} are allowed",
                charset.describe()
            ),
            Self::HyphenAtEnd => f.write_str("starts or ends with '-'"),
        }
    }
}

/// Checks one label in presentation form: 1 to `max` bytes from `charset`.
pub fn check_label(label: &str, charset: Charset, max: usize) -> Result<(), LabelError> {
    if label.is_empty() {
        return Err(LabelError::Empty);
    }
    if label.len() > max {
        return Err(LabelError::TooLong { max });
    }
    if let Some(byte) = label.chars().find(|&c| !charset.allows(c)) {
        return Err(LabelError::Forbidden { byte, charset });
    }
    if charset == Charset::Hostname && (label.starts_with('-') || label.ends_with('-')) {
        return Err(LabelError::HyphenAtEnd);
    }
    Ok(())
}

/// Copies `label` into `scratch` in ASCII lower case, for matching a name as the maps store it
/// (RFC 4343) without allocating. `None` when it is longer than a label can be.
#[inline]
pub fn fold_label<'s>(label: &[u8], scratch: &'s mut [u8; MAX_LABEL]) -> Option<&'s [u8]> {
    let folded = scratch.get_mut(..label.len())?;
    folded.copy_from_slice(label);
    folded.make_ascii_lowercase();
    Some(folded)
}

/// Why a presentation name was refused, naming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Two dots in a row, or a leading dot.
    EmptyLabel { name: String },
    Label {
        label: String,
        name: String,
        why: LabelError,
    },
    /// Longer than [`MAX_NAME`] bytes in wire form.
    TooLong { name: String, wire_len: usize },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyLabel { name } => write!(f, "{name:?} has an empty label"),
            Self::Label { label, name, why } => write!(f, "label {label:?} of {name:?} {why}"),
            Self::TooLong { name, wire_len } => write!(
                f,
                "{name:?} is {wire_len} bytes in wire form, over the limit of {MAX_NAME}"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Turns a presentation name (`apps.example.com` or `apps.example.com.`) into lower-case wire
/// form. Used at start-up and load time, never per query. Labels follow [`Charset::Name`].
pub fn name_to_wire(text: &str) -> Result<Vec<u8>, NameError> {
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    let mut wire = Vec::with_capacity(trimmed.len() + 2);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel { name: text.into() });
            }
            check_label(label, Charset::Name, MAX_LABEL).map_err(|why| NameError::Label {
                label: label.into(),
                name: text.into(),
                why,
            })?;
            wire.push(label.len() as u8);
            wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    wire.push(0);
    if wire.len() > MAX_NAME {
        return Err(NameError::TooLong {
            name: text.into(),
            wire_len: wire.len(),
        });
    }
    Ok(wire)
}

/// Whether the wire name `name` is `apex` or below it, both uncompressed and lower case. For
/// start-up and load-time checks; the query path has its own (`answer::decide::locate`).
pub fn is_within(name: &[u8], apex: &[u8]) -> bool {
    let Some(suffix_at) = name.len().checked_sub(apex.len()) else {
        return false;
    };
    if name[suffix_at..] != *apex {
        return false;
    }
    // The suffix must start on a label boundary.
    let mut at = 0;
    while at < suffix_at {
        at += 1 + usize::from(name[at]);
    }
    at == suffix_at
}

/// Reads the possibly compressed name at `start` of `message` into `out`, lower case and
/// uncompressed; returns its length in `out` and the offset just after it in the message.
/// Pointers must point backwards (so they cannot loop), the name must fit `MAX_NAME`
/// bytes; anything else is `None`. For reading responses (zone transfers in), never queries.
pub fn read_name(message: &[u8], start: usize, out: &mut [u8; MAX_NAME]) -> Option<(usize, usize)> {
    let mut at = start;
    let mut len = 0;
    // Where the name ends in the message: after its first pointer, or its root label.
    let mut end = None;
    loop {
        let byte = *message.get(at)?;
        match LabelKind::classify(byte) {
            LabelKind::Normal(0) => {
                *out.get_mut(len)? = 0;
                len += 1;
                return Some((len, end.unwrap_or(at + 1)));
            }
            LabelKind::Normal(label) => {
                let label = usize::from(label);
                let bytes = message.get(at..at + 1 + label)?;
                // Room for this label and the root label after it.
                if len + bytes.len() + 1 > MAX_NAME {
                    return None;
                }
                out[len] = bytes[0];
                for (to, from) in out[len + 1..len + 1 + label].iter_mut().zip(&bytes[1..]) {
                    *to = from.to_ascii_lowercase();
                }
                len += bytes.len();
                at += bytes.len();
            }
            LabelKind::Pointer => {
                let target =
                    usize::from(byte & !POINTER_BITS) << 8 | usize::from(*message.get(at + 1)?);
                if target >= at {
                    return None;
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            LabelKind::Reserved => return None,
        }
    }
}

/// Writes a wire name (as produced by [`name_to_wire`]) in presentation form with a trailing
/// dot.
pub fn wire_to_text(wire: &[u8]) -> String {
    let mut text = String::with_capacity(wire.len() + 1);
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        let label = wire.get(at + 1..at + 1 + len as usize).unwrap_or_default();
        text.push_str(&String::from_utf8_lossy(label));
        text.push('.');
        at += 1 + len as usize;
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_names_are_read() {
        let mut out = [0u8; MAX_NAME];
        // "example.com" at 0, "WWW" + pointer to 0 at 13, a pointer to 13 at 19.
        let message = b"\x07example\x03com\x00\x03WWW\xc0\x00\xc0\x0d";
        assert_eq!(read_name(message, 0, &mut out), Some((13, 13)));
        assert_eq!(read_name(message, 13, &mut out), Some((17, 19)));
        assert_eq!(&out[..17], b"\x03www\x07example\x03com\x00");
        assert_eq!(read_name(message, 19, &mut out), Some((17, 21)));
        // A pointer to itself or forwards, a reserved label type, a cut name.
        for bad in [
            &b"\xc0\x00"[..],
            b"\x01a\xc0\x05\x00\x00",
            b"\x41a\x00",
            b"\x05ab",
        ] {
            assert_eq!(read_name(bad, 0, &mut out), None, "{bad:?}");
        }
        // Too long once decompressed: 5 labels of 63 bytes.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(read_name(&long, 0, &mut out), None);
    }

    #[test]
    fn wire_round_trip() {
        let cases: &[(&str, &[u8])] = &[
            ("apps.example.com", b"\x04apps\x07example\x03com\x00"),
            ("Apps.Example.COM.", b"\x04apps\x07example\x03com\x00"),
            (".", b"\x00"),
            ("a_b-c", b"\x05a_b-c\x00"),
        ];
        for (text, wire) in cases {
            assert_eq!(name_to_wire(text).unwrap(), *wire, "{text}");
        }
        assert_eq!(
            wire_to_text(b"\x04apps\x07example\x03com\x00"),
            "apps.example.com."
        );
        assert_eq!(wire_to_text(b"\x00"), ".");
    }

    #[test]
    fn bad_presentation_names() {
        for bad in [
            "a..b",
            "a b.com",
            &"x".repeat(64),
            &["abcdefghi"; 26].join("."),
        ] {
            assert!(name_to_wire(bad).is_err(), "{bad}");
        }
        // 4 labels of 63 + root = 4 * 64 + 1 = 257 > 255; 3 of 63 and one of 61 = 255 fits.
        let max = [
            &"a".repeat(63)[..],
            &"b".repeat(63),
            &"c".repeat(63),
            &"d".repeat(61),
        ];
        assert_eq!(name_to_wire(&max.join(".")).unwrap().len(), 255);
    }

    #[test]
    fn label_rules() {
        use Charset::{Alphanumeric, Hostname, Name};
        let cases: &[(&str, Charset, usize, Option<LabelError>)] = &[
            ("my-app", Hostname, 63, None),
            ("_dns", Name, 63, None),
            ("-x", Name, 63, None),
            ("ws", Alphanumeric, 61, None),
            ("", Hostname, 63, Some(LabelError::Empty)),
            ("abc", Hostname, 2, Some(LabelError::TooLong { max: 2 })),
            ("-x", Hostname, 63, Some(LabelError::HyphenAtEnd)),
            ("x-", Hostname, 63, Some(LabelError::HyphenAtEnd)),
            (
                "a_b",
                Hostname,
                63,
                Some(LabelError::Forbidden {
                    byte: '_',
                    charset: Hostname,
                }),
            ),
            (
                "w-s",
                Alphanumeric,
                61,
                Some(LabelError::Forbidden {
                    byte: '-',
                    charset: Alphanumeric,
                }),
            ),
            (
                "é",
                Name,
                63,
                Some(LabelError::Forbidden {
                    byte: 'é',
                    charset: Name,
                }),
            ),
        ];
        for (label, charset, max, expected) in cases {
            assert_eq!(
                check_label(label, *charset, *max).err(),
                *expected,
                "{label:?}"
            );
        }
    }

    #[test]
    fn within() {
        let apex = name_to_wire("example.com").unwrap();
        for (name, inside) in [
            ("example.com", true),
            ("ws-mt1.example.com", true),
            ("a.b.example.com", true),
            ("xexample.com", false),
            ("example.org", false),
            ("com", false),
        ] {
            assert_eq!(
                is_within(&name_to_wire(name).unwrap(), &apex),
                inside,
                "{name}"
            );
        }
    }

    #[test]
    fn folding() {
        let mut scratch = [0; MAX_LABEL];
        assert_eq!(fold_label(b"My-App", &mut scratch), Some(&b"my-app"[..]));
        assert_eq!(fold_label(&[b'A'; 64], &mut scratch), None);
    }

    #[test]
    fn classify_label_bytes() {
        assert_eq!(LabelKind::classify(0), LabelKind::Normal(0));
        assert_eq!(LabelKind::classify(63), LabelKind::Normal(63));
        assert_eq!(LabelKind::classify(64), LabelKind::Reserved);
        assert_eq!(LabelKind::classify(0x80), LabelKind::Reserved);
        assert_eq!(LabelKind::classify(0xC0), LabelKind::Pointer);
    }
}
