//! The `openai-chat` backend through the LSP: the exact request a chat model gets (the code with
//! a hole, the key, the options), realistic streams split anywhere, the code taken out of a
//! chatty reply, HTTP errors, a first token that never comes, a disconnect, and cancellation.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, Recorded, TempDir, TestServer, cursor, init_params,
    insert_text, position,
};

const KEY_VAR: &str = "TANDEM_E2E_OPENAI_CHAT_KEY";
const KEY: &str = "sk-chat-e2e-0123";
const FIXTURE: &str = "def add(a, b):\n    return $0\n\n\nprint(add(1, 2))\n";

fn options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": {
            "kind": "openai-chat",
            "url": url,
            "model": "gpt-test",
            "apiKeyEnv": KEY_VAR,
            "timeoutMs": timeout_ms,
            "stop": ["<END>"],
        },
        "completion": { "debounceMs": 0 },
    })
}

/// A server with the API key in its environment, `options` and `dir` as its workspace.
fn start(options: Value, dir: &TempDir) -> TestServer {
    let server = TestServer::spawn_with_env(&[], &[(KEY_VAR, KEY)]);
    server.initialize(init_params(options, Some(dir.path()), None));
    server
}

/// One `chat.completion.chunk` event.
fn delta(index: u32, content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({
            "id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test",
            "choices": [{ "index": index, "delta": { "content": content }, "finish_reason": null }],
        })
    )
}

/// The whole stream cut into pieces of `size` bytes (inside JSON, inside `é`, anywhere).
fn cut(stream: &str, size: usize) -> Vec<Vec<u8>> {
    stream.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

fn sse(pieces: Vec<Vec<u8>>, end: RawEnd) -> Behavior {
    Behavior::Raw {
        content_type: "text/event-stream".to_owned(),
        pieces,
        delay: Duration::from_millis(1),
        end,
    }
}

/// A realistic reply: role first, a keep-alive, an unknown line, prose, a fenced block that
/// repeats the line before the cursor, prose after it, `[DONE]`.
fn chatty_stream() -> String {
    let role = format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-e2e", "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]})
    );
    let mut s = role;
    s.push_str(": ping\n\n");
    s.push_str("this line is not an SSE field\n\n");
    for piece in [
        "Here is",
        " the missing code:\n\n``",
        "`python\n    return",
        " a + b  # café\n",
        "```\nIt adds the two numbers.",
    ] {
        s.push_str(&delta(0, piece));
    }
    s.push_str("data: {\"id\":\"chatcmpl-e2e\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
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
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let b = &r.body;
    assert_eq!(b["model"], "gpt-test", "{b}");
    assert_eq!(b["stream"], true);
    assert_eq!(b["max_tokens"], 128);
    assert!(
        (b["temperature"].as_f64().unwrap_or(-1.0) - 0.2).abs() < 1e-6,
        "{b}"
    );
    assert_eq!(
        b["stop"],
        json!(["<END>"]),
        "user stops only, no FIM tokens"
    );
    assert!(b.get("n").is_none(), "one candidate: no `n`");
    assert!(
        b.get("prompt").is_none(),
        "a chat body, not a completion body"
    );
    let messages = b["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{b}");
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("only the code")),
        "{b}"
    );
    assert_eq!(messages[1]["role"], "user");
    let user = messages[1]["content"].as_str().expect("user content");
    let file = format!(
        "<file path=\"calc.py\" language=\"python\">\n{}{{{{FILL_HERE}}}}{}\n</file>",
        &text[..at],
        text[at..].trim_end_matches('\n')
    );
    assert!(user.contains(&file), "the code with the hole:\n{user}");
}

#[test]
fn a_chatty_reply_split_anywhere_yields_the_code() {
    for size in [1, 7, 64] {
        let model = ModelServer::start(sse(cut(&chatty_stream(), size), RawEnd::Finish));
        let dir = TempDir::new("chat-stream");
        let server = start(options(&model.url(), 20_000), &dir);
        let (text, at, items) = complete(&server, &dir);
        let texts: Vec<String> = items.iter().map(insert_text).collect();
        assert_eq!(
            texts,
            vec!["a + b  # café".to_owned()],
            "pieces of {size} bytes: prose, fence and the repeated `return ` are gone"
        );
        let requests = model.wait_requests(1);
        assert_request_shape(&requests[0], &text, at);
        server.shutdown_and_exit();
    }
}

#[test]
fn two_candidates_are_asked_with_n_and_extracted_separately() {
    let mut stream = String::new();
    for (i, piece) in [
        (0, "```py\n"),
        (1, "a"),
        (0, "a - b\n"),
        (1, " * b"),
        (0, "```"),
    ] {
        stream.push_str(&delta(i, piece));
    }
    stream.push_str("data: [DONE]\n\n");
    let model = ModelServer::start(sse(cut(&stream, 13), RawEnd::Finish));
    let dir = TempDir::new("chat-n");
    let mut opts = options(&model.url(), 20_000);
    opts["completion"]["candidates"] = json!(2);
    let server = start(opts, &dir);
    let (_, _, items) = complete(&server, &dir);
    let mut texts: Vec<String> = items.iter().map(insert_text).collect();
    texts.sort();
    assert_eq!(texts, vec!["a * b".to_owned(), "a - b".to_owned()]);
    assert_eq!(model.wait_requests(1)[0].body["n"], 2);
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
            "{\"error\":{\"message\":\"nope\",\"type\":\"e2e\"}}".to_owned(),
        ));
        let dir = TempDir::new("chat-status");
        let server = start(options(&model.url(), 20_000), &dir);
        let (_, _, items) = complete(&server, &dir);
        assert!(items.is_empty(), "HTTP {status}: an empty list: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}"), needle]);
        assert!(
            message.contains(&model.url()),
            "names the backend: {message}"
        );
        assert_eq!(model.requests()[0].path, "/v1/chat/completions");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_malformed_event_is_a_protocol_error() {
    let stream = format!("{}data: {{\"choices\": [oops\n\n", delta(0, "a + "));
    let model = ModelServer::start(sse(cut(&stream, 5), RawEnd::Finish));
    let dir = TempDir::new("chat-malformed");
    let server = start(options(&model.url(), 20_000), &dir);
    let (_, _, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["could not read", "bad event"]);
    server.shutdown_and_exit();
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let model = ModelServer::start(sse(cut(": ping\n\n", 100), RawEnd::Hang));
    let dir = TempDir::new("chat-timeout");
    let server = start(options(&model.url(), 400), &dir);
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
            sse(cut(&delta(0, "```\na + "), 9), RawEnd::Disconnect)
        } else {
            sse(cut(&chatty_stream(), 11), RawEnd::Finish)
        }
    });
    let dir = TempDir::new("chat-disconnect");
    let server = start(options(&model.url(), 20_000), &dir);
    let (text, at, items) = complete(&server, &dir);
    assert!(items.is_empty(), "a cut stream shows nothing: {items:?}");
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
    // Prose arrives (nothing is code yet), then the model stalls.
    // No pause between pieces: all are written before the cancel can close the connection.
    let model = ModelServer::start(Behavior::Raw {
        content_type: "text/event-stream".to_owned(),
        pieces: cut(&delta(0, "Here is the code you asked for:\n"), 64),
        delay: Duration::ZERO,
        end: RawEnd::Hang,
    });
    let dir = TempDir::new("chat-cancel");
    let server = start(options(&model.url(), 20_000), &dir);
    let (text, at) = cursor(FIXTURE);
    let uri = dir.uri("calc.py");
    server.open(&uri, "python", &text);
    let pending = server.inline_async(&uri, position(&text, at, Encoding::Utf16), 1);
    model.wait_requests(1);
    wait_log(&server, "`openai-chat` at http://127.0.0.1:");
    wait_log(&server, "answers; streaming");
    server.cancel(pending);
    let response = server.response(pending);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(model.wait_closed(0).closed, "the connection was dropped");
    server.shutdown_and_exit();
}
