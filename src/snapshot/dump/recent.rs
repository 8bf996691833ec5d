//! Short cluster spellings met in a part, each kept as one word: most apps' cluster is found
//! with one comparison, without hashing or comparing its bytes.

use super::tokens::{first_bytes, quotes};

/// Short cluster spellings met in this part, by their bytes as one word: most apps' cluster
/// is found with one comparison, without hashing or comparing its bytes.
pub(super) struct RecentClusters {
    slots: [(u64, u32); RECENT_SLOTS],
}

const RECENT_SLOTS: usize = 64;
/// Marks an empty slot: no spelling of at most 7 bytes has this word (its top byte is the
/// length).
const NO_WORD: u64 = u64::MAX;

impl Default for RecentClusters {
    fn default() -> Self {
        Self {
            slots: [(NO_WORD, 0); RECENT_SLOTS],
        }
    }
}

impl RecentClusters {
    /// A spelling of up to 7 bytes as one word: its bytes, and its length in the top byte.
    #[inline(always)]
    fn word(spelling: &[u8]) -> Option<u64> {
        if spelling.len() > 7 {
            return None;
        }
        let mut word = (spelling.len() as u64) << 56;
        for (i, &byte) in spelling.iter().enumerate() {
            word |= u64::from(byte) << (8 * i);
        }
        Some(word)
    }

    #[inline]
    fn slot(word: u64) -> usize {
        (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    /// The index of the string token at `at` (its opening quote) when it is a spelling
    /// met before; `at` then moves past it. Only plain tokens are kept: one with an escape
    /// never matches.
    #[inline(always)]
    pub(super) fn find(&self, bytes: &[u8], at: &mut usize) -> Option<u32> {
        let start = *at + 1;
        let chunk = u64::from_le_bytes(*bytes.get(start..)?.first_chunk::<8>()?);
        let len = (quotes(chunk).trailing_zeros() / 8) as usize;
        if len > 7 {
            return None;
        }
        let index = self.get(Self::masked(chunk, len))?;
        *at = start + len + 1;
        Some(index)
    }

    /// The word of the spelling that is the first `len` (at most 7) bytes of `chunk`.
    #[inline(always)]
    pub(super) fn masked(chunk: u64, len: usize) -> u64 {
        (chunk & first_bytes(len)) | (len as u64) << 56
    }

    /// The index of the spelling whose word is `word`, when it was met.
    #[inline(always)]
    pub(super) fn get(&self, word: u64) -> Option<u32> {
        let (found, index) = self.slots[Self::slot(word)];
        (found == word).then_some(index)
    }

    pub(super) fn insert(&mut self, spelling: &[u8], index: u32) {
        if let Some(word) = Self::word(spelling) {
            self.slots[Self::slot(word)] = (word, index);
        }
    }
}
