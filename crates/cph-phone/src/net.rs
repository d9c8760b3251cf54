//! The phone's TCP socket table: what a program in the phone listens on, and connections to it.
//!
//! Only the shell's `nc -l` listens (one connection per listener, as toybox's `nc -l`); the
//! host reaches a listener with [`PhoneNet::connect`] (a port mapped from the host, or ADB's
//! `tcp:` service). A connection to a port nobody listens on is refused at once. A connection
//! is two bounded in-memory pipes ([`crate::shell::pipe`]), so a slow reader holds its writer
//! back instead of growing a buffer.

use crate::shell::Cancel;
use crate::shell::pipe::{self, PipeCloser, PipeReader, PipeWriter};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How many ports a phone listens on at most at a time.
pub const MAX_LISTENERS: usize = 64;

/// How often a waiting `accept` looks at its cancel flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One end of an in-phone TCP connection.
pub struct Conn {
    pub reader: PipeReader,
    pub writer: PipeWriter,
}

impl Conn {
    /// Two connected ends.
    pub fn pair() -> (Conn, Conn) {
        let (aw, br) = pipe::pipe();
        let (bw, ar) = pipe::pipe();
        (
            Conn {
                reader: ar,
                writer: aw,
            },
            Conn {
                reader: br,
                writer: bw,
            },
        )
    }

    /// A handle that closes both directions of the connection at once (from any thread).
    pub fn closer(&self) -> ConnCloser {
        ConnCloser(self.reader.closer(), self.writer.closer())
    }
}

/// Closes both directions of a connection.
#[derive(Clone)]
pub struct ConnCloser(PipeCloser, PipeCloser);

impl ConnCloser {
    pub fn close(&self) {
        self.0.close();
        self.1.close();
    }
}

/// Why a port cannot be listened on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    #[error("Address already in use")]
    InUse,
    #[error("Too many open files")]
    TooMany,
}

/// A listener waiting for its one connection.
struct Pending {
    conn: Mutex<Option<Conn>>,
    cv: Condvar,
}

/// The phone's listening sockets, by port.
#[derive(Default)]
pub struct PhoneNet {
    listeners: Mutex<HashMap<u16, Arc<Pending>>>,
}

impl PhoneNet {
    pub fn new() -> PhoneNet {
        PhoneNet::default()
    }

    /// Listens on `port` for one connection.
    pub fn listen(&self, port: u16) -> Result<Listener<'_>, ListenError> {
        let mut map = lock(&self.listeners);
        if map.contains_key(&port) {
            return Err(ListenError::InUse);
        }
        if map.len() >= MAX_LISTENERS {
            return Err(ListenError::TooMany);
        }
        let pending = Arc::new(Pending {
            conn: Mutex::new(None),
            cv: Condvar::new(),
        });
        map.insert(port, pending.clone());
        Ok(Listener {
            net: self,
            port,
            pending,
        })
    }

    /// Whether something listens on `port` now.
    pub fn is_listening(&self, port: u16) -> bool {
        lock(&self.listeners).contains_key(&port)
    }

    /// Connects to the listener on `port`; `ConnectionRefused` when nobody listens. The
    /// listener takes this one connection and stops listening.
    pub fn connect(&self, port: u16) -> io::Result<Conn> {
        let pending = lock(&self.listeners)
            .remove(&port)
            .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        let (mine, theirs) = Conn::pair();
        *lock(&pending.conn) = Some(theirs);
        pending.cv.notify_all();
        Ok(mine)
    }
}

/// A listening socket; dropping it stops listening.
pub struct Listener<'a> {
    net: &'a PhoneNet,
    port: u16,
    pending: Arc<Pending>,
}

impl Listener<'_> {
    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the connection; `None` once `cancel` is set first.
    pub fn accept(&self, cancel: &Cancel) -> Option<Conn> {
        let mut slot = lock(&self.pending.conn);
        loop {
            if let Some(c) = slot.take() {
                return Some(c);
            }
            if cancel.is_cancelled() {
                return None;
            }
            slot = self
                .pending
                .cv
                .wait_timeout(slot, ACCEPT_POLL)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

impl Drop for Listener<'_> {
    fn drop(&mut self) {
        let mut map = lock(&self.net.listeners);
        if map
            .get(&self.port)
            .is_some_and(|p| Arc::ptr_eq(p, &self.pending))
        {
            map.remove(&self.port);
        }
        drop(map);
        // A connection that arrived but was never taken is closed.
        if let Some(c) = lock(&self.pending.conn).take() {
            c.closer().close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn one_connection_per_listener_and_refusal() {
        let net = PhoneNet::new();
        assert_eq!(
            net.connect(20000).err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        let l = net.listen(20000).unwrap();
        assert_eq!(net.listen(20000).err(), Some(ListenError::InUse));
        let mut host = net.connect(20000).unwrap();
        assert!(net.connect(20000).is_err());
        let mut phone = l.accept(&Cancel::new()).unwrap();
        host.writer.write_all(b"ping").unwrap();
        drop(host.writer);
        let mut got = String::new();
        phone.reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "ping");
        phone.closer().close();
        assert_eq!(host.reader.read(&mut [0u8; 4]).unwrap(), 0);
        drop(l);
        assert!(net.listen(20000).is_ok());
    }

    #[test]
    fn accept_stops_when_cancelled() {
        let net = PhoneNet::new();
        let l = net.listen(1).unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        assert!(l.accept(&cancel).is_none());
        drop(l);
        assert!(!net.is_listening(1));
    }
}
