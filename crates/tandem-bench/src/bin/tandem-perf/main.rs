//! `tandem-perf`: performance benchmarks of the Tandem server.
//!
//! ```text
//! tandem-perf <overhead|store|keystrokes|memory|earlystop|large|all> [--small] [--json] [--tandem PATH]
//! ```
//!
//! - `overhead`: inline-completion round trips over stdio against an instant loopback backend,
//!   on a generated workspace of 1,200 files.
//! - `store`: a million single-character edits to a 100,000-line document, at the store.
//! - `keystrokes`: 300 single-character `didChange`s into a 5,000-line file, then a completion.
//! - `memory`: the server's RSS with 100 open documents of 2,000 lines.
//! - `earlystop`: tokens a streaming backend generates before the server drops the connection,
//!   once post-processing has the completion (multi-line and single-line), against 200 scripted.
//! - `large` (by name only, not in `all`): completions every 50 ms while a workspace of 100,000
//!   files is indexed, their round trips, and the server's peak memory.
//!
//! The table goes to stdout; with `--json` it goes to stderr and stdout gets one JSON object.
//! Targets missed are reported, not turned into a failing exit status.

mod data;
mod earlystop;
mod harness;
mod lsp;
mod mock;
mod stream_mock;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use harness::{Report, Sizes};

const USAGE: &str = "usage: tandem-perf <overhead|store|keystrokes|memory|earlystop|large|all> [--small] [--json] [--tandem PATH] [--sources LIST]";
const HARNESSES: &[&str] = &["overhead", "store", "keystrokes", "memory", "earlystop"];
/// Harnesses run only by name (minutes long), not by `all`.
const BY_NAME_ONLY: &[&str] = &["large"];

struct Args {
    harnesses: Vec<&'static str>,
    small: bool,
    json: bool,
    tandem: Option<PathBuf>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args> {
    let mut which: Option<String> = None;
    let (mut small, mut json, mut tandem) = (false, false, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--small" => small = true,
            "--json" => json = true,
            "--tandem" => {
                tandem = Some(PathBuf::from(args.next().context("--tandem needs a PATH")?))
            }
            "--sources" => {
                // The server's `context.sources` (comma-separated; empty: the current file only).
                let list = args.next().context("--sources needs a LIST")?;
                let sources: Vec<String> = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let _ = lsp::CONTEXT_SOURCES.set(sources);
            }
            "-h" | "--help" => bail!("{USAGE}"),
            s if s.starts_with('-') => bail!("unknown option `{s}`\n{USAGE}"),
            s if which.is_none() => which = Some(s.to_owned()),
            s => bail!("unexpected argument `{s}`\n{USAGE}"),
        }
    }
    let which = which.with_context(|| USAGE.to_owned())?;
    let harnesses = match which.as_str() {
        "all" => HARNESSES.to_vec(),
        name => match HARNESSES.iter().chain(BY_NAME_ONLY).find(|h| **h == name) {
            Some(h) => vec![*h],
            None => bail!("unknown benchmark `{name}`\n{USAGE}"),
        },
    };
    Ok(Args {
        harnesses,
        small,
        json,
        tandem,
    })
}

fn run_one(name: &str, tandem: &Path, sizes: &Sizes) -> Result<Report> {
    Ok(match name {
        "overhead" => harness::overhead(tandem, sizes)?.report(),
        "store" => harness::store(sizes)?.report(),
        "keystrokes" => harness::keystrokes(tandem, sizes)?.report(),
        "memory" => harness::memory(tandem, sizes)?.report(),
        "earlystop" => earlystop::earlystop(tandem, sizes)?.report(),
        "large" => harness::large(tandem, sizes)?.report(),
        other => bail!("unknown benchmark `{other}`"),
    })
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| {
        c.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
    });
    json!({ "cpus": cpus, "cpuModel": model, "os": std::env::consts::OS, "arch": std::env::consts::ARCH })
}

fn table(reports: &[Report], machine: &Value, tandem: &Path, small: bool) -> String {
    let mut out = String::new();
    let cpus = machine["cpus"].as_u64().unwrap_or(0);
    let model = machine["cpuModel"].as_str().unwrap_or("unknown CPU");
    out.push_str(&format!(
        "tandem-perf{}: {} on {cpus} cores ({model})\n",
        if small { " (--small)" } else { "" },
        tandem.display()
    ));
    for report in reports {
        out.push_str(&format!("\n== {} ==\n", report.name));
        let width = report
            .rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value) in &report.rows {
            let pad = width - key.chars().count();
            out.push_str(&format!("  {key}{}  {value}\n", " ".repeat(pad)));
        }
        for check in &report.checks {
            let verdict = if check.met { "met" } else { "MISSED" };
            out.push_str(&format!(
                "  target {}: {verdict} ({})\n",
                check.what, check.actual
            ));
        }
    }
    out
}

fn run(args: Args) -> Result<()> {
    let sizes = if args.small {
        Sizes::SMALL
    } else {
        Sizes::FULL
    };
    let needs_server = args.harnesses.iter().any(|h| *h != "store");
    let tandem = match args.tandem {
        Some(t) => t,
        None if needs_server => lsp::default_tandem()?,
        None => PathBuf::from("(not needed)"),
    };
    if needs_server && !tandem.is_file() {
        bail!("no tandem binary at {}", tandem.display());
    }
    if cfg!(debug_assertions) && args.harnesses.contains(&"store") {
        eprintln!(
            "tandem-perf: warning: a debug build; the store figures are meaningful only with --release"
        );
    }
    let mut reports = Vec::new();
    for name in &args.harnesses {
        eprintln!("tandem-perf: running {name}…");
        reports.push(run_one(name, &tandem, &sizes).with_context(|| format!("`{name}` failed"))?);
    }
    let machine = machine();
    let text = table(&reports, &machine, &tandem, args.small);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        eprint!("{text}");
        let mut results = Map::new();
        let mut targets = Map::new();
        for r in &reports {
            results.insert(r.name.to_owned(), r.json.clone());
            targets.insert(r.name.to_owned(), r.checks_json());
        }
        let value = json!({
            "machine": machine,
            "tandem": tandem.display().to_string(),
            "small": args.small,
            "results": results,
            "targets": targets,
        });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        write!(stdout, "{text}")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem-perf: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `tandem` binary of this test's own profile (`target/<profile>/deps/` → `target/<profile>/tandem`).
    fn tandem_bin() -> PathBuf {
        let exe = std::env::current_exe().expect("the test knows its own executable");
        let dir = lsp::profile_dir(&exe).expect("the test runs from target/<profile>/deps");
        let bin = dir.join(format!("tandem{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "the perf smoke test needs the server binary at {}: build the workspace first \
             (`cargo build -p tandem`, or `cargo build --workspace`)",
            bin.display()
        );
        bin
    }

    #[test]
    fn arguments_parse() {
        let args = |s: &str| parse_args(s.split_whitespace().map(str::to_owned));
        let a = args("all --small --json --tandem /x/tandem").expect("valid");
        assert_eq!(a.harnesses, HARNESSES);
        assert!(a.small && a.json);
        assert_eq!(a.tandem, Some(PathBuf::from("/x/tandem")));
        assert_eq!(args("store").expect("valid").harnesses, ["store"]);
        assert!(args("nope").is_err());
        assert!(args("").is_err());
        assert!(args("store --tandem").is_err());
    }

    /// Every harness at a tiny size, against the real server: sanity, never timing thresholds.
    #[test]
    fn perf_smoke() {
        let tandem = tandem_bin();
        let sizes = Sizes::TINY;

        let o = harness::overhead(&tandem, &sizes).expect("overhead runs");
        assert_eq!(
            o.non_empty, o.requests,
            "every completion from the instant backend is non-empty"
        );
        assert_eq!(o.completion, mock::COMPLETION);
        assert!(o.prompt_chars > 0, "the backend got a prompt");
        assert!(o.round_trip.min > 0.0 && o.backend.min > 0.0);
        assert!(o.round_trip.p50 >= o.backend.p50);
        assert!(o.indexed_ms > 0.0);
        assert!(o.first.round_trip_ms >= o.first.before_backend_ms + o.first.after_backend_ms);
        assert!(!o.report().rows.is_empty());

        let s = harness::store(&sizes).expect("store runs (and checks the final text)");
        assert_eq!(s.edits, sizes.store_edits);
        assert!(s.total_s > 0.0 && s.ns_per_edit > 0.0);

        let k =
            harness::keystrokes(&tandem, &sizes).expect("keystrokes runs (and checks the prompt)");
        assert_eq!(k.keystrokes, sizes.keystrokes_chars);
        assert_eq!(k.non_empty, sizes.keystrokes_reps);
        assert_eq!(k.completion, mock::COMPLETION);
        assert!(k.totals_ms.iter().all(|t| *t > 0.0));

        let m = harness::memory(&tandem, &sizes).expect("memory runs");
        assert!(m.completion_ok, "a completion in the last opened document");
        assert!(
            m.baseline_rss_kib > 0
                && m.peak_hwm_kib >= m.open_rss_kib
                && m.peak_hwm_kib >= m.baseline_rss_kib
        );

        let e = earlystop::earlystop(&tandem, &sizes).expect("earlystop runs");
        let [multi, single] = e.scenarios.as_slice() else {
            panic!("two earlystop scenarios");
        };
        for sc in [multi, single] {
            assert_eq!(sc.scripted, sizes.earlystop_tokens);
            assert_eq!(
                sc.full_events, sc.scripted,
                "the baseline reads every token"
            );
            assert_eq!(sc.max_tokens_sent, Some(earlystop::MAX_TOKENS));
            assert!(!sc.before_close.is_empty());
            assert!(
                sc.worst_before_close() < sc.scripted,
                "{}: the connection closes before the stream ends ({} of {})",
                sc.name,
                sc.worst_before_close(),
                sc.scripted
            );
            assert!(sc.before_close.iter().all(|n| *n >= sc.needed));
        }
        assert_eq!(multi.completion, earlystop::MULTI_BODY);
        assert_eq!(single.completion, earlystop::SINGLE_COMPLETION);

        let l = harness::large(&tandem, &sizes).expect("large runs");
        assert!(l.indexed_ms.is_some(), "the symbol index's scan ends");
        assert!(l.after_rtt.min > 0.0 && l.peak_hwm_kib >= l.rss_after_kib);
        assert!(!l.report().rows.is_empty());

        let text = table(
            &[o.report(), s.report(), k.report(), m.report(), e.report()],
            &machine(),
            &tandem,
            true,
        );
        assert!(text.contains("== memory ==") && text.contains("== earlystop =="));
    }
}
