//! `textDocument/didOpen`: start mirroring a document.

use tandem_core::Document;
use tower_lsp_server::gen_lsp_types::DidOpenTextDocumentParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let language = from_proto::language_id(&doc.language_id);
    if let Some(path) = from_proto::file_path(&doc.uri) {
        // Open documents teach the embedded model too (unless the workspace ignores them).
        if allowed_in_index(session, &path) {
            session
                .engine
                .index()
                .upsert(&path.to_string_lossy(), &doc.text);
        }
    }
    session
        .documents
        .insert(doc.uri, Document::new(&doc.text, doc.version, language));
}

/// Files under a workspace root are indexed only if the workspace rules allow reading them.
pub(crate) fn allowed_in_index(session: &Session, path: &std::path::Path) -> bool {
    match session.root_of(path) {
        Some(root) => tandem_workspace::is_allowed(&root, path),
        None => true,
    }
}
