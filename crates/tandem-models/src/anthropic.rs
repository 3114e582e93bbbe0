//! The `anthropic` backend: Anthropic's `POST {url}/v1/messages`, chat-style like
//! `openai-chat` (the same prompt with a hole, the same code extraction). The reply streams as
//! Server-Sent Events whose data carry their own `type`.
//!
//! [`Backend::chat`] posts the caller's messages to the same endpoint (system messages go to the
//! top-level `system`) and streams the reply's text as it is.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest};

use crate::chat;
use crate::http::{self, Endpoint, ErrorMap, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::{
    Backend, BackendError, Capabilities, ChatMessage, ChatRequest, ChatRole, Chunk, ChunkStream,
    WirePreview,
};

/// The API version this backend speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(AnthropicBackend::new(config)?))
}

pub struct AnthropicBackend {
    http: Endpoint,
    model: String,
    sampling: Sampling,
    /// Send `anthropic-version` (unless `backend.headers` sets it).
    version_header: bool,
}

impl AnthropicBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let model = config.model.clone().ok_or_else(|| {
            BackendError::Config(
                "the `anthropic` backend needs `backend.model` (for example \
                 `claude-3-5-haiku-latest`)"
                    .to_owned(),
            )
        })?;
        Ok(Self {
            http: Endpoint::new(config, "anthropic", KeyHeader::XApiKey)?,
            model,
            sampling: Sampling::new(config),
            version_header: !config
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("anthropic-version")),
        })
    }

    /// What the completion and the chat bodies share: system messages go to the top-level
    /// `system`, the others to `messages`.
    fn messages_body(
        &self,
        messages: &[ChatMessage],
        max_tokens: u32,
        temperature: f32,
        stop: &[String],
    ) -> Value {
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == ChatRole::System)
            .map(|m| m.content.as_str())
            .collect();
        let rest: Vec<ChatMessage> = messages
            .iter()
            .filter(|m| m.role != ChatRole::System)
            .cloned()
            .collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": max_tokens.max(1),
            "messages": chat::messages_json(&rest),
            "stream": true,
            "temperature": temperature,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(top_p) = self.sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        // The API rejects stop sequences that are only whitespace.
        let stops: Vec<&String> = stop.iter().filter(|s| !s.trim().is_empty()).collect();
        if !stops.is_empty() {
            body["stop_sequences"] = json!(stops);
        }
        self.sampling.merge_extra(body)
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        self.messages_body(
            &chat::completion_messages(req),
            req.max_tokens.min(self.sampling.max_tokens),
            self.sampling.temperature,
            &req.stop,
        )
    }

    fn chat_body(&self, req: &ChatRequest) -> Value {
        self.messages_body(
            &req.messages,
            req.max_tokens,
            req.temperature.unwrap_or(self.sampling.temperature),
            &req.stop,
        )
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.with_version(self.http.post("/v1/messages", body))
    }

    fn with_version(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.version_header {
            request.header("anthropic-version", API_VERSION)
        } else {
            request
        }
    }
}

impl Backend for AnthropicBackend {
    fn describe(&self) -> String {
        self.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: true,
            candidates: false,
        }
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        WirePreview {
            prompt: Some(chat::user_prompt(req)),
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.post(&self.body(&req));
        let errors = self.http.errors();
        let line_prefix = chat::line_prefix(&req).to_owned();
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers; streaming", errors.backend);
            let chunks = read_chunks(response, errors).await?;
            Ok(chat::extract_code(chunks, &line_prefix, 1))
        }
        .boxed()
    }

    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.post(&self.chat_body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers the chat; streaming", errors.backend);
            read_chunks(response, errors).await
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let model = self.model.clone();
        let request = self.with_version(self.http.get("/v1/models"));
        self.http.health(request, move |url, value, _| {
            Ok(crate::openai::models_line(url, value, Some(&model)))
        })
    }
}

/// Reads a Messages answer: its streamed events, or a whole message when it was not streamed.
async fn read_chunks(
    response: reqwest::Response,
    errors: ErrorMap,
) -> Result<ChunkStream, BackendError> {
    if http::is_json(&response) {
        // A whole message rather than a stream.
        let value: Value = response.json().await.map_err(|e| errors.map(&e))?;
        let text = message_text(&value, &errors.backend)?;
        return Ok(Box::pin(futures::stream::iter(
            (!text.is_empty()).then_some(Ok(Chunk { candidate: 0, text })),
        )));
    }
    let backend = errors.backend.clone();
    Ok(http::event_stream(
        response,
        Framing::Sse,
        errors,
        move |data| parse_event(data, &backend),
    ))
}

/// One streamed event, by the `type` inside its data: text deltas are chunks, `message_stop`
/// ends the stream, `error` fails it, and everything else (`ping`, `message_start`, ...,
/// types added later) carries no text.
fn parse_event(data: &str, backend: &str) -> Result<Event, BackendError> {
    let value: Value = serde_json::from_str(data).map_err(|e| BackendError::Protocol {
        backend: backend.to_owned(),
        detail: format!("bad event `{}`: {e}", excerpt(data)),
    })?;
    let text = |t: Option<&str>| {
        Event::Chunks(
            t.filter(|t| !t.is_empty())
                .map(|text| Chunk {
                    candidate: 0,
                    text: text.to_owned(),
                })
                .into_iter()
                .collect(),
        )
    };
    Ok(match value["type"].as_str().unwrap_or_default() {
        "content_block_delta" if value["delta"]["type"] == "text_delta" => {
            text(value["delta"]["text"].as_str())
        }
        "content_block_start" if value["content_block"]["type"] == "text" => {
            text(value["content_block"]["text"].as_str())
        }
        "message_stop" => Event::Done,
        "error" => return Err(api_error(&value, backend)),
        _ => Event::Chunks(Vec::new()),
    })
}

/// An `error` object (`{"type":"error","error":{"type":"overloaded_error","message":...}}`).
fn api_error(value: &Value, backend: &str) -> BackendError {
    let error = &value["error"];
    let kind = error["type"].as_str().unwrap_or("error");
    let message = error["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    BackendError::Protocol {
        backend: backend.to_owned(),
        detail: format!("the server reported {kind}: {}", excerpt(&message)),
    }
}

/// The text of a whole (non-streamed) message.
fn message_text(value: &Value, backend: &str) -> Result<String, BackendError> {
    if value["type"] == "error" {
        return Err(api_error(value, backend));
    }
    let Some(content) = value["content"].as_array() else {
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("no `content` in `{}`", excerpt(&value.to_string())),
        });
    };
    Ok(content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode, Snippet, SnippetSource};

    use super::*;

    fn config() -> BackendConfig {
        BackendConfig {
            kind: BackendKind::Anthropic,
            model: Some("claude-test".into()),
            stop: vec!["\n\n".into(), "</file>".into()],
            ..BackendConfig::default()
        }
    }

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "fn main() {\n    ".into(),
            suffix: "\n}\n".into(),
            snippets: vec![Snippet {
                path: "src/lib.rs".into(),
                start_line: 3,
                end_line: 3,
                text: "pub fn go() {}".into(),
                source: SnippetSource::Symbol,
                kind: None,
                score: 0.5,
                brief: None,
            }],
            path: "src/main.rs".into(),
            language: "rust".into(),
            mode: CompletionMode::MultiLine,
            stop: vec!["\n\n".into(), "</file>".into()],
            max_tokens: 500,
            candidates: 3,
        }
    }

    #[test]
    fn body_snapshot() {
        let backend = AnthropicBackend::new(&config()).expect("valid");
        assert_eq!(backend.http.url, "https://api.anthropic.com");
        let body = serde_json::to_string_pretty(&backend.body(&request())).expect("json");
        expect![[r#"
            {
              "max_tokens": 128,
              "messages": [
                {
                  "content": "Code from other files of the workspace, for reference:\n\n<context path=\"src/lib.rs\" lines=\"3-3\">\npub fn go() {}\n</context>\n\nThe file being edited:\n\n<file path=\"src/main.rs\" language=\"rust\">\nfn main() {\n    {{FILL_HERE}}\n}\n</file>\n\nWrite the code that belongs at {{FILL_HERE}} (it may span several lines). Reply with only the code that replaces {{FILL_HERE}}, without a code fence and without repeating the text before it on its line.",
                  "role": "user"
                }
              ],
              "model": "claude-test",
              "stop_sequences": [
                "</file>"
              ],
              "stream": true,
              "system": "You are a code completion engine inside a code editor. You are shown a source file in which the marker {{FILL_HERE}} stands for missing code. Reply with only the code that replaces the marker: no explanations, no Markdown code fences, and do not repeat the code before or after the marker. Match the file's language, style and indentation. If nothing is missing, reply with nothing.",
              "temperature": 0.20000000298023224
            }"#]]
        .assert_eq(&body);
        assert!(!backend.capabilities().candidates);
        assert_eq!(
            backend.preview(&request()).prompt.as_deref(),
            Some(chat::user_prompt(&request()).as_str())
        );
    }

    #[test]
    fn a_model_is_required() {
        let mut c = config();
        c.model = None;
        let err = AnthropicBackend::new(&c).err().expect("error");
        assert!(err.to_string().contains("backend.model"), "{err}");
    }

    fn chunks(event: Event) -> Vec<String> {
        match event {
            Event::Chunks(c) => c.into_iter().map(|c| c.text).collect(),
            Event::Done => vec!["<done>".into()],
        }
    }

    #[test]
    fn events_parse_by_their_type() {
        let parse = |d: &str| parse_event(d, "b").map(chunks);
        assert_eq!(
            parse(
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#
            ),
            Ok(vec!["hi".to_owned()])
        );
        assert_eq!(
            parse(
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#
            ),
            Ok(vec![])
        );
        assert_eq!(
            parse(
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            ),
            Ok(vec![])
        );
        for quiet in [
            r#"{"type":"ping"}"#,
            r#"{"type":"message_start","message":{"id":"m","content":[]}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#,
            r#"{"type":"something_new"}"#,
        ] {
            assert_eq!(parse(quiet), Ok(vec![]), "{quiet}");
        }
        assert_eq!(
            parse(r#"{"type":"message_stop"}"#),
            Ok(vec!["<done>".to_owned()])
        );
        let err =
            parse(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
                .expect_err("error event");
        assert!(
            err.to_string()
                .contains("the server reported overloaded_error: Overloaded"),
            "{err}"
        );
        let err = parse("{not json").expect_err("bad json");
        assert!(err.to_string().contains("bad event"), "{err}");
    }

    #[test]
    fn whole_messages_are_read() {
        let v = json!({"type": "message", "content": [
            {"type": "text", "text": "a"}, {"type": "tool_use"}, {"type": "text", "text": "b"}
        ]});
        assert_eq!(message_text(&v, "b"), Ok("ab".to_owned()));
        let e =
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model: x"}});
        assert!(message_text(&e, "b").is_err());
    }

    #[test]
    fn a_configured_version_header_wins() {
        let mut c = config();
        c.headers
            .insert("Anthropic-Version".into(), "2099-01-01".into());
        assert!(!AnthropicBackend::new(&c).expect("valid").version_header);
        assert!(
            AnthropicBackend::new(&config())
                .expect("valid")
                .version_header
        );
    }

    #[test]
    fn chat_body_puts_system_messages_at_the_top() {
        let mut c = config();
        c.top_p = Some(0.5);
        let backend = AnthropicBackend::new(&c).expect("valid");
        let req = ChatRequest {
            messages: vec![
                ChatMessage::system("You refactor code."),
                ChatMessage::user("Rename `x`:\nlet x = 1;"),
                ChatMessage::assistant("let total = 1;"),
                ChatMessage::system("Answer in Rust."),
                ChatMessage::user("Make it mutable."),
            ],
            max_tokens: 2048,
            temperature: Some(0.0),
            stop: vec![" ".into(), "</answer>".into()],
        };
        let body = serde_json::to_string_pretty(&backend.chat_body(&req)).expect("json");
        expect![[r#"
            {
              "max_tokens": 2048,
              "messages": [
                {
                  "content": "Rename `x`:\nlet x = 1;",
                  "role": "user"
                },
                {
                  "content": "let total = 1;",
                  "role": "assistant"
                },
                {
                  "content": "Make it mutable.",
                  "role": "user"
                }
              ],
              "model": "claude-test",
              "stop_sequences": [
                "</answer>"
              ],
              "stream": true,
              "system": "You refactor code.\n\nAnswer in Rust.",
              "temperature": 0.0,
              "top_p": 0.5
            }"#]]
        .assert_eq(&body);
        let req = ChatRequest {
            messages: vec![ChatMessage::user("hi")],
            max_tokens: 0,
            temperature: None,
            stop: vec![],
        };
        let body = backend.chat_body(&req);
        for key in ["system", "stop_sequences"] {
            assert!(body.get(key).is_none(), "{key} in {body}");
        }
        assert_eq!(body["max_tokens"], 1);
        assert_eq!(body["temperature"], json!(c.temperature));
    }
}
