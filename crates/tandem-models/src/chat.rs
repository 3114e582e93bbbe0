//! What the chat-style backends (`openai-chat`, `anthropic`) share: the prompt that shows the
//! code with a hole marked and asks for the missing code only, and the [`CodeExtractor`] that
//! takes the code out of the reply as it streams (a Markdown fence, prose before it, the line
//! before the cursor repeated). Also the wire shape of [`ChatMessage`]s that the OpenAI-style
//! APIs (`openai-chat`, `mistral`, Ollama's `/api/chat`) share.

use std::collections::VecDeque;

use futures::StreamExt;
use serde_json::{Value, json};
use tandem_core::{CompletionMode, CompletionRequest};

use crate::{BackendError, ChatMessage, Chunk, ChunkStream};

/// Messages as OpenAI-style chat APIs take them: `[{"role": "user", "content": "..."}]`.
pub fn messages_json(messages: &[ChatMessage]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect(),
    )
}

/// The messages of a completion: the system prompt, then the code with its hole.
pub fn completion_messages(req: &CompletionRequest) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(user_prompt(req)),
    ]
}

/// The marker of the hole in the code shown to the model.
pub const HOLE: &str = "{{FILL_HERE}}";

/// The system message.
pub const SYSTEM_PROMPT: &str = "You are a code completion engine inside a code editor. You are \
shown a source file in which the marker {{FILL_HERE}} stands for missing code. Reply with only \
the code that replaces the marker: no explanations, no Markdown code fences, and do not repeat \
the code before or after the marker. Match the file's language, style and indentation. If \
nothing is missing, reply with nothing.";

/// The user message: context snippets, then the file with the hole, then the instruction.
pub fn user_prompt(req: &CompletionRequest) -> String {
    let mut out = String::new();
    if !req.snippets.is_empty() {
        out.push_str("Code from other files of the workspace, for reference:\n\n");
        out.push_str(&tandem_core::prompt::render_context_tags(
            &req.snippets,
            "\n\n",
        ));
    }
    out.push_str(&format!(
        "The file being edited:\n\n<file path=\"{}\" language=\"{}\">\n{}{HOLE}{}\n</file>\n\n",
        req.path,
        req.language,
        req.prefix,
        req.suffix.trim_end_matches('\n')
    ));
    out.push_str(match req.mode {
        CompletionMode::SingleLine => {
            "Complete the rest of the line at {{FILL_HERE}} (a single line at most)."
        }
        CompletionMode::MultiLine => {
            "Write the code that belongs at {{FILL_HERE}} (it may span several lines)."
        }
    });
    out.push_str(
        " Reply with only the code that replaces {{FILL_HERE}}, without a code fence and without \
         repeating the text before it on its line.",
    );
    out
}

/// The text of the cursor's line before the cursor, which a model may repeat.
pub fn line_prefix(req: &CompletionRequest) -> &str {
    req.prefix
        .rfind('\n')
        .map_or(req.prefix.as_str(), |i| &req.prefix[i + 1..])
}

const FENCE: &str = "```";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing decided yet: a fence, prose or code may follow.
    Start,
    /// Prose before a fence: dropped until a fence line opens.
    Prose,
    /// After an opening fence: the rest of its line (a language tag) is dropped.
    Header,
    /// Code: emitted, except what may be a closing fence.
    Code,
    /// The closing fence was seen: nothing more is code.
    Done,
}

/// Takes the code out of a streamed chat reply, emitting it as soon as it is known to be code.
///
/// Only what may still turn out to be something else is held back: the start of the reply (a
/// fence or a sentence of prose may be coming), the start of the code (the model may be
/// repeating the line before the cursor), and a line that may be a closing fence.
#[derive(Debug, Clone)]
pub struct CodeExtractor {
    phase: Phase,
    buf: String,
    /// Lines dropped as prose, emitted at the end if no fence ever came.
    prose: String,
    /// The line before the cursor, to strip when the model repeats it.
    line_prefix: String,
    echo_pending: bool,
    /// The code emitted so far ends a line (or none was emitted after a fence).
    at_line_start: bool,
}

impl CodeExtractor {
    pub fn new(line_prefix: &str) -> Self {
        Self {
            phase: Phase::Start,
            buf: String::new(),
            prose: String::new(),
            line_prefix: line_prefix.to_owned(),
            echo_pending: true,
            at_line_start: false,
        }
    }

    /// Whether the reply's code has ended (a closing fence): the rest can be dropped.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Feeds the next piece of the reply; returns the code it releases (possibly empty).
    pub fn push(&mut self, text: &str) -> String {
        if self.phase == Phase::Done {
            return String::new();
        }
        self.buf.push_str(text);
        let mut out = String::new();
        self.run(&mut out, false);
        out
    }

    /// The end of the reply: releases what was held back and is code after all.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.phase == Phase::Prose {
            // Prose without a fence after it: what followed the prose is the answer.
            let rest = std::mem::take(&mut self.prose) + &self.buf;
            self.buf = rest.trim_start_matches(['\n', '\r']).to_owned();
            self.phase = Phase::Code;
            self.at_line_start = true;
        }
        self.run(&mut out, true);
        self.phase = Phase::Done;
        self.buf.clear();
        out
    }

    fn run(&mut self, out: &mut String, end: bool) {
        loop {
            let again = match self.phase {
                Phase::Start => self.start(end),
                Phase::Prose => self.prose(),
                Phase::Header => self.header(end),
                Phase::Code => {
                    self.code(out, end);
                    false
                }
                Phase::Done => {
                    self.buf.clear();
                    false
                }
            };
            if !again {
                return;
            }
        }
    }

    /// Decides what the reply starts with; `true` when the phase changed.
    fn start(&mut self, end: bool) -> bool {
        let trimmed = self.buf.trim_start();
        if let Some(rest) = trimmed.strip_prefix(FENCE) {
            self.buf = rest.to_owned();
            self.phase = Phase::Header;
            return true;
        }
        if !end && (trimmed.is_empty() || FENCE.starts_with(trimmed)) {
            return false;
        }
        if let Some(nl) = trimmed.find('\n') {
            let line = trimmed[..nl].trim_end_matches('\r');
            if is_prose_line(line) {
                self.buf = trimmed[nl + 1..].to_owned();
                self.phase = Phase::Prose;
                return true;
            }
        } else if !end && may_be_prose(trimmed) {
            return false;
        }
        self.phase = Phase::Code;
        true
    }

    /// Drops prose lines until a fence opens; `true` when it did.
    fn prose(&mut self) -> bool {
        while let Some(nl) = self.buf.find('\n') {
            let line = self.buf[..=nl].to_owned();
            self.buf.drain(..=nl);
            if line.trim_start().starts_with(FENCE) {
                self.prose.clear();
                self.phase = Phase::Code;
                self.at_line_start = true;
                return true;
            }
            self.prose.push_str(&line);
        }
        false
    }

    /// Drops the opening fence's language tag; `true` once its line has ended.
    fn header(&mut self, end: bool) -> bool {
        match self.buf.find('\n') {
            Some(nl) => {
                self.buf.drain(..=nl);
                self.phase = Phase::Code;
                self.at_line_start = true;
                true
            }
            None => {
                if end {
                    self.buf.clear();
                }
                false
            }
        }
    }

    /// Emits code up to what may be a closing fence.
    fn code(&mut self, out: &mut String, end: bool) {
        if self.echo_pending {
            let full = self.line_prefix.as_str();
            let trimmed = full.trim_start();
            let echoes: &[&str] = if trimmed.is_empty() || trimmed == full {
                &[full]
            } else {
                &[full, trimmed]
            };
            let echoes: Vec<&str> = echoes.iter().copied().filter(|e| !e.is_empty()).collect();
            if let Some(echo) = echoes.iter().find(|e| self.buf.starts_with(**e)) {
                self.buf.drain(..echo.len());
                self.echo_pending = false;
            } else if echoes
                .iter()
                .any(|e| e.starts_with(self.buf.as_str()) && !self.buf.is_empty())
            {
                if end {
                    // The reply is nothing but a part of the line already typed.
                    self.buf.clear();
                }
                return;
            } else if self.buf.is_empty() {
                return;
            } else {
                self.echo_pending = false;
            }
        }
        // A closing fence ends the code: at the start of the text when it starts a line, or
        // after any line break.
        let mut line_starts: Vec<usize> =
            self.buf.match_indices('\n').map(|(i, _)| i + 1).collect();
        if self.at_line_start {
            line_starts.insert(0, 0);
        }
        for &start in &line_starts {
            if self.buf[start..]
                .trim_start_matches([' ', '\t'])
                .starts_with(FENCE)
            {
                let code_end = start.saturating_sub(1);
                let code = self.buf[..code_end].trim_end_matches('\r');
                out.push_str(code);
                self.buf.clear();
                self.phase = Phase::Done;
                return;
            }
        }
        // Hold back the last line (and the line break before it) while it may become a fence.
        let hold_from = line_starts.last().and_then(|&start| {
            let tail = self.buf[start..].trim_start_matches([' ', '\t']);
            FENCE.starts_with(tail).then(|| {
                let at = start.saturating_sub(1);
                if self.buf[..at].ends_with('\r') {
                    at - 1
                } else {
                    at
                }
            })
        });
        let emit = match hold_from {
            Some(at) if end => {
                // The stream ended on a partial fence or a line break: drop it.
                let tail = self.buf[at..].trim();
                if tail.is_empty() || FENCE.starts_with(tail) {
                    at
                } else {
                    self.buf.len()
                }
            }
            Some(at) => at,
            None => self.buf.len(),
        };
        let emitted: String = self.buf.drain(..emit).collect();
        if !emitted.is_empty() {
            self.at_line_start = emitted.ends_with('\n');
        }
        out.push_str(&emitted);
    }
}

/// Whether a complete first line is a sentence introducing the code ("Here is the code:").
fn is_prose_line(line: &str) -> bool {
    let line = line.trim();
    if !may_be_prose(line) {
        return false;
    }
    let words = line.split_whitespace().count();
    let opener = [
        "Here",
        "Sure",
        "Certainly",
        "Of course",
        "Okay",
        "The missing",
        "This",
    ]
    .iter()
    .any(|w| line.starts_with(w));
    words >= 3 && (line.ends_with(':') || opener)
}

/// Whether a line so far may still be prose: a capitalised sentence without code punctuation.
fn may_be_prose(text: &str) -> bool {
    let line = text.lines().next().unwrap_or_default().trim();
    line.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && !line.contains([
            '(', ')', '{', '}', '[', ']', '=', ';', '<', '>', '"', '_', '`',
        ])
        && (line.contains(' ') || text.len() < 16)
}

/// Runs each candidate's text of `stream` through its own [`CodeExtractor`]. The stream ends
/// (dropping the connection) once every candidate's code has ended.
pub fn extract_code(stream: ChunkStream, line_prefix: &str, candidates: u32) -> ChunkStream {
    struct State {
        inner: ChunkStream,
        extractors: Vec<CodeExtractor>,
        pending: VecDeque<Result<Chunk, BackendError>>,
        ended: bool,
    }
    let state = State {
        inner: stream,
        extractors: (0..candidates.max(1))
            .map(|_| CodeExtractor::new(line_prefix))
            .collect(),
        pending: VecDeque::new(),
        ended: false,
    };
    let stream = futures::stream::unfold(state, move |mut s| {
        async move {
            loop {
                if let Some(item) = s.pending.pop_front() {
                    return Some((item, s));
                }
                if s.ended {
                    return None;
                }
                match s.inner.next().await {
                    Some(Ok(chunk)) => {
                        let i = chunk.candidate as usize;
                        // Candidates beyond those asked for are ignored (a server's `index` is
                        // not trusted to size anything).
                        if i >= s.extractors.len() {
                            continue;
                        }
                        let text = s.extractors[i].push(&chunk.text);
                        if !text.is_empty() {
                            s.pending.push_back(Ok(Chunk {
                                candidate: chunk.candidate,
                                text,
                            }));
                        }
                        if s.extractors.iter().all(CodeExtractor::is_done) {
                            s.ended = true;
                        }
                    }
                    Some(Err(err)) => {
                        s.pending.push_back(Err(err));
                        s.ended = true;
                    }
                    None => {
                        for (i, extractor) in s.extractors.iter_mut().enumerate() {
                            let text = extractor.finish();
                            if !text.is_empty() {
                                s.pending.push_back(Ok(Chunk {
                                    candidate: u32::try_from(i).unwrap_or(0),
                                    text,
                                }));
                            }
                        }
                        s.ended = true;
                    }
                }
            }
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use tandem_core::{Snippet, SnippetSource};

    use super::*;

    /// Streams `pieces` through an extractor; returns the emitted pieces joined by `|`.
    fn run(line_prefix: &str, pieces: &[&str]) -> (String, bool) {
        let mut x = CodeExtractor::new(line_prefix);
        let mut out = Vec::new();
        for p in pieces {
            out.push(x.push(p));
        }
        let done = x.is_done();
        out.push(x.finish());
        (out.concat(), done)
    }

    fn code(line_prefix: &str, reply: &str) -> String {
        run(line_prefix, &[reply]).0
    }

    #[test]
    fn unfenced_code_is_kept_as_is() {
        assert_eq!(code("let x = ", "compute(1);"), "compute(1);");
        assert_eq!(
            code("    ", "\n    a();\n    b();\n"),
            "\n    a();\n    b();"
        );
        assert_eq!(code("x = ", " 5"), " 5");
    }

    #[test]
    fn fenced_code_with_or_without_a_language_tag() {
        assert_eq!(code("", "```rust\nfn a() {}\n```"), "fn a() {}");
        assert_eq!(code("", "```\nfn a() {}\n```\n"), "fn a() {}");
        assert_eq!(code("", "\n```python\nx = 1\ny = 2\n```"), "x = 1\ny = 2");
        assert_eq!(code("", "```\r\nx = 1\r\n```\r\n"), "x = 1");
    }

    #[test]
    fn prose_before_the_fence_is_dropped() {
        assert_eq!(
            code(
                "",
                "Here is the missing code:\n\n```js\nreturn a + b;\n```\nThis adds them."
            ),
            "return a + b;"
        );
        assert_eq!(
            code("", "Sure! Here's the completion\n```\nfoo()\n```"),
            "foo()"
        );
        // Prose without a fence: what follows the prose is the code.
        assert_eq!(code("", "The missing code is:\nfoo()\n"), "foo()");
    }

    #[test]
    fn code_that_looks_like_a_sentence_is_not_prose() {
        assert_eq!(code("", "Some(value)\n"), "Some(value)");
        assert_eq!(code("", "Console.WriteLine(x);"), "Console.WriteLine(x);");
        assert_eq!(code("", "None"), "None");
    }

    #[test]
    fn the_closing_fence_stops_the_code() {
        let (out, done) = run("", &["```\n", "a\n", "b\n``", "`\nmore prose\n```x"]);
        assert_eq!(out, "a\nb");
        assert!(done, "done before the end of the stream");
        // Indented closing fence, and one right after the opening (empty code).
        assert_eq!(code("", "```\n  x\n  ```"), "  x");
        assert_eq!(code("", "```\n```"), "");
    }

    #[test]
    fn an_unfinished_fence_at_the_end_is_dropped() {
        assert_eq!(code("", "```\na\n`"), "a");
        assert_eq!(code("", "```\na\n"), "a");
        assert_eq!(code("", "```"), "");
    }

    #[test]
    fn echoed_line_prefix_is_stripped() {
        assert_eq!(code("    let total = ", "    let total = a + b;"), "a + b;");
        assert_eq!(code("    let total = ", "let total = a + b;"), "a + b;");
        assert_eq!(
            code("    let total = ", "```rust\nlet total = a + b;\n```"),
            "a + b;"
        );
        // Only at the start of the code, and only the whole prefix.
        assert_eq!(code("let t", "let x = 1;"), "let x = 1;");
        assert_eq!(code("x = ", "y\nx = 2"), "y\nx = 2");
        // Split across chunks.
        assert_eq!(
            run("    return ", &["   ", " ret", "urn", " a", " + b"]).0,
            "a + b"
        );
        // Whitespace-only prefix: a repeated indentation is dropped.
        assert_eq!(code("    ", "    return x\n    y"), "return x\n    y");
    }

    #[test]
    fn code_is_emitted_as_soon_as_it_is_known() {
        let mut x = CodeExtractor::new("let v = ");
        assert_eq!(x.push("```"), "");
        assert_eq!(x.push("rust\n"), "");
        assert_eq!(x.push("let v"), "", "may be the echoed prefix");
        assert_eq!(x.push(" = vec!["), "vec![");
        assert_eq!(x.push("1, 2"), "1, 2");
        assert_eq!(x.push("];\n"), "];", "the line break may precede a fence");
        assert_eq!(x.push("    x"), "\n    x");
        assert_eq!(x.push("\n```\n"), "");
        assert!(x.is_done());
        assert_eq!(x.finish(), "");

        // Unfenced code starting with a lower-case word goes out at once.
        let mut x = CodeExtractor::new("");
        assert_eq!(x.push("foo("), "foo(");
    }

    #[test]
    fn a_fence_split_at_every_byte_boundary() {
        let reply = "Here is the code:\n```py\nx = \"é\"\n```\nbye";
        for cut in 1..reply.len() {
            if !reply.is_char_boundary(cut) {
                continue;
            }
            for cut2 in cut..reply.len() {
                if !reply.is_char_boundary(cut2) {
                    continue;
                }
                let pieces = [&reply[..cut], &reply[cut..cut2], &reply[cut2..]];
                assert_eq!(
                    run("", &pieces).0,
                    "x = \"é\"",
                    "cuts at {cut} and {cut2}: {pieces:?}"
                );
            }
        }
        let reply = "```\nab\n```";
        for cut in 1..reply.len() {
            let (out, done) = run("", &[&reply[..cut], &reply[cut..]]);
            assert_eq!(out, "ab", "cut at {cut}");
            assert!(done, "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn streams_are_extracted_per_candidate_and_end_early() {
        let items: Vec<Result<Chunk, BackendError>> = vec![
            Ok(Chunk {
                candidate: 0,
                text: "```\na".into(),
            }),
            Ok(Chunk {
                candidate: 1,
                text: "b".into(),
            }),
            Ok(Chunk {
                candidate: 0,
                text: "\n```".into(),
            }),
            Ok(Chunk {
                candidate: 1,
                text: "c\n```\n".into(),
            }),
            Ok(Chunk {
                candidate: 0,
                text: "never read".into(),
            }),
        ];
        let inner: ChunkStream = Box::pin(futures::stream::iter(items));
        let out: Vec<Chunk> = extract_code(inner, "", 2)
            .map(|c| c.expect("no error"))
            .collect()
            .await;
        assert_eq!(
            out,
            vec![
                Chunk {
                    candidate: 0,
                    text: "a".into()
                },
                Chunk {
                    candidate: 1,
                    text: "b".into()
                },
                Chunk {
                    candidate: 1,
                    text: "c".into()
                },
            ]
        );
    }

    #[test]
    fn prompt_shows_the_hole_and_the_context() {
        let req = CompletionRequest {
            prefix: "use util::helper;\n\nfn main() {\n    let x = ".into(),
            suffix: ";\n}\n".into(),
            snippets: vec![Snippet {
                path: "src/util.rs".into(),
                start_line: 1,
                end_line: 3,
                text: "pub fn helper() -> u32 {\n    1\n}\n".into(),
                source: SnippetSource::Definition,
                kind: Some("function".into()),
                score: 1.0,
                brief: None,
            }],
            path: "src/main.rs".into(),
            language: "rust".into(),
            mode: CompletionMode::SingleLine,
            stop: vec![],
            max_tokens: 64,
            candidates: 1,
        };
        expect![[r#"
            Code from other files of the workspace, for reference:

            <context path="src/util.rs" lines="1-3">
            pub fn helper() -> u32 {
                1
            }
            </context>

            The file being edited:

            <file path="src/main.rs" language="rust">
            use util::helper;

            fn main() {
                let x = {{FILL_HERE}};
            }
            </file>

            Complete the rest of the line at {{FILL_HERE}} (a single line at most). Reply with only the code that replaces {{FILL_HERE}}, without a code fence and without repeating the text before it on its line."#]]
        .assert_eq(&user_prompt(&req));
        assert_eq!(line_prefix(&req), "    let x = ");
    }
}
