//! `textDocument/didChange`: apply incremental or full edits, synchronously; the symbol index
//! is refreshed from the new text a little later.

use tower_lsp_server::gen_lsp_types::DidChangeTextDocumentParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.text_document_identifier.uri;
    let enc = session.encoding();
    let Some(mut doc) = session.documents.get_mut(&uri) else {
        tracing::warn!(
            uri = uri.0.as_str(),
            "ignored an edit to a document that is not open"
        );
        return;
    };
    let changes: Vec<_> = params
        .content_changes
        .into_iter()
        .map(from_proto::text_change)
        .collect();
    let mut edits = Vec::with_capacity(changes.len());
    doc.apply_changes_with(&changes, params.text_document.version, enc, |e| {
        edits.push(e.clone());
    });
    let snapshot = doc.snapshot();
    drop(doc);
    // The context sources see the new text (a rope clone shares it), and the document's
    // syntax tree takes the edits (the reparse waits for the next completion).
    if let Some((root, _, key)) = session.locate(&uri) {
        session.engine.edit_document(&key, &edits);
        session.engine.update_document(&key, snapshot);
        // And the symbol index learns its new definitions soon (not on every keystroke).
        if root.is_some() {
            session.refresh_symbols_later(key);
        }
    }
}
