//! The `tgi` backend through the LSP against a loopback stand-in for Text Generation Inference:
//! the exact `/generate_stream` request, token events split anywhere with keep-alive comments,
//! special tokens, errors, timeouts, disconnects, cancellation and stopping early.

use serde_json::{Value, json};
use tandem_e2e::backend_scenarios::{self as scenarios, Kind};
use tandem_e2e::{
    Behavior, ModelServer, RawEnd, TempDir, TestServer, init_params, starcoder_prompt,
};

const SSE: &str = "text/event-stream";

fn kind_options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": { "kind": "tgi", "url": url, "timeoutMs": timeout_ms },
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
    name: "tgi",
    env: &[],
    options: kind_options,
    url: scenarios::root_url,
    path: "/generate_stream",
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

/// One token event as TGI writes it.
fn event(text: &str) -> String {
    token(text, false, None)
}

fn token(text: &str, special: bool, generated: Option<&str>) -> String {
    format!(
        "data:{}\n\n",
        json!({ "index": 1, "token": { "id": 42, "text": text, "logprob": -0.25, "special": special },
                "generated_text": generated, "details": null, "top_tokens": null })
    )
}

/// The last event: the end-of-text token, with the whole text.
fn final_event() -> String {
    token("<|endoftext|>", true, Some("(whole text)"))
}

#[test]
fn completes_through_generate_stream() {
    let stream = [
        event("println!(\""),
        ": keep-alive\n\n".to_owned(),
        event("{x} 🎉\");").replace("\n\n", "\r\n\r\n"),
        event("\n"),
        token("<fim_middle>", true, None),
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
                ("POST", "/generate_stream")
            );
            assert_eq!(sent.header("content-type"), Some("application/json"));
            assert_eq!(sent.header("authorization"), None, "no key configured");
            assert_eq!(
                sent.body,
                json!({
                    "inputs": starcoder_prompt(&text[..at], &text[at..]),
                    "parameters": {
                        "max_new_tokens": 128,
                        "temperature": 0.2,
                        "stop": ["<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
                        "return_full_text": false,
                    },
                }),
                "a StarCoder prompt by default, with at most four stop sequences"
            );
        },
    );
}

#[test]
fn options_key_and_request_body_reach_the_server() {
    // The token limit ends it: the last event's token is text, and is kept.
    let stream = [event("let y"), token(" = 2;", false, Some("let y = 2;"))].concat();
    let model = ModelServer::start(KIND.raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
    let dir = TempDir::new("tgi-options");
    let server = TestServer::spawn_with_env(&[], &[("TANDEM_E2E_TGI_KEY", "sesame")]);
    server.initialize(init_params(
        options(
            &model,
            json!({
                "fim": "deepseek", "apiKeyEnv": "TANDEM_E2E_TGI_KEY", "maxTokens": 40,
                "temperature": 0.0, "topP": 0.5, "stop": ["\n\n"],
                "requestBody": { "parameters": { "top_k": 10 } },
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
    assert_eq!(sent.path, "/generate_stream");
    assert_eq!(sent.header("authorization"), Some("Bearer sesame"));
    assert_eq!(
        sent.body,
        json!({
            "inputs": format!("<｜fim▁begin｜>{}<｜fim▁hole｜>{}<｜fim▁end｜>", &text[..at], &text[at..]),
            "parameters": {
                "max_new_tokens": 40,
                "do_sample": false,
                "top_p": 0.5,
                "stop": ["\n\n", "<｜end▁of▁sentence｜>", "<|EOT|>"],
                "return_full_text": false,
                "top_k": 10,
            },
        }),
        "greedy decoding is `do_sample: false`, never a temperature of 0"
    );
    server.shutdown_and_exit();
}

#[test]
fn http_errors_are_reported_with_the_status() {
    scenarios::check_http_errors(
        &KIND,
        &[
            (401, "{\"error\":\"Authorization header is invalid\"}", &[]),
            (404, "Not Found", &[]),
            (
                429,
                "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
                &[],
            ),
            (
                500,
                "{\"error\":\"Request failed during generation: CUDA out of memory\",\"error_type\":\"generation\"}",
                // The server's words.
                &["CUDA out of memory"],
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
                "data:{\"error\":\"Request failed during generation: Server error: out of memory\",\"error_type\":\"generation\"}\n\n",
                "Server error: out of memory",
            ),
            ("data:{\"token\": {\"text\": \"x\n\n", "could not read"),
        ],
    );
}

tandem_e2e::backend_scenario_tests!(KIND);

#[test]
fn a_block_that_ends_early_closes_the_stream_before_its_end() {
    scenarios::check_block_ends_early(&KIND);
}

#[test]
fn doctor_names_the_served_model() {
    let model = ModelServer::start(Behavior::Status(
        200,
        "{\"model_id\":\"bigcode/starcoder2-3b\",\"max_stop_sequences\":4}".to_owned(),
    ));
    let out = scenarios::doctor(&KIND, &model, "");
    let sent = &model.wait_requests(1)[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/info"));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("model: bigcode/starcoder2-3b"), "{out:#?}");
}
