//! Languages and their tree-sitter grammars.
//!
//! A minimal start: language identification from the LSP `languageId` or the file extension,
//! and a syntax check that post-processing uses to reject completions that break the parse.
//! The context engine grows this crate (tags queries, incremental parsing).

use tree_sitter::Parser;

/// A language with a bundled grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
}

impl Language {
    /// From an LSP `languageId`.
    pub fn from_language_id(id: &str) -> Option<Language> {
        match id {
            "rust" => Some(Language::Rust),
            "python" => Some(Language::Python),
            _ => None,
        }
    }

    /// From a path's extension.
    pub fn from_path(path: &str) -> Option<Language> {
        let ext = path.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "rs" => Some(Language::Rust),
            "py" | "pyi" => Some(Language::Python),
            _ => None,
        }
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
        }
    }
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
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
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

/// How many syntax errors (error and missing nodes) `text` has; `None` if it could not be parsed.
pub fn error_count(language: Language, text: &str) -> Option<usize> {
    let tree = PARSERS.with(|parsers| {
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
        parsers[index].1.parse(text, None)
    })?;
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
    Some(count)
}

/// Whether inserting `completion` between `before` and `after` adds syntax errors.
pub fn breaks_parse(language: Language, before: &str, completion: &str, after: &str) -> bool {
    // Without brackets, quotes or block punctuation a completion cannot unbalance anything the
    // parser would report; skip the two parses.
    if !completion.contains([
        '(', ')', '[', ']', '{', '}', '"', '\'', '`', ':', ';', '#', '/',
    ]) {
        return false;
    }
    let Some(baseline) = error_count(language, &format!("{before}{after}")) else {
        return false;
    };
    let Some(with) = error_count(language, &format!("{before}{completion}{after}")) else {
        return false;
    };
    with > baseline
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
    }

    #[test]
    fn counts_errors() {
        assert_eq!(
            error_count(Language::Rust, "fn main() { let x = 1; }"),
            Some(0)
        );
        assert!(error_count(Language::Rust, "fn main() { let x = ; }").unwrap_or(0) > 0);
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
    }
}
