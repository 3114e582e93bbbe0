//! `ParsedDocument` against fresh parses: after any edits, the incrementally re-parsed tree is
//! the tree a parse from scratch gives.

use std::time::Duration;

use proptest::prelude::*;
use ropey::Rope;
use tandem_syntax::{Language, ParsedDocument};

const RUST: &str = "use std::fmt;\r\n\r\n/// Docs é.\r\npub struct Engine { name: String }\n\nimpl Engine {\n    pub fn run(&self, steps: u32) -> u32 {\n        let label = \"😀 run\";\n        steps * 2\n    }\n}\n";
const PYTHON: &str = "import os\n\nclass Engine:\n    def run(self, steps):\n        label = \"😀 é\"\n        return steps * 2\n\r\nMAX = 3\n";
const JAVASCRIPT: &str = "import { a } from \"./a\";\nexport function run(steps) {\n  const label = `😀 ${steps}`;\n  return <div>{label}</div>;\n}\r\nclass Store { get size() { return 0; } }\n";

/// Pieces inserted by the random edits: code, line breaks of every kind, multi-byte chars.
const PIECES: &[&str] = &[
    "x",
    "fn ",
    "def ",
    "{",
    "}",
    "(",
    ")",
    "\"",
    ";",
    ":",
    "\n",
    "\r\n",
    "\r",
    "    ",
    "é",
    "😀",
    "中文",
    "let a = 1;",
    "return",
    "\n}\n",
    "/*",
    "*/",
    "#",
    "'",
];

fn sexp(document: &ParsedDocument) -> Option<String> {
    document.tree().map(|t| t.root_node().to_sexp())
}

fn fresh(language: Language, rope: &Rope) -> Option<String> {
    sexp(&ParsedDocument::new(language, rope))
}

/// What tree-sitter itself gives for the same edits on a `String`: the oracle for texts with
/// syntax errors, where an incremental parse may recover differently from a fresh one.
struct Oracle {
    parser: tree_sitter::Parser,
    tree: Option<tree_sitter::Tree>,
}

impl Oracle {
    fn new(language: Language, text: &str) -> Oracle {
        let mut parser = tree_sitter::Parser::new();
        assert!(parser.set_language(&language.grammar()).is_ok());
        let tree = parser.parse(text, None);
        Oracle { parser, tree }
    }

    fn edit(&mut self, before: &str, after: &str, start: usize, old_end: usize, new_end: usize) {
        fn point(text: &str, byte: usize) -> tree_sitter::Point {
            let prefix = &text.as_bytes()[..byte];
            let row = prefix.iter().filter(|&&b| b == b'\n').count();
            let line_start = prefix
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            tree_sitter::Point::new(row, byte - line_start)
        }
        let byte =
            |text: &str, char: usize| text.char_indices().nth(char).map_or(text.len(), |(b, _)| b);
        let (start_byte, old_end_byte) = (byte(before, start), byte(before, old_end));
        let new_end_byte = byte(after, new_end);
        if let Some(tree) = &mut self.tree {
            tree.edit(&tree_sitter::InputEdit {
                start_byte,
                old_end_byte,
                new_end_byte,
                start_position: point(before, start_byte),
                old_end_position: point(before, old_end_byte),
                new_end_position: point(after, new_end_byte),
            });
        }
    }

    fn reparse(&mut self, text: &str) -> Option<String> {
        self.tree = self.parser.parse(text, self.tree.as_ref());
        self.tree.as_ref().map(|t| t.root_node().to_sexp())
    }
}

/// The document's tree is the one a fresh parse gives when that has no syntax errors, and in
/// any case the one tree-sitter's own incremental parse of the same edits gives, positions
/// included.
fn check_tree(
    document: &ParsedDocument,
    oracle: &mut Oracle,
    rope: &Rope,
) -> Result<(), TestCaseError> {
    let text = rope.to_string();
    let language = document.language();
    let mine = sexp(document);
    prop_assert!(mine.is_some());
    prop_assert_eq!(&mine, &oracle.reparse(&text), "text: {:?}", text);
    // Rows and columns too: they come from the edits' points.
    if let (Some(tree), Some(expected)) = (document.tree(), &oracle.tree) {
        prop_assert_eq!(positions(tree.root_node()), positions(expected.root_node()));
    }
    let fresh = fresh(language, rope);
    if fresh
        .as_deref()
        .is_some_and(|s| !s.contains("ERROR") && !s.contains("MISSING"))
    {
        prop_assert_eq!(&mine, &fresh, "text: {:?}", text);
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Edit {
    at: usize,
    delete: usize,
    insert: String,
    /// Re-parse after this edit (otherwise edits pile up); with a zero budget first when set.
    reparse: bool,
    starve: bool,
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    (
        any::<usize>(),
        0usize..12,
        proptest::collection::vec(proptest::sample::select(PIECES), 0..4),
        any::<bool>(),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(at, delete, pieces, reparse, starve)| Edit {
            at,
            delete,
            insert: pieces.concat(),
            reparse,
            starve,
        })
}

fn run_edits(
    language: Language,
    seed: &str,
    copies: usize,
    edits: &[Edit],
) -> Result<(), TestCaseError> {
    let mut rope = Rope::from_str(&seed.repeat(copies));
    let mut document = ParsedDocument::new(language, &rope);
    let mut oracle = Oracle::new(language, &rope.to_string());
    prop_assert_eq!(sexp(&document), fresh(language, &rope));
    for edit in edits {
        let len = rope.len_chars();
        let start = edit.at % (len + 1);
        let old_end = (start + edit.delete).min(len);
        let before = rope.clone();
        rope.remove(start..old_end);
        rope.insert(start, &edit.insert);
        let new_end = start + edit.insert.chars().count();
        document.edit(&before, &rope, start, old_end, new_end);
        oracle.edit(
            &before.to_string(),
            &rope.to_string(),
            start,
            old_end,
            new_end,
        );
        prop_assert!(document.tree().is_none(), "an edited tree is not current");
        if edit.reparse {
            if edit.starve {
                // Whether a zero budget finishes depends on the edit; either way the tree
                // must stay consistent.
                let _ = document.reparse(&rope, Duration::ZERO);
            }
            prop_assert!(document.reparse(&rope, Duration::from_secs(60)));
            check_tree(&document, &mut oracle, &rope)?;
        }
    }
    prop_assert!(document.reparse(&rope, Duration::from_secs(60)));
    check_tree(&document, &mut oracle, &rope)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn rust_edits_match_fresh_parses(edits in proptest::collection::vec(edit_strategy(), 1..16)) {
        // Several copies so the text spans many rope chunks.
        run_edits(Language::Rust, RUST, 24, &edits)?;
    }

    #[test]
    fn python_edits_match_fresh_parses(edits in proptest::collection::vec(edit_strategy(), 1..16)) {
        run_edits(Language::Python, PYTHON, 24, &edits)?;
    }

    #[test]
    fn javascript_edits_match_fresh_parses(edits in proptest::collection::vec(edit_strategy(), 1..16)) {
        run_edits(Language::JavaScript, JAVASCRIPT, 24, &edits)?;
    }
}

#[test]
fn zero_budget_gives_up_and_the_next_reparse_catches_up() {
    let text = RUST.repeat(400);
    let mut rope = Rope::from_str(&text);
    let mut document = ParsedDocument::new(Language::Rust, &rope);
    assert!(document.tree().is_some());
    // Replace everything: nothing of the old tree can be reused, so there is real work to stop.
    let before = rope.clone();
    let replacement = PYTHON.repeat(400);
    rope = Rope::from_str(&replacement);
    document.edit(&before, &rope, 0, before.len_chars(), rope.len_chars());
    assert!(!document.reparse(&rope, Duration::ZERO));
    assert!(document.tree().is_none());
    assert!(!document.reparse(&rope, Duration::ZERO));
    assert!(document.reparse(&rope, Duration::from_secs(60)));
    assert_eq!(sexp(&document), fresh(Language::Rust, &rope));
    // Up to date: nothing to do, even without time.
    assert!(document.reparse(&rope, Duration::ZERO));
}

#[test]
fn edits_that_do_not_fit_the_ropes_fall_back_to_a_full_parse() {
    let before = Rope::from_str("fn a() {}\n");
    let after = Rope::from_str("fn ab() {}\n");
    let mut document = ParsedDocument::new(Language::Rust, &before);
    // Wrong: claims a deletion while the text grew, and ranges past the end.
    document.edit(&before, &after, 4, 6, 4);
    assert!(document.reparse(&after, Duration::from_secs(60)));
    assert_eq!(sexp(&document), fresh(Language::Rust, &after));
    document.edit(&after, &after, 100, 200, 300);
    assert!(document.reparse(&after, Duration::from_secs(60)));
    assert_eq!(sexp(&document), fresh(Language::Rust, &after));
    assert_eq!(document.language(), Language::Rust);
}

#[test]
fn carriage_returns_keep_rows_in_step_with_tree_sitter() {
    let mut rope = Rope::from_str("fn a() {}\r\nfn b() {}\rfn c() {}\n");
    let mut document = ParsedDocument::new(Language::Rust, &rope);
    // Split a `\r\n` into a lone `\r`, then join it back.
    for (at, delete, insert) in [(10, 1, ""), (10, 0, "\n"), (20, 0, "\r\r\n"), (0, 0, "\r")] {
        let before = rope.clone();
        rope.remove(at..at + delete);
        rope.insert(at, insert);
        document.edit(&before, &rope, at, at + delete, at + insert.chars().count());
        assert!(document.reparse(&rope, Duration::from_secs(60)));
        let fresh_document = ParsedDocument::new(Language::Rust, &rope);
        let (Some(tree), Some(fresh_tree)) = (document.tree(), fresh_document.tree()) else {
            panic!("no tree");
        };
        assert_eq!(tree.root_node().to_sexp(), fresh_tree.root_node().to_sexp());
        // Positions, not just shapes: every node has the rows and columns a fresh parse gives.
        assert_eq!(
            positions(tree.root_node()),
            positions(fresh_tree.root_node())
        );
    }
}

/// A node's kind and its start and end points.
type Placed = (String, tree_sitter::Point, tree_sitter::Point);

/// Every node's kind and start and end points, in tree order.
fn positions(root: tree_sitter::Node<'_>) -> Vec<Placed> {
    let mut out = Vec::new();
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        out.push((
            node.kind().to_owned(),
            node.start_position(),
            node.end_position(),
        ));
        if cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return out;
            }
        }
    }
}
