//! `workspace/didChangeConfiguration`: the client's settings under `tandem` (or the whole
//! settings object when it has no `tandem` key) become the top configuration layer.

use tower_lsp_server::gen_lsp_types::{DidChangeConfigurationParams, MessageType};

use crate::session::Session;

pub fn handle(session: &Session, params: DidChangeConfigurationParams) {
    let settings = params.settings;
    let layer = match settings.get("tandem") {
        Some(t) => Some(t.clone()),
        None if settings.is_null() => None,
        None => Some(settings),
    };
    for message in session.engine.set_client_layer(layer) {
        session.report(MessageType::Warning, message);
    }
    for message in session.engine.reload_all(&session.roots()) {
        session.report(MessageType::Warning, message);
    }
    crate::status::publish(session);
}
