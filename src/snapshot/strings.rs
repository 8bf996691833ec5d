//! The lookup table for string app IDs (`my-app`, `happy-fox-1234`, `0123`): every ID's
//! lower-case bytes in one arena, each entry `[length][bytes][cluster, 4 bytes LE]`, and an
//! open-addressing table of 8-byte slots (arena offset, 32 hash bits) probed linearly.
//!
//! A general hash map cost about 98 bytes and 1.4 µs per app to build (a boxed key each, a
//! table grown by rehashing); here an app costs its bytes plus 5 in the arena and 8 / 0.6 in
//! slots, and building is appending to the arena, one sort of (home slot, hash) pairs and
//! writing the slots in order. A lookup compares 32 hash bits per probed slot and reads the
//! arena once, where the cluster sits next to the bytes it just compared.

use super::probe::{distance, home32, next, slot_count, sort_by_key, spread_in_place};

/// Marks an empty slot: no entry starts at the arena's last possible offset.
const EMPTY: u32 = u32::MAX;
/// Bytes of an entry besides the ID: its length, and the cluster after it.
const ENTRY_OVERHEAD: usize = 1 + 4;

#[derive(Clone, Copy)]
struct Slot {
    offset: u32,
    /// The top 32 bits of the key's hash, which also give its home slot: building sorts by
    /// them and moving an entry needs no hashing. Entries near each other have other tags
    /// but for about one in 2^32 / slots.
    tag: u32,
}

const EMPTY_SLOT: Slot = Slot {
    offset: EMPTY,
    tag: 0,
};

/// Why a table was not built.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BuildError {
    /// This ID appears twice.
    Duplicate(Vec<u8>),
    /// The IDs' bytes passed the 4 GB an offset can address.
    TooLarge,
    OutOfMemory,
}

/// The 32-bit tag of an ID: FxHash, a finalizer so that its top bits are well mixed, and
/// those.
fn tag(id: &[u8]) -> u32 {
    let mut h = fxhash::hash64(id);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    (h >> 32) as u32
}

/// Entries being collected, before the table is built: each already a slot of the table,
/// holding the top 32 bits of its hash until the build sorts by them.
#[derive(Default)]
pub(crate) struct StringsBuilder {
    arena: Vec<u8>,
    slots: Vec<Slot>,
}

impl StringsBuilder {
    /// Adds `id` (already lower case, at most 255 bytes) on `cluster`; duplicates are found
    /// when building.
    pub(crate) fn push(&mut self, id: &[u8], cluster: u32) -> Result<(), BuildError> {
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&offset| offset < EMPTY)
            .ok_or(BuildError::TooLarge)?;
        let len = u8::try_from(id.len()).map_err(|_| BuildError::TooLarge)?;
        self.arena
            .try_reserve(id.len() + ENTRY_OVERHEAD)
            .map_err(|_| BuildError::OutOfMemory)?;
        self.slots
            .try_reserve(1)
            .map_err(|_| BuildError::OutOfMemory)?;
        self.arena.push(len);
        self.arena.extend_from_slice(id);
        self.arena.extend_from_slice(&cluster.to_le_bytes());
        self.slots.push(Slot {
            offset,
            tag: tag(id),
        });
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Builds the table in the entries' own allocation (see `probe::spread_in_place`),
    /// sorted by tag: its home order, where duplicates sit in the rare runs of equal tags.
    pub(crate) fn build(self) -> Result<StringTable, BuildError> {
        let Self {
            mut arena,
            mut slots,
        } = self;
        let len = slots.len();
        let count = slot_count(len);
        sort_by_key(&mut slots, |slot| slot.tag);
        for run in slots.chunk_by(|a, b| a.tag == b.tag) {
            for (i, a) in run.iter().enumerate() {
                let id = entry_id(&arena, a.offset);
                if run[i + 1..]
                    .iter()
                    .any(|b| entry_id(&arena, b.offset) == id)
                {
                    return Err(BuildError::Duplicate(id.to_vec()));
                }
            }
        }
        let wrapped = spread_in_place(&mut slots, count, EMPTY_SLOT, |slot| {
            home32(slot.tag, count)
        })
        .ok_or(BuildError::OutOfMemory)?;
        let placed = len - wrapped.len();
        arena.shrink_to_fit();
        let mut table = StringTable {
            arena,
            slots: slots.into_boxed_slice(),
            len: placed,
            garbage: 0,
        };
        for slot in wrapped {
            table.place(slot);
        }
        Ok(table)
    }
}

/// The ID bytes of the entry at `offset`.
fn entry_id(arena: &[u8], offset: u32) -> &[u8] {
    let at = offset as usize;
    let len = usize::from(arena[at]);
    &arena[at + 1..at + 1 + len]
}

fn entry_cluster(arena: &[u8], offset: u32) -> u32 {
    let at = offset as usize + 1 + usize::from(arena[offset as usize]);
    u32::from_le_bytes([arena[at], arena[at + 1], arena[at + 2], arena[at + 3]])
}

/// An immutable map from lower-case string app ID to cluster index.
#[derive(Clone)]
pub(crate) struct StringTable {
    arena: Vec<u8>,
    slots: Box<[Slot]>,
    len: usize,
    /// Arena bytes of entries removed by changes (left in place until the next build).
    garbage: usize,
}

impl std::fmt::Debug for StringTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StringTable")
            .field("len", &self.len)
            .field("arena", &self.arena.len())
            .finish_non_exhaustive()
    }
}

impl StringTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The cluster of `id` (lower case).
    pub(crate) fn get(&self, id: &[u8]) -> Option<u32> {
        self.find(id, tag(id)).map(|index| {
            let offset = self.slots[index].offset;
            entry_cluster(&self.arena, offset)
        })
    }

    /// The slot holding `id`, whose tag is `tag`.
    fn find(&self, id: &[u8], tag: u32) -> Option<usize> {
        let count = self.slots.len();
        let mut index = home32(tag, count);
        // Terminates: the load factor keeps at least 40% of the slots empty.
        loop {
            let slot = self.slots[index];
            if slot.offset == EMPTY {
                return None;
            }
            if slot.tag == tag && entry_id(&self.arena, slot.offset) == id {
                return Some(index);
            }
            index = next(index, count);
        }
    }

    /// Every (ID, cluster), in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        self.slots
            .iter()
            .filter(|slot| slot.offset != EMPTY)
            .map(|slot| {
                (
                    entry_id(&self.arena, slot.offset),
                    entry_cluster(&self.arena, slot.offset),
                )
            })
    }

    /// Heap bytes: the arena and the slots.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.slots.len() * size_of::<Slot>()
    }

    /// A copy with `changes` applied in order: `(id, Some(cluster))` sets an ID (lower
    /// case), `(id, None)` removes it. The arena and slots are copied and changed in place:
    /// new IDs are appended, removed ones left as garbage (a rebuild, when the load factor
    /// or the garbage would pass their limits, drops it).
    pub(crate) fn with_changes(
        &self,
        changes: &[(&[u8], Option<u32>)],
    ) -> Result<Self, BuildError> {
        let inserted = changes.iter().filter(|(_, c)| c.is_some()).count();
        let added_bytes: usize = changes
            .iter()
            .map(|(id, _)| id.len() + ENTRY_OVERHEAD)
            .sum();
        let too_full = slot_count(self.len + inserted) > self.slots.len();
        let too_dirty = self.garbage + added_bytes > self.arena.len() / 4 + 4096;
        if too_full || too_dirty {
            let mut current: fxhash::FxHashMap<&[u8], u32> = self.iter().collect();
            for &(id, cluster) in changes {
                match cluster {
                    Some(cluster) => current.insert(id, cluster),
                    None => current.remove(id),
                };
            }
            let mut builder = StringsBuilder::default();
            for (id, cluster) in current {
                builder.push(id, cluster)?;
            }
            return builder.build();
        }
        let mut table = self.try_clone()?;
        table
            .arena
            .try_reserve(added_bytes)
            .map_err(|_| BuildError::OutOfMemory)?;
        for &(id, cluster) in changes {
            match cluster {
                Some(cluster) => table.set(id, cluster)?,
                None => table.remove(id),
            }
        }
        Ok(table)
    }

    fn try_clone(&self) -> Result<Self, BuildError> {
        let mut arena = Vec::new();
        arena
            .try_reserve_exact(self.arena.len())
            .map_err(|_| BuildError::OutOfMemory)?;
        arena.extend_from_slice(&self.arena);
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(self.slots.len())
            .map_err(|_| BuildError::OutOfMemory)?;
        slots.extend_from_slice(&self.slots);
        Ok(Self {
            arena,
            slots: slots.into_boxed_slice(),
            len: self.len,
            garbage: self.garbage,
        })
    }

    /// Sets `id` on `cluster`: an existing entry's cluster is rewritten in place, a new one
    /// appended. The caller has checked there is room below the load factor.
    fn set(&mut self, id: &[u8], cluster: u32) -> Result<(), BuildError> {
        let tag = tag(id);
        if let Some(index) = self.find(id, tag) {
            let offset = self.slots[index].offset as usize;
            let at = offset + 1 + id.len();
            self.arena[at..at + 4].copy_from_slice(&cluster.to_le_bytes());
            return Ok(());
        }
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&offset| offset < EMPTY)
            .ok_or(BuildError::TooLarge)?;
        self.arena
            .push(u8::try_from(id.len()).map_err(|_| BuildError::TooLarge)?);
        self.arena.extend_from_slice(id);
        self.arena.extend_from_slice(&cluster.to_le_bytes());
        self.place(Slot { offset, tag });
        Ok(())
    }

    /// Puts a new entry's slot in the first free slot from its home.
    fn place(&mut self, slot: Slot) {
        let count = self.slots.len();
        let mut index = home32(slot.tag, count);
        while self.slots[index].offset != EMPTY {
            index = next(index, count);
        }
        self.slots[index] = slot;
        self.len += 1;
    }

    /// Removes `id` by shifting back the entries of its probe run that may move.
    fn remove(&mut self, id: &[u8]) {
        let Some(mut hole) = self.find(id, tag(id)) else {
            return;
        };
        self.garbage += id.len() + ENTRY_OVERHEAD;
        self.len -= 1;
        let count = self.slots.len();
        let mut index = hole;
        loop {
            index = next(index, count);
            let moving = self.slots[index];
            if moving.offset == EMPTY {
                break;
            }
            let moving_home = home32(moving.tag, count);
            // It may fill the hole unless its home lies cyclically in (hole, index].
            let home_ahead = distance(hole, moving_home, count);
            if home_ahead == 0 || home_ahead > distance(hole, index, count) {
                self.slots[hole] = moving;
                hole = index;
            }
        }
        self.slots[hole] = EMPTY_SLOT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ids: &[(&str, u32)]) -> Result<StringTable, BuildError> {
        let mut builder = StringsBuilder::default();
        for (id, cluster) in ids {
            builder.push(id.as_bytes(), *cluster)?;
        }
        builder.build()
    }

    #[test]
    fn finds_every_id_and_nothing_else() {
        for count in [0usize, 1, 7, 1000, 50_000] {
            let ids: Vec<String> = (0..count).map(|i| format!("app-{i}-x")).collect();
            let pairs: Vec<(&str, u32)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), (i % 9) as u32))
                .collect();
            let table = table(&pairs).unwrap();
            assert_eq!(table.len(), count);
            for (id, cluster) in &pairs {
                assert_eq!(table.get(id.as_bytes()), Some(*cluster));
            }
            assert_eq!(table.get(b"app--x"), None);
            assert_eq!(table.get(b""), None);
            assert_eq!(table.iter().count(), count);
            // About 8 / 0.6 bytes of slots per app, plus the bytes and 5.
            let bytes: usize = ids.iter().map(|id| id.len() + ENTRY_OVERHEAD).sum();
            assert!(table.heap_bytes() <= bytes + 16 * 8 + count * 8 * 5 / 3 + 8);
        }
    }

    #[test]
    fn runs_past_the_end_wrap() {
        // IDs whose home is the last slot of a small table: the run wraps to the start.
        let count = slot_count(5);
        let ids: Vec<String> = (0..1_000_000)
            .map(|i| format!("w{i}"))
            .filter(|id| home32(tag(id.as_bytes()), count) == count - 1)
            .take(5)
            .collect();
        let pairs: Vec<(&str, u32)> = ids.iter().map(|id| (id.as_str(), 3)).collect();
        let table = table(&pairs).unwrap();
        for id in &ids {
            assert_eq!(table.get(id.as_bytes()), Some(3), "{id}");
        }
        assert_eq!(table.len(), 5);
    }

    #[test]
    fn duplicates_are_reported() {
        let error = table(&[("a", 0), ("b", 1), ("a", 2)]).unwrap_err();
        assert_eq!(error, BuildError::Duplicate(b"a".to_vec()));
        let many: Vec<String> = (0..5000).map(|i| format!("id{i}")).collect();
        let mut pairs: Vec<(&str, u32)> = many.iter().map(|id| (id.as_str(), 0)).collect();
        pairs.push(("id4321", 1));
        assert_eq!(
            table(&pairs).unwrap_err(),
            BuildError::Duplicate(b"id4321".to_vec())
        );
    }

    /// Random sets and removals on copies, against a std map, in small tables (long probe
    /// runs that wrap) and through rebuilds.
    #[test]
    fn changes_on_a_copy_match_a_map() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let names: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
        let mut table = table(&[("n1", 1), ("n2", 2)]).unwrap();
        let mut model: std::collections::HashMap<&[u8], u32> =
            [(&b"n1"[..], 1), (&b"n2"[..], 2)].into_iter().collect();
        for round in 0..400u32 {
            let changes: Vec<(&[u8], Option<u32>)> = (0..random(12))
                .map(|_| {
                    let id = names[random(300) as usize].as_bytes();
                    (id, (random(3) != 0).then_some(round))
                })
                .collect();
            let next = table.with_changes(&changes).unwrap();
            for &(id, cluster) in &changes {
                match cluster {
                    Some(cluster) => model.insert(id, cluster),
                    None => model.remove(id),
                };
            }
            assert_eq!(next.len(), model.len());
            for name in &names {
                let id = name.as_bytes();
                assert_eq!(next.get(id), model.get(id).copied(), "{name}");
            }
            table = next;
        }
    }
}
