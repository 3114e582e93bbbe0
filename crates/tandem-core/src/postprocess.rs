//! Post-processing: turns the model's token stream into the text shown, and says when the
//! stream can stop early.
//!
//! Rules, in order: single-line mode keeps the first line; a multi-line completion that begins
//! with a line break starts on the next line (it is not empty); a multi-line completion ends
//! where it leaves the cursor's block (by indentation); overlap with the text after the cursor
//! is removed; empty and whitespace-only completions are dropped.

use crate::context::CursorWindow;
use crate::request::CompletionMode;

/// Whether the stream should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Enough has been seen: drop the stream (which cancels generation on the server).
    Stop,
}

/// Consumes one completion's stream.
#[derive(Debug, Clone)]
pub struct PostProcessor {
    mode: CompletionMode,
    line_before: String,
    suffix: String,
    text: String,
    /// How many bytes of `text` are known to be kept (whole lines checked so far).
    checked: usize,
    /// Set once a line that leaves the block has been seen: `text[..end]` is the completion.
    end: Option<usize>,
}

impl PostProcessor {
    pub fn new(window: &CursorWindow) -> Self {
        Self {
            mode: window.mode,
            line_before: window.line_before.clone(),
            suffix: window.suffix.clone(),
            text: String::new(),
            checked: 0,
            end: None,
        }
    }

    /// Feeds the next piece of the stream.
    pub fn push(&mut self, chunk: &str) -> Flow {
        if self.end.is_some() {
            return Flow::Stop;
        }
        self.text.push_str(chunk);
        match self.mode {
            CompletionMode::SingleLine => {
                if let Some(nl) = self.text.find(['\n', '\r']) {
                    self.end = Some(nl);
                    return Flow::Stop;
                }
            }
            CompletionMode::MultiLine => self.scan_lines(),
        }
        if self.end.is_some() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Checks the newly completed lines against the block rule.
    fn scan_lines(&mut self) {
        while let Some(rel) = self.text[self.checked..].find('\n') {
            let line_end = self.checked + rel;
            // The first line of the text continues the cursor's line; it is always kept.
            let is_first = self.checked == 0 && !self.text.starts_with('\n');
            if !is_first && self.checked > 0 {
                let line = self.text[self.checked..line_end].trim_end_matches('\r');
                if let Some(keep) = self.block_rule(line) {
                    self.end = Some(if keep {
                        line_end
                    } else {
                        self.checked.saturating_sub(1)
                    });
                    return;
                }
            }
            self.checked = line_end + 1;
        }
    }

    /// For a line after the first: `None` to go on, `Some(true)` to keep it and stop,
    /// `Some(false)` to stop before it.
    fn block_rule(&self, line: &str) -> Option<bool> {
        if line.trim().is_empty() {
            return None;
        }
        let base = indent_width(&self.line_before);
        let indent = indent_width(line);
        let first_line = self.text.split('\n').next().unwrap_or_default();
        let cursor_line = format!("{}{}", self.line_before, first_line);
        let opens_block = cursor_line.trim_end().ends_with(['{', '(', '[', ':']);
        let closer = line.trim_start().starts_with(['}', ')', ']']);
        if indent > base {
            None
        } else if indent == base && opens_block {
            // The line closing the block opened on the cursor's line ends it; anything else at
            // that level is the next item.
            Some(closer)
        } else if indent == base {
            None
        } else {
            Some(false)
        }
    }

    /// The stream ended because the model reached its token limit, not because it was done:
    /// in multi-line mode the last line is unfinished (`    adacc = vpadalq_u16`), so it is
    /// not shown. A single line is kept: it is all there is.
    pub fn cut_short(&mut self) {
        if self.mode != CompletionMode::MultiLine || self.end.is_some() {
            return;
        }
        if let Some(nl) = self.text.rfind('\n')
            && nl + 1 < self.text.len()
            && !self.text[..nl].trim().is_empty()
        {
            self.text.truncate(nl);
        }
    }

    /// The completion to show, if any survives.
    pub fn finish(mut self) -> Option<String> {
        if self.end.is_none() {
            match self.mode {
                CompletionMode::SingleLine => {
                    self.end = self.text.find(['\n', '\r']);
                }
                CompletionMode::MultiLine => {
                    // The last line has no line break yet: check it as if it had.
                    self.text.push('\n');
                    self.scan_lines();
                    self.text.pop();
                }
            }
        }
        let mut text = match self.end {
            Some(end) => self.text[..end.min(self.text.len())].to_owned(),
            None => self.text,
        };
        if self.mode == CompletionMode::MultiLine {
            text = text.replace("\r\n", "\n");
            let trimmed = text.trim_end().len();
            text.truncate(trimmed);
        } else {
            let trimmed = text.trim_end().len();
            // Trailing spaces matter before a suffix on the same line; keep them there.
            if self.suffix.trim().is_empty() || self.suffix.starts_with(['\n', '\r']) {
                text.truncate(trimmed);
            }
        }
        let text = match self.mode {
            CompletionMode::SingleLine => {
                let line_after = self.suffix.split(['\n', '\r']).next().unwrap_or_default();
                remove_suffix_overlap(&text, line_after)
            }
            CompletionMode::MultiLine => remove_line_overlap(&text, &self.suffix),
        };
        if text.trim().is_empty() {
            None
        } else {
            Some(text)
        }
    }
}

/// Removes the longest end of `completion` that the rest of the line already has, character
/// by character (`foo(a, b)` before a `)` loses its `)`).
pub fn remove_suffix_overlap(completion: &str, line_after: &str) -> String {
    let mut best = 0;
    for (k, _) in line_after
        .char_indices()
        .skip(1)
        .chain([(line_after.len(), ' ')])
    {
        let piece = &line_after[..k];
        if k > completion.len() {
            break;
        }
        if !piece.trim().is_empty() && completion.ends_with(piece) {
            best = k;
        }
    }
    completion[..completion.len() - best].to_owned()
}

/// Removes the completion's last lines when the lines after the cursor are the same ones
/// (a closing brace the editor already has).
pub fn remove_line_overlap(completion: &str, suffix: &str) -> String {
    let lines: Vec<&str> = completion.split('\n').collect();
    let mut after = suffix.split('\n').map(|l| l.trim_end_matches('\r'));
    // The suffix's first line is the rest of the cursor's line.
    after.next();
    let after: Vec<&str> = after
        .skip_while(|l| l.trim().is_empty())
        .take(lines.len())
        .collect();
    let best = (1..=after.len().min(lines.len().saturating_sub(1)))
        .rev()
        .find(|&k| {
            lines[lines.len() - k..]
                .iter()
                .zip(&after[..k])
                .all(|(a, b)| a.trim_end() == b.trim_end())
        });
    match best {
        Some(k) => lines[..lines.len() - k].join("\n").trim_end().to_owned(),
        None => completion.to_owned(),
    }
}

/// Leading whitespace width, a tab counting as four columns.
fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use ropey::Rope;

    use super::*;
    use crate::config::ContextConfig;

    /// Runs the model output `stream` (chunks separated by `|`) at the `$0` of `fixture`.
    #[track_caller]
    fn check(fixture: &str, stream: &str, expect: Expect) {
        let cursor = fixture.find("$0").expect("fixture has a $0 cursor");
        let text = fixture.replacen("$0", "", 1);
        let rope = Rope::from_str(&text);
        let window = CursorWindow::at(&rope, rope.byte_to_char(cursor), &ContextConfig::default());
        let mut post = PostProcessor::new(&window);
        let mut stopped_at = None;
        for (i, chunk) in stream.split('|').enumerate() {
            if post.push(chunk) == Flow::Stop {
                stopped_at = Some(i);
                break;
            }
        }
        let shown = post.finish();
        let actual = format!(
            "stopped at chunk: {stopped_at:?}\n{}",
            shown.as_deref().unwrap_or("<none>")
        );
        expect.assert_eq(&actual);
    }

    #[test]
    fn single_line_keeps_the_first_line_and_stops_early() {
        check(
            "let x = $0;\n",
            "foo(1, |2)\nlet y|= 3;",
            expect![[r#"
                stopped at chunk: Some(1)
                foo(1, 2)"#]],
        );
    }

    #[test]
    fn leading_newline_is_a_multi_line_completion() {
        check(
            "fn main() {$0\n}\n",
            "\n    let x = 1;|\n    println!(\"{x}\");\n}\n\nfn other() {}",
            expect![[r#"
                stopped at chunk: Some(1)

                    let x = 1;
                    println!("{x}");"#]],
        );
    }

    #[test]
    fn leading_newline_in_single_line_mode_shows_nothing() {
        check(
            "foo($0)\n",
            "\nbar",
            expect![[r#"
            stopped at chunk: Some(0)
            <none>"#]],
        );
    }

    #[test]
    fn dedent_ends_a_multi_line_completion() {
        check(
            "def f():\n    x = 1\n    $0\n",
            "y = 2\n    return x + y\n\ndef g():\n    pass\n",
            expect![[r#"
                stopped at chunk: Some(0)
                y = 2
                    return x + y"#]],
        );
    }

    #[test]
    fn block_opened_on_the_cursor_line_keeps_its_closer() {
        check(
            "fn main() {\n    if ready $0\n}\n",
            "{\n        go();\n    }\n    other();\n",
            expect![[r#"
                stopped at chunk: Some(0)
                {
                        go();
                    }"#]],
        );
    }

    #[test]
    fn overlap_with_the_suffix_is_removed() {
        check(
            "call($0)\n",
            "a, b)",
            expect![[r#"
            stopped at chunk: None
            a, b"#]],
        );
        check(
            "fn main() {\n    $0\n}\n",
            "run();\n}",
            expect![[r#"
                stopped at chunk: None
                run();"#]],
        );
    }

    #[test]
    fn whitespace_only_is_dropped() {
        check(
            "x = $0\n",
            "  \n\n  ",
            expect![[r#"
            stopped at chunk: None
            <none>"#]],
        );
    }

    #[test]
    fn crlf_output_is_normalised() {
        check(
            "fn a() {$0\r\n}\r\n",
            "\r\n    b();\r\n    c();",
            expect![[r#"
            stopped at chunk: None

                b();
                c();"#]],
        );
    }

    #[test]
    fn a_stream_cut_short_by_the_token_limit_loses_its_unfinished_line() {
        let cut = |fixture: &str, stream: &str| {
            let cursor = fixture.find("$0").expect("fixture has a $0 cursor");
            let text = fixture.replacen("$0", "", 1);
            let rope = Rope::from_str(&text);
            let window =
                CursorWindow::at(&rope, rope.byte_to_char(cursor), &ContextConfig::default());
            let mut post = PostProcessor::new(&window);
            post.push(stream);
            post.cut_short();
            post.finish()
        };
        assert_eq!(
            cut("fn f() {\n    $0\n}\n", "a = 1;\n    b = vadd_u16").as_deref(),
            Some("a = 1;")
        );
        // A line break at the end means the last line was finished.
        assert_eq!(
            cut("fn f() {\n    $0\n}\n", "a = 1;\n    b = 2;\n").as_deref(),
            Some("a = 1;\n    b = 2;")
        );
        // One line is all there is: kept.
        assert_eq!(
            cut("fn f() {\n    $0\n}\n", "a = vadd_u16").as_deref(),
            Some("a = vadd_u16")
        );
        assert_eq!(cut("f($0)\n", "a, b\nc").as_deref(), Some("a, b"));
    }

    #[test]
    fn overlap_helper() {
        assert_eq!(remove_suffix_overlap("foo()", ")"), "foo(");
        assert_eq!(remove_line_overlap("x\n}", "\n}\n"), "x");
        assert_eq!(
            remove_line_overlap("{\n    y\n    }", "\n}\n"),
            "{\n    y\n    }"
        );
        assert_eq!(remove_line_overlap("\n    a\n}", "\n\n}\n"), "\n    a");
        assert_eq!(remove_suffix_overlap("abc", "xyz"), "abc");
        assert_eq!(remove_suffix_overlap("é)", ")é"), "é");
        assert_eq!(remove_suffix_overlap(")", ")"), "");
    }
}
