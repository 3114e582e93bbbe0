//! A document's syntax tree kept current from its rope, edit by edit.
//!
//! Edits are recorded synchronously (cheap: a few rope look-ups and `Tree::edit`); the re-parse
//! happens when someone needs the tree, reads the rope's chunks in place and stops when its
//! time budget runs out, leaving the tree dirty for the next try.

use std::time::{Duration, Instant};

use ropey::Rope;
use tree_sitter::{InputEdit, ParseOptions, ParseState, Parser, Point, Tree};

use crate::Language;

/// A document's syntax tree, kept current edit by edit.
pub struct ParsedDocument {
    language: Language,
    parser: Parser,
    /// The last tree, edited to match the current text; `None` if there never was one or an
    /// edit did not fit the text (the next parse starts from scratch).
    tree: Option<Tree>,
    /// Whether `tree` has edits not yet re-parsed.
    dirty: bool,
    /// How many lone `\r`s the text has. Tree-sitter counts rows by `\n` only, ropey (with
    /// `cr_lines`) by every LSP line break; while there is no lone `\r` the two agree and a
    /// position is two rope look-ups, otherwise it takes a scan.
    lone_crs: usize,
}

impl std::fmt::Debug for ParsedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedDocument")
            .field("language", &self.language)
            .field("has_tree", &self.tree.is_some())
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl ParsedDocument {
    /// Parses `rope` at once, without a time limit.
    pub fn new(language: Language, rope: &Rope) -> Self {
        let mut parser = Parser::new();
        // Fails only for a grammar of an incompatible ABI, which the tests would catch; the
        // document then simply never has a tree.
        let _ = parser.set_language(&language.grammar());
        let mut document = ParsedDocument {
            language,
            parser,
            tree: None,
            dirty: true,
            lone_crs: count_all_lone_crs(rope),
        };
        document.reparse(rope, Duration::MAX);
        document
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// Records an edit (cheap, call it synchronously for every LSP change): the text in chars
    /// `start..old_end` of `before` was replaced, producing `after`, where the new text ends at
    /// char `new_end`. Computes byte offsets and tree-sitter points (row, byte column) from the
    /// two ropes and calls `Tree::edit`; marks the tree dirty.
    ///
    /// An edit that does not fit the ropes (out of range, lengths that do not add up) drops the
    /// tree, so the next re-parse starts from scratch rather than from a wrong tree.
    pub fn edit(
        &mut self,
        before: &Rope,
        after: &Rope,
        start: usize,
        old_end: usize,
        new_end: usize,
    ) {
        self.dirty = true;
        let fits = start <= old_end
            && old_end <= before.len_chars()
            && start <= new_end
            && new_end <= after.len_chars()
            && before.len_chars() - (old_end - start) + (new_end - start) == after.len_chars();
        if !fits {
            self.tree = None;
            self.lone_crs = count_all_lone_crs(after);
            return;
        }
        let start_byte = before.char_to_byte(start);
        let old_end_byte = before.char_to_byte(old_end);
        let new_end_byte = after.char_to_byte(new_end);
        let start_position = point(before, start_byte, self.lone_crs);
        let old_end_position = point(before, old_end_byte, self.lone_crs);
        // Only a `\r` in the replaced text or right before it can change whether it is alone.
        let window = start.saturating_sub(1);
        let removed = count_lone_crs(before, window, old_end);
        let added = count_lone_crs(after, window, new_end);
        self.lone_crs = (self.lone_crs + added).saturating_sub(removed);
        let new_end_position = point(after, new_end_byte, self.lone_crs);
        if let Some(tree) = &mut self.tree {
            tree.edit(&InputEdit {
                start_byte,
                old_end_byte,
                new_end_byte,
                start_position,
                old_end_position,
                new_end_position,
            });
        }
    }

    /// Re-parses if dirty, reading the text from the rope's chunks and reusing the old tree;
    /// gives up after `budget`, keeping the tree dirty (returns false) so that the next call
    /// tries again. True when the tree is up to date.
    pub fn reparse(&mut self, rope: &Rope, budget: Duration) -> bool {
        if !self.dirty {
            return true;
        }
        let deadline = Instant::now().checked_add(budget);
        let mut out_of_time = |_: &ParseState| deadline.is_some_and(|d| Instant::now() >= d);
        let len = rope.len_bytes();
        let mut read = |byte: usize, _: Point| -> &[u8] {
            if byte >= len {
                return &[];
            }
            let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
            chunk
                .as_bytes()
                .get(byte.saturating_sub(chunk_start)..)
                .unwrap_or_default()
        };
        let options = ParseOptions::new().progress_callback(&mut out_of_time);
        match self
            .parser
            .parse_with_options(&mut read, self.tree.as_ref(), Some(options))
        {
            Some(tree) => {
                self.tree = Some(tree);
                self.dirty = false;
                true
            }
            None => {
                // A cancelled parse would resume on the next call; the text may have changed by
                // then, so start over (from the edited old tree).
                self.parser.reset();
                false
            }
        }
    }

    /// The current tree if it is up to date.
    pub fn tree(&self) -> Option<&Tree> {
        if self.dirty { None } else { self.tree.as_ref() }
    }
}

/// The tree-sitter point of `byte`: rows counted by `\n`, columns in bytes.
fn point(rope: &Rope, byte: usize, lone_crs: usize) -> Point {
    let byte = byte.min(rope.len_bytes());
    if lone_crs == 0 {
        let row = rope.byte_to_line(byte);
        return Point::new(row, byte - rope.line_to_byte(row));
    }
    let mut row = 0;
    let mut line_start = 0;
    let mut offset = 0;
    for chunk in rope.byte_slice(..byte).chunks() {
        for (i, b) in chunk.bytes().enumerate() {
            if b == b'\n' {
                row += 1;
                line_start = offset + i + 1;
            }
        }
        offset += chunk.len();
    }
    Point::new(row, byte - line_start)
}

/// Lone `\r`s (not followed by `\n`) among chars `from..to`.
fn count_lone_crs(rope: &Rope, from: usize, to: usize) -> usize {
    let from = from.min(rope.len_chars());
    let to = to.min(rope.len_chars());
    let mut chars = rope.chars_at(from).peekable();
    let mut count = 0;
    for _ in from..to {
        match chars.next() {
            Some('\r') if chars.peek() != Some(&'\n') => count += 1,
            Some(_) => {}
            None => break,
        }
    }
    count
}

fn count_all_lone_crs(rope: &Rope) -> usize {
    let mut count = 0;
    let mut after_cr = false;
    for chunk in rope.chunks() {
        for b in chunk.bytes() {
            if after_cr && b != b'\n' {
                count += 1;
            }
            after_cr = b == b'\r';
        }
    }
    count + usize::from(after_cr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_carriage_returns_are_counted() {
        assert_eq!(count_all_lone_crs(&Rope::from_str("a\r\nb\rc\r")), 2);
        let rope = Rope::from_str("a\r\nb\rc\r");
        assert_eq!(count_lone_crs(&rope, 0, rope.len_chars()), 2);
        assert_eq!(count_lone_crs(&rope, 0, 2), 0);
    }

    #[test]
    fn points_count_rows_by_line_feeds() {
        let rope = Rope::from_str("ab\r\ncd\ref");
        assert_eq!(point(&rope, 5, 1), Point::new(1, 1));
        assert_eq!(point(&rope, 8, 1), Point::new(1, 4));
        let rope = Rope::from_str("ab\r\ncd\nef");
        assert_eq!(point(&rope, 8, 0), Point::new(2, 1));
        assert_eq!(point(&rope, 3, 0), Point::new(0, 3));
    }
}
