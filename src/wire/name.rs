//! Domain names in uncompressed wire form: a sequence of length-prefixed labels ending in the
//! root label (RFC 1035 §3.1).

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

/// Turns a presentation name (`apps.example.com` or `apps.example.com.`) into lower-case wire
/// form. Used at start-up and load time, never per query. Labels may hold letters, digits,
/// hyphens and underscores.
pub fn name_to_wire(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    let mut wire = Vec::with_capacity(trimmed.len() + 2);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(format!("{text:?} has an empty label"));
            }
            if label.len() > MAX_LABEL {
                return Err(format!(
                    "label {label:?} of {text:?} is longer than {MAX_LABEL} bytes"
                ));
            }
            if let Some(bad) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(format!(
                    "{text:?} contains {bad:?}; labels hold letters, digits, '-' and '_'"
                ));
            }
            wire.push(label.len() as u8);
            wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
        }
    }
    wire.push(0);
    if wire.len() > MAX_NAME {
        return Err(format!(
            "{text:?} is {} bytes in wire form, over the limit of {MAX_NAME}",
            wire.len()
        ));
    }
    Ok(wire)
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
    fn classify_label_bytes() {
        assert_eq!(LabelKind::classify(0), LabelKind::Normal(0));
        assert_eq!(LabelKind::classify(63), LabelKind::Normal(63));
        assert_eq!(LabelKind::classify(64), LabelKind::Reserved);
        assert_eq!(LabelKind::classify(0x80), LabelKind::Reserved);
        assert_eq!(LabelKind::classify(0xC0), LabelKind::Pointer);
    }
}
