//! The `LanguageServer` implementation: routes each method to its handler under `handlers/`,
//! and turns a panic inside a handler into an error response while the server lives on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use tower_lsp_server::LanguageServer;
use tower_lsp_server::gen_lsp_types::*;
use tower_lsp_server::jsonrpc::{Error, Result};

use crate::handlers;
use crate::session::Session;

pub struct Server {
    pub(crate) session: Arc<Session>,
    pub(crate) shut_down: Arc<AtomicBool>,
}

impl Server {
    /// `tandem/getStatus`: the payload of the last `tandem/status`, for clients that pull.
    pub(crate) async fn get_status(&self) -> Result<crate::status::Status> {
        guard("tandem/getStatus", async {
            crate::status::current(&self.session)
        })
        .await
    }

    /// Builds the backends and token counters of the configurations in force, off the
    /// runtime (see `Engine::prepare`).
    fn prepare_backends(&self) {
        let session = Arc::clone(&self.session);
        tokio::task::spawn_blocking(move || {
            guard_sync("prepare backends", || {
                session.engine.prepare(&session.roots())
            })
        });
    }
}

/// Runs a request handler; a panic answers this request with an internal error.
async fn guard<T>(method: &'static str, fut: impl Future<Output = T>) -> Result<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(value) => Ok(value),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(method, "handler panicked: {what}");
            Err(Error::internal_error())
        }
    }
}

/// Runs a notification handler; a panic is logged and the server goes on.
fn guard_sync(method: &'static str, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(f)) {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned());
        tracing::error!(method, "handler panicked: {}", what.unwrap_or_default());
    }
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        guard("initialize", async {
            handlers::initialize::handle(&self.session, params)
        })
        .await
    }

    async fn initialized(&self, _: InitializedParams) {
        crate::status::publish(&self.session);
        self.session.progress().client_initialized();
        // Not awaited here: a client slow to answer must not hold up the messages after it.
        let session = Arc::clone(&self.session);
        tokio::spawn(async move { handlers::did_change_watched_files::register(&session).await });
        self.prepare_backends();
    }

    async fn shutdown(&self) -> Result<()> {
        tracing::info!("shutdown");
        self.shut_down.store(true, Ordering::SeqCst);
        // What changed since the folders were scanned goes to the symbol cache.
        let session = Arc::clone(&self.session);
        let saved = tokio::task::spawn_blocking(move || {
            for root in session.roots() {
                session.engine.symbols().save(&root);
            }
        });
        if let Err(e) = saved.await {
            tracing::warn!("cannot save the symbol cache: {e}");
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        guard_sync("textDocument/didOpen", || {
            handlers::did_open::handle(&self.session, params)
        });
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        guard_sync("textDocument/didChange", || {
            handlers::did_change::handle(&self.session, params)
        });
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        guard_sync("textDocument/didClose", || {
            handlers::did_close::handle(&self.session, params)
        });
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        guard_sync("textDocument/didSave", || {
            handlers::did_save::handle(&self.session, params)
        });
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        guard_sync("workspace/didChangeConfiguration", || {
            handlers::did_change_configuration::handle(&self.session, params);
        });
        self.prepare_backends();
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        guard_sync("workspace/didChangeWorkspaceFolders", || {
            handlers::did_change_workspace_folders::handle(&self.session, params);
        });
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        guard_sync("workspace/didChangeWatchedFiles", || {
            handlers::did_change_watched_files::handle(&self.session, params);
        });
    }

    async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        guard(
            "textDocument/inlineCompletion",
            handlers::inline_completion::handle(&self.session, params),
        )
        .await
    }

    async fn code_action(
        &self,
        params: CodeActionParams,
    ) -> Result<Option<Vec<CodeActionResponse>>> {
        guard("textDocument/codeAction", async {
            handlers::code_action::handle(&self.session, params)
        })
        .await
    }

    async fn code_action_resolve(&self, params: CodeAction) -> Result<CodeAction> {
        guard(
            "codeAction/resolve",
            handlers::code_action_resolve::handle(&self.session, params),
        )
        .await?
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LspAny>> {
        guard(
            "workspace/executeCommand",
            handlers::execute_command::handle(&self.session, params),
        )
        .await?
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        guard(
            "textDocument/completion",
            handlers::completion::handle(&self.session, params),
        )
        .await
    }
}
