//! A cursor that appends to a caller's buffer under a size limit fixed up front.

/// The message would exceed the size limit; the caller answers with TC=1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

/// Appends to `buf[..limit]`. Pushes are all or nothing: a push that does not fit writes no
/// byte, so a half-written record never reaches the wire.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Invariant: `len <= limit <= buf.len()`.
    limit: usize,
}

impl<'b> Writer<'b> {
    /// A writer over `buf` that never writes more than `limit` bytes (capped at `buf.len()`).
    pub fn new(buf: &'b mut [u8], limit: usize) -> Self {
        let limit = limit.min(buf.len());
        Self { buf, len: 0, limit }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be written.
    pub fn remaining(&self) -> usize {
        self.limit - self.len
    }

    /// Moves the limit, e.g. to release room kept for a trailing record. Never below what is
    /// written, never past the buffer.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.clamp(self.len, self.buf.len());
    }

    /// Appends all of `parts`, or nothing if they do not fit together.
    pub fn push(&mut self, parts: &[&[u8]]) -> Result<(), Truncated> {
        let total: usize = parts.iter().map(|part| part.len()).sum();
        if total > self.remaining() {
            return Err(Truncated);
        }
        for part in parts {
            self.buf[self.len..self.len + part.len()].copy_from_slice(part);
            self.len += part.len();
        }
        Ok(())
    }

    /// Forgets everything written after `len`, e.g. the answers of a response that has to be
    /// sent truncated.
    pub fn rewind(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Overwrites bytes already written, such as the header once the counts are known.
    /// Nothing is written unless all of `bytes` lands on what was written.
    pub fn patch(&mut self, at: usize, bytes: &[u8]) {
        if let Some(written) = self.buf[..self.len].get_mut(at..at + bytes.len()) {
            written.copy_from_slice(bytes);
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_is_atomic() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf, 6);
        w.push(&[b"abc"]).unwrap();
        assert_eq!(w.push(&[b"de", b"fg"]), Err(Truncated));
        assert_eq!(w.as_bytes(), b"abc");
        w.push(&[b"de", b"f"]).unwrap();
        assert_eq!(w.remaining(), 0);
        w.patch(1, b"AB");
        assert_eq!(w.as_bytes(), b"aABdef");
        w.patch(5, b"GH");
        assert_eq!(w.as_bytes(), b"aABdef", "past what was written: nothing");
        w.rewind(2);
        assert_eq!(w.as_bytes(), b"aA");
    }

    #[test]
    fn limit_is_capped_by_buffer() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf, 100);
        assert_eq!(w.remaining(), 4);
        assert_eq!(w.push(&[b"hello"]), Err(Truncated));
        assert!(w.is_empty());
    }
}
