//! The definitions context source through the real binary: the workspace is indexed (with
//! `$/progress`), the definition of a type used at the cursor, from another file, reaches the
//! prompt the model server receives; files the client reports through
//! `workspace/didChangeWatchedFiles` are indexed; a restart takes unchanged files from the
//! on-disk cache.

use serde_json::{Value, json};
use tandem_e2e::{Behavior, ModelServer, TempDir, TestServer, init_params, openai_options};

const STORE: &str = "/// A key-value store.
pub struct Store {
    items: Vec<(String, u64)>,
}

impl Store {
    pub fn insert(&mut self, key: &str, value: u64) -> Option<u64> {
        self.items.push((key.to_owned(), value));
        None
    }
}
";

const MAIN: &str = "mod store;

use crate::store::Store;

fn main() {
    let mut store = Store { items: Vec::new() };
    store.
}
";

/// `initialize` params for a client that supports `$/progress` and dynamic file watchers.
fn params(model: &ModelServer, root: &std::path::Path) -> Value {
    let mut params = init_params(openai_options(&model.url()), Some(root), None);
    params["capabilities"]["window"]["workDoneProgress"] = json!(true);
    params["capabilities"]["workspace"] =
        json!({ "didChangeWatchedFiles": { "dynamicRegistration": true } });
    params
}

/// Starts a server on `root` with its symbol cache in `cache`, and waits until the folder is
/// indexed; returns it with the `end` message of the indexing progress.
fn start(
    model: &ModelServer,
    root: &std::path::Path,
    cache: &std::path::Path,
) -> (TestServer, String) {
    let cache = cache.display().to_string();
    let server = TestServer::spawn_with_env(&[], &[("TANDEM_CACHE_DIR", &cache)]);
    server.initialize(params(model, root));
    let end = server.wait_notification("$/progress", |p| p["value"]["kind"] == "end");
    let message = end["value"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (server, message)
}

#[test]
fn a_definition_from_another_file_reaches_the_prompt() {
    let model = ModelServer::start(Behavior::stream(&["insert(\"b\", 2);"]));
    let dir = TempDir::new("definitions");
    let cache = TempDir::new("definitions-cache");
    dir.write("src/store.rs", STORE);
    dir.write("src/main.rs", MAIN);
    let (server, indexed) = start(&model, dir.path(), cache.path());
    assert!(
        indexed.starts_with("2 files, 4 symbols (0 from cache)"),
        "{indexed}"
    );
    let begin = server.wait_notification("$/progress", |p| p["value"]["kind"] == "begin");
    assert_eq!(begin["value"]["title"], "Tandem: indexing");
    let requests = server.server_requests();
    let methods: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert!(
        methods.contains(&"window/workDoneProgress/create"),
        "{methods:?}"
    );

    let main = dir.uri("src/main.rs");
    server.open(&main, "rust", MAIN);
    let _ = server.inline(&main, json!({ "line": 6, "character": 10 }), 1);
    let prompt = model.wait_requests(1)[0].prompt().to_owned();
    assert!(
        prompt.contains("// Path: src/store.rs\n// pub struct Store {\n//     items: Vec<(String, u64)>,\n// }\n"),
        "the struct from store.rs is in the prompt: {prompt}"
    );
    assert!(
        prompt.contains("// pub fn insert(&mut self, key: &str, value: u64) -> Option<u64>"),
        "{prompt}"
    );

    // The client's watchers: a new file, reported through didChangeWatchedFiles, is indexed.
    let registered = server.server_requests().into_iter().any(|r| {
        r["method"] == "client/registerCapability"
            && r["params"]["registrations"][0]["method"] == "workspace/didChangeWatchedFiles"
    });
    assert!(registered, "{:#?}", server.server_requests());
    dir.write(
        "src/report.rs",
        "pub fn summarize_totals(values: &[u64]) -> u64 {\n    values.iter().sum()\n}\n",
    );
    server.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": dir.uri("src/report.rs"), "type": 1 }] }),
    );
    let text = MAIN.replace("    store.\n", "    let total = summarize_totals(\n");
    server.change(&main, 2, vec![json!({ "text": text })]);
    // Indexing the reported file runs in the background: ask until it shows (bounded).
    let mut found = None;
    for attempt in 0..50 {
        let _ = server.inline(&main, json!({ "line": 6, "character": 36 }), 1);
        let prompt = model.wait_requests(2 + attempt)[1 + attempt]
            .prompt()
            .to_owned();
        if prompt.contains("// pub fn summarize_totals(values: &[u64]) -> u64 {") {
            found = Some(prompt);
            break;
        }
    }
    assert!(found.is_some(), "src/report.rs never reached the prompt");
    server.shutdown_and_exit();

    // A restart takes both unchanged files from the cache.
    let (server, indexed) = start(&model, dir.path(), cache.path());
    assert!(indexed.contains("(3 from cache)"), "{indexed}");
    server.shutdown_and_exit();
}

#[test]
fn a_definition_typed_in_an_open_document_is_indexed_without_a_save() {
    let model = ModelServer::start(Behavior::stream(&["1"]));
    let dir = TempDir::new("definitions-typed");
    let cache = TempDir::new("definitions-typed-cache");
    dir.write("src/store.rs", STORE);
    dir.write("src/main.rs", MAIN);
    let (server, _) = start(&model, dir.path(), cache.path());
    let store = dir.uri("src/store.rs");
    server.open(&store, "rust", STORE);
    // Typed, not saved: the file on disk does not have it.
    let typed = format!(
        "{STORE}
pub fn restock_all(store: &mut Store) -> usize {{
    0
}}
"
    );
    server.change(&store, 2, vec![json!({ "text": typed })]);
    let main = dir.uri("src/main.rs");
    let text = MAIN.replace(
        "    store.
",
        "    let n = restock_all(
",
    );
    server.open(&main, "rust", &text);
    // The refresh runs a moment after the edit: ask until it shows (bounded).
    let mut found = false;
    for attempt in 0..40 {
        let _ = server.inline(&main, json!({ "line": 6, "character": 24 }), 1);
        let prompt = model.wait_requests(1 + attempt)[attempt]
            .prompt()
            .to_owned();
        if prompt.contains("// pub fn restock_all(store: &mut Store) -> usize {") {
            found = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(found, "the typed definition never reached the prompt");
    server.shutdown_and_exit();
}

#[test]
fn tandem_context_lists_definitions_from_other_files() {
    let model = ModelServer::start(Behavior::stream(&["unused"]));
    let dir = TempDir::new("definitions-cli");
    dir.write("src/store.rs", STORE);
    let file = dir.write("src/main.rs", MAIN);
    let config = dir.write(
        "config.toml",
        &format!(
            "[backend]\nkind = \"openai\"\nurl = \"{}\"\nmodel = \"m\"\n",
            model.url()
        ),
    );
    let location = format!("{}:7:11", file.display());
    let root = dir.path().display().to_string();
    let out = tandem_e2e::run_cli(&[
        "context",
        &location,
        "--config",
        &config.display().to_string(),
        "--root",
        &root,
    ]);
    assert!(out.status.success(), "tandem context failed: {out:#?}");
    let value: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let snippets = value["snippets"].as_array().expect("snippets");
    let store = snippets
        .iter()
        .find(|s| s["source"] == "definition" && s["kind"] == "struct")
        .unwrap_or_else(|| panic!("no struct definition among {value:#}"));
    assert_eq!(store["path"], "src/store.rs");
    assert_eq!(store["startLine"], 2);
    assert!(
        store["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("pub struct Store {")),
        "{store:#}"
    );
    assert!(store["score"].as_f64().is_some_and(|s| s > 0.0 && s <= 1.0));
    assert_eq!(model.request_count(), 0);
}
