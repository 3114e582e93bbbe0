//! Code actions through the real binary against a loopback chat model (`openai-chat`): listing
//! without a model call, resolving "Document this" into a minimal edit that parses, the command
//! fallback through `workspace/applyEdit`, Refine, user-defined actions, Fix only with
//! diagnostics, and the refusals (stale version, no code, broken syntax, no chat backend).

use serde_json::{Value, json};
use tandem_e2e::{Behavior, ModelServer, RawEnd, TempDir, TestServer, init_params};

/// A chat completion stream answering `text` (split in two events).
fn chat(text: &str) -> Behavior {
    let cut = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let mut pieces: Vec<String> = [&text[..cut], &text[cut..]]
        .iter()
        .map(|t| {
            format!(
                "data: {}\n\n",
                json!({ "object": "chat.completion.chunk",
                        "choices": [{ "index": 0, "delta": { "content": t }, "finish_reason": null }] })
            )
        })
        .collect();
    pieces.push("data: [DONE]\n\n".to_owned());
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Behavior::raw("text/event-stream", &refs, RawEnd::Finish)
}

fn options(model: &ModelServer, extra: Value) -> Value {
    let mut o = json!({
        "backend": { "kind": "embedded" },
        "actions": { "backend": { "kind": "openai-chat", "url": model.url(), "model": "chat-test", "timeoutMs": 20000 } },
    });
    if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if k == "actions" {
                for (ak, av) in v.as_object().into_iter().flatten() {
                    o["actions"][ak] = av.clone();
                }
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    o
}

/// Starts a server in `dir` whose client resolves code actions (or not), takes versioned
/// document changes, file creation and progress.
fn start(options: Value, dir: &TempDir, resolve: bool) -> TestServer {
    let server = TestServer::spawn();
    let mut params = init_params(options, Some(dir.path()), None);
    params["capabilities"]["window"]["workDoneProgress"] = json!(true);
    params["capabilities"]["workspace"] = json!({
        "applyEdit": true,
        "workspaceEdit": { "documentChanges": true, "resourceOperations": ["create"] },
    });
    params["capabilities"]["textDocument"]["codeAction"] = if resolve {
        json!({ "resolveSupport": { "properties": ["edit"] }, "dataSupport": true })
    } else {
        json!({})
    };
    server.initialize(params);
    server
}

const RUST: &str = "use std::fmt;\n\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn twice(x: i32) -> i32 {\n    x * 2\n}\n";

fn range(line: u32, character: u32, end_line: u32, end_character: u32) -> Value {
    json!({ "start": { "line": line, "character": character }, "end": { "line": end_line, "character": end_character } })
}

fn list(server: &TestServer, uri: &str, range: Value, diagnostics: Value) -> Vec<Value> {
    let result = server.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": diagnostics } }),
    );
    result.as_array().cloned().unwrap_or_default()
}

#[track_caller]
fn find(actions: &[Value], title_start: &str) -> Value {
    actions
        .iter()
        .find(|a| {
            a["title"]
                .as_str()
                .is_some_and(|t| t.starts_with(title_start))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no action titled {title_start}…: {actions:#?}"))
}

/// Applies LSP text edits (ASCII text: characters are UTF-16 units) to `text`.
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |pos: &Value| {
        let line = pos["line"].as_u64().unwrap_or(0) as usize;
        let ch = pos["character"].as_u64().unwrap_or(0) as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        (start + ch).min(text.len())
    };
    let mut sorted: Vec<&Value> = edits.iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(offset(&e["range"]["start"])));
    let mut out = text.to_owned();
    for e in sorted {
        let (a, b) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
        out.replace_range(a..b, e["newText"].as_str().unwrap_or_default());
    }
    out
}

/// The single text document edit of a workspace edit: (uri, version, edits).
fn document_edit(edit: &Value) -> (String, Value, Vec<Value>) {
    let changes = edit["documentChanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(changes.len(), 1, "one document edit: {edit:#}");
    let c = &changes[0];
    (
        c["textDocument"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        c["textDocument"]["version"].clone(),
        c["edits"].as_array().cloned().unwrap_or_default(),
    )
}

/// A workspace holding `src/calc.rs` (RUST), open in a server whose client resolves actions.
fn calc_rs(model: &ModelServer, tag: &str) -> (TempDir, String, TestServer) {
    let dir = TempDir::new(tag);
    let uri = dir.uri("src/calc.rs");
    let server = start(options(model, json!({})), &dir, true);
    server.open(&uri, "rust", RUST);
    (dir, uri, server)
}

#[test]
fn document_this_is_listed_resolved_minimal_and_parses() {
    let model = ModelServer::start(chat(
        "Here you go:\n```rust\n/// Adds `a` and `b`.\n///\n/// Returns the sum.\n```\n",
    ));
    let (_dir, uri, server) = calc_rs(&model, "actions-doc");

    let actions = list(&server, &uri, range(3, 6, 3, 6), json!([]));
    let document = find(&actions, "Tandem: Document `add`");
    assert_eq!(document["kind"], "source");
    assert!(document.get("edit").is_none(), "listing computes no edit");
    assert_eq!(model.request_count(), 0, "listing calls no model");
    assert!(
        find(&actions, "Tandem: Refactor selection")["disabled"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Select"))
    );

    let resolved = server.request("codeAction/resolve", document);
    let (edit_uri, version, edits) = document_edit(&resolved["edit"]);
    assert_eq!(edit_uri, uri);
    assert_eq!(version, 1, "the edit is for the version listed");
    assert_eq!(edits.len(), 1, "{edits:#?}");
    let after = apply(RUST, &edits);
    assert_eq!(
        after,
        "use std::fmt;\n\n/// Adds `a` and `b`.\n///\n/// Returns the sum.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn twice(x: i32) -> i32 {\n    x * 2\n}\n"
    );
    // Only the inserted lines are new: every old line is still there, in order.
    let old: Vec<&str> = RUST.lines().collect();
    let new: Vec<&str> = after.lines().filter(|l| !l.starts_with("///")).collect();
    assert_eq!(old, new);
    assert_eq!(
        tandem_syntax::error_count(tandem_syntax::Language::Rust, &after),
        Some(0)
    );

    // The model saw the function and the doc convention, as a chat.
    let request = &model.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    let user = request.body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        user.contains("pub fn add(a: i32, b: i32) -> i32 {"),
        "{user}"
    );
    assert!(user.contains("`///` lines"), "{user}");

    // Work done progress: created, begun and ended (the end may follow the response).
    server.wait_server_request("window/workDoneProgress/create");
    // (The folder's indexing reports its own progress, under its own token.)
    let action = |p: &serde_json::Value| {
        !p["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("tandem/index/"))
    };
    server.wait_notification("$/progress", |p| action(p) && p["value"]["kind"] == "end");
    let kinds: Vec<String> = server
        .notifications("$/progress")
        .iter()
        .filter(|p| action(p))
        .filter_map(|p| p["value"]["kind"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(kinds, ["begin", "end"]);
}

#[test]
fn a_stale_version_is_refused_without_asking_the_model() {
    let model = ModelServer::start(chat("```rust\n/// Adds.\n```"));
    let (_dir, uri, server) = calc_rs(&model, "actions-stale");
    let document = find(
        &list(&server, &uri, range(3, 4, 3, 4), json!([])),
        "Tandem: Document",
    );
    server.change(
        &uri,
        2,
        vec![json!({ "text": format!("// moved\n{RUST}") })],
    );
    let response = server.request_raw("codeAction/resolve", document);
    let error = response["error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("changed"), "{response}");
    assert!(response.get("result").is_none());
    assert_eq!(model.request_count(), 0);
    server.wait_message(&["ask for code actions again"]);
}

#[test]
fn replies_without_code_or_with_broken_syntax_give_no_edit() {
    let model = ModelServer::route(|i, _| match i {
        0 => chat("I'm sorry, I cannot refactor this code without more context."),
        _ => chat("```rust\n    a + (b\n```"),
    });
    let (_dir, uri, server) = calc_rs(&model, "actions-broken");
    let refactor = find(
        &list(&server, &uri, range(3, 0, 4, 0), json!([])),
        "Tandem: Refactor selection",
    );
    assert!(refactor.get("disabled").is_none(), "{refactor}");

    let no_code = server.request_raw("codeAction/resolve", refactor.clone());
    let message = no_code["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no code"), "{no_code}");

    let broken = server.request_raw("codeAction/resolve", refactor);
    let message = broken["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("syntax errors"), "{broken}");
    // The reply is in the log (written around the response: wait for it, not race it).
    tandem_e2e::backend_scenarios::wait_log(&server, "a + (b");
    server.wait_message(&["syntax errors"]);
}

#[test]
fn without_a_chat_backend_actions_are_disabled_with_the_reason() {
    let dir = TempDir::new("actions-nochat");
    let uri = dir.uri("src/calc.rs");
    let server = start(json!({ "backend": { "kind": "embedded" } }), &dir, true);
    server.open(&uri, "rust", RUST);
    let actions = list(&server, &uri, range(3, 4, 3, 4), json!([]));
    assert!(!actions.is_empty());
    for a in &actions {
        let reason = a["disabled"]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("Select") || reason.contains("configure actions.backend"),
            "{a}"
        );
    }
    let document = find(&actions, "Tandem: Document `add`");
    assert!(
        document["disabled"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("configure actions.backend"))
    );
}

#[test]
fn fix_is_offered_only_with_diagnostics_and_sends_them() {
    let model = ModelServer::start(chat(
        "```rust\npub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n```",
    ));
    let (_dir, uri, server) = calc_rs(&model, "actions-fix");
    let without = list(&server, &uri, range(3, 4, 3, 4), json!([]));
    assert!(
        without.iter().all(|a| a["kind"] != "quickfix"),
        "{without:#?}"
    );

    let diagnostic =
        json!([{ "range": range(3, 4, 3, 9), "message": "this should subtract", "severity": 1 }]);
    let with = list(&server, &uri, range(3, 4, 3, 4), diagnostic);
    let fix = find(&with, "Tandem: Fix: this should subtract");
    assert_eq!(fix["kind"], "quickfix");
    let resolved = server.request("codeAction/resolve", fix);
    let (_, _, edits) = document_edit(&resolved["edit"]);
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["range"], range(3, 0, 4, 0));
    assert_eq!(edits[0]["newText"], "    a - b\n");
    let user = model.requests()[0].body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(user.contains("- line 4: this should subtract"), "{user}");
}

#[test]
fn user_defined_actions_fill_their_template() {
    let model = ModelServer::start(chat("```rust\n    a.saturating_add(b)\n```"));
    let dir = TempDir::new("actions-custom");
    let uri = dir.uri("src/calc.rs");
    let custom = json!({ "actions": { "custom": [
        { "title": "Saturate", "prompt": "Make this {language} in {path} saturate: {selection}", "languages": ["rust"], "needsSelection": true },
        { "title": "Pythonic", "prompt": "{code}", "languages": ["python"] },
    ] } });
    let server = start(options(&model, custom), &dir, true);
    server.open(&uri, "rust", RUST);
    let no_selection = list(&server, &uri, range(3, 4, 3, 4), json!([]));
    assert!(no_selection.iter().all(|a| a["title"] != "Pythonic"));
    assert!(find(&no_selection, "Saturate")["disabled"]["reason"].is_string());

    let actions = list(&server, &uri, range(3, 0, 3, 9), json!([]));
    let saturate = find(&actions, "Saturate");
    assert!(saturate.get("disabled").is_none());
    let resolved = server.request("codeAction/resolve", saturate);
    let (_, _, edits) = document_edit(&resolved["edit"]);
    assert_eq!(
        apply(RUST, &edits).lines().nth(3),
        Some("    a.saturating_add(b)")
    );
    let user = model.requests()[0].body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        user.starts_with("Make this rust in src/calc.rs saturate:     a + b"),
        "{user}"
    );
}

#[test]
fn without_resolve_support_a_command_applies_the_edit() {
    let model = ModelServer::route(|i, _| match i {
        0 => chat("```rust\n/// Doubles.\n```"),
        _ => chat("```rust\n/// Doubles `x`.\n```"),
    });
    let dir = TempDir::new("actions-command");
    let uri = dir.uri("src/calc.rs");
    let server = start(options(&model, json!({})), &dir, false);
    server.answer("workspace/applyEdit", json!({ "applied": true }));
    server.open(&uri, "rust", RUST);
    let document = find(
        &list(&server, &uri, range(8, 4, 8, 4), json!([])),
        "Tandem: Document `twice`",
    );
    let command = document["command"].clone();
    assert_eq!(command["command"], "tandem.runAction");
    assert!(document.get("data").is_none());

    server.request("workspace/executeCommand", command);
    let apply_request = server.wait_server_request("workspace/applyEdit");
    let (_, _, edits) = document_edit(&apply_request["params"]["edit"]);
    let after = apply(RUST, &edits);
    assert!(after.contains("/// Doubles.\npub fn twice"), "{after}");

    // Refine: the result is in the document as applied, so a follow-up is offered; the
    // instruction comes from a choice list.
    server.change(&uri, 2, vec![json!({ "text": after.clone() })]);
    let refine = find(
        &list(&server, &uri, range(7, 0, 7, 0), json!([])),
        "Tandem: Refine",
    );
    assert_eq!(refine["command"]["command"], "tandem.refine");
    server.answer(
        "window/showMessageRequest",
        json!({ "title": "More detail" }),
    );
    server.request("workspace/executeCommand", refine["command"].clone());
    let asked = server.wait_server_request("window/showMessageRequest");
    assert!(
        asked["params"]["actions"]
            .as_array()
            .is_some_and(|a| a.len() >= 3)
    );
    let user = model.requests()[1].body["messages"][1]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The request, built from the document as it is now, shows the previous answer once.
    assert!(
        user.contains("```rust\n/// Doubles.\n```")
            && user.contains("Your previous answer is in the document now, as shown above."),
        "{user}"
    );
    assert!(user.contains("Revise it: more detail."), "{user}");
    let applies: Vec<Value> = server
        .server_requests()
        .into_iter()
        .filter(|r| r["method"] == "workspace/applyEdit")
        .collect();
    assert_eq!(applies.len(), 2);
    let (_, version, edits) = document_edit(&applies[1]["params"]["edit"]);
    assert_eq!(version, 2);
    assert_eq!(
        apply(&after, &edits),
        after.replace("/// Doubles.\n", "/// Doubles `x`.\n")
    );
}

#[test]
fn tests_for_python_go_in_a_new_file_through_create_file() {
    let model = ModelServer::start(chat(
        "```python\nfrom calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n```",
    ));
    let dir = TempDir::new("actions-tests");
    let text = "def add(a, b):\n    return a + b\n";
    dir.write("calc.py", text);
    let uri = dir.uri("calc.py");
    let server = start(options(&model, json!({})), &dir, true);
    server.open(&uri, "python", text);
    let tests = find(
        &list(&server, &uri, range(1, 4, 1, 4), json!([])),
        "Tandem: Generate tests for `add`",
    );
    let resolved = server.request("codeAction/resolve", tests);
    let changes = resolved["edit"]["documentChanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(changes.len(), 2, "{resolved:#}");
    assert_eq!(changes[0]["kind"], "create");
    assert_eq!(changes[0]["uri"], dir.uri("test_calc.py"));
    assert_eq!(
        changes[1]["edits"][0]["newText"],
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    );
}

#[test]
fn a_slow_model_blocks_nothing_and_cancelling_drops_its_connection() {
    let model = ModelServer::start(Behavior::Hang);
    let (_dir, uri, server) = calc_rs(&model, "actions-cancel");
    let document = find(
        &list(&server, &uri, range(3, 4, 3, 4), json!([])),
        "Tandem: Document",
    );
    let pending = server.request_async("codeAction/resolve", document);
    model.wait_requests(1);
    // Completions (the embedded backend) and new listings are answered meanwhile.
    server.inline(&uri, json!({ "line": 4, "character": 9 }), 1);
    assert!(!list(&server, &uri, range(7, 4, 7, 4), json!([])).is_empty());
    assert!(!server.is_answered(pending));
    server.cancel(pending);
    model.wait_closed(0);
    // The action's progress ends on cancel (the folder's indexing has its own token).
    server.wait_notification("$/progress", |p| {
        p["value"]["kind"] == "end"
            && !p["token"]
                .as_str()
                .is_some_and(|t| t.starts_with("tandem/index/"))
    });
}

#[test]
fn clients_without_document_changes_get_plain_changes_in_their_encoding() {
    let model = ModelServer::start(chat("```rust\n/// Ünïcode → doc.\n```"));
    let dir = TempDir::new("actions-changes");
    let uri = dir.uri("src/calc.rs");
    let server = TestServer::spawn();
    let mut params = init_params(options(&model, json!({})), Some(dir.path()), None);
    params["capabilities"]["textDocument"]["codeAction"] =
        json!({ "resolveSupport": { "properties": ["edit"] } });
    server.initialize(params);
    let text = format!("// é\n{RUST}");
    server.open(&uri, "rust", &text);
    let document = find(
        &list(&server, &uri, range(4, 4, 4, 4), json!([])),
        "Tandem: Document `add`",
    );
    let resolved = server.request("codeAction/resolve", document);
    let edits = resolved["edit"]["changes"][&uri]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(edits.len(), 1, "{resolved:#}");
    assert_eq!(edits[0]["range"], range(3, 0, 3, 0));
    assert_eq!(edits[0]["newText"], "/// Ünïcode → doc.\n");
    assert!(resolved["edit"].get("documentChanges").is_none());
}
