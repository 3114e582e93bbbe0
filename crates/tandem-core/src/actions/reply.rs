//! The code in a model's reply: the fenced block of the right language (else the first fenced
//! block), or the whole reply when it is bare code. A reply without code is refused, and so is
//! a doc comment that is really code ([`is_code_not_docs`]).

/// Why a reply gave no edit; worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    Empty,
    NoCode,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Empty => f.write_str("the model's reply was empty"),
            ReplyError::NoCode => f.write_str(
                "the model's reply contains no code (no fenced block, and prose rather than code)",
            ),
        }
    }
}

/// Fence tags that name each LSP language id.
fn tags(language: &str) -> &'static [&'static str] {
    match language {
        "rust" => &["rust", "rs"],
        "python" => &["python", "py", "python3"],
        "javascript" | "javascriptreact" => &["javascript", "js", "jsx"],
        "typescript" | "typescriptreact" => &["typescript", "ts", "tsx"],
        "go" => &["go", "golang"],
        "java" => &["java"],
        "c" => &["c", "h"],
        "cpp" => &["cpp", "c++", "cc", "hpp"],
        _ => &[],
    }
}

struct Block<'a> {
    tag: &'a str,
    code: String,
}

/// Fenced blocks (``` or ~~~, three or more), in order; an unclosed one runs to the end.
fn blocks(reply: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(String, &str, Vec<&str>)> = None;
    for line in reply.lines() {
        let t = line.trim_start();
        match &mut open {
            None => {
                let fence: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
                if fence.len() >= 3
                    && fence
                        .chars()
                        .all(|c| c == fence.chars().next().unwrap_or('`'))
                {
                    let tag = t[fence.len()..].trim();
                    let tag = tag.split([' ', '{', ',']).next().unwrap_or_default();
                    open = Some((fence, tag, Vec::new()));
                }
            }
            Some((fence, tag, lines)) => {
                if t.starts_with(fence.as_str()) && t.trim_end().trim_matches(['`', '~']).is_empty()
                {
                    out.push(Block {
                        tag,
                        code: lines.join("\n"),
                    });
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    if let Some((_, tag, lines)) = open {
        out.push(Block {
            tag,
            code: lines.join("\n"),
        });
    }
    out
}

/// The code of a reply for a document in `language`.
pub fn extract_code(reply: &str, language: &str) -> Result<String, ReplyError> {
    if reply.trim().is_empty() {
        return Err(ReplyError::Empty);
    }
    let found = blocks(reply);
    let wanted = tags(language);
    let chosen = found
        .iter()
        .find(|b| wanted.iter().any(|t| b.tag.eq_ignore_ascii_case(t)))
        .or_else(|| found.iter().find(|b| !b.code.trim().is_empty()));
    if let Some(block) = chosen {
        if block.code.trim().is_empty() {
            return Err(ReplyError::NoCode);
        }
        return Ok(trim_blank_lines(&block.code));
    }
    if looks_like_prose(reply) {
        return Err(ReplyError::NoCode);
    }
    Ok(trim_blank_lines(reply))
}

/// The text of a reply meant as prose (Explain): the reply without a wrapping fence.
pub fn extract_text(reply: &str) -> Result<String, ReplyError> {
    let t = reply.trim();
    if t.is_empty() {
        return Err(ReplyError::Empty);
    }
    let found = blocks(t);
    if found.len() == 1 && (t.starts_with("```") || t.starts_with("~~~")) {
        return Ok(trim_blank_lines(&found[0].code));
    }
    Ok(trim_blank_lines(t))
}

fn trim_blank_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    lines
        .get(first..last)
        .unwrap_or_default()
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a bare reply reads as sentences rather than code: most of its lines are words and
/// spaces ending like a sentence, with none of code's punctuation.
fn looks_like_prose(reply: &str) -> bool {
    let lines: Vec<&str> = reply.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return true;
    }
    let prose = lines
        .iter()
        .filter(|l| {
            let t = l.trim();
            let words = t.split_whitespace().count();
            let code_marks = t.contains(['{', '}', ';', '=', '(', ')', '[', ']'])
                || t.starts_with("//")
                || t.starts_with('#')
                || t.starts_with("\"\"\"");
            words >= 4 && !code_marks
        })
        .count();
    prose * 2 > lines.len()
}

/// Words that may come before a definition's keyword, or before a Java or TypeScript method.
const MODIFIERS: &[&str] = &[
    "pub",
    "async",
    "export",
    "default",
    "public",
    "private",
    "protected",
    "static",
    "final",
    "abstract",
    "override",
    "unsafe",
    "const",
    "extern",
];
/// Keywords that open a definition.
const DEFINES: &[&str] = &[
    "def",
    "fn",
    "func",
    "function",
    "class",
    "struct",
    "enum",
    "trait",
    "interface",
    "impl",
    "mod",
    "type",
];
/// Keywords that open a statement (prose uses them too, so they count only beside code marks).
const STATEMENTS: &[&str] = &[
    "return", "if", "elif", "else", "for", "while", "with", "try", "except", "raise", "import",
    "from", "yield", "match",
];

/// Whether a doc comment (`///`, `//`, `/** */` or a docstring, markers included) is code
/// rather than documentation: a line defines `name` again (the model answered with the
/// function), or most lines are code. Examples are skipped — fenced blocks, doctests,
/// `<pre>` and `@example` sections, and lines indented past their marker (Go's and Markdown's
/// code blocks) — because code is expected there; tags (`@param`) are never code.
pub fn is_code_not_docs(doc: &str, name: &str) -> bool {
    let (mut fenced, mut doctest, mut pre, mut example) = (false, false, false, false);
    let (mut code, mut prose) = (0usize, 0usize);
    for line in doc.lines() {
        let (t, indented) = strip_doc_marker(line);
        if t.is_empty() {
            // A doctest's output runs to the next blank line.
            doctest = false;
            continue;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if t.starts_with('@') {
            example = t.starts_with("@example");
            continue;
        }
        doctest |= t.starts_with(">>>");
        pre |= t.contains("<pre>");
        let skip = fenced || doctest || pre || example || indented;
        pre &= !t.contains("</pre>");
        if skip {
            continue;
        }
        if defined_name(t) == Some(name) {
            return true;
        }
        if is_code_line(t) {
            code += 1;
        } else {
            prose += 1;
        }
    }
    code > prose
}

/// A doc line without its comment or docstring markers, and whether its text is indented past
/// a comment marker.
fn strip_doc_marker(line: &str) -> (&str, bool) {
    let t = line.trim();
    let t = ["*/", "\"\"\"", "'''"]
        .iter()
        .find_map(|m| t.strip_suffix(m))
        .unwrap_or(t);
    let t = ["r\"\"\"", "\"\"\"", "'''"]
        .iter()
        .find_map(|m| t.strip_prefix(m))
        .unwrap_or(t);
    match ["///", "//!", "//", "/**", "*"]
        .iter()
        .find_map(|m| t.strip_prefix(m))
    {
        Some(rest) => (
            rest.trim(),
            rest.starts_with('\t') || rest.starts_with("  "),
        ),
        None => (t.trim(), false),
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The first word of `t` and the rest.
fn first_word(t: &str) -> (&str, &str) {
    let t = t.trim_start();
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    (&t[..end], t[end..].trim_start())
}

/// The name a line defines: `pub fn add(`, `def slugify(`, `class Calc:`, `func (c *Calc)
/// Add(`, `public int add(`. A keyword must be followed by the name and what opens its
/// parameters, generics or body, so that a sentence such as "function with each item" is not
/// one.
fn defined_name(t: &str) -> Option<&str> {
    let (mut rest, mut modified) = (t, false);
    loop {
        let (word, after) = first_word(rest);
        if !(word.starts_with("pub(") || MODIFIERS.contains(&word)) {
            break;
        }
        (rest, modified) = (after, true);
    }
    let (keyword, after) = first_word(rest);
    if DEFINES.contains(&keyword) {
        // Go methods name their receiver first.
        let after = match after.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or(r, |(_, r)| r).trim_start(),
            None => after,
        };
        let end = after.find(|c| !is_ident(c)).unwrap_or(after.len());
        let next = after[end..].trim_start().chars().next();
        let opens = matches!(next, None | Some('(' | '<' | '{' | '[' | ':' | ';' | '='))
            || t.ends_with(['{', ':']);
        (end > 0 && opens).then(|| &after[..end])
    } else if modified {
        // Java and TypeScript methods have no keyword: the name is right before `(`.
        let (head, _) = rest.split_once('(')?;
        let name = head.rsplit(|c| !is_ident(c)).next()?;
        (!name.is_empty()).then_some(name)
    } else {
        None
    }
}

/// Whether a line reads as code: a statement or brace, a definition, an assignment, a call,
/// or a statement keyword beside code punctuation. A sentence's ending makes it prose.
fn is_code_line(t: &str) -> bool {
    if t.ends_with(['.', '!', '?']) {
        return false;
    }
    let (word, _) = first_word(t);
    let call = t.ends_with(')') && t.find('(').is_some_and(|i| !t[..i].contains(' '));
    t.ends_with([';', '{'])
        || t.starts_with('}')
        || defined_name(t).is_some()
        || assigns(t)
        || call
        || (STATEMENTS.contains(&word) && t.contains(['(', '[', '=', '"']))
        || matches!(t, "else:" | "try:" | "finally:")
}

/// Whether a line assigns: `x = …`, `let x = …`, `total += x`, `x := f()`, `slug: str = …`.
fn assigns(t: &str) -> bool {
    let Some((lhs, rhs)) = t.split_once('=') else {
        return false;
    };
    // Not a comparison or an arrow.
    if rhs.starts_with(['=', '>']) || lhs.ends_with(['=', '!', '<', '>']) {
        return false;
    }
    let lhs = lhs.trim_end_matches([':', '+', '-', '*', '/', '%', '|', '&']);
    let mut words = lhs
        .split_whitespace()
        .filter(|w| !["let", "const", "var", "mut"].contains(w));
    let target = |w: &str| !w.is_empty() && w.chars().all(|c| is_ident(c) || ".[]".contains(c));
    match (words.next(), words.next(), words.next()) {
        (Some(w), None, None) => target(w),
        // A type annotation: `slug: str = …`.
        (Some(w), Some(_), None) => w.strip_suffix(':').is_some_and(target),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_block_of_the_language() {
        let reply = "Here:\n```text\nnot this\n```\n\n```rust\nfn f() {}\n```\nDone.";
        assert_eq!(extract_code(reply, "rust").as_deref(), Ok("fn f() {}"));
        assert_eq!(extract_code(reply, "python").as_deref(), Ok("not this"));
    }

    #[test]
    fn bare_code_is_the_whole_reply_and_prose_is_refused() {
        assert_eq!(
            extract_code("\n  x = 1\n  y = 2\n\n", "python").as_deref(),
            Ok("  x = 1\n  y = 2")
        );
        assert_eq!(
            extract_code("I cannot help with that request, sorry.", "python"),
            Err(ReplyError::NoCode)
        );
        assert_eq!(extract_code("  \n", "rust"), Err(ReplyError::Empty));
        assert_eq!(
            extract_code("```rust\n```", "rust"),
            Err(ReplyError::NoCode)
        );
    }

    #[test]
    fn unclosed_and_tilde_fences() {
        assert_eq!(
            extract_code("```py\ndef f():\n    pass", "python").as_deref(),
            Ok("def f():\n    pass")
        );
        assert_eq!(
            extract_code("~~~go\nfunc F() {}\n~~~", "go").as_deref(),
            Ok("func F() {}")
        );
    }

    #[test]
    fn explanations_lose_a_wrapping_fence() {
        assert_eq!(
            extract_text("```\nIt adds.\n```").as_deref(),
            Ok("It adds.")
        );
        assert_eq!(extract_text("It adds.\n").as_deref(), Ok("It adds."));
    }

    #[test]
    fn docs_are_told_from_code() {
        // Code: the definition again (in any family's words), or mostly code lines.
        for doc in [
            "\"\"\"def slugify(title: str) -> str:\n    return title\n\"\"\"",
            "/// pub(crate) async fn slugify<'a>(title: &'a str) -> String",
            "// func (s *Site) slugify(title string) string {",
            "/**\n * public static String slugify(String title)\n */",
            "/**\n * x = 1\n * total += x\n * print(total)\n */",
        ] {
            assert!(is_code_not_docs(doc, "slugify"), "{doc}");
        }
        // Docs: sentences and sections, which may read like code in places, and code only in
        // examples.
        for doc in [
            "/// Makes a slug; for example:\n///\n///     let s = slugify(\"A b\");\n///     s.len();",
            "\"\"\"Make a slug.\n\n    Used by the\n    function with each title,\n    if (and only if) it is blank\n    for example:\n\n    >>> s = slugify(\"A\")\n    >>> s\n    'a'\n\"\"\"",
            "/**\n * Makes a slug, see {@link Site}\n * @returns {string} the slug\n * @example\n * const s = slugify(\"A\");\n * s.length;\n */",
            "/**\n * Makes a slug:\n * <pre>{@code\n * String s = slugify(\"A\");\n * }</pre>\n */",
            "// slugify(title) returns the slug of title.",
        ] {
            assert!(!is_code_not_docs(doc, "slugify"), "{doc}");
        }
    }
}
