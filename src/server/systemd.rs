//! The systemd notify protocol (sd_notify(3)), with nothing but the standard library: when
//! `NOTIFY_SOCKET` is set, the service manager learns when cnamed is ready, when a reload
//! starts and ends (`Type=notify-reload`, systemd 253+), and when it stops.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Where notifications go; `None` when not started by systemd (every call is then a no-op).
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, Target)>,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    /// A Linux abstract socket: `NOTIFY_SOCKET=@name`.
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`. An unusable value is reported once and ignored.
    pub fn from_env() -> Self {
        let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
            return Self { target: None };
        };
        let bytes = value.as_encoded_bytes();
        let target = match bytes.strip_prefix(b"@") {
            Some(name) => Target::Abstract(name.to_vec()),
            None => Target::Path(PathBuf::from(&value)),
        };
        match UnixDatagram::unbound() {
            Ok(socket) => Self {
                target: Some((socket, target)),
            },
            Err(error) => {
                crate::log!(Warning, "NOTIFY_SOCKET ignored: {error}");
                Self { target: None }
            }
        }
    }

    /// Sends one notification (newline-separated `KEY=value` lines). Failures are logged, not
    /// fatal: the service manager going away must not stop DNS.
    pub fn send(&self, message: &str) {
        let Some((socket, target)) = &self.target else {
            return;
        };
        let sent = match target {
            Target::Path(path) => socket.send_to(message.as_bytes(), path),
            Target::Abstract(name) => abstract_send(socket, name, message.as_bytes()),
        };
        if let Err(error) = sent {
            crate::log!(Warning, "cannot notify the service manager: {error}");
        }
    }

    /// Ready to serve, with a status line.
    pub fn ready(&self, status: &str) {
        // One line: a newline would start another (bogus) variable.
        let status = status.replace('\n', " ");
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload starts now (systemd 253: RELOADING=1 with the monotonic time).
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            crate::sys::monotonic_usec()
        ));
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

fn abstract_send(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &addr)
}
