//! Frame Streams (fstrm), the framing dnstap travels in: big-endian 32-bit lengths before
//! each data frame, and control frames (an escape of four zero bytes, then a length, a type
//! and fields) for the bidirectional handshake over a Unix socket:
//!
//! ```text
//! writer -> READY(content type)   reader -> ACCEPT(content type)
//! writer -> START(content type)   ...data frames...
//! writer -> STOP                  reader -> FINISH
//! ```

use std::io::{self, Read, Write};

/// The content type of dnstap's frames.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// The length prefix of a data frame.
pub(super) const DATA_PREFIX: usize = 4;

/// Control frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Control {
    Accept = 1,
    Start = 2,
    Stop = 3,
    Ready = 4,
    Finish = 5,
}

impl Control {
    fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::Accept,
            2 => Self::Start,
            3 => Self::Stop,
            4 => Self::Ready,
            5 => Self::Finish,
            _ => return None,
        })
    }
}

/// The field type of a control frame's content type.
const FIELD_CONTENT_TYPE: u32 = 1;
/// A control frame longer than this is not from a reader we understand.
const MAX_CONTROL: usize = 512;

/// A control frame as written: the escape, its length, its type and, for READY, ACCEPT and
/// START, dnstap's content type.
pub(super) fn control_frame(control: Control) -> Vec<u8> {
    let mut body = (control as u32).to_be_bytes().to_vec();
    if matches!(control, Control::Ready | Control::Accept | Control::Start) {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut frame = vec![0; 4];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads one control frame: its type and the content types it names.
pub(super) fn read_control(stream: &mut impl Read) -> io::Result<(Control, Vec<Vec<u8>>)> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut word = [0u8; 4];
    stream.read_exact(&mut word)?;
    if word != [0; 4] {
        return Err(invalid("a data frame where a control frame was expected"));
    }
    stream.read_exact(&mut word)?;
    let len = u32::from_be_bytes(word) as usize;
    if !(4..=MAX_CONTROL).contains(&len) {
        return Err(invalid("a control frame of an impossible length"));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let control = Control::from_u32(be32(&body[..4]))
        .ok_or_else(|| invalid("an unknown control frame type"))?;
    let mut types = Vec::new();
    let mut rest = &body[4..];
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(invalid("a control field cut short"));
        }
        let (field, field_len) = (be32(&rest[..4]), be32(&rest[4..8]) as usize);
        let value = rest[8..]
            .get(..field_len)
            .ok_or_else(|| invalid("a control field longer than its frame"))?;
        if field == FIELD_CONTENT_TYPE {
            types.push(value.to_vec());
        }
        rest = &rest[8 + field_len..];
    }
    Ok((control, types))
}

/// The bidirectional handshake on a new connection: READY, the reader's ACCEPT (which must
/// take dnstap's content type), START.
pub(super) fn handshake(stream: &mut (impl Read + Write)) -> io::Result<()> {
    stream.write_all(&control_frame(Control::Ready))?;
    let (control, types) = read_control(stream)?;
    if control != Control::Accept {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the collector answered READY with {control:?}, not ACCEPT"),
        ));
    }
    if !types.is_empty() && !types.iter().any(|t| t == CONTENT_TYPE) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the collector does not accept protobuf:dnstap.Dnstap",
        ));
    }
    stream.write_all(&control_frame(Control::Start))
}

/// The end of a stream: STOP, then the reader's FINISH (its absence is no error: the data
/// is written either way).
pub(super) fn finish(stream: &mut (impl Read + Write)) -> io::Result<()> {
    stream.write_all(&control_frame(Control::Stop))?;
    match read_control(stream)? {
        (Control::Finish, _) => Ok(()),
        (control, _) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the collector answered STOP with {control:?}, not FINISH"),
        )),
    }
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_are_laid_out_as_fstrm_writes_them() {
        // From fstrm's control.c: escape, length, type, then field type, length, value.
        let mut ready = vec![0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 22];
        ready.extend_from_slice(b"protobuf:dnstap.Dnstap");
        assert_eq!(control_frame(Control::Ready), ready);
        assert_eq!(
            control_frame(Control::Stop),
            [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]
        );
    }

    #[test]
    fn read_control_takes_what_control_frame_writes() {
        for control in [Control::Accept, Control::Finish, Control::Start] {
            let frame = control_frame(control);
            let (read, types) = read_control(&mut &frame[..]).unwrap();
            assert_eq!(read, control);
            let named = matches!(control, Control::Accept | Control::Start);
            assert_eq!(types == [CONTENT_TYPE.to_vec()], named);
        }
    }

    #[test]
    fn bad_control_frames_are_errors_not_panics() {
        let cases: [&[u8]; 6] = [
            &[0, 0, 0, 9],
            &[0, 0, 0, 0, 0, 0, 0, 2, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 9],
            &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0],
            &[
                0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 200,
            ],
            &[0, 0, 0, 0, 0, 0, 1, 0],
        ];
        for case in cases {
            assert!(read_control(&mut &case[..]).is_err(), "{case:?}");
        }
    }

    /// A reader that answers READY with ACCEPT and STOP with FINISH, as fstrm_capture does.
    struct Reader {
        to_writer: Vec<u8>,
        at: usize,
        from_writer: Vec<u8>,
    }

    impl Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = (&self.to_writer[self.at..]).read(buf)?;
            self.at += n;
            Ok(n)
        }
    }

    impl Write for Reader {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.from_writer.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_handshake_sends_ready_then_start_and_the_end_stop() {
        let mut replies = control_frame(Control::Accept);
        replies.extend(control_frame(Control::Finish));
        let mut reader = Reader {
            to_writer: replies,
            at: 0,
            from_writer: Vec::new(),
        };
        handshake(&mut reader).unwrap();
        finish(&mut reader).unwrap();
        let mut sent = &reader.from_writer[..];
        let order: Vec<Control> = (0..3).map(|_| read_control(&mut sent).unwrap().0).collect();
        assert_eq!(order, [Control::Ready, Control::Start, Control::Stop]);

        let mut refusing = Reader {
            to_writer: control_frame(Control::Finish),
            at: 0,
            from_writer: Vec::new(),
        };
        assert!(handshake(&mut refusing).is_err());
    }
}
