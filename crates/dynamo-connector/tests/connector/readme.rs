//! The connector quick start of `docs/connector.md`, run as written: the block after the
//! `<!-- connector-quickstart -->` marker, by bash, with the binaries on
//! `PATH`, DynamoDB Local at `DYNAMODB_ENDPOINT` and a tenant's own keys.

use std::path::Path;
use std::process::Command;

use crate::fixture::*;

/// The fenced block after `marker` in `text`.
fn block_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let start = text.find(marker).expect("the page has the marker");
    let rest = &text[start..];
    let open = rest.find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let close = rest[open..].find("\n```").expect("the block ends");
    &rest[open..open + close]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_quick_start_runs_as_written() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/connector.md"),
    )
    .expect("docs/connector.md");
    let script = block_after(&readme, "<!-- connector-quickstart -->");
    // The tenant's own keys, and its table.
    let key = format!(
        "AKreadme{}",
        dynamo_testkit::unique_name("r").replace('_', "")
    );
    seed_tables(&key, &[("u1", 10, "1"), ("u2", 20, "2"), ("u3", 30, "3")]).await;
    let dir = tempfile::tempdir().expect("tmp");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_dynamo-connector"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env(
            "DYNAMODB_ENDPOINT",
            dynamo_testkit::local_endpoint().expect("endpoint"),
        )
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", "readme-secret")
        .env_remove("DYNAMO_CONNECTOR_MASTER_KEY")
        .output()
        .expect("bash runs");
    let printed = text(&out);
    assert!(
        out.status.success(),
        "the quick start failed:\n{script}\n---\n{printed}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""items":[{"n":3}]"#), "{stdout}");
    // `session list` names the session, never its token.
    assert!(
        stdout.contains("acme") && stdout.contains("ann") && stdout.contains("live"),
        "{stdout}"
    );
    assert!(!stdout.contains("dcs_"), "a token was listed: {stdout}");
    // The key file is the owner's alone.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("master.key"))
            .expect("master.key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A second master-key never overwrites the first.
    let again = Command::new(env!("CARGO_BIN_EXE_dynamo-connector"))
        .args(["admin", "master-key", "--out"])
        .arg(dir.path().join("master.key"))
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(
        text(&again).contains("never overwritten"),
        "{}",
        text(&again)
    );
}

#[test]
fn admin_refusals_say_what_is_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("s.db");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_dynamo-connector"))
            .arg("admin")
            .arg("--store")
            .arg(&store)
            .args(args)
            .output()
            .expect("runs");
        (o.status.success(), text(&o))
    };
    assert!(run(&["client", "add", "acme"]).0);
    let (ok, said) = run(&["session", "issue", "acme", "--ttl", "0"]);
    assert!(
        !ok && said.contains("whole seconds from 1 to 31536000"),
        "{said}"
    );
    let (ok, said) = run(&[
        "service",
        "set",
        "acme",
        "--region",
        "us-east-1",
        "--endpoint-url",
        "localhost:8000",
    ]);
    assert!(
        !ok && said.contains("has no scheme: write it as http://localhost:8000"),
        "{said}"
    );
    assert!(
        said.lines().filter(|l| !l.trim().is_empty()).count() <= 3,
        "{said}"
    );
    let (ok, said) = run(&["session", "revoke"]);
    assert!(!ok && said.contains("--client"), "{said}");
}
