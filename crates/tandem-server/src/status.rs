//! `tandem/status` (a notification sent on every change) and `tandem/getStatus` (a request, for
//! clients that pull): whether completions are ready, busy, down or disabled. See
//! docs/protocol.md.

use serde::Serialize;
use tandem_models::Condition;
use tower_lsp_server::gen_lsp_types::{LspNotificationMethod, MessageDirection, Notification};

use crate::session::Session;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Status {
    /// `ready`, `busy` (a completion is being computed), `down` (the backend's last request
    /// failed) or `disabled` (`completion.enabled` is false).
    pub state: String,
    /// The backend kind.
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = Status;
    const METHOD: LspNotificationMethod<'static> = LspNotificationMethod::Custom("tandem/status");
    const MESSAGE_DIRECTION: MessageDirection = MessageDirection::ServerToClient;
}

/// The status now, for documents outside any folder-specific configuration.
pub fn current(session: &Session) -> Status {
    let config = session.engine.config(None);
    let backend = config.backend.kind.as_str().to_owned();
    let model = config.backend.model.clone();
    let condition = session.engine.condition(&config);
    let (state, message) = if !config.completion.enabled {
        ("disabled", None)
    } else if let Some(Condition::Down(why)) = condition {
        ("down", Some(why))
    } else if session.busy() {
        ("busy", None)
    } else {
        ("ready", None)
    };
    Status {
        state: state.to_owned(),
        backend,
        model,
        message,
    }
}

/// Sends `tandem/status` if the status changed since the last one sent. Notifications leave in
/// the order the changes happened (one queue, one sender task).
pub fn publish(session: &Session) {
    let status = current(session);
    session.queue_status(status);
}

/// The task that sends queued statuses, in order.
pub fn sender(client: tower_lsp_server::Client) -> tokio::sync::mpsc::UnboundedSender<Status> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Status>();
    tokio::spawn(async move {
        while let Some(status) = rx.recv().await {
            client.send_notification::<StatusNotification>(status).await;
        }
    });
    tx
}
