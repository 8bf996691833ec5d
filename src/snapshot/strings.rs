//! The lookup table for string app IDs (`my-app`, `happy-fox-1234`, `0123`): every ID's
//! lower-case bytes in one arena, each entry `[length][bytes][cluster, 4 bytes LE]`, and an
//! open-addressing table of 8-byte slots (arena offset, 32 hash bits) probed linearly.
//!
//! A general hash map cost about 98 bytes and 1.4 µs per app to build (a boxed key each, a
//! table grown by rehashing); here an app costs its bytes plus 5 in the arena and 8 / 0.6 in
//! slots, and building is appending to the arena, one sort of (home slot, hash) pairs and
//! writing the slots in order. A lookup compares 32 hash bits per probed slot and reads the
//! arena once, where the cluster sits next to the bytes it just compared.

use super::probe::{distance, home, next, slot_count};

/// Marks an empty slot: no entry starts at the arena's last possible offset.
const EMPTY: u32 = u32::MAX;
/// Bytes of an entry besides the ID: its length, and the cluster after it.
const ENTRY_OVERHEAD: usize = 1 + 4;

#[derive(Clone, Copy)]
struct Slot {
    offset: u32,
    /// The low 32 bits of the key's hash (the home slot comes from the high ones).
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

/// The 64-bit hash of an ID: FxHash, then a finalizer so that both halves are well mixed
/// (the high bits pick the home slot, the low ones are the tag).
fn hash(id: &[u8]) -> u64 {
    let mut h = fxhash::hash64(id);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h
}

/// Entries being collected, before the table is built.
#[derive(Default)]
pub(crate) struct StringsBuilder {
    arena: Vec<u8>,
    /// (hash, offset) of every entry.
    entries: Vec<(u64, u32)>,
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
        self.entries
            .try_reserve(1)
            .map_err(|_| BuildError::OutOfMemory)?;
        self.arena.push(len);
        self.arena.extend_from_slice(id);
        self.arena.extend_from_slice(&cluster.to_le_bytes());
        self.entries.push((hash(id), offset));
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Builds the table: entries sorted by home slot (equal IDs then sit together, which
    /// finds duplicates) and written in order.
    pub(crate) fn build(self) -> Result<StringTable, BuildError> {
        let Self { arena, mut entries } = self;
        let count = slot_count(entries.len());
        entries.sort_unstable_by_key(|&(hash, _)| (home(hash, count), hash));
        // Equal IDs have equal hashes, so they sit in one run of equal hashes: compare
        // within each run (nearly always a single entry).
        let id_at = |offset: u32| entry_id(&arena, offset);
        for run in entries.chunk_by(|a, b| a.0 == b.0) {
            for (i, a) in run.iter().enumerate() {
                if let Some(b) = run[i + 1..].iter().find(|b| id_at(a.1) == id_at(b.1)) {
                    return Err(BuildError::Duplicate(id_at(b.1).to_vec()));
                }
            }
        }
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(count)
            .map_err(|_| BuildError::OutOfMemory)?;
        slots.resize(count, EMPTY_SLOT);
        for &(hash, offset) in &entries {
            let mut index = home(hash, count);
            while slots[index].offset != EMPTY {
                index = next(index, count);
            }
            slots[index] = Slot {
                offset,
                tag: hash as u32,
            };
        }
        let mut arena = arena;
        arena.shrink_to_fit();
        Ok(StringTable {
            arena,
            slots: slots.into_boxed_slice(),
            len: entries.len(),
            garbage: 0,
        })
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

impl Default for StringTable {
    fn default() -> Self {
        StringsBuilder::default()
            .build()
            .expect("an empty table builds")
    }
}

impl StringTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The cluster of `id` (lower case).
    pub(crate) fn get(&self, id: &[u8]) -> Option<u32> {
        self.find(id, hash(id)).map(|index| {
            let offset = self.slots[index].offset;
            entry_cluster(&self.arena, offset)
        })
    }

    /// The slot holding `id`, whose hash is `hash`.
    fn find(&self, id: &[u8], hash: u64) -> Option<usize> {
        let count = self.slots.len();
        let mut index = home(hash, count);
        let tag = hash as u32;
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
        let hash = hash(id);
        if let Some(index) = self.find(id, hash) {
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
        let count = self.slots.len();
        let mut index = home(hash, count);
        while self.slots[index].offset != EMPTY {
            index = next(index, count);
        }
        self.slots[index] = Slot {
            offset,
            tag: hash as u32,
        };
        self.len += 1;
        Ok(())
    }

    /// Removes `id` by shifting back the entries of its probe run that may move.
    fn remove(&mut self, id: &[u8]) {
        let Some(mut hole) = self.find(id, hash(id)) else {
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
            let moving_home = home(hash(entry_id(&self.arena, moving.offset)), count);
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
