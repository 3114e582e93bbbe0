//! Outline parsing ([`tandem_syntax::parse_outline`]) finds what a full parse finds, except
//! definitions nested in function bodies: fixtures per language full of what can fool a
//! scanner (braces in strings, comments, characters, regular expressions, templates, raw
//! strings, preprocessor lines, initializers).

use tandem_syntax::{DefKind, Definition, Language, definitions, imports, parse_outline};

/// What is compared of a definition.
fn key(d: &Definition) -> String {
    format!(
        "{} {}::{} {}-{} {:?}",
        d.kind.as_str(),
        d.container.as_deref().unwrap_or(""),
        d.name,
        d.start_line,
        d.end_line,
        d.signature
    )
}

#[track_caller]
fn check(language: Language, source: &str) {
    let outline = parse_outline(language, source.as_bytes()).expect("grammar loads");
    assert!(
        !outline.is_full(),
        "{}: the outline must leave bodies out for this test to mean anything",
        language.name()
    );
    let full = definitions(language, source);
    let bodies: Vec<_> = full
        .iter()
        .filter(|d| matches!(d.kind, DefKind::Function | DefKind::Method))
        .map(|d| d.byte_range.clone())
        .collect();
    // JavaScript reads the outermost function bodies (objects built in factory functions).
    let kept_levels = usize::from(language == Language::JavaScript);
    let expected: Vec<String> = full
        .iter()
        .filter(|d| {
            bodies
                .iter()
                .filter(|b| {
                    b.start < d.byte_range.start && d.byte_range.end <= b.end && **b != d.byte_range
                })
                .count()
                <= kept_levels
        })
        .map(key)
        .collect();
    let got: Vec<String> = outline
        .definitions(language, source.as_bytes())
        .iter()
        .map(key)
        .collect();
    assert_eq!(got, expected, "{}", language.name());
    assert!(!got.is_empty());
    assert_eq!(
        outline.imports(language, source.as_bytes()),
        imports(language, source),
        "{}",
        language.name()
    );
}

#[test]
fn rust() {
    check(
        Language::Rust,
        r##"
use std::fmt;

const TABLE: &[(char, char)] = &[('{', '}'), ('(', ')')];
static OPEN: [u8; 2] = [b'{', b'{'];
pub type Pair = [u8; 2];

/// Braces in strings, chars, raw strings and comments.
pub fn tricky<'a>(x: &'a str) -> &'a str {
    let _ = "}"; let _ = '}'; let _ = r#"}}"#; /* } /* nested } */ */ // }
    'outer: loop { break 'outer; }
    fn inner() {}
    x
}

impl<A, B: Fn(u8) -> u8> fmt::Debug for Wrapper<(A, B)> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{}}")
    }
}

pub enum Shape { Circle(f64), Rect { w: f64, h: f64 } }

macro_rules! square { ($x:expr) => { $x * $x }; }

mod tests {
    #[test]
    fn works() { assert_eq!(super::tricky("a"), "a"); }
}

pub trait Draw { fn draw(&self) { let _ = '{'; } fn size(&self) -> u32; }
"##,
    );
}

#[test]
fn python() {
    check(
        Language::Python,
        r#"
import os
from typing import (
    Dict,
    List,
)

LIMIT = 10

def plain(a, b=lambda x: x):
    text = """
not indented: def fake():
"""
    def nested():
        return a
    return {"}": (b,
  a)}

@decorator(arg=1)
async def decorated(x: Dict[str, int]) -> List[int]:  # comment
    return [
1]

class Outer(Base):
    """Doc."""
    FIELD = 1

    def method(self):
        if True:
            pass
        # trailing comment

    class Inner:
        def deep(self): return 1

def one_liner(): return 0

def last():
    x = 1
    return x \
        + 1
"#,
    );
}

#[test]
fn javascript() {
    check(
        Language::JavaScript,
        r#"
import { a } from "./a.js";
const b = require("./b");

const re = /[{}]/g;
const half = 4 / 2; const quarter = half / 2;

export function tpl(x) {
  const s = `}${x ? `{${"}"}` : "{"}}`;
  const r = /\/}/;
  return s.replace(/{/g, "}");
}

export const arrow = async (y) => {
  function visible() { function hidden() {} }
  return y;
};

export function factory() {
  function inject(opts) { return opts; }
  return { inject, ready() { return '}'; } };
}

class Widget extends Base {
  static defaults = { size: 1 };
  render() { return `<p>}</p>`; }
  get value() { return this.v; }
}

module.exports = {
  helper() { return '{'; },
  other: function () { return "}"; },
};

(function (root) {
  function umdInner() {}
  root.x = umdInner;
})(this);
"#,
    );
}

#[test]
fn typescript() {
    check(
        Language::TypeScript,
        r#"
import type { T } from "./t";

export interface Shape { area(): number; sides?: { n: number } }
export type Fn = (x: number) => { y: string };
export enum Color { Red, Green }

export function parse(input: string): { ok: boolean } {
  const m = input.match(/[{]/);
  return { ok: m !== null };
}

export class Parser<T> implements Shape {
  constructor(private readonly text: string) {}
  area(): number { return `${this.text}}`.length; }
}

declare module "ext" {
  export function ext(): void;
}

namespace NS { export const inner = 1; }
"#,
    );
}

#[test]
fn go() {
    check(
        Language::Go,
        r#"
package main

import (
	"fmt"
	"strings"
)

type Point struct {
	X, Y int `json:"x}"`
}

type Shape interface {
	Area() float64
}

var table = map[string]func() int{
	"a": func() int { return '}' },
}

func (p *Point) String() string {
	s := `}`
	type local struct{}
	return fmt.Sprintf("{%d}", p.X) + s + strings.Repeat("{", 2)
}

func main() {
	fmt.Println(Point{1, 2})
}
"#,
    );
}

#[test]
fn java() {
    check(
        Language::Java,
        r#"
package a.b;

import java.util.List;

@Annotation(value = "}")
public class Outer<T extends Comparable<T>> {
    private static final String BRACE = "{";
    private final int[] table = { 1, 2, 3 };
    private final String block = """
        } text block {
        """;

    public Outer() { char c = '}'; }

    public List<T> items() throws Exception {
        Runnable r = () -> { class Local {} };
        return null;
    }

    enum Kind { A("x"), B; Kind() {} Kind(String s) {} }

    interface Visitor { void visit(Outer<?> o); }

    record Pair(int a, int b) { Pair { assert a < b; } }
}
"#,
    );
}

#[test]
fn c() {
    check(
        Language::C,
        r#"
#include <stdio.h>
#include "util.h"

#define OPEN {
#define CLOSE(x) \
    }

static const int table[] = { 1, 2, '}' };

struct point { int x; int y; };

typedef struct { char c; } box;

int add(int a, int b) {
    const char *s = "}";
    char c = '{';
#if 0
    }
#endif
    return a + b;
}

static void (*handler)(int);

int main(int argc, char **argv)
{
    return add(argc, 1);
}
"#,
    );
}

#[test]
fn cpp() {
    check(
        Language::Cpp,
        r#"
#include <vector>

namespace geo {

template <typename T>
class Box : public Base {
public:
    Box() : size_(0), items_{} {}
    T get() const { return R"x(})x"[0]; }
private:
    int size_;
};

int area(int w, int h) { return w * h * 1'000; }

}  // namespace geo

extern "C" {
int c_api(void);
}

auto lambda = [](int x) { return x + '}'; };
"#,
    );
}

#[test]
fn c_conditionals_read_first_branch_only() {
    // Both branches open a brace: a full parse loses `add`; the outline reads the first
    // branch, as ctags does.
    let source = "int add(int a, int b) {\n#ifdef WIDE\n    if (a) {\n#else\n    if (b) {\n#endif\n        a++;\n    }\n    return a + b;\n}\n\nint main(void) { return add(1, 2); }\n";
    let outline = parse_outline(Language::C, source.as_bytes()).expect("parses");
    assert!(!outline.is_full());
    let found: Vec<String> = outline
        .definitions(Language::C, source.as_bytes())
        .iter()
        .map(key)
        .collect();
    assert_eq!(
        found,
        [
            "function ::add 0-9 \"int add(int a, int b)\"",
            "function ::main 11-11 \"int main(void)\""
        ]
    );
}

#[test]
fn cpp_header_is_detected() {
    assert_eq!(
        Language::from_path_and_text("a/box.h", "#pragma once\nnamespace geo {\n}\n"),
        Some(Language::Cpp)
    );
    assert_eq!(
        Language::from_path_and_text("a/box.h", "struct s { int x; };\n"),
        Some(Language::C)
    );
}

#[test]
fn files_without_bodies_are_parsed_whole() {
    let outline =
        parse_outline(Language::C, b"struct s { int x; };\nint f(void);\n").expect("parses");
    assert!(outline.is_full());
    assert!(!outline.fell_back());
    assert_eq!(
        outline
            .definitions(Language::C, b"struct s { int x; };\nint f(void);\n")
            .len(),
        2
    );
}

#[test]
fn errors_of_the_file_itself_keep_the_outline() {
    // A C macro the grammar cannot see through: the error is not at a body's edge.
    let source = "int ZEXPORT f(int a) {\n  return a;\n}\n\nint g(void) {\n  return 0;\n}\n";
    let outline = parse_outline(Language::C, source.as_bytes()).expect("parses");
    assert!(!outline.is_full());
    assert!(outline.tree().root_node().has_error());
    let names: Vec<String> = outline
        .definitions(Language::C, source.as_bytes())
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(names.contains(&"g".to_owned()), "{names:?}");
}
