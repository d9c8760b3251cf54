//! Parser for the phone shell's POSIX-style language.
//!
//! Supported: simple commands with words in single/double quotes and backslash escapes,
//! parameter expansion (`$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR:=w}`, `${VAR:+w}`, `${#VAR}`,
//! `$?`, `$$`, `$#`, `$@`, `$*`, `$0`–`$9`), command substitution (`$(…)` and backquotes),
//! arithmetic (`$((…))`), `~`, assignments, redirections (`<`, `>`, `>>`, `>|`, `<>`, `n>&m`,
//! `n<&m`, `&>`, `&>>`, here-documents `<<` / `<<-`), pipelines with `!`, `&&`, `||`, `;`,
//! `&` (run in the foreground), newlines, comments, `{ …; }`, `( … )`, `if`, `for`, `while`,
//! `until`, `case` and function definitions `name() compound`.

use std::collections::VecDeque;

/// Most nested constructs (parentheses, compound commands, substitutions) in one script.
pub const MAX_NESTING: usize = 100;

/// A sequence of and-or lists (`a; b && c`).
#[derive(Debug, Clone, Default)]
pub struct List(pub Vec<AndOr>);

/// A pipeline followed by `&&`/`||` pipelines.
#[derive(Debug, Clone)]
pub struct AndOr {
    pub first: Pipeline,
    /// `(true, p)` for `&& p`, `(false, p)` for `|| p`.
    pub rest: Vec<(bool, Pipeline)>,
}

/// `[!] cmd | cmd …`
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub negate: bool,
    pub cmds: Vec<Command>,
}

/// One command of a pipeline.
#[derive(Debug, Clone)]
pub enum Command {
    Simple {
        assigns: Vec<(String, Word)>,
        words: Vec<Word>,
        redirs: Vec<Redir>,
    },
    Compound {
        body: Compound,
        redirs: Vec<Redir>,
    },
    FuncDef {
        name: String,
        body: std::sync::Arc<Command>,
    },
}

/// Compound commands.
#[derive(Debug, Clone)]
pub enum Compound {
    Brace(List),
    Subshell(List),
    If {
        branches: Vec<(List, List)>,
        otherwise: Option<List>,
    },
    For {
        var: String,
        items: Option<Vec<Word>>,
        body: List,
    },
    While {
        cond: List,
        body: List,
        until: bool,
    },
    Case {
        word: Word,
        arms: Vec<(Vec<Word>, List)>,
    },
}

/// A word: parts concatenated, then field-split and globbed where unquoted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Word(pub Vec<Part>);

/// A piece of a word.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Unquoted text (glob characters are active).
    Lit(String),
    /// Quoted text (taken literally).
    Quoted(String),
    /// `~` at the start of a word.
    Tilde,
    /// A parameter expansion.
    Param {
        name: String,
        op: ParamOp,
        quoted: bool,
    },
    /// `$(…)` or backquotes (the script text, parsed when run).
    CmdSub { script: String, quoted: bool },
    /// `$((…))` (the expression text, expanded then evaluated when run).
    Arith { expr: Word, quoted: bool },
}

/// Operators of `${name…}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamOp {
    Plain,
    /// `${#name}`
    Length,
    /// `${name:-w}` (`colon`: also when empty) and `${name-w}`.
    Default {
        word: Word,
        colon: bool,
    },
    /// `${name:=w}`
    Assign {
        word: Word,
        colon: bool,
    },
    /// `${name:+w}`
    Alternative {
        word: Word,
        colon: bool,
    },
    /// `${name:?w}`
    Error {
        word: Word,
        colon: bool,
    },
    /// `${name#p}`, `${name##p}`, `${name%p}`, `${name%%p}`
    Trim {
        pattern: Word,
        suffix: bool,
        longest: bool,
    },
}

/// A redirection.
#[derive(Debug, Clone)]
pub struct Redir {
    pub fd: u32,
    pub kind: RedirKind,
}

/// What a redirection does.
#[derive(Debug, Clone)]
pub enum RedirKind {
    /// `<`
    Read(Word),
    /// `>` / `>|`
    Write(Word),
    /// `>>`
    Append(Word),
    /// `<>`
    ReadWrite(Word),
    /// `n>&m` / `n<&m` (the word is a descriptor number or `-`).
    Dup(Word),
    /// `&>` (stdout and stderr to a file); `append` for `&>>`.
    Both { target: Word, append: bool },
    /// Here-document: the body (expanded unless the delimiter was quoted).
    HereDoc { body: Word },
}

/// A parse failure, with the message the shell prints after `syntax error: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A word and whether it was entirely unquoted plain text (`raw` then holds it).
    Word {
        word: Word,
        raw: Option<String>,
    },
    /// A word of digits directly followed by `<` or `>`.
    IoNumber(u32),
    Op(&'static str),
    Newline,
    Eof,
}

const OPS: &[&str] = &[
    "&&", "||", ";;", "<<-", "<<", ">>", "<&", ">&", "<>", ">|", "&>>", "&>", "|", "&", ";", "<",
    ">", "(", ")",
];

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    /// Here-documents announced on the current line: (delimiter, strip tabs, quoted, slot).
    pending_heredocs: Vec<(String, bool, bool, usize)>,
    heredoc_bodies: Vec<Option<Word>>,
    depth: usize,
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        '|' | '&' | ';' | '<' | '>' | '(' | ')' | ' ' | '\t' | '\n'
    )
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Whether `s` is a valid variable name.
pub fn is_name(s: &str) -> bool {
    let mut it = s.chars();
    matches!(it.next(), Some(c) if is_name_start(c)) && it.all(is_name_char)
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError(msg.into()))
    }

    fn skip_blanks_and_comments(&mut self) {
        loop {
            match self.peek() {
                Some(' ') | Some('\t') | Some('\r') => self.pos += 1,
                Some('\\') if self.peek_at(1) == Some('\n') => self.pos += 2,
                Some('#') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn next_tok(&mut self) -> Result<Tok, SyntaxError> {
        self.skip_blanks_and_comments();
        let Some(c) = self.peek() else {
            if !self.pending_heredocs.is_empty() {
                // Here-documents at the very end of the script with no newline: empty bodies.
                self.read_heredoc_bodies()?;
            }
            return Ok(Tok::Eof);
        };
        if c == '\n' {
            self.pos += 1;
            if !self.pending_heredocs.is_empty() {
                self.read_heredoc_bodies()?;
            }
            return Ok(Tok::Newline);
        }
        for op in OPS {
            let len = op.chars().count();
            if self.pos + len <= self.chars.len()
                && self.chars[self.pos..self.pos + len]
                    .iter()
                    .copied()
                    .eq(op.chars())
            {
                self.pos += len;
                return Ok(Tok::Op(op));
            }
        }
        // IO number: digits followed directly by a redirection.
        let start = self.pos;
        let mut end = start;
        while end < self.chars.len() && self.chars[end].is_ascii_digit() {
            end += 1;
        }
        if end > start && end < self.chars.len() && matches!(self.chars[end], '<' | '>') {
            let text: String = self.chars[start..end].iter().collect();
            if let Ok(n) = text.parse::<u32>() {
                self.pos = end;
                return Ok(Tok::IoNumber(n));
            }
        }
        let (word, raw) = self.read_word()?;
        Ok(Tok::Word { word, raw })
    }

    /// Reads a word up to an unquoted metacharacter.
    fn read_word(&mut self) -> Result<(Word, Option<String>), SyntaxError> {
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut plain = true;
        let start = self.pos;
        if self.peek() == Some('~') {
            let next = self.peek_at(1);
            if next.is_none() || next == Some('/') || next.is_some_and(is_meta) {
                self.pos += 1;
                parts.push(Part::Tilde);
                plain = false;
            }
        }
        while let Some(c) = self.peek() {
            if is_meta(c) {
                break;
            }
            match c {
                '\\' => {
                    plain = false;
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some(n) => {
                            flush_lit(&mut parts, &mut lit);
                            parts.push(Part::Quoted(n.to_string()));
                            self.pos += 1;
                        }
                        None => lit.push('\\'),
                    }
                }
                '\'' => {
                    plain = false;
                    self.pos += 1;
                    let mut s = String::new();
                    loop {
                        match self.peek() {
                            None => return self.err("unterminated quoted string"),
                            Some('\'') => {
                                self.pos += 1;
                                break;
                            }
                            Some(ch) => {
                                s.push(ch);
                                self.pos += 1;
                            }
                        }
                    }
                    flush_lit(&mut parts, &mut lit);
                    parts.push(Part::Quoted(s));
                }
                '"' => {
                    plain = false;
                    self.pos += 1;
                    flush_lit(&mut parts, &mut lit);
                    let inner = self.read_double_quoted()?;
                    if inner.is_empty() {
                        parts.push(Part::Quoted(String::new()));
                    } else {
                        parts.extend(inner);
                    }
                }
                '$' => {
                    if let Some(p) = self.read_dollar(false)? {
                        plain = false;
                        flush_lit(&mut parts, &mut lit);
                        parts.push(p);
                    } else {
                        lit.push('$');
                    }
                }
                '`' => {
                    plain = false;
                    self.pos += 1;
                    let script = self.read_backquoted()?;
                    flush_lit(&mut parts, &mut lit);
                    parts.push(Part::CmdSub {
                        script,
                        quoted: false,
                    });
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush_lit(&mut parts, &mut lit);
        let raw = if plain {
            Some(self.chars[start..self.pos].iter().collect())
        } else {
            None
        };
        Ok((Word(parts), raw))
    }

    /// After the opening `"`: reads up to the closing quote.
    fn read_double_quoted(&mut self) -> Result<Vec<Part>, SyntaxError> {
        let mut parts = Vec::new();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return self.err("unterminated quoted string"),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('$' | '`' | '"' | '\\')) => {
                            s.push(c);
                            self.pos += 1;
                        }
                        Some('\n') => self.pos += 1,
                        _ => s.push('\\'),
                    }
                }
                Some('$') => {
                    if let Some(p) = self.read_dollar(true)? {
                        if !s.is_empty() {
                            parts.push(Part::Quoted(std::mem::take(&mut s)));
                        }
                        parts.push(p);
                    } else {
                        s.push('$');
                    }
                }
                Some('`') => {
                    self.pos += 1;
                    let script = self.read_backquoted()?;
                    if !s.is_empty() {
                        parts.push(Part::Quoted(std::mem::take(&mut s)));
                    }
                    parts.push(Part::CmdSub {
                        script,
                        quoted: true,
                    });
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        if !s.is_empty() {
            parts.push(Part::Quoted(s));
        }
        Ok(parts)
    }

    fn read_backquoted(&mut self) -> Result<String, SyntaxError> {
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return self.err("unterminated `"),
                Some('`') => {
                    self.pos += 1;
                    return Ok(s);
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('$' | '`' | '\\')) => {
                            s.push(c);
                            self.pos += 1;
                        }
                        _ => s.push('\\'),
                    }
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// At a `$`: reads an expansion, or returns `None` (and consumes only the `$`) when the
    /// `$` is literal.
    fn read_dollar(&mut self, quoted: bool) -> Result<Option<Part>, SyntaxError> {
        self.pos += 1;
        match self.peek() {
            Some('(') if self.peek_at(1) == Some('(') => {
                self.pos += 2;
                let text = self.read_balanced_parens(2)?;
                let mut sub = Lexer::new(&text, self.depth + 1)?;
                let parts = sub.read_plain_text()?;
                Ok(Some(Part::Arith {
                    expr: Word(parts),
                    quoted,
                }))
            }
            Some('(') => {
                self.pos += 1;
                let script = self.read_balanced_parens(1)?;
                Ok(Some(Part::CmdSub { script, quoted }))
            }
            Some('{') => {
                self.pos += 1;
                self.read_braced_param(quoted).map(Some)
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
                Ok(Some(Part::Param {
                    name,
                    op: ParamOp::Plain,
                    quoted,
                }))
            }
            Some(c)
                if c.is_ascii_digit() || matches!(c, '?' | '$' | '#' | '@' | '*' | '!' | '-') =>
            {
                self.pos += 1;
                Ok(Some(Part::Param {
                    name: c.to_string(),
                    op: ParamOp::Plain,
                    quoted,
                }))
            }
            _ => Ok(None),
        }
    }

    /// After `$(` (or `$((`): the text up to the matching close, honouring quotes.
    fn read_balanced_parens(&mut self, closes: usize) -> Result<String, SyntaxError> {
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return self.err("unterminated $("),
                Some('\\') => self.pos += 2,
                Some('\'') => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '\'' {
                            break;
                        }
                    }
                }
                Some('"') => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == '\\' {
                            self.pos += 1;
                        } else if c == '"' {
                            break;
                        }
                    }
                }
                Some('(') => {
                    depth += 1;
                    self.pos += 1;
                }
                Some(')') => {
                    if depth == 0 {
                        let end = self.pos;
                        if closes == 2 {
                            if self.peek_at(1) != Some(')') {
                                return self.err("unterminated $((");
                            }
                            self.pos += 2;
                        } else {
                            self.pos += 1;
                        }
                        return Ok(self.chars[start..end].iter().collect());
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// After `${`.
    fn read_braced_param(&mut self, quoted: bool) -> Result<Part, SyntaxError> {
        let mut length = false;
        if self.peek() == Some('#') && self.peek_at(1).is_some_and(|c| c != '}') {
            length = true;
            self.pos += 1;
        }
        let mut name = String::new();
        match self.peek() {
            Some(c) if is_name_start(c) => {
                while let Some(c) = self.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
            }
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek() {
                    if !c.is_ascii_digit() {
                        break;
                    }
                    name.push(c);
                    self.pos += 1;
                }
            }
            Some(c @ ('?' | '$' | '#' | '@' | '*' | '!' | '-')) => {
                name.push(c);
                self.pos += 1;
            }
            _ => return self.err("bad substitution"),
        }
        if length {
            if self.peek() != Some('}') {
                return self.err("bad substitution");
            }
            self.pos += 1;
            return Ok(Part::Param {
                name,
                op: ParamOp::Length,
                quoted,
            });
        }
        let op = match self.peek() {
            Some('}') => {
                self.pos += 1;
                return Ok(Part::Param {
                    name,
                    op: ParamOp::Plain,
                    quoted,
                });
            }
            Some(':') => {
                self.pos += 1;
                let c = self.peek();
                self.pos += 1;
                match c {
                    Some('-') => 'd',
                    Some('=') => 'a',
                    Some('+') => 'p',
                    Some('?') => 'e',
                    _ => return self.err("bad substitution"),
                }
            }
            Some('-') => {
                self.pos += 1;
                'D'
            }
            Some('=') => {
                self.pos += 1;
                'A'
            }
            Some('+') => {
                self.pos += 1;
                'P'
            }
            Some('?') => {
                self.pos += 1;
                'E'
            }
            Some('#') => {
                self.pos += 1;
                if self.peek() == Some('#') {
                    self.pos += 1;
                    'L'
                } else {
                    'l'
                }
            }
            Some('%') => {
                self.pos += 1;
                if self.peek() == Some('%') {
                    self.pos += 1;
                    'S'
                } else {
                    's'
                }
            }
            _ => return self.err("bad substitution"),
        };
        let word = self.read_param_word()?;
        let op = match op {
            'd' => ParamOp::Default { word, colon: true },
            'D' => ParamOp::Default { word, colon: false },
            'a' => ParamOp::Assign { word, colon: true },
            'A' => ParamOp::Assign { word, colon: false },
            'p' => ParamOp::Alternative { word, colon: true },
            'P' => ParamOp::Alternative { word, colon: false },
            'e' => ParamOp::Error { word, colon: true },
            'E' => ParamOp::Error { word, colon: false },
            'l' | 'L' => ParamOp::Trim {
                pattern: word,
                suffix: false,
                longest: op == 'L',
            },
            _ => ParamOp::Trim {
                pattern: word,
                suffix: true,
                longest: op == 'S',
            },
        };
        Ok(Part::Param { name, op, quoted })
    }

    /// The word inside `${name:-…}` up to the closing brace.
    fn read_param_word(&mut self) -> Result<Word, SyntaxError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            match self.peek() {
                None => return self.err("bad substitution"),
                Some('}') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        flush_lit(&mut parts, &mut lit);
                        parts.push(Part::Quoted(c.to_string()));
                        self.pos += 1;
                    }
                }
                Some('\'') => {
                    self.pos += 1;
                    let mut s = String::new();
                    loop {
                        match self.peek() {
                            None => return self.err("unterminated quoted string"),
                            Some('\'') => {
                                self.pos += 1;
                                break;
                            }
                            Some(c) => {
                                s.push(c);
                                self.pos += 1;
                            }
                        }
                    }
                    flush_lit(&mut parts, &mut lit);
                    parts.push(Part::Quoted(s));
                }
                Some('"') => {
                    self.pos += 1;
                    flush_lit(&mut parts, &mut lit);
                    let inner = self.read_double_quoted()?;
                    if inner.is_empty() {
                        parts.push(Part::Quoted(String::new()));
                    }
                    parts.extend(inner);
                }
                Some('$') => {
                    if let Some(p) = self.read_dollar(false)? {
                        flush_lit(&mut parts, &mut lit);
                        parts.push(p);
                    } else {
                        lit.push('$');
                    }
                }
                Some(c) => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush_lit(&mut parts, &mut lit);
        Ok(Word(parts))
    }

    /// The whole input as here-document / arithmetic text: `$` expansions and `\$`, `` \` ``,
    /// `\\` escapes only.
    fn read_plain_text(&mut self) -> Result<Vec<Part>, SyntaxError> {
        let mut parts = Vec::new();
        let mut s = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' if matches!(self.peek_at(1), Some('$' | '`' | '\\')) => {
                    if let Some(n) = self.peek_at(1) {
                        s.push(n);
                    }
                    self.pos += 2;
                }
                '$' => {
                    if let Some(p) = self.read_dollar(true)? {
                        if !s.is_empty() {
                            parts.push(Part::Quoted(std::mem::take(&mut s)));
                        }
                        parts.push(p);
                    } else {
                        s.push('$');
                    }
                }
                '`' => {
                    self.pos += 1;
                    let script = self.read_backquoted()?;
                    if !s.is_empty() {
                        parts.push(Part::Quoted(std::mem::take(&mut s)));
                    }
                    parts.push(Part::CmdSub {
                        script,
                        quoted: true,
                    });
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        if !s.is_empty() {
            parts.push(Part::Quoted(s));
        }
        Ok(parts)
    }

    fn read_heredoc_bodies(&mut self) -> Result<(), SyntaxError> {
        let pending = std::mem::take(&mut self.pending_heredocs);
        for (delim, strip, quoted, slot) in pending {
            let mut body = String::new();
            loop {
                if self.pos >= self.chars.len() {
                    break;
                }
                let mut line = String::new();
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                let line = if strip {
                    line.trim_start_matches('\t').to_owned()
                } else {
                    line
                };
                if line == delim {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            let word = if quoted {
                Word(vec![Part::Quoted(body)])
            } else {
                let mut sub = Lexer::new(&body, self.depth + 1)?;
                Word(sub.read_plain_text()?)
            };
            self.heredoc_bodies[slot] = Some(word);
        }
        Ok(())
    }

    fn new(text: &str, depth: usize) -> Result<Lexer, SyntaxError> {
        if depth > MAX_NESTING {
            return Err(SyntaxError("nested too deeply".into()));
        }
        Ok(Lexer {
            chars: text.chars().collect(),
            pos: 0,
            pending_heredocs: Vec::new(),
            heredoc_bodies: Vec::new(),
            depth,
        })
    }
}

fn flush_lit(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

struct Parser {
    lexer: Lexer,
    peeked: VecDeque<Tok>,
    depth: usize,
    /// Here-document redirections waiting for their body: (slot in lexer, redirection index).
    heredoc_redirs: Vec<usize>,
}

const RESERVED_END: &[&str] = &[
    "then", "else", "elif", "fi", "do", "done", "esac", "}", ")", ";;",
];

impl Parser {
    fn peek(&mut self) -> Result<&Tok, SyntaxError> {
        if self.peeked.is_empty() {
            let t = self.lexer.next_tok()?;
            self.peeked.push_back(t);
        }
        Ok(&self.peeked[0])
    }

    fn next(&mut self) -> Result<Tok, SyntaxError> {
        self.peek()?;
        Ok(self.peeked.pop_front().unwrap_or(Tok::Eof))
    }

    fn peek_keyword(&mut self) -> Result<Option<String>, SyntaxError> {
        Ok(match self.peek()? {
            Tok::Word { raw: Some(r), .. } => Some(r.clone()),
            Tok::Op(op @ (")" | ";;")) => Some((*op).to_owned()),
            _ => None,
        })
    }

    fn unexpected<T>(&mut self) -> Result<T, SyntaxError> {
        let t = self.peek()?.clone();
        Err(SyntaxError(match t {
            Tok::Eof => "unexpected end of file".to_owned(),
            Tok::Newline => "unexpected newline".to_owned(),
            Tok::Op(op) => format!("unexpected '{op}'"),
            Tok::IoNumber(n) => format!("unexpected '{n}'"),
            Tok::Word { raw: Some(r), .. } => format!("unexpected '{r}'"),
            Tok::Word { .. } => "unexpected word".to_owned(),
        }))
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SyntaxError> {
        self.skip_newlines()?;
        if self.peek_keyword()?.as_deref() == Some(kw) {
            self.next()?;
            Ok(())
        } else {
            self.unexpected()
        }
    }

    fn skip_newlines(&mut self) -> Result<(), SyntaxError> {
        while *self.peek()? == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(SyntaxError("nested too deeply".into()));
        }
        Ok(())
    }

    /// A list up to a reserved word closing it (or end of input at top level).
    fn list(&mut self, top: bool) -> Result<List, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines()?;
            match self.peek()? {
                Tok::Eof => break,
                Tok::Op(")") | Tok::Op(";;") if !top => break,
                _ => {}
            }
            if let Some(kw) = self.peek_keyword()?
                && RESERVED_END.contains(&kw.as_str())
            {
                if top {
                    return self.unexpected();
                }
                break;
            }
            items.push(self.and_or()?);
            match self.peek()? {
                Tok::Op(";") | Tok::Op("&") => {
                    self.next()?;
                }
                Tok::Newline | Tok::Eof => {}
                Tok::Op(")") | Tok::Op(";;") if !top => {}
                Tok::Word { raw: Some(r), .. } if !top && RESERVED_END.contains(&r.as_str()) => {
                    // e.g. `{ a; }` after `a` is handled by the `;`; `if a then` is an error
                    // caught by the caller expecting `then` anyway.
                }
                _ => return self.unexpected(),
            }
        }
        Ok(List(items))
    }

    fn and_or(&mut self) -> Result<AndOr, SyntaxError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let and = match self.peek()? {
                Tok::Op("&&") => true,
                Tok::Op("||") => false,
                _ => break,
            };
            self.next()?;
            self.skip_newlines()?;
            rest.push((and, self.pipeline()?));
        }
        Ok(AndOr { first, rest })
    }

    fn pipeline(&mut self) -> Result<Pipeline, SyntaxError> {
        let mut negate = false;
        if self.peek_keyword()?.as_deref() == Some("!") {
            self.next()?;
            negate = true;
        }
        let mut cmds = vec![self.command()?];
        while *self.peek()? == Tok::Op("|") {
            self.next()?;
            self.skip_newlines()?;
            cmds.push(self.command()?);
        }
        Ok(Pipeline { negate, cmds })
    }

    fn command(&mut self) -> Result<Command, SyntaxError> {
        self.enter()?;
        let r = self.command_inner();
        self.depth -= 1;
        r
    }

    fn command_inner(&mut self) -> Result<Command, SyntaxError> {
        if let Some(kw) = self.peek_keyword()? {
            let body = match kw.as_str() {
                "{" => {
                    self.next()?;
                    let l = self.list(false)?;
                    self.expect_keyword("}")?;
                    Some(Compound::Brace(l))
                }
                "if" => {
                    self.next()?;
                    Some(self.if_clause()?)
                }
                "for" => {
                    self.next()?;
                    Some(self.for_clause()?)
                }
                "while" | "until" => {
                    self.next()?;
                    let cond = self.list(false)?;
                    self.expect_keyword("do")?;
                    let body = self.list(false)?;
                    self.expect_keyword("done")?;
                    Some(Compound::While {
                        cond,
                        body,
                        until: kw == "until",
                    })
                }
                "case" => {
                    self.next()?;
                    Some(self.case_clause()?)
                }
                _ => None,
            };
            if let Some(body) = body {
                let redirs = self.redirections()?;
                return Ok(Command::Compound { body, redirs });
            }
            if RESERVED_END.contains(&kw.as_str()) {
                return self.unexpected();
            }
        }
        if *self.peek()? == Tok::Op("(") {
            self.next()?;
            let l = self.list(false)?;
            if self.next()? != Tok::Op(")") {
                return Err(SyntaxError("missing ')'".into()));
            }
            let redirs = self.redirections()?;
            return Ok(Command::Compound {
                body: Compound::Subshell(l),
                redirs,
            });
        }
        self.simple_command()
    }

    fn redirections(&mut self) -> Result<Vec<Redir>, SyntaxError> {
        let mut redirs = Vec::new();
        while let Some(r) = self.redirection()? {
            redirs.push(r);
        }
        Ok(redirs)
    }

    /// A redirection if one comes next.
    fn redirection(&mut self) -> Result<Option<Redir>, SyntaxError> {
        let mut fd = None;
        if let Tok::IoNumber(n) = *self.peek()? {
            self.next()?;
            fd = Some(n);
        }
        let op = match self.peek()? {
            Tok::Op(
                op @ ("<" | ">" | ">>" | ">|" | "<>" | "<&" | ">&" | "&>" | "&>>" | "<<" | "<<-"),
            ) => *op,
            _ => {
                if fd.is_some() {
                    return self.unexpected();
                }
                return Ok(None);
            }
        };
        self.next()?;
        let (word, raw) = match self.next()? {
            Tok::Word { word, raw } => (word, raw),
            _ => {
                return Err(SyntaxError(format!(
                    "missing redirection target after '{op}'"
                )));
            }
        };
        let default_fd = if op.starts_with('<') { 0 } else { 1 };
        let fd = fd.unwrap_or(default_fd);
        let kind = match op {
            "<" => RedirKind::Read(word),
            ">" | ">|" => RedirKind::Write(word),
            ">>" => RedirKind::Append(word),
            "<>" => RedirKind::ReadWrite(word),
            "<&" | ">&" => {
                // `>&file` (no digits) writes both streams to a file, as in bash.
                match &raw {
                    Some(r) if r == "-" || r.chars().all(|c| c.is_ascii_digit()) => {
                        RedirKind::Dup(word)
                    }
                    _ if op == ">&" && fd == 1 => RedirKind::Both {
                        target: word,
                        append: false,
                    },
                    _ => RedirKind::Dup(word),
                }
            }
            "&>" => RedirKind::Both {
                target: word,
                append: false,
            },
            "&>>" => RedirKind::Both {
                target: word,
                append: true,
            },
            _ => {
                // Here-document: the delimiter is the word with quotes removed.
                let quoted = raw.is_none();
                let delim = literal_text(&word);
                let slot = self.lexer.heredoc_bodies.len();
                self.lexer.heredoc_bodies.push(None);
                self.lexer
                    .pending_heredocs
                    .push((delim, op == "<<-", quoted, slot));
                self.heredoc_redirs.push(slot);
                RedirKind::HereDoc {
                    body: Word(vec![Part::Quoted(format!("\u{0}heredoc:{slot}"))]),
                }
            }
        };
        Ok(Some(Redir { fd, kind }))
    }

    fn simple_command(&mut self) -> Result<Command, SyntaxError> {
        let mut assigns = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        let mut redirs = Vec::new();
        loop {
            if let Some(r) = self.redirection()? {
                redirs.push(r);
                continue;
            }
            match self.peek()?.clone() {
                Tok::Word { word, raw } => {
                    // Function definition: `name ( ) compound`.
                    if words.is_empty()
                        && assigns.is_empty()
                        && redirs.is_empty()
                        && let Some(name) = raw.as_ref().filter(|r| is_name(r))
                    {
                        self.next()?;
                        if *self.peek()? == Tok::Op("(") {
                            self.next()?;
                            if self.next()? != Tok::Op(")") {
                                return Err(SyntaxError("expected ')'".into()));
                            }
                            self.skip_newlines()?;
                            let body = self.command()?;
                            if !matches!(body, Command::Compound { .. }) {
                                return Err(SyntaxError("function body must be compound".into()));
                            }
                            return Ok(Command::FuncDef {
                                name: name.clone(),
                                body: std::sync::Arc::new(body),
                            });
                        }
                        words.push(word);
                        continue;
                    }
                    if words.is_empty()
                        && let Some((name, value)) = split_assignment(&word)
                    {
                        self.next()?;
                        assigns.push((name, value));
                        continue;
                    }
                    self.next()?;
                    words.push(word);
                }
                _ => break,
            }
        }
        if words.is_empty() && assigns.is_empty() && redirs.is_empty() {
            return self.unexpected();
        }
        Ok(Command::Simple {
            assigns,
            words,
            redirs,
        })
    }

    fn if_clause(&mut self) -> Result<Compound, SyntaxError> {
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let cond = self.list(false)?;
            self.expect_keyword("then")?;
            let body = self.list(false)?;
            if cond.0.is_empty() || body.0.is_empty() {
                return self.unexpected();
            }
            branches.push((cond, body));
            self.skip_newlines()?;
            match self.peek_keyword()?.as_deref() {
                Some("elif") => {
                    self.next()?;
                }
                Some("else") => {
                    self.next()?;
                    otherwise = Some(self.list(false)?);
                    self.expect_keyword("fi")?;
                    break;
                }
                Some("fi") => {
                    self.next()?;
                    break;
                }
                _ => return self.unexpected(),
            }
        }
        Ok(Compound::If {
            branches,
            otherwise,
        })
    }

    fn for_clause(&mut self) -> Result<Compound, SyntaxError> {
        let var = match self.next()? {
            Tok::Word { raw: Some(r), .. } if is_name(&r) => r,
            _ => return Err(SyntaxError("bad for loop variable".into())),
        };
        let mut items = None;
        // Optional `in words…` ended by `;` or newline.
        self.skip_newlines()?;
        if self.peek_keyword()?.as_deref() == Some("in") {
            self.next()?;
            let mut list = Vec::new();
            loop {
                match self.peek()?.clone() {
                    Tok::Word { word, .. } => {
                        self.next()?;
                        list.push(word);
                    }
                    Tok::Op(";") | Tok::Newline => {
                        self.next()?;
                        break;
                    }
                    _ => return self.unexpected(),
                }
            }
            items = Some(list);
        } else if *self.peek()? == Tok::Op(";") {
            self.next()?;
        }
        self.expect_keyword("do")?;
        let body = self.list(false)?;
        self.expect_keyword("done")?;
        Ok(Compound::For { var, items, body })
    }

    fn case_clause(&mut self) -> Result<Compound, SyntaxError> {
        let word = match self.next()? {
            Tok::Word { word, .. } => word,
            _ => return Err(SyntaxError("expected word after case".into())),
        };
        self.expect_keyword("in")?;
        let mut arms = Vec::new();
        loop {
            self.skip_newlines()?;
            if self.peek_keyword()?.as_deref() == Some("esac") {
                self.next()?;
                break;
            }
            if *self.peek()? == Tok::Op("(") {
                self.next()?;
            }
            let mut patterns = Vec::new();
            loop {
                match self.next()? {
                    Tok::Word { word, .. } => patterns.push(word),
                    _ => return Err(SyntaxError("expected pattern in case".into())),
                }
                match self.next()? {
                    Tok::Op("|") => continue,
                    Tok::Op(")") => break,
                    _ => return Err(SyntaxError("expected ')' in case".into())),
                }
            }
            let body = self.list(false)?;
            arms.push((patterns, body));
            self.skip_newlines()?;
            match self.peek()? {
                Tok::Op(";;") => {
                    self.next()?;
                }
                _ => {
                    if self.peek_keyword()?.as_deref() == Some("esac") {
                        continue;
                    }
                    return self.unexpected();
                }
            }
        }
        Ok(Compound::Case { word, arms })
    }
}

/// `NAME=value` at the start of a word.
fn split_assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit(first)) = word.0.first() else {
        return None;
    };
    let eq = first.find('=')?;
    let name = &first[..eq];
    if !is_name(name) {
        return None;
    }
    let mut parts = Vec::new();
    let rest = &first[eq + 1..];
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_owned()));
    }
    parts.extend(word.0[1..].iter().cloned());
    Some((name.to_owned(), Word(parts)))
}

/// The text of a word with quotes removed and no expansion (here-document delimiters).
fn literal_text(word: &Word) -> String {
    let mut s = String::new();
    for p in &word.0 {
        match p {
            Part::Lit(t) | Part::Quoted(t) => s.push_str(t),
            Part::Tilde => s.push('~'),
            Part::Param { name, .. } => {
                s.push('$');
                s.push_str(name);
            }
            Part::CmdSub { script, .. } => {
                s.push_str("$(");
                s.push_str(script);
                s.push(')');
            }
            Part::Arith { .. } => s.push_str("$(())"),
        }
    }
    s
}

/// Parses a whole script.
pub fn parse(script: &str) -> Result<List, SyntaxError> {
    parse_at_depth(script, 0)
}

/// Parses a script nested `depth` levels inside substitutions.
pub fn parse_at_depth(script: &str, depth: usize) -> Result<List, SyntaxError> {
    let mut p = Parser {
        lexer: Lexer::new(script, depth)?,
        peeked: VecDeque::new(),
        depth,
        heredoc_redirs: Vec::new(),
    };
    let mut list = p.list(true)?;
    if !p.lexer.pending_heredocs.is_empty() {
        p.lexer.read_heredoc_bodies()?;
    }
    let bodies = std::mem::take(&mut p.lexer.heredoc_bodies);
    if !bodies.is_empty() {
        fill_heredocs_list(&mut list, &bodies);
    }
    Ok(list)
}

fn fill_heredocs_list(list: &mut List, bodies: &[Option<Word>]) {
    for ao in &mut list.0 {
        fill_heredocs_pipeline(&mut ao.first, bodies);
        for (_, p) in &mut ao.rest {
            fill_heredocs_pipeline(p, bodies);
        }
    }
}

fn fill_heredocs_pipeline(p: &mut Pipeline, bodies: &[Option<Word>]) {
    for c in &mut p.cmds {
        fill_heredocs_command(c, bodies);
    }
}

fn fill_heredocs_command(c: &mut Command, bodies: &[Option<Word>]) {
    let redirs = match c {
        Command::Simple { redirs, .. } => redirs,
        Command::Compound { body, redirs } => {
            match body {
                Compound::Brace(l) | Compound::Subshell(l) => fill_heredocs_list(l, bodies),
                Compound::If {
                    branches,
                    otherwise,
                } => {
                    for (a, b) in branches {
                        fill_heredocs_list(a, bodies);
                        fill_heredocs_list(b, bodies);
                    }
                    if let Some(o) = otherwise {
                        fill_heredocs_list(o, bodies);
                    }
                }
                Compound::For { body, .. } => fill_heredocs_list(body, bodies),
                Compound::While { cond, body, .. } => {
                    fill_heredocs_list(cond, bodies);
                    fill_heredocs_list(body, bodies);
                }
                Compound::Case { arms, .. } => {
                    for (_, l) in arms {
                        fill_heredocs_list(l, bodies);
                    }
                }
            }
            redirs
        }
        Command::FuncDef { body, .. } => {
            let mut inner = (**body).clone();
            fill_heredocs_command(&mut inner, bodies);
            *body = std::sync::Arc::new(inner);
            return;
        }
    };
    for r in redirs {
        if let RedirKind::HereDoc { body } = &mut r.kind
            && let [Part::Quoted(marker)] = body.0.as_slice()
            && let Some(slot) = marker.strip_prefix("\u{0}heredoc:")
            && let Ok(slot) = slot.parse::<usize>()
        {
            *body = bodies
                .get(slot)
                .cloned()
                .flatten()
                .unwrap_or_else(|| Word(vec![Part::Quoted(String::new())]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_and_keywords() {
        let l = parse("a && b || c; d | e\nif x; then y; else z; fi").unwrap();
        assert_eq!(l.0.len(), 3);
        assert_eq!(l.0[0].rest.len(), 2);
        assert_eq!(l.0[1].first.cmds.len(), 2);
        assert!(matches!(
            l.0[2].first.cmds[0],
            Command::Compound {
                body: Compound::If { .. },
                ..
            }
        ));
    }

    #[test]
    fn syntax_errors() {
        assert!(parse("if true; then").is_err());
        assert!(parse("echo 'abc").is_err());
        assert!(parse("| a").is_err());
        assert!(parse("a &&").is_err());
        assert!(parse("fi").is_err());
        assert!(parse("echo $(ls").is_err());
        assert!(parse("a >").is_err());
    }

    #[test]
    fn io_numbers_and_heredoc() {
        let l = parse("cat 2>&1 <<EOF\nhello $X\nEOF\necho done").unwrap();
        let Command::Simple { redirs, .. } = &l.0[0].first.cmds[0] else {
            panic!()
        };
        assert_eq!(redirs[0].fd, 2);
        assert!(matches!(redirs[0].kind, RedirKind::Dup(_)));
        let RedirKind::HereDoc { body } = &redirs[1].kind else {
            panic!()
        };
        assert!(body.0.contains(&Part::Quoted("hello ".into())));
        assert_eq!(l.0.len(), 2);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "(".repeat(500);
        assert!(parse(&s).is_err());
    }
}
