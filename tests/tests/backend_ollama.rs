//! The `ollama` backend through the LSP against a loopback stand-in for Ollama: the exact
//! `/api/generate` request, newline-delimited JSON streams split anywhere, errors, timeouts,
//! disconnects, cancellation and stopping early.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_e2e::{
    Behavior, Encoding, ModelServer, RawEnd, TempDir, TestServer, cursor, init_params, insert_text,
    position, run_cli,
};

const NDJSON: &str = "application/x-ndjson";
const MODEL: &str = "qwen2.5-coder:1.5b-base";
/// The cursor at the start of an empty line inside a block: a multi-line completion.
const FIXTURE: &str = "fn main() {\n    let x = 1;\n    $0\n}\n";

fn base_url(model: &ModelServer) -> String {
    format!("http://127.0.0.1:{}", model.port())
}

fn options(model: &ModelServer, backend: Value) -> Value {
    let mut options = json!({
        "backend": { "kind": "ollama", "url": base_url(model), "model": MODEL, "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    });
    if let (Some(base), Value::Object(over)) = (options["backend"].as_object_mut(), backend) {
        base.extend(over);
    }
    options
}

/// One streamed line as Ollama writes it.
fn line(text: &str) -> String {
    format!(
        "{}\n",
        json!({ "model": MODEL, "created_at": "2025-01-01T00:00:00Z", "response": text, "done": false })
    )
}

fn done_line() -> String {
    format!(
        "{}\n",
        json!({ "model": MODEL, "created_at": "2025-01-01T00:00:01Z", "response": "", "done": true,
                "done_reason": "stop", "total_duration": 1, "eval_count": 7 })
    )
}

/// `text` cut every `n` bytes (inside multi-byte characters too).
fn cut(text: &str, n: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(n).map(<[u8]>::to_vec).collect()
}

fn raw(pieces: Vec<Vec<u8>>, delay_ms: u64, end: RawEnd) -> Behavior {
    Behavior::Raw {
        content_type: NDJSON.to_owned(),
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
fn completes_through_api_generate_with_the_model_template() {
    let stream = [
        line("println!(\""),
        "\n".to_owned(), // a blank line between objects
        line("{x} 🎉\");"),
        line("\n"),
        line("    x + 1"),
        line("\n}\n"),
        line("\nfn other() {}\n"),
        done_line(),
    ]
    .concat();
    let model = ModelServer::start(raw(cut(&stream, 7), 1, RawEnd::Finish));
    let dir = TempDir::new("ollama");
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
        ("POST", "/api/generate")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None, "no key configured");
    assert_eq!(
        sent.body,
        json!({
            "model": MODEL,
            "prompt": &text[..at],
            "suffix": &text[at..],
            "stream": true,
            "options": { "num_predict": 128, "temperature": 0.2 },
        }),
        "Ollama applies the model's template to prompt and suffix"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_fim_template_sends_a_raw_prompt_with_its_stops_key_and_keep_alive() {
    let stream = [line("let y"), line(" = 2;"), done_line()].concat();
    let model = ModelServer::start(raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
    let dir = TempDir::new("ollama-raw");
    let server = TestServer::spawn_with_env(&[], &[("TANDEM_E2E_OLLAMA_KEY", " sesame ")]);
    server.initialize(init_params(
        options(
            &model,
            json!({
                "fim": "qwen", "keepAlive": "10m", "apiKeyEnv": "TANDEM_E2E_OLLAMA_KEY",
                "maxTokens": 40, "temperature": 0.0, "topP": 0.5, "stop": ["\n\n"],
                "headers": { "x-team": "tandem" },
                "requestBody": { "options": { "num_ctx": 4096 } },
            }),
        ),
        None,
        None,
    ));
    let (uri, text, at, pos) = open(&server, &dir);
    let texts = server.inline_texts(&uri, pos, 1);
    assert_eq!(texts, vec!["let y = 2;".to_owned()]);

    let sent = &model.wait_requests(1)[0];
    assert_eq!(sent.path, "/api/generate");
    assert_eq!(sent.header("authorization"), Some("Bearer sesame"));
    assert_eq!(sent.header("x-team"), Some("tandem"));
    assert_eq!(
        sent.body,
        json!({
            "model": MODEL,
            "prompt": format!("<|fim_prefix|>{}<|fim_suffix|>{}<|fim_middle|>", &text[..at], &text[at..]),
            "raw": true,
            "stream": true,
            "keep_alive": "10m",
            "options": {
                "num_predict": 40, "temperature": 0.0, "top_p": 0.5, "num_ctx": 4096,
                "stop": ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                         "<|file_sep|>", "<|im_end|>", "\n\n"],
            },
        })
    );
    server.shutdown_and_exit();
}

#[test]
fn http_errors_are_reported_with_the_status() {
    for (status, body) in [
        (401, "{\"error\":\"unauthorized\"}"),
        (
            404,
            "{\"error\":\"model 'qwen2.5-coder:1.5b-base' not found, try pulling it first\"}",
        ),
        (429, "{\"error\":\"too many requests\"}"),
        (500, "{\"error\":\"llama runner process has terminated\"}"),
    ] {
        let model = ModelServer::start(Behavior::Status(status, body.to_owned()));
        let dir = TempDir::new("ollama-status");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "HTTP {status}: an empty list: {items:?}");
        let message = server.wait_message(&[&format!("HTTP {status}")]);
        assert!(
            message.contains(&format!("`ollama` at {}", base_url(&model))),
            "the message names the backend: {message}"
        );
        if status == 404 {
            assert!(
                message.contains("try pulling it"),
                "the server's words: {message}"
            );
        }
        server.shutdown_and_exit();
    }
}

#[test]
fn an_error_line_and_a_malformed_line_are_reported() {
    for (bad, needle) in [
        (
            "{\"error\":\"model runner has unexpectedly stopped\"}\n",
            "unexpectedly stopped",
        ),
        ("{\"response\": \"x\", \"done\n", "could not read"),
    ] {
        let stream = [line("let"), bad.to_owned(), line(" y"), done_line()].concat();
        let model = ModelServer::start(raw(cut(&stream, 11), 0, RawEnd::Finish));
        let dir = TempDir::new("ollama-bad-line");
        let server = TestServer::start(options(&model, json!({})));
        let (uri, _, _, pos) = open(&server, &dir);
        let items = server.inline(&uri, pos, 1);
        assert!(items.is_empty(), "{needle}: an empty list: {items:?}");
        let message = server.wait_message(&[needle]);
        assert!(message.contains("`ollama`"), "{message}");
        server.shutdown_and_exit();
    }
}

#[test]
fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("ollama-timeout");
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
    let stream = [line("let"), line(" y")].concat();
    let cut_at = stream.len() - 5;
    let model = ModelServer::start(raw(
        vec![stream.as_bytes()[..cut_at].to_vec()],
        0,
        RawEnd::Disconnect,
    ));
    let dir = TempDir::new("ollama-disconnect");
    let server = TestServer::start(options(&model, json!({})));
    let (uri, _, _, pos) = open(&server, &dir);
    let items = server.inline(&uri, pos, 1);
    assert!(items.is_empty(), "{items:?}");
    let message = server.wait_message(&["`ollama`"]);
    assert!(message.contains(&base_url(&model)), "{message}");
    server.shutdown_and_exit();
}

#[test]
fn cancel_request_closes_the_connection() {
    // The answer has begun (headers sent) and stays open. (No text is written: a write racing
    // the client's close could fail before the fake observes the close.)
    let model = ModelServer::start(raw(Vec::new(), 0, RawEnd::Hang));
    let dir = TempDir::new("ollama-cancel");
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
    let mut pieces: Vec<Vec<u8>> = vec![line("step(0);\n").into_bytes()];
    for i in 1..30 {
        pieces.push(line(&format!("    step({i});\n")).into_bytes());
    }
    pieces.push([line("}\n"), line("\nfn next() {\n")].concat().into_bytes());
    let model = ModelServer::start(raw(pieces, 2, RawEnd::Hang));
    let dir = TempDir::new("ollama-early");
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
fn doctor_lists_the_pulled_models_and_warns_about_a_missing_one() {
    let model = ModelServer::start(Behavior::Status(
        200,
        "{\"models\":[{\"name\":\"llama3:latest\",\"model\":\"llama3:latest\",\"size\":1}]}"
            .to_owned(),
    ));
    let out = doctor("ollama", &model, &format!("model = \"{MODEL}\"\n"));
    let sent = &model.wait_requests(1)[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/api/tags")
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("llama3:latest"), "{out:#?}");
    assert!(
        all.contains(&format!("`backend.model` `{MODEL}` is not among them")),
        "{out:#?}"
    );
}
