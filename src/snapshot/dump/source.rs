//! Where a dump's blocks come from: a stream read into a buffer, or bytes in memory read
//! where they lie.

use std::io::Read;

/// Where the blocks of the apps come from.
pub(super) trait Source {
    /// Makes at least `want` bytes unread, unless the dump ends first; whether it ends
    /// with the unread bytes.
    fn fill(&mut self, want: usize) -> std::io::Result<bool>;
    fn unread(&self) -> &[u8];
    fn consume(&mut self, len: usize);
    /// The bytes not consumed, to the end.
    fn rest(&mut self) -> std::io::Result<Vec<u8>>;
}

/// A stream read into a buffer: an entry cut by a block's end is moved to the start.
pub(super) struct Stream<R> {
    pub(super) reader: R,
    pub(super) buffer: Vec<u8>,
    pub(super) ended: bool,
}

impl<R: Read> Source for Stream<R> {
    fn fill(&mut self, want: usize) -> std::io::Result<bool> {
        if !self.ended {
            self.ended = read_more(&mut self.reader, &mut self.buffer, want)?;
        }
        Ok(self.ended)
    }

    fn unread(&self) -> &[u8] {
        &self.buffer
    }

    fn consume(&mut self, len: usize) {
        self.buffer.drain(..len);
    }

    fn rest(&mut self) -> std::io::Result<Vec<u8>> {
        if !self.ended {
            self.reader.read_to_end(&mut self.buffer)?;
        }
        Ok(std::mem::take(&mut self.buffer))
    }
}

/// A dump in memory, each block read where it lies.
pub(super) struct InPlace<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
    /// The end of the current block.
    pub(super) end: usize,
}

impl Source for InPlace<'_> {
    fn fill(&mut self, want: usize) -> std::io::Result<bool> {
        self.end = self.bytes.len().min(self.at.saturating_add(want));
        Ok(self.end == self.bytes.len())
    }

    fn unread(&self) -> &[u8] {
        &self.bytes[self.at..self.end]
    }

    fn consume(&mut self, len: usize) {
        self.at += len;
    }

    fn rest(&mut self) -> std::io::Result<Vec<u8>> {
        Ok(self.bytes[self.at..].to_vec())
    }
}

/// Reads into `buffer` until it holds `want` bytes or the reader ends; whether it ended.
pub(super) fn read_more(
    reader: &mut impl Read,
    buffer: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<bool> {
    let mut at = buffer.len();
    if want <= at {
        return Ok(false);
    }
    buffer.resize(want, 0);
    let mut ended = false;
    while at < want {
        match reader.read(&mut buffer[at..]) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => at += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                buffer.truncate(at);
                return Err(error);
            }
        }
    }
    buffer.truncate(at);
    Ok(ended)
}
