//! The `tandem` binary: a thin command line over the server and the engine.
//!
//! The subcommands other than `serve` print their results on stdout; `serve` never prints (stdout
//! is the protocol there), which `#![deny(clippy::print_stdout)]` in tandem-server guards.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use tandem_core::config::json_schema;
use tandem_core::{Document, LineCol, PositionEncoding};
use tandem_server::engine::{CompletionInput, Engine, parse_toml_layer};

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "An AI code-completion language server"
)]
struct Cli {
    /// Accepted for editors that pass it (vscode-languageclient does); stdio is the only transport.
    #[arg(long, global = true)]
    stdio: bool,
    /// Write logs here instead of stderr. Filter with TANDEM_LOG (e.g. `tandem=debug`).
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Use this configuration file instead of `$XDG_CONFIG_HOME/tandem/config.toml`.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve LSP over stdio (the default).
    Serve,
    /// Print the completion the server would offer at PATH:LINE:COL (1-based; COL in characters).
    Complete {
        location: String,
        /// Workspace root (default: the nearest ancestor with .git or tandem.toml).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Print all candidates with timing, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the context that would be sent for a completion at PATH:LINE:COL.
    Context {
        location: String,
        #[arg(long)]
        root: Option<PathBuf>,
        /// JSON output (the only format; accepted for clarity).
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration and whether the backend answers.
    Doctor {
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print the JSON Schema of the configuration.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve));
    if let Err(e) = init_logging(
        cli.log_file.as_deref(),
        if serving { "info" } else { "warn" },
    ) {
        eprintln!("tandem: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tandem: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Serve) => {
                let clean = tandem_server::run_stdio(cli.config).await;
                Ok(if clean {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Some(Command::Complete {
                location,
                root,
                json,
            }) => complete(&location, root, cli.config, json).await,
            Some(Command::Context {
                location,
                root,
                json: _,
            }) => context(&location, root, cli.config),
            Some(Command::Doctor { root }) => doctor(root, cli.config).await,
            Some(Command::Schema) => {
                println!("{}", serde_json::to_string_pretty(&json_schema())?);
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    // Background threads (the indexer, the watcher) must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log_file: Option<&Path>, default: &str) -> Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TANDEM_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        // Colours only for a person at a terminal: editors capture stderr into log files.
        None => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// `PATH:LINE:COL`, parsed from the right so that `C:\src\a.rs:3:7` works.
fn parse_location(location: &str) -> Result<(PathBuf, u32, u32)> {
    let mut parts = location.rsplitn(3, ':');
    let (Some(col), Some(line), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected PATH:LINE:COL, got `{location}`");
    };
    let line: u32 = line
        .parse()
        .with_context(|| format!("LINE must be a positive number, got `{line}`"))?;
    let col: u32 = col
        .parse()
        .with_context(|| format!("COL must be a positive number, got `{col}`"))?;
    if line == 0 || col == 0 {
        bail!("LINE and COL are 1-based");
    }
    Ok((PathBuf::from(path), line - 1, col - 1))
}

fn find_root(file: &Path) -> PathBuf {
    let start = file.parent().unwrap_or(Path::new("."));
    start
        .ancestors()
        .find(|dir| dir.join(".git").exists() || dir.join("tandem.toml").is_file())
        .unwrap_or(start)
        .to_path_buf()
}

/// An engine configured as the server would be for `root`, with its workspace indexed.
fn engine_for(
    root: &Path,
    config_file: Option<PathBuf>,
    index: bool,
) -> Result<(Engine, f64, Vec<String>)> {
    let user_path = config_file
        .clone()
        .or_else(tandem_workspace::user_config_path);
    let engine = Engine::new(tandem_core::config::WorkspaceConfig::default().index_budget_bytes);
    let mut messages = Vec::new();
    if let Some(path) = user_path {
        match tandem_workspace::read_config_file(&path) {
            Some(text) => {
                let text = text.with_context(|| format!("cannot read {}", path.display()))?;
                messages.extend(engine.set_user_layer(Some(
                    parse_toml_layer(&path, &text).map_err(anyhow::Error::msg)?,
                )));
            }
            None if config_file.is_some() => bail!("config file {} not found", path.display()),
            None => {}
        }
    }
    if let Some((path, text)) = tandem_workspace::read_workspace_config(root) {
        let text = text.with_context(|| format!("cannot read {}", path.display()))?;
        messages.extend(engine.set_workspace_layer(
            root,
            Some(parse_toml_layer(&path, &text).map_err(anyhow::Error::msg)?),
        ));
    }
    for message in engine.reload(Some(root)) {
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    for message in &messages {
        eprintln!("{message}");
    }
    let started = Instant::now();
    if index {
        let config = engine.config(Some(root));
        engine.configure_indexes(&config);
        let limits = tandem_workspace::Limits {
            max_file_bytes: config.workspace.max_file_bytes,
            budget_bytes: config.workspace.index_budget_bytes,
        };
        let index = engine.index().clone();
        tandem_workspace::scan(root, &limits, |path, text| {
            index.upsert(&tandem_workspace::file_key(Some(root), &path), &text);
        });
    }
    Ok((engine, started.elapsed().as_secs_f64() * 1000.0, messages))
}

fn input_at(location: &str, root: Option<PathBuf>) -> Result<(CompletionInput, PathBuf)> {
    let (file, line, col) = parse_location(location)?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let root = match root {
        Some(r) => std::fs::canonicalize(&r).unwrap_or(r),
        None => find_root(&file),
    };
    let language = tandem_syntax::language_id_for_path(&file.to_string_lossy());
    let doc = Document::new(&text, 0, language);
    let rope = doc.rope();
    if line as usize >= rope.len_lines() {
        bail!(
            "{} has {} lines; line {} is past its end",
            file.display(),
            rope.len_lines(),
            line + 1
        );
    }
    let offset =
        tandem_core::document::char_offset(rope, LineCol::new(line, col), PositionEncoding::Utf32);
    let path = tandem_workspace::file_key(Some(&root), &file);
    Ok((
        CompletionInput {
            snapshot: doc.snapshot(),
            offset,
            path,
            root: Some(root.clone()),
        },
        root,
    ))
}

/// Fills the symbol index with `root`'s files (parsing only those not in the on-disk cache),
/// as the server does when it opens a folder; a no-op when the definitions source is off.
fn index_symbols(engine: &Engine, root: &Path) {
    let config = engine.config(Some(root));
    if !config
        .context
        .sources
        .contains(&tandem_core::config::ContextSource::Definitions)
    {
        return;
    }
    engine.configure_indexes(&config);
    let symbols = engine.symbols();
    symbols.add_root(root);
    let limits = tandem_workspace::Limits {
        max_file_bytes: config.workspace.max_file_bytes,
        budget_bytes: config.workspace.read_budget_bytes,
    };
    let mut batch: Vec<(String, std::sync::Arc<str>)> = Vec::new();
    tandem_workspace::scan(root, &limits, |path, text| {
        let key = tandem_workspace::file_key(Some(root), &path);
        if tandem_syntax::Language::from_path(&key).is_some() {
            batch.push((key, text.into()));
            if batch.len() >= 512 {
                symbols.upsert_many(root, &batch);
                batch.clear();
            }
        }
    });
    symbols.upsert_many(root, &batch);
    symbols.save(root);
}

/// Most bytes the CLI reads to find the files that count as open.
const SIMILAR_SCAN_BYTES: u64 = 4_000_000;

/// The CLI has no open documents: the files that count as open are those an editor would
/// likely have beside the target ([`tandem_core::similar::open_neighbours`]: up to four files
/// of its directory and language family, nearest by name), found in the scan of the root
/// (reading at most [`SIMILAR_SCAN_BYTES`]). The quality benchmark uses the same rule.
fn note_similar_sources(engine: &Engine, root: &Path, input: &CompletionInput) {
    let config = engine.config(Some(root));
    if !config
        .context
        .sources
        .contains(&tandem_core::config::ContextSource::Similar)
        || config.context.max_snippets == 0
    {
        return;
    }
    let dir = input
        .path
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| d.to_owned());
    let limits = tandem_workspace::Limits {
        max_file_bytes: config.workspace.max_file_bytes,
        budget_bytes: SIMILAR_SCAN_BYTES.min(config.workspace.index_budget_bytes),
    };
    let mut files: Vec<(String, &'static str, String)> = Vec::new();
    tandem_workspace::scan(root, &limits, |path, text| {
        let key = tandem_workspace::file_key(Some(root), &path);
        if key.rsplit_once('/').map_or("", |(d, _)| d) == dir {
            let language = tandem_syntax::language_id_for_path(&key);
            files.push((key, language, text));
        }
    });
    let chosen: Vec<String> = tandem_core::similar::open_neighbours(
        &input.path,
        &input.snapshot.language_id,
        files.iter().map(|(k, l, _)| (k.as_str(), *l)),
    )
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Noted last is searched first: the nearest goes last.
    for key in chosen.iter().rev() {
        if let Some((_, language, text)) = files.iter().find(|(k, _, _)| k == key) {
            let snapshot = Document::new(text, 0, *language).snapshot();
            engine.note_document(Some(root), key, snapshot);
        }
    }
}

async fn complete(
    location: &str,
    root: Option<PathBuf>,
    config: Option<PathBuf>,
    as_json: bool,
) -> Result<ExitCode> {
    let (input, root) = input_at(location, root)?;
    let (engine, index_ms, _) = engine_for(&root, config, true)?;
    index_symbols(&engine, &root);
    note_similar_sources(&engine, &root, &input);
    let output = engine
        .complete(&input)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if as_json {
        let value = json!({
            "completions": output.items,
            "raw": output.raw,
            "timing": { "indexMs": index_ms, "backendMs": output.backend_ms, "totalMs": output.total_ms },
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if let Some(first) = output.items.first() {
        println!("{first}");
    } else {
        eprintln!("tandem: no completion at {location}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn context(location: &str, root: Option<PathBuf>, config: Option<PathBuf>) -> Result<ExitCode> {
    let (input, root) = input_at(location, root)?;
    let (engine, _, _) = engine_for(&root, config, false)?;
    index_symbols(&engine, &root);
    note_similar_sources(&engine, &root, &input);
    let (request, preview) = engine.preview(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
    let value = json!({
        "schema": 1,
        "path": request.path,
        "language": request.language,
        "mode": request.mode,
        "prefix": request.prefix,
        "suffix": request.suffix,
        "snippets": request.snippets,
        "prompt": preview.prompt,
        "request": preview.body,
    });
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

async fn doctor(root: Option<PathBuf>, config: Option<PathBuf>) -> Result<ExitCode> {
    let root = match root {
        Some(r) => r,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let (engine, _, messages) = engine_for(&root, config, false)?;
    let resolved = engine.config(Some(&root));
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut failed = !messages.is_empty();
    rows.push([
        "configuration".into(),
        if messages.is_empty() {
            "ok".into()
        } else {
            "FAIL".into()
        },
        if messages.is_empty() {
            "no problems".into()
        } else {
            format!("{} problem(s), listed above", messages.len())
        },
    ]);
    let mut backends = vec![("backend", resolved.backend.clone())];
    if let Some(fallback) = &resolved.backend.fallback {
        backends.push(("fallback", (**fallback).clone()));
    }
    for (role, mut backend_config) in backends {
        backend_config.fallback = None;
        let name = format!(
            "{role} `{}`{}",
            backend_config.kind.as_str(),
            backend_config
                .model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
        failed |= !check_backend(&engine, &name, &backend_config, &mut rows).await;
    }
    let width = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    for [check, result, detail] in &rows {
        println!("{check:<width$}  {result:<4}  {detail}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Checks one backend for real: key, reachability and models, and one tiny generation.
async fn check_backend(
    engine: &Engine,
    name: &str,
    config: &tandem_core::BackendConfig,
    rows: &mut Vec<[String; 3]>,
) -> bool {
    use futures::StreamExt as _;
    let mut ok = true;
    if let Some(var) = &config.api_key_env {
        let set = std::env::var_os(var).is_some();
        ok &= set;
        rows.push([
            format!("{name}: api key"),
            if set { "ok".into() } else { "FAIL".into() },
            if set {
                format!("read from ${var}")
            } else {
                format!("${var} is not set; export it, or remove `apiKeyEnv` for a local server")
            },
        ]);
    }
    let backend = match tandem_models::build(config, engine.index()) {
        Ok(b) => b,
        Err(e) => {
            rows.push([format!("{name}: setup"), "FAIL".into(), e.to_string()]);
            return false;
        }
    };
    match backend.health().await {
        Ok(line) => rows.push([format!("{name}: reachable"), "ok".into(), line]),
        Err(e) => {
            rows.push([format!("{name}: reachable"), "FAIL".into(), e.to_string()]);
            return false;
        }
    }
    let request = tandem_core::CompletionRequest {
        prefix: "def add(a, b):\n    return ".into(),
        suffix: "\n".into(),
        snippets: Vec::new(),
        path: "doctor.py".into(),
        language: "python".into(),
        mode: tandem_core::CompletionMode::SingleLine,
        stop: vec!["\n".into()],
        max_tokens: 8,
        candidates: 1,
    };
    let started = Instant::now();
    let generated = async {
        let mut stream = backend.stream(request).await?;
        let mut text = String::new();
        let mut first_ms = None;
        while let Some(chunk) = stream.next().await {
            first_ms.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
            text.push_str(&chunk?.text);
        }
        Ok::<_, tandem_models::BackendError>((text, first_ms))
    };
    match generated.await {
        Ok((text, first_ms)) => rows.push([
            format!("{name}: generation"),
            "ok".into(),
            format!(
                "{:.0} ms in total{}; generated {:?}",
                started.elapsed().as_secs_f64() * 1000.0,
                first_ms
                    .map(|ms| format!(", first text after {ms:.0} ms"))
                    .unwrap_or_default(),
                text
            ),
        ]),
        Err(e) => {
            ok = false;
            rows.push([format!("{name}: generation"), "FAIL".into(), e.to_string()]);
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_from_the_right() {
        let (p, l, c) = parse_location(r"C:\src\a.rs:3:7").expect("valid");
        assert_eq!((p, l, c), (PathBuf::from(r"C:\src\a.rs"), 2, 6));
        assert!(parse_location("a.rs:0:1").is_err());
        assert!(parse_location("a.rs:3").is_err());
    }
}
