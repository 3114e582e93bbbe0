//! `textDocument/didOpen`: start mirroring a document.

use tandem_core::Document;
use tower_lsp_server::gen_lsp_types::DidOpenTextDocumentParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let language = from_proto::language_id(&doc.language_id);
    // Open documents teach the embedded model too (unless the workspace ignores them).
    let syntax = tandem_syntax::Language::from_language_id(&language);
    let document = Document::new(&doc.text, doc.version, language);
    // The language's syntax query, compiled here once per session (at most 19 ms, for C++),
    // not by the first completion nor by the low-priority indexer while a completion waits.
    if let Some(syntax) = syntax {
        tandem_syntax::warm_up(syntax);
    }
    if let Some((root, file, key)) = session.locate(&doc.uri)
        && allowed_in_index(root.as_deref(), &file)
    {
        session.engine.index().upsert(&key, &doc.text);
        // The symbol index takes the editor's text, which may be ahead of the disk.
        session.index_symbols(root.clone(), key.clone(), doc.text.clone());
        // And it is a source of similar code for the other documents.
        session
            .engine
            .note_document(root.as_deref(), &key, document.snapshot());
    }
    session.documents.insert(doc.uri, document);
}

/// Files under a workspace root are indexed only if the workspace rules allow reading them.
pub(crate) fn allowed_in_index(root: Option<&std::path::Path>, path: &std::path::Path) -> bool {
    match root {
        Some(root) => tandem_workspace::is_allowed(root, path),
        None => true,
    }
}
