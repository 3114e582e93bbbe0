//! Tandem's language server: the only crate that knows LSP.
//!
//! `handlers/` has one module per LSP method; `proto` converts at the edge; `session` holds the
//! state; `engine` is the LSP-free completion path that the CLI shares.
#![deny(clippy::print_stdout)]

pub mod engine;
mod handlers;
pub mod proto;
mod server;
mod session;

use std::path::PathBuf;
use std::sync::Arc;

use tower_lsp_server::{LspService, Server as LspServer};

/// How many requests the transport polls at once. tower-lsp-server's default of 4 lets four
/// requests waiting on a slow model stall every later message, `didChange` and
/// `$/cancelRequest` included; superseded completions are answered at once besides.
pub const CONCURRENCY: usize = 256;

/// Serves LSP on stdin/stdout until `exit` or end of input.
pub async fn run_stdio(user_config: Option<PathBuf>) {
    tandem_models::init_tls();
    let (service, socket) = LspService::new(|client| server::Server {
        session: Arc::new(session::Session::new(client, user_config)),
    });
    LspServer::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;
}
