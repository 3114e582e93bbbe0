//! The `openai` backend: an OpenAI-compatible `POST {url}/completions` endpoint, as served by
//! vLLM, llama.cpp's server, LM Studio and TGI. Fill-in-the-middle goes through the prompt
//! template; the answer streams as Server-Sent Events.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tandem_core::{BackendConfig, CompletionRequest, FimTemplate};

use crate::sse::SseDecoder;
use crate::{Backend, BackendError, Capabilities, Chunk, ChunkStream, WirePreview};

pub const DEFAULT_URL: &str = "http://127.0.0.1:8000/v1";

pub struct OpenAiBackend {
    client: reqwest::Client,
    url: String,
    model: Option<String>,
    template: FimTemplate,
    temperature: f32,
    max_tokens: u32,
    request_body: Option<Value>,
    timeout: Duration,
}

impl OpenAiBackend {
    pub fn new(config: &BackendConfig) -> Result<Self, BackendError> {
        let url = config
            .url
            .as_deref()
            .unwrap_or(DEFAULT_URL)
            .trim_end_matches('/')
            .to_owned();
        let template = match &config.fim {
            Some(name) => FimTemplate::by_name(name).ok_or_else(|| {
                BackendError::Config(format!(
                    "`backend.fim` is `{name}`; expected one of {}",
                    FimTemplate::NAMES.join(", ")
                ))
            })?,
            None => FimTemplate::starcoder(),
        };
        let client = http_client(config, &url)?;
        Ok(Self {
            client,
            url,
            model: config.model.clone(),
            template,
            temperature: config.temperature,
            max_tokens: config.max_tokens,
            request_body: config.request_body.clone(),
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
        })
    }

    fn body(&self, req: &CompletionRequest) -> Value {
        let mut stop: Vec<String> = self.template.stop.iter().map(|s| (*s).to_owned()).collect();
        for s in &req.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
        let mut body = json!({
            "prompt": self.template.render(req),
            "max_tokens": req.max_tokens.min(self.max_tokens).max(1),
            "temperature": self.temperature,
            "stop": stop,
            "stream": true,
        });
        if let Some(model) = &self.model {
            body["model"] = json!(model);
        }
        if req.candidates > 1 {
            body["n"] = json!(req.candidates);
        }
        if let Some(extra) = &self.request_body {
            tandem_core::config::merge(&mut body, extra.clone());
        }
        body
    }

    fn describe_at(&self) -> String {
        format!("`openai` at {}", self.url)
    }
}

/// One pooled client per backend, with its own certificates, headers and proxy settings.
pub(crate) fn http_client(
    config: &BackendConfig,
    url: &str,
) -> Result<reqwest::Client, BackendError> {
    crate::init_tls();
    let mut headers = HeaderMap::new();
    if let Some(var) = &config.api_key_env {
        let key = std::env::var(var).map_err(|_| {
            BackendError::Config(format!(
                "`backend.apiKeyEnv` names the environment variable `{var}`, but it is not set \
                 (local servers need no key: remove `apiKeyEnv`)"
            ))
        })?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", key.trim())).map_err(|_| {
            BackendError::Config(format!(
                "the API key in `{var}` is not a valid header value"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            BackendError::Config(format!(
                "`backend.headers`: `{name}` is not a valid header name"
            ))
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            BackendError::Config(format!(
                "`backend.headers.{name}` is not a valid header value"
            ))
        })?;
        headers.insert(name, value);
    }
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_cert_path {
        let pem = std::fs::read(path).map_err(|e| {
            BackendError::Config(format!("`backend.caCertPath`: cannot read {path}: {e}"))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            BackendError::Config(format!("`backend.caCertPath`: {path} is not PEM: {e}"))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| {
        BackendError::Config(format!(
            "cannot create an HTTP client for {url}: {}",
            error_chain(&e)
        ))
    })
}

/// An error with its sources, which is where reqwest says what actually went wrong.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

impl Backend for OpenAiBackend {
    fn describe(&self) -> String {
        self.describe_at()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: true,
        }
    }

    fn preview(&self, req: &CompletionRequest) -> WirePreview {
        WirePreview {
            prompt: Some(self.template.render(req)),
            body: Some(self.body(req)),
        }
    }

    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let body = self.body(&req);
        let request = self
            .client
            .post(format!("{}/completions", self.url))
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .json(&body);
        let backend = self.describe_at();
        let timeout_ms = self.timeout.as_millis() as u64;
        let send_error = {
            let this_backend = backend.clone();
            move |err: reqwest::Error| {
                if err.is_timeout() {
                    BackendError::Timeout {
                        backend: this_backend.clone(),
                        after_ms: timeout_ms,
                    }
                } else if err.is_connect() || err.is_request() {
                    BackendError::Unreachable {
                        backend: this_backend.clone(),
                        detail: error_chain(&err),
                    }
                } else {
                    BackendError::Protocol {
                        backend: this_backend.clone(),
                        detail: error_chain(&err),
                    }
                }
            }
        };
        async move {
            let response = request.send().await.map_err(&send_error)?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                return Err(BackendError::Status {
                    backend,
                    status: status.as_u16(),
                    body: excerpt(&text),
                });
            }
            let is_json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if is_json {
                // The server ignored `stream: true` and answered in one piece.
                let value: Value = response.json().await.map_err(&send_error)?;
                let chunks = parse_event(&value, &backend)?;
                return Ok(
                    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))) as ChunkStream
                );
            }
            let state = StreamState {
                bytes: Box::pin(response.bytes_stream()),
                decoder: SseDecoder::default(),
                pending: VecDeque::new(),
                done: false,
                backend,
                send_error: Box::new(send_error),
            };
            Ok(Box::pin(futures::stream::unfold(state, next_chunk)) as ChunkStream)
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let request = self
            .client
            .get(format!("{}/models", self.url))
            .timeout(self.timeout);
        let backend = self.describe_at();
        let model = self.model.clone();
        let url = self.url.clone();
        async move {
            let response = request
                .send()
                .await
                .map_err(|e| BackendError::Unreachable {
                    backend: backend.clone(),
                    detail: error_chain(&e),
                })?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                return Err(BackendError::Status {
                    backend,
                    status: status.as_u16(),
                    body: excerpt(&text),
                });
            }
            let value: Value = response.json().await.map_err(|e| BackendError::Protocol {
                backend: backend.clone(),
                detail: error_chain(&e),
            })?;
            let ids: Vec<&str> = value["data"]
                .as_array()
                .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
                .unwrap_or_default();
            let mut line = format!(
                "{url} answers; models: {}",
                if ids.is_empty() {
                    "none listed".to_owned()
                } else {
                    ids.join(", ")
                }
            );
            if let Some(model) = model
                && !ids.is_empty()
                && !ids.contains(&model.as_str())
            {
                line.push_str(&format!(
                    "; warning: `backend.model` `{model}` is not among them"
                ));
            }
            Ok(line)
        }
        .boxed()
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

struct StreamState {
    bytes: ByteStream,
    decoder: SseDecoder,
    pending: VecDeque<Chunk>,
    done: bool,
    backend: String,
    send_error: Box<dyn Fn(reqwest::Error) -> BackendError + Send>,
}

async fn next_chunk(mut s: StreamState) -> Option<(Result<Chunk, BackendError>, StreamState)> {
    loop {
        if let Some(chunk) = s.pending.pop_front() {
            return Some((Ok(chunk), s));
        }
        if s.done {
            return None;
        }
        let events = match s.bytes.next().await {
            Some(Ok(bytes)) => s.decoder.push(bytes.as_ref()),
            Some(Err(err)) => {
                s.done = true;
                let err = (s.send_error)(err);
                return Some((Err(err), s));
            }
            None => {
                s.done = true;
                s.decoder.finish().into_iter().collect()
            }
        };
        for data in events {
            if data.trim() == "[DONE]" {
                s.done = true;
                break;
            }
            let parsed = serde_json::from_str::<Value>(&data)
                .map_err(|e| BackendError::Protocol {
                    backend: s.backend.clone(),
                    detail: format!("bad event `{}`: {e}", excerpt(&data)),
                })
                .and_then(|v| parse_event(&v, &s.backend));
            match parsed {
                Ok(chunks) => s.pending.extend(chunks),
                Err(err) => {
                    s.done = true;
                    return Some((Err(err), s));
                }
            }
        }
    }
}

/// The text pieces of one completion event (streamed or not).
fn parse_event(value: &Value, backend: &str) -> Result<Vec<Chunk>, BackendError> {
    if let Some(error) = value.get("error") {
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
            let text = choice.get("text").and_then(Value::as_str)?;
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

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_into_chunks_per_candidate() {
        let v = json!({"choices": [{"text": "a", "index": 1}, {"text": "", "index": 0}]});
        assert_eq!(
            parse_event(&v, "b").expect("ok"),
            vec![Chunk {
                candidate: 1,
                text: "a".into()
            }]
        );
        let err = parse_event(&json!({"error": {"message": "model not loaded"}}), "b")
            .expect_err("error");
        assert!(err.to_string().contains("model not loaded"));
    }

    #[test]
    fn body_has_template_stops_and_merged_extras() {
        let config = BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            model: Some("m".into()),
            stop: vec!["\n\n".into()],
            request_body: Some(json!({"top_k": 5, "temperature": 0.0})),
            ..BackendConfig::default()
        };
        let backend = OpenAiBackend::new(&config).expect("valid");
        let req = CompletionRequest {
            prefix: "a".into(),
            suffix: "b".into(),
            snippets: vec![],
            path: "x.rs".into(),
            language: "rust".into(),
            mode: tandem_core::CompletionMode::SingleLine,
            stop: vec!["\n\n".into()],
            max_tokens: 16,
            candidates: 2,
        };
        let body = backend.body(&req);
        assert_eq!(body["prompt"], "<fim_prefix>a<fim_suffix>b<fim_middle>");
        assert_eq!(body["model"], "m");
        assert_eq!(body["n"], 2);
        assert_eq!(body["top_k"], 5);
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["max_tokens"], 16);
        assert!(
            body["stop"]
                .as_array()
                .expect("array")
                .contains(&json!("\n\n"))
        );
    }

    #[test]
    fn missing_key_variable_is_a_clear_error() {
        let config = BackendConfig {
            kind: tandem_core::BackendKind::Openai,
            api_key_env: Some("TANDEM_TEST_SURELY_UNSET_VAR".into()),
            ..BackendConfig::default()
        };
        let err = OpenAiBackend::new(&config).err().expect("error");
        assert!(err.to_string().contains("TANDEM_TEST_SURELY_UNSET_VAR"));
    }
}
