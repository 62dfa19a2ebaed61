//! The shared set-up: a store with two tenants (each its own DynamoDB Local
//! database), the `dynamo-connector` binary, requests through `run` and `serve`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, local_client_as, local_endpoint, put_items};
use serde_json::{Value, json};

pub const BIG: &str = "12345678901234567890123456789012345678";

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynamo-connector"));
    c.env_remove("DYNAMO_CONNECTOR_MASTER_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// A store with two tenants, each with its own DynamoDB Local database.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub store: PathBuf,
    pub key_file: PathBuf,
    /// Secrets that must never appear in any output.
    pub secrets: Vec<String>,
    pub acme_session: String,
    pub globex_session: String,
    /// Acme's access key id: its DynamoDB Local database, for extra tables.
    pub acme_key: String,
}

pub fn admin(f: &Fixture, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.arg("--master-key-file")
        .arg(&f.key_file)
        .arg("admin")
        .arg("--store")
        .arg(&f.store)
        .args(args);
    run_with_stdin(cmd, stdin)
}

pub fn run_with_stdin(cmd: Command, stdin: Option<&str>) -> Output {
    run_with_bytes(cmd, stdin.map(str::as_bytes))
}

pub fn run_with_bytes(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dynamo-connector");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn new_key(path: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,base64;print(base64.b64encode(os.urandom(32)).decode())",
        ])
        .output()
        .expect("python3 makes a random key");
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::write(path, &key).expect("write key");
    key
}

pub async fn seed_tables(access_key: &str, rows: &[(&str, i64, &str)]) {
    let client = local_client_as(access_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = dynamo_testkit::delete_table(&client, "UserEngagement").await;
    TableSpec::new("UserEngagement", "userId", T::S)
        .sort_key("eventTime", T::N)
        .create(&client)
        .await
        .expect("create");
    let items = rows
        .iter()
        .enumerate()
        .map(|(i, (user, score, big))| {
            HashMap::from([
                ("userId".to_string(), AV::S(user.to_string())),
                ("eventTime".to_string(), AV::N((1000 + i).to_string())),
                ("engagementScore".to_string(), AV::N(score.to_string())),
                ("big".to_string(), AV::N(big.to_string())),
            ])
        })
        .collect();
    put_items(&client, "UserEngagement", items)
        .await
        .expect("put");
}

/// Tenants use unique access keys so parallel tests never share a database.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store.db");
    let key_file = dir.path().join("master.key");
    let master = new_key(&key_file);
    // DynamoDB Local accepts only alphanumeric access key ids.
    let tag = dynamo_testkit::unique_name("t").replace('_', "");
    let (acme_key, globex_key) = (format!("AKacme{tag}"), format!("AKglobex{tag}"));
    let (acme_secret, globex_secret) =
        (format!("acme-secret-{tag}"), format!("globex-secret-{tag}"));
    seed_tables(
        &acme_key,
        &[
            ("123456", 80, BIG),
            ("123456", 20, "1"),
            ("123456", 51, "-0.5"),
            ("999", 90, "2"),
        ],
    )
    .await;
    seed_tables(&globex_key, &[("123456", 99, "7")]).await;
    let mut f = Fixture {
        _dir: dir,
        store,
        key_file,
        secrets: vec![
            master,
            acme_key.clone(),
            globex_key.clone(),
            acme_secret.clone(),
            globex_secret.clone(),
        ],
        acme_session: String::new(),
        globex_session: String::new(),
        acme_key: acme_key.clone(),
    };
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    for (client, key, secret) in [
        ("acme", &acme_key, &acme_secret),
        ("globex", &globex_key, &globex_secret),
    ] {
        assert!(admin(&f, &["client", "add", client], None).status.success());
        set_endpoint(&f, client, &endpoint);
        let creds = json!({"accessKeyId": key, "secretAccessKey": secret}).to_string();
        let o = admin(&f, &["credentials", "set", client], Some(&creds));
        assert!(o.status.success(), "{}", text(&o));
    }
    for (client, slot) in [("acme", 0), ("globex", 1)] {
        let o = admin(
            &f,
            &["session", "issue", client, "--user", "ann", "--ttl", "600"],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));
        let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
        f.secrets.push(token.clone());
        if slot == 0 {
            f.acme_session = token
        } else {
            f.globex_session = token
        }
    }
    f
}

pub fn seed_request() -> Value {
    json!({"inputs": {"tableName": "UserEngagement", "operation": "query",
        "keyCondition": "userId = :userId", "filterExpression": "engagementScore > :minScore",
        "expressionAttributeValues": {":userId": {"S": "123456"}, ":minScore": {"N": "50"}}},
        "config": {}})
}

/// `run` with the request on standard input: (exit success, JSON printed).
pub fn run(f: &Fixture, session: &str, request: &str) -> (bool, Value, String) {
    run_with_key(f, &f.key_file, session, request)
}

pub fn run_with_key(
    f: &Fixture,
    key: &Path,
    session: &str,
    request: &str,
) -> (bool, Value, String) {
    run_bytes(f, key, session, request.as_bytes())
}

pub fn run_bytes(f: &Fixture, key: &Path, session: &str, request: &[u8]) -> (bool, Value, String) {
    let mut cmd = bin();
    cmd.env("DYNAMO_CONNECTOR_LOG", "debug")
        .arg("--master-key-file")
        .arg(key)
        .args(["run", "--store"])
        .arg(&f.store)
        .args(["--session", session]);
    let o = run_with_bytes(cmd, Some(request));
    let all = text(&o);
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {all}"));
    (o.status.success(), v, all)
}

pub fn assert_no_secret(f: &Fixture, output: &str) {
    for s in &f.secrets {
        assert!(
            !output.contains(s.as_str()),
            "a secret leaked into output:\n{output}"
        );
    }
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("(no error code)")
}

/// Points `client`'s DynamoDB service at `endpoint`.
pub fn set_endpoint(f: &Fixture, client: &str, endpoint: &str) {
    let o = admin(
        f,
        &[
            "service",
            "set",
            client,
            "--region",
            "us-east-1",
            "--endpoint-url",
            endpoint,
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
}

pub fn store_db(f: &Fixture) -> rusqlite::Connection {
    rusqlite::Connection::open(&f.store).expect("open store")
}

/// POSTs a request to the connector's endpoint: (status, body).
pub fn post_connector(addr: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    http(addr, "POST", "/v1/connectors/dynamo", token, body)
}

/// A minimal HTTP/1.1 exchange: (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, token, body);
    (status, body)
}

/// A minimal HTTP/1.1 exchange: (status, the head in lower case, body);
/// status 0 when nothing listens.
pub fn http_full(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new(), String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Stops `serve` with SIGTERM and waits (up to 20 s) for it to exit: its status.
pub fn stop_gracefully(server: &mut Child) -> std::process::ExitStatus {
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = server.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "server did not shut down");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn start_server(f: &Fixture) -> (Child, String) {
    start_server_with(f, &[])
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `serve` on a free HTTP port, with `extra` arguments; returns once
/// `/healthz` answers: (child, HTTP address).
pub fn start_server_with(f: &Fixture, extra: &[&str]) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = bin()
        .env("DYNAMO_CONNECTOR_LOG", "debug")
        .arg("--master-key-file")
        .arg(&f.key_file)
        .args(["serve", "--store"])
        .arg(&f.store)
        .args(["--listen", &addr])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http(&addr, "GET", "/healthz", None, b"").0 == 200 {
            return (child, addr);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not become healthy");
}

/// Runs `tests/flight/SCRIPT` (an ADBC Flight SQL client) against
/// `flight_addr` with `args`: its JSON answer and everything it printed.
pub fn adbc_script(script: &str, flight_addr: &str, args: &[&str]) -> (Value, String) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/flight")
        .join(script);
    let out = Command::new(python())
        .arg(&path)
        .arg(format!("grpc://{flight_addr}"))
        .args(args)
        .output()
        .expect("the ADBC client runs");
    let printed = text(&out);
    assert!(out.status.success(), "ADBC client failed:\n{printed}");
    let got = serde_json::from_slice(&out.stdout).expect("the client prints JSON");
    (got, printed)
}

/// The project's Python (scripts/test.sh sets `PROJECT_PYTHON`).
pub fn python() -> String {
    std::env::var("PROJECT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "PROJECT_PYTHON is not set: run scripts/test.sh, or \
             `source scripts/lib/python-env.sh && ensure_project_python` first"
        )
    })
}

/// `serve` with HTTP and Flight SQL: (child, HTTP address, Flight address).
pub fn start_both(f: &Fixture) -> (Child, String, String) {
    start_both_with(f, &[])
}

/// [`start_both`] with `extra` arguments to `serve`.
pub fn start_both_with(f: &Fixture, extra: &[&str]) -> (Child, String, String) {
    let flight_addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--flight-listen", &flight_addr];
    args.extend_from_slice(extra);
    let (mut child, http_addr) = start_server_with(f, &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&flight_addr).is_err() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not listen for Flight SQL on {flight_addr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, http_addr, flight_addr)
}
