//! `tandem-bench index` on the committed XDR fixture, so that it cannot rot: the cold run parses
//! every file, the warm run takes every file from the cache the cold run wrote, and ctags runs
//! on the same tree. Needs universal-ctags and /usr/bin/time (both in the machine image).

use std::process::Command;

use serde_json::Value;

#[test]
fn cold_parses_warm_reads_the_cache_and_ctags_runs() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/xdr");
    let cache = std::env::temp_dir().join(format!("tandem-index-smoke-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-bench"))
        .args(["index", "--json", "--tree", fixture, "--cache"])
        .arg(&cache)
        .output()
        .expect("run tandem-bench");
    let _ = std::fs::remove_dir_all(&cache);
    assert!(
        out.status.success(),
        "tandem-bench index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    // 4 Rust and 4 Python files of our own, plus the fixture's pyproject.toml.
    assert_eq!(report["files"], 9, "{report}");
    let cold = &report["cold"]["counts"];
    assert_eq!(cold["indexedFiles"], 8, "{report}");
    assert_eq!(cold["parsed"], 8, "{report}");
    assert_eq!(cold["fromCache"], 0, "{report}");
    let warm = &report["warm"]["counts"];
    assert_eq!(warm["parsed"], 0, "{report}");
    assert_eq!(warm["fromCache"], 8, "{report}");
    assert_eq!(warm["symbols"], cold["symbols"], "{report}");
    for run in ["cold", "warm", "ctags"] {
        assert!(report[run]["wallSeconds"].as_f64().expect("wall") > 0.0);
        assert!(report[run]["peakRssBytes"].as_u64().expect("rss") > 0);
    }
}
