//! The syntax layer of the context engine: languages, tree-sitter grammars and what the
//! engine reads from a syntax tree.
//!
//! - [`Language`]: the bundled grammars, found from an LSP `languageId` or a file extension.
//! - [`error_count`] / [`breaks_parse`] / [`SyntaxCheck`]: the syntax check post-processing
//!   uses to drop (or cut back) completions that add errors to the code around the cursor.
//! - [`definitions`] / [`definitions_in`]: the functions, types, constants, modules and macros a
//!   file defines, with their signatures and containers, from our own tags queries
//!   (`src/queries/<language>.scm`).
//! - [`imports`] / [`imports_in`]: the modules a file imports, as written.
//! - [`parse_outline`]: a tree without the insides of function bodies, for the symbol index.
//! - [`ParsedDocument`]: a document's tree kept current edit by edit from a `ropey::Rope`,
//!   re-parsed incrementally within a time budget.
//! - [`identifiers_near`] / [`enclosing_definition`]: what the code at a cursor refers to, for
//!   retrieval.
//!
//! Nothing here fails on user input: broken code gives a tree with error nodes and fewer
//! definitions, never a panic or an `Err`.

mod document;
mod imports;
mod near;
mod outline;
mod receiver;
mod tags;

pub use document::ParsedDocument;
pub use imports::{Import, imports, imports_in};
pub use near::identifiers_near;
pub use outline::{Outline, parse_outline};
pub use receiver::{Receiver, Target, receiver_type};
pub use tags::{DefKind, Definition, definitions, definitions_in, enclosing_definition, warm_up};

/// The tree-sitter version whose trees this crate's API takes and gives.
pub use tree_sitter;

use tree_sitter::{Parser, Tree};

/// A language with a bundled grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    /// JavaScript, JSX included (the grammar parses both).
    JavaScript,
    TypeScript,
    /// TypeScript with JSX.
    Tsx,
    Go,
    Java,
    C,
    Cpp,
}

impl Language {
    /// Every bundled language.
    pub const ALL: [Language; 9] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::Java,
        Language::C,
        Language::Cpp,
    ];

    /// From an LSP `languageId`.
    pub fn from_language_id(id: &str) -> Option<Language> {
        match id {
            "rust" => Some(Language::Rust),
            "python" => Some(Language::Python),
            "javascript" | "javascriptreact" => Some(Language::JavaScript),
            "typescript" => Some(Language::TypeScript),
            "typescriptreact" => Some(Language::Tsx),
            "go" => Some(Language::Go),
            "java" => Some(Language::Java),
            "c" => Some(Language::C),
            "cpp" => Some(Language::Cpp),
            _ => None,
        }
    }

    /// From a path's extension.
    pub fn from_path(path: &str) -> Option<Language> {
        let ext = path.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "rs" => Some(Language::Rust),
            "py" | "pyi" => Some(Language::Python),
            "js" | "mjs" | "cjs" | "jsx" => Some(Language::JavaScript),
            "ts" | "mts" | "cts" => Some(Language::TypeScript),
            "tsx" => Some(Language::Tsx),
            "go" => Some(Language::Go),
            "java" => Some(Language::Java),
            "c" | "h" => Some(Language::C),
            "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => Some(Language::Cpp),
            _ => None,
        }
    }

    /// From a path's extension and the file's text: a `.h` header that uses C++ (namespaces,
    /// templates, access specifiers, `std::`) is C++, not C.
    pub fn from_path_and_text(path: &str, text: &str) -> Option<Language> {
        match Language::from_path(path)? {
            Language::C if path.ends_with(".h") && looks_like_cpp(text) => Some(Language::Cpp),
            language => Some(language),
        }
    }

    /// The human name: "Rust", "C++", "TSX".
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::TypeScript => "TypeScript",
            Language::Tsx => "TSX",
            Language::Go => "Go",
            Language::Java => "Java",
            Language::C => "C",
            Language::Cpp => "C++",
        }
    }

    /// What starts a line comment.
    pub fn comment_prefix(self) -> &'static str {
        match self {
            Language::Python => "#",
            _ => "//",
        }
    }

    /// The tree-sitter grammar, for callers with queries of their own.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
            Language::C => tree_sitter_c::LANGUAGE.into(),
            Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Whether a header's text has C++ that the C grammar cannot read.
fn looks_like_cpp(text: &str) -> bool {
    // Line starts, so that prose in comments rarely counts.
    const MARKERS: [&str; 8] = [
        "\nnamespace ",
        "\ntemplate <",
        "\ntemplate<",
        "\nclass ",
        " public:\n",
        " private:\n",
        "\npublic:\n",
        "\nprivate:\n",
    ];
    MARKERS.iter().any(|m| text.contains(m)) || text.contains("std::")
}

/// The LSP `languageId` for a path, for documents read from disk (the CLI).
pub fn language_id_for_path(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "javascriptreact",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "typescriptreact",
        "go" => "go",
        "java" => "java",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "lua" => "lua",
        "sh" | "bash" => "shellscript",
        "toml" => "toml",
        "json" => "json",
        "yaml" | "yml" => "yaml",
        "md" => "markdown",
        "kt" => "kotlin",
        "swift" => "swift",
        "scala" => "scala",
        "zig" => "zig",
        _ => "plaintext",
    }
}

thread_local! {
    /// One parser per thread and language, reused: creating one per check costs more than
    /// parsing the small windows the checks use.
    static PARSERS: std::cell::RefCell<Vec<(Language, Parser)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Parses `text` from scratch with this thread's parser for `language`.
pub fn parse(language: Language, text: &[u8]) -> Option<Tree> {
    parse_with(language, text, &[])
}

/// Runs `f` with this thread's parser for `language`, made at its first use.
fn with_parser<T>(language: Language, f: impl FnOnce(&mut Parser) -> Option<T>) -> Option<T> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let index = match parsers.iter().position(|(l, _)| *l == language) {
            Some(i) => i,
            None => {
                let mut parser = Parser::new();
                parser.set_language(&language.grammar()).ok()?;
                parsers.push((language, parser));
                parsers.len() - 1
            }
        };
        f(&mut parsers.get_mut(index)?.1)
    })
}

/// Parses `text` from scratch, seeing only `included` (the whole text when empty).
pub(crate) fn parse_with(
    language: Language,
    text: &[u8],
    included: &[tree_sitter::Range],
) -> Option<Tree> {
    with_parser(language, |parser| {
        if included.is_empty() {
            return parser.parse(text, None);
        }
        parser.set_included_ranges(included).ok()?;
        let tree = parser.parse(text, None);
        // The parser is shared: leave it seeing whole texts again.
        let _reset = parser.set_included_ranges(&[]);
        tree
    })
}

/// Parses `text`, the text of `old` after the edits `old` was told of, reusing what did not
/// change. (A thread whose first parse this is makes its parser here: a check given a tree
/// must not find no parser and accept everything.)
fn parse_edited(language: Language, text: &[u8], old: &Tree) -> Option<Tree> {
    with_parser(language, |parser| parser.parse(text, Some(old)))
}

/// How many syntax errors (error and missing nodes) `text` has; `None` if it could not be parsed.
pub fn error_count(language: Language, text: &str) -> Option<usize> {
    let tree = parse(language, text.as_bytes())?;
    Some(errors_in(&tree))
}

/// How many error and missing nodes `tree` has.
fn errors_in(tree: &Tree) -> usize {
    let mut count = 0;
    let mut cursor = tree.walk();
    let mut visited_children = false;
    loop {
        let node = cursor.node();
        if !visited_children {
            if node.is_error() || node.is_missing() {
                count += 1;
            }
            if node.has_error() && cursor.goto_first_child() {
                continue;
            }
        }
        if cursor.goto_next_sibling() {
            visited_children = false;
        } else if cursor.goto_parent() {
            visited_children = true;
        } else {
            break;
        }
    }
    count
}

/// Whether inserting `completion` between `before` and `after` adds syntax errors.
pub fn breaks_parse(language: Language, before: &str, completion: &str, after: &str) -> bool {
    SyntaxCheck::new(language, before, after).breaks(completion)
}

/// The completion syntax check at one cursor: the text around it (`before`, `after`) is parsed
/// once (or its tree is given), then each candidate insertion is checked against that
/// baseline — a candidate and the shorter versions of it that repairing a broken one tries.
pub struct SyntaxCheck {
    language: Language,
    before: String,
    after: String,
    /// The tree of `before + after` and its error count, parsed at the first check that needs
    /// them; `None` inside when the text could not be parsed (then nothing is rejected).
    baseline: Option<Option<(Tree, usize)>>,
}

impl SyntaxCheck {
    pub fn new(language: Language, before: impl Into<String>, after: impl Into<String>) -> Self {
        SyntaxCheck {
            language,
            before: before.into(),
            after: after.into(),
            baseline: None,
        }
    }

    /// The check with the tree of `before + after` already at hand (an open document's tree,
    /// kept current by its edits): each check is then one incremental parse.
    pub fn with_tree(
        language: Language,
        before: impl Into<String>,
        after: impl Into<String>,
        tree: Tree,
    ) -> Self {
        let errors = errors_in(&tree);
        SyntaxCheck {
            language,
            before: before.into(),
            after: after.into(),
            baseline: Some(Some((tree, errors))),
        }
    }

    /// Whether inserting `completion` at the cursor adds syntax errors. (Any text can: a
    /// dangling operator or a lone keyword breaks as surely as an unbalanced bracket.)
    pub fn breaks(&mut self, completion: &str) -> bool {
        if completion.is_empty() {
            return false;
        }
        let (language, before, after) = (self.language, &self.before, &self.after);
        let baseline = self.baseline.get_or_insert_with(|| {
            let tree = parse(language, format!("{before}{after}").as_bytes())?;
            let errors = errors_in(&tree);
            Some((tree, errors))
        });
        let Some((tree, baseline)) = baseline.as_ref() else {
            return false;
        };
        let baseline = *baseline;
        // The text with the completion is the same text with one insertion: parse it
        // incrementally from the first tree, so that only the region around it is parsed again.
        let mut tree = tree.clone();
        let start = end_point(tree_sitter::Point::new(0, 0), before);
        tree.edit(&tree_sitter::InputEdit {
            start_byte: before.len(),
            old_end_byte: before.len(),
            new_end_byte: before.len() + completion.len(),
            start_position: start,
            old_end_position: start,
            new_end_position: end_point(start, completion),
        });
        let with = format!("{before}{completion}{after}");
        let Some(incremental) = parse_edited(language, with.as_bytes(), &tree) else {
            return false;
        };
        if errors_in(&incremental) <= baseline {
            return false;
        }
        // tree-sitter may recover from errors differently when it reuses the old tree (about 1
        // case in 150,000 random ones each way), so a rejection, which drops the suggestion, is
        // confirmed by a fresh parse; an acceptance, the common case, is not.
        parse(language, with.as_bytes()).is_some_and(|fresh| errors_in(&fresh) > baseline)
    }
}

/// Where `text` ends when it starts at `start` (tree-sitter points count bytes in a row).
fn end_point(start: tree_sitter::Point, text: &str) -> tree_sitter::Point {
    match text.rfind('\n') {
        Some(last) => tree_sitter::Point::new(
            start.row + text.matches('\n').count(),
            text.len() - last - 1,
        ),
        None => tree_sitter::Point::new(start.row, start.column + text.len()),
    }
}

/// The text of `node`, lossily decoded; empty if its range is outside `source`.
pub(crate) fn node_text(node: tree_sitter::Node<'_>, source: &[u8]) -> String {
    text_in(source, node.start_byte(), node.end_byte())
}

/// `source[start..end]`, lossily decoded; empty if the range is outside `source`.
pub(crate) fn text_in(source: &[u8], start: usize, end: usize) -> String {
    source
        .get(start..end)
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages() {
        assert_eq!(Language::from_path("src/lib.rs"), Some(Language::Rust));
        assert_eq!(Language::from_language_id("python"), Some(Language::Python));
        assert_eq!(Language::from_path("Makefile"), None);
        assert_eq!(language_id_for_path("a/b.tsx"), "typescriptreact");
        assert_eq!(Language::from_path("a/b.tsx"), Some(Language::Tsx));
        assert_eq!(Language::from_path("a/b.hxx"), Some(Language::Cpp));
        assert_eq!(Language::from_path("a/b.h"), Some(Language::C));
        assert_eq!(
            Language::from_path_and_text("a/b.h", "int f(void);\n"),
            Some(Language::C)
        );
        assert_eq!(
            Language::from_path_and_text("a/b.h", "#pragma once\nnamespace a {\nclass B;\n}\n"),
            Some(Language::Cpp)
        );
        assert_eq!(
            Language::from_path_and_text("a/b.c", "namespace x"),
            Some(Language::C)
        );
        assert_eq!(Language::from_path("a/b.mjs"), Some(Language::JavaScript));
        assert_eq!(Language::from_path("a/b.cts"), Some(Language::TypeScript));
        assert_eq!(
            Language::from_language_id("javascriptreact"),
            Some(Language::JavaScript)
        );
        assert_eq!(
            Language::from_language_id("typescriptreact"),
            Some(Language::Tsx)
        );
        assert_eq!(Language::from_language_id("c++"), None);
        // Every language a path maps to agrees with its LSP id.
        for path in [
            "a.rs", "a.py", "a.pyi", "a.js", "a.mjs", "a.cjs", "a.jsx", "a.ts", "a.mts", "a.cts",
            "a.tsx", "a.go", "a.java", "a.c", "a.h", "a.cc", "a.cpp", "a.cxx", "a.hpp", "a.hh",
            "a.hxx",
        ] {
            assert_eq!(
                Language::from_path(path),
                Language::from_language_id(language_id_for_path(path)),
                "{path}"
            );
        }
    }

    #[test]
    fn every_grammar_loads() {
        for language in Language::ALL {
            assert_eq!(error_count(language, ""), Some(0), "{}", language.name());
            assert_eq!(Language::ALL[language.index()], language);
        }
        assert_eq!(Language::Python.comment_prefix(), "#");
        assert_eq!(Language::Go.comment_prefix(), "//");
    }

    #[test]
    fn a_check_given_a_tree_rejects_breaks_on_a_thread_that_never_parsed() {
        let (before, after) = ("def f(x):\n    return ", "\n\nprint(f(1))\n");
        let tree = parse(Language::Python, format!("{before}{after}").as_bytes());
        let tree = tree.expect("parses");
        let verdicts = std::thread::spawn(move || {
            let mut check = SyntaxCheck::with_tree(Language::Python, before, after, tree);
            (check.breaks("x + \"one"), check.breaks("x + \"one\""))
        })
        .join()
        .expect("the check does not panic");
        assert_eq!(verdicts, (true, false));
    }

    #[test]
    fn counts_errors() {
        assert_eq!(
            error_count(Language::Rust, "fn main() { let x = 1; }"),
            Some(0)
        );
        assert!(error_count(Language::Rust, "fn main() { let x = ; }").unwrap_or(0) > 0);
        let broken = [
            (Language::Python, "def f(:\n"),
            (Language::JavaScript, "function f( {"),
            (Language::TypeScript, "let x: = 1;"),
            (Language::Tsx, "const a = <div>;"),
            (Language::Go, "func f( {"),
            (Language::Java, "class A { void f( }"),
            (Language::C, "int f( {"),
            (Language::Cpp, "class A { void f( };"),
        ];
        for (language, text) in broken {
            assert!(
                error_count(language, text).unwrap_or(0) > 0,
                "{}",
                language.name()
            );
        }
    }

    #[test]
    fn completion_that_breaks_the_parse_is_detected() {
        let before = "fn main() {\n    let x = ";
        let after = ";\n}\n";
        assert!(!breaks_parse(
            Language::Rust,
            before,
            "compute(1, 2)",
            after
        ));
        let before = "fn main() {\n    let y = 2;\n    ";
        assert!(breaks_parse(Language::Rust, before, "go(y)) {", "\n}\n"));
        assert!(!breaks_parse(Language::Rust, before, "go(y);", "\n}\n"));
        let before = "function main() {\n  const y = 2;\n  ";
        assert!(breaks_parse(
            Language::JavaScript,
            before,
            "go(y)) {",
            "\n}\n"
        ));
        assert!(!breaks_parse(
            Language::JavaScript,
            before,
            "go(y);",
            "\n}\n"
        ));
    }
}
