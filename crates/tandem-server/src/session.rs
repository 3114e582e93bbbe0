//! The server's state: open documents, workspace folders, the negotiated encoding, in-flight
//! completions, and the engine.
//!
//! Invariant: document changes are applied synchronously inside the notification handler, before
//! any `.await`; completions work on a [`Snapshot`] and never hold a lock across an `.await`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use dashmap::DashMap;
use tandem_core::{Document, PositionEncoding, Snapshot};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::gen_lsp_types::{MessageType, Uri};

use crate::engine::Engine;

/// How long after an edit a document's definitions are indexed again.
pub const SYMBOL_REFRESH_AFTER: std::time::Duration = std::time::Duration::from_millis(750);

pub struct Session {
    pub client: Client,
    pub engine: Arc<Engine>,
    /// Documents whose symbols are to be re-indexed after their edits pause.
    symbols_pending: Arc<Mutex<HashSet<String>>>,
    pub documents: DashMap<Uri, Document>,
    encoding: OnceLock<PositionEncoding>,
    roots: RwLock<Vec<PathBuf>>,
    inflight: DashMap<Uri, (u64, CancellationToken)>,
    next_ticket: AtomicU64,
    /// Messages already shown to the user, so trouble is reported once, not per keystroke.
    shown: Mutex<HashSet<String>>,
    pub workspace: OnceLock<Arc<tandem_workspace::Workspace>>,
    /// The user config file to read (`--config`), else the default location.
    pub user_config: Option<PathBuf>,
    /// The last `tandem/status` queued, and the queue.
    last_status: Mutex<Option<crate::status::Status>>,
    status_tx: tokio::sync::mpsc::UnboundedSender<crate::status::Status>,
    /// Backends (by description) the user has been told are down, with the message shown.
    down: Mutex<std::collections::HashMap<String, String>>,
    /// `$/progress` for indexing (a disabled sender when the client does not support it).
    pub progress: OnceLock<crate::progress::ProgressSender>,
    /// The client can register file watchers for us (`workspace/didChangeWatchedFiles`).
    pub watched_files_registration: std::sync::atomic::AtomicBool,
    /// Code actions: the client's capabilities for them and results that can be refined.
    pub actions: crate::handlers::code_action::ActionState,
}

/// A completion's claim on its document: a newer one for the same document cancels it.
pub struct Ticket {
    uri: Uri,
    id: u64,
    pub cancelled: CancellationToken,
}

impl Session {
    pub fn new(client: Client, user_config: Option<PathBuf>) -> Self {
        let status_tx = crate::status::sender(client.clone());
        Self {
            client,
            symbols_pending: Arc::default(),
            engine: Arc::new(Engine::new(
                tandem_core::config::WorkspaceConfig::default().index_budget_bytes,
            )),
            documents: DashMap::new(),
            encoding: OnceLock::new(),
            roots: RwLock::new(Vec::new()),
            inflight: DashMap::new(),
            next_ticket: AtomicU64::new(1),
            shown: Mutex::new(HashSet::new()),
            workspace: OnceLock::new(),
            user_config,
            last_status: Mutex::new(None),
            status_tx,
            down: Mutex::new(std::collections::HashMap::new()),
            progress: OnceLock::new(),
            watched_files_registration: std::sync::atomic::AtomicBool::new(false),
            actions: Default::default(),
        }
    }

    /// Indexes a document's text in the symbol index, off the async runtime (parsing takes
    /// milliseconds).
    pub fn index_symbols(&self, root: Option<PathBuf>, key: String, text: String) {
        let Some(root) = root else { return };
        let symbols = self.engine.symbols().clone();
        tokio::task::spawn_blocking(move || {
            symbols.upsert(&root, &key, &text);
        });
    }

    /// Re-indexes an edited document's definitions [`SYMBOL_REFRESH_AFTER`] after the first
    /// edit since its last refresh, from the text current then, off the async runtime: so at
    /// most that often while typing goes on, and soon after it stops. Outside a runtime (unit
    /// tests) it does nothing.
    pub fn refresh_symbols_later(&self, key: String) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match self.symbols_pending.lock() {
            Ok(mut pending) => {
                // Most keystrokes find one scheduled (it will read the latest text): no copy
                // of the key for them.
                if pending.contains(&key) {
                    return;
                }
                pending.insert(key.clone());
            }
            Err(_) => return,
        }
        let engine = Arc::clone(&self.engine);
        let pending = Arc::clone(&self.symbols_pending);
        handle.spawn(async move {
            tokio::time::sleep(SYMBOL_REFRESH_AFTER).await;
            if let Ok(mut pending) = pending.lock() {
                pending.remove(&key);
            }
            // A failed join only means the runtime is shutting down.
            let _ = tokio::task::spawn_blocking(move || engine.refresh_symbols(&key)).await;
        });
    }

    /// The progress sender (disabled before `initialize`).
    pub fn progress(&self) -> crate::progress::ProgressSender {
        self.progress
            .get()
            .cloned()
            .unwrap_or_else(crate::progress::ProgressSender::disabled)
    }

    pub fn encoding(&self) -> PositionEncoding {
        self.encoding.get().copied().unwrap_or_default()
    }

    pub fn set_encoding(&self, enc: PositionEncoding) {
        let _ = self.encoding.set(enc);
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        self.roots.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn add_root(&self, root: PathBuf) -> bool {
        let Ok(mut roots) = self.roots.write() else {
            return false;
        };
        if roots.contains(&root) {
            return false;
        }
        roots.push(root);
        true
    }

    pub fn remove_root(&self, root: &Path) {
        if let Ok(mut roots) = self.roots.write() {
            roots.retain(|r| r != root);
        }
    }

    /// The nearest (deepest) workspace folder containing `path`.
    pub fn root_of(&self, path: &Path) -> Option<PathBuf> {
        self.roots
            .read()
            .ok()?
            .iter()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.components().count())
            .cloned()
    }

    /// Where a document lives: its workspace folder, and its key (the path relative to that
    /// folder, which the indexes and the prompt use). `None` for documents that are not files.
    pub fn locate(&self, uri: &Uri) -> Option<(Option<PathBuf>, PathBuf, String)> {
        let file = crate::proto::from_proto::file_path(uri)?;
        let root = self.root_of(&file);
        let key = tandem_workspace::file_key(root.as_deref(), &file);
        Some((root, file, key))
    }

    pub fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        self.documents.get(uri).map(|d| d.snapshot())
    }

    pub fn version(&self, uri: &Uri) -> Option<i32> {
        self.documents.get(uri).map(|d| d.version())
    }

    /// Starts a completion for `uri`, cancelling the one in flight for it.
    pub fn begin_completion(&self, uri: &Uri) -> Ticket {
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        if let Some((_, (_, previous))) = self.inflight.remove(uri) {
            previous.cancel();
        }
        self.inflight.insert(uri.clone(), (id, token.clone()));
        Ticket {
            uri: uri.clone(),
            id,
            cancelled: token,
        }
    }

    pub fn end_completion(&self, ticket: &Ticket) {
        self.inflight
            .remove_if(&ticket.uri, |_, (id, _)| *id == ticket.id);
    }

    /// Whether a completion is being computed.
    pub fn busy(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Queues `status` for sending unless it is the one sent last; under one lock, so the
    /// queue's order is the order of the changes.
    pub fn queue_status(&self, status: crate::status::Status) {
        let Ok(mut last) = self.last_status.lock() else {
            return;
        };
        if last.as_ref() == Some(&status) {
            return;
        }
        *last = Some(status.clone());
        let _ = self.status_tx.send(status);
    }

    /// Tells the user once when a backend goes down and once when it comes back.
    pub fn note_backend(&self, backend: &str, condition: &tandem_models::Condition) {
        let Ok(mut down) = self.down.lock() else {
            return;
        };
        match condition {
            tandem_models::Condition::Down(why) => {
                if !down.contains_key(backend) {
                    let message = format!("tandem: {why}");
                    down.insert(backend.to_owned(), message.clone());
                    drop(down);
                    self.report(MessageType::Warning, message);
                }
            }
            tandem_models::Condition::Up => {
                if let Some(message) = down.remove(backend) {
                    drop(down);
                    self.forget_reports(&message);
                    let back = format!("tandem: {backend} answers again");
                    self.forget_reports(&back);
                    self.report(MessageType::Info, back);
                }
            }
        }
    }

    /// Logs `message` and shows it to the user the first time it is seen.
    pub fn report(&self, kind: MessageType, message: String) {
        self.report_keyed(message.clone(), kind, message);
    }

    /// Logs `message`, and shows it unless a message with the same `key` was shown already
    /// (for problems whose wording varies from request to request).
    pub fn report_keyed(&self, key: String, kind: MessageType, message: String) {
        match kind {
            MessageType::Error => tracing::error!("{message}"),
            MessageType::Warning => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        let first = self
            .shown
            .lock()
            .map(|mut s| s.insert(key))
            .unwrap_or(false);
        if first {
            let client = self.client.clone();
            tokio::spawn(async move { client.show_message(kind, message).await });
        }
    }

    /// Forgets shown messages with this prefix, so that a recurrence is reported again (a
    /// backend that recovered and failed again).
    pub fn forget_reports(&self, prefix: &str) {
        if let Ok(mut shown) = self.shown.lock() {
            shown.retain(|m| !m.starts_with(prefix));
        }
    }
}
