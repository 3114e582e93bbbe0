//! Conversion at the edge between LSP types and Tandem's own (`from_proto`, `to_proto`).
//! Nothing below this module sees an LSP type.

pub mod from_proto {
    use std::path::PathBuf;

    use tandem_core::{LineCol, PositionEncoding, TextChange};
    use tower_lsp_server::gen_lsp_types as lsp;

    pub fn line_col(pos: lsp::Position) -> LineCol {
        LineCol::new(pos.line, pos.character)
    }

    pub fn text_change(change: lsp::TextDocumentContentChangeEvent) -> TextChange {
        match change {
            lsp::TextDocumentContentChangeEvent::TextDocumentContentChangePartial(p) => {
                TextChange {
                    range: Some((line_col(p.range.start), line_col(p.range.end))),
                    text: p.text,
                }
            }
            lsp::TextDocumentContentChangeEvent::TextDocumentContentChangeWholeDocument(w) => {
                TextChange {
                    range: None,
                    text: w.text,
                }
            }
        }
    }

    /// Picks the encoding: UTF-8 if the client offers it, else UTF-16 (which every client must
    /// support), and UTF-32 only for a client that offers it and not UTF-16.
    pub fn negotiate_encoding(offered: Option<&[lsp::PositionEncodingKind]>) -> PositionEncoding {
        let offered = offered.unwrap_or_default();
        if offered.contains(&lsp::PositionEncodingKind::UTF8) {
            PositionEncoding::Utf8
        } else if offered.contains(&lsp::PositionEncodingKind::UTF32)
            && !offered.contains(&lsp::PositionEncodingKind::UTF16)
        {
            PositionEncoding::Utf32
        } else {
            PositionEncoding::Utf16
        }
    }

    /// A language id as the client spelled it.
    pub fn language_id(kind: &lsp::LanguageKind) -> String {
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "plaintext".to_owned())
    }

    /// The local path of a `file:` URI; `None` for other schemes.
    pub fn file_path(uri: &lsp::Uri) -> Option<PathBuf> {
        let s: &str = uri.as_ref();
        let rest = s.strip_prefix("file://")?;
        // Drop an authority (`file://host/path`); `localhost` and empty are local.
        let rest = match rest.find('/') {
            Some(0) => rest,
            Some(i) if &rest[..i] == "localhost" => &rest[i..],
            _ => return None,
        };
        let decoded = percent_decode(rest)?;
        // Windows: `/C:/x` is `C:/x`.
        let bytes = decoded.as_bytes();
        if bytes.len() >= 3
            && bytes[0] == b'/'
            && bytes[1].is_ascii_alphabetic()
            && bytes[2] == b':'
        {
            return Some(PathBuf::from(&decoded[1..]));
        }
        Some(PathBuf::from(decoded))
    }

    fn percent_decode(s: &str) -> Option<String> {
        let mut out = Vec::with_capacity(s.len());
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn file_uris_decode() {
            let p =
                |s: &str| file_path(&lsp::Uri::from(s)).map(|p| p.to_string_lossy().into_owned());
            assert_eq!(
                p("file:///home/u/a%20b/%C3%A9.rs").as_deref(),
                Some("/home/u/a b/é.rs")
            );
            assert_eq!(p("file://localhost/x.rs").as_deref(), Some("/x.rs"));
            assert_eq!(p("file:///c%3A/src/a.rs").as_deref(), Some("c:/src/a.rs"));
            assert_eq!(p("untitled:Untitled-1"), None);
            assert_eq!(p("file:///bad%zz"), None);
        }

        #[test]
        fn encoding_preference() {
            use lsp::PositionEncodingKind as K;
            assert_eq!(
                negotiate_encoding(Some(&[K::UTF16, K::UTF8])),
                PositionEncoding::Utf8
            );
            assert_eq!(
                negotiate_encoding(Some(&[K::UTF32, K::UTF16])),
                PositionEncoding::Utf16
            );
            assert_eq!(
                negotiate_encoding(Some(&[K::UTF32])),
                PositionEncoding::Utf32
            );
            assert_eq!(negotiate_encoding(None), PositionEncoding::Utf16);
        }
    }
}

pub mod to_proto {
    use tandem_core::{LineCol, PositionEncoding};
    use tower_lsp_server::gen_lsp_types as lsp;

    pub fn position(lc: LineCol) -> lsp::Position {
        lsp::Position {
            line: lc.line,
            character: lc.col,
        }
    }

    /// A `file:` URI for a local path, percent-encoding all but unreserved characters and `/`.
    pub fn file_uri(path: &std::path::Path) -> String {
        let mut out = String::from("file://");
        let text = path.to_string_lossy().replace('\\', "/");
        if !text.starts_with('/') {
            out.push('/'); // Windows: `C:/x` is `file:///C:/x`
        }
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    pub fn encoding(enc: PositionEncoding) -> lsp::PositionEncodingKind {
        match enc {
            PositionEncoding::Utf8 => lsp::PositionEncodingKind::UTF8,
            PositionEncoding::Utf16 => lsp::PositionEncodingKind::UTF16,
            PositionEncoding::Utf32 => lsp::PositionEncodingKind::UTF32,
        }
    }
}
