//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018): every server that
//! holds the same secret issues and accepts the same cookies, so a client keeps its cookie
//! across an anycast fleet.
//!
//! A server cookie is 16 bytes: version 1, three reserved bytes, a 32-bit timestamp and
//! SipHash-2-4(client cookie | version | reserved | timestamp | client address) under a
//! 16-byte secret. Pure: time and addresses come from the caller.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use crate::siphash::siphash24;

/// Bytes of the client cookie.
pub const CLIENT_COOKIE: usize = 8;
/// Bytes of the server cookies we issue.
pub const SERVER_COOKIE: usize = 16;
/// Bytes of a COOKIE option carrying both.
pub const FULL_COOKIE: usize = CLIENT_COOKIE + SERVER_COOKIE;
/// Shortest and longest server cookie RFC 7873 §4.2 allows.
const MIN_SERVER_COOKIE: usize = 8;
const MAX_SERVER_COOKIE: usize = 32;
const VERSION: u8 = 1;
/// Bytes of a secret (RFC 9018 §4.4: a 128-bit SipHash key).
const SECRET: usize = 16;

/// The server cookie's layout (RFC 9018 §4): a header of version, three reserved bytes and a
/// timestamp, then the hash.
mod field {
    use core::ops::Range;
    pub(super) const HEADER: usize = 8;
    pub(super) const VERSION: usize = 0;
    pub(super) const TIMESTAMP: Range<usize> = 4..HEADER;
    /// The hash input: client cookie, header, then the client's address.
    pub(super) const INPUT_ADDRESS: usize = super::CLIENT_COOKIE + HEADER;
}
/// Longest hash input: with an IPv6 address.
const MAX_HASH_INPUT: usize = field::INPUT_ADDRESS + 16;
/// RFC 9018 §4.3: a cookie older than an hour, or more than five minutes ahead, is stale.
const MAX_AGE: u32 = 3600;
const MAX_AHEAD: u32 = 300;

/// A 128-bit server secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret([u8; SECRET]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)") // never logged
    }
}

/// The secrets in use: `current` makes every cookie; `previous` (or the next, during a
/// rollover) is still accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secrets {
    current: Secret,
    other: Option<Secret>,
}

/// A bad secret file: says which line and why.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretError(pub String);

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SecretError {}

impl Secrets {
    pub fn new(current: [u8; SECRET], other: Option<[u8; SECRET]>) -> Self {
        Self {
            current: Secret(current),
            other: other.map(Secret),
        }
    }

    /// Parses a secret file: one or two secrets of 32 hex digits, one per line; '#' starts a
    /// comment, to the end of its line, and blank lines are skipped. The first makes cookies,
    /// both are accepted.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let mut secrets = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let secret = parse_hex(line).ok_or_else(|| {
                SecretError(format!(
                    "line {}: a secret is 32 hex digits (16 bytes)",
                    number + 1
                ))
            })?;
            secrets.push(secret);
        }
        match secrets[..] {
            [current] => Ok(Self::new(current, None)),
            [current, other] => Ok(Self::new(current, Some(other))),
            [] => Err(SecretError("no secret in the file".into())),
            _ => Err(SecretError(
                "more than two secrets (one to make cookies, one more to accept)".into(),
            )),
        }
    }

    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SecretError(format!("{}: {error}", path.display())))?;
        Self::parse(&text).map_err(|error| SecretError(format!("{}: {error}", path.display())))
    }

    /// A secret of this process alone, for a server that is not part of a fleet.
    pub fn random() -> std::io::Result<Self> {
        let mut secret = [0; SECRET];
        crate::sys::random_bytes(&mut secret)?;
        Ok(Self::new(secret, None))
    }

    /// Reads the COOKIE option of a query from `client` at Unix time `now`.
    pub fn check(&self, option: &[u8], client: IpAddr, now: u32) -> Check {
        let Some(client_cookie) = option.get(..CLIENT_COOKIE) else {
            return Check::Malformed;
        };
        let server_cookie = &option[CLIENT_COOKIE..];
        match server_cookie.len() {
            0 => return Check::ClientOnly,
            // RFC 7873 §5.2.2: a server cookie is 8 to 32 bytes.
            MIN_SERVER_COOKIE..=MAX_SERVER_COOKIE => {}
            _ => return Check::Malformed,
        }
        let header: [u8; field::HEADER] = server_cookie[..field::HEADER]
            .try_into()
            .unwrap_or_default();
        let valid = server_cookie.len() == SERVER_COOKIE
            && header[field::VERSION] == VERSION
            && fresh(read_u32(&header[field::TIMESTAMP]), now)
            && std::iter::once(&self.current)
                .chain(&self.other)
                .any(|secret| {
                    hash(secret, client_cookie, header, client) == server_cookie[field::HEADER..]
                });
        if valid {
            Check::Valid
        } else {
            Check::BadServerCookie
        }
    }

    /// The COOKIE option data to answer with: the client's cookie and a fresh server cookie.
    pub fn answer(&self, client_cookie: &[u8], client: IpAddr, now: u32) -> [u8; FULL_COOKIE] {
        let mut cookie = [0; FULL_COOKIE];
        cookie[..CLIENT_COOKIE].copy_from_slice(&client_cookie[..CLIENT_COOKIE]);
        let mut header = [0; field::HEADER];
        header[field::VERSION] = VERSION;
        header[field::TIMESTAMP].copy_from_slice(&now.to_be_bytes());
        cookie[CLIENT_COOKIE..CLIENT_COOKIE + field::HEADER].copy_from_slice(&header);
        let hash = hash(
            &self.current,
            &client_cookie[..CLIENT_COOKIE],
            header,
            client,
        );
        cookie[CLIENT_COOKIE + field::HEADER..].copy_from_slice(&hash);
        cookie
    }
}

/// What a query's COOKIE option is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A length RFC 7873 §5.2.2 answers with FORMERR.
    Malformed,
    /// A client cookie alone: the client learns our server cookie from the answer.
    ClientOnly,
    /// A server cookie we did not make, made for another address, or stale: treated as a
    /// client cookie alone (RFC 7873 §5.2.4, never BADCOOKIE: cookies are not required here).
    BadServerCookie,
    /// A server cookie we made for this client in the last hour.
    Valid,
}

impl Check {
    /// Metric label values, in declaration order.
    pub const NAMES: [&'static str; 4] = ["malformed", "client_only", "bad_server_cookie", "valid"];
}

/// Whether a cookie stamped at `stamp` is usable at `now`, in serial number arithmetic
/// (RFC 1982) so that the wrap of the 32-bit timestamp in 2106 changes nothing.
fn fresh(stamp: u32, now: u32) -> bool {
    let age = now.wrapping_sub(stamp);
    age <= MAX_AGE || stamp.wrapping_sub(now) <= MAX_AHEAD
}

fn hash(
    secret: &Secret,
    client_cookie: &[u8],
    header: [u8; field::HEADER],
    client: IpAddr,
) -> [u8; 8] {
    let mut input = [0u8; MAX_HASH_INPUT];
    input[..CLIENT_COOKIE].copy_from_slice(client_cookie);
    input[CLIENT_COOKIE..field::INPUT_ADDRESS].copy_from_slice(&header);
    let address = &mut input[field::INPUT_ADDRESS..];
    let len = match client {
        IpAddr::V4(ip) => {
            address[..4].copy_from_slice(&ip.octets());
            field::INPUT_ADDRESS + 4
        }
        IpAddr::V6(ip) => {
            address.copy_from_slice(&ip.octets());
            MAX_HASH_INPUT
        }
    };
    siphash24(&secret.0, &input[..len]).to_le_bytes()
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().unwrap_or_default())
}

fn parse_hex(text: &str) -> Option<[u8; SECRET]> {
    let digits = text.as_bytes();
    // from_str_radix alone would take a sign: "+0" is not two hex digits.
    if digits.len() != 2 * SECRET || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0; SECRET];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn secrets(current: &str, other: Option<&str>) -> Secrets {
        Secrets::new(
            parse_hex(current).unwrap(),
            other.map(|o| parse_hex(o).unwrap()),
        )
    }

    /// RFC 9018 Appendix A.
    #[test]
    fn interoperable_cookie_vectors() {
        let a = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        let cases = [
            (
                &a,
                "2464c4abcf10c957",
                "198.51.100.100",
                1_559_731_985,
                "010000005cf79f111f8130c3eee29480",
            ),
            (
                &a,
                "2464c4abcf10c957",
                "198.51.100.100",
                1_559_734_385,
                "010000005cf7a871d4a564a1442aca77",
            ),
            (
                &a,
                "fc93fc62807ddb86",
                "203.0.113.203",
                1_559_734_700,
                "010000005cf7a9acf73a7810aca2381e",
            ),
        ];
        let rolled = secrets("445536bcd2513298075a5d379663c962", None);
        let ipv6 = (
            &rolled,
            "22681ab97d52c298",
            "2001:db8:220:1:59de:d0f4:8769:82b8",
            1_559_741_961,
            "010000005cf7c609a6bb79d16625507a",
        );
        for (secrets, client, ip, now, server) in cases.into_iter().chain([ipv6]) {
            let ip: IpAddr = ip.parse().unwrap();
            let cookie = secrets.answer(&hex(client), ip, now);
            assert_eq!(cookie[..], [hex(client), hex(server)].concat()[..], "{ip}");
            assert_eq!(secrets.check(&cookie, ip, now + 60), Check::Valid);
        }
    }

    #[test]
    fn rollover_and_reserved_bytes() {
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        // A.4: made with the old secret at 1559741817, presented at 1559741961.
        let old_cookie = hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let now = 1_559_741_961;
        let old = "dd3bdf9344b678b185a6f5cb60fca715";
        let new = "445536bcd2513298075a5d379663c962";
        assert_eq!(
            secrets(new, None).check(&old_cookie, ip, now),
            Check::BadServerCookie
        );
        assert_eq!(
            secrets(new, Some(old)).check(&old_cookie, ip, now),
            Check::Valid
        );
        assert_eq!(
            secrets(old, Some(new)).check(&old_cookie, ip, now),
            Check::Valid
        );
        // A.3: the client's cookie carries reserved bytes the hash covers as sent. It was
        // made at 0x5cf78f71; the appendix presents it 1h52m later, when it is stale.
        let a3 = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let a = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        assert_eq!(
            a.check(&a3, "203.0.113.203".parse().unwrap(), 1_559_734_700),
            Check::BadServerCookie,
            "stale"
        );
        let at = 0x5cf7_8f71 + 60;
        assert_eq!(
            a.check(&a3, "203.0.113.203".parse().unwrap(), at),
            Check::Valid
        );
        assert_eq!(
            a.check(&a3, "203.0.113.204".parse().unwrap(), at),
            Check::BadServerCookie,
            "another address"
        );
    }

    #[test]
    fn lengths_and_age() {
        let s = secrets("e5e973e5a6b2a43f48e7dc849e37bfcf", None);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for len in [0, 7, 9, 15, 41] {
            assert_eq!(s.check(&vec![1; len], ip, 0), Check::Malformed, "{len}");
        }
        assert_eq!(s.check(&[1; 8], ip, 0), Check::ClientOnly);
        for len in [16, 23, 25, 40] {
            assert_eq!(
                s.check(&vec![1; len], ip, 0),
                Check::BadServerCookie,
                "{len}"
            );
        }
        let made_at = 1_000_000;
        let cookie = s.answer(&[7; 8], ip, made_at);
        for (now, valid) in [
            (made_at + 3600, true),
            (made_at + 3601, false),
            (made_at - 300, true),
            (made_at - 301, false),
        ] {
            let expected = if valid {
                Check::Valid
            } else {
                Check::BadServerCookie
            };
            assert_eq!(s.check(&cookie, ip, now), expected, "at {now}");
        }
        // Across the wrap of the 32-bit timestamp.
        let cookie = s.answer(&[7; 8], ip, u32::MAX - 10);
        assert_eq!(s.check(&cookie, ip, 100), Check::Valid);
    }

    #[test]
    fn secret_files() {
        let one = "e5e973e5a6b2a43f48e7dc849e37bfcf";
        let two = "445536bcd2513298075a5d379663c962";
        assert!(Secrets::parse(&format!("# fleet\n{one}\n\n")).is_ok());
        assert!(Secrets::parse(&format!("{one}\n{two}\n")).is_ok());
        assert_eq!(
            Secrets::parse(&format!("{one}  # new, 2026-11-27\n{two} # old\n")),
            Secrets::parse(&format!("{one}\n{two}\n")),
            "a comment may end a line"
        );
        for (text, error) in [
            ("", "no secret"),
            ("e5e9", "line 1"),
            (&format!("{one}\n{one}x\n") as &str, "line 2"),
            (&format!("{one}\n{two}\n{one}\n"), "more than two"),
            (&"zz".repeat(16), "line 1"),
            (&"+0".repeat(16), "line 1"),
            (&"-f".repeat(16), "line 1"),
        ] {
            let got = Secrets::parse(text).unwrap_err().to_string();
            assert!(got.contains(error), "{text:?}: {got}");
        }
    }
}
