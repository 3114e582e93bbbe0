//! `tandem-bench index`: the workspace symbol index against universal-ctags on one tree.
//!
//! Three runs on the same tree, each a child process timed and measured by `/usr/bin/time`
//! (wall time, CPU time, peak resident memory), repeated in interleaved rounds (`--runs`,
//! default 3) and reported from the median round of each:
//!
//! - **cold**: this binary's hidden `index-phase` with an empty cache directory: walk the tree
//!   with the workspace's rules, read every file, extract the definitions of every file with a
//!   grammar (tags queries, on every core), write the on-disk cache;
//! - **warm**: the same with the cache the cold run wrote (files are read and hashed; unchanged
//!   ones are taken from the cache without parsing);
//! - **ctags**: `ctags -R -f /dev/null TREE` (universal-ctags, every language it knows, one
//!   thread).
//!
//! As in the server's first scan, the walk reads files on a thread of its own and the indexer
//! takes what has been read, up to 256 files at a time, so the texts of the whole tree are
//! never in memory at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The tree to index (e.g. the corpus of `tandem-bench xdr`).
    #[arg(long)]
    pub tree: PathBuf,
    /// Where the cold run writes its cache (emptied first). Default: a temporary directory.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The ctags binary.
    #[arg(long, default_value = "ctags")]
    pub ctags: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Rounds of (cold, warm, ctags), interleaved; each run's figures are the median round's.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// Arguments of the hidden child run.
#[derive(Debug, Clone, clap::Args)]
pub struct PhaseArgs {
    #[arg(long)]
    pub tree: PathBuf,
    #[arg(long)]
    pub cache: PathBuf,
}

/// Most files per `upsert_many` call (the server's batch).
const BATCH: usize = 256;

/// One measured child process.
#[derive(Debug, Clone)]
struct Measured {
    wall_s: f64,
    cpu_s: f64,
    peak_rss_bytes: u64,
    /// What the child printed on stdout (the phase's own JSON), if anything.
    output: Option<Value>,
}

/// Runs `program args` under `/usr/bin/time`.
fn measure(program: &Path, args: &[&std::ffi::OsStr]) -> anyhow::Result<Measured> {
    let out_file = std::env::temp_dir().join(format!("tandem-bench-time-{}", std::process::id()));
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&out_file)
        .arg(program)
        .args(args)
        .output()
        .with_context(|| format!("running /usr/bin/time {}", program.display()))?;
    let wall_s = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let times = std::fs::read_to_string(&out_file).context("reading /usr/bin/time's output")?;
    // Ignore a failed cleanup of a temporary file.
    let _ = std::fs::remove_file(&out_file);
    let fields: Vec<f64> = times
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [user, sys, max_kb] = fields[..] else {
        bail!("unexpected /usr/bin/time output: {times:?}");
    };
    Ok(Measured {
        wall_s,
        cpu_s: user + sys,
        peak_rss_bytes: (max_kb * 1024.0) as u64,
        output: serde_json::from_slice(&out.stdout).ok(),
    })
}

/// The child run: indexes `tree` with the cache under `cache`, prints its counts as JSON.
pub fn phase(args: &PhaseArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = tandem_core::Config::default();
    let index = tandem_index::SymbolIndex::new(
        config.workspace.symbol_budget_bytes as usize,
        Some(args.cache.clone()),
    );
    let root = args.tree.as_path();
    index.add_root(root);
    let limits = tandem_workspace::Limits {
        max_file_bytes: config.workspace.max_file_bytes,
        budget_bytes: u64::MAX,
    };
    // As in the server: the walk reads files on its own thread while this one parses what it
    // has read, taking up to a batch at a time.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(String, Arc<str>)>(BATCH);
    let (files, bytes, summary) = std::thread::scope(|scope| {
        let walker = scope.spawn(move || {
            let mut files = 0usize;
            let mut bytes = 0usize;
            let summary = tandem_workspace::scan(root, &limits, |path, text| {
                files += 1;
                bytes += text.len();
                // The receiver lives until the walk ends.
                let _ = sender.send((
                    tandem_workspace::file_key(Some(root), &path),
                    Arc::from(text),
                ));
            });
            (files, bytes, summary)
        });
        let mut batch: Vec<(String, Arc<str>)> = Vec::with_capacity(BATCH);
        while let Ok(first) = receiver.recv() {
            batch.push(first);
            batch.extend(receiver.try_iter().take(BATCH - 1));
            index.upsert_many(root, &batch);
            batch.clear();
        }
        walker
            .join()
            .map_err(|_| anyhow::anyhow!("the walk panicked"))
    })?;
    index.save(root);
    let stats = index.stats(Some(root));
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        json!({
            "filesRead": files,
            "bytesRead": bytes,
            "scanned": summary.files,
            "indexedFiles": stats.files,
            "symbols": stats.symbols,
            "indexBytes": stats.bytes,
            "parsed": stats.parsed,
            "fromCache": stats.from_cache,
            "seconds": started.elapsed().as_secs_f64(),
        })
    )?;
    Ok(())
}

pub fn main(args: &Args) -> anyhow::Result<()> {
    let tree = std::fs::canonicalize(&args.tree)
        .with_context(|| format!("reading {}", args.tree.display()))?;
    let cache = match &args.cache {
        Some(c) => c.clone(),
        None => std::env::temp_dir().join(format!("tandem-bench-index-{}", std::process::id())),
    };
    let me = std::env::current_exe().context("locating tandem-bench")?;
    let phase_args = [
        "index-phase".as_ref(),
        "--tree".as_ref(),
        tree.as_os_str(),
        "--cache".as_ref(),
        cache.as_os_str(),
    ];
    let ctags_path = which(&args.ctags).with_context(|| format!("{} not found", args.ctags))?;
    let ctags_args = [
        "-R".as_ref(),
        "-f".as_ref(),
        "/dev/null".as_ref(),
        tree.as_os_str(),
    ];
    let (mut colds, mut warms, mut ctagss) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.runs.max(1) {
        if cache.exists() {
            std::fs::remove_dir_all(&cache)
                .with_context(|| format!("emptying {}", cache.display()))?;
        }
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        eprintln!("index: round {round}: cold run on {}", tree.display());
        colds.push(measure(&me, &phase_args)?);
        eprintln!("index: round {round}: warm run");
        warms.push(measure(&me, &phase_args)?);
        eprintln!("index: round {round}: {} -R", args.ctags);
        ctagss.push(measure(&ctags_path, &ctags_args)?);
    }
    let (cold, warm, ctags) = (median(colds), median(warms), median(ctagss));
    if args.cache.is_none() {
        // A temporary directory: a failed cleanup leaves only a cache file behind.
        let _ = std::fs::remove_dir_all(&cache);
    }
    let files = cold
        .output
        .as_ref()
        .and_then(|o| o["filesRead"].as_u64())
        .unwrap_or(0);
    let row = |m: &Measured| {
        json!({
            "wallSeconds": m.wall_s,
            "cpuSeconds": m.cpu_s,
            "filesPerSecond": files as f64 / m.wall_s.max(1e-9),
            "peakRssBytes": m.peak_rss_bytes,
            "counts": m.output,
        })
    };
    let report = json!({
        "tree": tree,
        "files": files,
        "cold": row(&cold),
        "warm": row(&warm),
        "ctags": row(&ctags),
        "ratios": {
            "coldWallOverCtags": cold.wall_s / ctags.wall_s.max(1e-9),
            "warmWallOverCtags": warm.wall_s / ctags.wall_s.max(1e-9),
            "coldPeakRssOverCtags": cold.peak_rss_bytes as f64 / ctags.peak_rss_bytes.max(1) as f64,
            "warmPeakRssOverCtags": warm.peak_rss_bytes as f64 / ctags.peak_rss_bytes.max(1) as f64,
        },
    });
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(out, "tree {} ({files} source files read)", tree.display())?;
    writeln!(
        out,
        "{:<6} {:>9} {:>9} {:>10} {:>12} {:>10} {:>10}",
        "run", "wall s", "cpu s", "files/s", "peak RSS MB", "wall/ctags", "RSS/ctags"
    )?;
    for (name, m) in [("cold", &cold), ("warm", &warm), ("ctags", &ctags)] {
        writeln!(
            out,
            "{:<6} {:>9.2} {:>9.2} {:>10.0} {:>12.1} {:>10.2} {:>10.2}",
            name,
            m.wall_s,
            m.cpu_s,
            files as f64 / m.wall_s.max(1e-9),
            m.peak_rss_bytes as f64 / 1e6,
            m.wall_s / ctags.wall_s.max(1e-9),
            m.peak_rss_bytes as f64 / ctags.peak_rss_bytes.max(1) as f64,
        )?;
    }
    for (name, m) in [("cold", &cold), ("warm", &warm)] {
        if let Some(o) = &m.output {
            writeln!(out, "{name}: {o}")?;
        }
    }
    Ok(())
}

/// The path of `program`: itself when it has a `/`, else the first match on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The run with the median wall time (the upper one of an even count).
fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}
