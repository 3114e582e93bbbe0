//! The `openai` backend without `backend.fim` and `backend.model`, as llama.cpp's `llama-server`
//! is used: the fill-in-the-middle template comes from the server's `GET /v1/models` (asked once,
//! at the first completion), and an explicit `fim` means the list is never asked.

use serde_json::{Value, json};
use tandem_e2e::{Behavior, Encoding, ModelServer, RawEnd, TempDir, TestServer, cursor, position};

const QWEN_GGUF: &str = "qwen2.5-coder-0.5b-instruct-q5_0.gguf";

/// A loopback llama-server: `GET /v1/models` lists `models`; completions stream `x`.
fn llama_server(models: Value) -> ModelServer {
    ModelServer::route(move |_, request| {
        if request.path == "/v1/models" {
            Behavior::raw("application/json", &[&models.to_string()], RawEnd::Finish)
        } else {
            Behavior::stream(&["x"])
        }
    })
}

/// How llama-server answers with a Qwen2.5-Coder GGUF loaded (both list shapes at once).
fn qwen_list() -> Value {
    json!({
        "models": [{ "name": QWEN_GGUF, "model": QWEN_GGUF, "modified_at": "", "size": "",
                     "digest": "", "type": "model", "description": "", "tags": [""],
                     "capabilities": ["completion"], "parameters": "", "details": {} }],
        "object": "list",
        "data": [{ "id": QWEN_GGUF, "object": "model", "created": 1_733_000_000,
                   "owned_by": "llamacpp", "meta": { "vocab_type": 2, "n_ctx_train": 32768 } }],
    })
}

/// No `model`, no `fim`: what a llama-server user writes.
fn options(url: &str, backend: Value) -> Value {
    let mut options = json!({
        "backend": { "kind": "openai", "url": url, "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    });
    if let (Some(base), Some(extra)) = (options["backend"].as_object_mut(), backend.as_object()) {
        base.extend(extra.clone());
    }
    options
}

/// Opens `name` (Rust) with `fixture` and asks for an inline completion at its `$0`; returns
/// the document's text and the cursor's offset.
fn complete(server: &TestServer, dir: &TempDir, name: &str, fixture: &str) -> (String, usize) {
    let uri = dir.uri(name);
    let (text, at) = cursor(fixture);
    server.open(&uri, "rust", &text);
    let texts = server.inline_texts(&uri, position(&text, at, Encoding::Utf16), 1);
    assert_eq!(texts, vec!["x".to_owned()], "{}", server.stderr());
    (text, at)
}

fn routes(model: &ModelServer) -> Vec<String> {
    model
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn the_template_of_the_model_llama_server_lists_is_used() {
    let model = llama_server(qwen_list());
    let dir = TempDir::new("fim-detect");
    let server = TestServer::start(options(&model.url(), json!({})));
    let (text, at) = complete(
        &server,
        &dir,
        "main.rs",
        "fn main() {\n    let x = $0;\n}\n",
    );
    let (other, other_at) = complete(&server, &dir, "lib.rs", "pub fn f() -> u8 {\n    $0\n}\n");

    assert_eq!(
        routes(&model),
        [
            "GET /v1/models",
            "POST /v1/completions",
            "POST /v1/completions"
        ],
        "the list is asked once, before the first completion"
    );
    let requests = model.requests();
    for (request, text, at) in [(&requests[1], &text, at), (&requests[2], &other, other_at)] {
        let prompt = request.prompt();
        assert!(
            prompt.ends_with(&format!(
                "<|fim_prefix|>{}<|fim_suffix|>{}<|fim_middle|>",
                &text[..at],
                &text[at..]
            )),
            "Qwen2.5-Coder's markers: {prompt:?}"
        );
        assert!(!prompt.contains("<fim_prefix>"), "{prompt:?}");
        assert!(
            request.body.get("model").is_none(),
            "no model is sent: {}",
            request.body
        );
        let stops = request.body["stop"].as_array().expect("stops");
        assert!(
            stops.contains(&json!("<|fim_middle|>")) && !stops.contains(&json!("<fim_middle>")),
            "the stops follow the template: {stops:?}"
        );
    }
    let log = server.stderr();
    assert!(
        log.contains(&format!(
            "fim template `qwen` from the server's model list (`{QWEN_GGUF}`)"
        )),
        "the choice is logged: {log}"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_list_naming_no_known_family_keeps_starcoder_and_says_so() {
    let model = llama_server(json!({ "object": "list", "data": [{ "id": "tiny.gguf" }] }));
    let dir = TempDir::new("fim-detect-unknown");
    let server = TestServer::start(options(&model.url(), json!({})));
    let (text, at) = complete(
        &server,
        &dir,
        "main.rs",
        "fn main() {\n    let x = $0;\n}\n",
    );
    assert_eq!(routes(&model), ["GET /v1/models", "POST /v1/completions"]);
    assert!(
        model.requests()[1].prompt().ends_with(&format!(
            "<fim_prefix>{}<fim_suffix>{}<fim_middle>",
            &text[..at],
            &text[at..]
        )),
        "{:?}",
        model.requests()[1].prompt()
    );
    let log = server.stderr();
    assert!(
        log.contains("fim template `starcoder`: the server's model list (`tiny.gguf`) names no known model family"),
        "the fallback is logged: {log}"
    );
    server.shutdown_and_exit();
}

#[test]
fn an_explicit_fim_means_the_model_list_is_never_asked() {
    let model = llama_server(qwen_list());
    let dir = TempDir::new("fim-explicit");
    let server = TestServer::start(options(&model.url(), json!({ "fim": "codellama" })));
    let (text, at) = complete(
        &server,
        &dir,
        "main.rs",
        "fn main() {\n    let x = $0;\n}\n",
    );
    complete(&server, &dir, "lib.rs", "pub fn f() -> u8 {\n    $0\n}\n");
    assert_eq!(
        routes(&model),
        ["POST /v1/completions", "POST /v1/completions"],
        "only completions"
    );
    let prompt = model.requests()[0].prompt().to_owned();
    assert!(
        prompt.ends_with(&format!("<PRE> {} <SUF>{} <MID>", &text[..at], &text[at..])),
        "the configured template: {prompt:?}"
    );
    assert!(
        !server.stderr().contains("from the server's model list"),
        "{}",
        server.stderr()
    );
    server.shutdown_and_exit();
}
