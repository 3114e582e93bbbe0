//! The `tgi` backend through the LSP against a loopback stand-in for Text Generation Inference:
//! the exact `/generate_stream` request, token events split anywhere with keep-alive comments,
//! special tokens, errors, timeouts, disconnects, cancellation and stopping early.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, TempDir, TestServer, cursor, init_params, insert_text,
    position, run_cli, starcoder_prompt,
};

const SSE: &str = "text/event-stream";
/// The cursor at the start of an empty line inside a block: a multi-line completion.
const FIXTURE: &str = "fn main() {\n    let x = 1;\n    $0\n}\n";

fn base_url(model: &ModelServer) -> String {
    format!("http://127.0.0.1:{}", model.port())
}

fn options(model: &ModelServer, backend: Value) -> Value {
    let mut options = json!({
        "backend": { "kind": "tgi", "url": base_url(model), "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    });
    if let (Some(base), Value::Object(over)) = (options["backend"].as_object_mut(), backend) {
        base.extend(over);
    }
    options
}

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
    let model = ModelServer::start(raw(cut(&stream, 7), 1, RawEnd::Finish));
    let dir = TempDir::new("tgi");
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
    server.shutdown_and_exit();
}

#[test]
fn options_key_and_request_body_reach_the_server() {
    // The token limit ends it: the last event's token is text, and is kept.
    let stream = [event("let y"), token(" = 2;", false, Some("let y = 2;"))].concat();
    let model = ModelServer::start(raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
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
    let (uri, text, at, pos) = open(&server, &dir);
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
    for (status, body) in [
        (401, "{\"error\":\"Authorization header is invalid\"}"),
        (404, "Not Found"),
        (
            429,
            "{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}",
        ),
        (
            500,
            "{\"error\":\"Request failed during generation: CUDA out of memory\",\"error_type\":\"generation\"}",
        ),
    ] {
        let model = ModelServer::start(Behavior::Status(status, body.to_owned()));
        let dir = TempDir::new("tgi-status");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "HTTP {status}: an empty list: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}")]);
        assert!(
            message.contains(&format!("`tgi` at {}", base_url(&model))),
            "the message names the backend: {message}"
        );
        if status == 500 {
            assert!(
                message.contains("CUDA out of memory"),
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
            "data:{\"error\":\"Request failed during generation: Server error: out of memory\",\"error_type\":\"generation\"}\n\n",
            "Server error: out of memory",
        ),
        ("data:{\"token\": {\"text\": \"x\n\n", "could not read"),
    ] {
        let stream = [event("let"), bad.to_owned(), event(" y"), final_event()].concat();
        let model = ModelServer::start(raw(cut(&stream, 11), 0, RawEnd::Finish));
        let dir = TempDir::new("tgi-bad-event");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "{needle}: an empty list: {items:?}");
        let message = server.wait_message(&[needle]);
        assert!(message.contains("`tgi`"), "{message}");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("tgi-timeout");
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
    let dir = TempDir::new("tgi-disconnect");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, _, _, pos) = open(&server, &dir);
    let items = server.inline(&uri, pos, 1);
    assert!(items.is_empty(), "{items:?}");
    let message = server.wait_message(&["`tgi`"]);
    assert!(message.contains(&base_url(&model)), "{message}");
    server.shutdown_and_exit();
}

#[test]
fn cancel_request_closes_the_connection() {
    // The answer has begun (headers sent) and stays open. (No text is written: a write racing
    // the client's close could fail before the fake observes the close.)
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("tgi-cancel");
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
    let dir = TempDir::new("tgi-early");
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
fn doctor_names_the_served_model() {
    let model = ModelServer::start(Behavior::Status(
        200,
        "{\"model_id\":\"bigcode/starcoder2-3b\",\"max_stop_sequences\":4}".to_owned(),
    ));
    let out = doctor("tgi", &model, "");
    let sent = &model.wait_requests(1)[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/info"));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("model: bigcode/starcoder2-3b"), "{out:#?}");
}
