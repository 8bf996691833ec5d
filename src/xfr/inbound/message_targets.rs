//! The clusters of the CNAME targets met in one message of a whole-zone transfer, by the
//! target's RDATA bytes and the record's service: within one message the same bytes
//! (compression pointers included) mean the same name, so each target is read and looked
//! up once per message. Forgotten between messages, where pointers change meaning.

/// Slots for targets of at most 16 RDATA bytes: a cluster's label and a pointer to the
/// suffix, as cnamed writes them, or one pointer (a message of 64 KB holds a few dozen).
const SHORT_SLOTS: usize = 64;

/// Longest longer target (RDATA bytes) remembered.
const MAX_LONG: usize = 32;

/// Slots for longer targets.
const LONG_SLOTS: usize = 64;

/// The targets of one message and their clusters.
pub(super) struct MessageTargets {
    /// Most records find their cluster here with two loads and compares. Both tables are
    /// open-addressed; once full, new targets are not kept.
    short: [ShortTarget; SHORT_SLOTS],
    long: [Option<(LongTarget, u32)>; LONG_SLOTS],
}

impl Default for MessageTargets {
    fn default() -> Self {
        Self {
            short: [ShortTarget::default(); SHORT_SLOTS],
            long: [None; LONG_SLOTS],
        }
    }
}

impl MessageTargets {
    /// The cluster of target `rdata` of a record of service number `service`, when met
    /// before in this message.
    pub(super) fn cluster_of(&self, rdata: &[u8], service: usize) -> Option<u32> {
        if let Some(short) = ShortTarget::new(rdata, service) {
            let start = short.slot();
            for probe in 0..SHORT_SLOTS {
                let known = &self.short[(start + probe) % SHORT_SLOTS];
                if known.len == 0 {
                    return None;
                }
                if short.same_target(known) {
                    return Some(known.cluster);
                }
            }
            return None;
        }
        let key = LongTarget::new(rdata, service)?;
        let start = key.slot();
        for probe in 0..LONG_SLOTS {
            let (known, cluster) = self.long[(start + probe) % LONG_SLOTS].as_ref()?;
            if *known == key {
                return Some(*cluster);
            }
        }
        None
    }

    /// Remembers that target `rdata` of service number `service` is on cluster `cluster`.
    pub(super) fn remember(&mut self, rdata: &[u8], service: usize, cluster: u32) {
        if let Some(mut short) = ShortTarget::new(rdata, service) {
            short.cluster = cluster;
            let start = short.slot();
            let free = (0..SHORT_SLOTS)
                .map(|probe| (start + probe) % SHORT_SLOTS)
                .find(|&slot| self.short[slot].len == 0);
            if let Some(slot) = free {
                self.short[slot] = short;
            }
            return;
        }
        let Some(key) = LongTarget::new(rdata, service) else {
            return;
        };
        let start = key.slot();
        let free = (0..LONG_SLOTS)
            .map(|probe| (start + probe) % LONG_SLOTS)
            .find(|&slot| self.long[slot].is_none());
        if let Some(slot) = free {
            self.long[slot] = Some((key, cluster));
        }
    }
}

/// A target of 1 to 16 RDATA bytes: the first 8 (zero-padded) and the last 8 when there
/// are more than 8 (overlapping the first when fewer than 16), which with the length name
/// every byte. `len` 0: an empty slot.
#[derive(Clone, Copy, Default)]
struct ShortTarget {
    head: u64,
    tail: u64,
    len: u8,
    service: u8,
    cluster: u32,
}

impl ShortTarget {
    /// The key of `rdata` for `service`, with no cluster yet; `None` when too long.
    fn new(rdata: &[u8], service: usize) -> Option<Self> {
        let len = rdata.len();
        let (head, tail) = match len {
            8..=16 => (
                u64::from_le_bytes(rdata[..8].try_into().ok()?),
                u64::from_le_bytes(rdata[len - 8..].try_into().ok()?),
            ),
            1..=7 => {
                let mut bytes = [0u8; 8];
                bytes[..len].copy_from_slice(rdata);
                (u64::from_le_bytes(bytes), 0)
            }
            _ => return None,
        };
        Some(Self {
            head,
            tail,
            len: len as u8,
            service: u8::try_from(service).ok()?,
            cluster: 0,
        })
    }

    fn slot(&self) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ u64::from(self.service))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 58) as usize % SHORT_SLOTS
    }

    fn same_target(&self, other: &Self) -> bool {
        (self.head, self.tail, self.len, self.service)
            == (other.head, other.tail, other.len, other.service)
    }
}

/// A target of 17 to 32 RDATA bytes, zero-padded, with its length and service.
#[derive(Clone, Copy, PartialEq, Eq)]
struct LongTarget {
    rdata: [u128; 2],
    len: u8,
    service: u8,
}

impl LongTarget {
    fn new(rdata: &[u8], service: usize) -> Option<Self> {
        let mut bytes = [0u8; MAX_LONG];
        bytes.get_mut(..rdata.len())?.copy_from_slice(rdata);
        let (low, high) = bytes.split_at(16);
        Some(Self {
            rdata: [
                u128::from_le_bytes(low.try_into().ok()?),
                u128::from_le_bytes(high.try_into().ok()?),
            ],
            len: rdata.len() as u8,
            service: u8::try_from(service).ok()?,
        })
    }

    fn slot(&self) -> usize {
        let folded = self.rdata[0] ^ self.rdata[1].rotate_left(7);
        let mixed = (folded as u64 ^ (folded >> 64) as u64 ^ u64::from(self.service))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> 58) as usize % LONG_SLOTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to the longest kept, every byte position changed, every service.
    #[test]
    fn a_target_differing_anywhere_is_another() {
        for len in 1..=MAX_LONG {
            let rdata: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37) | 1).collect();
            let mut targets = MessageTargets::default();
            assert_eq!(targets.cluster_of(&rdata, 0), None);
            targets.remember(&rdata, 0, 7);
            assert_eq!(targets.cluster_of(&rdata, 0), Some(7), "length {len}");
            assert_eq!(targets.cluster_of(&rdata, 1), None, "length {len}: service");
            assert_eq!(
                targets.cluster_of(&rdata[..len - 1], 0),
                None,
                "length {len}: shorter"
            );
            for at in 0..len {
                let mut other = rdata.clone();
                other[at] ^= 0x80;
                assert_eq!(
                    targets.cluster_of(&other, 0),
                    None,
                    "length {len}, byte {at}"
                );
            }
        }
    }

    #[test]
    fn longer_targets_are_not_kept() {
        let rdata = [5u8; MAX_LONG + 1];
        let mut targets = MessageTargets::default();
        targets.remember(&rdata, 0, 3);
        assert_eq!(targets.cluster_of(&rdata, 0), None);
    }

    #[test]
    fn many_targets_keep_their_clusters() {
        let mut targets = MessageTargets::default();
        let names: Vec<Vec<u8>> = (0..40u32)
            .map(|i| format!("\x06ws-c{i:02}\u{c0}\x0c").into_bytes())
            .chain((0..40u32).map(|i| format!("long-cluster-name-{i:02}").into_bytes()))
            .collect();
        for (i, name) in names.iter().enumerate() {
            targets.remember(name, 2, i as u32);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(targets.cluster_of(name, 2), Some(i as u32));
        }
        // Past the slots, new targets are read each time; the ones kept stay right.
        for i in 40..100u32 {
            targets.remember(format!("\x07ws-c{i:03}\x00").as_bytes(), 2, i);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(targets.cluster_of(name, 2), Some(i as u32));
        }
    }
}
