//! The XDR harness on the committed fixture (`fixtures/xdr`), so that it cannot rot: the report
//! has its shape, and the full engine recalls cross-file definitions that the current file alone
//! does not show.

use std::process::Command;

use serde_json::Value;

fn run_fixture() -> Value {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/xdr");
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-bench"))
        .args([
            "xdr",
            "--small",
            "--json",
            "--samples",
            "30",
            "--corpus",
            fixture,
        ])
        .output()
        .expect("run tandem-bench");
    assert!(
        out.status.success(),
        "tandem-bench xdr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

#[test]
fn fixture_report_has_its_shape_and_the_full_engine_beats_the_current_file() {
    let report = run_fixture();
    assert_eq!(report["budgets"], serde_json::json!([1024, 2048]));
    assert_eq!(
        report["arms"],
        serde_json::json!(["full", "similar", "current"])
    );
    assert!(
        report["workspace"].is_null(),
        "--small skips the large workspace"
    );
    let languages = report["languages"].as_array().expect("languages");
    let names: Vec<&str> = languages
        .iter()
        .map(|l| l["language"].as_str().expect("language name"))
        .collect();
    assert_eq!(names, ["python", "rust", "overall"]);
    for lang in languages {
        assert!(lang["samples"].as_u64().expect("samples") > 0, "{lang}");
        for arm in ["full", "similar", "current"] {
            for budget in ["1024", "2048"] {
                let r = &lang["arms"][arm]["budgets"][budget];
                let targets = r["targets"].as_u64().expect("targets");
                let recalled = r["recalled"].as_u64().expect("recalled");
                assert!(targets > 0 && recalled <= targets, "{arm}@{budget}: {r}");
                let xdr = r["xdr"].as_f64().expect("xdr");
                assert!((0.0..=1.0).contains(&xdr));
            }
            let ms = &lang["arms"][arm]["requestMs"];
            assert!(ms["p50"].as_f64().expect("p50") <= ms["p95"].as_f64().expect("p95"));
        }
    }
    // A real check that can fail: definitions from other files reach the packed context.
    let overall = &languages[2]["arms"];
    for budget in ["1024", "2048"] {
        let beyond = overall["full"]["budgets"][budget]["beyondCurrent"]
            .as_u64()
            .expect("beyondCurrent");
        assert!(
            beyond > 0,
            "the full engine recalled no target beyond the current file at {budget}"
        );
        let full = overall["full"]["budgets"][budget]["recalled"].as_u64();
        let current = overall["current"]["budgets"][budget]["recalled"].as_u64();
        assert!(full > current, "full {full:?} vs current file {current:?}");
    }
}
