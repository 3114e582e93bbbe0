//! The `llamacpp` backend: llama.cpp server's native `POST {url}/infill`.
//!
//! The server applies the model's own fill-in-the-middle tokens, so Tandem sends the prefix and
//! suffix as they are, and the context snippets as `input_extra` chunks (one per snippet, with
//! its file name), which the server places before the prefix as separate files. The answer
//! streams as Server-Sent Events.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest};

use crate::http::{self, Endpoint, Event, Framing, KeyHeader, Sampling, excerpt};
use crate::ollama::float;
use crate::{Backend, BackendError, Capabilities, ChunkStream, WirePreview};

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(LlamaCppBackend::new(config)?))
}

pub struct LlamaCppBackend {
    http: Endpoint,
    model: Option<String>,
    sampling: Sampling,
}

impl LlamaCppBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        Ok(Self {
            http: Endpoint::new(config, "llamacpp", KeyHeader::Bearer)?,
            model: config.model.clone(),
            sampling: Sampling::new(config),
        })
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let extra: Vec<Value> = req
            .snippets
            .iter()
            .map(|s| {
                let mut text = s.text.clone();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                json!({ "filename": s.path, "text": text })
            })
            .collect();
        let mut stop: Vec<&String> = Vec::new();
        for s in &req.stop {
            if !stop.contains(&s) {
                stop.push(s);
            }
        }
        let mut body = json!({
            "input_prefix": req.prefix,
            "input_suffix": req.suffix,
            "input_extra": extra,
            "n_predict": req.max_tokens.min(self.sampling.max_tokens).max(1),
            "temperature": float(self.sampling.temperature),
            "stop": stop,
            "stream": true,
            "cache_prompt": true,
        });
        if let Some(top_p) = self.sampling.top_p {
            body["top_p"] = float(top_p);
        }
        if let Some(model) = &self.model {
            // Ignored by a single-model server; picks the model behind a router.
            body["model"] = json!(model);
        }
        self.sampling.merge_extra(body)
    }
}

impl Backend for LlamaCppBackend {
    fn describe(&self) -> String {
        self.http.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: false,
        }
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        WirePreview {
            prompt: None,
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.http.post("/infill", &self.body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            if http::is_json(&response) {
                // `stream: false` (from `requestBody`): one object.
                let text = response.text().await.map_err(|e| errors.map(&e))?;
                let chunks = match parse_event(&text, &errors.backend)? {
                    Event::Chunks(chunks) => chunks,
                    Event::Done => Vec::new(),
                };
                return Ok(
                    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))) as ChunkStream
                );
            }
            let backend = errors.backend.clone();
            Ok(http::event_stream(
                response,
                Framing::Sse,
                errors,
                move |data| parse_event(data, &backend),
            ))
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let check = self
            .http
            .health(self.http.get("/health"), |url, value, errors| {
                let status = value["status"].as_str().unwrap_or("unknown");
                if status == "ok" {
                    Ok(format!("{url} answers; status ok"))
                } else {
                    Err(errors.protocol(format!(
                        "`/health` answered `{}`",
                        excerpt(&value.to_string())
                    )))
                }
            });
        check
            .map(|result| match result {
                Err(BackendError::Status {
                    backend,
                    status: 503,
                    body,
                    retry_after,
                }) => Err(BackendError::Status {
                    backend,
                    status: 503,
                    body: format!("model still loading; try again shortly ({body})"),
                    retry_after,
                }),
                other => other,
            })
            .boxed()
    }
}

/// One event: `{"content": "text", "stop": false}`, the final `{"stop": true}`, or
/// `{"error": {"message": ...}}`.
fn parse_event(data: &str, backend: &str) -> Result<Event, BackendError> {
    http::single_text_event(data, backend, "event", "content", "stop", |v| {
        v.get("content")?.as_str()
    })
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode, Snippet, SnippetSource};

    use super::*;
    use crate::Chunk;

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "fn main() {\n    let x = ".into(),
            suffix: ";\n}\n".into(),
            snippets: vec![
                Snippet {
                    path: "src/util.rs".into(),
                    start_line: 1,
                    end_line: 3,
                    text: "pub fn helper() -> u32 {\n    1\n}".into(),
                    source: SnippetSource::Definition,
                    kind: Some("function".into()),
                    score: 1.0,
                    brief: None,
                },
                Snippet {
                    path: "src/lib.rs".into(),
                    start_line: 4,
                    end_line: 4,
                    text: "pub mod util;\n".into(),
                    source: SnippetSource::Similar,
                    kind: None,
                    score: 0.5,
                    brief: None,
                },
            ],
            path: "src/main.rs".into(),
            language: "rust".into(),
            mode: CompletionMode::SingleLine,
            stop: vec!["\n\n".into()],
            max_tokens: 32,
            candidates: 1,
        }
    }

    trait ExpectError {
        fn expect_error(self) -> BackendError;
    }

    impl ExpectError for Result<Event, BackendError> {
        #[track_caller]
        fn expect_error(self) -> BackendError {
            match self {
                Err(err) => err,
                Ok(_) => panic!("expected an error"),
            }
        }
    }

    fn pretty(value: &Value) -> String {
        serde_json::to_string_pretty(value).unwrap_or_default()
    }

    #[test]
    fn body_puts_snippets_in_input_extra() {
        let config = BackendConfig {
            kind: BackendKind::Llamacpp,
            top_p: Some(0.95),
            request_body: Some(json!({"n_indent": 4, "cache_prompt": false})),
            ..BackendConfig::default()
        };
        let backend = LlamaCppBackend::new(&config).expect("valid");
        expect![[r##"
            {
              "cache_prompt": false,
              "input_extra": [
                {
                  "filename": "src/util.rs",
                  "text": "pub fn helper() -> u32 {\n    1\n}\n"
                },
                {
                  "filename": "src/lib.rs",
                  "text": "pub mod util;\n"
                }
              ],
              "input_prefix": "fn main() {\n    let x = ",
              "input_suffix": ";\n}\n",
              "n_indent": 4,
              "n_predict": 32,
              "stop": [
                "\n\n"
              ],
              "stream": true,
              "temperature": 0.2,
              "top_p": 0.95
            }"##]]
        .assert_eq(&pretty(&backend.body(&request())));
        assert_eq!(backend.preview(&request()).prompt, None);
    }

    #[test]
    fn body_names_the_model_when_set() {
        let config = BackendConfig {
            kind: BackendKind::Llamacpp,
            model: Some("qwen".into()),
            ..BackendConfig::default()
        };
        let backend = LlamaCppBackend::new(&config).expect("valid");
        let mut req = request();
        req.snippets.clear();
        expect![[r##"
            {
              "cache_prompt": true,
              "input_extra": [],
              "input_prefix": "fn main() {\n    let x = ",
              "input_suffix": ";\n}\n",
              "model": "qwen",
              "n_predict": 32,
              "stop": [
                "\n\n"
              ],
              "stream": true,
              "temperature": 0.2
            }"##]]
        .assert_eq(&pretty(&backend.body(&req)));
    }

    #[test]
    fn events_parse_into_text_done_and_errors() {
        let parse = |d: &str| parse_event(d, "b");
        assert!(matches!(
            parse(r#"{"content":"let","stop":false,"id_slot":0,"multimodal":false,"index":0}"#),
            Ok(Event::Chunks(c)) if c == vec![Chunk { candidate: 0, text: "let".into() }]
        ));
        assert!(matches!(
            parse(r#"{"content":"","stop":false}"#),
            Ok(Event::Chunks(c)) if c.is_empty()
        ));
        assert!(matches!(
            parse(r#"{"content":"","stop":true,"stopped_eos":true,"timings":{}}"#),
            Ok(Event::Done)
        ));
        assert!(matches!(
            parse(r#"{"content":" 1","stop":true}"#),
            Ok(Event::Chunks(c)) if c.len() == 1
        ));
        let err = parse(r#"{"error":{"code":500,"message":"Infill is not supported by this model","type":"server_error"}}"#).expect_error();
        assert!(err.to_string().contains("Infill is not supported"), "{err}");
        let err = parse(r#"{"error":"boom"}"#).expect_error();
        assert!(err.to_string().contains("boom"), "{err}");
        let err = parse("{\"content\":").expect_error();
        assert!(err.to_string().contains("bad event"), "{err}");
        let err = parse(r#"{"tokens":[1]}"#).expect_error();
        assert!(err.to_string().contains("no `content`"), "{err}");
    }
}
