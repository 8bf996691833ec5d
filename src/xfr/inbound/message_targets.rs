//! The clusters of the CNAME targets met in one message of a whole-zone transfer, by the
//! target's RDATA bytes and the record's service: within one message the same bytes
//! (compression pointers included) mean the same name, so each target is read and looked
//! up once per message. Forgotten between messages, where pointers change meaning.

/// Slots for the targets of one message (a message of 64 KB holds a few dozen).
const SLOTS: usize = 128;

/// Longest target (RDATA bytes) remembered.
const MAX_LONG: usize = 32;

/// The targets of one message and their clusters, open-addressed; once full, new targets
/// are not kept.
pub(super) struct MessageTargets {
    slots: [Option<(TargetKey, u32)>; SLOTS],
}

impl Default for MessageTargets {
    fn default() -> Self {
        Self {
            slots: [None; SLOTS],
        }
    }
}

impl MessageTargets {
    /// The cluster of target `rdata` of a record of service number `service`, when met
    /// before in this message.
    pub(super) fn cluster_of(&self, rdata: &[u8], service: usize) -> Option<u32> {
        let key = TargetKey::new(rdata, service)?;
        let start = key.slot();
        for probe in 0..SLOTS {
            let (known, cluster) = self.slots[(start + probe) % SLOTS].as_ref()?;
            if *known == key {
                return Some(*cluster);
            }
        }
        None
    }

    /// Remembers that target `rdata` of service number `service` is on cluster `cluster`.
    pub(super) fn remember(&mut self, rdata: &[u8], service: usize, cluster: u32) {
        let Some(key) = TargetKey::new(rdata, service) else {
            return;
        };
        let start = key.slot();
        let free = (0..SLOTS)
            .map(|probe| (start + probe) % SLOTS)
            .find(|&slot| self.slots[slot].is_none());
        if let Some(slot) = free {
            self.slots[slot] = Some((key, cluster));
        }
    }
}

/// A target of 1 to 32 RDATA bytes as four words read straight from it, which with the
/// length name every byte: up to 16, the first 8 (zero-padded) and the last 8
/// (overlapping); up to 32, the first 16 and the last 16. No copy for the common target (a
/// cluster's label and a pointer to the suffix, as cnamed writes them: 9 to 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
struct TargetKey {
    words: [u64; 4],
    len: u8,
    service: u8,
}

impl TargetKey {
    /// The key of `rdata` for `service`; `None` when empty or too long.
    fn new(rdata: &[u8], service: usize) -> Option<Self> {
        let len = rdata.len();
        let word = |at: usize| rdata[at..at + 8].try_into().map(u64::from_le_bytes);
        let words = match len {
            1..=7 => {
                let mut bytes = [0u8; 8];
                bytes[..len].copy_from_slice(rdata);
                [u64::from_le_bytes(bytes), 0, 0, 0]
            }
            8..=16 => [word(0).ok()?, word(len - 8).ok()?, 0, 0],
            17..=MAX_LONG => [
                word(0).ok()?,
                word(8).ok()?,
                word(len - 16).ok()?,
                word(len - 8).ok()?,
            ],
            _ => return None,
        };
        Some(Self {
            words,
            len: len as u8,
            service: u8::try_from(service).ok()?,
        })
    }

    fn slot(&self) -> usize {
        let [a, b, c, d] = self.words;
        let mixed = (a ^ b.rotate_left(29) ^ c.rotate_left(13) ^ d.rotate_left(43))
            ^ u64::from(self.service);
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SLOTS
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
