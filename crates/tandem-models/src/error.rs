//! Backend errors, worded so that a user can act on them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The configuration cannot make a working backend.
    Config(String),
    /// No connection could be made.
    Unreachable { backend: String, detail: String },
    /// The server answered with an HTTP error.
    Status {
        backend: String,
        status: u16,
        body: String,
        /// The server's `Retry-After`, when it gave one.
        retry_after: Option<std::time::Duration>,
    },
    /// No answer in time.
    Timeout { backend: String, after_ms: u64 },
    /// The server answered something we could not read.
    Protocol { backend: String, detail: String },
}

impl BackendError {
    /// A stable key for "have we told the user about this already".
    pub fn category(&self) -> &'static str {
        match self {
            BackendError::Config(_) => "config",
            BackendError::Unreachable { .. } => "unreachable",
            BackendError::Status { .. } => "status",
            BackendError::Timeout { .. } => "timeout",
            BackendError::Protocol { .. } => "protocol",
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Config(msg) => write!(f, "{msg}"),
            BackendError::Unreachable { backend, detail } => write!(
                f,
                "backend {backend} could not be reached ({detail}); is the model server running \
                 and is `backend.url` right?"
            ),
            BackendError::Status {
                backend,
                status,
                body,
                ..
            } => {
                let hint = match status {
                    401 | 403 => "; check the API key (`backend.apiKeyEnv`) and its permissions",
                    404 => {
                        "; check `backend.url` (OpenAI-compatible URLs end in /v1) and `backend.model`"
                    }
                    429 => "; the server is rate-limiting requests",
                    _ => "",
                };
                write!(f, "backend {backend} answered HTTP {status}{hint}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            BackendError::Timeout { backend, after_ms } => write!(
                f,
                "backend {backend} did not answer within {after_ms} ms (`backend.timeoutMs`)"
            ),
            BackendError::Protocol { backend, detail } => {
                write!(
                    f,
                    "backend {backend} sent an answer Tandem could not read: {detail}"
                )
            }
        }
    }
}

impl BackendError {
    /// Whether trying again may help: connection errors, 429 and 503 (and 502, 504 from a proxy
    /// in front of a starting server).
    pub fn is_retryable(&self) -> bool {
        match self {
            BackendError::Unreachable { .. } => true,
            BackendError::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// The server's requested delay before retrying, if it gave one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            BackendError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl std::error::Error for BackendError {}
