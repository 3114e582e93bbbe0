//! `workspace/executeCommand`: `tandem.runAction` computes an action for clients without
//! `codeAction/resolve` support and applies it through `workspace/applyEdit`; `tandem.refine`
//! re-runs an applied action with an instruction — the command's `instruction` argument (an
//! editor extension's free text), else a choice offered through `window/showMessageRequest`.

use serde_json::Value;
use tower_lsp_server::gen_lsp_types::{ExecuteCommandParams, MessageActionItem, MessageType};
use tower_lsp_server::jsonrpc::{Error, ErrorCode};

use super::code_action::{ActionData, REFINE, RUN_ACTION};
use super::code_action_resolve::{compute, refuse};
use crate::session::Session;

/// The follow-ups offered without an editor extension.
pub const FOLLOW_UPS: &[&str] = &["Shorter", "Handle errors", "Add types", "More detail"];

pub async fn handle(
    session: &Session,
    params: ExecuteCommandParams,
) -> Result<Option<Value>, Error> {
    let first = params
        .arguments
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    match params.command.as_str() {
        RUN_ACTION => {
            let data: ActionData = serde_json::from_value(first)
                .map_err(|e| invalid(format!("{RUN_ACTION} takes an action's data: {e}")))?;
            let edit = compute(session, &data, None)
                .await
                .map_err(|m| refuse(session, m))?;
            apply(session, &data.title, edit).await
        }
        REFINE => {
            let id = first.get("id").and_then(Value::as_u64).ok_or_else(|| {
                invalid(format!(
                    "{REFINE} takes {{\"id\": <result>, \"instruction\"?: text}}"
                ))
            })?;
            let Some(result) = session.actions.result(id) else {
                return Err(refuse(
                    session,
                    "that result can no longer be refined; run the action again".to_owned(),
                ));
            };
            let instruction = match first.get("instruction").and_then(Value::as_str) {
                Some(text) if !text.trim().is_empty() => text.trim().to_owned(),
                _ => {
                    let choices = FOLLOW_UPS
                        .iter()
                        .map(|t| MessageActionItem {
                            title: (*t).to_owned(),
                            properties: Default::default(),
                        })
                        .collect();
                    let asked = session
                        .client
                        .show_message_request(
                            MessageType::Info,
                            format!(
                                "Refine \"{}\" how?",
                                result.title.trim_start_matches("Tandem: ")
                            ),
                            Some(choices),
                        )
                        .await;
                    match asked {
                        Ok(Some(item)) => item.title.to_lowercase(),
                        // Dismissed: nothing to do.
                        Ok(None) => return Ok(None),
                        Err(e) => {
                            return Err(refuse(
                                session,
                                format!("cannot ask how to refine ({e}); pass an `instruction`"),
                            ));
                        }
                    }
                }
            };
            let edit = compute(session, &result.data, Some((&result, &instruction)))
                .await
                .map_err(|m| refuse(session, m))?;
            apply(session, &result.title, edit).await
        }
        other => Err(invalid(format!("unknown command `{other}`"))),
    }
}

fn invalid(message: String) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into(),
        data: None,
    }
}

async fn apply(
    session: &Session,
    title: &str,
    edit: tower_lsp_server::gen_lsp_types::WorkspaceEdit,
) -> Result<Option<Value>, Error> {
    match session.client.apply_edit(edit).await {
        Ok(r) if r.applied => Ok(None),
        Ok(r) => Err(refuse(
            session,
            format!(
                "the editor did not apply \"{title}\"{}",
                r.failure_reason
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            ),
        )),
        Err(e) => Err(refuse(session, format!("cannot apply \"{title}\": {e}"))),
    }
}
