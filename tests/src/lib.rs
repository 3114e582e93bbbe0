//! End-to-end test harness: the real `tandem` binary over stdio ([`TestServer`]) against
//! loopback model servers ([`ModelServer`]), plus a small independent model of a document
//! ([`DocModel`]) to compute the positions and prompts a test expects.
//!
//! Everything here is synchronous from the test's point of view: reader threads collect the
//! server's output, and waits are condition-variable waits with deadlines (never bare sleeps).
//! The model server runs on its own small tokio runtime.
//!
//! Run: `cargo build -p tandem && cargo test -p tandem-e2e` (or `cargo nextest run -p tandem-e2e`);
//! `TANDEM_BIN` overrides the binary under test, `TANDEM_LOG` the server's log filter. A failing
//! test prints the server's stderr.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a test waits for any one thing the server or the model server should do.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The version every crate of the workspace shares (this one included).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------------------------------------
// Finding the binary, temp dirs, URIs
// ---------------------------------------------------------------------------------------------

/// The `tandem` binary: `$TANDEM_BIN`, else `target/<profile>/tandem` beside this test executable.
pub fn tandem_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANDEM_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "TANDEM_BIN={} is not a file", bin.display());
        return bin;
    }
    let exe = std::env::current_exe().expect("the test executable knows its own path");
    // target/debug/deps/e2e-xxxx -> target/debug/tandem
    let mut dir = exe
        .parent()
        .expect("the test executable is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("tandem{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the tandem binary is missing at {}: run `cargo build -p tandem` first (or set TANDEM_BIN)",
        bin.display()
    );
    bin
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "tandem-e2e-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        // Resolve symlinks (macOS /tmp) so that paths match what the server computes.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `rel` (creating its directories) and returns its path.
    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&path, contents).expect("write a fixture file");
        path
    }

    /// The `file:` URI of `rel` inside this directory.
    pub fn uri(&self, rel: &str) -> String {
        file_uri(&self.path.join(rel))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The `file:` URI of an absolute path (percent-encoding what a URI cannot hold).
pub fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Documents and positions
// ---------------------------------------------------------------------------------------------

/// A position encoding as LSP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    pub fn lsp_name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }

    fn units(self, s: &str) -> usize {
        match self {
            Encoding::Utf8 => s.len(),
            Encoding::Utf16 => s.encode_utf16().count(),
            Encoding::Utf32 => s.chars().count(),
        }
    }
}

/// Splits a fixture at its `$0` marker: the text without it, and the cursor's byte offset.
pub fn cursor(fixture: &str) -> (String, usize) {
    let at = fixture
        .find("$0")
        .expect("the fixture has a $0 cursor marker");
    (fixture.replacen("$0", "", 1), at)
}

/// The LSP position (`{line, character}`) of byte offset `at` in `text`; lines end at `\n`.
pub fn position(text: &str, at: usize, enc: Encoding) -> Value {
    let before = &text[..at];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": enc.units(&text[line_start..at]) })
}

/// The test's own model of an open document: the text, edited the way a client edits it, and
/// the LSP changes that describe each edit in the negotiated encoding.
#[derive(Debug, Clone)]
pub struct DocModel {
    pub text: String,
    pub enc: Encoding,
    pub version: i32,
}

impl DocModel {
    pub fn new(text: &str, enc: Encoding) -> Self {
        Self {
            text: text.to_owned(),
            enc,
            version: 1,
        }
    }

    /// Replaces bytes `start..end` with `new`; returns the LSP content change for it, computed
    /// on the text before the edit (as the protocol requires for each change in turn).
    pub fn edit(&mut self, start: usize, end: usize, new: &str) -> Value {
        let range = json!({
            "start": position(&self.text, start, self.enc),
            "end": position(&self.text, end, self.enc),
        });
        self.text.replace_range(start..end, new);
        json!({ "range": range, "text": new })
    }

    /// Replaces the first occurrence of `old` after `after` (a unique anchor) with `new`.
    pub fn replace(&mut self, anchor: &str, old: &str, new: &str) -> Value {
        let a = self
            .text
            .find(anchor)
            .unwrap_or_else(|| panic!("anchor {anchor:?} is in {:?}", self.text));
        let start = a + self.text[a..]
            .find(old)
            .unwrap_or_else(|| panic!("{old:?} follows {anchor:?}"));
        self.edit(start, start + old.len(), new)
    }

    /// Inserts `new` right after the first occurrence of `anchor`.
    pub fn insert_after(&mut self, anchor: &str, new: &str) -> Value {
        let a = self
            .text
            .find(anchor)
            .unwrap_or_else(|| panic!("anchor {anchor:?} is in {:?}", self.text));
        let at = a + anchor.len();
        self.edit(at, at, new)
    }

    /// The LSP position of byte offset `at`.
    pub fn position(&self, at: usize) -> Value {
        position(&self.text, at, self.enc)
    }

    /// The LSP position just after the first occurrence of `anchor`.
    pub fn position_after(&self, anchor: &str) -> (usize, Value) {
        let a = self
            .text
            .find(anchor)
            .unwrap_or_else(|| panic!("anchor {anchor:?} is in {:?}", self.text));
        let at = a + anchor.len();
        (at, self.position(at))
    }
}

/// The StarCoder fill-in-the-middle prompt the `openai` backend sends by default.
pub fn starcoder_prompt(prefix: &str, suffix: &str) -> String {
    format!("<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>")
}

/// `initializationOptions` for the `openai` backend at `url`, without debounce.
pub fn openai_options(url: &str) -> Value {
    json!({
        "backend": { "kind": "openai", "url": url, "model": "m", "timeoutMs": 20000 },
        "completion": { "debounceMs": 0 },
    })
}

// ---------------------------------------------------------------------------------------------
// The LSP client
// ---------------------------------------------------------------------------------------------

/// What the server has sent so far.
#[derive(Default)]
struct Inbox {
    /// Responses by request id (a list, to catch duplicates).
    responses: HashMap<i64, Vec<Value>>,
    /// Responses whose id is not one of ours (`null` for unparseable input).
    stray_responses: Vec<Value>,
    notifications: Vec<Value>,
    server_requests: Vec<Value>,
    /// The server's stdout closed.
    eof: bool,
    /// Frames that were not valid JSON-RPC.
    bad_frames: Vec<String>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    changed: Condvar,
    stderr: Mutex<String>,
    /// The result the client gives to server requests, by method (`null` when absent).
    answers: Mutex<HashMap<String, Value>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A request sent and not yet waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "wait for the response with TestServer::response"]
pub struct Pending {
    pub id: i64,
}

/// A running `tandem` language server.
pub struct TestServer {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    shared: Arc<Shared>,
    next_id: AtomicI64,
    sent: Mutex<Vec<(i64, String)>>,
    /// HOME and XDG_CONFIG_HOME of the server, so no developer config leaks in.
    _home: TempDir,
    exited: bool,
}

impl TestServer {
    /// Spawns `tandem` (no arguments: serve on stdio).
    pub fn spawn() -> Self {
        Self::spawn_with_args(&[])
    }

    pub fn spawn_with_args(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Like [`TestServer::spawn_with_args`], with these environment variables set for the
    /// server (an API key named by `backend.apiKeyEnv`, say).
    pub fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let home = TempDir::new("home");
        let mut cmd = Command::new(tandem_bin());
        cmd.args(args);
        isolate(&mut cmd, home.path());
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the tandem binary");
        let stdin = Arc::new(Mutex::new(Some(child.stdin.take().expect("piped stdin"))));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            changed: Condvar::new(),
            stderr: Mutex::new(String::new()),
            answers: Mutex::new(HashMap::new()),
        });
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stderr);
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    shared
                        .stderr
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&line);
                    line.clear();
                }
            });
        }
        {
            let shared = shared.clone();
            let stdin = stdin.clone();
            std::thread::spawn(move || read_messages(stdout, &shared, &stdin));
        }
        Self {
            child,
            stdin,
            shared,
            next_id: AtomicI64::new(1),
            sent: Mutex::new(Vec::new()),
            _home: home,
            exited: false,
        }
    }

    /// Spawns a server and initializes it with these `initializationOptions` (`Value::Null`: none),
    /// UTF-16 positions and no workspace folder, then sends `initialized`.
    pub fn start(options: Value) -> Self {
        Self::start_in(options, None)
    }

    /// Like [`TestServer::start`], with `root` as the only workspace folder.
    pub fn start_in(options: Value, root: Option<&Path>) -> Self {
        let server = Self::spawn();
        server.initialize(init_params(options, root, None));
        server
    }

    /// Sends `initialize` with `params`, then `initialized`; returns the result.
    pub fn initialize(&self, params: Value) -> Value {
        let result = self.request("initialize", params);
        self.notify("initialized", json!({}));
        result
    }

    /// The server's log so far.
    pub fn stderr(&self) -> String {
        self.shared.stderr()
    }

    /// Panics with `what` and the server's log.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        let log = self.stderr();
        let tail: String = {
            let chars: Vec<char> = log.chars().collect();
            chars[chars.len().saturating_sub(6000)..].iter().collect()
        };
        panic!("{what}\n--- tandem stderr (tail) ---\n{tail}\n--- end of stderr ---");
    }

    fn write_message(&self, message: &Value) {
        let body = serde_json::to_string(message).expect("serialize a message");
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    /// Writes bytes to the server's stdin as they are (for malformed input).
    pub fn send_raw(&self, bytes: &[u8]) {
        let mut guard = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stdin) = guard.as_mut() else {
            drop(guard);
            self.fail("the server's stdin was closed by the test");
        };
        if let Err(e) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            drop(guard);
            self.fail(&format!("cannot write to the server: {e}"));
        }
    }

    /// Closes the server's stdin (as an editor that crashed would) and waits for it to exit.
    #[track_caller]
    pub fn close_stdin_and_wait(mut self) -> ExitStatus {
        drop(self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take());
        self.wait_exit()
    }

    /// Sends `exit` without `shutdown` and waits for the process to end.
    #[track_caller]
    pub fn exit_without_shutdown(mut self) -> ExitStatus {
        self.notify("exit", Value::Null);
        self.wait_exit()
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.write_message(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request now; wait for it with [`TestServer::response`].
    pub fn request_async(&self, method: &str, params: Value) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, method.to_owned()));
        self.write_message(
            &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        );
        Pending { id }
    }

    /// Waits for the response to `pending` (the whole message, `result` or `error`).
    #[track_caller]
    pub fn response(&self, pending: Pending) -> Value {
        self.wait_for(
            |inbox| {
                inbox
                    .responses
                    .get(&pending.id)
                    .and_then(|r| r.first())
                    .cloned()
            },
            |inbox| {
                let why = if inbox.eof {
                    "the server closed its output"
                } else {
                    "timed out"
                };
                format!("no response to request {} ({why})", pending.id)
            },
        )
    }

    /// Waits (at most [`TIMEOUT`], or until the server's output ends) until `find` finds
    /// something in what the server sent; fails the test with `failure`'s message otherwise.
    #[track_caller]
    fn wait_for<T>(
        &self,
        mut find: impl FnMut(&Inbox) -> Option<T>,
        failure: impl FnOnce(&Inbox) -> String,
    ) -> T {
        let deadline = Instant::now() + TIMEOUT;
        let mut inbox = self.shared.lock();
        loop {
            if let Some(found) = find(&inbox) {
                return found;
            }
            let now = Instant::now();
            if inbox.eof || now >= deadline {
                let message = failure(&inbox);
                drop(inbox);
                self.fail(&message);
            }
            inbox = self
                .shared
                .changed
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether `pending` has been answered already (does not wait).
    pub fn is_answered(&self, pending: Pending) -> bool {
        self.shared.lock().responses.contains_key(&pending.id)
    }

    /// Sends a request and waits for its response message.
    #[track_caller]
    pub fn request_raw(&self, method: &str, params: Value) -> Value {
        let pending = self.request_async(method, params);
        self.response(pending)
    }

    /// Sends a request and returns its `result`; an error response fails the test.
    #[track_caller]
    pub fn request(&self, method: &str, params: Value) -> Value {
        let response = self.request_raw(method, params);
        self.result_of(&response, method)
    }

    /// The `result` of a response message; an error fails the test.
    #[track_caller]
    pub fn result_of(&self, response: &Value, what: &str) -> Value {
        if let Some(error) = response.get("error") {
            self.fail(&format!("{what} answered an error: {error}"));
        }
        response
            .get("result")
            .cloned()
            .unwrap_or_else(|| self.fail(&format!("{what}: no result in {response}")))
    }

    /// The params of every notification with this method received so far.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        self.shared
            .lock()
            .notifications
            .iter()
            .filter(|n| n["method"] == method)
            .map(|n| n["params"].clone())
            .collect()
    }

    /// The `window/showMessage` texts received so far.
    pub fn messages(&self) -> Vec<String> {
        self.notifications("window/showMessage")
            .iter()
            .filter_map(|p| p["message"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits for a notification with this method whose params satisfy `pred`.
    #[track_caller]
    pub fn wait_notification(&self, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(
            |inbox| {
                inbox
                    .notifications
                    .iter()
                    .find(|n| n["method"] == method && pred(&n["params"]))
                    .map(|n| n["params"].clone())
            },
            |inbox| {
                let seen: Vec<String> = inbox.notifications.iter().map(Value::to_string).collect();
                format!("no matching {method} notification; received: {seen:#?}")
            },
        )
    }

    /// Waits for a `window/showMessage` containing all of `needles`; returns its text.
    #[track_caller]
    pub fn wait_message(&self, needles: &[&str]) -> String {
        let params = self.wait_notification("window/showMessage", |p| {
            p["message"]
                .as_str()
                .is_some_and(|m| needles.iter().all(|n| m.contains(n)))
        });
        params["message"].as_str().unwrap_or_default().to_owned()
    }

    /// Answers every later server request with this `method` with `result` (instead of null):
    /// `workspace/applyEdit` with `{"applied": true}`, a `window/showMessageRequest` choice.
    pub fn answer(&self, method: &str, result: Value) {
        self.shared
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(method.to_owned(), result);
    }

    /// Waits for a request from the server with this method; returns it (the whole message).
    #[track_caller]
    pub fn wait_server_request(&self, method: &str) -> Value {
        self.wait_for(
            |inbox| {
                inbox
                    .server_requests
                    .iter()
                    .find(|r| r["method"] == method)
                    .cloned()
            },
            |_| format!("no {method} request from the server"),
        )
    }

    /// Requests the server sent to the client (each answered with a null result unless
    /// [`TestServer::answer`] set one).
    pub fn server_requests(&self) -> Vec<Value> {
        self.shared.lock().server_requests.clone()
    }

    /// Responses whose id was not one of ours (e.g. `null` after unparseable input).
    pub fn stray_responses(&self) -> Vec<Value> {
        self.shared.lock().stray_responses.clone()
    }

    // --- LSP conveniences -------------------------------------------------------------------

    pub fn open(&self, uri: &str, language: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
        );
    }

    pub fn change(&self, uri: &str, version: i32, changes: Vec<Value>) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": changes }),
        );
    }

    pub fn close(&self, uri: &str) {
        self.notify(
            "textDocument/didClose",
            json!({ "textDocument": { "uri": uri } }),
        );
    }

    /// Sends `workspace/didChangeConfiguration` with `settings.tandem = tandem`.
    pub fn configure(&self, tandem: Value) {
        self.notify(
            "workspace/didChangeConfiguration",
            json!({ "settings": { "tandem": tandem } }),
        );
    }

    /// Params of `textDocument/inlineCompletion` (trigger kind 1 = invoked, 2 = automatic).
    pub fn inline_params(uri: &str, position: Value, trigger_kind: u8) -> Value {
        json!({
            "textDocument": { "uri": uri },
            "position": position,
            "context": { "triggerKind": trigger_kind },
        })
    }

    /// Sends an inline completion request now.
    pub fn inline_async(&self, uri: &str, position: Value, trigger_kind: u8) -> Pending {
        self.request_async(
            "textDocument/inlineCompletion",
            Self::inline_params(uri, position, trigger_kind),
        )
    }

    /// An inline completion; returns its items (failing the test on an error or a non-list).
    #[track_caller]
    pub fn inline(&self, uri: &str, position: Value, trigger_kind: u8) -> Vec<Value> {
        let pending = self.inline_async(uri, position, trigger_kind);
        self.inline_items(pending)
    }

    /// Waits for an inline completion and returns its items.
    #[track_caller]
    pub fn inline_items(&self, pending: Pending) -> Vec<Value> {
        let response = self.response(pending);
        let result = self.result_of(&response, "textDocument/inlineCompletion");
        match result.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None => self.fail(&format!(
                "inlineCompletion answered {result}, not a list with items"
            )),
        }
    }

    /// The insert texts of an inline completion's items.
    #[track_caller]
    pub fn inline_texts(&self, uri: &str, position: Value, trigger_kind: u8) -> Vec<String> {
        self.inline(uri, position, trigger_kind)
            .iter()
            .map(insert_text)
            .collect()
    }

    /// Sends `$/cancelRequest` for `pending`.
    pub fn cancel(&self, pending: Pending) {
        self.notify("$/cancelRequest", json!({ "id": pending.id }));
    }

    /// `shutdown`, `exit`; asserts the process exits with status 0 and that every request sent
    /// got exactly one response. Returns everything the server sent besides responses.
    #[track_caller]
    pub fn shutdown_and_exit(mut self) -> Transcript {
        let result = self.request_raw("shutdown", Value::Null);
        if result.get("error").is_some() {
            self.fail(&format!("shutdown answered an error: {result}"));
        }
        self.notify("exit", Value::Null);
        let status = self.wait_exit();
        if !status.success() {
            self.fail(&format!(
                "the server exited with {status} after shutdown and exit"
            ));
        }
        self.wait_eof();
        let inbox = self.shared.lock();
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut problems = Vec::new();
        for (id, method) in &sent {
            match inbox.responses.get(id).map_or(0, Vec::len) {
                1 => {}
                n => problems.push(format!("request {id} ({method}) got {n} responses")),
            }
        }
        for id in inbox.responses.keys() {
            if !sent.iter().any(|(s, _)| s == id) {
                problems.push(format!("a response to request {id}, which was never sent"));
            }
        }
        let notifications = inbox.notifications.clone();
        drop(inbox);
        if !problems.is_empty() {
            self.fail(&problems.join("\n"));
        }
        Transcript {
            notifications,
            stderr: self.stderr(),
        }
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = true;
                    return status;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => self.fail("the server did not exit after `exit`"),
                Err(e) => self.fail(&format!("cannot wait for the server: {e}")),
            }
        }
    }

    fn wait_eof(&self) {
        let deadline = Instant::now() + TIMEOUT;
        let mut inbox = self.shared.lock();
        while !inbox.eof {
            let now = Instant::now();
            if now >= deadline {
                drop(inbox);
                self.fail("the server's stdout stayed open after it exited");
            }
            inbox = self
                .shared
                .changed
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: show what the server said.
            eprintln!(
                "--- tandem stderr ---\n{}\n--- end of tandem stderr ---",
                self.stderr()
            );
        }
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a server sent, complete once it has exited.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub notifications: Vec<Value>,
    pub stderr: String,
}

impl Transcript {
    /// The `window/showMessage` texts, in order.
    pub fn messages(&self) -> Vec<String> {
        self.notifications
            .iter()
            .filter(|n| n["method"] == "window/showMessage")
            .filter_map(|n| n["params"]["message"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Runs a child with a private HOME / XDG_CONFIG_HOME and without proxies (only loopback is
/// reachable, and the model servers are on it).
pub fn isolate(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("TANDEM_CACHE_DIR");
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
    cmd.env("NO_COLOR", "1");
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    if std::env::var_os("TANDEM_LOG").is_none() {
        cmd.env("TANDEM_LOG", "info,tandem_server=debug,tandem_models=debug");
    }
}

/// `initialize` params: these options, `root` as the workspace folder, and these position
/// encodings offered (`None`: the capability is absent).
pub fn init_params(options: Value, root: Option<&Path>, encodings: Option<&[Encoding]>) -> Value {
    let mut general = json!({});
    if let Some(encodings) = encodings {
        general["positionEncodings"] =
            json!(encodings.iter().map(|e| e.lsp_name()).collect::<Vec<_>>());
    }
    let mut params = json!({
        "processId": std::process::id(),
        "clientInfo": { "name": "tandem-e2e" },
        "capabilities": {
            "general": general,
            "window": { "showMessage": {} },
            "textDocument": { "inlineCompletion": {}, "completion": {} },
        },
        "initializationOptions": options,
    });
    if let Some(root) = root {
        let uri = file_uri(root);
        params["rootUri"] = json!(uri);
        params["workspaceFolders"] = json!([{ "uri": uri, "name": "root" }]);
    }
    params
}

/// The `insertText` of an inline completion item (a string, or a snippet's value).
pub fn insert_text(item: &Value) -> String {
    match &item["insertText"] {
        Value::String(s) => s.clone(),
        other => other["value"].as_str().unwrap_or_default().to_owned(),
    }
}

fn read_messages(stdout: impl Read, shared: &Shared, stdin: &Mutex<Option<ChildStdin>>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length: Option<usize> = None;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return finish(shared),
                Ok(_) => {}
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().ok();
            }
        }
        let Some(length) = length else {
            shared
                .lock()
                .bad_frames
                .push("a header without Content-Length".to_owned());
            continue;
        };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return finish(shared);
        }
        let message: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                shared
                    .lock()
                    .bad_frames
                    .push(String::from_utf8_lossy(&body).into_owned());
                continue;
            }
        };
        let has_method = message.get("method").is_some();
        let id = message.get("id").cloned();
        let mut inbox = shared.lock();
        match (has_method, id) {
            (true, Some(id)) => {
                // A request from the server: answer it (null unless the test set an answer for
                // its method) so it never waits on us.
                inbox.server_requests.push(message.clone());
                let result = message["method"]
                    .as_str()
                    .and_then(|m| {
                        shared
                            .answers
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(m)
                            .cloned()
                    })
                    .unwrap_or(Value::Null);
                let reply = json!({ "jsonrpc": "2.0", "id": id, "result": result });
                let body = reply.to_string();
                let mut stdin = stdin.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(stdin) = stdin.as_mut() {
                    let framed = format!("Content-Length: {}\r\n\r\n{body}", body.len());
                    let _ = stdin
                        .write_all(framed.as_bytes())
                        .and_then(|()| stdin.flush());
                }
            }
            (true, None) => inbox.notifications.push(message),
            (false, Some(Value::Number(n))) if n.as_i64().is_some() => {
                let id = n.as_i64().unwrap_or_default();
                inbox.responses.entry(id).or_default().push(message);
            }
            (false, _) => inbox.stray_responses.push(message),
        }
        drop(inbox);
        shared.changed.notify_all();
    }
}

fn finish(shared: &Shared) {
    shared.lock().eof = true;
    shared.changed.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Running the CLI
// ---------------------------------------------------------------------------------------------

/// The result of running `tandem` with arguments.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tandem ARGS` to completion (isolated like the server), with no standard input.
pub fn run_cli(args: &[&str]) -> CliOutput {
    run_cli_with(args, |_| {})
}

/// [`run_cli`], with `adjust` applied to the command last (to change its environment).
pub fn run_cli_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> CliOutput {
    let home = TempDir::new("cli-home");
    let mut cmd = Command::new(tandem_bin());
    cmd.args(args).stdin(Stdio::null());
    isolate(&mut cmd, home.path());
    cmd.env("TANDEM_LOG", "warn");
    adjust(&mut cmd);
    let out = cmd.output().expect("run the tandem binary");
    CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The model server
// ---------------------------------------------------------------------------------------------

/// How the model server answers a request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// `200` with Server-Sent Events: one event per piece of text, then `data: [DONE]`.
    Stream(Vec<String>),
    /// Like `Stream`, pausing `delay` between events and, if `split`, writing each event in two
    /// pieces (cut inside a multi-byte character when there is one) to exercise the decoder.
    StreamWith {
        chunks: Vec<String>,
        delay: Duration,
        split: bool,
    },
    /// Reads the request and never answers; records when the client closes the connection.
    Hang,
    /// Waits until [`ModelServer::release`] is called, then streams like `Stream`.
    Held(Vec<String>),
    /// Answers this HTTP status with this body.
    Status(u16, String),
    /// Answers bytes that are not HTTP, then closes.
    Garbage,
    /// `200` with this content type, then each piece as its own chunk (pausing `delay` between
    /// pieces), then `end`. For engines whose streams are not OpenAI's SSE (NDJSON, other event
    /// shapes), keep-alive comments, malformed lines, and disconnects mid-stream.
    Raw {
        content_type: String,
        pieces: Vec<Vec<u8>>,
        delay: Duration,
        end: RawEnd,
    },
}

/// How a [`Behavior::Raw`] answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEnd {
    /// The chunked body ends properly.
    Finish,
    /// The connection is closed mid-body, with no terminating chunk.
    Disconnect,
    /// The connection stays open with nothing more sent; records when the client closes it.
    Hang,
}

impl Behavior {
    /// A [`Behavior::Raw`] answer of text pieces.
    pub fn raw(content_type: &str, pieces: &[&str], end: RawEnd) -> Self {
        Behavior::Raw {
            content_type: content_type.to_owned(),
            pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(),
            delay: Duration::ZERO,
            end,
        }
    }
}

impl Behavior {
    /// A stream of these pieces.
    pub fn stream(chunks: &[&str]) -> Self {
        Behavior::Stream(chunks.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// A request the model server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
    pub raw_body: String,
    /// The client closed the connection while the server was hanging on it.
    pub closed: bool,
}

impl Recorded {
    /// The `prompt` field of the body.
    pub fn prompt(&self) -> &str {
        self.body["prompt"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Router = dyn Fn(usize, &Recorded) -> Behavior + Send + Sync;

struct ModelState {
    requests: Mutex<Vec<Recorded>>,
    released: tokio::sync::watch::Sender<bool>,
    changed: Condvar,
    router: Box<Router>,
}

impl ModelState {
    fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A loopback HTTP/1.1 server standing in for an OpenAI-compatible model server.
pub struct ModelServer {
    addr: SocketAddr,
    state: Arc<ModelState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ModelServer {
    /// Answers every request the same way.
    pub fn start(behavior: Behavior) -> Self {
        Self::route(move |_, _| behavior.clone())
    }

    /// Answers each request as `router(index, request)` says (`index` counts from 0).
    pub fn route(router: impl Fn(usize, &Recorded) -> Behavior + Send + Sync + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("start the model server's runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the model server on loopback");
        let addr = listener.local_addr().expect("the listener has an address");
        let state = Arc::new(ModelState {
            requests: Mutex::new(Vec::new()),
            released: tokio::sync::watch::channel(false).0,
            changed: Condvar::new(),
            router: Box::new(router),
        });
        let accept_state = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(socket, state).await;
                });
            }
        });
        Self {
            addr,
            state,
            runtime: Some(runtime),
        }
    }

    /// The base URL to configure: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Lets every `Held` request (waiting or future) go on.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.lock().len()
    }

    /// Waits until at least `n` requests have arrived; returns them all.
    #[track_caller]
    pub fn wait_requests(&self, n: usize) -> Vec<Recorded> {
        self.wait_until(&format!("{n} requests"), |r| r.len() >= n)
    }

    /// Waits until the connection of request `index` (a hanging one) has been closed by the client.
    #[track_caller]
    pub fn wait_closed(&self, index: usize) -> Recorded {
        let all = self.wait_until(
            &format!("the client to close the connection of request {index}"),
            |r| r.get(index).is_some_and(|r| r.closed),
        );
        all[index].clone()
    }

    #[track_caller]
    fn wait_until(&self, what: &str, done: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = Instant::now() + TIMEOUT;
        let mut requests = self.state.lock();
        loop {
            if done(&requests) {
                return requests.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let seen = requests.len();
                drop(requests);
                panic!("the model server waited in vain for {what} ({seen} requests received)");
            }
            requests = self
                .state
                .changed
                .wait_timeout(requests, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve_connection(
    mut socket: tokio::net::TcpStream,
    state: Arc<ModelState>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket.set_nodelay(true)?;
    // The head: up to the blank line.
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // closed without a request (or between requests)
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let raw_body = String::from_utf8_lossy(&body).into_owned();
    let recorded = Recorded {
        method,
        path,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
        closed: false,
    };
    let (index, behavior) = {
        let mut requests = state.lock();
        let index = requests.len();
        let behavior = (state.router)(index, &recorded);
        requests.push(recorded);
        (index, behavior)
    };
    state.changed.notify_all();

    match behavior {
        Behavior::Hang => {
            let mut sink = [0u8; 1024];
            loop {
                match socket.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if let Some(r) = state.lock().get_mut(index) {
                r.closed = true;
            }
            state.changed.notify_all();
        }
        Behavior::Status(code, text) => {
            let response = format!(
                "HTTP/1.1 {code} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            socket.write_all(response.as_bytes()).await?;
            socket.shutdown().await?;
        }
        Behavior::Garbage => {
            socket
                .write_all(b"this is not HTTP at all\r\n\r\n\x00\xff")
                .await?;
            socket.shutdown().await?;
        }
        Behavior::Held(chunks) => {
            let mut released = state.released.subscribe();
            let _ = released.wait_for(|r| *r).await;
            stream_events(&mut socket, chunks, Duration::ZERO, false).await?;
        }
        Behavior::Stream(chunks) => {
            stream_events(&mut socket, chunks, Duration::ZERO, false).await?
        }
        Behavior::StreamWith {
            chunks,
            delay,
            split,
        } => stream_events(&mut socket, chunks, delay, split).await?,
        Behavior::Raw {
            content_type,
            pieces,
            delay,
            end,
        } => {
            use tokio::io::AsyncWriteExt;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            socket.write_all(head.as_bytes()).await?;
            for piece in pieces {
                if piece.is_empty() {
                    continue;
                }
                socket
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                socket.write_all(&piece).await?;
                socket.write_all(b"\r\n").await?;
                socket.flush().await?;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            match end {
                RawEnd::Finish => {
                    socket.write_all(b"0\r\n\r\n").await?;
                    socket.flush().await?;
                    socket.shutdown().await?;
                }
                RawEnd::Disconnect => socket.shutdown().await?,
                RawEnd::Hang => {
                    let mut sink = [0u8; 1024];
                    loop {
                        match socket.read(&mut sink).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    if let Some(r) = state.lock().get_mut(index) {
                        r.closed = true;
                    }
                    state.changed.notify_all();
                }
            }
        }
    }
    Ok(())
}

/// The SSE event for one piece of text.
pub fn sse_event(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({ "choices": [{ "text": text, "index": 0, "finish_reason": null }] })
    )
}

async fn stream_events(
    socket: &mut tokio::net::TcpStream,
    chunks: Vec<String>,
    delay: Duration,
    split: bool,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .await?;
    let mut events: Vec<Vec<u8>> = chunks.iter().map(|c| sse_event(c).into_bytes()).collect();
    events.push(b"data: [DONE]\n\n".to_vec());
    for event in events {
        let pieces: Vec<&[u8]> = if split {
            // Cut inside a multi-byte character if there is one, else in the middle.
            let cut = event
                .iter()
                .position(|b| *b >= 0x80)
                .map_or(event.len() / 2, |i| i + 1);
            vec![&event[..cut], &event[cut..]]
        } else {
            vec![&event[..]]
        };
        for piece in pieces {
            if piece.is_empty() {
                continue;
            }
            socket
                .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .await?;
            socket.write_all(piece).await?;
            socket.write_all(b"\r\n").await?;
            socket.flush().await?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
    }
    socket.write_all(b"0\r\n\r\n").await?;
    socket.flush().await?;
    socket.shutdown().await?;
    Ok(())
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener
        .local_addr()
        .expect("the listener has an address")
        .port()
}

/// The scenarios every model backend goes through (HTTP errors, a first token that never
/// comes, a disconnect mid-stream, cancellation, a stream split anywhere, a bad stream,
/// `tandem doctor`), driven by a small description of the backend's kind.
pub mod backend_scenarios {
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::{
        Behavior, CliOutput, Encoding, ModelServer, RawEnd, Recorded, TIMEOUT, TempDir, TestServer,
        cursor, init_params, insert_text, position, run_cli,
    };

    /// What the scenarios need to know about one backend kind.
    pub struct Kind {
        /// `backend.kind`, as the server names it in its messages.
        pub name: &'static str,
        /// Variables put in the server's environment (an API key).
        pub env: &'static [(&'static str, &'static str)],
        /// The initialization options for a backend at `url` with `timeoutMs`.
        pub options: fn(url: &str, timeout_ms: u64) -> Value,
        /// The `backend.url` for a fake server.
        pub url: fn(&ModelServer) -> String,
        /// The path a completion request goes to.
        pub path: &'static str,
        /// The streaming answer's content type.
        pub content_type: &'static str,
        /// The document (with `$0` at the cursor), its file name and language.
        pub fixture: &'static str,
        pub file: &'static str,
        pub language: &'static str,
        /// What the answer starts with before any text (Anthropic's `message_start`), or "".
        pub preamble: fn() -> String,
        /// Something the answer carries that is no text (a keep-alive), or "".
        pub keep_alive: &'static str,
        /// One event (or line) carrying `text`.
        pub token: fn(text: &str) -> String,
        /// A whole answer that completes fine, and the completion it yields.
        pub good_stream: fn() -> String,
        pub good_text: &'static str,
        /// The text streamed before the model stalls when the request is cancelled (`None`:
        /// the headers only; `Some` needs a backend that logs when its answer starts).
        pub stall_text: Option<&'static str>,
    }

    impl Kind {
        /// A raw streaming answer of this kind's content type.
        pub fn raw(&self, pieces: Vec<Vec<u8>>, delay_ms: u64, end: RawEnd) -> Behavior {
            Behavior::Raw {
                content_type: self.content_type.to_owned(),
                pieces,
                delay: Duration::from_millis(delay_ms),
                end,
            }
        }

        /// A server with the kind's environment, options for `model` and `dir` as workspace.
        pub fn start(&self, model: &ModelServer, timeout_ms: u64, dir: &TempDir) -> TestServer {
            self.start_with(model, timeout_ms, dir, |_| {})
        }

        /// Like [`Kind::start`], with the options changed by `edit` first.
        pub fn start_with(
            &self,
            model: &ModelServer,
            timeout_ms: u64,
            dir: &TempDir,
            edit: impl FnOnce(&mut Value),
        ) -> TestServer {
            let mut options = (self.options)(&(self.url)(model), timeout_ms);
            edit(&mut options);
            let server = TestServer::spawn_with_env(&[], self.env);
            server.initialize(init_params(options, Some(dir.path()), None));
            server
        }

        /// The options for a backend at `model` (timeout 20 s) with `over` merged into
        /// `backend`.
        pub fn options_with(&self, model: &ModelServer, over: Value) -> Value {
            let mut options = (self.options)(&(self.url)(model), 20_000);
            if let (Some(base), Value::Object(over)) = (options["backend"].as_object_mut(), over) {
                base.extend(over);
            }
            options
        }

        /// Opens the fixture; returns its URI, text, the cursor's byte offset and position.
        pub fn open(&self, server: &TestServer, dir: &TempDir) -> (String, String, usize, Value) {
            let (text, at) = cursor(self.fixture);
            let uri = dir.uri(self.file);
            server.open(&uri, self.language, &text);
            let pos = position(&text, at, Encoding::Utf16);
            (uri, text, at, pos)
        }

        /// Opens the fixture and asks for a completion at the cursor.
        pub fn complete(&self, server: &TestServer, dir: &TempDir) -> (String, usize, Vec<Value>) {
            let (uri, text, at, pos) = self.open(server, dir);
            let items = server.inline(&uri, pos, 1);
            (text, at, items)
        }
    }

    /// A Python function whose body is missing, for the chat-style backends.
    pub const PYTHON_FIXTURE: &str = "def add(a, b):\n    return $0\n\n\nprint(add(1, 2))\n";
    /// The cursor at the start of an empty line inside a block: a multi-line completion.
    pub const BLOCK_FIXTURE: &str = "fn main() {\n    let x = 1;\n    $0\n}\n";

    /// The fake's host root (no `/v1`), as most kinds take `backend.url`.
    pub fn root_url(model: &ModelServer) -> String {
        format!("http://127.0.0.1:{}", model.port())
    }

    /// `text` cut every `n` bytes (inside JSON, inside multi-byte characters, anywhere).
    pub fn cut(text: &str, n: usize) -> Vec<Vec<u8>> {
        text.as_bytes().chunks(n).map(<[u8]>::to_vec).collect()
    }

    /// Waits until the server's log holds `needle` (the backend logs when its answer starts,
    /// so a cancel cannot overtake the fake server's writes).
    #[track_caller]
    pub fn wait_log(server: &TestServer, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !server.stderr().contains(needle) {
            if Instant::now() >= deadline {
                server.fail(&format!("the log never said {needle:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `stream` cut in pieces of each of `sizes` bytes yields `expected`; `check` is given the
    /// one request made, the document's text and the cursor's offset.
    #[track_caller]
    pub fn check_split_stream(
        kind: &Kind,
        stream: &str,
        sizes: &[usize],
        delay_ms: u64,
        expected: &str,
        check: impl Fn(&Recorded, &str, usize),
    ) {
        for &size in sizes {
            let model = ModelServer::start(kind.raw(cut(stream, size), delay_ms, RawEnd::Finish));
            let dir = TempDir::new(&format!("{}-stream", kind.name));
            let server = kind.start(&model, 20_000, &dir);
            let (text, at, items) = kind.complete(&server, &dir);
            let texts: Vec<String> = items.iter().map(insert_text).collect();
            assert_eq!(
                texts,
                vec![expected.to_owned()],
                "`{}`, pieces of {size} bytes: the post-processed completion",
                kind.name
            );
            let requests = model.wait_requests(1);
            assert_eq!(requests.len(), 1, "one request");
            check(&requests[0], &text, at);
            server.shutdown_and_exit();
        }
    }

    /// Each `(status, body, needles)`: an empty list, and a message with `HTTP <status>`, the
    /// needles and the backend's name and URL; the request went to the kind's path.
    #[track_caller]
    pub fn check_http_errors(kind: &Kind, answers: &[(u16, &str, &[&str])]) {
        for &(status, body, needles) in answers {
            let model = ModelServer::start(Behavior::Status(status, body.to_owned()));
            let dir = TempDir::new(&format!("{}-status", kind.name));
            let server = kind.start(&model, 20_000, &dir);
            let (_, _, items) = kind.complete(&server, &dir);
            assert!(items.is_empty(), "HTTP {status}: an empty list: {items:?}");
            let head = format!("HTTP {status}");
            let mut all = vec![head.as_str()];
            all.extend_from_slice(needles);
            let message = server.wait_message(&all);
            let named = format!("`{}` at {}", kind.name, (kind.url)(&model));
            assert!(
                message.contains(&named),
                "the message names the backend ({named}): {message}"
            );
            assert_eq!(model.requests()[0].path, kind.path, "HTTP {status}");
            server.shutdown_and_exit();
        }
    }

    /// An answer `body` (cut every `size` bytes) that goes wrong: an empty list, and a message
    /// with `needles` that names the backend.
    #[track_caller]
    pub fn check_bad_stream(kind: &Kind, body: &str, size: usize, needles: &[&str]) {
        let model = ModelServer::start(kind.raw(cut(body, size), 0, RawEnd::Finish));
        let dir = TempDir::new(&format!("{}-bad-stream", kind.name));
        let server = kind.start(&model, 20_000, &dir);
        let (_, _, items) = kind.complete(&server, &dir);
        assert!(items.is_empty(), "{needles:?}: an empty list: {items:?}");
        let message = server.wait_message(needles);
        let name = format!("`{}`", kind.name);
        assert!(message.contains(&name), "names the backend: {message}");
        server.shutdown_and_exit();
    }

    /// Each `(bad, needle)`: a stream that goes wrong at `bad` (an error event, a malformed
    /// one) between a token and a whole good answer is reported with `needle`.
    #[track_caller]
    pub fn check_bad_events(kind: &Kind, bad: &[(&str, &str)]) {
        for &(bad, needle) in bad {
            let stream = format!(
                "{}{}{bad}{}",
                (kind.preamble)(),
                (kind.token)("let"),
                (kind.good_stream)()
            );
            check_bad_stream(kind, &stream, 11, &[needle]);
        }
    }

    /// The keys of a JSON object, sorted.
    #[track_caller]
    pub fn sorted_keys(object: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = object
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// An answer that begins (headers, a keep-alive) and then never brings a token: the
    /// request times out with a message and the connection is closed.
    #[track_caller]
    pub fn check_first_token_timeout(kind: &Kind) {
        let body = format!("{}{}", (kind.preamble)(), kind.keep_alive);
        let model = ModelServer::start(kind.raw(cut(&body, 1000), 0, RawEnd::Hang));
        let dir = TempDir::new(&format!("{}-timeout", kind.name));
        let server = kind.start(&model, 400, &dir);
        let (_, _, items) = kind.complete(&server, &dir);
        assert!(items.is_empty(), "{items:?}");
        server.wait_message(&["did not answer within 400 ms"]);
        assert!(model.wait_closed(0).closed, "the connection was dropped");
        server.shutdown_and_exit();
    }

    /// A connection cut in the middle of an event: an empty list and a message naming the
    /// backend; the next request works.
    #[track_caller]
    pub fn check_disconnect(kind: &Kind) {
        let first = format!(
            "{}{}{}",
            (kind.preamble)(),
            (kind.token)("a + "),
            (kind.token)("b")
        );
        let first = first[..first.len() - 5].to_owned();
        let good = (kind.good_stream)();
        let (first_answer, next_answer) = (
            kind.raw(cut(&first, 9), 0, RawEnd::Disconnect),
            kind.raw(cut(&good, 11), 0, RawEnd::Finish),
        );
        let answers = std::sync::Mutex::new(vec![next_answer, first_answer]);
        let model = ModelServer::route(move |_, _| {
            answers
                .lock()
                .expect("the answers")
                .pop()
                .expect("two requests at most")
        });
        let dir = TempDir::new(&format!("{}-disconnect", kind.name));
        let server = kind.start(&model, 20_000, &dir);
        let (uri, _, _, pos) = kind.open(&server, &dir);
        let items = server.inline(&uri, pos.clone(), 1);
        assert!(items.is_empty(), "a cut stream shows nothing: {items:?}");
        let message = server.wait_message(&[&format!("`{}`", kind.name)]);
        assert!(message.contains(&(kind.url)(&model)), "{message}");
        let texts = server.inline_texts(&uri, pos, 1);
        assert_eq!(
            texts,
            vec![kind.good_text.to_owned()],
            "the next request works"
        );
        server.shutdown_and_exit();
    }

    /// `$/cancelRequest` while the answer streams (then stalls): the request ends with
    /// `RequestCancelled` and the backend connection is closed.
    #[track_caller]
    pub fn check_cancel(kind: &Kind) {
        // All pieces go out at once (so the cancel cannot cut them), then the model stalls.
        let mut body = (kind.preamble)();
        if let Some(text) = kind.stall_text {
            body.push_str(&(kind.token)(text));
        }
        let model = ModelServer::start(kind.raw(cut(&body, 64), 0, RawEnd::Hang));
        let dir = TempDir::new(&format!("{}-cancel", kind.name));
        let server = kind.start(&model, 20_000, &dir);
        let (uri, _, _, pos) = kind.open(&server, &dir);
        let pending = server.inline_async(&uri, pos, 1);
        model.wait_requests(1);
        if kind.stall_text.is_some() {
            // Text is written: the cancel must not overtake the fake server's writes.
            wait_log(&server, &format!("`{}` at http://127.0.0.1:", kind.name));
            wait_log(&server, "answers; streaming");
        }
        server.cancel(pending);
        let response = server.response(pending);
        assert_eq!(response["error"]["code"], -32800, "{response}");
        assert!(model.wait_closed(0).closed, "the connection was dropped");
        server.shutdown_and_exit();
    }

    /// Thirty lines of a block (in the [`BLOCK_FIXTURE`]), then its closing brace and the next
    /// item in the last piece; then the stream would go on (it hangs): only stopping early
    /// answers, with the block cut at its end, and the connection is closed.
    #[track_caller]
    pub fn check_block_ends_early(kind: &Kind) {
        let mut pieces: Vec<Vec<u8>> = vec![(kind.token)("step(0);\n").into_bytes()];
        for i in 1..30 {
            pieces.push((kind.token)(&format!("    step({i});\n")).into_bytes());
        }
        pieces.push(
            [(kind.token)("}\n"), (kind.token)("\nfn next() {\n")]
                .concat()
                .into_bytes(),
        );
        let model = ModelServer::start(kind.raw(pieces, 2, RawEnd::Hang));
        let dir = TempDir::new(&format!("{}-early", kind.name));
        let server = kind.start(&model, 20_000, &dir);
        let (uri, _, _, pos) = kind.open(&server, &dir);
        let texts = server.inline_texts(&uri, pos, 1);
        let expected: Vec<String> = (0..30)
            .map(|i| format!("{}step({i});", if i == 0 { "" } else { "    " }))
            .collect();
        assert_eq!(
            texts,
            vec![expected.join("\n")],
            "the block, cut at its end"
        );
        assert!(
            model.wait_closed(0).closed,
            "the connection was closed though the stream had not ended"
        );
        server.shutdown_and_exit();
    }

    /// `tandem doctor` with a config file for `kind` at the fake, plus `extra` TOML lines.
    pub fn doctor(kind: &Kind, model: &ModelServer, extra: &str) -> CliOutput {
        let dir = TempDir::new("doctor");
        let config = dir.write(
            "config.toml",
            &format!(
                "[backend]\nkind = \"{}\"\nurl = \"{}\"\ntimeoutMs = 5000\n{extra}",
                kind.name,
                (kind.url)(model)
            ),
        );
        let root = dir.path().display().to_string();
        run_cli(&[
            "doctor",
            "--config",
            &config.display().to_string(),
            "--root",
            &root,
        ])
    }
}

/// The scenarios that take nothing but the kind, as `#[test]`s: a first token that never
/// comes, a disconnect mid-stream, and cancellation.
#[macro_export]
macro_rules! backend_scenario_tests {
    ($kind:expr) => {
        #[test]
        fn a_first_token_that_never_comes_times_out_and_closes_the_connection() {
            $crate::backend_scenarios::check_first_token_timeout(&$kind);
        }

        #[test]
        fn a_disconnect_mid_stream_fails_the_request_and_the_next_one_works() {
            $crate::backend_scenarios::check_disconnect(&$kind);
        }

        #[test]
        fn cancel_request_closes_the_backend_connection() {
            $crate::backend_scenarios::check_cancel(&$kind);
        }
    };
}
