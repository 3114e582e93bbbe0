//! Retries, the first-token timeout, the circuit breaker with its fallback backend, and the
//! status the editor sees (`tandem/status`, `tandem/getStatus`).

use serde_json::{Value, json};
use tandem_e2e::{Behavior, Encoding, ModelServer, RawEnd, TempDir, TestServer, position};

const TEXT: &str = "let total = ";

fn options(main: &ModelServer, extra: Value) -> Value {
    let mut options = json!({
        "backend": { "kind": "openai", "url": main.url(), "model": "m", "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    });
    tandem_merge(&mut options, extra);
    options
}

/// Shallow-deep merge for test options.
fn tandem_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                tandem_merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn open(server: &TestServer, dir: &TempDir) -> (String, Value) {
    let uri = dir.uri("a.rs");
    server.open(&uri, "rust", TEXT);
    (uri, position(TEXT, TEXT.len(), Encoding::Utf16))
}

#[test]
fn a_503_before_the_first_token_is_retried() {
    let model = ModelServer::route(|i, _| {
        if i == 0 {
            Behavior::Status(503, "{\"error\":\"loading\"}".into())
        } else {
            Behavior::stream(&["compute()"])
        }
    });
    let dir = TempDir::new("retry");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, pos) = open(&server, &dir);
    assert_eq!(
        server.inline_texts(&uri, pos, 1),
        vec!["compute()"],
        "the retry answers"
    );
    assert_eq!(model.request_count(), 2, "one failed attempt, one retry");
    let transcript = server.shutdown_and_exit();
    assert!(
        transcript.messages().is_empty(),
        "a retried blip is not worth a message: {:?}",
        transcript.messages()
    );
}

#[test]
fn errors_that_retrying_cannot_fix_are_not_retried() {
    let model = ModelServer::start(Behavior::Status(401, "{\"error\":\"bad key\"}".into()));
    let dir = TempDir::new("no-retry");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, pos) = open(&server, &dir);
    assert!(server.inline_texts(&uri, pos, 1).is_empty());
    assert_eq!(model.request_count(), 1);
    let message = server.wait_message(&["401"]);
    assert!(
        message.contains("API key"),
        "the hint says what to check: {message}"
    );
    server.shutdown_and_exit();
}

#[test]
fn first_token_timeout_fails_fast_and_drops_the_connection() {
    let model = ModelServer::start(Behavior::raw(
        "text/event-stream",
        &[": keep-alive\n\n"],
        RawEnd::Hang,
    ));
    let dir = TempDir::new("first-token");
    let server = TestServer::start(options(
        &model,
        json!({ "backend": { "firstTokenTimeoutMs": 300 } }),
    ));
    let (uri, pos) = open(&server, &dir);
    assert!(server.inline_texts(&uri, pos, 1).is_empty());
    model.wait_closed(0);
    let message = server.wait_message(&["300 ms"]);
    assert!(message.contains("did not answer"), "{message}");
    server.shutdown_and_exit();
}

#[test]
fn a_down_backend_falls_back_opens_the_breaker_and_is_reported_once() {
    let main = ModelServer::start(Behavior::Status(500, "{\"error\":\"boom\"}".into()));
    let fallback = ModelServer::start(Behavior::stream(&["fallback()"]));
    let dir = TempDir::new("fallback");
    let server = TestServer::start(options(
        &main,
        json!({ "backend": { "fallback": { "kind": "openai", "url": fallback.url(), "model": "f" } } }),
    ));
    let (uri, pos) = open(&server, &dir);
    for _ in 0..5 {
        assert_eq!(
            server.inline_texts(&uri, pos.clone(), 1),
            vec!["fallback()"],
            "the fallback answers"
        );
    }
    assert_eq!(
        main.request_count(),
        3,
        "after three failures the breaker keeps requests away"
    );
    assert_eq!(fallback.request_count(), 5);
    let status = server.request("tandem/getStatus", Value::Null);
    assert_eq!(status["state"], "down", "{status:#}");
    assert_eq!(status["backend"], "openai");
    assert_eq!(status["model"], "m");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("500")),
        "{status:#}"
    );
    let transcript = server.shutdown_and_exit();
    let down: Vec<String> = transcript
        .messages()
        .into_iter()
        .filter(|m| m.contains("500"))
        .collect();
    assert_eq!(
        down.len(),
        1,
        "one message when the backend goes down: {down:?}"
    );
}

#[test]
fn status_is_pushed_on_change_and_can_be_pulled() {
    let model = ModelServer::start(Behavior::stream(&["1"]));
    let dir = TempDir::new("status");
    let server = TestServer::start(options(&model, json!({})));
    let ready = server.wait_notification("tandem/status", |p| p["state"] == "ready");
    assert_eq!(ready["backend"], "openai", "{ready:#}");
    let (uri, pos) = open(&server, &dir);
    assert_eq!(server.inline_texts(&uri, pos, 1), vec!["1"]);
    server.wait_notification("tandem/status", |p| p["state"] == "busy");
    server.configure(json!({ "completion": { "enabled": false } }));
    server.wait_notification("tandem/status", |p| p["state"] == "disabled");
    let pulled = server.request("tandem/getStatus", Value::Null);
    assert_eq!(pulled["state"], "disabled", "{pulled:#}");
    let transcript = server.shutdown_and_exit();
    let _ = transcript;
}

#[test]
fn a_cancelled_completion_leaves_the_status_ready() {
    let model = ModelServer::start(Behavior::Hang);
    let dir = TempDir::new("status-cancel");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, pos) = open(&server, &dir);
    let pending = server.inline_async(&uri, pos, 1);
    model.wait_requests(1);
    assert_eq!(
        server.request("tandem/getStatus", Value::Null)["state"],
        "busy"
    );
    server.cancel(pending);
    model.wait_closed(0);
    server.wait_notification("tandem/status", |p| p["state"] == "ready");
    assert_eq!(
        server.request("tandem/getStatus", Value::Null)["state"],
        "ready"
    );
    server.shutdown_and_exit();
}
