//! Nothing panics on garbage: random bytes, truncated programs, deep nesting, offsets past the
//! end or inside a character, for every language.

use proptest::prelude::*;
use tandem_syntax::{
    Language, ParsedDocument, definitions, definitions_in, enclosing_definition, identifiers_near,
    imports, imports_in, parse_outline, receiver_type,
};

/// Snippets of every language, glued together at random.
const PIECES: &[&str] = &[
    "fn f(",
    "def g(x):\n",
    "class A {",
    "struct S {",
    "}",
    "{",
    ")",
    "(",
    "#include <",
    "#define X(",
    "import ",
    "from . import ",
    "use a::{b, ",
    "package p\n",
    "func (r *R) M(",
    "type T struct {",
    "template <typename T>",
    "namespace n {",
    "export const f = () => ",
    "interface I {",
    "@Ann ",
    "public static final int X = ",
    "\"",
    "'",
    "`",
    "/*",
    "*/",
    "//",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "é",
    "😀",
    "\u{0}",
    "\u{feff}",
    ";",
    ":",
    "::",
    "->",
    "=>",
    "<",
    ">",
    "impl<T> X for Y<T> {",
    "macro_rules! m {",
    "typedef struct {",
    "A::B::c(",
    "const (",
    "let (a, b) = ",
    "self.",
    "x = T(",
    "x.",
    "from .m import ",
    "$",
];

fn exercise(language: Language, text: &str, offset: usize) {
    let bytes = text.as_bytes();
    let _ = definitions(language, text);
    let _ = imports(language, text);
    let outline = parse_outline(language, bytes).expect("every grammar loads");
    let _ = outline.definitions(language, bytes);
    let _ = outline.imports(language, bytes);
    let document = ParsedDocument::new(language, &ropey::Rope::from_str(text));
    let Some(tree) = document.tree() else {
        panic!("no tree for {}", language.name())
    };
    let _ = definitions_in(language, tree, bytes);
    let _ = imports_in(language, tree, bytes);
    // Offsets anywhere, including inside a multi-byte character and past the end.
    for byte in [
        0,
        offset % (bytes.len() + 1),
        bytes.len(),
        bytes.len() + 10,
        usize::MAX,
    ] {
        let _ = enclosing_definition(language, tree, bytes, byte);
        let _ = identifiers_near(language, tree, bytes, byte, 5);
        let _ = identifiers_near(language, tree, bytes, byte, usize::MAX);
        let _ = receiver_type(language, tree, bytes, byte, &[]);
    }
    // A tree with a text that is not its own (a caller bug) must not panic either.
    let other = &bytes[..bytes.len() / 2];
    let _ = definitions_in(language, tree, other);
    let _ = imports_in(language, tree, other);
    let _ = enclosing_definition(language, tree, other, offset);
    let _ = identifiers_near(language, tree, other, offset, 3);
    let _ = receiver_type(
        language,
        tree,
        other,
        offset,
        &imports_in(language, tree, bytes),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn garbage_from_pieces(pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..60), offset in any::<usize>()) {
        let text = pieces.concat();
        for language in Language::ALL {
            exercise(language, &text, offset);
        }
    }

    #[test]
    fn arbitrary_text(text in "\\PC{0,200}", offset in any::<usize>()) {
        for language in Language::ALL {
            exercise(language, &text, offset);
        }
    }
}

#[test]
fn edge_inputs() {
    let deep_braces = "{".repeat(5000);
    let deep_parens = format!("fn f() {{ {} }}", "(".repeat(3000));
    let long_line = format!("const X = \"{}\";", "é".repeat(20_000));
    let huge_signature = format!("fn f({}) {{}}", "a: u32, ".repeat(500));
    for text in [
        "",
        " ",
        "\n",
        "\r",
        "\u{0}",
        &deep_braces,
        &deep_parens,
        &long_line,
        &huge_signature,
    ] {
        for language in Language::ALL {
            exercise(language, text, text.len() / 2);
        }
    }
    let defs = definitions(Language::Rust, &huge_signature);
    assert!(defs.iter().all(|d| d.signature.len() <= 400));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The completion check parses the text with the completion incrementally and confirms a
    /// rejection with a fresh parse: it drops a suggestion only when fresh parses of the text
    /// without and with it show a new error. (It may accept what fresh parses would reject:
    /// tree-sitter's incremental reparse recovers from errors differently from a fresh parse
    /// in about 1 of 360,000 random cases.)
    #[test]
    fn completion_check_rejects_only_what_fresh_parses_reject(
        before in proptest::collection::vec(proptest::sample::select(PIECES), 0..12),
        completion in proptest::collection::vec(proptest::sample::select(PIECES), 1..4),
        after in proptest::collection::vec(proptest::sample::select(PIECES), 0..12),
    ) {
        let (before, completion, after) = (before.concat(), completion.concat(), after.concat());
        for language in Language::ALL {
            let fresh = tandem_syntax::error_count(language, &format!("{before}{completion}{after}"))
                > tandem_syntax::error_count(language, &format!("{before}{after}"));
            let checked = tandem_syntax::breaks_parse(language, &before, &completion, &after);
            prop_assert!(!checked || fresh, "{} {:?} {:?} {:?}", language.name(), before, completion, after);
        }
    }
}

/// A case where tree-sitter's incremental reparse sees an error that a fresh parse of the same
/// text does not (found by the property test above): the check decides as the fresh parses do.
#[test]
fn completion_check_confirms_a_rejection_with_a_fresh_parse() {
    let (before, completion, after) = ("->\"\"", "typedef struct {", "const (`fn f(");
    let fresh = tandem_syntax::error_count(Language::Go, &format!("{before}{completion}{after}"))
        > tandem_syntax::error_count(Language::Go, &format!("{before}{after}"));
    assert!(!fresh);
    assert!(!tandem_syntax::breaks_parse(
        Language::Go,
        before,
        completion,
        after
    ));
}
