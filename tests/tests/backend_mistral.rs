//! The `mistral` (Codestral) backend through the LSP: the exact native fill-in-the-middle
//! request (path, Bearer key, prompt and suffix, default model), OpenAI-style chunks split
//! anywhere, HTTP errors, a first token that never comes, a disconnect, and cancellation.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, Recorded, TempDir, TestServer, cursor, init_params,
    insert_text, position,
};

const KEY_VAR: &str = "TANDEM_E2E_MISTRAL_KEY";
const KEY: &str = "mistral-e2e-0123";
const FIXTURE: &str = "def add(a, b):\n    return $0\n\n\nprint(add(1, 2))\n";

fn root_url(model: &ModelServer) -> String {
    format!("http://127.0.0.1:{}", model.port())
}

/// No `model`: the default one is sent.
fn options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": {
            "kind": "mistral",
            "url": url,
            "apiKeyEnv": KEY_VAR,
            "timeoutMs": timeout_ms,
            "stop": ["\n\n\n"],
        },
        "completion": { "debounceMs": 0 },
    })
}

fn start(options: Value, dir: &TempDir) -> TestServer {
    let server = TestServer::spawn_with_env(&[], &[(KEY_VAR, KEY)]);
    server.initialize(init_params(options, Some(dir.path()), None));
    server
}

/// One Codestral stream event.
fn delta(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "cmpl-e2e", "object": "chat.completion.chunk", "created": 1,
               "model": "codestral-latest",
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                            "finish_reason": null}]})
    )
}

fn stream() -> String {
    let mut s = String::from(": keep-alive\n\n");
    for piece in ["a", " + b", "  # café\n", "\n\nprint(", "add(3, 4))"] {
        s.push_str(&delta(piece));
    }
    s.push_str("not a field line\n\n");
    s.push_str("data: {\"id\":\"cmpl-e2e\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"total_tokens\":20,\"completion_tokens\":11}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

fn cut(stream: &str, size: usize) -> Vec<Vec<u8>> {
    stream.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

fn sse(pieces: Vec<Vec<u8>>, end: RawEnd) -> Behavior {
    Behavior::Raw {
        content_type: "text/event-stream".to_owned(),
        pieces,
        delay: Duration::ZERO,
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
        ("POST", "/v1/fim/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
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
            "model",
            "prompt",
            "stop",
            "stream",
            "suffix",
            "temperature"
        ],
        "{b}"
    );
    assert_eq!(b["model"], "codestral-latest");
    assert_eq!(b["max_tokens"], 128);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stop"], json!(["\n\n\n"]));
    assert!(
        (b["temperature"].as_f64().unwrap_or(-1.0) - 0.2).abs() < 1e-6,
        "{b}"
    );
    let prompt = b["prompt"].as_str().expect("prompt");
    assert!(
        prompt.ends_with(&text[..at]),
        "the prompt is the prefix (after any snippets), no template: {prompt:?}"
    );
    assert!(
        !prompt.contains("[PREFIX]") && !prompt.contains("<fim_"),
        "{prompt:?}"
    );
    assert_eq!(b["suffix"], &text[at..]);
}

#[test]
fn a_stream_split_anywhere_is_post_processed() {
    for size in [1, 6, 200] {
        let model = ModelServer::start(sse(cut(&stream(), size), RawEnd::Finish));
        let dir = TempDir::new("mistral-stream");
        let server = start(options(&root_url(&model), 20_000), &dir);
        let (text, at, items) = complete(&server, &dir);
        let texts: Vec<String> = items.iter().map(insert_text).collect();
        assert_eq!(
            texts,
            vec!["a + b  # café".to_owned()],
            "pieces of {size} bytes: the block ends before `print`"
        );
        let requests = model.wait_requests(1);
        assert_eq!(requests.len(), 1);
        assert_request_shape(&requests[0], &text, at);
        server.shutdown_and_exit();
    }
}

#[test]
fn a_configured_model_is_sent() {
    let model = ModelServer::start(sse(cut(&stream(), 50), RawEnd::Finish));
    let dir = TempDir::new("mistral-model");
    let mut opts = options(&root_url(&model), 20_000);
    opts["backend"]["model"] = json!("codestral-2501");
    let server = start(opts, &dir);
    let (_, _, items) = complete(&server, &dir);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(model.wait_requests(1)[0].body["model"], "codestral-2501");
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
            "{\"object\":\"error\",\"message\":\"nope\",\"type\":\"e2e_error\"}".to_owned(),
        ));
        let dir = TempDir::new("mistral-status");
        let server = start(options(&root_url(&model), 20_000), &dir);
        let (_, _, items) = complete(&server, &dir);
        assert!(items.is_empty(), "HTTP {status}: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}"), needle]);
        assert!(message.contains(&root_url(&model)), "{message}");
        assert_eq!(model.requests()[0].path, "/v1/fim/completions");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_malformed_event_is_a_protocol_error() {
    let s = format!("{}data: {{\"choices\": [\n\n", delta("a"));
    let model = ModelServer::start(sse(cut(&s, 8), RawEnd::Finish));
    let dir = TempDir::new("mistral-malformed");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (_, _, items) = complete(&server, &dir);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["`mistral`", "bad event"]);
    server.shutdown_and_exit();
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let model = ModelServer::start(sse(cut(": keep-alive\n\n", 100), RawEnd::Hang));
    let dir = TempDir::new("mistral-timeout");
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
            sse(cut(&delta("a + "), 9), RawEnd::Disconnect)
        } else {
            sse(cut(&stream(), 13), RawEnd::Finish)
        }
    });
    let dir = TempDir::new("mistral-disconnect");
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
    let model = ModelServer::start(sse(cut(&delta("a"), 64), RawEnd::Hang));
    let dir = TempDir::new("mistral-cancel");
    let server = start(options(&root_url(&model), 20_000), &dir);
    let (text, at) = cursor(FIXTURE);
    let uri = dir.uri("calc.py");
    server.open(&uri, "python", &text);
    let pending = server.inline_async(&uri, position(&text, at, Encoding::Utf16), 1);
    model.wait_requests(1);
    wait_log(&server, "`mistral` at http://127.0.0.1:");
    wait_log(&server, "answers; streaming");
    server.cancel(pending);
    let response = server.response(pending);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(model.wait_closed(0).closed);
    server.shutdown_and_exit();
}
