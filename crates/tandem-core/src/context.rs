//! The cursor window: the text around the cursor that goes into every request, and the facts
//! about the cursor's line that post-processing needs; and the fitting of a request into the
//! model's context window.
//!
//! # Token budgets
//!
//! `backend.contextWindow` less `backend.maxTokens` (reserved for generation) and the
//! template's own text (markers, and Qwen's repository header when there are snippets) is what
//! the prompt may use. It is split by `context.prefixShare`, `context.suffixShare` and
//! `context.snippetShare` (normalized by their sum). The suffix is cut first, from the back,
//! ending at a line end where possible; snippets are packed whole, highest score first, skipping
//! those that do not fit; the prefix then gets its share plus whatever the suffix and snippets
//! left unused, and is cut from the front, starting at a line start where possible. Cuts are
//! at character boundaries (never inside a character, never inside a snippet), and
//! `prefixChars`/`suffixChars` stay as hard caps. Lines are counted one by one and the counts
//! summed, which never undercounts with a subadditive counter; the finished prompt is then
//! counted whole and the prefix shrunk if a real tokenizer still finds it too long.

use ropey::Rope;

use std::collections::HashMap;

use crate::config::{Config, ContextConfig, ContextSource};
use crate::prompt::FimTemplate;
use crate::request::{CompletionMode, CompletionRequest, Snippet};
use crate::tokens::TokenCounter;

/// The text around the cursor, within the configured budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorWindow {
    /// Text before the cursor: whole lines where the budget allows.
    pub prefix: String,
    /// Text after the cursor, ending at a line end where the budget allows.
    pub suffix: String,
    /// The cursor's line up to the cursor.
    pub line_before: String,
    /// The cursor's line after the cursor, without its line break.
    pub line_after: String,
    pub mode: CompletionMode,
}

impl CursorWindow {
    /// The window at `char_idx` (clamped to the document), within the character caps only.
    pub fn at(rope: &Rope, char_idx: usize, budget: &ContextConfig) -> Self {
        Self::fit(rope, char_idx, budget, None)
    }

    /// The lines (0-based, inclusive) the window at `char_idx` can take within the character
    /// caps, without building its text: where other context sources must not repeat it.
    pub fn lines_at(rope: &Rope, char_idx: usize, budget: &ContextConfig) -> (usize, usize) {
        let cursor = clamp_cursor(rope, char_idx);
        let start = cut_prefix(rope, cursor, budget.prefix_chars, None);
        let end = cut_suffix(rope, cursor, budget.suffix_chars, None);
        (rope.char_to_line(start), rope.char_to_line(end))
    }

    /// The window at `char_idx` within the character caps and, when `tokens` is given, within
    /// `(prefix tokens, suffix tokens)` as `counter` counts them.
    pub fn fit(
        rope: &Rope,
        char_idx: usize,
        budget: &ContextConfig,
        tokens: Option<(usize, usize, &dyn TokenCounter)>,
    ) -> Self {
        let cursor = clamp_cursor(rope, char_idx);
        let (prefix_limit, suffix_limit) = match tokens {
            Some((p, s, counter)) => (Some((p, counter)), Some((s, counter))),
            None => (None, None),
        };
        let start = cut_prefix(rope, cursor, budget.prefix_chars, prefix_limit);
        let end = cut_suffix(rope, cursor, budget.suffix_chars, suffix_limit);
        Self::from_range(rope, start, cursor, end)
    }

    fn from_range(rope: &Rope, start: usize, cursor: usize, end: usize) -> Self {
        let line = rope.char_to_line(cursor);
        let line_start = rope.line_to_char(line);
        let line_end = line_start + crate::document::line_len_without_break(rope, line);
        let line_before = rope.slice(line_start..cursor).to_string();
        let line_after = rope.slice(cursor..line_end).to_string();
        let mode = if line_after.trim().is_empty() {
            CompletionMode::MultiLine
        } else {
            CompletionMode::SingleLine
        };
        Self {
            prefix: rope.slice(start..cursor).to_string(),
            suffix: rope.slice(cursor..end).to_string(),
            line_before,
            line_after,
            mode,
        }
    }

    /// A request for this window.
    pub fn request(
        &self,
        path: String,
        language: String,
        snippets: Vec<Snippet>,
        backend: &crate::config::BackendConfig,
        candidates: u32,
    ) -> CompletionRequest {
        CompletionRequest {
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            snippets,
            path,
            language,
            mode: self.mode,
            stop: backend.stop.clone(),
            max_tokens: backend.max_tokens,
            candidates: candidates.max(1),
        }
    }
}

/// Where the prefix starts: whole lines back from the cursor while both limits allow; inside
/// the cursor's line only when that line alone is over a limit.
fn cut_prefix(
    rope: &Rope,
    cursor: usize,
    max_chars: usize,
    tokens: Option<(usize, &dyn TokenCounter)>,
) -> usize {
    let min_start = cursor.saturating_sub(max_chars);
    let mut line = rope.char_to_line(cursor);
    let line_start = rope.line_to_char(line);
    let first = line_start.max(min_start);
    let count = |a: usize, b: usize| match tokens {
        Some((_, counter)) => counter.count(&rope.slice(a..b).to_string()),
        None => 0,
    };
    let max_tokens = tokens.map_or(usize::MAX, |(t, _)| t);
    let mut used = count(first, cursor);
    if used > max_tokens {
        // The smallest start whose tail fits: counts shrink as the start moves right.
        let (mut lo, mut hi) = (first, cursor);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if count(mid, cursor) <= max_tokens {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return lo;
    }
    if first > line_start {
        return first;
    }
    let mut start = line_start;
    while line > 0 {
        let prev = rope.line_to_char(line - 1);
        if prev < min_start {
            break;
        }
        let c = count(prev, start);
        if used.saturating_add(c) > max_tokens {
            break;
        }
        used += c;
        start = prev;
        line -= 1;
    }
    start
}

/// Where the suffix ends: after whole lines while both limits allow; inside the cursor's line
/// only when its rest alone is over a limit.
fn cut_suffix(
    rope: &Rope,
    cursor: usize,
    max_chars: usize,
    tokens: Option<(usize, &dyn TokenCounter)>,
) -> usize {
    let len = rope.len_chars();
    let max_end = cursor.saturating_add(max_chars).min(len);
    let line_end = |line: usize| {
        if line + 1 < rope.len_lines() {
            rope.line_to_char(line + 1)
        } else {
            len
        }
    };
    let count = |a: usize, b: usize| match tokens {
        Some((_, counter)) => counter.count(&rope.slice(a..b).to_string()),
        None => 0,
    };
    let max_tokens = tokens.map_or(usize::MAX, |(t, _)| t);
    let mut line = rope.char_to_line(cursor);
    let next = line_end(line);
    let first = next.min(max_end);
    let mut used = count(cursor, first);
    if used > max_tokens {
        // The largest end whose head fits.
        let (mut lo, mut hi) = (cursor, first);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if count(cursor, mid) <= max_tokens {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        return lo;
    }
    if first < next {
        return first;
    }
    let mut end = first;
    while end < max_end {
        line += 1;
        let next = line_end(line);
        if next > max_end || next <= end {
            break;
        }
        let c = count(end, next);
        if used.saturating_add(c) > max_tokens {
            break;
        }
        used += c;
        end = next;
    }
    end
}

/// Token budgets for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenBudget {
    /// Tokens the prompt may use in all (the window less generation and the template).
    pub available: usize,
    pub prefix: usize,
    pub suffix: usize,
    pub snippets: usize,
}

impl TokenBudget {
    /// `available` tokens split by the configured shares (normalized by their sum; all to
    /// the prefix when they are all 0).
    pub fn split(available: usize, context: &ContextConfig) -> Self {
        let shares = [
            context.prefix_share,
            context.suffix_share,
            context.snippet_share,
        ]
        .map(|s| {
            if s.is_finite() {
                f64::from(s.max(0.0))
            } else {
                0.0
            }
        });
        let sum: f64 = shares.iter().sum();
        let part = |s: f64| {
            if sum > 0.0 {
                ((available as f64) * s / sum).floor() as usize
            } else {
                0
            }
        };
        let suffix = part(shares[1]).min(available);
        let snippets = part(shares[2]).min(available - suffix);
        Self {
            available,
            prefix: available - suffix - snippets,
            suffix,
            snippets,
        }
    }
}

/// Fits requests into the model's context window.
pub struct PromptBudget<'a> {
    pub config: &'a Config,
    /// The template the prompt is rendered with (its markers are counted).
    pub template: &'a FimTemplate,
    pub counter: &'a dyn TokenCounter,
}

impl PromptBudget<'_> {
    /// The most tokens the rendered prompt may take: the window less `maxTokens`.
    pub fn prompt_limit(&self) -> usize {
        let b = &self.config.backend;
        (b.context_window as usize).saturating_sub(b.max_tokens as usize)
    }

    /// The cursor window and request at `cursor`, with `snippets` (any order; packed by
    /// score) fitted into the budgets.
    pub fn assemble(
        &self,
        rope: &Rope,
        cursor: usize,
        path: String,
        language: String,
        snippets: Vec<Snippet>,
    ) -> (CursorWindow, CompletionRequest) {
        let cursor = clamp_cursor(rope, cursor);
        let context = &self.config.context;
        let count = |t: &str| self.counter.count(t);
        let bare = CursorWindow::from_range(rope, cursor, cursor, cursor);
        let mut req = bare.request(
            path,
            language,
            Vec::new(),
            &self.config.backend,
            self.config.completion.candidates,
        );
        let limit = self.prompt_limit();
        let overhead = count(&self.template.overhead(&req, false));
        let budget = TokenBudget::split(limit.saturating_sub(overhead), context);

        // Snippets, best first: each in its brief form when it has one (breadth first), each
        // source first within its share of the snippet budget, then any source in what is
        // left; then brief forms become whole, best first, while the budget lasts. Kept in
        // the order given.
        let mut snippet_used = 0;
        let mut kept: Vec<Snippet> = Vec::new();
        if !snippets.is_empty() {
            let header = count(&self.template.overhead(&req, true)).saturating_sub(overhead);
            let render = |s: &Snippet| count(&self.template.render_snippet(s, &req.language));
            let costs: Vec<(usize, Option<usize>)> = snippets
                .iter()
                .map(|s| {
                    let brief = s.brief.as_ref().map(|b| {
                        render(&Snippet {
                            text: b.clone(),
                            ..s.clone()
                        })
                    });
                    (render(s), brief)
                })
                .collect();
            let mut order: Vec<usize> = (0..snippets.len()).collect();
            order.sort_by(|&a, &b| snippets[b].score.total_cmp(&snippets[a].score));
            let space = budget.snippets.saturating_sub(header);
            let mut used = 0;
            let mut by_source: HashMap<Option<ContextSource>, usize> = HashMap::new();
            // What was taken of each snippet: nothing, its brief form, or all of it.
            let mut taken: Vec<Option<bool>> = vec![None; snippets.len()];
            for capped in [true, false] {
                for &i in &order {
                    if taken[i].is_some() {
                        continue;
                    }
                    let source = crate::fusion::source_of(&snippets[i]);
                    let cap = match source {
                        Some(s) if capped => {
                            let share = context.source_shares.normalized(s, &context.sources);
                            (space as f32 * share) as usize
                        }
                        _ if capped => 0,
                        _ => space,
                    };
                    let mine = by_source.get(&source).copied().unwrap_or(0);
                    let fits =
                        |cost: usize| used + cost <= space && (!capped || mine + cost <= cap);
                    // Breadth first: the brief form when there is one.
                    let choice = match costs[i] {
                        (_, Some(brief)) if fits(brief) => Some((false, brief)),
                        (full, _) if fits(full) => Some((true, full)),
                        _ => None,
                    };
                    if let Some((whole, cost)) = choice {
                        taken[i] = Some(whole);
                        used += cost;
                        *by_source.entry(source).or_default() += cost;
                    }
                }
            }
            // Then depth: brief forms become whole, best first, while the budget lasts.
            for &i in &order {
                if taken[i] == Some(false)
                    && let (full, Some(brief)) = costs[i]
                    && used + full.saturating_sub(brief) <= space
                {
                    used += full.saturating_sub(brief);
                    taken[i] = Some(true);
                }
            }
            for (snippet, took) in snippets.into_iter().zip(taken) {
                match took {
                    Some(true) => kept.push(snippet),
                    Some(false) => {
                        let brief = snippet.brief.clone().unwrap_or_default();
                        let lines = brief.lines().count().max(1) as u32;
                        kept.push(Snippet {
                            end_line: snippet.start_line + lines - 1,
                            text: brief,
                            brief: None,
                            ..snippet
                        });
                    }
                    None => {}
                }
            }
            if !kept.is_empty() {
                snippet_used = header + used;
            }
        }

        let end = cut_suffix(
            rope,
            cursor,
            context.suffix_chars,
            Some((budget.suffix, self.counter)),
        );
        let suffix_used = count(&rope.slice(cursor..end).to_string());
        let mut prefix_budget = budget
            .available
            .saturating_sub(suffix_used)
            .saturating_sub(snippet_used);
        let mut window;
        // Counting pieces separately is exact or conservative for the heuristic; a real
        // tokenizer may merge differently, so the whole prompt is checked and the prefix (then
        // the snippets) shrunk by the excess.
        let mut tries = 0;
        loop {
            let start = cut_prefix(
                rope,
                cursor,
                context.prefix_chars,
                Some((prefix_budget, self.counter)),
            );
            window = CursorWindow::from_range(rope, start, cursor, end);
            req.prefix = window.prefix.clone();
            req.suffix = window.suffix.clone();
            req.mode = window.mode;
            req.snippets = kept.clone();
            let total = count(&self.template.render(&req));
            if total <= limit || tries >= 4 {
                break;
            }
            tries += 1;
            if prefix_budget == 0 && !kept.is_empty() {
                kept.pop();
            } else {
                prefix_budget = prefix_budget.saturating_sub(total - limit);
            }
        }
        (window, req)
    }
}

/// `char_idx` within the document, and never between the `\r` and `\n` of a CRLF (an
/// editor position cannot address that place; an offset can): there it means the end of the
/// line.
pub fn clamp_cursor(rope: &Rope, char_idx: usize) -> usize {
    let idx = char_idx.min(rope.len_chars());
    let line = rope.char_to_line(idx);
    let line_end = rope.line_to_char(line) + crate::document::line_len_without_break(rope, line);
    idx.min(line_end)
}

/// The character offset where the identifier-like word ending at `char_idx` starts.
pub fn word_start(rope: &Rope, char_idx: usize) -> usize {
    let mut start = char_idx.min(rope.len_chars());
    while start > 0 {
        let c = rope.char(start - 1);
        if c.is_alphanumeric() || c == '_' || c == '$' {
            start -= 1;
        } else {
            break;
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str, budget: (usize, usize)) -> CursorWindow {
        let cursor = text.find("$0").expect("fixture has a $0 cursor");
        let text = text.replacen("$0", "", 1);
        let rope = Rope::from_str(&text);
        let idx = rope.byte_to_char(cursor);
        CursorWindow::at(
            &rope,
            idx,
            &ContextConfig {
                prefix_chars: budget.0,
                suffix_chars: budget.1,
                ..ContextConfig::default()
            },
        )
    }

    #[test]
    fn budgets_cut_at_line_boundaries() {
        let w = window("line one\nline two\nfn f() {$0\n    x\n}\nafter\n", (12, 9));
        assert_eq!(w.prefix, "fn f() {");
        assert_eq!(w.suffix, "\n    x\n}\n");
        assert_eq!(w.mode, CompletionMode::MultiLine);
    }

    #[test]
    fn long_cursor_line_keeps_a_partial_prefix() {
        let w = window("abcdefghij$0 rest", (4, 100));
        assert_eq!(w.prefix, "ghij");
        assert_eq!(w.suffix, " rest");
        assert_eq!(w.line_after, " rest");
        assert_eq!(w.mode, CompletionMode::SingleLine);
    }

    #[test]
    fn crlf_and_lone_cr_are_line_breaks() {
        let w = window("a\r\nb\rlet x = $0;\r\nz", (100, 100));
        assert_eq!(w.line_before, "let x = ");
        assert_eq!(w.line_after, ";");
    }

    use crate::config::{BackendConfig, Config};
    use crate::prompt::FimTemplate;
    use crate::request::SnippetSource;
    use crate::tokens::CharHeuristic;

    /// One token per character, for arithmetic that reads off the fixtures.
    const PER_CHAR: CharHeuristic = CharHeuristic {
        chars_per_token: 1.0,
    };

    fn tokens(text: &str, prefix: usize, suffix: usize) -> CursorWindow {
        let cursor = text.find("$0").expect("fixture has a $0 cursor");
        let text = text.replacen("$0", "", 1);
        let rope = Rope::from_str(&text);
        let idx = rope.byte_to_char(cursor);
        CursorWindow::fit(
            &rope,
            idx,
            &ContextConfig::default(),
            Some((prefix, suffix, &PER_CHAR)),
        )
    }

    #[test]
    fn token_budgets_cut_the_prefix_at_line_starts_and_the_suffix_at_line_ends() {
        let text = "aaaa\nbbbb\nccc$0 dd\neeee\nffff\n";
        // "ccc" is 3; "bbbb\n" would make 8.
        let w = tokens(text, 7, 100);
        assert_eq!(w.prefix, "ccc");
        let w = tokens(text, 8, 100);
        assert_eq!(w.prefix, "bbbb\nccc");
        // " dd\n" is 4; "eeee\n" would make 9.
        let w = tokens(text, 100, 8);
        assert_eq!(w.suffix, " dd\n");
        let w = tokens(text, 100, 9);
        assert_eq!(w.suffix, " dd\neeee\n");
        // The cursor's own line over budget: a partial line, nearest the cursor.
        let w = tokens(text, 2, 2);
        assert_eq!((w.prefix.as_str(), w.suffix.as_str()), ("cc", " d"));
        assert_eq!(tokens(text, 0, 0).prefix, "");
    }

    #[test]
    fn unicode_is_never_split() {
        let h = CharHeuristic::default();
        let text = "ééééé\n日本語のテキスト$0日本語\n";
        let rope = Rope::from_str(&text.replacen("$0", "", 1));
        let idx = rope.byte_to_char(text.find("$0").expect("cursor"));
        for budget in 0..12 {
            let w = CursorWindow::fit(
                &rope,
                idx,
                &ContextConfig::default(),
                Some((budget, budget, &h)),
            );
            assert!(h.count(&w.prefix) <= budget && h.count(&w.suffix) <= budget);
            assert!("ééééé\n日本語のテキスト".ends_with(&w.prefix));
            assert!("日本語\n".starts_with(&w.suffix));
        }
    }

    fn snippet(path: &str, text: &str, score: f32) -> Snippet {
        Snippet {
            path: path.into(),
            start_line: 1,
            end_line: 1,
            text: text.into(),
            source: SnippetSource::Similar,
            kind: None,
            score,
            brief: None,
        }
    }

    fn config(window: u32, max_tokens: u32, shares: (f32, f32, f32)) -> Config {
        Config {
            backend: BackendConfig {
                context_window: window,
                max_tokens,
                ..BackendConfig::default()
            },
            context: ContextConfig {
                prefix_share: shares.0,
                suffix_share: shares.1,
                snippet_share: shares.2,
                ..ContextConfig::default()
            },
            ..Config::default()
        }
    }

    #[test]
    fn shares_split_and_unused_shares_flow_to_the_prefix() {
        let b = TokenBudget::split(100, &ContextConfig::default());
        assert_eq!((b.prefix, b.suffix, b.snippets), (45, 15, 40));
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let rope = Rope::from_str(&text);
        let cursor = rope.line_to_char(80);
        let template = FimTemplate::starcoder();
        // Overhead 36 ("<fim_prefix><fim_suffix><fim_middle>"), 10 for generation: 100 left.
        let config = config(146, 10, (0.5, 0.2, 0.3));
        let budget = PromptBudget {
            config: &config,
            template: &template,
            counter: &PER_CHAR,
        };
        // No snippets: the suffix gets 20 tokens (two 9-char lines), the prefix the other 82.
        let (w, req) = budget.assemble(&rope, cursor, "a.rs".into(), "rust".into(), vec![]);
        assert_eq!(w.suffix, "line 080\nline 081\n");
        assert_eq!(w.prefix.len(), 81);
        assert!(w.prefix.starts_with("line 071\n"));
        assert_eq!(PER_CHAR.count(&template.render(&req)), 36 + 18 + 81);
        // A snippet within the 30-token share is kept (the best first), one over it is not.
        let small = snippet("b.rs", "x", 0.9); // "// Path: b.rs\n// x\n\n" = 20
        let big = snippet("c.rs", "a much longer snippet than fits", 1.0);
        let also = snippet("d.rs", "y", 0.1); // 20 more would be 40 > 30
        let (w, req) = budget.assemble(
            &rope,
            cursor,
            "a.rs".into(),
            "rust".into(),
            vec![big, small.clone(), also],
        );
        assert_eq!(req.snippets, vec![small]);
        assert_eq!(w.prefix.len(), 54); // 100 - 18 - 20 = 62: six whole lines of 9
        assert!(PER_CHAR.count(&template.render(&req)) <= 136);
    }

    #[test]
    fn brief_forms_go_in_first_and_the_best_become_whole() {
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let rope = Rope::from_str(&text);
        let cursor = rope.line_to_char(80);
        let template = FimTemplate::starcoder();
        // 100 tokens left; 60 for snippets (one source, so all of it).
        let mut config = config(146, 10, (0.4, 0.0, 0.6));
        config.context.sources = vec![ContextSource::Definitions];
        let budget = PromptBudget {
            config: &config,
            template: &template,
            counter: &PER_CHAR,
        };
        let definition = |path: &str, score: f32| Snippet {
            source: SnippetSource::Definition,
            brief: Some("fn f()".to_owned()), // "// Path: x.rs\n// fn f()\n\n" = 25
            ..snippet(path, "fn f() {\n    body();\n}", score)  // 25 + 22 = 47 whole
        };
        // Both briefs fit (50); then only one upgrade would fit (72 > 60): none is made.
        let (_, req) = budget.assemble(
            &rope,
            cursor,
            "a.rs".into(),
            "rust".into(),
            vec![definition("x.rs", 0.5), definition("y.rs", 0.9)],
        );
        let texts: Vec<(&str, &str)> = req
            .snippets
            .iter()
            .map(|s| (s.path.as_str(), s.text.as_str()))
            .collect();
        assert_eq!(texts, [("x.rs", "fn f()"), ("y.rs", "fn f()")]);
        // With one of them only, the best becomes whole (47 <= 60).
        let (_, req) = budget.assemble(
            &rope,
            cursor,
            "a.rs".into(),
            "rust".into(),
            vec![definition("y.rs", 0.9)],
        );
        assert_eq!(req.snippets[0].text, "fn f() {\n    body();\n}");
        assert_eq!(req.snippets[0].end_line, 1);
    }

    #[test]
    fn lines_at_are_the_lines_of_the_window() {
        let text: String = (0..400).map(|i| format!("line {i:03} ééé\n")).collect();
        let rope = Rope::from_str(&text);
        let config = ContextConfig {
            prefix_chars: 700,
            suffix_chars: 150,
            ..ContextConfig::default()
        };
        for line in [0, 3, 200, 399, 400] {
            let cursor = rope.line_to_char(line) + 4;
            let w = CursorWindow::at(&rope, cursor, &config);
            let c = clamp_cursor(&rope, cursor);
            let start = c - w.prefix.chars().count();
            let end = c + w.suffix.chars().count();
            assert_eq!(
                CursorWindow::lines_at(&rope, cursor, &config),
                (rope.char_to_line(start), rope.char_to_line(end)),
                "cursor on line {line}"
            );
        }
    }

    #[test]
    fn word_start_stops_at_punctuation() {
        let rope = Rope::from_str("self.foo_bar");
        assert_eq!(word_start(&rope, 12), 5);
        assert_eq!(word_start(&rope, 5), 5);
    }
}
