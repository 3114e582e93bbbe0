//! The embedded model: a two-level token n-gram / copy model of the workspace's own code.
//!
//! What it is: every indexed file is tokenized (see `tokens.rs`) into one shared arena of token
//! ids. Two hash chains (as in LZ77 compressors) link each position to the previous positions
//! that end with the same context: one keyed by the last [`K_LIT`] literal tokens, one by the
//! last [`K_ABS`] *abstract* tokens, where identifiers that are not keywords / very common names
//! become a class by casing shape (`snake`, `Pascal`, `UPPER`) and literals become `NUM` / `STR`.
//! To predict the next token, the candidates on both chains are scored by how far back they
//! match the text before the cursor, literally (L) and abstractly (A); each candidate votes,
//! with a weight exponential in L and A, for the token that followed it. When that token is an
//! identifier, the candidate may instead vote for the identifier of the cursor's context that
//! played the same role (copying `handle_bar` where the sibling had `handle_foo`, also inside
//! compound names: `on_foo` becomes `on_bar`). The winner is emitted and the loop continues
//! until the end of the line (or, in multi-line mode, while confident).
//!
//! What it is not: it has no notion of syntax, types or scopes beyond tokens, it does not
//! generalise beyond patterns present in the indexed files, and it does not use the suffix except
//! to avoid predicting the cursor's own (indexed) text.
//!
//! Removal is cheap: a file's tokens are marked dead in a bitset and skipped; the arena is
//! compacted (re-indexed from the live files) when dead tokens outnumber live ones or the hash
//! tables fill up.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use tandem_core::{CompletionMode, CompletionRequest};

use super::tokens::{self, Kind, Lang, RawTok};

/// What the index holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexStats {
    pub files: usize,
    /// Live tokens.
    pub tokens: usize,
    /// Approximate bytes of memory used by the index structures.
    pub bytes: usize,
}

/// Separator between files in the arena; never part of a query.
const BOS: u32 = 0;
/// Ids of query tokens that are not in the vocabulary (never equal to an arena token).
const UNKNOWN_BASE: u32 = 0x4000_0000;
/// Ids of abstract classes (`CLASS_BASE + shape * 2 + leading space`).
const CLASS_BASE: u32 = 0x8000_0000;
const NONE: u32 = u32::MAX;
/// Literal context length of the literal hash chain.
pub const K_LIT: usize = 3;
/// Abstract context length of the abstract hash chain.
pub const K_ABS: usize = 4;
/// Longest context compared, in tokens.
const CAP: usize = 32;
/// Bytes of the prefix tokenized for a query.
const QUERY_BYTES: usize = 4000;
/// Candidates examined per chain and step.
const M_LIT: usize = 96;
const M_ABS: usize = 192;
/// Candidates examined by the literal baseline per step.
const M_BASELINE: usize = 512;
/// Estimated bytes per live token, for the budget.
const BYTES_PER_TOKEN: usize = 32;
/// Weights of literal and abstract match lengths (log2 of a candidate's vote weight).
const W_LIT: f64 = 1.0;
const W_ABS: f64 = 0.5;
/// Weight factor of candidates from the cursor's own file.
const SAME_FILE: f64 = 8.0;
/// Confidence (winner's share of the votes) needed for the first token, the rest of the first
/// line, later lines' tokens, and later lines as a whole.
const FIRST_CONF: f64 = 0.25;
const NEXT_CONF: f64 = 0.2;
const LATER_CONF: f64 = 0.5;
const LINE_CONF: f64 = 0.3;
/// The candidates carried from the previous token replace a new search when at least
/// `CARRY_MIN_COUNT` of them match at least `CARRY_MIN_MATCH` tokens.
const CARRY_MIN_COUNT: usize = 4;
const CARRY_MIN_MATCH: usize = 8;
/// Lines a multi-line completion may span.
const MAX_LINES: usize = 8;

/// Identifiers kept literal at the abstract level: keywords of common languages and very common
/// library names.
const KEEP: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "Some",
    "None",
    "Ok",
    "Err",
    "Option",
    "Result",
    "Vec",
    "String",
    "Box",
    "Arc",
    "Rc",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "isize",
    "f32",
    "f64",
    "bool",
    "char",
    "new",
    "default",
    "clone",
    "into",
    "from",
    "iter",
    "len",
    "push",
    "map",
    "unwrap",
    "expect",
    "to_string",
    "to_owned",
    "as_ref",
    "is_empty",
    "get",
    "insert",
    "fmt",
    "f",
    "write",
    "println",
    "format",
    "assert",
    "assert_eq",
    "vec",
    "derive",
    "Debug",
    "Clone",
    "Copy",
    "Default",
    "PartialEq",
    "Eq",
    "Hash",
    "test",
    "cfg",
    "def",
    "class",
    "import",
    "from",
    "return",
    "None",
    "True",
    "False",
    "and",
    "or",
    "not",
    "is",
    "lambda",
    "with",
    "try",
    "except",
    "finally",
    "raise",
    "pass",
    "yield",
    "elif",
    "del",
    "global",
    "nonlocal",
    "assert",
    "function",
    "var",
    "this",
    "null",
    "undefined",
    "new",
    "typeof",
    "instanceof",
    "export",
    "default",
    "extends",
    "interface",
    "implements",
    "package",
    "func",
    "go",
    "defer",
    "chan",
    "select",
    "case",
    "switch",
    "nil",
    "int",
    "void",
    "char",
    "long",
    "short",
    "unsigned",
    "signed",
    "sizeof",
    "typedef",
    "struct",
    "union",
    "static",
    "inline",
    "public",
    "private",
    "protected",
    "final",
    "abstract",
    "throws",
    "throw",
    "catch",
    "do",
    "goto",
    "register",
    "volatile",
    "auto",
    "bool",
    "float",
    "double",
    "string",
    "error",
    "err",
    "ctx",
    "args",
    "value",
    "key",
    "name",
    "data",
    "i",
    "j",
    "k",
    "n",
    "x",
    "y",
    "len",
    "size",
];

fn keep_literal(ident: &str) -> bool {
    KEEP.contains(&ident)
}

/// The abstract class of a token text, or `lit` itself when it stays literal.
fn class_of(text: &str, lit: u32) -> u32 {
    let (space, t) = match text.strip_prefix(' ') {
        Some(t) => (1, t),
        None => (0, text),
    };
    let shape = match tokens::kind_of(t) {
        Kind::Ident => {
            if keep_literal(t) {
                return lit;
            }
            match tokens::case_of(t) {
                tokens::Case::Upper if t.chars().count() > 1 => 2,
                tokens::Case::Pascal | tokens::Case::Upper => 1,
                _ => 0,
            }
        }
        Kind::Number if t.len() > 1 => 3,
        Kind::Str if t.len() > 2 => 4,
        Kind::Comment => 5,
        _ => return lit,
    };
    CLASS_BASE + shape * 2 + space
}

fn is_comment(cls: u32) -> bool {
    cls >= CLASS_BASE && (cls - CLASS_BASE) / 2 == 5
}

fn is_abstract_ident(cls: u32) -> bool {
    cls >= CLASS_BASE && (cls - CLASS_BASE) / 2 <= 2
}

#[derive(Debug, Default)]
struct Vocab {
    ids: HashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
    cls: Vec<u32>,
    bytes: usize,
}

impl Vocab {
    fn new() -> Self {
        let mut v = Self::default();
        v.texts.push("".into());
        v.cls.push(BOS);
        v
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = u32::try_from(self.texts.len())
            .unwrap_or(UNKNOWN_BASE - 1)
            .min(UNKNOWN_BASE - 1);
        let boxed: Box<str> = text.into();
        self.bytes += 2 * text.len() + 64;
        self.ids.insert(boxed.clone(), id);
        self.texts.push(boxed);
        self.cls.push(class_of(text, id));
        id
    }

    fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", |t| t)
    }

    fn cls(&self, id: u32) -> u32 {
        self.cls.get(id as usize).copied().unwrap_or(id)
    }
}

fn tok_text(buf: &mut String, t: &RawTok<'_>) {
    buf.clear();
    if t.space {
        buf.push(' ');
    }
    buf.push_str(t.text);
    buf.push_str(t.indent);
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
    seq: u64,
}

#[derive(Debug)]
struct Inner {
    budget: usize,
    vocab: Vocab,
    toks: Vec<u32>,
    live: Vec<u64>,
    prev_lit: Vec<u32>,
    prev_abs: Vec<u32>,
    head_lit: Vec<u32>,
    head_abs: Vec<u32>,
    bits: u32,
    files: HashMap<String, Span>,
    order: BTreeMap<u64, String>,
    seq: u64,
    live_tokens: usize,
    dead_tokens: usize,
}

fn mix(h: u64, x: u32) -> u64 {
    (h ^ u64::from(x))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

fn bucket(h: u64, bits: u32) -> usize {
    (h.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - bits)) as usize
}

impl Inner {
    fn new(budget: usize) -> Self {
        let bits = 12;
        Self {
            budget,
            vocab: Vocab::new(),
            toks: Vec::new(),
            live: Vec::new(),
            prev_lit: Vec::new(),
            prev_abs: Vec::new(),
            head_lit: vec![NONE; 1 << bits],
            head_abs: vec![NONE; 1 << bits],
            bits,
            files: HashMap::new(),
            order: BTreeMap::new(),
            seq: 0,
            live_tokens: 0,
            dead_tokens: 0,
        }
    }

    fn is_live(&self, p: usize) -> bool {
        self.live
            .get(p / 64)
            .is_some_and(|w| w >> (p % 64) & 1 == 1)
    }

    fn set_live(&mut self, p: usize, on: bool) {
        if p / 64 >= self.live.len() {
            self.live.resize(p / 64 + 1, 0);
        }
        if on {
            self.live[p / 64] |= 1 << (p % 64);
        } else {
            self.live[p / 64] &= !(1 << (p % 64));
        }
    }

    fn lit_key(&self, p: usize) -> Option<u64> {
        let start = (p + 1).checked_sub(K_LIT)?;
        Some(self.toks[start..=p].iter().fold(1, |h, &t| mix(h, t)))
    }

    fn abs_key(&self, p: usize) -> Option<u64> {
        let start = (p + 1).checked_sub(K_ABS)?;
        Some(
            self.toks[start..=p]
                .iter()
                .fold(2, |h, &t| mix(h, self.vocab.cls(t))),
        )
    }

    /// Links positions `from..to` of the arena into the hash chains.
    fn link(&mut self, from: usize, to: usize) {
        for p in from..to {
            if self.toks[p] == BOS {
                continue;
            }
            if let Some(h) = self.lit_key(p) {
                let b = bucket(h, self.bits);
                self.prev_lit[p] = self.head_lit[b];
                self.head_lit[b] = p as u32;
            }
            if let Some(h) = self.abs_key(p) {
                let b = bucket(h, self.bits);
                self.prev_abs[p] = self.head_abs[b];
                self.head_abs[b] = p as u32;
            }
        }
    }

    fn append(&mut self, path: &str, ids: &[u32]) {
        self.seq += 1;
        self.toks.push(BOS);
        let start = self.toks.len();
        self.toks.extend_from_slice(ids);
        let end = self.toks.len();
        self.prev_lit.resize(end, NONE);
        self.prev_abs.resize(end, NONE);
        self.set_live(start - 1, false);
        for p in start..end {
            self.set_live(p, true);
        }
        self.link(start, end);
        let span = Span {
            start: start as u32,
            len: ids.len() as u32,
            seq: self.seq,
        };
        self.files.insert(path.to_owned(), span);
        self.order.insert(self.seq, path.to_owned());
        self.live_tokens += ids.len();
    }

    fn remove(&mut self, path: &str) {
        let Some(span) = self.files.remove(path) else {
            return;
        };
        self.order.remove(&span.seq);
        let start = span.start as usize;
        for p in start..start + span.len as usize {
            self.set_live(p, false);
        }
        self.live_tokens -= span.len as usize;
        self.dead_tokens += span.len as usize + 1;
    }

    fn bytes(&self) -> usize {
        self.toks.capacity() * 4
            + (self.prev_lit.capacity() + self.prev_abs.capacity()) * 4
            + (self.head_lit.len() + self.head_abs.len()) * 4
            + self.live.capacity() * 8
            + self.vocab.bytes
            + self.files.keys().map(|k| 2 * k.len() + 96).sum::<usize>()
    }

    fn live_estimate(&self) -> usize {
        self.live_tokens * BYTES_PER_TOKEN + self.vocab.bytes + self.files.len() * 200
    }

    /// Evicts the least recently upserted files beyond the budget (never `keep`), then compacts
    /// when needed.
    fn enforce(&mut self, keep: &str) {
        while self.live_estimate() > self.budget && self.files.len() > 1 {
            let Some((_, oldest)) = self.order.iter().next().map(|(s, p)| (*s, p.clone())) else {
                break;
            };
            if oldest == keep {
                break;
            }
            self.remove(&oldest);
        }
        let full = self.toks.len() > self.head_lit.len() * 2;
        let wasteful = self.dead_tokens > self.live_tokens.max(50_000);
        let over = self.bytes() > self.budget && self.dead_tokens > self.live_tokens / 8;
        if full || wasteful || over {
            self.rebuild();
        }
    }

    /// Re-indexes the live files, oldest first, into a fresh arena and vocabulary.
    fn rebuild(&mut self) {
        let old_toks = std::mem::take(&mut self.toks);
        let old_vocab = std::mem::replace(&mut self.vocab, Vocab::new());
        let mut remap = vec![NONE; old_vocab.texts.len()];
        let order: Vec<String> = self.order.values().cloned().collect();
        let spans = std::mem::take(&mut self.files);
        self.order.clear();
        self.live.clear();
        self.prev_lit.clear();
        self.prev_abs.clear();
        self.live_tokens = 0;
        self.dead_tokens = 0;
        let live: usize = spans.values().map(|s| s.len as usize + 1).sum();
        self.bits = live.next_power_of_two().trailing_zeros().clamp(12, 31);
        self.head_lit = vec![NONE; 1 << self.bits];
        self.head_abs = vec![NONE; 1 << self.bits];
        self.toks.reserve_exact(live);
        self.prev_lit.reserve_exact(live);
        self.prev_abs.reserve_exact(live);
        self.live.reserve_exact(live / 64 + 1);
        let mut ids = Vec::new();
        for path in order {
            let Some(span) = spans.get(&path) else {
                continue;
            };
            let start = span.start as usize;
            let Some(old) = old_toks.get(start..start + span.len as usize) else {
                continue;
            };
            ids.clear();
            for &t in old {
                let slot = &mut remap[t as usize];
                if *slot == NONE {
                    *slot = self.vocab.intern(old_vocab.text(t));
                }
                ids.push(*slot);
            }
            self.append(&path, &ids);
        }
    }
}

/// One token of the query context.
#[derive(Debug, Clone)]
struct QTok {
    lit: u32,
    cls: u32,
    text: String,
}

/// The text before the cursor, tokenized.
struct Query {
    ctx: Vec<QTok>,
    /// A partly typed identifier or number at the cursor: (leading space, text).
    partial: Option<(bool, String)>,
    /// The prefix ends with whitespace on the cursor's line.
    pending_space: bool,
    /// Indentation of the cursor's line.
    indent: String,
    /// The cursor's file: its span in the arena, to exclude the cursor's own indexed text.
    own: Option<Span>,
    /// The text after the cursor, up to its first non-blank line end.
    suffix_head: String,
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    let window = &s[start..];
    // Start on a line boundary so the first newline token is right.
    match window.find('\n') {
        Some(i) => &window[i..],
        None => window,
    }
}

/// A vote for the next token.
struct Vote<'a> {
    text: Cow<'a, str>,
    lit: u32,
    cls: u32,
    weight: f64,
}

/// A predicted token.
struct Next {
    text: String,
    lit: u32,
    cls: u32,
    /// The winner's share of the votes.
    conf: f64,
}

/// A candidate: the arena position of the last token of its context, and how many tokens of the
/// query context it matches literally (`l`) and abstractly (`a >= l`).
#[derive(Debug, Clone, Copy)]
struct Cand {
    p: usize,
    l: usize,
    a: usize,
}

/// How to predict: the model or the literal baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Model,
    Literal,
}

/// The index of the embedded model. Cheap to share (`Arc`), safe to use from several threads.
#[derive(Debug)]
pub struct EmbeddedIndex {
    inner: RwLock<Inner>,
}

impl Default for EmbeddedIndex {
    fn default() -> Self {
        Self::new(64_000_000)
    }
}

impl EmbeddedIndex {
    /// An empty index that keeps its structures within about `budget_bytes`, evicting the least
    /// recently upserted files beyond it.
    pub fn new(budget_bytes: u64) -> Self {
        let budget = usize::try_from(budget_bytes).unwrap_or(usize::MAX);
        Self {
            inner: RwLock::new(Inner::new(budget)),
        }
    }

    /// Changes the budget (from `workspace.indexBudgetBytes`); it is enforced from the next
    /// update on.
    pub fn set_budget(&self, budget_bytes: u64) {
        self.write().budget = usize::try_from(budget_bytes).unwrap_or(usize::MAX);
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds or replaces one file's contents.
    pub fn upsert(&self, path: &str, text: &str) {
        let raw = tokens::tokenize(text, Lang::guess(path, ""));
        // Arena positions are u32: keep far below.
        if raw.len() >= (u32::MAX / 4) as usize {
            return;
        }
        let mut buf = String::new();
        let mut guard = self.write();
        let inner = &mut *guard;
        inner.remove(path);
        let ids: Vec<u32> = raw
            .iter()
            .map(|t| {
                tok_text(&mut buf, t);
                inner.vocab.intern(&buf)
            })
            .collect();
        if inner.toks.len() + ids.len() + 1 >= (u32::MAX / 2) as usize {
            inner.rebuild();
        }
        inner.append(path, &ids);
        inner.enforce(path);
    }

    pub fn remove(&self, path: &str) {
        let mut inner = self.write();
        inner.remove(path);
        inner.enforce("");
    }

    pub fn stats(&self) -> IndexStats {
        let inner = self.read();
        IndexStats {
            files: inner.files.len(),
            tokens: inner.live_tokens,
            bytes: inner.bytes(),
        }
    }

    /// The model's continuation of the text at the cursor, or `None` when it is not confident.
    pub fn complete(&self, req: &CompletionRequest) -> Option<String> {
        self.predict(req, Method::Model)
    }

    /// The literal longest-match baseline: continues with the token that most often followed the
    /// longest literal match (at least [`K_LIT`] tokens) of the text before the cursor, token by
    /// token, with no abstraction and no confidence threshold. For benchmarks.
    pub fn complete_literal(&self, req: &CompletionRequest) -> Option<String> {
        self.predict(req, Method::Literal)
    }

    fn query(inner: &Inner, req: &CompletionRequest) -> Query {
        let prefix = tail(&req.prefix, QUERY_BYTES);
        let lang = Lang::guess(&req.path, &req.language);
        let mut raw = tokens::tokenize(prefix, lang);
        let last_line = prefix.rsplit('\n').next().unwrap_or("");
        let indent: String = last_line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let ends_in_word = prefix
            .chars()
            .last()
            .is_some_and(|c| c == '_' || c.is_alphanumeric());
        let pending_space = prefix.ends_with([' ', '\t']) && !last_line.trim().is_empty();
        let mut partial = None;
        if ends_in_word
            && let Some(last) = raw.last()
            && matches!(tokens::kind_of(last.text), Kind::Ident | Kind::Number)
        {
            partial = Some((last.space, last.text.to_owned()));
            raw.pop();
        }
        let skip = raw.len().saturating_sub(CAP * 2);
        let mut buf = String::new();
        let mut unknown = UNKNOWN_BASE;
        let ctx = raw[skip..]
            .iter()
            .map(|t| {
                tok_text(&mut buf, t);
                let lit = inner.vocab.get(&buf).unwrap_or_else(|| {
                    unknown += 1;
                    unknown
                });
                QTok {
                    lit,
                    cls: if lit >= UNKNOWN_BASE {
                        class_of(&buf, lit)
                    } else {
                        inner.vocab.cls(lit)
                    },
                    text: buf.clone(),
                }
            })
            .collect();
        let suffix_head: String = req.suffix.chars().take(200).collect();
        Query {
            ctx,
            partial,
            pending_space,
            indent,
            own: inner.files.get(&req.path).copied(),
            suffix_head,
        }
    }

    fn predict(&self, req: &CompletionRequest, method: Method) -> Option<String> {
        let inner = self.read();
        let mut q = Self::query(&inner, req);
        let max_tokens = req.max_tokens.clamp(1, 512) as usize;
        let mut out = String::new();
        let mut line_start = 0; // where the current output line starts in `out`
        let mut lines = 0;
        let mut line_conf = 1.0f64;
        let mut at_eol = false;
        let mut carry = Vec::new();
        for step in 0..max_tokens {
            let first = step == 0;
            let Some(next) = inner.step(&q, method, first, &mut carry) else {
                break;
            };
            let threshold = match (method, lines, first) {
                (Method::Literal, ..) => 0.0,
                (_, 0, true) => FIRST_CONF,
                (_, 0, false) => NEXT_CONF,
                _ => LATER_CONF,
            };
            if next.conf < threshold {
                break;
            }
            line_conf *= next.conf;
            if next.text.starts_with('\n') {
                at_eol = true;
                if req.mode == CompletionMode::SingleLine || out[line_start..].trim().is_empty() {
                    break;
                }
                let indent = &next.text[1..];
                if indent.is_empty() || indent.len() < q.indent.len() || lines + 1 >= MAX_LINES {
                    break;
                }
                if lines > 0 && line_conf < LINE_CONF {
                    out.truncate(line_start);
                    break;
                }
                lines += 1;
                line_start = out.len();
                line_conf = 1.0;
            }
            at_eol = false;
            let mut piece = next.text.as_str();
            if first {
                if let Some((_, partial)) = &q.partial {
                    piece = piece
                        .trim_start_matches(' ')
                        .get(partial.len()..)
                        .unwrap_or("");
                } else if q.pending_space || q.ctx.last().is_none_or(|t| t.text.starts_with('\n')) {
                    piece = piece.trim_start_matches(' ');
                }
            }
            out.push_str(piece);
            q.partial = None;
            q.ctx.push(QTok {
                lit: next.lit,
                cls: next.cls,
                text: next.text,
            });
        }
        if lines > 0 && !at_eol {
            // A later line that stopped halfway: keep the whole lines only.
            out.truncate(line_start);
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        if out.trim().is_empty() {
            None
        } else {
            Some(out)
        }
    }
}

impl Inner {
    /// Collects live candidate positions whose context may match the query's.
    fn gather(&self, ctx: &[QTok], method: Method, cands: &mut Vec<u32>) {
        cands.clear();
        let n = ctx.len();
        let (m_lit, m_abs) = match method {
            Method::Model => (M_LIT, M_ABS),
            Method::Literal => (M_BASELINE, 0),
        };
        if n >= K_LIT {
            let h = ctx[n - K_LIT..].iter().fold(1, |h, t| mix(h, t.lit));
            self.walk(
                self.head_lit[bucket(h, self.bits)],
                &self.prev_lit,
                m_lit,
                cands,
                |p| self.toks[p] == ctx[n - 1].lit,
            );
        }
        if n >= K_ABS && m_abs > 0 {
            let h = ctx[n - K_ABS..].iter().fold(2, |h, t| mix(h, t.cls));
            self.walk(
                self.head_abs[bucket(h, self.bits)],
                &self.prev_abs,
                m_abs,
                cands,
                |p| self.vocab.cls(self.toks[p]) == ctx[n - 1].cls,
            );
        }
        cands.sort_unstable();
        cands.dedup();
    }

    fn walk(
        &self,
        head: u32,
        prev: &[u32],
        max: usize,
        cands: &mut Vec<u32>,
        ok: impl Fn(usize) -> bool,
    ) {
        let mut p = head;
        let mut found = 0;
        let mut steps = 0;
        while p != NONE && found < max && steps < max * 4 {
            let i = p as usize;
            steps += 1;
            if self.is_live(i) && ok(i) {
                cands.push(p);
                found += 1;
            }
            p = prev.get(i).copied().unwrap_or(NONE);
        }
    }

    /// Whether arena position `p` is the cursor's own position in the indexed copy of its file.
    fn is_self(&self, q: &Query, p: usize, l: usize) -> bool {
        let Some(own) = q.own else { return false };
        let start = own.start as usize;
        if p < start || p >= start + own.len as usize || l < q.ctx.len().min(CAP) {
            return false;
        }
        let next = self.toks.get(p + 1).map_or("", |&t| self.vocab.text(t));
        let want = q.suffix_head.trim_start_matches([' ', '\t']);
        match &q.partial {
            Some((_, partial)) => next.trim_start().starts_with(partial.as_str()),
            None if next.starts_with('\n') => want.is_empty() || want.starts_with(['\n', '\r']),
            None => !next.trim().is_empty() && want.starts_with(next.trim_start()),
        }
    }

    /// Scores arena positions against the query context; drops those that match too little.
    fn score(&self, q: &Query, method: Method, positions: &[u32], out: &mut Vec<Cand>) {
        let ctx = &q.ctx;
        let n = ctx.len();
        for &c in positions {
            let p = c as usize;
            let mut l = 0;
            while l < CAP && l < n && l <= p && self.toks[p - l] == ctx[n - 1 - l].lit {
                l += 1;
            }
            let mut a = l;
            if method == Method::Model {
                while a < CAP
                    && a < n
                    && a <= p
                    && self.vocab.cls(self.toks[p - a]) == ctx[n - 1 - a].cls
                {
                    a += 1;
                }
            }
            if (l >= K_LIT || a >= K_ABS) && !self.is_self(q, p, l) {
                out.push(Cand { p, l, a });
            }
        }
    }

    /// Predicts one token: the winning vote and its share of the total weight. `carry` holds the
    /// candidates that predicted the previous token, advanced by one: when they are strong
    /// enough they are used alone, without searching the chains again.
    fn step(&self, q: &Query, method: Method, first: bool, carry: &mut Vec<Cand>) -> Option<Next> {
        let ctx = &q.ctx;
        let strong = carry.iter().filter(|c| c.a >= CARRY_MIN_MATCH).count();
        let mut scored = std::mem::take(carry);
        if method == Method::Literal || strong < CARRY_MIN_COUNT {
            let mut positions = Vec::new();
            self.gather(ctx, method, &mut positions);
            scored.retain(|c| positions.binary_search(&(c.p as u32)).is_err());
            self.score(q, method, &positions, &mut scored);
        }
        let best_l = scored.iter().map(|c| c.l).max().unwrap_or(0);
        let mut votes: Vec<Vote<'_>> = Vec::new();
        let mut chosen: Vec<(Cand, usize)> = Vec::with_capacity(scored.len());
        for &c in &scored {
            let Some(&next) = self.toks.get(c.p + 1) else {
                continue;
            };
            if next == BOS || (c.l < K_LIT && c.a < K_ABS) {
                continue;
            }
            let mut weight = match method {
                Method::Literal if c.l < best_l => continue,
                Method::Literal => 1.0,
                Method::Model => (c.l as f64 * W_LIT + c.a as f64 * W_ABS).exp2(),
            };
            let (text, lit, cls) = match method {
                Method::Model => self.fill(ctx, c.p, c.a, next),
                Method::Literal => (
                    Cow::Borrowed(self.vocab.text(next)),
                    next,
                    self.vocab.cls(next),
                ),
            };
            if method == Method::Model {
                if is_comment(self.vocab.cls(next)) {
                    // Comments are not worth proposing, and end a multi-line completion.
                    continue;
                }
                if q.own
                    .is_some_and(|o| (o.start as usize..(o.start + o.len) as usize).contains(&c.p))
                {
                    weight *= SAME_FILE;
                }
            }
            if first {
                let bare = text.trim_start_matches(' ');
                if let Some((_, partial)) = &q.partial {
                    if !(bare.starts_with(partial.as_str()) && bare.len() > partial.len()) {
                        continue;
                    }
                } else if q.pending_space && !text.starts_with(' ') && method == Method::Model {
                    weight *= 0.1;
                }
            }
            let v = match votes.iter().position(|v| v.text == text) {
                Some(i) => {
                    votes[i].weight += weight;
                    i
                }
                None => {
                    votes.push(Vote {
                        text,
                        lit,
                        cls,
                        weight,
                    });
                    votes.len() - 1
                }
            };
            chosen.push((c, v));
        }
        let total: f64 = votes.iter().map(|v| v.weight).sum();
        let best = votes
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.weight.total_cmp(&b.1.weight).then(b.0.cmp(&a.0)))
            .map(|(i, _)| i)?;
        let win = &votes[best];
        for (c, v) in chosen {
            if v == best {
                let t = self.toks[c.p + 1];
                let l = if t == win.lit { (c.l + 1).min(CAP) } else { 0 };
                let a = if self.vocab.cls(t) == win.cls {
                    (c.a + 1).min(CAP)
                } else {
                    0
                };
                carry.push(Cand { p: c.p + 1, l, a });
            }
        }
        let conf = if total > 0.0 { win.weight / total } else { 0.0 };
        Some(Next {
            text: win.text.to_string(),
            lit: win.lit,
            cls: win.cls,
            conf,
        })
    }

    /// The token candidate `p` proposes after the query context: the token that followed it,
    /// with identifiers mapped to the query's identifier in the same role when the candidate's
    /// identifier also occurs in its matched context.
    fn fill<'a>(
        &'a self,
        ctx: &'a [QTok],
        p: usize,
        a: usize,
        next: u32,
    ) -> (Cow<'a, str>, u32, u32) {
        let text = self.vocab.text(next);
        let cls = self.vocab.cls(next);
        if !is_abstract_ident(cls) {
            return (Cow::Borrowed(text), next, cls);
        }
        let n = ctx.len();
        let bare = text.trim_start_matches(' ');
        let space = text.len() != bare.len();
        // Exact role: the same identifier occurs in the matched context.
        for j in 0..a.min(n) {
            let there = self.vocab.text(self.toks[p - j]);
            if there.trim_start_matches(' ') == bare {
                let mine = ctx[n - 1 - j].text.trim_start_matches(' ');
                let q = &ctx[n - 1 - j];
                if mine == bare {
                    break;
                }
                if q.text.starts_with(' ') == space {
                    return (Cow::Borrowed(q.text.as_str()), q.lit, q.cls);
                }
                return respaced(mine, space, &self.vocab);
            }
        }
        // Compound role: a word of the matched context's identifier occurs inside this one
        // (`handle_foo` ... `on_foo` with `handle_bar` typed: `on_bar`).
        let next_words = tokens::words(bare);
        for j in 0..a.min(n) {
            let there = self.vocab.text(self.toks[p - j]).trim_start_matches(' ');
            let mine = ctx[n - 1 - j].text.trim_start_matches(' ');
            if there == mine || !is_abstract_ident(self.vocab.cls(self.toks[p - j])) {
                continue;
            }
            let (tw, mw) = (tokens::words(there), tokens::words(mine));
            // The differing middle of the two names.
            let pre = tw.iter().zip(&mw).take_while(|(x, y)| x == y).count();
            let suf = tw[pre..]
                .iter()
                .rev()
                .zip(mw[pre..].iter().rev())
                .take_while(|(x, y)| x == y)
                .count();
            let (from, to) = (&tw[pre..tw.len() - suf], &mw[pre..mw.len() - suf]);
            if from.is_empty() || to.is_empty() {
                continue;
            }
            if let Some(at) = next_words.windows(from.len()).position(|w| w == from) {
                let mut words = next_words[..at].to_vec();
                words.extend_from_slice(to);
                words.extend_from_slice(&next_words[at + from.len()..]);
                let name = tokens::render(&words, tokens::case_of(bare));
                return respaced(&name, space, &self.vocab);
            }
        }
        (Cow::Borrowed(text), next, cls)
    }
}

/// A token text with the given leading space, and its ids (unknown ids for new names).
fn respaced<'a>(bare: &str, space: bool, vocab: &Vocab) -> (Cow<'a, str>, u32, u32) {
    let text = if space {
        format!(" {bare}")
    } else {
        bare.to_owned()
    };
    let lit = vocab.get(&text).unwrap_or(UNKNOWN_BASE);
    let cls = if lit < UNKNOWN_BASE {
        vocab.cls(lit)
    } else {
        class_of(&text, lit)
    };
    (Cow::Owned(text), lit, cls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, prefix: &str, suffix: &str, mode: CompletionMode) -> CompletionRequest {
        CompletionRequest {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            snippets: Vec::new(),
            path: path.to_owned(),
            language: "rust".to_owned(),
            mode,
            stop: Vec::new(),
            max_tokens: 64,
            candidates: 1,
        }
    }

    const HANDLERS: &str = "use crate::http::{Request, Response};\n\n\
        fn handle_index(req: Request) -> Response {\n    let body = render_index(&req);\n    Response::ok(body)\n}\n\n\
        fn handle_login(req: Request) -> Response {\n    let body = render_login(&req);\n    Response::ok(body)\n}\n\n\
        fn handle_logout(req: Request) -> Response {\n    let body = render_logout(&req);\n    Response::ok(body)\n}\n";

    #[test]
    fn fresh_name_continues_like_its_siblings() {
        let index = EmbeddedIndex::new(1 << 20);
        index.upsert("src/handlers.rs", HANDLERS);
        let prefix = "fn main() {}\n\nfn handle_profile(";
        let got = index.complete(&req("src/new.rs", prefix, "", CompletionMode::SingleLine));
        assert_eq!(got.as_deref(), Some("req: Request) -> Response {"));
        // The literal baseline cannot: `handle_profile (` was never seen.
        assert_eq!(
            index.complete_literal(&req("src/new.rs", prefix, "", CompletionMode::SingleLine)),
            None
        );
    }

    #[test]
    fn multi_line_body_uses_the_new_name() {
        let index = EmbeddedIndex::new(1 << 20);
        index.upsert("src/handlers.rs", HANDLERS);
        let prefix = "fn handle_profile(req: Request) -> Response {\n    ";
        let got = index.complete(&req("src/new.rs", prefix, "", CompletionMode::MultiLine));
        assert_eq!(
            got.as_deref(),
            Some("let body = render_profile(&req);\n    Response::ok(body)")
        );
    }

    #[test]
    fn enum_variant_pattern() {
        let index = EmbeddedIndex::new(1 << 20);
        let text = "impl Message {\n    fn dispatch(self, s: &mut Server) {\n        match self {\n            \
            Message::Open(params) => s.on_open(params),\n            Message::Close(params) => s.on_close(params),\n            \
            Message::Change(params) => s.on_change(params),\n        }\n    }\n}\n";
        index.upsert("src/msg.rs", text);
        let prefix =
            "fn other(m: Message, s: &mut Server) {\n    match m {\n            Message::Save(";
        let got = index.complete(&req("src/other.rs", prefix, "", CompletionMode::SingleLine));
        assert_eq!(got.as_deref(), Some("params) => s.on_save(params),"));
    }

    #[test]
    fn partial_word_completes_and_own_text_is_excluded() {
        let index = EmbeddedIndex::new(1 << 20);
        index.upsert("src/handlers.rs", HANDLERS);
        let got = index.complete(&req(
            "src/new.rs",
            "fn handle_login(req: Requ",
            "",
            CompletionMode::SingleLine,
        ));
        assert_eq!(got.as_deref(), Some("est) -> Response {"));
        // The cursor's own file, indexed as it is now: no prediction of the text after the cursor.
        let own = "fn lonely_function_name(alpha: Beta) -> Gamma {\n    delta(alpha)\n}\n";
        index.upsert("src/own.rs", own);
        let cut = own.find("alpha: Beta").expect("in text");
        let got = index.complete(&req(
            "src/own.rs",
            &own[..cut],
            &own[cut..],
            CompletionMode::SingleLine,
        ));
        assert_eq!(got, None);
    }

    #[test]
    fn odd_input_never_panics() {
        let index = EmbeddedIndex::new(1 << 16);
        let weird = [
            "",
            "\r\n\r\n",
            "日本語 = \"ü\\",
            "'",
            "\"\\",
            "\t\t",
            "é",
            "a\u{0}b",
            "x.\r\ny",
        ];
        for (i, w) in weird.iter().enumerate() {
            index.upsert(&format!("f{i}.rs"), &w.repeat(50));
            index.upsert(&format!("f{i}.py"), w);
        }
        let huge = "fn a() { b(c, d) }\r\n".repeat(5000);
        index.upsert("huge.rs", &huge);
        for w in weird.iter().chain([&huge.as_str()]) {
            for mode in [CompletionMode::SingleLine, CompletionMode::MultiLine] {
                for path in ["huge.rs", "x.py", ""] {
                    let _ = index.complete(&req(path, w, w, mode));
                    let _ = index.complete_literal(&req(path, w, w, mode));
                }
            }
        }
        let got = index.complete(&req("x.rs", "fn a() { b(", "", CompletionMode::SingleLine));
        assert_eq!(got.as_deref(), Some("c, d) }"));
        let mut r = req("x.rs", "fn a() { b(", "", CompletionMode::SingleLine);
        r.max_tokens = 0;
        assert_eq!(index.complete(&r).as_deref(), Some("c"));
    }

    #[test]
    fn budget_evicts_the_oldest_files() {
        let file = "fn f(a: u32) -> u32 { a + 1 }\n".repeat(200);
        let index = EmbeddedIndex::new(400_000);
        for i in 0..50 {
            index.upsert(&format!("f{i}.rs"), &file);
        }
        let stats = index.stats();
        assert!(stats.files < 50 && stats.files > 1, "{stats:?}");
        assert!(stats.bytes <= 600_000, "{stats:?}");
        // The newest file is kept.
        let inner = index.read();
        assert!(inner.files.contains_key("f49.rs"));
        assert!(!inner.files.contains_key("f0.rs"));
    }

    #[test]
    fn remove_forgets_a_file() {
        let index = EmbeddedIndex::new(1 << 20);
        index.upsert("src/handlers.rs", HANDLERS);
        index.upsert("src/other.rs", "fn other() {}\n");
        assert_eq!(index.stats().files, 2);
        index.remove("src/handlers.rs");
        let stats = index.stats();
        assert_eq!(stats.files, 1);
        assert_eq!(stats.tokens, 7);
        let got = index.complete(&req(
            "src/new.rs",
            "fn handle_profile(",
            "",
            CompletionMode::SingleLine,
        ));
        assert_eq!(got, None);
        // Many replacements compact the arena without losing the live file.
        for i in 0..2000 {
            index.upsert("src/other.rs", &format!("fn other_{i}() {{}}\n").repeat(20));
        }
        assert_eq!(index.stats().files, 1);
        assert!(index.read().toks.len() < 200_000);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EmbeddedIndex>();
    }
}
