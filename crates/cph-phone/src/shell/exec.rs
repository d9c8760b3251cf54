//! The interpreter: expands words, applies redirections, runs builtins, functions and the
//! phone's commands, and runs pipeline stages on their own threads.

use super::parser::{
    self, AndOr, Command, Compound, List, ParamOp, Part, Pipeline, Redir, RedirKind, Word,
};
use super::pattern::{self, PChar};
use super::pipe::{self, Hub, HubReader, HubWriter, Stream};
use super::{Ctx, SH};
use crate::PhoneCore;
use crate::fs::{self, WriteMode};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most commands one script may run (loops included) before the shell stops it.
pub const MAX_COMMANDS: u64 = 10_000_000;
/// Deepest nesting of functions, `sh -c`, `eval` and substitutions.
pub const MAX_CALL_DEPTH: usize = 64;
/// Most stages in one pipeline.
pub const MAX_PIPELINE_STAGES: usize = 64;
/// Most bytes a command substitution captures.
pub const MAX_SUBST_OUTPUT: usize = 16 * 1024 * 1024;
/// Most bytes of a script read from a file or stdin by `sh`.
pub const MAX_SCRIPT_BYTES: u64 = 4 * 1024 * 1024;
/// Most words one glob pattern expands to.
pub const MAX_GLOB_RESULTS: usize = 100_000;

/// A command's standard streams.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Break(u32),
    Continue(u32),
    Return,
}

/// Interpreter state (a subshell is a clone).
#[derive(Clone)]
pub struct Shell<'c> {
    pub core: &'c PhoneCore,
    pub cwd: String,
    pub vars: BTreeMap<String, String>,
    pub arg0: String,
    pub args: Vec<String>,
    pub status: i32,
    funcs: HashMap<String, Arc<Command>>,
    /// Set by `exit` (and fatal errors): the script ends with this status.
    pub exit: Option<i32>,
    flow: Option<Flow>,
    loop_depth: u32,
    call_depth: usize,
    errexit: bool,
    cond_depth: u32,
    budget: Arc<AtomicU64>,
    /// Set when the script's client went away; checked before every command.
    pub cancel: super::Cancel,
    pid: u32,
    /// Status of the last command substitution of the command being expanded.
    subst_status: Option<i32>,
}

/// Builtins the interpreter handles itself (they change its state).
const SPECIAL_BUILTINS: &[&str] = &[
    ":", ".", "alias", "break", "cd", "command", "continue", "eval", "exec", "exit", "export",
    "local", "read", "readonly", "return", "set", "sh", "shift", "source", "trap", "type",
    "ulimit", "umask", "unset", "wait",
];

/// Whether `name` is handled by the interpreter itself.
pub fn is_builtin(name: &str) -> bool {
    SPECIAL_BUILTINS.contains(&name)
}

fn default_vars() -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for (k, val) in [
        (
            "PATH",
            "/product/bin:/apex/com.android.runtime/bin:/apex/com.android.art/bin:/system_ext/bin:/system/bin:/system/xbin:/odm/bin:/vendor/bin:/vendor/xbin",
        ),
        ("HOME", "/"),
        ("SHELL", "/system/bin/sh"),
        ("USER", "root"),
        ("LOGNAME", "root"),
        ("HOSTNAME", "localhost"),
        ("TERM", "dumb"),
        ("TMPDIR", "/data/local/tmp"),
        ("ANDROID_DATA", "/data"),
        ("ANDROID_ROOT", "/system"),
        ("ANDROID_STORAGE", "/storage"),
        ("ANDROID_ART_ROOT", "/apex/com.android.art"),
        ("ANDROID_I18N_ROOT", "/apex/com.android.i18n"),
        ("ANDROID_TZDATA_ROOT", "/apex/com.android.tzdata"),
        ("ANDROID_ASSETS", "/system/app"),
        ("EXTERNAL_STORAGE", "/sdcard"),
        ("ASEC_MOUNTPOINT", "/mnt/asec"),
        (
            "BOOTCLASSPATH",
            "/apex/com.android.art/javalib/core-oj.jar:/apex/com.android.art/javalib/core-libart.jar:/system/framework/framework.jar",
        ),
        ("IFS", " \t\n"),
        ("PS1", "# "),
    ] {
        v.insert(k.to_owned(), val.to_owned());
    }
    v
}

impl<'c> Shell<'c> {
    /// A fresh shell at `/` with the phone's default environment.
    pub fn new(core: &'c PhoneCore) -> Shell<'c> {
        Shell {
            core,
            cwd: "/".to_owned(),
            vars: default_vars(),
            arg0: SH.to_owned(),
            args: Vec::new(),
            status: 0,
            funcs: HashMap::new(),
            exit: None,
            flow: None,
            loop_depth: 0,
            call_depth: 0,
            errexit: false,
            cond_depth: 0,
            budget: Arc::new(AtomicU64::new(MAX_COMMANDS)),
            cancel: super::Cancel::new(),
            pid: 1000 + (rand::random::<u32>() % 30000),
            subst_status: None,
        }
    }

    fn subshell(&self) -> Shell<'c> {
        let mut s = self.clone();
        s.flow = None;
        s.loop_depth = 0;
        s.pid = 1000 + (rand::random::<u32>() % 30000);
        s
    }

    fn stopped(&self) -> bool {
        self.exit.is_some() || self.flow.is_some()
    }

    /// Parses and runs a script; syntax errors print `sh: syntax error: …` and give 2.
    pub fn run_text(&mut self, text: &str, io: &mut Io<'_>) -> i32 {
        match parser::parse_at_depth(text, self.call_depth) {
            Ok(list) => self.run_list(&list, io),
            Err(e) => {
                let _ = writeln!(io.stderr, "{SH}: syntax error: {e}");
                self.status = 2;
                2
            }
        }
    }

    pub fn run_list(&mut self, list: &List, io: &mut Io<'_>) -> i32 {
        for item in &list.0 {
            if self.stopped() {
                break;
            }
            self.run_and_or(item, io);
        }
        self.status
    }

    fn run_and_or(&mut self, ao: &AndOr, io: &mut Io<'_>) {
        let n = ao.rest.len();
        self.cond_depth += u32::from(n > 0);
        let mut status = self.run_pipeline(&ao.first, io);
        let mut last_ran = n == 0;
        for (i, (and, p)) in ao.rest.iter().enumerate() {
            if self.stopped() {
                break;
            }
            if (*and && status == 0) || (!*and && status != 0) {
                if i + 1 == n {
                    self.cond_depth -= 1;
                    last_ran = true;
                    status = self.run_pipeline(p, io);
                    self.cond_depth += 1;
                } else {
                    status = self.run_pipeline(p, io);
                }
            }
        }
        self.cond_depth -= u32::from(n > 0);
        self.status = status;
        if self.errexit
            && status != 0
            && last_ran
            && self.cond_depth == 0
            && self.exit.is_none()
            && self.flow.is_none()
        {
            self.exit = Some(status);
        }
    }

    fn run_pipeline(&mut self, p: &Pipeline, io: &mut Io<'_>) -> i32 {
        if p.negate {
            self.cond_depth += 1;
        }
        let status = if p.cmds.len() == 1 {
            self.run_command(&p.cmds[0], io)
        } else {
            self.run_stages(&p.cmds, io)
        };
        let status = if p.negate {
            self.cond_depth -= 1;
            i32::from(status == 0)
        } else {
            status
        };
        self.status = status;
        status
    }

    /// Runs a multi-stage pipeline: each stage on its own thread, connected by pipes; this
    /// thread moves the first stage's input and the output of all stages.
    fn run_stages(&mut self, cmds: &[Command], io: &mut Io<'_>) -> i32 {
        if cmds.len() > MAX_PIPELINE_STAGES {
            let _ = writeln!(io.stderr, "{SH}: pipeline too long");
            return 1;
        }
        let hub = Hub::new();
        let n = cmds.len();
        let mut statuses: Vec<i32> = vec![0; n];
        std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(n);
            let mut prev: Option<pipe::PipeReader> = None;
            for (i, cmd) in cmds.iter().enumerate() {
                let stdin: Box<dyn Read + Send> = match prev.take() {
                    Some(r) => Box::new(r),
                    None => Box::new(HubReader { hub: hub.clone() }),
                };
                let stdout: Box<dyn Write + Send> = if i + 1 == n {
                    Box::new(HubWriter {
                        hub: hub.clone(),
                        stream: Stream::Out,
                    })
                } else {
                    let (w, r) = pipe::pipe();
                    prev = Some(r);
                    Box::new(w)
                };
                let stderr: Box<dyn Write + Send> = Box::new(HubWriter {
                    hub: hub.clone(),
                    stream: Stream::Err,
                });
                let mut sub = self.subshell();
                let stage_hub = hub.clone();
                hub.stage_started();
                let spawned = std::thread::Builder::new()
                    .name("sh-stage".into())
                    .spawn_scoped(scope, move || {
                        let mut stdin = stdin;
                        let mut stdout = stdout;
                        let mut stderr = stderr;
                        let status = {
                            let mut io = Io {
                                stdin: &mut *stdin,
                                stdout: &mut *stdout,
                                stderr: &mut *stderr,
                            };
                            let s = sub.run_command(cmd, &mut io);
                            let _ = io.stdout.flush();
                            sub.exit.unwrap_or(s)
                        };
                        drop(stdin);
                        drop(stdout);
                        drop(stderr);
                        stage_hub.stage_finished();
                        status
                    });
                match spawned {
                    Ok(h) => handles.push(Some(h)),
                    Err(_) => {
                        hub.stage_finished();
                        hub.abort();
                        let _ = writeln!(io.stderr, "{SH}: can't fork");
                        handles.push(None);
                        break;
                    }
                }
            }
            drop(prev);
            hub.pump(io.stdin, io.stdout, io.stderr);
            for (i, h) in handles.into_iter().enumerate() {
                statuses[i] = match h {
                    Some(h) => h.join().unwrap_or(1),
                    None => 1,
                };
            }
        });
        if statuses.len() < n {
            return 1;
        }
        statuses[n - 1]
    }

    fn charge(&mut self, io: &mut Io<'_>) -> bool {
        if self.cancel.is_cancelled() {
            // Nobody is listening any more: stop quietly, as a hung-up shell does.
            self.exit = Some(super::HUNG_UP);
            return false;
        }
        let left = self.budget.fetch_sub(1, Ordering::Relaxed);
        if left == 0 || left > MAX_COMMANDS {
            self.budget.store(0, Ordering::Relaxed);
            let _ = writeln!(io.stderr, "{SH}: too many commands, stopped");
            self.exit = Some(1);
            return false;
        }
        true
    }

    pub fn run_command(&mut self, cmd: &Command, io: &mut Io<'_>) -> i32 {
        if !self.charge(io) {
            return 1;
        }
        let status = match cmd {
            Command::FuncDef { name, body } => {
                self.funcs.insert(name.clone(), body.clone());
                0
            }
            Command::Compound { body, redirs } => {
                if redirs.is_empty() {
                    self.run_compound(body, io)
                } else {
                    match self.with_redirs(redirs, io, |sh, io| sh.run_compound(body, io)) {
                        Ok(s) => s,
                        Err(s) => s,
                    }
                }
            }
            Command::Simple {
                assigns,
                words,
                redirs,
            } => self.run_simple(assigns, words, redirs, io),
        };
        self.status = status;
        status
    }

    fn run_compound(&mut self, body: &Compound, io: &mut Io<'_>) -> i32 {
        match body {
            Compound::Brace(l) => self.run_list(l, io),
            Compound::Subshell(l) => {
                let mut sub = self.subshell();
                let s = sub.run_list(l, io);
                sub.exit.unwrap_or(s)
            }
            Compound::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    self.cond_depth += 1;
                    let c = self.run_list(cond, io);
                    self.cond_depth -= 1;
                    if self.stopped() {
                        return self.status;
                    }
                    if c == 0 {
                        return self.run_list(body, io);
                    }
                }
                match otherwise {
                    Some(o) => self.run_list(o, io),
                    None => 0,
                }
            }
            Compound::For { var, items, body } => {
                let values = match items {
                    Some(words) => {
                        let mut v = Vec::new();
                        for w in words {
                            match self.expand(w, io) {
                                Ok(mut fields) => v.append(&mut fields),
                                Err(s) => return s,
                            }
                        }
                        v
                    }
                    None => self.args.clone(),
                };
                let mut status = 0;
                self.loop_depth += 1;
                for value in values {
                    self.vars.insert(var.clone(), value);
                    status = self.run_list(body, io);
                    if self.loop_control() {
                        break;
                    }
                }
                self.loop_depth -= 1;
                status
            }
            Compound::While { cond, body, until } => {
                let mut status = 0;
                self.loop_depth += 1;
                loop {
                    if !self.charge(io) {
                        break;
                    }
                    self.cond_depth += 1;
                    let c = self.run_list(cond, io);
                    self.cond_depth -= 1;
                    if self.stopped() {
                        self.loop_control();
                        break;
                    }
                    if (c == 0) == *until {
                        break;
                    }
                    status = self.run_list(body, io);
                    if self.loop_control() {
                        break;
                    }
                }
                self.loop_depth -= 1;
                status
            }
            Compound::Case { word, arms } => {
                let value = match self.expand_single(word, io) {
                    Ok(v) => v,
                    Err(s) => return s,
                };
                for (patterns, body) in arms {
                    for p in patterns {
                        let pat = match self.expand_pattern(p, io) {
                            Ok(p) => p,
                            Err(s) => return s,
                        };
                        if pattern::matches(&pat, &value) {
                            return self.run_list(body, io);
                        }
                    }
                }
                0
            }
        }
    }

    /// After a loop body: handles `break`/`continue`; true when the loop must end.
    fn loop_control(&mut self) -> bool {
        match self.flow {
            Some(Flow::Break(n)) => {
                self.flow = if n > 1 {
                    Some(Flow::Break(n - 1))
                } else {
                    None
                };
                true
            }
            Some(Flow::Continue(n)) => {
                if n > 1 {
                    self.flow = Some(Flow::Continue(n - 1));
                    true
                } else {
                    self.flow = None;
                    false
                }
            }
            Some(Flow::Return) => true,
            None => self.exit.is_some(),
        }
    }

    fn run_simple(
        &mut self,
        assigns: &[(String, Word)],
        words: &[Word],
        redirs: &[Redir],
        io: &mut Io<'_>,
    ) -> i32 {
        self.subst_status = None;
        let mut argv = Vec::new();
        for w in words {
            match self.expand(w, io) {
                Ok(mut f) => argv.append(&mut f),
                Err(s) => return s,
            }
        }
        let mut values = Vec::with_capacity(assigns.len());
        for (name, w) in assigns {
            match self.expand_single(w, io) {
                Ok(v) => values.push((name.clone(), v)),
                Err(s) => return s,
            }
        }
        if argv.is_empty() {
            for (k, v) in values {
                self.vars.insert(k, v);
            }
            if redirs.is_empty() {
                return self.status_after_assign();
            }
            return match self.with_redirs(redirs, io, |_, _| 0) {
                Ok(s) | Err(s) => s,
            };
        }
        if redirs.is_empty() {
            self.dispatch(&argv, values, io)
        } else {
            match self.with_redirs(redirs, io, |sh, io| sh.dispatch(&argv, values, io)) {
                Ok(s) | Err(s) => s,
            }
        }
    }

    /// Status of a bare assignment: that of its last command substitution, else 0.
    fn status_after_assign(&self) -> i32 {
        self.subst_status.unwrap_or(0)
    }

    /// Runs one expanded command line.
    pub fn dispatch(
        &mut self,
        argv: &[String],
        prefix: Vec<(String, String)>,
        io: &mut Io<'_>,
    ) -> i32 {
        let name = argv[0].as_str();
        if is_builtin(name) {
            let saved: Vec<(String, Option<String>)> = prefix
                .iter()
                .map(|(k, _)| (k.clone(), self.vars.get(k).cloned()))
                .collect();
            for (k, v) in &prefix {
                self.vars.insert(k.clone(), v.clone());
            }
            let s = self.builtin(argv, io);
            if name != "export" && name != "readonly" {
                for (k, old) in saved {
                    match old {
                        Some(v) => self.vars.insert(k, v),
                        None => self.vars.remove(&k),
                    };
                }
            }
            return s;
        }
        if let Some(body) = self.funcs.get(name).cloned() {
            return self.call_function(&body, argv, io);
        }
        let f = if name.contains('/') {
            match self.resolve_path_command(name, argv, io) {
                PathCommand::Builtin(f) => f,
                PathCommand::Done(s) => return s,
            }
        } else {
            match crate::commands::lookup(name) {
                Some(f) => f,
                None => {
                    let _ = writeln!(io.stderr, "{SH}: {name}: inaccessible or not found");
                    return 127;
                }
            }
        };
        if prefix.is_empty() {
            let mut ctx = Ctx {
                core: self.core,
                cwd: self.cwd.clone(),
                env: &mut self.vars,
                stdin: &mut *io.stdin,
                stdout: &mut *io.stdout,
                stderr: &mut *io.stderr,
                cancel: self.cancel.clone(),
            };
            let s = f(&mut ctx, argv);
            let _ = io.stdout.flush();
            s
        } else {
            let mut env = self.vars.clone();
            env.extend(prefix);
            let mut ctx = Ctx {
                core: self.core,
                cwd: self.cwd.clone(),
                env: &mut env,
                stdin: &mut *io.stdin,
                stdout: &mut *io.stdout,
                stderr: &mut *io.stderr,
                cancel: self.cancel.clone(),
            };
            let s = f(&mut ctx, argv);
            let _ = io.stdout.flush();
            s
        }
    }

    /// A command named by path: a shell script in the phone's file tree, or one of the
    /// phone's commands under a `bin` directory (`/system/bin/ls`).
    fn resolve_path_command(
        &mut self,
        name: &str,
        argv: &[String],
        io: &mut Io<'_>,
    ) -> PathCommand {
        let full = fs::PhoneFs::normalize(&self.cwd, name);
        let base = full.rsplit('/').next().unwrap_or("");
        let in_bin = full
            .rsplit_once('/')
            .is_some_and(|(dir, _)| dir.ends_with("/bin") || dir.ends_with("/xbin"));
        let core = self.core;
        match core.fs.stat(&fs::join(&self.cwd, name)) {
            Ok(st) if fs::is_file_mode(st.mode) => {
                let head = core.fs.open_read(&fs::join(&self.cwd, name)).and_then(|f| {
                    let mut buf = Vec::new();
                    f.take(MAX_SCRIPT_BYTES).read_to_end(&mut buf)?;
                    Ok(buf)
                });
                let Ok(text) = head else {
                    if in_bin && let Some(f) = crate::commands::lookup(base) {
                        return PathCommand::Builtin(f);
                    }
                    let _ = writeln!(io.stderr, "{SH}: {name}: can't execute: Permission denied");
                    return PathCommand::Done(126);
                };
                if st.mode & 0o111 == 0 {
                    let _ = writeln!(io.stderr, "{SH}: {name}: can't execute: Permission denied");
                    return PathCommand::Done(126);
                }
                let is_script = text.starts_with(b"#!")
                    && text.split(|b| *b == b'\n').next().is_some_and(|l| {
                        l.ends_with(b"/sh")
                            || l.ends_with(b"/sh\r")
                            || l.windows(3).any(|w| w == b"sh ")
                    });
                if is_script || (!text.starts_with(b"\x7fELF") && !text.starts_with(b"#!")) {
                    let script = String::from_utf8_lossy(&text).into_owned();
                    return PathCommand::Done(self.run_nested(&script, name, &argv[1..], io));
                }
                if in_bin && let Some(f) = crate::commands::lookup(base) {
                    return PathCommand::Builtin(f);
                }
                let _ = writeln!(io.stderr, "{SH}: {name}: can't execute: Exec format error");
                PathCommand::Done(126)
            }
            Ok(st) if fs::is_dir_mode(st.mode) => {
                let _ = writeln!(io.stderr, "{SH}: {name}: can't execute: Is a directory");
                PathCommand::Done(126)
            }
            _ => {
                if in_bin && let Some(f) = crate::commands::lookup(base) {
                    return PathCommand::Builtin(f);
                }
                let _ = writeln!(io.stderr, "{SH}: {name}: inaccessible or not found");
                PathCommand::Done(127)
            }
        }
    }

    /// Runs `script` as a child shell (`sh -c`, `sh file`, a script file).
    pub fn run_nested(
        &mut self,
        script: &str,
        arg0: &str,
        args: &[String],
        io: &mut Io<'_>,
    ) -> i32 {
        if self.call_depth >= MAX_CALL_DEPTH {
            let _ = writeln!(io.stderr, "{SH}: nested too deeply");
            return 2;
        }
        let mut sub = self.subshell();
        sub.funcs.clear();
        sub.call_depth += 1;
        sub.arg0 = arg0.to_owned();
        sub.args = args.to_vec();
        sub.errexit = false;
        let s = sub.run_text(script, io);
        sub.exit.unwrap_or(s)
    }

    fn call_function(&mut self, body: &Command, argv: &[String], io: &mut Io<'_>) -> i32 {
        if self.call_depth >= MAX_CALL_DEPTH {
            let _ = writeln!(io.stderr, "{SH}: {}: function nested too deeply", argv[0]);
            return 2;
        }
        let saved = std::mem::replace(&mut self.args, argv[1..].to_vec());
        let saved_loop = std::mem::replace(&mut self.loop_depth, 0);
        self.call_depth += 1;
        let s = self.run_command(body, io);
        self.call_depth -= 1;
        self.loop_depth = saved_loop;
        self.args = saved;
        if self.flow == Some(Flow::Return) {
            self.flow = None;
            return self.status;
        }
        s
    }

    /// Applies redirections around `f`; `Err(status)` when a redirection failed.
    fn with_redirs(
        &mut self,
        redirs: &[Redir],
        io: &mut Io<'_>,
        f: impl FnOnce(&mut Self, &mut Io<'_>) -> i32,
    ) -> Result<i32, i32> {
        let mut input: Option<Box<dyn Read>> = None;
        let mut outs: [Target; 3] = [Target::Orig(0), Target::Orig(1), Target::Orig(2)];
        for r in redirs {
            if r.fd > 2 {
                // Descriptors above 2 are accepted and ignored (nothing here uses them).
                continue;
            }
            let fd = r.fd as usize;
            match &r.kind {
                RedirKind::Read(w) | RedirKind::ReadWrite(w) => {
                    let path = self.expand_single(w, io).map_err(|s| s.max(1))?;
                    let rd = self.open_redir_read(&path, io)?;
                    if fd == 0 {
                        input = Some(rd);
                    }
                }
                RedirKind::HereDoc { body } => {
                    let text = self.expand_single(body, io).map_err(|s| s.max(1))?;
                    if fd == 0 {
                        input = Some(Box::new(io::Cursor::new(text.into_bytes())));
                    }
                }
                RedirKind::Write(w) | RedirKind::Append(w) => {
                    let path = self.expand_single(w, io).map_err(|s| s.max(1))?;
                    let mode = if matches!(r.kind, RedirKind::Append(_)) {
                        WriteMode::Append
                    } else {
                        WriteMode::Truncate
                    };
                    let t = self.open_redir_write(&path, mode, &outs, io)?;
                    if fd == 0 {
                        continue;
                    }
                    outs[fd] = t;
                }
                RedirKind::Both { target, append } => {
                    let path = self.expand_single(target, io).map_err(|s| s.max(1))?;
                    let mode = if *append {
                        WriteMode::Append
                    } else {
                        WriteMode::Truncate
                    };
                    let t = self.open_redir_write(&path, mode, &outs, io)?;
                    outs[1] = t.clone();
                    outs[2] = t;
                }
                RedirKind::Dup(w) => {
                    let word = self.expand_single(w, io).map_err(|s| s.max(1))?;
                    if word == "-" {
                        if fd == 0 {
                            input = Some(Box::new(io::empty()));
                        } else {
                            outs[fd] = Target::Closed;
                        }
                        continue;
                    }
                    match word.parse::<usize>() {
                        Ok(src @ 0..=2) if fd != 0 => outs[fd] = outs[src].clone(),
                        Ok(0..=2) => {}
                        _ => {
                            let _ = writeln!(io.stderr, "{SH}: {word}: bad file descriptor");
                            return Err(1);
                        }
                    }
                }
            }
        }
        let real_out: &mut dyn Write = &mut *io.stdout;
        let real_err: &mut dyn Write = &mut *io.stderr;
        let origs = RefCell::new((real_out, real_err));
        let mut out = SlotWriter {
            target: outs[1].clone(),
            origs: &origs,
        };
        let mut err = SlotWriter {
            target: outs[2].clone(),
            origs: &origs,
        };
        let status = match input {
            Some(mut rd) => {
                let mut io2 = Io {
                    stdin: &mut *rd,
                    stdout: &mut out,
                    stderr: &mut err,
                };
                f(self, &mut io2)
            }
            None => {
                let mut io2 = Io {
                    stdin: &mut *io.stdin,
                    stdout: &mut out,
                    stderr: &mut err,
                };
                f(self, &mut io2)
            }
        };
        let _ = out.flush();
        let _ = err.flush();
        Ok(status)
    }

    fn open_redir_read(&mut self, path: &str, io: &mut Io<'_>) -> Result<Box<dyn Read>, i32> {
        match path {
            "/dev/null" => return Ok(Box::new(io::empty())),
            "/dev/zero" => return Ok(Box::new(io::repeat(0))),
            "/dev/urandom" | "/dev/random" => return Ok(Box::new(RandomReader)),
            _ => {}
        }
        match self.core.fs.open_read(&fs::join(&self.cwd, path)) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) => {
                let _ = writeln!(io.stderr, "{SH}: can't open {path}: {}", fs::error_text(&e));
                Err(1)
            }
        }
    }

    fn open_redir_write(
        &mut self,
        path: &str,
        mode: WriteMode,
        outs: &[Target; 3],
        io: &mut Io<'_>,
    ) -> Result<Target, i32> {
        match path {
            "/dev/null" | "/dev/zero" => return Ok(Target::Null),
            "/dev/stdout" | "/proc/self/fd/1" => return Ok(outs[1].clone()),
            "/dev/stderr" | "/proc/self/fd/2" => return Ok(outs[2].clone()),
            _ => {}
        }
        match self.core.fs.open_write(&fs::join(&self.cwd, path), mode) {
            Ok(f) => Ok(Target::File(Rc::new(RefCell::new(f)))),
            Err(e) => {
                let _ = writeln!(
                    io.stderr,
                    "{SH}: can't create {path}: {}",
                    fs::error_text(&e)
                );
                Err(1)
            }
        }
    }

    fn builtin(&mut self, argv: &[String], io: &mut Io<'_>) -> i32 {
        let args = &argv[1..];
        match argv[0].as_str() {
            ":" | "trap" | "wait" | "alias" => 0,
            "ulimit" => {
                let _ = writeln!(io.stdout, "unlimited");
                0
            }
            "umask" => {
                if args.is_empty() {
                    let _ = writeln!(io.stdout, "0000");
                }
                0
            }
            "cd" => self.builtin_cd(args, io),
            "exit" => {
                let code = match args.first() {
                    None => self.status,
                    Some(a) => match a.parse::<i64>() {
                        Ok(n) => (n & 0xff) as i32,
                        Err(_) => {
                            let _ = writeln!(io.stderr, "{SH}: exit: {a}: bad number");
                            2
                        }
                    },
                };
                self.exit = Some(code);
                code
            }
            "return" => {
                let code = match args.first().map(|a| a.parse::<i64>()) {
                    None => self.status,
                    Some(Ok(n)) => (n & 0xff) as i32,
                    Some(Err(_)) => {
                        let _ = writeln!(io.stderr, "{SH}: return: {}: bad number", args[0]);
                        2
                    }
                };
                self.flow = Some(Flow::Return);
                self.status = code;
                code
            }
            "break" | "continue" => {
                let n = match args.first().map(|a| a.parse::<u32>()) {
                    None => 1,
                    Some(Ok(n)) if n >= 1 => n,
                    _ => {
                        let _ = writeln!(io.stderr, "{SH}: {}: bad number", argv[0]);
                        return 1;
                    }
                };
                if self.loop_depth == 0 {
                    return 0;
                }
                let n = n.min(self.loop_depth);
                self.flow = Some(if argv[0] == "break" {
                    Flow::Break(n)
                } else {
                    Flow::Continue(n)
                });
                0
            }
            "export" | "readonly" | "local" => {
                if args.is_empty() || args.iter().any(|a| a == "-p") {
                    for (k, v) in &self.vars {
                        let _ = writeln!(io.stdout, "export {k}={}", quote(v));
                    }
                    return 0;
                }
                let mut status = 0;
                for a in args {
                    match a.split_once('=') {
                        Some((k, v)) if parser::is_name(k) => {
                            self.vars.insert(k.to_owned(), v.to_owned());
                        }
                        None if parser::is_name(a) => {
                            self.vars.entry(a.clone()).or_default();
                        }
                        _ => {
                            let _ =
                                writeln!(io.stderr, "{SH}: {}: {a}: bad variable name", argv[0]);
                            status = 1;
                        }
                    }
                }
                status
            }
            "unset" => {
                for a in args {
                    if a == "-f" {
                        continue;
                    }
                    if a != "-v" {
                        self.vars.remove(a);
                        self.funcs.remove(a);
                    }
                }
                0
            }
            "set" => self.builtin_set(args, io),
            "shift" => {
                let n = match args.first().map(|a| a.parse::<usize>()) {
                    None => 1,
                    Some(Ok(n)) => n,
                    Some(Err(_)) => {
                        let _ = writeln!(io.stderr, "{SH}: shift: {}: bad number", args[0]);
                        return 1;
                    }
                };
                if n > self.args.len() {
                    let _ = writeln!(io.stderr, "{SH}: shift: can't shift that many");
                    return 1;
                }
                self.args.drain(..n);
                0
            }
            "read" => self.builtin_read(args, io),
            "eval" => {
                let text = args.join(" ");
                if self.call_depth >= MAX_CALL_DEPTH {
                    let _ = writeln!(io.stderr, "{SH}: eval: nested too deeply");
                    return 2;
                }
                self.call_depth += 1;
                let s = self.run_text(&text, io);
                self.call_depth -= 1;
                s
            }
            "." | "source" => {
                let Some(file) = args.first() else {
                    let _ = writeln!(io.stderr, "{SH}: {}: filename argument required", argv[0]);
                    return 2;
                };
                let text = match self
                    .core
                    .fs
                    .read(&fs::join(&self.cwd, file), MAX_SCRIPT_BYTES)
                {
                    Ok(t) => String::from_utf8_lossy(&t).into_owned(),
                    Err(e) => {
                        let _ = writeln!(io.stderr, "{SH}: {file}: {}", fs::error_text(&e));
                        return 2;
                    }
                };
                if self.call_depth >= MAX_CALL_DEPTH {
                    let _ = writeln!(io.stderr, "{SH}: {file}: nested too deeply");
                    return 2;
                }
                self.call_depth += 1;
                let s = self.run_text(&text, io);
                self.call_depth -= 1;
                if self.flow == Some(Flow::Return) {
                    self.flow = None;
                }
                s
            }
            "exec" => {
                if args.is_empty() {
                    return 0;
                }
                let s = self.dispatch(args, Vec::new(), io);
                self.exit = Some(s);
                s
            }
            "command" => {
                let args: Vec<String> = args.iter().filter(|a| *a != "-p").cloned().collect();
                match args.first().map(String::as_str) {
                    None => 0,
                    Some("-v") | Some("-V") => {
                        let mut status = 0;
                        for name in &args[1..] {
                            if !self.describe(name, io, false) {
                                status = 1;
                            }
                        }
                        status
                    }
                    Some(_) => self.dispatch(&args, Vec::new(), io),
                }
            }
            "type" => {
                let mut status = 0;
                for name in args {
                    if !self.describe(name, io, true) {
                        let _ = writeln!(io.stderr, "{name} not found");
                        status = 1;
                    }
                }
                status
            }
            "sh" => self.builtin_sh(args, io),
            _ => 127,
        }
    }

    fn describe(&mut self, name: &str, io: &mut Io<'_>, verbose: bool) -> bool {
        let text = if is_builtin(name) {
            if verbose {
                format!("{name} is a shell builtin")
            } else {
                name.to_owned()
            }
        } else if self.funcs.contains_key(name) {
            if verbose {
                format!("{name} is a function")
            } else {
                name.to_owned()
            }
        } else if crate::commands::lookup(name).is_some() {
            if verbose {
                format!("{name} is /system/bin/{name}")
            } else {
                format!("/system/bin/{name}")
            }
        } else {
            return false;
        };
        let _ = writeln!(io.stdout, "{text}");
        true
    }

    fn builtin_cd(&mut self, args: &[String], io: &mut Io<'_>) -> i32 {
        let args: Vec<&String> = args.iter().filter(|a| *a != "-L" && *a != "-P").collect();
        let target = match args.first() {
            None => self.vars.get("HOME").cloned().unwrap_or_else(|| "/".into()),
            Some(a) if a.as_str() == "-" => self
                .vars
                .get("OLDPWD")
                .cloned()
                .unwrap_or_else(|| self.cwd.clone()),
            Some(a) => (*a).clone(),
        };
        let new = fs::PhoneFs::normalize(&self.cwd, &target);
        match self.core.fs.stat(&new) {
            Ok(st) if fs::is_dir_mode(st.mode) => {
                let old = std::mem::replace(&mut self.cwd, new.clone());
                self.vars.insert("OLDPWD".into(), old);
                self.vars.insert("PWD".into(), new);
                if args.first().is_some_and(|a| a.as_str() == "-") {
                    let _ = writeln!(io.stdout, "{}", self.cwd);
                }
                0
            }
            Ok(_) => {
                let _ = writeln!(io.stderr, "{SH}: cd: {target}: Not a directory");
                2
            }
            Err(e) => {
                let _ = writeln!(io.stderr, "{SH}: cd: {target}: {}", fs::error_text(&e));
                2
            }
        }
    }

    fn builtin_set(&mut self, args: &[String], io: &mut Io<'_>) -> i32 {
        if args.is_empty() {
            for (k, v) in &self.vars {
                let _ = writeln!(io.stdout, "{k}={}", quote(v));
            }
            return 0;
        }
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if a == "--" {
                self.args = args[i + 1..].to_vec();
                return 0;
            }
            if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
                let on = a.starts_with('-');
                if a[1..].starts_with('o') {
                    // `set -o name`: only errexit matters here.
                    if let Some(opt) = args.get(i + 1) {
                        if opt == "errexit" {
                            self.errexit = on;
                        }
                        i += 2;
                        continue;
                    }
                }
                for c in a[1..].chars() {
                    if c == 'e' {
                        self.errexit = on;
                    }
                }
                i += 1;
                continue;
            }
            self.args = args[i..].to_vec();
            return 0;
        }
        0
    }

    fn builtin_read(&mut self, args: &[String], io: &mut Io<'_>) -> i32 {
        let mut raw = false;
        let mut names = Vec::new();
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "-r" => raw = true,
                "-p" | "-t" | "-n" | "-u" => i += 1,
                "-s" => {}
                n => names.push(n.to_owned()),
            }
            i += 1;
        }
        if names.is_empty() {
            names.push("REPLY".into());
        }
        // One byte at a time, so nothing after the line is consumed.
        let mut line = Vec::new();
        let mut got_newline = false;
        let mut byte = [0u8; 1];
        loop {
            match io.stdin.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => {
                    if byte[0] == b'\n' {
                        if !raw && line.last() == Some(&b'\\') {
                            line.pop();
                            continue;
                        }
                        got_newline = true;
                        break;
                    }
                    line.push(byte[0]);
                    if line.len() > 1024 * 1024 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let text = if raw { text } else { unescape_read(&text) };
        let ifs = self
            .vars
            .get("IFS")
            .cloned()
            .unwrap_or_else(|| " \t\n".into());
        let mut rest = text.trim_start_matches(|c| ifs.contains(c)).to_owned();
        for (idx, name) in names.iter().enumerate() {
            if idx + 1 == names.len() {
                let v = rest.trim_end_matches(|c: char| ifs.contains(c) && c.is_whitespace());
                self.vars.insert(name.clone(), v.to_owned());
                break;
            }
            let (field, remaining) = match rest.find(|c| ifs.contains(c)) {
                Some(p) => {
                    let sep_len = rest[p..].chars().next().map_or(1, char::len_utf8);
                    (rest[..p].to_owned(), rest[p + sep_len..].to_owned())
                }
                None => (rest.clone(), String::new()),
            };
            self.vars.insert(name.clone(), field);
            rest = remaining
                .trim_start_matches(|c: char| ifs.contains(c) && c.is_whitespace())
                .to_owned();
        }
        if got_newline || !line.is_empty() {
            if got_newline { 0 } else { 1 }
        } else {
            1
        }
    }

    fn builtin_sh(&mut self, args: &[String], io: &mut Io<'_>) -> i32 {
        let mut i = 0;
        let mut command: Option<String> = None;
        let mut errexit = false;
        while i < args.len() {
            let a = &args[i];
            if a == "-c" {
                let Some(s) = args.get(i + 1) else {
                    let _ = writeln!(io.stderr, "{SH}: -c: option requires an argument");
                    return 2;
                };
                command = Some(s.clone());
                i += 2;
                break;
            }
            if a == "--" {
                i += 1;
                break;
            }
            if a.starts_with('-') && a.len() > 1 {
                if a.contains('c') {
                    let Some(s) = args.get(i + 1) else {
                        let _ = writeln!(io.stderr, "{SH}: -c: option requires an argument");
                        return 2;
                    };
                    command = Some(s.clone());
                    errexit |= a.contains('e');
                    i += 2;
                    break;
                }
                errexit |= a.contains('e');
                i += 1;
                continue;
            }
            break;
        }
        let rest = &args[i.min(args.len())..];
        let (script, arg0, params) = match command {
            Some(c) => {
                let arg0 = rest.first().cloned().unwrap_or_else(|| SH.to_owned());
                let params = rest.get(1..).map(<[String]>::to_vec).unwrap_or_default();
                (c, arg0, params)
            }
            None => match rest.first() {
                Some(file) => match self
                    .core
                    .fs
                    .read(&fs::join(&self.cwd, file), MAX_SCRIPT_BYTES)
                {
                    Ok(t) => (
                        String::from_utf8_lossy(&t).into_owned(),
                        file.clone(),
                        rest[1..].to_vec(),
                    ),
                    Err(e) => {
                        let _ = writeln!(io.stderr, "{SH}: {file}: {}", fs::error_text(&e));
                        return 127;
                    }
                },
                None => {
                    let mut buf = Vec::new();
                    if let Err(e) = (&mut *io.stdin)
                        .take(MAX_SCRIPT_BYTES)
                        .read_to_end(&mut buf)
                    {
                        let _ = writeln!(io.stderr, "{SH}: {e}");
                        return 2;
                    }
                    (
                        String::from_utf8_lossy(&buf).into_owned(),
                        SH.to_owned(),
                        Vec::new(),
                    )
                }
            },
        };
        if self.call_depth >= MAX_CALL_DEPTH {
            let _ = writeln!(io.stderr, "{SH}: nested too deeply");
            return 2;
        }
        let mut sub = self.subshell();
        sub.funcs.clear();
        sub.call_depth += 1;
        sub.arg0 = arg0;
        sub.args = params;
        sub.errexit = errexit;
        let s = sub.run_text(&script, io);
        sub.exit.unwrap_or(s)
    }

    // ----- expansion -----

    /// Expands a word into fields (split and globbed).
    pub fn expand(&mut self, word: &Word, io: &mut Io<'_>) -> Result<Vec<String>, i32> {
        let fields = self.expand_fields(word, io, true)?;
        let mut out = Vec::new();
        for f in fields {
            let pat: Vec<PChar> = f.chars.clone();
            if pattern::has_wildcards(&pat) {
                let matched = self.glob(&pat);
                if !matched.is_empty() {
                    out.extend(matched);
                    continue;
                }
            }
            out.push(f.chars.iter().map(|p| p.c).collect());
        }
        Ok(out)
    }

    /// Expands a word into one string (no splitting or globbing).
    pub fn expand_single(&mut self, word: &Word, io: &mut Io<'_>) -> Result<String, i32> {
        let fields = self.expand_fields(word, io, false)?;
        Ok(fields
            .into_iter()
            .map(|f| f.chars.iter().map(|p| p.c).collect::<String>())
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn expand_pattern(&mut self, word: &Word, io: &mut Io<'_>) -> Result<Vec<PChar>, i32> {
        let fields = self.expand_fields(word, io, false)?;
        let mut out = Vec::new();
        for (i, f) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(PChar {
                    c: ' ',
                    literal: true,
                });
            }
            out.extend(f.chars);
        }
        Ok(out)
    }

    fn expand_fields(
        &mut self,
        word: &Word,
        io: &mut Io<'_>,
        split: bool,
    ) -> Result<Vec<Field>, i32> {
        let mut fields: Vec<Field> = vec![Field::default()];
        for (idx, part) in word.0.iter().enumerate() {
            match part {
                Part::Lit(s) => push_chars(&mut fields, s, false),
                Part::Quoted(s) => {
                    push_chars(&mut fields, s, true);
                    if let Some(f) = fields.last_mut() {
                        f.exists = true;
                    }
                }
                Part::Tilde => {
                    let home = self.vars.get("HOME").cloned().unwrap_or_else(|| "/".into());
                    push_chars(&mut fields, &home, true);
                    if let Some(f) = fields.last_mut() {
                        f.exists = true;
                    }
                }
                Part::Param { name, op, quoted } => {
                    if (name == "@" || name == "*") && *op == ParamOp::Plain {
                        let args = self.args.clone();
                        if *quoted && name == "@" {
                            // "$@": one field per parameter.
                            for (i, a) in args.iter().enumerate() {
                                if i > 0 {
                                    fields.push(Field::default());
                                }
                                push_chars(&mut fields, a, true);
                                if let Some(f) = fields.last_mut() {
                                    f.exists = true;
                                }
                            }
                            let _ = idx;
                            continue;
                        }
                        let joined = args.join(" ");
                        self.push_value(&mut fields, &joined, *quoted, split);
                        continue;
                    }
                    let value = self.param_value(name, op, io)?;
                    self.push_value(&mut fields, &value, *quoted, split);
                }
                Part::CmdSub { script, quoted } => {
                    let out = self.command_substitution(script, io);
                    self.push_value(&mut fields, &out, *quoted, split);
                }
                Part::Arith { expr, quoted } => {
                    let text = self.expand_single(expr, io)?;
                    let value = match arith::eval(&text, &mut self.vars) {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = writeln!(io.stderr, "{SH}: {text}: {e}");
                            return Err(2);
                        }
                    };
                    self.push_value(&mut fields, &value.to_string(), *quoted, split);
                }
            }
        }
        Ok(fields
            .into_iter()
            .filter(|f| f.exists || !f.chars.is_empty())
            .collect())
    }

    fn push_value(&self, fields: &mut Vec<Field>, value: &str, quoted: bool, split: bool) {
        if quoted || !split {
            push_chars(fields, value, quoted);
            if quoted && let Some(f) = fields.last_mut() {
                f.exists = true;
            }
            return;
        }
        let ifs = self
            .vars
            .get("IFS")
            .cloned()
            .unwrap_or_else(|| " \t\n".into());
        if ifs.is_empty() {
            push_chars(fields, value, false);
            return;
        }
        let mut first = true;
        let starts_with_sep = value.starts_with(|c| ifs.contains(c));
        for (i, piece) in value.split(|c| ifs.contains(c)).enumerate() {
            if piece.is_empty() {
                continue;
            }
            if !(first && i == 0 && !starts_with_sep)
                && fields
                    .last()
                    .is_some_and(|f| !f.chars.is_empty() || f.exists)
            {
                fields.push(Field::default());
            }
            first = false;
            push_chars(fields, piece, false);
        }
        if value.ends_with(|c| ifs.contains(c)) && !first {
            fields.push(Field::default());
        }
    }

    fn param_value(&mut self, name: &str, op: &ParamOp, io: &mut Io<'_>) -> Result<String, i32> {
        let current = self.lookup_var(name);
        match op {
            ParamOp::Plain => Ok(current.unwrap_or_default()),
            ParamOp::Length => Ok(current.unwrap_or_default().chars().count().to_string()),
            ParamOp::Default { word, colon } => match current {
                Some(v) if !(*colon && v.is_empty()) => Ok(v),
                _ => self.expand_single(word, io),
            },
            ParamOp::Assign { word, colon } => match current {
                Some(v) if !(*colon && v.is_empty()) => Ok(v),
                _ => {
                    let v = self.expand_single(word, io)?;
                    if parser::is_name(name) {
                        self.vars.insert(name.to_owned(), v.clone());
                    }
                    Ok(v)
                }
            },
            ParamOp::Alternative { word, colon } => match current {
                Some(v) if !(*colon && v.is_empty()) => self.expand_single(word, io),
                _ => Ok(String::new()),
            },
            ParamOp::Error { word, colon } => match current {
                Some(v) if !(*colon && v.is_empty()) => Ok(v),
                _ => {
                    let msg = self.expand_single(word, io)?;
                    let msg = if msg.is_empty() {
                        "parameter null or not set".to_owned()
                    } else {
                        msg
                    };
                    let _ = writeln!(io.stderr, "{SH}: {name}: {msg}");
                    self.exit = Some(1);
                    Err(1)
                }
            },
            ParamOp::Trim {
                pattern: p,
                suffix,
                longest,
            } => {
                let pat = self.expand_pattern(p, io)?;
                Ok(pattern::trim(
                    &current.unwrap_or_default(),
                    &pat,
                    *suffix,
                    *longest,
                ))
            }
        }
    }

    fn lookup_var(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "$" => Some(self.pid.to_string()),
            "#" => Some(self.args.len().to_string()),
            "!" => Some(String::new()),
            "-" => Some(if self.errexit {
                "e".into()
            } else {
                String::new()
            }),
            "0" => Some(self.arg0.clone()),
            "@" | "*" => Some(self.args.join(" ")),
            "PWD" => Some(self.cwd.clone()),
            n if n.chars().all(|c| c.is_ascii_digit()) => {
                let i: usize = n.parse().ok()?;
                self.args.get(i.checked_sub(1)?).cloned()
            }
            n => self.vars.get(n).cloned(),
        }
    }

    fn command_substitution(&mut self, script: &str, io: &mut Io<'_>) -> String {
        if self.call_depth >= MAX_CALL_DEPTH {
            let _ = writeln!(io.stderr, "{SH}: nested too deeply");
            self.status = 2;
            return String::new();
        }
        let mut sub = self.subshell();
        sub.call_depth += 1;
        let mut out = BoundedBuf {
            buf: Vec::new(),
            limit: MAX_SUBST_OUTPUT,
        };
        let status = {
            let mut io2 = Io {
                stdin: &mut *io.stdin,
                stdout: &mut out,
                stderr: &mut *io.stderr,
            };
            let s = sub.run_text(script, &mut io2);
            sub.exit.unwrap_or(s)
        };
        self.status = status;
        self.subst_status = Some(status);
        let mut s = String::from_utf8_lossy(&out.buf).into_owned();
        while s.ends_with('\n') {
            s.pop();
        }
        s
    }

    /// Pathname expansion of a pattern against the phone's file tree (sorted; hidden names only
    /// when the pattern component starts with `.`).
    fn glob(&self, pat: &[PChar]) -> Vec<String> {
        let absolute = pat.first().is_some_and(|p| p.c == '/');
        let comps: Vec<&[PChar]> = pat
            .split(|p| p.c == '/')
            .filter(|c| !c.is_empty())
            .collect();
        let mut current: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let mut next = Vec::new();
            for base in &current {
                let join_name = |name: &str| -> String {
                    if base.is_empty() {
                        name.to_owned()
                    } else if base.ends_with('/') {
                        format!("{base}{name}")
                    } else {
                        format!("{base}/{name}")
                    }
                };
                if !pattern::has_wildcards(comp) {
                    let name: String = comp.iter().map(|p| p.c).collect();
                    let candidate = join_name(&name);
                    let device = fs::join(&self.cwd, &candidate);
                    if (last && self.core.fs.lstat(&device).is_ok())
                        || (!last && self.core.fs.is_dir(&device))
                    {
                        next.push(candidate);
                    }
                    continue;
                }
                let dir = if base.is_empty() {
                    self.cwd.clone()
                } else {
                    fs::join(&self.cwd, base)
                };
                let Ok(entries) = self.core.fs.read_dir(&dir) else {
                    continue;
                };
                let dot_ok = comp.first().is_some_and(|p| p.c == '.');
                for (name, st) in entries {
                    if name.starts_with('.') && !dot_ok {
                        continue;
                    }
                    if !pattern::matches(comp, &name) {
                        continue;
                    }
                    let candidate = join_name(&name);
                    let usable = last
                        || fs::is_dir_mode(st.mode)
                        || self.core.fs.is_dir(&fs::join(&self.cwd, &candidate));
                    if !usable {
                        continue;
                    }
                    next.push(candidate);
                    if next.len() > MAX_GLOB_RESULTS {
                        return Vec::new();
                    }
                }
            }
            current = next;
            if current.is_empty() {
                break;
            }
        }
        if pat.last().is_some_and(|p| p.c == '/') {
            current = current.into_iter().map(|c| format!("{c}/")).collect();
        }
        current.sort();
        current
    }
}

enum PathCommand {
    Builtin(super::CommandFn),
    Done(i32),
}

#[derive(Default, Clone)]
struct Field {
    chars: Vec<PChar>,
    exists: bool,
}

fn push_chars(fields: &mut Vec<Field>, s: &str, literal: bool) {
    if fields.is_empty() {
        fields.push(Field::default());
    }
    if let Some(f) = fields.last_mut() {
        f.chars.extend(s.chars().map(|c| PChar { c, literal }));
    }
}

/// `read` without `-r`: backslash escapes the next character.
fn unescape_read(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Single-quotes a value for `export -p` / `set` output when needed.
fn quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-.:,=+@%".contains(c))
    {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// Where a redirected descriptor writes.
#[derive(Clone)]
enum Target {
    Orig(u8),
    File(Rc<RefCell<std::fs::File>>),
    Null,
    Closed,
}

struct SlotWriter<'r, 'w> {
    target: Target,
    origs: &'r RefCell<(&'w mut dyn Write, &'w mut dyn Write)>,
}

impl Write for SlotWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.target {
            Target::Orig(2) => self.origs.borrow_mut().1.write(buf),
            Target::Orig(_) => self.origs.borrow_mut().0.write(buf),
            Target::File(f) => f.borrow_mut().write(buf),
            Target::Null => Ok(buf.len()),
            Target::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.target {
            Target::Orig(2) => self.origs.borrow_mut().1.flush(),
            Target::Orig(_) => self.origs.borrow_mut().0.flush(),
            Target::File(f) => f.borrow_mut().flush(),
            Target::Null | Target::Closed => Ok(()),
        }
    }
}

/// Captures output up to a limit (then fails the write).
struct BoundedBuf {
    buf: Vec<u8>,
    limit: usize,
}

impl Write for BoundedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `/dev/urandom`.
pub struct RandomReader;

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rand::Rng::fill(&mut rand::thread_rng(), buf);
        Ok(buf.len())
    }
}

/// Integer arithmetic for `$((…))`.
pub mod arith {
    use std::collections::BTreeMap;

    struct P<'a> {
        t: Vec<char>,
        i: usize,
        vars: &'a mut BTreeMap<String, String>,
        depth: usize,
    }

    /// Evaluates an expression; variables are read (as integers, 0 when unset/empty) and
    /// `name=expr` assigns.
    pub fn eval(text: &str, vars: &mut BTreeMap<String, String>) -> Result<i64, String> {
        let mut p = P {
            t: text.chars().collect(),
            i: 0,
            vars,
            depth: 0,
        };
        let v = p.assign()?;
        p.ws();
        if p.i < p.t.len() {
            return Err("syntax error in expression".into());
        }
        Ok(v)
    }

    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.t.len() && self.t[self.i].is_whitespace() {
                self.i += 1;
            }
        }

        fn eat(&mut self, s: &str) -> bool {
            self.ws();
            let n = s.chars().count();
            if self.t.len() >= self.i + n
                && self.t[self.i..self.i + n].iter().copied().eq(s.chars())
            {
                self.i += n;
                true
            } else {
                false
            }
        }

        fn peek_is(&mut self, s: &str) -> bool {
            let save = self.i;
            let r = self.eat(s);
            self.i = save;
            r
        }

        fn assign(&mut self) -> Result<i64, String> {
            self.ws();
            let save = self.i;
            let mut name = String::new();
            while self.i < self.t.len()
                && (self.t[self.i].is_ascii_alphanumeric() || self.t[self.i] == '_')
            {
                name.push(self.t[self.i]);
                self.i += 1;
            }
            if !name.is_empty()
                && super::parser::is_name(&name)
                && self.peek_is("=")
                && !self.peek_is("==")
            {
                self.eat("=");
                let v = self.assign()?;
                self.vars.insert(name, v.to_string());
                return Ok(v);
            }
            self.i = save;
            self.ternary()
        }

        fn ternary(&mut self) -> Result<i64, String> {
            let c = self.or()?;
            if self.eat("?") {
                let a = self.assign()?;
                if !self.eat(":") {
                    return Err("expected ':'".into());
                }
                let b = self.assign()?;
                return Ok(if c != 0 { a } else { b });
            }
            Ok(c)
        }

        fn or(&mut self) -> Result<i64, String> {
            let mut v = self.and()?;
            while self.eat("||") {
                let r = self.and()?;
                v = i64::from(v != 0 || r != 0);
            }
            Ok(v)
        }

        fn and(&mut self) -> Result<i64, String> {
            let mut v = self.bitor()?;
            while self.eat("&&") {
                let r = self.bitor()?;
                v = i64::from(v != 0 && r != 0);
            }
            Ok(v)
        }

        fn bitor(&mut self) -> Result<i64, String> {
            let mut v = self.bitand()?;
            while !self.peek_is("||") && self.eat("|") {
                v |= self.bitand()?;
            }
            Ok(v)
        }

        fn bitand(&mut self) -> Result<i64, String> {
            let mut v = self.eq()?;
            while !self.peek_is("&&") && self.eat("&") {
                v &= self.eq()?;
            }
            Ok(v)
        }

        fn eq(&mut self) -> Result<i64, String> {
            let mut v = self.cmp()?;
            loop {
                if self.eat("==") {
                    v = i64::from(v == self.cmp()?);
                } else if self.eat("!=") {
                    v = i64::from(v != self.cmp()?);
                } else {
                    return Ok(v);
                }
            }
        }

        fn cmp(&mut self) -> Result<i64, String> {
            let mut v = self.shift()?;
            loop {
                if self.eat("<=") {
                    v = i64::from(v <= self.shift()?);
                } else if self.eat(">=") {
                    v = i64::from(v >= self.shift()?);
                } else if !self.peek_is("<<") && self.eat("<") {
                    v = i64::from(v < self.shift()?);
                } else if !self.peek_is(">>") && self.eat(">") {
                    v = i64::from(v > self.shift()?);
                } else {
                    return Ok(v);
                }
            }
        }

        fn shift(&mut self) -> Result<i64, String> {
            let mut v = self.add()?;
            loop {
                if self.eat("<<") {
                    let r = self.add()?;
                    v = v
                        .checked_shl(u32::try_from(r).map_err(|_| "bad shift")?)
                        .ok_or("bad shift")?;
                } else if self.eat(">>") {
                    let r = self.add()?;
                    v = v
                        .checked_shr(u32::try_from(r).map_err(|_| "bad shift")?)
                        .ok_or("bad shift")?;
                } else {
                    return Ok(v);
                }
            }
        }

        fn add(&mut self) -> Result<i64, String> {
            let mut v = self.mul()?;
            loop {
                if self.eat("+") {
                    v = v.wrapping_add(self.mul()?);
                } else if self.eat("-") {
                    v = v.wrapping_sub(self.mul()?);
                } else {
                    return Ok(v);
                }
            }
        }

        fn mul(&mut self) -> Result<i64, String> {
            let mut v = self.unary()?;
            loop {
                if self.eat("*") {
                    v = v.wrapping_mul(self.unary()?);
                } else if self.eat("/") {
                    let r = self.unary()?;
                    v = v.checked_div(r).ok_or("divide by zero")?;
                } else if self.eat("%") {
                    let r = self.unary()?;
                    v = v.checked_rem(r).ok_or("divide by zero")?;
                } else {
                    return Ok(v);
                }
            }
        }

        fn unary(&mut self) -> Result<i64, String> {
            self.depth += 1;
            if self.depth > 200 {
                return Err("expression too deep".into());
            }
            let r = if self.eat("-") {
                self.unary().map(i64::wrapping_neg)
            } else if self.eat("+") {
                self.unary()
            } else if self.eat("!") {
                self.unary().map(|v| i64::from(v == 0))
            } else if self.eat("~") {
                self.unary().map(|v| !v)
            } else {
                self.primary()
            };
            self.depth -= 1;
            r
        }

        fn primary(&mut self) -> Result<i64, String> {
            self.ws();
            if self.eat("(") {
                let v = self.assign()?;
                if !self.eat(")") {
                    return Err("missing ')'".into());
                }
                return Ok(v);
            }
            let start = self.i;
            while self.i < self.t.len()
                && (self.t[self.i].is_ascii_alphanumeric() || self.t[self.i] == '_')
            {
                self.i += 1;
            }
            let tok: String = self.t[start..self.i].iter().collect();
            if tok.is_empty() {
                return Err("syntax error in expression".into());
            }
            if tok.starts_with(|c: char| c.is_ascii_digit()) {
                return parse_number(&tok);
            }
            let v = self.vars.get(&tok).cloned().unwrap_or_default();
            let v = v.trim();
            if v.is_empty() {
                return Ok(0);
            }
            parse_number(v)
        }
    }

    fn parse_number(s: &str) -> Result<i64, String> {
        let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            i64::from_str_radix(h, 16)
        } else if s.len() > 1 && s.starts_with('0') {
            i64::from_str_radix(&s[1..], 8)
        } else {
            s.parse::<i64>()
        };
        r.map_err(|_| format!("bad number '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_budget_stops_endless_loops() {
        let dir = tempfile::tempdir().unwrap();
        let core = PhoneCore::scratch(dir.path(), BTreeMap::new(), Vec::new()).unwrap();
        let mut sh = Shell::new(&core);
        sh.budget = Arc::new(AtomicU64::new(1000));
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut io = Io {
            stdin: &mut io::empty(),
            stdout: &mut out,
            stderr: &mut err,
        };
        sh.run_text("while true; do :; done; echo after", &mut io);
        assert_eq!(sh.exit, Some(1));
        assert!(out.is_empty());
        assert!(String::from_utf8_lossy(&err).contains("too many commands"));
    }
}
