//! Tandem's language server: the only crate that knows LSP.
//!
//! `handlers/` has one module per LSP method; `proto` converts at the edge; `session` holds the
//! state; `engine` is the LSP-free completion path that the CLI shares.
#![deny(clippy::print_stdout)]

pub mod engine;
mod framing;
mod handlers;
mod progress;
pub mod proto;
mod server;
mod session;
mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tower_lsp_server::{LspService, Server as LspServer};

/// How many requests the transport polls at once. tower-lsp-server's default of 4 lets four
/// requests waiting on a slow model stall every later message, `didChange` and
/// `$/cancelRequest` included; superseded completions are answered at once besides.
pub const CONCURRENCY: usize = 256;

/// Serves LSP on stdin/stdout until `exit` or end of input. Returns whether the client asked
/// for `shutdown` first (the exit code is 0 then, 1 otherwise, as the LSP requires).
pub async fn run_stdio(user_config: Option<PathBuf>) -> bool {
    tandem_models::init_tls();
    let shut_down = Arc::new(AtomicBool::new(false));
    let flag = shut_down.clone();
    let (service, socket) = LspService::build(move |client| server::Server {
        session: Arc::new(session::Session::new(client, user_config)),
        shut_down: flag,
    })
    .custom_method("tandem/getStatus", server::Server::get_status)
    .finish();
    // stdin passes through the framing guard, so a malformed message cannot end the transport.
    let (guarded_in, guarded_out) = tokio::io::duplex(1 << 16);
    let guard = tokio::spawn(framing::sanitize(tokio::io::stdin(), guarded_out));
    LspServer::new(guarded_in, tokio::io::stdout(), socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;
    guard.abort();
    shut_down.load(Ordering::SeqCst)
}
