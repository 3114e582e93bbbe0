//! The similar-code context source: code from other open documents that resembles the lines
//! before the cursor reaches the prompt as `Path:` comments; `tandem context --json` lists it.

use serde_json::json;
use tandem_e2e::{Behavior, ModelServer, TempDir, TestServer, openai_options, run_cli};

const HELPER: &str = "fn checksum_frame(frame: &[u8]) -> u32 {\n    let mut crc = CRC_SEED;\n    for byte in frame {\n        crc = crc_table_step(crc, *byte);\n    }\n    crc ^ CRC_FINAL_XOR\n}\n";

const CURRENT: &str = "fn checksum_packet(packet: &[u8]) -> u32 {\n    let mut crc = CRC_SEED;\n    for byte in packet {\n        \n";

/// The text after `// Path: helper.rs` in the prompt: the helper, commented out line by line.
fn commented(text: &str) -> String {
    text.lines().map(|l| format!("// {l}\n")).collect()
}

#[test]
fn an_open_similar_document_reaches_the_prompt() {
    let model = ModelServer::start(Behavior::stream(&["crc = crc_table_step(crc, *byte);"]));
    let dir = TempDir::new("similar");
    // On disk too: only files the workspace rules allow reading are offered.
    dir.write("helper.rs", HELPER);
    dir.write("main.rs", CURRENT);
    let server = TestServer::start_in(openai_options(&model.url()), Some(dir.path()));
    let helper = dir.uri("helper.rs");
    let current = dir.uri("main.rs");
    server.open(&helper, "rust", HELPER);
    server.open(&current, "rust", CURRENT);
    let position = json!({ "line": 3, "character": 8 });
    let _ = server.inline(&current, position.clone(), 1);
    let requests = model.wait_requests(1);
    let prompt = requests[0].prompt().to_owned();
    let expected = format!("// Path: helper.rs\n{}\n", commented(HELPER));
    assert!(
        prompt.starts_with(&format!("<fim_prefix>{expected}fn checksum_packet")),
        "the helper goes before the prefix as comments: {prompt}"
    );

    // A closed document stays as a recent one.
    server.close(&helper);
    let _ = server.inline(&current, position.clone(), 1);
    let requests = model.wait_requests(2);
    assert!(
        requests[1].prompt().contains("// Path: helper.rs\n"),
        "{}",
        requests[1].prompt()
    );

    // Without `similar` in `context.sources` the source is off.
    let mut options = openai_options(&model.url());
    options["context"] = json!({ "sources": ["definitions"] });
    server.configure(options);
    let _ = server.inline(&current, position, 1);
    let requests = model.wait_requests(3);
    assert!(
        requests[2]
            .prompt()
            .starts_with("<fim_prefix>fn checksum_packet"),
        "{}",
        requests[2].prompt()
    );
    server.shutdown_and_exit();
}

#[test]
fn context_lists_similar_snippets_with_1_based_lines() {
    let model = ModelServer::start(Behavior::stream(&["unused"]));
    let dir = TempDir::new("similar-cli");
    // The helper's function is at lines 26..=32, after 25 lines without words. Of the 20-line
    // windows (every 10 lines, the last one ending at the last line), 11..=30 (its first five
    // lines) beats 13..=32 (all of it, with words the query lacks).
    let filler = "// -\n".repeat(25);
    dir.write("src/helper.rs", &format!("{filler}{HELPER}"));
    dir.write("src/notes.py", HELPER); // another language: never offered
    let file = dir.write("src/main.rs", CURRENT);
    let config = dir.write(
        "config.toml",
        &format!(
            "[backend]\nkind = \"openai\"\nurl = \"{}\"\nmodel = \"m\"\n",
            model.url()
        ),
    );
    let location = format!("{}:4:9", file.display());
    let root = dir.path().display().to_string();
    let out = run_cli(&[
        "context",
        &location,
        "--json",
        "--config",
        &config.display().to_string(),
        "--root",
        &root,
    ]);
    assert!(out.status.success(), "tandem context failed: {out:#?}");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(value["schema"], 1);
    let snippets = value["snippets"].as_array().expect("snippets");
    assert_eq!(snippets.len(), 1, "{value:#}");
    let s = &snippets[0];
    assert_eq!(s["source"], "similar");
    assert_eq!(s["path"], "src/helper.rs");
    assert_eq!(
        (s["startLine"].as_u64(), s["endLine"].as_u64()),
        (Some(11), Some(30)),
        "{value:#}"
    );
    assert_eq!(
        s["text"],
        format!(
            "{}{}",
            "// -\n".repeat(15),
            HELPER.lines().take(5).collect::<Vec<_>>().join("\n")
        )
    );
    let score = s["score"].as_f64().expect("score");
    assert!(score > 0.15 && score <= 1.0, "{score}");
    assert!(
        value["prompt"]
            .as_str()
            .is_some_and(|p| p.contains("// Path: src/helper.rs\n// // -\n")),
        "{value:#}"
    );
    assert_eq!(model.request_count(), 0);
}
