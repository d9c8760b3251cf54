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
    let mut sh = exec::Shell::new(core);
    let mut io = exec::Io {
        stdin,
        stdout,
        stderr,
    };
    let s = sh.run_text(script, &mut io);
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
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
    if argv.is_empty() {
        return 0;
    }
    let mut sh = exec::Shell::new(core);
    let mut io = exec::Io {
        stdin,
        stdout,
        stderr,
    };
    let s = sh.dispatch(argv, Vec::new(), &mut io);
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
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
