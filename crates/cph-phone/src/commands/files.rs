//! File commands: ls, cat, cp, mv, rm, mkdir, stat, find, du, df, checksums, …

use super::{dev, each_input, fail, getopt, open_file, path_err};
use crate::fs::{self, Usage};
use crate::shell::Ctx;
use crate::shell::pattern;
use cph_adb::FileStat;
use sha2::Digest;
use std::io::{self, Read};

/// Deepest recursion of `-R`/`-r` walks.
const MAX_WALK_DEPTH: usize = 256;

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// `drwxr-xr-x`-style mode text.
pub(crate) fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, ch)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        let c = if special {
            match (i, set) {
                (8, true) => 't',
                (8, false) => 'T',
                (_, true) => 's',
                (_, false) => 'S',
            }
        } else if set {
            *ch
        } else {
            '-'
        };
        s.push(c);
    }
    s
}

fn fmt_time(secs: i64, fmt: &str) -> String {
    use chrono::TimeZone;
    match chrono::Utc.timestamp_opt(secs, 0).single() {
        Some(t) => t
            .format_with_items(chrono::format::StrftimeItems::new_lenient(fmt))
            .to_string(),
        None => "?".into(),
    }
}

/// `1.5K`-style sizes (toybox `-h`).
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["", "K", "M", "G", "T", "P"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        n.to_string()
    } else if v < 10.0 {
        format!("{:.1}{}", v, UNITS[u])
    } else {
        format!("{:.0}{}", v, UNITS[u])
    }
}

fn blocks_1k(st: &FileStat) -> u64 {
    if fs::is_dir_mode(st.mode) {
        4
    } else {
        st.size.div_ceil(4096) * 4
    }
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() {
            String::new()
        } else {
            "/".into()
        };
    }
    t.rsplit('/').next().unwrap_or(t).to_owned()
}

fn dir_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.starts_with('/') {
            "/".into()
        } else {
            ".".into()
        };
    }
    match t.rfind('/') {
        None => ".".into(),
        Some(i) => {
            let d = t[..i].trim_end_matches('/');
            if d.is_empty() {
                "/".into()
            } else {
                d.to_owned()
            }
        }
    }
}

fn join_name(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

// ----- ls -----

struct LsOpts {
    long: bool,
    all: bool,
    almost: bool,
    recursive: bool,
    dir_itself: bool,
    human: bool,
    numeric: bool,
    classify: bool,
    inode: bool,
    size: bool,
    sort_time: bool,
    sort_size: bool,
    reverse: bool,
    unsorted: bool,
}

struct Entry {
    name: String,
    path: String,
    st: FileStat,
}

pub fn ls(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "laAR1dhnFistrSCxpcuLHZ",
        &[("all", 'a'), ("recursive", 'R'), ("human-readable", 'h')],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let opts = LsOpts {
        long: o.has('l') || o.has('n'),
        all: o.has('a'),
        almost: o.has('A'),
        recursive: o.has('R'),
        dir_itself: o.has('d'),
        human: o.has('h'),
        numeric: o.has('n'),
        classify: o.has('F') || o.has('p'),
        inode: o.has('i'),
        size: o.has('s'),
        sort_time: o.has('t'),
        sort_size: o.has('S'),
        reverse: o.has('r'),
        unsorted: false,
    };
    let follow = o.has('L');
    let operands = if o.args.is_empty() {
        vec![".".to_owned()]
    } else {
        o.args.clone()
    };
    let mut status = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for p in &operands {
        let path = dev(ctx, p);
        let st = if follow {
            ctx.core.fs.stat(&path)
        } else {
            // Like toybox: a link to a directory given as an operand is followed (unless -l/-d).
            match ctx.core.fs.lstat(&path) {
                Ok(st) if fs::is_symlink_mode(st.mode) && !opts.long && !opts.dir_itself => {
                    ctx.core.fs.stat(&path).or(Ok(st))
                }
                other => other,
            }
        };
        match st {
            Ok(st) => {
                let e = Entry {
                    name: p.clone(),
                    path,
                    st,
                };
                if fs::is_dir_mode(st.mode) && !opts.dir_itself {
                    dirs.push(e);
                } else {
                    files.push(e);
                }
            }
            Err(e) => {
                path_err(ctx, "ls", p, &e);
                status = 1;
            }
        }
    }
    sort_entries(&mut files, &opts);
    sort_entries(&mut dirs, &opts);
    let many = operands.len() > 1 || opts.recursive;
    let mut first = true;
    if !files.is_empty() {
        if print_entries(ctx, &files, &opts, false).is_err() {
            return 1;
        }
        first = false;
    }
    for d in dirs {
        if ls_dir(ctx, &d.name, &d.path, &opts, many, &mut first, 0).is_err() {
            return 1;
        }
    }
    status.max(LS_STATUS.with(|s| s.replace(0)))
}

thread_local! {
    /// Errors met inside directories during one `ls` run (exit 1 at the end).
    static LS_STATUS: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn sort_entries(v: &mut [Entry], o: &LsOpts) {
    if o.unsorted {
        return;
    }
    if o.sort_time {
        v.sort_by(|a, b| b.st.mtime.cmp(&a.st.mtime).then(a.name.cmp(&b.name)));
    } else if o.sort_size {
        v.sort_by(|a, b| b.st.size.cmp(&a.st.size).then(a.name.cmp(&b.name)));
    } else {
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if o.reverse {
        v.reverse();
    }
}

fn ls_dir(
    ctx: &mut Ctx<'_>,
    shown: &str,
    path: &str,
    o: &LsOpts,
    header: bool,
    first: &mut bool,
    depth: usize,
) -> io::Result<()> {
    if header {
        if !*first {
            ctx.stdout.write_all(b"\n")?;
        }
        writeln!(ctx.stdout, "{shown}:")?;
    }
    *first = false;
    let list = match ctx.core.fs.read_dir(path) {
        Ok(l) => l,
        Err(e) => {
            path_err(ctx, "ls", shown, &e);
            LS_STATUS.with(|s| s.set(1));
            return Ok(());
        }
    };
    let mut entries: Vec<Entry> = Vec::new();
    if o.all {
        if let Ok(st) = ctx.core.fs.stat(path) {
            entries.push(Entry {
                name: ".".into(),
                path: path.to_owned(),
                st,
            });
        }
        let parent = join_name(path, "..");
        if let Ok(st) = ctx.core.fs.stat(&parent) {
            entries.push(Entry {
                name: "..".into(),
                path: parent,
                st,
            });
        }
    }
    for (name, st) in list {
        if name.starts_with('.') && !o.all && !o.almost {
            continue;
        }
        entries.push(Entry {
            path: join_name(path, &name),
            name,
            st,
        });
    }
    sort_entries(&mut entries, o);
    print_entries(ctx, &entries, o, true)?;
    if o.recursive && depth < MAX_WALK_DEPTH {
        for e in &entries {
            if e.name == "." || e.name == ".." || !fs::is_dir_mode(e.st.mode) {
                continue;
            }
            let shown_child = join_name(shown, &e.name);
            ls_dir(ctx, &shown_child, &e.path, o, true, first, depth + 1)?;
        }
    }
    Ok(())
}

fn print_entries(ctx: &mut Ctx<'_>, entries: &[Entry], o: &LsOpts, total: bool) -> io::Result<()> {
    let suffix = |e: &Entry| -> &'static str {
        if !o.classify {
            return "";
        }
        match e.st.mode & 0o170000 {
            0o040000 => "/",
            0o120000 => "@",
            _ if e.st.mode & 0o111 != 0 => "*",
            _ => "",
        }
    };
    if !o.long {
        let mut out = String::new();
        for e in entries {
            if o.inode {
                out.push_str(&format!("{} ", e.st.ino));
            }
            if o.size {
                out.push_str(&format!("{} ", blocks_1k(&e.st)));
            }
            out.push_str(&e.name);
            out.push_str(suffix(e));
            out.push('\n');
        }
        return ctx.stdout.write_all(out.as_bytes());
    }
    let owner = |st: &FileStat| -> String {
        if o.numeric {
            st.uid.to_string()
        } else {
            "root".into()
        }
    };
    let size_text = |st: &FileStat| -> String {
        if o.human {
            human(st.size)
        } else {
            st.size.to_string()
        }
    };
    let wl = entries
        .iter()
        .map(|e| e.st.nlink.to_string().len())
        .max()
        .unwrap_or(1);
    let ws = entries
        .iter()
        .map(|e| size_text(&e.st).len())
        .max()
        .unwrap_or(1);
    let wu = entries
        .iter()
        .map(|e| owner(&e.st).len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    if total {
        let t: u64 = entries.iter().map(|e| blocks_1k(&e.st)).sum();
        out.push_str(&format!("total {t}\n"));
    }
    for e in entries {
        if o.inode {
            out.push_str(&format!("{} ", e.st.ino));
        }
        if o.size {
            out.push_str(&format!("{} ", blocks_1k(&e.st)));
        }
        let mut line = format!(
            "{} {:>wl$} {:<wu$} {:<wu$} {:>ws$} {} {}",
            mode_string(e.st.mode),
            e.st.nlink,
            owner(&e.st),
            owner(&e.st),
            size_text(&e.st),
            fmt_time(e.st.mtime, "%Y-%m-%d %H:%M"),
            e.name
        );
        if fs::is_symlink_mode(e.st.mode) {
            if let Ok(t) = ctx.core.fs.read_link(&e.path) {
                line.push_str(" -> ");
                line.push_str(&t);
            }
        } else {
            line.push_str(suffix(e));
        }
        out.push_str(&line);
        out.push('\n');
    }
    ctx.stdout.write_all(out.as_bytes())
}

// ----- cat -----

pub fn cat(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "nuvAeEtTsb", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let number = o.has('n') || o.has('b');
    let mut line_no = 0u64;
    let mut at_line_start = true;
    let files = o.args.clone();
    // Directories are refused up front (toybox reads them and fails with EISDIR).
    each_input(ctx, "cat", &files, |_name, r, w| {
        if !number {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                w.write_all(&buf[..n])
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
                w.flush()
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            }
        }
        let mut buf = Vec::new();
        r.take(super::MAX_INPUT).read_to_end(&mut buf)?;
        let mut out = Vec::with_capacity(buf.len() + buf.len() / 8);
        for b in buf {
            if at_line_start {
                line_no += 1;
                out.extend_from_slice(format!("{line_no:6}\t").as_bytes());
                at_line_start = false;
            }
            out.push(b);
            if b == b'\n' {
                at_line_start = true;
            }
        }
        w.write_all(&out)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    })
}

// ----- mkdir / rmdir / rm -----

pub fn mkdir(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "pm:vZ:", &[("parents", 'p'), ("mode", 'm')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "mkdir", "Needs 1 argument");
        return 1;
    }
    let mode = match o.val('m') {
        Some(m) => match parse_mode(m, 0o755, true) {
            Some(m) => Some(m),
            None => {
                fail(ctx, "mkdir", &format!("bad mode '{m}'"));
                return 1;
            }
        },
        None => None,
    };
    let mut status = 0;
    for p in &o.args {
        let path = dev(ctx, p);
        let r = if o.has('p') {
            ctx.core.fs.mkdir_all(&path)
        } else {
            ctx.core.fs.mkdir(&path)
        };
        let r = r.and_then(|_| match mode {
            Some(m) => ctx.core.fs.chmod(&path, m),
            None => Ok(()),
        });
        match r {
            Ok(()) => {
                if o.has('v') {
                    let _ = writeln!(ctx.stdout, "mkdir: created directory '{p}'");
                }
            }
            Err(e) => {
                let _ = writeln!(ctx.stderr, "mkdir: '{p}': {}", fs::error_text(&e));
                status = 1;
            }
        }
    }
    status
}

pub fn rmdir(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "pv", &[("parents", 'p')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "rmdir", "Needs 1 argument");
        return 1;
    }
    let mut status = 0;
    for p in &o.args {
        let mut cur = p.trim_end_matches('/').to_owned();
        if cur.is_empty() {
            cur = "/".into();
        }
        loop {
            if let Err(e) = ctx.core.fs.remove_dir(&dev(ctx, &cur)) {
                let _ = writeln!(ctx.stderr, "rmdir: {cur}: {}", fs::error_text(&e));
                status = 1;
                break;
            }
            if !o.has('p') {
                break;
            }
            let parent = dir_name(&cur);
            if parent == "." || parent == "/" || parent == cur {
                break;
            }
            cur = parent;
        }
    }
    status
}

pub fn rm(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "rRfivd", &[("recursive", 'r'), ("force", 'f')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let force = o.has('f');
    let recursive = o.has('r') || o.has('R');
    if o.args.is_empty() {
        if force {
            return 0;
        }
        fail(ctx, "rm", "Needs 1 argument");
        return 1;
    }
    let mut status = 0;
    for p in &o.args {
        let path = dev(ctx, p);
        let base = base_name(p);
        if base == "." || base == ".." {
            let _ = writeln!(ctx.stderr, "rm: {p}: Invalid argument");
            status = 1;
            continue;
        }
        let st = match ctx.core.fs.lstat(&path) {
            Ok(st) => st,
            Err(e) => {
                if !(force && e.raw_os_error() == Some(libc::ENOENT)) {
                    path_err(ctx, "rm", p, &e);
                    status = 1;
                }
                continue;
            }
        };
        let r = if fs::is_dir_mode(st.mode) {
            if recursive {
                ctx.core.fs.remove_all(&path)
            } else if o.has('d') {
                ctx.core.fs.remove_dir(&path)
            } else {
                Err(errno(libc::EISDIR))
            }
        } else {
            ctx.core.fs.remove_file(&path)
        };
        match r {
            Ok(()) => {
                if o.has('v') {
                    let _ = writeln!(ctx.stdout, "rm '{p}'");
                }
            }
            Err(e) => {
                path_err(ctx, "rm", p, &e);
                status = 1;
            }
        }
    }
    status
}

// ----- cp / mv -----

pub fn cp(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "rRafpPdlnsuvFiLHDT", &[("recursive", 'r')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let recursive = o.has('r') || o.has('R') || o.has('a');
    let preserve = o.has('p') || o.has('a');
    let no_clobber = o.has('n');
    if o.args.len() < 2 {
        fail(ctx, "cp", "Needs 2 arguments");
        return 1;
    }
    let (srcs, dst) = o.args.split_at(o.args.len() - 1);
    let dst = &dst[0];
    let dst_path = dev(ctx, dst);
    let dst_is_dir = ctx.core.fs.is_dir(&dst_path);
    if srcs.len() > 1 && !dst_is_dir {
        let _ = writeln!(ctx.stderr, "cp: '{dst}' not directory");
        return 1;
    }
    let mut status = 0;
    for s in srcs {
        let src_path = dev(ctx, s);
        let target = if dst_is_dir {
            join_name(&dst_path, &base_name(s))
        } else {
            dst_path.clone()
        };
        let st = match ctx.core.fs.stat(&src_path) {
            Ok(st) => st,
            Err(e) => {
                path_err(ctx, "cp", s, &e);
                status = 1;
                continue;
            }
        };
        if fs::is_dir_mode(st.mode) && !recursive {
            let _ = writeln!(ctx.stderr, "cp: {s}: Is a directory");
            status = 1;
            continue;
        }
        if fs::is_dir_mode(st.mode) {
            let canon_src = ctx.core.fs.canonicalize(&src_path).unwrap_or_default();
            let canon_dst = ctx.core.fs.canonicalize(&target).unwrap_or_default();
            if canon_dst == canon_src || canon_dst.starts_with(&format!("{canon_src}/")) {
                let _ = writeln!(ctx.stderr, "cp: '{s}' is inside '{dst}'");
                status = 1;
                continue;
            }
        }
        if let Err((path, e)) = copy_tree(ctx, &src_path, &target, preserve, no_clobber, 0) {
            path_err(ctx, "cp", &path, &e);
            status = 1;
        } else if o.has('v') {
            let _ = writeln!(ctx.stdout, "cp '{s}' '{}'", target);
        }
    }
    status
}

/// Copies `src` (links followed at the top, kept below) to `dst`.
fn copy_tree(
    ctx: &mut Ctx<'_>,
    src: &str,
    dst: &str,
    preserve: bool,
    no_clobber: bool,
    depth: usize,
) -> Result<(), (String, io::Error)> {
    if depth > MAX_WALK_DEPTH {
        return Err((src.to_owned(), errno(libc::ELOOP)));
    }
    let fsys = &ctx.core.fs;
    let st = if depth == 0 {
        fsys.stat(src)
    } else {
        fsys.lstat(src)
    }
    .map_err(|e| (src.to_owned(), e))?;
    if fs::is_symlink_mode(st.mode) {
        let t = fsys.read_link(src).map_err(|e| (src.to_owned(), e))?;
        if fsys.lstat(dst).is_ok() {
            if no_clobber {
                return Ok(());
            }
            fsys.remove_file(dst).map_err(|e| (dst.to_owned(), e))?;
        }
        return fsys.symlink(&t, dst).map_err(|e| (dst.to_owned(), e));
    }
    if fs::is_dir_mode(st.mode) {
        match fsys.mkdir(dst) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && fsys.is_dir(dst) => {}
            Err(e) => return Err((dst.to_owned(), e)),
        }
        let entries = fsys.read_dir(src).map_err(|e| (src.to_owned(), e))?;
        for (name, _) in entries {
            copy_tree(
                ctx,
                &join_name(src, &name),
                &join_name(dst, &name),
                preserve,
                no_clobber,
                depth + 1,
            )?;
        }
        if preserve {
            let _ = ctx.core.fs.chmod(dst, st.mode & 0o7777);
            let _ = ctx.core.fs.set_mtime(dst, st.mtime);
        }
        return Ok(());
    }
    if no_clobber && fsys.lstat(dst).is_ok() {
        return Ok(());
    }
    if let Ok(dst_st) = fsys.stat(dst)
        && dst_st.ino == st.ino
        && dst_st.dev == st.dev
    {
        return Err((src.to_owned(), io::Error::other("same file")));
    }
    fsys.copy(src, dst).map_err(|e| (dst.to_owned(), e))?;
    if preserve {
        let _ = fsys.set_mtime(dst, st.mtime);
    }
    Ok(())
}

pub fn mv(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "fnivTu", &[("force", 'f')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.len() < 2 {
        fail(ctx, "mv", "Needs 2 arguments");
        return 1;
    }
    let (srcs, dst) = o.args.split_at(o.args.len() - 1);
    let dst = &dst[0];
    let dst_path = dev(ctx, dst);
    let dst_is_dir = ctx.core.fs.is_dir(&dst_path);
    if srcs.len() > 1 && !dst_is_dir {
        let _ = writeln!(ctx.stderr, "mv: '{dst}' not directory");
        return 1;
    }
    let mut status = 0;
    for s in srcs {
        let src_path = dev(ctx, s);
        let target = if dst_is_dir {
            join_name(&dst_path, &base_name(s))
        } else {
            dst_path.clone()
        };
        if o.has('n') && ctx.core.fs.lstat(&target).is_ok() {
            continue;
        }
        let r = match ctx.core.fs.rename(&src_path, &target) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                // Across mounts: copy, then remove the source.
                match copy_tree(ctx, &src_path, &target, true, false, 1) {
                    Ok(()) => ctx.core.fs.remove_all(&src_path),
                    Err((_, e)) => Err(e),
                }
            }
            other => other,
        };
        if let Err(e) = r {
            path_err(ctx, "mv", s, &e);
            status = 1;
        } else if o.has('v') {
            let _ = writeln!(ctx.stdout, "mv '{s}' '{}'", target);
        }
    }
    status
}

// ----- touch / chmod / chown / ln / readlink / realpath -----

pub fn touch(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "acmd:t:r:h",
        &[("no-create", 'c'), ("date", 'd')],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "touch", "Needs 1 argument");
        return 1;
    }
    let now = chrono::Utc::now().timestamp();
    let when = if let Some(r) = o.val('r') {
        match ctx.core.fs.stat(&dev(ctx, r)) {
            Ok(st) => st.mtime,
            Err(e) => {
                path_err(ctx, "touch", r, &e);
                return 1;
            }
        }
    } else if let Some(d) = o.val('d') {
        match parse_date(d) {
            Some(t) => t,
            None => {
                let _ = writeln!(ctx.stderr, "touch: bad date '{d}'");
                return 1;
            }
        }
    } else if let Some(t) = o.val('t') {
        match parse_touch_t(t) {
            Some(t) => t,
            None => {
                let _ = writeln!(ctx.stderr, "touch: bad date '{t}'");
                return 1;
            }
        }
    } else {
        now
    };
    let mut status = 0;
    for p in &o.args {
        let path = dev(ctx, p);
        let r = if ctx.core.fs.exists(&path) {
            ctx.core.fs.set_mtime(&path, when)
        } else if o.has('c') {
            Ok(())
        } else {
            ctx.core
                .fs
                .open_write(&path, fs::WriteMode::Append)
                .and_then(|_| ctx.core.fs.set_mtime(&path, when))
        };
        if let Err(e) = r {
            path_err(ctx, "touch", p, &e);
            status = 1;
        }
    }
    status
}

/// `@SECONDS`, `YYYY-MM-DD[ T]HH:MM[:SS]` or `YYYY-MM-DD` (UTC).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    if let Some(n) = s.strip_prefix('@') {
        return n.trim().parse().ok();
    }
    let s = s.trim().trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// `touch -t [[CC]YY]MMDDhhmm[.ss]`
fn parse_touch_t(s: &str) -> Option<i64> {
    let (main, secs) = match s.split_once('.') {
        Some((m, sec)) => (m, sec.parse::<u32>().ok()?),
        None => (s, 0),
    };
    if !main.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match main.len() {
        12 => (main[..4].parse::<i32>().ok()?, &main[4..]),
        10 => (2000 + main[..2].parse::<i32>().ok()?, &main[2..]),
        8 => (chrono::Datelike::year(&chrono::Utc::now()), main),
        _ => return None,
    };
    let num = |a: usize| rest.get(a..a + 2).and_then(|x| x.parse::<u32>().ok());
    let d = chrono::NaiveDate::from_ymd_opt(year, num(0)?, num(2)?)?;
    let t = d.and_hms_opt(num(4)?, num(6)?, secs)?;
    Some(t.and_utc().timestamp())
}

/// Parses an octal or symbolic (`u+x,go-w`, `a=r`) mode relative to `current`.
pub(crate) fn parse_mode(s: &str, current: u32, is_dir: bool) -> Option<u32> {
    if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) {
        let v = u32::from_str_radix(s, 8).ok()?;
        return (v <= 0o7777).then_some(v);
    }
    let mut mode = current & 0o7777;
    for clause in s.split(',') {
        let chars: Vec<char> = clause.chars().collect();
        let mut i = 0;
        let mut who = 0u32;
        while i < chars.len() && "ugoa".contains(chars[i]) {
            who |= match chars[i] {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        let default_who = who == 0;
        if default_who {
            who = 0o7777;
        }
        if i >= chars.len() {
            return None;
        }
        while i < chars.len() {
            let op = chars[i];
            if !"+-=".contains(op) {
                return None;
            }
            i += 1;
            let mut bits = 0u32;
            while i < chars.len() && !"+-=".contains(chars[i]) {
                bits |= match chars[i] {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' => {
                        if is_dir || current & 0o111 != 0 {
                            0o111
                        } else {
                            0
                        }
                    }
                    's' => 0o6000,
                    't' => 0o1000,
                    'u' => {
                        let u = (current >> 6) & 7;
                        u | (u << 3) | (u << 6)
                    }
                    'g' => {
                        let g = (current >> 3) & 7;
                        g | (g << 3) | (g << 6)
                    }
                    'o' => {
                        let o = current & 7;
                        o | (o << 3) | (o << 6)
                    }
                    _ => return None,
                };
                i += 1;
            }
            let bits = bits & who;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => {
                    let clear = who & 0o777 | (who & 0o7000);
                    mode = (mode & !clear) | bits;
                }
            }
        }
    }
    Some(mode)
}

pub fn chmod(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    // A mode such as `-x` looks like an option: take the first non-path operand as the mode.
    let mut recursive = false;
    let mut verbose = false;
    let mut rest: Vec<String> = Vec::new();
    for a in &args[1..] {
        if rest.is_empty() && (a == "-R" || a == "-v" || a == "-f" || a == "-Rv" || a == "-vR") {
            recursive |= a.contains('R');
            verbose |= a.contains('v');
            continue;
        }
        rest.push(a.clone());
    }
    if rest.len() < 2 {
        fail(ctx, "chmod", "Needs 2 arguments");
        return 1;
    }
    let spec = rest[0].clone();
    let mut status = 0;
    for p in &rest[1..] {
        if let Err((path, e)) = chmod_one(ctx, &spec, &dev(ctx, p), p, recursive, verbose, 0) {
            if e.kind() == io::ErrorKind::InvalidInput {
                let _ = writeln!(ctx.stderr, "chmod: invalid mode '{spec}'");
                return 1;
            }
            path_err(ctx, "chmod", &path, &e);
            status = 1;
        }
    }
    status
}

fn chmod_one(
    ctx: &mut Ctx<'_>,
    spec: &str,
    path: &str,
    shown: &str,
    recursive: bool,
    verbose: bool,
    depth: usize,
) -> Result<(), (String, io::Error)> {
    let st = ctx.core.fs.stat(path).map_err(|e| (shown.to_owned(), e))?;
    let mode = parse_mode(spec, st.mode, fs::is_dir_mode(st.mode)).ok_or_else(|| {
        (
            shown.to_owned(),
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    ctx.core
        .fs
        .chmod(path, mode)
        .map_err(|e| (shown.to_owned(), e))?;
    if verbose {
        let _ = writeln!(ctx.stdout, "chmod '{shown}' to {mode:04o}");
    }
    if recursive && fs::is_dir_mode(st.mode) && depth < MAX_WALK_DEPTH {
        let entries = ctx
            .core
            .fs
            .read_dir(path)
            .map_err(|e| (shown.to_owned(), e))?;
        for (name, est) in entries {
            if fs::is_symlink_mode(est.mode) {
                continue;
            }
            chmod_one(
                ctx,
                spec,
                &join_name(path, &name),
                &join_name(shown, &name),
                recursive,
                verbose,
                depth + 1,
            )?;
        }
    }
    Ok(())
}

/// `chown`/`chgrp`: everything belongs to root here; checks the operands exist.
pub fn chown(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "RhHLPfv", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let cmd = args[0].clone();
    if o.args.len() < 2 {
        fail(ctx, &cmd, "Needs 2 arguments");
        return 1;
    }
    let mut status = 0;
    for p in &o.args[1..] {
        let path = dev(ctx, p);
        match ctx.core.fs.lstat(&path) {
            Ok(_) if ctx.core.fs.is_read_only(&path).unwrap_or(false) => {
                path_err(ctx, &cmd, p, &errno(libc::EROFS));
                status = 1;
            }
            Ok(_) => {}
            Err(e) => {
                path_err(ctx, &cmd, p, &e);
                status = 1;
            }
        }
    }
    status
}

pub fn ln(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "sfnvT", &[("symbolic", 's'), ("force", 'f')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "ln", "Needs 1 argument");
        return 1;
    }
    let (targets, link_dir): (Vec<String>, Option<String>) = if o.args.len() == 1 {
        (o.args.clone(), Some(".".into()))
    } else {
        let last = o.args[o.args.len() - 1].clone();
        let is_dir = !o.has('n') && !o.has('T') && ctx.core.fs.is_dir(&dev(ctx, &last));
        if o.args.len() > 2 && !is_dir {
            let _ = writeln!(ctx.stderr, "ln: '{last}' not directory");
            return 1;
        }
        if is_dir {
            (o.args[..o.args.len() - 1].to_vec(), Some(last))
        } else {
            (vec![o.args[0].clone()], None)
        }
    };
    let mut status = 0;
    for t in &targets {
        let link = match &link_dir {
            Some(d) => join_name(d, &base_name(t)),
            None => o.args[1].clone(),
        };
        let link_path = dev(ctx, &link);
        if o.has('f')
            && ctx
                .core
                .fs
                .lstat(&link_path)
                .is_ok_and(|s| !fs::is_dir_mode(s.mode))
        {
            let _ = ctx.core.fs.remove_file(&link_path);
        }
        let r = if o.has('s') {
            ctx.core.fs.symlink(t, &link_path)
        } else {
            ctx.core.fs.hard_link(&dev(ctx, t), &link_path)
        };
        if let Err(e) = r {
            let _ = writeln!(
                ctx.stderr,
                "ln: cannot create link '{link}' to '{t}': {}",
                fs::error_text(&e)
            );
            status = 1;
        } else if o.has('v') {
            let _ = writeln!(ctx.stdout, "'{link}' -> '{t}'");
        }
    }
    status
}

pub fn readlink(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "femnqsvz", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "readlink", "Needs 1 argument");
        return 1;
    }
    let canonical = o.has('f') || o.has('e') || o.has('m');
    let mut status = 0;
    for p in &o.args {
        let path = dev(ctx, p);
        let r = if canonical {
            ctx.core.fs.canonicalize(&path).and_then(|c| {
                if o.has('e') && !ctx.core.fs.exists(&c) {
                    Err(errno(libc::ENOENT))
                } else {
                    Ok(c)
                }
            })
        } else {
            ctx.core.fs.read_link(&path)
        };
        match r {
            Ok(t) => {
                let end = if o.has('n') { "" } else { "\n" };
                let _ = write!(ctx.stdout, "{t}{end}");
            }
            Err(_) => status = 1,
        }
    }
    status
}

pub fn realpath(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "qesmL", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let operands = if o.args.is_empty() {
        vec![".".to_owned()]
    } else {
        o.args.clone()
    };
    let mut status = 0;
    for p in &operands {
        match ctx.core.fs.canonicalize(&dev(ctx, p)) {
            Ok(c) => {
                let _ = writeln!(ctx.stdout, "{c}");
            }
            Err(e) => {
                path_err(ctx, "realpath", p, &e);
                status = 1;
            }
        }
    }
    status
}

pub fn basename(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "as:", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "basename", "Needs 1 argument");
        return 1;
    }
    let (names, suffix): (Vec<String>, Option<String>) = if o.has('a') || o.has('s') {
        (o.args.clone(), o.val('s').map(str::to_owned))
    } else {
        (vec![o.args[0].clone()], o.args.get(1).cloned())
    };
    for n in names {
        let mut b = base_name(&n);
        if let Some(s) = &suffix
            && b.len() > s.len()
            && b.ends_with(s.as_str())
        {
            b.truncate(b.len() - s.len());
        }
        let _ = writeln!(ctx.stdout, "{b}");
    }
    0
}

pub fn dirname(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if args.len() < 2 {
        fail(ctx, "dirname", "Needs 1 argument");
        return 1;
    }
    for a in &args[1..] {
        let _ = writeln!(ctx.stdout, "{}", dir_name(a));
    }
    0
}

// ----- stat -----

pub fn stat(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "c:fLt", &[("format", 'c'), ("dereference", 'L')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.is_empty() {
        fail(ctx, "stat", "Needs 1 argument");
        return 1;
    }
    let mut status = 0;
    for p in &o.args {
        let path = dev(ctx, p);
        if o.has('f') {
            match ctx.core.fs.usage(&path) {
                Ok(u) => {
                    let text = match o.val('c') {
                        Some(fmt) => format_statfs(fmt, p, &u),
                        None => format!(
                            "  File: \"{p}\"\n    ID: 0 Namelen: 255    Type: ext2/ext3\nBlock Size: 4096    Fundamental block size: 4096\nBlocks: Total: {}\tFree: {}\tAvailable: {}\n",
                            u.total / 4096,
                            (u.total - u.used) / 4096,
                            u.available / 4096
                        ),
                    };
                    let _ = ctx.stdout.write_all(text.as_bytes());
                }
                Err(e) => {
                    path_err(ctx, "stat", p, &e);
                    status = 1;
                }
            }
            continue;
        }
        let st = if o.has('L') {
            ctx.core.fs.stat(&path)
        } else {
            ctx.core.fs.lstat(&path)
        };
        let st = match st {
            Ok(st) => st,
            Err(e) => {
                path_err(ctx, "stat", p, &e);
                status = 1;
                continue;
            }
        };
        let link = if fs::is_symlink_mode(st.mode) {
            ctx.core.fs.read_link(&path).ok()
        } else {
            None
        };
        let text = match o.val('c') {
            Some(fmt) => {
                let mut s = format_stat(fmt, p, &st, link.as_deref());
                s.push('\n');
                s
            }
            None => {
                let name = match &link {
                    Some(t) => format!("{p} -> {t}"),
                    None => p.clone(),
                };
                format!(
                    "  File: {name}\n  Size: {}\t Blocks: {}\t IO Blocks: 4096\t{}\nDevice: {:x}h/{}d\t Inode: {}\t Links: {}\t Device type: 0,0\nAccess: ({:04o}/{})\tUid: (    0/    root)\tGid: (    0/    root)\nAccess: {}\nModify: {}\nChange: {}\n",
                    st.size,
                    blocks_1k(&st) * 2,
                    file_type(&st),
                    st.dev,
                    st.dev,
                    st.ino,
                    st.nlink,
                    st.mode & 0o7777,
                    mode_string(st.mode),
                    fmt_time(st.atime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
                    fmt_time(st.mtime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
                    fmt_time(st.ctime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
                )
            }
        };
        if ctx.stdout.write_all(text.as_bytes()).is_err() {
            return 1;
        }
    }
    status
}

fn file_type(st: &FileStat) -> &'static str {
    match st.mode & 0o170000 {
        0o040000 => "directory",
        0o120000 => "symbolic link",
        0o100000 if st.size == 0 => "regular empty file",
        0o100000 => "regular file",
        0o020000 => "character special file",
        0o060000 => "block special file",
        0o010000 => "fifo",
        0o140000 => "socket",
        _ => "unknown",
    }
}

fn format_stat(fmt: &str, name: &str, st: &FileStat, link: Option<&str>) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(f) = it.next() else {
            out.push('%');
            break;
        };
        let s = match f {
            '%' => "%".to_owned(),
            'n' => name.to_owned(),
            'N' => match link {
                Some(t) => format!("'{name}' -> '{t}'"),
                None => format!("'{name}'"),
            },
            's' => st.size.to_string(),
            'a' => format!("{:o}", st.mode & 0o7777),
            'A' => mode_string(st.mode),
            'f' => format!("{:x}", st.mode),
            'F' => file_type(st).to_owned(),
            'u' | 'g' => "0".to_owned(),
            'U' | 'G' => "root".to_owned(),
            'i' => st.ino.to_string(),
            'h' => st.nlink.to_string(),
            'd' => st.dev.to_string(),
            'D' => format!("{:x}", st.dev),
            'b' => (blocks_1k(st) * 2).to_string(),
            'B' => "512".to_owned(),
            'o' => "4096".to_owned(),
            't' | 'T' => "0".to_owned(),
            'X' => st.atime.to_string(),
            'Y' => st.mtime.to_string(),
            'Z' => st.ctime.to_string(),
            'W' => "0".to_owned(),
            'x' => fmt_time(st.atime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
            'y' => fmt_time(st.mtime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
            'z' => fmt_time(st.ctime, "%Y-%m-%d %H:%M:%S.000000000 +0000"),
            'w' => "-".to_owned(),
            'C' => "u:object_r:system_file:s0".to_owned(),
            other => format!("?{other}"),
        };
        out.push_str(&s);
    }
    out
}

fn format_statfs(fmt: &str, name: &str, u: &Usage) -> String {
    let mut out = String::new();
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let s = match it.next() {
            Some('n') => name.to_owned(),
            Some('b') => (u.total / 4096).to_string(),
            Some('f') => ((u.total - u.used) / 4096).to_string(),
            Some('a') => (u.available / 4096).to_string(),
            Some('s') | Some('S') => "4096".to_owned(),
            Some('l') => "255".to_owned(),
            Some('T') => "ext2/ext3".to_owned(),
            Some('t') => "ef53".to_owned(),
            Some('%') => "%".to_owned(),
            Some(o) => format!("?{o}"),
            None => "%".to_owned(),
        };
        out.push_str(&s);
    }
    out.push('\n');
    out
}

// ----- find -----

#[derive(Debug)]
enum FindExpr {
    Name(Vec<pattern::PChar>, bool),
    Path(Vec<pattern::PChar>, bool),
    Type(char),
    Size(std::cmp::Ordering, u64),
    Empty,
    Newer(i64),
    True,
    Print,
    Delete,
    Exec(Vec<String>),
    Not(Box<FindExpr>),
    And(Box<FindExpr>, Box<FindExpr>),
    Or(Box<FindExpr>, Box<FindExpr>),
}

struct FindParser<'a> {
    t: &'a [String],
    i: usize,
    has_action: bool,
    maxdepth: Option<usize>,
    mindepth: usize,
}

impl FindParser<'_> {
    fn or(&mut self, ctx: &Ctx<'_>) -> Result<FindExpr, String> {
        let mut l = self.and(ctx)?;
        while self.i < self.t.len() && (self.t[self.i] == "-o" || self.t[self.i] == "-or") {
            self.i += 1;
            let r = self.and(ctx)?;
            l = FindExpr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self, ctx: &Ctx<'_>) -> Result<FindExpr, String> {
        let mut l = self.not(ctx)?;
        while self.i < self.t.len()
            && self.t[self.i] != "-o"
            && self.t[self.i] != "-or"
            && self.t[self.i] != ")"
        {
            if self.t[self.i] == "-a" || self.t[self.i] == "-and" {
                self.i += 1;
            }
            let r = self.not(ctx)?;
            l = FindExpr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self, ctx: &Ctx<'_>) -> Result<FindExpr, String> {
        if self.i < self.t.len() && (self.t[self.i] == "!" || self.t[self.i] == "-not") {
            self.i += 1;
            return Ok(FindExpr::Not(Box::new(self.not(ctx)?)));
        }
        self.primary(ctx)
    }

    fn arg(&mut self, what: &str) -> Result<String, String> {
        let v = self
            .t
            .get(self.i)
            .cloned()
            .ok_or_else(|| format!("'{what}' needs 1 arg"))?;
        self.i += 1;
        Ok(v)
    }

    fn primary(&mut self, ctx: &Ctx<'_>) -> Result<FindExpr, String> {
        let Some(tok) = self.t.get(self.i).cloned() else {
            return Ok(FindExpr::True);
        };
        self.i += 1;
        Ok(match tok.as_str() {
            "(" => {
                let e = self.or(ctx)?;
                if self.t.get(self.i).map(String::as_str) != Some(")") {
                    return Err("missing ')'".into());
                }
                self.i += 1;
                e
            }
            "-name" | "-iname" => {
                let p = self.arg(&tok)?;
                FindExpr::Name(pattern::compile(&p), tok == "-iname")
            }
            "-path" | "-ipath" | "-wholename" => {
                let p = self.arg(&tok)?;
                FindExpr::Path(pattern::compile(&p), tok == "-ipath")
            }
            "-type" => {
                let t = self.arg(&tok)?;
                match t.as_str() {
                    "f" | "d" | "l" | "b" | "c" | "p" | "s" => {
                        FindExpr::Type(t.chars().next().unwrap_or('f'))
                    }
                    _ => return Err(format!("bad -type '{t}'")),
                }
            }
            "-maxdepth" => {
                let v = self.arg(&tok)?;
                self.maxdepth = Some(v.parse().map_err(|_| format!("bad -maxdepth '{v}'"))?);
                FindExpr::True
            }
            "-mindepth" => {
                let v = self.arg(&tok)?;
                self.mindepth = v.parse().map_err(|_| format!("bad -mindepth '{v}'"))?;
                FindExpr::True
            }
            "-size" => {
                let v = self.arg(&tok)?;
                let (ord, rest) = match v.chars().next() {
                    Some('+') => (std::cmp::Ordering::Greater, &v[1..]),
                    Some('-') => (std::cmp::Ordering::Less, &v[1..]),
                    _ => (std::cmp::Ordering::Equal, v.as_str()),
                };
                let (num, unit) = match rest.chars().last() {
                    Some(c) if c.is_ascii_alphabetic() => (&rest[..rest.len() - 1], c),
                    _ => (rest, 'b'),
                };
                let n: u64 = num.parse().map_err(|_| format!("bad -size '{v}'"))?;
                let mult = match unit {
                    'c' => 1,
                    'k' => 1024,
                    'M' => 1024 * 1024,
                    'G' => 1024 * 1024 * 1024,
                    _ => 512,
                };
                FindExpr::Size(ord, n.saturating_mul(mult))
            }
            "-empty" => FindExpr::Empty,
            "-newer" => {
                let f = self.arg(&tok)?;
                let st = ctx
                    .core
                    .fs
                    .stat(&dev(ctx, &f))
                    .map_err(|e| format!("{f}: {}", fs::error_text(&e)))?;
                FindExpr::Newer(st.mtime)
            }
            "-print" | "-print0" => {
                self.has_action = true;
                FindExpr::Print
            }
            "-delete" => {
                self.has_action = true;
                FindExpr::Delete
            }
            "-exec" => {
                let mut cmd = Vec::new();
                loop {
                    let Some(a) = self.t.get(self.i).cloned() else {
                        return Err("-exec without ';'".into());
                    };
                    self.i += 1;
                    if a == ";" || a == "+" {
                        break;
                    }
                    cmd.push(a);
                }
                if cmd.is_empty() {
                    return Err("empty -exec".into());
                }
                self.has_action = true;
                FindExpr::Exec(cmd)
            }
            "-follow" | "-xdev" | "-depth" => FindExpr::True,
            other => return Err(format!("Unknown option '{other}'")),
        })
    }
}

pub fn find(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut i = 1;
    let mut follow = false;
    while i < args.len() && (args[i] == "-H" || args[i] == "-L" || args[i] == "-P") {
        follow = args[i] == "-L";
        i += 1;
    }
    let mut paths = Vec::new();
    while i < args.len() && !(args[i].starts_with('-') || args[i] == "!" || args[i] == "(") {
        paths.push(args[i].clone());
        i += 1;
    }
    if paths.is_empty() {
        paths.push(".".into());
    }
    let mut p = FindParser {
        t: &args[i..],
        i: 0,
        has_action: false,
        maxdepth: None,
        mindepth: 0,
    };
    let expr = match p.or(ctx) {
        Ok(e) if p.i == p.t.len() => e,
        Ok(_) => {
            fail(ctx, "find", "bad expression");
            return 1;
        }
        Err(msg) => {
            fail(ctx, "find", &msg);
            return 1;
        }
    };
    let expr = if p.has_action {
        expr
    } else {
        FindExpr::And(Box::new(expr), Box::new(FindExpr::Print))
    };
    let mut w = FindWalk {
        expr,
        maxdepth: p.maxdepth.unwrap_or(MAX_WALK_DEPTH).min(MAX_WALK_DEPTH),
        mindepth: p.mindepth,
        follow,
        status: 0,
        visited: 0,
    };
    for root in &paths {
        let path = dev(ctx, root);
        let st = if follow {
            ctx.core.fs.stat(&path)
        } else {
            ctx.core.fs.lstat(&path)
        };
        match st {
            Ok(st) => {
                if w.walk(ctx, root, &path, &st, 0).is_err() {
                    return 1;
                }
            }
            Err(e) => {
                path_err(ctx, "find", root, &e);
                w.status = 1;
            }
        }
    }
    w.status
}

struct FindWalk {
    expr: FindExpr,
    maxdepth: usize,
    mindepth: usize,
    follow: bool,
    status: i32,
    visited: u64,
}

impl FindWalk {
    fn walk(
        &mut self,
        ctx: &mut Ctx<'_>,
        shown: &str,
        path: &str,
        st: &FileStat,
        depth: usize,
    ) -> io::Result<()> {
        self.visited += 1;
        if self.visited > 10_000_000 {
            return Err(io::Error::other("too many files"));
        }
        let is_dir = fs::is_dir_mode(st.mode);
        // Children first only matters for -delete; evaluate the directory after its entries then.
        let deleting = contains_delete(&self.expr);
        if !deleting && depth >= self.mindepth {
            self.eval_top(ctx, shown, path, st)?;
        }
        if is_dir && depth < self.maxdepth {
            match ctx.core.fs.read_dir(path) {
                Ok(entries) => {
                    for (name, est) in entries {
                        let child_path = join_name(path, &name);
                        let child_shown = join_name(shown, &name);
                        let est = if self.follow {
                            ctx.core.fs.stat(&child_path).unwrap_or(est)
                        } else {
                            est
                        };
                        self.walk(ctx, &child_shown, &child_path, &est, depth + 1)?;
                    }
                }
                Err(e) => {
                    path_err(ctx, "find", shown, &e);
                    self.status = 1;
                }
            }
        }
        if deleting && depth >= self.mindepth {
            self.eval_top(ctx, shown, path, st)?;
        }
        Ok(())
    }

    fn eval_top(
        &mut self,
        ctx: &mut Ctx<'_>,
        shown: &str,
        path: &str,
        st: &FileStat,
    ) -> io::Result<()> {
        let expr = std::mem::replace(&mut self.expr, FindExpr::True);
        let r = self.eval(ctx, &expr, shown, path, st);
        self.expr = expr;
        r.map(|_| ())
    }

    fn eval(
        &mut self,
        ctx: &mut Ctx<'_>,
        e: &FindExpr,
        shown: &str,
        path: &str,
        st: &FileStat,
    ) -> io::Result<bool> {
        Ok(match e {
            FindExpr::True => true,
            FindExpr::Name(p, icase) => {
                let name = base_name(shown);
                if *icase {
                    let lp: Vec<pattern::PChar> = p
                        .iter()
                        .map(|pc| pattern::PChar {
                            c: pc.c.to_ascii_lowercase(),
                            literal: pc.literal,
                        })
                        .collect();
                    pattern::matches(&lp, &name.to_lowercase())
                } else {
                    pattern::matches(p, &name)
                }
            }
            FindExpr::Path(p, icase) => {
                if *icase {
                    let lp: Vec<pattern::PChar> = p
                        .iter()
                        .map(|pc| pattern::PChar {
                            c: pc.c.to_ascii_lowercase(),
                            literal: pc.literal,
                        })
                        .collect();
                    pattern::matches(&lp, &shown.to_lowercase())
                } else {
                    pattern::matches(p, shown)
                }
            }
            FindExpr::Type(t) => {
                let kind = match st.mode & 0o170000 {
                    0o040000 => 'd',
                    0o120000 => 'l',
                    0o020000 => 'c',
                    0o060000 => 'b',
                    0o010000 => 'p',
                    0o140000 => 's',
                    _ => 'f',
                };
                kind == *t
            }
            FindExpr::Size(ord, n) => {
                let size = st.size;
                match ord {
                    std::cmp::Ordering::Greater => size > *n,
                    std::cmp::Ordering::Less => size < *n,
                    std::cmp::Ordering::Equal => {
                        // Sizes round up to the unit (as find does): compare in units of 512.
                        size.div_ceil(512) == n.div_ceil(512) || size == *n
                    }
                }
            }
            FindExpr::Empty => {
                if fs::is_dir_mode(st.mode) {
                    ctx.core
                        .fs
                        .read_dir(path)
                        .map(|v| v.is_empty())
                        .unwrap_or(false)
                } else {
                    fs::is_file_mode(st.mode) && st.size == 0
                }
            }
            FindExpr::Newer(t) => st.mtime > *t,
            FindExpr::Print => {
                writeln!(ctx.stdout, "{shown}")?;
                true
            }
            FindExpr::Delete => {
                let r = if fs::is_dir_mode(st.mode) {
                    ctx.core.fs.remove_dir(path)
                } else {
                    ctx.core.fs.remove_file(path)
                };
                if let Err(e) = r {
                    path_err(ctx, "find", shown, &e);
                    self.status = 1;
                    false
                } else {
                    true
                }
            }
            FindExpr::Exec(cmd) => {
                let argv: Vec<String> = cmd.iter().map(|a| a.replace("{}", shown)).collect();
                match super::lookup(&argv[0]) {
                    Some(f) => {
                        let s = {
                            let mut sub = Ctx {
                                core: ctx.core,
                                cwd: ctx.cwd.clone(),
                                env: &mut *ctx.env,
                                stdin: &mut io::empty(),
                                stdout: &mut *ctx.stdout,
                                stderr: &mut *ctx.stderr,
                                cancel: ctx.cancel.clone(),
                            };
                            f(&mut sub, &argv)
                        };
                        s == 0
                    }
                    None => {
                        let _ =
                            writeln!(ctx.stderr, "find: {}: No such file or directory", argv[0]);
                        self.status = 1;
                        false
                    }
                }
            }
            FindExpr::Not(x) => !self.eval(ctx, x, shown, path, st)?,
            FindExpr::And(a, b) => {
                self.eval(ctx, a, shown, path, st)? && self.eval(ctx, b, shown, path, st)?
            }
            FindExpr::Or(a, b) => {
                self.eval(ctx, a, shown, path, st)? || self.eval(ctx, b, shown, path, st)?
            }
        })
    }
}

fn contains_delete(e: &FindExpr) -> bool {
    match e {
        FindExpr::Delete => true,
        FindExpr::Not(x) => contains_delete(x),
        FindExpr::And(a, b) | FindExpr::Or(a, b) => contains_delete(a) || contains_delete(b),
        _ => false,
    }
}

// ----- du / df -----

pub fn du(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "sahkmcd:xlLHK",
        &[
            ("summarize", 's'),
            ("human-readable", 'h'),
            ("max-depth", 'd'),
        ],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let max_depth = if o.has('s') {
        Some(0)
    } else {
        match o.val('d').map(|d| d.parse::<usize>()) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(_)) => {
                fail(ctx, "du", "bad -d");
                return 1;
            }
        }
    };
    let operands = if o.args.is_empty() {
        vec![".".to_owned()]
    } else {
        o.args.clone()
    };
    let fmt = |kb: u64| -> String {
        if o.has('h') {
            human(kb * 1024)
        } else if o.has('m') {
            kb.div_ceil(1024).to_string()
        } else {
            kb.to_string()
        }
    };
    let mut status = 0;
    let mut grand = 0;
    for p in &operands {
        let path = dev(ctx, p);
        let mut lines = Vec::new();
        match du_walk(ctx, p, &path, 0, max_depth, o.has('a'), &mut lines) {
            Ok(total) => {
                grand += total;
                for (kb, name) in lines {
                    if ctx
                        .stdout
                        .write_all(format!("{}\t{}\n", fmt(kb), name).as_bytes())
                        .is_err()
                    {
                        return 1;
                    }
                }
            }
            Err(e) => {
                path_err(ctx, "du", p, &e);
                status = 1;
            }
        }
    }
    if o.has('c') {
        let _ = writeln!(ctx.stdout, "{}\ttotal", fmt(grand));
    }
    status
}

fn du_walk(
    ctx: &mut Ctx<'_>,
    shown: &str,
    path: &str,
    depth: usize,
    max_depth: Option<usize>,
    all: bool,
    lines: &mut Vec<(u64, String)>,
) -> io::Result<u64> {
    if lines.len() > 1_000_000 || depth > MAX_WALK_DEPTH {
        return Err(errno(libc::ELOOP));
    }
    let st = ctx.core.fs.lstat(path)?;
    let mut total = blocks_1k(&st);
    if fs::is_dir_mode(st.mode) {
        for (name, est) in ctx.core.fs.read_dir(path)? {
            let child = join_name(path, &name);
            let child_shown = join_name(shown, &name);
            if fs::is_dir_mode(est.mode) {
                total += du_walk(ctx, &child_shown, &child, depth + 1, max_depth, all, lines)?;
            } else {
                let kb = blocks_1k(&est);
                total += kb;
                if all && max_depth.is_none_or(|m| depth < m) {
                    lines.push((kb, child_shown));
                }
            }
        }
    }
    if max_depth.is_none_or(|m| depth <= m) {
        lines.push((total, shown.to_owned()));
    }
    Ok(total)
}

pub fn df(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "hkPat:", &[("human-readable", 'h')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut mounts = ctx.core.fs.mounts();
    mounts.sort_by(|a, b| a.device_path.cmp(&b.device_path));
    let selected: Vec<(usize, String)> = if o.args.is_empty() {
        mounts
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.device_path.clone()))
            .collect()
    } else {
        let mut v = Vec::new();
        for p in &o.args {
            let path = dev(ctx, p);
            let canon = match ctx.core.fs.canonicalize(&path) {
                Ok(c) if ctx.core.fs.exists(&c) => c,
                Ok(_) => {
                    path_err(ctx, "df", p, &errno(libc::ENOENT));
                    continue;
                }
                Err(e) => {
                    path_err(ctx, "df", p, &e);
                    continue;
                }
            };
            let best = mounts
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    m.device_path == "/"
                        || canon == m.device_path
                        || canon.starts_with(&format!("{}/", m.device_path))
                })
                .max_by_key(|(_, m)| m.device_path.len());
            if let Some((i, m)) = best {
                v.push((i, m.device_path.clone()));
            }
        }
        if v.is_empty() {
            return 1;
        }
        v
    };
    let mut out = String::new();
    if o.has('h') {
        out.push_str("Filesystem      Size  Used Avail Use% Mounted on\n");
    } else {
        out.push_str("Filesystem     1K-blocks    Used Available Use% Mounted on\n");
    }
    for (i, mp) in selected {
        let Ok(u) = ctx.core.fs.usage(&mp) else {
            continue;
        };
        let fsname = if mp == "/" {
            "/dev/root".to_owned()
        } else {
            format!("/dev/block/dm-{i}")
        };
        let denom = u.used + u.available;
        let pct = if denom == 0 {
            0
        } else {
            (u.used * 100).div_ceil(denom)
        };
        if o.has('h') {
            out.push_str(&format!(
                "{:<14} {:>5} {:>5} {:>5} {:>3}% {}\n",
                fsname,
                human(u.total),
                human(u.used),
                human(u.available),
                pct,
                mp
            ));
        } else {
            out.push_str(&format!(
                "{:<14} {:>9} {:>7} {:>9} {:>3}% {}\n",
                fsname,
                u.total / 1024,
                u.used / 1024,
                u.available / 1024,
                pct,
                mp
            ));
        }
    }
    match ctx.stdout.write_all(out.as_bytes()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

// ----- checksums / cmp -----

fn hash_cmd<D: Digest>(ctx: &mut Ctx<'_>, args: &[String], name: &str) -> i32 {
    let o = match getopt(ctx, args, "bc", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.has('c') {
        fail(ctx, name, "-c is not supported");
        return 1;
    }
    let files = o.args.clone();
    let binary = o.has('b');
    each_input(ctx, name, &files, |fname, r, w| {
        let mut h = D::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
        }
        let hex = hex::encode(h.finalize());
        let line = if binary {
            format!("{hex}\n")
        } else {
            format!("{hex}  {fname}\n")
        };
        w.write_all(line.as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    })
}

pub fn md5sum(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    hash_cmd::<md5::Md5>(ctx, args, "md5sum")
}

pub fn sha256sum(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    hash_cmd::<sha2::Sha256>(ctx, args, "sha256sum")
}

pub fn cmp(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "ls", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if o.args.len() < 2 {
        fail(ctx, "cmp", "Needs 2 arguments");
        return 2;
    }
    let mut data = Vec::new();
    for p in &o.args[..2] {
        match open_file(ctx, p).and_then(|r| {
            let mut v = Vec::new();
            r.take(super::MAX_INPUT).read_to_end(&mut v)?;
            Ok(v)
        }) {
            Ok(v) => data.push(v),
            Err(e) => {
                path_err(ctx, "cmp", p, &e);
                return 2;
            }
        }
    }
    let (a, b) = (&data[0], &data[1]);
    let mut line = 1;
    for i in 0..a.len().min(b.len()) {
        if a[i] != b[i] {
            if !o.has('s') {
                let _ = writeln!(
                    ctx.stdout,
                    "{} {} differ: char {}, line {}",
                    o.args[0],
                    o.args[1],
                    i + 1,
                    line
                );
            }
            return 1;
        }
        if a[i] == b'\n' {
            line += 1;
        }
    }
    if a.len() != b.len() {
        if !o.has('s') {
            let shorter = if a.len() < b.len() {
                &o.args[0]
            } else {
                &o.args[1]
            };
            let _ = writeln!(ctx.stderr, "cmp: EOF on {shorter}");
        }
        return 1;
    }
    0
}
