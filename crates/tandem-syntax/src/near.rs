//! What the code around a cursor refers to: the identifiers retrieval looks up elsewhere.

use tree_sitter::{Node, Tree};

use crate::{DefKind, Language, enclosing_definition, node_text};

/// How far back the current statement is read, at most: a statement that starts further up is
/// broken code or a huge expression, and the lines above cover it.
const STATEMENT_MAX_BYTES: usize = 4096;

/// Identifiers the code near `byte` uses: those in the current statement up to the cursor,
/// in the enclosing function's signature and in the `lines_above` lines above the cursor,
/// nearest first, deduplicated, excluding keywords and the names defined at those places
/// (the definitions' own names, parameters, local bindings — and their uses: they need no
/// looking up). Field and method names (`x.method` → `method`) and both parts of qualified
/// names (`pkg.Name`) count. Works from the tree.
pub fn identifiers_near(
    language: Language,
    tree: &Tree,
    source: &[u8],
    byte: usize,
    lines_above: usize,
) -> Vec<String> {
    let byte = byte.min(source.len());
    let root = tree.root_node();
    let mut ranges = Vec::with_capacity(3);
    ranges.push(lines_start(source, byte, lines_above)..byte);
    if let Some(start) = statement_start(language, root, byte) {
        ranges.push(start.max(byte.saturating_sub(STATEMENT_MAX_BYTES))..byte);
    }
    if let Some(function) = enclosing_definition(language, tree, source, byte)
        .filter(|d| matches!(d.kind, DefKind::Function | DefKind::Method))
    {
        let start = function.byte_range.start;
        // The signature follows the attributes or decorators the item starts with.
        let head = function
            .signature
            .lines()
            .next()
            .unwrap_or_default()
            .as_bytes();
        let offset = source
            .get(start..function.byte_range.end)
            .and_then(|item| item.windows(head.len().max(1)).position(|w| w == head))
            .unwrap_or(0);
        let end = start + offset + function.signature.len();
        ranges.push(start..end.min(byte));
    }
    let mut found: Vec<Node<'_>> = Vec::new();
    for range in &ranges {
        collect_identifiers(root, range.clone(), &mut found);
    }
    found.sort_by_key(|n| std::cmp::Reverse(n.start_byte()));
    // Names bound here (parameters, locals, the definition's own name) are known already:
    // their uses are left out too.
    let (bindings, uses): (Vec<Node<'_>>, Vec<Node<'_>>) =
        found.into_iter().partition(|n| is_binding(*n));
    let bound: Vec<String> = bindings.into_iter().map(|n| node_text(n, source)).collect();
    let mut names: Vec<String> = Vec::new();
    for node in uses {
        let name = node_text(node, source);
        if name.is_empty()
            || is_keyword(language, &name)
            || bound.contains(&name)
            || names.contains(&name)
        {
            continue;
        }
        names.push(name);
    }
    names
}

/// The start of the line `lines` lines above the cursor's.
fn lines_start(source: &[u8], byte: usize, lines: usize) -> usize {
    let mut seen = 0;
    let before = source.get(..byte).unwrap_or_default();
    for (i, &b) in before.iter().enumerate().rev() {
        if b == b'\n' {
            if seen == lines {
                return i + 1;
            }
            seen += 1;
        }
    }
    0
}

/// The start of the statement (or item) around the cursor: the cursor's outermost ancestor
/// that is not itself a block of statements.
fn statement_start(language: Language, root: Node<'_>, byte: usize) -> Option<usize> {
    let mut node = root.descendant_for_byte_range(byte.saturating_sub(1), byte)?;
    while let Some(parent) = node.parent() {
        if is_block(language, parent.kind()) {
            return Some(node.start_byte());
        }
        node = parent;
    }
    None
}

fn is_block(language: Language, kind: &str) -> bool {
    let shared = matches!(
        kind,
        "block"
            | "source_file"
            | "program"
            | "module"
            | "translation_unit"
            | "compound_statement"
            | "declaration_list"
            | "field_declaration_list"
            | "class_body"
    );
    shared
        || match language {
            Language::JavaScript | Language::TypeScript | Language::Tsx => {
                matches!(kind, "statement_block" | "interface_body" | "switch_body")
            }
            Language::Java => matches!(
                kind,
                "constructor_body" | "interface_body" | "enum_body" | "switch_block"
            ),
            Language::Go => matches!(kind, "statement_list" | "expression_switch_statement"),
            _ => false,
        }
}

/// Identifier leaves of `node` inside `range` that end at or before its end.
fn collect_identifiers<'t>(
    node: Node<'t>,
    range: std::ops::Range<usize>,
    found: &mut Vec<Node<'t>>,
) {
    let mut cursor = node.walk();
    loop {
        let current = cursor.node();
        let inside = current.end_byte() > range.start && current.start_byte() < range.end;
        if inside {
            if is_identifier(current.kind()) {
                if current.start_byte() >= range.start
                    && current.end_byte() <= range.end
                    && !found.iter().any(|n| n.id() == current.id())
                {
                    found.push(current);
                }
            } else if cursor.goto_first_child() {
                continue;
            }
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

fn is_identifier(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "type_identifier"
            | "field_identifier"
            | "property_identifier"
            | "private_property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "package_identifier"
            | "namespace_identifier"
    )
}

fn is_keyword(language: Language, name: &str) -> bool {
    match language {
        Language::Python => matches!(name, "self" | "cls"),
        Language::Rust => matches!(name, "self" | "Self" | "crate" | "super"),
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            matches!(name, "this" | "super" | "undefined" | "require")
        }
        Language::Go => matches!(name, "nil" | "true" | "false" | "iota" | "_"),
        Language::Java => matches!(name, "this" | "super"),
        Language::C | Language::Cpp => matches!(name, "this" | "NULL" | "nullptr"),
    }
}

/// Whether `node` names something being defined there: a definition's name, a parameter, a
/// local binding (through destructuring patterns).
fn is_binding(node: Node<'_>) -> bool {
    let mut child = node;
    let mut parent = match node.parent() {
        Some(parent) => parent,
        None => return false,
    };
    // Destructuring: `let (a, b)`, `{a, b} =`, `a, b :=`, `*p` declarators.
    for _ in 0..8 {
        let wrapper = matches!(
            parent.kind(),
            "tuple_pattern"
                | "slice_pattern"
                | "ref_pattern"
                | "mut_pattern"
                | "reference_pattern"
                | "struct_pattern"
                | "field_pattern"
                | "pattern_list"
                | "list_pattern"
                | "list_splat_pattern"
                | "dictionary_splat_pattern"
                | "array_pattern"
                | "object_pattern"
                | "pair_pattern"
                | "assignment_pattern"
                | "rest_pattern"
                | "shorthand_property_identifier_pattern"
                | "object_assignment_pattern"
                | "expression_list"
                | "pointer_declarator"
                | "reference_declarator"
                | "array_declarator"
                | "tuple_struct_pattern"
                | "as_pattern"
        );
        if !wrapper {
            break;
        }
        let Some(up) = parent.parent() else { break };
        child = parent;
        parent = up;
    }
    let field = field_of(parent, child);
    match (parent.kind(), field) {
        // Whole-child bindings: parameter lists.
        (
            "parameters"
            | "closure_parameters"
            | "formal_parameters"
            | "lambda_parameters"
            | "inferred_parameters"
            | "typed_parameter",
            _,
        ) => true,
        (
            "function_item"
            | "function_signature_item"
            | "struct_item"
            | "enum_item"
            | "union_item"
            | "trait_item"
            | "type_item"
            | "const_item"
            | "static_item"
            | "mod_item"
            | "macro_definition"
            | "function_definition"
            | "class_definition"
            | "function_declaration"
            | "generator_function_declaration"
            | "class_declaration"
            | "method_definition"
            | "method_declaration"
            | "constructor_declaration"
            | "interface_declaration"
            | "enum_declaration"
            | "type_alias_declaration"
            | "type_spec"
            | "const_spec"
            | "var_spec"
            | "default_parameter"
            | "typed_default_parameter"
            | "formal_parameter"
            | "variable_declarator"
            | "parameter_declaration"
            | "catch_formal_parameter"
            | "enhanced_for_statement",
            Some("name"),
        ) => true,
        ("let_declaration" | "let_condition" | "parameter" | "for_expression", Some("pattern")) => {
            true
        }
        ("match_pattern", _) => true,
        ("for_in_clause", Some("left")) => true,
        ("for_range_loop", Some("declarator")) => true,
        ("required_parameter" | "optional_parameter", Some("pattern")) => true,
        ("arrow_function", Some("parameter")) => true,
        ("short_var_declaration" | "range_clause" | "for_in_statement", Some("left")) => true,
        ("for_statement", Some("left")) => true,
        ("assignment", Some("left")) => true,
        ("keyword_argument", Some("name")) => true,
        ("function_declarator" | "init_declarator", Some("declarator")) => true,
        ("parameter_declaration" | "declaration", Some("declarator")) => true,
        _ => false,
    }
}

/// The field `child` fills in `parent`, if any.
fn field_of(parent: Node<'_>, child: Node<'_>) -> Option<&'static str> {
    let mut cursor = parent.walk();
    if !cursor.goto_first_child() {
        return None;
    }
    loop {
        if cursor.node().id() == child.id() {
            return cursor.field_name();
        }
        if !cursor.goto_next_sibling() {
            return None;
        }
    }
}
