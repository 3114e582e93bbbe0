//! `Backend::chat` against a loopback fake of each chat API: the exact request (path, headers,
//! body), replies streamed in pieces cut at odd byte boundaries (inside multi-byte characters
//! too), server errors, and cancellation (dropping the stream closes the connection). And the
//! clear error from kinds that cannot chat.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tandem_core::{BackendConfig, BackendKind};
use tandem_models::{Backend, ChatMessage, ChatRequest, EmbeddedIndex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(10);

/// What the fake received.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Value,
    /// Whether the client closed the connection while the fake held it open.
    closed_by_client: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers one request: `content_type`, then `reply` in pieces of odd sizes; then closes the
/// connection, or (`hang`) keeps it open until the client closes it.
async fn fake(content_type: &'static str, reply: String, hang: bool) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        socket.set_nodelay(true).expect("nodelay");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = socket.read(&mut chunk).await.expect("read the head");
            assert!(n > 0, "closed before the head ended");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("utf-8 head");
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("a content-length");
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = socket.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "closed before the body ended");
            body.extend_from_slice(&chunk[..n]);
        }
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n");
        socket.write_all(head.as_bytes()).await.expect("write");
        let bytes = reply.as_bytes();
        let (mut at, mut i) = (0, 0);
        while at < bytes.len() {
            let end = (at + [1, 7, 13, 3][i % 4]).min(bytes.len());
            socket.write_all(&bytes[at..end]).await.expect("write");
            tokio::time::sleep(Duration::from_millis(1)).await;
            (at, i) = (end, i + 1);
        }
        let closed_by_client = hang
            && matches!(
                tokio::time::timeout(LIMIT, socket.read(&mut chunk)).await,
                Ok(Ok(0) | Err(_))
            );
        Seen {
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).expect("a JSON body"),
            closed_by_client,
        }
    });
    (format!("http://{addr}"), task)
}

fn chat_config(kind: BackendKind, url: String, model: &str) -> BackendConfig {
    let mut config = BackendConfig {
        kind,
        url: Some(url),
        model: Some(model.to_owned()),
        ..BackendConfig::default()
    };
    config.headers.insert("X-Team".into(), "tandem".into());
    config
}

fn config_for(kind: BackendKind, url: String) -> BackendConfig {
    chat_config(kind, url, "m")
}

fn backend(config: &BackendConfig) -> Arc<dyn Backend> {
    tandem_models::build(config, &Arc::new(EmbeddedIndex::new(1 << 20))).expect("a backend")
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::system("You explain code."),
            ChatMessage::user("What does `add` do?"),
        ],
        max_tokens: 256,
        temperature: Some(0.5),
        stop: vec!["</answer>".into()],
    }
}

/// The reply's text, unaltered: prose, a fence and non-ASCII included.
const REPLY: &str = "It adds two numbers → é:\n```rust\nlet mut total = 1;\n```";

async fn chat_text(backend: &dyn Backend) -> String {
    let stream = tokio::time::timeout(LIMIT, backend.chat(request()))
        .await
        .expect("in time")
        .expect("the chat starts");
    let chunks: Vec<_> = tokio::time::timeout(LIMIT, stream.collect::<Vec<_>>())
        .await
        .expect("in time");
    chunks
        .into_iter()
        .map(|c| {
            let c = c.expect("no error");
            assert_eq!(c.candidate, 0);
            c.text
        })
        .collect()
}

/// Drops the stream after the first chunk; the fake must see the connection closed.
async fn cancels(config: &BackendConfig, task: JoinHandle<Seen>) {
    let backend = backend(config);
    let mut stream = backend.chat(request()).await.expect("the chat starts");
    let first = stream.next().await.expect("a chunk").expect("no error");
    assert_eq!(first.text, "It adds ");
    drop(stream);
    let seen = tokio::time::timeout(LIMIT, task)
        .await
        .expect("in time")
        .expect("the fake ran");
    assert!(seen.closed_by_client, "the connection stayed open");
}

fn sse(events: &[String]) -> String {
    events.iter().map(|e| format!("{e}\n\n")).collect()
}

fn openai_events(model: &str) -> Vec<String> {
    let event = |delta: Value, finish: Value| {
        let data = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {data}")
    };
    vec![
        event(json!({"role": "assistant", "content": ""}), Value::Null),
        event(json!({"content": "It adds "}), Value::Null),
        ": keep-alive".to_owned(),
        event(
            json!({"content": "two numbers → é:\n```rust\n"}),
            Value::Null,
        ),
        event(json!({"content": "let mut total = 1;\n```"}), Value::Null),
        event(json!({}), json!("stop")),
        "data: [DONE]".to_owned(),
    ]
}

fn openai_style_body(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You explain code."},
            {"role": "user", "content": "What does `add` do?"},
        ],
        "max_tokens": 256,
        "temperature": 0.5,
        "stop": ["</answer>"],
        "stream": true,
    })
}

fn assert_common_headers(seen: &Seen) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(seen.header("x-team"), Some("tandem"));
    assert!(
        seen.header("user-agent")
            .is_some_and(|ua| ua.starts_with("tandem/")),
        "{:?}",
        seen.headers
    );
}

#[tokio::test]
async fn openai_chat_streams_the_reply_as_is() {
    let (url, task) = fake("text/event-stream", sse(&openai_events("gpt-test")), false).await;
    let config = chat_config(BackendKind::OpenaiChat, format!("{url}/v1"), "gpt-test");
    assert_eq!(chat_text(&*backend(&config)).await, REPLY);
    let seen = task.await.expect("the fake ran");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_common_headers(&seen);
    assert_eq!(seen.body, openai_style_body("gpt-test"));

    let (url, task) = fake("text/event-stream", sse(&openai_events("m")[..2]), true).await;
    cancels(
        &chat_config(BackendKind::OpenaiChat, format!("{url}/v1"), "m"),
        task,
    )
    .await;
}

#[tokio::test]
async fn mistral_chats_on_its_chat_endpoint() {
    // CRLF line ends this time.
    let reply = sse(&openai_events("codestral-latest")).replace('\n', "\r\n");
    let (url, task) = fake("text/event-stream", reply, false).await;
    let config = chat_config(BackendKind::Mistral, url, "codestral-latest");
    assert_eq!(chat_text(&*backend(&config)).await, REPLY);
    let seen = task.await.expect("the fake ran");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_common_headers(&seen);
    assert_eq!(seen.body, openai_style_body("codestral-latest"));

    let (url, task) = fake("text/event-stream", sse(&openai_events("m")[..2]), true).await;
    cancels(&config_for(BackendKind::Mistral, url), task).await;
}

fn anthropic_events() -> Vec<String> {
    let event = |data: Value| {
        format!(
            "event: {}\ndata: {data}",
            data["type"].as_str().unwrap_or_default()
        )
    };
    let delta = |text: &str| {
        event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}))
    };
    vec![
        event(
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-test", "stop_reason": null,
            "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ),
        event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})),
        delta("It adds "),
        event(json!({"type": "ping"})),
        delta("two numbers → é:\n```rust\n"),
        delta("let mut total = 1;\n```"),
        event(json!({"type": "content_block_stop", "index": 0})),
        event(json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 20}})),
        event(json!({"type": "message_stop"})),
    ]
}

#[tokio::test]
async fn anthropic_sends_system_messages_apart() {
    let (url, task) = fake("text/event-stream", sse(&anthropic_events()), false).await;
    let config = chat_config(BackendKind::Anthropic, url, "claude-test");
    assert_eq!(chat_text(&*backend(&config)).await, REPLY);
    let seen = task.await.expect("the fake ran");
    assert_eq!(seen.path, "/v1/messages");
    assert_common_headers(&seen);
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen.body,
        json!({
            "model": "claude-test",
            "system": "You explain code.",
            "messages": [{"role": "user", "content": "What does `add` do?"}],
            "max_tokens": 256,
            "temperature": 0.5,
            "stop_sequences": ["</answer>"],
            "stream": true,
        })
    );

    let (url, task) = fake("text/event-stream", sse(&anthropic_events()[..3]), true).await;
    cancels(&config_for(BackendKind::Anthropic, url), task).await;
}

fn ollama_lines(model: &str) -> String {
    let line = |content: &str, done: bool| {
        let mut v = json!({"model": model, "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content}, "done": done});
        if done {
            v["done_reason"] = json!("stop");
            v["eval_count"] = json!(20);
        }
        format!("{v}\n")
    };
    [
        line("It adds ", false),
        line("two numbers → é:\n```rust\n", false),
        line("let mut total = 1;\n```", false),
        line("", true),
    ]
    .concat()
}

#[tokio::test]
async fn ollama_chats_on_api_chat() {
    let (url, task) = fake("application/x-ndjson", ollama_lines("qwen-test"), false).await;
    let mut config = chat_config(BackendKind::Ollama, url, "qwen-test");
    config.keep_alive = Some("5m".into());
    assert_eq!(chat_text(&*backend(&config)).await, REPLY);
    let seen = task.await.expect("the fake ran");
    assert_eq!(seen.path, "/api/chat");
    assert_common_headers(&seen);
    assert_eq!(
        seen.body,
        json!({
            "model": "qwen-test",
            "messages": [
                {"role": "system", "content": "You explain code."},
                {"role": "user", "content": "What does `add` do?"},
            ],
            "stream": true,
            "options": {"num_predict": 256, "temperature": 0.5, "stop": ["</answer>"]},
            "keep_alive": "5m",
        })
    );

    let first = ollama_lines("m")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
        + "\n";
    let (url, task) = fake("application/x-ndjson", first, true).await;
    cancels(&config_for(BackendKind::Ollama, url), task).await;
}

#[tokio::test]
async fn an_ollama_error_line_fails_the_chat() {
    let (url, task) = fake(
        "application/x-ndjson",
        "{\"error\":\"model 'm' not found, try pulling it first\"}\n".to_owned(),
        false,
    )
    .await;
    let err = match backend(&config_for(BackendKind::Ollama, url))
        .chat(request())
        .await
    {
        Ok(_) => panic!("expected an error"),
        Err(err) => err,
    };
    assert!(
        err.to_string()
            .contains("the server reported: model 'm' not found"),
        "{err}"
    );
    task.await.expect("the fake ran");
}

#[test]
fn kinds_that_cannot_chat_say_so_at_once() {
    for (kind, describe) in [
        (BackendKind::Openai, "`openai` at http://127.0.0.1:9/v1"),
        (BackendKind::Embedded, "embedded"),
    ] {
        let config = BackendConfig {
            kind,
            url: Some("http://127.0.0.1:9/v1".into()),
            ..BackendConfig::default()
        };
        let backend = backend(&config);
        assert!(!backend.capabilities().chat);
        let err = match backend.chat(request()).now_or_never() {
            Some(Err(err)) => err,
            Some(Ok(_)) => panic!("{describe} chatted"),
            None => panic!("{describe} did not answer at once"),
        };
        assert_eq!(err.category(), "config");
        assert_eq!(
            err.to_string(),
            format!(
                "{describe} cannot chat; configure a chat-capable backend (openai-chat, ollama, \
                 mistral, anthropic)"
            )
        );
    }
}
