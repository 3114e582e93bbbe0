//! `workspace/didChangeWorkspaceFolders`: roots come and go; each document belongs to its
//! nearest root.

use tower_lsp_server::gen_lsp_types::DidChangeWorkspaceFoldersParams;

use crate::proto::from_proto;
use crate::session::Session;

pub fn handle(session: &Session, params: DidChangeWorkspaceFoldersParams) {
    for folder in params.event.removed {
        if let Some(path) = from_proto::file_path(&folder.uri) {
            session.remove_root(&path);
            session.engine.set_workspace_layer(&path, None);
            session.engine.symbols().save(&path);
            session.engine.symbols().remove_root(&path);
            if let Some(ws) = session.workspace.get() {
                ws.remove_root(&path);
            }
        }
    }
    for folder in params.event.added {
        if let Some(path) = from_proto::file_path(&folder.uri) {
            super::initialize::open_root(session, path);
        }
    }
}
