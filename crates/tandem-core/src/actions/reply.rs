//! The code in a model's reply: the fenced block of the right language (else the first fenced
//! block), or the whole reply when it is bare code. A reply without code is refused.

/// Why a reply gave no edit; worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    Empty,
    NoCode,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Empty => f.write_str("the model's reply was empty"),
            ReplyError::NoCode => f.write_str(
                "the model's reply contains no code (no fenced block, and prose rather than code)",
            ),
        }
    }
}

/// Fence tags that name each LSP language id.
fn tags(language: &str) -> &'static [&'static str] {
    match language {
        "rust" => &["rust", "rs"],
        "python" => &["python", "py", "python3"],
        "javascript" | "javascriptreact" => &["javascript", "js", "jsx"],
        "typescript" | "typescriptreact" => &["typescript", "ts", "tsx"],
        "go" => &["go", "golang"],
        "java" => &["java"],
        "c" => &["c", "h"],
        "cpp" => &["cpp", "c++", "cc", "hpp"],
        _ => &[],
    }
}

struct Block<'a> {
    tag: &'a str,
    code: String,
}

/// Fenced blocks (``` or ~~~, three or more), in order; an unclosed one runs to the end.
fn blocks(reply: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(String, &str, Vec<&str>)> = None;
    for line in reply.lines() {
        let t = line.trim_start();
        match &mut open {
            None => {
                let fence: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
                if fence.len() >= 3
                    && fence
                        .chars()
                        .all(|c| c == fence.chars().next().unwrap_or('`'))
                {
                    let tag = t[fence.len()..].trim();
                    let tag = tag.split([' ', '{', ',']).next().unwrap_or_default();
                    open = Some((fence, tag, Vec::new()));
                }
            }
            Some((fence, tag, lines)) => {
                if t.starts_with(fence.as_str()) && t.trim_end().trim_matches(['`', '~']).is_empty()
                {
                    out.push(Block {
                        tag,
                        code: lines.join("\n"),
                    });
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    if let Some((_, tag, lines)) = open {
        out.push(Block {
            tag,
            code: lines.join("\n"),
        });
    }
    out
}

/// The code of a reply for a document in `language`.
pub fn extract_code(reply: &str, language: &str) -> Result<String, ReplyError> {
    if reply.trim().is_empty() {
        return Err(ReplyError::Empty);
    }
    let found = blocks(reply);
    let wanted = tags(language);
    let chosen = found
        .iter()
        .find(|b| wanted.iter().any(|t| b.tag.eq_ignore_ascii_case(t)))
        .or_else(|| found.iter().find(|b| !b.code.trim().is_empty()));
    if let Some(block) = chosen {
        if block.code.trim().is_empty() {
            return Err(ReplyError::NoCode);
        }
        return Ok(trim_blank_lines(&block.code));
    }
    if looks_like_prose(reply) {
        return Err(ReplyError::NoCode);
    }
    Ok(trim_blank_lines(reply))
}

/// The text of a reply meant as prose (Explain): the reply without a wrapping fence.
pub fn extract_text(reply: &str) -> Result<String, ReplyError> {
    let t = reply.trim();
    if t.is_empty() {
        return Err(ReplyError::Empty);
    }
    let found = blocks(t);
    if found.len() == 1 && (t.starts_with("```") || t.starts_with("~~~")) {
        return Ok(trim_blank_lines(&found[0].code));
    }
    Ok(trim_blank_lines(t))
}

fn trim_blank_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| !l.trim().is_empty()).unwrap_or(0);
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    lines
        .get(first..last)
        .unwrap_or_default()
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a bare reply reads as sentences rather than code: most of its lines are words and
/// spaces ending like a sentence, with none of code's punctuation.
fn looks_like_prose(reply: &str) -> bool {
    let lines: Vec<&str> = reply.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return true;
    }
    let prose = lines
        .iter()
        .filter(|l| {
            let t = l.trim();
            let words = t.split_whitespace().count();
            let code_marks = t.contains(['{', '}', ';', '=', '(', ')', '[', ']'])
                || t.starts_with("//")
                || t.starts_with('#')
                || t.starts_with("\"\"\"");
            words >= 4 && !code_marks
        })
        .count();
    prose * 2 > lines.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_block_of_the_language() {
        let reply = "Here:\n```text\nnot this\n```\n\n```rust\nfn f() {}\n```\nDone.";
        assert_eq!(extract_code(reply, "rust").as_deref(), Ok("fn f() {}"));
        assert_eq!(extract_code(reply, "python").as_deref(), Ok("not this"));
    }

    #[test]
    fn bare_code_is_the_whole_reply_and_prose_is_refused() {
        assert_eq!(
            extract_code("\n  x = 1\n  y = 2\n\n", "python").as_deref(),
            Ok("  x = 1\n  y = 2")
        );
        assert_eq!(
            extract_code("I cannot help with that request, sorry.", "python"),
            Err(ReplyError::NoCode)
        );
        assert_eq!(extract_code("  \n", "rust"), Err(ReplyError::Empty));
        assert_eq!(
            extract_code("```rust\n```", "rust"),
            Err(ReplyError::NoCode)
        );
    }

    #[test]
    fn unclosed_and_tilde_fences() {
        assert_eq!(
            extract_code("```py\ndef f():\n    pass", "python").as_deref(),
            Ok("def f():\n    pass")
        );
        assert_eq!(
            extract_code("~~~go\nfunc F() {}\n~~~", "go").as_deref(),
            Ok("func F() {}")
        );
    }

    #[test]
    fn explanations_lose_a_wrapping_fence() {
        assert_eq!(
            extract_text("```\nIt adds.\n```").as_deref(),
            Ok("It adds.")
        );
        assert_eq!(extract_text("It adds.\n").as_deref(), Ok("It adds."));
    }
}
