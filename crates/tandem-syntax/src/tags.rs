//! Definitions a file makes, from tags-style queries (`queries/<language>.scm`).
//!
//! A query pattern captures the definition's node with its kind (`@function`, `@struct`, ...)
//! and its name (`@name`, or `@declarator` for C and C++, whose names sit inside declarators).
//! What a query cannot say well is decided here from the tree: the container (the enclosing
//! impl, class or namespace), whether a function is a method, the signature text.

use std::ops::Range;
use std::sync::OnceLock;

use tree_sitter::{Node, Query, QueryCursor, StreamingIterator, Tree};

use crate::{Language, node_text, text_in};

/// What a definition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DefKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Union,
    Trait,
    Interface,
    TypeAlias,
    Constant,
    Module,
    Macro,
}

impl DefKind {
    /// A type with members: struct, class, enum, union, trait or interface.
    pub fn is_type(self) -> bool {
        matches!(
            self,
            DefKind::Struct
                | DefKind::Class
                | DefKind::Enum
                | DefKind::Union
                | DefKind::Trait
                | DefKind::Interface
        )
    }

    /// The kind in lower camel case, as serialized: "function", "typeAlias".
    pub fn as_str(self) -> &'static str {
        match self {
            DefKind::Function => "function",
            DefKind::Method => "method",
            DefKind::Class => "class",
            DefKind::Struct => "struct",
            DefKind::Enum => "enum",
            DefKind::Union => "union",
            DefKind::Trait => "trait",
            DefKind::Interface => "interface",
            DefKind::TypeAlias => "typeAlias",
            DefKind::Constant => "constant",
            DefKind::Module => "module",
            DefKind::Macro => "macro",
        }
    }

    fn from_capture(name: &str) -> Option<DefKind> {
        Some(match name {
            "function" => DefKind::Function,
            "method" => DefKind::Method,
            "class" => DefKind::Class,
            "struct" => DefKind::Struct,
            "enum" => DefKind::Enum,
            "union" => DefKind::Union,
            "trait" => DefKind::Trait,
            "interface" => DefKind::Interface,
            "type_alias" => DefKind::TypeAlias,
            "constant" => DefKind::Constant,
            "module" => DefKind::Module,
            "macro" => DefKind::Macro,
            _ => return None,
        })
    }
}

/// A definition in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Definition {
    pub name: String,
    pub kind: DefKind,
    /// The definition's head: from its first line (after doc comments, attributes, decorators
    /// and annotations) up to where its body starts (`{`, or the block after `:` in Python), as
    /// written, trimmed of trailing whitespace; at most 8 lines and 400 bytes. Constants and
    /// type aliases have no body: their signature is the whole definition, within those caps.
    pub signature: String,
    /// Byte range of the whole definition (item node) in the source.
    pub byte_range: Range<usize>,
    /// 0-based first and last line of the whole definition (the first line is the signature's).
    pub start_line: u32,
    pub end_line: u32,
    /// Enclosing type/impl/class/namespace name for methods and nested items, when there is one.
    pub container: Option<String>,
}

const SIGNATURE_MAX_LINES: usize = 8;
const SIGNATURE_MAX_BYTES: usize = 400;

/// The definitions in `source`, in byte order. Parses `source` first.
pub fn definitions(language: Language, source: &str) -> Vec<Definition> {
    match crate::parse(language, source.as_bytes()) {
        Some(tree) => definitions_in(language, &tree, source.as_bytes()),
        None => Vec::new(),
    }
}

/// The definitions in an already parsed `source`, in byte order.
pub fn definitions_in(language: Language, tree: &Tree, source: &[u8]) -> Vec<Definition> {
    let mut found = collect(language, tree.root_node(), source, None);
    found.sort_by(|a, b| {
        (
            a.byte_range.start,
            std::cmp::Reverse(a.byte_range.end),
            &a.name,
        )
            .cmp(&(
                b.byte_range.start,
                std::cmp::Reverse(b.byte_range.end),
                &b.name,
            ))
    });
    found.dedup_by(|a, b| a.byte_range == b.byte_range && a.name == b.name);
    found
}

/// The innermost function, method or type definition around `byte` (its whole range, ends
/// included), if any.
pub fn enclosing_definition(
    language: Language,
    tree: &Tree,
    source: &[u8],
    byte: usize,
) -> Option<Definition> {
    let byte = byte.min(source.len());
    // Matches intersecting the range include every definition containing `byte`, and the
    // cursor only walks the nodes on the way there.
    let range = byte.saturating_sub(1)..byte.saturating_add(1);
    collect(language, tree.root_node(), source, Some(range))
        .into_iter()
        .filter(|d| {
            d.byte_range.start <= byte
                && byte <= d.byte_range.end
                && !matches!(
                    d.kind,
                    DefKind::Constant | DefKind::Module | DefKind::Macro | DefKind::TypeAlias
                )
        })
        .min_by_key(|d| d.byte_range.end - d.byte_range.start)
}

/// The compiled tags query of a language, built on its first use (0.4 ms for Go to 19 ms for
/// C++; see [`warm_up`]). A query that does not compile (a bug caught by the tests) leaves its
/// language without definitions.
fn query(language: Language) -> Option<&'static Query> {
    static QUERIES: [OnceLock<Option<Query>>; Language::ALL.len()] =
        [const { OnceLock::new() }; Language::ALL.len()];
    QUERIES
        .get(language.index())?
        .get_or_init(|| Query::new(&language.grammar(), &query_source(language)).ok())
        .as_ref()
}

/// Compiles `language`'s tags query now, if it is not yet (the server does this when a
/// document of the language opens, so that neither a request nor the low-priority indexer
/// compiles it while a request waits).
pub fn warm_up(language: Language) {
    let _ = query(language);
}

pub(crate) fn query_source(language: Language) -> String {
    const JS: &str = include_str!("queries/javascript.scm");
    const TS: &str = include_str!("queries/typescript.scm");
    match language {
        Language::Rust => include_str!("queries/rust.scm").to_owned(),
        Language::Python => include_str!("queries/python.scm").to_owned(),
        Language::JavaScript => JS.to_owned(),
        Language::TypeScript | Language::Tsx => format!("{JS}\n{TS}"),
        Language::Go => include_str!("queries/go.scm").to_owned(),
        Language::Java => include_str!("queries/java.scm").to_owned(),
        Language::C => include_str!("queries/c.scm").to_owned(),
        Language::Cpp => format!(
            "{}\n{}",
            include_str!("queries/c.scm"),
            include_str!("queries/cpp.scm")
        ),
    }
}

fn collect(
    language: Language,
    root: Node<'_>,
    source: &[u8],
    range: Option<Range<usize>>,
) -> Vec<Definition> {
    let Some(query) = query(language) else {
        return Vec::new();
    };
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    if let Some(range) = range {
        cursor.set_byte_range(range);
    }
    let mut found = Vec::new();
    // Predicates (`#match?`) read node text through this, which stays in bounds even when
    // `source` is not the tree's text.
    let text = |node: Node<'_>| std::iter::once(source.get(node.byte_range()).unwrap_or_default());
    let mut matches = cursor.matches(query, root, text);
    while let Some(m) = matches.next() {
        let mut item = None;
        let mut name = None;
        let mut declarator = None;
        let mut value = None;
        for capture in m.captures {
            let Some(&capture_name) = names.get(capture.index as usize) else {
                continue;
            };
            match capture_name {
                "name" => name = Some(capture.node),
                "declarator" => declarator = Some(capture.node),
                "value" => value = Some(capture.node),
                "go_type" => item = Some((capture.node, None)),
                other => {
                    if let Some(kind) = DefKind::from_capture(other) {
                        item = Some((capture.node, Some(kind)));
                    }
                }
            }
        }
        let Some((node, kind)) = item else { continue };
        let definition = match (name, declarator) {
            (Some(name), _) => {
                let kind = match kind {
                    Some(kind) => refine_kind(kind, value),
                    None => go_type_kind(node),
                };
                let name = node_text(name, source);
                build(language, node, kind, name, None, source)
            }
            (None, Some(declarator)) => {
                let Some(kind) = kind else { continue };
                from_declarator(language, node, kind, declarator, source)
            }
            (None, None) => None,
        };
        found.extend(definition);
    }
    found
}

/// A JS/TS `const` holding a function is a function.
fn refine_kind(kind: DefKind, value: Option<Node<'_>>) -> DefKind {
    match value.map(|v| v.kind()) {
        Some("arrow_function" | "function_expression" | "function" | "generator_function")
            if kind == DefKind::Constant =>
        {
            DefKind::Function
        }
        _ => kind,
    }
}

/// Go `type X struct {...}` is a struct, `type X interface {...}` an interface, anything else
/// (`type X int`, `type X = Y`) an alias.
fn go_type_kind(spec: Node<'_>) -> DefKind {
    match spec.child_by_field_name("type").map(|t| t.kind()) {
        Some("struct_type") => DefKind::Struct,
        Some("interface_type") => DefKind::Interface,
        _ => DefKind::TypeAlias,
    }
}

/// A C or C++ definition named inside a declarator: functions (definitions and prototypes),
/// methods (in class bodies, or out of line as `Foo::bar`), typedefs.
fn from_declarator(
    language: Language,
    node: Node<'_>,
    kind: DefKind,
    declarator: Node<'_>,
    source: &[u8],
) -> Option<Definition> {
    let named = declarator_name(declarator, source)?;
    match kind {
        // A declaration is a function only if its name is declared as one (not a variable, not
        // a pointer to a function).
        DefKind::Function | DefKind::Method if !named.is_function => None,
        DefKind::Function | DefKind::Method if named.scope.is_some() => build(
            language,
            node,
            DefKind::Method,
            named.name,
            named.scope,
            source,
        ),
        _ => build(language, node, kind, named.name, None, source),
    }
}

struct DeclaratorName {
    name: String,
    /// `Foo` for `Foo::bar`.
    scope: Option<String>,
    /// Whether the innermost declarator around the name declares a function.
    is_function: bool,
}

fn declarator_name(mut node: Node<'_>, source: &[u8]) -> Option<DeclaratorName> {
    let mut is_function = false;
    // Declarators nest a few levels (`*(*f)(int)`); the bound keeps broken trees cheap.
    for _ in 0..32 {
        match node.kind() {
            "function_declarator" => {
                is_function = true;
                node = node.child_by_field_name("declarator")?;
            }
            "parenthesized_declarator" => node = node.named_child(0)?,
            "pointer_declarator"
            | "reference_declarator"
            | "array_declarator"
            | "attributed_declarator"
            | "init_declarator" => {
                is_function = false;
                node = match node.child_by_field_name("declarator") {
                    Some(inner) => inner,
                    None => node.named_child(node.named_child_count().checked_sub(1)?)?,
                };
            }
            "qualified_identifier" => {
                let (scope, name) = qualified_name(node, source)?;
                return Some(DeclaratorName {
                    name,
                    scope,
                    is_function,
                });
            }
            "identifier" | "field_identifier" | "type_identifier" | "primitive_type"
            | "destructor_name" | "operator_name" => {
                return Some(DeclaratorName {
                    name: node_text(node, source),
                    scope: None,
                    is_function,
                });
            }
            "template_function" => {
                let name = node.child_by_field_name("name")?;
                return Some(DeclaratorName {
                    name: node_text(name, source),
                    scope: None,
                    is_function,
                });
            }
            _ => return None,
        }
    }
    None
}

/// `a::Foo<T>::bar` → (`Foo`, `bar`): the innermost scope without template arguments.
fn qualified_name(mut node: Node<'_>, source: &[u8]) -> Option<(Option<String>, String)> {
    let mut scope = None;
    for _ in 0..32 {
        if node.kind() != "qualified_identifier" {
            let name = match node.kind() {
                "template_function" | "template_method" => node.child_by_field_name("name")?,
                _ => node,
            };
            return Some((scope, node_text(name, source)));
        }
        if let Some(s) = node.child_by_field_name("scope") {
            let s = match s.kind() {
                "template_type" => s.child_by_field_name("name").unwrap_or(s),
                _ => s,
            };
            scope = Some(node_text(s, source));
        }
        node = node.child_by_field_name("name")?;
    }
    None
}

fn build(
    language: Language,
    node: Node<'_>,
    kind: DefKind,
    name: String,
    scope: Option<String>,
    source: &[u8],
) -> Option<Definition> {
    if name.is_empty() {
        return None;
    }
    let receiver = match (language, node.kind()) {
        (Language::Go, "method_declaration") => receiver_type(node).map(|r| node_text(r, source)),
        _ => None,
    };
    let (container, in_type) = match scope.or(receiver) {
        Some(scope) => (Some(scope), true),
        None => container(language, node, source),
    };
    let kind = if kind == DefKind::Function && in_type {
        DefKind::Method
    } else {
        kind
    };
    let item = widen(language, node);
    let head = head_start(item);
    let end = signature_end(language, node, item, kind).max(head.start_byte());
    Some(Definition {
        name,
        kind,
        signature: signature_text(source, head.start_byte(), end),
        byte_range: item.start_byte()..item.end_byte(),
        start_line: u32::try_from(head.start_position().row).unwrap_or(u32::MAX),
        end_line: u32::try_from(end_row(item)).unwrap_or(u32::MAX),
        container,
    })
}

/// The last line of `node`: the one before its end when it ends with a line break (C
/// preprocessor definitions do).
fn end_row(node: Node<'_>) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    }
}

/// The node a definition spans: its `export` statement, its `template <...>` declaration, its
/// Python decorators, its Go `type`/`const` declaration when that declares only it.
fn widen<'t>(language: Language, node: Node<'t>) -> Node<'t> {
    let Some(parent) = node.parent() else {
        return node;
    };
    match (language, parent.kind()) {
        (Language::JavaScript | Language::TypeScript | Language::Tsx, "export_statement")
        | (Language::Cpp, "template_declaration")
        | (Language::Python, "decorated_definition") => parent,
        (Language::Go, "type_declaration" | "const_declaration") => {
            if parent.named_child_count() == 1 {
                parent
            } else {
                node
            }
        }
        _ => node,
    }
}

/// Where the signature starts: after leading decorators and annotations.
fn head_start(item: Node<'_>) -> Node<'_> {
    fn is_annotation(kind: &str) -> bool {
        matches!(
            kind,
            "decorator"
                | "annotation"
                | "marker_annotation"
                | "attribute_item"
                | "attribute_declaration"
                | "comment"
                | "line_comment"
                | "block_comment"
        )
    }
    let mut cursor = item.walk();
    for child in item.children(&mut cursor) {
        if is_annotation(child.kind()) {
            continue;
        }
        if child.kind() == "modifiers" {
            // Java: annotations sit inside the modifiers.
            let mut inner = child.walk();
            if let Some(first) = child
                .children(&mut inner)
                .find(|m| !is_annotation(m.kind()))
            {
                return first;
            }
            continue;
        }
        return child;
    }
    item
}

/// Where the signature of `node` (spanning `item`) ends: before the body.
fn signature_end(language: Language, node: Node<'_>, item: Node<'_>, kind: DefKind) -> usize {
    if matches!(kind, DefKind::Constant | DefKind::TypeAlias) {
        return item.end_byte();
    }
    if language == Language::Python {
        return node
            .child_by_field_name("body")
            .map_or(item.end_byte(), |body| body.start_byte());
    }
    first_brace(item).unwrap_or(item.end_byte())
}

/// The first `{` token of `node`, outside parameters, strings, type annotations and C++
/// member initializers (`Foo() : x{0} {`).
fn first_brace(node: Node<'_>) -> Option<usize> {
    let mut cursor = node.walk();
    loop {
        let current = cursor.node();
        if current.kind() == "{" && !current.is_named() {
            return Some(current.start_byte());
        }
        let skip = {
            let kind = current.kind();
            kind.contains("parameter")
                || kind.contains("string")
                || kind.contains("type_annotation")
                || kind == "field_initializer_list"
                || kind == "arguments"
                || kind == "template_string"
        };
        if !skip && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node().id() == node.id() {
                return None;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return None;
            }
        }
    }
}

fn signature_text(source: &[u8], start: usize, end: usize) -> String {
    let text = text_in(source, start, end);
    let mut out = String::new();
    for (i, line) in text.split('\n').take(SIGNATURE_MAX_LINES).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line.trim_end_matches('\r'));
        if out.len() >= SIGNATURE_MAX_BYTES {
            break;
        }
    }
    if out.len() > SIGNATURE_MAX_BYTES {
        let mut cut = SIGNATURE_MAX_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.truncate(out.trim_end().len());
    out
}

/// The nearest enclosing type, impl, class or namespace, and whether `node` sits directly in a
/// type (so a function there is a method) rather than in a function inside it or a namespace.
fn container(language: Language, node: Node<'_>, source: &[u8]) -> (Option<String>, bool) {
    let mut in_function = false;
    let mut current = node;
    while let Some(parent) = current.parent() {
        current = parent;
        if is_function_like(language, parent.kind()) {
            in_function = true;
            continue;
        }
        if let Some((name, is_type)) = container_name(language, parent, source) {
            return (Some(name), is_type && !in_function);
        }
    }
    (None, false)
}

fn is_function_like(language: Language, kind: &str) -> bool {
    match language {
        Language::Rust => matches!(kind, "function_item" | "closure_expression"),
        Language::Python => matches!(kind, "function_definition" | "lambda"),
        Language::JavaScript | Language::TypeScript | Language::Tsx => matches!(
            kind,
            "function_declaration"
                | "function_expression"
                | "function"
                | "arrow_function"
                | "method_definition"
                | "generator_function"
                | "generator_function_declaration"
        ),
        Language::Go => matches!(
            kind,
            "function_declaration" | "method_declaration" | "func_literal"
        ),
        Language::Java => matches!(
            kind,
            "method_declaration" | "constructor_declaration" | "lambda_expression"
        ),
        Language::C | Language::Cpp => matches!(kind, "function_definition" | "lambda_expression"),
    }
}

/// The name of a container node and whether it is a type (rather than a namespace).
fn container_name(language: Language, node: Node<'_>, source: &[u8]) -> Option<(String, bool)> {
    let (name, is_type) = match (language, node.kind()) {
        (Language::Rust, "impl_item") => (type_name(node.child_by_field_name("type")?), true),
        (Language::Rust, "trait_item") => (node.child_by_field_name("name")?, true),
        (Language::Rust, "mod_item") => (node.child_by_field_name("name")?, false),
        (Language::Python, "class_definition") => (node.child_by_field_name("name")?, true),
        (
            Language::JavaScript | Language::TypeScript | Language::Tsx,
            "class_declaration" | "class" | "abstract_class_declaration" | "interface_declaration",
        ) => (node.child_by_field_name("name")?, true),
        (
            Language::JavaScript | Language::TypeScript | Language::Tsx,
            "internal_module" | "module",
        ) => (node.child_by_field_name("name")?, false),
        (Language::Go, "type_spec") => (node.child_by_field_name("name")?, true),
        (Language::Go, "method_declaration") => (receiver_type(node)?, true),
        (
            Language::Java,
            "class_declaration"
            | "interface_declaration"
            | "enum_declaration"
            | "record_declaration"
            | "annotation_type_declaration",
        ) => (node.child_by_field_name("name")?, true),
        (
            Language::C | Language::Cpp,
            "struct_specifier" | "union_specifier" | "class_specifier",
        ) => (node.child_by_field_name("name")?, true),
        (Language::Cpp, "namespace_definition") => (node.child_by_field_name("name")?, false),
        _ => return None,
    };
    let text = node_text(name, source);
    (!text.is_empty()).then_some((text, is_type))
}

/// `Foo` for `Foo<T>`, `a::Foo`, `&Foo`.
fn type_name(node: Node<'_>) -> Node<'_> {
    let mut node = node;
    for _ in 0..8 {
        let inner = match node.kind() {
            "generic_type" => node.child_by_field_name("type"),
            "scoped_type_identifier" => node.child_by_field_name("name"),
            "reference_type" | "pointer_type" => node.child_by_field_name("type"),
            _ => None,
        };
        match inner {
            Some(inner) => node = inner,
            None => break,
        }
    }
    node
}

/// The receiver's type of a Go method: `T` for `(r *T)`, `(r T[K])`.
fn receiver_type(method: Node<'_>) -> Option<Node<'_>> {
    let receiver = method.child_by_field_name("receiver")?;
    let mut cursor = receiver.walk();
    let parameter = receiver
        .named_children(&mut cursor)
        .find(|c| c.kind() == "parameter_declaration")?;
    let mut ty = parameter.child_by_field_name("type")?;
    for _ in 0..8 {
        match ty.kind() {
            "pointer_type" => ty = ty.named_child(0)?,
            "generic_type" => ty = ty.child_by_field_name("type")?,
            _ => break,
        }
    }
    Some(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_compiles() {
        for language in Language::ALL {
            if let Err(e) = Query::new(&language.grammar(), &query_source(language)) {
                panic!("{}: {e}", language.name());
            }
        }
    }

    #[test]
    fn kinds_serialize_as_their_names() {
        for kind in [DefKind::TypeAlias, DefKind::Function, DefKind::Macro] {
            let json = format!("\"{}\"", kind.as_str());
            assert_eq!(serde_json::to_string(&kind).ok(), Some(json));
        }
    }

    #[test]
    fn signatures_are_capped() {
        let long = "x".repeat(1000);
        assert_eq!(signature_text(long.as_bytes(), 0, 1000).len(), 400);
        let many = "a\n".repeat(20);
        assert_eq!(
            signature_text(many.as_bytes(), 0, many.len())
                .lines()
                .count(),
            8
        );
        let wide = "é".repeat(300);
        assert!(signature_text(wide.as_bytes(), 0, wide.len()).len() <= 400);
        assert_eq!(signature_text(b"abc", 2, 10), "");
    }
}
