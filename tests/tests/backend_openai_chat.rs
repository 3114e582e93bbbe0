//! The `openai-chat` backend through the LSP: the exact request a chat model gets (the code with
//! a hole, the key, the options), realistic streams split anywhere, the code taken out of a
//! chatty reply, HTTP errors, a first token that never comes, a disconnect, and cancellation.

use serde_json::{Value, json};
use tandem_e2e::backend_scenarios::{self as scenarios, Kind, cut};
use tandem_e2e::{ModelServer, RawEnd, Recorded, TempDir, insert_text};

const KEY_VAR: &str = "TANDEM_E2E_OPENAI_CHAT_KEY";
const KEY: &str = "sk-chat-e2e-0123";

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

const KIND: Kind = Kind {
    name: "openai-chat",
    env: &[(KEY_VAR, KEY)],
    options,
    url: ModelServer::url,
    path: "/v1/chat/completions",
    content_type: "text/event-stream",
    fixture: scenarios::PYTHON_FIXTURE,
    file: "calc.py",
    language: "python",
    preamble: String::new,
    keep_alive: ": ping\n\n",
    token: content,
    good_stream: chatty_stream,
    good_text: "a + b  # café",
    // Prose arrives (nothing is code yet), then the model stalls.
    stall_text: Some("Here is the code you asked for:\n"),
};

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

/// One `chat.completion.chunk` event for the first candidate.
fn content(text: &str) -> String {
    delta(0, text)
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
    // Prose, fence and the repeated `return ` are gone.
    scenarios::check_split_stream(
        &KIND,
        &chatty_stream(),
        &[1, 7, 64],
        1,
        "a + b  # café",
        assert_request_shape,
    );
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
    let model = ModelServer::start(KIND.raw(cut(&stream, 13), 1, RawEnd::Finish));
    let dir = TempDir::new("chat-n");
    let server = KIND.start_with(&model, 20_000, &dir, |opts| {
        opts["completion"]["candidates"] = json!(2);
    });
    let (_, _, items) = KIND.complete(&server, &dir);
    let mut texts: Vec<String> = items.iter().map(insert_text).collect();
    texts.sort();
    assert_eq!(texts, vec!["a * b".to_owned(), "a - b".to_owned()]);
    assert_eq!(model.wait_requests(1)[0].body["n"], 2);
    server.shutdown_and_exit();
}

const ERROR_BODY: &str = "{\"error\":{\"message\":\"nope\",\"type\":\"e2e\"}}";

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
    let stream = format!("{}data: {{\"choices\": [oops\n\n", delta(0, "a + "));
    scenarios::check_bad_stream(&KIND, &stream, 5, &["could not read", "bad event"]);
}

tandem_e2e::backend_scenario_tests!(KIND);
