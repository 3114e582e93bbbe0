//! Fixture tests of the context engine: a small multi-file workspace with a `$0` cursor goes in,
//! a snapshot of the snippets chosen for the prompt comes out.
//!
//! Fixture syntax: files start with a `//- path` line; one file holds the `$0` cursor. Every
//! file is indexed in the symbol index; the cursor's file is also an open document.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use serde_json::{Value, json};
use tandem_core::Document;
use tandem_server::engine::{CompletionInput, Engine};

struct Fixture {
    files: Vec<(String, String)>,
    cursor_file: String,
    cursor: usize,
}

fn parse(fixture: &str) -> Fixture {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in fixture.lines() {
        if let Some(path) = line.trim().strip_prefix("//- ") {
            files.push((path.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line.strip_prefix("        ").unwrap_or(line.trim_start()));
            text.push('\n');
        }
    }
    let mut cursor = None;
    for (path, text) in &mut files {
        if let Some(at) = text.find("$0") {
            *text = text.replacen("$0", "", 1);
            cursor = Some((path.clone(), text[..at].chars().count()));
        }
    }
    let (cursor_file, cursor) = cursor.expect("the fixture has no $0");
    Fixture {
        files,
        cursor_file,
        cursor,
    }
}

fn root() -> PathBuf {
    PathBuf::from("/fixture")
}

fn engine(fixture: &Fixture, options: Value) -> Engine {
    let engine = Engine::new(1 << 20);
    engine.set_init_layer(Some(options));
    engine.reload(Some(&root()));
    for (path, text) in &fixture.files {
        engine.symbols().upsert(&root(), path, text);
    }
    engine
}

fn input(engine: &Engine, fixture: &Fixture) -> CompletionInput {
    let text = &fixture
        .files
        .iter()
        .find(|(p, _)| *p == fixture.cursor_file)
        .expect("cursor file")
        .1;
    let language = tandem_syntax::language_id_for_path(&fixture.cursor_file);
    let snapshot = Document::new(text, 1, language).snapshot();
    engine.note_document(Some(&root()), &fixture.cursor_file, snapshot.clone());
    CompletionInput {
        snapshot,
        offset: fixture.cursor,
        path: fixture.cursor_file.clone(),
        root: Some(root()),
    }
}

/// The snippets chosen at the cursor, one per block: source, place, score, text.
fn context(fixture: &str, options: Value) -> String {
    let fixture = parse(fixture);
    let engine = engine(&fixture, options);
    let input = input(&engine, &fixture);
    let config = engine.config(Some(Path::new("/fixture")));
    let (_, request) = engine.request(&input, &config).expect("request");
    let mut out = String::new();
    for s in &request.snippets {
        out.push_str(&format!(
            "{:?} {}:{}-{} {} {:.2}\n",
            s.source,
            s.path,
            s.start_line,
            s.end_line,
            s.kind.as_deref().unwrap_or("-"),
            s.score
        ));
        for line in s.text.lines() {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    out
}

#[track_caller]
fn check(fixture: &str, expect: Expect) {
    expect.assert_eq(&context(fixture, json!({})));
}

#[test]
fn rust_imported_definitions_come_first() {
    check(
        r#"
        //- src/store.rs
        /// A key-value store.
        pub struct Store {
            items: Vec<(String, u64)>,
        }

        impl Store {
            pub fn insert(&mut self, key: &str, value: u64) -> Option<u64> {
                None
            }

            pub fn total(&self) -> u64 {
                self.items.iter().map(|(_, v)| v).sum()
            }
        }
        //- src/other/store_like.rs
        pub fn insert(x: u32) {}
        //- src/main.rs
        use crate::store::Store;

        fn main() {
            let mut store = Store::default();
            store.insert("a", 1);
            let sum = store.$0
        }
        "#,
        expect![[r#"
            Definition src/store.rs:2-4 struct 0.75
              | pub struct Store {
              |     items: Vec<(String, u64)>,
              | }
              | pub fn insert(&mut self, key: &str, value: u64) -> Option<u64>
              | pub fn total(&self) -> u64
            Definition src/store.rs:7-9 method 0.69
              | pub fn insert(&mut self, key: &str, value: u64) -> Option<u64> {
              |     None
              | }
            Definition src/other/store_like.rs:1-1 function 0.63
              | pub fn insert(x: u32) {}
        "#]],
    );
}

/// At `b.Wr`, the type of `b` (a parameter's) comes first with its methods (also those
/// declared in another file of its package), those starting with the typed `Wr` first: the
/// member's name is nowhere near the cursor.
#[test]
fn member_access_lists_the_receivers_methods() {
    check(
        r#"
        //- buf/buffer.go
        package buf

        type Buffer struct {
        	data []byte
        }

        func (b *Buffer) Len() int { return len(b.data) }
        func (b *Buffer) Cap() int { return cap(b.data) }
        func (b *Buffer) Reset() { b.data = b.data[:0] }
        func (b *Buffer) Bytes() []byte { return b.data }
        func (b *Buffer) String() string { return string(b.data) }
        func (b *Buffer) Truncate(n int) { b.data = b.data[:n] }
        func (b *Buffer) Grow(n int) {}
        func (b *Buffer) ReadByte() (byte, error) { return 0, nil }
        //- buf/write.go
        package buf

        func (b *Buffer) WriteString(s string) (int, error) { return len(s), nil }
        func (b *Buffer) WriteByte(c byte) error { return nil }
        //- cmd/main.go
        package main

        import "example.com/x/buf"

        func fill(b *buf.Buffer, greeting string) {
        	b.Wr$0
        }
        "#,
        expect![[r#"
            Definition buf/buffer.go:3-5 struct 0.75
              | type Buffer struct {
              | 	data []byte
              | }
              | func (b *Buffer) WriteString(s string) (int, error)
              | func (b *Buffer) WriteByte(c byte) error
              | func (b *Buffer) Len() int
              | func (b *Buffer) Cap() int
              | func (b *Buffer) Reset()
              | func (b *Buffer) Bytes() []byte
              | func (b *Buffer) String() string
              | func (b *Buffer) Truncate(n int)
              | func (b *Buffer) Grow(n int)
              | func (b *Buffer) ReadByte() (byte, error)
        "#]],
    );
}

/// At `chi.`, where `chi` is an imported package, the package's exported top-level
/// definitions come first (Go: from every file of its directory).
#[test]
fn member_access_into_an_imported_package_lists_its_exports() {
    check(
        r#"
        //- chi/chi.go
        package chi

        func NewRouter() *Mux { return &Mux{} }

        func newTree() int { return 0 }

        type Router interface {
        	Get(pattern string)
        }
        //- chi/mux.go
        package chi

        type Mux struct{}

        func (m *Mux) Get(pattern string) {}
        //- app/main.go
        package main

        import "github.com/go-chi/chi/v5"

        func main() {
        	r := chi.$0
        }
        "#,
        expect![[r#"
            Definition chi/chi.go:3-9 module 0.75
              | func NewRouter() *Mux
              | type Router interface
            Definition chi/mux.go:3-3 module 0.69
              | type Mux struct
        "#]],
    );
}

/// A name imported at the top of a long file is looked up even when the cursor window, full
/// of other words, does not reach the import.
#[test]
fn imported_names_are_looked_up_beyond_the_window() {
    let filler: String = (0..400)
        .map(|i| format!("const value{i} = compute{i}(value{});\n", i.max(1) - 1))
        .collect();
    let fixture = format!(
        r#"
        //- src/util/noop.ts
        export function noop(): void {{}}
        //- src/main.ts
        import {{ noop }} from "./util/noop";

        {filler}
        export const handler = $0
        "#
    );
    let fixture = fixture
        .lines()
        .map(|l| l.trim_start())
        .collect::<Vec<_>>()
        .join("\n");
    let context = context(&fixture, json!({}));
    let first = context.lines().next().unwrap_or_default();
    assert_eq!(
        first, "Definition src/util/noop.ts:1-1 function 0.75",
        "{context}"
    );
}

#[test]
fn python_from_import_resolves_to_the_module_file() {
    check(
        r#"
        //- app/models.py
        class User:
            def __init__(self, name: str, email: str):
                self.name = name
                self.email = email

            def display(self) -> str:
                return f"{self.name} <{self.email}>"
        //- app/views.py
        from .models import User

        def show(user_id):
            user = User(name="a", email="b")
            return user.$0
        "#,
        expect![[r#"
            Definition app/models.py:1-7 class 0.75
              | class User:
              |     def __init__(self, name: str, email: str):
              |         self.name = name
              |         self.email = email
              | 
              |     def display(self) -> str:
              |         return f"{self.name} <{self.email}>"
        "#]],
    );
}

#[test]
fn typescript_and_go_definitions_across_files() {
    check(
        r#"
        //- src/router.ts
        export interface Route {
          path: string;
          handler: (req: Request) => Response;
        }

        export function addRoute(routes: Route[], route: Route): Route[] {
          return [...routes, route];
        }
        //- src/app.ts
        import { addRoute, Route } from "./router";

        const routes: Route[] = [];
        const next = addRoute($0
        "#,
        expect![[r#"
            Definition src/router.ts:6-8 function 0.75
              | export function addRoute(routes: Route[], route: Route): Route[] {
              |   return [...routes, route];
              | }
            Definition src/router.ts:1-4 interface 0.69
              | export interface Route {
              |   path: string;
              |   handler: (req: Request) => Response;
              | }
        "#]],
    );
    check(
        r#"
        //- cache/lru.go
        package cache

        type LRU struct {
            capacity int
            items    map[string]string
        }

        func NewLRU(capacity int) *LRU {
            return &LRU{capacity: capacity, items: map[string]string{}}
        }
        //- main.go
        package main

        import "example.com/app/cache"

        func main() {
            c := cache.NewLRU($0
        }
        "#,
        expect![[r#"
            Definition cache/lru.go:8-10 function 0.75
              | func NewLRU(capacity int) *LRU {
              |     return &LRU{capacity: capacity, items: map[string]string{}}
              | }
        "#]],
    );
}

#[test]
fn sources_can_be_turned_off() {
    let fixture = r#"
        //- src/store.rs
        pub struct Store {
            items: Vec<u64>,
        }
        //- src/main.rs
        use crate::store::Store;

        fn main() {
            let s = Store$0
        }
        "#;
    assert!(context(fixture, json!({})).contains("pub struct Store {"));
    assert_eq!(
        context(fixture, json!({"context": {"sources": ["similar"]}})),
        ""
    );
    assert_eq!(context(fixture, json!({"context": {"sources": []}})), "");
}

#[test]
fn a_definition_too_large_for_the_budget_goes_in_as_its_signature() {
    let body: String = (0..12).map(|i| format!("    field_{i}: u64,\n")).collect();
    let fixture = format!(
        "//- src/big.rs\npub struct Big {{\n{body}}}\n//- src/main.rs\nuse crate::big::Big;\nfn f(b: Big) {{\n    b.$0\n}}\n"
    );
    // A window so small that only the bare signature fits the snippet share.
    let small = json!({"backend": {"contextWindow": 170, "maxTokens": 16}, "context": {"snippetShare": 0.5}});
    let out = context(&fixture, small);
    assert!(out.contains("  | pub struct Big\n"), "{out}");
    assert!(!out.contains("field_3"), "{out}");
}
