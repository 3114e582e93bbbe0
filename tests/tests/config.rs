//! Configuration layers: invalid options, an untrusted workspace file, manual trigger, languages.

use serde_json::json;
use tandem_e2e::{
    Behavior, Encoding, ModelServer, TempDir, TestServer, init_params, openai_options, position,
};

#[test]
fn invalid_initialization_options_are_named_and_the_server_keeps_serving() {
    let dir = TempDir::new("invalid-options");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(json!({ "completion": { "debounceMs": "soon" } }));
    let message = server.wait_message(&["completion.debounceMs"]);
    assert!(
        message.contains("invalid"),
        "the message says what is wrong: {message}"
    );
    server.open(&uri, "plaintext", "hello wor");
    let response = server.request_raw(
        "textDocument/inlineCompletion",
        TestServer::inline_params(&uri, position("hello wor", 9, Encoding::Utf16), 1),
    );
    assert!(
        response["result"]["items"].is_array(),
        "the server answers with the defaults: {response}"
    );
    server.shutdown_and_exit();
}

#[test]
fn unknown_keys_are_reported_and_the_rest_applies() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let mut options = openai_options(&model.url());
    options["completion"]["debounceMS"] = json!(5);
    let dir = TempDir::new("unknown-keys");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(options);
    server.wait_message(&["unknown", "completion.debounceMS"]);
    server.open(&uri, "plaintext", "hello wor");
    let texts = server.inline_texts(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "the valid keys (the backend) still apply"
    );
    server.shutdown_and_exit();
}

#[test]
fn workspace_file_cannot_choose_the_backend() {
    let recorder = ModelServer::start(Behavior::stream(&["STOLEN"]));
    let root = TempDir::new("untrusted");
    root.write(
        "tandem.toml",
        &format!(
            "[backend]\nkind = \"openai\"\nurl = \"{}\"\nmodel = \"m\"\n",
            recorder.url()
        ),
    );
    root.write("main.txt", "hello wor");
    let uri = root.uri("main.txt");
    let server = TestServer::spawn();
    server.initialize(init_params(
        json!({ "completion": { "debounceMs": 0 } }),
        Some(root.path()),
        None,
    ));
    let message = server.wait_message(&["tandem.toml"]);
    assert!(
        message.contains("backend.url"),
        "the message names the ignored key: {message}"
    );

    server.open(&uri, "plaintext", "hello wor");
    let response = server.request_raw(
        "textDocument/inlineCompletion",
        TestServer::inline_params(&uri, position("hello wor", 9, Encoding::Utf16), 1),
    );
    assert!(
        response["result"]["items"].is_array(),
        "answered (by the embedded backend): {response}"
    );
    let texts: Vec<&str> = response["result"]["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["insertText"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !texts.contains(&"STOLEN"),
        "the workspace's backend was not used: {texts:?}"
    );
    server.shutdown_and_exit();
    assert_eq!(
        recorder.request_count(),
        0,
        "no request reached the server the workspace file named"
    );
}

#[test]
fn manual_trigger_skips_automatic_requests() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let dir = TempDir::new("manual");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    server.configure(json!({ "completion": { "trigger": "manual" } }));
    server.open(&uri, "plaintext", "hello wor");
    let pos = position("hello wor", 9, Encoding::Utf16);

    assert!(
        server.inline(&uri, pos.clone(), 2).is_empty(),
        "automatic inline: nothing in manual mode"
    );
    let completion = server.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": pos, "context": { "triggerKind": 2, "triggerCharacter": "." } }),
    );
    assert_eq!(
        completion["items"],
        json!([]),
        "trigger-character completion: nothing in manual mode"
    );
    assert_eq!(
        model.request_count(),
        0,
        "automatic requests never reach the backend in manual mode"
    );

    let texts = server.inline_texts(&uri, pos, 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "an explicit request is served"
    );
    assert_eq!(
        model.request_count(),
        1,
        "only the explicit request reached the backend"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_language_can_be_disabled() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let dir = TempDir::new("languages");
    let server = TestServer::start(openai_options(&model.url()));
    server.configure(json!({ "completion": { "languages": { "markdown": false } } }));
    let md = dir.uri("README.md");
    let txt = dir.uri("notes.txt");
    server.open(&md, "markdown", "hello wor");
    server.open(&txt, "plaintext", "hello wor");
    let pos = position("hello wor", 9, Encoding::Utf16);

    assert!(
        server.inline(&md, pos.clone(), 1).is_empty(),
        "markdown is disabled, even when asked"
    );
    assert_eq!(
        model.request_count(),
        0,
        "a disabled language never reaches the backend"
    );
    assert_eq!(
        server.inline_texts(&txt, pos, 1),
        vec!["ld".to_owned()],
        "other languages still complete"
    );
    server.shutdown_and_exit();
}

#[test]
fn an_invalid_client_setting_keeps_the_previous_configuration() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let dir = TempDir::new("keep-previous");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(openai_options(&model.url()));
    server.configure(json!({ "backend": { "kind": "gpt" } }));
    let message = server.wait_message(&["backend.kind"]);
    assert!(
        message.contains("keeping the previous configuration"),
        "{message}"
    );
    server.open(&uri, "plaintext", "hello wor");
    let texts = server.inline_texts(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "the previous (valid) backend still serves"
    );
    server.shutdown_and_exit();
}

#[test]
fn valid_client_settings_apply_after_invalid_initialization_options() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let dir = TempDir::new("poisoned");
    let uri = dir.uri("a.txt");
    let server = TestServer::start(json!({ "completion": { "debounceMs": "soon" } }));
    server.wait_message(&["completion.debounceMs"]);
    // The user fixes things from the client side, with a backend.
    server.configure(json!({ "backend": openai_options(&model.url())["backend"] }));
    server.open(&uri, "plaintext", "hello wor");
    let texts = server.inline_texts(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "the client's valid backend setting applies"
    );
    server.shutdown_and_exit();
}

#[test]
fn a_trusted_workspace_file_may_choose_the_backend() {
    let model = ModelServer::start(Behavior::stream(&["ld"]));
    let root = TempDir::new("trusted");
    root.write(
        "tandem.toml",
        &format!(
            "[backend]\nkind = \"openai\"\nurl = \"{}\"\nmodel = \"m\"\n\n[completion]\ndebounceMs = 0\n",
            model.url()
        ),
    );
    let user = TempDir::new("user-config");
    let config = user.write("config.toml", "trustWorkspaceConfig = true\n");
    let server = TestServer::spawn_with_args(&["--config", &config.display().to_string()]);
    server.initialize(init_params(json!(null), Some(root.path()), None));
    let uri = root.uri("main.txt");
    server.open(&uri, "plaintext", "hello wor");
    let texts = server.inline_texts(&uri, position("hello wor", 9, Encoding::Utf16), 1);
    assert_eq!(
        texts,
        vec!["ld".to_owned()],
        "the user trusts workspace files: its backend is used"
    );
    assert_eq!(model.request_count(), 1);
    server.shutdown_and_exit();
}

#[test]
fn a_workspace_folder_added_later_has_its_file_checked_too() {
    let recorder = ModelServer::start(Behavior::stream(&["STOLEN"]));
    let root = TempDir::new("added-root");
    root.write(
        "tandem.toml",
        &format!("[backend]\nurl = \"{}\"\n", recorder.url()),
    );
    let server = TestServer::start(json!({ "completion": { "debounceMs": 0 } }));
    server.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({ "event": { "added": [{ "uri": tandem_e2e::file_uri(root.path()), "name": "r" }], "removed": [] } }),
    );
    let message = server.wait_message(&["tandem.toml", "backend.url"]);
    assert!(
        message.contains("trustWorkspaceConfig"),
        "the message says how to allow it: {message}"
    );
    let uri = root.uri("main.txt");
    server.open(&uri, "plaintext", "hello wor");
    let response = server.request_raw(
        "textDocument/inlineCompletion",
        TestServer::inline_params(&uri, position("hello wor", 9, Encoding::Utf16), 1),
    );
    assert!(response["result"]["items"].is_array(), "{response}");
    server.shutdown_and_exit();
    assert_eq!(
        recorder.request_count(),
        0,
        "the added folder's file did not redirect code"
    );
}
