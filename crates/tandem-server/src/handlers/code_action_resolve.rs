//! `codeAction/resolve`: computes an action's edit. Shared with the commands
//! (`execute_command.rs`): [`compute`] asks the chat model (with `$/progress` while it runs),
//! turns the reply into minimal edits, refuses edits that would land on another version of
//! the document or add syntax errors, and converts them to a `WorkspaceEdit`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tandem_core::Document;
use tandem_core::actions::{
    self, ActionContext, ActionKind, FileChange, Outcome, Refinement, TestFiles, TextEdit,
};
use tandem_core::document::line_col;
use tower_lsp_server::gen_lsp_types::{CodeAction, MessageType, ProgressToken, Uri, WorkspaceEdit};
use tower_lsp_server::jsonrpc::{Error, ErrorCode};

use super::code_action::{ActionData, ActionResult};
use crate::engine::CompletionInput;
use crate::proto::to_proto;
use crate::session::Session;

pub async fn handle(session: &Session, mut action: CodeAction) -> Result<CodeAction, Error> {
    let Some(data) = action
        .data
        .clone()
        .and_then(|d| serde_json::from_value::<ActionData>(d).ok())
    else {
        return Ok(action); // not one of ours, or nothing to compute
    };
    match compute(session, &data, None).await {
        Ok(edit) => {
            action.edit = Some(edit);
            Ok(action)
        }
        Err(message) => Err(refuse(session, message)),
    }
}

/// Tells the user why an action gave no edit, and makes it the request's error.
pub fn refuse(session: &Session, message: String) -> Error {
    let message = format!("tandem: {message}");
    session.report_keyed(
        format!(
            "{message}#{}",
            session.actions.next_id.fetch_add(1, Ordering::Relaxed)
        ),
        MessageType::Warning,
        message.clone(),
    );
    Error {
        // LSP's RequestFailed: the request was valid, and failed.
        code: ErrorCode::ServerError(-32803),
        message: message.into(),
        data: None,
    }
}

/// The workspace's files as the action planner sees them: open documents first, then files
/// on disk that the workspace rules allow reading.
struct Files<'a> {
    session: &'a Session,
    root: Option<PathBuf>,
}

impl Files<'_> {
    fn absolute(&self, rel: &str) -> Option<PathBuf> {
        Some(self.root.as_ref()?.join(rel))
    }

    fn open_text(&self, path: &std::path::Path) -> Option<(Uri, String, i32)> {
        let uri = Uri(crate::proto::to_proto::file_uri(path));
        let doc = self.session.documents.get(&uri)?;
        Some((uri, doc.rope().to_string(), doc.version()))
    }
}

impl TestFiles for Files<'_> {
    fn read(&self, rel: &str) -> Option<String> {
        let path = self.absolute(rel)?;
        if let Some((_, text, _)) = self.open_text(&path) {
            return Some(text);
        }
        let root = self.root.as_ref()?;
        if !path.is_file() || !tandem_workspace::is_allowed(root, &path) {
            return None;
        }
        std::fs::read_to_string(&path).ok()
    }

    fn dir_exists(&self, rel: &str) -> bool {
        match self.absolute(rel) {
            Some(p) => p.is_dir(),
            None => rel.is_empty(),
        }
    }
}

/// Computes the edit of the action in `data` (refining `refine`'s result with an instruction
/// when given). `Err` is a message for the user.
pub async fn compute(
    session: &Session,
    data: &ActionData,
    refine: Option<(&ActionResult, &str)>,
) -> Result<WorkspaceEdit, String> {
    let uri = data.uri();
    let kind = data
        .kind()
        .ok_or_else(|| format!("unknown action `{}`", data.action))?;
    let snapshot = session
        .snapshot(&uri)
        .ok_or_else(|| "the document is not open".to_owned())?;
    // A listed action was computed for one version; never apply it to another text.
    if refine.is_none() && snapshot.version != data.version {
        return Err(format!(
            "\"{}\" was listed for version {} of the document, which has changed since (now \
             version {}); ask for code actions again",
            data.title, data.version, snapshot.version
        ));
    }
    let (root, path) = match session.locate(&uri) {
        Some((root, _, key)) => (root, key),
        None => (None, uri.0.clone()),
    };
    let config = session.engine.config(root.as_deref());
    let backend = session.engine.actions_backend(&config)?;
    let text = snapshot.rope.to_string();
    let notes = data.notes();
    let mut selection = data.selection();
    let mut cursor_line = data.range.start.line as usize;
    let refinement = refine.map(|(result, instruction)| {
        let n = result.text.lines().count().max(1);
        let region = (result.line, result.line + n);
        match kind {
            ActionKind::Document => {
                selection = None;
                cursor_line = region.0;
            }
            ActionKind::Explain => {
                selection = None;
                cursor_line = region.1;
            }
            _ => {
                selection = Some((region.0, region.1 - 1));
                cursor_line = region.0;
            }
        }
        Refinement {
            region,
            previous: &result.text,
            instruction,
        }
    });
    let offset = snapshot
        .rope
        .line_to_char(cursor_line.min(snapshot.rope.len_lines().saturating_sub(1)));
    let input = CompletionInput {
        snapshot: snapshot.clone(),
        offset,
        path: path.clone(),
        root: root.clone(),
    };
    let snippets = session.engine.action_snippets(&input, &config);
    let ctx = ActionContext {
        language: &snapshot.language_id,
        path: &path,
        text: &text,
        selection,
        cursor_line,
        diagnostics: &notes,
        snippets: &snippets,
    };
    let files = Files {
        session,
        root: root.clone(),
    };
    let plan = actions::plan(
        &ctx,
        kind,
        &config.actions.custom,
        &files,
        refinement.as_ref(),
    )
    .map_err(|e| e.0)?;
    tracing::debug!(action = %data.action, prompt = %plan.prompt.user, "action prompt");

    let title = data.title.trim_start_matches("Tandem: ").to_owned();
    let progress = begin_progress(session, &title).await;
    let reply = session
        .engine
        .chat(&backend, &plan.prompt, config.actions.max_tokens)
        .await;
    end_progress(progress).await;
    let reply = reply.map_err(|e| format!("{} failed: {e}", data.title))?;
    tracing::debug!(action = %data.action, %reply, "action reply");

    if session.version(&uri) != Some(snapshot.version) {
        return Err(format!(
            "the document changed while \"{title}\" ran; its answer was not applied (run it again)"
        ));
    }
    let outcome =
        actions::finish(&plan, &snapshot.language_id, &text, reply.as_str()).map_err(|e| {
            tracing::warn!(action = %data.action, %reply, "no edit from the reply: {e}");
            format!("\"{title}\" gave no edit: {e}")
        })?;
    check_syntax(&snapshot.language_id, &path, &text, &outcome).map_err(|e| {
        tracing::warn!(action = %data.action, %reply, "refused an edit: {e}");
        format!("\"{title}\" was not applied: {e}. The model's reply is in the log.")
    })?;
    let edit = workspace_edit(session, &uri, &snapshot, root.as_ref(), &outcome)?;
    if outcome.result_path.is_none() {
        session.actions.remember(ActionResult {
            id: session.actions.next_id.fetch_add(1, Ordering::Relaxed),
            data: data.clone(),
            title: data.title.clone(),
            line: outcome.result_line,
            text: outcome.result.clone(),
        });
    }
    Ok(edit)
}

/// Refuses edits that add syntax errors, where a grammar exists.
fn check_syntax(language: &str, path: &str, text: &str, outcome: &Outcome) -> Result<(), String> {
    let grammar = |lang: &str, p: &str| {
        tandem_syntax::Language::from_language_id(lang)
            .or_else(|| tandem_syntax::Language::from_path(p))
    };
    let adds_errors = |lang: tandem_syntax::Language, before: &str, after: &str| {
        let old = tandem_syntax::error_count(lang, before).unwrap_or(0);
        let new = tandem_syntax::error_count(lang, after).unwrap_or(0);
        new > old
    };
    let bad = match &outcome.change {
        FileChange::Document(edits) => grammar(language, path)
            .is_some_and(|l| adds_errors(l, text, &actions::diff::apply(text, edits))),
        FileChange::Create { path, text } => {
            tandem_syntax::Language::from_path(path).is_some_and(|l| adds_errors(l, "", text))
        }
        FileChange::Other { path, text, edits } => tandem_syntax::Language::from_path(path)
            .is_some_and(|l| adds_errors(l, text, &actions::diff::apply(text, edits))),
    };
    if bad {
        return Err("the edit would add syntax errors".to_owned());
    }
    Ok(())
}

fn lsp_edits(
    rope: &ropey::Rope,
    edits: &[TextEdit],
    enc: tandem_core::PositionEncoding,
) -> Vec<Value> {
    edits
        .iter()
        .map(|e| {
            let start = to_proto::position(line_col(rope, e.start, enc));
            let end = to_proto::position(line_col(rope, e.end, enc));
            json!({ "range": { "start": start, "end": end }, "newText": e.text })
        })
        .collect()
}

/// The outcome as a `WorkspaceEdit` the client can apply: versioned `documentChanges` when the
/// client takes them (so it refuses the edit on any other version), else plain `changes`.
fn workspace_edit(
    session: &Session,
    uri: &Uri,
    snapshot: &tandem_core::Snapshot,
    root: Option<&PathBuf>,
    outcome: &Outcome,
) -> Result<WorkspaceEdit, String> {
    let caps = session.actions.caps();
    let enc = session.encoding();
    let (target_uri, version, edits): (Uri, Option<i32>, Vec<Value>) = match &outcome.change {
        FileChange::Document(edits) => (
            uri.clone(),
            Some(snapshot.version),
            lsp_edits(&snapshot.rope, edits, enc),
        ),
        FileChange::Create { path, text } => {
            let file = root.map(|r| r.join(path)).ok_or_else(|| {
                "tests go in a new file, but the document is outside every workspace folder"
                    .to_owned()
            })?;
            let new_uri = Uri(to_proto::file_uri(&file));
            if !caps.document_changes || !caps.create_files {
                return Err(format!(
                    "the tests belong in a new file `{path}`, and this editor cannot create files through an edit; create it and run the action again"
                ));
            }
            let edit = json!({
                "documentChanges": [
                    { "kind": "create", "uri": new_uri.0, "options": { "ignoreIfExists": true } },
                    { "textDocument": { "uri": new_uri.0, "version": null },
                      "edits": [{ "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } }, "newText": text }] },
                ]
            });
            return serde_json::from_value(edit).map_err(|e| format!("internal error: {e}"));
        }
        FileChange::Other { path, text, edits } => {
            let file = root
                .map(|r| r.join(path))
                .ok_or_else(|| "the test file is outside every workspace folder".to_owned())?;
            let other = Uri(to_proto::file_uri(&file));
            let version = session.version(&other);
            let doc = Document::new(text, version.unwrap_or(0), "plaintext");
            (other, version, lsp_edits(&doc.snapshot().rope, edits, enc))
        }
    };
    let edit = if caps.document_changes {
        json!({ "documentChanges": [{ "textDocument": { "uri": target_uri.0, "version": version }, "edits": edits }] })
    } else {
        let mut changes = HashMap::new();
        changes.insert(target_uri.0.clone(), edits);
        json!({ "changes": changes })
    };
    serde_json::from_value(edit).map_err(|e| format!("internal error: {e}"))
}

/// `$/progress` for a running action, when the client takes server-created progress.
pub struct ActionProgress {
    ongoing: Option<
        tower_lsp_server::OngoingProgress<
            tower_lsp_server::Unbounded,
            tower_lsp_server::NotCancellable,
        >,
    >,
}

pub async fn begin_progress(session: &Session, title: &str) -> ActionProgress {
    if !session.actions.caps().work_done_progress {
        return ActionProgress { ongoing: None };
    }
    let n = session.actions.next_id.fetch_add(1, Ordering::Relaxed);
    let token = ProgressToken::String(format!("tandem/action/{n}"));
    if session
        .client
        .create_work_done_progress(token.clone())
        .await
        .is_err()
    {
        return ActionProgress { ongoing: None };
    }
    let ongoing = session
        .client
        .progress(token, format!("Tandem: {title}"))
        .with_message("waiting for the model")
        .begin()
        .await;
    ActionProgress {
        ongoing: Some(ongoing),
    }
}

pub async fn end_progress(mut progress: ActionProgress) {
    if let Some(p) = progress.ongoing.take() {
        p.finish().await;
    }
}

impl Drop for ActionProgress {
    /// A cancelled action (its future dropped mid-chat) still ends its progress.
    fn drop(&mut self) {
        if let Some(p) = self.ongoing.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(p.finish());
        }
    }
}
