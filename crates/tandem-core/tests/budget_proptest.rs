//! The rendered prompt always fits: with the character heuristic, its token count is at most
//! `contextWindow - maxTokens` for every template, document, cursor, share and snippet set
//! (whenever the window can hold the template's markers at all).

use proptest::prelude::*;
use ropey::Rope;
use tandem_core::config::{BackendConfig, Config, ContextConfig};
use tandem_core::context::PromptBudget;
use tandem_core::prompt::FimTemplate;
use tandem_core::tokens::{CharHeuristic, TokenCounter};
use tandem_core::{Snippet, SnippetSource};

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => "[a-z ]{0,12}",
            1 => "[é日本語🦀\t{}();]{0,6}",
        ],
        1..4,
    )
    .prop_map(|parts| parts.concat())
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec((line(), prop_oneof!["\n", "\r\n", ""]), 0..60)
        .prop_map(|lines| lines.into_iter().map(|(l, b)| l + &b).collect())
}

fn snippets() -> impl Strategy<Value = Vec<Snippet>> {
    prop::collection::vec((text(), 0.0f32..1.0), 0..5).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (text, score))| Snippet {
                path: format!("src/f{i}.rs"),
                start_line: 1,
                end_line: 1,
                text,
                source: SnippetSource::Similar,
                kind: None,
                score,
                brief: None,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rendered_prompt_fits_the_window(
        text in text(),
        cursor in 0usize..4000,
        window in 0u32..1500,
        max_tokens in 0u32..200,
        shares in (0.0f32..1.0, 0.0f32..1.0, 0.0f32..1.0),
        template in prop::sample::select(vec![
            "starcoder", "codellama", "deepseek", "qwen", "codestral", "codegemma",
            "{context}<PRE>{prefix}<SUF>{suffix}<MID>",
        ]),
        snippets in snippets(),
        prefix_chars in 0usize..3000,
    ) {
        let config = Config {
            backend: BackendConfig {
                context_window: window,
                max_tokens,
                ..BackendConfig::default()
            },
            context: ContextConfig {
                prefix_chars,
                suffix_chars: 2000,
                prefix_share: shares.0,
                suffix_share: shares.1,
                snippet_share: shares.2 + 0.01,
                ..ContextConfig::default()
            },
            ..Config::default()
        };
        let template = FimTemplate::resolve(Some(template), None).expect("valid");
        let counter = CharHeuristic::default();
        let budget = PromptBudget { config: &config, template: &template, counter: &counter };
        let rope = Rope::from_str(&text);
        // A cursor between the CR and LF of a line break means the end of that line.
        let cursor = tandem_core::context::clamp_cursor(&rope, cursor);
        let (window_text, req) =
            budget.assemble(&rope, cursor, "src/main.rs".into(), "rust".into(), snippets);
        let prompt = template.render(&req);
        let limit = (window as usize).saturating_sub(max_tokens as usize);
        let overhead = counter.count(&template.overhead(&req, false));
        if overhead <= limit {
            prop_assert!(counter.count(&prompt) <= limit,
                "{} > {limit}: {prompt:?}", counter.count(&prompt));
        } else {
            prop_assert!(req.prefix.is_empty() && req.suffix.is_empty() && req.snippets.is_empty());
        }
        // The window is the document around the cursor, cut at character boundaries.
        let before: String = rope.slice(..cursor).to_string();
        let after: String = rope.slice(cursor..).to_string();
        prop_assert!(before.ends_with(&window_text.prefix));
        prop_assert!(after.starts_with(&window_text.suffix));
        prop_assert!(window_text.prefix.chars().count() <= prefix_chars);
        // The markers are always whole.
        prop_assert!(prompt.contains(&*template.prefix) && prompt.contains(&*template.suffix));
    }
}
