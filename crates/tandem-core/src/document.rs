//! The rope mirror of one open document, and conversion between editor positions and offsets.
//!
//! Line breaks are exactly the LSP's: `\n`, `\r\n` and a lone `\r` (ropey with `cr_lines`).
//! Columns are counted in the negotiated [`PositionEncoding`]; positions past the end of a line
//! or of the document are clamped, never panicked on.

use ropey::Rope;

/// How columns are counted, as negotiated at `initialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    /// Bytes of UTF-8.
    Utf8,
    /// UTF-16 code units: the LSP default.
    #[default]
    Utf16,
    /// Unicode scalar values (characters).
    Utf32,
}

/// A position as the editor sends it: zero-based line, column in the negotiated encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

impl LineCol {
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

/// One edit as the editor sends it: a range (or the whole document) and its replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChange {
    /// `None` replaces the whole document.
    pub range: Option<(LineCol, LineCol)>,
    pub text: String,
}

/// What one change did to a document: the text in chars `start..old_end` of `before` was
/// replaced, giving `after`, where the new text ends at char `new_end`. The ropes are O(1)
/// copies.
#[derive(Debug, Clone)]
pub struct Edit {
    pub before: Rope,
    pub after: Rope,
    pub start: usize,
    pub old_end: usize,
    pub new_end: usize,
}

/// An open document: its text, version and language.
#[derive(Debug, Clone)]
pub struct Document {
    rope: Rope,
    version: i32,
    language_id: String,
}

/// What a completion task works on: an O(1) copy of the text at one version.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub rope: Rope,
    pub version: i32,
    pub language_id: String,
}

impl Document {
    pub fn new(text: &str, version: i32, language_id: impl Into<String>) -> Self {
        Self {
            rope: Rope::from_str(text),
            version,
            language_id: language_id.into(),
        }
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn language_id(&self) -> &str {
        &self.language_id
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rope: self.rope.clone(),
            version: self.version,
            language_id: self.language_id.clone(),
        }
    }

    /// Applies the changes of one `didChange` in order, then takes the new version.
    pub fn apply_changes(&mut self, changes: &[TextChange], version: i32, enc: PositionEncoding) {
        // Without a listener, no copy of the text before each change is kept: a kept copy
        // makes the edit copy the rope's nodes on its path (it doubled the cost of an edit).
        for change in changes {
            self.apply_change(change, enc);
        }
        self.version = version;
    }

    /// [`Document::apply_changes`], telling `on_edit` what each change did (for incremental
    /// parsing, which needs the text before and after every change).
    pub fn apply_changes_with(
        &mut self,
        changes: &[TextChange],
        version: i32,
        enc: PositionEncoding,
        mut on_edit: impl FnMut(&Edit),
    ) {
        for change in changes {
            let before = self.rope.clone();
            let (start, old_end, new_end) = self.apply_change(change, enc);
            on_edit(&Edit {
                before,
                after: self.rope.clone(),
                start,
                old_end,
                new_end,
            });
        }
        self.version = version;
    }

    /// Applies one change; a reversed range is treated as the range between its ends. Returns
    /// the character offsets of the change's start, of the replaced text's end before it and
    /// of the inserted text's end after it.
    pub fn apply_change(
        &mut self,
        change: &TextChange,
        enc: PositionEncoding,
    ) -> (usize, usize, usize) {
        match change.range {
            None => {
                let old_end = self.rope.len_chars();
                self.rope = Rope::from_str(&change.text);
                (0, old_end, self.rope.len_chars())
            }
            Some((start, end)) => {
                let a = char_offset(&self.rope, start, enc);
                // Most edits are insertions: an empty range needs one conversion, not two.
                let b = if end == start {
                    a
                } else {
                    char_offset(&self.rope, end, enc)
                };
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                if a != b {
                    self.rope.remove(a..b);
                }
                if !change.text.is_empty() {
                    self.rope.insert(a, &change.text);
                }
                (a, b, a + change.text.chars().count())
            }
        }
    }
}

/// The character offset of `pos`, clamped: a line past the end means the end of the document,
/// a column past the end of its line means the end of that line (before its line break), and a
/// column inside a character (half a surrogate pair, the middle of a UTF-8 sequence) means the
/// start of that character.
pub fn char_offset(rope: &Rope, pos: LineCol, enc: PositionEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let line_start = rope.line_to_char(line);
    let line_end = line_start + line_len_without_break(rope, line);
    let col = pos.col as usize;
    let target = match enc {
        PositionEncoding::Utf32 => line_start.saturating_add(col),
        PositionEncoding::Utf16 => {
            let base = rope.char_to_utf16_cu(line_start);
            let end = rope.char_to_utf16_cu(line_end);
            let cu = base.saturating_add(col).min(end);
            rope.utf16_cu_to_char(cu)
        }
        PositionEncoding::Utf8 => {
            let base = rope.char_to_byte(line_start);
            let end = rope.char_to_byte(line_end);
            rope.byte_to_char(base.saturating_add(col).min(end))
        }
    };
    target.min(line_end)
}

/// The editor position of a character offset (clamped to the end of the document).
pub fn line_col(rope: &Rope, char_idx: usize, enc: PositionEncoding) -> LineCol {
    let char_idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(char_idx);
    let line_start = rope.line_to_char(line);
    let col = match enc {
        PositionEncoding::Utf32 => char_idx - line_start,
        PositionEncoding::Utf16 => {
            rope.char_to_utf16_cu(char_idx) - rope.char_to_utf16_cu(line_start)
        }
        PositionEncoding::Utf8 => rope.char_to_byte(char_idx) - rope.char_to_byte(line_start),
    };
    LineCol::new(saturate(line), saturate(col))
}

/// Length of a text in the units of `enc`.
pub fn encoded_len(text: &str, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => text.len(),
        PositionEncoding::Utf16 => text.encode_utf16().count(),
        PositionEncoding::Utf32 => text.chars().count(),
    }
}

/// Number of characters of `line`, not counting its line break.
pub fn line_len_without_break(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    if len > 0 && slice.char(len - 1) == '\n' {
        len -= 1;
    }
    if len > 0 && slice.char(len - 1) == '\r' {
        len -= 1;
    }
    len
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(doc: &mut Document, (l1, c1): (u32, u32), (l2, c2): (u32, u32), text: &str) {
        let change = TextChange {
            range: Some((LineCol::new(l1, c1), LineCol::new(l2, c2))),
            text: text.to_owned(),
        };
        doc.apply_change(&change, PositionEncoding::Utf16);
    }

    #[test]
    fn utf16_columns_count_surrogate_pairs() {
        let mut doc = Document::new("a😀b\n", 1, "rust");
        edit(&mut doc, (0, 3), (0, 3), "X");
        assert_eq!(doc.rope().to_string(), "a😀Xb\n");
    }

    #[test]
    fn half_a_surrogate_pair_rounds_down() {
        let rope = Rope::from_str("😀x");
        assert_eq!(
            char_offset(&rope, LineCol::new(0, 1), PositionEncoding::Utf16),
            0
        );
        assert_eq!(
            char_offset(&rope, LineCol::new(0, 2), PositionEncoding::Utf16),
            1
        );
    }

    #[test]
    fn utf8_columns_are_bytes() {
        let rope = Rope::from_str("é😀z");
        assert_eq!(
            char_offset(&rope, LineCol::new(0, 6), PositionEncoding::Utf8),
            2
        );
        assert_eq!(
            line_col(&rope, 2, PositionEncoding::Utf8),
            LineCol::new(0, 6)
        );
        assert_eq!(
            line_col(&rope, 2, PositionEncoding::Utf32),
            LineCol::new(0, 2)
        );
        assert_eq!(
            line_col(&rope, 2, PositionEncoding::Utf16),
            LineCol::new(0, 3)
        );
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let rope = Rope::from_str("ab\r\ncd\rxy");
        let enc = PositionEncoding::Utf16;
        assert_eq!(
            char_offset(&rope, LineCol::new(0, 99), enc),
            2,
            "end of line, before CRLF"
        );
        assert_eq!(
            char_offset(&rope, LineCol::new(1, 99), enc),
            6,
            "before a lone CR"
        );
        assert_eq!(char_offset(&rope, LineCol::new(2, 1), enc), 8);
        assert_eq!(
            char_offset(&rope, LineCol::new(9, 0), enc),
            9,
            "past the last line"
        );
        assert_eq!(char_offset(&rope, LineCol::new(u32::MAX, u32::MAX), enc), 9);
    }

    #[test]
    fn reversed_ranges_and_full_replacement() {
        let mut doc = Document::new("hello world", 1, "text");
        edit(&mut doc, (0, 11), (0, 5), "");
        assert_eq!(doc.rope().to_string(), "hello");
        doc.apply_change(
            &TextChange {
                range: None,
                text: "new".into(),
            },
            PositionEncoding::Utf8,
        );
        assert_eq!(doc.rope().to_string(), "new");
    }
}
