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

#[test]
fn javascript() {
    check(
        Language::JavaScript,
        r#"
import React, { useState, useEffect as effect } from "react";
import * as path from 'path';
import "./side-effect.css";
export { helper } from "./helper";
const fs = require("fs");

export const MAX = 10;
const add = (a, b) => a + b;
let counter = 0;

export function render(props = {}) {
  return <div>{props.name}</div>;
}

function* ids() {}

class Store extends Base {
  constructor(items) {
    super();
  }

  get size() { return 0; }

  static create() {
    return new Store([]);
  }
}

export default class {
  run() {}
}
"#,
        expect![[r#"
            constant fs 5-5: const fs = require("fs");
            constant MAX 7-7: export const MAX = 10;
            function add 8-8: const add = (a, b) => a + b;
            function render 11-13: export function render(props = {})
            function ids 15-15: function* ids()
            class Store 17-27: class Store extends Base
            method Store::constructor 18-20: constructor(items)
            method Store::size 22-22: get size()
            method Store::create 24-26: static create()
            method run 30-30: run()
            import react [React, useState, useEffect]
            import path []
            import ./side-effect.css []
            import ./helper [helper]
            import fs []
        "#]],
    );
}

#[test]
fn typescript() {
    check(
        Language::TypeScript,
        r#"
import type { Config } from "./config";
import fs = require("fs");

export interface Shape {
  area(): number;
  readonly name: string;
}

type Id = string | number;

enum Color { Red, Green }

declare function external(x: number): void;

export abstract class Base<T> implements Shape {
  abstract area(): number;
  handle = (e: Event): void => {};
  get name(): string { return ""; }
  protected compute(input: { a: number }): { b: number } {
    return { b: input.a };
  }
}

namespace Geometry {
  export function origin(): Point { return { x: 0, y: 0 }; }
}

@Component({ selector: "app" })
class Widget {}

export const handler = async (req: Request): Promise<void> => {};
"#,
        expect![[r#"
            interface Shape 4-7: export interface Shape
            method Shape::area 5-5: area(): number
            typeAlias Id 9-9: type Id = string | number;
            enum Color 11-11: enum Color
            function external 13-13: function external(x: number): void;
            class Base 15-22: export abstract class Base<T> implements Shape
            method Base::area 16-16: abstract area(): number
            method Base::handle 17-17: handle = (e: Event): void =>
            method Base::name 18-18: get name(): string
            method Base::compute 19-21: protected compute(input: { a: number }): { b: number }
            module Geometry 24-26: namespace Geometry
            function Geometry::origin 25-25: export function origin(): Point
            class Widget 29-29: class Widget
            function handler 31-31: export const handler = async (req: Request): Promise<void> =>
            import ./config [Config]
            import fs []
        "#]],
    );
}

#[test]
fn tsx() {
    check(
        Language::Tsx,
        r#"
import { h } from "preact";

interface Props { title: string }

export function Title({ title }: Props) {
  return <h1 className="title">{title}</h1>;
}

export const Page = () => <main><Title title="x" /></main>;
"#,
        expect![[r#"
            interface Props 3-3: interface Props
            function Title 5-7: export function Title({ title }: Props)
            function Page 9-9: export const Page = () => <main><Title title="x" /></main>;
            import preact [h]
        "#]],
    );
}

#[test]
fn go() {
    check(
        Language::Go,
        r#"
package engine

import "fmt"

import (
	"context"
	str "strings"
	"github.com/x/y"
)

const MaxSize = 10

const (
	A = iota
	B
)

type Engine struct {
	name string
}

type Reader interface {
	Read(p []byte) (n int, err error)
}

type ID int

type Alias = Engine

func New(name string) *Engine {
	return &Engine{name: name}
}

func (e *Engine) Run(ctx context.Context) error {
	return nil
}

func (l List[T]) Len() int { return 0 }
"#,
        expect![[r#"
            constant MaxSize 11-11: const MaxSize = 10
            constant A 14-14: A = iota
            constant B 15-15: B
            struct Engine 18-20: type Engine struct
            interface Reader 22-24: type Reader interface
            method Reader::Read 23-23: Read(p []byte) (n int, err error)
            typeAlias ID 26-26: type ID int
            typeAlias Alias 28-28: type Alias = Engine
            function New 30-32: func New(name string) *Engine
            method Engine::Run 34-36: func (e *Engine) Run(ctx context.Context) error
            method List::Len 38-38: func (l List[T]) Len() int
            import fmt []
            import context []
            import strings []
            import github.com/x/y []
        "#]],
    );
}

#[test]
fn java() {
    check(
        Language::Java,
        r#"
package com.example;

import java.util.List;
import java.util.*;
import static org.junit.Assert.assertEquals;

/** Docs. */
@Service
public class Engine extends Base implements Runnable {
    public static final int MAX = 10;
    private final int size = 1;
    private static int counter;

    public Engine(int size) {
        this.size = size;
    }

    @Override
    public void run() {
    }

    static class Config {
        String load(String path) { return path; }
    }
}

interface Shape {
    int SIDES = 4;
    double area();
}

enum Color { RED, GREEN; Color next() { return RED; } }

record Point(int x, int y) {}
"#,
        expect![[r#"
            class Engine 9-25: public class Engine extends Base implements Runnable
            constant Engine::MAX 10-10: public static final int MAX = 10;
            method Engine::Engine 14-16: public Engine(int size)
            method Engine::run 19-20: public void run()
            class Engine::Config 22-24: static class Config
            method Config::load 23-23: String load(String path)
            interface Shape 27-30: interface Shape
            constant Shape::SIDES 28-28: int SIDES = 4;
            method Shape::area 29-29: double area();
            enum Color 32-32: enum Color
            method Color::next 32-32: Color next()
            class Point 34-34: record Point(int x, int y)
            import java.util.List []
            import java.util []
            import org.junit.Assert.assertEquals []
        "#]],
    );
}

#[test]
fn c() {
    check(
        Language::C,
        r#"
#include <stdio.h>
#include "util.h"

#define MAX 10
#define SQUARE(x) ((x) * (x))

struct point {
    int x;
    int y;
};

typedef struct {
    int w;
} size_t2;

typedef int (*callback)(int);

union value { int i; float f; };

enum color { RED, GREEN };

int add(int a, int b);
static char *name(void);
int (*handler)(int);
int counter = 0;

int
main(int argc, char **argv)
{
    struct point p = {0};
    return add(p.x, p.y);
}

static char *name(void) { return "x"; }
"#,
        expect![[r#"
            constant MAX 4-4: #define MAX 10
            macro SQUARE 5-5: #define SQUARE(x) ((x) * (x))
            struct point 7-10: struct point
            typeAlias size_t2 12-14: typedef struct {⏎    int w;⏎} size_t2;
            typeAlias callback 16-16: typedef int (*callback)(int);
            union value 18-18: union value
            enum color 20-20: enum color
            function add 22-22: int add(int a, int b);
            function name 23-23: static char *name(void);
            function main 27-32: int⏎main(int argc, char **argv)
            function name 34-34: static char *name(void)
            import stdio.h [] (system)
            import util.h []
        "#]],
    );
}

#[test]
fn cpp() {
    check(
        Language::Cpp,
        r#"
#include <vector>
#include "engine.hpp"

namespace tandem {

class Engine : public Base {
public:
    Engine() : size_{0} {}
    ~Engine();
    int run(int steps) const;
    int size() const { return size_; }
private:
    int size_;
};

template <typename T>
struct Box {
    T value;
};

using Id = long;

int Engine::run(int steps) const {
    return steps;
}

Engine::~Engine() {}

}  // namespace tandem

template <typename T>
T max(T a, T b) { return a > b ? a : b; }
"#,
        expect![[r#"
            module tandem 4-29: namespace tandem
            class tandem::Engine 6-14: class Engine : public Base
            method Engine::Engine 8-8: Engine() : size_{0}
            method Engine::~Engine 9-9: ~Engine();
            method Engine::run 10-10: int run(int steps) const;
            method Engine::size 11-11: int size() const
            struct tandem::Box 16-19: template <typename T>⏎struct Box
            typeAlias tandem::Id 21-21: using Id = long;
            method Engine::run 23-25: int Engine::run(int steps) const
            method Engine::~Engine 27-27: Engine::~Engine()
            function max 31-32: template <typename T>⏎T max(T a, T b)
            import vector [] (system)
            import engine.hpp []
        "#]],
    );
}

#[test]
fn ranges_cover_the_whole_item_and_lines_start_at_the_signature() {
    let source = "x = 1\n\n@cache\n@trace(level=2)\ndef run(a):\n    return a\n";
    let defs = definitions(Language::Python, source);
    let [run] = defs.as_slice() else {
        panic!("{defs:?}")
    };
    assert_eq!(
        &source[run.byte_range.clone()],
        "@cache\n@trace(level=2)\ndef run(a):\n    return a"
    );
    assert_eq!((run.start_line, run.end_line), (4, 5));

    let source = "/// Docs.\n#[inline]\npub fn f() -> u32 {\n    1\n}\n";
    let defs = definitions(Language::Rust, source);
    let [f] = defs.as_slice() else {
        panic!("{defs:?}")
    };
    assert_eq!(
        &source[f.byte_range.clone()],
        "pub fn f() -> u32 {\n    1\n}"
    );
    assert_eq!(f.signature, "pub fn f() -> u32");
    assert_eq!((f.start_line, f.end_line), (2, 4));
    assert_eq!(f.container, None);
}
