//! An app ID as a lookup uses it: folded to lower case, hashed and compared eight bytes at a
//! time, inline (SWAR: several bytes in one 64-bit word).

use crate::wire::MAX_LABEL;

/// Words of the longest ID, a whole label.
const KEY_WORDS: usize = MAX_LABEL.div_ceil(8);

/// The words of a [`Key`]: the caller's, so that building a key never copies them (a key
/// assembled in a local and then moved was copied with 16-byte loads right after its 8-byte
/// stores, which the CPU cannot forward: a fifth of a lookup in cache, measured).
pub(super) type KeyWords = [u64; KEY_WORDS];

/// An app ID as a lookup uses it: folded to lower case as 8-byte little-endian words (the
/// last one zero-padded), hashed on the way.
pub(super) struct Key<'w> {
    words: &'w KeyWords,
    len: usize,
    hash: u64,
}

impl<'w> Key<'w> {
    /// `id` in any ASCII case (RFC 4343), in `words`; `None` past a label's 63 bytes.
    #[inline(always)]
    pub(super) fn fold(id: &[u8], words: &'w mut KeyWords) -> Option<Self> {
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

    /// Appends the folded ID to `out`, a word at a time.
    #[inline(always)]
    pub(super) fn push_folded(&self, out: &mut Vec<u8>) {
        let end = out.len() + self.len;
        for word in &self.words[..self.len.div_ceil(8)] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.truncate(end);
    }

    /// The top 32 bits of the hash.
    pub(super) fn tag(&self) -> u32 {
        (self.hash >> 32) as u32
    }

    /// Whether the lower-case `id` is this key.
    #[inline]
    pub(super) fn matches(&self, id: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The key's folding and hashing against the plain byte-wise definitions.
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
}
