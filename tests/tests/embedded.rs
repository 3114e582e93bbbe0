//! The embedded default: no configuration at all, completions from the workspace's own code.

use std::time::{Duration, Instant};

use serde_json::json;
use tandem_e2e::{Encoding, TempDir, TestServer, cursor, init_params, insert_text, position};

/// A very repetitive pattern: the embedded model is a statistical model of the workspace and
/// completes only what it is confident of.
const PATTERN: &str = "log_event(logger, \"start\", request_id)\n";

#[test]
fn embedded_model_continues_a_workspace_pattern() {
    let root = TempDir::new("embedded");
    root.write("events_a.py", &PATTERN.repeat(8));
    root.write("events_b.py", &PATTERN.repeat(8));
    root.write(
        "lib/events_c.py",
        &format!("import logging\n\n{}", PATTERN.repeat(6)),
    );
    // The open file has none of the pattern: the model learns it from the workspace's files.
    let (text, at) = cursor("import logging\n\nlogger = logging.getLogger()\nlog_event($0");
    root.write("main.py", &text);
    let uri = root.uri("main.py");

    let server = TestServer::spawn();
    // No initializationOptions at all: the embedded backend with its defaults.
    server.initialize(init_params(json!(null), Some(root.path()), None));
    server.open(&uri, "python", &text);
    // The workspace is indexed in the background: ask until it answers (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let texts = loop {
        let items = server.inline(&uri, position(&text, at, Encoding::Utf16), 1);
        let texts: Vec<String> = items.iter().map(insert_text).collect();
        if !texts.is_empty() || Instant::now() >= deadline {
            break texts;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        !texts.is_empty(),
        "the embedded model completes a pattern the workspace repeats"
    );
    assert!(
        texts[0].starts_with("logger, \"start\", request_id)"),
        "the completion continues the pattern: {texts:?}"
    );
    server.shutdown_and_exit();
}
