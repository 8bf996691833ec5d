//! TSIG key files, in the format `tsig-keygen` (BIND) writes:
//!
//! ```text
//! key "transfer" {
//!     algorithm hmac-sha256;
//!     secret "base64...";
//! };
//! ```
//!
//! several per file, with `#`, `//` and `/* */` comments; or in Knot's YAML, as `keymgr -t`
//! prints it (a `key:` list of `id`, `algorithm` and `secret`).

use std::fmt;
use std::path::Path;

use crate::tsig::{Algorithm, Key};
use crate::wire::name::name_to_wire;

/// A key file that cannot be used, with the reason.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyFileError(pub String);

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyFileError {}

/// Reads every key of the file at `path`.
pub fn load(path: &Path) -> Result<Vec<Key>, KeyFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyFileError(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|KeyFileError(why)| KeyFileError(format!("{}: {why}", path.display())))
}

/// Parses the keys of a key file's text: BIND's `key "name" { ... };` blocks, or Knot's
/// YAML `key:` list as `keymgr -t` prints it.
pub fn parse(text: &str) -> Result<Vec<Key>, KeyFileError> {
    // Knot's YAML has only '#' comments: a secret may hold "//" (base64's '/' twice).
    let knot = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .is_some_and(|line| line.starts_with("key:"));
    let entries = match knot {
        true => knot_entries(&strip_yaml_comments(text))?,
        false => bind_entries(&tokens(&strip_comments(text)?)?)?,
    };
    let mut keys: Vec<Key> = Vec::new();
    for Entry {
        name,
        algorithm,
        secret,
    } in entries
    {
        keys.push(checked_key(&keys, &name, algorithm, secret)?);
    }
    if keys.is_empty() {
        return Err(KeyFileError("no keys".into()));
    }
    Ok(keys)
}

/// A key as written, not checked yet.
struct Entry {
    name: String,
    algorithm: Option<String>,
    secret: Option<String>,
}

/// The `key "name" { algorithm ...; secret "..."; };` blocks of BIND's format.
fn bind_entries(tokens: &[String]) -> Result<Vec<Entry>, KeyFileError> {
    let mut entries = Vec::new();
    let mut at = 0;
    let fail = |why: String| Err(KeyFileError(why));
    while at < tokens.len() {
        let next = |i: usize| tokens.get(i).map(String::as_str).unwrap_or("");
        if next(at) != "key" {
            return fail(format!("expected `key`, found {:?}", next(at)));
        }
        let name = next(at + 1).to_owned();
        if next(at + 2) != "{" {
            return fail(format!("key {name:?}: expected `{{`"));
        }
        at += 3;
        let (mut algorithm, mut secret) = (None, None);
        while next(at) != "}" {
            let (word, value) = (next(at), next(at + 1));
            if next(at + 2) != ";" {
                return fail(format!("key {name:?}: expected `;` after {word} {value}"));
            }
            match word {
                "algorithm" => algorithm = Some(value.to_owned()),
                "secret" => secret = Some(value.to_owned()),
                "" => return fail(format!("key {name:?}: no closing `}}`")),
                other => return fail(format!("key {name:?}: unknown setting {other:?}")),
            }
            at += 3;
        }
        if next(at + 1) != ";" {
            return fail(format!("key {name:?}: expected `;` after `}}`"));
        }
        at += 2;
        entries.push(Entry {
            name,
            algorithm,
            secret,
        });
    }
    Ok(entries)
}

/// The `key:` list of Knot's YAML (`keymgr -t NAME ALGORITHM` prints one):
///
/// ```text
/// key:
///   - id: NAME
///     algorithm: hmac-sha256
///     secret: BASE64
/// ```
fn knot_entries(text: &str) -> Result<Vec<Entry>, KeyFileError> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if line == "key:" {
            continue;
        }
        let (item, line) = match line.strip_prefix("- ") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
        };
        let Some((word, value)) = line.split_once(':') else {
            return Err(KeyFileError(format!(
                "expected `setting: value`, found {line:?}"
            )));
        };
        let value = value.trim().trim_matches('"').to_owned();
        if item {
            if word != "id" {
                return Err(KeyFileError(format!(
                    "a key must start with `id:`, not {word:?}"
                )));
            }
            entries.push(Entry {
                name: value,
                algorithm: None,
                secret: None,
            });
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            return Err(KeyFileError(format!("{word:?} before the first `- id:`")));
        };
        match word {
            "algorithm" => entry.algorithm = Some(value),
            "secret" => entry.secret = Some(value),
            other => {
                let name = &entry.name;
                return Err(KeyFileError(format!(
                    "key {name:?}: unknown setting {other:?}"
                )));
            }
        }
    }
    Ok(entries)
}

/// The key `name` with its `algorithm` and base64 `secret`, checked: both present, a known
/// algorithm, a non-empty secret, a name not among `keys` yet.
fn checked_key(
    keys: &[Key],
    name: &str,
    algorithm: Option<String>,
    secret: Option<String>,
) -> Result<Key, KeyFileError> {
    let fail = |why: String| Err(KeyFileError(format!("key {name:?}: {why}")));
    let (Some(algorithm), Some(secret)) = (algorithm, secret) else {
        return fail("needs an algorithm and a secret".into());
    };
    let Some(algorithm) = Algorithm::from_name(&algorithm) else {
        return fail(format!(
            "algorithm {algorithm:?} is not hmac-sha256 or hmac-sha512"
        ));
    };
    let Some(secret) = base64(&secret) else {
        return fail("the secret is not base64".into());
    };
    if secret.is_empty() {
        return fail("the secret is empty".into());
    }
    let wire = match name_to_wire(name) {
        Ok(wire) => wire.to_ascii_lowercase(),
        Err(why) => return fail(why.to_string()),
    };
    if keys.iter().any(|key| key.name == wire) {
        return Err(KeyFileError(format!("key {name:?} is defined twice")));
    }
    Ok(Key {
        name: wire,
        algorithm,
        secret,
    })
}

/// The text without its comments (`#`, `//` to the end of the line, `/* */`); an unclosed
/// `/*` is an error, never a silent end of the file.
/// YAML's comments: from a '#' at a line's start or after whitespace to the line's end.
fn strip_yaml_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let comment = line
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)));
        out.push_str(comment.map_or(line, |(i, _)| &line[..i]));
        out.push('\n');
    }
    out
}

fn strip_comments(text: &str) -> Result<String, KeyFileError> {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = match after.split_once("*/") {
                Some((_, tail)) => tail,
                None => return Err(KeyFileError("a `/*` comment is never closed".into())),
            };
        } else if rest.starts_with('#') || rest.starts_with("//") {
            rest = rest.split_once('\n').map_or("", |(_, tail)| tail);
        } else if rest.starts_with('"') {
            // A quoted string is copied whole: a '#' inside is not a comment.
            let end = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    Ok(out)
}

/// Words, quoted strings (unquoted) and the punctuation `{`, `}`, `;`.
fn tokens(text: &str) -> Result<Vec<String>, KeyFileError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&ch) = chars.peek() {
        match ch {
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '}' | ';' => {
                tokens.push(ch.to_string());
                chars.next();
            }
            '"' => {
                chars.next();
                let mut word = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => word.push(c),
                        None => return Err(KeyFileError("an unclosed quote".into())),
                    }
                }
                tokens.push(word);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{};\"".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    Ok(tokens)
}

/// Standard base64 (RFC 4648 §4) with padding; whitespace is ignored.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &chunk[..4 - pad] {
            n = n << 6 | u32::from(value(b)?);
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        for (text, bytes) in [
            ("", &b""[..]),
            ("Zg==", b"f"),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
        ] {
            assert_eq!(base64(text).as_deref(), Some(bytes), "{text}");
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!", "Zm9"] {
            assert_eq!(base64(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_files_as_tsig_keygen_and_keymgr_write_them() {
        // tsig-keygen -a hmac-sha256 transfer; keymgr -t knot-key hmac-sha512, with comments.
        let text = r#"
            key "transfer" {
                algorithm hmac-sha256;
                secret "c2VjcmV0LXNoYTI1Ng==";
            };
            # Knot's keymgr -t writes this form too
            key "Knot-Key." { algorithm hmac-sha512; secret "c2VjcmV0LXNoYTUxMg=="; }; // done
            /* key "old" { algorithm hmac-md5; secret "eA=="; }; */
        "#;
        let keys = parse(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, b"\x08transfer\x00");
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(keys[0].secret, b"secret-sha256");
        assert_eq!(keys[1].name, b"\x08knot-key\x00");
        assert_eq!(keys[1].algorithm, Algorithm::HmacSha512);
        assert!(
            !format!("{:?}", keys[0]).contains("secret-sha256"),
            "Debug hides secrets"
        );
    }

    /// `keymgr -t fleet-key hmac-sha256` of Knot 3.2, as it printed it here.
    #[test]
    fn key_files_in_knots_yaml() {
        let text = "# hmac-sha256:fleet-key:QgMsrUCBYemUUcqwwAnCWEkcu4mgT2RjsPPIKCE1IZg=\n\
                    key:\n  - id: fleet-key\n    algorithm: hmac-sha256\n    \
                    secret: QgMsrUCBYemUUcqwwAnCWEkcu4mgT2RjsPPIKCE1IZg=\n  \
                    - id: second\n    algorithm: hmac-sha512\n    secret: c2VjcmV0LXNoYTUxMg==\n";
        let keys = parse(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].name, b"\x09fleet-key\x00");
        assert_eq!(keys[0].algorithm, Algorithm::HmacSha256);
        assert_eq!(keys[0].secret.len(), 32);
        assert_eq!(keys[1].secret, b"secret-sha512");
        // Base64's '/' twice is a secret's, not a comment (one key in a hundred has it);
        // a '#' after a space is a YAML comment.
        let slashes = "key:\n  - id: k  # the fleet's\n    algorithm: hmac-sha256\n    \
                       secret: ab//cd//ef8=\n";
        let keys = parse(slashes).unwrap();
        assert_eq!(keys[0].name, b"\x01k\x00");
        assert_eq!(keys[0].secret, base64("ab//cd//ef8=").unwrap_or_default());
        for (bad, why) in [
            (
                "key:\n  - id: a\n    algorithm: hmac-sha256\n",
                "needs an algorithm",
            ),
            ("key:\n    secret: eA==\n", "before the first"),
            ("key:\n  - name: a\n", "must start with `id:`"),
            ("key:\n  - id: a\n    colour: blue\n", "unknown setting"),
        ] {
            let error = parse(bad).unwrap_err().0;
            assert!(error.contains(why), "{bad:?}: {error}");
        }
    }

    /// An unclosed `/*` once dropped every key after it without a word.
    #[test]
    fn an_unclosed_comment_is_an_error() {
        let text = r#"key "a" { algorithm hmac-sha256; secret "eA=="; };
            /* key "b" { algorithm hmac-sha256; secret "eA=="; };"#;
        assert!(parse(text).unwrap_err().0.contains("never closed"));
    }

    #[test]
    fn bad_key_files_say_why() {
        let cases = [
            ("", "no keys"),
            (
                r#"key "a" { algorithm hmac-md5; secret "eA=="; };"#,
                "is not hmac-sha256",
            ),
            (
                r#"key "a" { algorithm hmac-sha256; secret "!"; };"#,
                "not base64",
            ),
            (
                r#"key "a" { algorithm hmac-sha256; };"#,
                "needs an algorithm and a secret",
            ),
            (
                r#"key "a" { algorithm hmac-sha256; secret "eA==" };"#,
                "expected `;`",
            ),
            (r#"key "a" { colour blue; };"#, "unknown setting"),
            (
                r#"key "a" { algorithm hmac-sha256; secret "eA=="; }; key "A" { algorithm hmac-sha256; secret "eA=="; };"#,
                "defined twice",
            ),
            (
                r#"key "a" { algorithm hmac-sha256; secret "eA==; };"#,
                "unclosed quote",
            ),
        ];
        for (text, why) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.0.contains(why), "{text}: {error}");
        }
    }
}
