//! The `ollama` backend: Ollama's native `POST {url}/api/generate`, streamed as
//! newline-delimited JSON.
//!
//! Two modes. By default Tandem sends the prefix (with the context snippets rendered as comments
//! before it) as `prompt` and the text after the cursor as `suffix`, and Ollama applies the
//! model's own fill-in-the-middle template. When `backend.fim` names a template, Tandem renders
//! the prompt itself and sends it with `raw: true`, with the template's stop tokens.
//!
//! [`Backend::chat`] posts the caller's messages to `POST {url}/api/chat` (Ollama applies the
//! model's chat template), streamed as newline-delimited JSON too.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tandem_core::prompt::render_snippets;
use tandem_core::{BackendConfig, CompletionRequest, FimTemplate};

use crate::chat;
use crate::http::{self, Endpoint, ErrorMap, Event, Framing, KeyHeader, Sampling};
use crate::{Backend, BackendError, Capabilities, ChatRequest, ChunkStream, WirePreview};

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(Arc::new(OllamaBackend::new(config)?))
}

pub struct OllamaBackend {
    http: Endpoint,
    model: String,
    /// `Some`: raw mode with this template; `None`: Ollama applies the model's template.
    template: Option<FimTemplate>,
    sampling: Sampling,
    keep_alive: Option<Value>,
}

impl OllamaBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let model = config
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| {
                BackendError::Config(
                    "the `ollama` backend needs `backend.model`: the name of a model you have \
                     pulled, e.g. `qwen2.5-coder:1.5b-base` (`ollama pull qwen2.5-coder:1.5b-base`)"
                        .to_owned(),
                )
            })?;
        // Unset: Ollama applies the model's own FIM template. Set (`auto`, a name or a custom
        // template): Tandem's template, sent raw.
        let template = match &config.fim {
            Some(fim) => Some(
                FimTemplate::resolve(Some(fim), config.model.as_deref())
                    .map_err(BackendError::Config)?,
            ),
            None => None,
        };
        Ok(Self {
            http: Endpoint::new(config, "ollama", KeyHeader::Bearer)?,
            model,
            template,
            sampling: Sampling::new(config),
            keep_alive: config.keep_alive.as_deref().map(keep_alive),
        })
    }

    /// The `prompt` sent: the template's rendering in raw mode, else snippets and prefix.
    fn prompt(&self, req: &CompletionRequest) -> String {
        match &self.template {
            Some(template) => template.render(req),
            None => format!(
                "{}{}",
                render_snippets(&req.snippets, &req.language),
                req.prefix
            ),
        }
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let mut stop: Vec<String> = Vec::new();
        if let Some(template) = &self.template {
            stop.extend(template.stop.iter().map(|s| s.to_string()));
        }
        for s in &req.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
        let options = self.options(
            req.max_tokens.min(self.sampling.max_tokens),
            self.sampling.temperature,
            &stop,
        );
        let mut body = json!({
            "model": self.model,
            "prompt": self.prompt(req),
            "stream": true,
            "options": options,
        });
        if self.template.is_some() {
            body["raw"] = json!(true);
        } else {
            body["suffix"] = json!(req.suffix);
        }
        self.finish_body(body)
    }

    /// The body for `/api/chat`.
    fn chat_body(&self, req: &ChatRequest) -> Value {
        let options = self.options(
            req.max_tokens,
            req.temperature.unwrap_or(self.sampling.temperature),
            &req.stop,
        );
        self.finish_body(json!({
            "model": self.model,
            "messages": chat::messages_json(&req.messages),
            "stream": true,
            "options": options,
        }))
    }

    /// `options`: the token limit, sampling, and the stops.
    fn options(&self, max_tokens: u32, temperature: f32, stop: &[String]) -> Value {
        let mut options = json!({
            "num_predict": max_tokens.max(1),
            "temperature": float(temperature),
        });
        if let Some(top_p) = self.sampling.top_p {
            options["top_p"] = float(top_p);
        }
        // An empty list would replace the model's own stop parameters.
        if !stop.is_empty() {
            options["stop"] = json!(stop);
        }
        options
    }

    /// What both bodies share: `keep_alive`, then `backend.requestBody` merged in.
    fn finish_body(&self, mut body: Value) -> Value {
        if let Some(keep_alive) = &self.keep_alive {
            body["keep_alive"] = keep_alive.clone();
        }
        self.sampling.merge_extra(body)
    }
}

/// An `f32` setting as the JSON number it was written as (`0.2`, not `0.20000000298023224`).
pub(crate) fn float(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
        .unwrap_or_else(|| json!(x))
}

/// `keep_alive` as Ollama reads it: a number of seconds (`-1`: forever), or a duration string.
fn keep_alive(value: &str) -> Value {
    let value = value.trim();
    if let Ok(n) = value.parse::<i64>() {
        json!(n)
    } else if let Ok(f) = value.parse::<f64>() {
        json!(f)
    } else {
        json!(value)
    }
}

impl Backend for OllamaBackend {
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
            prompt: Some(self.prompt(req)),
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.http.post("/api/generate", &self.body(&req));
        let errors = self.http.errors();
        let raw = self.template.is_some();
        async move {
            let response = match http::send(request, &errors).await {
                Ok(response) => response,
                Err(err) => return Err(explain(err, raw)),
            };
            read_chunks(response, errors, parse_line).await
        }
        .boxed()
    }

    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let request = self.http.post("/api/chat", &self.chat_body(&req));
        let errors = self.http.errors();
        async move {
            let response = http::send(request, &errors).await?;
            tracing::debug!("{} answers the chat; streaming", errors.backend);
            read_chunks(response, errors, parse_chat_line).await
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let model = self.model.clone();
        self.http
            .health(self.http.get("/api/tags"), move |url, value, _| {
                Ok(tags_line(url, value, &model))
            })
    }
}

/// A model without a fill-in-the-middle template cannot take `suffix`: say what to do.
fn explain(err: BackendError, raw: bool) -> BackendError {
    match &err {
        BackendError::Status { status, body, .. }
            if !raw && *status == 400 && body.contains("does not support insert") =>
        {
            BackendError::Config(format!(
                "{err}; this model's Ollama template has no fill-in-the-middle support: use a \
                 code model with one (e.g. `qwen2.5-coder:1.5b-base`), or set `backend.fim` to \
                 the model's template to send raw prompts"
            ))
        }
        _ => err,
    }
}

/// "URL answers; models: a, b" from `/api/tags`, warning when `model` is not pulled.
fn tags_line(url: &str, value: &Value, model: &str) -> String {
    let names: Vec<&str> = value["models"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().or_else(|| m["model"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut line = format!(
        "{url} answers; models: {}",
        if names.is_empty() {
            "none pulled".to_owned()
        } else {
            names.join(", ")
        }
    );
    let latest = format!("{model}:latest");
    if !names.iter().any(|n| *n == model || *n == latest) {
        line.push_str(&format!(
            "; warning: `backend.model` `{model}` is not among them (`ollama pull {model}`)"
        ));
    }
    line
}

/// Reads a streamed answer line by line with `parse`, or the one object of an answer that was
/// not streamed (`stream: false` from `requestBody`).
async fn read_chunks(
    response: reqwest::Response,
    errors: ErrorMap,
    parse: fn(&str, &str) -> Result<Event, BackendError>,
) -> Result<ChunkStream, BackendError> {
    if http::is_json(&response) {
        let text = response.text().await.map_err(|e| errors.map(&e))?;
        let chunks = match parse(&text, &errors.backend)? {
            Event::Chunks(chunks) => chunks,
            Event::Done => Vec::new(),
        };
        return Ok(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))));
    }
    let backend = errors.backend.clone();
    Ok(http::event_stream(
        response,
        Framing::Ndjson,
        errors,
        move |line| parse(line, &backend),
    ))
}

/// One line of a `/api/generate` stream: `{"response": "text", "done": false}`, the final
/// `{"done": true}`, or `{"error": "..."}`.
fn parse_line(line: &str, backend: &str) -> Result<Event, BackendError> {
    parse_object(line, backend, "response", |v| v.get("response")?.as_str())
}

/// One line of a `/api/chat` stream: `{"message": {"role": "assistant", "content": "text"},
/// "done": false}`, the final `"done": true`, or `{"error": "..."}`.
fn parse_chat_line(line: &str, backend: &str) -> Result<Event, BackendError> {
    parse_object(line, backend, "message", |v| {
        v.get("message")?.get("content")?.as_str()
    })
}

/// One line of either stream, its text found by `text` (`field` names it in messages).
fn parse_object(
    line: &str,
    backend: &str,
    field: &str,
    text: impl for<'a> Fn(&'a Value) -> Option<&'a str>,
) -> Result<Event, BackendError> {
    http::single_text_event(line, backend, "line", field, "done", text)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{BackendKind, CompletionMode, Snippet, SnippetSource};

    use super::*;
    use crate::Chunk;

    fn request() -> CompletionRequest {
        CompletionRequest {
            prefix: "def add(a, b):\n    ".into(),
            suffix: "\n\nprint(add(1, 2))\n".into(),
            snippets: vec![Snippet {
                path: "util.py".into(),
                start_line: 1,
                end_line: 2,
                text: "def sub(a, b):\n    return a - b".into(),
                source: SnippetSource::Definition,
                kind: Some("function".into()),
                score: 1.0,
                brief: None,
            }],
            path: "main.py".into(),
            language: "python".into(),
            mode: CompletionMode::MultiLine,
            stop: vec!["\n\n\n".into()],
            max_tokens: 64,
            candidates: 1,
        }
    }

    fn config() -> BackendConfig {
        BackendConfig {
            kind: BackendKind::Ollama,
            model: Some("qwen2.5-coder:1.5b-base".into()),
            stop: vec!["\n\n\n".into()],
            ..BackendConfig::default()
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
    fn default_mode_sends_prefix_and_suffix_for_the_model_template() {
        let mut config = config();
        config.keep_alive = Some("-1".into());
        config.top_p = Some(0.9);
        let backend = OllamaBackend::new(&config).expect("valid");
        expect![[r##"
            {
              "keep_alive": -1,
              "model": "qwen2.5-coder:1.5b-base",
              "options": {
                "num_predict": 64,
                "stop": [
                  "\n\n\n"
                ],
                "temperature": 0.2,
                "top_p": 0.9
              },
              "prompt": "# Path: util.py\n# def sub(a, b):\n#     return a - b\n\ndef add(a, b):\n    ",
              "stream": true,
              "suffix": "\n\nprint(add(1, 2))\n"
            }"##]]
        .assert_eq(&pretty(&backend.body(&request())));
        assert!(backend.capabilities().chat);
    }

    #[test]
    fn fim_template_sends_a_raw_prompt_with_its_stops_and_merged_extras() {
        let mut config = config();
        config.fim = Some("qwen".into());
        config.keep_alive = Some("5m".into());
        config.request_body = Some(json!({"options": {"num_ctx": 8192}, "stream": true}));
        let backend = OllamaBackend::new(&config).expect("valid");
        let mut req = request();
        req.snippets.clear();
        req.max_tokens = 500; // capped by `backend.maxTokens`
        expect![[r#"
            {
              "keep_alive": "5m",
              "model": "qwen2.5-coder:1.5b-base",
              "options": {
                "num_ctx": 8192,
                "num_predict": 128,
                "stop": [
                  "<|endoftext|>",
                  "<|fim_prefix|>",
                  "<|fim_suffix|>",
                  "<|fim_middle|>",
                  "<|file_sep|>",
                  "<|im_end|>",
                  "\n\n\n"
                ],
                "temperature": 0.2
              },
              "prompt": "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>",
              "raw": true,
              "stream": true
            }"#]]
        .assert_eq(&pretty(&backend.body(&req)));
        let preview = backend.preview(&req);
        assert_eq!(
            preview.prompt.as_deref(),
            preview.body.as_ref().and_then(|b| b["prompt"].as_str())
        );
    }

    #[test]
    fn no_stop_list_when_there_are_no_stops() {
        let mut config = config();
        config.stop.clear();
        let backend = OllamaBackend::new(&config).expect("valid");
        let mut req = request();
        req.stop.clear();
        assert!(backend.body(&req)["options"].get("stop").is_none());
    }

    #[test]
    fn a_missing_model_is_a_clear_error() {
        let mut config = config();
        config.model = None;
        let err = OllamaBackend::new(&config).err().expect("error");
        let text = err.to_string();
        assert!(text.contains("`backend.model`"), "{text}");
        assert!(text.contains("qwen2.5-coder:1.5b-base"), "{text}");
    }

    #[test]
    fn lines_parse_into_text_done_and_errors() {
        let chunk = |t: &str| Chunk {
            candidate: 0,
            text: t.into(),
        };
        let parse = |l: &str| parse_line(l, "b");
        assert!(matches!(
            parse(r#"{"model":"m","created_at":"t","response":"fo","done":false}"#),
            Ok(Event::Chunks(c)) if c == vec![chunk("fo")]
        ));
        assert!(matches!(
            parse(r#"{"model":"m","response":"","done":false}"#),
            Ok(Event::Chunks(c)) if c.is_empty()
        ));
        assert!(matches!(
            parse(r#"{"model":"m","response":"","done":true,"done_reason":"stop","eval_count":3}"#),
            Ok(Event::Done)
        ));
        assert!(matches!(
            parse(r#"{"model":"m","done":true}"#),
            Ok(Event::Done)
        ));
        let err = parse(r#"{"error":"model runner has unexpectedly stopped"}"#).expect_error();
        assert!(err.to_string().contains("unexpectedly stopped"), "{err}");
        let err = parse(r#"{"response":"x""#).expect_error();
        assert!(err.to_string().contains("bad line"), "{err}");
        let err = parse(r#"{"status":"pulling"}"#).expect_error();
        assert!(err.to_string().contains("no `response`"), "{err}");
    }

    #[test]
    fn tags_warn_about_a_model_not_pulled() {
        let tags =
            json!({"models": [{"name": "qwen2.5-coder:1.5b-base"}, {"name": "llama3:latest"}]});
        let line = tags_line("http://h", &tags, "qwen2.5-coder:1.5b-base");
        assert_eq!(
            line,
            "http://h answers; models: qwen2.5-coder:1.5b-base, llama3:latest"
        );
        assert!(!tags_line("http://h", &tags, "llama3").contains("warning"));
        let line = tags_line("http://h", &tags, "codellama:7b-code");
        assert!(
            line.contains("warning: `backend.model` `codellama:7b-code`"),
            "{line}"
        );
    }

    #[test]
    fn a_model_without_fim_support_gets_advice() {
        let err = BackendError::Status {
            backend: "b".into(),
            status: 400,
            body: r#"{"error":"registry.ollama.ai/library/llama3:latest does not support insert"}"#
                .into(),
            retry_after: None,
        };
        let text = explain(err.clone(), false).to_string();
        assert!(text.contains("`backend.fim`"), "{text}");
        assert_eq!(explain(err.clone(), true), err);
    }

    #[test]
    fn chat_body_snapshot() {
        let mut config = config();
        // The FIM template (and its stops) is for completions only.
        config.fim = Some("qwen".into());
        config.keep_alive = Some("10m".into());
        config.request_body = Some(json!({"options": {"num_ctx": 8192}}));
        let backend = OllamaBackend::new(&config).expect("valid");
        let req = ChatRequest {
            messages: vec![
                crate::ChatMessage::system("You explain code."),
                crate::ChatMessage::user("What does `add` do?"),
            ],
            max_tokens: 700,
            temperature: Some(0.7),
            stop: vec!["<|im_end|>".into()],
        };
        expect![[r#"
            {
              "keep_alive": "10m",
              "messages": [
                {
                  "content": "You explain code.",
                  "role": "system"
                },
                {
                  "content": "What does `add` do?",
                  "role": "user"
                }
              ],
              "model": "qwen2.5-coder:1.5b-base",
              "options": {
                "num_ctx": 8192,
                "num_predict": 700,
                "stop": [
                  "<|im_end|>"
                ],
                "temperature": 0.7
              },
              "stream": true
            }"#]]
        .assert_eq(&pretty(&backend.chat_body(&req)));
        let mut req = req;
        req.temperature = None;
        req.stop.clear();
        let body = backend.chat_body(&req);
        assert_eq!(body["options"]["temperature"], json!(0.2));
        assert!(body["options"].get("stop").is_none(), "{body}");
    }

    #[test]
    fn chat_lines_parse_into_text_done_and_errors() {
        let parse = |l: &str| parse_chat_line(l, "b");
        assert!(matches!(
            parse(r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"It adds"},"done":false}"#),
            Ok(Event::Chunks(c)) if c == vec![Chunk { candidate: 0, text: "It adds".into() }]
        ));
        assert!(matches!(
            parse(
                r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#
            ),
            Ok(Event::Done)
        ));
        let err = parse(r#"{"error":"model 'x' not found"}"#).expect_error();
        assert!(
            err.to_string()
                .contains("the server reported: model 'x' not found"),
            "{err}"
        );
        let err = parse(r#"{"response":"a generate line","done":false}"#).expect_error();
        assert!(err.to_string().contains("no `message`"), "{err}");
    }
}
