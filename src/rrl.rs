//! Response rate limiting: a token bucket per client network (/24 for IPv4, /56 for IPv6),
//! in a fixed table each worker owns, so that cnamed cannot be used to reflect a flood at a
//! spoofed victim. Over the rate a response is dropped, except every `slip`-th, which is
//! sent truncated (TC=1, no records) so that a real client behind that network retries over
//! TCP, which is never limited.
//!
//! The table is allocated once; checking allocates nothing and takes no lock. Two networks
//! hashing to the same bucket share it until one of them takes it over: a collision can
//! only make the limit looser for a moment, never drop a client that is under the rate.

use std::net::IpAddr;

/// Buckets per worker: 64 Ki of 24 bytes, 1.5 MiB.
pub const BUCKETS: usize = 1 << 16;
/// A bucket holds this many seconds' worth of responses: the burst allowed after silence.
const BURST_SECONDS: u64 = 1;
/// Tokens are kept in thousandths so that rates below 1000/s refill every millisecond.
const MILLI: u64 = 1000;
const EMPTY: u64 = u64::MAX;

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    /// Send it truncated instead.
    Slip,
}

#[derive(Clone, Copy)]
struct Bucket {
    network: u64,
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
    /// limited response.
    pub fn new(rate: u32, slip: u32, workers: usize) -> Self {
        let workers = workers.max(1) as u64;
        let share = u64::from(rate.max(1)).div_ceil(workers);
        Self {
            buckets: vec![
                Bucket {
                    network: EMPTY,
                    refilled_at: 0,
                    tokens: 0,
                    limited: 0,
                };
                BUCKETS
            ]
            .into_boxed_slice(),
            rate: share,
            capacity: (share * MILLI * BURST_SECONDS).min(u64::from(u32::MAX)),
            slip,
        }
    }

    /// Counts one response to `client` at `now_ms` (any monotonic clock in milliseconds).
    pub fn check(&mut self, client: IpAddr, now_ms: u64) -> Verdict {
        let network = network(client);
        let slot = (network.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 48) as usize % BUCKETS;
        let capacity = self.capacity;
        let bucket = &mut self.buckets[slot];
        if bucket.network != network {
            *bucket = Bucket {
                network,
                refilled_at: now_ms,
                tokens: capacity as u32,
                limited: 0,
            };
        }
        let elapsed = now_ms.saturating_sub(bucket.refilled_at);
        let refill = elapsed.saturating_mul(self.rate);
        let tokens = u64::from(bucket.tokens)
            .saturating_add(refill)
            .min(capacity);
        bucket.refilled_at = now_ms;
        if tokens >= MILLI {
            bucket.tokens = (tokens - MILLI) as u32;
            return Verdict::Send;
        }
        bucket.tokens = tokens as u32;
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.slip != 0 && bucket.limited % self.slip == 0 {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }
}

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

    fn count(limiter: &mut RateLimiter, client: IpAddr, now_ms: u64, n: usize) -> [usize; 3] {
        let mut counts = [0; 3];
        for _ in 0..n {
            counts[limiter.check(client, now_ms) as usize] += 1;
        }
        counts
    }

    #[test]
    fn limits_a_network_and_slips_every_other() {
        let mut limiter = RateLimiter::new(10, 2, 1);
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
        let mut never = RateLimiter::new(1, 0, 1);
        assert_eq!(count(&mut never, ip("2001:db8:0:ff::1"), 0, 5), [1, 4, 0]);
        assert_eq!(
            count(&mut never, ip("2001:db8:0:1::9"), 0, 1),
            [0, 1, 0],
            "same /56"
        );
        assert_eq!(count(&mut never, ip("2001:db8:0:100::1"), 0, 1), [1, 0, 0]);
        let mut always = RateLimiter::new(1, 1, 1);
        assert_eq!(count(&mut always, ip("198.51.100.7"), 0, 5), [1, 0, 4]);
    }

    #[test]
    fn huge_rates_and_long_silences() {
        let mut limiter = RateLimiter::new(u32::MAX, 2, 1);
        assert_eq!(count(&mut limiter, ip("192.0.2.1"), 0, 1000), [1000, 0, 0]);
        assert_eq!(
            count(&mut limiter, ip("192.0.2.1"), u64::MAX / 2, 10),
            [10, 0, 0]
        );
    }

    #[test]
    fn rate_shared_among_workers() {
        let mut limiter = RateLimiter::new(10, 0, 4);
        assert_eq!(count(&mut limiter, ip("203.0.113.1"), 0, 10)[0], 3);
    }
}
