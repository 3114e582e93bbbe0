//! `textDocument/didClose`: stop mirroring a document and free its memory.

use tower_lsp_server::gen_lsp_types::DidCloseTextDocumentParams;

use crate::session::Session;

pub fn handle(session: &Session, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    if session.documents.remove(&uri).is_none() {
        tracing::warn!(uri = uri.0.as_str(), "closed a document that was not open");
    }
    // It stays a source of similar code for a while, as a recently edited file.
    if let Some((_, _, key)) = session.locate(&uri) {
        session.engine.close_document(&key);
    }
    // A completion still running for it is answered empty.
    let ticket = session.begin_completion(&uri);
    session.end_completion(&ticket);
}
