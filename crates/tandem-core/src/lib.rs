//! Tandem's core: documents and positions, configuration, the cursor window and requests,
//! prompt templates and post-processing.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of LSP or HTTP. Nothing in
//! it fails on user input: out-of-range positions clamp, bad configuration becomes messages.

pub mod actions;
pub mod config;
pub mod context;
pub mod document;
pub mod fusion;
pub mod postprocess;
pub mod prompt;
pub mod request;
pub mod similar;
pub mod tokens;

pub use config::{BackendConfig, BackendKind, Config};
pub use context::CursorWindow;
pub use document::{Document, Edit, LineCol, PositionEncoding, Snapshot, TextChange};
pub use postprocess::{Flow, PostProcessor};
pub use prompt::FimTemplate;
pub use request::{CompletionMode, CompletionRequest, Snippet, SnippetSource};
