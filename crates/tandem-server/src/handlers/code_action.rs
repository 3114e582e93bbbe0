//! `textDocument/codeAction`: lists Tandem's actions at a range without calling the model (the
//! edit is computed by `codeAction/resolve`, or by the `tandem.runAction` command for clients
//! without resolve support), and a Refine follow-up on a result applied earlier.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tandem_core::actions::{self, ActionContext, ActionKind, DiagnosticNote};
use tower_lsp_server::gen_lsp_types::{
    CodeAction, CodeActionDisabled, CodeActionKind, CodeActionParams, CodeActionResponse, Command,
    Range, Uri,
};

use crate::session::Session;

/// The command that computes an action and applies it through `workspace/applyEdit`.
pub const RUN_ACTION: &str = "tandem.runAction";
/// The command that re-runs an applied action with an instruction.
pub const REFINE: &str = "tandem.refine";

/// What the client can do with actions, from `initialize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientActionCaps {
    /// `codeAction/resolve` may fill in `edit`.
    pub resolve_edit: bool,
    /// `documentChanges` (versioned edits) in a `WorkspaceEdit`.
    pub document_changes: bool,
    /// `CreateFile` operations in `documentChanges`.
    pub create_files: bool,
    /// `window/workDoneProgress/create`.
    pub work_done_progress: bool,
}

impl ClientActionCaps {
    pub fn from_capabilities(caps: &Value) -> Self {
        let flag = |ptr: &str| caps.pointer(ptr).and_then(Value::as_bool).unwrap_or(false);
        let resolve_edit = caps
            .pointer("/textDocument/codeAction/resolveSupport/properties")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|v| v == "edit"));
        let create_files = caps
            .pointer("/workspace/workspaceEdit/resourceOperations")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|v| v == "create"));
        Self {
            resolve_edit,
            document_changes: flag("/workspace/workspaceEdit/documentChanges"),
            create_files,
            work_done_progress: flag("/window/workDoneProgress"),
        }
    }
}

/// An applied action's result, for Refine.
#[derive(Debug, Clone)]
pub struct ActionResult {
    pub id: u64,
    /// The action as it was listed.
    pub data: ActionData,
    pub title: String,
    /// Where the result sits in the document after the edit: its first line and its text.
    pub line: usize,
    pub text: String,
}

/// The session's state for actions.
#[derive(Debug, Default)]
pub struct ActionState {
    pub caps: std::sync::OnceLock<ClientActionCaps>,
    /// Recent results, newest last (at most [`RESULTS_KEPT`]).
    pub results: Mutex<Vec<ActionResult>>,
    pub next_id: AtomicU64,
}

/// How many action results stay refinable.
pub const RESULTS_KEPT: usize = 16;

impl ActionState {
    pub fn caps(&self) -> ClientActionCaps {
        self.caps.get().copied().unwrap_or_default()
    }

    pub fn remember(&self, result: ActionResult) {
        if let Ok(mut results) = self.results.lock() {
            results.push(result);
            let excess = results.len().saturating_sub(RESULTS_KEPT);
            results.drain(..excess);
        }
    }

    pub fn result(&self, id: u64) -> Option<ActionResult> {
        self.results
            .lock()
            .ok()?
            .iter()
            .find(|r| r.id == id)
            .cloned()
    }
}

/// What an action carries from the listing to its resolution (`data`, or the command's
/// argument).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionData {
    pub uri: String,
    /// The document version the action was listed for; resolving refuses any other.
    pub version: i32,
    pub action: String,
    pub title: String,
    /// The range the client asked for.
    pub range: Range,
    /// The diagnostics at the range: (0-based line, message).
    #[serde(default)]
    pub diagnostics: Vec<(usize, String)>,
}

impl ActionData {
    pub fn kind(&self) -> Option<ActionKind> {
        ActionKind::parse(&self.action)
    }

    pub fn uri(&self) -> Uri {
        Uri(self.uri.clone())
    }

    /// The selected lines (inclusive) when the range is not empty; a selection that ends at
    /// the start of a line does not take that line.
    pub fn selection(&self) -> Option<(usize, usize)> {
        let (s, e) = (self.range.start, self.range.end);
        if s == e {
            return None;
        }
        let last = if e.character == 0 && e.line > s.line {
            e.line - 1
        } else {
            e.line
        };
        Some((s.line as usize, last as usize))
    }

    pub fn notes(&self) -> Vec<DiagnosticNote> {
        self.diagnostics
            .iter()
            .map(|(line, message)| DiagnosticNote {
                line: *line,
                message: message.clone(),
            })
            .collect()
    }
}

fn kind(id: &str) -> Option<CodeActionKind> {
    serde_json::from_value(json!(id)).ok()
}

pub fn handle(session: &Session, params: CodeActionParams) -> Option<Vec<CodeActionResponse>> {
    let uri = params.text_document.uri;
    let snapshot = session.snapshot(&uri)?;
    let (root, path) = match session.locate(&uri) {
        Some((root, _, key)) => (root, key),
        None => (None, uri.0.clone()),
    };
    let config = session.engine.config(root.as_deref());
    if !config.actions.enabled {
        return None;
    }
    // Listing is cheap: no model call, and the backend is not even built here.
    let unavailable = config
        .actions
        .chat_backend(&config.backend)
        .err()
        .map(|why| format!("Code actions need a chat model: {why}"));
    let text = snapshot.rope.to_string();
    let diagnostics: Vec<(usize, String)> = params
        .context
        .diagnostics
        .iter()
        .map(|d| {
            let message = match &d.message {
                tower_lsp_server::gen_lsp_types::Message::String(s) => s.clone(),
                tower_lsp_server::gen_lsp_types::Message::MarkupContent(m) => m.value.clone(),
            };
            (d.range.start.line as usize, message)
        })
        .collect();
    let mut data = ActionData {
        uri: uri.0.clone(),
        version: snapshot.version,
        action: String::new(),
        title: String::new(),
        range: params.range,
        diagnostics,
    };
    let notes = data.notes();
    let ctx = ActionContext {
        language: &snapshot.language_id,
        path: &path,
        text: &text,
        selection: data.selection(),
        cursor_line: params.range.start.line as usize,
        diagnostics: &notes,
        snippets: &[],
    };
    let only: Option<Vec<String>> = params.context.only.as_ref().map(|o| {
        o.iter()
            .filter_map(|k| serde_json::to_value(k).ok()?.as_str().map(str::to_owned))
            .collect()
    });
    let wanted = |lsp_kind: &str| {
        only.as_ref().is_none_or(|o| {
            o.iter()
                .any(|k| lsp_kind == k || lsp_kind.starts_with(&format!("{k}.")))
        })
    };
    let caps = session.actions.caps();
    let mut out = Vec::new();
    for offer in actions::offers(&ctx, &config.actions.custom) {
        if !wanted(offer.kind.lsp_kind()) {
            continue;
        }
        data.action = offer.kind.id();
        data.title = offer.title.clone();
        let disabled = offer
            .disabled
            .or_else(|| unavailable.clone())
            .map(CodeActionDisabled::new);
        let payload = serde_json::to_value(&data).ok()?;
        let command = (!caps.resolve_edit && disabled.is_none()).then(|| Command {
            title: offer.title.clone(),
            tooltip: None,
            command: RUN_ACTION.to_owned(),
            arguments: Some(vec![payload.clone()]),
        });
        out.push(CodeActionResponse::CodeAction(CodeAction {
            title: offer.title,
            kind: kind(offer.kind.lsp_kind()),
            disabled,
            command,
            data: caps.resolve_edit.then_some(payload),
            ..CodeAction::default()
        }));
    }
    if unavailable.is_none() && wanted("refactor.rewrite") {
        out.extend(refine_offers(session, &uri, &text));
    }
    Some(out)
}

/// A Refine follow-up for each remembered result still in the document as it was applied.
fn refine_offers(session: &Session, uri: &Uri, text: &str) -> Vec<CodeActionResponse> {
    let lines: Vec<&str> = text.lines().collect();
    let Ok(results) = session.actions.results.lock() else {
        return Vec::new();
    };
    results
        .iter()
        .rev()
        .filter(|r| r.data.uri == uri.0)
        .filter(|r| {
            let want: Vec<&str> = r.text.lines().collect();
            lines.get(r.line..r.line + want.len()) == Some(&want[..])
        })
        .take(1)
        .map(|r| {
            let title = format!(
                "Tandem: Refine \"{}\"…",
                r.title.trim_start_matches("Tandem: ")
            );
            CodeActionResponse::CodeAction(CodeAction {
                title: title.clone(),
                kind: kind("refactor.rewrite"),
                command: Some(Command {
                    title,
                    tooltip: None,
                    command: REFINE.to_owned(),
                    arguments: Some(vec![json!({ "id": r.id })]),
                }),
                ..CodeAction::default()
            })
        })
        .collect()
}
