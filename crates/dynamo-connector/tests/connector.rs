//! `dynamo-connector` end to end against DynamoDB Local (started without
//! `-sharedDb`, so each access key has its own database): the seed's example
//! through `run` and `serve`, every error code provoked for real, tenant
//! isolation, key rotation, paging, SQL, and no secret in any output.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, create_table, local_client_as, local_endpoint, put_items};
use serde_json::{Value, json};

const BIG: &str = "12345678901234567890123456789012345678";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dynamo-connector"));
    c.env_remove("DYNAMO_CONNECTOR_MASTER_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// A store with two tenants, each with its own DynamoDB Local database.
struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    key_file: PathBuf,
    /// Secrets that must never appear in any output.
    secrets: Vec<String>,
    acme_session: String,
    globex_session: String,
}

fn admin(f: &Fixture, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = bin();
    cmd.arg("--master-key-file")
        .arg(&f.key_file)
        .arg("admin")
        .arg("--store")
        .arg(&f.store)
        .args(args);
    run_with_stdin(cmd, stdin)
}

fn run_with_stdin(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dynamo-connector");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn new_key(path: &Path) -> String {
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

async fn seed_tables(access_key: &str, rows: &[(&str, i64, &str)]) {
    let client = local_client_as(access_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = dynamo_testkit::delete_table(&client, "UserEngagement").await;
    create_table(
        &client,
        &TableSpec::new("UserEngagement", "userId", T::S).sort_key("eventTime", T::N),
    )
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
async fn fixture() -> Fixture {
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
    };
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    for (client, key, secret) in [
        ("acme", &acme_key, &acme_secret),
        ("globex", &globex_key, &globex_secret),
    ] {
        assert!(admin(&f, &["client", "add", client], None).status.success());
        let o = admin(
            &f,
            &[
                "service",
                "set",
                client,
                "--region",
                "us-east-1",
                "--endpoint-url",
                &endpoint,
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));
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

fn seed_request() -> Value {
    json!({"inputs": {"tableName": "UserEngagement", "operation": "query",
        "keyCondition": "userId = :userId", "filterExpression": "engagementScore > :minScore",
        "expressionAttributeValues": {":userId": {"S": "123456"}, ":minScore": {"N": "50"}}},
        "config": {}})
}

/// `run` with the request on standard input: (exit success, JSON printed).
fn run(f: &Fixture, session: &str, request: &str) -> (bool, Value, String) {
    run_with_key(f, &f.key_file, session, request)
}

fn run_with_key(f: &Fixture, key: &Path, session: &str, request: &str) -> (bool, Value, String) {
    let mut cmd = bin();
    cmd.env("DYNAMO_CONNECTOR_LOG", "debug")
        .arg("--master-key-file")
        .arg(key)
        .args(["run", "--store"])
        .arg(&f.store)
        .args(["--session", session]);
    let o = run_with_stdin(cmd, Some(request));
    let all = text(&o);
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {all}"));
    (o.status.success(), v, all)
}

fn assert_no_secret(f: &Fixture, output: &str) {
    for s in &f.secrets {
        assert!(
            !output.contains(s.as_str()),
            "a secret leaked into output:\n{output}"
        );
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("(no error code)")
}

#[tokio::test]
async fn the_seed_example_through_run() {
    let f = fixture().await;
    let (ok, v, all) = run(&f, &f.acme_session, &seed_request().to_string());
    assert!(ok, "{all}");
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["scannedCount"], 3,
        "the key condition read only user 123456"
    );
    assert!(
        v["consumedCapacity"].as_f64().is_some_and(|c| c > 0.0),
        "{v}"
    );
    assert!(v["nextToken"].is_null());
    let scores: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["engagementScore"]["N"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(scores, vec!["80", "51"]);
    assert_eq!(v["items"][0]["big"]["N"], BIG, "a 38-digit number survives");
    assert_no_secret(&f, &all);
}

#[tokio::test]
async fn every_error_code_for_real() {
    let f = fixture().await;
    let req = seed_request().to_string();
    let expect = |(ok, v, all): (bool, Value, String), wanted: &str| {
        assert!(!ok, "should fail with {wanted}: {all}");
        assert_eq!(code(&v), wanted, "{all}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_no_secret(&f, &all);
    };
    expect(run(&f, "", &req), "unauthenticated");
    expect(run(&f, "not-a-session", &req), "unauthenticated");
    let o = admin(&f, &["session", "issue", "acme", "--ttl", "-5"], None);
    let expired = String::from_utf8_lossy(&o.stdout).trim().to_string();
    expect(run(&f, &expired, &req), "unauthenticated");

    // A client without a service, then with a service but no credentials.
    assert!(
        admin(&f, &["client", "add", "initech"], None)
            .status
            .success()
    );
    let initech =
        String::from_utf8_lossy(&admin(&f, &["session", "issue", "initech"], None).stdout)
            .trim()
            .to_string();
    expect(run(&f, &initech, &req), "service_not_configured");
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        admin(
            &f,
            &[
                "service",
                "set",
                "initech",
                "--region",
                "us-east-1",
                "--endpoint-url",
                &endpoint
            ],
            None
        )
        .status
        .success()
    );
    expect(run(&f, &initech, &req), "credentials_not_found");
    // Credentials DynamoDB does not recognise.
    let rejected =
        json!({"accessKeyId": "not_a_valid_key!", "secretAccessKey": "x-secret-x"}).to_string();
    assert!(
        admin(&f, &["credentials", "set", "initech"], Some(&rejected))
            .status
            .success()
    );
    expect(run(&f, &initech, &req), "access_denied");

    // Wrong master key.
    let other_key = f._dir.path().join("other.key");
    new_key(&other_key);
    expect(
        run_with_key(&f, &other_key, &f.acme_session, &req),
        "credentials_unreadable",
    );

    // Request errors, checked before DynamoDB is called.
    expect(run(&f, &f.acme_session, "{not json"), "invalid_request");
    let (_, v, _) = run(&f, &f.acme_session, &json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "filterExpresion": "x"}}).to_string());
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did you mean 'filterExpression'")),
        "{v}"
    );
    expect(run(&f, &f.acme_session, &json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "filterExpresion": "x"}}).to_string()), "invalid_request");
    let (_, v, _) = run(&f, &f.acme_session, &json!({"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u"}}).to_string());
    assert_eq!(code(&v), "invalid_request");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(":u is used in inputs.keyCondition")),
        "{v}"
    );
    // DynamoDB's own validation (a key condition on a non-key attribute).
    let bad_key = json!({"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "engagementScore = :s",
        "expressionAttributeValues": {":s": {"N": "1"}}}});
    expect(
        run(&f, &f.acme_session, &bad_key.to_string()),
        "invalid_request",
    );
    let missing = json!({"inputs": {"tableName": "NoSuchTable", "operation": "scan"}});
    expect(
        run(&f, &f.acme_session, &missing.to_string()),
        "table_not_found",
    );
    let missing_sql = json!({"inputs": {"operation": "sql", "sql": "SELECT * FROM NoSuchTable"}});
    expect(
        run(&f, &f.acme_session, &missing_sql.to_string()),
        "table_not_found",
    );
}

fn store_db(f: &Fixture) -> rusqlite::Connection {
    rusqlite::Connection::open(&f.store).expect("open store")
}

#[tokio::test]
async fn tampered_or_swapped_ciphertexts_are_unreadable() {
    let f = fixture().await;
    let req = seed_request().to_string();
    // Swap: globex's row gets acme's nonce and ciphertext (valid under the same key).
    store_db(&f)
        .execute(
            "UPDATE credentials SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM credentials WHERE client_id = 'acme') \
             WHERE client_id = 'globex'",
            [],
        )
        .expect("swap");
    let (ok, v, all) = run(&f, &f.globex_session, &req);
    assert!(
        !ok && code(&v) == "credentials_unreadable",
        "a ciphertext moved to another client must not decrypt: {all}"
    );
    assert_no_secret(&f, &all);
    // Tamper: flip the first byte of acme's ciphertext.
    let db = store_db(&f);
    let mut ciphertext: Vec<u8> = db
        .query_row(
            "SELECT ciphertext FROM credentials WHERE client_id = 'acme'",
            [],
            |r| r.get(0),
        )
        .expect("read");
    ciphertext[0] ^= 1;
    db.execute(
        "UPDATE credentials SET ciphertext = ?1 WHERE client_id = 'acme'",
        [ciphertext],
    )
    .expect("tamper");
    let (ok, v, all) = run(&f, &f.acme_session, &req);
    assert!(!ok && code(&v) == "credentials_unreadable", "{all}");
}

#[tokio::test]
async fn tenants_see_only_their_own_data() {
    let f = fixture().await;
    let req = seed_request().to_string();
    let (_, a, _) = run(&f, &f.acme_session, &req);
    let (_, b, _) = run(&f, &f.globex_session, &req);
    assert_eq!(a["count"], 2);
    assert_eq!(b["count"], 1);
    assert_eq!(b["items"][0]["engagementScore"]["N"], "99");
    let sql = json!({"inputs": {"operation": "sql", "sql": "SELECT count(*) AS n, max(engagementScore) AS top FROM UserEngagement"}}).to_string();
    let (ok, a, all) = run(&f, &f.acme_session, &sql);
    assert!(ok, "{all}");
    assert_eq!(
        (a["items"][0]["n"].clone(), a["items"][0]["top"].clone()),
        (json!(4), json!(90))
    );
    let (_, b, _) = run(&f, &f.globex_session, &sql);
    assert_eq!(
        (b["items"][0]["n"].clone(), b["items"][0]["top"].clone()),
        (json!(1), json!(99))
    );
}

#[tokio::test]
async fn paging_with_next_token_returns_every_item_once() {
    let f = fixture().await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut req =
            json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "limit": 1}});
        if let Some(t) = &token {
            req["inputs"]["nextToken"] = json!(t);
        }
        let (ok, v, all) = run(&f, &f.acme_session, &req.to_string());
        assert!(ok, "{all}");
        for item in v["items"].as_array().expect("items") {
            seen.push(format!(
                "{}|{}",
                item["userId"]["S"], item["eventTime"]["N"]
            ));
        }
        token = v["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (4, 4), "{seen:?}");
    // A token used on another table is refused.
    let first = json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "limit": 1}});
    let (_, v, _) = run(&f, &f.acme_session, &first.to_string());
    let other = json!({"inputs": {"tableName": "Other_table", "operation": "scan", "nextToken": v["nextToken"]}});
    let (_, v, _) = run(&f, &f.acme_session, &other.to_string());
    assert_eq!(code(&v), "invalid_request");
}

#[tokio::test]
async fn key_rotation_keeps_credentials_readable_only_with_the_new_key() {
    let f = fixture().await;
    let new_file = f._dir.path().join("new.key");
    let new_secret = new_key(&new_file);
    let o = admin(
        &f,
        &[
            "rotate-key",
            "--new-key-file",
            new_file.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&new_secret));
    let req = seed_request().to_string();
    let (ok, v, all) = run_with_key(&f, &new_file, &f.acme_session, &req);
    assert!(ok && v["count"] == 2, "{all}");
    let (ok, v, _) = run_with_key(&f, &new_file, &f.globex_session, &req);
    assert!(ok && v["count"] == 1);
    let (ok, v, _) = run(&f, &f.acme_session, &req);
    assert!(
        !ok && code(&v) == "credentials_unreadable",
        "the old key no longer opens them"
    );
}

/// A minimal HTTP/1.1 exchange: (status, body).
fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
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
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn start_server(f: &Fixture) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = bin()
        .env("DYNAMO_CONNECTOR_LOG", "debug")
        .arg("--master-key-file")
        .arg(&f.key_file)
        .args(["serve", "--store"])
        .arg(&f.store)
        .args(["--listen", &addr])
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

#[tokio::test]
async fn the_seed_example_through_serve() {
    let f = fixture().await;
    let (mut server, addr) = start_server(&f);
    let req = seed_request().to_string();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/connectors/dynamo",
        Some(&f.acme_session),
        req.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["count"], 2);
    assert_eq!(v["items"][0]["big"]["N"], BIG);
    for (token, body, wanted_status, wanted_code) in [
        (None, req.clone(), 401, "unauthenticated"),
        (Some("forged"), req.clone(), 401, "unauthenticated"),
        (
            Some(f.acme_session.as_str()),
            "[1, 2]".to_string(),
            400,
            "invalid_request",
        ),
        (
            Some(f.acme_session.as_str()),
            json!({"inputs": {"tableName": "NoSuchTable", "operation": "scan"}}).to_string(),
            404,
            "table_not_found",
        ),
    ] {
        let (status, text) = http(
            &addr,
            "POST",
            "/v1/connectors/dynamo",
            token,
            body.as_bytes(),
        );
        assert_eq!(status, wanted_status, "{text}");
        let v: Value = serde_json::from_str(&text).expect("error JSON");
        assert_eq!(code(&v), wanted_code);
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = http(
        &addr,
        "POST",
        "/v1/connectors/dynamo",
        Some(&f.acme_session),
        &huge,
    );
    assert_eq!(status, 413, "request body limit");

    // Graceful shutdown on SIGTERM; then nothing it logged holds a secret.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not shut down");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "graceful exit");
    let mut logs = String::new();
    if let Some(mut e) = server.stderr.take() {
        let _ = e.read_to_string(&mut logs);
    }
    assert!(
        logs.contains("client 'acme'"),
        "debug logs were captured: {logs}"
    );
    assert_no_secret(&f, &logs);
}

#[tokio::test]
async fn cached_clients_follow_credential_changes() {
    use dynamo_connector::{Connector, MasterKey, MasterKeyCipher, SqliteStore, TenantResolver};
    use std::sync::Arc;
    let f = fixture().await;
    let key = MasterKey::load(Some(&f.key_file)).expect("key");
    let store = Arc::new(SqliteStore::open(&f.store).expect("store"));
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key.clone())),
    );
    let connector = Connector::new(Arc::new(resolver));
    let req = seed_request().to_string();
    let first = connector
        .handle(Some(&f.acme_session), req.as_bytes())
        .await
        .expect("works");
    assert_eq!(first["count"], 2);
    // Same process, same cache: new credentials must take effect at once.
    let rejected = dynamo_connector::Credentials::from_json(
        br#"{"accessKeyId":"not_valid!","secretAccessKey":"x"}"#,
    )
    .expect("creds");
    store.set_credentials(&key, "acme", &rejected).expect("set");
    let err = connector
        .handle(Some(&f.acme_session), req.as_bytes())
        .await
        .expect_err("stale client reused");
    assert_eq!(err.code.as_str(), "access_denied");
}
