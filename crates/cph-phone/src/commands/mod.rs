//! The phone's commands, with toybox's options, output formats and exit codes (as on
//! Android): file commands (`files`), text filters (`text`), system information (`sys`), `nc -l`
//! (`net`, over the phone's socket table `crate::net`).
//! They work on the phone's file tree only. [`lookup`] also finds the Android service
//! commands (`crate::android::COMMANDS`: `getprop`, `pm`, `am`, …).

mod files;
mod net;
pub mod regex;
mod sys;
mod text;

use crate::fs;
use crate::shell::{CommandFn, Ctx};
use std::io::{self, Read, Write};

/// The commands implemented here, by name.
pub const COMMANDS: &[(&str, CommandFn)] = &[
    ("[", test),
    ("basename", files::basename),
    ("cat", files::cat),
    ("chgrp", files::chown),
    ("chmod", files::chmod),
    ("chown", files::chown),
    ("clear", sys::clear),
    ("cmp", files::cmp),
    ("cp", files::cp),
    ("cut", text::cut),
    ("date", sys::date),
    ("df", files::df),
    ("dirname", files::dirname),
    ("du", files::du),
    ("echo", echo),
    ("env", sys::env),
    ("false", false_),
    ("find", files::find),
    ("getenforce", sys::getenforce),
    ("grep", text::grep),
    ("egrep", text::grep),
    ("fgrep", text::grep),
    ("head", text::head),
    ("hostname", sys::hostname),
    ("id", sys::id),
    ("ln", files::ln),
    ("ls", files::ls),
    ("md5sum", files::md5sum),
    ("mkdir", files::mkdir),
    ("mv", files::mv),
    ("nc", net::nc),
    ("netcat", net::nc),
    ("nproc", sys::nproc),
    ("printenv", sys::printenv),
    ("printf", printf),
    ("ps", sys::ps),
    ("pwd", sys::pwd),
    ("readlink", files::readlink),
    ("realpath", files::realpath),
    ("reboot", sys::reboot),
    ("rm", files::rm),
    ("rmdir", files::rmdir),
    ("seq", text::seq),
    ("sha256sum", files::sha256sum),
    ("sleep", sys::sleep),
    ("sort", text::sort),
    ("stat", files::stat),
    ("sync", true_),
    ("tail", text::tail),
    ("tee", text::tee),
    ("test", test),
    ("touch", files::touch),
    ("toybox", sys::toybox),
    ("tr", text::tr),
    ("true", true_),
    ("uname", sys::uname),
    ("uniq", text::uniq),
    ("uptime", sys::uptime),
    ("wc", text::wc),
    ("which", sys::which),
    ("whoami", sys::whoami),
    ("xargs", text::xargs),
    ("yes", text::yes),
];

/// Android service commands (`getprop`, `pm`, `am`, …), defined with the phone's services.
fn android_commands() -> &'static [(&'static str, CommandFn)] {
    crate::android::COMMANDS
}

/// Finds a command by name (the shell's own builtins such as `cd` are not commands).
pub fn lookup(name: &str) -> Option<CommandFn> {
    COMMANDS
        .iter()
        .chain(android_commands().iter())
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Every command name, sorted.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMANDS
        .iter()
        .chain(android_commands().iter())
        .map(|(n, _)| *n)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ----- helpers shared by the commands -----

/// Parsed command-line options (toybox style: combined flags, options anywhere before `--`).
pub(crate) struct Opts {
    flags: Vec<char>,
    vals: Vec<(char, String)>,
    pub args: Vec<String>,
}

impl Opts {
    pub fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }

    pub fn val(&self, c: char) -> Option<&str> {
        self.vals
            .iter()
            .rev()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
    }

    pub fn vals(&self, c: char) -> Vec<&str> {
        self.vals
            .iter()
            .filter(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses options by `spec` (letters; a letter followed by `:` takes a value). Long options
/// are mapped through `longs` (`("recursive", 'r')`); `--color…` is accepted and ignored.
/// Prints toybox's message and returns `Err(1)` for an unknown option.
pub(crate) fn getopt(
    ctx: &mut Ctx<'_>,
    args: &[String],
    spec: &str,
    longs: &[(&str, char)],
) -> Result<Opts, i32> {
    let name = args.first().map(String::as_str).unwrap_or("");
    let mut o = Opts {
        flags: Vec::new(),
        vals: Vec::new(),
        args: Vec::new(),
    };
    let takes_value = |c: char| {
        spec.find(c)
            .is_some_and(|i| spec[i + c.len_utf8()..].starts_with(':'))
    };
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            o.args.extend(args[i + 1..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (key, value) = match long.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (long, None),
            };
            if key == "color" || key == "colour" {
                i += 1;
                continue;
            }
            match longs.iter().find(|(l, _)| *l == key) {
                Some((_, c)) => {
                    if takes_value(*c) {
                        let v = match value {
                            Some(v) => v,
                            None => {
                                i += 1;
                                match args.get(i) {
                                    Some(v) => v.clone(),
                                    None => {
                                        let _ = writeln!(
                                            ctx.stderr,
                                            "{name}: Missing argument to --{key}"
                                        );
                                        return Err(1);
                                    }
                                }
                            }
                        };
                        o.vals.push((*c, v));
                    }
                    o.flags.push(*c);
                }
                None => {
                    let _ = writeln!(
                        ctx.stderr,
                        "{name}: Unknown option '{key}' (see \"{name} --help\")"
                    );
                    return Err(1);
                }
            }
            i += 1;
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                if !spec.contains(c) || c == ':' {
                    let _ = writeln!(
                        ctx.stderr,
                        "{name}: Unknown option '{c}' (see \"{name} --help\")"
                    );
                    return Err(1);
                }
                o.flags.push(c);
                if takes_value(c) {
                    let rest: String = chars[j + 1..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => {
                                let _ = writeln!(ctx.stderr, "{name}: Missing argument to -{c}");
                                return Err(1);
                            }
                        }
                    };
                    o.vals.push((c, v));
                    break;
                }
                j += 1;
            }
            i += 1;
            continue;
        }
        o.args.push(a.clone());
        i += 1;
    }
    Ok(o)
}

/// The device path of an argument relative to the command's directory.
pub(crate) fn dev(ctx: &Ctx<'_>, p: &str) -> String {
    fs::join(&ctx.cwd, p)
}

/// Prints `cmd: path: error` (toybox's format for a failing operand).
pub(crate) fn path_err(ctx: &mut Ctx<'_>, cmd: &str, path: &str, e: &io::Error) {
    let _ = writeln!(ctx.stderr, "{cmd}: {path}: {}", fs::error_text(e));
}

/// Prints `cmd: message`.
pub(crate) fn fail(ctx: &mut Ctx<'_>, cmd: &str, msg: &str) {
    let _ = writeln!(ctx.stderr, "{cmd}: {msg}");
}

/// Opens an input operand: a file of the phone, or one of the virtual devices.
pub(crate) fn open_file(ctx: &Ctx<'_>, p: &str) -> io::Result<Box<dyn Read>> {
    match p {
        "/dev/null" => Ok(Box::new(io::empty())),
        "/dev/zero" => Ok(Box::new(io::repeat(0))),
        "/dev/urandom" | "/dev/random" => Ok(Box::new(crate::shell::exec::RandomReader)),
        _ => Ok(Box::new(ctx.core.fs.open_read(&dev(ctx, p))?)),
    }
}

/// Runs `f` on each input operand (`-` or none: stdin) with the command's stdout. Errors
/// opening an operand are reported as `cmd: path: error`; returns 1 if any failed.
pub(crate) fn each_input(
    ctx: &mut Ctx<'_>,
    cmd: &str,
    files: &[String],
    mut f: impl FnMut(&str, &mut dyn Read, &mut dyn Write) -> io::Result<()>,
) -> i32 {
    let default = ["-".to_owned()];
    let files = if files.is_empty() {
        &default[..]
    } else {
        files
    };
    let mut status = 0;
    for name in files {
        let result = if name == "-" {
            f(name, &mut *ctx.stdin, &mut *ctx.stdout)
        } else {
            match open_file(ctx, name) {
                Ok(mut r) => f(name, &mut *r, &mut *ctx.stdout),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = result {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return 1;
            }
            path_err(ctx, cmd, name, &e);
            status = 1;
        }
    }
    status
}

/// Reads all of `r` (bounded) as lines without their terminators; `true` if the last line
/// ended with a newline.
pub(crate) fn read_lines(r: &mut dyn Read, max: u64) -> io::Result<Vec<String>> {
    let mut buf = Vec::new();
    r.take(max).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    Ok(lines)
}

/// Most bytes a command that needs its whole input (sort, tail) reads.
pub(crate) const MAX_INPUT: u64 = 64 * 1024 * 1024;

fn true_(_ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    0
}

fn false_(_ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    1
}

/// Interprets backslash escapes (`echo -e`, `printf %b`); `None` at `\c` (stop output).
pub(crate) fn unescape(s: &str, out: &mut Vec<u8>) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' || i + 1 >= chars.len() {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            i += 1;
            continue;
        }
        i += 1;
        let e = chars[i];
        i += 1;
        match e {
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'a' => out.push(7),
            'b' => out.push(8),
            'e' => out.push(27),
            'f' => out.push(12),
            'v' => out.push(11),
            '\\' => out.push(b'\\'),
            'c' => return false,
            '0'..='7' => {
                let mut v: u32 = 0;
                let mut n = 0;
                let mut j = i - 1;
                if e == '0' {
                    j = i;
                }
                while j < chars.len() && n < 3 && chars[j].is_digit(8) {
                    v = v * 8 + chars[j].to_digit(8).unwrap_or(0);
                    j += 1;
                    n += 1;
                }
                i = j;
                out.push((v & 0xff) as u8);
            }
            'x' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while i < chars.len() && n < 2 && chars[i].is_ascii_hexdigit() {
                    v = v * 16 + chars[i].to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                if n == 0 {
                    out.extend_from_slice(b"\\x");
                } else {
                    out.push(v as u8);
                }
            }
            other => {
                out.push(b'\\');
                let mut b = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    true
}

/// `echo [-neE] [ARG…]`
fn echo(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut newline = true;
    let mut escapes = false;
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| "neE".contains(c)) {
            for c in a[1..].chars() {
                match c {
                    'n' => newline = false,
                    'e' => escapes = true,
                    _ => escapes = false,
                }
            }
            i += 1;
        } else {
            break;
        }
    }
    let mut out = Vec::new();
    let mut stop = false;
    for (k, a) in args[i..].iter().enumerate() {
        if k > 0 {
            out.push(b' ');
        }
        if escapes {
            if !unescape(a, &mut out) {
                stop = true;
                break;
            }
        } else {
            out.extend_from_slice(a.as_bytes());
        }
    }
    if newline && !stop {
        out.push(b'\n');
    }
    match ctx.stdout.write_all(&out) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// `printf FORMAT [ARG…]` (the format is reused while arguments remain).
fn printf(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let Some(format) = args.get(1) else {
        fail(ctx, "printf", "Needs 1 argument");
        return 1;
    };
    let mut rest: &[String] = &args[2..];
    let mut out = Vec::new();
    let mut status = 0;
    let fmt: Vec<char> = format.chars().collect();
    loop {
        let before = rest.len();
        let mut i = 0;
        while i < fmt.len() {
            let c = fmt[i];
            if c == '\\' {
                let mut j = i + 1;
                if j < fmt.len() && matches!(fmt[j], '0'..='7') {
                    let mut n = 0;
                    while j < fmt.len() && n < 3 && fmt[j].is_digit(8) {
                        j += 1;
                        n += 1;
                    }
                } else {
                    j += 1;
                }
                let esc: String = fmt[i..j.min(fmt.len())].iter().collect();
                if !unescape(&esc, &mut out) {
                    let _ = ctx.stdout.write_all(&out);
                    return status;
                }
                i = j;
                continue;
            }
            if c != '%' {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                i += 1;
                continue;
            }
            // %[flags][width][.prec]conv
            let start = i;
            i += 1;
            if i < fmt.len() && fmt[i] == '%' {
                out.push(b'%');
                i += 1;
                continue;
            }
            let mut spec = String::new();
            while i < fmt.len() && "-+ #0".contains(fmt[i]) {
                spec.push(fmt[i]);
                i += 1;
            }
            let mut width = String::new();
            while i < fmt.len() && (fmt[i].is_ascii_digit() || fmt[i] == '*') {
                if fmt[i] == '*' {
                    let v = rest.first().cloned().unwrap_or_default();
                    rest = rest.get(1..).unwrap_or(&[]);
                    width.push_str(&v);
                } else {
                    width.push(fmt[i]);
                }
                i += 1;
            }
            let mut prec: Option<String> = None;
            if i < fmt.len() && fmt[i] == '.' {
                i += 1;
                let mut p = String::new();
                while i < fmt.len() && fmt[i].is_ascii_digit() {
                    p.push(fmt[i]);
                    i += 1;
                }
                prec = Some(p);
            }
            while i < fmt.len() && "hlLqjzt".contains(fmt[i]) {
                i += 1;
            }
            let Some(&conv) = fmt.get(i) else {
                let text: String = fmt[start..].iter().collect();
                out.extend_from_slice(text.as_bytes());
                break;
            };
            i += 1;
            let arg = rest.first().cloned();
            if !matches!(conv, '%') {
                rest = rest.get(1..).unwrap_or(&[]);
            }
            let width: usize = width.parse().unwrap_or(0).min(4096);
            let left = spec.contains('-');
            let zero = spec.contains('0') && !left;
            let prec_n: Option<usize> = prec.as_ref().map(|p| p.parse().unwrap_or(0).min(4096));
            let body: String = match conv {
                's' => {
                    let s = arg.unwrap_or_default();
                    match prec_n {
                        Some(p) => s.chars().take(p).collect(),
                        None => s,
                    }
                }
                'b' => {
                    let mut v = Vec::new();
                    unescape(&arg.unwrap_or_default(), &mut v);
                    String::from_utf8_lossy(&v).into_owned()
                }
                'c' => arg
                    .and_then(|a| a.chars().next())
                    .map(String::from)
                    .unwrap_or_default(),
                'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
                    let a = arg.unwrap_or_default();
                    let n = match parse_int_arg(&a) {
                        Some(n) => n,
                        None => {
                            let _ = writeln!(ctx.stderr, "printf: invalid number '{a}'");
                            status = 1;
                            0
                        }
                    };
                    let s = match conv {
                        'x' => format!("{:x}", n),
                        'X' => format!("{:X}", n),
                        'o' => format!("{:o}", n),
                        _ => n.abs().to_string(),
                    };
                    let sign = if matches!(conv, 'd' | 'i') && n < 0 {
                        "-"
                    } else if matches!(conv, 'd' | 'i') && spec.contains('+') {
                        "+"
                    } else {
                        ""
                    };
                    let s = match prec_n {
                        Some(p) if s.len() < p => format!("{}{s}", "0".repeat(p - s.len())),
                        _ => s,
                    };
                    if zero && width > sign.len() + s.len() {
                        format!("{sign}{}{s}", "0".repeat(width - sign.len() - s.len()))
                    } else {
                        format!("{sign}{s}")
                    }
                }
                'f' | 'F' | 'e' | 'g' | 'G' | 'E' => {
                    let a = arg.unwrap_or_default();
                    let v: f64 = a.trim().parse().unwrap_or_else(|_| {
                        status = 1;
                        0.0
                    });
                    let p = prec_n.unwrap_or(6);
                    let s = match conv {
                        'e' | 'E' => format!("{v:.p$e}"),
                        'g' | 'G' => format!("{v}"),
                        _ => format!("{v:.p$}"),
                    };
                    if zero && width > s.len() {
                        format!("{}{s}", "0".repeat(width - s.len()))
                    } else {
                        s
                    }
                }
                other => {
                    let _ = writeln!(ctx.stderr, "printf: %{other}: invalid format");
                    return 1;
                }
            };
            let len = body.chars().count();
            let padded = if len >= width {
                body
            } else if left {
                format!("{body}{}", " ".repeat(width - len))
            } else {
                format!("{}{body}", " ".repeat(width - len))
            };
            out.extend_from_slice(padded.as_bytes());
        }
        if rest.is_empty() || rest.len() == before {
            break;
        }
        if out.len() > 16 * 1024 * 1024 {
            break;
        }
    }
    if ctx.stdout.write_all(&out).is_err() {
        return 1;
    }
    status
}

fn parse_int_arg(a: &str) -> Option<i64> {
    let t = a.trim();
    if t.is_empty() {
        return Some(0);
    }
    if let Some(c) = t.strip_prefix('\'').or_else(|| t.strip_prefix('"')) {
        return c.chars().next().map(|c| c as i64);
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `test EXPR` / `[ EXPR ]`: 0 true, 1 false, 2 error.
fn test(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut a: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    if args[0] == "[" {
        if a.last() != Some(&"]") {
            fail(ctx, "[", "missing ]");
            return 2;
        }
        a.pop();
    }
    let mut t = TestEval { ctx, a: &a, i: 0 };
    match t.or() {
        Ok(v) if t.i == a.len() => i32::from(!v),
        Ok(_) => {
            let name = args[0].clone();
            fail(t.ctx, &name, "too many arguments");
            2
        }
        Err(msg) => {
            let name = args[0].clone();
            fail(t.ctx, &name, &msg);
            2
        }
    }
}

struct TestEval<'x, 'c> {
    ctx: &'x mut Ctx<'c>,
    a: &'x [&'x str],
    i: usize,
}

impl TestEval<'_, '_> {
    fn or(&mut self) -> Result<bool, String> {
        let mut v = self.and()?;
        while self.a.get(self.i) == Some(&"-o") {
            self.i += 1;
            let r = self.and()?;
            v = v || r;
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut v = self.not()?;
        while self.a.get(self.i) == Some(&"-a") {
            self.i += 1;
            let r = self.not()?;
            v = v && r;
        }
        Ok(v)
    }

    fn not(&mut self) -> Result<bool, String> {
        if self.a.get(self.i) == Some(&"!") && self.i + 1 < self.a.len() {
            self.i += 1;
            return self.not().map(|v| !v);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<bool, String> {
        let a = self.a;
        let i = self.i;
        let Some(&first) = a.get(i) else {
            return Ok(false);
        };
        if first == "(" {
            self.i += 1;
            let v = self.or()?;
            if a.get(self.i) != Some(&")") {
                return Err("missing )".into());
            }
            self.i += 1;
            return Ok(v);
        }
        // Binary operators.
        if let (Some(&op), Some(&rhs)) = (a.get(i + 1), a.get(i + 2)) {
            let bin = match op {
                "=" | "==" => Some(first == rhs),
                "!=" => Some(first != rhs),
                "<" => Some(first < rhs),
                ">" => Some(first > rhs),
                "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge" => {
                    let l = first
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| format!("invalid integer '{first}'"))?;
                    let r = rhs
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| format!("invalid integer '{rhs}'"))?;
                    Some(match op {
                        "-eq" => l == r,
                        "-ne" => l != r,
                        "-lt" => l < r,
                        "-le" => l <= r,
                        "-gt" => l > r,
                        _ => l >= r,
                    })
                }
                "-nt" | "-ot" | "-ef" => {
                    let l = self.ctx.core.fs.stat(&dev(self.ctx, first));
                    let r = self.ctx.core.fs.stat(&dev(self.ctx, rhs));
                    Some(match (l, r) {
                        (Ok(l), Ok(r)) => match op {
                            "-nt" => l.mtime > r.mtime,
                            "-ot" => l.mtime < r.mtime,
                            _ => l.ino == r.ino && l.dev == r.dev,
                        },
                        _ => false,
                    })
                }
                _ => None,
            };
            if let Some(v) = bin {
                self.i += 3;
                return Ok(v);
            }
        }
        // Unary operators.
        if first.len() == 2 && first.starts_with('-') && i + 1 < a.len() {
            let operand = a[i + 1];
            let fs = &self.ctx.core.fs;
            let path = dev(self.ctx, operand);
            let v = match &first[1..] {
                "z" => operand.is_empty(),
                "n" => !operand.is_empty(),
                "e" => fs.stat(&path).is_ok(),
                "f" => fs.stat(&path).is_ok_and(|s| fs::is_file_mode(s.mode)),
                "d" => fs.stat(&path).is_ok_and(|s| fs::is_dir_mode(s.mode)),
                "L" | "h" => fs.lstat(&path).is_ok_and(|s| fs::is_symlink_mode(s.mode)),
                "s" => fs.stat(&path).is_ok_and(|s| s.size > 0),
                "r" => fs.stat(&path).is_ok(),
                "w" => fs.stat(&path).is_ok() && !fs.is_read_only(&path).unwrap_or(true),
                "x" => fs.stat(&path).is_ok_and(|s| s.mode & 0o111 != 0),
                "b" | "c" | "p" | "S" | "u" | "g" | "k" => {
                    fs.stat(&path).is_ok_and(|s| match &first[1..] {
                        "b" => s.mode & 0o170000 == 0o060000,
                        "c" => s.mode & 0o170000 == 0o020000,
                        "p" => s.mode & 0o170000 == 0o010000,
                        "S" => s.mode & 0o170000 == 0o140000,
                        "u" => s.mode & 0o4000 != 0,
                        "g" => s.mode & 0o2000 != 0,
                        _ => s.mode & 0o1000 != 0,
                    })
                }
                "t" => false,
                _ => return Err(format!("unknown operator '{first}'")),
            };
            self.i += 2;
            return Ok(v);
        }
        self.i += 1;
        Ok(!first.is_empty())
    }
}
