//! The `openai_chat` backend (being written).

use std::sync::Arc;

use tandem_core::BackendConfig;

use crate::{Backend, BackendError};

/// Builds the backend.
pub fn build(config: &BackendConfig) -> Result<Arc<dyn Backend>, BackendError> {
    Err(BackendError::Config(format!(
        "backend kind `{}` is not available yet",
        config.kind.as_str()
    )))
}
