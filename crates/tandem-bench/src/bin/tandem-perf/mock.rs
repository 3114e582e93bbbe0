//! An instant OpenAI-compatible backend on loopback: answers every `POST …/completions` at once
//! with a tiny SSE body, over HTTP/1.1 keep-alive, and timestamps each request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};

/// The completion every request gets: it fits a cursor after `let total = `.
pub const COMPLETION: &str = "compute_total(&items);";

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When the request line was read, and when the response was written.
    pub start: Instant,
    pub end: Instant,
    /// The request body, parsed only when asked (not on the timed path).
    pub body: Vec<u8>,
}

impl Hit {
    /// The `prompt` of the request body.
    pub fn prompt(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["prompt"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn backend_ms(&self) -> f64 {
        ms(self.end.saturating_duration_since(self.start))
    }
}

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    connections: AtomicUsize,
    stop: AtomicBool,
}

pub struct MockBackend {
    port: u16,
    shared: Arc<Shared>,
}

impl MockBackend {
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
        let port = listener.local_addr().context("no local address")?.port();
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("mock-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accept_shared.connections.fetch_add(1, Ordering::Relaxed);
                    let conn_shared = Arc::clone(&accept_shared);
                    let _ = std::thread::Builder::new()
                        .name("mock-conn".into())
                        .spawn(move || {
                            let _ = serve(stream, &conn_shared);
                        });
                }
            })
            .context("cannot start the mock backend")?;
        Ok(Self { port, shared })
    }

    /// The base URL, as `backend.url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Takes the hits recorded so far.
    pub fn take_hits(&self) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }

    /// Connections accepted so far (1 when the server's pooled client reuses its connection).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one keep-alive connection until the peer closes it.
fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true).context("nodelay")?;
    let mut writer = stream.try_clone().context("cannot clone the stream")?;
    let mut reader = BufReader::new(stream);
    let sse = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        serde_json::json!({ "choices": [{ "text": COMPLETION, "index": 0 }] })
    );
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let start = Instant::now();
        let Some(head) = read_head(&line, &mut reader)? else {
            if line.trim_end().is_empty() {
                continue;
            }
            return Ok(());
        };
        let RequestHead {
            request_line,
            content_length,
            chunked,
            close,
        } = head;
        let body = if chunked {
            read_chunked(&mut reader)?
        } else {
            read_exact(&mut reader, content_length)?
        };
        let response = if request_line.starts_with("POST ") && request_line.contains("/completions")
        {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ncontent-length: {}\r\n\r\n{sse}",
                sse.len()
            )
        } else {
            other_response(&request_line)
        };
        writer.write_all(response.as_bytes())?;
        writer.flush()?;
        let end = Instant::now();
        if let Ok(mut hits) = shared.hits.lock() {
            hits.push(Hit { start, end, body });
        }
        if close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// An HTTP/1.1 request's line and the headers the mocks act on.
pub struct RequestHead {
    pub request_line: String,
    pub content_length: usize,
    pub chunked: bool,
    pub close: bool,
}

/// Reads the headers of the request whose first line is `first`; `None` if `first` is blank
/// (a stray line between requests) or the peer closed mid-head.
pub fn read_head(first: &str, reader: &mut impl BufRead) -> std::io::Result<Option<RequestHead>> {
    let request_line = first.trim_end().to_owned();
    if request_line.is_empty() {
        return Ok(None);
    }
    let mut head = RequestHead {
        request_line,
        content_length: 0,
        chunked: false,
        close: false,
    };
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok(Some(head));
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                head.content_length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            }
        }
    }
}

/// The answer to a request that is not a completion: the model list, or 404.
pub fn other_response(request_line: &str) -> String {
    let (status, content_type, payload) =
        if request_line.starts_with("GET ") && request_line.contains("/models") {
            (
                "200 OK",
                "application/json",
                r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#,
            )
        } else {
            ("404 Not Found", "text/plain", "not found")
        };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncache-control: no-cache\r\ncontent-length: {}\r\n\r\n{payload}",
        payload.len()
    )
}

fn read_exact(reader: &mut impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size =
            usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers, then the blank line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?; // the chunk's CRLF
    }
}
