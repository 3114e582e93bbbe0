//! Cancellation, superseded requests and concurrency against a hanging backend.

use serde_json::Value;
use tandem_e2e::{
    Behavior, DocModel, Encoding, ModelServer, Pending, TempDir, TestServer, cursor, insert_text,
    openai_options, position, starcoder_prompt,
};

/// The JSON-RPC error code of a response, if it is an error.
fn error_code(response: &Value) -> Option<i64> {
    response["error"]["code"].as_i64()
}

#[test]
fn cancel_request_answers_request_cancelled_and_drops_the_backend_connection() {
    let model = ModelServer::start(Behavior::Hang);
    let dir = TempDir::new("cancel");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "plaintext", "hello wor");
    let pending = server.inline_async(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    model.wait_requests(1);
    assert!(
        !server.is_answered(pending),
        "the request hangs while the backend does"
    );

    server.cancel(pending);
    let response = server.response(pending);
    assert_eq!(
        error_code(&response),
        Some(-32800),
        "a cancelled request answers RequestCancelled: {response}"
    );
    let recorded = model.wait_closed(0);
    assert!(
        recorded.closed,
        "the backend connection was dropped after the cancel"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_newer_request_for_the_same_document_supersedes_the_older() {
    let model = ModelServer::route(|i, _| {
        if i == 0 {
            Behavior::Hang
        } else {
            Behavior::stream(&["ld"])
        }
    });
    let dir = TempDir::new("supersede");
    let uri = dir.uri("a.txt");
    let (text, at) = cursor("hello wor$0");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "plaintext", &text);
    let pos = position(&text, at, Encoding::Utf16);

    let first = server.inline_async(&uri, pos.clone(), 2);
    model.wait_requests(1);
    let second = server.inline_async(&uri, pos, 1);
    let first_items = server.inline_items(first);
    assert!(
        first_items.is_empty(),
        "the superseded request answers an empty list: {first_items:?}"
    );
    let second_items: Vec<String> = server
        .inline_items(second)
        .iter()
        .map(insert_text)
        .collect();
    assert_eq!(
        second_items,
        vec!["ld".to_owned()],
        "the newer request completes"
    );
    model.wait_closed(0);
    server.shutdown_and_exit(); // asserts exactly one response each
}

#[test]
fn hung_requests_block_neither_edits_nor_other_documents_nor_cancellation() {
    // Prompts holding the marker hang; the others stream.
    let model = ModelServer::route(|_, r| {
        if r.prompt().contains("HANG") {
            Behavior::Hang
        } else {
            Behavior::stream(&["1, 2)"])
        }
    });
    let dir = TempDir::new("concurrency");
    let server = TestServer::start(openai_options(&model.url()));

    let hung: Vec<(String, Pending)> = (0..4)
        .map(|n| {
            let uri = dir.uri(&format!("hang-{n}.txt"));
            let text = format!("HANG {n} waits for");
            server.open(&uri, "plaintext", &text);
            let pending =
                server.inline_async(&uri, position(&text, text.len(), Encoding::Utf16), 1);
            (uri, pending)
        })
        .collect();
    model.wait_requests(4);

    // Edits to a hung document and to a fresh one go through while four requests hang.
    let mut hung_doc = DocModel::new("HANG 0 waits for", Encoding::Utf16);
    hung_doc.version = 2;
    server.change(
        &hung[0].0,
        2,
        vec![hung_doc.insert_after("waits for", " more")],
    );

    let uri = dir.uri("fifth.txt");
    let mut doc = DocModel::new("first line\nvalue = \nlast line\n", Encoding::Utf16);
    server.open(&uri, "plaintext", &doc.text);
    doc.version = 2;
    server.change(
        &uri,
        2,
        vec![
            doc.insert_after("value = ", "compute("),
            doc.replace("first", "first", "1st"),
        ],
    );
    let (at, pos) = doc.position_after("compute(");
    let fifth = server.inline_async(&uri, pos, 1);
    let texts: Vec<String> = server.inline_items(fifth).iter().map(insert_text).collect();
    assert_eq!(
        texts,
        vec!["1, 2)".to_owned()],
        "the fifth completes while four hang"
    );
    let fifth_request = model
        .requests()
        .into_iter()
        .find(|r| !r.prompt().contains("HANG"))
        .expect("the fifth request reached the backend");
    assert_eq!(
        fifth_request.prompt(),
        starcoder_prompt(&doc.text[..at], &doc.text[at..]),
        "the prompt reflects the edits"
    );

    // Cancel one hung request: it answers at once, and its backend connection is dropped.
    let (_, cancelled) = &hung[1];
    server.cancel(*cancelled);
    let response = server.response(*cancelled);
    assert_eq!(error_code(&response), Some(-32800), "{response}");
    let index = model
        .requests()
        .iter()
        // Its own prefix ends right before the suffix marker; other prompts may quote it as a
        // similar snippet.
        .position(|r| r.prompt().contains("HANG 1 waits for<fim_suffix>"))
        .expect("request of hang-1");
    model.wait_closed(index);
    for (_, pending) in [&hung[0], &hung[2], &hung[3]] {
        assert!(
            !server.is_answered(*pending),
            "the other hung requests are still pending"
        );
    }

    // Release the others so that every request is answered exactly once before shutdown.
    for (_, pending) in [&hung[0], &hung[2], &hung[3]] {
        server.cancel(*pending);
        assert_eq!(error_code(&server.response(*pending)), Some(-32800));
    }
    server.shutdown_and_exit();
}

#[test]
fn closing_a_document_answers_its_hung_completion() {
    let model = ModelServer::start(Behavior::Hang);
    let dir = TempDir::new("close");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "plaintext", "hello wor");
    let pending = server.inline_async(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    model.wait_requests(1);
    server.close(&uri);
    let items = server.inline_items(pending);
    assert!(
        items.is_empty(),
        "a completion for a closed document answers an empty list: {items:?}"
    );
    model.wait_closed(0);
    server.shutdown_and_exit();
}

#[test]
fn an_automatic_request_superseded_while_debouncing_never_reaches_the_backend() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let mut options = openai_options(&model.url());
    // Long enough that the first request is surely still debouncing when the second arrives.
    options["completion"]["debounceMs"] = serde_json::json!(60_000);
    let dir = TempDir::new("debounce");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(options);
    server.open(&uri, "plaintext", "hello wor");
    let pos = position("hello wor", 9, Encoding::Utf16);
    let automatic = server.inline_async(&uri, pos.clone(), 2);
    let explicit = server.inline_async(&uri, pos, 1);
    let texts: Vec<String> = server
        .inline_items(explicit)
        .iter()
        .map(insert_text)
        .collect();
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "an explicit request is never debounced"
    );
    assert!(
        server.inline_items(automatic).is_empty(),
        "the superseded automatic request answers empty"
    );
    assert_eq!(
        model.request_count(),
        1,
        "only the explicit request reached the backend"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_completion_for_an_outdated_version_is_dropped() {
    let model = ModelServer::start(Behavior::Held(vec!["ld".to_owned()]));
    let dir = TempDir::new("outdated");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    let mut doc = DocModel::new("hello wor", Encoding::Utf16);
    server.open(&uri, "plaintext", &doc.text);
    let (_, pos) = doc.position_after("wor");
    let stale = server.inline_async(&uri, pos, 1);
    model.wait_requests(1);

    // The user types on while the model is still thinking.
    doc.version = 2;
    server.change(&uri, 2, vec![doc.insert_after("wor", "l")]);
    // A round trip after the edit: the server has applied it by now.
    let barrier = dir.uri("other.txt");
    assert!(
        server.inline(&barrier, pos_zero(), 1).is_empty(),
        "never-opened document: empty"
    );
    model.release();
    assert!(
        server.inline_items(stale).is_empty(),
        "the completion computed for version 1 is not shown on version 2"
    );
    let (_, pos) = doc.position_after("worl");
    let texts = server.inline_texts(&uri, pos, 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "a request for the current version completes"
    );
    server.shutdown_and_exit();
}

fn pos_zero() -> Value {
    serde_json::json!({ "line": 0, "character": 0 })
}
