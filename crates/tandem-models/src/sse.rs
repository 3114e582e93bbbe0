//! A Server-Sent Events decoder that accepts events split anywhere across network chunks.

/// Accumulates bytes and yields the `data` of each complete event.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    data: Vec<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                self.data
                    .push(value.strip_prefix(' ').unwrap_or(value).to_owned());
            }
            // Comments (`:`), `event:`, `id:` and `retry:` carry nothing we use.
        }
        events
    }

    /// The last event, when the stream ends without a blank line after it.
    pub fn finish(&mut self) -> Option<String> {
        let rest = self.push(b"\n\n");
        rest.into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: {\"a\"").is_empty());
        assert!(d.push(b":1}\r").is_empty());
        assert_eq!(
            d.push(b"\n\r\ndata: [DONE]\n\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn multi_byte_characters_split_across_chunks() {
        let mut d = SseDecoder::default();
        let bytes = "data: é😀\n\n".as_bytes();
        assert!(d.push(&bytes[..8]).is_empty());
        assert_eq!(d.push(&bytes[8..]), vec!["é😀"]);
    }

    #[test]
    fn comments_are_skipped_and_unterminated_last_event_is_kept() {
        let mut d = SseDecoder::default();
        assert!(d.push(b": keep-alive\n\ndata: x").is_empty());
        assert_eq!(d.finish().as_deref(), Some("x"));
    }
}
