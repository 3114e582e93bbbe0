//! Definitions and imports per language, as snapshots: one line per definition
//! (`kind container::name lines: signature`), one per import.

use expect_test::{Expect, expect};
use tandem_syntax::{Language, definitions, imports};

#[track_caller]
fn check(language: Language, source: &str, expect: Expect) {
    let mut out = String::new();
    for d in definitions(language, source) {
        let container = d.container.map(|c| format!("{c}::")).unwrap_or_default();
        let signature = d.signature.replace('\n', "⏎");
        out.push_str(&format!(
            "{} {container}{} {}-{}: {signature}\n",
            d.kind.as_str(),
            d.name,
            d.start_line,
            d.end_line
        ));
    }
    for i in imports(language, source) {
        let system = if i.system { " (system)" } else { "" };
        out.push_str(&format!(
            "import {} [{}]{system}\n",
            i.module,
            i.names.join(", ")
        ));
    }
    expect.assert_eq(&out);
}

#[test]
fn rust() {
    check(
        Language::Rust,
        r#"
use crate::engine::{Engine, Input};
use std::fmt;
use std::collections::{hash_map::Entry, HashMap as Map, self};
use serde::*;
extern crate alloc;

/// Docs.
#[derive(Debug)]
pub struct Point<T> {
    x: T,
}

pub struct Unit;

enum Shape { Circle, Square }

pub const MAX: usize = 10;
static NAME: &str = "x";
type Pair = (u32, u32);

pub trait Area {
    type Output;
    fn area(&self) -> f64;
    fn describe(&self) -> String {
        String::new()
    }
}

impl<T: Clone> Point<T>
where
    T: Default,
{
    #[inline]
    pub fn new(
        x: T,
    ) -> Self {
        fn helper() {}
        Point { x }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { Ok(()) }
}

mod inner {
    pub fn free() {}
}

macro_rules! square {
    ($x:expr) => { $x * $x };
}

union Bits { i: u32, f: f32 }
"#,
        expect![[r#"
            struct Point 9-11: pub struct Point<T>
            struct Unit 13-13: pub struct Unit;
            enum Shape 15-15: enum Shape
            constant MAX 17-17: pub const MAX: usize = 10;
            constant NAME 18-18: static NAME: &str = "x";
            typeAlias Pair 19-19: type Pair = (u32, u32);
            trait Area 21-27: pub trait Area
            typeAlias Area::Output 22-22: type Output;
            method Area::area 23-23: fn area(&self) -> f64;
            method Area::describe 24-26: fn describe(&self) -> String
            method Point::new 34-39: pub fn new(⏎        x: T,⏎    ) -> Self
            function Point::helper 37-37: fn helper()
            method Shape::fmt 43-43: fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result
            module inner 46-48: mod inner
            function inner::free 47-47: pub fn free()
            macro square 50-52: macro_rules! square
            union Bits 54-54: union Bits
            import crate::engine [Engine, Input]
            import std [fmt]
            import std::collections::hash_map [Entry]
            import std::collections [HashMap]
            import serde []
            import alloc []
        "#]],
    );
}

#[test]
fn python() {
    check(
        Language::Python,
        r#"
import os.path, sys as system
from .util import helper, other as o
from typing import *
from __future__ import annotations

MAX_SIZE = 10
_PRIVATE_LIMIT = 3
lower = 1

class Engine(Base):
    RATE = 2

    @property
    def name(self) -> str:
        def inner():
            pass
        return "x"

    class Config:
        def load(self,
                 path):
            pass

@decorator
def run(engine: Engine,
        *args) -> None:
    pass

type Alias = list[int]
"#,
        expect![[r#"
            constant MAX_SIZE 6-6: MAX_SIZE = 10
            constant _PRIVATE_LIMIT 7-7: _PRIVATE_LIMIT = 3
            class Engine 10-22: class Engine(Base):
            method Engine::name 14-17: def name(self) -> str:
            function Engine::inner 15-16: def inner():
            class Engine::Config 19-22: class Config:
            method Config::load 20-22: def load(self,⏎                 path):
            function run 25-27: def run(engine: Engine,⏎        *args) -> None:
            typeAlias Alias 29-29: type Alias = list[int]
            import os.path []
            import sys []
            import .util [helper, other]
            import typing []
            import __future__ [annotations]
        "#]],
    );
}
