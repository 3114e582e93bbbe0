//! A streaming OpenAI-compatible backend on loopback, for `earlystop`: answers every
//! `POST …/completions` with a scripted SSE stream, one token per event, each event written on
//! its own after a delay (a model generating), and records how far it got before the client
//! closed the connection.
//!
//! A close is seen two ways: a watcher thread peeks at the socket (a peek returning 0, or an
//! error, is the peer's FIN or RST) and the writer's own writes fail. The kernel buffers what
//! is written, so a write succeeds for a while after the peer has gone: the watcher's figure is
//! the one to read; the writer's shows how late a server that only notices through write errors
//! would stop generating.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::mock::{RequestHead, other_response, read_head};

/// How often the watcher wakes to see whether the stream is over.
const WATCH_TICK: Duration = Duration::from_millis(5);

/// One completion stream as the backend served it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// When the request was read, and when the backend stopped writing.
    pub start: Instant,
    pub end: Instant,
    /// The request body's `max_tokens`.
    pub max_tokens: Option<u64>,
    /// Token events in the script.
    pub scripted: usize,
    /// Events written (or being written) when the watcher first saw the peer close, and when.
    pub events_at_close: Option<usize>,
    pub close_at: Option<Instant>,
    /// Events written successfully before the first failed write.
    pub events_at_write_error: Option<usize>,
    /// Every event and `[DONE]` were written.
    pub completed: bool,
}

impl StreamRecord {
    /// Tokens generated before the connection closed: the watcher's count, else the writer's,
    /// else (never closed early) all of them.
    pub fn tokens_before_close(&self) -> usize {
        self.events_at_close
            .or(self.events_at_write_error)
            .unwrap_or(self.scripted)
    }

    /// From the request read to the close seen (or to the last write).
    pub fn open_ms(&self) -> f64 {
        crate::mock::ms(
            self.close_at
                .unwrap_or(self.end)
                .saturating_duration_since(self.start),
        )
    }
}

struct Shared {
    tokens: Mutex<Vec<String>>,
    delay: Duration,
    records: Mutex<Vec<StreamRecord>>,
    stop: AtomicBool,
}

pub struct StreamBackend {
    port: u16,
    shared: Arc<Shared>,
}

impl StreamBackend {
    /// Serves `tokens` (replaceable with [`StreamBackend::set_script`]), one per `delay`.
    pub fn start(tokens: Vec<String>, delay: Duration) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
        let port = listener.local_addr().context("no local address")?.port();
        let shared = Arc::new(Shared {
            tokens: Mutex::new(tokens),
            delay,
            records: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("stream-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let conn_shared = Arc::clone(&accept_shared);
                    let _ = std::thread::Builder::new()
                        .name("stream-conn".into())
                        .spawn(move || {
                            let _ = serve(stream, &conn_shared);
                        });
                }
            })
            .context("cannot start the streaming backend")?;
        Ok(Self { port, shared })
    }

    /// The base URL, as `backend.url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn set_script(&self, tokens: Vec<String>) {
        if let Ok(mut t) = self.shared.tokens.lock() {
            *t = tokens;
        }
    }

    /// Takes the streams recorded so far.
    pub fn take_records(&self) -> Vec<StreamRecord> {
        self.shared
            .records
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Waits until `n` streams are recorded (a stream is recorded once its writer has stopped).
    pub fn wait_records(&self, n: usize, timeout: Duration) -> Result<Vec<StreamRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            let len = self.shared.records.lock().map(|r| r.len()).unwrap_or(0);
            if len >= n {
                return Ok(self.take_records());
            }
            if Instant::now() >= deadline {
                bail!("the backend recorded {len} streams within {timeout:?}, expected {n}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A client that reads the whole stream (what happens without early stop): the events read
    /// and the time from sending the request to the end of the response.
    pub fn read_to_end(&self) -> Result<(usize, Duration)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .context("cannot connect to the backend")?;
        let body = r#"{"prompt":"","max_tokens":256,"stream":true}"#;
        let request = format!(
            "POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = Instant::now();
        stream
            .write_all(request.as_bytes())
            .context("cannot send the request")?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .context("cannot read the response")?;
        let elapsed = sent.elapsed();
        let text = String::from_utf8_lossy(&response);
        if !text.contains("data: [DONE]") {
            bail!("the stream read to the end lacks `[DONE]`");
        }
        Ok((text.matches("data: {").count(), elapsed))
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves one keep-alive connection until the peer closes it or a stream is cut.
fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true).context("nodelay")?;
    let mut writer = stream.try_clone().context("cannot clone the stream")?;
    let mut reader = BufReader::new(stream.try_clone().context("cannot clone the stream")?);
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
            close,
            ..
        } = head;
        // reqwest sends a `.json()` body with a length, never chunked.
        let mut body = vec![0u8; content_length];
        reader.read_exact(&mut body)?;
        if request_line.starts_with("POST ") && request_line.contains("/completions") {
            let tokens = shared.tokens.lock().map(|t| t.clone()).unwrap_or_default();
            let max_tokens = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["max_tokens"].as_u64());
            let record = stream_tokens(&stream, &mut writer, &tokens, shared.delay, start, close);
            let record = StreamRecord {
                max_tokens,
                ..record
            };
            let cut = !record.completed;
            if let Ok(mut records) = shared.records.lock() {
                records.push(record);
            }
            if cut || close {
                break;
            }
        } else {
            let response = other_response(&request_line);
            writer.write_all(response.as_bytes())?;
            if close {
                break;
            }
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}

/// Writes the response head, then one chunk per token with `delay` before each, then `[DONE]`;
/// stops at the first failed write. A watcher thread peeks at the socket meanwhile.
fn stream_tokens(
    socket: &TcpStream,
    writer: &mut TcpStream,
    tokens: &[String],
    delay: Duration,
    start: Instant,
    close: bool,
) -> StreamRecord {
    let written = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = socket.try_clone().ok().and_then(|peek| {
        let (written, done) = (Arc::clone(&written), Arc::clone(&done));
        std::thread::Builder::new()
            .name("stream-watch".into())
            .spawn(move || watch(&peek, &written, &done))
            .ok()
    });
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         transfer-encoding: chunked\r\nconnection: {}\r\n\r\n",
        if close { "close" } else { "keep-alive" }
    );
    let chunk = |payload: &str| format!("{:x}\r\n{payload}\r\n", payload.len());
    let mut events_at_write_error = None;
    let mut completed = false;
    if writer.write_all(head.as_bytes()).is_err() {
        events_at_write_error = Some(0);
    } else {
        for (i, token) in tokens.iter().enumerate() {
            std::thread::sleep(delay);
            let event = format!(
                "data: {}\n\n",
                serde_json::json!({ "choices": [{ "text": token, "index": 0 }] })
            );
            // Counted before the write: the client may read the event, stop and close before
            // this thread runs again.
            written.store(i + 1, Ordering::SeqCst);
            if writer.write_all(chunk(&event).as_bytes()).is_err() {
                events_at_write_error = Some(i);
                break;
            }
        }
        if events_at_write_error.is_none() {
            let tail = format!("{}0\r\n\r\n", chunk("data: [DONE]\n\n"));
            match writer.write_all(tail.as_bytes()) {
                Ok(()) => completed = true,
                Err(_) => events_at_write_error = Some(tokens.len()),
            }
        }
    }
    let end = Instant::now();
    done.store(true, Ordering::SeqCst);
    let closed = watcher.and_then(|w| w.join().ok()).flatten();
    // The timeout is the socket's, shared with the request reader: clear it.
    let _ = socket.set_read_timeout(None);
    StreamRecord {
        start,
        end,
        max_tokens: None,
        scripted: tokens.len(),
        events_at_close: closed.map(|(n, _)| n),
        close_at: closed.map(|(_, at)| at),
        events_at_write_error,
        completed,
    }
}

/// Peeks until the peer closes (returns the events written then, and when) or `done`.
fn watch(socket: &TcpStream, written: &AtomicUsize, done: &AtomicBool) -> Option<(usize, Instant)> {
    socket.set_read_timeout(Some(WATCH_TICK)).ok()?;
    let mut buf = [0u8; 1];
    loop {
        match socket.peek(&mut buf) {
            Ok(0) => return Some((written.load(Ordering::SeqCst), Instant::now())),
            // Data: the client's next request, not a close; leave it to the reader.
            Ok(_) => return None,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if done.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return Some((written.load(Ordering::SeqCst), Instant::now())),
        }
    }
}
