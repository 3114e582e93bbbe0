//! Merging the context sources into one ranked list of snippets.
//!
//! Each source ranks its own snippets with its own measure (a definition's place and nearness,
//! a window's Jaccard similarity), and those measures do not compare. They are merged by
//! weighted reciprocal rank fusion: a snippet at rank `r` (0-based) of a source with weight
//! `w` (its normalized share, see [`SourceShares`]) scores `w × (K + 1) / (K + 1 + r)`, and a
//! snippet found by several sources sums its scores. With normalized weights the result lies
//! in 0..=1.
//!
//! Deduplication: snippets of the same file whose line ranges overlap are one snippet (the
//! better-ranked one's text, both scores summed); snippets of the current file overlapping
//! the lines already in the cursor window are dropped, as are snippets with the same text as
//! a better one.
//!
//! The order is deterministic: fused score descending, then path, then start line.

use crate::config::{ContextSource, SourceShares};
use crate::request::{Snippet, SnippetSource};

/// The rank-fusion constant: small, as the lists are short.
const K: f32 = 10.0;

/// The source a snippet came from, as configured.
pub fn source_of(snippet: &Snippet) -> Option<ContextSource> {
    match snippet.source {
        SnippetSource::Definition => Some(ContextSource::Definitions),
        SnippetSource::Similar => Some(ContextSource::Similar),
        SnippetSource::Recent | SnippetSource::Symbol => None,
    }
}

/// Lines (1-based, inclusive) of the current file already in the prompt.
#[derive(Debug, Clone, Copy)]
pub struct Visible<'a> {
    pub path: &'a str,
    pub first_line: u32,
    pub last_line: u32,
}

/// Merges `lists` (each best first) into one list, best first; see the module documentation.
pub fn fuse(
    lists: Vec<(ContextSource, Vec<Snippet>)>,
    shares: &SourceShares,
    visible: Visible<'_>,
) -> Vec<Snippet> {
    let enabled: Vec<ContextSource> = lists.iter().map(|(s, _)| *s).collect();
    let mut merged: Vec<Snippet> = Vec::new();
    for (source, snippets) in lists {
        let weight = match shares.normalized(source, &enabled) {
            // Every share 0: the sources count equally.
            w if w > 0.0 => w,
            _ => 1.0 / enabled.len().max(1) as f32,
        };
        for (rank, mut snippet) in snippets.into_iter().enumerate() {
            if snippet.path == visible.path
                && snippet.start_line <= visible.last_line
                && snippet.end_line >= visible.first_line
            {
                continue;
            }
            let score = weight * (K + 1.0) / (K + 1.0 + rank as f32);
            let same = merged.iter_mut().find(|m| {
                (m.path == snippet.path
                    && m.start_line <= snippet.end_line
                    && m.end_line >= snippet.start_line)
                    || m.text == snippet.text
            });
            match same {
                Some(m) => m.score += score,
                None => {
                    snippet.score = score;
                    merged.push(snippet);
                }
            }
        }
    }
    for m in &mut merged {
        m.score = m.score.clamp(0.0, 1.0);
    }
    merged.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.start_line.cmp(&b.start_line))
    });
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snip(path: &str, lines: (u32, u32), source: SnippetSource, text: &str) -> Snippet {
        Snippet {
            path: path.into(),
            start_line: lines.0,
            end_line: lines.1,
            text: text.into(),
            source,
            kind: None,
            score: 0.5,
            brief: None,
        }
    }

    fn show(snippets: &[Snippet]) -> String {
        snippets
            .iter()
            .map(|s| {
                format!(
                    "{:.3} {}:{}-{} {:?}\n",
                    s.score, s.path, s.start_line, s.end_line, s.source
                )
            })
            .collect()
    }

    #[test]
    fn fuses_by_rank_and_merges_overlaps() {
        use SnippetSource::{Definition, Similar};
        let defs = vec![
            snip("a.rs", (10, 14), Definition, "fn a()"),
            snip("b.rs", (1, 3), Definition, "struct B"),
            snip("main.rs", (40, 41), Definition, "fn visible()"),
        ];
        let similar = vec![
            snip("c.rs", (1, 20), Similar, "window c"),
            snip("a.rs", (5, 24), Similar, "window a"),
            snip("d.rs", (1, 20), Similar, "struct B"),
        ];
        let fused = fuse(
            vec![
                (ContextSource::Definitions, defs),
                (ContextSource::Similar, similar),
            ],
            &SourceShares::default(),
            Visible {
                path: "main.rs",
                first_line: 30,
                last_line: 50,
            },
        );
        expect_test::expect![[r#"
            0.979 a.rs:10-14 Definition
            0.899 b.rs:1-3 Definition
            0.250 c.rs:1-20 Similar
        "#]]
        .assert_eq(&show(&fused));
    }

    #[test]
    fn zero_shares_weigh_sources_equally() {
        let shares = SourceShares {
            definitions: 0.0,
            similar: 0.0,
        };
        let fused = fuse(
            vec![
                (
                    ContextSource::Definitions,
                    vec![snip("a.rs", (1, 1), SnippetSource::Definition, "a")],
                ),
                (
                    ContextSource::Similar,
                    vec![snip("b.rs", (1, 1), SnippetSource::Similar, "b")],
                ),
            ],
            &shares,
            Visible {
                path: "x.rs",
                first_line: 1,
                last_line: 1,
            },
        );
        assert_eq!(fused.len(), 2);
        assert_eq!(fused[0].score, fused[1].score);
    }
}
