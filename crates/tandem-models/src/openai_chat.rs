//! The `openai-chat` backend: an OpenAI-compatible `POST {url}/chat/completions` endpoint, for
//! chat-only models. The code is shown with a hole marked ([`chat::user_prompt`]); the reply
//! streams as Server-Sent Events and its code is taken out by [`chat::CodeExtractor`].
//!
//! [`Backend::chat`] posts the caller's messages to the same endpoint and streams the reply's
//! text as it is.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest};

use crate::chat;
use crate::http::{self, Endpoint, ErrorMap, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::{
    Backend, BackendError, Capabilities, ChatMessage, ChatRequest, Chunk, ChunkStream, WirePreview,
};

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(OpenAiChatBackend::new(config)?))
}

pub struct OpenAiChatBackend {
    http: Endpoint,
    model: Option<String>,
    sampling: Sampling,
}

impl OpenAiChatBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            http: Endpoint::new(config, "openai-chat", KeyHeader::Bearer)?,
            model: config.model.clone(),
            sampling: Sampling::new(config),
        })
    }

    /// What the completion and the chat bodies share.
    fn messages_body(
        &self,
        messages: &[ChatMessage],
        max_tokens: u32,
        temperature: f32,
        stop: &[String],
    ) -> Value {
        let mut body = json!({
            "messages": chat::messages_json(messages),
            "max_tokens": max_tokens.max(1),
            "temperature": temperature,
            "stream": true,
        });
        if let Some(model) = &self.model {
            body["model"] = json!(model);
        }
        if let Some(top_p) = self.sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if !stop.is_empty() {
            body["stop"] = json!(stop);
        }
        body
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let mut body = self.messages_body(
            &chat::completion_messages(req),
            req.max_tokens.min(self.sampling.max_tokens),
            self.sampling.temperature,
            &req.stop,
        );
        if req.candidates > 1 {
            body["n"] = json!(req.candidates);
        }
        self.sampling.merge_extra(body)
    }

    fn chat_body(&self, req: &ChatRequest) -> Value {
        self.sampling.merge_extra(self.messages_body(
            &req.messages,
            req.max_tokens,
            req.temperature.unwrap_or(self.sampling.temperature),
            &req.stop,
        ))
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        self.http.post("/chat/completions", body)
    }
}

impl Backend for OpenAiChatBackend {
    fn describe(&self) -> String {
        self.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: true,
            candidates: true,
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
        let candidates = req.candidates;
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers; streaming", errors.backend);
            let chunks = read_chunks(response, errors, false).await?;
            Ok(chat::extract_code(chunks, &line_prefix, candidates))
        }
        .boxed()
    }

    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.post(&self.chat_body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers the chat; streaming", errors.backend);
            read_chunks(response, errors, true).await
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let model = self.model.clone();
        self.http
            .health(self.http.get("/models"), move |url, value, _| {
                Ok(crate::openai::models_line(url, value, model.as_deref()))
            })
    }
}

/// Reads a chat completion answer: Server-Sent Events of `choices[].delta.content` up to
/// `[DONE]`, or one JSON document when the server ignored `stream: true`. With `first_only`, only
/// the first candidate's text is kept.
pub(crate) async fn read_chunks(
    response: reqwest::Response,
    errors: ErrorMap,
    first_only: bool,
) -> Result<ChunkStream, BackendError> {
    let keep = move |chunks: Vec<Chunk>| -> Vec<Chunk> {
        if first_only {
            chunks.into_iter().filter(|c| c.candidate == 0).collect()
        } else {
            chunks
        }
    };
    if http::is_json(&response) {
        let value: Value = response.json().await.map_err(|e| errors.map(&e))?;
        let chunks = keep(parse_event(&value, &errors.backend)?);
        return Ok(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))));
    }
    let backend = errors.backend.clone();
    Ok(http::event_stream(
        response,
        Framing::Sse,
        errors,
        move |data| match parse_data(data, &backend)? {
            Event::Chunks(chunks) => Ok(Event::Chunks(keep(chunks))),
            Event::Done => Ok(Event::Done),
        },
    ))
}

/// The data of one streamed event: `[DONE]`, or a chat completion chunk.
pub(crate) fn parse_data(data: &str, backend: &str) -> Result<Event, BackendError> {
    if data.trim() == "[DONE]" {
        return Ok(Event::Done);
    }
    let value: Value = serde_json::from_str(data).map_err(|e| BackendError::Protocol {
        backend: backend.to_owned(),
        detail: format!("bad event `{}`: {e}", excerpt(data)),
    })?;
    parse_event(&value, backend).map(Event::Chunks)
}

/// The text pieces of one chat completion event: `choices[].delta.content` when streamed,
/// `choices[].message.content` when not.
pub(crate) fn parse_event(value: &Value, backend: &str) -> Result<Vec<Chunk>, BackendError> {
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("the server reported: {}", excerpt(&message)),
        });
    }
    let Some(choices) = value.get("choices").and_then(Value::as_array) else {
        return Err(BackendError::Protocol {
            backend: backend.to_owned(),
            detail: format!("no `choices` in `{}`", excerpt(&value.to_string())),
        });
    };
    Ok(choices
        .iter()
        .enumerate()
        .filter_map(|(i, choice)| {
            let text = choice
                .get("delta")
                .or_else(|| choice.get("message"))
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)?;
            let candidate = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64);
            (!text.is_empty()).then(|| Chunk {
                candidate: u32::try_from(candidate).unwrap_or(0),
                text: text.to_owned(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode};

    use super::*;

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "def add(a, b):\n    return ".into(),
            suffix: "\n".into(),
            snippets: vec![],
            path: "calc.py".into(),
            language: "python".into(),
            mode: CompletionMode::SingleLine,
            stop: vec!["\n\n".into()],
            max_tokens: 32,
            candidates: 2,
        }
    }

    #[test]
    fn body_snapshot() {
        let config = BackendConfig {
            kind: BackendKind::OpenaiChat,
            model: Some("gpt-4o-mini".into()),
            top_p: Some(0.9),
            stop: vec!["\n\n".into()],
            request_body: Some(json!({"seed": 7, "temperature": 0.0})),
            ..BackendConfig::default()
        };
        let backend = OpenAiChatBackend::new(&config).expect("valid");
        let body = serde_json::to_string_pretty(&backend.body(&request())).expect("json");
        expect![[r#"
            {
              "max_tokens": 32,
              "messages": [
                {
                  "content": "You are a code completion engine inside a code editor. You are shown a source file in which the marker {{FILL_HERE}} stands for missing code. Reply with only the code that replaces the marker: no explanations, no Markdown code fences, and do not repeat the code before or after the marker. Match the file's language, style and indentation. If nothing is missing, reply with nothing.",
                  "role": "system"
                },
                {
                  "content": "The file being edited:\n\n<file path=\"calc.py\" language=\"python\">\ndef add(a, b):\n    return {{FILL_HERE}}\n</file>\n\nComplete the rest of the line at {{FILL_HERE}} (a single line at most). Reply with only the code that replaces {{FILL_HERE}}, without a code fence and without repeating the text before it on its line.",
                  "role": "user"
                }
              ],
              "model": "gpt-4o-mini",
              "n": 2,
              "seed": 7,
              "stop": [
                "\n\n"
              ],
              "stream": true,
              "temperature": 0.0,
              "top_p": 0.8999999761581421
            }"#]]
        .assert_eq(&body);
        assert_eq!(backend.http.url, "http://127.0.0.1:8000/v1");
        let preview = backend.preview(&request());
        assert_eq!(
            preview.prompt.as_deref(),
            backend.body(&request())["messages"][1]["content"].as_str()
        );
    }

    #[test]
    fn one_candidate_sends_no_n_and_no_stops_when_none_are_set() {
        let config = BackendConfig {
            kind: BackendKind::OpenaiChat,
            ..BackendConfig::default()
        };
        let backend = OpenAiChatBackend::new(&config).expect("valid");
        let mut req = request();
        req.candidates = 1;
        req.stop.clear();
        let body = backend.body(&req);
        for key in ["n", "stop", "model", "top_p"] {
            assert!(body.get(key).is_none(), "{key} in {body}");
        }
    }

    #[test]
    fn events_parse_into_chunks_per_candidate() {
        let v = json!({"choices": [
            {"index": 1, "delta": {"content": "a"}},
            {"index": 0, "delta": {"role": "assistant"}},
            {"index": 0, "delta": {"content": ""}, "finish_reason": "stop"},
        ]});
        assert_eq!(
            parse_event(&v, "b").expect("ok"),
            vec![Chunk {
                candidate: 1,
                text: "a".into()
            }]
        );
        let whole = json!({"choices": [{"index": 0, "message": {"content": "x"}}]});
        assert_eq!(parse_event(&whole, "b").expect("ok")[0].text, "x");
        let err = parse_event(
            &json!({"error": {"message": "rate limited", "type": "requests"}}),
            "b",
        )
        .expect_err("error");
        assert!(err.to_string().contains("rate limited"), "{err}");
        let err = parse_event(&json!({"id": "x"}), "b").expect_err("no choices");
        assert!(err.to_string().contains("no `choices`"), "{err}");
    }

    fn chat_request() -> ChatRequest {
        ChatRequest {
            messages: vec![
                ChatMessage::system("You refactor code."),
                ChatMessage::user("Rename `x` to `total`:\n\nlet x = 1;"),
                ChatMessage::assistant("let total = 1;"),
                ChatMessage::user("Now make it mutable."),
            ],
            max_tokens: 1024,
            temperature: Some(0.5),
            stop: vec!["</answer>".into()],
        }
    }

    #[test]
    fn chat_body_snapshot() {
        let config = BackendConfig {
            kind: BackendKind::OpenaiChat,
            model: Some("gpt-4o-mini".into()),
            top_p: Some(0.5),
            request_body: Some(json!({"seed": 7})),
            ..BackendConfig::default()
        };
        let backend = OpenAiChatBackend::new(&config).expect("valid");
        let body = serde_json::to_string_pretty(&backend.chat_body(&chat_request())).expect("json");
        expect![[r#"
            {
              "max_tokens": 1024,
              "messages": [
                {
                  "content": "You refactor code.",
                  "role": "system"
                },
                {
                  "content": "Rename `x` to `total`:\n\nlet x = 1;",
                  "role": "user"
                },
                {
                  "content": "let total = 1;",
                  "role": "assistant"
                },
                {
                  "content": "Now make it mutable.",
                  "role": "user"
                }
              ],
              "model": "gpt-4o-mini",
              "seed": 7,
              "stop": [
                "</answer>"
              ],
              "stream": true,
              "temperature": 0.5,
              "top_p": 0.5
            }"#]]
        .assert_eq(&body);
        // No `n`, and `max_tokens` is the request's, not capped by `backend.maxTokens`.
        let mut req = chat_request();
        req.temperature = None;
        req.stop.clear();
        let body = backend.chat_body(&req);
        assert_eq!(body["temperature"], json!(config.temperature));
        assert!(body.get("stop").is_none(), "{body}");
        assert!(body.get("n").is_none(), "{body}");
    }

    #[test]
    fn stream_data_parses_into_events() {
        let texts = |e: Event| match e {
            Event::Chunks(c) => c.into_iter().map(|c| c.text).collect::<Vec<_>>(),
            Event::Done => vec!["<done>".to_owned()],
        };
        assert_eq!(
            parse_data(r#"{"choices":[{"index":0,"delta":{"content":"é"}}]}"#, "b").map(texts),
            Ok(vec!["é".to_owned()])
        );
        assert_eq!(
            parse_data(" [DONE]", "b").map(texts),
            Ok(vec!["<done>".to_owned()])
        );
        let err = parse_data("{oops", "b").map(texts).expect_err("bad json");
        assert!(err.to_string().contains("bad event `{oops`"), "{err}");
    }
}
