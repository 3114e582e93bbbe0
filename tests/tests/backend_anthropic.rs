//! The `anthropic` backend through the LSP: the exact Messages API request (path, `x-api-key`,
//! `anthropic-version`, body), Anthropic's typed event stream split anywhere (with `ping`s,
//! comments and a stray line), `error` events, HTTP errors, a first token that never comes, a
//! disconnect, and cancellation.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, Recorded, TempDir, TestServer, cursor, init_params,
    insert_text, position,
};

const KEY_VAR: &str = "TANDEM_E2E_ANTHROPIC_KEY";
const KEY: &str = "sk-ant-e2e-0123";
const FIXTURE: &str = "def add(a, b):\n    return $0\n\n\nprint(add(1, 2))\n";

/// The host root, as `backend.url` takes it for this kind.
fn root_url(model: &ModelServer) -> String {
    format!("http://127.0.0.1:{}", model.port())
}

fn options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": {
            "kind": "anthropic",
            "url": url,
            "model": "claude-e2e",
            "apiKeyEnv": KEY_VAR,
            "timeoutMs": timeout_ms,
            "stop": ["<END>", "\n\n"],
        },
        "completion": { "debounceMs": 0 },
    })
}

fn start(options: Value, dir: &TempDir) -> TestServer {
    let server = TestServer::spawn_with_env(&[], &[(KEY_VAR, KEY)]);
    server.initialize(init_params(options, Some(dir.path()), None));
    server
}

/// One event as Anthropic writes it: its name, then its data (which carries the type again).
fn event(data: &Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap_or("unknown")
    )
}

fn text_delta(text: &str) -> String {
    event(&json!({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "text_delta", "text": text}}))
}

fn message_start() -> String {
    event(&json!({"type": "message_start", "message": {
        "id": "msg_e2e", "type": "message", "role": "assistant", "content": [],
        "model": "claude-e2e", "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 25, "output_tokens": 1}}}))
}

/// A realistic reply: prose, a fenced block repeating the line before the cursor, more prose.
fn chatty_stream() -> String {
    let mut s = message_start();
    s.push_str(&event(&json!({"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}})));
    s.push_str(&event(&json!({"type": "ping"})));
    s.push_str(": keep-alive comment\n\n");
    s.push_str("stray line that is no SSE field\n\n");
    for piece in [
        "Here's the missing",
        " code:\n\n```py",
        "thon\n    return a",
        " + b  # café\n``",
        "`\n\nThat returns the sum.",
    ] {
        s.push_str(&text_delta(piece));
        s.push_str(&event(&json!({"type": "ping"})));
    }
    s.push_str(&event(&json!({"type": "content_block_stop", "index": 0})));
    s.push_str(&event(&json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 15}})));
    s.push_str(&event(&json!({"type": "message_stop"})));
    s
}

fn cut(stream: &str, size: usize) -> Vec<Vec<u8>> {
    stream.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

fn sse(pieces: Vec<Vec<u8>>, delay_ms: u64, end: RawEnd) -> Behavior {
    Behavior::Raw {
        content_type: "text/event-stream; charset=utf-8".to_owned(),
        pieces,
        delay: Duration::from_millis(delay_ms),
        end,
    }
}

fn complete(server: &TestServer, dir: &TempDir) -> (String, usize, Vec<Value>) {
    let (text, at) = cursor(FIXTURE);
    let uri = dir.uri("calc.py");
    server.open(&uri, "python", &text);
    let items = server.inline(&uri, position(&text, at, Encoding::Utf16), 1);
    (text, at, items)
}

#[track_caller]
fn assert_request_shape(r: &Recorded, text: &str, at: usize) {
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        r.header("authorization"),
        None,
        "the key goes in x-api-key only"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = &r.body;
    let mut keys: Vec<&str> = b
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "max_tokens",
            "messages",
            "model",
            "stop_sequences",
            "stream",
            "system",
            "temperature"
        ],
        "{b}"
    );
    assert_eq!(b["model"], "claude-e2e");
    assert_eq!(b["max_tokens"], 128);
    assert_eq!(b["stream"], true);
    assert!(
        (b["temperature"].as_f64().unwrap_or(-1.0) - 0.2).abs() < 1e-6,
        "{b}"
    );
    assert_eq!(
        b["stop_sequences"],
        json!(["<END>"]),
        "user stops, without the whitespace-only ones the API rejects"
    );
    assert!(
        b["system"]
            .as_str()
            .is_some_and(|s| s.contains("only the code")),
        "{b}"
    );
    let messages = b["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{b}");
    assert_eq!(messages[0]["role"], "user");
    let user = messages[0]["content"].as_str().expect("a string content");
    let file = format!(
        "<file path=\"calc.py\" language=\"python\">\n{}{{{{FILL_HERE}}}}{}\n</file>",
        &text[..at],
        text[at..].trim_end_matches('\n')
    );
    assert!(user.contains(&file), "the code with the hole:\n{user}");
}

#[test]
fn a_chatty_stream_split_anywhere_yields_the_code() {
    for size in [1, 5, 97] {
        let model = ModelServer::start(sse(cut(&chatty_stream(), size), 0, RawEnd::Finish));
        let dir = TempDir::new("anthropic-stream");
        let server = start(options(&root_url(&model), 20_000), &dir);
        let (text, at, items) = complete(&server, &dir);
        let texts: Vec<String> = items.iter().map(insert_text).collect();
        assert_eq!(
            texts,
            vec!["a + b  # café".to_owned()],
            "pieces of {size} bytes"
        );
        let requests = model.wait_requests(1);
        assert_eq!(requests.len(), 1);
        assert_request_shape(&requests[0], &text, at);
        server.shutdown_and_exit();
    }
}

#[test]
fn an_error_event_mid_stream_is_reported() {
    let mut s = message_start();
    s.push_str(&text_delta("a + "));
    s.push_str(&event(&json!({"type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}})));
    let model = ModelServer::start(sse(cut(&s, 33), 0, RawEnd::Finish));
    let dir = TempDir::new("anthropic-error-event");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (_, _, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["`anthropic`", "overloaded_error", "Overloaded"]);
    server.shutdown_and_exit();
}

#[test]
fn a_malformed_event_is_a_protocol_error() {
    let s = format!(
        "{}event: content_block_delta\ndata: {{\"type\": nope}}\n\n",
        message_start()
    );
    let model = ModelServer::start(sse(cut(&s, 10), 0, RawEnd::Finish));
    let dir = TempDir::new("anthropic-malformed");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (_, _, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["could not read", "bad event"]);
    server.shutdown_and_exit();
}

#[test]
fn http_errors_are_reported_with_their_status() {
    for (status, needle) in [
        (401, "check the API key"),
        (404, "HTTP 404"),
        (429, "rate-limiting"),
        (500, "HTTP 500"),
    ] {
        let model = ModelServer::start(Behavior::Status(
            status,
            "{\"type\":\"error\",\"error\":{\"type\":\"e2e_error\",\"message\":\"nope\"}}"
                .to_owned(),
        ));
        let dir = TempDir::new("anthropic-status");
        let server = start(options(&root_url(&model), 20_000), &dir);
        let (_, _, items) = complete(&server, &dir);
        assert!(items.is_empty(), "HTTP {status}: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}"), needle, "e2e_error"]);
        assert!(message.contains(&root_url(&model)), "{message}");
        assert_eq!(model.requests()[0].path, "/v1/messages");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let s = format!("{}{}", message_start(), event(&json!({"type": "ping"})));
    let model = ModelServer::start(sse(cut(&s, 1000), 0, RawEnd::Hang));
    let dir = TempDir::new("anthropic-timeout");
    let server = start(options(&root_url(&model), 400), &dir);
    let (_, _, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["did not answer within 400 ms"]);
    assert!(model.wait_closed(0).closed);
    server.shutdown_and_exit();
}

#[test]
fn a_disconnect_mid_stream_fails_the_request_and_the_next_one_works() {
    let model = ModelServer::route(|i, _| {
        if i == 0 {
            let s = format!("{}{}", message_start(), text_delta("a + "));
            sse(cut(&s, 17), 0, RawEnd::Disconnect)
        } else {
            sse(cut(&chatty_stream(), 23), 0, RawEnd::Finish)
        }
    });
    let dir = TempDir::new("anthropic-disconnect");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (text, at, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    let texts = server.inline_texts(&dir.uri("calc.py"), position(&text, at, Encoding::Utf16), 1);
    assert_eq!(texts, vec!["a + b  # café".to_owned()]);
    server.shutdown_and_exit();
}

/// Waits until the server's log holds `needle` (the backend logs when its answer starts, so
/// the cancel below cannot overtake the fake server's writes).
#[track_caller]
fn wait_log(server: &TestServer, needle: &str) {
    let deadline = std::time::Instant::now() + tandem_e2e::TIMEOUT;
    while !server.stderr().contains(needle) {
        if std::time::Instant::now() >= deadline {
            server.fail(&format!("the log never said {needle:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn cancel_request_closes_the_backend_connection() {
    // All pieces go out at once (so the cancel cannot cut them), then the model stalls.
    let s = format!("{}{}", message_start(), text_delta("Here is the code:\n"));
    let model = ModelServer::start(sse(cut(&s, 64), 0, RawEnd::Hang));
    let dir = TempDir::new("anthropic-cancel");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (text, at) = cursor(FIXTURE);
    let uri = dir.uri("calc.py");
    server.open(&uri, "python", &text);
    let pending = server.inline_async(&uri, position(&text, at, Encoding::Utf16), 1);
    model.wait_requests(1);
    wait_log(&server, "`anthropic` at http://127.0.0.1:");
    wait_log(&server, "answers; streaming");
    server.cancel(pending);
    let response = server.response(pending);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(model.wait_closed(0).closed);
    server.shutdown_and_exit();
}
