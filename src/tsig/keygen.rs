//! `cnamed keygen`: a new TSIG key from the kernel's random source, as the key file BIND's
//! `tsig-keygen` writes (which cnamed, BIND and NSD's `key:` users copy from) or as Knot's
//! `key:` YAML section (`keymgr -t`'s form, its first line the `ALGORITHM:NAME:SECRET` that
//! `kdig -y` and `dig -y` take). The secret is as long as the HMAC's output (RFC 8945 §6:
//! shorter keys weaken it, longer ones are hashed down).

use std::fmt::Write;

use super::keyfile::{parse, KeyFileError};
use super::Algorithm;
use crate::sys::random_bytes;
use crate::wire::name::name_to_wire;

/// How `keygen` writes the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `key "NAME" { algorithm ...; secret "..."; };`
    Bind,
    /// `key:` / `- id: NAME` / `algorithm:` / `secret:`
    Knot,
}

/// A new key `name` for `algorithm` in `format`, with a trailing line feed.
pub fn generate(
    name: &str,
    algorithm: Algorithm,
    format: KeyFormat,
) -> Result<String, KeyFileError> {
    let mut secret = vec![0; algorithm.mac_len()];
    random_bytes(&mut secret)
        .map_err(|e| KeyFileError(format!("cannot read random bytes: {e}")))?;
    key_text(name, algorithm, &secret, format)
}

/// The key file text of a key, checked by reading it back as a key file is read.
fn key_text(
    name: &str,
    algorithm: Algorithm,
    secret: &[u8],
    format: KeyFormat,
) -> Result<String, KeyFileError> {
    // Letters, digits, '-' and '_' in labels: nothing a key file's words could not hold.
    name_to_wire(name).map_err(|why| KeyFileError(format!("key name {name:?}: {why}")))?;
    if name.trim_end_matches('.').is_empty() {
        return Err(KeyFileError(format!(
            "key name {name:?}: the root is no key's name"
        )));
    }
    let algorithm_name = match algorithm {
        Algorithm::HmacSha256 => "hmac-sha256",
        Algorithm::HmacSha512 => "hmac-sha512",
    };
    let secret = base64(secret);
    let mut text = String::new();
    let _ = match format {
        KeyFormat::Bind => write!(
            text,
            "key \"{name}\" {{\n\talgorithm {algorithm_name};\n\tsecret \"{secret}\";\n}};\n"
        ),
        KeyFormat::Knot => write!(
            text,
            "# {algorithm_name}:{name}:{secret}\nkey:\n  - id: {name}\n    algorithm: \
             {algorithm_name}\n    secret: {secret}\n"
        ),
    };
    match parse(&text)?.as_slice() {
        [key] if key.algorithm == algorithm => Ok(text),
        _ => Err(KeyFileError(format!(
            "key name {name:?} does not read back"
        ))),
    }
}

/// Standard base64 (RFC 4648 §4) with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648_gives_it() {
        // RFC 4648 §10's test vectors.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn keys_read_back_in_both_formats() {
        for algorithm in [Algorithm::HmacSha256, Algorithm::HmacSha512] {
            for format in [KeyFormat::Bind, KeyFormat::Knot] {
                let text = generate("xfr-key.example.", algorithm, format).unwrap();
                let keys = parse(&text).unwrap();
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].name, b"\x07xfr-key\x07example\x00");
                assert_eq!(keys[0].algorithm, algorithm);
                assert_eq!(keys[0].secret.len(), algorithm.mac_len(), "{text}");
                let again = generate("xfr-key.example.", algorithm, format).unwrap();
                assert_ne!(parse(&again).unwrap()[0].secret, keys[0].secret);
            }
        }
        let knot = key_text("k", Algorithm::HmacSha256, b"foobar", KeyFormat::Knot).unwrap();
        assert_eq!(
            knot,
            "# hmac-sha256:k:Zm9vYmFy\nkey:\n  - id: k\n    algorithm: hmac-sha256\n    \
             secret: Zm9vYmFy\n"
        );
        let bind = key_text("k", Algorithm::HmacSha512, b"foobar", KeyFormat::Bind).unwrap();
        assert_eq!(
            bind,
            "key \"k\" {\n\talgorithm hmac-sha512;\n\tsecret \"Zm9vYmFy\";\n};\n"
        );
    }

    /// One secret in a hundred holds "//", which the key file reader once took for a
    /// comment in Knot's form: every generated key reads back (`generate` checks it).
    #[test]
    fn many_keys_all_read_back() {
        for format in [KeyFormat::Bind, KeyFormat::Knot] {
            for _ in 0..1000 {
                generate("k", Algorithm::HmacSha256, format).unwrap();
            }
        }
    }

    #[test]
    fn names_that_cannot_be_keys_are_refused() {
        for name in ["", "a b", "a\"b", "a;b", "a..b", &"x".repeat(64)] {
            let error = generate(name, Algorithm::HmacSha256, KeyFormat::Bind).unwrap_err();
            assert!(error.0.contains("key name"), "{name:?}: {error}");
        }
    }
}
