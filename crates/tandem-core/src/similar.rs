//! The "similar code" context source: windows of code from other open or recently edited
//! files (and from the current file, away from the cursor) that resemble the lines before the
//! cursor, ranked by the Jaccard similarity of their word sets, as Copilot and Cody do.
//!
//! # Algorithm
//!
//! - The query is the last [`SimilarLimits::query_lines`] non-blank lines before the cursor
//!   (the cursor's line up to the cursor included).
//! - Words are runs of alphanumerics and `_` (case kept), at least 2 characters long, less a
//!   short list of keywords common to most languages.
//! - Each candidate document of the same language family is cut into windows of
//!   [`SimilarLimits::window_lines`] lines every [`SimilarLimits::stride`] lines (the last
//!   window ends at the document's last line). A window's score is |A∩B| / |A∪B| of its word
//!   set and the query's.
//! - In the current file, windows overlapping the lines already in the prompt's cursor
//!   window are skipped.
//! - Windows under [`SimilarLimits::min_score`] are dropped; of overlapping windows in one
//!   file the best is kept; at most [`SimilarLimits::per_file`] per file and
//!   [`SimilarLimits::max_snippets`] in all.
//! - The work is bounded: at most [`SimilarLimits::max_documents`] documents and
//!   [`SimilarLimits::max_bytes`] bytes of text are scanned, in the order given (callers put
//!   the most relevant documents first), and the search stops at [`SimilarLimits::deadline`];
//!   past that, what was found is returned.
//!
//! The order is deterministic: score descending, then path, then start line.

use std::collections::HashSet;

use ropey::Rope;

use crate::request::{Snippet, SnippetSource};

/// Bounds on the search; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimilarLimits {
    pub query_lines: usize,
    pub window_lines: usize,
    pub stride: usize,
    pub min_score: f32,
    pub per_file: usize,
    pub max_snippets: usize,
    pub max_documents: usize,
    pub max_bytes: usize,
    /// Stop searching at this instant and return what was found.
    pub deadline: Option<std::time::Instant>,
}

impl Default for SimilarLimits {
    fn default() -> Self {
        Self {
            query_lines: 20,
            window_lines: 20,
            stride: 10,
            min_score: 0.15,
            per_file: 2,
            max_snippets: 8,
            max_documents: 200,
            max_bytes: 2_000_000,
            deadline: None,
        }
    }
}

/// A document that snippets may come from.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Path relative to the workspace root, with `/` separators.
    pub path: &'a str,
    /// The LSP language id.
    pub language: &'a str,
    pub rope: &'a Rope,
}

/// Where the completion is asked for.
#[derive(Debug, Clone, Copy)]
pub struct SimilarQuery<'a> {
    /// The current document.
    pub rope: &'a Rope,
    /// The cursor, as a character offset (clamped).
    pub cursor: usize,
    /// The current document's path: its candidate (if any) is the current file.
    pub path: &'a str,
    pub language: &'a str,
    /// Lines (0-based, inclusive) of the current file already in the prompt.
    pub exclude_lines: (usize, usize),
}

/// Language ids whose code can stand in for each other's.
pub fn language_family(language: &str) -> &str {
    match language {
        "typescript" | "typescriptreact" | "javascript" | "javascriptreact" => "javascript",
        "c" | "cpp" | "objective-c" | "objective-cpp" => "c",
        other => other,
    }
}

/// How many other files count as open beside the target where no editor says which are: the
/// CLI (`tandem complete`, `tandem context`) and the benchmarks.
pub const OPEN_NEIGHBOURS: usize = 4;

/// The files that count as open beside `target` where no editor says which are: up to
/// [`OPEN_NEIGHBOURS`] files of the target's directory and language family, those nearest to
/// it in name order first (the files beside it in a file explorer), the one before it first
/// on a tie. `files` are (path relative to the root, language id); the chosen paths come back
/// nearest first.
pub fn open_neighbours<'a>(
    target: &str,
    target_language: &str,
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<&'a str> {
    let dir = |path: &str| path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let (target_dir, family) = (dir(target), language_family(target_language));
    let mut same: Vec<&str> = files
        .into_iter()
        .filter(|(path, language)| {
            *path != target && dir(path) == target_dir && language_family(language) == family
        })
        .map(|(path, _)| path)
        .collect();
    same.sort_unstable();
    same.dedup();
    // `same[..at]` sort before the target, `same[at..]` after it.
    let at = same.partition_point(|p| *p < target);
    let (mut before, mut after) = (at, at);
    let mut out = Vec::new();
    while out.len() < OPEN_NEIGHBOURS && (before > 0 || after < same.len()) {
        let take_before =
            before > 0 && (after >= same.len() || at - (before - 1) <= after + 1 - at);
        if take_before {
            before -= 1;
            out.push(same[before]);
        } else {
            out.push(same[after]);
            after += 1;
        }
    }
    out
}

/// Words too common to say anything about similarity.
fn is_stop_word(word: &str) -> bool {
    word.len() <= 8
        && matches!(
            word,
            "as" | "break"
                | "case"
                | "class"
                | "const"
                | "continue"
                | "def"
                | "do"
                | "else"
                | "elif"
                | "enum"
                | "false"
                | "fn"
                | "for"
                | "from"
                | "func"
                | "function"
                | "if"
                | "impl"
                | "import"
                | "in"
                | "is"
                | "let"
                | "mut"
                | "new"
                | "nil"
                | "None"
                | "not"
                | "null"
                | "or"
                | "and"
                | "pub"
                | "return"
                | "self"
                | "Self"
                | "static"
                | "struct"
                | "this"
                | "true"
                | "True"
                | "False"
                | "use"
                | "var"
                | "void"
                | "while"
                | "int"
        )
}

/// The words of `line`: runs of alphanumerics and `_`, at least 2 characters, less stop words.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '_' || (!c.is_ascii() && c.is_alphanumeric()))
    })
    .filter(|w| w.chars().nth(1).is_some() && !is_stop_word(w))
}

fn line_text(rope: &Rope, line: usize) -> std::borrow::Cow<'_, str> {
    let slice = rope.line(line);
    match slice.as_str() {
        Some(s) => s.into(),
        None => slice.to_string().into(),
    }
}

/// A word as a 64-bit FNV-1a hash: sets of these are cheap to build and compare (a collision
/// only nudges a score).
fn word_hash(word: &str) -> u64 {
    word.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Hashing for sets of word hashes: they are already hashes.
#[derive(Default, Clone, Copy)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type WordSet = HashSet<u64, std::hash::BuildHasherDefault<PassThrough>>;

/// Lines of `rope`, not counting the empty line after a final line break.
fn line_count(rope: &Rope) -> usize {
    let n = rope.len_lines();
    if n > 1 && rope.line(n - 1).len_chars() == 0 {
        n - 1
    } else {
        n
    }
}

/// The word set of the last `limits.query_lines` non-blank lines before the cursor.
fn query_words(query: &SimilarQuery<'_>, limits: &SimilarLimits) -> WordSet {
    let rope = query.rope;
    let cursor = crate::context::clamp_cursor(rope, query.cursor);
    let line = rope.char_to_line(cursor);
    let mut set = WordSet::default();
    let mut taken = 0;
    let first = rope
        .slice(rope.line_to_char(line)..cursor)
        .to_string()
        .into();
    let mut lines = std::iter::once(first).chain((0..line).rev().map(|l| line_text(rope, l)));
    while taken < limits.query_lines {
        let Some(text) = lines.next() else { break };
        if text.trim().is_empty() {
            continue;
        }
        taken += 1;
        set.extend(words(&text).map(word_hash));
    }
    set
}

/// A scored window, before it becomes a snippet.
struct Hit<'a> {
    path: &'a str,
    rope: &'a Rope,
    start: usize,
    end: usize,
    score: f32,
}

/// The windows of `candidates` most similar to the lines before the cursor; see the module
/// documentation.
pub fn similar_snippets(
    query: &SimilarQuery<'_>,
    candidates: &[Candidate<'_>],
    limits: &SimilarLimits,
) -> Vec<Snippet> {
    if limits.max_snippets == 0 || limits.per_file == 0 || limits.window_lines == 0 {
        return Vec::new();
    }
    let wanted = query_words(query, limits);
    if wanted.is_empty() {
        return Vec::new();
    }
    let family = language_family(query.language);
    let stride = limits.stride.max(1);
    let mut hits: Vec<Hit<'_>> = Vec::new();
    let mut bytes = 0usize;
    let mut documents = 0usize;
    for candidate in candidates {
        if language_family(candidate.language) != family {
            continue;
        }
        if documents >= limits.max_documents
            || bytes.saturating_add(candidate.rope.len_bytes()) > limits.max_bytes
            || limits
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
        {
            break;
        }
        documents += 1;
        bytes += candidate.rope.len_bytes();
        let current = candidate.path == query.path;
        let lines: Vec<Vec<u64>> = candidate
            .rope
            .lines()
            .take(line_count(candidate.rope))
            .map(|line| match line.as_str() {
                Some(text) => words(text).map(word_hash).collect(),
                None => words(&line.to_string()).map(word_hash).collect(),
            })
            .collect();
        let mut set: Vec<u64> = Vec::new();
        let mut start = 0;
        while start < lines.len() {
            let end = (start + limits.window_lines).min(lines.len()) - 1;
            let excluded =
                current && start <= query.exclude_lines.1 && query.exclude_lines.0 <= end;
            if !excluded {
                set.clear();
                set.extend(lines[start..=end].iter().flatten().copied());
                set.sort_unstable();
                set.dedup();
                let shared = set.iter().filter(|w| wanted.contains(*w)).count();
                let union = set.len() + wanted.len() - shared;
                let score = if union == 0 {
                    0.0
                } else {
                    shared as f32 / union as f32
                };
                if score >= limits.min_score {
                    hits.push(Hit {
                        path: candidate.path,
                        rope: candidate.rope,
                        start,
                        end,
                        score,
                    });
                }
            }
            if end + 1 >= lines.len() {
                break;
            }
            // The last window ends at the last line.
            start = (start + stride).min(lines.len().saturating_sub(limits.window_lines));
        }
    }
    let order = |a: &Hit<'_>, b: &Hit<'_>| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(b.path))
            .then_with(|| a.start.cmp(&b.start))
    };
    hits.sort_by(order);
    let mut chosen: Vec<Hit<'_>> = Vec::new();
    for hit in hits {
        if chosen.len() >= limits.max_snippets {
            break;
        }
        let same_file = chosen.iter().filter(|c| c.path == hit.path);
        let mut count = 0;
        let mut overlaps = false;
        for c in same_file {
            count += 1;
            overlaps |= c.start <= hit.end && hit.start <= c.end;
        }
        if overlaps || count >= limits.per_file {
            continue;
        }
        chosen.push(hit);
    }
    chosen
        .into_iter()
        .map(|hit| {
            let from = hit.rope.line_to_char(hit.start);
            let to = if hit.end + 1 < hit.rope.len_lines() {
                hit.rope.line_to_char(hit.end + 1)
            } else {
                hit.rope.len_chars()
            };
            let text = hit.rope.slice(from..to).to_string();
            let text = text.trim_end_matches(['\n', '\r']).to_owned();
            Snippet {
                path: hit.path.to_owned(),
                start_line: (hit.start + 1) as u32,
                end_line: (hit.end + 1) as u32,
                text,
                source: SnippetSource::Similar,
                kind: None,
                score: hit.score.clamp(0.0, 1.0),
                brief: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Runs a search: `files` are `(path, language, text)`; the one with `$0` is current,
    /// and its lines `exclude` (0-based, inclusive) are in the prompt.
    fn run(files: &[(&str, &str, &str)], exclude: (usize, usize), limits: SimilarLimits) -> String {
        let ropes: Vec<(String, String, Rope, Option<usize>)> = files
            .iter()
            .map(|(p, l, t)| {
                let cursor = t.find("$0");
                let text = t.replacen("$0", "", 1);
                let rope = Rope::from_str(&text);
                let cursor = cursor.map(|c| rope.byte_to_char(c));
                ((*p).to_owned(), (*l).to_owned(), rope, cursor)
            })
            .collect();
        let current = ropes
            .iter()
            .find(|r| r.3.is_some())
            .expect("one fixture has $0");
        let query = SimilarQuery {
            rope: &current.2,
            cursor: current.3.unwrap_or(0),
            path: &current.0,
            language: &current.1,
            exclude_lines: exclude,
        };
        let candidates: Vec<Candidate<'_>> = ropes
            .iter()
            .map(|(p, l, r, _)| Candidate {
                path: p,
                language: l,
                rope: r,
            })
            .collect();
        let snippets = similar_snippets(&query, &candidates, &limits);
        let mut out = String::new();
        for s in &snippets {
            out.push_str(&format!(
                "{}:{}-{} {:.2} {:?}\n",
                s.path,
                s.start_line,
                s.end_line,
                s.score,
                s.text.lines().next().unwrap_or("")
            ));
        }
        out
    }

    fn check(files: &[(&str, &str, &str)], exclude: (usize, usize), expect: Expect) {
        expect.assert_eq(&run(files, exclude, SimilarLimits::default()));
    }

    const HELPER: &str = "use std::io;\n\nfn parse_header(buf: &[u8]) -> Header {\n    let magic = read_u32(buf, 0);\n    let length = read_u32(buf, 4);\n    Header { magic, length }\n}\n\nfn unrelated() {\n    println!(\"something else entirely\");\n}\n";

    #[test]
    fn a_similar_function_in_another_file_is_found() {
        check(
            &[
                (
                    "src/main.rs",
                    "rust",
                    "fn parse_footer(buf: &[u8]) -> Footer {\n    let magic = read_u32(buf, 0);\n    $0\n}\n",
                ),
                ("src/helper.rs", "rust", HELPER),
                ("src/other.py", "python", HELPER),
            ],
            (0, 3),
            expect![[r#"
                src/helper.rs:1-11 0.27 "use std::io;"
            "#]],
        );
    }

    #[test]
    fn windows_stride_and_the_best_of_overlapping_ones_is_kept() {
        // 60 lines: noise, then the matching block at lines 31..=36, then noise.
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("noise_{i} = filler_{i}\n"));
        }
        text.push_str("def load_config(path):\n    with open(path) as handle:\n        data = yaml.safe_load(handle)\n    validate_schema(data)\n    return data\n\n");
        for i in 36..60 {
            text.push_str(&format!("noise_{i} = filler_{i}\n"));
        }
        check(
            &[
                (
                    "app.py",
                    "python",
                    "def load_settings(path):\n    with open(path) as handle:\n        data = yaml.safe_load(handle)\n    $0",
                ),
                ("lib/config.py", "python", &text),
            ],
            (0, 3),
            expect![[r#"
                lib/config.py:21-40 0.18 "noise_20 = filler_20"
            "#]],
        );
    }

    #[test]
    fn the_current_file_counts_away_from_the_cursor() {
        let mut text = String::from(
            "function renderButton(props) {\n  const label = props.label.trim();\n  return createElement('button', { label });\n}\n",
        );
        for i in 0..40 {
            text.push_str(&format!("// {}\n", "-".repeat(i % 7 + 1)));
        }
        text.push_str(
            "function renderLink(props) {\n  const label = props.label.trim();\n  $0\n}\n",
        );
        check(
            &[("ui/view.tsx", "typescriptreact", &text)],
            (40, 47),
            expect![[r#"
                ui/view.tsx:1-20 0.43 "function renderButton(props) {"
            "#]],
        );
        // With the whole file in the prompt, nothing is offered.
        check(
            &[("ui/view.tsx", "typescriptreact", &text)],
            (0, 47),
            expect![""],
        );
    }

    #[test]
    fn language_families_mix_js_and_ts_but_not_python() {
        let helper = "export function formatPrice(amount, currency) {\n  return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(amount);\n}\n";
        check(
            &[
                (
                    "a.ts",
                    "typescript",
                    "function formatCost(amount: number, currency: string) {\n  return new Intl.NumberFormat(locale, $0",
                ),
                ("b.js", "javascript", helper),
                ("c.py", "python", helper),
                ("d.cpp", "cpp", helper),
            ],
            (0, 1),
            expect![[r#"
                b.js:1-3 0.42 "export function formatPrice(amount, currency) {"
            "#]],
        );
    }

    #[test]
    fn caps_order_and_min_score() {
        let block = "alpha_one beta_two gamma_three delta_four\n";
        let files: Vec<(String, String)> = (0..5)
            .map(|i| (format!("f{i}.go"), block.repeat(45)))
            .collect();
        let mut all: Vec<(&str, &str, &str)> =
            vec![("main.go", "go", "alpha_one beta_two gamma_three $0")];
        all.extend(files.iter().map(|(p, t)| (p.as_str(), "go", t.as_str())));
        let limits = SimilarLimits {
            max_snippets: 5,
            ..SimilarLimits::default()
        };
        expect![[r#"
            f0.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
            f0.go:21-40 0.75 "alpha_one beta_two gamma_three delta_four"
            f1.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
            f1.go:21-40 0.75 "alpha_one beta_two gamma_three delta_four"
            f2.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
        "#]]
        .assert_eq(&run(&all, (0, 0), limits));
        // A high minimum drops everything.
        let strict = SimilarLimits {
            min_score: 0.8,
            ..SimilarLimits::default()
        };
        assert_eq!(run(&all, (0, 0), strict), "");
        // The byte bound stops the scan after the first candidates (the current file counts).
        let bounded = SimilarLimits {
            max_bytes: 40 + 45 * block.len() * 2,
            ..SimilarLimits::default()
        };
        expect![[r#"
            f0.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
            f0.go:21-40 0.75 "alpha_one beta_two gamma_three delta_four"
            f1.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
            f1.go:21-40 0.75 "alpha_one beta_two gamma_three delta_four"
        "#]]
        .assert_eq(&run(&all, (0, 0), bounded));
        let few = SimilarLimits {
            max_documents: 2,
            ..SimilarLimits::default()
        };
        expect![[r#"
            f0.go:1-20 0.75 "alpha_one beta_two gamma_three delta_four"
            f0.go:21-40 0.75 "alpha_one beta_two gamma_three delta_four"
        "#]]
        .assert_eq(&run(&all, (0, 0), few));
    }

    #[test]
    fn edge_cases() {
        // Empty documents, the cursor at the start: nothing, and no panic.
        check(
            &[("a.rs", "rust", "$0"), ("b.rs", "rust", "")],
            (0, 0),
            expect![""],
        );
        check(
            &[
                ("a.rs", "rust", "$0fn main() {}\n"),
                ("b.rs", "rust", "fn main() {}\n"),
            ],
            (0, 0),
            expect![""],
        );
        // CRLF: lines are counted the same, and the text has no trailing break.
        check(
            &[
                (
                    "a.rs",
                    "rust",
                    "let total_price = compute_total(items);\r\n$0",
                ),
                (
                    "b.rs",
                    "rust",
                    "x\r\nlet total_price = compute_total(items);\r\n",
                ),
            ],
            (0, 1),
            expect![[r#"
                b.rs:1-2 1.00 "x"
            "#]],
        );
        // Unicode words and paths.
        check(
            &[
                ("a.py", "python", "größe = berechne_größe(höhe, breite)\n$0"),
                ("ü/b.py", "python", "größe = berechne_größe(höhe, tiefe)\n"),
            ],
            (0, 1),
            expect![[r#"
                ü/b.py:1-1 0.60 "größe = berechne_größe(höhe, tiefe)"
            "#]],
        );
    }

    #[test]
    fn words_skip_keywords_and_short_tokens() {
        let w: Vec<&str> = words("let x = self.read_u32(buf, 0) + y2;").collect();
        assert_eq!(w, vec!["read_u32", "buf", "y2"]);
    }
    #[test]
    fn open_neighbours_are_the_nearest_files_of_the_directory_and_family() {
        let files = [
            ("src/a.rs", "rust"),
            ("src/b.rs", "rust"),
            ("src/c.rs", "rust"),
            ("src/d.py", "python"),
            ("src/e.rs", "rust"),
            ("src/f.rs", "rust"),
            ("src/g.rs", "rust"),
            ("src/sub/h.rs", "rust"),
            ("other/i.rs", "rust"),
        ];
        assert_eq!(
            open_neighbours("src/e.rs", "rust", files),
            ["src/c.rs", "src/f.rs", "src/b.rs", "src/g.rs"]
        );
        assert_eq!(
            open_neighbours("src/a.rs", "rust", files),
            ["src/b.rs", "src/c.rs", "src/e.rs", "src/f.rs"]
        );
        // A new file, not in the list, sits between its neighbours by name.
        assert_eq!(
            open_neighbours("src/da.ts", "typescript", [("src/x.js", "javascript")]),
            ["src/x.js"]
        );
        assert!(open_neighbours("top.rs", "rust", files).is_empty());
    }
}
