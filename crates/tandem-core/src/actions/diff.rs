//! Old and new text to small edits: a line diff (Myers, from the `similar` crate) whose runs of
//! changed lines become one [`TextEdit`] each, so an action never replaces a whole file and the
//! editor shows (and undoes) exactly the lines that changed.

use similar::{Algorithm, DiffOp, capture_diff_slices};

/// Replace the characters `start..end` (char offsets into the document) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextEdit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Lines with their line breaks (the last one may have none).
pub fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The char offset where each line of `text` starts, and one past the end.
fn line_starts(lines: &[&str]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(lines.len() + 1);
    let mut at = 0;
    starts.push(0);
    for l in lines {
        at += l.chars().count();
        starts.push(at);
    }
    starts
}

/// The line break `text` uses: `\r\n` when its first line break is one, else `\n`.
pub fn line_break(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// `text` with its line breaks made `brk`.
pub fn with_line_breaks(text: &str, brk: &str) -> String {
    let unix = text.replace("\r\n", "\n");
    if brk == "\n" {
        unix
    } else {
        unix.replace('\n', brk)
    }
}

/// The edits that turn lines `first..last` (exclusive) of `document` into `replacement`.
/// `replacement` takes the document's line breaks, and ends with one exactly when the replaced
/// lines did.
pub fn replace_lines(
    document: &str,
    first: usize,
    last: usize,
    replacement: &str,
) -> Vec<TextEdit> {
    let lines = split_lines(document);
    let first = first.min(lines.len());
    let last = last.clamp(first, lines.len());
    let brk = line_break(document);
    let mut new = with_line_breaks(replacement, brk);
    let old_ends_with_break = last > first && lines[last - 1].ends_with('\n');
    let region_at_end = last == lines.len();
    if old_ends_with_break || (!region_at_end && !new.is_empty()) {
        if !new.ends_with('\n') {
            new.push_str(brk);
        }
    } else if region_at_end && last > first {
        // The document's last line has no break: neither does the replacement.
        while new.ends_with('\n') {
            new.pop();
            if new.ends_with('\r') {
                new.pop();
            }
        }
    }
    let starts = line_starts(&lines);
    let old_lines = &lines[first..last];
    let new_lines = split_lines(&new);
    let offset = starts[first];
    diff_lines(old_lines, &new_lines)
        .into_iter()
        .map(|(a, b, text)| TextEdit {
            start: offset + starts[first + a] - starts[first],
            end: offset + starts[first + b] - starts[first],
            text,
        })
        .collect()
}

/// Inserts `text` before line `line` (past the end: at the end, after a line break).
pub fn insert_lines(document: &str, line: usize, text: &str) -> TextEdit {
    let lines = split_lines(document);
    let brk = line_break(document);
    let mut text = with_line_breaks(text, brk);
    if !text.ends_with('\n') {
        text.push_str(brk);
    }
    let starts = line_starts(&lines);
    if line >= lines.len() {
        let end = starts[lines.len()];
        if lines.last().is_some_and(|l| !l.ends_with('\n')) {
            text.insert_str(0, brk);
            text.truncate(text.len() - brk.len());
        }
        return TextEdit {
            start: end,
            end,
            text,
        };
    }
    TextEdit {
        start: starts[line],
        end: starts[line],
        text,
    }
}

/// Runs of changed lines: (first old line, end old line, new text), relative to `old`.
fn diff_lines(old: &[&str], new: &[&str]) -> Vec<(usize, usize, String)> {
    let ops = capture_diff_slices(Algorithm::Myers, old, new);
    let mut out: Vec<(usize, usize, String)> = Vec::new();
    for op in ops {
        let (old_range, new_range) = match op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index, old_len, ..
            } => (old_index..old_index + old_len, 0..0),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index..old_index, new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        let text: String = new[new_range].concat();
        match out.last_mut() {
            Some(last) if last.1 == old_range.start => {
                last.1 = old_range.end;
                last.2.push_str(&text);
            }
            _ => out.push((old_range.start, old_range.end, text)),
        }
    }
    out
}

/// `document` with `edits` applied (they must not overlap; any order).
pub fn apply(document: &str, edits: &[TextEdit]) -> String {
    let mut chars: Vec<char> = document.chars().collect();
    let mut sorted: Vec<&TextEdit> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.start));
    for e in sorted {
        let start = e.start.min(chars.len());
        let end = e.end.clamp(start, chars.len());
        chars.splice(start..end, e.text.chars());
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(document: &str, first: usize, last: usize, replacement: &str, expect: Expect) {
        let edits = replace_lines(document, first, last, replacement);
        let shown: Vec<String> = edits
            .iter()
            .map(|e| format!("{}..{} {:?}", e.start, e.end, e.text))
            .collect();
        expect.assert_eq(&shown.join("\n"));
        // The edits produce exactly the replacement.
        let lines = split_lines(document);
        let mut want = lines[..first].concat();
        want.push_str(&with_line_breaks(replacement, line_break(document)));
        if lines[..last].last().is_some_and(|l| l.ends_with('\n')) && !want.ends_with('\n') {
            want.push_str(line_break(document));
        }
        if last == lines.len() && !document.ends_with('\n') {
            want = want.trim_end_matches(['\r', '\n']).to_owned();
        }
        want.push_str(&lines[last..].concat());
        assert_eq!(apply(document, &edits), want);
    }

    #[test]
    fn only_changed_lines_are_edited() {
        check(
            "fn f() {\n    let a = 1;\n    let b = 2;\n    a + b\n}\n",
            0,
            5,
            "fn f() {\n    let a = 1;\n    let b = 3;\n    a + b\n}",
            expect![[r#"24..39 "    let b = 3;\n""#]],
        );
    }

    #[test]
    fn insertions_and_deletions_are_separate_edits() {
        check(
            "a\nb\nc\nd\ne\n",
            1,
            4,
            "x\nb\nd\n",
            expect![[r#"
                2..2 "x\n"
                4..6 """#]],
        );
    }

    #[test]
    fn crlf_documents_keep_crlf_and_a_last_line_without_break_stays_so() {
        check(
            "one\r\ntwo\r\nthree",
            1,
            3,
            "two\nTHREE\n",
            expect![[r#"10..15 "THREE""#]],
        );
    }

    #[test]
    fn multibyte_text_uses_char_offsets() {
        check(
            "é\nü = 1\nz\n",
            1,
            2,
            "ü = 2",
            expect![[r#"2..8 "ü = 2\n""#]],
        );
    }

    #[test]
    fn insert_lines_at_end_without_break() {
        let e = insert_lines("a\nb", 9, "c\n");
        assert_eq!(apply("a\nb", &[e]), "a\nb\nc");
        let e = insert_lines("a\nb\n", 1, "x");
        assert_eq!(apply("a\nb\n", &[e]), "a\nx\nb\n");
    }
}
