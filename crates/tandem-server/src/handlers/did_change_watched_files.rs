//! `workspace/didChangeWatchedFiles`: files changed on disk, as the client's watchers saw them
//! (registered at `initialized` when the client can). Each is re-read through the workspace
//! (which applies the ignore rules) and its events reach the indexes like the server's own
//! watcher's; a file seen by both is indexed once, as unchanged text costs only a hash.

use tower_lsp_server::gen_lsp_types::DidChangeWatchedFilesParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidChangeWatchedFilesParams) {
    let Some(workspace) = session.workspace.get().cloned() else {
        return;
    };
    let paths: Vec<_> = params
        .changes
        .iter()
        .filter_map(|change| from_proto::file_path(&change.uri))
        .collect();
    if paths.is_empty() {
        return;
    }
    // Reading files is blocking work: off the message loop.
    tokio::task::spawn_blocking(move || {
        for path in paths {
            workspace.refresh(&path);
        }
    });
}

/// Registers a watcher for every file of the workspace folders with the client, if it can
/// register them dynamically.
pub async fn register(session: &Session) {
    use std::sync::atomic::Ordering;
    use tower_lsp_server::gen_lsp_types::Registration;
    if !session.watched_files_registration.load(Ordering::Relaxed) {
        return;
    }
    let registration = Registration {
        id: "tandem/watched-files".to_owned(),
        method: "workspace/didChangeWatchedFiles".to_owned(),
        register_options: Some(serde_json::json!({
            "watchers": [{ "globPattern": "**/*" }]
        })),
    };
    if let Err(e) = session.client.register_capability(vec![registration]).await {
        tracing::info!("the client did not register file watchers: {e}");
    }
}
