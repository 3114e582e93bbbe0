//! The `llamacpp` backend through the LSP against a loopback stand-in for llama.cpp's server:
//! the exact `/infill` request, Server-Sent Events split anywhere with keep-alive comments,
//! errors, timeouts, disconnects, cancellation and stopping early.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, TempDir, TestServer, cursor, init_params, insert_text,
    position, run_cli,
};

const SSE: &str = "text/event-stream";
/// The cursor at the start of an empty line inside a block: a multi-line completion.
const FIXTURE: &str = "fn main() {\n    let x = 1;\n    $0\n}\n";

fn base_url(model: &ModelServer) -> String {
    format!("http://127.0.0.1:{}", model.port())
}

fn options(model: &ModelServer, backend: Value) -> Value {
    let mut options = json!({
        "backend": { "kind": "llamacpp", "url": base_url(model), "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    });
    if let (Some(base), Value::Object(over)) = (options["backend"].as_object_mut(), backend) {
        base.extend(over);
    }
    options
}

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

/// `text` cut every `n` bytes (inside multi-byte characters too).
fn cut(text: &str, n: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(n).map(<[u8]>::to_vec).collect()
}

fn raw(pieces: Vec<Vec<u8>>, delay_ms: u64, end: RawEnd) -> Behavior {
    Behavior::Raw {
        content_type: SSE.to_owned(),
        pieces,
        delay: Duration::from_millis(delay_ms),
        end,
    }
}

/// Opens the fixture; returns its URI, text, the cursor's byte offset and position.
fn open(server: &TestServer, dir: &TempDir) -> (String, String, usize, Value) {
    let (text, at) = cursor(FIXTURE);
    let uri = dir.uri("main.txt");
    server.open(&uri, "plaintext", &text);
    let pos = position(&text, at, Encoding::Utf16);
    (uri, text, at, pos)
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
    let model = ModelServer::start(raw(cut(&stream, 7), 1, RawEnd::Finish));
    let dir = TempDir::new("llamacpp");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, text, at, pos) = open(&server, &dir);
    let texts: Vec<String> = server
        .inline(&uri, pos, 1)
        .iter()
        .map(insert_text)
        .collect();
    assert_eq!(
        texts,
        vec!["println!(\"{x} 🎉\");\n    x + 1".to_owned()],
        "the post-processed completion: the block ends at `}}`"
    );

    let requests = model.wait_requests(1);
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
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
    server.shutdown_and_exit();
}

#[test]
fn options_key_and_request_body_reach_the_server() {
    let stream = [event("let y"), event(" = 2;"), final_event()].concat();
    let model = ModelServer::start(raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
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
    let (uri, text, at, pos) = open(&server, &dir);
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
    for (status, body) in [
        (
            401,
            "{\"error\":{\"code\":401,\"message\":\"Invalid API Key\",\"type\":\"authentication_error\"}}",
        ),
        (
            404,
            "{\"error\":{\"code\":404,\"message\":\"File Not Found\",\"type\":\"not_found_error\"}}",
        ),
        (
            429,
            "{\"error\":{\"code\":429,\"message\":\"busy\",\"type\":\"unavailable_error\"}}",
        ),
        (
            500,
            "{\"error\":{\"code\":500,\"message\":\"Infill is not supported by this model\",\"type\":\"server_error\"}}",
        ),
    ] {
        let model = ModelServer::start(Behavior::Status(status, body.to_owned()));
        let dir = TempDir::new("llamacpp-status");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "HTTP {status}: an empty list: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}")]);
        assert!(
            message.contains(&format!("`llamacpp` at {}", base_url(&model))),
            "the message names the backend: {message}"
        );
        if status == 500 {
            assert!(
                message.contains("Infill is not supported"),
                "the server's words: {message}"
            );
        }
        server.shutdown_and_exit();
    }
}

#[test]
fn an_error_event_and_a_malformed_event_are_reported() {
    for (bad, needle) in [
        (
            "data: {\"error\":{\"code\":500,\"message\":\"the slot was released\",\"type\":\"server_error\"}}\n\n",
            "the slot was released",
        ),
        ("data: {\"content\": \"x\", \"stop\n\n", "could not read"),
    ] {
        let stream = [event("let"), bad.to_owned(), event(" y"), final_event()].concat();
        let model = ModelServer::start(raw(cut(&stream, 11), 0, RawEnd::Finish));
        let dir = TempDir::new("llamacpp-bad-event");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "{needle}: an empty list: {items:?}");
        let message = server.wait_message(&[needle]);
        assert!(message.contains("`llamacpp`"), "{message}");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("llamacpp-timeout");
    let server = TestServer::start(options(&model, json!({ "timeoutMs": 300 })));
    let (uri, _, _, pos) = open(&server, &dir);
    let items = server.inline(&uri, pos, 1);
    assert!(items.is_empty(), "{items:?}");
    server.wait_message(&["did not answer within 300 ms"]);
    model.wait_closed(0);
    server.shutdown_and_exit();
}

#[test]
fn a_disconnect_mid_stream_is_reported() {
    let stream = [event("let"), event(" y")].concat();
    let cut_at = stream.len() - 5;
    let model = ModelServer::start(raw(
        vec![stream.as_bytes()[..cut_at].to_vec()],
        0,
        RawEnd::Disconnect,
    ));
    let dir = TempDir::new("llamacpp-disconnect");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, _, _, pos) = open(&server, &dir);
    let items = server.inline(&uri, pos, 1);
    assert!(items.is_empty(), "{items:?}");
    let message = server.wait_message(&["`llamacpp`"]);
    assert!(message.contains(&base_url(&model)), "{message}");
    server.shutdown_and_exit();
}

#[test]
fn cancel_request_closes_the_connection() {
    // The answer has begun (headers sent) and stays open. (No text is written: a write racing
    // the client's close could fail before the fake observes the close.)
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("llamacpp-cancel");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, _, _, pos) = open(&server, &dir);
    let pending = server.inline_async(&uri, pos, 1);
    model.wait_requests(1);
    server.cancel(pending);
    let response = server.response(pending);
    assert_eq!(response["error"]["code"], -32800, "{response}");
    assert!(model.wait_closed(0).closed);
    server.shutdown_and_exit();
}

#[test]
fn a_block_that_ends_early_closes_the_stream_before_its_end() {
    // Thirty lines of the block, then its closing brace and the next item in the last piece;
    // then the stream would go on (it hangs): only stopping early answers.
    let mut pieces: Vec<Vec<u8>> = vec![event("step(0);\n").into_bytes()];
    for i in 1..30 {
        pieces.push(event(&format!("    step({i});\n")).into_bytes());
    }
    pieces.push(
        [event("}\n"), event("\nfn next() {\n")]
            .concat()
            .into_bytes(),
    );
    let model = ModelServer::start(raw(pieces, 2, RawEnd::Hang));
    let dir = TempDir::new("llamacpp-early");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, _, _, pos) = open(&server, &dir);
    let texts = server.inline_texts(&uri, pos, 1);
    let expected: Vec<String> = (0..30)
        .map(|i| format!("{}step({i});", if i == 0 { "" } else { "    " }))
        .collect();
    assert_eq!(
        texts,
        vec![expected.join("\n")],
        "the block, cut at its end"
    );
    assert!(
        model.wait_closed(0).closed,
        "the connection was closed though the stream had not ended"
    );
    server.shutdown_and_exit();
}

/// `tandem doctor` with a config file for `kind` at the fake.
fn doctor(kind: &str, model: &ModelServer, extra: &str) -> tandem_e2e::CliOutput {
    let dir = TempDir::new("doctor");
    let config = dir.write(
        "config.toml",
        &format!(
            "[backend]\nkind = \"{kind}\"\nurl = \"{}\"\ntimeoutMs = 5000\n{extra}",
            base_url(model)
        ),
    );
    let root = dir.path().display().to_string();
    run_cli(&[
        "doctor",
        "--config",
        &config.display().to_string(),
        "--root",
        &root,
    ])
}

#[test]
fn doctor_says_when_the_model_is_still_loading() {
    let model = ModelServer::start(Behavior::Status(
        503,
        "{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":\"unavailable_error\"}}"
            .to_owned(),
    ));
    let out = doctor("llamacpp", &model, "");
    let sent = &model.wait_requests(1)[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/health")
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("model still loading"), "{out:#?}");
}
