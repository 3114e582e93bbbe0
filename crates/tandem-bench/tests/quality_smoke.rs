//! The quality harness on the committed fixtures, so that it cannot rot: the truth test (a
//! loopback model answering with the file's own text) passes at every position and shows no
//! broken answer, and the real-model run works end to end against the random-weight engine
//! that `tests/run` starts (its text is noise: only the report's shape is checked).

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-bench"))
        .arg("quality")
        .args(args)
        .arg("--json")
        .output()
        .expect("run tandem-bench");
    assert!(
        out.status.success(),
        "tandem-bench quality {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the truth test on a fixture corpus and checks every language of it.
fn truth_test(corpus: &str, languages: &[&str]) {
    let report = bench(&["--oracle", "--positions", "80", "--corpus", corpus]);
    let rows = report["languages"].as_array().expect("languages");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["language"].as_str().expect("language"))
        .collect();
    let mut want = languages.to_vec();
    want.push("overall");
    assert_eq!(names, want);
    for row in rows {
        let (truth, broken) = (&row["truth"], &row["broken"]);
        assert!(truth["cases"].as_u64() > Some(0), "{row}");
        assert_eq!(
            truth["passed"], truth["cases"],
            "every true answer is shown as it is: {row}"
        );
        assert!(broken["cases"].as_u64() > Some(0), "{row}");
        assert_eq!(
            broken["shownBroken"], 0,
            "no broken answer is shown broken: {row}"
        );
        assert!(
            broken["repaired"].as_u64() > Some(0),
            "some broken answers are cut back to what parses: {row}"
        );
    }
}

#[test]
fn truth_test_passes_on_the_xdr_fixture() {
    truth_test(&fixture("xdr"), &["python", "rust"]);
}

#[test]
fn truth_test_passes_on_the_quality_fixture() {
    truth_test(
        &fixture("quality"),
        &["c", "cpp", "go", "java", "javascript", "typescript"],
    );
}

#[test]
fn real_model_run_reports_every_system() {
    let url = match std::env::var("TANDEM_REALSERVER_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "TANDEM_REALSERVER_URL is not set: tests/run starts the real model server in CI"
            );
            eprintln!("skipping: TANDEM_REALSERVER_URL is not set (tests/run sets it)");
            return;
        }
    };
    let report = bench(&[
        "--url",
        &url,
        "--quick",
        "--language",
        "python",
        "--context-window",
        "512",
        "--max-tokens",
        "8",
        "--bootstrap",
        "200",
        "--corpus",
        &fixture("xdr"),
    ]);
    assert_eq!(report["mode"], "real");
    assert_eq!(
        report["cases"], 3,
        "--quick: 2 ordinary and 1 cross-file case"
    );
    let groups = report["groups"].as_array().expect("groups");
    let overall = groups
        .iter()
        .find(|g| g["set"] == "all" && g["language"] == "overall")
        .expect("the pooled group");
    for system in ["tandem", "current", "naive", "raw"] {
        let s = &overall["systems"][system];
        assert_eq!(s["cases"], 3, "{system}: {s}");
        for key in ["em", "es", "nothingShown"] {
            let v = s[key].as_f64().expect(key);
            assert!((0.0..=1.0).contains(&v), "{system} {key}: {s}");
        }
        if system != "tandem" {
            assert!(
                s["tandemMinusThis"]["es"]["low"].is_number(),
                "{system}: {s}"
            );
        }
    }
}
