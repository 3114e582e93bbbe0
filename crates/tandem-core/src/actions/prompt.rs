//! Every prompt an action sends, in one place: a system message and a user message built from
//! small templates with the language, the path, the code, the selection and the context
//! snippets. Each asks for code only, in one fenced block (Explain asks for prose).

use crate::request::Snippet;

/// The two messages of an action's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPrompt {
    pub system: String,
    pub user: String,
}

pub const SYSTEM_CODE: &str = "You are a careful senior engineer working inside a code editor. \
You change code only as asked, keep its behaviour unless told otherwise, and follow the file's \
language, conventions, style and indentation. Reply with code only, in exactly one fenced code \
block tagged with the language. No explanation before or after the block.";

pub const SYSTEM_EXPLAIN: &str = "You are a careful senior engineer working inside a code \
editor. You explain code to a colleague: what it does, how, and anything surprising, briefly \
and precisely. Reply in plain sentences, at most 12 short lines, without Markdown, headings or \
code blocks; your reply becomes a comment in the file.";

/// What a prompt is built from.
#[derive(Debug, Clone, Copy)]
pub struct PromptParts<'a> {
    pub language: &'a str,
    pub path: &'a str,
    /// The code the action is about.
    pub code: &'a str,
    /// Lines around the code, for orientation (may be empty).
    pub surroundings: &'a str,
    pub snippets: &'a [Snippet],
}

/// The context engine's snippets, as the `{context}` of a prompt.
pub fn render_context(snippets: &[Snippet]) -> String {
    crate::prompt::render_context_tags(snippets, "\n")
}

fn preamble(p: &PromptParts<'_>) -> String {
    let mut out = String::new();
    if !p.snippets.is_empty() {
        out.push_str("Related code from the workspace, for reference:\n\n");
        out.push_str(&render_context(p.snippets));
        out.push('\n');
    }
    if !p.surroundings.trim().is_empty() {
        out.push_str(&format!(
            "The file `{}` around the code:\n\n```{}\n{}\n```\n\n",
            p.path,
            p.language,
            p.surroundings.trim_end_matches('\n')
        ));
    }
    out
}

fn code_block(p: &PromptParts<'_>) -> String {
    format!("```{}\n{}\n```", p.language, p.code.trim_end_matches('\n'))
}

/// The doc comment convention of a language, in words for the model.
pub fn doc_convention(language: &str) -> &'static str {
    match language {
        "rust" => "a Rust doc comment: `///` lines",
        "python" => "a Python docstring (PEP 257, triple double quotes)",
        "javascript" | "javascriptreact" | "typescript" | "typescriptreact" => {
            "a JSDoc block (`/** ... */`, with @param and @returns where they apply)"
        }
        "java" => {
            "a Javadoc block (`/** ... */`, with @param, @return and @throws where they apply)"
        }
        "go" => "a Go doc comment: `//` lines starting with the name being documented",
        _ => "the language's usual doc comment",
    }
}

pub fn document(
    p: &PromptParts<'_>,
    kind: &str,
    name: &str,
    existing: Option<&str>,
) -> ActionPrompt {
    let mut user = preamble(p);
    user.push_str(&format!(
        "Write the documentation of the {kind} `{name}` below, in {}.\n\n{}\n\n",
        doc_convention(p.language),
        code_block(p)
    ));
    if let Some(existing) = existing {
        user.push_str(&format!(
            "It has this doc comment, which may be out of date; update it to match the code:\n\n\
             ```{}\n{}\n```\n\n",
            p.language,
            existing.trim_end_matches('\n')
        ));
    }
    user.push_str(
        "Say what it does, its parameters and result, and its errors or panics when it has \
         any; be concise. Reply with only the doc comment (not the code), in one fenced block.",
    );
    ActionPrompt {
        system: SYSTEM_CODE.to_owned(),
        user,
    }
}

/// Where the tests go, for the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestShape<'a> {
    /// Rust: a new `#[cfg(test)] mod tests` module at the end of the file.
    NewModule,
    /// Rust: functions to add inside the existing test module.
    IntoModule,
    /// A new test file at this path.
    NewFile(&'a str),
    /// Functions to append to the existing test file at this path (its text shown).
    IntoFile(&'a str, &'a str),
}

pub fn tests(p: &PromptParts<'_>, name: &str, shape: TestShape<'_>) -> ActionPrompt {
    let mut user = preamble(p);
    user.push_str(&format!(
        "Write unit tests for the function `{name}` from `{}`:\n\n{}\n\n",
        p.path,
        code_block(p)
    ));
    let how = match shape {
        TestShape::NewModule => {
            "Reply with a complete `#[cfg(test)] mod tests { use super::*; ... }` \
             module to append to the end of the file."
                .to_owned()
        }
        TestShape::IntoModule => {
            "The file already has a `#[cfg(test)] mod tests` module: reply with \
             only the new `#[test]` functions to add to it (no module, no `use` lines)."
                .to_owned()
        }
        TestShape::NewFile(path) => format!(
            "The tests go in a new file `{path}`: reply with its complete contents, in the \
             project's usual test framework for this language (pytest, Jest/Vitest, the \
             `testing` package, JUnit 5), importing what it needs from `{}`.",
            p.path
        ),
        TestShape::IntoFile(path, existing) => format!(
            "The tests go in the existing file `{path}`, shown below. Reply with only the new \
             tests to add to it, in the same style; do not repeat its package clause, imports \
             or existing tests.\n\n```{}\n{}\n```",
            p.language,
            existing.trim_end_matches('\n')
        ),
    };
    user.push_str(&how);
    user.push_str(
        "\nCover the usual case, edge cases and errors. Reply with code only, in one fenced block.",
    );
    ActionPrompt {
        system: SYSTEM_CODE.to_owned(),
        user,
    }
}

pub fn fix(p: &PromptParts<'_>, diagnostics: &str) -> ActionPrompt {
    let mut user = preamble(p);
    user.push_str(&format!(
        "This code from `{}` has these problems:\n\n{}\n\n{}\n\n",
        p.path,
        diagnostics.trim_end(),
        code_block(p)
    ));
    user.push_str(
        "Fix them with the smallest change that keeps the code's intent. Reply with the whole \
         corrected code above (every line of it, changed or not), in one fenced block.",
    );
    ActionPrompt {
        system: SYSTEM_CODE.to_owned(),
        user,
    }
}

pub fn refactor(p: &PromptParts<'_>) -> ActionPrompt {
    let mut user = preamble(p);
    user.push_str(&format!(
        "Refactor this code from `{}`: simplify it or restructure it to read better, keeping \
         its behaviour and its interface (names and signatures used elsewhere).\n\n{}\n\n",
        p.path,
        code_block(p)
    ));
    user.push_str(
        "Reply with the code that replaces it, at the same indentation, in one fenced block.",
    );
    ActionPrompt {
        system: SYSTEM_CODE.to_owned(),
        user,
    }
}

pub fn explain(p: &PromptParts<'_>) -> ActionPrompt {
    let mut user = preamble(p);
    user.push_str(&format!(
        "Explain this code from `{}`:\n\n{}",
        p.path,
        code_block(p)
    ));
    ActionPrompt {
        system: SYSTEM_EXPLAIN.to_owned(),
        user,
    }
}

/// The values of a user-defined action's template variables.
#[derive(Debug, Clone, Copy)]
pub struct CustomVars<'a> {
    pub selection: &'a str,
    pub code: &'a str,
    pub context: &'a str,
    pub diagnostics: &'a str,
    pub language: &'a str,
    pub path: &'a str,
}

/// A user-defined prompt with its variables filled in (one pass: a value containing `{code}`
/// is not expanded again), then the reply format Tandem needs.
pub fn custom(template: &str, vars: &CustomVars<'_>) -> ActionPrompt {
    let mut user = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        user.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let v = match &after[..close] {
                "selection" => vars.selection,
                "code" => vars.code,
                "context" => vars.context,
                "diagnostics" => vars.diagnostics,
                "language" => vars.language,
                "path" => vars.path,
                _ => return None,
            };
            Some((v, close))
        });
        match value {
            Some((v, close)) => {
                user.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                user.push('{');
                rest = after;
            }
        }
    }
    user.push_str(rest);
    user.push_str(&format!(
        "\n\nReply with only the code that replaces this, in one fenced block:\n\n```{}\n{}\n```",
        vars.language,
        vars.code.trim_end_matches('\n')
    ));
    ActionPrompt {
        system: SYSTEM_CODE.to_owned(),
        user,
    }
}

/// A follow-up: the original request, the previous answer, and the user's instruction. The
/// request is built from the document as it is now, so it usually shows the previous answer
/// already (it is the selection): then it is pointed at, not repeated.
pub fn refine(
    original: &ActionPrompt,
    previous: &str,
    instruction: &str,
    language: &str,
) -> ActionPrompt {
    let previous = previous.trim_end_matches('\n');
    let shown = format!("```{language}\n{previous}\n```");
    let answer = if original.user.contains(&shown) {
        "Your previous answer is in the document now, as shown above.".to_owned()
    } else {
        format!("Your previous answer was:\n\n{shown}")
    };
    ActionPrompt {
        system: original.system.clone(),
        user: format!(
            "{}\n\n{answer}\n\nRevise it: {}. Reply in the same form as before.",
            original.user,
            instruction.trim().trim_end_matches('.')
        ),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::request::SnippetSource;

    fn parts<'a>(snippets: &'a [Snippet]) -> PromptParts<'a> {
        PromptParts {
            language: "rust",
            path: "src/calc.rs",
            code: "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
            surroundings: "use std::fmt;\n\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
            snippets,
        }
    }

    fn snippet() -> Vec<Snippet> {
        vec![Snippet {
            path: "src/main.rs".to_owned(),
            text: "let s = calc::add(1, 2);\n".to_owned(),
            start_line: 4,
            end_line: 4,
            source: SnippetSource::Similar,
            kind: None,
            score: 0.5,
            brief: None,
        }]
    }

    #[track_caller]
    fn check(prompt: ActionPrompt, expect: Expect) {
        expect.assert_eq(&format!(
            "[system]\n{}\n[user]\n{}",
            prompt.system, prompt.user
        ));
    }

    #[test]
    fn document_prompt() {
        let s = snippet();
        check(
            document(&parts(&s), "function", "add", None),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                Related code from the workspace, for reference:

                <context path="src/main.rs" lines="4-4">
                let s = calc::add(1, 2);
                </context>

                The file `src/calc.rs` around the code:

                ```rust
                use std::fmt;

                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                Write the documentation of the function `add` below, in a Rust doc comment: `///` lines.

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                Say what it does, its parameters and result, and its errors or panics when it has any; be concise. Reply with only the doc comment (not the code), in one fenced block."#]],
        );
    }

    #[test]
    fn document_update_prompt() {
        let p = PromptParts {
            surroundings: "",
            ..parts(&[])
        };
        check(
            document(&p, "function", "add", Some("/// Subtracts.\n")),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                Write the documentation of the function `add` below, in a Rust doc comment: `///` lines.

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                It has this doc comment, which may be out of date; update it to match the code:

                ```rust
                /// Subtracts.
                ```

                Say what it does, its parameters and result, and its errors or panics when it has any; be concise. Reply with only the doc comment (not the code), in one fenced block."#]],
        );
    }

    #[test]
    fn tests_prompts() {
        let p = PromptParts {
            surroundings: "",
            ..parts(&[])
        };
        let tail = |prompt: ActionPrompt| {
            let code_end = prompt.user.rfind("```\n\n").map_or(0, |i| i + 5);
            prompt.user[code_end..].to_owned()
        };
        expect![[r#"
            Reply with a complete `#[cfg(test)] mod tests { use super::*; ... }` module to append to the end of the file.
            Cover the usual case, edge cases and errors. Reply with code only, in one fenced block."#]]
        .assert_eq(&tail(tests(&p, "add", TestShape::NewModule)));
        expect![[r#"
            The file already has a `#[cfg(test)] mod tests` module: reply with only the new `#[test]` functions to add to it (no module, no `use` lines).
            Cover the usual case, edge cases and errors. Reply with code only, in one fenced block."#]]
        .assert_eq(&tail(tests(&p, "add", TestShape::IntoModule)));
        expect![[r#"
            The tests go in a new file `tests/test_calc.py`: reply with its complete contents, in the project's usual test framework for this language (pytest, Jest/Vitest, the `testing` package, JUnit 5), importing what it needs from `src/calc.rs`.
            Cover the usual case, edge cases and errors. Reply with code only, in one fenced block."#]]
        .assert_eq(&tail(tests(&p, "add", TestShape::NewFile("tests/test_calc.py"))));
        check(
            tests(
                &p,
                "add",
                TestShape::IntoFile("calc_test.go", "package calc\n"),
            ),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                Write unit tests for the function `add` from `src/calc.rs`:

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                The tests go in the existing file `calc_test.go`, shown below. Reply with only the new tests to add to it, in the same style; do not repeat its package clause, imports or existing tests.

                ```rust
                package calc
                ```
                Cover the usual case, edge cases and errors. Reply with code only, in one fenced block."#]],
        );
    }

    #[test]
    fn fix_refactor_explain_prompts() {
        let p = PromptParts {
            surroundings: "",
            ..parts(&[])
        };
        check(
            fix(
                &p,
                "- line 2: mismatched types: expected `i32`, found `&str`",
            ),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                This code from `src/calc.rs` has these problems:

                - line 2: mismatched types: expected `i32`, found `&str`

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                Fix them with the smallest change that keeps the code's intent. Reply with the whole corrected code above (every line of it, changed or not), in one fenced block."#]],
        );
        check(
            refactor(&p),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                Refactor this code from `src/calc.rs`: simplify it or restructure it to read better, keeping its behaviour and its interface (names and signatures used elsewhere).

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```

                Reply with the code that replaces it, at the same indentation, in one fenced block."#]],
        );
        check(
            explain(&p),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You explain code to a colleague: what it does, how, and anything surprising, briefly and precisely. Reply in plain sentences, at most 12 short lines, without Markdown, headings or code blocks; your reply becomes a comment in the file.
                [user]
                Explain this code from `src/calc.rs`:

                ```rust
                pub fn add(a: i32, b: i32) -> i32 {
                    a + b
                }
                ```"#]],
        );
    }

    #[test]
    fn custom_and_refine_prompts() {
        let vars = CustomVars {
            selection: "a + b",
            code: "a + b",
            context: "",
            diagnostics: "",
            language: "rust",
            path: "src/calc.rs",
        };
        let prompt = custom(
            "Rewrite this {language} from {path} with checked arithmetic: {selection} {unknown}",
            &vars,
        );
        check(
            prompt.clone(),
            expect![[r#"
                [system]
                You are a careful senior engineer working inside a code editor. You change code only as asked, keep its behaviour unless told otherwise, and follow the file's language, conventions, style and indentation. Reply with code only, in exactly one fenced code block tagged with the language. No explanation before or after the block.
                [user]
                Rewrite this rust from src/calc.rs with checked arithmetic: a + b {unknown}

                Reply with only the code that replaces this, in one fenced block:

                ```rust
                a + b
                ```"#]],
        );
        let refined = refine(&prompt, "a.checked_add(b)", "handle errors.", "rust");
        expect![[r#"
            Your previous answer was:

            ```rust
            a.checked_add(b)
            ```

            Revise it: handle errors. Reply in the same form as before."#]]
        .assert_eq(&refined.user[prompt.user.len() + 2..]);
        // Refining what was applied: the request built from the document shows it already.
        let applied = custom("Make this faster: {code}", &vars);
        let refined = refine(&applied, "a + b\n", "use wrapping_add", "rust");
        expect![[r#"
            Your previous answer is in the document now, as shown above.

            Revise it: use wrapping_add. Reply in the same form as before."#]]
        .assert_eq(&refined.user[applied.user.len() + 2..]);
        assert_eq!(
            refined.user.matches("a + b").count(),
            2,
            "the request's own two"
        );
    }
}
