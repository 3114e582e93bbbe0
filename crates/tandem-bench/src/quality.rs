//! `tandem-bench quality`: end-to-end completion quality against a model server, and the truth
//! test of the pipeline against a loopback model that knows the answer.
//!
//! # Cases
//!
//! The corpus is `tandem-bench xdr`'s (`<language>/<repository>/` trees). Each case is a code
//! line of a repository file (not blank, not a comment, not a row of a generated table, at most
//! [`MAX_LINE`] characters) with the cursor at one of its token starts drawn at random (the
//! first one, at its indentation, among them) and the rest of the line removed; later lines are
//! kept, as a user typing it.
//! The *cross-file* set draws lines that use an identifier defined only in another file of the
//! repository, with the cursor at or before it (the XDR sampler). Cases are spread over the
//! repositories of each language. The engine holds the repository in its symbol index (the
//! current file with the text removed) and, as open documents, the current file and the files
//! [`tandem_core::similar::open_neighbours`] names — the rule `tandem complete` uses.
//!
//! # Systems (same cases, same model, same token budget, temperature 0)
//!
//! - `tandem`: `Engine::complete`, the configuration as shipped but for the backend;
//! - `current`: the same with `context.sources = []` (the current file only);
//! - `naive`: the file's text before and after the cursor by characters (three quarters of
//!   the prompt budget before, one after), the same backend and template, no snippets, and the
//!   first line of the raw answer;
//! - `raw`: the first line of `tandem`'s own stream before post-processing.
//!
//! # Metrics
//!
//! Exact match and edit similarity of the first shown line against the removed text, both
//! trimmed (CrossCodeEval's EM and ES: `1 - levenshtein / max length`, in characters); nothing
//! shown scores 0 on both. The share of cases where nothing was shown; the share of shown
//! suggestions that add a syntax error, judged by fresh parses of the whole file without and
//! with the suggestion (not by Tandem's own check); latency. Paired bootstrap 95% intervals of
//! `tandem` minus each other system, resampling cases.
//!
//! # The truth test (`--oracle`)
//!
//! A loopback server answers every completion with the removed text and the file's next lines.
//! A case passes when the first shown line is the removed text and every later shown line is
//! the file's next line. Then the same positions get answers broken on purpose (an unbalanced
//! bracket, an unterminated string, a dangling operator, a last line cut short), kept only when
//! fresh parses show the break: each must be cut back to a part that parses, or dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use tandem_core::config::{LayerSource, resolve};
use tandem_core::{CompletionMode, CompletionRequest, Config};
use tandem_server::engine::{CompletionInput, Engine};
use tandem_syntax::Language;

use crate::rng::Rng;
use crate::xdr::{self, Repo};

/// Longest line (in characters) drawn as a case: generated tables and minified lines say
/// nothing about completion.
const MAX_LINE: usize = 160;

/// How many of the file's next lines the loopback model adds after the removed text.
const ORACLE_NEXT_LINES: usize = 3;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The corpus: a directory of `<language>/<repository>/` trees (the XDR corpus).
    #[arg(long)]
    pub corpus: PathBuf,
    /// The model server: its base URL (`http://127.0.0.1:18300`; `/v1` is added for the
    /// `openai` kind). Not needed with `--oracle`.
    #[arg(long)]
    pub url: Option<String>,
    /// The backend kind: `openai` (`/v1/completions`) or `llamacpp` (`/infill`).
    #[arg(long, default_value = "openai")]
    pub kind: String,
    /// `backend.fim` (default: unset, so `auto`).
    #[arg(long)]
    pub fim: Option<String>,
    /// `backend.tokenizerPath`: the model's tokenizer.json, for exact budgets.
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// `backend.contextWindow`.
    #[arg(long, default_value_t = 1024)]
    pub context_window: u32,
    /// `backend.maxTokens`.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// `backend.timeoutMs` (the model reads about 85 tokens/s on 2 cores).
    #[arg(long, default_value_t = 120_000)]
    pub timeout_ms: u64,
    /// `context` settings (JSON object) for the `tandem` system, on top of the defaults.
    #[arg(long)]
    pub context: Option<String>,
    /// Ordinary cases per language.
    #[arg(long, default_value_t = 6)]
    pub cases: usize,
    /// Cross-file cases per language.
    #[arg(long, default_value_t = 3)]
    pub cross: usize,
    /// A quick run for checking a change: 2 ordinary and 1 cross-file case per language.
    #[arg(long)]
    pub quick: bool,
    /// Seed of the sampling (tune on one, report on another).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Only languages whose directory name is given (repeatable; default: all).
    #[arg(long)]
    pub language: Vec<String>,
    /// The systems to run (default: all of tandem, current, naive, raw; `raw` comes with
    /// `tandem`). Comparing context settings needs only `tandem`.
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// The truth test against a loopback model instead of a model server.
    #[arg(long)]
    pub oracle: bool,
    /// Cursor positions per language for `--oracle`.
    #[arg(long, default_value_t = 400)]
    pub positions: usize,
    /// Print every case (or, with `--oracle`, every failure) to stderr.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

pub fn main(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = if args.oracle {
        oracle(args, &runtime)?
    } else {
        real(args, &runtime)?
    };
    if let Some(path) = &args.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if args.oracle {
        write_oracle_tables(&mut out, &report)?;
    } else {
        write_tables(&mut out, &report)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cases

/// One cursor: a line of a file with the text from `cursor` to `line_end` removed.
#[derive(Debug, Clone)]
struct Case {
    repo: usize,
    file: usize,
    /// Byte offsets in the original text.
    cursor: usize,
    line_end: usize,
    cross: bool,
}

impl Case {
    fn removed<'a>(&self, repos: &'a [Repo]) -> &'a str {
        &repos[self.repo].files[self.file].text[self.cursor..self.line_end]
    }

    /// The document as the user has it: the original without the removed text.
    fn document(&self, repos: &[Repo]) -> String {
        let text = &repos[self.repo].files[self.file].text;
        format!("{}{}", &text[..self.cursor], &text[self.line_end..])
    }

    /// The file's lines after the case's line (without line breaks).
    fn next_lines<'a>(&self, repos: &'a [Repo], n: usize) -> Vec<&'a str> {
        let text = &repos[self.repo].files[self.file].text[self.line_end..];
        let text = text
            .strip_prefix("\r\n")
            .or_else(|| text.strip_prefix('\n'))
            .unwrap_or("");
        text.split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .take(n)
            .collect()
    }

    fn language(&self, repos: &[Repo]) -> Language {
        repos[self.repo].files[self.file].language
    }

    fn location(&self, repos: &[Repo]) -> String {
        let file = &repos[self.repo].files[self.file];
        let line = file.text[..self.cursor].matches('\n').count() + 1;
        format!("{}/{}:{line}", repos[self.repo].name, file.key)
    }
}

/// Whether a line is data rather than code: a long run of numbers and punctuation (a generated
/// table), where a letter is rarer than one character in four.
fn is_data(trimmed: &str) -> bool {
    let visible = trimmed.chars().filter(|c| !c.is_whitespace()).count();
    let letters = trimmed.chars().filter(|c| c.is_alphabetic()).count();
    visible > 20 && letters * 4 < visible
}

/// Up to `n` ordinary cases from a repository: code lines, the cursor at a random token start.
fn sample_lines(repo: &Repo, n: usize, rng: &mut Rng) -> Vec<(usize, usize, usize)> {
    let mut lines: Vec<(usize, usize, usize)> = Vec::new();
    for (f, file) in repo.files.iter().enumerate() {
        let mut start = 0;
        for line in file.text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let trimmed = body.trim();
            if !trimmed.is_empty()
                && body.chars().count() <= MAX_LINE
                && !xdr::is_comment(trimmed, file.language)
                && !is_data(trimmed)
            {
                lines.push((f, start, start + body.len()));
            }
            start += line.len();
        }
    }
    let mut out = Vec::new();
    let mut used = std::collections::HashSet::new();
    let mut draws = 0;
    while out.len() < n && draws < n * 50 + 100 && !lines.is_empty() {
        draws += 1;
        let (f, start, end) = lines[rng.below(lines.len())];
        if !used.insert((f, start)) {
            continue;
        }
        let starts = xdr::token_starts(&repo.files[f].text[start..end]);
        if starts.is_empty() {
            continue;
        }
        out.push((f, start + starts[rng.below(starts.len())], end));
    }
    out
}

/// `n` cases per language (ordinary or cross-file), spread over the language's repositories.
fn sample_cases(repos: &[Repo], n: usize, cross: bool, rng: &mut Rng) -> Vec<Case> {
    let mut by_language: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, repo) in repos.iter().enumerate() {
        match by_language.iter_mut().find(|(l, _)| *l == repo.language) {
            Some((_, list)) => list.push(i),
            None => by_language.push((&repo.language, vec![i])),
        }
    }
    let mut cases = Vec::new();
    for (_, list) in by_language {
        let mut wanted: HashMap<usize, usize> = HashMap::new();
        for k in 0..n {
            *wanted.entry(list[k % list.len()]).or_default() += 1;
        }
        for &r in &list {
            let Some(&count) = wanted.get(&r) else {
                continue;
            };
            let repo = &repos[r];
            if cross {
                let (samples, _) = xdr::sample(repo, count, rng);
                cases.extend(samples.into_iter().map(|s| Case {
                    repo: r,
                    file: s.file,
                    cursor: s.cursor,
                    line_end: s.line_end,
                    cross: true,
                }));
            } else {
                cases.extend(sample_lines(repo, count, rng).into_iter().map(
                    |(file, cursor, line_end)| Case {
                        repo: r,
                        file,
                        cursor,
                        line_end,
                        cross: false,
                    },
                ));
            }
        }
    }
    cases
}

fn load(args: &Args) -> anyhow::Result<Vec<Repo>> {
    let mut repos = Vec::new();
    for (language, root) in xdr::repositories(&args.corpus, &args.language)? {
        let repo = xdr::load_repo(&language, &root);
        if repo.files() > 0 {
            repos.push(repo);
        }
    }
    if repos.is_empty() {
        bail!(
            "no repository with source files under {}",
            args.corpus.display()
        );
    }
    Ok(repos)
}

/// The engine's input for a case, with the case's file and its neighbours noted as open.
fn open_case(engine: &Engine, repos: &[Repo], case: &Case) -> (CompletionInput, Vec<String>) {
    let repo = &repos[case.repo];
    let file = &repo.files[case.file];
    let text = case.document(repos);
    engine.symbols().upsert(&repo.root, &file.key, &text);
    let neighbours: Vec<String> = tandem_core::similar::open_neighbours(
        &file.key,
        xdr::language_id(file.language),
        repo.files
            .iter()
            .map(|f| (f.key.as_str(), xdr::language_id(f.language))),
    )
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Noted last is searched first: the nearest goes last, the current file after them all.
    for key in neighbours.iter().rev() {
        if let Some(n) = repo.files.iter().find(|f| &f.key == key) {
            engine.note_document(Some(&repo.root), key, xdr::snapshot_of(&n.text, n.language));
        }
    }
    let snapshot = xdr::snapshot_of(&text, file.language);
    engine.note_document(Some(&repo.root), &file.key, snapshot.clone());
    let input = CompletionInput {
        snapshot,
        offset: file.text[..case.cursor].chars().count(),
        path: file.key.clone(),
        root: Some(repo.root.clone()),
    };
    (input, neighbours)
}

/// Undoes [`open_case`].
fn close_case(engine: &Engine, repos: &[Repo], case: &Case, neighbours: &[String]) {
    let repo = &repos[case.repo];
    let file = &repo.files[case.file];
    engine.forget_document(&file.key);
    for key in neighbours {
        engine.forget_document(key);
    }
    engine.symbols().upsert(&repo.root, &file.key, &file.text);
}

/// Sets the engine's configuration for `root` from one layer.
fn configure(engine: &Engine, root: &std::path::Path, layer: Value) -> anyhow::Result<Config> {
    let messages = engine.set_init_layer(Some(layer.clone()));
    if !messages.is_empty() {
        bail!("configuration: {}", messages.join("; "));
    }
    let messages = engine.reload(Some(root));
    if !messages.is_empty() {
        bail!("configuration: {}", messages.join("; "));
    }
    let resolved = resolve(&[(LayerSource::InitializationOptions, layer)]);
    resolved
        .config
        .context("the benchmark's configuration does not fit the schema")
}

// ---------------------------------------------------------------------------------------------
// Judging

/// Whether inserting `shown` at the case's cursor adds syntax errors, by fresh parses of the
/// whole document.
fn adds_error(language: Language, document: &str, at: usize, shown: &str) -> bool {
    let with = format!("{}{shown}{}", &document[..at], &document[at..]);
    tandem_syntax::error_count(language, &with) > tandem_syntax::error_count(language, document)
}

/// CrossCodeEval's edit similarity: `1 - levenshtein / max length`, in characters.
fn edit_similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    1.0 - row[b.len()] as f64 / longest as f64
}

/// One system's result on one case.
#[derive(Debug, Clone, Default)]
struct Outcome {
    /// The whole suggestion shown, if any.
    shown: Option<String>,
    exact: bool,
    similarity: f64,
    /// Shown and adds a syntax error (fresh parses of the whole file).
    breaks: bool,
    ms: f64,
}

impl Outcome {
    fn judge(
        shown: Option<String>,
        removed: &str,
        case_doc: &str,
        at: usize,
        lang: Language,
        ms: f64,
    ) -> Self {
        let shown = shown.filter(|s| !s.trim().is_empty());
        let first = shown
            .as_deref()
            .map(|s| s.split('\n').next().unwrap_or_default().trim())
            .unwrap_or_default();
        let target = removed.trim();
        let breaks = shown
            .as_deref()
            .is_some_and(|s| adds_error(lang, case_doc, at, s));
        Outcome {
            exact: shown.is_some() && first == target,
            similarity: if shown.is_some() {
                edit_similarity(first, target)
            } else {
                0.0
            },
            breaks,
            shown,
            ms,
        }
    }
}

/// The systems in report order.
const SYSTEMS: [&str; 4] = ["tandem", "current", "naive", "raw"];

// ---------------------------------------------------------------------------------------------
// The real-model run

fn real(args: &Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Value> {
    let Some(url) = args.url.as_deref() else {
        bail!("--url is needed (or --oracle for the truth test)");
    };
    let url = url.trim_end_matches('/');
    let url = match args.kind.as_str() {
        "openai" if !url.ends_with("/v1") => format!("{url}/v1"),
        "openai" | "llamacpp" => url.to_owned(),
        other => bail!("--kind {other}: expected openai or llamacpp"),
    };
    let context: Value = match &args.context {
        Some(text) => serde_json::from_str(text).context("--context is not JSON")?,
        None => json!({}),
    };
    let (ordinary, cross) = if args.quick {
        (2, 1)
    } else {
        (args.cases, args.cross)
    };
    for s in &args.systems {
        if !SYSTEMS.contains(&s.as_str()) {
            bail!("--systems: `{s}` is not one of {}", SYSTEMS.join(", "));
        }
    }
    let runs = |name: &str| {
        args.systems.is_empty()
            || args.systems.iter().any(|s| s == name)
            || (name == "tandem" && args.systems.iter().any(|s| s == "raw"))
    };
    let repos = load(args)?;
    let mut rng = Rng(args.seed);
    let mut cases = sample_cases(&repos, ordinary, false, &mut rng);
    cases.extend(sample_cases(&repos, cross, true, &mut rng));
    cases.sort_by_key(|c| (c.repo, c.cross));
    eprintln!(
        "quality: {} cases from {} repositories",
        cases.len(),
        repos.len()
    );

    let mut backend = json!({
        "kind": args.kind,
        "url": url,
        "contextWindow": args.context_window,
        "maxTokens": args.max_tokens,
        "temperature": 0.0,
        "timeoutMs": args.timeout_ms,
    });
    if let Some(fim) = &args.fim {
        backend["fim"] = json!(fim);
    }
    if let Some(tokenizer) = &args.tokenizer {
        backend["tokenizerPath"] = json!(tokenizer);
    }
    let full_layer = json!({ "backend": backend, "context": context });
    let mut current_layer = full_layer.clone();
    current_layer["context"]["sources"] = json!([]);

    // outcomes[case][system]: `None` for a system not run.
    let mut outcomes: Vec<Vec<Option<Outcome>>> = Vec::new();
    let started = Instant::now();
    let mut engine: Option<(usize, Engine)> = None;
    for (n, case) in cases.iter().enumerate() {
        if engine.as_ref().is_none_or(|(r, _)| *r != case.repo) {
            engine = Some((case.repo, xdr::engine_for(&repos[case.repo])));
        }
        let Some((_, engine)) = engine.as_ref() else {
            continue;
        };
        let root = &repos[case.repo].root;
        let (input, neighbours) = open_case(engine, &repos, case);
        let document = case.document(&repos);
        let removed = case.removed(&repos);
        let lang = case.language(&repos);
        let judge = |shown: Option<String>, ms: f64| {
            Some(Outcome::judge(
                shown,
                removed,
                &document,
                case.cursor,
                lang,
                ms,
            ))
        };
        let mut row: Vec<Option<Outcome>> = vec![None; SYSTEMS.len()];

        let full_config = configure(engine, root, full_layer.clone())?;
        if runs("tandem") {
            let t = Instant::now();
            let full = runtime.block_on(engine.complete(&input));
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let (items, raw) = match full {
                Ok(out) => (out.items, out.raw),
                Err(e) => {
                    eprintln!("quality: {}: tandem: {e}", case.location(&repos));
                    (Vec::new(), Vec::new())
                }
            };
            row[0] = judge(items.first().cloned(), ms);
            let raw_first = raw
                .first()
                .map(|r| r.split(['\n', '\r']).next().unwrap_or_default().to_owned());
            row[3] = judge(raw_first, ms);
        }
        if runs("naive") {
            let t = Instant::now();
            let naive = runtime
                .block_on(naive_completion(engine, &full_config, &input))
                .unwrap_or_else(|e| {
                    eprintln!("quality: {}: naive: {e}", case.location(&repos));
                    None
                });
            row[2] = judge(naive, t.elapsed().as_secs_f64() * 1000.0);
        }
        if runs("current") {
            configure(engine, root, current_layer.clone())?;
            let t = Instant::now();
            let current = match runtime.block_on(engine.complete(&input)) {
                Ok(out) => out.items.first().cloned(),
                Err(e) => {
                    eprintln!("quality: {}: current: {e}", case.location(&repos));
                    None
                }
            };
            row[1] = judge(current, t.elapsed().as_secs_f64() * 1000.0);
        }

        if args.explain {
            eprintln!(
                "-- {} [{}] {}\u{2588}  want {:?}",
                case.location(&repos),
                if case.cross { "cross" } else { "line" },
                document[..case.cursor]
                    .rsplit('\n')
                    .next()
                    .unwrap_or_default()
                    .trim_start(),
                removed.trim()
            );
            for (name, o) in SYSTEMS.iter().zip(&row) {
                let Some(o) = o else { continue };
                eprintln!(
                    "   {name:8} {} {:.2}{} {:?}",
                    if o.exact { "EM" } else { "  " },
                    o.similarity,
                    if o.breaks { " BREAKS" } else { "" },
                    o.shown.as_deref().unwrap_or("<nothing>")
                );
            }
        }
        eprintln!(
            "quality: {}/{} cases, {:.0} s",
            n + 1,
            cases.len(),
            started.elapsed().as_secs_f64()
        );
        close_case(engine, &repos, case, &neighbours);
        outcomes.push(row);
    }
    Ok(real_report(
        args,
        &repos,
        &cases,
        &outcomes,
        started.elapsed().as_secs_f64(),
    ))
}

/// The naive client: the text before and after the cursor by characters within the same token
/// budget (three quarters before, one after), the backend's template, no snippets, the first
/// line of the answer.
async fn naive_completion(
    engine: &Engine,
    config: &Config,
    input: &CompletionInput,
) -> anyhow::Result<Option<String>> {
    let backend = engine.backend(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let counter = engine.counter(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rope = &input.snapshot.rope;
    let cursor = input.offset.min(rope.len_chars());
    let limit = (config.backend.context_window as usize)
        .saturating_sub(config.backend.max_tokens as usize)
        .saturating_sub(16);
    let before: Vec<char> = rope.slice(..cursor).chars().collect();
    let after: Vec<char> = rope.slice(cursor..).chars().collect();
    let fit = |chars: &[char], budget: usize, from_end: bool| -> String {
        // The most characters (from the cursor outwards) whose tokens fit.
        let take = |k: usize| -> String {
            if from_end {
                chars[chars.len() - k..].iter().collect()
            } else {
                chars[..k].iter().collect()
            }
        };
        let (mut lo, mut hi) = (0, chars.len());
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if counter.count(&take(mid)) <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        take(lo)
    };
    let request = CompletionRequest {
        prefix: fit(&before, limit * 3 / 4, true),
        suffix: fit(&after, limit / 4, false),
        snippets: Vec::new(),
        path: input.path.clone(),
        language: input.snapshot.language_id.clone(),
        mode: CompletionMode::MultiLine,
        stop: config.backend.stop.clone(),
        max_tokens: config.backend.max_tokens,
        candidates: 1,
    };
    let mut stream = backend
        .stream(request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("{e}"))?;
        if chunk.candidate == 0 {
            text.push_str(&chunk.text);
        }
        if text.contains(['\n', '\r']) && !text.trim_start_matches(['\n', '\r']).is_empty() {
            break;
        }
    }
    // The first line of the answer; an answer that starts with a line break shows nothing.
    Ok(Some(
        text.split(['\n', '\r'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    ))
}

/// Sums of one system over a group of cases.
#[derive(Debug, Clone, Default)]
struct Tally {
    cases: usize,
    exact: usize,
    similarity: f64,
    nothing: usize,
    shown: usize,
    breaks: usize,
    ms: Vec<f64>,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        self.exact += usize::from(o.exact);
        self.similarity += o.similarity;
        if o.shown.is_some() {
            self.shown += 1;
            self.breaks += usize::from(o.breaks);
        } else {
            self.nothing += 1;
        }
        self.ms.push(o.ms);
    }

    fn json(&self) -> Value {
        let ratio = |a: f64, b: usize| (b > 0).then(|| a / b as f64);
        let mut ms = self.ms.clone();
        ms.sort_by(f64::total_cmp);
        let at =
            |q: f64| (!ms.is_empty()).then(|| ms[((ms.len() - 1) as f64 * q).round() as usize]);
        json!({
            "cases": self.cases,
            "em": ratio(self.exact as f64, self.cases),
            "es": ratio(self.similarity, self.cases),
            "nothingShown": ratio(self.nothing as f64, self.cases),
            "shown": self.shown,
            "breaks": ratio(self.breaks as f64, self.shown),
            "p50Ms": at(0.5),
            "p90Ms": at(0.9),
        })
    }
}

/// The 95% interval of the mean of `tandem - other` over `pairs`, by paired bootstrap.
fn paired_interval(pairs: &[(f64, f64)], resamples: usize, rng: &mut Rng) -> Value {
    if pairs.is_empty() {
        return Value::Null;
    }
    let n = pairs.len();
    let mean = pairs.iter().map(|(a, b)| a - b).sum::<f64>() / n as f64;
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            (0..n)
                .map(|_| {
                    let (a, b) = pairs[rng.below(n)];
                    a - b
                })
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    json!({ "diff": mean, "low": at(0.025), "high": at(0.975) })
}

fn real_report(
    args: &Args,
    repos: &[Repo],
    cases: &[Case],
    outcomes: &[Vec<Option<Outcome>>],
    seconds: f64,
) -> Value {
    let mut rng = Rng(args.seed ^ 0x5eed);
    let mut languages: Vec<String> = cases
        .iter()
        .map(|c| repos[c.repo].language.clone())
        .collect();
    languages.sort();
    languages.dedup();
    languages.push("overall".into());
    let mut groups = Vec::new();
    for set in ["all", "ordinary", "cross"] {
        for language in &languages {
            let picked: Vec<usize> = (0..cases.len())
                .filter(|&i| {
                    let c = &cases[i];
                    (language == "overall" || &repos[c.repo].language == language)
                        && match set {
                            "ordinary" => !c.cross,
                            "cross" => c.cross,
                            _ => true,
                        }
                })
                .collect();
            if picked.is_empty() {
                continue;
            }
            let mut systems = serde_json::Map::new();
            for (s, name) in SYSTEMS.iter().enumerate() {
                let mut tally = Tally::default();
                // Pairs of (tandem, this system) for the intervals.
                let mut pairs: Vec<(&Outcome, &Outcome)> = Vec::new();
                for &i in &picked {
                    let Some(o) = &outcomes[i][s] else { continue };
                    tally.add(o);
                    if let Some(t) = &outcomes[i][0] {
                        pairs.push((t, o));
                    }
                }
                if tally.cases == 0 {
                    continue;
                }
                let mut entry = tally.json();
                if s > 0 && !pairs.is_empty() {
                    let em: Vec<(f64, f64)> = pairs
                        .iter()
                        .map(|(t, o)| (f64::from(u8::from(t.exact)), f64::from(u8::from(o.exact))))
                        .collect();
                    let es: Vec<(f64, f64)> = pairs
                        .iter()
                        .map(|(t, o)| (t.similarity, o.similarity))
                        .collect();
                    entry["tandemMinusThis"] = json!({
                        "em": paired_interval(&em, args.bootstrap, &mut rng),
                        "es": paired_interval(&es, args.bootstrap, &mut rng),
                    });
                }
                systems.insert((*name).to_owned(), entry);
            }
            groups.push(json!({ "set": set, "language": language, "systems": systems }));
        }
    }
    json!({
        "mode": "real",
        "kind": args.kind,
        "fim": args.fim,
        "context": args.context,
        "contextWindow": args.context_window,
        "maxTokens": args.max_tokens,
        "seed": args.seed,
        "cases": cases.len(),
        "seconds": seconds,
        "systems": SYSTEMS,
        "groups": groups,
    })
}

fn fmt_opt(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

fn write_tables(out: &mut impl Write, report: &Value) -> anyhow::Result<()> {
    writeln!(
        out,
        "quality: {} cases, seed {}, {} backend, window {} / max {} tokens, {:.0} s",
        report["cases"],
        report["seed"],
        report["kind"].as_str().unwrap_or("?"),
        report["contextWindow"],
        report["maxTokens"],
        report["seconds"].as_f64().unwrap_or(0.0)
    )?;
    let empty = Vec::new();
    for group in report["groups"].as_array().unwrap_or(&empty) {
        writeln!(
            out,
            "\n{} / {}",
            group["set"].as_str().unwrap_or("?"),
            group["language"].as_str().unwrap_or("?")
        )?;
        writeln!(
            out,
            "| system | cases | EM | ES | nothing shown | shown that break | p50 ms | EM diff (95% CI) | ES diff (95% CI) |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        for name in SYSTEMS {
            let s = &group["systems"][name];
            if s.is_null() {
                continue;
            }
            let ci = |k: &str| {
                let d = &s["tandemMinusThis"][k];
                if d.is_null() {
                    String::new()
                } else {
                    format!(
                        "{} ({}, {})",
                        fmt_opt(&d["diff"], 3),
                        fmt_opt(&d["low"], 3),
                        fmt_opt(&d["high"], 3)
                    )
                }
            };
            writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s["cases"],
                fmt_opt(&s["em"], 3),
                fmt_opt(&s["es"], 3),
                fmt_opt(&s["nothingShown"], 3),
                fmt_opt(&s["breaks"], 3),
                fmt_opt(&s["p50Ms"], 0),
                ci("em"),
                ci("es")
            )?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The truth test

/// The loopback model: answers every `POST …/completions` with the script set for the case, as
/// a stream of small Server-Sent Events; `GET …/models` names a Qwen model.
struct Oracle {
    url: String,
    script: Arc<Mutex<String>>,
}

impl Oracle {
    fn start() -> anyhow::Result<Oracle> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the loopback model")?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let script = Arc::new(Mutex::new(String::new()));
        let shared = script.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let script = shared.lock().map(|s| s.clone()).unwrap_or_default();
                // One request per connection; a broken one only fails its own case.
                let _ = serve_one(stream, &script);
            }
        });
        Ok(Oracle { url, script })
    }

    fn answer(&self, text: &str) {
        if let Ok(mut s) = self.script.lock() {
            *s = text.to_owned();
        }
    }
}

fn serve_one(stream: TcpStream, script: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut out = stream;
    if request_line.starts_with("GET") {
        let list = r#"{"object":"list","data":[{"id":"qwen2.5-coder-0.5b-instruct-q5_0.gguf","object":"model"}]}"#;
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{list}",
            list.len()
        )?;
        return out.flush();
    }
    let mut events = String::new();
    let chars: Vec<char> = script.chars().collect();
    for piece in chars.chunks(3) {
        let text: String = piece.iter().collect();
        let event = json!({ "choices": [{ "index": 0, "text": text }] });
        events.push_str(&format!("data: {event}\n\n"));
    }
    events.push_str("data: [DONE]\n\n");
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{events}",
        events.len()
    )?;
    out.flush()
}

/// Ways to break an answer on purpose.
const BREAKS: [&str; 4] = ["bracket", "string", "operator", "truncated"];

/// The answer `kind` breaks, from the true answer's lines (`first` completes the cursor's
/// line, `next` follow); `None` when this answer cannot be broken that way.
fn broken_answer(kind: &str, first: &str, next: &[&str], language: Language) -> Option<String> {
    let rest = if next.is_empty() {
        String::new()
    } else {
        format!("\n{}", next.join("\n"))
    };
    match kind {
        "bracket" => Some(format!("{first}({rest}")),
        "string" => {
            // Python's and Go's strings end at the line; in the others a quote runs on.
            let quote = if language == Language::Python {
                "'"
            } else {
                "\""
            };
            Some(format!("{first} {quote}unfinished{rest}"))
        }
        "operator" => Some(format!("{first} = *{rest}")),
        "truncated" => {
            // Two whole lines, then the third cut right after its first opening bracket or
            // quote (or halfway), as a model stopped by its token limit.
            let (last, whole) = next.split_last()?;
            let cut = last
                .find(['(', '[', '{', '"', '\''])
                .map(|i| i + 1)
                .unwrap_or(last.len() / 2);
            let cut = (0..=cut)
                .rev()
                .find(|&i| last.is_char_boundary(i))
                .unwrap_or(0);
            let mut text = first.to_owned();
            for l in whole {
                text.push('\n');
                text.push_str(l);
            }
            text.push('\n');
            text.push_str(&last[..cut]);
            Some(text)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Default)]
struct TruthTally {
    cases: usize,
    passed: usize,
    /// Failures: nothing shown, and something else shown.
    nothing: usize,
    wrong: usize,
}

#[derive(Debug, Clone, Default)]
struct BrokenTally {
    cases: usize,
    /// Shown, cut back to a part that parses.
    repaired: usize,
    /// ... whose first line is still the true one.
    repaired_true_first_line: usize,
    dropped: usize,
    shown_broken: usize,
}

fn oracle(args: &Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Value> {
    let repos = load(args)?;
    let server = Oracle::start()?;
    let mut rng = Rng(args.seed);
    let mut cases = sample_cases(&repos, args.positions, false, &mut rng);
    cases.sort_by_key(|c| c.repo);
    eprintln!(
        "quality --oracle: {} positions from {} repositories",
        cases.len(),
        repos.len()
    );
    let layer = json!({
        "backend": {
            "kind": "openai",
            "url": server.url,
            "fim": "qwen",
            "contextWindow": args.context_window,
            "maxTokens": args.max_tokens,
            "temperature": 0.0,
            "timeoutMs": 10_000,
        },
    });
    let mut truth: HashMap<String, TruthTally> = HashMap::new();
    let mut broken: HashMap<String, BrokenTally> = HashMap::new();
    let mut failures = 0usize;
    let mut engine: Option<(usize, Engine)> = None;
    let started = Instant::now();
    for case in &cases {
        if engine.as_ref().is_none_or(|(r, _)| *r != case.repo) {
            let e = xdr::engine_for(&repos[case.repo]);
            configure(&e, &repos[case.repo].root, layer.clone())?;
            engine = Some((case.repo, e));
        }
        let Some((_, engine)) = engine.as_ref() else {
            continue;
        };
        let language = repos[case.repo].language.clone();
        let (input, neighbours) = open_case(engine, &repos, case);
        let document = case.document(&repos);
        let lang = case.language(&repos);
        let removed = case.removed(&repos).trim_end();
        let next = case.next_lines(&repos, ORACLE_NEXT_LINES);
        let mut answer = removed.to_owned();
        for l in &next {
            answer.push('\n');
            answer.push_str(l);
        }

        server.answer(&answer);
        let shown = runtime
            .block_on(engine.complete(&input))
            .ok()
            .and_then(|o| o.items.into_iter().next());
        let t = truth.entry(language.clone()).or_default();
        t.cases += 1;
        let passed = shown.as_deref().is_some_and(|s| {
            let mut lines = s.split('\n');
            lines.next().is_some_and(|l| l.trim_end() == removed)
                && lines
                    .zip(&next)
                    .all(|(got, want)| got.trim_end() == want.trim_end())
                && s.split('\n').count() <= 1 + next.len()
        });
        if passed {
            t.passed += 1;
        } else {
            match &shown {
                None => t.nothing += 1,
                Some(_) => t.wrong += 1,
            }
            failures += 1;
            if args.explain || failures <= 20 {
                eprintln!(
                    "truth FAIL {}: want {:?} then {:?}; shown {:?}",
                    case.location(&repos),
                    removed,
                    next,
                    shown
                );
            }
        }

        for kind in BREAKS {
            let Some(bad) = broken_answer(kind, removed, &next, lang) else {
                continue;
            };
            // Only answers that fresh parses show broken count.
            if !adds_error(lang, &document, case.cursor, &bad) {
                continue;
            }
            server.answer(&bad);
            let shown = runtime
                .block_on(engine.complete(&input))
                .ok()
                .and_then(|o| o.items.into_iter().next());
            let b = broken.entry(language.clone()).or_default();
            b.cases += 1;
            match shown {
                None => b.dropped += 1,
                Some(s) if adds_error(lang, &document, case.cursor, &s) => {
                    b.shown_broken += 1;
                    if args.explain || b.shown_broken <= 5 {
                        eprintln!(
                            "broken SHOWN {} ({kind}): answer {bad:?}, shown {s:?}",
                            case.location(&repos)
                        );
                    }
                }
                Some(s) => {
                    b.repaired += 1;
                    if s.split('\n')
                        .next()
                        .is_some_and(|l| l.trim_end() == removed)
                    {
                        b.repaired_true_first_line += 1;
                    }
                }
            }
        }
        close_case(engine, &repos, case, &neighbours);
    }
    let mut languages: Vec<String> = truth.keys().cloned().collect();
    languages.sort();
    let mut rows = Vec::new();
    let mut total_t = TruthTally::default();
    let mut total_b = BrokenTally::default();
    for l in &languages {
        let t = truth.get(l).cloned().unwrap_or_default();
        let b = broken.get(l).cloned().unwrap_or_default();
        total_t.cases += t.cases;
        total_t.passed += t.passed;
        total_t.nothing += t.nothing;
        total_t.wrong += t.wrong;
        total_b.cases += b.cases;
        total_b.repaired += b.repaired;
        total_b.repaired_true_first_line += b.repaired_true_first_line;
        total_b.dropped += b.dropped;
        total_b.shown_broken += b.shown_broken;
        rows.push(oracle_row(l, &t, &b));
    }
    rows.push(oracle_row("overall", &total_t, &total_b));
    Ok(json!({
        "mode": "oracle",
        "seed": args.seed,
        "positions": cases.len(),
        "seconds": started.elapsed().as_secs_f64(),
        "languages": rows,
    }))
}

fn oracle_row(language: &str, t: &TruthTally, b: &BrokenTally) -> Value {
    let ratio = |a: usize, n: usize| (n > 0).then(|| a as f64 / n as f64);
    json!({
        "language": language,
        "truth": {
            "cases": t.cases, "passed": t.passed, "nothingShown": t.nothing, "wrong": t.wrong,
            "passRate": ratio(t.passed, t.cases),
        },
        "broken": {
            "cases": b.cases, "repaired": b.repaired,
            "repairedKeepingTheTrueFirstLine": b.repaired_true_first_line,
            "dropped": b.dropped, "shownBroken": b.shown_broken,
            "repairedRate": ratio(b.repaired, b.cases), "droppedRate": ratio(b.dropped, b.cases),
            "shownBrokenRate": ratio(b.shown_broken, b.cases),
        },
    })
}

fn write_oracle_tables(out: &mut impl Write, report: &Value) -> anyhow::Result<()> {
    writeln!(
        out,
        "quality --oracle: {} positions, seed {}, {:.1} s",
        report["positions"],
        report["seed"],
        report["seconds"].as_f64().unwrap_or(0.0)
    )?;
    writeln!(
        out,
        "| language | truth cases | passed | nothing shown | wrong | broken answers | repaired (true first line) | dropped | shown broken |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    let empty = Vec::new();
    for row in report["languages"].as_array().unwrap_or(&empty) {
        let (t, b) = (&row["truth"], &row["broken"]);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
            row["language"].as_str().unwrap_or("?"),
            t["cases"],
            t["passed"],
            t["nothingShown"],
            t["wrong"],
            b["cases"],
            b["repaired"],
            b["repairedKeepingTheTrueFirstLine"],
            b["dropped"],
            b["shownBroken"]
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_similarity_is_one_minus_the_normalised_distance() {
        assert_eq!(edit_similarity("", ""), 1.0);
        assert_eq!(edit_similarity("abc", "abc"), 1.0);
        assert_eq!(edit_similarity("abc", ""), 0.0);
        assert!((edit_similarity("kitten", "sitting") - (1.0 - 3.0 / 7.0)).abs() < 1e-9);
        // ö for o, ß for s, and one more s.
        assert!((edit_similarity("größe", "grosse") - (1.0 - 3.0 / 6.0)).abs() < 1e-9);
    }

    #[test]
    fn broken_answers_break_where_they_say() {
        let next = ["    b = 2", "    c = f(x, y)"];
        assert_eq!(
            broken_answer("truncated", "a = 1", &next, Language::Python).as_deref(),
            Some("a = 1\n    b = 2\n    c = f(")
        );
        assert_eq!(
            broken_answer("string", "a = 1", &next, Language::Python).as_deref(),
            Some("a = 1 'unfinished\n    b = 2\n    c = f(x, y)")
        );
        assert!(broken_answer("truncated", "a = 1", &[], Language::Python).is_none());
    }

    #[test]
    fn paired_interval_contains_the_difference() {
        let pairs: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i % 2), 0.0)).collect();
        let v = paired_interval(&pairs, 500, &mut Rng(3));
        let (d, lo, hi) = (v["diff"].as_f64(), v["low"].as_f64(), v["high"].as_f64());
        assert_eq!(d, Some(0.5));
        assert!(
            lo.is_some_and(|lo| lo < 0.5) && hi.is_some_and(|hi| hi > 0.5),
            "{v}"
        );
    }
}
