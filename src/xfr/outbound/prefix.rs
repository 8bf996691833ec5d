//! The address prefixes of `--xfr-allow`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address prefix of `--xfr-allow`: `192.0.2.0/24`, `::1/128`, or an address alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Whether `ip` is inside this prefix (an IPv4 address never matches an IPv6 prefix).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(net) & mask_v4(self.len) == u32::from(ip) & mask_v4(self.len)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(net) & mask_v6(self.len) == u128::from(ip) & mask_v6(self.len)
            }
            _ => false,
        }
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or ADDR/LEN prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => match len.parse::<u8>() {
                Ok(len) if len <= max => len,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        // Host bits set (192.0.2.1/24) usually mean a typo in the length: refuse it.
        let host_bits = match addr {
            IpAddr::V4(v4) => u32::from(v4) & !mask_v4(len) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !mask_v6(len) != 0,
        };
        if host_bits {
            return Err(format!("{text:?} has host bits set after /{len}"));
        }
        Ok(Self { addr, len })
    }
}

/// The network bits of an IPv4 prefix of `len` bits.
fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// The network bits of an IPv6 prefix of `len` bits.
fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let net: Prefix = "192.0.2.0/24".parse().unwrap();
        assert!(net.contains("192.0.2.200".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Prefix = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        let v6: Prefix = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        for bad in [
            "192.0.2.1/24",
            "10.0.0.0/33",
            "::/129",
            "host",
            "1.2.3.4/x",
            "",
        ] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
    }
}
