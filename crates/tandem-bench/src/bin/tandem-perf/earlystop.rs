//! `earlystop`: does the server stop reading, and drop the backend connection, as soon as
//! post-processing says the completion is finished? A streaming backend plays a scripted
//! stream much longer than the completion (one token per SSE event, a few milliseconds apart)
//! and counts the tokens it generated before the connection closed.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::data::{TempDir, file_uri};
use crate::harness::{Check, Report, Sizes, Stats};
use crate::lsp::Server;
use crate::mock::ms;
use crate::stream_mock::{StreamBackend, StreamRecord};

/// `backend.maxTokens`: the stream would otherwise run to this many tokens.
pub const MAX_TOKENS: u64 = 256;

/// The multi-line document: the cursor at the end of `def f(x):`, nothing after it on the line.
const MULTI_DOC: &str = "import math\n\n\ndef f(x):\n\n\ndef main():\n    print(f(3))\n";
const MULTI_CURSOR: (u32, u32) = (3, 9);
/// The model's 5-line body of `f` (the multi-line completion expected), then a dedented
/// `def g():` that ends the block.
pub const MULTI_BODY: &str = "\n    total = 0\n    for item in range(x):\n        total += item * 2\n    log(total)\n    return total";
const MULTI_AFTER_BODY: &str = "\n\n\ndef g():\n";

/// The single-line document: the cursor mid-line, ` * 2` after it.
const SINGLE_DOC: &str = "def h(a, b):\n    return a - b\n\n\ndef k(a, b):\n    return  * 2\n";
const SINGLE_CURSOR: (u32, u32) = (5, 11);
const SINGLE_HEAD: &[&str] = &["foo", "(", "a", ",", " b", ")", "\n"];
pub const SINGLE_COMPLETION: &str = "foo(a, b)";

/// Splits code into model-like tokens: words (with one leading space), runs of indentation,
/// runs of punctuation, and each line break alone.
fn tokenize(text: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        match c {
            '\n' => 0,
            ' ' => 1,
            c if c.is_alphanumeric() || c == '_' => 2,
            _ => 3,
        }
    }
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        let k = class(c);
        let join = match cur.chars().last().map(class) {
            None => true,
            Some(0) => false,
            Some(p) if p == k => k != 0,
            // A single space joins the word after it (` b`).
            Some(1) => k == 2 && cur == " ",
            Some(_) => false,
        };
        if !join {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `head` then filler code up to exactly `total` tokens.
fn with_tail(mut head: Vec<String>, total: usize, line: impl Fn(usize) -> String) -> Vec<String> {
    let mut i = 0;
    while head.len() < total {
        let mut t = tokenize(&line(i));
        t.truncate(total - head.len());
        head.extend(t);
        i += 1;
    }
    head
}

/// The multi-line script and how many of its tokens post-processing needs (up to the line
/// break after `def g():`).
pub fn multi_script(total: usize) -> (Vec<String>, usize) {
    let head = tokenize(&format!("{MULTI_BODY}{MULTI_AFTER_BODY}"));
    let needed = head.len();
    let script = with_tail(head, total, |i| {
        format!(
            "    value_{i} = compute(value_{}, {i})\n",
            i.saturating_sub(1)
        )
    });
    (script, needed)
}

/// The single-line script and how many of its tokens post-processing needs (up to the first
/// line break).
pub fn single_script(total: usize) -> (Vec<String>, usize) {
    let head: Vec<String> = SINGLE_HEAD.iter().map(|s| (*s).to_owned()).collect();
    let needed = head.len();
    let script = with_tail(head, total, |i| {
        format!("    result_{i} = foo(a + {i}, b)\n")
    });
    (script, needed)
}

/// One scenario's runs.
pub struct Scenario {
    pub name: &'static str,
    pub scripted: usize,
    /// Tokens up to the one after which post-processing stops.
    pub needed: usize,
    /// Per run: tokens generated before the backend saw the close, and before its first failed
    /// write (`None` when no write failed).
    pub before_close: Vec<usize>,
    pub before_write_error: Vec<Option<usize>>,
    /// Per run: the client's round trip, and the backend's request-to-close time.
    pub response_ms: Vec<f64>,
    pub open_ms: Vec<f64>,
    /// The stream read to the end by a plain client: events and milliseconds.
    pub full_events: usize,
    pub full_ms: f64,
    pub max_tokens_sent: Option<u64>,
    pub completion: String,
    pub expected: String,
}

impl Scenario {
    /// Tokens generated before the close, worst run.
    pub fn worst_before_close(&self) -> usize {
        self.before_close
            .iter()
            .copied()
            .max()
            .unwrap_or(self.scripted)
    }

    pub fn closed_early(&self) -> bool {
        !self.before_close.is_empty() && self.worst_before_close() < self.scripted
    }

    fn median_response(&self) -> f64 {
        Stats::of(&self.response_ms).p50
    }
}

pub struct EarlyStop {
    pub delay: Duration,
    pub scenarios: Vec<Scenario>,
}

struct Case {
    name: &'static str,
    file: &'static str,
    text: &'static str,
    cursor: (u32, u32),
    script: Vec<String>,
    needed: usize,
    expected: &'static str,
}

pub fn earlystop(tandem: &Path, sizes: &Sizes) -> Result<EarlyStop> {
    let total = sizes.earlystop_tokens;
    let (multi, multi_needed) = multi_script(total);
    let (single, single_needed) = single_script(total);
    if multi_needed >= total || single_needed >= total {
        bail!("{total} scripted tokens are too few: the completions need {multi_needed}");
    }
    let cases = [
        Case {
            name: "multi-line",
            file: "early_multi.py",
            text: MULTI_DOC,
            cursor: MULTI_CURSOR,
            script: multi,
            needed: multi_needed,
            expected: MULTI_BODY,
        },
        Case {
            name: "single-line",
            file: "early_single.py",
            text: SINGLE_DOC,
            cursor: SINGLE_CURSOR,
            script: single,
            needed: single_needed,
            expected: SINGLE_COMPLETION,
        },
    ];

    let backend = StreamBackend::start(Vec::new(), sizes.earlystop_delay)?;
    let ws = TempDir::new("early")?;
    let home = TempDir::new("home")?;
    let mut server = Server::spawn(tandem, home.path())?;
    server
        .initialize(
            Some(ws.path()),
            json!({
                "backend": { "kind": "openai", "url": backend.url(), "model": "m", "maxTokens": MAX_TOKENS },
                "completion": { "debounceMs": 0 },
            }),
        )
        .context("initialize failed")?;

    let mut scenarios = Vec::new();
    for case in cases {
        // The stream as a client that reads to the end sees it.
        backend.set_script(case.script.clone());
        let (full_events, full) = backend.read_to_end()?;
        backend.take_records();

        let file = ws.path().join(case.file);
        std::fs::write(&file, case.text).context("cannot write a document")?;
        let uri = file_uri(&file);
        server.did_open(&uri, "python", 1, case.text)?;
        let (line, col) = case.cursor;
        let mut scenario = Scenario {
            name: case.name,
            scripted: case.script.len(),
            needed: case.needed,
            before_close: Vec::new(),
            before_write_error: Vec::new(),
            response_ms: Vec::new(),
            open_ms: Vec::new(),
            full_events,
            full_ms: ms(full),
            max_tokens_sent: None,
            completion: String::new(),
            expected: case.expected.to_owned(),
        };
        // One warm-up run (new connection, first parse), then the measured ones.
        for rep in 0..=sizes.earlystop_reps {
            let (items, response) = server.inline_completion(&uri, line, col)?;
            let records = backend.wait_records(1, Duration::from_secs(10))?;
            let [record]: [StreamRecord; 1] = records.try_into().map_err(|r: Vec<_>| {
                anyhow::anyhow!(
                    "expected one backend stream per completion, saw {}",
                    r.len()
                )
            })?;
            if rep == 0 {
                continue;
            }
            scenario.before_close.push(record.tokens_before_close());
            scenario
                .before_write_error
                .push(record.events_at_write_error);
            scenario.response_ms.push(ms(response.round_trip()));
            scenario.open_ms.push(record.open_ms());
            scenario.max_tokens_sent = record.max_tokens;
            scenario.completion = items.first().cloned().unwrap_or_default();
        }
        server.did_close(&uri)?;
        scenarios.push(scenario);
    }
    server.shutdown()?;
    Ok(EarlyStop {
        delay: sizes.earlystop_delay,
        scenarios,
    })
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl EarlyStop {
    pub fn report(&self) -> Report {
        let delay_ms = ms(self.delay);
        let mut rows = Vec::new();
        let mut checks = Vec::new();
        let mut scenarios = serde_json::Map::new();
        if let Some(first) = self.scenarios.first() {
            rows.push((
                "stream".into(),
                format!(
                    "{} scripted tokens, one SSE event each, {delay_ms:.1} ms apart; maxTokens {MAX_TOKENS} (sent as max_tokens {}); {} runs per scenario after a warm-up",
                    first.scripted,
                    first
                        .max_tokens_sent
                        .map_or("(none)".into(), |m| m.to_string()),
                    first.before_close.len()
                ),
            ));
        }
        for s in &self.scenarios {
            let worst = s.worst_before_close();
            let saved = s.scripted.saturating_sub(worst);
            let writes: Vec<String> = s
                .before_write_error
                .iter()
                .map(|w| w.map_or("none".into(), |n| n.to_string()))
                .collect();
            rows.push((
                format!("{}: tokens before close", s.name),
                format!(
                    "{worst} of {} ({saved} saved, {:.0}%); post-processing needed {}; runs [{}]; first failed write after [{}]",
                    s.scripted,
                    100.0 * saved as f64 / s.scripted.max(1) as f64,
                    s.needed,
                    list(&s.before_close),
                    list(&writes),
                ),
            ));
            let responses: Vec<String> = s.response_ms.iter().map(|t| format!("{t:.1}")).collect();
            rows.push((
                format!("{}: response ms", s.name),
                format!(
                    "median {:.1} [{}]; backend open {:.1} ms; full stream {:.1} ms",
                    s.median_response(),
                    responses.join(", "),
                    Stats::of(&s.open_ms).p50,
                    s.full_ms
                ),
            ));
            let ok = s.completion == s.expected;
            rows.push((
                format!("{}: completion", s.name),
                format!(
                    "{} ({} non-blank lines){}",
                    if ok { "as scripted" } else { "DIFFERS" },
                    s.completion
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .count(),
                    if ok {
                        String::new()
                    } else {
                        format!(": {:?}", s.completion)
                    }
                ),
            ));
            rows.push((
                format!("{}: baseline (read to end)", s.name),
                format!("{} tokens in {:.1} ms", s.full_events, s.full_ms),
            ));
            checks.push(Check {
                what: format!("{}: connection closed before the stream's end", s.name),
                actual: format!("{worst} of {} tokens generated", s.scripted),
                met: s.closed_early(),
            });
            checks.push(Check {
                what: format!("{}: completion as scripted", s.name),
                actual: format!("{:?}", s.completion),
                met: ok,
            });
            scenarios.insert(
                s.name.to_owned(),
                json!({
                    "scriptedTokens": s.scripted,
                    "neededTokens": s.needed,
                    "tokensBeforeClose": s.before_close,
                    "tokensBeforeFirstFailedWrite": s.before_write_error,
                    "tokensSaved": saved,
                    "responseMs": s.response_ms,
                    "responseMsMedian": s.median_response(),
                    "backendOpenMs": s.open_ms,
                    "fullStreamTokens": s.full_events,
                    "fullStreamMs": s.full_ms,
                    "maxTokensSent": s.max_tokens_sent,
                    "completion": s.completion,
                    "completionOk": ok,
                }),
            );
        }
        let json = json!({
            "delayMs": delay_ms,
            "maxTokens": MAX_TOKENS,
            "scenarios": Value::Object(scenarios),
        });
        Report {
            name: "earlystop",
            rows,
            checks,
            json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_have_the_asked_length_and_stop_where_expected() {
        let (multi, needed) = multi_script(200);
        assert_eq!(multi.len(), 200);
        assert_eq!(
            multi[..needed].concat(),
            format!("{MULTI_BODY}{MULTI_AFTER_BODY}")
        );
        assert_eq!(multi[needed - 1], "\n");
        let (single, needed) = single_script(200);
        assert_eq!(single.len(), 200);
        assert_eq!(single[..needed].concat(), "foo(a, b)\n");
        assert!(
            tokenize("def g():\n    x = 1\n")
                .iter()
                .all(|t| !t.is_empty())
        );
        assert_eq!(tokenize("f(a, b)"), ["f", "(", "a", ",", " b", ")"]);
    }
}
