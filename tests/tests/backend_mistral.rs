//! The `mistral` (Codestral) backend through the LSP: the exact native fill-in-the-middle
//! request (path, Bearer key, prompt and suffix, default model), OpenAI-style chunks split
//! anywhere, HTTP errors, a first token that never comes, a disconnect, and cancellation.

use serde_json::{Value, json};
use tandem_e2e::backend_scenarios::{self as scenarios, Kind, cut};
use tandem_e2e::{ModelServer, RawEnd, Recorded, TempDir};

const KEY_VAR: &str = "TANDEM_E2E_MISTRAL_KEY";
const KEY: &str = "mistral-e2e-0123";

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

const KIND: Kind = Kind {
    name: "mistral",
    env: &[(KEY_VAR, KEY)],
    options,
    url: scenarios::root_url,
    path: "/v1/fim/completions",
    content_type: "text/event-stream",
    fixture: scenarios::PYTHON_FIXTURE,
    file: "calc.py",
    language: "python",
    preamble: String::new,
    keep_alive: ": keep-alive\n\n",
    token: delta,
    good_stream: stream,
    good_text: "a + b  # café",
    stall_text: Some("a"),
};

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
    assert_eq!(
        scenarios::sorted_keys(b),
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
    // The block ends before `print`.
    scenarios::check_split_stream(
        &KIND,
        &stream(),
        &[1, 6, 200],
        0,
        "a + b  # café",
        assert_request_shape,
    );
}

#[test]
fn a_configured_model_is_sent() {
    let model = ModelServer::start(KIND.raw(cut(&stream(), 50), 0, RawEnd::Finish));
    let dir = TempDir::new("mistral-model");
    let server = KIND.start_with(&model, 20_000, &dir, |opts| {
        opts["backend"]["model"] = json!("codestral-2501");
    });
    let (_, _, items) = KIND.complete(&server, &dir);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(model.wait_requests(1)[0].body["model"], "codestral-2501");
    server.shutdown_and_exit();
}

const ERROR_BODY: &str = "{\"object\":\"error\",\"message\":\"nope\",\"type\":\"e2e_error\"}";

#[test]
fn http_errors_are_reported_with_their_status() {
    scenarios::check_http_errors(
        &KIND,
        &[
            (401, ERROR_BODY, &["check the API key"]),
            (404, ERROR_BODY, &[]),
            (429, ERROR_BODY, &["rate-limiting"]),
            (500, ERROR_BODY, &[]),
        ],
    );
}

#[test]
fn a_malformed_event_is_a_protocol_error() {
    let s = format!("{}data: {{\"choices\": [\n\n", delta("a"));
    scenarios::check_bad_stream(&KIND, &s, 8, &["`mistral`", "bad event"]);
}

tandem_e2e::backend_scenario_tests!(KIND);
