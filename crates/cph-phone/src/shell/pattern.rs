//! Shell wildcard patterns (`*`, `?`, `[…]`), as `case`, `${x#p}`, globbing and `find -name`
//! use them.

/// A pattern character: `literal` ones never act as wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PChar {
    pub c: char,
    pub literal: bool,
}

/// A pattern from plain text where every wildcard is active (`\x` quotes `x`).
pub fn compile(text: &str) -> Vec<PChar> {
    let mut out = Vec::new();
    let mut it = text.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) => out.push(PChar {
                    c: n,
                    literal: true,
                }),
                None => out.push(PChar { c, literal: true }),
            }
        } else {
            out.push(PChar { c, literal: false });
        }
    }
    out
}

/// Whether the pattern has an active wildcard.
pub fn has_wildcards(p: &[PChar]) -> bool {
    p.iter()
        .any(|pc| !pc.literal && matches!(pc.c, '*' | '?' | '['))
}

/// Matches the whole of `text` against `pattern`.
pub fn matches(pattern: &[PChar], text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    match_from(pattern, &t, &mut 0)
}

/// Matches with a budget on backtracking steps (a pathological pattern simply fails).
fn match_from(p: &[PChar], t: &[char], steps: &mut u32) -> bool {
    // Iterative matcher with single-star backtracking (linear for typical patterns).
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        *steps += 1;
        if *steps > 1_000_000 {
            return false;
        }
        if pi < p.len() {
            let pc = p[pi];
            if !pc.literal && pc.c == '*' {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            if !pc.literal && pc.c == '?' {
                pi += 1;
                ti += 1;
                continue;
            }
            if !pc.literal
                && pc.c == '['
                && let Some((ok, len)) = bracket(&p[pi..], t[ti])
            {
                if ok {
                    pi += len;
                    ti += 1;
                    continue;
                }
            } else if pc.c == t[ti] {
                pi += 1;
                ti += 1;
                continue;
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && !p[pi].literal && p[pi].c == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches `c` against a bracket expression at the start of `p`; `None` when `p` does not
/// hold a complete bracket expression (then `[` is literal). Returns (matched, length).
fn bracket(p: &[PChar], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let mut negate = false;
    if i < p.len() && !p[i].literal && matches!(p[i].c, '!' | '^') {
        negate = true;
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        let pc = p[i];
        if pc.c == ']' && !pc.literal && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pc.c == '['
            && !pc.literal
            && i + 1 < p.len()
            && p[i + 1].c == ':'
            && let Some(end) =
                (i + 2..p.len().saturating_sub(1)).find(|&j| p[j].c == ':' && p[j + 1].c == ']')
        {
            let class: String = p[i + 2..end].iter().map(|x| x.c).collect();
            if class_matches(&class, c) {
                matched = true;
            }
            i = end + 2;
            continue;
        }
        let closes = |x: &PChar| x.c == ']' && !x.literal;
        if i + 2 < p.len() && p[i + 1].c == '-' && !closes(&p[i + 2]) {
            if pc.c <= c && c <= p[i + 2].c {
                matched = true;
            }
            i += 3;
        } else {
            if pc.c == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// POSIX character classes (`alpha`, `digit`, …).
pub fn class_matches(class: &str, c: char) -> bool {
    match class {
        "alpha" => c.is_alphabetic(),
        "digit" => c.is_ascii_digit(),
        "alnum" => c.is_alphanumeric(),
        "upper" => c.is_uppercase(),
        "lower" => c.is_lowercase(),
        "space" => c.is_whitespace(),
        "blank" => c == ' ' || c == '\t',
        "punct" => c.is_ascii_punctuation(),
        "xdigit" => c.is_ascii_hexdigit(),
        "cntrl" => c.is_control(),
        "print" => !c.is_control(),
        "graph" => !c.is_control() && c != ' ',
        _ => false,
    }
}

/// Removes the shortest/longest prefix or suffix of `value` matching `pattern`.
pub fn trim(value: &str, pattern: &[PChar], suffix: bool, longest: bool) -> String {
    let idx: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(value.len()))
        .collect();
    let candidates: Box<dyn Iterator<Item = usize>> = match (suffix, longest) {
        (false, false) => Box::new(idx.clone().into_iter()),
        (false, true) => Box::new(idx.clone().into_iter().rev()),
        (true, false) => Box::new(idx.clone().into_iter().rev()),
        (true, true) => Box::new(idx.clone().into_iter()),
    };
    for cut in candidates {
        let (part, rest) = if suffix {
            (&value[cut..], &value[..cut])
        } else {
            (&value[..cut], &value[cut..])
        };
        if matches(pattern, part) {
            return rest.to_owned();
        }
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches(&compile("*.txt"), "a.txt"));
        assert!(!matches(&compile("*.txt"), "a.txt.bak"));
        assert!(matches(&compile("a?c"), "abc"));
        assert!(matches(&compile("[a-c]x"), "bx"));
        assert!(!matches(&compile("[!a-c]x"), "bx"));
        assert!(matches(&compile("[[:digit:]]*"), "9z"));
        assert!(matches(&compile("\\*"), "*"));
        assert!(!matches(&compile("\\*"), "x"));
        assert!(matches(&compile("*a*b*"), "xxaxxbxx"));
        assert!(matches(&compile("[ab"), "[ab"));
    }

    #[test]
    fn trimming() {
        let p = compile("*/");
        assert_eq!(trim("/a/b/c", &compile("*/"), false, true), "c");
        assert_eq!(trim("/a/b/c", &p, false, false), "a/b/c");
        assert_eq!(trim("x.tar.gz", &compile(".*"), true, false), "x.tar");
        assert_eq!(trim("x.tar.gz", &compile(".*"), true, true), "x");
    }
}
