//! `initialize`: negotiate the position encoding, read the configuration layers, open the
//! workspace folders and advertise what Tandem serves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_workspace::{FileEvent, Limits, Workspace};
use tower_lsp_server::gen_lsp_types::{
    CodeActionOptions, CodeActionProvider, CompletionOptions, ExecuteCommandOptions,
    InitializeParams, InitializeResult, InlineCompletionProvider, MessageType, SaveOptions,
    ServerCapabilities, ServerInfo, TextDocumentSync, TextDocumentSyncKind,
    TextDocumentSyncOptions, WorkspaceFolders, WorkspaceFoldersServerCapabilities,
    WorkspaceOptions,
};

use crate::engine::parse_toml_layer;
use crate::progress::ProgressEvent;
use crate::proto::{from_proto, to_proto};
use crate::session::Session;

pub fn handle(session: &Arc<Session>, params: InitializeParams) -> InitializeResult {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_deref());
    let encoding = from_proto::negotiate_encoding(offered);
    session.set_encoding(encoding);
    let caps = serde_json::to_value(&params.capabilities).unwrap_or_default();
    let _ = session
        .actions
        .caps
        .set(super::code_action::ClientActionCaps::from_capabilities(
            &caps,
        ));

    read_user_config(session);
    for message in session
        .engine
        .set_init_layer(params.initialization_options.filter(|v| !v.is_null()))
    {
        session.report(MessageType::Warning, message);
    }
    for message in session.engine.reload_all(&[]) {
        session.report(MessageType::Warning, message);
    }

    let config = session.engine.config(None);
    session.engine.configure_indexes(&config);
    let limits = Limits {
        max_file_bytes: config.workspace.max_file_bytes,
        budget_bytes: config.workspace.read_budget_bytes,
    };
    let capabilities = &params.capabilities;
    let progress = capabilities
        .window
        .as_ref()
        .and_then(|w| w.work_done_progress)
        .unwrap_or(false);
    let _ = session.progress.set(if progress {
        crate::progress::ProgressSender::start(session.client.clone())
    } else {
        crate::progress::ProgressSender::disabled()
    });
    let watchers = capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.did_change_watched_files.as_ref())
        .and_then(|d| d.dynamic_registration)
        .unwrap_or(false);
    session
        .watched_files_registration
        .store(watchers, std::sync::atomic::Ordering::Relaxed);
    let (workspace, events) = Workspace::new(limits);
    let _ = session.workspace.set(workspace);
    feed_index(session, events);

    let mut roots: Vec<PathBuf> = match params.workspace_folders_initialize_params.workspace_folders
    {
        Some(WorkspaceFolders::WorkspaceFolderList(folders)) => folders
            .iter()
            .filter_map(|f| from_proto::file_path(&f.uri))
            .collect(),
        _ => Vec::new(),
    };
    #[allow(deprecated)]
    if roots.is_empty()
        && let Some(root) = params.root_uri.as_ref().and_then(from_proto::file_path)
    {
        roots.push(root);
    }
    for root in roots {
        open_root(session, root);
    }
    tracing::info!(?encoding, roots = ?session.roots(), "initialized");

    InitializeResult {
        capabilities: ServerCapabilities {
            position_encoding: Some(to_proto::encoding(encoding)),
            text_document_sync: Some(TextDocumentSync::Options(TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::Incremental),
                save: Some(
                    SaveOptions {
                        include_text: Some(false),
                    }
                    .into(),
                ),
                ..TextDocumentSyncOptions::default()
            })),
            inline_completion_provider: Some(InlineCompletionProvider::Bool(true)),
            completion_provider: Some(CompletionOptions::default()),
            code_action_provider: Some(CodeActionProvider::CodeActionOptions(CodeActionOptions {
                code_action_kinds: Some(
                    ["quickfix", "refactor.rewrite", "source"]
                        .iter()
                        .filter_map(|k| serde_json::from_value(serde_json::json!(k)).ok())
                        .collect(),
                ),
                resolve_provider: Some(true),
                ..CodeActionOptions::default()
            })),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: vec![
                    super::code_action::RUN_ACTION.to_owned(),
                    super::code_action::REFINE.to_owned(),
                ],
                ..ExecuteCommandOptions::default()
            }),
            workspace: Some(WorkspaceOptions {
                workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                    supported: Some(true),
                    change_notifications: Some(true.into()),
                }),
                ..WorkspaceOptions::default()
            }),
            ..ServerCapabilities::default()
        },
        server_info: Some(ServerInfo {
            name: "tandem".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
    }
}

/// Adds a workspace folder: its `tandem.toml`, and its files for the indexes.
pub fn open_root(session: &Session, root: PathBuf) {
    if !session.add_root(root.clone()) {
        return;
    }
    let layer = match tandem_workspace::read_workspace_config(&root) {
        Some((path, Ok(text))) => match parse_toml_layer(&path, &text) {
            Ok(v) => Some(v),
            Err(message) => {
                session.report(MessageType::Warning, message);
                None
            }
        },
        Some((path, Err(e))) => {
            session.report(
                MessageType::Warning,
                format!("tandem: cannot read {}: {e}", path.display()),
            );
            None
        }
        None => None,
    };
    for message in session.engine.set_workspace_layer(&root, layer) {
        session.report(MessageType::Warning, message);
    }
    for message in session.engine.reload(Some(&root)) {
        session.report(MessageType::Warning, message);
    }
    if let Some(ws) = session.workspace.get() {
        session.progress().send(ProgressEvent::Begin {
            token: progress_token(&root),
            title: "Tandem: indexing".to_owned(),
            message: root.file_name().map_or_else(
                || root.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        });
        ws.add_root(root);
    }
}

/// The `$/progress` token of a root's indexing.
fn progress_token(root: &std::path::Path) -> String {
    format!("tandem/index/{}", root.display())
}

fn read_user_config(session: &Session) {
    let Some(path) = session
        .user_config
        .clone()
        .or_else(tandem_workspace::user_config_path)
    else {
        return;
    };
    let layer = match tandem_workspace::read_config_file(&path) {
        Some(Ok(text)) => match parse_toml_layer(&path, &text) {
            Ok(v) => Some(v),
            Err(message) => {
                session.report(MessageType::Warning, message);
                None
            }
        },
        Some(Err(e)) => {
            session.report(
                MessageType::Warning,
                format!("tandem: cannot read {}: {e}", path.display()),
            );
            None
        }
        None => {
            if session.user_config.is_some() {
                session.report(
                    MessageType::Warning,
                    format!("tandem: config file {} not found", path.display()),
                );
            }
            None
        }
    };
    for message in session.engine.set_user_layer(layer) {
        session.report(MessageType::Warning, message);
    }
}

/// Feeds workspace file events into the embedded index and the symbol index, off the async
/// runtime. Events are taken in batches so that the symbol index parses on every core; a root's
/// first event loads its symbol cache, its `Scanned` event writes it back and ends its
/// `$/progress`.
fn feed_index(session: &Arc<Session>, mut events: tokio::sync::mpsc::UnboundedReceiver<FileEvent>) {
    let session = Arc::clone(session);
    let spawned = std::thread::Builder::new()
        .name("tandem-index".into())
        .spawn(move || {
            // Requests come first: the indexer (and the threads it starts, which inherit
            // this) runs at the lowest priority, so that it takes only the CPU they leave.
            if let Err(e) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::debug!("cannot lower the indexer's priority: {e:?}");
            }
            let index = session.engine.index().clone();
            let symbols = session.engine.symbols().clone();
            let progress = session.progress();
            // Files indexed per root since its scan began, and when progress was last reported.
            let mut counts: HashMap<PathBuf, (usize, Instant)> = HashMap::new();
            let mut pending: Vec<(String, Arc<str>)> = Vec::new();
            let mut pending_root: Option<Arc<Path>> = None;
            let flush = |root: &Option<Arc<Path>>,
                         pending: &mut Vec<(String, Arc<str>)>,
                         counts: &mut HashMap<PathBuf, (usize, Instant)>| {
                let Some(root) = root else { return };
                if pending.is_empty() {
                    return;
                }
                symbols.add_root(root);
                symbols.upsert_many(root, pending);
                let entry = counts
                    .entry(root.to_path_buf())
                    .or_insert_with(|| (0, Instant::now()));
                entry.0 += pending.len();
                if entry.1.elapsed() >= PROGRESS_EVERY {
                    entry.1 = Instant::now();
                    progress.send(ProgressEvent::Report {
                        token: progress_token(root),
                        message: format!("{} files", entry.0),
                    });
                }
                pending.clear();
            };
            while let Some(first) = events.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match events.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                for event in batch {
                    match event {
                        FileEvent::Changed { root, path, text } => {
                            let key = tandem_workspace::file_key(Some(&root), &path);
                            index.upsert(&key, &text);
                            if pending_root.as_ref() != Some(&root) {
                                flush(&pending_root, &mut pending, &mut counts);
                                pending_root = Some(root);
                            }
                            pending.push((key, text));
                        }
                        FileEvent::Removed { root, path } => {
                            flush(&pending_root, &mut pending, &mut counts);
                            let key = tandem_workspace::file_key(Some(&root), &path);
                            index.remove(&key);
                            symbols.remove(&root, &key);
                        }
                        FileEvent::Scanned { root, files, bytes } => {
                            flush(&pending_root, &mut pending, &mut counts);
                            counts.remove(&root);
                            symbols.save(&root);
                            let embedded = index.stats();
                            let stats = symbols.stats(Some(&root));
                            tracing::info!(
                                root = %root.display(),
                                files,
                                bytes,
                                index_bytes = embedded.bytes,
                                symbols = stats.symbols,
                                symbol_files = stats.files,
                                symbol_bytes = stats.bytes,
                                from_cache = stats.from_cache,
                                parsed = stats.parsed,
                                "workspace indexed"
                            );
                            progress.send(ProgressEvent::End {
                                token: progress_token(&root),
                                message: format!(
                                    "{files} files, {} symbols ({} from cache), {:.1} MB",
                                    stats.symbols,
                                    stats.from_cache,
                                    stats.bytes as f64 / 1e6
                                ),
                            });
                        }
                    }
                }
                flush(&pending_root, &mut pending, &mut counts);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the indexer: {e}");
    }
}

/// Most file events taken at once.
const BATCH: usize = 256;
/// How often indexing progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
