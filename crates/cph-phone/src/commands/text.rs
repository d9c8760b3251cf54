//! Text filters: grep, head, tail, wc, sort, uniq, tr, cut, tee, seq, yes, xargs.

use super::regex::Regex;
use super::{MAX_INPUT, dev, each_input, fail, getopt, open_file, path_err, read_lines};
use crate::fs;
use crate::shell::Ctx;
use std::io::{self, BufRead, BufReader, Read, Write};

fn broken(_: io::Error) -> io::Error {
    io::Error::from(io::ErrorKind::BrokenPipe)
}

// ----- grep -----

struct GrepOpts {
    invert: bool,
    count: bool,
    number: bool,
    files_with: bool,
    files_without: bool,
    quiet: bool,
    only: bool,
    word: bool,
    line: bool,
    names: bool,
    max: Option<u64>,
}

pub fn grep(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "EFGivcnrRlLqswxohHe:f:m:A:B:C:az",
        &[
            ("ignore-case", 'i'),
            ("invert-match", 'v'),
            ("count", 'c'),
            ("line-number", 'n'),
            ("recursive", 'r'),
            ("quiet", 'q'),
            ("silent", 'q'),
            ("regexp", 'e'),
            ("max-count", 'm'),
        ],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut operands = o.args.clone();
    let mut patterns: Vec<String> = o.vals('e').iter().map(|s| (*s).to_owned()).collect();
    if let Some(f) = o.val('f') {
        match open_file(ctx, f).and_then(|r| read_lines(&mut { r }, MAX_INPUT)) {
            Ok(lines) => patterns.extend(lines),
            Err(e) => {
                path_err(ctx, "grep", f, &e);
                return 2;
            }
        }
    }
    if patterns.is_empty() && o.val('f').is_none() {
        if operands.is_empty() {
            fail(ctx, "grep", "Needs 1 argument");
            return 2;
        }
        let p = operands.remove(0);
        patterns.extend(p.split('\n').map(str::to_owned));
    }
    let extended = o.has('E') || args[0] == "egrep";
    let fixed = o.has('F') || args[0] == "fgrep";
    let icase = o.has('i');
    let mut regexes = Vec::new();
    for p in &patterns {
        let r = if fixed {
            Ok(Regex::literal(p, icase))
        } else {
            Regex::new(p, extended, icase)
        };
        match r {
            Ok(r) => regexes.push(r),
            Err(e) => {
                let _ = writeln!(ctx.stderr, "grep: {e}");
                return 2;
            }
        }
    }
    let recursive = o.has('r') || o.has('R');
    if operands.is_empty() && recursive {
        operands.push(".".into());
    }
    let g = GrepOpts {
        invert: o.has('v'),
        count: o.has('c'),
        number: o.has('n'),
        files_with: o.has('l'),
        files_without: o.has('L'),
        quiet: o.has('q'),
        only: o.has('o'),
        word: o.has('w'),
        line: o.has('x'),
        names: !o.has('h') && (o.has('H') || operands.len() > 1 || recursive),
        max: o.val('m').and_then(|m| m.parse().ok()),
    };
    let silent = o.has('s');
    let mut files: Vec<String> = Vec::new();
    let mut status_err = false;
    if recursive {
        for p in &operands {
            if p == "-" {
                files.push(p.clone());
                continue;
            }
            if let Err(e) = collect_files(ctx, p, &dev(ctx, p), &mut files, 0) {
                if !silent {
                    path_err(ctx, "grep", p, &e);
                }
                status_err = true;
            }
        }
    } else {
        files = operands.clone();
    }
    let mut any = false;
    let default = ["-".to_owned()];
    let list: Vec<String> = if files.is_empty() && !recursive {
        default.to_vec()
    } else {
        files
    };
    for name in &list {
        let result = if name == "-" {
            grep_stream(
                &regexes,
                &g,
                "(standard input)",
                &mut *ctx.stdin,
                &mut *ctx.stdout,
            )
        } else {
            match open_file(ctx, name) {
                Ok(mut r) => grep_stream(&regexes, &g, name, &mut *r, &mut *ctx.stdout),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(found) => {
                any |= found;
                if found && g.quiet {
                    return 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return if any { 0 } else { 1 },
            Err(e) => {
                if !silent {
                    path_err(ctx, "grep", name, &e);
                }
                status_err = true;
            }
        }
    }
    if status_err && !(g.quiet && any) {
        2
    } else if any {
        0
    } else {
        1
    }
}

fn collect_files(
    ctx: &Ctx<'_>,
    shown: &str,
    path: &str,
    out: &mut Vec<String>,
    depth: usize,
) -> io::Result<()> {
    if depth > 256 || out.len() > 1_000_000 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let st = if depth == 0 {
        ctx.core.fs.stat(path)?
    } else {
        ctx.core.fs.lstat(path)?
    };
    if fs::is_dir_mode(st.mode) {
        for (name, est) in ctx.core.fs.read_dir(path)? {
            if fs::is_symlink_mode(est.mode) {
                continue;
            }
            let child_shown = if shown.ends_with('/') {
                format!("{shown}{name}")
            } else {
                format!("{shown}/{name}")
            };
            let child = if path.ends_with('/') {
                format!("{path}{name}")
            } else {
                format!("{path}/{name}")
            };
            collect_files(ctx, &child_shown, &child, out, depth + 1)?;
        }
    } else if fs::is_file_mode(st.mode) {
        out.push(shown.to_owned());
    }
    Ok(())
}

fn line_matches(regexes: &[Regex], g: &GrepOpts, line: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = line.chars().collect();
    let mut spans = Vec::new();
    for r in regexes {
        let mut from = 0;
        while from <= chars.len() {
            let Some((s, e)) = r.find_chars(&chars, from) else {
                break;
            };
            let ok = if g.line {
                s == 0 && e == chars.len()
            } else if g.word {
                let before = s == 0 || !is_word(chars[s - 1]);
                let after = e == chars.len() || !is_word(chars[e]);
                before && after && e > s
            } else {
                true
            };
            if ok {
                spans.push((s, e));
                if !g.only {
                    return spans;
                }
            }
            if g.line {
                break;
            }
            from = if e > s { e } else { s + 1 };
        }
    }
    spans.sort_unstable();
    spans
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Greps one input; returns whether anything matched (selected).
fn grep_stream(
    regexes: &[Regex],
    g: &GrepOpts,
    name: &str,
    r: &mut dyn Read,
    w: &mut dyn Write,
) -> io::Result<bool> {
    let mut reader = BufReader::new(r);
    let mut buf = Vec::new();
    let mut count = 0u64;
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(16 * 1024 * 1024)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf);
        let spans = line_matches(regexes, g, &line);
        let selected = spans.is_empty() == g.invert;
        if !selected {
            continue;
        }
        count += 1;
        if g.quiet {
            return Ok(true);
        }
        if g.files_with || g.files_without {
            break;
        }
        if !g.count {
            let prefix = match (g.names, g.number) {
                (true, true) => format!("{name}:{line_no}:"),
                (true, false) => format!("{name}:"),
                (false, true) => format!("{line_no}:"),
                (false, false) => String::new(),
            };
            if g.only && !g.invert {
                let chars: Vec<char> = line.chars().collect();
                for (s, e) in spans {
                    let piece: String = chars[s..e].iter().collect();
                    if !piece.is_empty() {
                        w.write_all(format!("{prefix}{piece}\n").as_bytes())
                            .map_err(broken)?;
                    }
                }
            } else {
                w.write_all(format!("{prefix}{line}\n").as_bytes())
                    .map_err(broken)?;
            }
        }
        if g.max.is_some_and(|m| count >= m) {
            break;
        }
    }
    if g.count {
        let text = if g.names {
            format!("{name}:{count}\n")
        } else {
            format!("{count}\n")
        };
        w.write_all(text.as_bytes()).map_err(broken)?;
    }
    if g.files_with && count > 0 {
        w.write_all(format!("{name}\n").as_bytes())
            .map_err(broken)?;
    }
    if g.files_without && count == 0 {
        w.write_all(format!("{name}\n").as_bytes())
            .map_err(broken)?;
    }
    Ok(if g.files_without {
        count == 0
    } else {
        count > 0
    })
}

// ----- head / tail -----

/// Turns `-5` into `-n 5` (the historical form).
fn numeric_shorthand(args: &[String]) -> Vec<String> {
    let mut v = vec![args[0].clone()];
    for a in &args[1..] {
        if a.len() > 1 && a.starts_with('-') && a[1..].chars().all(|c| c.is_ascii_digit()) {
            v.push("-n".into());
            v.push(a[1..].to_owned());
        } else {
            v.push(a.clone());
        }
    }
    v
}

pub fn head(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let args = numeric_shorthand(args);
    let o = match getopt(ctx, &args, "n:c:qv", &[("lines", 'n'), ("bytes", 'c')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let bytes = o.val('c').map(str::to_owned);
    let lines = o.val('n').unwrap_or("10").to_owned();
    let files = o.args.clone();
    let headers = (files.len() > 1 && !o.has('q')) || o.has('v');
    let mut first = true;
    if let Some(b) = bytes {
        let Ok(n) = b.parse::<u64>() else {
            fail(ctx, "head", &format!("bad -c '{b}'"));
            return 1;
        };
        return each_input(ctx, "head", &files, |name, r, w| {
            if headers {
                let sep = if first { "" } else { "\n" };
                first = false;
                w.write_all(format!("{sep}==> {name} <==\n").as_bytes())
                    .map_err(broken)?;
            }
            io::copy(&mut r.take(n), w).map(|_| ())
        });
    }
    let neg = lines.starts_with('-');
    let Ok(n) = lines.trim_start_matches('-').parse::<u64>() else {
        fail(ctx, "head", &format!("bad -n '{lines}'"));
        return 1;
    };
    each_input(ctx, "head", &files, |name, r, w| {
        if headers {
            let sep = if first { "" } else { "\n" };
            first = false;
            w.write_all(format!("{sep}==> {name} <==\n").as_bytes())
                .map_err(broken)?;
        }
        if neg {
            let all = read_lines(r, MAX_INPUT)?;
            let keep = all.len().saturating_sub(n as usize);
            for l in &all[..keep] {
                w.write_all(format!("{l}\n").as_bytes()).map_err(broken)?;
            }
            return Ok(());
        }
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        for _ in 0..n {
            buf.clear();
            if (&mut reader)
                .take(16 * 1024 * 1024)
                .read_until(b'\n', &mut buf)?
                == 0
            {
                break;
            }
            w.write_all(&buf).map_err(broken)?;
        }
        Ok(())
    })
}

pub fn tail(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let args = numeric_shorthand(args);
    let o = match getopt(ctx, &args, "n:c:fFqv", &[("lines", 'n'), ("bytes", 'c')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let files = o.args.clone();
    let headers = (files.len() > 1 && !o.has('q')) || o.has('v');
    let mut first = true;
    let (spec, bytes) = match o.val('c') {
        Some(c) => (c.to_owned(), true),
        None => (o.val('n').unwrap_or("10").to_owned(), false),
    };
    let from_start = spec.starts_with('+');
    let Ok(n) = spec.trim_start_matches(['+', '-']).parse::<u64>() else {
        fail(
            ctx,
            "tail",
            &format!("bad -{} '{spec}'", if bytes { 'c' } else { 'n' }),
        );
        return 1;
    };
    each_input(ctx, "tail", &files, |name, r, w| {
        if headers {
            let sep = if first { "" } else { "\n" };
            first = false;
            w.write_all(format!("{sep}==> {name} <==\n").as_bytes())
                .map_err(broken)?;
        }
        let mut data = Vec::new();
        r.take(MAX_INPUT).read_to_end(&mut data)?;
        let start = if bytes {
            if from_start {
                (n.saturating_sub(1) as usize).min(data.len())
            } else {
                data.len().saturating_sub(n as usize)
            }
        } else if from_start {
            let skip = n.saturating_sub(1) as usize;
            let mut pos = 0;
            for _ in 0..skip {
                match data[pos..].iter().position(|b| *b == b'\n') {
                    Some(p) => pos += p + 1,
                    None => {
                        pos = data.len();
                        break;
                    }
                }
            }
            pos
        } else {
            // Start after the n-th newline from the end (a final newline ends the last line).
            let end = if data.last() == Some(&b'\n') {
                data.len() - 1
            } else {
                data.len()
            };
            if n == 0 {
                data.len()
            } else {
                let mut count = 0u64;
                let mut pos = 0;
                for i in (0..end).rev() {
                    if data[i] == b'\n' {
                        count += 1;
                        if count == n {
                            pos = i + 1;
                            break;
                        }
                    }
                }
                pos
            }
        };
        w.write_all(&data[start..]).map_err(broken)
    })
}

// ----- wc -----

pub fn wc(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "lwcmL",
        &[
            ("lines", 'l'),
            ("words", 'w'),
            ("bytes", 'c'),
            ("chars", 'm'),
        ],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut cols: Vec<char> = ['l', 'w', 'm', 'c']
        .into_iter()
        .filter(|c| o.has(*c))
        .collect();
    if cols.is_empty() {
        cols = vec!['l', 'w', 'c'];
    }
    let files = o.args.clone();
    let mut rows: Vec<([u64; 4], Option<String>)> = Vec::new();
    let status = each_input(ctx, "wc", &files, |name, r, _w| {
        let mut counts = [0u64; 4];
        let mut buf = vec![0u8; 64 * 1024];
        let mut in_word = false;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for &b in &buf[..n] {
                if b == b'\n' {
                    counts[0] += 1;
                }
                let space = b.is_ascii_whitespace();
                if !space && !in_word {
                    counts[1] += 1;
                }
                in_word = !space;
                if b & 0xc0 != 0x80 {
                    counts[2] += 1;
                }
            }
            counts[3] += n as u64;
        }
        let shown = if files.is_empty() {
            None
        } else {
            Some(name.to_owned())
        };
        rows.push((counts, shown));
        Ok(())
    });
    if rows.len() > 1 {
        let mut total = [0u64; 4];
        for (c, _) in &rows {
            for i in 0..4 {
                total[i] += c[i];
            }
        }
        rows.push((total, Some("total".into())));
    }
    let idx = |c: char| match c {
        'l' => 0,
        'w' => 1,
        'm' => 2,
        _ => 3,
    };
    let width = if cols.len() == 1 && rows.len() == 1 {
        0
    } else {
        rows.iter()
            .flat_map(|(c, _)| cols.iter().map(|k| c[idx(*k)].to_string().len()))
            .max()
            .unwrap_or(1)
            .max(if files.is_empty() { 7 } else { 1 })
    };
    let mut out = String::new();
    for (c, name) in &rows {
        let nums: Vec<String> = cols
            .iter()
            .map(|k| format!("{:>width$}", c[idx(*k)]))
            .collect();
        out.push_str(&nums.join(" "));
        if let Some(n) = name {
            out.push(' ');
            out.push_str(n);
        }
        out.push('\n');
    }
    if ctx.stdout.write_all(out.as_bytes()).is_err() {
        return 1;
    }
    status
}

// ----- sort / uniq -----

pub fn sort(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "rnuft:k:bdMghVso:cCz",
        &[("reverse", 'r'), ("numeric-sort", 'n'), ("unique", 'u')],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let files = o.args.clone();
    let mut lines: Vec<String> = Vec::new();
    let status = each_input(ctx, "sort", &files, |_n, r, _w| {
        lines.extend(read_lines(r, MAX_INPUT)?);
        Ok(())
    });
    let sep = o.val('t').and_then(|t| t.chars().next());
    let key = o.val('k').map(|k| {
        let field = k.split([',', '.']).next().unwrap_or("1");
        let digits: String = field.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse::<usize>().unwrap_or(1).max(1)
    });
    let numeric = o.has('n') || o.has('g') || o.has('h');
    let fold = o.has('f');
    let key_of = |l: &str| -> String {
        let k = match key {
            None => l.to_owned(),
            Some(f) => {
                let fields: Vec<&str> = match sep {
                    Some(c) => l.split(c).collect(),
                    None => l.split_whitespace().collect(),
                };
                fields
                    .get(f - 1..)
                    .map(|v| v.join(&sep.map(String::from).unwrap_or(" ".into())))
                    .unwrap_or_default()
            }
        };
        if fold { k.to_lowercase() } else { k }
    };
    let num_of = |s: &str| -> f64 {
        let t = s.trim_start();
        let end = t
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-')))
            .map(|(i, _)| i)
            .unwrap_or(t.len());
        t[..end].parse().unwrap_or(0.0)
    };
    lines.sort_by(|a, b| {
        let (ka, kb) = (key_of(a), key_of(b));
        let ord = if numeric {
            num_of(&ka)
                .partial_cmp(&num_of(&kb))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.cmp(b))
        } else {
            ka.cmp(&kb).then_with(|| {
                if key.is_some() || fold {
                    a.cmp(b)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
        };
        if o.has('r') { ord.reverse() } else { ord }
    });
    if o.has('u') {
        lines.dedup_by(|a, b| key_of(a) == key_of(b));
    }
    let mut out = String::new();
    for l in &lines {
        out.push_str(l);
        out.push('\n');
    }
    let write = match o.val('o') {
        Some(path) => ctx.core.fs.write(&dev(ctx, path), out.as_bytes()),
        None => ctx.stdout.write_all(out.as_bytes()),
    };
    if write.is_err() {
        return 1;
    }
    status
}

pub fn uniq(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "cduif:s:w:z", &[("count", 'c')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let input = o.args.first().cloned();
    let lines = if let Some(f) = input.as_ref().filter(|f| *f != "-") {
        match open_file(ctx, f).and_then(|mut r| read_lines(&mut *r, MAX_INPUT)) {
            Ok(l) => l,
            Err(e) => {
                path_err(ctx, "uniq", f, &e);
                return 1;
            }
        }
    } else {
        match read_lines(&mut *ctx.stdin, MAX_INPUT) {
            Ok(l) => l,
            Err(_) => return 1,
        }
    };
    let icase = o.has('i');
    let same = |a: &str, b: &str| {
        if icase {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let mut j = i + 1;
        while j < lines.len() && same(&lines[i], &lines[j]) {
            j += 1;
        }
        let n = j - i;
        let show = (!o.has('d') || n > 1) && (!o.has('u') || n == 1);
        if show {
            if o.has('c') {
                out.push_str(&format!("{n:7} {}\n", lines[i]));
            } else {
                out.push_str(&lines[i]);
                out.push('\n');
            }
        }
        i = j;
    }
    let write = match o.args.get(1) {
        Some(path) => ctx.core.fs.write(&dev(ctx, path), out.as_bytes()),
        None => ctx.stdout.write_all(out.as_bytes()),
    };
    i32::from(write.is_err())
}

// ----- tr / cut -----

fn tr_set(s: &str) -> Vec<char> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '['
            && chars.get(i + 1) == Some(&':')
            && let Some(end) = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == ':' && chars[j + 1] == ']')
        {
            let class: String = chars[i + 2..end].iter().collect();
            let members: Vec<char> = match class.as_str() {
                "lower" => ('a'..='z').collect(),
                "upper" => ('A'..='Z').collect(),
                "digit" => ('0'..='9').collect(),
                "alpha" => ('A'..='Z').chain('a'..='z').collect(),
                "alnum" => ('0'..='9').chain('A'..='Z').chain('a'..='z').collect(),
                "space" => vec![' ', '\t', '\n', '\r', '\x0b', '\x0c'],
                "blank" => vec![' ', '\t'],
                "punct" => (33u8..127)
                    .map(char::from)
                    .filter(|c| c.is_ascii_punctuation())
                    .collect(),
                "xdigit" => ('0'..='9').chain('A'..='F').chain('a'..='f').collect(),
                _ => Vec::new(),
            };
            out.extend(members);
            i = end + 2;
            continue;
        }
        let (c, next) = if c == '\\' && i + 1 < chars.len() {
            let e = match chars[i + 1] {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                o => o,
            };
            (e, i + 2)
        } else {
            (c, i + 1)
        };
        if chars.get(next) == Some(&'-') && next + 1 < chars.len() {
            let hi = chars[next + 1];
            if hi >= c {
                let count = (hi as u32 - c as u32) as usize;
                if count <= 0x10000 {
                    out.extend((c..=hi).take(count + 1));
                }
            }
            i = next + 2;
            continue;
        }
        out.push(c);
        i = next;
    }
    out
}

pub fn tr(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "dscC", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let Some(s1) = o.args.first() else {
        fail(ctx, "tr", "Needs 1 argument");
        return 1;
    };
    let set1 = tr_set(s1);
    let set2 = o.args.get(1).map(|s| tr_set(s)).unwrap_or_default();
    let complement = o.has('c') || o.has('C');
    let delete = o.has('d');
    let squeeze = o.has('s');
    if !delete && !squeeze && set2.is_empty() {
        fail(ctx, "tr", "Needs 2 arguments");
        return 1;
    }
    let in1 = |c: char| set1.contains(&c) != complement;
    let map = |c: char| -> char {
        if complement {
            return *set2.last().unwrap_or(&c);
        }
        match set1.iter().rposition(|x| *x == c) {
            Some(i) => *set2.get(i).or(set2.last()).unwrap_or(&c),
            None => c,
        }
    };
    let mut data = Vec::new();
    if (&mut *ctx.stdin)
        .take(MAX_INPUT)
        .read_to_end(&mut data)
        .is_err()
    {
        return 1;
    }
    let text = String::from_utf8_lossy(&data);
    let mut out = String::with_capacity(text.len());
    let squeeze_set: &dyn Fn(char) -> bool = if delete || set2.is_empty() {
        &in1
    } else {
        &|c: char| set2.contains(&c)
    };
    let mut last: Option<char> = None;
    for c in text.chars() {
        if delete && in1(c) {
            continue;
        }
        let m = if !delete && !set2.is_empty() && in1(c) {
            map(c)
        } else {
            c
        };
        if squeeze && last == Some(m) && squeeze_set(m) {
            continue;
        }
        out.push(m);
        last = Some(m);
    }
    i32::from(ctx.stdout.write_all(out.as_bytes()).is_err())
}

fn parse_ranges(spec: &str) -> Option<Vec<(usize, usize)>> {
    let mut v = Vec::new();
    for part in spec.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                if a.is_empty() { 1 } else { a.parse().ok()? },
                if b.is_empty() {
                    usize::MAX
                } else {
                    b.parse().ok()?
                },
            ),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if a == 0 || b < a {
            return None;
        }
        v.push((a, b));
    }
    Some(v)
}

pub fn cut(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(
        ctx,
        args,
        "d:f:c:b:sn",
        &[("delimiter", 'd'), ("fields", 'f')],
    ) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let (spec, fields) = match (o.val('f'), o.val('c').or(o.val('b'))) {
        (Some(f), _) => (f.to_owned(), true),
        (None, Some(c)) => (c.to_owned(), false),
        _ => {
            fail(ctx, "cut", "Needs -fcb");
            return 1;
        }
    };
    let Some(ranges) = parse_ranges(&spec) else {
        fail(ctx, "cut", &format!("bad list '{spec}'"));
        return 1;
    };
    let delim = o.val('d').and_then(|d| d.chars().next()).unwrap_or('\t');
    let only_delimited = o.has('s');
    let files = o.args.clone();
    let sel = |i: usize| ranges.iter().any(|(a, b)| *a <= i && i <= *b);
    each_input(ctx, "cut", &files, |_n, r, w| {
        for line in read_lines(r, MAX_INPUT)? {
            let out = if fields {
                if !line.contains(delim) {
                    if only_delimited {
                        continue;
                    }
                    line.clone()
                } else {
                    line.split(delim)
                        .enumerate()
                        .filter(|(i, _)| sel(i + 1))
                        .map(|(_, f)| f)
                        .collect::<Vec<_>>()
                        .join(&delim.to_string())
                }
            } else {
                line.chars()
                    .enumerate()
                    .filter(|(i, _)| sel(i + 1))
                    .map(|(_, c)| c)
                    .collect()
            };
            w.write_all(format!("{out}\n").as_bytes()).map_err(broken)?;
        }
        Ok(())
    })
}

// ----- tee / seq / yes / xargs -----

pub fn tee(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "ai", &[("append", 'a')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mode = if o.has('a') {
        fs::WriteMode::Append
    } else {
        fs::WriteMode::Truncate
    };
    let mut status = 0;
    let mut files = Vec::new();
    for p in &o.args {
        match ctx.core.fs.open_write(&dev(ctx, p), mode) {
            Ok(f) => files.push(f),
            Err(e) => {
                path_err(ctx, "tee", p, &e);
                status = 1;
            }
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdout_ok = true;
    loop {
        let n = match ctx.stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return 1,
        };
        if stdout_ok && (ctx.stdout.write_all(&buf[..n]).is_err() || ctx.stdout.flush().is_err()) {
            stdout_ok = false;
            status = 1;
        }
        for f in &mut files {
            if f.write_all(&buf[..n]).is_err() {
                status = 1;
            }
        }
    }
    status
}

pub fn seq(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut sep = "\n".to_owned();
    let mut fmt: Option<String> = None;
    let mut width = false;
    let mut nums = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        match a.as_str() {
            "-s" => {
                i += 1;
                sep = args.get(i).cloned().unwrap_or_default();
            }
            "-f" => {
                i += 1;
                fmt = args.get(i).cloned();
            }
            "-w" => width = true,
            _ => nums.push(a.clone()),
        }
        i += 1;
    }
    let parsed: Result<Vec<f64>, _> = nums.iter().map(|n| n.parse::<f64>()).collect();
    let Ok(p) = parsed else {
        fail(ctx, "seq", "bad number");
        return 1;
    };
    let (first, step, last) = match p.as_slice() {
        [l] => (1.0, 1.0, *l),
        [f, l] => (*f, 1.0, *l),
        [f, s, l] => (*f, *s, *l),
        _ => {
            fail(ctx, "seq", "Needs 1-3 arguments");
            return 1;
        }
    };
    if step == 0.0 || !step.is_finite() || !first.is_finite() || !last.is_finite() {
        fail(ctx, "seq", "bad increment");
        return 1;
    }
    let integral = nums.iter().all(|n| !n.contains(['.', 'e', 'E']));
    let w = if width {
        [first, last]
            .iter()
            .map(|v| format!("{}", *v as i64).len())
            .max()
            .unwrap_or(1)
    } else {
        0
    };
    let mut out = String::new();
    let mut k = 0u64;
    loop {
        let v = first + step * k as f64;
        if (step > 0.0 && v > last) || (step < 0.0 && v < last) {
            break;
        }
        if k > 0 {
            out.push_str(&sep);
        }
        let text = match &fmt {
            Some(f) if f.contains("%d") || f.contains("%g") || f.contains("%f") => f
                .replacen("%d", &(v as i64).to_string(), 1)
                .replacen("%g", &v.to_string(), 1)
                .replacen("%f", &format!("{v:.6}"), 1),
            _ if integral => format!("{:0w$}", v as i64),
            _ => format!("{v}"),
        };
        out.push_str(&text);
        k += 1;
        if out.len() > 64 * 1024 {
            if ctx.stdout.write_all(out.as_bytes()).is_err() {
                return 1;
            }
            out.clear();
        }
        if k > 100_000_000 {
            break;
        }
    }
    if k > 0 {
        out.push('\n');
    }
    i32::from(ctx.stdout.write_all(out.as_bytes()).is_err())
}

pub fn yes(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let text = if args.len() > 1 {
        args[1..].join(" ")
    } else {
        "y".into()
    };
    let line = format!("{text}\n");
    let chunk = line.repeat((8192 / line.len()).max(1));
    // Ends when the reader goes away; bounded so it cannot run forever into a sink.
    for _ in 0..1_000_000u32 {
        if ctx.stdout.write_all(chunk.as_bytes()).is_err() {
            return 0;
        }
    }
    0
}

pub fn xargs(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "n:0rtI:d:", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let cmd: Vec<String> = if o.args.is_empty() {
        vec!["echo".into()]
    } else {
        o.args.clone()
    };
    let mut data = Vec::new();
    if (&mut *ctx.stdin)
        .take(MAX_INPUT)
        .read_to_end(&mut data)
        .is_err()
    {
        return 1;
    }
    let text = String::from_utf8_lossy(&data);
    let items: Vec<String> = if o.has('0') {
        text.split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else if let Some(d) = o.val('d').and_then(|d| d.chars().next()) {
        text.split(d)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else if o.val('I').is_some() {
        text.lines()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        text.split_whitespace().map(str::to_owned).collect()
    };
    if items.is_empty() && o.has('r') {
        return 0;
    }
    let Some(f) = super::lookup(&cmd[0]) else {
        let _ = writeln!(ctx.stderr, "xargs: {}: No such file or directory", cmd[0]);
        return 127;
    };
    let batches: Vec<Vec<String>> = if let Some(rep) = o.val('I') {
        items
            .iter()
            .map(|it| cmd[1..].iter().map(|a| a.replace(rep, it)).collect())
            .collect()
    } else {
        let n = o
            .val('n')
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
            .max(1);
        if items.is_empty() {
            vec![cmd[1..].to_vec()]
        } else {
            items
                .chunks(n.min(items.len()))
                .map(|c| cmd[1..].iter().cloned().chain(c.iter().cloned()).collect())
                .collect()
        }
    };
    let mut status = 0;
    for b in batches {
        let mut argv = vec![cmd[0].clone()];
        argv.extend(b);
        if o.has('t') {
            let _ = writeln!(ctx.stderr, "{}", argv.join(" "));
        }
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
        if s != 0 {
            status = 123;
        }
    }
    status
}
