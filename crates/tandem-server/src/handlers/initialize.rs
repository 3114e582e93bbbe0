//! `initialize`: negotiate the position encoding, read the configuration layers, open the
//! workspace folders and advertise what Tandem serves.

use std::path::PathBuf;
use std::sync::Arc;

use tandem_workspace::{FileEvent, Limits, Workspace};
use tower_lsp_server::gen_lsp_types::{
    CodeActionOptions, CodeActionProvider, CompletionOptions, ExecuteCommandOptions,
    InitializeParams, InitializeResult, InlineCompletionProvider, MessageType, SaveOptions,
    ServerCapabilities, ServerInfo, TextDocumentSync, TextDocumentSyncKind,
    TextDocumentSyncOptions, WorkspaceFolders, WorkspaceFoldersServerCapabilities,
    WorkspaceOptions,
};

use crate::engine::parse_toml_layer;
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
    session
        .engine
        .index()
        .set_budget(config.workspace.index_budget_bytes);
    let limits = Limits {
        max_file_bytes: config.workspace.max_file_bytes,
        budget_bytes: config.workspace.index_budget_bytes,
    };
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
        ws.add_root(root);
    }
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

/// Feeds workspace file events into the embedded index, off the async runtime.
fn feed_index(session: &Session, mut events: tokio::sync::mpsc::UnboundedReceiver<FileEvent>) {
    let index = session.engine.index().clone();
    let spawned = std::thread::Builder::new().name("tandem-index".into()).spawn(move || {
        while let Some(event) = events.blocking_recv() {
            match event {
                FileEvent::Changed { root, path, text } => {
                    index.upsert(&tandem_workspace::file_key(Some(&root), &path), &text);
                }
                FileEvent::Removed { root, path } => {
                    index.remove(&tandem_workspace::file_key(Some(&root), &path));
                }
                FileEvent::Scanned { root, files, bytes } => {
                    let stats = index.stats();
                    tracing::info!(root = %root.display(), files, bytes, index_bytes = stats.bytes, "embedded index ready");
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the indexer: {e}");
    }
}
