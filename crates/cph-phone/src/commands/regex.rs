//! A small POSIX regular expression engine for `grep` (basic and extended syntax).
//!
//! Compiled to a Thompson NFA and run as a Pike VM: matching time is linear in the text and
//! the program, whatever the pattern. Supported: literals, `.`, bracket expressions with
//! ranges and `[:classes:]`, `^`, `$`, `*`, `+`, `?`, `{m,n}`, groups, alternation, `\w \W \s
//! \S \d \D \b \B \< \>`. Back-references are not supported.

/// Largest compiled program (instructions); bigger patterns are refused.
pub const MAX_PROGRAM: usize = 20_000;

/// A compile error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegexError(pub String);

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class(Vec<ClassItem>, bool),
    Start,
    End,
    WordB(bool),
    WordStart,
    WordEnd,
    Group(Box<Node>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
    Empty,
}

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Named(String),
    Word,
    Space,
    Digit,
}

#[derive(Debug, Clone)]
enum Inst {
    Char(char),
    Any,
    Class(Vec<ClassItem>, bool),
    Start,
    End,
    WordB(bool),
    WordStart,
    WordEnd,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
    icase: bool,
}

struct Parser<'a> {
    c: &'a [char],
    i: usize,
    ere: bool,
    depth: usize,
}

impl Parser<'_> {
    fn at_alt(&self) -> bool {
        if self.ere {
            self.c.get(self.i) == Some(&'|')
        } else {
            self.c.get(self.i) == Some(&'\\') && self.c.get(self.i + 1) == Some(&'|')
        }
    }

    fn at_close(&self) -> bool {
        if self.ere {
            self.c.get(self.i) == Some(&')')
        } else {
            self.c.get(self.i) == Some(&'\\') && self.c.get(self.i + 1) == Some(&')')
        }
    }

    fn alt(&mut self) -> Result<Node, RegexError> {
        self.depth += 1;
        if self.depth > 100 {
            return Err(RegexError("pattern nested too deeply".into()));
        }
        let mut branches = vec![self.concat()?];
        while self.at_alt() {
            self.i += if self.ere { 1 } else { 2 };
            branches.push(self.concat()?);
        }
        self.depth -= 1;
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, RegexError> {
        let mut items: Vec<Node> = Vec::new();
        while self.i < self.c.len() && !self.at_alt() && !self.at_close() {
            let atom_start = items.is_empty();
            let atom = self.atom(atom_start)?;
            let atom = self.postfix(atom)?;
            items.push(atom);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    fn postfix(&mut self, mut atom: Node) -> Result<Node, RegexError> {
        loop {
            let c = self.c.get(self.i).copied();
            let next = self.c.get(self.i + 1).copied();
            let (min, max, len) = match (c, next) {
                (Some('*'), _) => (0, None, 1),
                (Some('+'), _) if self.ere => (1, None, 1),
                (Some('?'), _) if self.ere => (0, Some(1), 1),
                (Some('\\'), Some('+')) if !self.ere => (1, None, 2),
                (Some('\\'), Some('?')) if !self.ere => (0, Some(1), 2),
                (Some('{'), _) if self.ere => match self.bounds(self.i + 1, false)? {
                    Some((m, n, end)) => {
                        self.i = end;
                        atom = Node::Repeat(Box::new(atom), m, n);
                        continue;
                    }
                    None => return Ok(atom),
                },
                (Some('\\'), Some('{')) if !self.ere => match self.bounds(self.i + 2, true)? {
                    Some((m, n, end)) => {
                        self.i = end;
                        atom = Node::Repeat(Box::new(atom), m, n);
                        continue;
                    }
                    None => return Err(RegexError("bad \\{ \\}".into())),
                },
                _ => return Ok(atom),
            };
            self.i += len;
            atom = Node::Repeat(Box::new(atom), min, max);
        }
    }

    /// `{m}`, `{m,}`, `{m,n}` starting after the brace; returns the end position.
    fn bounds(
        &self,
        mut j: usize,
        bre: bool,
    ) -> Result<Option<(u32, Option<u32>, usize)>, RegexError> {
        let num = |j: &mut usize| -> Option<u32> {
            let s = *j;
            while *j < self.c.len() && self.c[*j].is_ascii_digit() {
                *j += 1;
            }
            if *j == s {
                None
            } else {
                self.c[s..*j].iter().collect::<String>().parse().ok()
            }
        };
        let Some(m) = num(&mut j) else {
            return Ok(None);
        };
        let mut n = Some(m);
        if self.c.get(j) == Some(&',') {
            j += 1;
            n = num(&mut j);
        }
        if bre {
            if self.c.get(j) != Some(&'\\') || self.c.get(j + 1) != Some(&'}') {
                return Ok(None);
            }
            j += 2;
        } else {
            if self.c.get(j) != Some(&'}') {
                return Ok(None);
            }
            j += 1;
        }
        if m > 1000 || n.is_some_and(|n| n > 1000 || n < m) {
            return Err(RegexError("invalid repetition count".into()));
        }
        Ok(Some((m, n, j)))
    }

    fn atom(&mut self, at_start: bool) -> Result<Node, RegexError> {
        let c = self.c[self.i];
        self.i += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' if self.ere || at_start => Node::Start,
            '$' if self.ere || self.i == self.c.len() || self.at_close() || self.at_alt() => {
                Node::End
            }
            '*' if !self.ere && at_start => Node::Char('*'),
            '*' | '+' | '?' if self.ere => {
                return Err(RegexError(format!("nothing to repeat before '{c}'")));
            }
            '[' => self.bracket()?,
            '(' if self.ere => {
                let inner = self.alt()?;
                if self.c.get(self.i) != Some(&')') {
                    return Err(RegexError("unmatched ( or \\(".into()));
                }
                self.i += 1;
                Node::Group(Box::new(inner))
            }
            '\\' => {
                let Some(&e) = self.c.get(self.i) else {
                    return Err(RegexError("trailing backslash (\\)".into()));
                };
                self.i += 1;
                match e {
                    '(' if !self.ere => {
                        let inner = self.alt()?;
                        if !(self.c.get(self.i) == Some(&'\\')
                            && self.c.get(self.i + 1) == Some(&')'))
                        {
                            return Err(RegexError("unmatched ( or \\(".into()));
                        }
                        self.i += 2;
                        Node::Group(Box::new(inner))
                    }
                    'w' => Node::Class(vec![ClassItem::Word], false),
                    'W' => Node::Class(vec![ClassItem::Word], true),
                    's' => Node::Class(vec![ClassItem::Space], false),
                    'S' => Node::Class(vec![ClassItem::Space], true),
                    'd' => Node::Class(vec![ClassItem::Digit], false),
                    'D' => Node::Class(vec![ClassItem::Digit], true),
                    'b' => Node::WordB(true),
                    'B' => Node::WordB(false),
                    '<' => Node::WordStart,
                    '>' => Node::WordEnd,
                    'n' => Node::Char('\n'),
                    't' => Node::Char('\t'),
                    '1'..='9' => {
                        return Err(RegexError("back-references are not supported".into()));
                    }
                    other => Node::Char(other),
                }
            }
            other => Node::Char(other),
        })
    }

    fn bracket(&mut self) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        let mut negate = false;
        if self.c.get(self.i) == Some(&'^') {
            negate = true;
            self.i += 1;
        }
        let mut first = true;
        loop {
            let Some(&c) = self.c.get(self.i) else {
                return Err(RegexError("unmatched [, [^, [:, [., or [=".into()));
            };
            if c == ']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            if c == '[' && self.c.get(self.i + 1) == Some(&':') {
                let start = self.i + 2;
                let mut j = start;
                while j + 1 < self.c.len() && !(self.c[j] == ':' && self.c[j + 1] == ']') {
                    j += 1;
                }
                if j + 1 >= self.c.len() {
                    return Err(RegexError("unmatched [:".into()));
                }
                items.push(ClassItem::Named(self.c[start..j].iter().collect()));
                self.i = j + 2;
                continue;
            }
            self.i += 1;
            if self.c.get(self.i) == Some(&'-')
                && let Some(&hi) = self.c.get(self.i + 1)
                && hi != ']'
            {
                if hi < c {
                    return Err(RegexError("invalid range end".into()));
                }
                items.push(ClassItem::Range(c, hi));
                self.i += 2;
            } else {
                items.push(ClassItem::Range(c, c));
            }
        }
        Ok(Node::Class(items, negate))
    }
}

fn emit(node: &Node, prog: &mut Vec<Inst>) -> Result<(), RegexError> {
    if prog.len() > MAX_PROGRAM {
        return Err(RegexError("regular expression too big".into()));
    }
    match node {
        Node::Empty => {}
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Any => prog.push(Inst::Any),
        Node::Class(items, neg) => prog.push(Inst::Class(items.clone(), *neg)),
        Node::Start => prog.push(Inst::Start),
        Node::End => prog.push(Inst::End),
        Node::WordB(b) => prog.push(Inst::WordB(*b)),
        Node::WordStart => prog.push(Inst::WordStart),
        Node::WordEnd => prog.push(Inst::WordEnd),
        Node::Group(n) => emit(n, prog)?,
        Node::Concat(v) => {
            for n in v {
                emit(n, prog)?;
            }
        }
        Node::Alt(v) => {
            let mut jumps = Vec::new();
            for (k, n) in v.iter().enumerate() {
                if k + 1 < v.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(n, prog)?;
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    emit(n, prog)?;
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat(n, min, max) => {
            for _ in 0..*min {
                emit(n, prog)?;
            }
            match max {
                None => {
                    // n*
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(n, prog)?;
                    prog.push(Inst::Jmp(split));
                    let end = prog.len();
                    prog[split] = Inst::Split(split + 1, end);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(0, 0));
                        emit(n, prog)?;
                        if prog.len() > MAX_PROGRAM {
                            return Err(RegexError("regular expression too big".into()));
                        }
                    }
                    let end = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
    Ok(())
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn class_has(items: &[ClassItem], c: char) -> bool {
    items.iter().any(|it| match it {
        ClassItem::Range(lo, hi) => *lo <= c && c <= *hi,
        ClassItem::Named(n) => crate::shell::pattern::class_matches(n, c),
        ClassItem::Word => is_word(c),
        ClassItem::Space => c.is_whitespace(),
        ClassItem::Digit => c.is_ascii_digit(),
    })
}

impl Regex {
    /// Compiles a pattern; `extended` selects ERE syntax, `icase` ignores case.
    pub fn new(pattern: &str, extended: bool, icase: bool) -> Result<Regex, RegexError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            c: &chars,
            i: 0,
            ere: extended,
            depth: 0,
        };
        let node = p.alt()?;
        if p.i < chars.len() {
            return Err(RegexError("unmatched ) or \\)".into()));
        }
        let mut prog = Vec::new();
        emit(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex { prog, icase })
    }

    /// A regex matching `text` literally (`grep -F`).
    pub fn literal(text: &str, icase: bool) -> Regex {
        let mut prog: Vec<Inst> = text.chars().map(Inst::Char).collect();
        prog.push(Inst::Match);
        Regex { prog, icase }
    }

    fn char_eq(&self, a: char, b: char) -> bool {
        a == b || (self.icase && a.to_lowercase().eq(b.to_lowercase()))
    }

    fn class_match(&self, items: &[ClassItem], neg: bool, c: char) -> bool {
        let mut hit = class_has(items, c);
        if !hit && self.icase {
            hit = c.to_lowercase().any(|l| class_has(items, l))
                || c.to_uppercase().any(|u| class_has(items, u));
        }
        hit != neg
    }

    /// Whether the regex matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let t: Vec<char> = text.chars().collect();
        self.find_chars(&t, 0).is_some()
    }

    /// Leftmost match at or after char index `from`: (start, end) in chars.
    pub fn find_chars(&self, t: &[char], from: usize) -> Option<(usize, usize)> {
        let n = self.prog.len();
        let mut clist: Vec<(usize, usize)> = Vec::new();
        let mut nlist: Vec<(usize, usize)> = Vec::new();
        let mut mark = vec![usize::MAX; n];
        let mut best: Option<(usize, usize)> = None;
        let mut pos = from;
        let mut generation = 0usize;
        self.add(&mut clist, &mut mark, generation, 0, pos, t, pos);
        loop {
            if clist.is_empty() && best.is_some() {
                break;
            }
            generation += 1;
            nlist.clear();
            let c = t.get(pos).copied();
            let mut k = 0;
            while k < clist.len() {
                let (pc, start) = clist[k];
                k += 1;
                match &self.prog[pc] {
                    Inst::Match => {
                        best = Some((start, pos));
                        // Lower-priority threads are cut.
                        break;
                    }
                    Inst::Char(x) => {
                        if let Some(c) = c
                            && self.char_eq(*x, c)
                        {
                            self.add(&mut nlist, &mut mark, generation, pc + 1, start, t, pos + 1);
                        }
                    }
                    Inst::Any if c.is_some_and(|c| c != '\n') => {
                        self.add(&mut nlist, &mut mark, generation, pc + 1, start, t, pos + 1);
                    }
                    Inst::Class(items, neg) => {
                        if let Some(c) = c
                            && self.class_match(items, *neg, c)
                        {
                            self.add(&mut nlist, &mut mark, generation, pc + 1, start, t, pos + 1);
                        }
                    }
                    _ => {}
                }
            }
            if c.is_none() {
                break;
            }
            pos += 1;
            if best.is_none() {
                // Start a new attempt here (lowest priority).
                self.add(&mut nlist, &mut mark, generation, 0, pos, t, pos);
            }
            std::mem::swap(&mut clist, &mut nlist);
            if clist.is_empty() && best.is_none() && pos > t.len() {
                break;
            }
        }
        best
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        list: &mut Vec<(usize, usize)>,
        mark: &mut [usize],
        generation: usize,
        pc: usize,
        start: usize,
        t: &[char],
        pos: usize,
    ) {
        // Iterative epsilon closure with an explicit stack (priority order kept).
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if pc >= self.prog.len() || mark[pc] == generation {
                continue;
            }
            mark[pc] = generation;
            let prev = if pos == 0 {
                None
            } else {
                t.get(pos - 1).copied()
            };
            let cur = t.get(pos).copied();
            match &self.prog[pc] {
                Inst::Jmp(x) => stack.push(*x),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Start => {
                    if pos == 0 {
                        stack.push(pc + 1);
                    }
                }
                Inst::End => {
                    if pos == t.len() {
                        stack.push(pc + 1);
                    }
                }
                Inst::WordB(want) => {
                    let at = prev.is_some_and(is_word) != cur.is_some_and(is_word);
                    if at == *want {
                        stack.push(pc + 1);
                    }
                }
                Inst::WordStart => {
                    if !prev.is_some_and(is_word) && cur.is_some_and(is_word) {
                        stack.push(pc + 1);
                    }
                }
                Inst::WordEnd => {
                    if prev.is_some_and(is_word) && !cur.is_some_and(is_word) {
                        stack.push(pc + 1);
                    }
                }
                _ => list.push((pc, start)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, ere: bool, t: &str) -> bool {
        Regex::new(p, ere, false).unwrap().is_match(t)
    }

    #[test]
    fn basic_and_extended() {
        assert!(m("a.c", false, "xxabcx"));
        assert!(m("^ab*c$", false, "abbbc"));
        assert!(!m("^ab*c$", false, "abbbcd"));
        assert!(m("a+", false, "a+"));
        assert!(!m("a+", false, "aa"));
        assert!(m("a\\+", false, "aa"));
        assert!(m("(foo|bar)baz", true, "xbarbaz"));
        assert!(m("\\(foo\\|bar\\)baz", false, "foobaz"));
        assert!(m("[0-9]{3}", true, "ab123"));
        assert!(!m("^[0-9]{3}$", true, "1234"));
        assert!(m("[[:alpha:]]+", true, "x"));
        assert!(m("\\bword\\b", true, "a word here"));
        assert!(!m("\\bword\\b", true, "awordy"));
        assert!(Regex::new("HeLLo", false, true).unwrap().is_match("hello"));
        assert!(Regex::new("(a", true, false).is_err());
    }

    #[test]
    fn leftmost_longest_enough() {
        let r = Regex::new("a+", true, false).unwrap();
        let t: Vec<char> = "xaaay".chars().collect();
        assert_eq!(r.find_chars(&t, 0), Some((1, 4)));
    }

    #[test]
    fn pathological_pattern_is_linear() {
        let r = Regex::new("(a*)*b", true, false).unwrap();
        let t = "a".repeat(5000);
        assert!(!r.is_match(&t));
    }
}
