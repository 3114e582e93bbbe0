//! The cursor window: the text around the cursor that goes into every request, and the facts
//! about the cursor's line that post-processing needs.

use ropey::Rope;

use crate::config::ContextConfig;
use crate::request::{CompletionMode, CompletionRequest, Snippet};

/// The text around the cursor, within the configured budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorWindow {
    /// Text before the cursor: whole lines where the budget allows.
    pub prefix: String,
    /// Text after the cursor, ending at a line end where the budget allows.
    pub suffix: String,
    /// The cursor's line up to the cursor.
    pub line_before: String,
    /// The cursor's line after the cursor, without its line break.
    pub line_after: String,
    pub mode: CompletionMode,
}

impl CursorWindow {
    /// The window at `char_idx` (clamped to the document).
    pub fn at(rope: &Rope, char_idx: usize, budget: &ContextConfig) -> Self {
        let cursor = char_idx.min(rope.len_chars());
        let line = rope.char_to_line(cursor);
        let line_start = rope.line_to_char(line);
        let line_end = line_start + crate::document::line_len_without_break(rope, line);

        let mut start = cursor.saturating_sub(budget.prefix_chars);
        if start > 0 && rope.line_to_char(rope.char_to_line(start)) != start {
            // Start on a whole line unless the cursor's own line is longer than the budget.
            let next_line_start = rope.line_to_char(rope.char_to_line(start) + 1);
            if next_line_start <= cursor {
                start = next_line_start;
            }
        }
        let mut end = (cursor + budget.suffix_chars).min(rope.len_chars());
        if end < rope.len_chars() {
            let end_line = rope.char_to_line(end);
            let end_line_start = rope.line_to_char(end_line);
            if end_line_start > cursor {
                end = end_line_start;
            }
        }
        let line_before = rope.slice(line_start..cursor).to_string();
        let line_after = rope.slice(cursor..line_end).to_string();
        let mode = if line_after.trim().is_empty() {
            CompletionMode::MultiLine
        } else {
            CompletionMode::SingleLine
        };
        Self {
            prefix: rope.slice(start..cursor).to_string(),
            suffix: rope.slice(cursor..end).to_string(),
            line_before,
            line_after,
            mode,
        }
    }

    /// A request for this window.
    pub fn request(
        &self,
        path: String,
        language: String,
        snippets: Vec<Snippet>,
        backend: &crate::config::BackendConfig,
        candidates: u32,
    ) -> CompletionRequest {
        CompletionRequest {
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            snippets,
            path,
            language,
            mode: self.mode,
            stop: backend.stop.clone(),
            max_tokens: backend.max_tokens,
            candidates: candidates.max(1),
        }
    }
}

/// The character offset where the identifier-like word ending at `char_idx` starts.
pub fn word_start(rope: &Rope, char_idx: usize) -> usize {
    let mut start = char_idx.min(rope.len_chars());
    while start > 0 {
        let c = rope.char(start - 1);
        if c.is_alphanumeric() || c == '_' || c == '$' {
            start -= 1;
        } else {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str, budget: (usize, usize)) -> CursorWindow {
        let cursor = text.find("$0").expect("fixture has a $0 cursor");
        let text = text.replacen("$0", "", 1);
        let rope = Rope::from_str(&text);
        let idx = rope.byte_to_char(cursor);
        CursorWindow::at(
            &rope,
            idx,
            &ContextConfig {
                prefix_chars: budget.0,
                suffix_chars: budget.1,
            },
        )
    }

    #[test]
    fn budgets_cut_at_line_boundaries() {
        let w = window("line one\nline two\nfn f() {$0\n    x\n}\nafter\n", (12, 9));
        assert_eq!(w.prefix, "fn f() {");
        assert_eq!(w.suffix, "\n    x\n}\n");
        assert_eq!(w.mode, CompletionMode::MultiLine);
    }

    #[test]
    fn long_cursor_line_keeps_a_partial_prefix() {
        let w = window("abcdefghij$0 rest", (4, 100));
        assert_eq!(w.prefix, "ghij");
        assert_eq!(w.suffix, " rest");
        assert_eq!(w.line_after, " rest");
        assert_eq!(w.mode, CompletionMode::SingleLine);
    }

    #[test]
    fn crlf_and_lone_cr_are_line_breaks() {
        let w = window("a\r\nb\rlet x = $0;\r\nz", (100, 100));
        assert_eq!(w.line_before, "let x = ");
        assert_eq!(w.line_after, ";");
    }

    #[test]
    fn word_start_stops_at_punctuation() {
        let rope = Rope::from_str("self.foo_bar");
        assert_eq!(word_start(&rope, 12), 5);
        assert_eq!(word_start(&rope, 5), 5);
    }
}
