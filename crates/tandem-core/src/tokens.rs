//! Counting tokens, for fitting the prompt into the model's context window.
//!
//! [`CharHeuristic`] is the default: no tokenizer file needed. An exact counter backed by a
//! `tokenizer.json` lives in `tandem-models` (the one place that reads files).

/// Counts the tokens a text takes.
///
/// Budgeting sums the counts of pieces (lines, snippets, markers) and then checks the whole
/// prompt, so a counter should be close to subadditive: `count(a + b) <= count(a) + count(b)`
/// (exactly so for the heuristic; nearly so for real tokenizers).
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

/// A conservative character heuristic: ASCII counts `1 / chars_per_token` of a token (3.5 by
/// default, about what code-trained BPE vocabularies average on source code, rounded down so
/// that counts err high), and every non-ASCII character counts a whole token (CJK, emoji and
/// accented letters often take one or more). The total is rounded up.
///
/// It is exactly subadditive (`count(a + b) <= count(a) + count(b)`), so pieces counted
/// separately never undercount their concatenation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CharHeuristic {
    pub chars_per_token: f64,
}

impl CharHeuristic {
    pub const DEFAULT_CHARS_PER_TOKEN: f64 = 3.5;
}

impl Default for CharHeuristic {
    fn default() -> Self {
        Self {
            chars_per_token: Self::DEFAULT_CHARS_PER_TOKEN,
        }
    }
}

impl TokenCounter for CharHeuristic {
    fn count(&self, text: &str) -> usize {
        let mut ascii = 0usize;
        let mut other = 0usize;
        for c in text.chars() {
            if c.is_ascii() {
                ascii += 1;
            } else {
                other += 1;
            }
        }
        let per = if self.chars_per_token.is_finite() && self.chars_per_token >= 1.0 {
            self.chars_per_token
        } else {
            1.0
        };
        // Integer arithmetic in tenths keeps rounding exact and monotone.
        let per_tenths = (per * 10.0).floor().max(10.0) as usize;
        other + (ascii * 10).div_ceil(per_tenths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_counts_conservatively() {
        let h = CharHeuristic::default();
        assert_eq!(h.count(""), 0);
        assert_eq!(h.count("a"), 1);
        assert_eq!(h.count("abcdefg"), 2);
        assert_eq!(h.count("abcdefgh"), 3);
        assert_eq!(h.count("日本語"), 3);
        assert_eq!(h.count("ab日"), 2);
    }

    #[test]
    fn heuristic_is_subadditive() {
        let h = CharHeuristic::default();
        let texts = ["", "a", "abc", "fn main() {}", "日本", "x\ny\n", "ééé e"];
        for a in texts {
            for b in texts {
                assert!(h.count(&format!("{a}{b}")) <= h.count(a) + h.count(b));
            }
        }
    }
}
