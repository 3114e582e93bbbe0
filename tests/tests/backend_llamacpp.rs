//! The `llamacpp` backend through the LSP against a loopback stand-in for llama.cpp's server:
//! the exact `/infill` request, Server-Sent Events split anywhere with keep-alive comments,
//! errors, timeouts, disconnects, cancellation and stopping early.

use serde_json::{Value, json};
use tandem_e2e::backend_scenarios::{self as scenarios, Kind};
use tandem_e2e::{Behavior, ModelServer, RawEnd, TempDir, TestServer, init_params};

const SSE: &str = "text/event-stream";

fn kind_options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": { "kind": "llamacpp", "url": url, "timeoutMs": timeout_ms },
        "completion": { "debounceMs": 0 },
    })
}

fn options(model: &ModelServer, backend: Value) -> Value {
    KIND.options_with(model, backend)
}

fn good_stream() -> String {
    [event("let y"), event(" = 2;"), final_event()].concat()
}

const KIND: Kind = Kind {
    name: "llamacpp",
    env: &[],
    options: kind_options,
    url: scenarios::root_url,
    path: "/infill",
    content_type: SSE,
    fixture: scenarios::BLOCK_FIXTURE,
    file: "main.txt",
    language: "plaintext",
    preamble: String::new,
    keep_alive: ": keep-alive\n\n",
    token: event,
    good_stream,
    good_text: "let y = 2;",
    // The answer has begun (headers sent) and stays open. (No text is written: a write racing
    // the client's close could fail before the fake observes the close.)
    stall_text: None,
};

/// One streamed event as llama.cpp's server writes it.
fn event(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({ "index": 0, "content": text, "tokens": [], "stop": false, "id_slot": -1,
                "tokens_predicted": 1, "tokens_evaluated": 12 })
    )
}

fn final_event() -> String {
    format!(
        "data: {}\n\n",
        json!({ "index": 0, "content": "", "tokens": [], "id_slot": 0, "stop": true,
                "model": "gpt-3.5-turbo", "tokens_predicted": 7, "tokens_evaluated": 12,
                "stop_type": "eos", "stopping_word": "", "timings": { "predicted_n": 7 } })
    )
}

#[test]
fn completes_through_infill() {
    let stream = [
        event("println!(\""),
        ": keep-alive\n\n".to_owned(),
        event("{x} 🎉\");").replace("\n\n", "\r\n\r\n"),
        event("\n"),
        event(""),
        event("    x + 1"),
        event("\n}\n"),
        event("\nfn other() {}\n"),
        final_event(),
    ]
    .concat();
    // The block ends at `}`.
    scenarios::check_split_stream(
        &KIND,
        &stream,
        &[7],
        1,
        "println!(\"{x} 🎉\");\n    x + 1",
        |sent, text, at| {
            assert_eq!(
                (sent.method.as_str(), sent.path.as_str()),
                ("POST", "/infill")
            );
            assert_eq!(sent.header("content-type"), Some("application/json"));
            assert_eq!(sent.header("authorization"), None, "no key configured");
            assert_eq!(
                sent.body,
                json!({
                    "input_prefix": &text[..at],
                    "input_suffix": &text[at..],
                    "input_extra": [],
                    "n_predict": 128,
                    "temperature": 0.2,
                    "stop": [],
                    "stream": true,
                    "cache_prompt": true,
                }),
                "the server applies the model's own infill tokens"
            );
        },
    );
}

#[test]
fn options_key_and_request_body_reach_the_server() {
    let stream = [event("let y"), event(" = 2;"), final_event()].concat();
    let model = ModelServer::start(KIND.raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
    let dir = TempDir::new("llamacpp-options");
    let server = TestServer::spawn_with_env(&[], &[("TANDEM_E2E_LLAMA_KEY", "sesame")]);
    server.initialize(init_params(
        options(
            &model,
            json!({
                "model": "qwen", "apiKeyEnv": "TANDEM_E2E_LLAMA_KEY", "maxTokens": 40,
                "temperature": 0.0, "topP": 0.5, "stop": ["\n\n"],
                "requestBody": { "n_indent": 4, "t_max_predict_ms": 500 },
            }),
        ),
        None,
        None,
    ));
    let (uri, text, at, pos) = KIND.open(&server, &dir);
    assert_eq!(
        server.inline_texts(&uri, pos, 1),
        vec!["let y = 2;".to_owned()]
    );

    let sent = &model.wait_requests(1)[0];
    assert_eq!(sent.path, "/infill");
    assert_eq!(sent.header("authorization"), Some("Bearer sesame"));
    assert_eq!(
        sent.body,
        json!({
            "input_prefix": &text[..at],
            "input_suffix": &text[at..],
            "input_extra": [],
            "model": "qwen",
            "n_predict": 40,
            "temperature": 0.0,
            "top_p": 0.5,
            "stop": ["\n\n"],
            "stream": true,
            "cache_prompt": true,
            "n_indent": 4,
            "t_max_predict_ms": 500,
        })
    );
    server.shutdown_and_exit();
}

#[test]
fn http_errors_are_reported_with_the_status() {
    scenarios::check_http_errors(
        &KIND,
        &[
            (
                401,
                "{\"error\":{\"code\":401,\"message\":\"Invalid API Key\",\"type\":\"authentication_error\"}}",
                &[],
            ),
            (
                404,
                "{\"error\":{\"code\":404,\"message\":\"File Not Found\",\"type\":\"not_found_error\"}}",
                &[],
            ),
            (
                429,
                "{\"error\":{\"code\":429,\"message\":\"busy\",\"type\":\"unavailable_error\"}}",
                &[],
            ),
            (
                500,
                "{\"error\":{\"code\":500,\"message\":\"Infill is not supported by this model\",\"type\":\"server_error\"}}",
                // The server's words.
                &["Infill is not supported"],
            ),
        ],
    );
}

#[test]
fn an_error_event_and_a_malformed_event_are_reported() {
    scenarios::check_bad_events(
        &KIND,
        &[
            (
                "data: {\"error\":{\"code\":500,\"message\":\"the slot was released\",\"type\":\"server_error\"}}\n\n",
                "the slot was released",
            ),
            ("data: {\"content\": \"x\", \"stop\n\n", "could not read"),
        ],
    );
}

tandem_e2e::backend_scenario_tests!(KIND);

#[test]
fn a_block_that_ends_early_closes_the_stream_before_its_end() {
    scenarios::check_block_ends_early(&KIND);
}

#[test]
fn doctor_says_when_the_model_is_still_loading() {
    let model = ModelServer::start(Behavior::Status(
        503,
        "{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":\"unavailable_error\"}}"
            .to_owned(),
    ));
    let out = scenarios::doctor(&KIND, &model, "");
    let sent = &model.wait_requests(1)[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/health")
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("model still loading"), "{out:#?}");
}
