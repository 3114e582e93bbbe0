//! `textDocument/didSave`: the saved text becomes the embedded model's and the symbol index's
//! view of the file.

use tower_lsp_server::gen_lsp_types::DidSaveTextDocumentParams;

use crate::session::Session;

pub fn handle(session: &Session, params: DidSaveTextDocumentParams) {
    let uri = params.text_document.uri;
    let (Some((root, file, key)), Some(snapshot)) = (session.locate(&uri), session.snapshot(&uri))
    else {
        return;
    };
    if super::did_open::allowed_in_index(root.as_deref(), &file) {
        let text = snapshot.rope.to_string();
        session.engine.index().upsert(&key, &text);
        session.index_symbols(root, key, text);
    }
}
