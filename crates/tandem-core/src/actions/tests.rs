//! Fixture tests: a document with a `$0` cursor (or `$0…$1` selection), an action, a model
//! reply; out comes the document with the edits applied, and the edits themselves must touch
//! only the lines that change.

use std::collections::HashMap;

use expect_test::{Expect, expect};

use super::*;

#[derive(Default)]
struct Files {
    files: HashMap<String, String>,
    dirs: Vec<String>,
    /// The diagnostics sent with the request (not files, but part of the fixture's world).
    diagnostics: Vec<DiagnosticNote>,
}

impl TestFiles for Files {
    fn read(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
    fn dir_exists(&self, path: &str) -> bool {
        path.is_empty() || self.dirs.iter().any(|d| d == path)
    }
}

/// The text without markers, the cursor line and the selected lines.
fn parse(fixture: &str) -> (String, usize, Option<(usize, usize)>) {
    let line_of = |at: usize| fixture[..at].matches('\n').count();
    let start = fixture.find("$0").expect("a $0 marker");
    let end = fixture.find("$1");
    let text = fixture.replace("$0", "").replace("$1", "");
    let selection = end.map(|e| (line_of(start), line_of(e)));
    (text, line_of(start), selection)
}

fn context<'a>(
    language: &'a str,
    path: &'a str,
    text: &'a str,
    cursor: usize,
    selection: Option<(usize, usize)>,
    diagnostics: &'a [DiagnosticNote],
) -> ActionContext<'a> {
    ActionContext {
        language,
        path,
        text,
        selection,
        cursor_line: cursor,
        diagnostics,
        snippets: &[],
    }
}

/// Runs `kind` on the fixture with `reply`; the result shows the changed document.
#[track_caller]
fn check_with(
    language: &str,
    path: &str,
    fixture: &str,
    kind: ActionKind,
    files: &Files,
    reply: &str,
    expect: Expect,
) {
    let (text, cursor, selection) = parse(fixture);
    let ctx = context(language, path, &text, cursor, selection, &files.diagnostics);
    let plan = plan(&ctx, kind, &[], files, None).expect("a plan");
    let outcome = finish(&plan, language, &text, reply).expect("edits");
    let shown = match &outcome.change {
        FileChange::Document(edits) => {
            let after = diff::apply(&text, edits);
            // Only changed lines are touched: no edit spans an unchanged line.
            for e in edits {
                let old: String = text.chars().skip(e.start).take(e.end - e.start).collect();
                assert_ne!(old, e.text, "an edit that changes nothing: {e:?}");
            }
            after
        }
        FileChange::Create { path, text } => format!("create {path}:\n{text}"),
        FileChange::Other { path, text, edits } => {
            format!("edit {path}:\n{}", diff::apply(text, edits))
        }
    };
    expect.assert_eq(&shown);
}

#[track_caller]
fn check(language: &str, path: &str, fixture: &str, kind: ActionKind, reply: &str, expect: Expect) {
    check_with(
        language,
        path,
        fixture,
        kind,
        &Files::default(),
        reply,
        expect,
    );
}

/// Runs `kind` on the fixture with `reply`; the action must be refused, with this message.
#[track_caller]
fn check_refused(
    language: &str,
    path: &str,
    fixture: &str,
    kind: ActionKind,
    reply: &str,
    expect: Expect,
) {
    let (text, cursor, selection) = parse(fixture);
    let ctx = context(language, path, &text, cursor, selection, &[]);
    let plan = plan(&ctx, kind, &[], &Files::default(), None).expect("a plan");
    let refused = finish(&plan, language, &text, reply).expect_err("a refusal");
    expect.assert_eq(&refused.0);
}

#[test]
fn rust_doc_goes_above_the_attributes() {
    check(
        "rust",
        "src/lib.rs",
        "use std::fmt;\n\n#[inline]\npub fn add(a: i32, b: i32) -> i32 {\n    a +$0 b\n}\n",
        ActionKind::Document,
        "Sure!\n```rust\n/// Adds two numbers.\n///\n/// Returns the sum.\npub fn add(a: i32, b: i32) -> i32 {\n```",
        expect![[r#"
            use std::fmt;

            /// Adds two numbers.
            ///
            /// Returns the sum.
            #[inline]
            pub fn add(a: i32, b: i32) -> i32 {
                a + b
            }
        "#]],
    );
}

#[test]
fn rust_doc_update_replaces_only_changed_lines() {
    let fixture = "impl A {\n    /// Adds.\n    /// Old line.\n    pub fn add(&self) -> i32 {$0\n        1\n    }\n}\n";
    let (text, cursor, _) = parse(fixture);
    let ctx = context("rust", "src/a.rs", &text, cursor, None, &[]);
    let offered = offers(&ctx, &[]);
    assert_eq!(
        offered[0].title,
        "Tandem: Update the documentation of `add`"
    );
    let plan = plan(&ctx, ActionKind::Document, &[], &Files::default(), None).expect("plan");
    let outcome = finish(
        &plan,
        "rust",
        &text,
        "```rust\n/// Adds.\n/// New line.\n```",
    )
    .expect("edits");
    let FileChange::Document(edits) = outcome.change else {
        panic!("document edits")
    };
    assert_eq!(edits.len(), 1);
    expect![[r#"
        impl A {
            /// Adds.
            /// New line.
            pub fn add(&self) -> i32 {
                1
            }
        }
    "#]]
    .assert_eq(&diff::apply(&text, &edits));
}

#[test]
fn python_docstring_goes_inside_the_body() {
    check(
        "python",
        "calc.py",
        "class Calc:\n    def add(self, a,\n            b):\n        return a +$0 b\n",
        ActionKind::Document,
        "```python\n\"\"\"Add two numbers.\n\nReturns their sum.\n\"\"\"\n```",
        expect![[r#"
            class Calc:
                def add(self, a,
                        b):
                    """Add two numbers.

                    Returns their sum.
                    """
                    return a + b
        "#]],
    );
}

#[test]
fn typescript_jsdoc_and_prose_replies() {
    check(
        "typescript",
        "src/sum.ts",
        "export function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b$0, 0);\n}\n",
        ActionKind::Document,
        "```ts\n/**\n * Sums the numbers.\n * @param xs the numbers\n * @returns their sum\n */\nexport function sum(xs: number[]): number {\n```",
        expect![[r#"
            /**
             * Sums the numbers.
             * @param xs the numbers
             * @returns their sum
             */
            export function sum(xs: number[]): number {
              return xs.reduce((a, b) => a + b, 0);
            }
        "#]],
    );
    check(
        "javascript",
        "src/sum.js",
        "class A {\n  total(x) {\n    return x;$0\n  }\n}\n",
        ActionKind::Document,
        "Returns x unchanged.",
        expect![[r#"
            class A {
              /**
               * Returns x unchanged.
               */
              total(x) {
                return x;
              }
            }
        "#]],
    );
}

#[test]
fn go_and_java_docs() {
    check(
        "go",
        "calc/calc.go",
        "package calc\n\nfunc Add(a, b int) int {\n\treturn a + b$0\n}\n",
        ActionKind::Document,
        "```go\n// Add returns the sum of a and b.\n```",
        expect![[r#"
            package calc

            // Add returns the sum of a and b.
            func Add(a, b int) int {
            	return a + b
            }
        "#]],
    );
    check(
        "java",
        "src/main/java/calc/Calc.java",
        "public class Calc {\n    @Override\n    public int add(int a, int b) {\n        return a + b;$0\n    }\n}\n",
        ActionKind::Document,
        "```java\n/**\n * Adds.\n * @return the sum\n */\n```",
        expect![[r#"
            public class Calc {
                /**
                 * Adds.
                 * @return the sum
                 */
                @Override
                public int add(int a, int b) {
                    return a + b;
                }
            }
        "#]],
    );
}

#[test]
fn docs_with_sections_and_examples_are_accepted() {
    check(
        "rust",
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b$0\n}\n",
        ActionKind::Document,
        "````rust\n/// Adds two numbers.\n///\n/// # Examples\n///\n/// ```\n/// let sum = calc::add(1, 2);\n/// assert_eq!(sum, 3);\n/// ```\n///\n///     let indented = calc::add(0, 0);\n````",
        expect![[r#"
            /// Adds two numbers.
            ///
            /// # Examples
            ///
            /// ```
            /// let sum = calc::add(1, 2);
            /// assert_eq!(sum, 3);
            /// ```
            ///
            ///     let indented = calc::add(0, 0);
            pub fn add(a: i32, b: i32) -> i32 {
                a + b
            }
        "#]],
    );
    // The model repeated the function around its docstring: the docstring is kept.
    check(
        "python",
        "slug.py",
        "def slugify(title: str) -> str:\n    return title.lower()$0\n",
        ActionKind::Document,
        "```python\ndef slugify(title: str) -> str:\n    \"\"\"Turn a title into a URL slug.\n\n    Args:\n        title (str): The title, in any case.\n\n    Returns:\n        The title in lowercase\n\n    Example:\n        >>> slugify(\"Hello\")\n        'hello'\n        >>> slug = slugify(\"A\")\n    \"\"\"\n    return title.lower()\n```",
        expect![[r#"
            def slugify(title: str) -> str:
                """Turn a title into a URL slug.

                Args:
                    title (str): The title, in any case.

                Returns:
                    The title in lowercase

                Example:
                    >>> slugify("Hello")
                    'hello'
                    >>> slug = slugify("A")
                """
                return title.lower()
        "#]],
    );
    check(
        "typescript",
        "src/sum.ts",
        "export function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b$0, 0);\n}\n",
        ActionKind::Document,
        "```ts\n/**\n * Sums the numbers, for example:\n * @param {number[]} xs the numbers\n * @returns {number} their sum\n * @example\n * const total = sum([1, 2, 3]);\n * console.log(total);\n */\n```",
        expect![[r#"
            /**
             * Sums the numbers, for example:
             * @param {number[]} xs the numbers
             * @returns {number} their sum
             * @example
             * const total = sum([1, 2, 3]);
             * console.log(total);
             */
            export function sum(xs: number[]): number {
              return xs.reduce((a, b) => a + b, 0);
            }
        "#]],
    );
    check(
        "go",
        "calc/calc.go",
        "package calc\n\nfunc Add(a, b int) int {\n\treturn a + b$0\n}\n",
        ActionKind::Document,
        "```go\n// Add returns the sum of a and b, for example:\n//\n//\ttotal := Add(1, 2)\n//\tfmt.Println(total)\n```",
        expect![[r#"
            package calc

            // Add returns the sum of a and b, for example:
            //
            //	total := Add(1, 2)
            //	fmt.Println(total)
            func Add(a, b int) int {
            	return a + b
            }
        "#]],
    );
    check(
        "java",
        "src/main/java/calc/Calc.java",
        "public class Calc {\n    public int add(int a, int b) {\n        return a + b;$0\n    }\n}\n",
        ActionKind::Document,
        "```java\n/**\n * Adds two numbers:\n * <pre>{@code\n * int sum = calc.add(1, 2);\n * }</pre>\n * @param a the first\n * @param b the second\n * @return the sum, see {@link Math#addExact}\n */\n```",
        expect![[r#"
            public class Calc {
                /**
                 * Adds two numbers:
                 * <pre>{@code
                 * int sum = calc.add(1, 2);
                 * }</pre>
                 * @param a the first
                 * @param b the second
                 * @return the sum, see {@link Math#addExact}
                 */
                public int add(int a, int b) {
                    return a + b;
                }
            }
        "#]],
    );
}

#[test]
fn rust_code_reply_to_document_is_refused() {
    let fixture = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b$0\n}\n";
    check_refused(
        "rust",
        "src/lib.rs",
        fixture,
        ActionKind::Document,
        "```rust\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```",
        expect!["the model answered with code, not documentation for `add`"],
    );
    // Code inside doc markers is still code.
    check_refused(
        "rust",
        "src/lib.rs",
        fixture,
        ActionKind::Document,
        "```rust\n/// let sum = a + b;\n/// sum\n/// }\n```",
        expect!["the model answered with code, not documentation for `add`"],
    );
}

#[test]
fn python_code_reply_to_document_is_refused() {
    let fixture = "import re\n\ndef slugify(title: str) -> str:\n    return re.sub(r\"[^a-z0-9]+\", \"-\", title.lower())$0\n";
    check_refused(
        "python",
        "slug.py",
        fixture,
        ActionKind::Document,
        "```python\ndef slugify(title: str) -> str:\n    return re.sub(r\"[^a-z0-9]+\", \"-\", title.lower())\n```",
        expect!["the model answered with code, not documentation for `slugify`"],
    );
    // Only the body, without the signature.
    check_refused(
        "python",
        "slug.py",
        fixture,
        ActionKind::Document,
        "```python\nslug = title.lower()\nslug = re.sub(r\"[^a-z0-9]+\", \"-\", slug)\nreturn slug.strip(\"-\")\n```",
        expect!["the model answered with code, not documentation for `slugify`"],
    );
}

#[test]
fn script_code_reply_to_document_is_refused() {
    check_refused(
        "typescript",
        "src/sum.ts",
        "export function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b$0, 0);\n}\n",
        ActionKind::Document,
        "```ts\nexport function sum(xs: number[]): number {\n  return xs.reduce((a, b) => a + b, 0);\n}\n```",
        expect!["the model answered with code, not documentation for `sum`"],
    );
    check_refused(
        "javascript",
        "src/sum.js",
        "class A {\n  total(xs) {\n    return xs.length;$0\n  }\n}\n",
        ActionKind::Document,
        "```js\n/**\n * const n = xs.length;\n * return n;\n */\n```",
        expect!["the model answered with code, not documentation for `total`"],
    );
}

#[test]
fn go_code_reply_to_document_is_refused() {
    check_refused(
        "go",
        "calc/calc.go",
        "package calc\n\ntype Calc struct{}\n\nfunc (c *Calc) Add(a, b int) int {\n\treturn a + b$0\n}\n",
        ActionKind::Document,
        "```go\nfunc (c *Calc) Add(a, b int) int {\n\treturn a + b\n}\n```",
        expect!["the model answered with code, not documentation for `Add`"],
    );
}

#[test]
fn java_code_reply_to_document_is_refused() {
    check_refused(
        "java",
        "src/main/java/calc/Calc.java",
        "public class Calc {\n    public int add(int a, int b) {\n        return a + b;$0\n    }\n}\n",
        ActionKind::Document,
        "```java\npublic int add(int a, int b) {\n    return a + b;\n}\n```",
        expect!["the model answered with code, not documentation for `add`"],
    );
}

#[test]
fn rust_tests_go_into_a_new_or_the_existing_module() {
    check(
        "rust",
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b$0\n}\n",
        ActionKind::Tests,
        "```rust\n#[test]\nfn adds() {\n    assert_eq!(add(1, 2), 3);\n}\n```",
        expect![[r#"
            pub fn add(a: i32, b: i32) -> i32 {
                a + b
            }

            #[cfg(test)]
            mod tests {
                use super::*;

                #[test]
                fn adds() {
                    assert_eq!(add(1, 2), 3);
                }
            }
        "#]],
    );
    check(
        "rust",
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b$0\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn zero() {\n        assert_eq!(add(0, 0), 0);\n    }\n}\n",
        ActionKind::Tests,
        "```rust\n#[test]\nfn adds() {\n    assert_eq!(add(1, 2), 3);\n}\n```",
        expect![[r#"
            pub fn add(a: i32, b: i32) -> i32 {
                a + b
            }

            #[cfg(test)]
            mod tests {
                use super::*;

                #[test]
                fn zero() {
                    assert_eq!(add(0, 0), 0);
                }

                #[test]
                fn adds() {
                    assert_eq!(add(1, 2), 3);
                }
            }
        "#]],
    );
}

#[test]
fn tests_in_other_files_per_language() {
    let reply_py =
        "```python\nfrom calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n```";
    let fixture = "def add(a, b):\n    return a + b$0\n";
    check(
        "python",
        "calc.py",
        fixture,
        ActionKind::Tests,
        reply_py,
        expect![[r#"
            create test_calc.py:
            from calc import add

            def test_add():
                assert add(1, 2) == 3
        "#]],
    );
    let with_tests_dir = Files {
        dirs: vec!["tests".to_owned()],
        ..Files::default()
    };
    check_with(
        "python",
        "calc.py",
        fixture,
        ActionKind::Tests,
        &with_tests_dir,
        reply_py,
        expect![[r#"
            create tests/test_calc.py:
            from calc import add

            def test_add():
                assert add(1, 2) == 3
        "#]],
    );
    let existing = Files {
        files: HashMap::from([(
            "calc/calc_test.go".to_owned(),
            "package calc\n\nimport \"testing\"\n\nfunc TestZero(t *testing.T) {}\n".to_owned(),
        )]),
        ..Files::default()
    };
    check_with(
        "go",
        "calc/calc.go",
        "package calc\n\nfunc Add(a, b int) int {\n\treturn a + b$0\n}\n",
        ActionKind::Tests,
        &existing,
        "```go\npackage calc\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"sum\")\n\t}\n}\n```",
        expect![[r#"
            edit calc/calc_test.go:
            package calc

            import "testing"

            func TestZero(t *testing.T) {}

            func TestAdd(t *testing.T) {
            	if Add(1, 2) != 3 {
            		t.Fatal("sum")
            	}
            }
        "#]],
    );
    check(
        "typescript",
        "src/sum.ts",
        "export function sum(a: number, b: number) {\n  return a + b;$0\n}\n",
        ActionKind::Tests,
        "```ts\nimport { sum } from './sum';\n\ntest('sum', () => expect(sum(1, 2)).toBe(3));\n```",
        expect![[r#"
            create src/sum.test.ts:
            import { sum } from './sum';

            test('sum', () => expect(sum(1, 2)).toBe(3));
        "#]],
    );
    let java_existing = Files {
        files: HashMap::from([(
            "src/test/java/calc/CalcTest.java".to_owned(),
            "package calc;\n\nclass CalcTest {\n    @Test\n    void zero() {}\n}\n".to_owned(),
        )]),
        ..Files::default()
    };
    check_with(
        "java",
        "src/main/java/calc/Calc.java",
        "public class Calc {\n    public int add(int a, int b) {\n        return a + b;$0\n    }\n}\n",
        ActionKind::Tests,
        &java_existing,
        "```java\n@Test\nvoid adds() {\n    assertEquals(3, new Calc().add(1, 2));\n}\n```",
        expect![[r#"
            edit src/test/java/calc/CalcTest.java:
            package calc;

            class CalcTest {
                @Test
                void zero() {}

                @Test
                void adds() {
                    assertEquals(3, new Calc().add(1, 2));
                }
            }
        "#]],
    );
}

#[test]
fn fix_replaces_the_function_minimally() {
    let files = Files {
        diagnostics: vec![DiagnosticNote {
            line: 2,
            message: "cannot find value `c` in this scope".to_owned(),
        }],
        ..Files::default()
    };
    check_with(
        "rust",
        "src/lib.rs",
        "fn f(a: i32) -> i32 {\n    let b = a * 2;\n    b + c$0\n}\n",
        ActionKind::Fix,
        &files,
        "```rust\nfn f(a: i32) -> i32 {\n    let b = a * 2;\n    b + a\n}\n```",
        expect![[r#"
            fn f(a: i32) -> i32 {
                let b = a * 2;
                b + a
            }
        "#]],
    );
}

#[test]
fn refactor_selection_keeps_indentation() {
    check(
        "python",
        "calc.py",
        "def f(xs):\n    $0out = []\n    for x in xs:\n        out.append(x * 2)$1\n    return out\n",
        ActionKind::Refactor,
        "```python\nout = [x * 2 for x in xs]\n```",
        expect![[r#"
            def f(xs):
                out = [x * 2 for x in xs]
                return out
        "#]],
    );
}

#[test]
fn explain_is_a_comment_block_above() {
    check(
        "go",
        "calc/calc.go",
        "package calc\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b$0\n}\n",
        ActionKind::Explain,
        "Add returns the sum of its arguments.\nIt cannot overflow-check.",
        expect![[r#"
            package calc

            // Add returns the sum of its arguments.
            // It cannot overflow-check.
            // Add adds.
            func Add(a, b int) int {
            	return a + b
            }
        "#]],
    );
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let (text, cursor, _) = parse("fn f() {\n    1$0\n}\n");
    let ctx = context("rust", "src/lib.rs", &text, cursor, None, &[]);
    let files = Files::default();
    let e = plan(&ctx, ActionKind::Refactor, &[], &files, None).expect_err("no selection");
    assert_eq!(e.0, "Select the code to refactor first");
    let e = plan(&ctx, ActionKind::Fix, &[], &files, None).expect_err("no diagnostics");
    assert_eq!(e.0, "There is no diagnostic here to fix");
    let p = plan(&ctx, ActionKind::Document, &[], &files, None).expect("plan");
    let e = finish(&p, "rust", &text, "I am not sure what you mean.").expect_err("prose");
    assert!(e.0.contains("no code"), "{e}");
    let e = finish(&p, "rust", &text, "").expect_err("empty");
    assert!(e.0.contains("empty"), "{e}");
    let e =
        finish(&p, "rust", &text, "```rust\nfn f() {\n    2\n}\n```").expect_err("code, no doc");
    assert_eq!(
        e.0,
        "the model answered with code, not documentation for `f`"
    );
}

#[test]
fn offers_depend_on_the_position() {
    let custom = vec![
        CustomAction {
            title: "Make it async".to_owned(),
            prompt: "Make {code} async".to_owned(),
            languages: vec!["rust".to_owned()],
            needs_selection: true,
        },
        CustomAction {
            title: "Pythonic".to_owned(),
            prompt: "{code}".to_owned(),
            languages: vec!["python".to_owned()],
            needs_selection: false,
        },
    ];
    let (text, cursor, _) = parse("fn f() {\n    1$0\n}\n");
    let ctx = context("rust", "src/lib.rs", &text, cursor, None, &[]);
    let shown: Vec<String> = offers(&ctx, &custom)
        .iter()
        .map(|o| {
            format!(
                "{} {}{}",
                o.kind.id(),
                o.title,
                o.disabled
                    .as_deref()
                    .map(|d| format!(" (disabled: {d})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    expect![[r#"
        document Tandem: Document `f`
        tests Tandem: Generate tests for `f`
        refactor Tandem: Refactor selection (disabled: Select the code to refactor first)
        explain Tandem: Explain `f`
        custom:0 Make it async (disabled: Select the code first)"#]]
    .assert_eq(&shown.join("\n"));
    let diags = [DiagnosticNote {
        line: 1,
        message: "mismatched types".to_owned(),
    }];
    let ctx = ActionContext {
        selection: Some((1, 1)),
        diagnostics: &diags,
        ..ctx
    };
    let kinds: Vec<String> = offers(&ctx, &custom).iter().map(|o| o.kind.id()).collect();
    assert_eq!(
        kinds,
        [
            "document", "tests", "fix", "refactor", "explain", "custom:0"
        ]
    );
    for kind in [
        "document", "tests", "fix", "refactor", "explain", "custom:3",
    ] {
        assert_eq!(
            ActionKind::parse(kind).map(ActionKind::id).as_deref(),
            Some(kind)
        );
    }
    assert_eq!(ActionKind::parse("custom:x"), None);
}

#[test]
fn custom_action_replaces_the_selection() {
    let custom = vec![CustomAction {
        title: "Checked".to_owned(),
        prompt: "Use checked arithmetic in this {language}: {selection}".to_owned(),
        languages: vec![],
        needs_selection: true,
    }];
    let (text, cursor, selection) = parse("fn f(a: u8) -> u8 {\n    $0a + 1$1\n}\n");
    let ctx = context("rust", "src/lib.rs", &text, cursor, selection, &[]);
    let plan = plan(
        &ctx,
        ActionKind::Custom(0),
        &custom,
        &Files::default(),
        None,
    )
    .expect("plan");
    assert!(
        plan.prompt
            .user
            .starts_with("Use checked arithmetic in this rust:     a + 1")
    );
    let out = finish(&plan, "rust", &text, "```rust\na.saturating_add(1)\n```").expect("edits");
    let FileChange::Document(edits) = out.change else {
        panic!("document edits")
    };
    assert_eq!(
        diff::apply(&text, &edits),
        "fn f(a: u8) -> u8 {\n    a.saturating_add(1)\n}\n"
    );
}

#[test]
fn refine_replaces_the_previous_result() {
    let (text, cursor, _) = parse("/// Adds.\nfn add() {}$0\n");
    let ctx = context("rust", "src/lib.rs", &text, cursor, None, &[]);
    let refinement = Refinement {
        region: (0, 1),
        previous: "/// Adds.",
        instruction: "shorter",
    };
    let plan = plan(
        &ctx,
        ActionKind::Document,
        &[],
        &Files::default(),
        Some(&refinement),
    )
    .expect("plan");
    assert!(plan.prompt.user.contains("Revise it: shorter."));
    let out = finish(&plan, "rust", &text, "```rust\n/// Sum.\n```").expect("edits");
    let FileChange::Document(edits) = out.change else {
        panic!("document edits")
    };
    assert_eq!(diff::apply(&text, &edits), "/// Sum.\nfn add() {}\n");
}
