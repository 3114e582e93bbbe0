//! The four harnesses `overhead`, `store`, `keystrokes`, `memory` (and the report types that
//! `earlystop` shares).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tandem_core::{Document, LineCol, PositionEncoding, TextChange};

use crate::data::{self, Rng, TempDir, file_uri};
use crate::lsp::{self, Server};
use crate::mock::{self, MockBackend, ms};

/// How big each harness runs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub workspace_files: usize,
    pub overhead_warmup: usize,
    pub overhead_requests: usize,
    pub store_lines: usize,
    pub store_edits: usize,
    pub keystrokes_lines: usize,
    pub keystrokes_chars: usize,
    pub keystrokes_reps: usize,
    pub memory_docs: usize,
    pub memory_doc_lines: usize,
    /// Settle time before reading memory figures.
    pub memory_settle: Duration,
    /// `earlystop`: tokens in each scripted stream, the delay between them, measured runs.
    pub earlystop_tokens: usize,
    pub earlystop_delay: Duration,
    pub earlystop_reps: usize,
    /// `large`: files in the workspace, and the pause between completions while it indexes.
    pub large_files: usize,
    pub large_pause: Duration,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        workspace_files: 1200,
        overhead_warmup: 50,
        overhead_requests: 500,
        store_lines: 100_000,
        store_edits: 1_000_000,
        keystrokes_lines: 5_000,
        keystrokes_chars: 300,
        keystrokes_reps: 7,
        memory_docs: 100,
        memory_doc_lines: 2_000,
        memory_settle: Duration::from_millis(500),
        earlystop_tokens: 200,
        earlystop_delay: Duration::from_millis(2),
        earlystop_reps: 5,
        large_files: 100_000,
        large_pause: Duration::from_millis(50),
    };
    /// CI's smoke run.
    pub const SMALL: Sizes = Sizes {
        workspace_files: 20,
        overhead_warmup: 5,
        overhead_requests: 50,
        store_lines: 2_000,
        store_edits: 10_000,
        keystrokes_lines: 500,
        keystrokes_chars: 50,
        keystrokes_reps: 3,
        memory_docs: 10,
        memory_doc_lines: 200,
        memory_settle: Duration::from_millis(200),
        earlystop_tokens: 200,
        earlystop_delay: Duration::from_millis(2),
        earlystop_reps: 2,
        large_files: 2_000,
        large_pause: Duration::from_millis(20),
    };
    /// The unit test's: just enough to exercise every path.
    #[cfg(test)]
    pub const TINY: Sizes = Sizes {
        workspace_files: 5,
        overhead_warmup: 2,
        overhead_requests: 5,
        store_lines: 300,
        store_edits: 2_000,
        keystrokes_lines: 200,
        keystrokes_chars: 40,
        keystrokes_reps: 1,
        memory_docs: 3,
        memory_doc_lines: 100,
        memory_settle: Duration::from_millis(50),
        earlystop_tokens: 200,
        earlystop_delay: Duration::from_millis(1),
        earlystop_reps: 1,
        large_files: 300,
        large_pause: Duration::from_millis(5),
    };
}

/// What a harness prints: table rows, targets, and its JSON.
pub struct Report {
    pub name: &'static str,
    pub rows: Vec<(String, String)>,
    pub checks: Vec<Check>,
    pub json: Value,
}

/// A target and whether it was met.
pub struct Check {
    pub what: String,
    pub actual: String,
    pub met: bool,
}

impl Check {
    fn at_most(what: &str, actual: f64, limit: f64, unit: &str) -> Self {
        Self {
            what: format!("{what} ≤ {limit} {unit}"),
            actual: format!("{actual:.3} {unit}"),
            met: actual <= limit,
        }
    }

    fn json(&self) -> Value {
        json!({ "target": self.what, "actual": self.actual, "met": self.met })
    }
}

/// Percentiles (nearest rank) of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    pub min: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Self {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: s[s.len() - 1],
            min: s[0],
            mean: s.iter().sum::<f64>() / s.len() as f64,
        }
    }

    fn row(&self) -> String {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  (mean {:.3}, min {:.3})",
            self.p50, self.p90, self.p99, self.max, self.mean, self.min
        )
    }

    fn json(&self) -> Value {
        json!({ "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max, "mean": self.mean, "min": self.min })
    }
}

/// A started server with its home directory and backend, initialized.
struct Setup {
    server: Server,
    backend: MockBackend,
    _home: TempDir,
}

fn start(tandem: &Path, root: Option<&Path>) -> Result<Setup> {
    let backend = MockBackend::start()?;
    let home = TempDir::new("home")?;
    let mut server = Server::spawn(tandem, home.path())?;
    server
        .initialize(root, lsp::init_options(&backend.url()))
        .context("initialize failed")?;
    Ok(Setup {
        server,
        backend,
        _home: home,
    })
}

/// Writes the 400-line document the completions are asked in as `dir/open_here.rs`: its URI,
/// text and the cursor's line and UTF-16 column.
fn open_here(dir: &Path) -> Result<(String, String, u32, u32)> {
    let (text, line, col) = data::source_with_cursor(42, 400);
    let file = dir.join("open_here.rs");
    std::fs::write(&file, &text).context("cannot write the opened file")?;
    Ok((file_uri(&file), text, line, col))
}

// ---------------------------------------------------------------------------------------------
// overhead

/// The session's first completion: its round trip and the server's time before and after
/// the backend's.
pub struct First {
    pub round_trip_ms: f64,
    pub before_backend_ms: f64,
    pub after_backend_ms: f64,
}

pub struct Overhead {
    pub files: usize,
    pub workspace_bytes: u64,
    /// From `initialize` to the workspace's first scan done (completions are timed after it).
    pub indexed_ms: f64,
    pub first: First,
    pub requests: usize,
    pub non_empty: usize,
    pub connections: usize,
    pub prompt_chars: usize,
    pub completion: String,
    pub round_trip: Stats,
    pub backend: Stats,
    pub overhead: Stats,
    /// Client send to backend request read; backend response written to client response read.
    pub before_backend: Stats,
    pub after_backend: Stats,
}

pub fn overhead(tandem: &Path, sizes: &Sizes) -> Result<Overhead> {
    let ws = TempDir::new("ws")?;
    let workspace_bytes = data::write_workspace(ws.path(), sizes.workspace_files)?;
    let (uri, text, line, col) = open_here(&ws.path().join("src"))?;

    let initialized = Instant::now();
    let mut s = start(tandem, Some(ws.path()))?;
    let indexed_ms = ms(s
        .server
        .wait_indexed(Duration::from_secs(120))
        .context("the workspace was not indexed within 2 minutes")?
        - initialized);
    s.server.did_open(&uri, "rust", 1, &text)?;

    // The session's first completion, timed on its own: it builds the backend.
    let (_, response) = s.server.inline_completion(&uri, line, col)?;
    let first = match s.backend.take_hits().as_slice() {
        [hit] => First {
            round_trip_ms: ms(response.round_trip()),
            before_backend_ms: ms(hit.start.saturating_duration_since(response.sent)),
            after_backend_ms: ms(response.received.saturating_duration_since(hit.end)),
        },
        hits => bail!(
            "expected one backend request for the first completion, saw {}",
            hits.len()
        ),
    };
    for _ in 1..sizes.overhead_warmup {
        s.server.inline_completion(&uri, line, col)?;
    }
    s.backend.take_hits();

    let (mut rtt, mut backend, mut over, mut before, mut after) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut non_empty = 0;
    let mut completion = String::new();
    let mut prompt_chars = 0;
    for _ in 0..sizes.overhead_requests {
        let (items, response) = s.server.inline_completion(&uri, line, col)?;
        let hits = s.backend.take_hits();
        let [hit] = hits.as_slice() else {
            bail!(
                "expected one backend request per completion, saw {}",
                hits.len()
            );
        };
        let total = ms(response.round_trip());
        rtt.push(total);
        backend.push(hit.backend_ms());
        over.push(total - hit.backend_ms());
        before.push(ms(hit.start.saturating_duration_since(response.sent)));
        after.push(ms(response.received.saturating_duration_since(hit.end)));
        if let Some(first) = items.first() {
            non_empty += 1;
            if completion.is_empty() {
                completion = first.clone();
                prompt_chars = hit.prompt().chars().count();
            }
        }
    }
    let connections = s.backend.connections();
    let messages = s.server.messages.clone();
    s.server.shutdown()?;
    if non_empty == 0 && sizes.overhead_requests > 0 {
        bail!("no completion came back; server messages: {messages:?}");
    }
    Ok(Overhead {
        files: sizes.workspace_files,
        workspace_bytes,
        indexed_ms,
        first,
        requests: sizes.overhead_requests,
        non_empty,
        connections,
        prompt_chars,
        completion,
        round_trip: Stats::of(&rtt),
        backend: Stats::of(&backend),
        overhead: Stats::of(&over),
        before_backend: Stats::of(&before),
        after_backend: Stats::of(&after),
    })
}

impl Overhead {
    pub fn report(&self) -> Report {
        let rows = vec![
            (
                "workspace".into(),
                format!(
                    "{} files, {:.1} MB",
                    self.files,
                    self.workspace_bytes as f64 / 1e6
                ),
            ),
            (
                "workspace indexed".into(),
                format!("{:.0} ms after initialize", self.indexed_ms),
            ),
            (
                "requests".into(),
                format!("{} ({} non-empty)", self.requests, self.non_empty),
            ),
            (
                "first completion".into(),
                format!(
                    "round trip {:.2} ms (send → backend {:.2}, backend → response {:.2})",
                    self.first.round_trip_ms,
                    self.first.before_backend_ms,
                    self.first.after_backend_ms
                ),
            ),
            ("backend connections".into(), self.connections.to_string()),
            ("prompt".into(), format!("{} chars", self.prompt_chars)),
            ("round trip ms".into(), self.round_trip.row()),
            ("backend ms".into(), self.backend.row()),
            ("overhead ms (rtt − backend)".into(), self.overhead.row()),
            ("  send → backend ms".into(), self.before_backend.row()),
            ("  backend → response ms".into(), self.after_backend.row()),
        ];
        let checks = vec![
            Check::at_most("round-trip p50", self.round_trip.p50, 2.0, "ms"),
            Check::at_most("round-trip p99", self.round_trip.p99, 10.0, "ms"),
        ];
        let json = json!({
            "files": self.files,
            "workspaceBytes": self.workspace_bytes,
            "indexedMs": self.indexed_ms,
            "firstCompletion": {
                "roundTripMs": self.first.round_trip_ms,
                "beforeBackendMs": self.first.before_backend_ms,
                "afterBackendMs": self.first.after_backend_ms,
            },
            "requests": self.requests,
            "nonEmpty": self.non_empty,
            "backendConnections": self.connections,
            "promptChars": self.prompt_chars,
            "completion": self.completion,
            "roundTripMs": self.round_trip.json(),
            "backendMs": self.backend.json(),
            "overheadMs": self.overhead.json(),
            "sendToBackendMs": self.before_backend.json(),
            "backendToResponseMs": self.after_backend.json(),
        });
        Report {
            name: "overhead",
            rows,
            checks,
            json,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// store

pub struct Store {
    pub lines: usize,
    pub bytes: usize,
    pub edits: usize,
    pub inserts: usize,
    pub deletes: usize,
    pub line_splits: usize,
    pub line_joins: usize,
    pub non_ascii: usize,
    pub total_s: f64,
    pub ns_per_edit: f64,
    pub load_ms: f64,
}

/// Characters typed in the store benchmark, with a few outside ASCII and one outside the BMP.
const TYPED: &[char] = &[
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'k', 'l', 'm', 'n', 'o', 'p', 'r', 's', 't', 'u',
    'v', 'x', 'y', '_', ' ', ' ', '(', ')', '{', '}', ';', '.', ',', '=', '&', '0', '1', '2',
];

fn utf16_col(line: &[char], char_idx: usize) -> u32 {
    line[..char_idx].iter().map(|c| c.len_utf16() as u32).sum()
}

/// Pre-generates the edits against a shadow copy of the lines, so every position is valid and
/// the final text can be checked.
fn store_edits(
    text: &str,
    count: usize,
    rng: &mut Rng,
) -> (Vec<TextChange>, Vec<Vec<char>>, [usize; 5]) {
    let mut lines: Vec<Vec<char>> = text.split('\n').map(|l| l.chars().collect()).collect();
    let mut edits = Vec::with_capacity(count);
    // inserts, deletes, splits, joins, non-ASCII inserts
    let mut counts = [0usize; 5];
    let at = |l: usize, c: u32| LineCol::new(l as u32, c);
    while edits.len() < count {
        // A burst of typing at a random place, as an editor sends it.
        let mut l = rng.below(lines.len());
        let mut c = rng.below(lines[l].len() + 1);
        for _ in 0..1 + rng.below(16) {
            if edits.len() == count {
                break;
            }
            let roll = rng.below(10_000);
            if roll < 5 {
                // Enter: split the line.
                let col = utf16_col(&lines[l], c);
                let rest = lines[l].split_off(c);
                lines.insert(l + 1, rest);
                edits.push(TextChange {
                    range: Some((at(l, col), at(l, col))),
                    text: "\n".into(),
                });
                counts[2] += 1;
                l += 1;
                c = 0;
            } else if roll < 10 && l > 0 {
                // Backspace at a line start: join with the line above.
                let above = lines[l - 1].len();
                let col = utf16_col(&lines[l - 1], above);
                let line = lines.remove(l);
                l -= 1;
                lines[l].extend(line);
                edits.push(TextChange {
                    range: Some((at(l, col), at(l + 1, 0))),
                    text: String::new(),
                });
                counts[3] += 1;
                c = above;
            } else if roll < 1_500 && c > 0 {
                // Backspace.
                let end = utf16_col(&lines[l], c);
                c -= 1;
                let start = utf16_col(&lines[l], c);
                lines[l].remove(c);
                edits.push(TextChange {
                    range: Some((at(l, start), at(l, end))),
                    text: String::new(),
                });
                counts[1] += 1;
            } else {
                let ch = match rng.below(100) {
                    0 => '😀',
                    1 | 2 => 'é',
                    _ => *rng.pick(TYPED),
                };
                if !ch.is_ascii() {
                    counts[4] += 1;
                }
                let col = utf16_col(&lines[l], c);
                lines[l].insert(c, ch);
                c += 1;
                edits.push(TextChange {
                    range: Some((at(l, col), at(l, col))),
                    text: ch.to_string(),
                });
                counts[0] += 1;
            }
        }
    }
    (edits, lines, counts)
}

pub fn store(sizes: &Sizes) -> Result<Store> {
    let text = data::rust_source(11, sizes.store_lines);
    let mut rng = Rng::new(12345);
    let (edits, expected, counts) = store_edits(&text, sizes.store_edits, &mut rng);

    let loaded = Instant::now();
    let mut doc = Document::new(&text, 1, "rust");
    let load_ms = ms(loaded.elapsed());
    let started = Instant::now();
    for (i, edit) in edits.iter().enumerate() {
        doc.apply_changes(
            std::slice::from_ref(edit),
            i as i32 + 2,
            PositionEncoding::Utf16,
        );
    }
    let elapsed = started.elapsed();
    std::hint::black_box(&doc);

    let expected: String = expected
        .iter()
        .map(|l| l.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(
        *doc.rope() == expected,
        "the document's text differs from the expected text after the edits"
    );
    Ok(Store {
        lines: sizes.store_lines,
        bytes: text.len(),
        edits: edits.len(),
        inserts: counts[0],
        deletes: counts[1],
        line_splits: counts[2],
        line_joins: counts[3],
        non_ascii: counts[4],
        total_s: elapsed.as_secs_f64(),
        ns_per_edit: elapsed.as_secs_f64() * 1e9 / edits.len().max(1) as f64,
        load_ms,
    })
}

impl Store {
    pub fn report(&self) -> Report {
        let rows = vec![
            (
                "document".into(),
                format!(
                    "{} lines, {:.1} MB (loaded in {:.1} ms)",
                    self.lines,
                    self.bytes as f64 / 1e6,
                    self.load_ms
                ),
            ),
            (
                "edits".into(),
                format!(
                    "{} ({} inserts of which {} non-ASCII, {} deletes, {} line splits, {} line joins; UTF-16 positions)",
                    self.edits,
                    self.inserts,
                    self.non_ascii,
                    self.deletes,
                    self.line_splits,
                    self.line_joins
                ),
            ),
            ("total".into(), format!("{:.3} s", self.total_s)),
            ("per edit".into(), format!("{:.0} ns", self.ns_per_edit)),
            ("final text".into(), "verified against a shadow copy".into()),
        ];
        // The target is for the full million edits; smaller runs scale it.
        let limit = 2.0 * self.edits as f64 / 1_000_000.0;
        let checks = vec![Check {
            what: format!("total < {limit} s for {} edits", self.edits),
            actual: format!("{:.3} s", self.total_s),
            met: self.total_s < limit,
        }];
        let json = json!({
            "lines": self.lines,
            "bytes": self.bytes,
            "edits": self.edits,
            "inserts": self.inserts,
            "nonAsciiInserts": self.non_ascii,
            "deletes": self.deletes,
            "lineSplits": self.line_splits,
            "lineJoins": self.line_joins,
            "totalS": self.total_s,
            "nsPerEdit": self.ns_per_edit,
            "loadMs": self.load_ms,
        });
        Report {
            name: "store",
            rows,
            checks,
            json,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// keystrokes

pub struct Keystrokes {
    pub lines: usize,
    pub keystrokes: usize,
    pub totals_ms: Vec<f64>,
    pub send_ms: Vec<f64>,
    pub completion_ms: Vec<f64>,
    pub non_empty: usize,
    pub completion: String,
}

/// Exactly `n` characters (at least 40) typed at the end of a method body: statements, a comment
/// that pads to the length, and a last line `let total = ` where the completion fits.
fn typed_text(n: usize) -> String {
    const STATEMENTS: &[&str] = &[
        "\n        let mut sum = 0;",
        "\n        for item in items.iter() {\n            sum += item * 2;\n        }",
        "\n        let label = format!(\"{}: {}\", self.name, sum); // naïve ✓ 😀",
        "\n        if sum > self.weight {\n            sum -= self.weight;\n        }",
        "\n        let scaled = sum * self.weight / 3;",
    ];
    const PAD: &str = "\n        //";
    const LAST: &str = "\n        let total = ";
    let n = n.max(PAD.chars().count() + LAST.chars().count());
    let mut out = String::new();
    let len = |s: &str| s.chars().count();
    for stmt in STATEMENTS.iter().cycle() {
        if len(&out) + len(stmt) + len(PAD) + len(LAST) > n {
            break;
        }
        out.push_str(stmt);
    }
    out.push_str(PAD);
    let pad = n - len(&out) - len(LAST);
    out.extend(std::iter::repeat_n('-', pad));
    out.push_str(LAST);
    out
}

pub fn keystrokes(tandem: &Path, sizes: &Sizes) -> Result<Keystrokes> {
    let ws = TempDir::new("keys")?;
    let text = data::rust_source(77, sizes.keystrokes_lines);
    let file = ws.path().join("big.rs");
    std::fs::write(&file, &text).context("cannot write the typed-into file")?;
    let uri = file_uri(&file);
    let lines: Vec<&str> = text.lines().collect();
    // The last statement of the method that ends nearest the middle.
    let middle = lines.len() / 2;
    let end = (1..lines.len())
        .filter(|&i| lines[i] == "    }" && lines[i - 1].starts_with("        "))
        .min_by_key(|&i| i.abs_diff(middle))
        .context("no method in the generated file")?;
    let start_line = (end - 1) as u32;
    let start_col = lines[end - 1].encode_utf16().count() as u32;
    let typed = typed_text(sizes.keystrokes_chars);

    let mut s = start(tandem, Some(ws.path()))?;
    s.server
        .wait_indexed(Duration::from_secs(60))
        .context("the workspace was not indexed within a minute")?;
    let (mut totals, mut sends, mut completions) = (vec![], vec![], vec![]);
    let mut non_empty = 0;
    let mut completion = String::new();
    for _ in 0..sizes.keystrokes_reps {
        s.server.did_open(&uri, "rust", 1, &text)?;
        // A round trip, so that the open is done and the connection warm before timing.
        s.server.inline_completion(&uri, start_line, start_col)?;
        s.backend.take_hits();

        let (mut line, mut col, mut version) = (start_line, start_col, 1);
        let mut first: Option<Instant> = None;
        for ch in typed.chars() {
            version += 1;
            let pos = json!({ "line": line, "character": col });
            let sent = s.server.notify(
                "textDocument/didChange",
                json!({
                    "textDocument": { "uri": uri, "version": version },
                    "contentChanges": [{ "range": { "start": pos, "end": pos }, "text": ch.to_string() }],
                }),
            )?;
            first.get_or_insert(sent);
            if ch == '\n' {
                line += 1;
                col = 0;
            } else {
                col += ch.len_utf16() as u32;
            }
        }
        let first = first.context("nothing was typed")?;
        let (items, response) = s.server.inline_completion(&uri, line, col)?;
        totals.push(ms(response.received.saturating_duration_since(first)));
        sends.push(ms(response.sent.saturating_duration_since(first)));
        completions.push(ms(response.round_trip()));
        let hits = s.backend.take_hits();
        let prompt = hits.last().map(mock::Hit::prompt).unwrap_or_default();
        ensure!(
            prompt.contains(typed.trim_start()),
            "the backend's prompt lacks the typed text: the edits went wrong"
        );
        if let Some(item) = items.first() {
            non_empty += 1;
            completion = item.clone();
        }
        s.server.did_close(&uri)?;
    }
    s.server.shutdown()?;
    Ok(Keystrokes {
        lines: lines.len(),
        keystrokes: typed.chars().count(),
        totals_ms: totals,
        send_ms: sends,
        completion_ms: completions,
        non_empty,
        completion,
    })
}

fn median(v: &[f64]) -> f64 {
    Stats::of(v).p50
}

impl Keystrokes {
    pub fn median_ms(&self) -> f64 {
        median(&self.totals_ms)
    }

    pub fn report(&self) -> Report {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let rows = vec![
            ("document".into(), format!("{} lines", self.lines)),
            (
                "typing".into(),
                format!(
                    "{} single-character didChange, then one inline completion",
                    self.keystrokes
                ),
            ),
            (
                "runs".into(),
                format!(
                    "{} ({} with a completion)",
                    self.totals_ms.len(),
                    self.non_empty
                ),
            ),
            (
                "first didChange → completion ms".into(),
                format!(
                    "median {:.2}  [{}]",
                    self.median_ms(),
                    list(&self.totals_ms)
                ),
            ),
            (
                "  of which writing the didChanges".into(),
                format!("median {:.2} ms", median(&self.send_ms)),
            ),
            (
                "  of which the completion request".into(),
                format!("median {:.2} ms", median(&self.completion_ms)),
            ),
        ];
        let checks = vec![Check::at_most(
            "median total",
            self.median_ms(),
            100.0,
            "ms",
        )];
        let json = json!({
            "lines": self.lines,
            "keystrokes": self.keystrokes,
            "totalMs": self.totals_ms,
            "medianMs": self.median_ms(),
            "sendMs": self.send_ms,
            "completionMs": self.completion_ms,
            "nonEmpty": self.non_empty,
            "completion": self.completion,
        });
        Report {
            name: "keystrokes",
            rows,
            checks,
            json,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// memory

/// Memory figures of one server: after initialize, and after opening the documents.
struct MemoryRun {
    baseline_hwm_kib: u64,
    baseline_rss_kib: u64,
    open_hwm_kib: u64,
    open_rss_kib: u64,
    text_bytes: usize,
    completion_ok: bool,
}

/// Opens the documents as `file:` URIs (indexed by the embedded model, as an editor's files
/// are) or as `untitled:` ones (not indexed: the document store alone).
fn memory_run(tandem: &Path, sizes: &Sizes, files: bool) -> Result<MemoryRun> {
    let docs_dir = TempDir::new("docs")?;
    let mut s = start(tandem, None)?;
    let pid = s.server.pid();
    // A round trip, then let the runtime settle.
    s.server
        .inline_completion("file:///nowhere/none.rs", 0, 0)?;
    std::thread::sleep(sizes.memory_settle);
    let (baseline_hwm_kib, baseline_rss_kib) = lsp::memory_kib(pid)?;

    let mut text_bytes = 0;
    let mut last = None;
    for i in 0..sizes.memory_docs {
        let (text, line, col) = data::source_with_cursor(5000 + i as u64, sizes.memory_doc_lines);
        text_bytes += text.len();
        let uri = if files {
            file_uri(&docs_dir.path().join(format!("doc_{i}.rs")))
        } else {
            format!("untitled:doc_{i}.rs")
        };
        s.server.did_open(&uri, "rust", 1, &text)?;
        last = Some((uri, line, col));
    }
    // A completion in the last document: every open before it has been handled.
    let mut completion_ok = false;
    if let Some((uri, line, col)) = last {
        let (items, _) = s.server.inline_completion(&uri, line, col)?;
        completion_ok = !items.is_empty();
    }
    std::thread::sleep(sizes.memory_settle);
    let (open_hwm_kib, open_rss_kib) = lsp::memory_kib(pid)?;
    s.server.shutdown()?;
    Ok(MemoryRun {
        baseline_hwm_kib,
        baseline_rss_kib,
        open_hwm_kib,
        open_rss_kib,
        text_bytes,
        completion_ok,
    })
}

pub struct Memory {
    pub docs: usize,
    pub lines_per_doc: usize,
    pub text_bytes: usize,
    pub baseline_rss_kib: u64,
    pub baseline_hwm_kib: u64,
    pub open_rss_kib: u64,
    pub peak_hwm_kib: u64,
    /// The same documents opened as `untitled:`, which skips the embedded index.
    pub untitled_rss_kib: u64,
    pub untitled_hwm_kib: u64,
    pub completion_ok: bool,
}

pub fn memory(tandem: &Path, sizes: &Sizes) -> Result<Memory> {
    let files = memory_run(tandem, sizes, true)?;
    let untitled = memory_run(tandem, sizes, false)?;
    Ok(Memory {
        docs: sizes.memory_docs,
        lines_per_doc: sizes.memory_doc_lines,
        text_bytes: files.text_bytes,
        baseline_rss_kib: files.baseline_rss_kib,
        baseline_hwm_kib: files.baseline_hwm_kib,
        open_rss_kib: files.open_rss_kib,
        peak_hwm_kib: files.open_hwm_kib,
        untitled_rss_kib: untitled.open_rss_kib,
        untitled_hwm_kib: untitled.open_hwm_kib,
        completion_ok: files.completion_ok && untitled.completion_ok,
    })
}

impl Memory {
    pub fn report(&self) -> Report {
        let mib = |k: u64| k as f64 / 1024.0;
        let rows = vec![
            (
                "documents".into(),
                format!(
                    "{} × {} lines, {:.1} MiB of text",
                    self.docs,
                    self.lines_per_doc,
                    self.text_bytes as f64 / 1048576.0
                ),
            ),
            (
                "RSS after initialize (empty workspace)".into(),
                format!(
                    "{:.1} MiB (peak so far {:.1} MiB)",
                    mib(self.baseline_rss_kib),
                    mib(self.baseline_hwm_kib)
                ),
            ),
            (
                "RSS after opening".into(),
                format!("{:.1} MiB", mib(self.open_rss_kib)),
            ),
            (
                "peak RSS (VmHWM)".into(),
                format!("{:.1} MiB", mib(self.peak_hwm_kib)),
            ),
            (
                "same, opened as untitled: (no index)".into(),
                format!(
                    "RSS {:.1} MiB, peak {:.1} MiB",
                    mib(self.untitled_rss_kib),
                    mib(self.untitled_hwm_kib)
                ),
            ),
            (
                "growth per document".into(),
                format!(
                    "{:.0} KiB (text {:.0} KiB)",
                    self.open_rss_kib.saturating_sub(self.baseline_rss_kib) as f64
                        / self.docs.max(1) as f64,
                    self.text_bytes as f64 / 1024.0 / self.docs.max(1) as f64
                ),
            ),
        ];
        let json = json!({
            "docs": self.docs,
            "linesPerDoc": self.lines_per_doc,
            "textBytes": self.text_bytes,
            "baselineRssKiB": self.baseline_rss_kib,
            "baselineHwmKiB": self.baseline_hwm_kib,
            "openRssKiB": self.open_rss_kib,
            "peakHwmKiB": self.peak_hwm_kib,
            "untitledRssKiB": self.untitled_rss_kib,
            "untitledHwmKiB": self.untitled_hwm_kib,
            "completionOk": self.completion_ok,
        });
        Report {
            name: "memory",
            rows,
            checks: Vec::new(),
            json,
        }
    }
}

impl Report {
    pub fn checks_json(&self) -> Value {
        Value::Array(self.checks.iter().map(Check::json).collect())
    }
}

// ---------------------------------------------------------------------------------------------
// large

/// Completions while a large workspace is indexed: the server must answer them without
/// waiting for the index, and its memory must stay bounded.
pub struct Large {
    pub files: usize,
    pub workspace_bytes: u64,
    /// From `initialize` to the symbol index's first scan done, if seen.
    pub indexed_ms: Option<f64>,
    /// The first completion's round trip (the first request of the session: it also builds
    /// the backend's client and token counter), then those of the others answered while the
    /// workspace was being indexed.
    pub first_ms: f64,
    pub during: usize,
    pub during_rtt: Stats,
    /// Completions after indexing.
    pub after_rtt: Stats,
    pub peak_hwm_kib: u64,
    pub rss_after_kib: u64,
}

pub fn large(tandem: &Path, sizes: &Sizes) -> Result<Large> {
    let ws = TempDir::new("large")?;
    let workspace_bytes = data::write_large_workspace(ws.path(), sizes.large_files)?;
    let (uri, text, line, col) = open_here(ws.path())?;
    let initialized = Instant::now();
    let mut s = start(tandem, Some(ws.path()))?;
    s.server.did_open(&uri, "rust", 1, &text)?;
    let pid = s.server.pid();
    let mut during = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let indexed = loop {
        if let Some(at) = s.server.indexed() {
            break Some(at);
        }
        if Instant::now() >= deadline {
            break None;
        }
        let (_, response) = s.server.inline_completion(&uri, line, col)?;
        during.push(ms(response.round_trip()));
        std::thread::sleep(sizes.large_pause);
    };
    let mut after = Vec::new();
    for _ in 0..20 {
        let (_, response) = s.server.inline_completion(&uri, line, col)?;
        after.push(ms(response.round_trip()));
    }
    let (peak_hwm_kib, rss_after_kib) = lsp::memory_kib(pid)?;
    Ok(Large {
        files: sizes.large_files,
        workspace_bytes,
        indexed_ms: indexed.map(|t| ms(t - initialized)),
        first_ms: during.first().copied().unwrap_or_default(),
        during: during.len().saturating_sub(1),
        during_rtt: Stats::of(during.get(1..).unwrap_or_default()),
        after_rtt: Stats::of(&after),
        peak_hwm_kib,
        rss_after_kib,
    })
}

impl Large {
    pub fn report(&self) -> Report {
        let mib = |k: u64| k as f64 / 1024.0;
        let rows = vec![
            (
                "workspace".into(),
                format!(
                    "{} files, {:.1} MB",
                    self.files,
                    self.workspace_bytes as f64 / 1e6
                ),
            ),
            (
                "symbols indexed after".into(),
                self.indexed_ms
                    .map_or("(not within 10 minutes)".into(), |t| {
                        format!("{:.1} s after initialize", t / 1000.0)
                    }),
            ),
            (
                "first completion".into(),
                format!("round trip {:.1} ms", self.first_ms),
            ),
            (
                "completions while indexing".into(),
                format!(
                    "{} more; round trip ms {}",
                    self.during,
                    self.during_rtt.row()
                ),
            ),
            (
                "completions after".into(),
                format!("round trip ms {}", self.after_rtt.row()),
            ),
            (
                "server memory".into(),
                format!(
                    "peak RSS {:.1} MiB, RSS after {:.1} MiB",
                    mib(self.peak_hwm_kib),
                    mib(self.rss_after_kib)
                ),
            ),
        ];
        let checks = vec![
            Check::at_most(
                "completion round trip while indexing, max",
                self.during_rtt.max,
                100.0,
                "ms",
            ),
            Check::at_most("server peak RSS", mib(self.peak_hwm_kib), 1024.0, "MiB"),
        ];
        let json = json!({
            "files": self.files,
            "workspaceBytes": self.workspace_bytes,
            "indexedMs": self.indexed_ms,
            "firstCompletionMs": self.first_ms,
            "completionsWhileIndexing": self.during,
            "roundTripWhileIndexingMs": self.during_rtt.json(),
            "roundTripAfterMs": self.after_rtt.json(),
            "peakRssKib": self.peak_hwm_kib,
            "rssAfterKib": self.rss_after_kib,
        });
        Report {
            name: "large",
            rows,
            json,
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_has_the_asked_length_and_ends_where_the_completion_fits() {
        for n in [40, 50, 300] {
            let t = typed_text(n);
            assert_eq!(t.chars().count(), n);
            assert!(t.ends_with("let total = "));
        }
    }

    #[test]
    fn store_edits_replay_to_the_shadow_text() {
        let sizes = Sizes {
            store_lines: 200,
            store_edits: 5_000,
            ..Sizes::TINY
        };
        let result = store(&sizes).expect("the store replays");
        assert_eq!(result.edits, 5_000);
        assert!(result.deletes > 0 && result.non_ascii > 0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&v);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
    }
}
