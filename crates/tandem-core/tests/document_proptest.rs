//! Random incremental edits applied to the rope mirror and to a naive `String` model must agree,
//! in every position encoding, with astral-plane characters, CRLF and lone CR, and positions
//! out of range.

use proptest::prelude::*;
use tandem_core::document::{char_offset, line_col};
use tandem_core::{Document, LineCol, PositionEncoding, TextChange};

/// Line starts (char indices) under LSP rules: `\n`, `\r\n` and a lone `\r` end a line.
fn line_starts(chars: &[char]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\r' if chars.get(i + 1) == Some(&'\n') => {
                starts.push(i + 2);
                i += 2;
                continue;
            }
            '\r' | '\n' => starts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    starts
}

fn units(c: char, enc: PositionEncoding) -> usize {
    match enc {
        PositionEncoding::Utf8 => c.len_utf8(),
        PositionEncoding::Utf16 => c.len_utf16(),
        PositionEncoding::Utf32 => 1,
    }
}

/// The naive model's offset for a position, clamped as the LSP allows.
fn naive_offset(chars: &[char], pos: LineCol, enc: PositionEncoding) -> usize {
    let starts = line_starts(chars);
    let line = pos.line as usize;
    if line >= starts.len() {
        return chars.len();
    }
    let start = starts[line];
    let mut end = starts.get(line + 1).copied().unwrap_or(chars.len());
    while end > start && matches!(chars[end - 1], '\n' | '\r') {
        end -= 1;
    }
    let mut used = 0;
    let mut idx = start;
    while idx < end && used + units(chars[idx], enc) <= pos.col as usize {
        used += units(chars[idx], enc);
        idx += 1;
    }
    idx
}

fn naive_apply(text: &mut Vec<char>, change: &TextChange, enc: PositionEncoding) {
    match change.range {
        None => *text = change.text.chars().collect(),
        Some((a, b)) => {
            let a = naive_offset(text, a, enc);
            let b = naive_offset(text, b, enc);
            let (a, b) = (a.min(b), a.max(b));
            text.splice(a..b, change.text.chars());
        }
    }
}

fn piece() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a"),
            Just("z"),
            Just(" "),
            Just("é"),
            Just("中"),
            Just("😀"),
            Just("🦀"),
            Just("\n"),
            Just("\r\n"),
            Just("\r"),
            Just("\t"),
        ],
        0..6,
    )
    .prop_map(|v| v.concat())
}

fn position() -> impl Strategy<Value = LineCol> {
    // Mostly in range, sometimes far past the end.
    (
        prop_oneof![4 => 0u32..8, 1 => 0u32..1000],
        prop_oneof![4 => 0u32..10, 1 => 0u32..100_000],
    )
        .prop_map(|(line, col)| LineCol::new(line, col))
}

fn change() -> impl Strategy<Value = TextChange> {
    prop_oneof![
        20 => (position(), position(), piece()).prop_map(|(a, b, text)| TextChange { range: Some((a, b)), text }),
        1 => piece().prop_map(|text| TextChange { range: None, text }),
    ]
}

fn encoding() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf32)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn rope_agrees_with_a_naive_string(
        initial in prop::collection::vec(piece(), 0..12).prop_map(|v| v.concat()),
        changes in prop::collection::vec(change(), 1..40),
        enc in encoding(),
    ) {
        let mut doc = Document::new(&initial, 0, "rust");
        let mut naive: Vec<char> = initial.chars().collect();
        for (version, change) in changes.iter().enumerate() {
            doc.apply_changes(std::slice::from_ref(change), version as i32 + 1, enc);
            naive_apply(&mut naive, change, enc);
            let expected: String = naive.iter().collect();
            prop_assert_eq!(doc.rope().to_string(), expected);
        }
        // Positions convert both ways the same as the naive model.
        let chars = naive.clone();
        for idx in 0..=chars.len() {
            let lc = line_col(doc.rope(), idx, enc);
            let back = char_offset(doc.rope(), lc, enc);
            prop_assert_eq!(back, naive_offset(&chars, lc, enc));
            // A char index maps to itself unless it sits inside a CRLF pair.
            if !(idx > 0 && chars[idx - 1] == '\r' && chars.get(idx) == Some(&'\n')) {
                prop_assert_eq!(back, idx);
            }
        }
    }
}
