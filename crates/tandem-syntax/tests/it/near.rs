//! `identifiers_near` and `enclosing_definition` at a `$0` cursor.

use expect_test::{Expect, expect};
use tandem_syntax::{Language, ParsedDocument, enclosing_definition, identifiers_near};

/// Parses `fixture` without its `$0` marker; the marker's offset is the cursor.
fn parse(language: Language, fixture: &str) -> (ParsedDocument, String, usize) {
    let cursor = fixture.find("$0").unwrap_or(fixture.len());
    let text = fixture.replacen("$0", "", 1);
    let document = ParsedDocument::new(language, &ropey::Rope::from_str(&text));
    (document, text, cursor)
}

#[track_caller]
fn check_near(language: Language, lines_above: usize, fixture: &str, expect: Expect) {
    let (document, text, cursor) = parse(language, fixture);
    let Some(tree) = document.tree() else {
        panic!("no tree")
    };
    let names = identifiers_near(language, tree, text.as_bytes(), cursor, lines_above);
    expect.assert_eq(&names.join(" "));
}

#[track_caller]
fn check_enclosing(language: Language, fixture: &str, expect: Expect) {
    let (document, text, cursor) = parse(language, fixture);
    let Some(tree) = document.tree() else {
        panic!("no tree")
    };
    let found = enclosing_definition(language, tree, text.as_bytes(), cursor)
        .map(|d| {
            let container = d.container.map(|c| format!("{c}::")).unwrap_or_default();
            format!("{} {container}{}: {}", d.kind.as_str(), d.name, d.signature)
        })
        .unwrap_or_default();
    expect.assert_eq(&found);
}

#[test]
fn rust_identifiers() {
    check_near(
        Language::Rust,
        3,
        r#"
use std::collections::HashMap;

impl Engine {
    pub fn complete(&self, request: &Request, cache: &mut Cache) -> Completion {
        let window = self.window(request.prefix());
        let (head, tail) = split(window);
        let total = cache.lookup(head).unwrap_or_default() + $0
        let after = 1;
    }
}
"#,
        expect!["unwrap_or_default lookup split prefix Completion Cache Request"],
    );
}

#[test]
fn python_identifiers() {
    check_near(
        Language::Python,
        2,
        r#"
import os

def load(path: str, retries: int = 3) -> Config:
    data = read_file(path)
    parsed = parser.parse(data, strict=True)
    return Config.from_dict(parsed, os.$0
"#,
        expect!["os from_dict Config parse parser read_file int str"],
    );
}

#[test]
fn go_identifiers() {
    check_near(
        Language::Go,
        2,
        r#"
package main

func (s *Server) Handle(ctx context.Context, req *http.Request) error {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return fmt.Errorf("read: %w", err$0)
	}
}
"#,
        expect!["Errorf fmt Body ReadAll io error Request http Context context Server"],
    );
}

#[test]
fn typescript_identifiers() {
    check_near(
        Language::TypeScript,
        1,
        r#"
export function render(props: Props, theme: Theme): Element {
  const { title, items } = props;
  return layout.column(items.map(toRow), $0
}
"#,
        expect!["toRow map column layout Element Theme Props"],
    );
}

#[test]
fn nothing_around_the_start_of_a_file() {
    check_near(Language::Rust, 5, "$0fn main() {}", expect![[""]]);
    check_near(Language::C, 0, "int x = $0", expect!["x"]);
}

#[test]
fn enclosing_definitions() {
    check_enclosing(
        Language::Rust,
        r#"
impl Engine {
    #[inline]
    fn run(&self) -> u32 {
        let x = $0;
    }
}
"#,
        expect![[r#"method Engine::run: fn run(&self) -> u32"#]],
    );
    check_enclosing(
        Language::Python,
        r#"
class Engine:
    def run(self):
        return 1$0
"#,
        expect![[r#"method Engine::run: def run(self):"#]],
    );
    check_enclosing(
        Language::Python,
        r#"
class Engine:
    RATE = 2$0
"#,
        expect![[r#"class Engine: class Engine:"#]],
    );
    check_enclosing(
        Language::Java,
        r#"
class A {
    void f() { int y = $0 }
}
"#,
        expect![[r#"method A::f: void f()"#]],
    );
    check_enclosing(
        Language::Cpp,
        r#"
int Engine::run(int steps) const {
    return $0steps;
}
"#,
        expect![[r#"method Engine::run: int Engine::run(int steps) const"#]],
    );
    check_enclosing(Language::Go, "package main\n\nvar x = $0\n", expect![[""]]);
}
