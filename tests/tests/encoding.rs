//! Incremental edits with astral-plane characters, in UTF-16 and in UTF-8 columns, then an
//! inline completion whose prompt must be exactly the edited document around the cursor.

use std::time::Duration;

use serde_json::json;
use tandem_e2e::{
    Behavior, DocModel, Encoding, ModelServer, TempDir, TestServer, init_params, insert_text,
    openai_options, starcoder_prompt,
};

fn edits_then_complete(enc: Encoding) {
    let model = ModelServer::start(Behavior::StreamWith {
        chunks: vec!["me, \"🎉".into(), "\")\nsecond line\n".into()],
        delay: Duration::from_millis(2),
        split: true,
    });
    let dir = TempDir::new("encoding");
    let uri = dir.uri("notes.txt");
    let server = TestServer::spawn();
    let init = server.initialize(init_params(
        openai_options(&model.url()),
        None,
        Some(&[enc]),
    ));
    assert_eq!(init["capabilities"]["positionEncoding"], enc.lsp_name());

    let mut doc = DocModel::new(
        "# 🦀 notes 🎉\nlet s = \"😀😀\"; // 😀 done\nprint(na)\n",
        enc,
    );
    server.open(&uri, "plaintext", &doc.text);

    // Two changes in one notification, each relative to the text the previous one left.
    doc.version = 2;
    let changes = vec![
        doc.replace("// 😀", "done", "finished 🚀"),
        doc.insert_after("# 🦀 ", "crab "),
    ];
    server.change(&uri, doc.version, changes);

    // Three more: an insertion after an emoji, a deletion between emoji, a multi-line range.
    doc.version = 3;
    let changes = vec![
        doc.insert_after("print(", "🎈, "),
        doc.replace("crab ", "notes ", ""),
        doc.replace("crab ", "🎉\nlet", "🎊\nconst"),
    ];
    server.change(&uri, doc.version, changes);

    // A whole new line at column 0, and a replacement right after a surrogate pair.
    doc.version = 4;
    let changes = vec![
        doc.insert_after("finished 🚀\n", "x = 1 😀\n"),
        doc.replace("\"😀😀", "😀\"", "😀!\""),
    ];
    server.change(&uri, doc.version, changes);
    assert_eq!(
        doc.text,
        "# 🦀 crab 🎊\nconst s = \"😀😀!\"; // 😀 finished 🚀\nx = 1 😀\nprint(🎈, na)\n"
    );

    let (cursor, position) = doc.position_after("print(🎈, na");
    let items = server.inline(&uri, position.clone(), 1);

    let requests = model.wait_requests(1);
    assert_eq!(requests.len(), 1, "one backend request");
    let sent = &requests[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/completions")
    );
    assert_eq!(
        sent.body["stream"], true,
        "the completion is streamed: {}",
        sent.body
    );
    assert_eq!(sent.body["model"], "m");
    assert_eq!(
        sent.prompt(),
        starcoder_prompt(&doc.text[..cursor], &doc.text[cursor..]),
        "the prompt is the document as edited, split at the cursor ({enc:?})"
    );

    assert_eq!(items.len(), 1, "one completion: {items:#?}");
    // Single line (text follows the cursor), without the `)` the line already has.
    assert_eq!(
        insert_text(&items[0]),
        "me, \"🎉\"",
        "post-processed completion ({enc:?})"
    );
    assert_eq!(
        items[0]["range"],
        json!({ "start": position, "end": position }),
        "the range is the cursor"
    );
    server.shutdown_and_exit();
}

#[test]
fn utf16_edits_count_surrogate_pairs() {
    edits_then_complete(Encoding::Utf16);
}

#[test]
fn utf8_edits_count_bytes() {
    edits_then_complete(Encoding::Utf8);
}

#[test]
fn utf32_edits_count_characters() {
    edits_then_complete(Encoding::Utf32);
}

#[test]
fn crlf_documents_keep_their_line_breaks_in_the_prompt() {
    let model = ModelServer::start(Behavior::stream(&["ln!(\"{s}\");"]));
    let dir = TempDir::new("crlf");
    let uri = dir.uri("main.txt");
    let server = TestServer::start(openai_options(&model.url()));
    let mut doc = DocModel::new(
        "fn a() {\r\n    let s = \"😀\";\r\n    pri\r\n}\r\n",
        Encoding::Utf16,
    );
    server.open(&uri, "plaintext", &doc.text);
    doc.version = 2;
    let changes = vec![
        doc.insert_after("pri", "nt"),
        doc.replace("let s", "\"😀\"", "\"😀😀\""),
    ];
    server.change(&uri, doc.version, changes);
    let (cursor, position) = doc.position_after("print");
    assert_eq!(position, json!({ "line": 2, "character": 9 }));
    let texts: Vec<String> = server
        .inline(&uri, position, 1)
        .iter()
        .map(insert_text)
        .collect();
    assert_eq!(texts, vec!["ln!(\"{s}\");".to_owned()]);
    assert_eq!(
        model.requests()[0].prompt(),
        starcoder_prompt(&doc.text[..cursor], &doc.text[cursor..])
    );
    server.shutdown_and_exit();
}
