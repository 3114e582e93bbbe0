//! Where definitions are, from the text alone: functions, methods, types and modules with the
//! lines of their attributes, their existing doc comment and their body, for Rust, Python,
//! JavaScript/TypeScript, Go and Java.
//!
//! A line scanner rather than a parse: it needs no grammar, so it covers languages before their
//! tree-sitter grammar lands, and it is only used to choose where an edit goes. Every edit it
//! places is checked with tree-sitter afterwards (in the server) where a grammar exists.
//! Seam: when `tandem_syntax::definitions` covers a language, its ranges can replace
//! [`definitions`]' `header_line`/`end_line`; the doc and attribute lines stay this module's.

/// What a definition is, for the wording of prompts and the doc convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefKind {
    Function,
    Type,
    Impl,
    Module,
}

impl DefKind {
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::Function => "function",
            DefKind::Type => "type",
            DefKind::Impl => "implementation block",
            DefKind::Module => "module",
        }
    }
}

/// A definition's lines (0-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: DefKind,
    /// The first line of its attributes or decorators, else `header_line`.
    pub start_line: usize,
    /// The line where the definition itself starts (`fn`, `def`, `class`, ...).
    pub header_line: usize,
    /// Python: the last line of the header (the one ending with `:`); others: `header_line`.
    pub header_end_line: usize,
    pub end_line: usize,
    /// The header line's indentation.
    pub indent: String,
    /// The existing doc comment (Python: the docstring), inclusive lines.
    pub doc: Option<(usize, usize)>,
}

/// The language families the scanner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rust,
    Python,
    Script,
    Go,
    Java,
}

impl Family {
    /// From an LSP language id.
    pub fn of(language: &str) -> Option<Family> {
        Some(match language {
            "rust" => Family::Rust,
            "python" => Family::Python,
            "javascript" | "javascriptreact" | "typescript" | "typescriptreact" => Family::Script,
            "go" => Family::Go,
            "java" => Family::Java,
            _ => return None,
        })
    }
}

/// Every definition in `text`, in order of their header lines (nested ones included).
pub fn definitions(language: &str, text: &str) -> Vec<Definition> {
    let Some(family) = Family::of(language) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((kind, name)) = header(family, line, lines.get(i + 1).copied()) else {
            continue;
        };
        let indent = indentation(line).to_owned();
        let (header_end_line, end_line) = match family {
            Family::Python => python_extent(&lines, i),
            _ => brace_extent(&lines, i),
        };
        let start_line = attributes_start(family, &lines, i);
        let doc = match family {
            Family::Python => python_docstring(&lines, header_end_line, end_line),
            _ => doc_above(family, &lines, start_line),
        };
        out.push(Definition {
            name,
            kind,
            start_line,
            header_line: i,
            header_end_line,
            end_line,
            indent,
            doc,
        });
    }
    out
}

/// The innermost definition whose lines (doc comment included) contain `line`.
pub fn enclosing(defs: &[Definition], line: usize) -> Option<&Definition> {
    defs.iter()
        .filter(|d| {
            let first = d.doc.map_or(d.start_line, |(s, _)| s.min(d.start_line));
            first <= line && line <= d.end_line
        })
        .min_by_key(|d| d.end_line - d.header_line)
}

/// The innermost function (or method) containing `line`.
pub fn enclosing_function(defs: &[Definition], line: usize) -> Option<&Definition> {
    defs.iter()
        .filter(|d| d.kind == DefKind::Function)
        .filter(|d| {
            let first = d.doc.map_or(d.start_line, |(s, _)| s.min(d.start_line));
            first <= line && line <= d.end_line
        })
        .min_by_key(|d| d.end_line - d.header_line)
}

pub fn indentation(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

fn strip_words<'a>(mut s: &'a str, words: &[&str]) -> &'a str {
    loop {
        let before = s;
        for w in words {
            if let Some(rest) = s.strip_prefix(w)
                && rest.starts_with([' ', '\t'])
            {
                s = rest.trim_start();
            }
        }
        if s == before {
            return s;
        }
    }
}

fn ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
        .collect();
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

const CONTROL: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "return",
    "new",
    "else",
    "do",
    "try",
    "throw",
    "await",
    "typeof",
    "super",
    "this",
    "synchronized",
    "function",
];

fn header(family: Family, line: &str, next: Option<&str>) -> Option<(DefKind, String)> {
    let t = line.trim_start();
    match family {
        Family::Rust => {
            let mut t = t;
            if let Some(rest) = t.strip_prefix("pub(") {
                t = rest.split_once(')')?.1.trim_start();
            }
            let t = strip_words(t, &["pub", "async", "const", "unsafe", "default"]);
            let t = match t.strip_prefix("extern ") {
                Some(rest) if rest.trim_start().starts_with('"') => {
                    let rest = rest.trim_start().get(1..)?;
                    rest.split_once('"')?.1.trim_start()
                }
                _ => t,
            };
            for (word, kind) in [
                ("fn ", DefKind::Function),
                ("struct ", DefKind::Type),
                ("enum ", DefKind::Type),
                ("union ", DefKind::Type),
                ("trait ", DefKind::Type),
                ("type ", DefKind::Type),
                ("mod ", DefKind::Module),
            ] {
                if let Some(rest) = t.strip_prefix(word) {
                    return Some((kind, ident(rest.trim_start())?));
                }
            }
            if let Some(rest) = t.strip_prefix("impl")
                && rest.starts_with([' ', '<'])
            {
                let rest = match rest.trim_start().strip_prefix('<') {
                    // `impl<'a, T: X<Y>> Name<'a>`: skip the parameters.
                    Some(params) => {
                        let mut depth = 1;
                        let end = params
                            .char_indices()
                            .find(|(_, c)| {
                                match c {
                                    '<' => depth += 1,
                                    '>' => depth -= 1,
                                    _ => {}
                                }
                                depth == 0
                            })
                            .map_or(params.len(), |(i, _)| i + 1);
                        &params[end..]
                    }
                    None => rest,
                };
                let name = rest
                    .split(['{', '\n'])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                return Some((DefKind::Impl, name));
            }
            None
        }
        Family::Python => {
            let t = strip_words(t, &["async"]);
            if let Some(rest) = t.strip_prefix("def ") {
                return Some((DefKind::Function, ident(rest.trim_start())?));
            }
            if let Some(rest) = t.strip_prefix("class ") {
                return Some((DefKind::Type, ident(rest.trim_start())?));
            }
            None
        }
        Family::Go => {
            if let Some(rest) = t
                .strip_prefix("func ")
                .filter(|_| indentation(line).is_empty())
            {
                let rest = rest.trim_start();
                let rest = if rest.starts_with('(') {
                    rest.split_once(')')?.1.trim_start()
                } else {
                    rest
                };
                return Some((DefKind::Function, ident(rest)?));
            }
            if let Some(rest) = t
                .strip_prefix("type ")
                .filter(|_| indentation(line).is_empty())
            {
                return Some((DefKind::Type, ident(rest.trim_start())?));
            }
            None
        }
        Family::Script => {
            let s = strip_words(
                t,
                &[
                    "export",
                    "default",
                    "declare",
                    "abstract",
                    "async",
                    "public",
                    "private",
                    "protected",
                    "static",
                    "readonly",
                    "override",
                ],
            );
            if let Some(rest) = s.strip_prefix("function") {
                let rest = rest.trim_start_matches('*').trim_start();
                return Some((DefKind::Function, ident(rest)?));
            }
            for word in ["class ", "interface ", "enum "] {
                if let Some(rest) = s.strip_prefix(word) {
                    return Some((DefKind::Type, ident(rest.trim_start())?));
                }
            }
            if let Some(rest) = s.strip_prefix("type ")
                && rest.contains('=')
            {
                return Some((DefKind::Type, ident(rest.trim_start())?));
            }
            for word in ["const ", "let ", "var "] {
                if let Some(rest) = s.strip_prefix(word) {
                    let name = ident(rest.trim_start())?;
                    let value = rest.split_once('=')?.1.trim_start();
                    let value = strip_words(value, &["async"]);
                    let arrow = value.starts_with("function")
                        || ((value.starts_with('(') || ident(value).is_some())
                            && line.contains("=>"));
                    return arrow.then_some((DefKind::Function, name));
                }
            }
            // A method: `name(...) {` inside a class (indented).
            if indentation(line).is_empty() {
                return None;
            }
            let s = strip_words(s, &["get", "set"]);
            let name = ident(s)?;
            let after = s[name.len()..].trim_start();
            let after = after.strip_prefix('<').map_or(after, |_| {
                after.split_once('>').map_or(after, |(_, r)| r.trim_start())
            });
            let opens = line.trim_end().ends_with('{')
                || (line.trim_end().ends_with(['(', ',']) && next.is_some());
            (after.starts_with('(') && opens && !CONTROL.contains(&name.as_str()))
                .then_some((DefKind::Function, name))
        }
        Family::Java => {
            if t.starts_with('@') || t.starts_with("//") || t.starts_with('*') {
                return None;
            }
            let s = strip_words(
                t,
                &[
                    "public",
                    "private",
                    "protected",
                    "static",
                    "final",
                    "abstract",
                    "sealed",
                    "non-sealed",
                    "synchronized",
                    "native",
                    "default",
                    "strictfp",
                ],
            );
            for word in ["class ", "interface ", "enum ", "record ", "@interface "] {
                if let Some(rest) = s.strip_prefix(word) {
                    return Some((DefKind::Type, ident(rest.trim_start())?));
                }
            }
            // A method or constructor: `[<T>] Type name(` or `Name(`, ending in `{` or `,`/`(`.
            let paren = s.find('(')?;
            let head = s[..paren].trim_end();
            if head.contains('=') || head.contains('.') && !head.contains('<') {
                return None;
            }
            let name = head.rsplit([' ', '\t', '>']).next()?;
            let name = ident(name)?;
            let first = ident(s)?;
            if CONTROL.contains(&first.as_str()) || CONTROL.contains(&name.as_str()) {
                return None;
            }
            let tail = line.trim_end();
            let opens = tail.ends_with('{')
                || tail.ends_with(['(', ','])
                || (tail.ends_with(')') && next.is_some_and(|n| n.trim_start().starts_with('{')))
                || (tail.ends_with(';') && s.starts_with("abstract"));
            opens.then_some((DefKind::Function, name))
        }
    }
}

/// Python: the header's last line (ends the parenthesised signature with `:`) and the last
/// line of the indented body.
fn python_extent(lines: &[&str], header: usize) -> (usize, usize) {
    let mut depth: i32 = 0;
    let mut header_end = header;
    for (i, line) in lines.iter().enumerate().skip(header) {
        for c in code_part(Family::Python, line).chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        header_end = i;
        if depth <= 0 && code_part(Family::Python, line).trim_end().ends_with(':') {
            break;
        }
    }
    let base = indentation(lines[header]).len();
    let mut end = header_end;
    for (i, line) in lines.iter().enumerate().skip(header_end + 1) {
        if line.trim().is_empty() {
            continue;
        }
        if indentation(line).len() <= base {
            break;
        }
        end = i;
    }
    (header_end, end)
}

/// The part of a line before a line comment, with string contents blanked (roughly: enough
/// to count brackets).
fn code_part(family: Family, line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                    out.push(c);
                }
            }
            None => {
                if family == Family::Python && c == '#' {
                    break;
                }
                if family != Family::Python && c == '/' && chars.peek() == Some(&'/') {
                    break;
                }
                let is_quote = c == '"'
                    || c == '`'
                    || (c == '\'' && family != Family::Rust)
                    || (c == '\'' && family == Family::Rust && {
                        // A char literal, not a lifetime: 'x' or '\n'.
                        let rest: String = chars.clone().take(3).collect();
                        rest.starts_with('\\') || rest.chars().nth(1) == Some('\'')
                    });
                if is_quote {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Brace languages: the definition ends where the brace opened after its header closes, or at
/// the first `;` at depth 0 before any brace (a declaration without a body).
fn brace_extent(lines: &[&str], header: usize) -> (usize, usize) {
    let family = Family::Rust; // quoting rules are close enough for the brace languages
    let mut depth: i32 = 0;
    let mut parens: i32 = 0;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(header) {
        for c in code_part(family, line).chars() {
            match c {
                '(' | '[' => parens += 1,
                ')' | ']' => parens -= 1,
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => {
                    depth -= 1;
                    if opened && depth == 0 {
                        return (header, i);
                    }
                }
                ';' if !opened && parens <= 0 => return (header, i),
                _ => {}
            }
        }
        // Go's `type X int` and similar one-line declarations.
        if !opened && parens <= 0 && i == header && !line.trim_end().ends_with(['(', ',', '=']) {
            let next_opens = lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with('{'));
            if !line.contains('{') && !next_opens && !line.contains('(') {
                return (header, i);
            }
        }
    }
    (header, lines.len().saturating_sub(1))
}

/// The first line of the attributes, decorators or annotations right above `header`.
fn attributes_start(family: Family, lines: &[&str], header: usize) -> usize {
    let mut start = header;
    while start > 0 {
        let t = lines[start - 1].trim_start();
        let attribute = match family {
            Family::Rust => t.starts_with("#[") && !t.starts_with("#!["),
            Family::Python | Family::Script | Family::Java => t.starts_with('@'),
            Family::Go => false,
        };
        if !attribute {
            break;
        }
        start -= 1;
    }
    start
}

/// A doc comment ending right above `start`.
fn doc_above(family: Family, lines: &[&str], start: usize) -> Option<(usize, usize)> {
    let above = start.checked_sub(1)?;
    let t = lines[above].trim();
    match family {
        Family::Rust | Family::Go => {
            let marker = if family == Family::Rust { "///" } else { "//" };
            if !t.starts_with(marker) || (family == Family::Rust && t.starts_with("////")) {
                return None;
            }
            let mut first = above;
            while first > 0 && lines[first - 1].trim().starts_with(marker) {
                first -= 1;
            }
            Some((first, above))
        }
        Family::Script | Family::Java => {
            if !t.ends_with("*/") {
                return None;
            }
            let mut first = above;
            loop {
                if lines[first].trim_start().starts_with("/**") {
                    return Some((first, above));
                }
                if lines[first].trim_start().starts_with("/*") || first == 0 {
                    return None; // a plain block comment, not a doc comment
                }
                first -= 1;
            }
        }
        Family::Python => None,
    }
}

/// A docstring: the body's first statement, when it is a string.
fn python_docstring(lines: &[&str], header_end: usize, end: usize) -> Option<(usize, usize)> {
    let first =
        (header_end + 1..=end).find(|&i| lines.get(i).is_some_and(|l| !l.trim().is_empty()))?;
    let t = lines[first].trim_start();
    let t = t.strip_prefix(['r', 'R', 'u', 'U']).unwrap_or(t);
    let quote = ["\"\"\"", "'''"].into_iter().find(|q| t.starts_with(q))?;
    if t.len() >= 6 && t[3..].contains(quote) {
        return Some((first, first));
    }
    (first + 1..=end)
        .find(|&i| lines[i].contains(quote))
        .map(|last| (first, last))
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// Lists the definitions as `kind name start-header..end doc`.
    #[track_caller]
    fn check(language: &str, text: &str, expect: Expect) {
        let out: Vec<String> = definitions(language, text)
            .iter()
            .map(|d| {
                let doc = d
                    .doc
                    .map(|(a, b)| format!(" doc {a}..{b}"))
                    .unwrap_or_default();
                format!(
                    "{:?} {} {}-{}..{}{doc}",
                    d.kind, d.name, d.start_line, d.header_line, d.end_line
                )
            })
            .collect();
        expect.assert_eq(&out.join("\n"));
    }

    #[test]
    fn rust() {
        check(
            "rust",
            r#"/// Adds.
/// Twice.
#[inline]
pub(crate) fn add(a: i32, b: i32) -> i32 {
    let s = "}";
    a + b
}

pub struct Unit;

impl<'a> Point<'a> {
    pub const fn new(x: &'a str) -> Self {
        let c = '{';
        Self { x }
    }
}

mod tests {
    #[test]
    fn t() {}
}
"#,
            expect![[r#"
                Function add 2-3..6 doc 0..1
                Type Unit 8-8..8
                Impl Point<'a> 10-10..15
                Function new 11-11..14
                Module tests 17-17..20
                Function t 18-19..19"#]],
        );
    }

    #[test]
    fn python() {
        check(
            "python",
            r#"import os

@dataclass
class Point:
    """A point."""
    x: int

    def norm(self,
             p: int) -> float:
        '''
        Length.
        '''
        return (self.x ** 2) ** 0.5

async def main():
    pass
"#,
            expect![[r#"
                Type Point 2-3..12 doc 4..4
                Function norm 7-7..12 doc 9..11
                Function main 14-14..15"#]],
        );
    }

    #[test]
    fn script() {
        check(
            "typescript",
            r#"/**
 * Sums.
 */
export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

export const double = (x: number) => {
  return x * 2;
};

class Cart {
  @logged
  async total(items: Item[]): Promise<number> {
    if (items.length) {
      return 1;
    }
    return 0;
  }
}
"#,
            expect![[r#"
                Function sum 3-3..5 doc 0..2
                Function double 7-7..9
                Type Cart 11-11..19
                Function total 12-13..18"#]],
        );
    }

    #[test]
    fn go() {
        check(
            "go",
            r#"package calc

// Add adds.
func Add(a, b int) int {
	return a + b
}

type Celsius float64

func (c *Counter) Inc() {
	c.n++
}
"#,
            expect![[r#"
                Function Add 3-3..5 doc 2..2
                Type Celsius 7-7..7
                Function Inc 9-9..11"#]],
        );
    }

    #[test]
    fn java() {
        check(
            "java",
            r#"package calc;

/** A calculator. */
public class Calc {
    /**
     * Adds.
     */
    @Override
    public static int add(int a, int b) {
        if (a > 0) {
            return a + b;
        }
        return b;
    }

    Calc() {
        this.x = 1;
    }
}
"#,
            expect![[r#"
                Type Calc 3-3..18 doc 2..2
                Function add 7-8..13 doc 4..6
                Function Calc 15-15..17"#]],
        );
    }

    #[test]
    fn enclosing_prefers_the_innermost() {
        let text = "impl A {\n    fn f() {\n        x();\n    }\n}\n";
        let defs = definitions("rust", text);
        assert_eq!(enclosing(&defs, 2).map(|d| d.name.as_str()), Some("f"));
        assert_eq!(enclosing(&defs, 0).map(|d| d.name.as_str()), Some("A"));
        assert_eq!(enclosing(&defs, 9), None);
        assert!(definitions("cobol", text).is_empty());
    }
}
