//! The lookup table for string app IDs (`my-app`, `happy-fox-1234`, `0123`): every ID's
//! lower-case bytes in one arena, each entry `[length][bytes][cluster, 4 bytes LE]`, and an
//! open-addressing table of 8-byte slots (arena offset, 32 hash bits) probed linearly.
//!
//! A general hash map cost about 98 bytes and 1.4 µs per app to build (a boxed key each, a
//! table grown by rehashing); here an app costs its bytes plus 5 in the arena and 8 / 0.6 in
//! slots, and building is appending to the arena, one sort of (home slot, hash) pairs and
//! writing the slots in order. A lookup compares 32 hash bits per probed slot and reads the
//! arena once, where the cluster sits next to the bytes it just compared.
//!
//! A query's ID is folded to lower case, hashed and compared eight bytes at a time
//! ([`Key`]), inline: folding into a buffer, hashing byte-wise and `memcmp` took as long as
//! the two cache misses of a lookup in a 10M-app table. Both buffers ask for transparent
//! huge pages (`probe::reserve`), so that those misses rarely miss the TLB as well.

mod key;

use self::key::{Key, KeyWords};
use super::probe::{distance, home32, next, reserve, slot_count, sort_by_hash, spread_in_place};

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
    /// This ID is longer than a label: no query could name it.
    TooLong(Vec<u8>),
    /// The IDs' bytes passed the 4 GB an offset can address.
    TooLarge,
    OutOfMemory,
}

/// Entries being collected, before the table is built: each already a slot of the table,
/// holding the top 32 bits of its hash until the build sorts by them.
#[derive(Default)]
pub(crate) struct StringsBuilder {
    arena: Vec<u8>,
    slots: Vec<Slot>,
}

impl StringsBuilder {
    /// Adds `id` (in any ASCII case, kept folded; at most a label's 63 bytes) on `cluster`;
    /// duplicates are found when building.
    pub(crate) fn push(&mut self, id: &[u8], cluster: u32) -> Result<(), BuildError> {
        let mut words = KeyWords::default();
        let key = Key::fold(id, &mut words).ok_or_else(|| BuildError::TooLong(id.to_vec()))?;
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&offset| offset < EMPTY)
            .ok_or(BuildError::TooLarge)?;
        let len = id.len() as u8; // At most MAX_LABEL: folded above.
                                  // Room for the last word written whole.
        reserve(&mut self.arena, id.len() + 8 + ENTRY_OVERHEAD, false)
            .ok_or(BuildError::OutOfMemory)?;
        reserve(&mut self.slots, 1, false).ok_or(BuildError::OutOfMemory)?;
        self.arena.push(len);
        key.push_folded(&mut self.arena);
        self.arena.extend_from_slice(&cluster.to_le_bytes());
        self.slots.push(Slot {
            offset,
            tag: key.tag(),
        });
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Empties the builder, keeping its memory for more.
    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.slots.clear();
    }

    /// Moves `other`'s apps after this builder's, leaving it empty.
    pub(crate) fn append(&mut self, other: &mut Self) -> Result<(), BuildError> {
        let base = u32::try_from(self.arena.len()).map_err(|_| BuildError::TooLarge)?;
        let end = u64::from(base) + other.arena.len() as u64;
        if end >= u64::from(EMPTY) {
            return Err(BuildError::TooLarge);
        }
        reserve(&mut self.arena, other.arena.len(), false).ok_or(BuildError::OutOfMemory)?;
        reserve(&mut self.slots, other.slots.len(), false).ok_or(BuildError::OutOfMemory)?;
        self.arena.extend_from_slice(&other.arena);
        let moved = other.slots.iter().map(|slot| Slot {
            offset: slot.offset + base,
            tag: slot.tag,
        });
        self.slots.extend(moved);
        other.clear();
        Ok(())
    }

    /// Where the builder is: to truncate it back to, or map the clusters from.
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.arena.len(), self.slots.len())
    }

    pub(crate) fn truncate(&mut self, (arena, slots): (usize, usize)) {
        self.arena.truncate(arena);
        self.slots.truncate(slots);
    }

    /// Replaces the cluster index of each app from `mark` on by `map` of it.
    pub(crate) fn map_clusters(&mut self, (mut at, _): (usize, usize), map: impl Fn(u32) -> u32) {
        while at < self.arena.len() {
            let cluster_at = at + 1 + usize::from(self.arena[at]);
            let cluster = &mut self.arena[cluster_at..cluster_at + 4];
            let mapped = map(u32::from_le_bytes([
                cluster[0], cluster[1], cluster[2], cluster[3],
            ]));
            cluster.copy_from_slice(&mapped.to_le_bytes());
            at = cluster_at + 4;
        }
    }

    /// Reserves, untouched, the most a dump of `size` bytes can need: an entry takes at most
    /// the bytes of its JSON text in the arena (`"id":"c"`: the ID and 6 more, against its
    /// 5), and there are at most `size / 7` entries, each 8 / 0.6 bytes of slots. Untouched
    /// room is never resident; reserved whole, the buffers never move, so that all of them
    /// are backed by huge pages (growing, a third were: pages written before a move stay
    /// small). When the address space cannot be had, they grow as usual.
    pub(crate) fn reserve_for_dump(&mut self, size: u64) {
        let Ok(size) = usize::try_from(size) else {
            return;
        };
        let entries = size / 7;
        if reserve(&mut self.arena, size, true).is_some() {
            reserve(&mut self.slots, slot_count(entries), true);
        }
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
        sort_by_hash(&mut slots, |slot| u64::from(slot.tag) << 32);
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

    /// The cluster of `id`, in any ASCII case.
    #[inline]
    pub(crate) fn get(&self, id: &[u8]) -> Option<u32> {
        let mut words = KeyWords::default();
        let key = Key::fold(id, &mut words)?;
        self.find(&key).map(|index| {
            let offset = self.slots[index].offset;
            entry_cluster(&self.arena, offset)
        })
    }

    /// Starts bringing the home slot of `id` (any ASCII case) into the caches (see
    /// [`crate::sys::prefetch`]); its entry in the arena is the next miss, left to the lookup.
    pub(crate) fn prefetch(&self, id: &[u8]) {
        let mut words = KeyWords::default();
        if let Some(key) = Key::fold(id, &mut words) {
            crate::sys::prefetch(&self.slots[home32(key.tag(), self.slots.len())]);
        }
    }

    /// The slot holding `key`.
    #[inline]
    fn find(&self, key: &Key) -> Option<usize> {
        let count = self.slots.len();
        let tag = key.tag();
        let mut index = home32(tag, count);
        // Terminates: the load factor keeps at least 40% of the slots empty.
        loop {
            let slot = self.slots[index];
            if slot.offset == EMPTY {
                return None;
            }
            if slot.tag == tag && key.matches(entry_id(&self.arena, slot.offset)) {
                return Some(index);
            }
            index = next(index, count);
        }
    }

    /// Every (ID, cluster), in no particular order.
    ///
    /// In the arena's order when no entry there is garbage: read front to back, where the
    /// slots' order costs a cache miss per app (an AXFR of 10M string IDs spent half its
    /// time there). In the slots' order otherwise.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        let in_arena = self.garbage == 0;
        let mut at = 0;
        let arena = std::iter::from_fn(move || {
            let len = usize::from(*self.arena.get(at)?);
            let entry = (
                &self.arena[at + 1..at + 1 + len],
                entry_cluster(&self.arena, at as u32),
            );
            at += len + ENTRY_OVERHEAD;
            Some(entry)
        });
        let slots = (self.slots.iter())
            .filter(|slot| slot.offset != EMPTY)
            .map(|slot| {
                (
                    entry_id(&self.arena, slot.offset),
                    entry_cluster(&self.arena, slot.offset),
                )
            });
        let (arena, slots) = (in_arena.then_some(arena), (!in_arena).then_some(slots));
        arena
            .into_iter()
            .flatten()
            .chain(slots.into_iter().flatten())
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
            // The entries no change touches, then each changed ID's last state: a map of
            // the changes, not of the whole table (the numeric table's fold at 100M apps
            // peaked at 2.8x the steady RSS that way).
            let mut last: fxhash::FxHashMap<&[u8], Option<u32>> = fxhash::FxHashMap::default();
            last.extend(changes.iter().copied());
            let mut builder = StringsBuilder::default();
            for (id, cluster) in self.iter() {
                if !last.contains_key(id) {
                    builder.push(id, cluster)?;
                }
            }
            for (&id, &cluster) in &last {
                if let Some(cluster) = cluster {
                    builder.push(id, cluster)?;
                }
            }
            return builder.build();
        }
        let mut table = self.try_clone(added_bytes)?;
        for &(id, cluster) in changes {
            match cluster {
                Some(cluster) => table.set(id, cluster)?,
                None => table.remove(id),
            }
        }
        Ok(table)
    }

    /// A copy with room for `more_bytes` in its arena.
    fn try_clone(&self, more_bytes: usize) -> Result<Self, BuildError> {
        let mut arena = Vec::new();
        reserve(&mut arena, self.arena.len() + more_bytes, true).ok_or(BuildError::OutOfMemory)?;
        arena.extend_from_slice(&self.arena);
        let mut slots = Vec::new();
        reserve(&mut slots, self.slots.len(), true).ok_or(BuildError::OutOfMemory)?;
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
        let mut words = KeyWords::default();
        let key = Key::fold(id, &mut words).ok_or_else(|| BuildError::TooLong(id.to_vec()))?;
        if let Some(index) = self.find(&key) {
            let offset = self.slots[index].offset as usize;
            let at = offset + 1 + id.len();
            self.arena[at..at + 4].copy_from_slice(&cluster.to_le_bytes());
            return Ok(());
        }
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&offset| offset < EMPTY)
            .ok_or(BuildError::TooLarge)?;
        self.arena.push(id.len() as u8); // At most MAX_LABEL: folded above.
        self.arena.extend_from_slice(id);
        self.arena.extend_from_slice(&cluster.to_le_bytes());
        self.place(Slot {
            offset,
            tag: key.tag(),
        });
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
        let mut words = KeyWords::default();
        let Some(mut hole) = Key::fold(id, &mut words).and_then(|key| self.find(&key)) else {
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
mod tests;
