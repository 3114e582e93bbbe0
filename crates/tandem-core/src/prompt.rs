//! Prompt building: fill-in-the-middle templates, their stop tokens, the rendering of context
//! snippets, and the removal of special tokens that leak into generated text.
//!
//! # Templates
//!
//! | name | models | prompt | stops (besides the markers) |
//! |---|---|---|---|
//! | `starcoder` | StarCoder, StarCoder2, SantaCoder, Granite-Code | `<fim_prefix>{p}<fim_suffix>{s}<fim_middle>` | `<\|endoftext\|>`, `<file_sep>` |
//! | `codellama` | Code Llama | `<PRE> {p} <SUF>{s} <MID>` | `<EOT>`, `</s>` |
//! | `deepseek` | DeepSeek-Coder v1 and V2 | `<｜fim▁begin｜>{p}<｜fim▁hole｜>{s}<｜fim▁end｜>` | `<｜end▁of▁sentence｜>`, `<\|EOT\|>` |
//! | `qwen` | Qwen2.5-Coder | `<\|fim_prefix\|>{p}<\|fim_suffix\|>{s}<\|fim_middle\|>` | `<\|endoftext\|>`, `<\|file_sep\|>`, `<\|im_end\|>` |
//! | `codestral` | Codestral | `[SUFFIX]{s}[PREFIX]{p}` | `</s>` |
//! | `codegemma` | CodeGemma | `<\|fim_prefix\|>{p}<\|fim_suffix\|>{s}<\|fim_middle\|>` | `<\|file_separator\|>`, `<end_of_turn>`, `<eos>` |
//!
//! DeepSeek's markers use fullwidth vertical bars (U+FF5C) and `▁` (U+2581); DeepSeek-Coder-V2
//! kept v1's FIM tokens. Granite-Code was trained with StarCoder's tokenizer and FIM markers
//! (`<fim_prefix>`, `<fim_suffix>`, `<fim_middle>`, ending with `<|endoftext|>`). Qwen2.5-Coder
//! also has a repository-level format, used here whenever the request has snippets, so that
//! cross-file context goes in as real files rather than comments:
//! `<|repo_name|>{repo}\n<|file_sep|>{path}\n{content}\n...<|file_sep|>{current path}\n<|fim_prefix|>...`.
//! The token spellings come from the models' tokenizer configurations and model cards as
//! published by their authors (recalled, not fetched at build time).
//!
//! Other templates put snippets as comments in the file's own comment syntax with a path
//! header, before the prefix, so the template's markers are never clipped. A custom template
//! (any `backend.fim` containing `{prefix}` and `{suffix}`) may place them with `{context}`.

use std::borrow::Cow;

use crate::request::{CompletionRequest, Snippet};

/// The repository name Qwen's repository-level format is given when none is known.
pub const DEFAULT_REPO_NAME: &str = "workspace";

/// Special tokens that end generated text whatever the template: they are never code.
const LEAKED_END_TOKENS: &[&str] = &[
    "<|endoftext|>",
    "<EOT>",
    "<|EOT|>",
    "<｜end▁of▁sentence｜>",
    "<|im_end|>",
    "<|file_separator|>",
    "<end_of_turn>",
    "<file_sep>",
    "<|file_sep|>",
    "<fim_pad>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<reponame>",
];

/// How a template lays out the pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// Prefix, suffix, middle.
    Psm,
    /// Suffix first (Codestral).
    Spm,
    /// Qwen2.5-Coder: PSM, with snippets as files in the repository-level format.
    QwenRepo,
    /// A user's template string, split at its slots.
    Custom(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Prefix,
    Suffix,
    Context,
}

/// A fill-in-the-middle prompt format and its stop tokens.
///
/// Built-in templates are found with [`FimTemplate::by_name`]; [`FimTemplate::resolve`] also
/// handles `auto` (choose by model name) and custom template strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FimTemplate {
    pub name: Cow<'static, str>,
    /// Text before the prefix.
    pub prefix: Cow<'static, str>,
    /// Text between the prefix and the suffix (before the suffix, for suffix-first formats).
    pub suffix: Cow<'static, str>,
    /// Text after the suffix; the model generates from here.
    pub middle: Cow<'static, str>,
    /// Tokens that end the middle.
    pub stop: &'static [&'static str],
    layout: Layout,
}

const STARCODER_STOP: &[&str] = &[
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<file_sep>",
];
const CODELLAMA_STOP: &[&str] = &["<EOT>", "</s>"];
const DEEPSEEK_STOP: &[&str] = &["<｜end▁of▁sentence｜>", "<|EOT|>"];
const QWEN_STOP: &[&str] = &[
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|file_sep|>",
    "<|im_end|>",
];
const CODESTRAL_STOP: &[&str] = &["</s>"];
const CODEGEMMA_STOP: &[&str] = &[
    "<|file_separator|>",
    "<end_of_turn>",
    "<eos>",
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
];
/// Stops sent with a custom template: end-of-text tokens of the common code models.
const CUSTOM_STOP: &[&str] = &[
    "<|endoftext|>",
    "</s>",
    "<EOT>",
    "<|EOT|>",
    "<|file_separator|>",
];

impl FimTemplate {
    /// The built-in templates' names.
    pub const NAMES: &'static [&'static str] = &[
        "starcoder",
        "codellama",
        "deepseek",
        "qwen",
        "codestral",
        "codegemma",
    ];

    fn builtin(
        name: &'static str,
        markers: [&'static str; 3],
        stop: &'static [&'static str],
        layout: Layout,
    ) -> FimTemplate {
        FimTemplate {
            name: Cow::Borrowed(name),
            prefix: Cow::Borrowed(markers[0]),
            suffix: Cow::Borrowed(markers[1]),
            middle: Cow::Borrowed(markers[2]),
            stop,
            layout,
        }
    }

    /// A built-in template by name or alias (case-insensitive); `None` for anything else,
    /// including `auto` and custom strings (see [`FimTemplate::resolve`]).
    pub fn by_name(name: &str) -> Option<FimTemplate> {
        let name = name.trim().to_ascii_lowercase();
        Some(match name.as_str() {
            "starcoder" | "starcoder2" | "santacoder" | "granite" | "granite-code" => {
                Self::starcoder()
            }
            "codellama" | "code-llama" => Self::builtin(
                "codellama",
                ["<PRE> ", " <SUF>", " <MID>"],
                CODELLAMA_STOP,
                Layout::Psm,
            ),
            "deepseek" | "deepseek-coder" | "deepseek-v2" | "deepseek-coder-v2" => Self::builtin(
                "deepseek",
                ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
                DEEPSEEK_STOP,
                Layout::Psm,
            ),
            "qwen" | "qwen2.5-coder" | "qwen-coder" => Self::builtin(
                "qwen",
                ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
                QWEN_STOP,
                Layout::QwenRepo,
            ),
            "codestral" => Self::builtin(
                "codestral",
                ["[PREFIX]", "[SUFFIX]", ""],
                CODESTRAL_STOP,
                Layout::Spm,
            ),
            "codegemma" => Self::builtin(
                "codegemma",
                ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
                CODEGEMMA_STOP,
                Layout::Psm,
            ),
            _ => return None,
        })
    }

    pub fn starcoder() -> FimTemplate {
        Self::builtin(
            "starcoder",
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
            STARCODER_STOP,
            Layout::Psm,
        )
    }

    /// The built-in template for a model name, by pattern; StarCoder's when nothing matches.
    pub fn for_model(model: &str) -> FimTemplate {
        Self::detect(model).unwrap_or_else(Self::starcoder)
    }

    /// The built-in template of the model family a model name names, by pattern; `None` when
    /// it names no known family (where [`FimTemplate::for_model`] falls back to StarCoder's).
    pub fn detect(model: &str) -> Option<FimTemplate> {
        let m = model.to_ascii_lowercase();
        let name = if m.contains("codellama") || m.contains("code-llama") {
            "codellama"
        } else if m.contains("deepseek") {
            "deepseek"
        } else if m.contains("qwen") {
            "qwen"
        } else if m.contains("codestral") {
            "codestral"
        } else if m.contains("codegemma") {
            "codegemma"
        } else if m.contains("starcoder") || m.contains("santacoder") || m.contains("granite") {
            "starcoder"
        } else {
            return None;
        };
        Self::by_name(name)
    }

    /// The template `backend.fim` names: unset or `auto` chooses by `model` (see
    /// [`FimTemplate::for_model`]), a built-in name or alias, or a custom template string with
    /// `{prefix}` and `{suffix}` slots and an optional `{context}` slot for snippets.
    pub fn resolve(fim: Option<&str>, model: Option<&str>) -> Result<FimTemplate, String> {
        let fim = fim.map(str::trim).filter(|f| !f.is_empty());
        match fim {
            None => Ok(Self::for_model(model.unwrap_or_default())),
            Some(f) if f.eq_ignore_ascii_case("auto") => {
                Ok(Self::for_model(model.unwrap_or_default()))
            }
            Some(f) if f.contains('{') => Self::custom(f),
            Some(f) => Self::by_name(f).ok_or_else(|| {
                format!(
                    "`backend.fim` is `{f}`; expected `auto`, one of {}, or a template with \
                     `{{prefix}}` and `{{suffix}}`",
                    Self::NAMES.join(", ")
                )
            }),
        }
    }

    /// A custom template: `{prefix}` and `{suffix}` once each, `{context}` at most once.
    pub fn custom(template: &str) -> Result<FimTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        let mut text = String::new();
        let (mut p, mut s, mut c) = (0, 0, 0);
        while let Some(open) = rest.find('{') {
            text.push_str(&rest[..open]);
            let after = &rest[open..];
            let slot = [
                ("{prefix}", Part::Prefix),
                ("{suffix}", Part::Suffix),
                ("{context}", Part::Context),
            ]
            .into_iter()
            .find(|(k, _)| after.starts_with(k));
            match slot {
                Some((key, part)) => {
                    match part {
                        Part::Prefix => p += 1,
                        Part::Suffix => s += 1,
                        _ => c += 1,
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(part);
                    rest = &after[key.len()..];
                }
                None => {
                    text.push('{');
                    rest = &after[1..];
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if p != 1 || s != 1 || c > 1 {
            return Err(format!(
                "`backend.fim` template `{template}` must contain `{{prefix}}` and `{{suffix}}` \
                 exactly once each (and `{{context}}` at most once)"
            ));
        }
        // The literal text right before each slot, and after the last, as the marker fields.
        let before = |target: &Part| {
            parts
                .iter()
                .position(|x| x == target)
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| match &parts[i] {
                    Part::Text(t) => Some(t.clone()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let middle = match parts.last() {
            Some(Part::Text(t)) => t.clone(),
            _ => String::new(),
        };
        Ok(FimTemplate {
            name: Cow::Borrowed("custom"),
            prefix: Cow::Owned(before(&Part::Prefix)),
            suffix: Cow::Owned(before(&Part::Suffix)),
            middle: Cow::Owned(middle),
            stop: CUSTOM_STOP,
            layout: Layout::Custom(parts),
        })
    }

    /// The template's stop tokens.
    pub fn stop_tokens(&self) -> &[&'static str] {
        self.stop
    }

    /// Whether snippets go in as files of the repository (Qwen's format) rather than comments.
    pub fn snippets_as_files(&self) -> bool {
        self.layout == Layout::QwenRepo
    }

    /// The prompt for `req`.
    pub fn render(&self, req: &CompletionRequest) -> String {
        self.render_in_repo(req, DEFAULT_REPO_NAME)
    }

    /// The prompt for `req`, naming the repository `repo` where the format has a slot for it.
    pub fn render_in_repo(&self, req: &CompletionRequest, repo: &str) -> String {
        let (p, s, m) = (&self.prefix, &self.suffix, &self.middle);
        match &self.layout {
            Layout::Psm => {
                let context = render_snippets(&req.snippets, &req.language);
                format!("{p}{context}{}{s}{}{m}", req.prefix, req.suffix)
            }
            Layout::Spm => {
                let context = render_snippets(&req.snippets, &req.language);
                format!("{s}{}{p}{context}{}{m}", req.suffix, req.prefix)
            }
            Layout::QwenRepo => {
                let mut out = String::new();
                if !req.snippets.is_empty() {
                    out.push_str(&format!("<|repo_name|>{repo}\n"));
                    for snippet in &req.snippets {
                        out.push_str(&qwen_file(snippet));
                    }
                    out.push_str(&format!("<|file_sep|>{}\n", req.path));
                }
                out.push_str(&format!("{p}{}{s}{}{m}", req.prefix, req.suffix));
                out
            }
            Layout::Custom(parts) => {
                let context = render_snippets(&req.snippets, &req.language);
                let has_context = parts.contains(&Part::Context);
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Prefix => {
                            if !has_context {
                                out.push_str(&context);
                            }
                            out.push_str(&req.prefix);
                        }
                        Part::Suffix => out.push_str(&req.suffix),
                        Part::Context => out.push_str(&context),
                    }
                }
                out
            }
        }
    }

    /// What one snippet adds to the prompt (for budgeting): its comment form, or its file form
    /// in Qwen's repository-level format.
    pub fn render_snippet(&self, snippet: &Snippet, language: &str) -> String {
        match self.layout {
            Layout::QwenRepo => qwen_file(snippet),
            _ => render_snippets(std::slice::from_ref(snippet), language),
        }
    }

    /// What the prompt for `req` costs besides the prefix, the suffix and the snippets
    /// themselves: the markers, plus the repository header when there are snippets.
    pub fn overhead(&self, req: &CompletionRequest, with_snippets: bool) -> String {
        let mut bare = req.clone();
        bare.prefix.clear();
        bare.suffix.clear();
        bare.snippets.clear();
        let mut out = self.render(&bare);
        if with_snippets && self.layout == Layout::QwenRepo {
            out.push_str(&format!(
                "<|repo_name|>{DEFAULT_REPO_NAME}\n<|file_sep|>{}\n",
                req.path
            ));
        }
        out
    }

    /// Every token that must not reach the user: the template's markers and stops, and the
    /// end-of-text tokens of the common code models. `</s>` is only included when the
    /// template's own stops have it, as it is also HTML.
    pub fn special_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = Vec::new();
        let mut add = |t: &str| {
            if !t.is_empty() && !tokens.iter().any(|x| x == t) {
                tokens.push(t.to_owned());
            }
        };
        for marker in [&self.prefix, &self.suffix, &self.middle] {
            for word in marker.split_whitespace() {
                if looks_special(word) {
                    add(word);
                }
            }
        }
        for t in self.stop.iter().chain(LEAKED_END_TOKENS) {
            add(t);
        }
        tokens
    }

    /// `text` up to the first special token (see [`FimTemplate::special_tokens`]): a leaked
    /// end-of-text or marker token means what follows is not part of the completion.
    pub fn strip_special(&self, text: &str) -> String {
        let mut filter = self.special_filter();
        let mut out = filter.push(text);
        out.push_str(&filter.finish());
        out
    }

    /// A streaming form of [`FimTemplate::strip_special`], for text that arrives in chunks (a
    /// token may be split across them).
    pub fn special_filter(&self) -> SpecialFilter {
        SpecialFilter {
            tokens: self.special_tokens(),
            pending: String::new(),
            ended: false,
        }
    }
}

/// Whether a marker word is a special token (`<...>` or `[UPPER]`) rather than plain text.
fn looks_special(word: &str) -> bool {
    (word.starts_with('<') && word.ends_with('>') && word.len() > 2)
        || (word.starts_with('[')
            && word.ends_with(']')
            && word.len() > 2
            && word[1..word.len() - 1]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_'))
}

/// Removes special tokens from streamed text: everything from the first one on is dropped.
/// Text that could be the start of a token split across chunks is held back until the next
/// chunk (or [`SpecialFilter::finish`]) decides.
#[derive(Debug, Clone)]
pub struct SpecialFilter {
    tokens: Vec<String>,
    pending: String,
    ended: bool,
}

impl SpecialFilter {
    /// The text of `chunk` (with any held-back text before it) that is safe to pass on.
    pub fn push(&mut self, chunk: &str) -> String {
        if self.ended {
            return String::new();
        }
        self.pending.push_str(chunk);
        if let Some(at) = self
            .tokens
            .iter()
            .filter_map(|t| self.pending.find(t.as_str()))
            .min()
        {
            self.ended = true;
            let mut out = std::mem::take(&mut self.pending);
            out.truncate(at);
            return out;
        }
        // Hold back the longest tail that is a proper prefix of some token.
        let hold = self
            .pending
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.pending[i..];
                self.tokens
                    .iter()
                    .any(|t| t.len() > tail.len() && t.starts_with(tail))
            })
            .unwrap_or(self.pending.len());
        let rest = self.pending.split_off(hold);
        std::mem::replace(&mut self.pending, rest)
    }

    /// The held-back text, once the stream is over.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Whether a special token was seen: the rest of the stream is not part of the completion.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

fn qwen_file(snippet: &Snippet) -> String {
    let text = snippet.text.strip_suffix('\n').unwrap_or(&snippet.text);
    format!("<|file_sep|>{}\n{text}\n", snippet.path)
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

/// Snippets as `<context path=".." lines="a-b">` blocks, for chat models; `gap` follows
/// each block (`"\n"` packs them, `"\n\n"` leaves a blank line between).
pub fn render_context_tags(snippets: &[Snippet], gap: &str) -> String {
    let mut out = String::new();
    for s in snippets {
        out.push_str(&format!(
            "<context path=\"{}\" lines=\"{}-{}\">\n{}\n</context>{gap}",
            s.path,
            s.start_line,
            s.end_line,
            s.text.trim_end_matches('\n')
        ));
    }
    out
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
    use expect_test::{Expect, expect};

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
                brief: None,
            }],
            path: "src/main.rs".into(),
            language: "rust".into(),
            mode: CompletionMode::MultiLine,
            stop: vec![],
            max_tokens: 64,
            candidates: 1,
        }
    }

    fn check(fim: &str, with: Expect, without: Expect) {
        let t = FimTemplate::resolve(Some(fim), None).expect("known template");
        with.assert_eq(&t.render(&request()));
        let mut req = request();
        req.snippets.clear();
        without.assert_eq(&t.render(&req));
    }

    #[test]
    fn starcoder_puts_snippets_inside_the_prefix() {
        check(
            "starcoder",
            expect![[r#"
                <fim_prefix>// Path: src/util.rs
                // pub fn helper() -> u32 {
                //
                //     1
                // }

                fn main() {
                    <fim_suffix>
                }
                <fim_middle>"#]],
            expect![[r#"
                <fim_prefix>fn main() {
                    <fim_suffix>
                }
                <fim_middle>"#]],
        );
    }

    #[test]
    fn codellama() {
        check(
            "codellama",
            expect![[r#"
            <PRE> // Path: src/util.rs
            // pub fn helper() -> u32 {
            //
            //     1
            // }

            fn main() {
                 <SUF>
            }
             <MID>"#]],
            expect![[r#"
            <PRE> fn main() {
                 <SUF>
            }
             <MID>"#]],
        );
    }

    #[test]
    fn deepseek() {
        check(
            "deepseek",
            expect![[r#"
            <｜fim▁begin｜>// Path: src/util.rs
            // pub fn helper() -> u32 {
            //
            //     1
            // }

            fn main() {
                <｜fim▁hole｜>
            }
            <｜fim▁end｜>"#]],
            expect![[r#"
            <｜fim▁begin｜>fn main() {
                <｜fim▁hole｜>
            }
            <｜fim▁end｜>"#]],
        );
    }

    #[test]
    fn qwen_uses_the_repository_format_for_snippets() {
        check(
            "qwen",
            expect![[r#"
            <|repo_name|>workspace
            <|file_sep|>src/util.rs
            pub fn helper() -> u32 {

                1
            }
            <|file_sep|>src/main.rs
            <|fim_prefix|>fn main() {
                <|fim_suffix|>
            }
            <|fim_middle|>"#]],
            expect![[r#"
            <|fim_prefix|>fn main() {
                <|fim_suffix|>
            }
            <|fim_middle|>"#]],
        );
    }

    #[test]
    fn codestral_puts_the_suffix_first() {
        // One-line literals: the prompt ends in the cursor line's indentation.
        check(
            "codestral",
            expect![[
                "[SUFFIX]\n}\n[PREFIX]// Path: src/util.rs\n// pub fn helper() -> u32 {\n//\n//     1\n// }\n\nfn main() {\n    "
            ]],
            expect![["[SUFFIX]\n}\n[PREFIX]fn main() {\n    "]],
        );
    }

    #[test]
    fn codegemma() {
        check(
            "codegemma",
            expect![[r#"
            <|fim_prefix|>// Path: src/util.rs
            // pub fn helper() -> u32 {
            //
            //     1
            // }

            fn main() {
                <|fim_suffix|>
            }
            <|fim_middle|>"#]],
            expect![[r#"
            <|fim_prefix|>fn main() {
                <|fim_suffix|>
            }
            <|fim_middle|>"#]],
        );
    }

    #[test]
    fn custom_with_a_context_slot() {
        check(
            "{context}<PRE>{prefix}<SUF>{suffix}<MID>",
            expect![[r#"
                // Path: src/util.rs
                // pub fn helper() -> u32 {
                //
                //     1
                // }

                <PRE>fn main() {
                    <SUF>
                }
                <MID>"#]],
            expect![[r#"
                <PRE>fn main() {
                    <SUF>
                }
                <MID>"#]],
        );
    }

    #[test]
    fn custom_without_a_context_slot_puts_snippets_before_the_prefix() {
        check(
            "<s>{suffix}<p>{prefix}{x}",
            expect![[r#"
            <s>
            }
            <p>// Path: src/util.rs
            // pub fn helper() -> u32 {
            //
            //     1
            // }

            fn main() {
                {x}"#]],
            expect![[r#"
            <s>
            }
            <p>fn main() {
                {x}"#]],
        );
    }

    #[test]
    fn custom_templates_are_checked() {
        assert!(FimTemplate::resolve(Some("{prefix}"), None).is_err());
        assert!(FimTemplate::resolve(Some("{prefix}{suffix}{suffix}"), None).is_err());
        let err = FimTemplate::resolve(Some("gpt"), None).expect_err("unknown");
        assert!(err.contains("`backend.fim`"), "{err}");
        // Substituted text is never scanned for slots.
        let t = FimTemplate::resolve(Some("A{prefix}B{suffix}C"), None).expect("valid");
        let mut req = request();
        req.snippets.clear();
        req.prefix = "{suffix}".into();
        assert_eq!(t.render(&req), "A{suffix}B\n}\nC");
        assert_eq!((&*t.prefix, &*t.suffix, &*t.middle), ("A", "B", "C"));
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(
            FimTemplate::by_name("starcoder2").map(|t| t.name),
            Some("starcoder".into())
        );
        assert_eq!(
            FimTemplate::by_name("Granite").map(|t| t.name),
            Some("starcoder".into())
        );
        assert!(FimTemplate::by_name("gpt").is_none());
        assert!(FimTemplate::by_name("auto").is_none());
    }

    #[test]
    fn auto_chooses_by_model_name() {
        let pick = |fim: Option<&str>, model: &str| {
            FimTemplate::resolve(fim, Some(model))
                .expect("valid")
                .name
                .into_owned()
        };
        for (model, name) in [
            ("bigcode/starcoder2-3b", "starcoder"),
            ("bigcode/santacoder", "starcoder"),
            ("ibm-granite/granite-3b-code-base", "starcoder"),
            ("codellama/CodeLlama-7b-hf", "codellama"),
            ("codellama:7b-code", "codellama"),
            ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek"),
            ("deepseek-coder-v2:16b", "deepseek"),
            ("Qwen/Qwen2.5-Coder-7B", "qwen"),
            ("codestral-latest", "codestral"),
            ("google/codegemma-2b", "codegemma"),
            ("mystery-model", "starcoder"),
        ] {
            assert_eq!(pick(None, model), name, "{model}");
            assert_eq!(pick(Some("auto"), model), name, "{model}");
        }
        assert_eq!(pick(Some("qwen"), "starcoder"), "qwen");
        assert_eq!(
            FimTemplate::resolve(None, None).expect("valid").name,
            "starcoder"
        );
    }

    #[test]
    fn detect_tells_a_known_family_from_the_fallback() {
        let detect = |model: &str| FimTemplate::detect(model).map(|t| t.name.into_owned());
        assert_eq!(
            detect("qwen2.5-coder-0.5b-instruct-q5_0.gguf").as_deref(),
            Some("qwen")
        );
        assert_eq!(
            detect("starcoder2-3b-Q4_K_M.gguf").as_deref(),
            Some("starcoder")
        );
        assert_eq!(detect("granite-3b-code-base").as_deref(), Some("starcoder"));
        assert_eq!(detect("mystery-model"), None);
        assert_eq!(detect(""), None);
        assert_eq!(FimTemplate::for_model("mystery-model").name, "starcoder");
    }

    #[test]
    fn deepseek_markers_use_fullwidth_bars() {
        let t = FimTemplate::by_name("deepseek-coder-v2").expect("known");
        assert_eq!(t.prefix, "<\u{ff5c}fim\u{2581}begin\u{ff5c}>");
        assert_eq!(t.suffix, "<\u{ff5c}fim\u{2581}hole\u{ff5c}>");
        assert_eq!(t.middle, "<\u{ff5c}fim\u{2581}end\u{ff5c}>");
    }

    #[test]
    fn special_tokens_end_the_text_even_split_across_chunks() {
        let t = FimTemplate::by_name("starcoder").expect("known");
        assert_eq!(t.strip_special("x = 1<|endoftext|>junk"), "x = 1");
        assert_eq!(t.strip_special("a <b> c"), "a <b> c");
        assert_eq!(t.strip_special("<s>html</s>"), "<s>html</s>");
        let mut f = t.special_filter();
        assert_eq!(f.push("let a = 1 <"), "let a = 1 ");
        assert_eq!(f.push(" 2;<|endof"), "< 2;");
        assert_eq!(f.push("text|>more"), "");
        assert!(f.ended());
        assert_eq!(f.push("even more"), "");
        assert_eq!(f.finish(), "");
        let mut f = t.special_filter();
        assert_eq!(f.push("tail <"), "tail ");
        assert_eq!(f.finish(), "<");
        let d = FimTemplate::by_name("deepseek").expect("known");
        let mut f = d.special_filter();
        let token = "<｜end▁of▁sentence｜>";
        let (a, b) = token.split_at(4); // after the first fullwidth bar
        assert_eq!(f.push(&format!("ok{a}")), "ok");
        assert_eq!(f.push(b), "");
        let c = FimTemplate::by_name("codellama").expect("known");
        assert_eq!(c.strip_special("x</s>y"), "x");
        assert_eq!(c.strip_special("x <MID> y"), "x ");
    }
}
