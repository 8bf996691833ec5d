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
//! huge pages (`probe::Pages::Huge`), so that those misses rarely miss the TLB as well.

use super::probe::{
    distance, home32, next, reserve, slot_count, sort_by_key, spread_in_place, Pages,
};
use crate::wire::MAX_LABEL;

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

/// Words of the longest ID, a whole label.
const KEY_WORDS: usize = MAX_LABEL.div_ceil(8);

/// The words of a [`Key`]: the caller's, so that building a key never copies them (a key
/// assembled in a local and then moved was copied with 16-byte loads right after its 8-byte
/// stores, which the CPU cannot forward: a fifth of a lookup in cache, measured).
pub(crate) type KeyWords = [u64; KEY_WORDS];

/// An app ID as a lookup uses it: folded to lower case as 8-byte little-endian words (the
/// last one zero-padded), hashed on the way.
pub(crate) struct Key<'w> {
    words: &'w KeyWords,
    len: usize,
    hash: u64,
}

impl<'w> Key<'w> {
    /// `id` in any ASCII case (RFC 4343), in `words`; `None` past a label's 63 bytes.
    #[inline(always)]
    pub(crate) fn fold(id: &[u8], words: &'w mut KeyWords) -> Option<Self> {
        if id.len() > MAX_LABEL {
            return None;
        }
        // Words past the ID's are never read: no need to clear them.
        let mut hash = mix(0, id.len() as u64);
        for (word, chunk) in words.iter_mut().zip(id.chunks_exact(8)) {
            *word = fold_word(le_word(chunk));
            hash = mix(hash, *word);
        }
        let whole = id.len() / 8;
        if id.len() % 8 != 0 {
            words[whole] = fold_word(tail_word(id));
            hash = mix(hash, words[whole]);
        }
        // Finish as MurmurHash3 does, so that the top bits (tag and home) depend on all.
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        hash ^= hash >> 33;
        Some(Self {
            words,
            len: id.len(),
            hash,
        })
    }

    /// The top 32 bits of the hash.
    fn tag(&self) -> u32 {
        (self.hash >> 32) as u32
    }

    /// Whether the lower-case `id` is this key.
    #[inline]
    fn matches(&self, id: &[u8]) -> bool {
        if id.len() != self.len {
            return false;
        }
        let mut whole = self.words.iter().zip(id.chunks_exact(8));
        if !whole.all(|(&word, chunk)| le_word(chunk) == word) {
            return false;
        }
        id.len() % 8 == 0 || tail_word(id) == self.words[id.len() / 8]
    }
}

/// FxHash's step: rotate, xor, multiply.
#[inline]
fn mix(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(0x517C_C1B7_2722_0A95)
}

/// Eight bytes, little endian.
#[inline]
fn le_word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().unwrap_or_default())
}

/// The last `bytes.len() % 8` (1 to 7) bytes as a word, zero above them: from one
/// overlapping load when there are 8 bytes or more.
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    if len >= 8 {
        le_word(&bytes[len - 8..]) >> ((8 - len % 8) * 8)
    } else {
        bytes
            .iter()
            .rev()
            .fold(0, |word, &byte| word << 8 | u64::from(byte))
    }
}

/// `word` with each ASCII upper-case letter in lower case, other bytes as they are:
/// `make_ascii_lowercase` on eight bytes at once. A byte's top bit ends up set in `upper`
/// when it is below 0x80, at least `A` and at most `Z` (the additions never carry out of
/// a byte, its top bit cleared first); that bit shifted down is the 0x20 of lower case.
#[inline]
fn fold_word(word: u64) -> u64 {
    const LOW_BITS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const TOP_BITS: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW_BITS;
    let at_least_a = low + 0x3F3F_3F3F_3F3F_3F3F; // 0x80 - b'A'
    let past_z = low + 0x2525_2525_2525_2525; // 0x80 - b'Z' - 1
    let upper = at_least_a & !past_z & !word & TOP_BITS;
    word | upper >> 2
}

/// Entries being collected, before the table is built: each already a slot of the table,
/// holding the top 32 bits of its hash until the build sorts by them.
#[derive(Default)]
pub(crate) struct StringsBuilder {
    arena: Vec<u8>,
    slots: Vec<Slot>,
}

impl StringsBuilder {
    /// Adds `id` (already lower case, at most a label's 63 bytes) on `cluster`; duplicates
    /// are found when building.
    pub(crate) fn push(&mut self, id: &[u8], cluster: u32) -> Result<(), BuildError> {
        let mut words = KeyWords::default();
        let key = Key::fold(id, &mut words).ok_or_else(|| BuildError::TooLong(id.to_vec()))?;
        let offset = u32::try_from(self.arena.len())
            .ok()
            .filter(|&offset| offset < EMPTY)
            .ok_or(BuildError::TooLarge)?;
        let len = id.len() as u8; // At most MAX_LABEL: folded above.
        reserve(
            &mut self.arena,
            id.len() + ENTRY_OVERHEAD,
            false,
            Pages::Huge,
        )
        .ok_or(BuildError::OutOfMemory)?;
        reserve(&mut self.slots, 1, false, Pages::Huge).ok_or(BuildError::OutOfMemory)?;
        self.arena.push(len);
        self.arena.extend_from_slice(id);
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
        if reserve(&mut self.arena, size, true, Pages::Huge).is_some() {
            reserve(&mut self.slots, slot_count(entries), true, Pages::Huge);
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
        let wrapped = spread_in_place(&mut slots, count, EMPTY_SLOT, Pages::Huge, |slot| {
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
        reserve(&mut arena, self.arena.len() + more_bytes, true, Pages::Huge)
            .ok_or(BuildError::OutOfMemory)?;
        arena.extend_from_slice(&self.arena);
        let mut slots = Vec::new();
        reserve(&mut slots, self.slots.len(), true, Pages::Huge).ok_or(BuildError::OutOfMemory)?;
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
mod tests {
    use super::*;

    fn tag(id: &str) -> u32 {
        Key::fold(id.as_bytes(), &mut KeyWords::default())
            .unwrap()
            .tag()
    }

    #[test]
    fn words_fold_as_bytes_do() {
        // Every byte value at every position of a word, and every tail length.
        for byte in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"aZ09-yQm";
                bytes[at] = byte;
                let word = u64::from_le_bytes(bytes);
                bytes.make_ascii_lowercase();
                assert_eq!(
                    fold_word(word),
                    u64::from_le_bytes(bytes),
                    "{byte:#x} at {at}"
                );
            }
        }
        let id = b"Happy-FOX-1234-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJ";
        assert_eq!(id.len(), MAX_LABEL);
        for len in 0..=MAX_LABEL {
            let (mixed, lower) = (&id[..len], id[..len].to_ascii_lowercase());
            let (mut mixed_words, mut lower_words) = (KeyWords::default(), KeyWords::default());
            let folded = Key::fold(mixed, &mut mixed_words).unwrap();
            let plain = Key::fold(&lower, &mut lower_words).unwrap();
            assert_eq!(folded.hash, plain.hash, "{len}");
            assert_eq!(folded.words, plain.words, "{len}");
            assert!(folded.matches(&lower), "{len}");
            if len > 0 {
                let mut other = lower.clone();
                other[len - 1] ^= 1;
                assert!(!folded.matches(&other), "{len}");
                assert!(!folded.matches(&lower[..len - 1]), "{len}");
                let other_hash = Key::fold(&other, &mut KeyWords::default()).unwrap().hash;
                assert_ne!(other_hash, folded.hash, "{len}");
            }
        }
        assert!(Key::fold(&[b'a'; MAX_LABEL + 1], &mut KeyWords::default()).is_none());
    }

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
            if count > 0 {
                assert_eq!(table.get(b"APP-0-X"), Some(0));
            }
            assert_eq!(table.get(b""), None);
            assert_eq!(table.iter().count(), count);
            // About 8 / 0.6 bytes of slots per app, plus the bytes and 5.
            let bytes: usize = ids.iter().map(|id| id.len() + ENTRY_OVERHEAD).sum();
            assert!(table.heap_bytes() <= bytes + 16 * 8 + count * 8 * 5 / 3 + 8);
        }
    }

    #[test]
    fn room_reserved_for_a_dump_is_given_back() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("App-{i}")).collect();
        let dump_size: usize = ids.iter().map(|id| id.len() + 10).sum();
        let mut builder = StringsBuilder::default();
        builder.reserve_for_dump(dump_size as u64);
        assert!(builder.arena.capacity() >= dump_size);
        for (i, id) in ids.iter().enumerate() {
            builder
                .push(id.to_ascii_lowercase().as_bytes(), i as u32)
                .unwrap();
        }
        let table = builder.build().unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(table.get(id.as_bytes()), Some(i as u32));
        }
        let bytes: usize = ids.iter().map(|id| id.len() + ENTRY_OVERHEAD).sum();
        assert_eq!(table.arena.capacity(), bytes);
        assert_eq!(table.slots.len(), slot_count(ids.len()));
    }

    #[test]
    fn runs_past_the_end_wrap() {
        // IDs whose home is the last slot of a small table: the run wraps to the start.
        let count = slot_count(5);
        let ids: Vec<String> = (0..1_000_000)
            .map(|i| format!("w{i}"))
            .filter(|id| home32(tag(id), count) == count - 1)
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
