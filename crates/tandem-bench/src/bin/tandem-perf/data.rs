//! Deterministic test data: realistic small Rust sources, workspaces of them, and temp dirs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

/// A small, fast, deterministic PRNG (xorshift64*): the same seed gives the same data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NOUNS: &[&str] = &[
    "order", "invoice", "packet", "session", "buffer", "ledger", "route", "token", "sample",
    "record", "shard", "frame", "cursor", "batch", "account", "metric",
];
const VERBS: &[&str] = &[
    "compute", "merge", "flush", "render", "encode", "decode", "validate", "collect", "resolve",
    "apply", "score", "split",
];
const UNITS: &[&str] = &["bytes", "milliseconds", "items", "cents", "lines"];
/// Comments with characters outside ASCII, some outside the BMP (two UTF-16 code units).
const UNICODE_COMMENTS: &[&str] = &[
    "// naïve café rule — keep it ✓",
    "// Größe in Bytes (ß, ü) 🚀",
    "// 数据 must stay sorted 📦",
    "// résumé of the état: ok 😀",
];

fn camel(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One method body's statements (8-space indentation), chosen among a few shapes.
fn method_body(rng: &mut Rng, noun: &str) -> Vec<String> {
    let mut out = Vec::new();
    match rng.below(4) {
        0 => {
            out.push("        let mut total = 0;".to_owned());
            out.push("        for item in items.iter() {".to_owned());
            out.push("            total += item * self.weight;".to_owned());
            out.push("        }".to_owned());
            out.push("        total".to_owned());
        }
        1 => {
            out.push(
                "        let mut seen: HashMap<u64, i64> = HashMap::with_capacity(items.len());"
                    .to_owned(),
            );
            out.push("        for (i, item) in items.iter().enumerate() {".to_owned());
            out.push("            *seen.entry(i as u64 % 7).or_default() += item;".to_owned());
            out.push("        }".to_owned());
            out.push(format!(
                "        let {noun}_max = seen.values().copied().max().unwrap_or(0);"
            ));
            out.push(format!("        {noun}_max - self.weight"));
        }
        2 => {
            out.push("        if items.is_empty() {".to_owned());
            out.push(format!(
                "            return self.id as i64; // no {noun} yet"
            ));
            out.push("        }".to_owned());
            out.push(format!(
                "        let label = format!(\"{{}}: {{}} {noun}s\", self.name, items.len());"
            ));
            out.push("        let first = items[0];".to_owned());
            out.push("        first + label.len() as i64".to_owned());
        }
        _ => {
            out.push("        items".to_owned());
            out.push("            .iter()".to_owned());
            out.push("            .filter(|v| **v > 0)".to_owned());
            out.push("            .map(|v| v * 2 + self.weight)".to_owned());
            out.push("            .sum::<i64>()".to_owned());
        }
    }
    if rng.chance(15) {
        let comment = rng.pick(UNICODE_COMMENTS);
        out.insert(0, format!("        {comment}"));
    }
    out
}

/// A realistic Rust source of about `target_lines` lines (at least a header and one item).
pub fn rust_source(seed: u64, target_lines: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut lines: Vec<String> = vec![
        format!(
            "//! The {} module: generated for benchmarking (seed {seed}).",
            rng.pick(NOUNS)
        ),
        String::new(),
        "use std::collections::HashMap;".to_owned(),
        "use std::fmt;".to_owned(),
        String::new(),
    ];
    let mut n = 0usize;
    while lines.len() < target_lines {
        n += 1;
        let noun = *rng.pick(NOUNS);
        let second = *rng.pick(NOUNS);
        let name = format!("{}{}{n}", camel(noun), camel(second));
        lines.push(format!("/// A {noun} of the {} pipeline.", rng.pick(NOUNS)));
        lines.push("#[derive(Debug, Clone, Default)]".to_owned());
        lines.push(format!("pub struct {name} {{"));
        lines.push("    pub id: u64,".to_owned());
        lines.push("    pub name: String,".to_owned());
        lines.push("    pub weight: i64,".to_owned());
        lines.push("}".to_owned());
        lines.push(String::new());
        lines.push(format!("impl {name} {{"));
        lines.push("    pub fn new(id: u64, name: &str) -> Self {".to_owned());
        lines.push("        Self { id, name: name.to_owned(), ..Self::default() }".to_owned());
        lines.push("    }".to_owned());
        for _ in 0..2 + rng.below(3) {
            let verb = rng.pick(VERBS);
            let other = rng.pick(NOUNS);
            lines.push(String::new());
            lines.push(format!(
                "    /// Returns the {other} total, in {}.",
                rng.pick(UNITS)
            ));
            lines.push(format!(
                "    pub fn {verb}_{other}(&self, items: &[i64]) -> i64 {{"
            ));
            lines.extend(method_body(&mut rng, other));
            lines.push("    }".to_owned());
        }
        lines.push("}".to_owned());
        lines.push(String::new());
        lines.push(format!("impl fmt::Display for {name} {{"));
        lines.push("    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {".to_owned());
        lines.push(format!(
            "        write!(f, \"{name}({{}}, {{}})\", self.id, self.name)"
        ));
        lines.push("    }".to_owned());
        lines.push("}".to_owned());
        lines.push(String::new());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A source with a cursor after `let total = ` in the middle of a method: where a completion
/// (`compute_total(&items);`) fits. Returns the text and the cursor (line, UTF-16 column).
pub fn source_with_cursor(seed: u64, target_lines: usize) -> (String, u32, u32) {
    let text = rust_source(seed, target_lines);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let end = lines.len() / 2;
    // The last line of a method body at or before the middle.
    let at = (1..=end.max(1))
        .rev()
        .find(|&i| lines[i] == "    }" && lines[i - 1].starts_with("        "));
    let line = match at {
        Some(i) => {
            lines.insert(i, "        let total = ".to_owned());
            i
        }
        None => {
            lines.push("fn cursor_here(items: &[i64]) -> i64 {".to_owned());
            lines.push("        let total = ".to_owned());
            lines.push("}".to_owned());
            lines.len() - 2
        }
    };
    let col = lines[line].encode_utf16().count();
    let mut out = lines.join("\n");
    out.push('\n');
    (out, line as u32, col as u32)
}

/// Writes a workspace of `files` small sources (30 to 200 lines) under `root/src/<dir>/`, 40
/// per directory, with a `Cargo.toml`.
pub fn write_workspace(root: &Path, files: usize) -> Result<u64> {
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"bench-ws\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .context("cannot write the workspace's Cargo.toml")?;
    write_sources(root, files, (7, 1000), 40, 30..200)
}

/// Writes a workspace of `files` short sources (10 to 40 lines, about 1 KB) under
/// `root/src/<dir>/`, 100 per directory: a large workspace that fits on a small disk.
pub fn write_large_workspace(root: &Path, files: usize) -> Result<u64> {
    write_sources(root, files, (11, 5000), 100, 10..40)
}

/// Writes `files` generated Rust sources of `lines` lines under `root/src/<noun>_<n>/`,
/// `per_dir` to a directory; returns their bytes. `seeds`: the names' random stream, and the
/// first source's seed (file `i` gets `seeds.1 + i`).
fn write_sources(
    root: &Path,
    files: usize,
    seeds: (u64, u64),
    per_dir: usize,
    lines: std::ops::Range<usize>,
) -> Result<u64> {
    let mut rng = Rng::new(seeds.0);
    let mut bytes = 0u64;
    for i in 0..files {
        let dir = root
            .join("src")
            .join(format!("{}_{}", rng.pick(NOUNS), i / per_dir));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let text = rust_source(seeds.1 + i as u64, lines.start + rng.below(lines.len()));
        bytes += text.len() as u64;
        let path = dir.join(format!("{}_{i}.rs", rng.pick(VERBS)));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(bytes)
}

/// A temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("tandem-perf-{}-{label}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot clear {}", path.display()))?;
        }
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // Canonical, so that file URIs match the roots the server computes.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `file://` URI for an absolute path (test paths are plain ASCII, so no escaping beyond
/// spaces is needed).
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.to_string_lossy().replace(' ', "%20"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_deterministic_and_sized() {
        let a = rust_source(3, 200);
        assert_eq!(a, rust_source(3, 200));
        let lines = a.lines().count();
        assert!((200..260).contains(&lines), "{lines} lines");
        let (text, line, col) = source_with_cursor(5, 300);
        let cursor_line = text.lines().nth(line as usize).expect("cursor line exists");
        assert_eq!(cursor_line, "        let total = ");
        assert_eq!(col, 20);
    }
}
