//! The type of the value before a member access at the cursor (`x.`, `x?.`, `x->`, `X::`),
//! read from the code above it. What a completion there most likely needs is one of that
//! type's members, whose name is nowhere near the cursor yet.
//!
//! The type comes from, nearest declaration first:
//! - `self` / `this` / `Self`: the type around the enclosing method;
//! - a capitalised receiver (`Vec::`, `Config.`): the receiver itself;
//! - a variable: an annotation (`x: T`, Go's `x *T`), a constructor it was assigned from
//!   (`x = T(…)`, `x = new T(…)`, `let x = T::new(…)`, `x := &T{…}`, `x := NewT(…)`), a C-family
//!   declaration (`T x = …`, `T *x;`, parameters `(T x, …)`), or Python's `with T(…) as x`.
//!
//! It reads text, not types: a receiver whose type needs inference (`f().`, `a.b.`) has none.

use std::borrow::Cow;

use tree_sitter::Tree;

use crate::Language;

/// A member access at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// What the member belongs to.
    pub target: Target,
    /// The member's name typed so far (`x.ge` → `ge`), possibly empty.
    pub partial: String,
    /// The receiver is `self`/`this`: private members are as likely as public ones.
    pub own: bool,
}

/// What a member access is into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A type, by (the last segment of) its name.
    Type(String),
    /// A module or package, by its path's segments without relative prefixes (`crate`,
    /// `self`, `super`, leading dots): `use crate::a::b::` → `[a, b]`, `from .x import` →
    /// `[x]`, Go's `chi.` for an imported `github.com/go-chi/chi/v5` → `[chi]`.
    Module(Vec<String>),
}

/// How far above the cursor declarations are looked for.
const SCAN_BYTES: usize = 16 * 1024;

/// The member access being written at `byte`, with what its receiver is, if it can be told.
/// `imports` are the file's (module receivers: `click.`, `chi.`).
pub fn receiver_type(
    language: Language,
    tree: &Tree,
    source: &[u8],
    byte: usize,
    imports: &[crate::Import],
) -> Option<Receiver> {
    let byte = byte.min(source.len());
    let before: Cow<'_, str> =
        String::from_utf8_lossy(&source[byte.saturating_sub(SCAN_BYTES)..byte]);
    let line = before.rsplit('\n').next().unwrap_or_default();
    let head = line.trim_end_matches(is_ident);
    let partial = &line[head.len()..];
    if partial.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let receiver_of = |target, own| Receiver {
        target,
        partial: partial.to_owned(),
        own,
    };
    if let Some(module) = imported_from(language, head) {
        return Some(receiver_of(Target::Module(module), false));
    }
    let (sep, head) = ["?.", "->", "::", "."]
        .into_iter()
        .find_map(|sep| Some((sep, head.strip_suffix(sep)?)))?;
    let receiver = &head[head.trim_end_matches(is_ident).len()..];
    if receiver.is_empty() || receiver.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Some(module) = module_path(language, head, sep, receiver, imports) {
        return Some(receiver_of(Target::Module(module), false));
    }
    let above = &before[..before.len() - line.len()];
    let type_name = match receiver {
        "self" | "this" | "Self" => crate::enclosing_definition(language, tree, source, byte)
            .and_then(|def| match def.container {
                Some(container) => Some(container),
                None if def.kind.is_type() => Some(def.name),
                None => None,
            })
            // The member access being typed often leaves the tree in error around it.
            .or_else(|| enclosing_type_by_indent(above, line))?,
        r if r.starts_with(|c: char| c.is_uppercase()) => r.to_owned(),
        // The text before the receiver, up to 16 KB: the cursor's line can declare it too
        // (`for (T x : xs) x.`).
        r => declared_type(
            language,
            &before[..before.len() - line.len() + head.len() - r.len()],
            r,
        )?,
    };
    let own = matches!(receiver, "self" | "this" | "Self");
    (!is_builtin(&type_name)).then(|| receiver_of(Target::Type(type_name), own))
}

/// The type whose body holds the cursor's line, read from the nearest less indented
/// `class X`, `impl X` or `impl Trait for X` line above.
fn enclosing_type_by_indent(above: &str, line: &str) -> Option<String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut limit = indent(line);
    for l in above.lines().rev() {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || indent(l) >= limit {
            continue;
        }
        limit = indent(l);
        let words: Vec<&str> = trimmed
            .split(|c: char| !is_ident(c))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(i) = words.iter().position(|w| matches!(*w, "class" | "struct")) {
            return words.get(i + 1).map(|w| (*w).to_owned());
        }
        if words.first() == Some(&"impl") {
            // `impl<T> Trait<T> for Name<T>`: the type is after `for`, else the first name
            // that is not a generic parameter.
            let generics = trimmed
                .strip_prefix("impl<")
                .map_or("", |g| g.split('>').next().unwrap_or(""));
            let name = match words.iter().position(|w| *w == "for") {
                Some(i) => words.get(i + 1),
                None => words[1..]
                    .iter()
                    .find(|w| !generics.split([',', ' ', ':']).any(|g| g == **w)),
            };
            return name.map(|w| (*w).to_owned());
        }
        if limit == 0 {
            break;
        }
    }
    None
}

/// Python's `from .a.b import x, ` (the names being listed come from module `[a, b]`).
fn imported_from(language: Language, head: &str) -> Option<Vec<String>> {
    if language != Language::Python {
        return None;
    }
    let rest = head.trim_start().strip_prefix("from ")?;
    let (module, names) = rest.split_once(" import ")?;
    if !names.trim_start_matches('(').split(',').all(|n| {
        let n = n.trim();
        n.is_empty() || n.split(" as ").all(|w| w.trim().chars().all(is_ident))
    }) {
        return None;
    }
    let segments = module_segments(module.trim(), '.');
    (!segments.is_empty()).then_some(segments)
}

/// The module a `receiver` + `sep` names: a Rust path of lowercase segments
/// (`crate::a::b::`), or an imported module's or package's name (`click.`, `chi.`).
fn module_path(
    language: Language,
    head: &str,
    sep: &str,
    receiver: &str,
    imports: &[crate::Import],
) -> Option<Vec<String>> {
    let lowercase = |s: &str| s.starts_with(|c: char| c.is_lowercase() || c == '_');
    if language == Language::Rust && sep == "::" {
        // The whole path before the cursor: `crate::a::b`.
        let mut start = head.len();
        loop {
            let seg_start = head[..start].trim_end_matches(is_ident).len();
            match head[..seg_start].strip_suffix("::") {
                Some(_) if seg_start < start => start = seg_start - 2,
                _ => {
                    start = seg_start;
                    break;
                }
            }
        }
        let path = &head[start..];
        let segments = module_segments(path, ':');
        return (!segments.is_empty() && segments.iter().all(|s| lowercase(s))).then_some(segments);
    }
    if sep != "." || !lowercase(receiver) {
        return None;
    }
    let import = imports.iter().find(|i| match language {
        Language::Python => i.names.is_empty() && i.module.rsplit('.').next() == Some(receiver),
        Language::Go => package_name(&i.module) == Some(receiver),
        _ => false,
    })?;
    Some(match language {
        Language::Go => vec![receiver.to_owned()],
        _ => module_segments(&import.module, '.'),
    })
}

/// A Go import path's package name: its last segment, before a major version (`/v5`).
fn package_name(path: &str) -> Option<&str> {
    let mut segments = path.rsplit('/');
    let last = segments.next()?;
    let versioned =
        last.len() > 1 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    if versioned {
        segments.next()
    } else {
        Some(last)
    }
}

/// A module path's segments without the relative ones.
fn module_segments(path: &str, sep: char) -> Vec<String> {
    path.split(sep)
        .filter(|s| !s.is_empty() && !matches!(*s, "crate" | "self" | "super"))
        .map(str::to_owned)
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The type of variable `var` from its nearest declaration in `text` (what precedes it).
fn declared_type(language: Language, text: &str, var: &str) -> Option<String> {
    let mut end = text.len();
    while let Some(at) = text[..end].rfind(var) {
        end = at;
        let after_at = at + var.len();
        let whole_word = !text[..at].ends_with(is_ident) && !text[after_at..].starts_with(is_ident);
        if !whole_word || text[..at].ends_with('.') {
            continue;
        }
        if let Some(t) = type_after(language, &text[after_at..])
            .or_else(|| type_before(language, &text[..at], &text[after_at..]))
        {
            return Some(t);
        }
    }
    None
}

/// A type read from what follows a variable's name at its declaration: an annotation or an
/// assignment from a constructor.
fn type_after(language: Language, rest: &str) -> Option<String> {
    let rest = rest.trim_start_matches([' ', '\t']);
    if let Some(annotated) = rest.strip_prefix(':')
        && !annotated.starts_with([':', '='])
        && matches!(
            language,
            Language::Rust | Language::Python | Language::TypeScript | Language::Tsx
        )
    {
        return type_path(annotated);
    }
    if let Some(assigned) = rest.strip_prefix(":=").or_else(|| {
        rest.strip_prefix('=')
            .filter(|r| !r.starts_with(['=', '>']))
    }) {
        return constructed(language, assigned);
    }
    if language == Language::Go {
        // `var x T`, parameters and fields `x *T`.
        let t = rest.trim_start_matches(['*', '[', ']']);
        if t.starts_with(is_ident) && !t.starts_with("func") {
            return type_path(t);
        }
    }
    None
}

/// A C-family declaration `T x`, `T *x`, `T<U> x` followed by `=`, `;`, `,`, `)` or `:`.
fn type_before(language: Language, before: &str, after: &str) -> Option<String> {
    match language {
        Language::Java | Language::C | Language::Cpp => {}
        Language::Python => {
            // `with T(…) as x`
            let head = before.trim_end().strip_suffix(" as")?;
            let start = head.rfind("with ").map(|i| i + 5)?;
            let item = head[start..].rsplit(", ").next().unwrap_or_default();
            return constructed(language, item);
        }
        _ => return None,
    }
    let next = after.trim_start_matches([' ', '\t']);
    if !next.starts_with(['=', ';', ',', ')', ':', '[']) {
        return None;
    }
    let mut head = before.trim_end_matches([' ', '\t', '*', '&']);
    if head.ends_with('>') {
        // Skip a generic argument list: `List<Foo> x`.
        let mut depth = 0usize;
        let mut cut = None;
        for (i, c) in head.char_indices().rev() {
            match c {
                '>' => depth += 1,
                '<' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        cut = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        head = head[..cut?].trim_end();
    }
    let name = &head[head.trim_end_matches(is_ident).len()..];
    if name.is_empty() || is_keyword(name) || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(name.to_owned())
}

/// The type a value is constructed from: `T(…)`, `new T(…)`, `mod.T(…)`, `T::new(…)`,
/// `T { … }`, `&T{…}`, Go's `NewT(…)`.
fn constructed(language: Language, value: &str) -> Option<String> {
    let mut v = value.trim_start();
    for prefix in ["await ", "new ", "&mut ", "&", "*"] {
        v = v.strip_prefix(prefix).unwrap_or(v).trim_start();
    }
    let path_len = v
        .find(|c: char| !(is_ident(c) || c == '.' || c == ':'))
        .unwrap_or(v.len());
    let (path, next) = v.split_at(path_len);
    let next = next.trim_start_matches([' ', '\t']);
    if !next.starts_with(['(', '{', '<']) {
        return None;
    }
    let segments: Vec<&str> = path.split(['.', ':']).filter(|s| !s.is_empty()).collect();
    if let Some(t) = segments
        .iter()
        .rev()
        .find(|s| s.starts_with(|c: char| c.is_uppercase()))
    {
        if language == Language::Go
            && let Some(t) = t
                .strip_prefix("New")
                .filter(|t| t.starts_with(char::is_uppercase))
        {
            return Some(t.to_owned());
        }
        return Some((*t).to_owned());
    }
    None
}

/// The last segment of the type path at the start of `s`, past references and qualifiers.
fn type_path(s: &str) -> Option<String> {
    let mut t = s.trim_start();
    loop {
        let before = t;
        for prefix in [
            "&",
            "*",
            "?",
            "mut ",
            "const ",
            "dyn ",
            "impl ",
            "readonly ",
            "\"",
            "'",
        ] {
            t = t.strip_prefix(prefix).unwrap_or(t).trim_start();
        }
        if t == before {
            break;
        }
    }
    let len = t
        .find(|c: char| !(is_ident(c) || c == '.' || c == ':'))
        .unwrap_or(t.len());
    let last = t[..len].rsplit(['.', ':']).next().unwrap_or_default();
    // A wrapper's members are rarely what is wanted: `Option<Config>` → `Config`.
    if WRAPPERS.contains(&last)
        && let Some(inner) = t[len..].strip_prefix(['<', '['])
    {
        return type_path(inner);
    }
    (last.starts_with(|c: char| c.is_alphabetic() || c == '_') && !is_keyword(last))
        .then(|| last.to_owned())
}

/// Generic types that stand for their argument at a member access.
const WRAPPERS: &[&str] = &[
    "Optional",
    "Option",
    "Box",
    "Rc",
    "Arc",
    "RefCell",
    "Cell",
    "Mutex",
    "RwLock",
    "Pin",
    "Ref",
    "RefMut",
    "Readonly",
    "Partial",
    "unique_ptr",
    "shared_ptr",
    "Type",
    "type",
];

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "return"
            | "new"
            | "else"
            | "case"
            | "in"
            | "of"
            | "delete"
            | "throw"
            | "typeof"
            | "sizeof"
            | "goto"
            | "yield"
            | "await"
            | "await_"
            | "if"
            | "for"
            | "while"
            | "struct"
            | "enum"
            | "union"
            | "class"
    )
}

/// Types whose members no workspace defines.
fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        "int"
            | "char"
            | "void"
            | "bool"
            | "float"
            | "double"
            | "long"
            | "short"
            | "unsigned"
            | "signed"
            | "auto"
            | "var"
            | "let"
            | "const"
            | "str"
            | "string"
            | "String"
            | "number"
            | "boolean"
            | "any"
            | "unknown"
            | "object"
            | "Object"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "usize"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "isize"
            | "f32"
            | "f64"
            | "error"
            | "byte"
            | "rune"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receiver type at the `$0` of `text`.
    fn at(language: Language, text: &str) -> Option<(String, String)> {
        let byte = text.find("$0").expect("a $0 cursor");
        let text = text.replacen("$0", "", 1);
        let tree = crate::parse(language, text.as_bytes())?;
        let imports = crate::imports_in(language, &tree, text.as_bytes());
        receiver_type(language, &tree, text.as_bytes(), byte, &imports).map(|r| {
            let target = match r.target {
                Target::Type(t) => t,
                Target::Module(m) => format!("mod {}", m.join("/")),
            };
            (target, r.partial)
        })
    }

    fn ty(language: Language, text: &str) -> Option<String> {
        at(language, text).map(|(t, _)| t)
    }

    /// Each case: language, text with `$0`, expected type (`None`: none can be told).
    fn check(cases: &[(Language, &str, Option<&str>)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(language, text, want)| {
                let got = ty(*language, text);
                (got.as_deref() != *want)
                    .then(|| format!("{} {text:?}: got {got:?}, want {want:?}", language.name()))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn annotations_and_constructors() {
        use Language::*;
        check(&[
            (
                Rust,
                "fn f(cfg: &mut Config) {\n    cfg.$0\n}",
                Some("Config"),
            ),
            (
                Rust,
                "fn f() {\n    let b = WalkBuilder::new(p);\n    b.$0\n}",
                Some("WalkBuilder"),
            ),
            (
                Rust,
                "fn f() {\n    let s = Server { port: 1 };\n    s.$0\n}",
                Some("Server"),
            ),
            (
                Python,
                "def f():\n    client = httpx.Client(base)\n    client.$0\n",
                Some("Client"),
            ),
            (
                Python,
                "def f(req: Request):\n    req.$0\n",
                Some("Request"),
            ),
            (
                Python,
                "def f(self, console: Optional[Console] = None):\n    self.console.$0\n",
                Some("Console"),
            ),
            (Python, "def f(t: \"Table\"):\n    t.$0\n", Some("Table")),
            (
                Rust,
                "fn f(cfg: Option<Arc<Config>>) {\n    cfg.$0\n}",
                Some("Config"),
            ),
            (
                Python,
                "def f():\n    with open(p) as g, Session(a) as s:\n        s.$0\n",
                Some("Session"),
            ),
            (
                TypeScript,
                "function f(m: TimeoutManager) {\n  m.$0\n}",
                Some("TimeoutManager"),
            ),
            (
                JavaScript,
                "const it = new Iterators();\nit.$0",
                Some("Iterators"),
            ),
            (Go, "func f(buf *Buffer) {\n\tbuf.$0\n}", Some("Buffer")),
            (
                Go,
                "func f() {\n\tenc := NewEncoder(w)\n\tenc.$0\n}",
                Some("Encoder"),
            ),
            (
                Go,
                "func f() {\n\ts := &Server{}\n\ts.$0\n}",
                Some("Server"),
            ),
            (
                Java,
                "void f() {\n  List<Foo> xs = get();\n  ViewManager m = x;\n  m.$0\n}",
                Some("ViewManager"),
            ),
            (Java, "void f(Foo a, Bar b) {\n  b.$0\n}", Some("Bar")),
            (
                Cpp,
                "void f() {\n  State *state = g();\n  state->$0\n}",
                Some("State"),
            ),
            (
                C,
                "void f(struct git_str *buf) {\n  buf->$0\n}",
                Some("git_str"),
            ),
        ]);
    }

    #[test]
    fn self_capitals_and_partial_names() {
        use Language::*;
        assert_eq!(
            at(
                Rust,
                "struct S;\nimpl S {\n    fn f(&self) {\n        self.ge$0\n    }\n}\n"
            ),
            Some(("S".to_owned(), "ge".to_owned()))
        );
        check(&[
            (
                Python,
                "class Job:\n    def run(self):\n        self.$0\n",
                Some("Job"),
            ),
            (
                Java,
                "class A {\n  void f() {\n    this.$0\n  }\n}\n",
                Some("A"),
            ),
            (Rust, "fn f() {\n    Poll::Re$0\n}", Some("Poll")),
            (
                Rust,
                "impl<T: Clone> Display for Wrapper<T> {\n    fn fmt(&self) {\n        self.$0\n",
                Some("Wrapper"),
            ),
            (
                TypeScript,
                "export class Queue {\n  push(x) {\n    this.$0\n",
                Some("Queue"),
            ),
        ]);
    }

    #[test]
    fn modules() {
        use Language::*;
        check(&[
            (Rust, "use crate::never::$0", Some("mod never")),
            (Rust, "use crate::builder::ValueP$0", Some("mod builder")),
            (
                Rust,
                "fn f() {\n    let x = self::io::$0\n}",
                Some("mod io"),
            ),
            (Python, "from .utils import echo, $0", Some("mod utils")),
            (Python, "from ..a.b import $0", Some("mod a/b")),
            (Python, "import click\n\n@click.$0", Some("mod click")),
            (
                Go,
                "package p\n\nimport \"github.com/go-chi/chi/v5\"\n\nfunc f() {\n\tr := chi.$0\n}",
                Some("mod chi"),
            ),
            (Python, "from . import $0", None),
        ]);
    }

    #[test]
    fn nothing_to_tell() {
        use Language::*;
        // Not a member access, a chain, an unknown variable, a builtin, a number, a function's
        // result.
        check(&[
            (Rust, "fn f() {\n    let x = 1;\n    x$0\n}", None),
            (Rust, "fn f() {\n    g().$0\n}", None),
            (Python, "def f(a):\n    a.$0\n", None),
            (Rust, "fn f(s: String) {\n    s.$0\n}", None),
            (Python, "x = 1.$0", None),
            (Go, "func f() {\n\tx := compute()\n\tx.$0\n}", None),
            (Rust, "$0", None),
        ]);
    }
}
