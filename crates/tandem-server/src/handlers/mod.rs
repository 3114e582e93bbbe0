//! One module per LSP method. Each handler converts at the edge (`proto`) and works on
//! Tandem's own types.

pub mod code_action;
pub mod code_action_resolve;
pub mod completion;
pub mod did_change;
pub mod did_change_configuration;
pub mod did_change_watched_files;
pub mod did_change_workspace_folders;
pub mod did_close;
pub mod did_open;
pub mod did_save;
pub mod execute_command;
pub mod initialize;
pub mod inline_completion;

use std::time::Duration;

use tandem_core::config::Trigger;
use tandem_core::document::{char_offset, line_col};
use tower_lsp_server::gen_lsp_types::{MessageType, Position, Uri};

use crate::engine::CompletionInput;
use crate::proto::{from_proto, to_proto};
use crate::session::Session;

/// How a completion was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// The user asked: never delayed.
    Explicit,
    /// Typing triggered it: debounced, and skipped in `manual` mode.
    Automatic,
}

/// Completions at a cursor, with the facts the two response shapes need.
pub struct Completed {
    pub items: Vec<String>,
    /// The cursor, in the client's encoding.
    pub cursor: Position,
    /// Where the identifier being typed starts, and that identifier.
    pub word_start: Position,
    pub word: String,
}

/// Ends a completion's claim on its document and updates the status when dropped.
struct EndOnDrop<'a> {
    session: &'a Session,
    ticket: &'a crate::session::Ticket,
}

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.session.end_completion(self.ticket);
        crate::status::publish(self.session);
    }
}

/// The shared path of `inlineCompletion` and `completion`: `None` means show nothing.
pub async fn complete_at(
    session: &Session,
    uri: &Uri,
    position: Position,
    how: Invocation,
) -> Option<Completed> {
    // Everything up to the first `.await` sees the document exactly as of this request.
    let Some(snapshot) = session.snapshot(uri) else {
        tracing::warn!(
            uri = uri.0.as_str(),
            "completion asked for a document that is not open"
        );
        return None;
    };
    let enc = session.encoding();
    let offset = char_offset(&snapshot.rope, from_proto::line_col(position), enc);
    let (root, path) = match session.locate(uri) {
        Some((root, _, key)) => (root, key),
        None => (None, uri.0.clone()),
    };
    let config = session.engine.config(root.as_deref());
    if !config.completion.language_enabled(&snapshot.language_id) {
        return None;
    }
    if how == Invocation::Automatic && config.completion.trigger == Trigger::Manual {
        return None;
    }
    let word_start_idx = tandem_core::context::word_start(&snapshot.rope, offset);
    let word = snapshot.rope.slice(word_start_idx..offset).to_string();
    let cursor = to_proto::position(line_col(&snapshot.rope, offset, enc));
    let word_start = to_proto::position(line_col(&snapshot.rope, word_start_idx, enc));
    let version = snapshot.version;
    let input = CompletionInput {
        snapshot,
        offset,
        path,
        root,
    };

    let ticket = session.begin_completion(uri);
    crate::status::publish(session);
    // Ends the claim however this future ends: answered, superseded, or dropped by
    // `$/cancelRequest` (then nothing after an `.await` below runs).
    let _ended = EndOnDrop {
        session,
        ticket: &ticket,
    };
    let debounce = match how {
        Invocation::Automatic => Duration::from_millis(config.completion.debounce_ms),
        Invocation::Explicit => Duration::ZERO,
    };
    let work = async {
        if !debounce.is_zero() {
            tokio::time::sleep(debounce).await;
        }
        session.engine.complete(&input).await
    };
    let result = tokio::select! {
        biased;
        () = ticket.cancelled.cancelled() => {
            tracing::debug!(uri = uri.0.as_str(), "superseded by a newer completion request");
            None
        }
        r = work => Some(r),
    };
    drop(_ended);
    let backend = session.engine.backend_condition(&config);
    if let Some((name, condition)) = &backend {
        session.note_backend(name, condition);
    }
    crate::status::publish(session);
    let output = match result? {
        Ok(output) => output,
        Err(err) => {
            // A backend going down is told once (above); problems that are not about the
            // backend's health (configuration, a missing key) once per distinct message.
            if !matches!(backend, Some((_, tandem_models::Condition::Down(_)))) {
                // Keyed by kind of trouble, not wording: an error whose text varies per
                // request (an excerpt of a bad event) is still shown once.
                let key = match &err {
                    tandem_models::BackendError::Config(_) => format!("tandem: {err}"),
                    _ => format!("tandem: backend trouble: {}", err.category()),
                };
                session.report_keyed(key, MessageType::Warning, format!("tandem: {err}"));
            }
            return None;
        }
    };
    if session.version(uri) != Some(version) {
        tracing::debug!(
            uri = uri.0.as_str(),
            "dropped a completion for an outdated version"
        );
        return None;
    }
    tracing::debug!(
        items = output.items.len(),
        backend_ms = output.backend_ms,
        total_ms = output.total_ms,
        "completion"
    );
    Some(Completed {
        items: output.items,
        cursor,
        word_start,
        word,
    })
}
