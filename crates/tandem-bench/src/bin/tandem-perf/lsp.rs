//! A minimal LSP client over the server's stdio: Content-Length framing, requests matched by
//! id, notifications, and the server's stderr drained (and watched for log lines).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::data::file_uri;

/// How long one request may take before the harness gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server's stderr kept for error messages.
const STDERR_TAIL: usize = 40;

/// One message from the server, stamped when its last byte was read.
struct Incoming {
    at: Instant,
    msg: Value,
}

/// A response as the client saw it.
pub struct Response {
    pub result: Value,
    /// When the request's first byte was written, and when the response's last byte was read.
    pub sent: Instant,
    pub received: Instant,
}

impl Response {
    pub fn round_trip(&self) -> Duration {
        self.received.saturating_duration_since(self.sent)
    }
}

/// A running `tandem --stdio`.
pub struct Server {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    rx: Receiver<Incoming>,
    next_id: i64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The "workspace indexed" log line: the first scan of the workspace is done (embedded
    /// index and symbol index).
    indexed: Receiver<Instant>,
    /// `window/showMessage` texts seen so far.
    pub messages: Vec<String>,
    /// Outgoing frame buffer, reused.
    frame: Vec<u8>,
}

impl Server {
    /// Starts `tandem --stdio` with its home and config directories in `home`.
    pub fn spawn(tandem: &Path, home: &Path) -> Result<Self> {
        let config_home = home.join("config");
        std::fs::create_dir_all(&config_home).context("cannot create the server's config dir")?;
        let mut cmd = Command::new(tandem);
        cmd.arg("--stdio")
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", &config_home)
            .env("TANDEM_LOG", "info")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", tandem.display()))?;
        let stdin = child.stdin.take().context("no stdin pipe")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;

        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lsp-read".into())
            .spawn(move || {
                let mut reader = BufReader::with_capacity(1 << 16, stdout);
                while let Ok(Some(msg)) = read_frame(&mut reader) {
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the reader thread")?;

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let (indexed_tx, indexed) = mpsc::channel();
        let tail = Arc::clone(&stderr_tail);
        std::thread::Builder::new()
            .name("lsp-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("workspace indexed") {
                        let _ = indexed_tx.send(Instant::now());
                    }
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == STDERR_TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
            })
            .context("cannot start the stderr thread")?;

        Ok(Self {
            child,
            stdin: BufWriter::with_capacity(1 << 16, stdin),
            rx,
            next_id: 1,
            stderr_tail,
            indexed,
            messages: Vec::new(),
            frame: Vec::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `initialize` (UTF-16 positions, inline completion) with `root` as the only workspace
    /// folder, then `initialized`.
    pub fn initialize(&mut self, root: Option<&Path>, options: Value) -> Result<Value> {
        let folders = match root {
            Some(r) => json!([{ "uri": file_uri(r), "name": "bench" }]),
            None => Value::Null,
        };
        let params = json!({
            "processId": std::process::id(),
            "clientInfo": { "name": "tandem-perf" },
            "rootUri": root.map(file_uri),
            "workspaceFolders": folders,
            "initializationOptions": options,
            "capabilities": {
                "general": { "positionEncodings": ["utf-16"] },
                "textDocument": {
                    "synchronization": { "dynamicRegistration": false },
                    "inlineCompletion": { "dynamicRegistration": false },
                },
                "workspace": { "workspaceFolders": true, "configuration": false },
            },
        });
        let response = self.request("initialize", params)?;
        self.notify("initialized", json!({}))?;
        Ok(response.result)
    }

    /// When the workspace's first scan was done, if it is ("workspace indexed" logged, once
    /// per workspace folder).
    pub fn indexed(&self) -> Option<Instant> {
        self.indexed.try_recv().ok()
    }

    /// Waits for the workspace's first scan to be done; `None` if it was not within `timeout`.
    pub fn wait_indexed(&self, timeout: Duration) -> Option<Instant> {
        self.indexed.recv_timeout(timeout).ok()
    }

    pub fn did_open(
        &mut self,
        uri: &str,
        language: &str,
        version: i32,
        text: &str,
    ) -> Result<Instant> {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": version, "text": text } }),
        )
    }

    pub fn did_close(&mut self, uri: &str) -> Result<Instant> {
        self.notify(
            "textDocument/didClose",
            json!({ "textDocument": { "uri": uri } }),
        )
    }

    /// An explicit (`triggerKind: 1`, never debounced) inline completion; returns the items'
    /// texts with the response.
    pub fn inline_completion(
        &mut self,
        uri: &str,
        line: u32,
        character: u32,
    ) -> Result<(Vec<String>, Response)> {
        let response = self.request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": { "uri": uri },
                "position": { "line": line, "character": character },
                "context": { "triggerKind": 1 },
            }),
        )?;
        let items = response
            .result
            .get("items")
            .or(Some(&response.result))
            .and_then(Value::as_array);
        let texts = items
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| match &i["insertText"] {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(o) => {
                            o.get("value").and_then(Value::as_str).map(str::to_owned)
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((texts, response))
    }

    /// Sends a notification; returns when its first byte was written.
    pub fn notify(&mut self, method: &str, params: Value) -> Result<Instant> {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
    }

    /// Sends a request and waits for its response, answering the server's own requests and
    /// collecting its notifications meanwhile.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Response> {
        let id = self.next_id;
        self.next_id += 1;
        let sent =
            self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let incoming = match self.rx.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "no answer to `{method}` within {REQUEST_TIMEOUT:?}{}",
                        self.stderr_context()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!(
                        "the server closed its output while `{method}` was pending{}",
                        self.stderr_context()
                    )
                }
            };
            let msg = incoming.msg;
            match (msg.get("id"), msg.get("method")) {
                (Some(msg_id), None) if msg_id.as_i64() == Some(id) => {
                    if let Some(err) = msg.get("error") {
                        bail!("`{method}` failed: {err}");
                    }
                    let result = msg.get("result").cloned().unwrap_or(Value::Null);
                    return Ok(Response {
                        result,
                        sent,
                        received: incoming.at,
                    });
                }
                (Some(server_id), Some(_)) => {
                    // A request from the server (e.g. `workspace/configuration`): answer null.
                    let reply = json!({ "jsonrpc": "2.0", "id": server_id, "result": Value::Null });
                    self.send(&reply)?;
                }
                (None, Some(m)) if m == "window/showMessage" || m == "window/logMessage" => {
                    if let Some(text) = msg["params"]["message"].as_str() {
                        self.messages.push(text.to_owned());
                    }
                }
                _ => {}
            }
        }
    }

    fn send(&mut self, msg: &Value) -> Result<Instant> {
        let body = serde_json::to_vec(msg).context("cannot encode a message")?;
        self.frame.clear();
        write!(self.frame, "Content-Length: {}\r\n\r\n", body.len())
            .context("cannot frame a message")?;
        self.frame.extend_from_slice(&body);
        let at = Instant::now();
        self.stdin
            .write_all(&self.frame)
            .context("cannot write to the server")?;
        self.stdin.flush().context("cannot write to the server")?;
        Ok(at)
    }

    fn stderr_context(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        if tail.is_empty() {
            String::new()
        } else {
            format!("\nserver stderr (last lines):\n{tail}")
        }
    }

    /// `shutdown` then `exit`; kills the server if it does not exit within two seconds.
    pub fn shutdown(mut self) -> Result<()> {
        let result = self
            .request("shutdown", Value::Null)
            .and_then(|_| self.notify("exit", Value::Null));
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return result.map(|_| ());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        result.map(|_| ())
        // Drop kills it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Reads one framed message; `None` at end of output.
fn read_frame(reader: &mut impl BufRead) -> Result<Option<Incoming>> {
    let mut len: Option<usize> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .context("cannot read from the server")?
            == 0
        {
            return Ok(None);
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = Some(value.trim().parse().context("bad Content-Length")?);
        }
    }
    let len = len.ok_or_else(|| anyhow!("a message without Content-Length"))?;
    let mut body = vec![0u8; len];
    reader
        .read_exact(&mut body)
        .context("cannot read a message body")?;
    let at = Instant::now();
    let msg = serde_json::from_slice(&body).context("the server sent invalid JSON")?;
    Ok(Some(Incoming { at, msg }))
}

/// `VmHWM` (peak) and `VmRSS` (current) of a process, in KiB, from `/proc/<pid>/status`.
pub fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("cannot parse `{line}`"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// `context.sources` for the server, when `--sources` set them (else the default).
pub static CONTEXT_SOURCES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// The server's own settings for the benchmarks: the openai backend at `url`, no debounce.
pub fn init_options(backend_url: &str) -> Value {
    let mut options = json!({
        "backend": { "kind": "openai", "url": backend_url, "model": "m" },
        "completion": { "debounceMs": 0 },
    });
    if let Some(sources) = CONTEXT_SOURCES.get() {
        options["context"] = json!({ "sources": sources });
    }
    options
}

/// The default server binary: `target/release/tandem` beside this executable's target dir,
/// falling back to `target/debug/tandem`.
pub fn default_tandem() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let target = profile_dir(&exe)?
        .parent()
        .map(Path::to_path_buf)
        .context("no target dir")?;
    let name = format!("tandem{}", std::env::consts::EXE_SUFFIX);
    let candidates = [
        target.join("release").join(&name),
        target.join("debug").join(&name),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        anyhow!(
            "no tandem binary at {} or {}: build it (`cargo build --release -p tandem`) or pass --tandem PATH",
            candidates[0].display(),
            candidates[1].display()
        )
    })
}

/// `target/<profile>` of an executable in `target/<profile>/` or `target/<profile>/deps/`.
pub fn profile_dir(exe: &Path) -> Result<PathBuf> {
    let dir = exe.parent().context("the executable has no directory")?;
    let dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().context("deps has no parent")?
    } else {
        dir
    };
    Ok(dir.to_path_buf())
}
