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

impl std::error::Error for BackendError {}
