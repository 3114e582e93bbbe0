//! What a backend is asked for: a structured request, never a finished prompt string.
//!
//! Each backend builds its own wire format from this (a fill-in-the-middle template, a chat
//! message, llama.cpp's `input_extra`, ...), so adding a backend never changes this type's users.

use serde::Serialize;

/// Whether the completion may span several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CompletionMode {
    /// Complete the rest of the current line only.
    SingleLine,
    /// The rest of the cursor's line is empty: the completion may go on for several lines.
    MultiLine,
}

/// Where a snippet of context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SnippetSource {
    /// The definition of a symbol used near the cursor.
    Definition,
    /// Code similar to the lines before the cursor.
    Similar,
    /// A recently edited region.
    Recent,
    /// A workspace symbol.
    Symbol,
}

/// A piece of code from elsewhere in the workspace, shown to the model beside the cursor window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snippet {
    /// Path relative to the workspace root, with `/` separators.
    pub path: String,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based, inclusive.
    pub end_line: u32,
    pub text: String,
    pub source: SnippetSource,
    /// For definitions: `function`, `struct`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Relevance in 0..=1.
    pub score: f32,
    /// A shorter form (a definition's bare signature) that packing uses when `text` does not
    /// fit the budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
}

/// One completion to compute.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionRequest {
    /// Text before the cursor, within the prefix budget.
    pub prefix: String,
    /// Text after the cursor, within the suffix budget.
    pub suffix: String,
    pub snippets: Vec<Snippet>,
    /// Path relative to the workspace root (absolute when the file is outside every root).
    pub path: String,
    /// The LSP language id (`rust`, `python`, ...).
    pub language: String,
    pub mode: CompletionMode,
    /// Extra stop sequences from the configuration; backends add their template's own.
    pub stop: Vec<String>,
    pub max_tokens: u32,
    /// How many alternatives to return, for backends that can give several.
    pub candidates: u32,
}
