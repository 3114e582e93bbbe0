//! `textDocument/inlineCompletion` (LSP 3.18): ghost text at the cursor.

use tower_lsp_server::gen_lsp_types::{
    InlineCompletionItem, InlineCompletionList, InlineCompletionParams, InlineCompletionResponse,
    InlineCompletionTriggerKind, Range,
};

use super::{Invocation, complete_at};
use crate::session::Session;

pub async fn handle(
    session: &Session,
    params: InlineCompletionParams,
) -> Option<InlineCompletionResponse> {
    let how = match params.context.trigger_kind {
        InlineCompletionTriggerKind::Automatic => Invocation::Automatic,
        _ => Invocation::Explicit,
    };
    let pos = params.text_document_position_params;
    let items = match complete_at(session, &pos.text_document.uri, pos.position, how).await {
        Some(done) => done
            .items
            .into_iter()
            .map(|text| InlineCompletionItem {
                insert_text: text.into(),
                filter_text: None,
                range: Some(Range {
                    start: done.cursor,
                    end: done.cursor,
                }),
                command: None,
            })
            .collect(),
        None => Vec::new(),
    };
    // Always a list, never null: every request gets a real answer.
    Some(InlineCompletionResponse::InlineCompletionList(
        InlineCompletionList { items },
    ))
}
