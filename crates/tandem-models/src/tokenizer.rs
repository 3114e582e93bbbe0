//! Exact token counts from a Hugging Face `tokenizer.json` (`backend.tokenizerPath`).
//!
//! This is the one place that reads the file; `tandem-core` only sees the [`TokenCounter`]
//! trait. Built with the `tokenizers` crate's default features off (no oniguruma, no hub
//! downloads): `fancy-regex` serves the pre-tokenizers' patterns.

use std::sync::Arc;

use tandem_core::tokens::{CharHeuristic, TokenCounter};

use crate::BackendError;

/// Counts tokens with a model's own tokenizer.
pub struct HfTokenCounter {
    tokenizer: tokenizers::Tokenizer,
}

impl HfTokenCounter {
    /// Loads `path`; a missing or malformed file is a [`BackendError::Config`] naming the key.
    pub fn from_file(path: &str) -> Result<Self, BackendError> {
        // Only a regular file of sensible size: never a FIFO or a device that would block or
        // never end.
        const MAX_BYTES: u64 = 64 << 20;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() && meta.len() <= MAX_BYTES => {}
            Ok(_) => {
                return Err(BackendError::Config(format!(
                    "`backend.tokenizerPath`: `{path}` is not a regular file of at most 64 MiB"
                )));
            }
            Err(e) => {
                return Err(BackendError::Config(format!(
                    "`backend.tokenizerPath`: cannot load the tokenizer `{path}`: {e}"
                )));
            }
        }
        let tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            BackendError::Config(format!(
                "`backend.tokenizerPath`: cannot load the tokenizer `{path}`: {e}"
            ))
        })?;
        Ok(Self { tokenizer })
    }
}

impl TokenCounter for HfTokenCounter {
    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            // Not expected for plain text; count conservatively rather than fail a completion.
            Err(_) => CharHeuristic::default().count(text),
        }
    }
}

/// The counter a backend configuration asks for: the tokenizer at `tokenizer_path`, else the
/// character heuristic.
pub fn counter(tokenizer_path: Option<&str>) -> Result<Arc<dyn TokenCounter>, BackendError> {
    Ok(match tokenizer_path {
        Some(path) => Arc::new(HfTokenCounter::from_file(path)?),
        None => Arc::new(CharHeuristic::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORD_LEVEL: &str = r#"{
      "version": "1.0",
      "truncation": null,
      "padding": null,
      "added_tokens": [],
      "normalizer": null,
      "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": null,
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "fn": 1, "main": 2, "(": 3},
                "unk_token": "[UNK]"}
    }"#;

    #[test]
    fn counts_with_the_file_and_reports_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("tandem-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, WORD_LEVEL).expect("write");
        let counter = counter(path.to_str()).expect("loads");
        assert_eq!(counter.count("fn main ( ) other"), 5);
        assert_eq!(counter.count(""), 0);

        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{").expect("write");
        let err = counter_err(bad.to_str());
        assert!(err.contains("`backend.tokenizerPath`"), "{err}");
        let err = counter_err(Some("/surely/missing/tokenizer.json"));
        assert!(err.contains("/surely/missing/tokenizer.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(self::counter(None).expect("heuristic").count("abcdefgh"), 3);
    }

    fn counter_err(path: Option<&str>) -> String {
        match counter(path) {
            Ok(_) => panic!("expected an error"),
            Err(e) => {
                assert!(matches!(e, BackendError::Config(_)));
                e.to_string()
            }
        }
    }
}
