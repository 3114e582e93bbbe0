//! `initialize`: position encoding negotiation and the advertised capabilities.

use serde_json::Value;
use tandem_e2e::{Encoding, TestServer, VERSION, init_params};

fn negotiate(offered: Option<&[Encoding]>) -> Value {
    let server = TestServer::spawn();
    let result = server.initialize(init_params(Value::Null, None, offered));
    server.shutdown_and_exit();
    result
}

#[test]
fn utf8_is_preferred_when_offered() {
    let result = negotiate(Some(&[Encoding::Utf8, Encoding::Utf16]));
    assert_eq!(
        result["capabilities"]["positionEncoding"], "utf-8",
        "client offered utf-8: {result:#}"
    );
}

#[test]
fn utf16_is_the_default() {
    let result = negotiate(None);
    assert_eq!(
        result["capabilities"]["positionEncoding"], "utf-16",
        "client offered nothing: {result:#}"
    );
    let result = negotiate(Some(&[]));
    assert_eq!(
        result["capabilities"]["positionEncoding"], "utf-16",
        "client offered an empty list: {result:#}"
    );
}

#[test]
fn utf32_only_when_it_is_all_the_client_offers() {
    let result = negotiate(Some(&[Encoding::Utf32]));
    assert_eq!(
        result["capabilities"]["positionEncoding"], "utf-32",
        "client offered only utf-32: {result:#}"
    );
}

#[test]
fn capabilities_and_server_info() {
    let result = negotiate(Some(&[Encoding::Utf16]));
    let caps = &result["capabilities"];
    assert_eq!(
        result["serverInfo"]["name"], "tandem",
        "serverInfo: {result:#}"
    );
    assert_eq!(
        result["serverInfo"]["version"], VERSION,
        "serverInfo: {result:#}"
    );
    assert!(
        caps["inlineCompletionProvider"] == true || caps["inlineCompletionProvider"].is_object(),
        "inline completion is advertised: {caps:#}"
    );
    assert!(
        caps["completionProvider"].is_object(),
        "completion is advertised: {caps:#}"
    );
    let sync = &caps["textDocumentSync"];
    let change = if sync.is_object() {
        &sync["change"]
    } else {
        sync
    };
    assert_eq!(change, 2, "incremental sync (2) is advertised: {caps:#}");
    assert_eq!(
        sync["openClose"], true,
        "open/close notifications are wanted: {caps:#}"
    );
}
