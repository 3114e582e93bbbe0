//! Outline parsing: a file's tree without the insides of its function bodies, for the symbol
//! index.
//!
//! The index wants what a file defines (items, their signatures, the members of its types) and
//! what it imports, never what a function body does. Bodies are most of a file's text, so a
//! full parse spends most of its time on them; clang's indexer skips function bodies for the
//! same reason. A byte scanner that knows each language's comments, strings and brackets finds
//! the bodies first, then:
//!
//! - brace languages (Rust, JS/TS, Go, Java, C, C++): tree-sitter parses with *included ranges*
//!   that leave out the text between a body's `{` and `}`, so the parser sees `fn f() {}`;
//! - Python: a copy of the text in which each function body is blanked to spaces (line breaks
//!   kept, so every byte and line keeps its position) with a `0` statement where the body
//!   starts; the true last line of each blanked function is put back on its definition.
//!
//! A block is a body when its head (the tokens since the previous `;`, `{` or `}` at the
//! same level) has a parameter list or an arrow and names no container (`class`, `impl`,
//! `namespace`, ...), and it does not sit inside parentheses or brackets (a callback, an IIFE:
//! those are parsed whole, so definitions inside them are still found). What a body's text
//! holds is never needed, so scanning mistakes cost only speed, never correctness, as long as
//! braces pair up; an outline tree with a syntax error is discarded for a full parse.
//!
//! Definitions nested in function bodies (local functions and types, the members of anonymous
//! classes and of Java enum constants with bodies) are not in the outline: nothing outside can
//! name them. JavaScript is the exception: objects are often built in functions
//! (`function fastify() { function inject() {} ... return { inject } }`), so there the outermost
//! function bodies are parsed and only the bodies nested in them are left out.

use std::ops::Range;

use tree_sitter::{Point, Tree};

use crate::{Language, parse_with};

/// A file's outline tree.
pub struct Outline {
    tree: Tree,
    /// Whether the tree is a full parse (nothing to leave out, or the outline had errors).
    full: bool,
    /// Whether an outline was parsed and thrown away for its syntax errors.
    fell_back: bool,
    /// Python: (end byte of the `0` standing for a blanked body, the body's true last line,
    /// its true end byte), in byte order.
    python_ends: Vec<(usize, u32, usize)>,
}

impl Outline {
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether the tree is a full parse of the file.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Whether an outline was parsed, found to have syntax errors and replaced by a full parse.
    pub fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// The definitions in the file, outside function bodies (see [`crate::definitions_in`]).
    pub fn definitions(&self, language: Language, source: &[u8]) -> Vec<crate::Definition> {
        let mut found = crate::definitions_in(language, &self.tree, source);
        if !self.python_ends.is_empty() {
            // A definition ending where a blanked body's `0` ends (the function, or a class
            // whose last member it is) gets the body's true end.
            for d in &mut found {
                if let Ok(i) = self
                    .python_ends
                    .binary_search_by_key(&d.byte_range.end, |&(fake, _, _)| fake)
                {
                    let (_, end_line, end_byte) = self.python_ends[i];
                    d.end_line = end_line;
                    d.byte_range.end = end_byte;
                }
            }
        }
        found
    }

    /// The imports in the file, outside function bodies (see [`crate::imports_in`]).
    pub fn imports(&self, language: Language, source: &[u8]) -> Vec<crate::Import> {
        crate::imports_in(language, &self.tree, source)
    }
}

/// Parses `source` without the insides of its function bodies. `None` only if the grammar
/// cannot be loaded.
pub fn parse_outline(language: Language, source: &[u8]) -> Option<Outline> {
    let (outline, left_out) = match language {
        Language::Python => {
            let (blanked, python_ends) = python_blanked(source);
            let left_out: Vec<Range<usize>> = python_ends
                .iter()
                .map(|&(fake_end, _, end)| fake_end - 1..end)
                .collect();
            // The blanks need no lexing: the parser skips from each `0` to the body's end.
            let skipped: Vec<Range<usize>> = python_ends
                .iter()
                .map(|&(fake_end, _, end)| fake_end..end)
                .filter(|r| r.start < r.end)
                .collect();
            let tree = (!python_ends.is_empty())
                .then(|| parse_with(language, &blanked, &included_ranges(&blanked, &skipped)))
                .flatten();
            (
                tree.map(|tree| Outline {
                    tree,
                    full: false,
                    fell_back: false,
                    python_ends,
                }),
                left_out,
            )
        }
        _ => {
            let (bodies, comments) = brace_bodies(language, source);
            let mut skipped = bodies.clone();
            skipped.extend(comments);
            skipped.sort_unstable_by_key(|r| r.start);
            let tree = (!skipped.is_empty())
                .then(|| parse_with(language, source, &included_ranges(source, &skipped)))
                .flatten();
            (
                tree.map(|tree| Outline {
                    tree,
                    full: false,
                    fell_back: false,
                    python_ends: Vec::new(),
                }),
                bodies,
            )
        }
    };
    let fell_back = match outline {
        Some(outline) if !errors_at_edges(&outline.tree, source, &left_out) => {
            return Some(outline);
        }
        Some(_) => true,
        None => false,
    };
    crate::parse(language, source).map(|tree| Outline {
        tree,
        full: true,
        fell_back,
        python_ends: Vec::new(),
    })
}

/// Whether a syntax error sits at the edge of a left-out body (at its braces, or at the first
/// token after it): where the parser disagrees with the scanner about where a body ends (a `}`
/// paired wrongly, a Python body cut short, leaving the body's rest in the open). Errors
/// elsewhere are the file's own (C macros the grammar cannot see through, broken code); a full
/// parse would have them too, usually worse.
fn errors_at_edges(tree: &Tree, source: &[u8], left_out: &[Range<usize>]) -> bool {
    if !tree.root_node().has_error() {
        return false;
    }
    let touches = |start: usize| {
        // The body ending last before `start` (whose next token `start` may be), and those
        // after it.
        let from = left_out
            .partition_point(|b| b.end + 1 < start)
            .saturating_sub(1);
        left_out[from..]
            .iter()
            .take_while(|b| b.start <= start + 2)
            .any(|b| {
                // At the opening `{` (just before `b.start`)…
                let at_open = start + 2 >= b.start && start <= b.start;
                // …or from the closing `}` (at `b.end`) to the first token after it.
                let after_close = start + 1 >= b.end && {
                    let next = source
                        .get(b.end + 1..)
                        .and_then(|rest| rest.iter().position(|c| !c.is_ascii_whitespace()))
                        .map_or(source.len(), |p| b.end + 1 + p);
                    start <= next
                };
                at_open || after_close
            })
    };
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        if (node.is_error() || node.is_missing()) && touches(node.start_byte()) {
            return true;
        }
        if node.has_error() && !node.is_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return false;
            }
        }
    }
}

/// The complement of `excluded` (sorted, disjoint) in `0..source.len()`, with points.
fn included_ranges(source: &[u8], excluded: &[Range<usize>]) -> Vec<tree_sitter::Range> {
    let mut ranges = Vec::with_capacity(excluded.len() + 1);
    let mut row = 0usize;
    let mut line_start = 0usize;
    let mut at = 0usize;
    let mut point_at = |to: usize| {
        for (i, &b) in source[at..to].iter().enumerate() {
            if b == b'\n' {
                row += 1;
                line_start = at + i + 1;
            }
        }
        at = to;
        Point::new(row, to - line_start)
    };
    let mut start = 0usize;
    let mut start_point = Point::new(0, 0);
    for body in excluded {
        let end_point = point_at(body.start);
        ranges.push(tree_sitter::Range {
            start_byte: start,
            end_byte: body.start,
            start_point,
            end_point,
        });
        start = body.end;
        start_point = point_at(body.end);
    }
    let end_point = point_at(source.len());
    ranges.push(tree_sitter::Range {
        start_byte: start,
        end_byte: source.len(),
        start_point,
        end_point,
    });
    ranges
}

/// Words that make a block a container of definitions, never a body, when a head has them.
fn is_container_keyword(language: Language, word: &[u8]) -> bool {
    match language {
        Language::Rust => matches!(
            word,
            b"struct" | b"enum" | b"union" | b"trait" | b"impl" | b"mod" | b"extern"
        ),
        Language::C | Language::Cpp => matches!(
            word,
            b"struct" | b"union" | b"enum" | b"class" | b"namespace" | b"extern"
        ),
        Language::Java => matches!(word, b"class" | b"interface" | b"enum" | b"record"),
        Language::Go => matches!(word, b"struct" | b"interface"),
        Language::JavaScript | Language::TypeScript | Language::Tsx => matches!(
            word,
            b"class" | b"interface" | b"namespace" | b"module" | b"enum"
        ),
        Language::Python => false,
    }
}

/// What an open bracket is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(` or `[`.
    Paren,
    /// `{` of a function body or an initializer (its interior is left out unless an outer
    /// one holds it).
    Body(usize),
    /// `[` of an initializer, left out likewise.
    Data(usize),
    /// Any other `{`.
    Block,
    /// A JavaScript function body read whole (see `brace_bodies`).
    Factory,
    /// `${` in a JS template literal: its `}` resumes the template.
    Template,
}

/// The head of the block being written at the current level.
#[derive(Default, Clone, Copy)]
struct Head {
    parens: bool,
    arrow: bool,
    container: bool,
    /// A type alias (`type X = [u8; 4]`): what follows its `=` is a type, not data.
    alias: bool,
}

/// The interiors (between `{` and `}`) of the outermost function bodies of a brace language.
/// And the comments outside them (consecutive ones merged), which the parser need not read
/// either: doc comments are a good part of what is left of a file. Comments stay in JavaScript
/// and TypeScript, whose grammars look at them to insert semicolons, and block comments in Go,
/// where a line break inside one ends a statement.
fn brace_bodies(language: Language, s: &[u8]) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let js = matches!(
        language,
        Language::JavaScript | Language::TypeScript | Language::Tsx
    );
    let c_like = matches!(language, Language::C | Language::Cpp);
    // JavaScript builds objects in functions (`function fastify() { function inject() {}
    // ...; return { inject } }`): the outermost function bodies are read, so that the functions
    // they declare are indexed, and only the bodies inside them are left out.
    let factories = language == Language::JavaScript;
    let mut factories_open = 0usize;
    let line_comments_out = !js;
    let block_comments_out = !js && language != Language::Go;
    let mut bodies = Vec::new();
    let mut comments: Vec<Range<usize>> = Vec::new();
    let comment = |range: Range<usize>, comments: &mut Vec<Range<usize>>| match comments.last_mut()
    {
        Some(last) if s[last.end..range.start].iter().all(u8::is_ascii_whitespace) => {
            last.end = range.end;
        }
        _ => comments.push(range),
    };
    let mut stack: Vec<Open> = Vec::new();
    // Heads of the enclosing levels; the current level's head is `head`.
    let mut heads: Vec<Head> = Vec::new();
    let mut head = Head::default();
    // Open bodies: inside one, only brackets and lexing matter.
    let mut in_body = 0usize;
    // JS: whether a `/` here starts a regular expression.
    let mut regex_ok = true;
    let mut line_start = true;
    // Whether the last token was an assignment's `=` (or Rust's `= &`): a `{` or `[` after one
    // starts an initializer, whose interior defines nothing (C tables, Rust arrays).
    let mut after_assign = false;
    let data = matches!(
        language,
        Language::C | Language::Cpp | Language::Java | Language::Rust
    );
    let mut i = 0usize;
    while i < s.len() {
        let b = s[i];
        if b == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let at_line_start = std::mem::replace(&mut line_start, false);
        let was_assign = std::mem::take(&mut after_assign);
        let at_head = in_body == 0 && stack.last().is_none_or(|o| !matches!(o, Open::Paren));
        match b {
            b'#' if c_like && at_line_start => {
                // A preprocessor line, with its continuations: opaque. Only the first branch
                // of a conditional is read (`#if 0` blocks not at all), as ctags does, so
                // that branches opening the same brace twice do not unbalance the rest.
                i = skip_directive(s, i);
                line_start = true;
                after_assign = was_assign;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'/') => {
                // In C a line comment ending with `\` goes on to the next line.
                let end = if c_like {
                    skip_preprocessor(s, i)
                } else {
                    memchr_or_end(b'\n', s, i)
                };
                if in_body == 0 && line_comments_out {
                    comment(i..end, &mut comments);
                }
                i = end;
                after_assign = was_assign;
                continue;
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                let end = skip_block_comment(s, i + 2, language == Language::Rust);
                if in_body == 0 && block_comments_out {
                    comment(i..end, &mut comments);
                }
                i = end;
                after_assign = was_assign;
                continue;
            }
            b'/' if js && regex_ok => {
                i = skip_regex(s, i + 1);
                regex_ok = false;
                continue;
            }
            b'"' => {
                i = skip_double_quoted(language, s, i);
                regex_ok = false;
                continue;
            }
            b'\'' => {
                i = skip_single_quote(language, s, i);
                regex_ok = false;
                continue;
            }
            b'`' if js => {
                (i, regex_ok) = template_text(s, i + 1, &mut stack, &mut heads, &mut head);
                continue;
            }
            b'`' if language == Language::Go => {
                i = memchr_or_end(b'`', s, i + 1).saturating_add(1).min(s.len());
                regex_ok = false;
                continue;
            }
            b'[' if data && was_assign && at_head && !head.alias => {
                stack.push(Open::Data(i + 1));
                in_body += 1;
            }
            b'(' | b'[' => {
                if at_head {
                    head.parens |= b == b'(';
                }
                stack.push(Open::Paren);
                regex_ok = true;
            }
            b']' if matches!(stack.last(), Some(Open::Data(_))) => {
                if let Some(Open::Data(start)) = stack.pop() {
                    in_body -= 1;
                    if in_body == 0 && start < i {
                        bodies.push(start..i);
                    }
                }
            }
            b')' | b']' => {
                if stack.last() == Some(&Open::Paren) {
                    stack.pop();
                }
                regex_ok = false;
            }
            b'{' => {
                let in_parens = stack.last() == Some(&Open::Paren);
                let initializer = data && was_assign && !head.alias;
                let body = (head.parens || head.arrow) && !head.container;
                if in_body == 0 && !in_parens && body && factories_open == 0 && factories {
                    stack.push(Open::Factory);
                    factories_open += 1;
                } else if in_body == 0 && !in_parens && (initializer || body) {
                    stack.push(Open::Body(i + 1));
                    in_body += 1;
                } else {
                    stack.push(Open::Block);
                }
                heads.push(head);
                head = Head::default();
                regex_ok = true;
            }
            b'}' => {
                // Close the innermost `{` (dropping unclosed brackets inside it).
                while let Some(Open::Paren | Open::Data(_)) = stack.last() {
                    if let Some(Open::Data(_)) = stack.pop() {
                        in_body -= 1;
                    }
                }
                match stack.pop() {
                    Some(Open::Body(start)) => {
                        in_body -= 1;
                        if in_body == 0 && start < i {
                            bodies.push(start..i);
                        }
                    }
                    Some(Open::Template) => {
                        // The `}` of a `${…}`: the template's text goes on.
                        head = heads.pop().unwrap_or_default();
                        (i, regex_ok) = template_text(s, i + 1, &mut stack, &mut heads, &mut head);
                        continue;
                    }
                    Some(Open::Factory) => factories_open -= 1,
                    Some(Open::Block | Open::Paren | Open::Data(_)) | None => {}
                }
                heads.pop();
                // A closed block ends the head it belonged to.
                head = Head::default();
                regex_ok = true;
            }
            b';' => {
                if stack.last() != Some(&Open::Paren) {
                    head = Head::default();
                }
                regex_ok = true;
            }
            b'=' if s.get(i + 1) == Some(&b'>') => {
                head.arrow = true;
                regex_ok = true;
                i += 2;
                continue;
            }
            _ if is_word_byte(b) => {
                let start = i;
                while i < s.len() && is_word_byte(s[i]) {
                    i += 1;
                }
                let word = &s[start..i];
                if b.is_ascii_digit() {
                    // Numbers, with C++ digit separators (1'000) and exponents' signs.
                    while i < s.len()
                        && (is_word_byte(s[i])
                            || s[i] == b'.'
                            || (c_like
                                && s[i] == b'\''
                                && s.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric())))
                    {
                        i += 1;
                    }
                    regex_ok = false;
                    continue;
                }
                if let Some(next) = raw_string_end(language, word, s, i) {
                    i = next;
                    regex_ok = false;
                    continue;
                }
                if in_body == 0 && is_container_keyword(language, word) {
                    head.container = true;
                }
                if in_body == 0 && matches!(word, b"type" | b"using") {
                    head.alias = true;
                }
                regex_ok = js
                    && matches!(
                        word,
                        b"return"
                            | b"typeof"
                            | b"case"
                            | b"do"
                            | b"else"
                            | b"in"
                            | b"of"
                            | b"new"
                            | b"delete"
                            | b"void"
                            | b"throw"
                            | b"instanceof"
                            | b"yield"
                            | b"await"
                    );
                continue;
            }
            b'=' if !matches!(s.get(i + 1), Some(b'=' | b'>'))
                && !matches!(
                    i.checked_sub(1).map(|p| s[p]),
                    Some(
                        b'=' | b'!'
                            | b'<'
                            | b'>'
                            | b'+'
                            | b'-'
                            | b'*'
                            | b'/'
                            | b'%'
                            | b'&'
                            | b'|'
                            | b'^'
                            | b':'
                            | b'~'
                    )
                ) =>
            {
                after_assign = true;
                regex_ok = true;
            }
            b'&' if was_assign && language == Language::Rust => {
                after_assign = true;
            }
            _ => {
                // Operators: after them a `/` starts a regular expression.
                regex_ok = true;
            }
        }
        i += 1;
    }
    (bodies, comments)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The index of the next `needle` at or after `from`, or the end.
fn memchr_or_end(needle: u8, s: &[u8], from: usize) -> usize {
    s.get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == needle))
        .map_or(s.len(), |p| from + p)
}

/// Past the preprocessor directive at `i` and what it makes dead: an `#if 0` block up to its
/// `#else`/`#elif`/`#endif`, an `#else`/`#elif` branch up to its `#endif`.
fn skip_directive(s: &[u8], i: usize) -> usize {
    let end = skip_preprocessor(s, i);
    match directive(&s[i..end]) {
        Directive::IfZero => skip_branch(s, end, true),
        Directive::Else => skip_branch(s, end, false),
        _ => end,
    }
}

#[derive(PartialEq, Eq)]
enum Directive {
    If,
    IfZero,
    Else,
    EndIf,
    Other,
}

/// What the directive line `line` (starting at its `#`) is.
fn directive(line: &[u8]) -> Directive {
    let rest = line[1..].trim_ascii_start();
    let word_end = rest
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    match &rest[..word_end] {
        b"if" if rest[word_end..].trim_ascii() == b"0" => Directive::IfZero,
        b"if" | b"ifdef" | b"ifndef" => Directive::If,
        b"else" | b"elif" | b"elifdef" | b"elifndef" => Directive::Else,
        b"endif" => Directive::EndIf,
        _ => Directive::Other,
    }
}

/// Skips lines from `i` to the `#endif` closing the current conditional (past it), or, when
/// `to_else`, to its first `#else`/`#elif` (past that line, whose branch is live).
fn skip_branch(s: &[u8], mut i: usize, to_else: bool) -> usize {
    let mut depth = 0usize;
    while i < s.len() {
        let line_end = memchr_or_end(b'\n', s, i);
        let line = s[i..line_end].trim_ascii_start();
        if line.first() == Some(&b'#') {
            let start = line_end - line.len();
            let end = skip_preprocessor(s, start);
            match directive(&s[start..end]) {
                Directive::If | Directive::IfZero => depth += 1,
                Directive::EndIf if depth == 0 => return end,
                Directive::EndIf => depth -= 1,
                Directive::Else if depth == 0 && to_else => return end,
                _ => {}
            }
            i = end + 1;
        } else {
            i = line_end + 1;
        }
    }
    s.len()
}

fn skip_preprocessor(s: &[u8], mut i: usize) -> usize {
    loop {
        let end = memchr_or_end(b'\n', s, i);
        let line = &s[i..end];
        let continued = line
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .is_some_and(|p| line[p] == b'\\');
        if !continued || end >= s.len() {
            return end;
        }
        i = end + 1;
    }
}

/// Past the `*/` closing a block comment whose text starts at `i` (Rust's nest).
fn skip_block_comment(s: &[u8], mut i: usize, nests: bool) -> usize {
    let mut depth = 1usize;
    while i < s.len() {
        if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else if nests && s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    s.len()
}

/// Past a quoted run that started before `i` and ends at an unescaped `quote`; stops at a line
/// break when `one_line` (an unclosed string must not swallow the file).
fn skip_quoted(s: &[u8], mut i: usize, quote: u8, one_line: bool) -> usize {
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'\n' if one_line => return i,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

fn skip_double_quoted(language: Language, s: &[u8], i: usize) -> usize {
    if language == Language::Java && s[i..].starts_with(b"\"\"\"") {
        // A text block.
        let mut j = i + 3;
        while j < s.len() {
            if s[j] == b'\\' {
                j += 2;
            } else if s[j..].starts_with(b"\"\"\"") {
                return j + 3;
            } else {
                j += 1;
            }
        }
        return s.len();
    }
    skip_quoted(s, i + 1, b'"', language != Language::Rust)
}

fn skip_single_quote(language: Language, s: &[u8], i: usize) -> usize {
    match language {
        Language::Rust => {
            // A char literal ('a', '\n', '{'), or a lifetime or label ('a, 'static).
            if s.get(i + 1) == Some(&b'\\') {
                return skip_quoted(s, i + 1, b'\'', true);
            }
            let ch_len = s
                .get(i + 1)
                .map_or(1, |&b| utf8_len(b))
                .min(s.len().saturating_sub(i + 1));
            if s.get(i + 1 + ch_len) == Some(&b'\'') {
                i + 2 + ch_len
            } else {
                i + 1
            }
        }
        _ => skip_quoted(s, i + 1, b'\'', true),
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Rust `r"…"`, `r#"…"#` (`b`/`c` prefixes) and C++ `R"d(…)d"` raw strings: where one that
/// starts with `word` (just scanned, ending before `i`) ends.
fn raw_string_end(language: Language, word: &[u8], s: &[u8], i: usize) -> Option<usize> {
    match language {
        Language::Rust if matches!(word, b"r" | b"br" | b"cr") => {
            let hashes = s[i..].iter().take_while(|&&b| b == b'#').count();
            if s.get(i + hashes) != Some(&b'"') {
                return None;
            }
            let mut j = i + hashes + 1;
            while j < s.len() {
                if s[j] == b'"'
                    && s[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&b| b == b'#')
                        .count()
                        == hashes
                {
                    return Some(j + 1 + hashes);
                }
                j += 1;
            }
            Some(s.len())
        }
        Language::Cpp if word.ends_with(b"R") && s.get(i) == Some(&b'"') => {
            let open = s[i + 1..].iter().take(17).position(|&b| b == b'(')?;
            let delimiter = &s[i + 1..i + 1 + open];
            let mut closing = Vec::with_capacity(delimiter.len() + 2);
            closing.push(b')');
            closing.extend_from_slice(delimiter);
            closing.push(b'"');
            let from = i + 2 + open;
            Some(
                s[from..]
                    .windows(closing.len())
                    .position(|w| w == closing.as_slice())
                    .map_or(s.len(), |p| from + p + closing.len()),
            )
        }
        _ => None,
    }
}

/// The text of a JS template literal from `from` (after its backtick, or after a `${…}`'s
/// `}`): when it stops at a `${`, that opens a level (with a head of its own) whose `}` resumes
/// the template. Returns where scanning goes on and whether a `/` there starts a regular
/// expression (it does after `${`, not after the closing backtick).
fn template_text(
    s: &[u8],
    from: usize,
    stack: &mut Vec<Open>,
    heads: &mut Vec<Head>,
    head: &mut Head,
) -> (usize, bool) {
    let (next, opened) = skip_template(s, from);
    if opened {
        stack.push(Open::Template);
        heads.push(std::mem::take(head));
    }
    (next, opened)
}

/// Scans a JS template literal from `i` (after its backtick or a `${…}`'s `}`): where it
/// ends, and whether it stopped at a `${` rather than its closing backtick.
fn skip_template(s: &[u8], mut i: usize) -> (usize, bool) {
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'`' => return (i + 1, false),
            b'$' if s.get(i + 1) == Some(&b'{') => return (i + 2, true),
            _ => i += 1,
        }
    }
    (s.len(), false)
}

/// Past a JS regular expression literal whose text starts at `i`: to the unescaped `/` outside
/// a character class (and its flags), or the end of the line.
fn skip_regex(s: &[u8], mut i: usize) -> usize {
    let mut class = false;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            b'[' => {
                class = true;
                i += 1;
            }
            b']' => {
                class = false;
                i += 1;
            }
            b'/' if !class => {
                i += 1;
                while i < s.len() && s[i].is_ascii_alphabetic() {
                    i += 1;
                }
                return i;
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// Python: the text with every function body blanked (see the module docs), and for each
/// blanked body (end of the `0` standing for it, true last line, true end byte), in order.
fn python_blanked(s: &[u8]) -> (Vec<u8>, Vec<(usize, u32, usize)>) {
    let lines = python_logical_lines(s);
    let mut out = s.to_vec();
    let mut ends = Vec::new();
    let mut k = 0usize;
    while k < lines.len() {
        let line = &lines[k];
        let Some(body_line) = line.def_body_follows.then_some(k + 1) else {
            k += 1;
            continue;
        };
        // The body: the logical lines indented deeper than the `def`.
        let mut last = k;
        while last + 1 < lines.len() && lines[last + 1].indent > line.indent {
            last += 1;
        }
        if last < body_line {
            k += 1;
            continue;
        }
        let body_start = lines[body_line].start;
        let body_end = lines[last].end;
        for b in &mut out[body_start..body_end] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
        out[body_start] = b'0';
        ends.push((body_start + 1, lines[last].end_row, body_end));
        k = last + 1;
    }
    (out, ends)
}

/// A Python logical line that starts with code (blank and comment-only lines are left out).
struct LogicalLine {
    /// Byte of its first non-blank character.
    start: usize,
    /// Byte after its last character (before the line break that ends it).
    end: usize,
    /// Indentation width (a tab counts to the next multiple of 8, as Python does).
    indent: usize,
    end_row: u32,
    /// A `def` (or `async def`) whose header ends with `:` and nothing after it but a comment.
    def_body_follows: bool,
}

fn python_logical_lines(s: &[u8]) -> Vec<LogicalLine> {
    let mut lines = Vec::new();
    let mut i = 0usize;
    let mut row = 0u32;
    while i < s.len() {
        // Indentation.
        let mut indent = 0usize;
        while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\x0c') {
            indent = if s[i] == b'\t' {
                (indent / 8 + 1) * 8
            } else {
                indent + 1
            };
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        if matches!(s[i], b'\n' | b'\r' | b'#') {
            // Blank or comment-only.
            let end = memchr_or_end(b'\n', s, i);
            row += 1;
            i = end + 1;
            continue;
        }
        let start = i;
        let rest = &s[i..];
        let is_def = rest.starts_with(b"def ") || rest.starts_with(b"async def ");
        let mut depth = 0usize;
        let mut header_colon = None;
        let mut last_code = i;
        // Scan to the end of the logical line.
        while i < s.len() {
            match s[i] {
                b'\n' => {
                    if depth == 0 {
                        break;
                    }
                    row += 1;
                    i += 1;
                }
                b'\\' if s.get(i + 1) == Some(&b'\n') => {
                    row += 1;
                    i += 2;
                }
                b'\\' if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') => {
                    row += 1;
                    i += 3;
                }
                b'#' => {
                    i = memchr_or_end(b'\n', s, i);
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    last_code = i;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    last_code = i;
                    i += 1;
                }
                b':' if depth == 0 && header_colon.is_none() => {
                    header_colon = Some(i);
                    last_code = i;
                    i += 1;
                }
                q @ (b'"' | b'\'') => {
                    let triple = s[i..].starts_with(&[q, q, q]);
                    let from = i;
                    i = if triple {
                        let mut j = i + 3;
                        loop {
                            if j >= s.len() {
                                break s.len();
                            }
                            if s[j] == b'\\' {
                                j += 2;
                            } else if s[j..].starts_with(&[q, q, q]) {
                                break j + 3;
                            } else {
                                j += 1;
                            }
                        }
                    } else {
                        skip_quoted(s, i + 1, q, true)
                    };
                    let end = i.min(s.len());
                    row += s[from..end].iter().filter(|&&b| b == b'\n').count() as u32;
                    last_code = end.saturating_sub(1);
                }
                b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
                _ => {
                    last_code = i;
                    i += 1;
                }
            }
        }
        let end = (last_code + 1).min(s.len());
        lines.push(LogicalLine {
            start,
            end,
            indent,
            end_row: row,
            def_body_follows: is_def && header_colon.is_some_and(|c| c == last_code),
        });
        row += 1;
        i += 1;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body paired wrongly (ending early) leaves the body's rest in the open: the error it
    /// causes is at the body's edge and throws the outline away; the right pairing has none.
    #[test]
    fn errors_at_a_wrong_edge_are_caught() {
        let source = b"fn a() {\n    let x = (1, 2);\n    x.0\n}\nfn b() {}\n";
        let open = source.iter().position(|&b| b == b'{').unwrap_or_default() + 1;
        let close = source.iter().position(|&b| b == b'}').unwrap_or_default();
        let right: Vec<Range<usize>> = std::iter::once(open..close).collect();
        assert_eq!(brace_bodies(Language::Rust, source).0, right);
        let tree = parse_with(Language::Rust, source, &included_ranges(source, &right));
        let tree = tree.expect("parses");
        assert!(!tree.root_node().has_error());
        // As if a `}` had been seen inside the tuple.
        let early: Vec<Range<usize>> = std::iter::once(open..open + 18).collect();
        let tree = parse_with(Language::Rust, source, &included_ranges(source, &early));
        let tree = tree.expect("parses");
        assert!(errors_at_edges(&tree, source, &early));
    }

    #[test]
    fn python_bodies_are_blanked_in_place() {
        let source =
            b"def f(x):\n    y = '''\nnot code\n'''\n    return y\n\nclass C:\n    def m(self): return 1\n";
        let (blanked, ends) = python_blanked(source);
        assert_eq!(blanked.len(), source.len());
        let text = String::from_utf8_lossy(&blanked);
        assert!(text.starts_with("def f(x):\n    0"), "{text}");
        assert!(!text.contains("not code"));
        assert!(text.contains("class C:\n    def m(self): return 1"));
        assert_eq!(ends.len(), 1);
        assert_eq!(ends[0].1, 4, "the body's last line");
    }
}
