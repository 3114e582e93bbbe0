//! `tandem-bench embedded`: next-line exact match of the embedded model on held-out lines.
//!
//! For each corpus directory (one "workspace"): index every source file, then for each sampled
//! target line hide the line's text after its indentation, re-index the file without it, ask for
//! a completion at the start of the hidden text and compare the first predicted line with the
//! hidden one. The same targets are asked of the literal longest-match baseline.
//!
//! Real measurement (crates pinned by the workspace's Cargo.lock, see the `--help` of `--corpus`):
//!
//! ```sh
//! R=$(ls -d ~/.cargo/registry/src/*/ | head -1)
//! cargo run --release -p tandem-bench -- embedded --lines 300 \
//!   --corpus $R/serde_json-1.0.154/src --corpus $R/regex-syntax-0.8.12/src \
//!   --corpus $R/tokio-1.54.1/src --corpus $R/hyper-1.12.0/src \
//!   --corpus $R/clap_builder-4.6.7/src --corpus $R/ropey-1.6.1/src \
//!   --corpus $R/tree-sitter-0.25.10/binding_rust --corpus $R/syn-2.0.119/src
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tandem_core::{CompletionMode, CompletionRequest};
use tandem_models::EmbeddedIndex;

use crate::rng::Rng;

const EXTENSIONS: &[&str] = &[
    "rs", "py", "js", "jsx", "ts", "tsx", "go", "c", "h", "cc", "cpp", "hpp", "java", "kt", "rb",
    "cs", "swift",
];
const MAX_FILE_BYTES: u64 = 1_000_000;
/// The server's default cursor window.
const PREFIX_CHARS: usize = 6000;
const SUFFIX_CHARS: usize = 2000;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A workspace directory to measure on (repeatable). Default: this repository's `crates/`.
    #[arg(long)]
    pub corpus: Vec<PathBuf>,
    /// Target lines sampled per corpus.
    #[arg(long, default_value_t = 200)]
    pub lines: usize,
    /// Seed of the target sampling.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Memory budget of the index, in bytes.
    #[arg(long, default_value_t = 64_000_000)]
    pub budget: u64,
    /// `max_tokens` of each request.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: u32,
    /// Times each request this many times and keeps the fastest, to filter out scheduler noise
    /// on a busy machine.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Outcomes of one method on a set of targets.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub targets: usize,
    pub exact: usize,
    pub prefix: usize,
    pub covered: usize,
    pub latencies: Vec<Duration>,
}

impl Score {
    fn add(&mut self, predicted: Option<&str>, hidden: &str, took: Duration) {
        self.targets += 1;
        self.latencies.push(took);
        let Some(predicted) = predicted else { return };
        let first = predicted.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            return;
        }
        self.covered += 1;
        let hidden = hidden.trim();
        if first == hidden {
            self.exact += 1;
        }
        if hidden.starts_with(first) {
            self.prefix += 1;
        }
    }

    fn merge(&mut self, other: &Score) {
        self.targets += other.targets;
        self.exact += other.exact;
        self.prefix += other.prefix;
        self.covered += other.covered;
        self.latencies.extend_from_slice(&other.latencies);
    }

    fn pct(&self, n: usize) -> f64 {
        if self.targets == 0 {
            0.0
        } else {
            100.0 * n as f64 / self.targets as f64
        }
    }

    pub fn exact_pct(&self) -> f64 {
        self.pct(self.exact)
    }

    /// (mean, p50, p99) in milliseconds.
    fn latency_ms(&self) -> (f64, f64, f64) {
        if self.latencies.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let mut v: Vec<f64> = self
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (v.iter().sum::<f64>() / v.len() as f64, at(0.5), at(0.99))
    }

    fn json(&self) -> Value {
        let (mean, p50, p99) = self.latency_ms();
        json!({
            "targets": self.targets,
            "exactPct": self.exact_pct(),
            "prefixPct": self.pct(self.prefix),
            "coveragePct": self.pct(self.covered),
            "latencyMs": { "mean": mean, "p50": p50, "p99": p99 },
        })
    }
}

/// The measurement of one corpus.
#[derive(Debug, Clone, Default)]
pub struct CorpusResult {
    pub name: String,
    pub files: usize,
    pub source_bytes: usize,
    pub index_time: Duration,
    /// The slowest single upsert while indexing, and that file's line count.
    pub slowest_upsert: (Duration, usize),
    /// The steady-state upsert time of the largest file, and its line count.
    pub largest_upsert: (Duration, usize),
    pub index_bytes: usize,
    pub index_tokens: usize,
    pub model: Score,
    pub baseline: Score,
}

struct Target {
    file: usize,
    /// Byte offset of the first non-blank character of the line.
    start: usize,
    /// Byte offset of the end of the line (its `\n`, or the end of the file).
    end: usize,
}

fn language(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "rs" => "rust",
        "py" => "python",
        "js" | "jsx" => "javascript",
        "ts" | "tsx" => "typescript",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" => "cpp",
        "java" => "java",
        _ => "plaintext",
    }
}

/// Source files under `dir`, sorted, skipping hidden directories and `target`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Follows symbolic links, so a directory of links can combine several trees.
        let Ok(kind) = std::fs::metadata(&path) else {
            continue;
        };
        if kind.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                collect(&path, out)?;
            }
        } else if kind.is_file()
            && EXTENSIONS
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
            && kind.len() <= MAX_FILE_BYTES
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Roughly how many tokens a line has: word runs plus punctuation characters.
fn rough_tokens(line: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in line.chars() {
        let word = c == '_' || c.is_alphanumeric();
        if (word && !in_word) || (!word && !c.is_whitespace()) {
            count += 1;
        }
        in_word = word;
    }
    count
}

fn is_comment(trimmed: &str, path: &str) -> bool {
    let hash = matches!(path.rsplit('.').next(), Some("py" | "rb" | "sh"));
    ["//", "/*", "*", "\"\"\"", "'''", "<!--"]
        .iter()
        .any(|c| trimmed.starts_with(c))
        || (hash && trimmed.starts_with('#'))
}

fn targets_of(files: &[(String, String)], n: usize, seed: u64) -> Vec<Target> {
    let mut all = Vec::new();
    for (f, (path, text)) in files.iter().enumerate() {
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let body = line.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim();
            let indent = body.len() - body.trim_start().len();
            if i > 0
                && !trimmed.is_empty()
                && !is_comment(trimmed, path)
                && rough_tokens(trimmed) >= 2
            {
                all.push(Target {
                    file: f,
                    start: offset + indent,
                    end: offset + body.len(),
                });
            }
            offset += line.len();
        }
    }
    // Partial Fisher-Yates: the first `n` of a seeded shuffle.
    let mut rng = Rng(seed);
    let n = n.min(all.len());
    for i in 0..n {
        let j = i + rng.below(all.len() - i);
        all.swap(i, j);
    }
    all.truncate(n);
    all
}

fn window_prefix(text: &str) -> &str {
    if text.len() <= PREFIX_CHARS {
        return text;
    }
    let mut start = text.len() - PREFIX_CHARS;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let window = &text[start..];
    window.find('\n').map_or(window, |i| &window[i + 1..])
}

fn window_suffix(text: &str) -> &str {
    let mut end = text.len().min(SUFFIX_CHARS);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Measures one corpus directory.
pub fn run_corpus(dir: &Path, args: &Args) -> anyhow::Result<CorpusResult> {
    let mut paths = Vec::new();
    collect(dir, &mut paths)?;
    let mut files = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        files.push((rel, text));
    }
    if files.is_empty() {
        bail!("no source files under {}", dir.display());
    }
    let index = EmbeddedIndex::new(args.budget);
    let t0 = Instant::now();
    let mut slowest_upsert = (Duration::ZERO, 0);
    for (path, text) in &files {
        let t = Instant::now();
        index.upsert(path, text);
        slowest_upsert = slowest_upsert.max((t.elapsed(), text.lines().count()));
    }
    let index_time = t0.elapsed();
    // Steady-state upsert time of the largest file (fastest of 5; the slowest upsert above may
    // include a compaction of the whole index).
    let largest = files
        .iter()
        .max_by_key(|(_, t)| t.len())
        .map_or(0, |(_, t)| t.lines().count());
    let largest_upsert = files
        .iter()
        .max_by_key(|(_, t)| t.len())
        .map_or(Duration::ZERO, |(path, text)| {
            timed(5, || index.upsert(path, text)).1
        });
    let stats = index.stats();
    let mut result = CorpusResult {
        name: dir.to_string_lossy().into_owned(),
        files: files.len(),
        source_bytes: files.iter().map(|(_, t)| t.len()).sum(),
        index_time,
        slowest_upsert,
        largest_upsert: (largest_upsert, largest),
        index_bytes: stats.bytes,
        index_tokens: stats.tokens,
        ..CorpusResult::default()
    };
    // Set TANDEM_BENCH_DUMP=1 to see every target and both predictions on stderr.
    let dump = std::env::var_os("TANDEM_BENCH_DUMP").is_some();
    for target in targets_of(&files, args.lines, args.seed) {
        let (path, text) = &files[target.file];
        let prefix = &text[..target.start];
        let hidden = &text[target.start..target.end];
        let suffix = &text[target.end..];
        index.upsert(path, &format!("{prefix}{suffix}"));
        let req = CompletionRequest {
            prefix: window_prefix(prefix).to_owned(),
            suffix: window_suffix(suffix).to_owned(),
            snippets: Vec::new(),
            path: path.clone(),
            language: language(path).to_owned(),
            mode: CompletionMode::MultiLine,
            stop: Vec::new(),
            max_tokens: args.max_tokens,
            candidates: 1,
        };
        let (got, took) = timed(args.repeat, || index.complete(&req));
        result.model.add(got.as_deref(), hidden, took);
        let (lit, took) = timed(args.repeat, || index.complete_literal(&req));
        result.baseline.add(lit.as_deref(), hidden, took);
        if dump {
            eprintln!("{path}\n  hidden:  {hidden}\n  model:   {got:?}\n  literal: {lit:?}");
        }
        index.upsert(path, text);
    }
    Ok(result)
}

/// Runs `f` `repeat` times (at least once): its last result and its fastest time.
fn timed<T>(repeat: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        result = Some(f());
        best = best.min(t.elapsed());
    }
    match result {
        Some(r) => (r, best),
        None => (f(), Duration::ZERO),
    }
}

fn row(out: &mut impl Write, name: &str, method: &str, s: &Score) -> std::io::Result<()> {
    let (mean, p50, p99) = s.latency_ms();
    writeln!(
        out,
        "{name:<28} {method:<8} {:>6} {:>7.1} {:>7.1} {:>7.1} {:>8.3} {:>8.3} {:>8.3}",
        s.targets,
        s.exact_pct(),
        s.pct(s.prefix),
        s.pct(s.covered),
        mean,
        p50,
        p99
    )
}

fn short(name: &str) -> String {
    let parts: Vec<&str> = name.trim_end_matches('/').rsplit('/').take(2).collect();
    let s = parts.into_iter().rev().collect::<Vec<_>>().join("/");
    if s.len() > 28 {
        s[s.len() - 28..].to_owned()
    } else {
        s
    }
}

pub fn main(args: &Args) -> anyhow::Result<()> {
    let corpora = if args.corpus.is_empty() {
        let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
        vec![bench.parent().unwrap_or(bench).to_path_buf()]
    } else {
        args.corpus.clone()
    };
    let mut results = Vec::new();
    for dir in &corpora {
        results.push(run_corpus(dir, args)?);
    }
    let mut total_model = Score::default();
    let mut total_base = Score::default();
    for r in &results {
        total_model.merge(&r.model);
        total_base.merge(&r.baseline);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let corpora: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({
                    "corpus": r.name,
                    "files": r.files,
                    "sourceBytes": r.source_bytes,
                    "indexMs": r.index_time.as_secs_f64() * 1000.0,
                    "slowestUpsertMs": r.slowest_upsert.0.as_secs_f64() * 1000.0,
                    "slowestUpsertLines": r.slowest_upsert.1,
                    "largestFileUpsertMs": r.largest_upsert.0.as_secs_f64() * 1000.0,
                    "largestFileLines": r.largest_upsert.1,
                    "indexBytes": r.index_bytes,
                    "indexTokens": r.index_tokens,
                    "model": r.model.json(),
                    "baseline": r.baseline.json(),
                })
            })
            .collect();
        let v = json!({
            "seed": args.seed,
            "linesPerCorpus": args.lines,
            "corpora": corpora,
            "total": { "model": total_model.json(), "baseline": total_base.json() },
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<28} {:<8} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8}",
        "corpus", "method", "lines", "exact%", "prefix%", "cover%", "mean ms", "p50 ms", "p99 ms"
    )?;
    for r in &results {
        let name = short(&r.name);
        row(&mut out, &name, "model", &r.model)?;
        row(&mut out, "", "literal", &r.baseline)?;
    }
    row(&mut out, "TOTAL", "model", &total_model)?;
    row(&mut out, "", "literal", &total_base)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<28} {:>6} {:>10} {:>10} {:>10} {:>10} {:>22} {:>22}",
        "corpus",
        "files",
        "src KB",
        "tokens",
        "index ms",
        "index KB",
        "slowest upsert",
        "largest file upsert"
    )?;
    for r in &results {
        writeln!(
            out,
            "{:<28} {:>6} {:>10} {:>10} {:>10.1} {:>10} {:>22} {:>22}",
            short(&r.name),
            r.files,
            r.source_bytes / 1024,
            r.index_tokens,
            r.index_time.as_secs_f64() * 1000.0,
            r.index_bytes / 1024,
            format!(
                "{:.2} ms ({} lines)",
                r.slowest_upsert.0.as_secs_f64() * 1000.0,
                r.slowest_upsert.1
            ),
            format!(
                "{:.2} ms ({} lines)",
                r.largest_upsert.0.as_secs_f64() * 1000.0,
                r.largest_upsert.1
            )
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harness_runs_and_the_model_beats_the_baseline() {
        let dir = std::env::temp_dir().join(format!(
            "tandem-bench-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(dir.join("src")).expect("temp dir");
        let names = [
            "index", "login", "logout", "profile", "search", "upload", "delete", "settings",
        ];
        for (f, chunk) in names.chunks(3).enumerate() {
            let mut text = String::from("use crate::http::{Request, Response};\n\n");
            for name in chunk {
                text.push_str(&format!(
                    "pub fn handle_{name}(req: Request) -> Response {{\n    let body = render_{name}(&req);\n    \
                     log::info!(\"{name}\");\n    Response::ok(body)\n}}\n\n"
                ));
            }
            std::fs::write(dir.join(format!("src/f{f}.rs")), text).expect("write");
        }
        let args = Args {
            corpus: vec![dir.clone()],
            lines: 100,
            seed: 7,
            budget: 1 << 24,
            max_tokens: 64,
            repeat: 1,
            json: false,
        };
        let r = run_corpus(&dir, &args);
        let _ = std::fs::remove_dir_all(&dir);
        let r = r.expect("harness runs");
        assert_eq!(r.model.targets, 32, "every eligible line");
        assert!(r.model.exact > 0, "{r:?}");
        assert!(r.model.exact >= r.baseline.exact, "{r:?}");
    }

    #[test]
    fn sampling_is_deterministic_and_skips_comments() {
        let files = vec![(
            "a.rs".to_owned(),
            "fn a() {\n    // note\n    let x = 1;\n\n    x\n}\n".to_owned(),
        )];
        let a = targets_of(&files, 10, 3);
        let b = targets_of(&files, 10, 3);
        let lines = |t: &[Target]| {
            t.iter()
                .map(|t| files[0].1[t.start..t.end].to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&a), lines(&b));
        let mut got = lines(&a);
        got.sort();
        assert_eq!(got, vec!["let x = 1;"]);
    }
}
