//! The embedded backend: completions from a statistical model of the workspace's own code,
//! with no server and no download. See `model.rs` for what the model is.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tandem_core::{BackendConfig, CompletionRequest};

use crate::{Backend, BackendError, Capabilities, Chunk, ChunkStream, WirePreview};

mod model;
mod tokens;

pub use model::{EmbeddedIndex, IndexStats};

/// Serves completions from an [`EmbeddedIndex`] shared with the workspace indexer.
pub struct EmbeddedBackend {
    index: Arc<EmbeddedIndex>,
    max_tokens: u32,
}

impl EmbeddedBackend {
    pub fn new(index: Arc<EmbeddedIndex>, config: &BackendConfig) -> Self {
        Self {
            index,
            max_tokens: config.max_tokens,
        }
    }
}

impl Backend for EmbeddedBackend {
    fn describe(&self) -> String {
        "embedded".to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            fim: true,
            chat: false,
            candidates: false,
        }
    }

    fn preview(&self, _req: &CompletionRequest) -> WirePreview {
        WirePreview {
            prompt: None,
            body: None,
        }
    }

    fn stream(
        &self,
        mut req: CompletionRequest,
    ) -> BoxFuture<'static, Result<ChunkStream, BackendError>> {
        req.max_tokens = req.max_tokens.min(self.max_tokens.max(1));
        let index = self.index.clone();
        async move {
            let text = index.complete(&req);
            let chunks: Vec<Result<Chunk, BackendError>> = text
                .into_iter()
                .map(|text| Ok(Chunk { candidate: 0, text }))
                .collect();
            Ok(Box::pin(futures::stream::iter(chunks)) as ChunkStream)
        }
        .boxed()
    }

    fn health(&self) -> BoxFuture<'static, Result<String, BackendError>> {
        let stats = self.index.stats();
        async move {
            Ok(format!(
                "embedded model: {} files, {} tokens indexed ({} bytes)",
                stats.files, stats.tokens, stats.bytes
            ))
        }
        .boxed()
    }
}
