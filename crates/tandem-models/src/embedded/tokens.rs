//! The embedded model's tokenizer: identifiers, numbers, string literals, line comments,
//! punctuation (with the common multi-character operators) and newline+indentation tokens.
//!
//! A token's text carries one leading space when whitespace preceded it on the same line, so the
//! concatenation of token texts reconstructs the code with normalised intra-line spacing. A
//! newline token is `"\n"` followed by the next line's indentation (empty for blank lines).
//! `\r` is dropped, so CRLF files tokenize like LF files.

/// Syntax details that change tokenization.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lang {
    /// `#` starts a line comment (Python, shell, Ruby, YAML, TOML...).
    pub hash_comments: bool,
    /// `'...'` is a string (Python, JavaScript...) rather than a Rust lifetime / char literal.
    pub single_quote_strings: bool,
}

impl Lang {
    /// Guesses the syntax from a path's extension or an LSP language id.
    pub fn guess(path: &str, language: &str) -> Self {
        let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let hashy = [
            "py", "pyi", "rb", "sh", "bash", "zsh", "toml", "yaml", "yml", "pl", "r", "cmake",
        ];
        let hashy_lang = ["python", "ruby", "shellscript", "toml", "yaml", "perl", "r"];
        let squote = [
            "py", "pyi", "js", "jsx", "ts", "tsx", "mjs", "cjs", "rb", "sh", "php", "lua",
        ];
        let squote_lang = [
            "python",
            "javascript",
            "typescript",
            "javascriptreact",
            "typescriptreact",
            "ruby",
            "php",
            "lua",
        ];
        Self {
            hash_comments: hashy.contains(&ext.as_str()) || hashy_lang.contains(&language),
            single_quote_strings: squote.contains(&ext.as_str()) || squote_lang.contains(&language),
        }
    }
}

/// What a token is, derived from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Number,
    Str,
    Comment,
    Punct,
    Newline,
}

/// The kind of a token text (with or without its leading space).
pub fn kind_of(text: &str) -> Kind {
    let t = text.strip_prefix(' ').unwrap_or(text);
    let mut chars = t.chars();
    let Some(c) = chars.next() else {
        return Kind::Punct;
    };
    if c == '\n' {
        Kind::Newline
    } else if c == '_' || c.is_alphabetic() {
        Kind::Ident
    } else if c.is_ascii_digit() {
        Kind::Number
    } else if c == '"' || c == '`' || (c == '\'' && t.len() > 1 && t.ends_with('\'')) {
        Kind::Str
    } else if t.starts_with("//")
        || (c == '#' && t.len() > 1 && !t.starts_with("#[") && !t.starts_with("#!"))
    {
        Kind::Comment
    } else {
        Kind::Punct
    }
}

const OPERATORS: [&str; 28] = [
    "...", "..=", "<<=", ">>=", "::", "->", "=>", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=",
    "*=", "/=", "%=", "|=", "&=", "^=", "..", "<<", "#[", "#!", "**", "++", "--",
];

/// One token: its text without the leading space, and whether whitespace preceded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTok<'a> {
    pub space: bool,
    pub text: &'a str,
    /// For newline tokens: the indentation that follows (the `text` is then `"\n"`).
    pub indent: &'a str,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `text` into tokens. Never panics; every byte index used is a char boundary.
pub fn tokenize<'a>(text: &'a str, lang: Lang) -> Vec<RawTok<'a>> {
    let mut out = Vec::with_capacity(text.len() / 4 + 1);
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut space = false;
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        let clen = c.len_utf8();
        if c == '\n' {
            // The indentation of the next line, unless that line is blank.
            let mut j = i + 1;
            while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                j += 1;
            }
            let blank = j < bytes.len() && (bytes[j] == b'\n' || bytes[j] == b'\r');
            let indent = if blank { "" } else { &text[i + 1..j] };
            out.push(RawTok {
                space: false,
                text: "\n",
                indent,
            });
            i = j;
            space = false;
            continue;
        }
        if c == '\r' {
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            space = true;
            i += clen;
            continue;
        }
        let start = i;
        let rest = &text[i..];
        let end = if is_ident_start(c) {
            let mut j = i + clen;
            for d in text[j..].chars() {
                if !is_ident_continue(d) {
                    break;
                }
                j += d.len_utf8();
            }
            j
        } else if c.is_ascii_digit() {
            let mut j = i + 1;
            while j < bytes.len() {
                let b = bytes[j];
                let digit_after_dot =
                    b == b'.' && j + 1 < bytes.len() && bytes[j + 1].is_ascii_digit();
                if b.is_ascii_alphanumeric() || b == b'_' || digit_after_dot {
                    j += 1;
                } else {
                    break;
                }
            }
            j
        } else if c == '"' || c == '`' || (c == '\'' && is_quote_string(rest, lang)) {
            scan_string(text, i, bytes[i])
        } else if rest.starts_with("//") || (lang.hash_comments && c == '#') {
            rest.find(['\n', '\r']).map_or(text.len(), |k| i + k)
        } else if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            i + op.len()
        } else {
            i + clen
        };
        out.push(RawTok {
            space,
            text: &text[start..end],
            indent: "",
        });
        space = false;
        i = end;
    }
    out
}

/// Whether a `'` at the start of `rest` opens a string / char literal (not a Rust lifetime).
fn is_quote_string(rest: &str, lang: Lang) -> bool {
    if lang.single_quote_strings {
        return true;
    }
    let mut chars = rest.chars().skip(1);
    matches!(
        (chars.next(), chars.next()),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// The end (exclusive) of the string literal opened by `quote` at `start`: its closing quote, or
/// the end of the line when it is not closed there.
fn scan_string(text: &str, start: usize, quote: u8) -> usize {
    let bytes = text.as_bytes();
    let mut j = start + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b'\n' | b'\r' => return j,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    // `j` may have stepped past the end (or into a multi-byte char after a backslash).
    let mut end = j.min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

/// Splits an identifier into lower-case words (snake_case, camelCase, CamelCase, UPPER_CASE).
pub fn words(ident: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in ident.chars() {
        if c == '_' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// How an identifier is cased, to render substituted words back in the same style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Snake,
    Upper,
    Camel,
    Pascal,
}

pub fn case_of(ident: &str) -> Case {
    let has_lower = ident.chars().any(char::is_lowercase);
    let first_upper = ident.chars().next().is_some_and(char::is_uppercase);
    if !has_lower {
        Case::Upper
    } else if ident.contains('_') || !ident.chars().any(char::is_uppercase) {
        Case::Snake
    } else if first_upper {
        Case::Pascal
    } else {
        Case::Camel
    }
}

pub fn render(words: &[String], case: Case) -> String {
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    match case {
        Case::Snake => words.join("_"),
        Case::Upper => words.join("_").to_uppercase(),
        Case::Pascal => words.iter().map(|w| cap(w)).collect(),
        Case::Camel => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokenize(s, Lang::default())
            .iter()
            .map(|t| format!("{}{}{}", if t.space { " " } else { "" }, t.text, t.indent))
            .collect()
    }

    #[test]
    fn tokenizes_code() {
        assert_eq!(
            texts("fn a(x: &'a str) -> u8 {\r\n    \"s\\\"\" // c\n\n}"),
            vec![
                "fn",
                " a",
                "(",
                "x",
                ":",
                " &",
                "'",
                "a",
                " str",
                ")",
                " ->",
                " u8",
                " {",
                "\n    ",
                "\"s\\\"\"",
                " // c",
                "\n",
                "\n",
                "}"
            ]
        );
        assert_eq!(
            texts("x = 'c' + 1.5e3"),
            vec!["x", " =", " 'c'", " +", " 1.5e3"]
        );
    }

    #[test]
    fn words_and_render() {
        assert_eq!(words("handleFooBar"), vec!["handle", "foo", "bar"]);
        assert_eq!(words("HANDLE_FOO"), vec!["handle", "foo"]);
        assert_eq!(render(&words("on_open"), Case::Pascal), "OnOpen");
        assert_eq!(render(&words("OnOpen"), case_of("do_it")), "on_open");
    }

    #[test]
    fn no_panic_on_odd_text() {
        for s in [
            "",
            "\"",
            "'",
            "'\\",
            "\"\\",
            "é'\\é",
            "\r\r\n\t",
            "日本語 = 1",
            "a\u{a0}b",
            "0x",
            "1..2",
        ] {
            let _ = tokenize(s, Lang::default());
            let _ = tokenize(
                s,
                Lang {
                    hash_comments: true,
                    single_quote_strings: true,
                },
            );
        }
    }
}
