//! The workspace symbol index: the definitions of every source file under each workspace root,
//! found by `tandem-syntax`'s tags queries and looked up by name for the definitions context
//! source ([`SymbolIndex::definition_snippets`]).
//!
//! - Files come in as text ([`SymbolIndex::upsert`], [`SymbolIndex::upsert_many`]); this crate
//!   never reads a workspace file (that is `tandem-workspace`'s job). It reads and writes only
//!   its own cache file under the user's cache directory ([`cache`]).
//! - A file is keyed by its path relative to its root and identified by the xxh3 hash of its
//!   text: an upsert of unchanged text costs a hash, and a warm start takes a file's symbols
//!   from the on-disk cache when the hash matches, without parsing.
//! - Each symbol keeps its signature and the head of its definition (at most
//!   [`MAX_TEXT_LINES`] lines and [`MAX_TEXT_BYTES`] bytes), not the whole body, so memory
//!   grows with the number of definitions, not with the size of the code. The index is bounded
//!   by a byte budget: past it, new files keep signatures only, and past twice the budget they
//!   are not indexed (logged once per root).
//!
//! Architecture invariant: nothing here fails on user input. A file that does not parse yields
//! the definitions tree-sitter could recover; a corrupt cache file is ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tandem_syntax::{DefKind, Import, Language};

pub mod cache;
mod retrieve;

pub use retrieve::DefinitionQuery;

/// Most lines of a definition kept beyond its signature.
pub const MAX_TEXT_LINES: usize = 12;
/// Most bytes of a definition's text kept.
pub const MAX_TEXT_BYTES: usize = 800;

/// One definition, as the index keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub kind: DefKind,
    pub container: Option<String>,
    /// 0-based first and last line of the whole definition.
    pub start_line: u32,
    pub end_line: u32,
    /// The definition's head, as written (see `tandem_syntax::Definition::signature`).
    pub signature: String,
    /// The first lines of the definition (signature included), cut at [`MAX_TEXT_LINES`] lines
    /// and [`MAX_TEXT_BYTES`] bytes; equal to the signature when the budget ran out.
    pub text: String,
}

/// What the index knows of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSymbols {
    /// xxh3 of the file's text.
    pub hash: u64,
    pub symbols: Vec<Symbol>,
    pub imports: Vec<Import>,
}

impl FileSymbols {
    /// Parses `text` once, without the insides of function bodies
    /// ([`tandem_syntax::parse_outline`]), and extracts its definitions and imports.
    pub fn extract(language: Language, text: &str) -> FileSymbols {
        let hash = hash_text(text);
        let Some(outline) = tandem_syntax::parse_outline(language, text.as_bytes()) else {
            return FileSymbols {
                hash,
                symbols: Vec::new(),
                imports: Vec::new(),
            };
        };
        let source = text.as_bytes();
        let lines: Vec<&str> = text.lines().collect();
        let symbols = outline
            .definitions(language, source)
            .into_iter()
            .map(|d| {
                let text = definition_head(&lines, d.start_line, d.end_line, &d.signature);
                Symbol {
                    name: d.name,
                    kind: d.kind,
                    container: d.container,
                    start_line: d.start_line,
                    end_line: d.end_line,
                    signature: d.signature,
                    text,
                }
            })
            .collect();
        FileSymbols {
            hash,
            symbols,
            imports: outline.imports(language, source),
        }
    }

    /// Roughly the heap bytes this entry holds.
    pub fn heap_bytes(&self) -> usize {
        let symbols: usize = self
            .symbols
            .iter()
            .map(|s| {
                std::mem::size_of::<Symbol>()
                    + s.name.len()
                    + s.signature.len()
                    + s.text.len()
                    + s.container.as_ref().map_or(0, String::len)
            })
            .sum();
        let imports: usize = self
            .imports
            .iter()
            .map(|i| {
                std::mem::size_of::<Import>()
                    + i.module.len()
                    + i.names.iter().map(|n| n.len() + 24).sum::<usize>()
            })
            .sum();
        std::mem::size_of::<FileSymbols>() + symbols + imports
    }

    /// The same entry keeping signatures only (when the index is over its budget).
    fn signatures_only(mut self) -> FileSymbols {
        for s in &mut self.symbols {
            s.text.clone_from(&s.signature);
        }
        self
    }
}

/// The first lines of a definition: at most [`MAX_TEXT_LINES`] lines after the signature's
/// first line, at most [`MAX_TEXT_BYTES`] bytes, dedented by the first line's indentation, and
/// never less than the signature.
fn definition_head(lines: &[&str], start: u32, end: u32, signature: &str) -> String {
    let start = start as usize;
    let end = (end as usize)
        .min(start + MAX_TEXT_LINES)
        .min(lines.len().saturating_sub(1));
    let first = lines.get(start).copied().unwrap_or_default();
    let indent = &first[..first.len() - first.trim_start().len()];
    let mut out = String::new();
    for line in lines.get(start..=end).unwrap_or_default() {
        let line = line.strip_prefix(indent).unwrap_or(line).trim_end();
        if !out.is_empty() && out.len() + line.len() + 1 > MAX_TEXT_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    // The head must hold the whole signature (a long one can outgrow the byte cap).
    let signature_start = signature.lines().next().unwrap_or_default().trim();
    if out.len() < signature.len() || !out.starts_with(signature_start) {
        return signature.to_owned();
    }
    out
}

/// The content hash files are known by (stable across runs and platforms).
pub fn hash_text(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// Sizes, for logs, `$/progress` and `tandem doctor`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    pub files: usize,
    pub symbols: usize,
    pub bytes: usize,
    /// Files taken from the on-disk cache without parsing, since the root was added.
    pub from_cache: usize,
    /// Files parsed since the root was added.
    pub parsed: usize,
}

impl std::ops::AddAssign for IndexStats {
    fn add_assign(&mut self, o: IndexStats) {
        self.files += o.files;
        self.symbols += o.symbols;
        self.bytes += o.bytes;
        self.from_cache += o.from_cache;
        self.parsed += o.parsed;
    }
}

#[derive(Debug, Default)]
pub(crate) struct RootSymbols {
    files: HashMap<Arc<str>, Arc<FileSymbols>>,
    /// Where each name is defined: the file and the symbol's index in it, in file order.
    by_name: HashMap<Box<str>, Vec<(Arc<str>, u32)>>,
    /// The files of each directory (by [`retrieve::parent`]): a name defined in very many
    /// files is looked up among the current directory's, not by walking all its definitions.
    by_dir: HashMap<Box<str>, Vec<Arc<str>>>,
    /// Entries read from the cache file, taken by upserts whose hash matches.
    cached: HashMap<String, FileSymbols>,
    stats: IndexStats,
    /// Changed since the cache file was last written.
    dirty: bool,
    /// Over budget was reported.
    warned: bool,
    /// The cache file was read.
    cache_loaded: bool,
    /// Bumped by every change of `files` (and so of `by_name`): what a lookup computed from
    /// the index stays true while this does not move.
    generation: u64,
}

impl RootSymbols {
    fn insert(&mut self, key: &str, entry: Arc<FileSymbols>) {
        self.remove(key);
        let key: Arc<str> = Arc::from(key);
        for (i, s) in entry.symbols.iter().enumerate() {
            self.by_name
                .entry(Box::from(s.name.as_str()))
                .or_default()
                .push((key.clone(), i as u32));
        }
        self.by_dir
            .entry(Box::from(retrieve::parent(&key)))
            .or_default()
            .push(key.clone());
        self.stats.files += 1;
        self.stats.symbols += entry.symbols.len();
        self.stats.bytes += entry.heap_bytes() + key.len();
        self.files.insert(key, entry);
        self.dirty = true;
        self.generation += 1;
    }

    fn remove(&mut self, key: &str) -> bool {
        let Some(old) = self.files.remove(key) else {
            return false;
        };
        self.generation += 1;
        let dir = retrieve::parent(key);
        if let Some(files) = self.by_dir.get_mut(dir) {
            files.retain(|p| &**p != key);
            if files.is_empty() {
                self.by_dir.remove(dir);
            }
        }
        for s in &old.symbols {
            if let Some(paths) = self.by_name.get_mut(s.name.as_str()) {
                paths.retain(|(p, _)| &**p != key);
                if paths.is_empty() {
                    self.by_name.remove(s.name.as_str());
                }
            }
        }
        self.stats.files -= 1;
        self.stats.symbols -= old.symbols.len();
        self.stats.bytes = self
            .stats
            .bytes
            .saturating_sub(old.heap_bytes() + key.len());
        self.dirty = true;
        true
    }
}

/// The symbol index of every workspace root.
#[derive(Debug)]
pub struct SymbolIndex {
    roots: RwLock<HashMap<PathBuf, RootSymbols>>,
    /// The definitions source's scored lookups for the last file asked about.
    names: std::sync::Mutex<retrieve::NameCache>,
    budget_bytes: AtomicUsize,
    cache_dir: RwLock<Option<PathBuf>>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// Same text as indexed: nothing to do.
    Unchanged,
    /// Taken from the on-disk cache.
    Cached,
    Parsed,
    /// Not a language with a grammar, or over the budget.
    Skipped,
}

impl SymbolIndex {
    /// An empty index bounded by `budget_bytes`, caching under `cache_dir` (`None`: no cache).
    pub fn new(budget_bytes: usize, cache_dir: Option<PathBuf>) -> SymbolIndex {
        SymbolIndex {
            roots: RwLock::new(HashMap::new()),
            names: std::sync::Mutex::new(retrieve::NameCache::default()),
            budget_bytes: AtomicUsize::new(budget_bytes),
            cache_dir: RwLock::new(cache_dir),
        }
    }

    /// Sets the budget and the cache directory (for roots added from now on).
    pub fn configure(&self, budget_bytes: usize, cache_dir: Option<PathBuf>) {
        self.budget_bytes.store(budget_bytes, Ordering::Relaxed);
        if let Ok(mut dir) = self.cache_dir.write() {
            *dir = cache_dir;
        }
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir.read().ok().and_then(|d| d.clone())
    }

    /// Starts indexing `root`: loads its cache file (if any, once) so that upserts of
    /// unchanged files skip parsing. Cheap when already done.
    pub fn add_root(&self, root: &Path) {
        let loaded = self
            .roots
            .read()
            .is_ok_and(|roots| roots.get(root).is_some_and(|r| r.cache_loaded));
        if loaded {
            return;
        }
        let cached = self
            .cache_dir()
            .map(|dir| cache::load(&dir, root))
            .unwrap_or_default();
        if let Ok(mut roots) = self.roots.write() {
            let entry = roots.entry(root.to_path_buf()).or_default();
            if !entry.cache_loaded {
                entry.cache_loaded = true;
                // Files indexed meanwhile keep their fresher entries.
                entry.cached = cached
                    .into_iter()
                    .filter(|(k, _)| !entry.files.contains_key(k.as_str()))
                    .collect();
            }
        }
    }

    /// Forgets `root` entirely.
    pub fn remove_root(&self, root: &Path) {
        if let Ok(mut roots) = self.roots.write() {
            roots.remove(root);
        }
    }

    /// Indexes the text of `key` (relative to `root`).
    pub fn upsert(&self, root: &Path, key: &str, text: &str) -> Upserted {
        let Some(language) = Language::from_path_and_text(key, text) else {
            self.remove(root, key);
            return Upserted::Skipped;
        };
        let hash = hash_text(text);
        match self.lookup_existing(root, key, hash) {
            Some(done) => done,
            None => self.store(root, key, FileSymbols::extract(language, text), true),
        }
    }

    /// Indexes many files of `root`, parsing on every core; returns what each upsert did.
    pub fn upsert_many(&self, root: &Path, files: &[(String, Arc<str>)]) -> Vec<Upserted> {
        let mut results = vec![Upserted::Skipped; files.len()];
        let mut todo: Vec<(usize, Language)> = Vec::new();
        for (i, (key, text)) in files.iter().enumerate() {
            let Some(language) = Language::from_path_and_text(key, text) else {
                self.remove(root, key);
                continue;
            };
            match self.lookup_existing(root, key, hash_text(text)) {
                Some(done) => results[i] = done,
                None => todo.push((i, language)),
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(todo.len().max(1));
        let extracted: Vec<(usize, FileSymbols)> = if threads <= 1 {
            todo.iter()
                .map(|&(i, lang)| (i, FileSymbols::extract(lang, &files[i].1)))
                .collect()
        } else {
            // Each thread takes the next file when it is done with one: file sizes vary too
            // much for fixed shares to keep every core busy to the end of a batch.
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let work = || {
                    let mut done = Vec::new();
                    while let Some(&(i, lang)) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                        done.push((i, FileSymbols::extract(lang, &files[i].1)));
                    }
                    done
                };
                // tree-sitter is not expected to panic; if it does, the files that thread
                // took are skipped and indexed again when they change.
                let panicked = |_| {
                    tracing::error!("a symbol extraction thread panicked");
                    Vec::new()
                };
                let handles: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
                // This thread works too (a panic here is contained like a spawned thread's).
                let mut extracted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                    .unwrap_or_else(panicked);
                for handle in handles {
                    extracted.extend(handle.join().unwrap_or_else(panicked));
                }
                extracted
            })
        };
        for (i, entry) in extracted {
            results[i] = self.store(root, &files[i].0, entry, true);
        }
        results
    }

    /// `Some` when `key` needs no parse: unchanged, or its symbols were in the cache file.
    fn lookup_existing(&self, root: &Path, key: &str, hash: u64) -> Option<Upserted> {
        {
            let roots = self.roots.read().ok()?;
            let r = roots.get(root)?;
            if r.files.get(key).is_some_and(|f| f.hash == hash) {
                return Some(Upserted::Unchanged);
            }
            if r.cached.get(key).is_none_or(|f| f.hash != hash) {
                return None;
            }
        }
        let mut roots = self.roots.write().ok()?;
        let r = roots.get_mut(root)?;
        let entry = r.cached.remove(key)?;
        drop(roots);
        Some(self.store(root, key, entry, false))
    }

    fn store(&self, root: &Path, key: &str, entry: FileSymbols, parsed: bool) -> Upserted {
        let Ok(mut roots) = self.roots.write() else {
            return Upserted::Skipped;
        };
        let r = roots.entry(root.to_path_buf()).or_default();
        let size = entry.heap_bytes();
        let budget = self.budget_bytes.load(Ordering::Relaxed);
        let entry = if r.stats.bytes + size <= budget {
            entry
        } else if r.stats.bytes + size <= budget.saturating_mul(2) {
            entry.signatures_only()
        } else {
            if !r.warned {
                r.warned = true;
                tracing::warn!(
                    root = %root.display(),
                    budget,
                    "the symbol index is over its budget (`workspace.symbolBudgetBytes`); \
                     further files are not indexed"
                );
            }
            r.remove(key);
            return Upserted::Skipped;
        };
        if parsed {
            r.stats.parsed += 1;
        } else {
            r.stats.from_cache += 1;
        }
        r.insert(key, Arc::new(entry));
        if parsed {
            Upserted::Parsed
        } else {
            Upserted::Cached
        }
    }

    /// Forgets a file.
    pub fn remove(&self, root: &Path, key: &str) {
        if let Ok(mut roots) = self.roots.write()
            && let Some(r) = roots.get_mut(root)
        {
            r.remove(key);
        }
    }

    /// Writes `root`'s cache file if anything changed since the last write. Entries loaded
    /// from the old cache file and never confirmed (files deleted meanwhile) are dropped.
    pub fn save(&self, root: &Path) {
        let Some(dir) = self.cache_dir() else {
            return;
        };
        let entries: Vec<(String, Arc<FileSymbols>)> = {
            let Ok(mut roots) = self.roots.write() else {
                return;
            };
            let Some(r) = roots.get_mut(root) else { return };
            if !r.dirty {
                return;
            }
            r.dirty = false;
            r.cached.clear();
            r.files
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        if let Err(e) = cache::save(&dir, root, &entries) {
            tracing::warn!(root = %root.display(), "cannot write the symbol cache: {e}");
        }
    }

    /// Sizes of one root's index, or of all of them.
    pub fn stats(&self, root: Option<&Path>) -> IndexStats {
        let Ok(roots) = self.roots.read() else {
            return IndexStats::default();
        };
        let mut total = IndexStats::default();
        for (r, symbols) in roots.iter() {
            if root.is_none_or(|want| want == r) {
                total += symbols.stats;
            }
        }
        total
    }

    /// The symbols of one file (for tests and `tandem context`).
    pub fn file(&self, root: &Path, key: &str) -> Option<Arc<FileSymbols>> {
        let roots = self.roots.read().ok()?;
        roots.get(root)?.files.get(key).cloned()
    }

    /// Every definition named `name` under `root`, with its file.
    pub fn lookup(&self, root: &Path, name: &str) -> Vec<(Arc<str>, Symbol)> {
        let Ok(roots) = self.roots.read() else {
            return Vec::new();
        };
        let Some(r) = roots.get(root) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (path, i) in r.by_name.get(name).map(Vec::as_slice).unwrap_or_default() {
            if let Some(s) = r.files.get(path).and_then(|f| f.symbols.get(*i as usize)) {
                out.push((path.clone(), s.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from("/ws")
    }

    #[test]
    fn upsert_is_idempotent_and_replaces_changed_files() {
        let index = SymbolIndex::new(1 << 20, None);
        let r = root();
        assert_eq!(
            index.upsert(&r, "src/a.rs", "pub fn alpha() {}\n"),
            Upserted::Parsed
        );
        assert_eq!(
            index.upsert(&r, "src/a.rs", "pub fn alpha() {}\n"),
            Upserted::Unchanged
        );
        assert_eq!(index.lookup(&r, "alpha").len(), 1);
        index.upsert(&r, "src/a.rs", "pub fn beta() {}\n");
        assert!(index.lookup(&r, "alpha").is_empty());
        assert_eq!(index.lookup(&r, "beta").len(), 1);
        let stats = index.stats(Some(&r));
        assert_eq!((stats.files, stats.symbols), (1, 1));
        index.remove(&r, "src/a.rs");
        assert!(index.lookup(&r, "beta").is_empty());
        assert_eq!(index.stats(None).files, 0);
        assert_eq!(index.stats(None).bytes, 0);
    }

    #[test]
    fn files_without_a_grammar_are_skipped() {
        let index = SymbolIndex::new(1 << 20, None);
        assert_eq!(
            index.upsert(&root(), "README.md", "# fn x() {}"),
            Upserted::Skipped
        );
        assert_eq!(index.stats(None).files, 0);
    }

    #[test]
    fn heads_are_cut_but_keep_the_signature() {
        let body: String = (0..40).map(|i| format!("    let v{i} = {i};\n")).collect();
        let text = format!("fn long(a: u32) -> u32 {{\n{body}    a\n}}\n");
        let entry = FileSymbols::extract(Language::Rust, &text);
        let s = &entry.symbols[0];
        assert_eq!(s.signature.lines().next(), Some("fn long(a: u32) -> u32"));
        assert!(s.text.starts_with("fn long(a: u32) -> u32 {"));
        assert_eq!(s.text.lines().count(), MAX_TEXT_LINES + 1);
        assert!(s.text.len() <= MAX_TEXT_BYTES);
    }

    #[test]
    fn over_budget_keeps_signatures_then_stops() {
        let file = |name: &str| format!("fn {name}() {{\n    body_{name}();\n}}\n");
        let one = FileSymbols::extract(Language::Rust, &file("a")).heap_bytes() + 8;
        let index = SymbolIndex::new(one * 2, None);
        let r = root();
        let mut outcomes = Vec::new();
        for i in 0..12 {
            outcomes.push(index.upsert(&r, &format!("f{i}.rs"), &file(&format!("f{i}"))));
        }
        assert!(outcomes.contains(&Upserted::Parsed));
        assert!(outcomes.contains(&Upserted::Skipped));
        assert!(index.stats(None).bytes <= one * 4 + 64);
    }

    #[test]
    fn upsert_many_matches_upsert() {
        let files: Vec<(String, Arc<str>)> = (0..20)
            .map(|i| {
                (
                    format!("m{i}.py"),
                    Arc::from(format!(
                        "def f{i}(x):\n    return x\n\nclass C{i}:\n    pass\n"
                    )),
                )
            })
            .collect();
        let many = SymbolIndex::new(1 << 20, None);
        let r = root();
        assert!(
            many.upsert_many(&r, &files)
                .iter()
                .all(|u| *u == Upserted::Parsed)
        );
        let one = SymbolIndex::new(1 << 20, None);
        for (k, t) in &files {
            one.upsert(&r, k, t);
        }
        for i in 0..20 {
            assert_eq!(
                many.file(&r, &format!("m{i}.py")),
                one.file(&r, &format!("m{i}.py"))
            );
        }
        assert_eq!(many.stats(None), one.stats(None));
    }
}
