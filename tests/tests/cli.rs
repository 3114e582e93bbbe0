//! The command line: `tandem complete`, `tandem context --json`, `tandem --version`.

use tandem_e2e::{
    Behavior, ModelServer, TempDir, VERSION, run_cli, run_cli_with, starcoder_prompt,
};

fn workspace(model: &ModelServer) -> (TempDir, String, String) {
    let dir = TempDir::new("cli");
    let file = dir.write(
        "src/app.py",
        "def greet(name):\n    return \"hello \" + \n\ngreet(\"x\")\n",
    );
    let config = dir.write(
        "config.toml",
        &format!(
            "[backend]\nkind = \"openai\"\nurl = \"{}\"\nmodel = \"m\"\ntimeoutMs = 20000\n",
            model.url()
        ),
    );
    let location = format!("{}:2:23", file.display()); // 1-based: after `"hello " + `
    (dir, location, config.display().to_string())
}

#[test]
fn complete_prints_the_post_processed_completion() {
    let model = ModelServer::start(Behavior::stream(&["name", "\n\nprint(\"unrelated\")\n"]));
    let (dir, location, config) = workspace(&model);
    let root = dir.path().display().to_string();
    let out = run_cli(&["complete", &location, "--config", &config, "--root", &root]);
    assert!(out.status.success(), "tandem complete failed: {out:#?}");
    assert_eq!(
        out.stdout, "name\n",
        "the completion, cut where the block ends: {out:#?}"
    );
    let requests = model.wait_requests(1);
    assert_eq!(
        requests[0].prompt(),
        starcoder_prompt(
            "def greet(name):\n    return \"hello \" + ",
            "\n\ngreet(\"x\")\n"
        ),
        "the CLI sends what the server would"
    );
}

#[test]
fn context_prints_schema_1_json() {
    let model = ModelServer::start(Behavior::stream(&["unused"]));
    let (dir, location, config) = workspace(&model);
    let root = dir.path().display().to_string();
    let out = run_cli(&[
        "context", &location, "--json", "--config", &config, "--root", &root,
    ]);
    assert!(out.status.success(), "tandem context failed: {out:#?}");
    let value: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("tandem context prints JSON");
    let prefix = "def greet(name):\n    return \"hello \" + ";
    let suffix = "\n\ngreet(\"x\")\n";
    assert_eq!(value["schema"], 1, "{value:#}");
    assert_eq!(
        value["path"], "src/app.py",
        "relative to the root: {value:#}"
    );
    assert_eq!(value["language"], "python");
    assert_eq!(value["prefix"], prefix);
    assert_eq!(value["suffix"], suffix);
    assert_eq!(value["prompt"], starcoder_prompt(prefix, suffix));
    assert_eq!(
        value["request"]["prompt"], value["prompt"],
        "the request body carries the prompt"
    );
    assert_eq!(value["request"]["model"], "m");
    assert_eq!(value["request"]["stream"], true);
    assert_eq!(model.request_count(), 0, "context sends nothing");
}

#[test]
fn version_is_printed() {
    let out = run_cli(&["--version"]);
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(out.stdout.trim(), format!("tandem {VERSION}"));
}

/// `tandem complete` arguments for a file in a fresh directory, with a config whose backend
/// is on a closed loopback port; the directory lives as long as the returned `TempDir`.
fn complete_against_a_down_backend(label: &str) -> (TempDir, Vec<String>) {
    let dir = TempDir::new(label);
    let file = dir.write("a.txt", "hello wor\n");
    let port = tandem_e2e::closed_port();
    let config = dir.write(
        "config.toml",
        &format!("[backend]\nkind = \"openai\"\nurl = \"http://127.0.0.1:{port}/v1\"\n"),
    );
    let args = vec![
        "complete".to_owned(),
        format!("{}:1:10", file.display()),
        "--config".to_owned(),
        config.display().to_string(),
        "--root".to_owned(),
        dir.path().display().to_string(),
    ];
    (dir, args)
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    // Editors capture the server's stderr into their logs: escape codes would be noise there.
    let (_dir, args) = complete_against_a_down_backend("cli-colour");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_cli_with(&args, |cmd| {
        cmd.env_remove("NO_COLOR").env("TANDEM_LOG", "debug");
    });
    assert!(
        out.stderr.contains("DEBUG") || out.stderr.contains("WARN"),
        "{out:#?}"
    );
    assert!(!out.stderr.contains('\u{1b}'), "{out:#?}");
}

#[test]
fn complete_reports_a_down_backend_as_an_error() {
    let (_dir, args) = complete_against_a_down_backend("cli-down");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_cli(&args);
    assert!(
        !out.status.success(),
        "a down backend fails the command: {out:#?}"
    );
    assert!(
        out.stderr.contains("could not be reached"),
        "the error says why: {out:#?}"
    );
}
