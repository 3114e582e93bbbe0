//! The imports, `use`s and `#include`s of a file, as written.

use tree_sitter::{Node, Tree};

use crate::{Language, node_text};

/// An import/use/include in a file, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Import {
    /// The module path as written: `crate::engine` (Rust `use crate::engine::{Engine, Input}`),
    /// `os.path`, `./util` (JS/TS), `fmt` / `github.com/x/y` (Go), `com.foo.Bar` (Java),
    /// `util.h` (C/C++ `#include "util.h"`, and `stdio.h` for `<stdio.h>` with `system`).
    pub module: String,
    /// Names brought in (`from a import b, c` → [b, c]; `import {x as y}` → [x]; a JS default
    /// import → its local name); empty for whole-module imports.
    pub names: Vec<String>,
    /// A C/C++ system include (`<stdio.h>`).
    pub system: bool,
}

impl Import {
    fn module(module: String) -> Import {
        Import {
            module,
            names: Vec::new(),
            system: false,
        }
    }
}

/// The imports in `source`, in order. Parses `source` first.
pub fn imports(language: Language, source: &str) -> Vec<Import> {
    match crate::parse(language, source.as_bytes()) {
        Some(tree) => imports_in(language, &tree, source.as_bytes()),
        None => Vec::new(),
    }
}

/// The imports in an already parsed `source`, in order.
pub fn imports_in(language: Language, tree: &Tree, source: &[u8]) -> Vec<Import> {
    let mut found = Vec::new();
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        let handled = import_at(language, node, source, &mut found);
        if !handled && may_hold_imports(language, node.kind()) && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                found.retain(|i: &Import| !i.module.is_empty());
                return found;
            }
        }
    }
}

/// Whether a node of `kind` can have imports below it: the walk skips the rest (most of a
/// file's nodes), which matters when a whole workspace is indexed.
fn may_hold_imports(language: Language, kind: &str) -> bool {
    if kind == "ERROR" {
        // Error recovery can wrap anything.
        return true;
    }
    match language {
        // `use` and `extern crate` are items: in modules, and in blocks of function bodies.
        Language::Rust => matches!(
            kind,
            "source_file"
                | "mod_item"
                | "declaration_list"
                | "function_item"
                | "block"
                | "expression_statement"
                | "if_expression"
                | "else_clause"
                | "loop_expression"
                | "for_expression"
                | "while_expression"
                | "unsafe_block"
                | "async_block"
                | "impl_item"
                | "trait_item"
                | "foreign_mod_item"
                | "match_expression"
                | "match_block"
                | "match_arm"
                | "closure_expression"
                | "let_declaration"
                | "call_expression"
                | "arguments"
                | "static_item"
                | "const_item"
        ),
        // Statements, at module level or nested in compound statements.
        Language::Python => matches!(
            kind,
            "module"
                | "block"
                | "if_statement"
                | "elif_clause"
                | "else_clause"
                | "try_statement"
                | "except_clause"
                | "except_group_clause"
                | "finally_clause"
                | "with_statement"
                | "for_statement"
                | "while_statement"
                | "function_definition"
                | "class_definition"
                | "decorated_definition"
                | "match_statement"
                | "case_clause"
        ),
        Language::Go => matches!(
            kind,
            "source_file" | "import_declaration" | "import_spec_list"
        ),
        Language::Java => matches!(kind, "program" | "module_declaration"),
        // Conditional blocks, linkage and namespace blocks, and the odd `#include` in a
        // function or a struct.
        Language::C | Language::Cpp => matches!(
            kind,
            "translation_unit"
                | "preproc_if"
                | "preproc_ifdef"
                | "preproc_else"
                | "preproc_elif"
                | "preproc_elifdef"
                | "linkage_specification"
                | "declaration_list"
                | "namespace_definition"
                | "function_definition"
                | "compound_statement"
                | "field_declaration_list"
                | "struct_specifier"
                | "class_specifier"
                | "union_specifier"
                | "enum_specifier"
                | "enumerator_list"
                | "declaration"
                | "initializer_list"
                | "init_declarator"
        ),
        // `require(...)` can be any expression; types, literals and comments hold none.
        Language::JavaScript | Language::TypeScript | Language::Tsx => !matches!(
            kind,
            "string"
                | "template_string"
                | "comment"
                | "regex"
                | "number"
                | "identifier"
                | "property_identifier"
                | "jsx_text"
                | "type_annotation"
                | "type_arguments"
                | "type_parameters"
                | "type_alias_declaration"
                | "interface_declaration"
                | "object_type"
                | "function_signature"
                | "method_signature"
                | "property_signature"
                | "formal_parameters"
        ),
    }
}

/// Records the imports `node` makes; whether it was an import (so its children need no visit).
fn import_at(language: Language, node: Node<'_>, source: &[u8], found: &mut Vec<Import>) -> bool {
    match (language, node.kind()) {
        (Language::Rust, "use_declaration") => {
            if let Some(argument) = node.child_by_field_name("argument") {
                let first = found.len();
                rust_use(argument, String::new(), source, found, first);
            }
            true
        }
        (Language::Rust, "extern_crate_declaration") => {
            if let Some(name) = node.child_by_field_name("name") {
                found.push(Import::module(node_text(name, source)));
            }
            true
        }
        (Language::Python, "import_statement") => {
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                let module = match name.kind() {
                    "aliased_import" => name.child_by_field_name("name").unwrap_or(name),
                    _ => name,
                };
                found.push(Import::module(node_text(module, source)));
            }
            true
        }
        (Language::Python, "import_from_statement") => {
            let Some(module) = node.child_by_field_name("module_name") else {
                return true;
            };
            let mut cursor = node.walk();
            let names = node
                .children_by_field_name("name", &mut cursor)
                .map(|name| match name.kind() {
                    "aliased_import" => name.child_by_field_name("name").unwrap_or(name),
                    _ => name,
                })
                .map(|name| node_text(name, source))
                .collect();
            found.push(Import {
                module: node_text(module, source),
                names,
                system: false,
            });
            true
        }
        (Language::Python, "future_import_statement") => {
            let mut cursor = node.walk();
            let names = node
                .children_by_field_name("name", &mut cursor)
                .map(|name| node_text(name, source))
                .collect();
            found.push(Import {
                module: "__future__".to_owned(),
                names,
                system: false,
            });
            true
        }
        (Language::JavaScript | Language::TypeScript | Language::Tsx, "import_statement") => {
            js_import(node, source, found);
            true
        }
        (Language::JavaScript | Language::TypeScript | Language::Tsx, "export_statement") => {
            // Re-exports: `export { a } from "./b"`, `export * from "./b"`.
            if let Some(from) = node.child_by_field_name("source") {
                let mut names = Vec::new();
                let mut cursor = node.walk();
                for clause in node.named_children(&mut cursor) {
                    if clause.kind() == "export_clause" {
                        let mut inner = clause.walk();
                        for specifier in clause.named_children(&mut inner) {
                            if let Some(name) = specifier.child_by_field_name("name") {
                                names.push(string_content(name, source));
                            }
                        }
                    }
                }
                found.push(Import {
                    module: string_content(from, source),
                    names,
                    system: false,
                });
                return true;
            }
            false
        }
        (Language::JavaScript | Language::TypeScript | Language::Tsx, "call_expression") => {
            // CommonJS: `require("x")`.
            let is_require = node
                .child_by_field_name("function")
                .is_some_and(|f| f.kind() == "identifier" && node_text(f, source) == "require");
            let argument = node
                .child_by_field_name("arguments")
                .and_then(|a| a.named_child(0))
                .filter(|a| a.kind() == "string");
            match (is_require, argument) {
                (true, Some(argument)) => {
                    found.push(Import::module(string_content(argument, source)));
                    true
                }
                _ => false,
            }
        }
        (Language::Go, "import_spec") => {
            if let Some(path) = node.child_by_field_name("path") {
                found.push(Import::module(string_content(path, source)));
            }
            true
        }
        (Language::Java, "import_declaration") => {
            let mut cursor = node.walk();
            let path = node
                .named_children(&mut cursor)
                .find(|c| matches!(c.kind(), "scoped_identifier" | "identifier"));
            if let Some(path) = path {
                found.push(Import::module(node_text(path, source)));
            }
            true
        }
        (Language::C | Language::Cpp, "preproc_include") => {
            if let Some(path) = node.child_by_field_name("path") {
                let system = path.kind() == "system_lib_string";
                if matches!(path.kind(), "system_lib_string" | "string_literal") {
                    found.push(Import {
                        module: string_content(path, source),
                        names: Vec::new(),
                        system,
                    });
                }
            }
            true
        }
        _ => false,
    }
}

/// A Rust `use` tree below `prefix`: `a::b::{C, d::E}` gives `a::b` [C] and `a::b::d` [E].
fn rust_use(node: Node<'_>, prefix: String, source: &[u8], found: &mut Vec<Import>, first: usize) {
    let join = |path: Option<Node<'_>>| match path {
        Some(path) if prefix.is_empty() => node_text(path, source),
        Some(path) => format!("{prefix}::{}", node_text(path, source)),
        None => prefix.clone(),
    };
    match node.kind() {
        "scoped_identifier" => {
            let module = join(node.child_by_field_name("path"));
            let name = node
                .child_by_field_name("name")
                .map(|n| node_text(n, source));
            push_name(found, first, module, name);
        }
        "use_as_clause" => {
            if let Some(path) = node.child_by_field_name("path") {
                rust_use(path, prefix, source, found, first);
            }
        }
        "use_wildcard" => {
            let mut cursor = node.walk();
            let path = node.named_children(&mut cursor).next();
            push_name(found, first, join(path), None);
        }
        "scoped_use_list" => {
            let module = join(node.child_by_field_name("path"));
            if let Some(list) = node.child_by_field_name("list") {
                rust_use(list, module, source, found, first);
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            for item in node.named_children(&mut cursor) {
                rust_use(item, prefix.clone(), source, found, first);
            }
        }
        // `self` in a list imports the module itself.
        "self" => push_name(found, first, prefix, None),
        "identifier" | "crate" | "super" | "metavariable" => {
            if prefix.is_empty() {
                push_name(found, first, node_text(node, source), None);
            } else {
                push_name(found, first, prefix, Some(node_text(node, source)));
            }
        }
        _ => {}
    }
}

/// Adds `name` to the import of `module` that the same `use` (recorded from `first` on) made,
/// or records a new import.
fn push_name(found: &mut Vec<Import>, first: usize, module: String, name: Option<String>) {
    if let Some(same) = found
        .get_mut(first..)
        .and_then(|mine| mine.iter_mut().find(|i| i.module == module))
    {
        same.names.extend(name);
        return;
    }
    found.push(Import {
        module,
        names: name.into_iter().collect(),
        system: false,
    });
}

fn js_import(node: Node<'_>, source: &[u8], found: &mut Vec<Import>) {
    let mut names = Vec::new();
    let mut module = node
        .child_by_field_name("source")
        .map(|s| string_content(s, source));
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "import_clause" => {
                let mut inner = child.walk();
                for part in child.named_children(&mut inner) {
                    match part.kind() {
                        // A default import: the local name is the only name there is.
                        "identifier" => names.push(node_text(part, source)),
                        "named_imports" => {
                            let mut specifiers = part.walk();
                            for specifier in part.named_children(&mut specifiers) {
                                if let Some(name) = specifier.child_by_field_name("name") {
                                    names.push(string_content(name, source));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            // TypeScript `import x = require("y")`.
            "import_require_clause" => {
                module = child
                    .child_by_field_name("source")
                    .map(|s| string_content(s, source));
            }
            _ => {}
        }
    }
    if let Some(module) = module {
        found.push(Import {
            module,
            names,
            system: false,
        });
    }
}

/// The text of a string literal without its quotes (or a system include without `<>`).
fn string_content(node: Node<'_>, source: &[u8]) -> String {
    let text = node_text(node, source);
    let trimmed = text.trim();
    let unquoted = [('"', '"'), ('\'', '\''), ('`', '`'), ('<', '>')]
        .iter()
        .find_map(|&(open, close)| {
            trimmed
                .strip_prefix(open)
                .and_then(|t| t.strip_suffix(close).or(Some(t)))
        })
        .unwrap_or(trimmed);
    unquoted.to_owned()
}
