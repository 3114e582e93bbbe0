//! `textDocument/didSave`: the saved text becomes the embedded model's view of the file.

use tower_lsp_server::gen_lsp_types::DidSaveTextDocumentParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidSaveTextDocumentParams) {
    let uri = params.text_document.uri;
    let (Some(path), Some(snapshot)) = (from_proto::file_path(&uri), session.snapshot(&uri)) else {
        return;
    };
    if super::did_open::allowed_in_index(session, &path) {
        session
            .engine
            .index()
            .upsert(&path.to_string_lossy(), &snapshot.rope.to_string());
    }
}
