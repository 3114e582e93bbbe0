//! Code actions: which actions a position offers ([`offers`], cheap, no model), what an action
//! asks the model and where its answer goes ([`plan`]), and the reply turned into minimal
//! line edits ([`finish`]).
//!
//! Everything here is a pure function of the document text: the server supplies the text,
//! the cursor and selection lines, the diagnostics and the context snippets, and a
//! [`TestFiles`] view of which test files exist; it sends the prompt, checks the edits' syntax
//! and converts them to LSP.

pub mod diff;
pub mod outline;
pub mod prompt;
pub mod reply;

use crate::config::CustomAction;
use crate::request::Snippet;
pub use diff::TextEdit;
use outline::{DefKind, Definition, Family};
pub use prompt::ActionPrompt;
use prompt::{PromptParts, TestShape};

/// Tandem's actions, and the user's by index into `actions.custom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Document,
    Tests,
    Fix,
    Refactor,
    Explain,
    Custom(usize),
}

impl ActionKind {
    /// A stable id for the wire (`data` of a code action, command arguments).
    pub fn id(self) -> String {
        match self {
            ActionKind::Document => "document".to_owned(),
            ActionKind::Tests => "tests".to_owned(),
            ActionKind::Fix => "fix".to_owned(),
            ActionKind::Refactor => "refactor".to_owned(),
            ActionKind::Explain => "explain".to_owned(),
            ActionKind::Custom(i) => format!("custom:{i}"),
        }
    }

    pub fn parse(id: &str) -> Option<ActionKind> {
        Some(match id {
            "document" => ActionKind::Document,
            "tests" => ActionKind::Tests,
            "fix" => ActionKind::Fix,
            "refactor" => ActionKind::Refactor,
            "explain" => ActionKind::Explain,
            other => ActionKind::Custom(other.strip_prefix("custom:")?.parse().ok()?),
        })
    }

    /// The LSP code action kind it is listed under.
    pub fn lsp_kind(self) -> &'static str {
        match self {
            ActionKind::Fix => "quickfix",
            ActionKind::Refactor | ActionKind::Custom(_) => "refactor.rewrite",
            ActionKind::Document | ActionKind::Tests | ActionKind::Explain => "source",
        }
    }
}

/// A diagnostic the client sent with the request, on a 0-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticNote {
    pub line: usize,
    pub message: String,
}

/// Where an action was asked for.
#[derive(Debug, Clone, Copy)]
pub struct ActionContext<'a> {
    /// LSP language id.
    pub language: &'a str,
    /// Path relative to the workspace root, `/`-separated.
    pub path: &'a str,
    pub text: &'a str,
    /// The selected lines (inclusive) when the selection is not empty.
    pub selection: Option<(usize, usize)>,
    pub cursor_line: usize,
    pub diagnostics: &'a [DiagnosticNote],
    pub snippets: &'a [Snippet],
}

/// An action as listed: its title, and why it cannot run here when it cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub kind: ActionKind,
    pub title: String,
    pub disabled: Option<String>,
}

fn definition_at<'d>(ctx: &ActionContext<'_>, defs: &'d [Definition]) -> Option<&'d Definition> {
    let line = ctx.selection.map_or(ctx.cursor_line, |(s, _)| s);
    outline::enclosing(defs, line)
}

/// The actions offered at `ctx`, without asking the model.
pub fn offers(ctx: &ActionContext<'_>, custom: &[CustomAction]) -> Vec<Offer> {
    let defs = outline::definitions(ctx.language, ctx.text);
    let mut out = Vec::new();
    let offer = |kind, title: String| Offer {
        kind,
        title: format!("Tandem: {title}"),
        disabled: None,
    };
    if let Some(d) = definition_at(ctx, &defs)
        && d.kind != DefKind::Impl
    {
        let title = match d.doc {
            Some(_) => format!("Update the documentation of `{}`", d.name),
            None => format!("Document `{}`", d.name),
        };
        out.push(offer(ActionKind::Document, title));
    }
    if let Some(f) =
        outline::enclosing_function(&defs, ctx.selection.map_or(ctx.cursor_line, |s| s.0))
        && test_location(ctx.language, ctx.path).is_some()
    {
        out.push(offer(
            ActionKind::Tests,
            format!("Generate tests for `{}`", f.name),
        ));
    }
    if let Some(first) = ctx.diagnostics.first() {
        let mut message: String = first.message.lines().next().unwrap_or_default().to_owned();
        if message.chars().count() > 60 {
            message = message.chars().take(57).collect::<String>() + "...";
        }
        out.push(offer(ActionKind::Fix, format!("Fix: {message}")));
    }
    let mut refactor = offer(ActionKind::Refactor, "Refactor selection".to_owned());
    if ctx.selection.is_none() {
        refactor.disabled = Some("Select the code to refactor first".to_owned());
    }
    out.push(refactor);
    match (ctx.selection, definition_at(ctx, &defs)) {
        (Some(_), _) => out.push(offer(ActionKind::Explain, "Explain selection".to_owned())),
        (None, Some(d)) => out.push(offer(ActionKind::Explain, format!("Explain `{}`", d.name))),
        (None, None) => {}
    }
    for (i, c) in custom.iter().enumerate() {
        if !c.languages.is_empty() && !c.languages.iter().any(|l| l == ctx.language) {
            continue;
        }
        let mut o = Offer {
            kind: ActionKind::Custom(i),
            title: c.title.clone(),
            disabled: None,
        };
        if c.needs_selection && ctx.selection.is_none() {
            o.disabled = Some("Select the code first".to_owned());
        }
        out.push(o);
    }
    out
}

/// The files the tests of a source file go in, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestLocation {
    /// Rust: a `#[cfg(test)] mod tests` in the file itself.
    SameFile,
    /// Candidate paths (relative to the root); an existing one is used, else the first whose
    /// directory exists is created, else the last.
    Files(Vec<String>),
}

/// Where tests for `path` (a `language` file) go, by the language's usual convention.
pub fn test_location(language: &str, path: &str) -> Option<TestLocation> {
    let (dir, file) = match path.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), path),
    };
    let (stem, ext) = file.rsplit_once('.')?;
    Some(match Family::of(language)? {
        Family::Rust => TestLocation::SameFile,
        Family::Python => TestLocation::Files(vec![
            format!("tests/test_{stem}.py"),
            format!("{dir}test_{stem}.py"),
        ]),
        Family::Script => TestLocation::Files(vec![
            format!("{dir}{stem}.test.{ext}"),
            format!("{dir}{stem}.spec.{ext}"),
            format!("{dir}__tests__/{stem}.test.{ext}"),
            format!("{dir}{stem}.test.{ext}"),
        ]),
        Family::Go => TestLocation::Files(vec![format!("{dir}{stem}_test.go")]),
        Family::Java => {
            let mirrored = path.contains("src/main/java/").then(|| {
                format!(
                    "{}Test.java",
                    path.replacen("src/main/java/", "src/test/java/", 1)
                        .trim_end_matches(".java")
                )
            });
            TestLocation::Files(
                mirrored
                    .into_iter()
                    .chain([format!("{dir}{stem}Test.java")])
                    .collect(),
            )
        }
    })
}

/// What the server knows of the workspace's files, for placing tests.
pub trait TestFiles {
    /// The text of this file (relative to the root) when it exists and may be read.
    fn read(&self, path: &str) -> Option<String>;
    /// Whether this directory (relative to the root, `""` for the root) exists.
    fn dir_exists(&self, path: &str) -> bool;
}

/// Where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The reply's code replaces lines `first..last` (exclusive) of the document.
    Replace { first: usize, last: usize },
    /// The reply is a doc comment for this definition (replacing its existing one).
    Doc { def: Definition },
    /// Rust tests in the document: inserted before line `line` at `indent`.
    TestsInFile {
        line: usize,
        indent: String,
        new_module: bool,
    },
    /// Tests in another file: created, or appended to (Java: before the class's last brace).
    TestsFile {
        path: String,
        existing: Option<String>,
    },
    /// The reply is prose, made a comment block above line `line` (replacing `replace`, lines
    /// `first..last`, when refining an earlier explanation).
    Explain {
        line: usize,
        indent: String,
        replace: Option<(usize, usize)>,
    },
}

/// An action ready to send: its prompt and where the answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub kind: ActionKind,
    pub prompt: ActionPrompt,
    pub target: Target,
}

/// A follow-up on an applied action's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refinement<'a> {
    /// The lines (exclusive end) that hold the previous result in the document now.
    pub region: (usize, usize),
    pub previous: &'a str,
    pub instruction: &'a str,
}

/// Why an action gives no edit; worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError(pub String);

impl std::fmt::Display for ActionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ActionError> {
    Err(ActionError(message.into()))
}

/// Lines `first..=last` of `lines`, joined with `\n`.
fn slice(lines: &[&str], first: usize, last: usize) -> String {
    lines
        .get(first..=last.min(lines.len().saturating_sub(1)))
        .unwrap_or_default()
        .join("\n")
}

/// Up to `n` lines on each side of `first..=last`, and the lines themselves.
fn surroundings(lines: &[&str], first: usize, last: usize, n: usize) -> String {
    slice(lines, first.saturating_sub(n), last + n)
}

fn diagnostics_text(diagnostics: &[DiagnosticNote]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("- line {}: {}", d.line + 1, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The prompt and target of `kind` at `ctx`.
pub fn plan(
    ctx: &ActionContext<'_>,
    kind: ActionKind,
    custom: &[CustomAction],
    files: &dyn TestFiles,
    refine: Option<&Refinement<'_>>,
) -> Result<Plan, ActionError> {
    let lines: Vec<&str> = ctx.text.lines().collect();
    let defs = outline::definitions(ctx.language, ctx.text);
    let def = definition_at(ctx, &defs).cloned();
    let make = |code: &str, surround: &str, f: &dyn Fn(&PromptParts<'_>) -> ActionPrompt| {
        f(&PromptParts {
            language: ctx.language,
            path: ctx.path,
            code,
            surroundings: surround,
            snippets: ctx.snippets,
        })
    };
    let (prompt, target) = match kind {
        ActionKind::Document => {
            let Some(def) = def else {
                return err("Put the cursor on a function, method, type or module to document it");
            };
            let code = slice(&lines, def.header_line, def.end_line);
            let around = surroundings(&lines, def.start_line, def.start_line, 8);
            let existing = def.doc.map(|(a, b)| slice(&lines, a, b));
            let prompt = make(&code, &around, &|p| {
                prompt::document(p, def.kind.describe(), &def.name, existing.as_deref())
            });
            (prompt, Target::Doc { def })
        }
        ActionKind::Tests => {
            let line = ctx.selection.map_or(ctx.cursor_line, |s| s.0);
            let Some(f) = outline::enclosing_function(&defs, line).cloned() else {
                return err("Put the cursor in a function to generate its tests");
            };
            let code = slice(&lines, f.start_line, f.end_line);
            let Some(location) = test_location(ctx.language, ctx.path) else {
                return err(format!(
                    "Tandem does not know where {} tests go",
                    ctx.language
                ));
            };
            match location {
                TestLocation::SameFile => {
                    let module = defs.iter().find(|d| {
                        d.kind == DefKind::Module
                            && d.start_line < d.header_line
                            && lines[d.start_line..d.header_line]
                                .iter()
                                .any(|l| l.contains("cfg(test)"))
                    });
                    let (shape, target) = match module {
                        Some(m) if m.end_line > m.header_line => (
                            TestShape::IntoModule,
                            Target::TestsInFile {
                                line: m.end_line,
                                indent: format!("{}    ", m.indent),
                                new_module: false,
                            },
                        ),
                        _ => (
                            TestShape::NewModule,
                            Target::TestsInFile {
                                line: lines.len(),
                                indent: String::new(),
                                new_module: true,
                            },
                        ),
                    };
                    (
                        make(&code, "", &|p| prompt::tests(p, &f.name, shape)),
                        target,
                    )
                }
                TestLocation::Files(candidates) => {
                    let existing = candidates
                        .iter()
                        .find_map(|c| files.read(c).map(|text| (c.clone(), text)));
                    let (path, existing) = match existing {
                        Some((path, text)) => (path, Some(text)),
                        None => {
                            let path = candidates
                                .iter()
                                .find(|c| {
                                    files.dir_exists(c.rsplit_once('/').map_or("", |(d, _)| d))
                                })
                                .or(candidates.last())
                                .cloned()
                                .unwrap_or_default();
                            (path, None)
                        }
                    };
                    let shape = match &existing {
                        Some(text) => TestShape::IntoFile(&path, text),
                        None => TestShape::NewFile(&path),
                    };
                    let prompt = make(&code, "", &|p| prompt::tests(p, &f.name, shape));
                    (prompt, Target::TestsFile { path, existing })
                }
            }
        }
        ActionKind::Fix => {
            if ctx.diagnostics.is_empty() {
                return err("There is no diagnostic here to fix");
            }
            let first_diag = ctx.diagnostics.iter().map(|d| d.line).min().unwrap_or(0);
            let last_diag = ctx.diagnostics.iter().map(|d| d.line).max().unwrap_or(0);
            let (first, last) = match outline::enclosing_function(&defs, first_diag) {
                Some(f) if f.end_line >= last_diag && f.end_line - f.header_line <= 200 => {
                    (f.header_line, f.end_line)
                }
                _ => (
                    first_diag.saturating_sub(3),
                    (last_diag + 3).min(lines.len().saturating_sub(1)),
                ),
            };
            let code = slice(&lines, first, last);
            let around = surroundings(&lines, first, last, 10);
            let notes = diagnostics_text(ctx.diagnostics);
            let prompt = make(&code, &around, &|p| prompt::fix(p, &notes));
            (
                prompt,
                Target::Replace {
                    first,
                    last: last + 1,
                },
            )
        }
        ActionKind::Refactor => {
            let Some((first, last)) = ctx.selection else {
                return err("Select the code to refactor first");
            };
            let code = slice(&lines, first, last);
            let around = surroundings(&lines, first, last, 10);
            (
                make(&code, &around, &prompt::refactor),
                Target::Replace {
                    first,
                    last: last + 1,
                },
            )
        }
        ActionKind::Explain => {
            let (first, last, indent) = match (ctx.selection, &def) {
                (Some((a, b)), _) => (
                    a,
                    b,
                    outline::indentation(lines.get(a).unwrap_or(&"")).to_owned(),
                ),
                (None, Some(d)) => (d.header_line, d.end_line, d.indent.clone()),
                (None, None) => {
                    return err("Select code, or put the cursor in a definition, to explain it");
                }
            };
            let line = match (&def, ctx.selection) {
                (Some(d), None) => d.doc.map_or(d.start_line, |(a, _)| a.min(d.start_line)),
                _ => first,
            };
            let code = slice(&lines, first, last);
            (
                make(&code, "", &prompt::explain),
                Target::Explain {
                    line,
                    indent,
                    replace: None,
                },
            )
        }
        ActionKind::Custom(i) => {
            let Some(action) = custom.get(i) else {
                return err(
                    "This action is no longer in the configuration; ask for code actions again",
                );
            };
            let (first, last) = match (ctx.selection, &def) {
                (Some(s), _) => s,
                (None, _) if action.needs_selection => {
                    return err(format!("Select the code for \"{}\" first", action.title));
                }
                (None, Some(d)) => (d.header_line, d.end_line),
                (None, None) => (ctx.cursor_line, ctx.cursor_line),
            };
            let code = slice(&lines, first, last);
            let selection = ctx
                .selection
                .map(|(a, b)| slice(&lines, a, b))
                .unwrap_or_default();
            let context = prompt::render_context(ctx.snippets);
            let diagnostics = diagnostics_text(ctx.diagnostics);
            let vars = prompt::CustomVars {
                selection: &selection,
                code: &code,
                context: &context,
                diagnostics: &diagnostics,
                language: ctx.language,
                path: ctx.path,
            };
            (
                prompt::custom(&action.prompt, &vars),
                Target::Replace {
                    first,
                    last: last + 1,
                },
            )
        }
    };
    let Some(r) = refine else {
        return Ok(Plan {
            kind,
            prompt,
            target,
        });
    };
    let prompt = prompt::refine(&prompt, r.previous, r.instruction, ctx.language);
    let (first, last) = r.region;
    let target = match target {
        Target::Doc { mut def } => {
            def.doc = Some((first, last.saturating_sub(1)));
            Target::Doc { def }
        }
        Target::Explain { indent, .. } => Target::Explain {
            line: first,
            indent,
            replace: Some((first, last)),
        },
        _ => Target::Replace { first, last },
    };
    Ok(Plan {
        kind,
        prompt,
        target,
    })
}

/// The edits of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// Edits to the document the action was asked in.
    Document(Vec<TextEdit>),
    /// A new file (path relative to the root) with this text.
    Create { path: String, text: String },
    /// Edits to another existing file (path relative to the root), against `text`.
    Other {
        path: String,
        text: String,
        edits: Vec<TextEdit>,
    },
}

/// An answer turned into edits, and where its result sits afterwards (for Refine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub change: FileChange,
    /// The file the result is in (`None`: the document), its first line there, and its text.
    pub result_path: Option<String>,
    pub result_line: usize,
    pub result: String,
}

/// Re-indents `code` to `indent`: its common indentation is replaced.
fn reindent(code: &str, indent: &str) -> String {
    let common = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| outline::indentation(l).len())
        .min()
        .unwrap_or(0);
    code.lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{indent}{}", l.get(common..).unwrap_or(l.trim_start()))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The comment prefix for explanations.
fn line_comment(language: &str) -> &'static str {
    match language {
        "python" | "shellscript" | "ruby" | "perl" | "r" | "yaml" | "toml" | "elixir" => "#",
        "lua" | "sql" | "haskell" => "--",
        _ => "//",
    }
}

/// The doc comment out of a reply: the reply's leading comment lines (the model may have
/// repeated the code after them), or its prose wrapped in the convention. Whether that is
/// documentation at all is [`finish`]'s check.
fn doc_comment(family: Family, code: &str) -> Result<String, ActionError> {
    let lines: Vec<&str> = code.lines().collect();
    let text = match family {
        Family::Python => {
            let start = lines.iter().position(|l| {
                let t = l.trim_start().trim_start_matches(['r', 'R']);
                t.starts_with("\"\"\"") || t.starts_with("'''")
            });
            match start {
                Some(s) => {
                    let quote = if lines[s].contains("'''") {
                        "'''"
                    } else {
                        "\"\"\""
                    };
                    let one_line = lines[s].trim().len() > 6
                        && lines[s].trim().trim_start_matches(['r', 'R'])[3..].contains(quote);
                    let end = if one_line {
                        s
                    } else {
                        (s + 1..lines.len())
                            .find(|&i| lines[i].contains(quote))
                            .ok_or_else(|| {
                                ActionError("the model's docstring is not closed".to_owned())
                            })?
                    };
                    lines[s..=end].join("\n")
                }
                None => {
                    let prose = code.trim().replace("\"\"\"", "'''");
                    if prose.contains('\n') {
                        format!("\"\"\"{prose}\n\"\"\"")
                    } else {
                        format!("\"\"\"{prose}\"\"\"")
                    }
                }
            }
        }
        Family::Rust | Family::Go => {
            let marker = if family == Family::Rust { "///" } else { "//" };
            let run: Vec<&str> = lines
                .iter()
                .copied()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| l.trim_start().starts_with(marker) || l.trim().is_empty())
                .collect();
            let run: Vec<&str> = run
                .iter()
                .copied()
                .rev()
                .skip_while(|l| l.trim().is_empty())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if run.is_empty() {
                code.lines()
                    .map(|l| {
                        if l.trim().is_empty() {
                            marker.to_owned()
                        } else {
                            format!("{marker} {}", l.trim())
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                run.iter()
                    .map(|l| {
                        if l.trim().is_empty() {
                            marker
                        } else {
                            l.trim_start()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        Family::Script | Family::Java => {
            let start = lines.iter().position(|l| l.trim_start().starts_with("/**"));
            match start {
                Some(s) => {
                    let end = (s..lines.len())
                        .find(|&i| lines[i].contains("*/"))
                        .ok_or_else(|| {
                            ActionError("the model's doc comment is not closed".to_owned())
                        })?;
                    lines[s..=end]
                        .iter()
                        .map(|l| {
                            let t = l.trim_start();
                            if t.starts_with('*') {
                                format!(" {t}")
                            } else {
                                t.to_owned()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                None => {
                    let mut out = vec!["/**".to_owned()];
                    out.extend(
                        code.trim()
                            .lines()
                            .map(|l| format!(" * {}", l.trim()).trim_end().to_owned()),
                    );
                    out.push(" */".to_owned());
                    out.join("\n")
                }
            }
        }
    };
    Ok(text)
}

/// The Python body's indentation: the first body line's, else the header's plus four spaces.
fn python_body_indent(lines: &[&str], def: &Definition) -> String {
    (def.header_end_line + 1..=def.end_line)
        .filter_map(|i| lines.get(i))
        .find(|l| !l.trim().is_empty())
        .map(|l| outline::indentation(l).to_owned())
        .unwrap_or_else(|| format!("{}    ", def.indent))
}

/// Turns the model's `reply` into edits of `text` (the document as planned).
pub fn finish(
    plan: &Plan,
    language: &str,
    text: &str,
    reply: &str,
) -> Result<Outcome, ActionError> {
    let lines: Vec<&str> = text.lines().collect();
    let done = |change: FileChange, result_line: usize, result: String| Outcome {
        change,
        result_path: None,
        result_line,
        result,
    };
    match &plan.target {
        Target::Replace { first, last } => {
            let code =
                reply::extract_code(reply, language).map_err(|e| ActionError(e.to_string()))?;
            let old_indent = lines
                .get(*first)
                .map(|l| outline::indentation(l))
                .unwrap_or("");
            let new_common = code
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| outline::indentation(l).len())
                .min()
                .unwrap_or(0);
            // A reply that lost the block's indentation gets it back.
            let code = if new_common == 0 && !old_indent.is_empty() {
                reindent(&code, old_indent)
            } else {
                code
            };
            let edits = diff::replace_lines(text, *first, *last, &code);
            if edits.is_empty() {
                return err("the model's answer is the code as it is: nothing to change");
            }
            Ok(done(FileChange::Document(edits), *first, code))
        }
        Target::Doc { def } => {
            let family = Family::of(language)
                .ok_or_else(|| ActionError(format!("no doc convention for {language}")))?;
            let code =
                reply::extract_code(reply, language).map_err(|e| ActionError(e.to_string()))?;
            let doc = doc_comment(family, &code)?;
            // Checked after wrapping, so that code is caught whether the model put it in
            // comment markers or not: unchecked, it would be pasted as the doc comment.
            if reply::is_code_not_docs(&doc, &def.name) {
                return err(format!(
                    "the model answered with code, not documentation for `{}`",
                    def.name
                ));
            }
            let (indent, at) = match family {
                Family::Python => (python_body_indent(&lines, def), def.header_end_line + 1),
                _ => (def.indent.clone(), def.start_line),
            };
            let doc = reindent(&doc, &indent);
            let (first, last) = match def.doc {
                Some((a, b)) => (a, b + 1),
                None => (at, at),
            };
            let edits = diff::replace_lines(text, first, last, &doc);
            if edits.is_empty() {
                return err("the doc comment is already what the model would write");
            }
            Ok(done(FileChange::Document(edits), first, doc))
        }
        Target::TestsInFile {
            line,
            indent,
            new_module,
        } => {
            let code =
                reply::extract_code(reply, language).map_err(|e| ActionError(e.to_string()))?;
            let mut block = reindent(&code, indent);
            if *new_module && !block.contains("#[cfg(test)]") {
                block = format!(
                    "#[cfg(test)]\nmod tests {{\n    use super::*;\n\n{}\n}}",
                    reindent(&code, "    ")
                );
            }
            let needs_gap = line
                .checked_sub(1)
                .and_then(|l| lines.get(l))
                .is_some_and(|l| !l.trim().is_empty() && !l.trim_end().ends_with('{'));
            let result_line = *line + usize::from(needs_gap);
            let inserted = if needs_gap {
                format!("\n{block}")
            } else {
                block.clone()
            };
            let edit = diff::insert_lines(text, *line, &inserted);
            Ok(done(FileChange::Document(vec![edit]), result_line, block))
        }
        Target::TestsFile { path, existing } => {
            let test_language = language;
            let code = reply::extract_code(reply, test_language)
                .map_err(|e| ActionError(e.to_string()))?;
            let Some(existing) = existing else {
                let mut text = code.clone();
                text.push('\n');
                return Ok(Outcome {
                    change: FileChange::Create {
                        path: path.clone(),
                        text,
                    },
                    result_path: Some(path.clone()),
                    result_line: 0,
                    result: code,
                });
            };
            // Never a second package clause.
            let code: String = code
                .lines()
                .skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with("package "))
                .collect::<Vec<_>>()
                .join("\n");
            let old: Vec<&str> = existing.lines().collect();
            let java = path.ends_with(".java");
            let (at, block) = match old.iter().rposition(|l| l.trim() == "}") {
                Some(close) if java => (close, reindent(&code, "    ")),
                _ => (old.len(), code.clone()),
            };
            let gap = at
                .checked_sub(1)
                .and_then(|l| old.get(l))
                .is_some_and(|l| !l.trim().is_empty());
            let inserted = if gap {
                format!("\n{block}")
            } else {
                block.clone()
            };
            let edit = diff::insert_lines(existing, at, &inserted);
            Ok(Outcome {
                change: FileChange::Other {
                    path: path.clone(),
                    text: existing.clone(),
                    edits: vec![edit],
                },
                result_path: Some(path.clone()),
                result_line: at + usize::from(gap),
                result: block,
            })
        }
        Target::Explain {
            line,
            indent,
            replace,
        } => {
            let prose = reply::extract_text(reply).map_err(|e| ActionError(e.to_string()))?;
            let marker = line_comment(language);
            let block = prose
                .lines()
                .map(|l| {
                    let l = l.trim().trim_start_matches(marker).trim_start();
                    if l.is_empty() {
                        format!("{indent}{marker}")
                    } else {
                        format!("{indent}{marker} {l}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let (first, last) = replace.unwrap_or((*line, *line));
            let edits = diff::replace_lines(text, first, last, &block);
            Ok(done(FileChange::Document(edits), first, block))
        }
    }
}

#[cfg(test)]
mod tests;
