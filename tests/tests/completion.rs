//! What is shown: the `textDocument/completion` fallback, and multi-line completions.

use serde_json::json;
use tandem_e2e::{
    Behavior, Encoding, ModelServer, TempDir, TestServer, cursor, insert_text, openai_options,
    position,
};

#[test]
fn completion_fallback_replaces_the_word_being_typed() {
    let model = ModelServer::start(Behavior::stream(&["nt(\"hi", "\")"]));
    let dir = TempDir::new("fallback");
    let uri = dir.uri("app.py");
    let (text, at) = cursor("def main():\n    pri$0\n\nmain()\n");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "python", &text);

    let pos = position(&text, at, Encoding::Utf16);
    let result = server.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": pos, "context": { "triggerKind": 1 } }),
    );
    assert_eq!(
        result["isIncomplete"], true,
        "the list is incomplete so that it follows typing: {result:#}"
    );
    let items = result["items"]
        .as_array()
        .expect("a completion list with items");
    assert_eq!(items.len(), 1, "one item: {result:#}");
    let item = &items[0];
    let edit = &item["textEdit"];
    assert_eq!(
        edit["range"],
        json!({ "start": { "line": 1, "character": 4 }, "end": pos }),
        "the edit replaces the word from its start to the cursor: {item:#}"
    );
    assert_eq!(
        edit["newText"], "print(\"hi\")",
        "the word plus the completion: {item:#}"
    );
    let filter = item["filterText"].as_str().expect("filterText is set");
    assert!(
        filter.starts_with("pri"),
        "filterText {filter:?} starts with the typed word, so the client keeps it"
    );
    assert_eq!(
        model.requests()[0].prompt(),
        "<fim_prefix>def main():\n    pri<fim_suffix>\n\nmain()\n<fim_middle>"
    );
    server.shutdown_and_exit();
}

#[test]
fn completion_with_a_trigger_character_is_automatic_and_answers_a_list() {
    let model = ModelServer::start(Behavior::stream(&["upper()"]));
    let dir = TempDir::new("fallback-auto");
    let uri = dir.uri("app.py");
    let (text, at) = cursor("name = 'x'\nname.$0\n");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "python", &text);
    let result = server.request(
        "textDocument/completion",
        json!({
            "textDocument": { "uri": uri },
            "position": position(&text, at, Encoding::Utf16),
            "context": { "triggerKind": 2, "triggerCharacter": "." },
        }),
    );
    let items = result["items"].as_array().expect("a completion list");
    assert_eq!(items.len(), 1, "{result:#}");
    assert_eq!(
        items[0]["textEdit"]["newText"], "upper()",
        "after `.` the word is empty: {result:#}"
    );
    server.shutdown_and_exit();
}

/// Runs one inline completion at the `$0` of `fixture` (Python) with the model streaming `chunks`.
fn inline_python(fixture: &str, chunks: &[&str]) -> Vec<String> {
    let model = ModelServer::start(Behavior::stream(chunks));
    let dir = TempDir::new("multiline");
    let uri = dir.uri("calc.py");
    let (text, at) = cursor(fixture);
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "python", &text);
    let texts = server.inline_texts(&uri, position(&text, at, Encoding::Utf16), 1);
    server.shutdown_and_exit();
    texts
}

#[test]
fn completion_starting_with_a_newline_after_a_block_opener_is_multi_line() {
    let texts = inline_python(
        "def total(items):$0\n\nprint(total([1, 2]))\n",
        &[
            "\n    s = 0\n    for i in items:\n",
            "        s += i\n    return s\n\nprint(\"unrelated\")\n",
        ],
    );
    assert_eq!(
        texts,
        vec!["\n    s = 0\n    for i in items:\n        s += i\n    return s".to_owned()],
        "shown as the block's body, starting on the next line; the next top-level statement is cut"
    );
}

#[test]
fn candidate_that_breaks_the_parse_is_not_shown() {
    let fixture = "def f(x):\n    return $0\n\nprint(f(1))\n";
    assert_eq!(
        inline_python(fixture, &["x + \"one\n"]),
        Vec::<String>::new(),
        "an unterminated string is a new syntax error"
    );
    assert_eq!(
        inline_python(fixture, &["x + \"one\"\n"]),
        vec!["x + \"one\"".to_owned()]
    );
}

#[test]
fn answer_cut_short_by_the_token_limit_shows_its_whole_lines() {
    // A model stopped by `maxTokens` in the middle of a line: the broken last line must not
    // take the good ones with it.
    let fixture = "__all__ = [$0\n]\n\n\ndef f():\n    pass\n";
    assert_eq!(
        inline_python(
            fixture,
            &[" \"__author__\",\n    \"__copyright__\",\n    \"__title"]
        ),
        vec![" \"__author__\",\n    \"__copyright__\",".to_owned()],
        "cut back to the lines that parse"
    );
    assert_eq!(
        inline_python(fixture, &[" \"__author__\",\n    \"__copyright__\","]),
        vec![" \"__author__\",\n    \"__copyright__\",".to_owned()]
    );
    // A first line that breaks the parse leaves nothing to show.
    assert_eq!(
        inline_python(fixture, &[" \"__author__,\n    \"__copyright__\","]),
        Vec::<String>::new()
    );
}

#[test]
fn candidate_that_dedents_out_of_the_block_is_cut() {
    let texts = inline_python(
        "def f(x):\n    if x > 0:\n        $0\n    return 0\n",
        &["y = x * 2\n", "        print(y)\nz = 3\nprint(z)\n"],
    );
    assert_eq!(
        texts,
        vec!["y = x * 2\n        print(y)".to_owned()],
        "the lines after the dedent are cut"
    );
}

#[test]
fn multi_line_completion_keeps_nothing_the_editor_already_has() {
    let model = ModelServer::start(Behavior::stream(&[
        "\n    let x = 1;\n    go(x);\n}\n\nfn other() {}\n",
    ]));
    let dir = TempDir::new("multiline-rs");
    let uri = dir.uri("main.rs");
    let (text, at) = cursor("fn main() {$0\n}\n");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "rust", &text);
    let items = server.inline(&uri, position(&text, at, Encoding::Utf16), 1);
    let texts: Vec<String> = items.iter().map(insert_text).collect();
    assert_eq!(
        texts,
        vec!["\n    let x = 1;\n    go(x);".to_owned()],
        "the closing brace is already there"
    );
    server.shutdown_and_exit();
}

#[test]
fn completion_word_range_counts_utf16_units_of_astral_letters() {
    // U+1D465 (𝑥) is a letter outside the BMP: two UTF-16 units, one character.
    let model = ModelServer::start(Behavior::stream(&["lue"]));
    let dir = TempDir::new("astral-word");
    let uri = dir.uri("a.txt");
    let (text, at) = cursor("😀 = 𝑥va$0\n");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "plaintext", &text);
    let pos = position(&text, at, Encoding::Utf16);
    assert_eq!(
        pos,
        json!({ "line": 0, "character": 9 }),
        "2 + 3 + 2 + 2 UTF-16 units"
    );
    let result = server.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": pos, "context": { "triggerKind": 1 } }),
    );
    let item = &result["items"][0];
    assert_eq!(
        item["textEdit"]["range"],
        json!({ "start": { "line": 0, "character": 5 }, "end": pos }),
        "the word 𝑥va starts after `😀 = ` (5 UTF-16 units): {result:#}"
    );
    assert_eq!(item["textEdit"]["newText"], "𝑥value");
    server.shutdown_and_exit();
}
