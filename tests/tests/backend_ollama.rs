//! The `ollama` backend through the LSP against a loopback stand-in for Ollama: the exact
//! `/api/generate` request, newline-delimited JSON streams split anywhere, errors, timeouts,
//! disconnects, cancellation and stopping early.

use serde_json::{Value, json};
use tandem_e2e::backend_scenarios::{self as scenarios, Kind};
use tandem_e2e::{Behavior, ModelServer, RawEnd, TempDir, TestServer, init_params};

const NDJSON: &str = "application/x-ndjson";
const MODEL: &str = "qwen2.5-coder:1.5b-base";

fn kind_options(url: &str, timeout_ms: u64) -> Value {
    json!({
        "backend": { "kind": "ollama", "url": url, "model": MODEL, "timeoutMs": timeout_ms },
        "completion": { "debounceMs": 0 },
    })
}

fn options(model: &ModelServer, backend: Value) -> Value {
    KIND.options_with(model, backend)
}

fn good_stream() -> String {
    [line("let y"), line(" = 2;"), done_line()].concat()
}

const KIND: Kind = Kind {
    name: "ollama",
    env: &[],
    options: kind_options,
    url: scenarios::root_url,
    path: "/api/generate",
    content_type: NDJSON,
    fixture: scenarios::BLOCK_FIXTURE,
    file: "main.txt",
    language: "plaintext",
    preamble: String::new,
    keep_alive: "",
    token: line,
    good_stream,
    good_text: "let y = 2;",
    // The answer has begun (headers sent) and stays open. (No text is written: a write racing
    // the client's close could fail before the fake observes the close.)
    stall_text: None,
};

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
        },
    );
}

#[test]
fn a_fim_template_sends_a_raw_prompt_with_its_stops_key_and_keep_alive() {
    let stream = [line("let y"), line(" = 2;"), done_line()].concat();
    let model = ModelServer::start(KIND.raw(vec![stream.into_bytes()], 0, RawEnd::Finish));
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
    let (uri, text, at, pos) = KIND.open(&server, &dir);
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
    scenarios::check_http_errors(
        &KIND,
        &[
            (401, "{\"error\":\"unauthorized\"}", &[]),
            (
                404,
                "{\"error\":\"model 'qwen2.5-coder:1.5b-base' not found, try pulling it first\"}",
                // The server's words.
                &["try pulling it"],
            ),
            (429, "{\"error\":\"too many requests\"}", &[]),
            (
                500,
                "{\"error\":\"llama runner process has terminated\"}",
                &[],
            ),
        ],
    );
}

#[test]
fn an_error_line_and_a_malformed_line_are_reported() {
    scenarios::check_bad_events(
        &KIND,
        &[
            (
                "{\"error\":\"model runner has unexpectedly stopped\"}\n",
                "unexpectedly stopped",
            ),
            ("{\"response\": \"x\", \"done\n", "could not read"),
        ],
    );
}

tandem_e2e::backend_scenario_tests!(KIND);

#[test]
fn a_block_that_ends_early_closes_the_stream_before_its_end() {
    scenarios::check_block_ends_early(&KIND);
}

#[test]
fn doctor_lists_the_pulled_models_and_warns_about_a_missing_one() {
    let model = ModelServer::start(Behavior::Status(
        200,
        "{\"models\":[{\"name\":\"llama3:latest\",\"model\":\"llama3:latest\",\"size\":1}]}"
            .to_owned(),
    ));
    let out = scenarios::doctor(&KIND, &model, &format!("model = \"{MODEL}\"\n"));
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
