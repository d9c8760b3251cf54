//! The phone's shell: a POSIX-style interpreter (`parser`, `exec`) over the phone's commands
//! (`crate::commands`). It behaves like Android's `/system/bin/sh` (mksh) closely enough for
//! scripts that drive phones over `adb shell`:
//!
//! - diagnostics start with `/system/bin/sh: ` ([`SH`]);
//! - an unknown command prints `/system/bin/sh: NAME: inaccessible or not found` and gives 127
//!   (mksh's wording on Android);
//! - a syntax error prints `/system/bin/sh: syntax error: …` and gives 2;
//! - pipeline stages run concurrently (each on its own thread, connected by bounded in-memory
//!   pipes), so `yes | head -n 1` ends and `logcat | grep x` streams;
//! - `&` runs the command in the foreground (there is no job control);
//! - only descriptors 0, 1 and 2 exist; redirections of others are accepted and ignored;
//! - `/dev/null`, `/dev/zero`, `/dev/urandom`, `/dev/stdout` and `/dev/stderr` are virtual.
//!
//! Every script is bounded: at most [`exec::MAX_COMMANDS`] commands (loops included), nesting
//! of functions/`sh -c`/substitutions up to [`exec::MAX_CALL_DEPTH`], command substitutions
//! capture at most [`exec::MAX_SUBST_OUTPUT`] bytes.

pub mod exec;
pub mod parser;
pub mod pattern;
pub mod pipe;

use crate::PhoneCore;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Asks a running script to stop: set when the client that started it goes away. The
/// interpreter checks it before every command and commands that wait (`sleep`) check it while
/// they wait, so an abandoned command never holds its thread for long.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps for `d` unless cancelled first; returns false if cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

/// Exit status of a script stopped by [`Cancel`]: killed by SIGHUP (128 + 1), as a shell whose
/// terminal went away.
pub const HUNG_UP: i32 = 129;

/// The shell's name in diagnostics, as on Android.
pub const SH: &str = "/system/bin/sh";

/// What a command sees while it runs. Commands are synchronous: the interpreter runs on a
/// blocking thread, with stdin/stdout/stderr bridged to the ADB stream.
pub struct Ctx<'a> {
    pub core: &'a PhoneCore,
    /// Current directory, an absolute device path.
    pub cwd: String,
    /// Shell variables exported to commands.
    pub env: &'a mut BTreeMap<String, String>,
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    /// Set when the command should stop (its client went away).
    pub cancel: Cancel,
}

/// A command: `args[0]` is its name; the return value is the exit status.
pub type CommandFn = fn(&mut Ctx<'_>, &[String]) -> i32;

/// The captured result of [`run_capture`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: i32,
}

impl Output {
    /// stdout as text (lossy).
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Runs a script (what `sh -c SCRIPT` does) in a fresh shell at `/`; returns its exit status
/// (0–255).
pub fn run_script(
    core: &PhoneCore,
    script: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_script_with(core, script, stdin, stdout, stderr, &Cancel::new())
}

/// [`run_script`] that stops early once `cancel` is set.
pub fn run_script_with(
    core: &PhoneCore,
    script: &str,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    cancel: &Cancel,
) -> i32 {
    let mut sh = exec::Shell::new(core);
    sh.cancel = cancel.clone();
    let mut io = exec::Io {
        stdin,
        stdout,
        stderr,
    };
    let s = sh.run_text(script, &mut io);
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
    if cancel.is_cancelled() {
        return HUNG_UP;
    }
    sh.exit.unwrap_or(s) & 0xff
}

/// Runs a script with `stdin` as input and returns what it wrote and its status.
pub fn run_capture(core: &PhoneCore, script: &str, stdin: &[u8]) -> Output {
    let mut input = stdin;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let status = run_script(core, script, &mut input, &mut out, &mut err);
    Output {
        stdout: out,
        stderr: err,
        status,
    }
}

/// Runs one command from already-split arguments, without any shell parsing (ADB
/// `abb_exec:`); `argv[0]` names the command.
pub fn run_argv(
    core: &PhoneCore,
    argv: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    run_argv_with(core, argv, stdin, stdout, stderr, &Cancel::new())
}

/// [`run_argv`] that stops early once `cancel` is set.
pub fn run_argv_with(
    core: &PhoneCore,
    argv: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    cancel: &Cancel,
) -> i32 {
    if argv.is_empty() {
        return 0;
    }
    let mut sh = exec::Shell::new(core);
    sh.cancel = cancel.clone();
    let mut io = exec::Io {
        stdin,
        stdout,
        stderr,
    };
    let s = sh.dispatch(argv, Vec::new(), &mut io);
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
    if cancel.is_cancelled() {
        return HUNG_UP;
    }
    sh.exit.unwrap_or(s) & 0xff
}

/// An interactive shell: state (directory, variables, functions) carries over from one line
/// to the next.
pub struct Session<'c> {
    shell: exec::Shell<'c>,
}

impl<'c> Session<'c> {
    /// A new session at `/`.
    pub fn new(core: &'c PhoneCore) -> Session<'c> {
        Session {
            shell: exec::Shell::new(core),
        }
    }

    /// Stops the session's commands once `cancel` is set.
    pub fn set_cancel(&mut self, cancel: &Cancel) {
        self.shell.cancel = cancel.clone();
    }

    /// The current directory.
    pub fn cwd(&self) -> &str {
        &self.shell.cwd
    }

    /// Runs one line; returns its status. A syntax error is reported and does not end the
    /// session.
    pub fn run(
        &mut self,
        line: &str,
        stdin: &mut dyn Read,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> i32 {
        let mut io = exec::Io {
            stdin,
            stdout,
            stderr,
        };
        let s = self.shell.run_text(line, &mut io);
        let _ = io.stdout.flush();
        let _ = io.stderr.flush();
        s & 0xff
    }

    /// `Some(status)` once `exit` ran: the session is over.
    pub fn exited(&self) -> Option<i32> {
        self.shell.exit.map(|s| s & 0xff)
    }
}
