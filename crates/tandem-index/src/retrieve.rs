//! The definitions context source: the definitions of identifiers used near the cursor,
//! resolved through the symbol index.
//!
//! # Ranking
//!
//! Identifiers come nearest first (the current statement, the enclosing function's signature,
//! the lines above). Each definition of one of them gets a score from three factors:
//!
//! - **where it is**, in the order the issue asks for: a file the current file imports (1.0;
//!   0.85 when only its directory matches, as for Go and Java packages), the current file
//!   outside the cursor window (0.9), the same directory (0.75), elsewhere in the workspace
//!   (0.5 to 0.7, more for paths sharing leading directories);
//! - **how near** its identifier is to the cursor: `1 / (1 + 0.08 × rank)`;
//! - **how ambiguous** the name is: outside imports and the current file, divided by
//!   `1 + ln(n)` for `n` definitions of the name.
//!
//! At most two definitions per identifier are kept. Definitions of the current file that
//! overlap the cursor window are already in the prompt and never returned. A type's snippet
//! gets the signatures of its methods found in the same file appended (its "fields and
//! methods"), and every snippet carries its bare signature as the `brief` form that packing
//! falls back to when the whole head does not fit.
//!
//! A member access at the cursor (`x.`) puts the receiver's type first
//! ([`tandem_syntax::receiver_type`]): its definition, scored as the nearest identifier and
//! above every other, with up to [`MAX_RECEIVER_MEMBERS`] method signatures (from its file and
//! the other files of its directory), those starting with the member's typed part first — the
//! member being written is rarely named anywhere near the cursor. A module receiver (`pkg.`)
//! puts the outline of the module's files first.
//!
//! The search stops at the query's deadline and returns what it has.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tandem_core::request::{Snippet, SnippetSource};
use tandem_syntax::{DefKind, Import, Target};

use crate::{Symbol, SymbolIndex};

/// Names defined in more files than this are looked up in the current file and its directory
/// only (unless imported by name).
const MAX_FILES_PER_NAME: usize = 32;
/// An imported name with more definitions than this is looked up as a common name is (in the
/// current file and directory only).
const MAX_DEFINITIONS_IMPORTED: usize = 2048;
/// Most definitions kept per identifier.
const PER_IDENTIFIER: usize = 2;
/// Most method signatures appended to a type's snippet.
const MAX_METHODS: usize = 8;
/// Most method signatures appended to the snippet of the type whose member is being written.
const MAX_RECEIVER_MEMBERS: usize = 32;
/// Most member signatures in the receiver's type's bare form (see [`Snippet::brief`]).
const MAX_RECEIVER_BRIEF: usize = 16;
/// How much the receiver's type outranks the nearest identifier's definitions.
const RECEIVER_BOOST: f32 = 1.5;

/// Where the definitions are wanted.
#[derive(Debug, Clone)]
pub struct DefinitionQuery<'a> {
    pub root: &'a Path,
    /// The current file's key (relative to `root`, `/` separators).
    pub path: &'a str,
    /// Identifiers used near the cursor, nearest first.
    pub identifiers: &'a [String],
    /// The current file's imports.
    pub imports: &'a [Import],
    /// Lines (0-based, inclusive) of the current file already in the prompt.
    pub visible: (u32, u32),
    /// The member access being written at the cursor, if any.
    pub receiver: Option<&'a tandem_syntax::Receiver>,
    pub max_snippets: usize,
    pub deadline: Instant,
}

struct Scored {
    path: Arc<str>,
    symbol: Symbol,
    score: f32,
    /// The receiver's type: its members are listed, the typed part's first.
    members_of_receiver: Option<tandem_syntax::Receiver>,
}

impl SymbolIndex {
    /// Snippets of the definitions `query` asks for, best first.
    pub fn definition_snippets(&self, query: &DefinitionQuery<'_>) -> Vec<Snippet> {
        let mut chosen: Vec<Scored> = Vec::new();
        let mut modules: Vec<Snippet> = Vec::new();
        {
            // One read lock for all the names: taking it per name would queue behind every
            // store the indexer makes meanwhile.
            let Ok(roots) = self.roots.read() else {
                return Vec::new();
            };
            let Some(r) = roots.get(query.root) else {
                return Vec::new();
            };
            let key = CacheKey {
                root: query.root.to_path_buf(),
                path: query.path.to_owned(),
                imports: imports_hash(query.imports),
                generation: r.generation,
            };
            if let Some(receiver) = query.receiver
                && let Target::Module(segments) = &receiver.target
            {
                let files = self.module_files(r, query, &key, segments);
                modules = module_snippets(r, query, &files, &receiver.partial);
            }
            if let Some(receiver) = query.receiver
                && let Target::Type(type_name) = &receiver.target
            {
                chosen.extend(
                    self.score_name(r, query, &key, type_name, 0)
                        .into_iter()
                        .filter(|s| s.symbol.kind.is_type())
                        .map(|s| Scored {
                            score: s.score * RECEIVER_BOOST,
                            members_of_receiver: Some(receiver.clone()),
                            ..s
                        }),
                );
            }
            for (rank, ident) in query.identifiers.iter().enumerate() {
                if chosen.len() >= query.max_snippets * 5 || Instant::now() >= query.deadline {
                    break;
                }
                // Best first already; a definition another name brought is not taken twice.
                for s in self.score_name(r, query, &key, ident, rank) {
                    let duplicate = chosen
                        .iter()
                        .any(|c| c.path == s.path && c.symbol.start_line == s.symbol.start_line);
                    if !duplicate {
                        chosen.push(s);
                    }
                }
            }
        }
        chosen.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.symbol.start_line.cmp(&b.symbol.start_line))
        });
        // Many candidates: packing takes their bare signatures first (breadth), then their
        // first lines while the budget lasts.
        chosen.truncate(query.max_snippets * 4);
        modules.extend(chosen.into_iter().map(|s| self.snippet(query.root, s)));
        modules
    }

    /// The definitions named `ident` with their scores (see the module documentation), best
    /// [`PER_IDENTIFIER`] first. Scored under the index's read lock; while the index does not
    /// change, a name's scoring for the same file is reused from [`NameCache`] (typing changes
    /// the cursor window, not the index), and only the window and the proximity are applied
    /// anew.
    fn score_name(
        &self,
        r: &crate::RootSymbols,
        query: &DefinitionQuery<'_>,
        key: &CacheKey,
        ident: &str,
        rank: usize,
    ) -> Vec<Scored> {
        // Protocol methods (`__eq__`) and test functions are named, not looked up.
        if (ident.starts_with("__") && ident.ends_with("__")) || ident.starts_with("test_") {
            return Vec::new();
        }
        let cached = self
            .names
            .lock()
            .ok()
            .and_then(|mut cache| cache.keyed(key).names.get(ident).cloned());
        let candidates = match cached {
            Some(candidates) => candidates,
            None => {
                let candidates: Arc<[Candidate]> = candidates(r, query, ident).into();
                if let Ok(mut cache) = self.names.lock()
                    && cache.key.as_ref() == Some(key)
                    && cache.names.len() < MAX_CACHED_NAMES
                {
                    cache.names.insert(ident.to_owned(), candidates.clone());
                }
                candidates
            }
        };
        let proximity = 1.0 / (1.0 + 0.08 * rank as f32);
        let mut best: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| {
                // Definitions in the cursor window are already in the prompt.
                !(c.current_file
                    && c.start_line <= query.visible.1
                    && c.end_line >= query.visible.0)
            })
            .collect();
        best.sort_by(|a, b| {
            b.base
                .total_cmp(&a.base)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.start_line.cmp(&b.start_line))
        });
        best.into_iter()
            .take(PER_IDENTIFIER)
            .filter_map(|c| {
                let symbol = r.files.get(&c.path)?.symbols.get(c.index as usize)?;
                Some(Scored {
                    path: c.path.clone(),
                    symbol: symbol.clone(),
                    score: c.base * proximity,
                    members_of_receiver: None,
                })
            })
            .collect()
    }

    fn snippet(&self, root: &Path, scored: Scored) -> Snippet {
        let Scored {
            path,
            symbol,
            score,
            members_of_receiver,
        } = scored;
        let mut text = symbol.text.clone();
        let end_line = symbol.start_line + text.lines().count().max(1) as u32;
        // The bare signature packing falls back to; for the receiver's type, with its members'
        // signatures, which are what the completion needs.
        let mut brief = symbol.signature.clone();
        if symbol.kind.is_type()
            && let Some(file) = self.file(root, &path)
        {
            let is_method = |m: &&Symbol| {
                m.container.as_deref() == Some(symbol.name.as_str())
                    && matches!(m.kind, DefKind::Method | DefKind::Function)
            };
            let mut methods: Vec<(&str, &str)> = file
                .symbols
                .iter()
                .filter(|m| {
                    is_method(m) && m.start_line > symbol.end_line.min(symbol.start_line + 1)
                })
                .filter_map(|m| Some((m.name.as_str(), m.signature.lines().next()?)))
                .collect();
            // The receiver's type: also its methods in the other files of its directory (Go
            // declares them across a package's files; Rust `impl` blocks live elsewhere too).
            let neighbours = match members_of_receiver {
                Some(_) => self.neighbours(root, &path),
                None => Vec::new(),
            };
            methods.extend(
                neighbours
                    .iter()
                    .flat_map(|f| f.symbols.iter().filter(is_method))
                    .filter_map(|m| Some((m.name.as_str(), m.signature.lines().next()?))),
            );
            let (most, in_brief) = match &members_of_receiver {
                Some(receiver) => {
                    // Stable: the typed part's members first, then (from outside the type)
                    // the public ones; each group in file order.
                    methods.sort_by_key(|(name, _)| {
                        let private = !receiver.own && name.starts_with(['_', '#']);
                        (!name.starts_with(receiver.partial.as_str()), private)
                    });
                    (MAX_RECEIVER_MEMBERS, MAX_RECEIVER_BRIEF)
                }
                None => (MAX_METHODS, 0),
            };
            let mut appended = 0;
            for (i, (_, sig)) in methods.into_iter().enumerate() {
                if i >= in_brief && appended >= most {
                    break;
                }
                let sig = sig.trim_end_matches(['{', ' ']);
                if i < in_brief {
                    brief.push('\n');
                    brief.push_str(sig);
                }
                if appended < most && !text.contains(sig.trim()) {
                    text.push('\n');
                    text.push_str(sig);
                    appended += 1;
                }
            }
        }
        let brief = (text != brief).then_some(brief);
        Snippet {
            path: path.to_string(),
            start_line: symbol.start_line + 1,
            end_line,
            text,
            source: SnippetSource::Definition,
            kind: Some(symbol.kind.as_str().to_owned()),
            score,
            brief,
        }
    }
}

/// Most other files of a receiver type's directory searched for its methods.
const MAX_NEIGHBOUR_FILES: usize = 64;

impl SymbolIndex {
    /// The files a module receiver names ([`find_module_files`]): looking for them walks every
    /// file of the root, so a complete answer is kept with the names' scoring while the index
    /// and the current file's imports do not change (each keystroke after `pkg.` asks again).
    fn module_files(
        &self,
        r: &crate::RootSymbols,
        query: &DefinitionQuery<'_>,
        key: &CacheKey,
        segments: &[String],
    ) -> Arc<[Arc<str>]> {
        let cached = self
            .names
            .lock()
            .ok()
            .and_then(|mut cache| cache.keyed(key).modules.get(segments).cloned());
        if let Some(files) = cached {
            return files;
        }
        let (files, complete) = find_module_files(r, query, segments);
        let files: Arc<[Arc<str>]> = files.into();
        if complete
            && let Ok(mut cache) = self.names.lock()
            && cache.key.as_ref() == Some(key)
        {
            cache.modules.insert(segments.to_vec(), files.clone());
        }
        files
    }

    /// The other files of `key`'s directory with its extension (at most
    /// [`MAX_NEIGHBOUR_FILES`]), under one read lock.
    fn neighbours(&self, root: &Path, key: &str) -> Vec<Arc<crate::FileSymbols>> {
        let Ok(roots) = self.roots.read() else {
            return Vec::new();
        };
        let Some(r) = roots.get(root) else {
            return Vec::new();
        };
        let extension = key.rsplit_once('.').map_or("", |(_, e)| e);
        r.by_dir
            .get(parent(key))
            .into_iter()
            .flatten()
            .filter(|p| &***p != key && p.rsplit_once('.').map_or("", |(_, e)| e) == extension)
            .take(MAX_NEIGHBOUR_FILES)
            .filter_map(|p| r.files.get(p).cloned())
            .collect()
    }
}

/// Most files a module receiver's outline is taken from.
const MAX_MODULE_FILES: usize = 2;

/// The files `segments` names (`use crate::a::` → `a.rs`, `a/mod.rs`; Go's `pkg.` → the files
/// of directory `pkg`), of the current file's language, nearest it first, and whether every
/// file of the root was looked at before the deadline.
fn find_module_files(
    r: &crate::RootSymbols,
    query: &DefinitionQuery<'_>,
    segments: &[String],
) -> (Vec<Arc<str>>, bool) {
    let Some(last) = segments.last() else {
        return (Vec::new(), true);
    };
    let extension = query.path.rsplit_once('.').map_or("", |(_, e)| e);
    let ends_with = |have: &[&str]| {
        have.len() >= segments.len()
            && have[have.len() - segments.len()..]
                .iter()
                .zip(segments)
                .all(|(a, b)| *a == b.as_str())
    };
    let mut files: Vec<(bool, usize, &Arc<str>)> = Vec::new();
    let mut complete = true;
    for (i, path) in r.files.keys().enumerate() {
        if i % 1024 == 1023 && Instant::now() >= query.deadline {
            complete = false;
            break;
        }
        if !path.contains(last.as_str())
            || &**path == query.path
            || path.rsplit_once('.').map_or("", |(_, e)| e) != extension
        {
            continue;
        }
        let file = file_segments(path);
        let is_file = ends_with(&file);
        if is_file || ends_with(&file[..file.len().saturating_sub(1)]) {
            files.push((is_file, shared_dirs(path, query.path), path));
        }
    }
    files.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let files = files
        .into_iter()
        .take(MAX_MODULE_FILES)
        .map(|(_, _, path)| path.clone())
        .collect();
    (files, complete)
}

/// The outlines of a module receiver's `files`: the signatures of their top-level
/// definitions, those starting with `partial` first, then the public ones.
fn module_snippets(
    r: &crate::RootSymbols,
    query: &DefinitionQuery<'_>,
    files: &[Arc<str>],
    partial: &str,
) -> Vec<Snippet> {
    let extension = query.path.rsplit_once('.').map_or("", |(_, e)| e);
    let same_package = |path: &str| parent(path) == parent(query.path);
    files
        .iter()
        .filter_map(|path| {
            let file = r.files.get(path)?;
            let mut defs: Vec<&Symbol> = file
                .symbols
                .iter()
                .filter(|s| {
                    s.container.is_none()
                        && !matches!(s.kind, DefKind::Method | DefKind::Module)
                        // Go: only a package's exported names are reachable from outside it.
                        && (extension != "go"
                            || same_package(path)
                            || s.name.starts_with(char::is_uppercase))
                })
                .collect();
            // The typed part's first, then public before private, types and functions before
            // constants and variables; each group in file order.
            defs.sort_by_key(|s| {
                let data = s.kind == DefKind::Constant;
                (!s.name.starts_with(partial), s.name.starts_with('_'), data)
            });
            defs.truncate(MAX_RECEIVER_BRIEF);
            let first = defs.iter().map(|s| s.start_line).min()?;
            let last = defs.iter().map(|s| s.end_line).max()?;
            let text = defs
                .iter()
                .filter_map(|s| s.signature.lines().next())
                .map(|l| l.trim_end_matches(['{', ' ']))
                .collect::<Vec<_>>()
                .join("\n");
            Some(Snippet {
                path: path.to_string(),
                start_line: first + 1,
                end_line: last + 1,
                text,
                source: SnippetSource::Definition,
                kind: Some("module".to_owned()),
                score: RECEIVER_BOOST,
                brief: None,
            })
        })
        .collect()
}

/// Names whose scoring [`NameCache`] keeps (a request looks up at most about a hundred).
const MAX_CACHED_NAMES: usize = 1024;

/// A definition of a name with its score before the identifier's proximity.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    path: Arc<str>,
    index: u32,
    base: f32,
    /// In the file the query is for (hidden when inside the cursor window).
    current_file: bool,
    start_line: u32,
    end_line: u32,
}

/// What the scoring of a name depends on besides the name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    root: std::path::PathBuf,
    path: String,
    imports: u64,
    generation: u64,
}

/// The scored definitions of the names looked up for one file, while the index is unchanged.
#[derive(Debug, Default)]
pub(crate) struct NameCache {
    key: Option<CacheKey>,
    names: std::collections::HashMap<String, Arc<[Candidate]>>,
    /// The files a module receiver names (see [`module_files`]), by its segments.
    modules: std::collections::HashMap<Vec<String>, Arc<[Arc<str>]>>,
}

impl NameCache {
    /// The cache, emptied first if it was filled for another key.
    fn keyed(&mut self, key: &CacheKey) -> &mut Self {
        if self.key.as_ref() != Some(key) {
            self.key = Some(key.clone());
            self.names.clear();
            self.modules.clear();
        }
        self
    }
}

/// A hash of the current file's imports, part of what a name's scoring depends on.
fn imports_hash(imports: &[Import]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for i in imports {
        h.update(i.module.as_bytes());
        h.update(&[0, u8::from(i.system)]);
        for n in &i.names {
            h.update(n.as_bytes());
            h.update(&[1]);
        }
        h.update(&[2]);
    }
    h.digest()
}

/// The definitions named `ident` that can be among the best [`PER_IDENTIFIER`] whatever the
/// cursor window: every one in the current file, and the best of the others.
fn candidates(r: &crate::RootSymbols, query: &DefinitionQuery<'_>, ident: &str) -> Vec<Candidate> {
    let Some(entries) = r.by_name.get(ident) else {
        return Vec::new();
    };
    let in_tests = is_test_path(query.path);
    // Files that define the name (entries of one file are adjacent), counted only as far as
    // telling whether there are more than MAX_FILES_PER_NAME.
    let files = entries
        .iter()
        .enumerate()
        .filter(|(i, (p, _))| *i == 0 || entries[i - 1].0 != *p)
        .take(MAX_FILES_PER_NAME + 1)
        .count();
    // A name defined in very many files (`new`, `get`) is not ranked by where it is defined,
    // unless the file imports it by name: only the current file's and its directory's
    // definitions are considered, found from the directory's files, which bounds the work per
    // name by the directory, not the workspace.
    // An imported name is ranked wherever it is defined, unless it has so many definitions
    // that walking them would cost more than a request may (Rust's `use std::fmt;` names the
    // `fmt` of every `Display` impl in the workspace; the import is from outside it).
    let common = files > MAX_FILES_PER_NAME
        && (entries.len() > MAX_DEFINITIONS_IMPORTED
            || !query
                .imports
                .iter()
                .any(|i| i.names.iter().any(|n| n == ident)));
    let here = parent(query.path);
    let mut places: Vec<(&Arc<str>, u32, u8)> = Vec::new();
    if common {
        for path in r.by_dir.get(here).into_iter().flatten() {
            let Some(file) = r.files.get(path) else {
                continue;
            };
            let m = if &**path == query.path { 3 } else { 0 };
            for (i, s) in file.symbols.iter().enumerate() {
                if s.name == ident {
                    places.push((path, i as u32, m));
                }
            }
        }
    } else {
        // Each file's place is computed once (entries of a file are adjacent).
        let mut last: Option<(&Arc<str>, u8)> = None;
        for (path, i) in entries {
            let m = match last {
                Some((p, m)) if p == path => m,
                _ => {
                    let m = if &**path == query.path {
                        3
                    } else {
                        import_match(path, query.imports, ident)
                    };
                    last = Some((path, m));
                    m
                }
            };
            places.push((path, *i, m));
        }
    }
    // The ambiguity counts the files elsewhere (for a common name, its definitions: counting
    // its files would walk them all).
    let elsewhere = if common {
        entries.len()
    } else {
        let mut n = 0;
        let mut prev: Option<&Arc<str>> = None;
        for (p, _, m) in &places {
            if *m == 0 && prev != Some(*p) {
                n += 1;
            }
            prev = Some(*p);
        }
        n
    }
    .max(1) as f32;
    let ambiguity = 1.0 + elsewhere.ln();
    let mut current = Vec::new();
    let mut others = Vec::new();
    for (path, i, m) in places {
        let place = match m {
            3 => 0.9,
            2 => 1.0,
            1 => 0.85,
            _ if parent(path) == here => 0.75 / ambiguity,
            _ => {
                let shared = shared_dirs(path, query.path) as f32;
                (0.5 + 0.05 * shared).min(0.7) / ambiguity
            }
        };
        let Some(symbol) = r.files.get(path).and_then(|f| f.symbols.get(i as usize)) else {
            continue;
        };
        let kind = if symbol.kind == DefKind::Module {
            0.5
        } else {
            1.0
        };
        // Test code is rarely what non-test code needs.
        let test = if !in_tests && is_test_path(path) {
            0.5
        } else {
            1.0
        };
        let candidate = Candidate {
            path: path.clone(),
            index: i,
            base: place * kind * test,
            current_file: m == 3,
            start_line: symbol.start_line,
            end_line: symbol.end_line,
        };
        if m == 3 {
            current.push(candidate);
        } else {
            others.push(candidate);
        }
    }
    let order = |a: &Candidate, b: &Candidate| {
        b.base
            .total_cmp(&a.base)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.start_line.cmp(&b.start_line))
    };
    // Only the best few of the others can make it: select them.
    if others.len() > PER_IDENTIFIER {
        others.select_nth_unstable_by(PER_IDENTIFIER - 1, order);
        others.truncate(PER_IDENTIFIER);
    }
    current.extend(others);
    current
}

/// Whether a key is test code: under a `test`/`tests`/`__tests__`/`spec` directory, or named
/// like a test file (`test_x.py`, `x_test.go`, `x.test.ts`, `x.spec.js`, `XTest.java`).
fn is_test_path(key: &str) -> bool {
    let mut segments = key.split('/');
    let file = segments.next_back().unwrap_or_default();
    let dir_is_test = segments.any(|d| {
        matches!(
            d,
            "test" | "tests" | "testing" | "__tests__" | "spec" | "specs" | "testdata"
        )
    });
    let stem = strip_extension(file);
    dir_is_test
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with(".test")
        || stem.ends_with(".spec")
        || (stem.ends_with("Test") && file.ends_with(".java"))
        || stem.ends_with("_tests")
}

/// The directory part of a key.
pub(crate) fn parent(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(d, _)| d)
}

/// How many leading directories two keys share.
fn shared_dirs(a: &str, b: &str) -> usize {
    parent(a)
        .split('/')
        .zip(parent(b).split('/'))
        .take_while(|(x, y)| x == y && !x.is_empty())
        .count()
}

/// Extensions stripped from import paths and file keys before comparing their segments.
const EXTENSIONS: &[&str] = &[
    ".rs", ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".go",
    ".java", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx",
];

fn strip_extension(s: &str) -> &str {
    EXTENSIONS
        .iter()
        .find_map(|e| s.strip_suffix(e))
        .unwrap_or(s)
}

/// A file key's path segments, without the extension and without the names that stand for
/// their directory (`mod.rs`, `index.ts`, `__init__.py`).
fn file_segments(key: &str) -> Vec<&str> {
    let mut segs: Vec<&str> = strip_extension(key).split('/').collect();
    if segs.len() > 1 && matches!(segs.last(), Some(&("mod" | "index" | "__init__"))) {
        segs.pop();
    }
    segs
}

/// An import's module path as segments (`crate::a::b`, `a.b`, `./a/b`, `a/b.h`).
fn module_segments(module: &str) -> Vec<&str> {
    strip_extension(module)
        .split(['/', '.', ':'])
        .filter(|s| !s.is_empty() && !matches!(*s, "crate" | "self" | "super"))
        .collect()
}

/// How well `key` matches one of `imports`: 2 when the file is what an import names (or holds
/// a name it imports), 1 when it is in the imported package's directory, 0 otherwise.
fn import_match(key: &str, imports: &[Import], ident: &str) -> u8 {
    let file = file_segments(key);
    let Some(&stem) = file.last() else { return 0 };
    let dir = file.len().checked_sub(2).map(|i| file[i]);
    let mut best = 0;
    for import in imports {
        let module = module_segments(&import.module);
        let Some(&last) = module.last() else { continue };
        let before_last = module.len().checked_sub(2).map(|i| module[i]);
        let names_it = import.names.iter().any(|n| n == ident);
        let file_match = stem == last
            || (before_last == Some(stem) && (names_it || import.names.is_empty()))
            || (dir == Some(last) && import.names.iter().any(|n| n == stem));
        if file_match {
            return 2;
        }
        if dir == Some(last) {
            best = 1;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(module: &str, names: &[&str]) -> Import {
        Import {
            module: module.to_owned(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            system: false,
        }
    }

    #[test]
    fn imports_match_files_by_language_conventions() {
        let rust = [import("crate::engine", &["Engine"])];
        assert_eq!(import_match("src/engine.rs", &rust, "Engine"), 2);
        assert_eq!(import_match("src/engine/mod.rs", &rust, "Engine"), 2);
        assert_eq!(import_match("src/other.rs", &rust, "Engine"), 0);
        let rust_item = [import("crate::engine::Engine", &[])];
        assert_eq!(import_match("src/engine.rs", &rust_item, "Engine"), 2);
        let python = [import("pkg", &["util"])];
        assert_eq!(import_match("pkg/util.py", &python, "helper"), 2);
        let relative = [import(".models", &["User"])];
        assert_eq!(import_match("app/models.py", &relative, "User"), 2);
        let js = [import("./lib/router", &["Router"])];
        assert_eq!(import_match("lib/router.js", &js, "Router"), 2);
        assert_eq!(import_match("lib/router/index.ts", &js, "Router"), 2);
        let go = [import("github.com/acme/store/cache", &[])];
        assert_eq!(import_match("cache/lru.go", &go, "New"), 1);
        let java = [import("com.acme.store.Cache", &[])];
        assert_eq!(
            import_match("src/main/java/com/acme/store/Cache.java", &java, "Cache"),
            2
        );
        let c = [import("util/strbuf.h", &[])];
        assert_eq!(import_match("src/util/strbuf.h", &c, "strbuf_add"), 2);
    }

    #[test]
    fn test_paths() {
        for key in [
            "tests/a.rs",
            "pkg/test_x.py",
            "x/y_test.go",
            "src/__tests__/a.ts",
            "src/a.test.ts",
            "a.spec.js",
            "src/test/java/FooTest.java",
        ] {
            assert!(is_test_path(key), "{key}");
        }
        for key in [
            "src/testing_utils.rs",
            "src/contest.py",
            "src/lib.rs",
            "attest/a.go",
        ] {
            assert!(!is_test_path(key), "{key}");
        }
    }

    #[test]
    fn shared_directories() {
        assert_eq!(shared_dirs("a/b/c.rs", "a/b/d.rs"), 2);
        assert_eq!(shared_dirs("a/x/c.rs", "a/b/d.rs"), 1);
        assert_eq!(shared_dirs("c.rs", "d.rs"), 0);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn query<'a>(
        root: &'a Path,
        identifiers: &'a [String],
        visible: (u32, u32),
    ) -> DefinitionQuery<'a> {
        DefinitionQuery {
            root,
            path: "src/main.rs",
            identifiers,
            imports: &[],
            visible,
            receiver: None,
            max_snippets: 4,
            deadline: Instant::now() + Duration::from_secs(10),
        }
    }

    fn texts(snippets: &[Snippet]) -> Vec<(String, u32, String)> {
        snippets
            .iter()
            .map(|s| (s.path.clone(), s.start_line, format!("{:.4}", s.score)))
            .collect()
    }

    /// An index of three files under `root` that define `helper` (one of them the current
    /// file, `src/main.rs`) and `Point`.
    fn indexed(root: &Path) -> SymbolIndex {
        let index = SymbolIndex::new(1 << 20, None);
        index.add_root(root);
        index.upsert(
            root,
            "src/main.rs",
            "fn helper() {}\n\nfn main() {\n    helper();\n}\n",
        );
        index.upsert(root, "src/util.rs", "pub fn helper() -> u8 { 1 }\n");
        index.upsert(
            root,
            "lib/other.rs",
            "pub fn helper() {}\npub struct Point;\n",
        );
        index
    }

    /// Reusing a name's scoring gives what scoring it afresh gives, for any cursor window, and
    /// an index change is seen at once.
    #[test]
    fn reused_scoring_matches_fresh_scoring() {
        let root = PathBuf::from("/cache-test");
        let index = indexed(&root);
        let names = ["helper".to_owned(), "Point".to_owned()];
        for visible in [(0, 5), (2, 5), (0, 0), (3, 3)] {
            let first = index.definition_snippets(&query(&root, &names, visible));
            let again = index.definition_snippets(&query(&root, &names, visible));
            let fresh = indexed(&root);
            let expected = fresh.definition_snippets(&query(&root, &names, visible));
            assert_eq!(texts(&first), texts(&expected), "{visible:?}");
            assert_eq!(texts(&again), texts(&expected), "{visible:?}");
        }
        // The window hides the current file's own `helper` (line 0) only when it covers it.
        let hidden = index.definition_snippets(&query(&root, &names, (0, 5)));
        assert!(!hidden.iter().any(|s| s.path == "src/main.rs"));
        let shown = index.definition_snippets(&query(&root, &names, (2, 5)));
        assert!(shown.iter().any(|s| s.path == "src/main.rs"));
        // A change to the index is seen by the next lookup (`Point` was there before it).
        assert!(hidden.iter().any(|s| s.path == "lib/other.rs"));
        index.upsert(&root, "lib/other.rs", "pub fn other() {}\n");
        let after = index.definition_snippets(&query(&root, &names, (0, 5)));
        assert!(
            !after.iter().any(|s| s.path == "lib/other.rs"),
            "{:?}",
            texts(&after)
        );
    }

    /// A name defined in more than MAX_FILES_PER_NAME files is looked up among the current
    /// directory's files (and the current file): found there, not elsewhere, and a file
    /// removed from the directory is no longer found.
    #[test]
    fn a_name_defined_in_very_many_files_is_looked_up_in_the_directory() {
        let root = PathBuf::from("/common-test");
        let index = SymbolIndex::new(1 << 22, None);
        index.add_root(&root);
        for i in 0..40 {
            index.upsert(
                &root,
                &format!("far/m{i}.rs"),
                "pub fn helper() {}
",
            );
        }
        index.upsert(
            &root,
            "src/near.rs",
            "pub fn helper() -> u8 { 1 }
",
        );
        index.upsert(&root, "src/main.rs", "fn main() {\n    helper();\n}\n");
        let names = ["helper".to_owned()];
        let found = index.definition_snippets(&query(&root, &names, (0, 2)));
        let paths: Vec<&str> = found.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["src/near.rs"]);
        index.remove(&root, "src/near.rs");
        assert!(
            index
                .definition_snippets(&query(&root, &names, (0, 2)))
                .is_empty()
        );
        // Imported by name, it is ranked wherever it is defined.
        let imports = [Import {
            module: "crate::far::m3".to_owned(),
            names: names.to_vec(),
            system: false,
        }];
        let mut q = query(&root, &names, (0, 2));
        q.imports = &imports;
        let found = index.definition_snippets(&q);
        assert_eq!(found.first().map(|s| s.path.as_str()), Some("far/m3.rs"));
    }

    /// A module receiver lists the module file's top-level definitions; the files found are
    /// kept for the next keystroke, and an index change is seen at once.
    #[test]
    fn module_receivers_list_the_module_and_see_index_changes() {
        let root = PathBuf::from("/module-test");
        let index = indexed(&root);
        let receiver = tandem_syntax::Receiver {
            target: Target::Module(vec!["util".to_owned()]),
            partial: String::new(),
            own: false,
        };
        let mut q = query(&root, &[], (0, 5));
        q.receiver = Some(&receiver);
        let outline = |index: &SymbolIndex| -> Vec<(String, String)> {
            index
                .definition_snippets(&q)
                .into_iter()
                .map(|s| (s.path, s.text))
                .collect()
        };
        let util = |text: &str| vec![("src/util.rs".to_owned(), text.to_owned())];
        assert_eq!(outline(&index), util("pub fn helper() -> u8"));
        assert_eq!(
            outline(&index),
            util("pub fn helper() -> u8"),
            "again, from the cache"
        );
        index.upsert(
            &root,
            "src/util.rs",
            "pub fn helper() -> u8 { 1 }\npub fn other() {}\n",
        );
        assert_eq!(
            outline(&index),
            util("pub fn helper() -> u8\npub fn other()")
        );
        // The module moved: the files found before are not taken from the cache.
        index.remove(&root, "src/util.rs");
        index.upsert(&root, "lib/util.rs", "pub fn moved() {}\n");
        assert_eq!(
            outline(&index),
            vec![("lib/util.rs".to_owned(), "pub fn moved()".to_owned())]
        );
    }
}
