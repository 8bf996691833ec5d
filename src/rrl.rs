//! Response rate limiting: a token bucket per client network (/24 for IPv4, /56 for IPv6) and
//! response class (answers, NXDOMAIN, errors), as Knot and NSD keep them, in a fixed table
//! each worker owns, so that cnamed cannot be used to reflect a flood at a spoofed victim,
//! and an NXDOMAIN flood does not use up a network's real answers. Over the rate a response
//! is dropped, except every `slip`-th, which is sent truncated (TC=1, no records) so that a
//! real client behind that network retries over TCP, which is never limited.
//!
//! The table is allocated once; checking allocates nothing and takes no lock. The bucket is
//! picked by SipHash under a key of this process, so nobody can choose networks that share
//! one; and a network that takes over a bucket inherits its tokens, never a full bucket, so
//! that two networks sharing a bucket can only tighten each other's limit, never reset it.

use std::net::IpAddr;

use crate::siphash::siphash24;
use crate::wire::Rcode;

/// Buckets per worker: 64 Ki of 24 bytes, 1.5 MiB.
pub const BUCKETS: usize = 1 << 16;
/// A bucket holds this many seconds' worth of responses: the burst allowed after silence.
const BURST_SECONDS: u64 = 1;
/// Tokens are kept in thousandths so that rates below 1000/s refill every millisecond.
const MILLI: u64 = 1000;
const EMPTY: u64 = u64::MAX;

/// What a response is, for the limit: each class of a network has a bucket of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// NOERROR: an answer, or NODATA.
    Answer,
    NxDomain,
    /// REFUSED, FORMERR, NOTIMP, BADVERS and the rest.
    Error,
}

impl ResponseClass {
    pub fn of(rcode: Rcode) -> Self {
        match rcode {
            Rcode::NOERROR => Self::Answer,
            Rcode::NXDOMAIN => Self::NxDomain,
            _ => Self::Error,
        }
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Send,
    Drop,
    /// Send it truncated instead.
    Slip,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// The (network, class) the bucket counts for now.
    key: u64,
    /// Milliseconds on the limiter's clock when the bucket was last refilled.
    refilled_at: u64,
    /// Responses allowed now, in thousandths.
    tokens: u32,
    /// Responses limited since the bucket was taken, for the slip.
    limited: u32,
}

/// One worker's limiter.
pub struct RateLimiter {
    buckets: Box<[Bucket]>,
    /// The SipHash key that picks buckets: secret, so that colliding networks cannot be
    /// found offline.
    hash_key: [u8; 16],
    /// Thousandths of a token refilled per millisecond: the rate per second.
    rate: u64,
    /// Most thousandths a bucket holds.
    capacity: u64,
    slip: u32,
}

impl RateLimiter {
    /// `rate` responses per second per network, of which this worker enforces its share:
    /// the kernel spreads a client's queries over the workers by source port, so each of
    /// `workers` allows `rate / workers` (rounded up). `slip` 0 never slips, 1 slips every
    /// limited response. `hash_key` should be random and the same for every worker.
    pub fn new(rate: u32, slip: u32, workers: usize, hash_key: [u8; 16]) -> Self {
        let workers = workers.max(1) as u64;
        let share = u64::from(rate.max(1)).div_ceil(workers);
        Self {
            buckets: vec![
                Bucket {
                    key: EMPTY,
                    refilled_at: 0,
                    tokens: 0,
                    limited: 0,
                };
                BUCKETS
            ]
            .into_boxed_slice(),
            hash_key,
            rate: share,
            capacity: (share * MILLI * BURST_SECONDS).min(u64::from(u32::MAX)),
            slip,
        }
    }

    /// Counts one response of `class` to `client` at `now_ms` (any monotonic clock in
    /// milliseconds).
    pub fn check(&mut self, client: IpAddr, class: ResponseClass, now_ms: u64) -> Decision {
        let (key, slot) = self.slot(client, class);
        let capacity = self.capacity;
        let bucket = &mut self.buckets[slot];
        if bucket.key == EMPTY {
            *bucket = Bucket {
                key,
                refilled_at: now_ms,
                tokens: capacity as u32,
                limited: 0,
            };
        } else if bucket.key != key {
            // NOTE: taken over with the tokens it has: alternating with a network that
            // shares the bucket must not refill it.
            bucket.key = key;
            bucket.limited = 0;
        }
        let elapsed = now_ms.saturating_sub(bucket.refilled_at);
        let refill = elapsed.saturating_mul(self.rate);
        let tokens = u64::from(bucket.tokens)
            .saturating_add(refill)
            .min(capacity);
        bucket.refilled_at = now_ms;
        if tokens >= MILLI {
            bucket.tokens = (tokens - MILLI) as u32;
            return Decision::Send;
        }
        bucket.tokens = tokens as u32;
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip != 0 && bucket.limited % self.slip == 0 {
            Decision::Slip
        } else {
            Decision::Drop
        }
    }
}

impl RateLimiter {
    /// The bucket key of (`client`'s network, `class`) and the slot it hashes to.
    fn slot(&self, client: IpAddr, class: ResponseClass) -> (u64, usize) {
        let key = network(client) | (class as u64) << CLASS_SHIFT;
        let slot = siphash24(&self.hash_key, &key.to_le_bytes()) as usize % BUCKETS;
        (key, slot)
    }
}

/// Where the class goes in a bucket's key, above any network.
const CLASS_SHIFT: u32 = 61;

/// The network a client is limited as: its /24 or /56, tagged so the two families differ.
fn network(client: IpAddr) -> u64 {
    match client {
        IpAddr::V4(ip) => (1 << 60) | u64::from(u32::from(ip) >> 8),
        IpAddr::V6(ip) => (u128::from(ip) >> 72) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const KEY: [u8; 16] = [7; 16];

    fn limiter(rate: u32, slip: u32, workers: usize) -> RateLimiter {
        RateLimiter::new(rate, slip, workers, KEY)
    }

    fn count_class(
        limiter: &mut RateLimiter,
        client: IpAddr,
        class: ResponseClass,
        now_ms: u64,
        n: usize,
    ) -> [usize; 3] {
        let mut counts = [0; 3];
        for _ in 0..n {
            counts[limiter.check(client, class, now_ms) as usize] += 1;
        }
        counts
    }

    fn count(limiter: &mut RateLimiter, client: IpAddr, now_ms: u64, n: usize) -> [usize; 3] {
        count_class(limiter, client, ResponseClass::Answer, now_ms, n)
    }

    #[test]
    fn limits_a_network_and_slips_every_other() {
        let mut limiter = limiter(10, 2, 1);
        let [sent, dropped, slipped] = count(&mut limiter, ip("192.0.2.1"), 0, 30);
        assert_eq!((sent, dropped, slipped), (10, 10, 10));
        // The same /24 shares the bucket; the next /24 does not.
        assert_eq!(count(&mut limiter, ip("192.0.2.200"), 0, 1), [0, 1, 0]);
        assert_eq!(count(&mut limiter, ip("192.0.3.1"), 0, 10), [10, 0, 0]);
        // Refilled at the rate: 10/s is one per 100 ms.
        assert_eq!(count(&mut limiter, ip("192.0.2.1"), 250, 3)[0], 2);
        assert_eq!(
            count(&mut limiter, ip("192.0.2.1"), 5_000, 20)[0],
            10,
            "burst capped"
        );
    }

    #[test]
    fn ipv6_by_56_and_slip_settings() {
        let mut never = limiter(1, 0, 1);
        assert_eq!(count(&mut never, ip("2001:db8:0:ff::1"), 0, 5), [1, 4, 0]);
        assert_eq!(
            count(&mut never, ip("2001:db8:0:1::9"), 0, 1),
            [0, 1, 0],
            "same /56"
        );
        assert_eq!(count(&mut never, ip("2001:db8:0:100::1"), 0, 1), [1, 0, 0]);
        let mut always = limiter(1, 1, 1);
        assert_eq!(count(&mut always, ip("198.51.100.7"), 0, 5), [1, 0, 4]);
    }

    #[test]
    fn huge_rates_and_long_silences() {
        let mut limiter = limiter(u32::MAX, 2, 1);
        assert_eq!(count(&mut limiter, ip("192.0.2.1"), 0, 1000), [1000, 0, 0]);
        assert_eq!(
            count(&mut limiter, ip("192.0.2.1"), u64::MAX / 2, 10),
            [10, 0, 0]
        );
    }

    #[test]
    fn rate_shared_among_workers() {
        let mut limiter = limiter(10, 0, 4);
        assert_eq!(count(&mut limiter, ip("203.0.113.1"), 0, 10)[0], 3);
    }

    #[test]
    fn classes_have_buckets_of_their_own() {
        use ResponseClass::{Answer, Error, NxDomain};
        let mut limiter = limiter(10, 0, 1);
        let client = ip("192.0.2.1");
        // An NXDOMAIN flood from the network...
        assert_eq!(count_class(&mut limiter, client, NxDomain, 0, 100)[0], 10);
        // ...leaves its real answers and its errors their own rate.
        assert_eq!(count_class(&mut limiter, client, Answer, 0, 100)[0], 10);
        assert_eq!(count_class(&mut limiter, client, Error, 0, 100)[0], 10);
        assert_eq!(ResponseClass::of(Rcode::NOERROR), Answer);
        assert_eq!(ResponseClass::of(Rcode::NXDOMAIN), NxDomain);
        assert_eq!(ResponseClass::of(Rcode::REFUSED), Error);
    }

    /// Two networks that share a bucket, alternating, used to reset it on every query (each
    /// takeover refilled it): 400 queries at one instant got 400 answers.
    #[test]
    fn colliding_networks_cannot_reset_a_bucket() {
        let mut limiter = limiter(10, 0, 1);
        let class = ResponseClass::Answer;
        let mut seen = std::collections::HashMap::new();
        let (a, b) = (0..65_536u32)
            .map(|i| IpAddr::from((0x0A00_0000 | i << 8).to_be_bytes()))
            .find_map(|client| {
                let slot = limiter.slot(client, class).1;
                seen.insert(slot, client).map(|other| (other, client))
            })
            .expect("two /24s in one bucket");
        let mut sent = 0;
        for _ in 0..200 {
            for client in [a, b] {
                sent += usize::from(limiter.check(client, class, 0) == Decision::Send);
            }
        }
        assert_eq!(sent, 10, "the pair shares one bucket's worth");
        // Another key puts them in different buckets.
        let other = RateLimiter::new(10, 0, 1, [8; 16]);
        assert_ne!(other.slot(a, class).1, other.slot(b, class).1);
    }

    /// A thousand networks flooding at once: none gets more than its rate and its burst.
    #[test]
    fn many_networks_at_once() {
        let mut limiter = limiter(10, 0, 1);
        let mut answered = vec![0usize; 1000];
        for ms in (0..2_000).step_by(10) {
            for (n, answers) in answered.iter_mut().enumerate() {
                let client = IpAddr::from((0x0A00_0001 | (n as u32) << 8).to_be_bytes());
                let verdict = limiter.check(client, ResponseClass::Answer, ms);
                *answers += usize::from(verdict == Decision::Send);
            }
        }
        // Two seconds at 10/s plus a burst of 10: 30 at most each, whoever shares a bucket.
        assert!(
            answered.iter().all(|&n| n <= 30),
            "{:?}",
            answered.iter().max()
        );
        let alone = answered.iter().filter(|&&n| n >= 29).count();
        assert!(
            alone > 950,
            "most networks have a bucket of their own: {alone}"
        );
    }
}
