//! PLACEHOLDER while the model is written: replaced by the real n-gram model.
use tandem_core::CompletionRequest;

#[derive(Debug, Clone, Copy, Default)]
pub struct IndexStats { pub files: usize, pub tokens: usize, pub bytes: usize }

#[derive(Debug, Default)]
pub struct EmbeddedIndex;

impl EmbeddedIndex {
    pub fn new(_budget_bytes: u64) -> Self { Self }
    pub fn upsert(&self, _path: &str, _text: &str) {}
    pub fn remove(&self, _path: &str) {}
    pub fn stats(&self) -> IndexStats { IndexStats::default() }
    pub fn complete(&self, _req: &CompletionRequest) -> Option<String> { None }
}
