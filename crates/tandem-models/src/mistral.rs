//! The `mistral` backend: Codestral's native fill-in-the-middle endpoint,
//! `POST {url}/v1/fim/completions` with `prompt` (the prefix, context snippets rendered as
//! comments before it) and `suffix`; no template. The answer streams as Server-Sent Events with
//! OpenAI-style chat chunks.
//!
//! [`Backend::chat`] posts to `{url}/v1/chat/completions`, which streams the same chunks.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest};

use crate::chat;
use crate::http::{self, Endpoint, KeyHeader, Sampling};
use crate::openai_chat::read_chunks;
use crate::{Backend, BackendError, Capabilities, ChatRequest, ChunkStream, WirePreview};

/// The model asked for when `backend.model` is not set.
pub const DEFAULT_MODEL: &str = "codestral-latest";

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(MistralBackend::new(config)?))
}

pub struct MistralBackend {
    http: Endpoint,
    model: String,
    sampling: Sampling,
}

impl MistralBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            http: Endpoint::new(config, "mistral", KeyHeader::Bearer)?,
            model: config
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            sampling: Sampling::new(config),
        })
    }

    /// The prefix with the context snippets before it.
    fn prompt(req: &CompletionRequest) -> String {
        format!(
            "{}{}",
            tandem_core::prompt::render_snippets(&req.snippets, &req.language),
            req.prefix
        )
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let body = json!({
            "model": self.model,
            "prompt": Self::prompt(req),
            "suffix": req.suffix,
            "max_tokens": req.max_tokens.min(self.sampling.max_tokens).max(1),
            "temperature": self.sampling.temperature,
            "stream": true,
        });
        self.finish_body(body, &req.stop)
    }

    /// The body for `/v1/chat/completions`.
    fn chat_body(&self, req: &ChatRequest) -> Value {
        let body = json!({
            "model": self.model,
            "messages": chat::messages_json(&req.messages),
            "max_tokens": req.max_tokens.max(1),
            "temperature": req.temperature.unwrap_or(self.sampling.temperature),
            "stream": true,
        });
        self.finish_body(body, &req.stop)
    }

    /// What both bodies share: `top_p`, the stops, then `backend.requestBody` merged in.
    fn finish_body(&self, mut body: Value, stop: &[String]) -> Value {
        if let Some(top_p) = self.sampling.top_p {
            body["top_p"] = json!(top_p);
        }
        if !stop.is_empty() {
            body["stop"] = json!(stop);
        }
        self.sampling.merge_extra(body)
    }
}

impl Backend for MistralBackend {
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
            prompt: Some(Self::prompt(req)),
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.http.post("/v1/fim/completions", &self.body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers; streaming", errors.backend);
            // One candidate only: every piece belongs to the first.
            read_chunks(response, errors, true).await
        }
        .boxed()
    }

    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self
            .http
            .post("/v1/chat/completions", &self.chat_body(&req));
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
            .health(self.http.get("/v1/models"), move |url, value, _| {
                Ok(crate::openai::models_line(url, value, Some(&model)))
            })
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode, Snippet, SnippetSource};

    use super::*;
    use crate::Chunk;
    use crate::openai_chat::parse_event;

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "def area(r):\n    return ".into(),
            suffix: "\n\nprint(area(2))\n".into(),
            snippets: vec![Snippet {
                path: "consts.py".into(),
                start_line: 1,
                end_line: 1,
                text: "PI = 3.14159".into(),
                source: SnippetSource::Definition,
                kind: None,
                score: 1.0,
                brief: None,
            }],
            path: "geo.py".into(),
            language: "python".into(),
            mode: CompletionMode::SingleLine,
            stop: vec!["\n\n".into()],
            max_tokens: 64,
            candidates: 2,
        }
    }

    #[test]
    fn body_snapshot() {
        let config = BackendConfig {
            kind: BackendKind::Mistral,
            stop: vec!["\n\n".into()],
            request_body: Some(json!({"min_tokens": 1})),
            ..BackendConfig::default()
        };
        let backend = MistralBackend::new(&config).expect("valid");
        assert_eq!(backend.http.url, "https://codestral.mistral.ai");
        let body = serde_json::to_string_pretty(&backend.body(&request())).expect("json");
        expect![[r##"
            {
              "max_tokens": 64,
              "min_tokens": 1,
              "model": "codestral-latest",
              "prompt": "# Path: consts.py\n# PI = 3.14159\n\ndef area(r):\n    return ",
              "stop": [
                "\n\n"
              ],
              "stream": true,
              "suffix": "\n\nprint(area(2))\n",
              "temperature": 0.20000000298023224
            }"##]]
        .assert_eq(&body);
        assert_eq!(
            backend.preview(&request()).prompt.as_deref(),
            Some("# Path: consts.py\n# PI = 3.14159\n\ndef area(r):\n    return ")
        );
    }

    #[test]
    fn a_configured_model_is_sent() {
        let config = BackendConfig {
            kind: BackendKind::Mistral,
            model: Some("codestral-2501".into()),
            top_p: Some(0.5),
            ..BackendConfig::default()
        };
        let backend = MistralBackend::new(&config).expect("valid");
        let mut req = request();
        req.stop.clear();
        let body = backend.body(&req);
        assert_eq!(body["model"], "codestral-2501");
        assert_eq!(body["top_p"], 0.5);
        assert!(body.get("stop").is_none(), "{body}");
    }

    #[test]
    fn events_parse_like_chat_chunks() {
        let v = json!({"id": "x", "object": "chat.completion.chunk", "model": "codestral",
            "choices": [{"index": 0, "delta": {"content": "PI * r"}, "finish_reason": null}]});
        assert_eq!(
            parse_event(&v, "b").expect("ok"),
            vec![Chunk {
                candidate: 0,
                text: "PI * r".into()
            }]
        );
        let err =
            parse_event(&json!({"error": {"message": "Unauthorized"}}), "b").expect_err("error");
        assert!(err.to_string().contains("Unauthorized"), "{err}");
    }

    #[test]
    fn chat_body_snapshot() {
        let config = BackendConfig {
            kind: BackendKind::Mistral,
            top_p: Some(0.5),
            ..BackendConfig::default()
        };
        let backend = MistralBackend::new(&config).expect("valid");
        let req = ChatRequest {
            messages: vec![
                crate::ChatMessage::system("You explain code."),
                crate::ChatMessage::user("What does `area` do?"),
            ],
            max_tokens: 512,
            temperature: Some(0.7),
            stop: vec!["\n\n\n".into()],
        };
        let body = serde_json::to_string_pretty(&backend.chat_body(&req)).expect("json");
        expect![[r#"
            {
              "max_tokens": 512,
              "messages": [
                {
                  "content": "You explain code.",
                  "role": "system"
                },
                {
                  "content": "What does `area` do?",
                  "role": "user"
                }
              ],
              "model": "codestral-latest",
              "stop": [
                "\n\n\n"
              ],
              "stream": true,
              "temperature": 0.699999988079071,
              "top_p": 0.5
            }"#]]
        .assert_eq(&body);
        let mut req = req;
        req.temperature = None;
        req.stop.clear();
        let body = backend.chat_body(&req);
        assert_eq!(body["temperature"], json!(config.temperature));
        assert!(body.get("stop").is_none(), "{body}");
    }
}
