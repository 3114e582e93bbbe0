//! A guard in front of the transport: reads LSP frames from stdin and passes on only
//! well-formed JSON-RPC messages.
//!
//! tower-lsp-server reads stdin through a tokio-util `FramedRead`, which ends the stream after
//! the first decoding error, so one malformed message would end the server. Here a frame whose
//! body is not a JSON-RPC message, or that has no usable `Content-Length`, is logged and
//! dropped. (A parse-error response would carry `id: null`, which no client can match to a
//! request, so nothing is lost by not sending one.)

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Largest message accepted (64 MiB); a larger frame is skipped.
const MAX_BODY: usize = 64 << 20;

/// Copies frames from `input` to `output` until `input` ends.
pub async fn sanitize(input: impl AsyncRead + Unpin, mut output: impl AsyncWrite + Unpin) {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        // Headers: lines up to a blank one. A `Content-Length` is found anywhere in a line, so
        // a frame glued to the garbage before it is still found.
        let mut content_length: Option<Option<usize>> = None;
        loop {
            match read_line_capped(&mut input, &mut line, MAX_HEADER_LINE).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot read stdin: {e}");
                    return;
                }
            }
            let text = String::from_utf8_lossy(&line);
            let trimmed = text.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                if content_length.is_some() {
                    break;
                }
                continue;
            }
            let lower = trimmed.to_ascii_lowercase();
            if let Some(at) = lower.find("content-length:") {
                let value = &trimmed[at + "content-length:".len()..];
                content_length = Some(value.trim().parse().ok());
            }
        }
        let len = match content_length.flatten() {
            Some(len) => len,
            None => {
                tracing::error!("skipped a message whose Content-Length is not a number");
                continue;
            }
        };
        if len > MAX_BODY {
            tracing::error!("skipped a message of {len} bytes (the limit is {MAX_BODY})");
            let mut rest = (&mut input).take(len as u64);
            if tokio::io::copy(&mut rest, &mut tokio::io::sink())
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let mut body = vec![0; len];
        if let Err(e) = input.read_exact(&mut body).await {
            tracing::error!("stdin ended inside a message: {e}");
            return;
        }
        if let Err(problem) = check(&body) {
            tracing::error!("dropped a malformed message from the editor: {problem}");
            continue;
        }
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        if output.write_all(header.as_bytes()).await.is_err()
            || output.write_all(&body).await.is_err()
        {
            return;
        }
        let _ = output.flush().await;
    }
}

/// Longest header line kept; the rest of a longer line is skipped.
const MAX_HEADER_LINE: usize = 8192;

/// Reads up to and including the next `\n` into `line` (cleared first), keeping at most `cap`
/// bytes of it. Returns the bytes consumed (0 at the end of input).
async fn read_line_capped(
    input: &mut (impl tokio::io::AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    line.clear();
    let mut consumed = 0;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        input.consume(take);
        consumed += take;
        if done {
            return Ok(consumed);
        }
    }
}

/// Whether `body` is one JSON-RPC 2.0 message tower-lsp-server can decode.
fn check(body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("not a JSON object (batches are not part of LSP)".to_owned());
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("`jsonrpc` is not \"2.0\"".to_owned());
    }
    // tower-lsp-server's ids are i64 numbers or strings; anything else would end its stream.
    let id_ok = match map.get("id") {
        None | Some(Value::String(_) | Value::Null) => true,
        Some(Value::Number(n)) => n.is_i64(),
        Some(_) => false,
    };
    if !id_ok {
        return Err("`id` is neither an integer nor a string".to_owned());
    }
    match map.get("method") {
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err("`method` is not a string".to_owned()),
        None if map.contains_key("id")
            && (map.contains_key("result") || map.contains_key("error")) =>
        {
            Ok(())
        }
        None => Err("neither a request, a notification nor a response".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: &[u8]) -> String {
        let mut out = Vec::new();
        sanitize(input, &mut out).await;
        String::from_utf8(out).expect("utf-8 output")
    }

    #[tokio::test]
    async fn good_frames_pass_bad_ones_are_dropped() {
        let good = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let input = format!(
            "Content-Length: 5\r\n\r\n{{oops\r\nContent-Type: x\r\nContent-Length: {}\r\n\r\n{good}Content-Length: 2\r\n\r\n[]",
            good.len()
        );
        let out = run(input.as_bytes()).await;
        assert_eq!(out, format!("Content-Length: {}\r\n\r\n{good}", good.len()));
        assert!(check(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).is_err());
        assert!(check(br#"{"jsonrpc":"2.0","id":3,"result":null}"#).is_ok());
        assert!(check(br#"{"id":3,"method":"x"}"#).is_err());
        assert!(check(br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).is_err());
        assert!(check(br#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"x"}"#).is_err());
        assert!(check(br#"{"jsonrpc":"2.0","id":{},"result":1}"#).is_err());
    }

    #[tokio::test]
    async fn bad_lengths_and_headers_resynchronise() {
        let good = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let frame = format!("Content-Length: {}\r\n\r\n{good}", good.len());
        // An unparsable length whose body runs into the next frame's header.
        let input = format!("Content-Length: abc\r\n\r\n{{\"x\":1}}{frame}");
        assert_eq!(run(input.as_bytes()).await, frame);
        // Invalid UTF-8 in a header, and an over-long header line.
        let mut input = b"X-Bad: \xff\xfe\r\n".to_vec();
        input.extend_from_slice(format!("X-Long: {}\r\n", "a".repeat(20_000)).as_bytes());
        input.extend_from_slice(frame.as_bytes());
        assert_eq!(run(&input).await, frame);
        // A body over the limit is skipped whole.
        let big = format!("Content-Length: {}\r\n\r\n", MAX_BODY + 1);
        let mut input = big.into_bytes();
        input.extend(std::iter::repeat_n(b'x', MAX_BODY + 1));
        input.extend_from_slice(frame.as_bytes());
        assert_eq!(run(&input).await, frame);
    }

    #[tokio::test]
    async fn frames_without_length_are_skipped() {
        let good = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let input = format!(
            "X-Nothing: 1\r\n\r\nContent-Length: {}\r\n\r\n{good}",
            good.len()
        );
        let out = run(input.as_bytes()).await;
        assert_eq!(out, format!("Content-Length: {}\r\n\r\n{good}", good.len()));
    }
}
