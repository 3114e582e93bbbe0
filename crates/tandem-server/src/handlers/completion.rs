//! `textDocument/completion`: the fallback for clients without inline completion (Helix, older
//! Neovim). One item carries the model's text, replacing the word being typed so that the
//! client's filtering (which matches the typed word against `filterText`) keeps it.

use tower_lsp_server::gen_lsp_types::{
    CompletionItem, CompletionItemKind, CompletionList, CompletionParams, CompletionResponse,
    CompletionTriggerKind, InsertTextFormat, MarkupContent, MarkupKind, Range, TextEdit,
};

use super::{Invocation, complete_at};
use crate::session::Session;

pub async fn handle(session: &Session, params: CompletionParams) -> Option<CompletionResponse> {
    // Editors send `Invoked` both for typing and for an explicit request; only trigger
    // characters and re-queries of an incomplete list are surely automatic.
    let how = match params.context.as_ref().map(|c| c.trigger_kind) {
        Some(
            CompletionTriggerKind::TriggerCharacter
            | CompletionTriggerKind::TriggerForIncompleteCompletions,
        ) => Invocation::Automatic,
        _ => Invocation::Explicit,
    };
    let pos = params.text_document_position_params;
    let mut items = Vec::new();
    if let Some(done) = complete_at(session, &pos.text_document.uri, pos.position, how).await {
        for (rank, text) in done.items.into_iter().enumerate() {
            let new_text = format!("{}{}", done.word, text);
            let first_line = new_text.trim_start().lines().next().unwrap_or_default();
            let mut label: String = first_line.chars().take(80).collect();
            if label.len() < first_line.len() || new_text.trim().lines().count() > 1 {
                label.push('…');
            }
            items.push(CompletionItem {
                label,
                kind: Some(CompletionItemKind::Text),
                detail: Some("Tandem".to_owned()),
                documentation: Some(
                    MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: format!("```{}\n{}\n```", "", new_text),
                    }
                    .into(),
                ),
                sort_text: Some(format!("0000{rank}")),
                filter_text: Some(new_text.clone()),
                preselect: Some(rank == 0),
                insert_text_format: Some(InsertTextFormat::PlainText),
                text_edit: Some(
                    TextEdit {
                        range: Range {
                            start: done.word_start,
                            end: done.cursor,
                        },
                        new_text,
                    }
                    .into(),
                ),
                ..CompletionItem::default()
            });
        }
    }
    // Incomplete: the client asks again as the user types, so the suggestion follows the text.
    Some(CompletionResponse::CompletionList(CompletionList {
        is_incomplete: true,
        items,
        ..CompletionList::default()
    }))
}
