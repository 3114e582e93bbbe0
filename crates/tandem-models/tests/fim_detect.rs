//! The `openai` backend without `backend.fim` and `backend.model` (llama.cpp's server needs no
//! model): the fill-in-the-middle template comes from the server's `GET /models`, asked once at
//! the first completion, and the fallback (StarCoder's) stays when the list cannot be read or
//! names no known family. Against a loopback fake that records every request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, BackendKind, CompletionMode, CompletionRequest};
use tandem_models::Backend;
use tandem_models::openai::OpenAiBackend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(10);
const QWEN_GGUF: &str = "qwen2.5-coder-0.5b-instruct-q5_0.gguf";

/// How the fake answers `GET /v1/models`.
#[derive(Clone)]
enum Models {
    /// `200` with this JSON, after this delay.
    Json(Value, Duration),
    /// This status.
    Status(u16),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    async fn start(models: Models) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (log, models) = (log.clone(), models.clone());
                tokio::spawn(async move { serve(socket, log, models).await });
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn asked_models(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path == "/v1/models")
            .count()
    }

    /// The prompts of the completions, in order.
    fn prompts(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|s| s.path == "/v1/completions")
            .map(|s| s.body["prompt"].as_str().expect("a prompt").to_owned())
            .collect()
    }

    fn config(&self) -> BackendConfig {
        BackendConfig {
            kind: BackendKind::Openai,
            url: Some(self.url.clone()),
            timeout_ms: 5000,
            ..BackendConfig::default()
        }
    }
}

async fn serve(mut socket: tokio::net::TcpStream, log: Arc<Mutex<Vec<Seen>>>, models: Models) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    log.lock().expect("lock").push(Seen {
        method: method.clone(),
        path: path.clone(),
        body,
    });
    let answer = |status: u16, content_type: &str, text: &str| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{text}",
            text.len()
        )
    };
    let response = match (method.as_str(), path.as_str(), models) {
        ("GET", "/v1/models", Models::Json(value, delay)) => {
            tokio::time::sleep(delay).await;
            answer(200, "application/json", &value.to_string())
        }
        ("GET", "/v1/models", Models::Status(status)) => {
            answer(status, "application/json", "{\"error\":\"no\"}")
        }
        ("GET", "/v1/models", Models::Hang) => {
            let _ = socket.read(&mut chunk).await;
            return;
        }
        ("POST", "/v1/completions", _) => {
            let event = json!({ "choices": [{ "text": "x", "index": 0 }] });
            answer(
                200,
                "text/event-stream",
                &format!("data: {event}\n\ndata: [DONE]\n\n"),
            )
        }
        _ => answer(404, "text/plain", "not found"),
    };
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

fn request() -> CompletionRequest {
    CompletionRequest {
        prefix: "fn main() {".into(),
        suffix: "}".into(),
        snippets: vec![],
        path: "main.rs".into(),
        language: "rust".into(),
        mode: CompletionMode::SingleLine,
        stop: vec![],
        max_tokens: 8,
        candidates: 1,
    }
}

const QWEN_PROMPT: &str = "<|fim_prefix|>fn main() {<|fim_suffix|>}<|fim_middle|>";
const STARCODER_PROMPT: &str = "<fim_prefix>fn main() {<fim_suffix>}<fim_middle>";

/// One completion to its end; its text.
async fn complete(backend: &OpenAiBackend) -> String {
    let run = async {
        let stream = backend.stream(request()).await.expect("a stream");
        stream
            .map(|c| c.expect("a chunk").text)
            .collect::<String>()
            .await
    };
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("the completion ends")
}

fn llama_server_list() -> Value {
    json!({
        "models": [{ "name": QWEN_GGUF, "model": QWEN_GGUF, "type": "model" }],
        "object": "list",
        "data": [{ "id": QWEN_GGUF, "object": "model", "owned_by": "llamacpp" }],
    })
}

#[tokio::test]
async fn the_template_comes_from_the_model_list_once() {
    let fake = Fake::start(Models::Json(llama_server_list(), Duration::ZERO)).await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    assert_eq!(
        backend.preview(&request()).prompt.as_deref(),
        Some(STARCODER_PROMPT),
        "not known before the first completion"
    );
    assert_eq!(complete(&backend).await, "x");
    assert_eq!(complete(&backend).await, "x");
    let seen = fake.seen();
    assert_eq!(
        seen.iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect::<Vec<_>>(),
        [
            "GET /v1/models",
            "POST /v1/completions",
            "POST /v1/completions"
        ],
        "asked once, before the first completion"
    );
    assert_eq!(fake.prompts(), [QWEN_PROMPT, QWEN_PROMPT]);
    let body = &seen[1].body;
    assert!(body.get("model").is_none(), "no model is sent: {body}");
    let stops = body["stop"].as_array().expect("stops");
    assert!(
        stops.contains(&json!("<|fim_middle|>")) && !stops.contains(&json!("<fim_middle>")),
        "the stops follow the template: {body}"
    );
    assert_eq!(
        backend.preview(&request()).prompt.as_deref(),
        Some(QWEN_PROMPT),
        "the preview uses the detected template"
    );
}

#[tokio::test]
async fn the_older_list_shape_is_read_too() {
    let list = json!({ "models": [{ "name": "deepseek-coder-1.3b-base.Q8_0.gguf" }] });
    let fake = Fake::start(Models::Json(list, Duration::ZERO)).await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    complete(&backend).await;
    assert_eq!(
        fake.prompts(),
        ["<｜fim▁begin｜>fn main() {<｜fim▁hole｜>}<｜fim▁end｜>"]
    );
}

#[tokio::test]
async fn concurrent_first_completions_ask_once() {
    let fake = Fake::start(Models::Json(
        llama_server_list(),
        Duration::from_millis(100),
    ))
    .await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    let texts = futures::future::join_all((0..4).map(|_| complete(&backend))).await;
    assert_eq!(texts, ["x", "x", "x", "x"]);
    assert_eq!(fake.asked_models(), 1);
    assert_eq!(fake.prompts(), [QWEN_PROMPT; 4]);
}

#[tokio::test]
async fn a_cancelled_first_completion_does_not_cancel_the_question() {
    let fake = Fake::start(Models::Json(
        llama_server_list(),
        Duration::from_millis(200),
    ))
    .await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    // Dropped while the list is being asked (as when the user types on).
    let first = tokio::time::timeout(Duration::from_millis(50), backend.stream(request())).await;
    assert!(first.is_err(), "the first completion was still waiting");
    assert_eq!(complete(&backend).await, "x");
    assert_eq!(fake.asked_models(), 1);
    assert_eq!(fake.prompts(), [QWEN_PROMPT]);
}

#[tokio::test]
async fn a_list_naming_nothing_known_keeps_starcoder_for_good() {
    let list = json!({ "object": "list", "data": [{ "id": "tiny.gguf" }] });
    let fake = Fake::start(Models::Json(list, Duration::ZERO)).await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    complete(&backend).await;
    complete(&backend).await;
    assert_eq!(fake.asked_models(), 1);
    assert_eq!(fake.prompts(), [STARCODER_PROMPT, STARCODER_PROMPT]);
}

#[tokio::test]
async fn an_unreadable_list_keeps_starcoder_and_is_not_asked_every_time() {
    for models in [
        Models::Status(404),
        Models::Json(json!("nope"), Duration::ZERO),
    ] {
        let fake = Fake::start(models).await;
        let backend = OpenAiBackend::new(&fake.config()).expect("valid");
        complete(&backend).await;
        complete(&backend).await;
        complete(&backend).await;
        assert_eq!(fake.asked_models(), 1, "the failure is remembered");
        assert_eq!(fake.prompts(), [STARCODER_PROMPT; 3]);
    }
}

#[tokio::test]
async fn a_list_that_never_comes_delays_only_the_first_completion_briefly() {
    let fake = Fake::start(Models::Hang).await;
    let backend = OpenAiBackend::new(&fake.config()).expect("valid");
    let started = Instant::now();
    complete(&backend).await;
    let first = started.elapsed();
    assert!(
        first < Duration::from_secs(4),
        "the list is given about 2 s, not the completion's 5 s: {first:?}"
    );
    let started = Instant::now();
    complete(&backend).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.asked_models(), 1);
    assert_eq!(fake.prompts(), [STARCODER_PROMPT; 2]);
}

#[tokio::test]
async fn an_explicit_template_or_a_model_means_the_list_is_never_asked() {
    let fake = Fake::start(Models::Json(llama_server_list(), Duration::ZERO)).await;
    let configs = [
        BackendConfig {
            fim: Some("starcoder".into()),
            ..fake.config()
        },
        BackendConfig {
            fim: Some("<p>{prefix}<s>{suffix}<m>".into()),
            ..fake.config()
        },
        BackendConfig {
            model: Some("bigcode/starcoder2-3b".into()),
            ..fake.config()
        },
        BackendConfig {
            model: Some("m".into()),
            ..fake.config()
        },
    ];
    for config in &configs {
        let backend = OpenAiBackend::new(config).expect("valid");
        complete(&backend).await;
    }
    assert_eq!(fake.asked_models(), 0, "{:#?}", fake.seen());
    assert_eq!(
        fake.prompts(),
        [
            STARCODER_PROMPT,
            "<p>fn main() {<s>}<m>",
            STARCODER_PROMPT,
            STARCODER_PROMPT
        ]
    );
}

#[tokio::test]
async fn an_unreachable_server_fails_the_completion_as_before() {
    // Nothing listens: the completion fails, and so does the list.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = BackendConfig {
        kind: BackendKind::Openai,
        url: Some(format!("http://127.0.0.1:{port}/v1")),
        ..BackendConfig::default()
    };
    let backend = OpenAiBackend::new(&config).expect("valid");
    let err = backend.stream(request()).await.err().expect("an error");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_eq!(
        backend.preview(&request()).prompt.as_deref(),
        Some(STARCODER_PROMPT)
    );
}
