//! `tandem-bench xdr`: cross-file definition recall at a prompt budget (XDR@B).
//!
//! The corpus is a directory of `<language>/<repository>/` trees (built by
//! `crates/tandem-bench/corpus/fetch.sh`, or the committed fixture `fixtures/xdr`). For each
//! repository, every file of its language is read with the workspace's skip rules (binary,
//! over 1 MB, minified) and its definitions are taken with the tags queries
//! (`tandem_syntax::definitions`). Then, per sample:
//!
//! 1. a target line is drawn at random (seeded) among the repository's non-blank, non-comment
//!    lines whose text holds a *cross-file* identifier — defined in another file of the
//!    repository and nowhere in the current file — (lines without one are redrawn);
//! 2. the cursor goes to a token start drawn at random among those of the line at or before
//!    the last cross-file identifier (the first non-blank character is one of them), and the
//!    text from the cursor to the end of the line is removed, as a user about to type it;
//! 3. the targets are the cross-file identifiers of the hidden text as the parser sees them:
//!    not in strings or comments, not uncalled fields or properties, object or struct-literal
//!    keys or keyword-argument names ([`is_reference`]), not bound in the enclosing function
//!    (`identifiers_near` over the function up to the line end), and whose definition (the
//!    line of its signature that holds its name) is not already in the default cursor window
//!    (6000 characters before the cursor, 2000 after); module declarations are not definitions;
//! 4. the engine gets the repository in its symbol index — the current file with the hidden
//!    text removed — and, as open documents, the current file and up to `--neighbours` other
//!    files of the same directory (drawn at random), then `Engine::request` runs at the cursor
//!    for each arm and budget;
//! 5. a target is recalled when that signature line (trimmed) of one of its other-file
//!    definitions is a substring of a packed snippet or of the cursor window; a bare mention of
//!    the name does not count.
//!
//! Arms: the full engine (default sources), Jaccard windows only (`context.sources =
//! ["similar"]`) and the current file only (`context.sources = []`). Budget B is the prompt
//! budget: `backend.contextWindow = B + backend.maxTokens`. XDR@B = recalled / targets,
//! micro-averaged per language and overall. Every `Engine::request` is timed.
//!
//! Unless `--small`, a workspace of `--workspace-files` files (the corpus files, repeated under
//! `copy-N/` directories until there are enough) is indexed in one root and requests are timed
//! there, for the latency target on a 10,000-file workspace.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tandem_core::config::ContextConfig;
use tandem_core::config::{LayerSource, resolve};
use tandem_core::{Config, CursorWindow, Document, Snapshot};
use tandem_server::engine::{CompletionInput, Engine};
use tandem_syntax::Language;

use crate::rng::Rng;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The corpus: a directory of `<language>/<repository>/` trees (fetch.sh's output).
    #[arg(long)]
    pub corpus: PathBuf,
    /// `context` settings (JSON object) for every arm, on top of the defaults, to compare
    /// configurations: e.g. `{"snippetShare": 0.4}`. Each arm still sets its own `sources`.
    #[arg(long)]
    pub context: Option<String>,
    /// Samples (target lines) per repository.
    #[arg(long, default_value_t = 40)]
    pub samples: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Prompt budgets B, in tokens.
    #[arg(long, value_delimiter = ',', default_values_t = [1024u32, 2048])]
    pub budgets: Vec<u32>,
    /// Other files of the current file's directory noted as open documents.
    #[arg(long, default_value_t = 4)]
    pub neighbours: usize,
    /// Files of the large workspace whose request latency is measured.
    #[arg(long, default_value_t = 10_000)]
    pub workspace_files: usize,
    /// Requests timed on the large workspace.
    #[arg(long, default_value_t = 300)]
    pub workspace_requests: usize,
    /// Only languages whose directory name is given (repeatable; default: all).
    #[arg(long)]
    pub language: Vec<String>,
    /// Print each target of the full engine at the largest budget (recalled or missed) with the
    /// snippets it got, to stderr.
    #[arg(long)]
    pub explain: bool,
    /// A quick run for the CI smoke test: no large-workspace timing.
    #[arg(long)]
    pub small: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// `context.sourceTimeoutMs` of every arm (default: the configuration's). The deadline makes
    /// recall depend on the machine's load; a generous one measures retrieval alone.
    #[arg(long)]
    pub source_timeout_ms: Option<u64>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

/// The three arms, in report order: name and `context.sources` (`None`: the default).
const ARMS: [(&str, Option<&[&str]>); 3] = [
    ("full", None),
    ("similar", Some(&["similar"])),
    ("current", Some(&[])),
];

/// The configuration of one arm at prompt budget `budget`.
pub fn arm_config(
    sources: Option<&[&str]>,
    budget: u32,
    context: Option<&serde_json::Value>,
    source_timeout_ms: Option<u64>,
) -> anyhow::Result<Config> {
    let max_tokens = Config::default().backend.max_tokens;
    let mut layer = json!({
        "backend": { "contextWindow": budget + max_tokens },
        "context": context.cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(sources) = sources {
        layer["context"]["sources"] = json!(sources);
    }
    if let Some(ms) = source_timeout_ms {
        layer["context"]["sourceTimeoutMs"] = json!(ms);
    }
    let resolved = resolve(&[(LayerSource::InitializationOptions, layer)]);
    if !resolved.messages.is_empty() {
        bail!("configuration: {}", resolved.messages.join("; "));
    }
    resolved
        .config
        .context("the benchmark's configuration does not fit the schema")
}

/// FNV-1a, to derive a repository's seed from its name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The grammar a file of a repository in the `<language>` directory is read with, if the file
/// belongs to that language. Headers (`.h`) of a C++ repository are C++.
pub fn file_language(dir_language: &str, key: &str) -> Option<Language> {
    let by_path = Language::from_path(key);
    match dir_language {
        "rust" => by_path.filter(|l| *l == Language::Rust),
        "python" => by_path.filter(|l| *l == Language::Python),
        "javascript" => by_path.filter(|l| *l == Language::JavaScript),
        "typescript" => by_path.filter(|l| matches!(l, Language::TypeScript | Language::Tsx)),
        "go" => by_path.filter(|l| *l == Language::Go),
        "java" => by_path.filter(|l| *l == Language::Java),
        "c" => by_path.filter(|l| *l == Language::C),
        "cpp" => match by_path {
            Some(Language::Cpp) => Some(Language::Cpp),
            Some(Language::C) if key.ends_with(".h") => Some(Language::Cpp),
            _ => None,
        },
        _ => None,
    }
}

/// The LSP language id an editor would give the file.
pub(crate) fn language_id(language: Language) -> &'static str {
    match language {
        Language::Rust => "rust",
        Language::Python => "python",
        Language::JavaScript => "javascript",
        Language::TypeScript => "typescript",
        Language::Tsx => "typescriptreact",
        Language::Go => "go",
        Language::Java => "java",
        Language::C => "c",
        Language::Cpp => "cpp",
    }
}

/// A snapshot of `text` as an editor would open it.
pub(crate) fn snapshot_of(text: &str, language: Language) -> Snapshot {
    Document::new(text, 1, language_id(language)).snapshot()
}

/// One file of a repository.
pub(crate) struct SourceFile {
    pub(crate) key: String,
    pub(crate) text: Arc<str>,
    pub(crate) language: Language,
    /// Names the file defines.
    defines: HashSet<String>,
}

/// One repository: its files and, per defined name, the files and signature lines.
pub struct Repo {
    pub language: String,
    pub name: String,
    pub root: PathBuf,
    pub(crate) files: Vec<SourceFile>,
    /// name -> (file index, first signature line holding the name, trimmed).
    definitions: HashMap<String, Vec<(usize, String)>>,
}

impl Repo {
    pub fn files(&self) -> usize {
        self.files.len()
    }

    pub fn bytes(&self) -> usize {
        self.files.iter().map(|f| f.text.len()).sum()
    }
}

/// The line of a signature that names the definition (C and C++ put the return type on a line
/// of its own), trimmed; the first line when none holds the name.
fn signature_line(signature: &str, name: &str) -> String {
    signature
        .lines()
        .find(|l| contains_word(l, name))
        .or_else(|| signature.lines().next())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Whether `name` occurs in `text` as a whole identifier.
fn contains_word(text: &str, name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let start = from + i;
        let end = start + name.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char) {
            return true;
        }
        from = start + name.len().max(1);
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// Reads the repository at `root` (files of `dir_language`, the workspace's skip rules).
pub fn load_repo(dir_language: &str, root: &Path) -> Repo {
    let limits = tandem_workspace::Limits {
        max_file_bytes: 1_000_000,
        budget_bytes: u64::MAX,
    };
    let mut files = Vec::new();
    tandem_workspace::scan(root, &limits, |path, text| {
        let key = tandem_workspace::file_key(Some(root), &path);
        if let Some(language) = file_language(dir_language, &key) {
            files.push((key, text, language));
        }
    });
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut definitions: HashMap<String, Vec<(usize, String)>> = HashMap::new();
    let files: Vec<SourceFile> = files
        .into_iter()
        .enumerate()
        .map(|(i, (key, text, language))| {
            let mut defines = HashSet::new();
            for d in tandem_syntax::definitions(language, &text) {
                // `mod x;` and the like: a name space, not a signature the model needs.
                if d.kind == tandem_syntax::DefKind::Module {
                    continue;
                }
                let line = signature_line(&d.signature, &d.name);
                if line.is_empty() {
                    continue;
                }
                definitions
                    .entry(d.name.clone())
                    .or_default()
                    .push((i, line));
                defines.insert(d.name);
            }
            SourceFile {
                key,
                text: Arc::from(text),
                language,
                defines,
            }
        })
        .collect();
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Repo {
        language: dir_language.to_owned(),
        name,
        root: root.to_path_buf(),
        files,
        definitions,
    }
}

/// Whether a trimmed line is a comment (or a docstring delimiter) rather than code.
pub(crate) fn is_comment(trimmed: &str, language: Language) -> bool {
    let common = trimmed.starts_with("//")
        || trimmed.starts_with("/*")
        || trimmed.starts_with("*")
        || trimmed.starts_with("*/");
    match language {
        Language::Python => {
            trimmed.starts_with('#') || trimmed.starts_with("\"\"\"") || trimmed.starts_with("'''")
        }
        // Preprocessor lines (`#include`, `#define`) are code.
        _ => common,
    }
}

/// Identifiers of a line of code with their byte offsets, outside double-quoted strings (and
/// single-quoted ones where quotes are strings).
fn identifiers(line: &str, language: Language) -> Vec<(usize, &str)> {
    let single_quotes = matches!(
        language,
        Language::Python | Language::JavaScript | Language::TypeScript | Language::Tsx
    );
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '`' || (c == '\'' && single_quotes) {
            quote = Some(c);
            continue;
        }
        if is_ident_char(c) && !c.is_ascii_digit() {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !is_ident_char(d) {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            // Not the tail of a number or of a Rust lifetime/char (`'a`).
            out.push((i, &line[i..end]));
        } else if c.is_ascii_digit() {
            while let Some(&(_, d)) = chars.peek() {
                if !is_ident_char(d) {
                    break;
                }
                chars.next();
            }
        }
    }
    out
}

/// Whether an identifier node refers to something the tags queries can define: not a string or
/// comment, not a field or property (a member access that is not called, a struct-literal or
/// object key, a keyword argument's name). Method calls (`x.f()`) are references.
fn is_reference(node: tree_sitter::Node<'_>) -> bool {
    let kind = node.kind();
    if !kind.ends_with("identifier") || kind == "shorthand_property_identifier" {
        return false;
    }
    let Some(parent) = node.parent() else {
        return true;
    };
    let is_field = |name: &str| parent.child_by_field_name(name) == Some(node);
    let member = matches!(kind, "field_identifier" | "property_identifier")
        || (parent.kind() == "attribute" && is_field("attribute"))
        || (parent.kind() == "field_access" && is_field("field"));
    if member {
        // Only a called member is a method reference.
        return parent.parent().is_some_and(|call| {
            matches!(call.kind(), "call_expression" | "call")
                && call.child_by_field_name("function") == Some(parent)
        });
    }
    match parent.kind() {
        "shorthand_field_initializer" => false,
        "keyword_argument" => !is_field("name"),
        "pair" => !is_field("key"),
        _ => true,
    }
}

/// Token starts of a line (byte offsets): its first non-blank character, then every place a
/// word or a punctuation character starts after a different kind of character or a blank.
pub(crate) fn token_starts(line: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in line.char_indices() {
        if !c.is_whitespace() {
            let starts = match prev {
                None => true,
                Some(p) if p.is_whitespace() => true,
                Some(p) => !(is_ident_char(p) && is_ident_char(c)),
            };
            if starts {
                out.push(i);
            }
        }
        prev = Some(c);
    }
    out
}

/// One sampled cursor.
#[derive(Debug, Clone)]
pub struct Sample {
    pub file: usize,
    /// Byte offset of the cursor in the original text.
    pub cursor: usize,
    /// Byte offset of the end of the line (before its line break).
    pub line_end: usize,
    /// The cross-file identifiers of the hidden text (deduplicated, in order).
    pub names: Vec<String>,
}

/// Cross-file identifiers: defined in another file of the repository, not in `file`.
fn cross_file<'a>(repo: &Repo, file: usize, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if name.chars().count() < 2 || repo.files[file].defines.contains(name) {
            continue;
        }
        let elsewhere = repo
            .definitions
            .get(name)
            .is_some_and(|defs| defs.iter().any(|(f, _)| *f != file));
        if elsewhere && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// Draws up to `n` samples from the repository (see the module documentation).
pub fn sample(repo: &Repo, n: usize, rng: &mut Rng) -> (Vec<Sample>, usize) {
    // Every candidate line: (file, line start, line end, line number).
    let mut lines: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (f, file) in repo.files.iter().enumerate() {
        let mut start = 0;
        for (number, line) in file.text.split_inclusive('\n').enumerate() {
            let body = line.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim();
            if !trimmed.is_empty() && !is_comment(trimmed, file.language) {
                lines.push((f, start, start + body.len(), number));
            }
            start += line.len();
        }
    }
    let mut samples = Vec::new();
    let mut drawn = 0;
    let mut used: HashSet<(usize, usize)> = HashSet::new();
    let mut trees = HashMap::new();
    let max_draws = n.saturating_mul(200).max(1000);
    while samples.len() < n && drawn < max_draws && !lines.is_empty() {
        drawn += 1;
        let (f, start, end, number) = lines[rng.below(lines.len())];
        if !used.insert((f, number)) {
            continue;
        }
        let file = &repo.files[f];
        let line = &file.text[start..end];
        // Identifiers as the parser sees them: not in strings or comments.
        let tree = trees
            .entry(f)
            .or_insert_with(|| tandem_syntax::parse(file.language, file.text.as_bytes()));
        let Some(tree) = tree.as_ref() else {
            continue;
        };
        // Names bound in the enclosing function (parameters, locals) are not references to
        // definitions elsewhere: the syntax layer's `identifiers_near` leaves them out when it
        // reads the whole function up to the end of the line.
        let source = file.text.as_bytes();
        let function_start = tandem_syntax::enclosing_definition(file.language, tree, source, end)
            .filter(|d| {
                matches!(
                    d.kind,
                    tandem_syntax::DefKind::Function | tandem_syntax::DefKind::Method
                )
            })
            .map_or(start, |d| d.byte_range.start);
        let lines_above = file.text[function_start.min(start)..start]
            .matches('\n')
            .count();
        let free: HashSet<String> =
            tandem_syntax::identifiers_near(file.language, tree, source, end, lines_above)
                .into_iter()
                .collect();
        let idents: Vec<(usize, &str)> = identifiers(line, file.language)
            .into_iter()
            .filter(|(i, name)| {
                free.contains(*name)
                    && tree
                        .root_node()
                        .descendant_for_byte_range(start + i, start + i + name.len())
                        .is_some_and(is_reference)
            })
            .collect();
        let crossing: Vec<usize> = idents
            .iter()
            .filter(|(_, name)| !cross_file(repo, f, std::iter::once(*name)).is_empty())
            .map(|(i, _)| *i)
            .collect();
        let Some(&last) = crossing.last() else {
            continue;
        };
        let starts: Vec<usize> = token_starts(line)
            .into_iter()
            .filter(|&s| s <= last)
            .collect();
        let cursor_in_line = starts[rng.below(starts.len())];
        let names = cross_file(
            repo,
            f,
            idents
                .iter()
                .filter(|(i, _)| *i >= cursor_in_line)
                .map(|(_, n)| *n),
        );
        if names.is_empty() {
            continue;
        }
        samples.push(Sample {
            file: f,
            cursor: start + cursor_in_line,
            line_end: end,
            names,
        });
    }
    (samples, drawn)
}

/// Counts of one arm at one budget.
#[derive(Debug, Clone, Default)]
pub struct Recall {
    pub targets: usize,
    pub recalled: usize,
    /// Targets whose name is nowhere in the cursor window, and how many of them were recalled.
    pub unseen: usize,
    pub unseen_recalled: usize,
    /// Targets with exactly one definition in the other files (no same-name ambiguity), and
    /// how many of them were recalled.
    pub unique: usize,
    pub unique_recalled: usize,
    /// Targets this arm recalled and the current-file arm did not.
    pub beyond_current: usize,
}

impl Recall {
    fn add(&mut self, o: &Recall) {
        self.targets += o.targets;
        self.recalled += o.recalled;
        self.unseen += o.unseen;
        self.unseen_recalled += o.unseen_recalled;
        self.unique += o.unique;
        self.unique_recalled += o.unique_recalled;
        self.beyond_current += o.beyond_current;
    }

    fn ratio(a: usize, b: usize) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }

    fn json(&self) -> Value {
        json!({
            "targets": self.targets,
            "recalled": self.recalled,
            "xdr": Self::ratio(self.recalled, self.targets),
            "unseenTargets": self.unseen,
            "unseenRecalled": self.unseen_recalled,
            "xdrUnseen": Self::ratio(self.unseen_recalled, self.unseen),
            "uniqueTargets": self.unique,
            "uniqueRecalled": self.unique_recalled,
            "xdrUnique": Self::ratio(self.unique_recalled, self.unique),
            "beyondCurrent": self.beyond_current,
        })
    }
}

/// The measurement of one repository (or a sum of them).
#[derive(Debug, Clone, Default)]
pub struct RepoResult {
    pub language: String,
    pub name: String,
    pub files: usize,
    pub bytes: usize,
    pub samples: usize,
    pub drawn: usize,
    /// Per (arm index, budget index).
    pub recall: Vec<Vec<Recall>>,
    /// Per arm: the time of each `Engine::request`.
    pub times: Vec<Vec<Duration>>,
}

impl RepoResult {
    fn empty(budgets: usize) -> RepoResult {
        RepoResult {
            recall: vec![vec![Recall::default(); budgets]; ARMS.len()],
            times: vec![Vec::new(); ARMS.len()],
            ..RepoResult::default()
        }
    }

    fn add(&mut self, o: &RepoResult) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.samples += o.samples;
        self.drawn += o.drawn;
        for (a, row) in o.recall.iter().enumerate() {
            for (b, r) in row.iter().enumerate() {
                self.recall[a][b].add(r);
            }
        }
        for (a, t) in o.times.iter().enumerate() {
            self.times[a].extend_from_slice(t);
        }
    }
}

/// (p50, p95) in milliseconds.
pub fn percentiles(times: &[Duration]) -> Option<(f64, f64)> {
    if times.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.95)))
}

/// Whether a definition's signature line is in the request's packed context.
fn in_request(line: &str, request: &tandem_core::CompletionRequest) -> bool {
    request.snippets.iter().any(|s| s.text.contains(line))
        || request.prefix.contains(line)
        || request.suffix.contains(line)
}

/// Prints one sample's targets and snippets (`--explain`).
fn explain(
    file: &SourceFile,
    s: &Sample,
    targets: &[(&str, Vec<&str>, bool)],
    recalled: &[bool],
    request: &tandem_core::CompletionRequest,
) {
    let line_start = file.text[..s.cursor].rfind('\n').map_or(0, |i| i + 1);
    eprintln!(
        "-- {}:{}  {}\u{2588}{}",
        file.key,
        file.text[..s.cursor].matches('\n').count() + 1,
        file.text[line_start..s.cursor].trim_start(),
        &file.text[s.cursor..s.line_end]
    );
    for ((name, lines, unseen), hit) in targets.iter().zip(recalled) {
        eprintln!(
            "   {} {name}{}: {}",
            if *hit { "HIT " } else { "MISS" },
            if *unseen { " (name not in window)" } else { "" },
            lines.first().copied().unwrap_or_default()
        );
    }
    for sn in &request.snippets {
        eprintln!(
            "   snippet {:?} {}:{}-{} {}",
            sn.source,
            sn.path,
            sn.start_line,
            sn.end_line,
            sn.text.lines().next().unwrap_or_default()
        );
    }
}

/// Indexes a repository into a fresh engine's symbol index.
pub(crate) fn engine_for(repo: &Repo) -> Engine {
    let engine = Engine::new(Config::default().workspace.index_budget_bytes);
    let symbols = engine.symbols();
    symbols.add_root(&repo.root);
    let files: Vec<(String, Arc<str>)> = repo
        .files
        .iter()
        .map(|f| (f.key.clone(), f.text.clone()))
        .collect();
    symbols.upsert_many(&repo.root, &files);
    engine
}

/// Runs every sample of one repository through every arm and budget.
pub fn run_repo(repo: &Repo, args: &Args, configs: &[Vec<Config>], rng: &mut Rng) -> RepoResult {
    let mut result = RepoResult::empty(args.budgets.len());
    result.language = repo.language.clone();
    result.name = repo.name.clone();
    result.files = repo.files();
    result.bytes = repo.bytes();
    let (samples, drawn) = sample(repo, args.samples, rng);
    result.samples = samples.len();
    result.drawn = drawn;
    if samples.is_empty() {
        return result;
    }
    let engine = engine_for(repo);
    let symbols = engine.symbols().clone();
    let default_window = ContextConfig::default();
    for s in &samples {
        let file = &repo.files[s.file];
        let mut text = String::with_capacity(file.text.len());
        text.push_str(&file.text[..s.cursor]);
        text.push_str(&file.text[s.line_end..]);
        let offset = file.text[..s.cursor].chars().count();
        let snapshot = snapshot_of(&text, file.language);
        // The targets: definitions not already in the default cursor window.
        let window = CursorWindow::at(&snapshot.rope, offset, &default_window);
        let mut targets: Vec<(&str, Vec<&str>, bool)> = Vec::new();
        for name in &s.names {
            let lines: Vec<&str> = repo
                .definitions
                .get(name)
                .map(|defs| {
                    defs.iter()
                        .filter(|(f, _)| *f != s.file)
                        .map(|(_, l)| l.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let visible = lines
                .iter()
                .any(|l| window.prefix.contains(l) || window.suffix.contains(l));
            if lines.is_empty() || visible {
                continue;
            }
            let seen = contains_word(&window.prefix, name) || contains_word(&window.suffix, name);
            targets.push((name, lines, !seen));
        }
        if targets.is_empty() {
            continue;
        }
        // The hidden text is removed before anything is indexed.
        symbols.upsert(&repo.root, &file.key, &text);
        engine.note_document(Some(&repo.root), &file.key, snapshot.clone());
        let dir = file.key.rsplit_once('/').map_or("", |(d, _)| d);
        let mut siblings: Vec<usize> = (0..repo.files.len())
            .filter(|&i| {
                i != s.file && repo.files[i].key.rsplit_once('/').map_or("", |(d, _)| d) == dir
            })
            .collect();
        let mut neighbours = Vec::new();
        while neighbours.len() < args.neighbours && !siblings.is_empty() {
            neighbours.push(siblings.swap_remove(rng.below(siblings.len())));
        }
        for &i in &neighbours {
            let n = &repo.files[i];
            engine.note_document(Some(&repo.root), &n.key, snapshot_of(&n.text, n.language));
        }
        let input = CompletionInput {
            snapshot,
            offset,
            path: file.key.clone(),
            root: Some(repo.root.clone()),
        };
        // recalled[arm][budget][target]
        let mut recalled = vec![vec![vec![false; targets.len()]; args.budgets.len()]; ARMS.len()];
        for (a, per_budget) in configs.iter().enumerate() {
            for (b, config) in per_budget.iter().enumerate() {
                let started = Instant::now();
                let request = engine.request(&input, config);
                result.times[a].push(started.elapsed());
                let request = match request {
                    Ok((_, request)) => request,
                    Err(e) => {
                        tracing::warn!(repo = %repo.name, "request failed: {e}");
                        continue;
                    }
                };
                for (t, (_, lines, _)) in targets.iter().enumerate() {
                    recalled[a][b][t] = lines.iter().any(|l| in_request(l, &request));
                }
                if args.explain && a == 0 && b + 1 == args.budgets.len() {
                    explain(file, s, &targets, &recalled[a][b], &request);
                }
            }
        }
        let current = &recalled[ARMS.len() - 1];
        for (per_budget, hits) in result.recall.iter_mut().zip(&recalled) {
            for ((r, hits), current) in per_budget.iter_mut().zip(hits).zip(current) {
                for (((_, lines, unseen), &hit), &by_current) in
                    targets.iter().zip(hits).zip(current)
                {
                    let unique = lines.len() == 1;
                    r.unique += usize::from(unique);
                    r.unique_recalled += usize::from(unique && hit);
                    r.targets += 1;
                    r.recalled += usize::from(hit);
                    r.unseen += usize::from(*unseen);
                    r.unseen_recalled += usize::from(*unseen && hit);
                    r.beyond_current += usize::from(hit && !by_current);
                }
            }
        }
        engine.forget_document(&file.key);
        for &i in &neighbours {
            engine.forget_document(&repo.files[i].key);
        }
        symbols.upsert(&repo.root, &file.key, &file.text);
    }
    result
}

/// The `<language>/<repository>` directories of the corpus, sorted.
pub(crate) fn repositories(
    corpus: &Path,
    only: &[String],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut languages: Vec<PathBuf> = std::fs::read_dir(corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    languages.sort();
    for dir in languages {
        let Some(language) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if language.starts_with('.') || (!only.is_empty() && !only.contains(&language)) {
            continue;
        }
        let mut repos: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        repos.sort();
        out.extend(repos.into_iter().map(|r| (language.clone(), r)));
    }
    Ok(out)
}

/// Request latency on one large root: the corpus files repeated until there are `files`.
pub struct WorkspaceTiming {
    pub files: usize,
    pub bytes: usize,
    pub index_time: Duration,
    pub symbols: usize,
    pub times: Vec<Duration>,
}

fn workspace_timing(
    repos: &[Repo],
    samples: &[(usize, Sample)],
    args: &Args,
    config: &Config,
) -> Option<WorkspaceTiming> {
    let total: usize = repos.iter().map(Repo::files).sum();
    if total == 0 || samples.is_empty() {
        return None;
    }
    let root = PathBuf::from("/xdr-workspace");
    let mut files: Vec<(String, Arc<str>)> = Vec::with_capacity(args.workspace_files);
    let mut copy = 0;
    'fill: loop {
        for repo in repos {
            for f in &repo.files {
                if files.len() >= args.workspace_files {
                    break 'fill;
                }
                files.push((
                    format!("copy-{copy}/{}/{}/{}", repo.language, repo.name, f.key),
                    f.text.clone(),
                ));
            }
        }
        copy += 1;
    }
    let engine = Engine::new(Config::default().workspace.index_budget_bytes);
    let symbols = engine.symbols().clone();
    symbols.add_root(&root);
    let started = Instant::now();
    symbols.upsert_many(&root, &files);
    let index_time = started.elapsed();
    let stats = symbols.stats(Some(&root));
    let mut times = Vec::new();
    for i in 0..args.workspace_requests {
        let (r, s) = &samples[i % samples.len()];
        let repo = &repos[*r];
        let file = &repo.files[s.file];
        let key = format!("copy-0/{}/{}/{}", repo.language, repo.name, file.key);
        let mut text = String::with_capacity(file.text.len());
        text.push_str(&file.text[..s.cursor]);
        text.push_str(&file.text[s.line_end..]);
        symbols.upsert(&root, &key, &text);
        let snapshot = snapshot_of(&text, file.language);
        engine.note_document(Some(&root), &key, snapshot.clone());
        let input = CompletionInput {
            snapshot,
            offset: file.text[..s.cursor].chars().count(),
            path: key.clone(),
            root: Some(root.clone()),
        };
        let started = Instant::now();
        let ok = engine.request(&input, config).is_ok();
        if ok {
            times.push(started.elapsed());
        }
        engine.forget_document(&key);
        symbols.upsert(&root, &key, &file.text);
    }
    Some(WorkspaceTiming {
        files: files.len(),
        bytes: files.iter().map(|(_, t)| t.len()).sum(),
        index_time,
        symbols: stats.symbols,
        times,
    })
}

/// The whole report.
pub struct Report {
    /// `context.sourceTimeoutMs` of every arm.
    pub source_timeout_ms: u64,
    pub budgets: Vec<u32>,
    pub repos: Vec<RepoResult>,
    pub workspace: Option<WorkspaceTiming>,
}

impl Report {
    /// Sums per language (sorted) and overall.
    pub fn by_language(&self) -> Vec<RepoResult> {
        let mut langs: Vec<String> = self.repos.iter().map(|r| r.language.clone()).collect();
        langs.sort();
        langs.dedup();
        let mut out = Vec::new();
        for l in langs {
            let mut sum = RepoResult::empty(self.budgets.len());
            sum.language = l.clone();
            for r in self.repos.iter().filter(|r| r.language == l) {
                sum.add(r);
            }
            out.push(sum);
        }
        let mut all = RepoResult::empty(self.budgets.len());
        all.language = "overall".to_owned();
        for r in &self.repos {
            all.add(r);
        }
        out.push(all);
        out
    }

    /// XDR per language and arm and budget, counting what `pick` gives: (recalled, targets).
    fn recall_table(
        &self,
        out: &mut impl Write,
        title: &str,
        pick: impl Fn(&Recall) -> (usize, usize),
    ) -> std::io::Result<()> {
        writeln!(out, "XDR, {title}:")?;
        write!(
            out,
            "{:<11} {:>5} {:>6} {:>7}",
            "language", "repos", "files", "targets"
        )?;
        for b in &self.budgets {
            for (arm, _) in ARMS {
                write!(out, " {:>13}", format!("{arm}@{b}"))?;
            }
        }
        writeln!(out)?;
        for r in self.by_language() {
            let repos = if r.language == "overall" {
                self.repos.len()
            } else {
                self.repos
                    .iter()
                    .filter(|x| x.language == r.language)
                    .count()
            };
            let targets = r
                .recall
                .first()
                .and_then(|b| b.first())
                .map_or(0, |x| pick(x).1);
            write!(
                out,
                "{:<11} {:>5} {:>6} {:>7}",
                r.language, repos, r.files, targets
            )?;
            for b in 0..self.budgets.len() {
                for row in &r.recall {
                    let (hit, of) = pick(&row[b]);
                    let cell = match Recall::ratio(hit, of) {
                        Some(x) => format!("{x:.3}"),
                        None => "-".to_owned(),
                    };
                    write!(out, " {cell:>13}")?;
                }
            }
            writeln!(out)?;
        }
        Ok(())
    }

    pub fn json(&self) -> Value {
        let row = |r: &RepoResult| {
            let arms: serde_json::Map<String, Value> = ARMS
                .iter()
                .enumerate()
                .map(|(a, (name, _))| {
                    let per_budget: serde_json::Map<String, Value> = self
                        .budgets
                        .iter()
                        .enumerate()
                        .map(|(b, budget)| (budget.to_string(), r.recall[a][b].json()))
                        .collect();
                    let (p50, p95) = percentiles(&r.times[a]).unzip();
                    (
                        (*name).to_owned(),
                        json!({ "budgets": per_budget, "requestMs": { "p50": p50, "p95": p95 } }),
                    )
                })
                .collect();
            json!({
                "language": r.language,
                "name": r.name,
                "files": r.files,
                "bytes": r.bytes,
                "samples": r.samples,
                "drawn": r.drawn,
                "arms": arms,
            })
        };
        let workspace = self.workspace.as_ref().map(|w| {
            let (p50, p95) = percentiles(&w.times).unzip();
            json!({
                "files": w.files,
                "bytes": w.bytes,
                "symbols": w.symbols,
                "indexMs": w.index_time.as_secs_f64() * 1000.0,
                "requests": w.times.len(),
                "requestMs": { "p50": p50, "p95": p95 },
            })
        });
        json!({
            "sourceTimeoutMs": self.source_timeout_ms,
            "budgets": self.budgets,
            "arms": ARMS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            "languages": self.by_language().iter().map(row).collect::<Vec<_>>(),
            "repositories": self.repos.iter().map(row).collect::<Vec<_>>(),
            "workspace": workspace,
        })
    }

    pub fn table(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "context.sourceTimeoutMs = {}", self.source_timeout_ms)?;
        self.recall_table(out, "all targets", |r| (r.recalled, r.targets))?;
        writeln!(out)?;
        self.recall_table(out, "targets with one definition in the other files", |r| {
            (r.unique_recalled, r.unique)
        })?;
        writeln!(out)?;
        self.recall_table(
            out,
            "targets whose name is nowhere in the cursor window",
            |r| (r.unseen_recalled, r.unseen),
        )?;
        let all = self
            .by_language()
            .pop()
            .unwrap_or_else(|| RepoResult::empty(0));
        writeln!(out)?;
        for (a, (arm, _)) in ARMS.iter().enumerate() {
            if let Some((p50, p95)) = percentiles(&all.times[a]) {
                writeln!(
                    out,
                    "context assembly ({arm}): p50 {p50:.2} ms, p95 {p95:.2} ms over {} requests",
                    all.times[a].len()
                )?;
            }
        }
        if let Some(w) = &self.workspace
            && let Some((p50, p95)) = percentiles(&w.times)
        {
            writeln!(
                out,
                "workspace of {} files ({} MB, {} symbols, indexed in {:.1} s): context assembly p50 {p50:.2} ms, p95 {p95:.2} ms over {} requests",
                w.files,
                w.bytes / 1_000_000,
                w.symbols,
                w.index_time.as_secs_f64(),
                w.times.len()
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    if args.budgets.is_empty() {
        bail!("--budgets is empty");
    }
    let context: Option<serde_json::Value> = match &args.context {
        Some(text) => Some(serde_json::from_str(text).context("--context is not JSON")?),
        None => None,
    };
    let configs: Vec<Vec<Config>> = ARMS
        .iter()
        .map(|(_, sources)| {
            args.budgets
                .iter()
                .map(|&b| arm_config(*sources, b, context.as_ref(), args.source_timeout_ms))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<_>>()?;
    let mut repos = Vec::new();
    let mut results = Vec::new();
    let mut all_samples: Vec<(usize, Sample)> = Vec::new();
    for (language, root) in repositories(&args.corpus, &args.language)? {
        let started = Instant::now();
        let repo = load_repo(&language, &root);
        if repo.files.is_empty() {
            eprintln!("xdr: {}: no {language} files", root.display());
            continue;
        }
        // Each repository draws from its own stream, so that its samples do not depend on which
        // other repositories run (`--language`) or on `--small`.
        let mut rng = Rng(args.seed ^ fnv1a(&format!("{language}/{}", repo.name)));
        let result = run_repo(&repo, args, &configs, &mut rng);
        eprintln!(
            "xdr: {language}/{}: {} files, {} samples of {} drawn, {:.1} s",
            repo.name,
            result.files,
            result.samples,
            result.drawn,
            started.elapsed().as_secs_f64()
        );
        if !args.small {
            // A few cursors per repository for the large-workspace timing.
            let mut rng = Rng(!args.seed ^ fnv1a(&format!("{language}/{}", repo.name)));
            let (s, _) = sample(&repo, 10, &mut rng);
            all_samples.extend(s.into_iter().map(|s| (repos.len(), s)));
        }
        results.push(result);
        repos.push(repo);
    }
    if results.is_empty() {
        bail!("no repositories under {}", args.corpus.display());
    }
    let workspace = if args.small {
        None
    } else {
        let full = configs
            .first()
            .and_then(|c| c.last())
            .context("no configuration")?;
        workspace_timing(&repos, &all_samples, args, full)
    };
    let source_timeout_ms = configs
        .first()
        .and_then(|c| c.first())
        .map_or(0, |c| c.context.source_timeout_ms);
    Ok(Report {
        source_timeout_ms,
        budgets: args.budgets.clone(),
        repos: results,
        workspace,
    })
}

pub fn main(args: &Args) -> anyhow::Result<()> {
    let report = run(args)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report.json())?)?;
    } else {
        report.table(&mut out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_whole_identifiers() {
        assert!(contains_word("let x = parse_value(y);", "parse_value"));
        assert!(!contains_word("let x = parse_values(y);", "parse_value"));
        assert!(!contains_word("reparse_value", "parse_value"));
        assert!(contains_word("a.é + value", "value"));
    }

    #[test]
    fn identifiers_skip_strings_and_numbers() {
        let ids: Vec<&str> = identifiers(r#"let s = "not_me" + f(1e5, x2);"#, Language::Rust)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(ids, ["let", "s", "f", "x2"]);
        let py: Vec<&str> = identifiers("x = 'skip' + y", Language::Python)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(py, ["x", "y"]);
    }

    #[test]
    fn token_starts_split_words_and_punctuation() {
        assert_eq!(
            token_starts("  foo.bar(x, y)"),
            [2, 5, 6, 9, 10, 11, 13, 14]
        );
    }

    #[test]
    fn signature_line_names_the_definition() {
        assert_eq!(
            signature_line("static int\nfoo(int x)", "foo"),
            "foo(int x)"
        );
        assert_eq!(signature_line("pub fn bar() {", "bar"), "pub fn bar() {");
    }

    /// The kinds of the identifier nodes at each occurrence of `name` in `source`, with
    /// whether each is a reference.
    fn references(language: Language, source: &str, name: &str) -> Vec<bool> {
        let tree = tandem_syntax::parse(language, source.as_bytes()).expect("parses");
        source
            .match_indices(name)
            .filter(|(i, _)| {
                let before = source[..*i].chars().next_back();
                let after = source[i + name.len()..].chars().next();
                !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
            })
            .map(|(i, _)| {
                tree.root_node()
                    .descendant_for_byte_range(i, i + name.len())
                    .is_some_and(is_reference)
            })
            .collect()
    }

    #[test]
    fn fields_keys_and_strings_are_not_references() {
        // A called method, a field read, a struct-literal key, a string, a plain call.
        let rust = "fn f(x: S) { x.size(); let a = x.size; S { size: 1 }; \"size\"; size(); }";
        assert_eq!(
            references(Language::Rust, rust, "size"),
            [true, false, false, false, true]
        );
        let python = "def f(o):\n    o.size()\n    o.size\n    g(size=1)\n    size()\n";
        assert_eq!(
            references(Language::Python, python, "size"),
            [true, false, false, true]
        );
        let js = "o.size(); o.size; ({ size: 1 }); size();";
        assert_eq!(
            references(Language::JavaScript, js, "size"),
            [true, false, false, true]
        );
    }

    #[test]
    fn sampling_is_deterministic_and_finds_cross_file_names() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xdr/rust/mini");
        let repo = load_repo("rust", &fixture);
        assert_eq!(repo.files(), 4);
        let (a, _) = sample(&repo, 10, &mut Rng(7));
        let (b, _) = sample(&repo, 10, &mut Rng(7));
        assert_eq!(a.len(), 10);
        let key = |s: &Sample| (s.file, s.cursor, s.names.clone());
        assert_eq!(
            a.iter().map(key).collect::<Vec<_>>(),
            b.iter().map(key).collect::<Vec<_>>()
        );
        for s in &a {
            let file = &repo.files[s.file];
            for name in &s.names {
                assert!(
                    !file.defines.contains(name),
                    "{name} is defined in {}",
                    file.key
                );
                assert!(
                    file.text[s.cursor..s.line_end].contains(name.as_str()),
                    "{name} is not in the hidden text"
                );
            }
        }
    }

    #[test]
    fn cpp_headers_are_cpp() {
        assert_eq!(file_language("cpp", "include/a.h"), Some(Language::Cpp));
        assert_eq!(file_language("c", "include/a.h"), Some(Language::C));
        assert_eq!(file_language("rust", "a.py"), None);
    }
}
