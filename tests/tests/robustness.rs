//! A backend that is down, and malformed input: the server answers every request once and lives on.

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, DocModel, Encoding, ModelServer, TempDir, TestServer, closed_port, insert_text,
    openai_options, position, starcoder_prompt,
};

#[test]
fn down_backend_answers_empty_lists_and_reports_once() {
    let url = format!("http://127.0.0.1:{}/v1", closed_port());
    let dir = TempDir::new("down");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&url));
    server.open(&uri, "plaintext", "hello wor");
    let pos = position("hello wor", 9, Encoding::Utf16);

    for attempt in 1..=2 {
        let response = server.request_raw(
            "textDocument/inlineCompletion",
            TestServer::inline_params(&uri, pos.clone(), 1),
        );
        assert!(
            response.get("error").is_none(),
            "attempt {attempt}: a down backend is not an LSP error: {response}"
        );
        assert_eq!(
            response["result"]["items"],
            json!([]),
            "attempt {attempt}: an empty list: {response}"
        );
    }
    let message = server.wait_message(&["backend"]);
    assert!(
        message.contains(&url),
        "the message names the backend URL: {message}"
    );

    // The server keeps serving: point it at a live backend and complete.
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    server.configure(openai_options(&model.url()));
    let texts = server.inline_texts(&uri, pos, 1);
    assert_eq!(texts, vec!["ld".to_owned()], "a later request is served");
    let transcript = server.shutdown_and_exit();
    let about_backend: Vec<String> = transcript
        .messages()
        .into_iter()
        .filter(|m| m.contains("backend"))
        .collect();
    assert_eq!(
        about_backend.len(),
        1,
        "the backend failure is shown exactly once: {about_backend:#?}"
    );
}

#[test]
fn backend_http_errors_and_garbage_are_reported_not_fatal() {
    for (behavior, needle) in [
        (
            Behavior::Status(500, "{\"error\":\"model not loaded\"}".to_owned()),
            "HTTP 500",
        ),
        (Behavior::Garbage, "backend"),
    ] {
        let model = ModelServer::start(behavior);
        let dir = TempDir::new("http-error");
        let uri = dir.uri("a.txt");
        let server = TestServer::start(openai_options(&model.url()));
        server.open(&uri, "plaintext", "hello wor");
        let items = server.inline(&uri, position("hello wor", 9, Encoding::Utf16), 1);
        assert!(items.is_empty(), "{needle}: an empty list: {items:?}");
        let message = server.wait_message(&[needle]);
        assert!(
            message.contains(&model.url()),
            "the message names the backend: {message}"
        );
        server.shutdown_and_exit();
    }
}

#[test]
fn malformed_frames_never_kill_the_server() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let dir = TempDir::new("garbage");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    server.open(&uri, "plaintext", "hello wor");

    // A frame whose body is not JSON, then one that is JSON but not JSON-RPC.
    server.send_raw(b"Content-Length: 9\r\n\r\n{garbage}");
    server.send_raw(b"Content-Length: 2\r\n\r\n[]");

    let texts = server.inline_texts(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "the server still completes after malformed frames"
    );
    let stray = server.stray_responses();
    assert!(
        stray
            .iter()
            .all(|r| r["id"].is_null() && r["error"]["code"].is_i64()),
        "malformed frames are answered with errors whose id is null: {stray:#?}"
    );
    server.shutdown_and_exit();
}

#[test]
fn malformed_requests_never_kill_the_server() {
    let model = ModelServer::start(Behavior::stream(&["42"]));
    let dir = TempDir::new("malformed");
    let server = TestServer::start(openai_options(&model.url()));

    // A request for a document that was never opened.
    let unknown = dir.uri("never-opened.txt");
    let items = server.inline(&unknown, json!({ "line": 0, "character": 0 }), 1);
    assert!(items.is_empty(), "unknown document: empty list: {items:?}");

    // A position far out of range clamps to the end of the document.
    let uri = dir.uri("a.txt");
    let text = "one\ntwo\n";
    server.open(&uri, "plaintext", text);
    let far = json!({ "line": 10_000, "character": 10_000 });
    let response = server.request_raw(
        "textDocument/inlineCompletion",
        TestServer::inline_params(&uri, far.clone(), 1),
    );
    assert!(
        response.get("error").is_none(),
        "out-of-range position: no error: {response}"
    );
    assert_eq!(
        model.wait_requests(1)[0].prompt(),
        starcoder_prompt(text, ""),
        "clamped to the end"
    );
    let response = server.request_raw(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": far, "context": { "triggerKind": 1 } }),
    );
    assert!(
        response["result"]["items"].is_array(),
        "completion far out of range answers a list: {response}"
    );

    // An edit whose range is out of range clamps too (appends at the end).
    let mut doc = DocModel::new(text, Encoding::Utf16);
    let change = json!({ "range": { "start": far, "end": far }, "text": "three" });
    server.change(&uri, 2, vec![change]);
    doc.edit(doc.text.len(), doc.text.len(), "three");

    // An edit to a closed document, and a request on it.
    let closed = dir.uri("closed.txt");
    server.open(&closed, "plaintext", "x");
    server.close(&closed);
    server.change(&closed, 2, vec![json!({ "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } }, "text": "y" })]);
    assert!(
        server
            .inline(&closed, json!({ "line": 0, "character": 1 }), 1)
            .is_empty(),
        "closed: empty list"
    );

    // Invalid params and an unknown method answer errors.
    let invalid = server.request_raw(
        "textDocument/inlineCompletion",
        json!({ "textDocument": 5 }),
    );
    assert_eq!(
        invalid["error"]["code"], -32602,
        "invalid params: {invalid}"
    );
    let unknown_method = server.request_raw("tandem/noSuchMethod", json!({}));
    assert_eq!(
        unknown_method["error"]["code"], -32601,
        "unknown method: {unknown_method}"
    );
    // Notifications with invalid params are dropped.
    server.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": 7 } }),
    );
    server.notify("textDocument/didChange", Value::Null);

    // A normal completion still works, on the document as edited.
    let (at, pos) = doc.position_after("three");
    let texts: Vec<String> = server
        .inline(&uri, pos, 1)
        .iter()
        .map(insert_text)
        .collect();
    assert_eq!(texts, vec!["42".to_owned()], "the server still completes");
    let last = model.requests().last().cloned().expect("a request");
    assert_eq!(
        last.prompt(),
        starcoder_prompt(&doc.text[..at], &doc.text[at..])
    );

    server.shutdown_and_exit(); // asserts exactly one response per request
}

#[test]
fn a_backend_that_never_answers_times_out() {
    let model = ModelServer::start(Behavior::Hang);
    let mut options = openai_options(&model.url());
    options["backend"]["timeoutMs"] = json!(300);
    let dir = TempDir::new("timeout");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(options);
    server.open(&uri, "plaintext", "hello wor");
    let items = server.inline(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert!(
        items.is_empty(),
        "a timed-out completion answers an empty list: {items:?}"
    );
    let message = server.wait_message(&["timeoutMs"]);
    assert!(
        message.contains("300"),
        "the message says how long it waited: {message}"
    );
    model.wait_closed(0);
    server.shutdown_and_exit();
}

#[test]
fn the_server_exits_when_its_input_closes() {
    let server = TestServer::start(Value::Null);
    let status = server.close_stdin_and_wait();
    // An editor that crashed leaves no server behind; the exit code is not specified here.
    let _ = status;
}

#[test]
fn exit_without_shutdown_is_an_error_exit() {
    let server = TestServer::start(Value::Null);
    let status = server.exit_without_shutdown();
    assert_eq!(status.code(), Some(1), "exit before shutdown: {status}");
}
