//! `nc`: toybox's netcat, listening side only (`nc -l -p PORT`, `nc -l PORT`).

use super::{fail, getopt};
use crate::net::Conn;
use crate::shell::Ctx;
use crate::shell::pipe::{Hub, HubReader, HubWriter, Stream};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;

/// `nc -l [-p] PORT`: listens on the phone's PORT, accepts one connection, copies stdin to it
/// and its data to stdout, and exits once both directions are done (or the shell's stream
/// goes away). Connecting out of the phone is not supported.
pub fn nc(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "lp:q:w:W:nv46", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if !o.has('l') {
        fail(ctx, "nc", "only listening (-l) is supported");
        return 1;
    }
    let port_arg = match (o.val('p'), o.args.as_slice()) {
        (Some(p), []) => p.to_string(),
        (None, [p]) => p.clone(),
        _ => {
            fail(ctx, "nc", "usage: nc -l -p PORT");
            return 1;
        }
    };
    let port = match port_arg.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            fail(ctx, "nc", &format!("bad port '{port_arg}'"));
            return 1;
        }
    };
    let conn = {
        let listener = match ctx.core.net.listen(port) {
            Ok(l) => l,
            Err(e) => {
                fail(ctx, "nc", &format!("bind: {e}"));
                return 1;
            }
        };
        match listener.accept(&ctx.cancel) {
            Some(c) => c,
            None => return crate::shell::HUNG_UP,
        }
    };
    relay(ctx, conn);
    0
}

/// Moves bytes between the command's streams and the connection until both directions end.
/// The streams belong to this thread, so it pumps them (as a pipeline does) while two threads
/// work the connection; a third closes everything once the shell's stream goes away.
fn relay(ctx: &mut Ctx<'_>, conn: Conn) {
    let hub = Hub::new();
    let closer = conn.closer();
    let Conn {
        reader: mut from_peer,
        writer: mut to_peer,
    } = conn;
    let cancel = ctx.cancel.clone();
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        hub.stage_started();
        hub.stage_started();
        let (h1, h2) = (hub.clone(), hub.clone());
        let (c1, c2) = (closer.clone(), closer.clone());
        let outbound = std::thread::Builder::new()
            .name("nc-in".into())
            .spawn_scoped(scope, move || {
                let mut input = HubReader { hub: h1.clone() };
                let _ = copy(&mut input, &mut to_peer);
                // End of input: the peer sees end of file (a half close).
                drop(to_peer);
                h1.stage_finished();
            });
        let inbound = std::thread::Builder::new()
            .name("nc-out".into())
            .spawn_scoped(scope, move || {
                let mut out = HubWriter {
                    hub: h2.clone(),
                    stream: Stream::Out,
                };
                if copy(&mut from_peer, &mut out).is_err() {
                    // Nobody reads our output any more: drop the connection.
                    c2.close();
                }
                drop(from_peer);
                h2.stage_finished();
            });
        for spawned in [&outbound, &inbound] {
            if spawned.is_err() {
                hub.stage_finished();
                c1.close();
                hub.abort();
            }
        }
        let watchdog = std::thread::Builder::new()
            .name("nc-watch".into())
            .spawn_scoped(scope, || {
                while !finished.load(Ordering::Relaxed) {
                    if cancel.is_cancelled() {
                        closer.close();
                        hub.abort();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        hub.pump(ctx.stdin, ctx.stdout, ctx.stderr);
        finished.store(true, Ordering::Relaxed);
        if watchdog.is_err() {
            closer.close();
        }
    });
}

/// Copies until end of file, in bounded chunks.
fn copy(from: &mut dyn Read, to: &mut dyn Write) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}
