//! A stand-in dnstap collector's side of the Frame Streams handshake, written by hand from
//! fstrm's control frame layout (an escape of four zero bytes, a length, a type, then
//! fields), not with cnamed's own encoder.
#![allow(dead_code)] // Each test binary uses a different part of this.
#![allow(unreachable_pub)] // A module of each test crate; `pub` is for the test files.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// STOP, as a writer ends its stream.
pub const STOP: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3];
/// FINISH, a reader's answer to STOP.
pub const FINISH: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 5];

/// Reads the writer's first control frame, which must be READY.
pub fn read_ready(stream: &mut UnixStream) {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[..4], [0; 4], "a control frame first");
    let mut ready = vec![0u8; u32::from_be_bytes(header[4..].try_into().unwrap()) as usize];
    stream.read_exact(&mut ready).unwrap();
    assert_eq!(ready[..4], [0, 0, 0, 4], "READY");
}

/// Reads READY and answers ACCEPT for dnstap's content type, as fstrm's readers do.
pub fn accept_handshake(stream: &mut UnixStream) {
    read_ready(stream);
    let content_type = b"protobuf:dnstap.Dnstap";
    let mut accept = vec![0, 0, 0, 0];
    accept.extend_from_slice(&(12 + content_type.len() as u32).to_be_bytes());
    accept.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    accept.extend_from_slice(&(content_type.len() as u32).to_be_bytes());
    accept.extend_from_slice(content_type);
    stream.write_all(&accept).unwrap();
}
