//! `docs/config.schema.json` is generated from the Rust types and must be current, and
//! `docs/configuration.md` must document every key in it. `UPDATE_EXPECT=1` rewrites the schema.

use std::path::PathBuf;

use serde_json::Value;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn schema_file_is_current() {
    let schema = tandem_core::config::json_schema();
    let text = format!(
        "{}\n",
        serde_json::to_string_pretty(&schema).expect("schema serializes")
    );
    let path = docs().join("config.schema.json");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &text).expect("write the schema");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/config.schema.json is stale: run `UPDATE_EXPECT=1 cargo test -p tandem-core --test schema`"
    );
}

/// Dotted key paths of every property in the schema.
fn keys(schema: &Value, node: &Value, prefix: &str, out: &mut Vec<String>) {
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            &schema["$defs"][name]
        }
        None => node,
    };
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            let path = format!("{prefix}{key}");
            out.push(path.clone());
            // `allOf: [{$ref}]` wraps references that carry a description.
            let child = child.get("allOf").and_then(|a| a.get(0)).unwrap_or(child);
            keys(schema, child, &format!("{path}."), out);
        }
    }
}

#[test]
fn configuration_doc_names_every_key() {
    let schema = tandem_core::config::json_schema();
    let mut all = Vec::new();
    keys(&schema, &schema, "", &mut all);
    assert!(all.len() > 10, "schema walk found too few keys: {all:?}");
    let doc = std::fs::read_to_string(docs().join("configuration.md"))
        .expect("docs/configuration.md exists");
    let missing: Vec<&String> = all
        .iter()
        .filter(|k| !doc.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document: {missing:?}"
    );
}
