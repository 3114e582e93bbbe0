//! Prompt building: fill-in-the-middle templates and the rendering of context snippets.
//!
//! Snippets are rendered as comments in the file's own comment syntax with a path header, and
//! go before the prefix, so the template's markers are never clipped.

use crate::request::{CompletionRequest, Snippet};

/// A fill-in-the-middle prompt format and its stop tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FimTemplate {
    pub name: &'static str,
    /// Text before the prefix.
    pub prefix: &'static str,
    /// Text between the prefix and the suffix.
    pub suffix: &'static str,
    /// Text after the suffix; the model generates from here.
    pub middle: &'static str,
    /// Tokens that end the middle.
    pub stop: &'static [&'static str],
}

const TEMPLATES: &[FimTemplate] = &[
    FimTemplate {
        name: "starcoder",
        prefix: "<fim_prefix>",
        suffix: "<fim_suffix>",
        middle: "<fim_middle>",
        stop: &[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            "<file_sep>",
        ],
    },
    FimTemplate {
        name: "codellama",
        prefix: "<PRE> ",
        suffix: " <SUF>",
        middle: " <MID>",
        stop: &["<EOT>", "</s>"],
    },
    FimTemplate {
        name: "deepseek",
        prefix: "<｜fim▁begin｜>",
        suffix: "<｜fim▁hole｜>",
        middle: "<｜fim▁end｜>",
        stop: &["<｜end▁of▁sentence｜>", "<|EOT|>"],
    },
    FimTemplate {
        name: "qwen",
        prefix: "<|fim_prefix|>",
        suffix: "<|fim_suffix|>",
        middle: "<|fim_middle|>",
        stop: &[
            "<|endoftext|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>",
            "<|file_sep|>",
            "<|im_end|>",
        ],
    },
    FimTemplate {
        name: "codestral",
        prefix: "[PREFIX]",
        suffix: "[SUFFIX]",
        middle: "",
        stop: &["</s>"],
    },
];

impl FimTemplate {
    pub const NAMES: &'static [&'static str] =
        &["starcoder", "codellama", "deepseek", "qwen", "codestral"];

    pub fn by_name(name: &str) -> Option<FimTemplate> {
        let name = name.to_ascii_lowercase();
        let name = match name.as_str() {
            "starcoder2" | "santacoder" => "starcoder",
            "deepseek-coder" => "deepseek",
            "qwen2.5-coder" | "qwen-coder" => "qwen",
            other => other,
        };
        TEMPLATES.iter().find(|t| t.name == name).copied()
    }

    pub fn starcoder() -> FimTemplate {
        TEMPLATES[0]
    }

    /// The prompt for `req`. Codestral's format puts the suffix first.
    pub fn render(&self, req: &CompletionRequest) -> String {
        let context = render_snippets(&req.snippets, &req.language);
        let prefix = format!("{context}{}", req.prefix);
        if self.name == "codestral" {
            format!(
                "{}{}{}{}{}",
                self.suffix, req.suffix, self.prefix, prefix, self.middle
            )
        } else {
            format!(
                "{}{}{}{}{}",
                self.prefix, prefix, self.suffix, req.suffix, self.middle
            )
        }
    }
}

/// Line-comment marker for a language id, for rendering snippets inside the prompt.
pub fn line_comment(language: &str) -> &'static str {
    match language {
        "python" | "ruby" | "shellscript" | "sh" | "bash" | "perl" | "r" | "yaml" | "toml"
        | "dockerfile" | "makefile" | "elixir" | "julia" | "nim" | "powershell" => "#",
        "lua" | "sql" | "haskell" | "ada" => "--",
        "lisp" | "clojure" | "scheme" | "elisp" | "emacs-lisp" => ";;",
        "erlang" | "latex" | "tex" => "%",
        "vim" => "\"",
        _ => "//",
    }
}

/// Snippets as comments with a path header, each followed by a blank line.
pub fn render_snippets(snippets: &[Snippet], language: &str) -> String {
    let marker = line_comment(language);
    let mut out = String::new();
    for snippet in snippets {
        out.push_str(&format!("{marker} Path: {}\n", snippet.path));
        for line in snippet.text.lines() {
            if line.is_empty() {
                out.push_str(marker);
            } else {
                out.push_str(&format!("{marker} {line}"));
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::request::{CompletionMode, SnippetSource};

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "fn main() {\n    ".into(),
            suffix: "\n}\n".into(),
            snippets: vec![Snippet {
                path: "src/util.rs".into(),
                start_line: 1,
                end_line: 2,
                text: "pub fn helper() -> u32 {\n\n    1\n}".into(),
                source: SnippetSource::Definition,
                kind: Some("function".into()),
                score: 1.0,
            }],
            path: "src/main.rs".into(),
            language: "rust".into(),
            mode: CompletionMode::MultiLine,
            stop: vec![],
            max_tokens: 64,
            candidates: 1,
        }
    }

    #[test]
    fn starcoder_puts_snippets_inside_the_prefix() {
        let prompt = FimTemplate::starcoder().render(&request());
        expect![[r#"
            <fim_prefix>// Path: src/util.rs
            // pub fn helper() -> u32 {
            //
            //     1
            // }

            fn main() {
                <fim_suffix>
            }
            <fim_middle>"#]]
        .assert_eq(&prompt);
    }

    #[test]
    fn codestral_puts_the_suffix_first() {
        let mut req = request();
        req.snippets.clear();
        let t = FimTemplate::by_name("Codestral").expect("known");
        assert_eq!(t.render(&req), "[SUFFIX]\n}\n[PREFIX]fn main() {\n    ");
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(
            FimTemplate::by_name("starcoder2").map(|t| t.name),
            Some("starcoder")
        );
        assert!(FimTemplate::by_name("gpt").is_none());
    }
}
