//! The client side of AXFR (issue 13, cnamed as a secondary, in progress): asks a primary for
//! the zone over TCP, signed with TSIG when a key is given, checks every response's signature
//! and the zone's shape (`inbound`), and returns the app → cluster mapping.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::inbound::{AxfrReader, Transferred};
use crate::snapshot::{Snapshot, Zone};
use crate::sys::{random_bytes, unix_seconds};
use crate::wire::tsig::{self, sign_request, ChainError, Key, ResponseChain};
use crate::wire::{flags, Class, Rtype, HEADER_LEN, MAX_TCP};

/// How long a transfer waits on a primary for each read or write.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches the zone at `zone`'s apex from `primary` by AXFR; each read or write may take
/// `timeout`. The error says what went wrong: connection, RCODE, TSIG, or the first record
/// not of cnamed's shape.
pub fn fetch_axfr(
    primary: SocketAddr,
    zone: &Zone,
    key: Option<&Key>,
    timeout: Duration,
) -> Result<Transferred, String> {
    let mut id = [0u8; 2];
    random_bytes(&mut id).map_err(|error| format!("no random ID: {error}"))?;
    let id = u16::from_be_bytes(id);
    let mut query = vec![0u8; 2 + 512];
    let body = &mut query[2..];
    body[..2].copy_from_slice(&id.to_be_bytes());
    body[4..6].copy_from_slice(&1u16.to_be_bytes());
    let mut len = HEADER_LEN;
    for part in [
        &zone.apex[..],
        &Rtype::AXFR.0.to_be_bytes(),
        &Class::IN.0.to_be_bytes(),
    ] {
        body[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let mut chain = None;
    if let Some(key) = key {
        let (signed, mac) = sign_request(body, len, key, u64::from(unix_seconds()))
            .ok_or("no room for the TSIG")?;
        len = signed;
        chain = Some(ResponseChain::new(key, mac));
    }
    query[..2].copy_from_slice(&(len as u16).to_be_bytes());
    query.truncate(2 + len);

    let failed = |what: &str, error: io::Error| format!("{primary}: {what}: {error}");
    let mut stream =
        TcpStream::connect_timeout(&primary, timeout).map_err(|e| failed("connect", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| failed("socket", e))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| failed("socket", e))?;
    stream.write_all(&query).map_err(|e| failed("send", e))?;
    let mut reader = AxfrReader::new(zone)?;
    let mut message = vec![0u8; MAX_TCP];
    loop {
        let mut prefix = [0u8; 2];
        stream
            .read_exact(&mut prefix)
            .map_err(|e| failed("read", e))?;
        let len = usize::from(u16::from_be_bytes(prefix));
        let message = &mut message[..len];
        stream.read_exact(message).map_err(|e| failed("read", e))?;
        if message.get(..2) != Some(&id.to_be_bytes()[..]) {
            return Err(format!("{primary}: a message with another ID"));
        }
        let rcode = message
            .get(3)
            .map_or(0, |&low| u16::from(low) & flags::RCODE_MASK);
        if rcode != 0 {
            let tsig_error = tsig::find(message).ok().flatten().map(|tsig| tsig.error);
            return Err(match tsig_error {
                Some(error) if error != 0 => {
                    format!("{primary}: TSIG: {}", describe(ChainError::Error(error)))
                }
                _ => format!("{primary}: the primary answered with RCODE {rcode}"),
            });
        }
        let signed = match &mut chain {
            Some(chain) => chain
                .verify(message, u64::from(unix_seconds()))
                .map_err(|error| format!("{primary}: TSIG: {}", describe(error)))?,
            None => true,
        };
        if reader
            .read_message(message)
            .map_err(|why| format!("{primary}: {why}"))?
        {
            if !signed {
                return Err(format!("{primary}: TSIG: the last message is not signed"));
            }
            break;
        }
    }
    reader.finish().map_err(|why| format!("{primary}: {why}"))
}

fn describe(error: ChainError) -> String {
    match error {
        ChainError::Unsigned => "a message is not signed".into(),
        ChainError::Malformed => "an unreadable TSIG record".into(),
        ChainError::WrongKey => "signed with another key".into(),
        ChainError::BadMac => "a wrong MAC".into(),
        ChainError::BadTime => "signed out of the time window".into(),
        ChainError::Error(16) => "the primary answered BADSIG".into(),
        ChainError::Error(17) => "the primary answered BADKEY".into(),
        ChainError::Error(18) => "the primary answered BADTIME".into(),
        ChainError::Error(code) => format!("the primary answered TSIG error {code}"),
    }
}

/// The zone from the first of `primaries` that gives it by AXFR, signed with `key`.
pub fn transfer_zone(
    primaries: &[SocketAddr],
    zone: &Zone,
    key: Option<&Key>,
) -> Result<Snapshot, String> {
    let mut errors = Vec::new();
    for &primary in primaries {
        match fetch_axfr(primary, zone, key, TRANSFER_TIMEOUT) {
            Ok(transferred) => {
                let apps = transferred.apps.iter().map(|(a, c)| (&**a, &**c));
                return Snapshot::from_apps(transferred.serial, apps, zone)
                    .map_err(|why| format!("{primary}: {why}"));
            }
            Err(error) => errors.push(error),
        }
    }
    Err(errors.join("; "))
}

/// Writes `snapshot` to `path` as a dump, atomically (a temporary file beside it, renamed).
pub fn save_dump(snapshot: &Snapshot, path: &Path) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".cnamed-tmp");
    let temporary = PathBuf::from(temporary);
    let file = std::fs::File::create(&temporary)?;
    let mut out = io::BufWriter::new(file);
    let apps = snapshot.apps();
    let transferred = Transferred {
        serial: snapshot.serial,
        apps: apps
            .into_iter()
            .map(|(app, cluster)| (app.into(), cluster.into()))
            .collect(),
    };
    write_dump(&transferred, &mut out)?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Writes `zone` as a dump (`{"serial": N, "apps": {...}}`), apps sorted, one a line.
pub fn write_dump(zone: &Transferred, out: &mut impl Write) -> io::Result<()> {
    let mut apps: Vec<_> = zone.apps.iter().collect();
    apps.sort_unstable();
    write!(out, "{{\"serial\": {}, \"apps\": {{", zone.serial)?;
    for (i, (app, cluster)) in apps.into_iter().enumerate() {
        let separator = if i == 0 { "\n" } else { ",\n" };
        // App IDs and clusters are host-name labels: nothing to escape in JSON.
        write!(out, "{separator}\"{app}\": \"{cluster}\"")?;
    }
    writeln!(out, "\n}}}}")
}
