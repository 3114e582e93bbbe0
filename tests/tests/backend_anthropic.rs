//! The `anthropic` backend through the LSP: the exact Messages API request (path, `x-api-key`,
//! `anthropic-version`, body), Anthropic's typed event stream split anywhere (with `ping`s,
//! comments and a stray line), `error` events, HTTP errors, a first token that never comes, a
//! disconnect, and cancellation.

use serde_json::{Value, json};
use tandem_e2e::Recorded;
use tandem_e2e::backend_scenarios::{self as scenarios, Kind};

const KEY_VAR: &str = "TANDEM_E2E_ANTHROPIC_KEY";
const KEY: &str = "sk-ant-e2e-0123";

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

const KIND: Kind = Kind {
    name: "anthropic",
    env: &[(KEY_VAR, KEY)],
    options,
    url: scenarios::root_url,
    path: "/v1/messages",
    content_type: "text/event-stream; charset=utf-8",
    fixture: scenarios::PYTHON_FIXTURE,
    file: "calc.py",
    language: "python",
    preamble: message_start,
    keep_alive: "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    token: text_delta,
    good_stream: chatty_stream,
    good_text: "a + b  # café",
    stall_text: Some("Here is the code:\n"),
};

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
    assert_eq!(
        scenarios::sorted_keys(b),
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
    scenarios::check_split_stream(
        &KIND,
        &chatty_stream(),
        &[1, 5, 97],
        0,
        "a + b  # café",
        assert_request_shape,
    );
}

#[test]
fn an_error_event_mid_stream_is_reported() {
    let mut s = message_start();
    s.push_str(&text_delta("a + "));
    s.push_str(&event(&json!({"type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}})));
    scenarios::check_bad_stream(
        &KIND,
        &s,
        33,
        &["`anthropic`", "overloaded_error", "Overloaded"],
    );
}

#[test]
fn a_malformed_event_is_a_protocol_error() {
    let s = format!(
        "{}event: content_block_delta\ndata: {{\"type\": nope}}\n\n",
        message_start()
    );
    scenarios::check_bad_stream(&KIND, &s, 10, &["could not read", "bad event"]);
}

const ERROR_BODY: &str =
    "{\"type\":\"error\",\"error\":{\"type\":\"e2e_error\",\"message\":\"nope\"}}";

#[test]
fn http_errors_are_reported_with_their_status() {
    scenarios::check_http_errors(
        &KIND,
        &[
            (401, ERROR_BODY, &["check the API key", "e2e_error"]),
            (404, ERROR_BODY, &["e2e_error"]),
            (429, ERROR_BODY, &["rate-limiting", "e2e_error"]),
            (500, ERROR_BODY, &["e2e_error"]),
        ],
    );
}

tandem_e2e::backend_scenario_tests!(KIND);
