//! `$/progress` for work the server starts itself (indexing a workspace folder).
//!
//! A token is created with `window/workDoneProgress/create` when the client said it supports
//! `window.workDoneProgress`; then `begin`, `report`s and `end` follow. One task sends every
//! message in the order the events were queued, so an `end` never overtakes its `begin`.
//! Clients without support get nothing (the same figures go to the log).

use serde_json::json;
use tokio::sync::mpsc;
use tower_lsp_server::Client;
use tower_lsp_server::gen_lsp_types::{
    ProgressNotification, ProgressParams, ProgressToken, WorkDoneProgressCreateParams,
    WorkDoneProgressCreateRequest,
};

/// One step of a progress.
#[derive(Debug, Clone)]
pub enum ProgressEvent {
    Begin {
        token: String,
        title: String,
        message: String,
    },
    Report {
        token: String,
        message: String,
    },
    End {
        token: String,
        message: String,
    },
}

/// Queues progress events; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct ProgressSender {
    tx: Option<mpsc::UnboundedSender<ProgressEvent>>,
    /// Opens the gate: the client accepts requests only once it has sent `initialized`.
    initialized: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl ProgressSender {
    /// A sender that drops everything (the client does not support progress).
    pub fn disabled() -> Self {
        Self {
            tx: None,
            initialized: None,
        }
    }

    /// Starts the sending task on the current runtime.
    pub fn start(client: Client) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<ProgressEvent>();
        let initialized = std::sync::Arc::new(tokio::sync::Notify::new());
        let gate = initialized.clone();
        tokio::spawn(async move {
            // Events queued meanwhile wait (a folder is opened during `initialize`).
            gate.notified().await;
            // Tokens the client refused: nothing more is sent for them.
            let mut refused = std::collections::HashSet::new();
            while let Some(event) = rx.recv().await {
                let (token, value) = match event {
                    ProgressEvent::Begin {
                        token,
                        title,
                        message,
                    } => {
                        let created = client
                            .send_request::<WorkDoneProgressCreateRequest>(
                                WorkDoneProgressCreateParams {
                                    token: ProgressToken::String(token.clone()),
                                },
                            )
                            .await;
                        if let Err(e) = created {
                            tracing::debug!("the client refused a progress token: {e}");
                            refused.insert(token);
                            continue;
                        }
                        let value = json!({"kind": "begin", "title": title, "message": message});
                        (token, value)
                    }
                    ProgressEvent::Report { token, .. } | ProgressEvent::End { token, .. }
                        if refused.contains(&token) =>
                    {
                        continue;
                    }
                    ProgressEvent::Report { token, message } => {
                        (token, json!({"kind": "report", "message": message}))
                    }
                    ProgressEvent::End { token, message } => {
                        (token, json!({"kind": "end", "message": message}))
                    }
                };
                client
                    .send_notification::<ProgressNotification>(ProgressParams {
                        token: ProgressToken::String(token),
                        value,
                    })
                    .await;
            }
        });
        Self {
            tx: Some(tx),
            initialized: Some(initialized),
        }
    }

    /// The client sent `initialized`: progress may flow.
    pub fn client_initialized(&self) {
        if let Some(gate) = &self.initialized {
            gate.notify_one();
        }
    }

    pub fn send(&self, event: ProgressEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}
