//! Model backends: the [`Backend`] trait and its implementations.
//!
//! A backend receives a structured [`CompletionRequest`] and builds its own wire format from it.
//! It answers with a stream of [`Chunk`]s; dropping the stream cancels the request (for HTTP
//! backends the connection is dropped, which makes the server stop generating).
//!
//! Architecture invariant: all HTTP lives in this crate, and each backend owns one pooled
//! client for its whole life.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tandem_core::{BackendConfig, BackendKind, CompletionRequest};

pub mod anthropic;
pub(crate) mod chat;
pub mod embedded;
mod error;
pub(crate) mod http;
pub mod llamacpp;
pub mod mistral;
pub mod ollama;
pub mod openai;
pub mod openai_chat;
pub mod resilient;
mod sse;
pub mod tgi;
pub mod tokenizer;

pub use embedded::{EmbeddedBackend, EmbeddedIndex};
pub use error::BackendError;

/// A piece of generated text for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Which candidate (0-based) this continues.
    pub candidate: u32,
    pub text: String,
}

pub type ChunkStream = BoxStream<'static, Result<Chunk, BackendError>>;

/// What a backend can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Fills in the middle (takes the suffix into account).
    pub fim: bool,
    /// Can hold a chat (serves code actions).
    pub chat: bool,
    /// Can return several candidates for one request.
    pub candidates: bool,
}

/// Whether a backend is answering, as far as the last requests tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Up,
    /// The last request failed; why.
    Down(String),
}

/// What would be sent for a request, for `tandem context`.
#[derive(Debug, Clone, PartialEq)]
pub struct WirePreview {
    /// The prompt string, for backends that send one.
    pub prompt: Option<String>,
    /// The JSON body, for HTTP backends.
    pub body: Option<serde_json::Value>,
}

/// Who says a [`ChatMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    /// The role as the chat APIs spell it: `system`, `user`, `assistant`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::System,
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: ChatRole::Assistant,
            content: content.into(),
        }
    }
}

/// A conversation to continue, for [`Backend::chat`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    /// The most tokens the reply may take (sent as is, not capped by `backend.maxTokens`).
    pub max_tokens: u32,
    /// `None`: the backend's configured temperature.
    pub temperature: Option<f32>,
    /// Stop sequences; empty: none are sent.
    pub stop: Vec<String>,
}

pub trait Backend: Send + Sync + 'static {
    /// A short description for messages: "openai at http://127.0.0.1:8000/v1".
    fn describe(&self) -> String;

    fn capabilities(&self) -> Capabilities;

    fn preview(&self, req: &CompletionRequest) -> WirePreview;

    /// Starts a completion. The future resolves once the server has answered (or failed); the
    /// stream then yields generated text as it arrives.
    fn stream(
        &self,
        req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>>;

    /// Continues a conversation. The future resolves once the server has answered (or failed);
    /// the stream then yields the reply's text as it arrives, all as candidate 0, unaltered (no
    /// code is taken out of it: callers decide). Dropping the stream cancels the request.
    ///
    /// Backends that cannot chat fail at once with a [`BackendError::Config`] that says so.
    fn chat(&self, req: ChatRequest) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        let _ = req;
        let err = BackendError::Config(format!(
            "{} cannot chat; configure a chat-capable backend (openai-chat, ollama, mistral, \
             anthropic)",
            self.describe()
        ));
        futures::future::ready(Err(err)).boxed()
    }

    /// Checks that the backend answers, for `tandem doctor`: a one-line description on success.
    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>>;

    /// Up or down, from the outcome of recent requests (see [`resilient::Resilient`]).
    fn condition(&self) -> Condition {
        Condition::Up
    }
}

/// Builds the backend a configuration names, with retries, a circuit breaker and its
/// fallback (see [`resilient`]). The embedded backend shares `index`.
pub fn build(
    config: &BackendConfig,
    index: &Arc<EmbeddedIndex>,
) -> Result<Arc<dyn Backend>, BackendError> {
    let main = build_one(config, index)?;
    if config.kind == BackendKind::Embedded {
        return Ok(main);
    }
    let fallback = match &config.fallback {
        Some(f) if f.kind == config.kind && f.url == config.url => {
            return Err(BackendError::Config(
                "`backend.fallback` is the same backend as `backend`".to_owned(),
            ));
        }
        // One level: a fallback's own fallback is not followed.
        Some(f) => Some(build_one(f, index)?),
        None => None,
    };
    let first_token = config
        .first_token_timeout_ms
        .map(std::time::Duration::from_millis);
    Ok(Arc::new(resilient::Resilient::new(
        main,
        fallback,
        first_token,
    )))
}

fn build_one(
    config: &BackendConfig,
    index: &Arc<EmbeddedIndex>,
) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(match config.kind {
        BackendKind::Embedded => Arc::new(EmbeddedBackend::new(index.clone(), config)),
        BackendKind::Openai => Arc::new(openai::OpenAiBackend::new(config)?),
        BackendKind::OpenaiChat => openai_chat::build(config)?,
        BackendKind::Ollama => ollama::build(config)?,
        BackendKind::Llamacpp => llamacpp::build(config)?,
        BackendKind::Tgi => tgi::build(config)?,
        BackendKind::Mistral => mistral::build(config)?,
        BackendKind::Anthropic => anthropic::build(config)?,
    })
}

/// Installs the process-wide TLS crypto provider; call once at start-up (idempotent).
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
