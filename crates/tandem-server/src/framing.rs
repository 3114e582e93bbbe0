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
    let mut line = String::new();
    loop {
        // Headers: lines up to a blank one.
        let mut content_length: Option<usize> = None;
        let mut saw_header = false;
        loop {
            line.clear();
            match input.read_line(&mut line).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot read stdin: {e}");
                    return;
                }
            }
            let trimmed = line.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                if saw_header {
                    break;
                }
                continue;
            }
            saw_header = true;
            if let Some((name, value)) = trimmed.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().ok();
            }
        }
        let Some(len) = content_length.filter(|&n| n <= MAX_BODY) else {
            tracing::error!("skipped a message without a valid Content-Length header");
            continue;
        };
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

/// Whether `body` is one JSON-RPC 2.0 message tower-lsp-server can decode.
fn check(body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("not a JSON object (batches are not part of LSP)".to_owned());
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("`jsonrpc` is not \"2.0\"".to_owned());
    }
    match (map.get("method"), map.get("id")) {
        (
            Some(Value::String(_)),
            None | Some(Value::Number(_) | Value::String(_) | Value::Null),
        ) => Ok(()),
        (Some(_), _) => {
            Err("`method` is not a string, or `id` is neither number nor string".to_owned())
        }
        (None, Some(_)) if map.contains_key("result") || map.contains_key("error") => Ok(()),
        (None, _) => Err("neither a request, a notification nor a response".to_owned()),
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
