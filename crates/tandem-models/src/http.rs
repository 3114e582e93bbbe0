//! HTTP plumbing shared by every HTTP backend: the pooled client with its headers,
//! certificates and proxies; error mapping; status checks; and event streams (SSE, and
//! newline-delimited JSON) turned into chunk streams that end the request when dropped.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use serde_json::Value;
use tandem_core::BackendConfig;

use crate::sse::SseDecoder;
use crate::{BackendError, Chunk, ChunkStream};

/// How the API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// `Authorization: Bearer KEY` (OpenAI, Mistral, TGI, most proxies).
    Bearer,
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
}

/// A backend's server: its pooled client, base URL and timeout, and the backend's name in
/// messages ("`openai` at URL").
pub struct Endpoint {
    client: reqwest::Client,
    pub url: String,
    timeout: Duration,
    name: &'static str,
}

impl Endpoint {
    /// The endpoint `config` describes, for the backend called `name`, its key sent as `key`.
    pub fn new(
        config: &BackendConfig,
        name: &'static str,
        key: KeyHeader,
    ) -> Result<Self, BackendError> {
        let url = base_url(config);
        let client = client(config, &url, key)?;
        Ok(Self {
            client,
            url,
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            name,
        })
    }

    /// `POST {url}{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/json")
            .json(body)
    }

    /// `GET {url}{path}`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .timeout(self.timeout)
    }

    /// Maps transport errors to errors that name this backend.
    pub fn errors(&self) -> ErrorMap {
        ErrorMap {
            backend: self.describe(),
            timeout_ms: self.timeout.as_millis() as u64,
        }
    }

    /// "`kind` at URL", for [`crate::Backend::describe`].
    pub fn describe(&self) -> String {
        format!("`{}` at {}", self.name, self.url)
    }

    /// A health check: sends `request` and hands its JSON answer (with the base URL and the
    /// error map) to `line`, which says what it means.
    pub fn health(
        &self,
        request: reqwest::RequestBuilder,
        line: impl FnOnce(&str, &Value, &ErrorMap) -> Result<String, BackendError> + Send + 'static,
    ) -> BoxFuture<'static, Result<String, BackendError>> {
        let errors = self.errors();
        let url = self.url.clone();
        async move {
            let response = send(request, &errors).await?;
            let value: Value = response
                .json()
                .await
                .map_err(|e| errors.protocol(error_chain(&e)))?;
            line(&url, &value, &errors)
        }
        .boxed()
    }
}

/// The sampling settings every HTTP backend sends, and `backend.requestBody`.
pub struct Sampling {
    pub temperature: f32,
    pub top_p: Option<f32>,
    /// The cap on a completion's `max_tokens` (`backend.maxTokens`).
    pub max_tokens: u32,
    request_body: Option<Value>,
}

impl Sampling {
    pub fn new(config: &BackendConfig) -> Self {
        Self {
            temperature: config.temperature,
            top_p: config.top_p,
            max_tokens: config.max_tokens,
            request_body: config.request_body.clone(),
        }
    }

    /// `body` with `backend.requestBody` merged in.
    pub fn merge_extra(&self, mut body: Value) -> Value {
        if let Some(extra) = &self.request_body {
            tandem_core::config::merge(&mut body, extra.clone());
        }
        body
    }
}

/// One pooled client per backend, with its own key, headers, certificates and proxy settings
/// (`HTTPS_PROXY`, `NO_PROXY` and the system's proxy configuration are honoured).
pub fn client(
    config: &BackendConfig,
    url: &str,
    key_header: KeyHeader,
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
        let (name, value) = match key_header {
            KeyHeader::Bearer => (AUTHORIZATION, format!("Bearer {}", key.trim())),
            KeyHeader::XApiKey => (HeaderName::from_static("x-api-key"), key.trim().to_owned()),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            BackendError::Config(format!(
                "the API key in `{var}` is not a valid header value"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    for (name, value) in &config.headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            BackendError::Config(format!(
                "`backend.headers`: `{name}` is not a valid header name"
            ))
        })?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            BackendError::Config(format!(
                "`backend.headers.{name}` is not a valid header value"
            ))
        })?;
        headers.insert(header, value);
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

/// The base URL from the configuration or the kind's default, without a trailing `/`.
pub fn base_url(config: &BackendConfig) -> String {
    config
        .url
        .as_deref()
        .or(config.kind.default_url())
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

/// An error with its sources, which is where reqwest says what actually went wrong.
pub fn error_chain(err: &dyn std::error::Error) -> String {
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

/// The first 300 characters of a server's text, for messages.
pub fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Maps transport errors to [`BackendError`]s that name the backend.
#[derive(Debug, Clone)]
pub struct ErrorMap {
    pub backend: String,
    pub timeout_ms: u64,
}

impl ErrorMap {
    pub fn map(&self, err: &reqwest::Error) -> BackendError {
        if err.is_timeout() {
            BackendError::Timeout {
                backend: self.backend.clone(),
                after_ms: self.timeout_ms,
            }
        } else if err.is_connect() || err.is_request() {
            BackendError::Unreachable {
                backend: self.backend.clone(),
                detail: error_chain(err),
            }
        } else {
            BackendError::Protocol {
                backend: self.backend.clone(),
                detail: error_chain(err),
            }
        }
    }

    pub fn protocol(&self, detail: impl Into<String>) -> BackendError {
        BackendError::Protocol {
            backend: self.backend.clone(),
            detail: detail.into(),
        }
    }
}

/// Sends `request`, and turns a non-success status into [`BackendError::Status`] (with the
/// server's `Retry-After`, when it gives one in seconds).
pub async fn send(
    request: reqwest::RequestBuilder,
    errors: &ErrorMap,
) -> Result<reqwest::Response, BackendError> {
    let response = request.send().await.map_err(|e| errors.map(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    Err(BackendError::Status {
        backend: errors.backend.clone(),
        status: status.as_u16(),
        body: excerpt(&text),
        retry_after,
    })
}

/// Whether the response body is a single JSON document rather than a stream.
pub fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// What one event of a stream means.
pub enum Event {
    /// Text for candidates.
    Chunks(Vec<Chunk>),
    /// The stream is complete.
    Done,
}

/// One JSON event of a single-candidate stream (llama.cpp's SSE, Ollama's NDJSON): an
/// `error` from the server, text found by `text` (`field` names it in messages), and the
/// `done_flag` that marks the last event. `kind` says "event" or "line" in messages.
pub fn single_text_event(
    data: &str,
    backend: &str,
    kind: &str,
    field: &str,
    done_flag: &str,
    text: impl for<'a> Fn(&'a serde_json::Value) -> Option<&'a str>,
) -> Result<Event, BackendError> {
    use serde_json::Value;
    let protocol = |detail: String| BackendError::Protocol {
        backend: backend.to_owned(),
        detail,
    };
    let value: Value = serde_json::from_str(data)
        .map_err(|e| protocol(format!("bad {kind} `{}`: {e}", excerpt(data))))?;
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return Err(protocol(format!(
            "the server reported: {}",
            excerpt(&message)
        )));
    }
    let text = text(&value);
    let done = value
        .get(done_flag)
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if text.is_none() && !done {
        return Err(protocol(format!("no `{field}` in `{}`", excerpt(data))));
    }
    match text.filter(|t| !t.is_empty()) {
        // Text on the final event still counts; the body ends right after it.
        Some(text) => Ok(Event::Chunks(vec![Chunk {
            candidate: 0,
            text: text.to_owned(),
        }])),
        None if done => Ok(Event::Done),
        None => Ok(Event::Chunks(Vec::new())),
    }
}

/// How a stream's body is split into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-Sent Events: each event's `data`.
    Sse,
    /// Newline-delimited JSON: each non-empty line.
    Ndjson,
}

/// Turns a streaming response into chunks, parsing each event with `parse`. Dropping the stream
/// drops the response, which closes the connection.
pub fn event_stream(
    response: reqwest::Response,
    framing: Framing,
    errors: ErrorMap,
    parse: impl Fn(&str) -> Result<Event, BackendError> + Send + 'static,
) -> ChunkStream {
    struct State<P> {
        bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        sse: SseDecoder,
        lines: Vec<u8>,
        framing: Framing,
        pending: VecDeque<Chunk>,
        done: bool,
        errors: ErrorMap,
        parse: P,
    }
    let state = State {
        bytes: response.bytes_stream().boxed(),
        sse: SseDecoder::default(),
        lines: Vec::new(),
        framing,
        pending: VecDeque::new(),
        done: false,
        errors,
        parse,
    };
    let stream = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(chunk) = s.pending.pop_front() {
                return Some((Ok(chunk), s));
            }
            if s.done {
                return None;
            }
            let (events, ended) = match s.bytes.next().await {
                Some(Ok(bytes)) => (split(&mut s.sse, &mut s.lines, s.framing, &bytes), false),
                Some(Err(err)) => {
                    s.done = true;
                    let err = s.errors.map(&err);
                    return Some((Err(err), s));
                }
                None => (finish(&mut s.sse, &mut s.lines, s.framing), true),
            };
            for event in events {
                match (s.parse)(&event) {
                    Ok(Event::Chunks(chunks)) => s.pending.extend(chunks),
                    Ok(Event::Done) => {
                        s.done = true;
                        break;
                    }
                    Err(err) => {
                        s.done = true;
                        return Some((Err(err), s));
                    }
                }
            }
            if ended {
                s.done = true;
            }
        }
    });
    Box::pin(stream)
}

fn split(sse: &mut SseDecoder, lines: &mut Vec<u8>, framing: Framing, bytes: &[u8]) -> Vec<String> {
    match framing {
        Framing::Sse => sse.push(bytes),
        Framing::Ndjson => {
            lines.extend_from_slice(bytes);
            let mut out = Vec::new();
            while let Some(nl) = lines.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = lines.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line).trim().to_owned();
                if !line.is_empty() {
                    out.push(line);
                }
            }
            out
        }
    }
}

fn finish(sse: &mut SseDecoder, lines: &mut Vec<u8>, framing: Framing) -> Vec<String> {
    match framing {
        Framing::Sse => sse.finish().into_iter().collect(),
        Framing::Ndjson => {
            let line = String::from_utf8_lossy(lines).trim().to_owned();
            lines.clear();
            if line.is_empty() {
                Vec::new()
            } else {
                vec![line]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_split_anywhere() {
        let (mut sse, mut lines) = (SseDecoder::default(), Vec::new());
        assert!(split(&mut sse, &mut lines, Framing::Ndjson, b"{\"a\":").is_empty());
        assert_eq!(
            split(&mut sse, &mut lines, Framing::Ndjson, b"1}\n\n{\"b\""),
            vec!["{\"a\":1}"]
        );
        assert_eq!(
            finish(&mut sse, &mut lines, Framing::Ndjson),
            vec!["{\"b\""]
        );
    }
}
