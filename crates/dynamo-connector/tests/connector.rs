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
use dynamo_testkit::{
    Fault, FaultConfig, FaultProxy, TRAP_TABLE_ITEMS, TableSpec, create_table, local_client_as,
    local_endpoint, put_items, trap_table,
};
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
    /// Acme's access key id: its DynamoDB Local database, for extra tables.
    acme_key: String,
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

fn run_with_stdin(cmd: Command, stdin: Option<&str>) -> Output {
    run_with_bytes(cmd, stdin.map(str::as_bytes))
}

fn run_with_bytes(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
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
    run_bytes(f, key, session, request.as_bytes())
}

fn run_bytes(f: &Fixture, key: &Path, session: &str, request: &[u8]) -> (bool, Value, String) {
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

/// Points `client`'s DynamoDB service at `endpoint`.
fn set_endpoint(f: &Fixture, client: &str, endpoint: &str) {
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

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_change_no_answer() {
    let f = fixture().await;
    let req = seed_request().to_string();
    let (ok, clean, all) = run(&f, &f.acme_session, &req);
    assert!(ok, "{all}");
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig::mixed(0.10, 7),
    )
    .await
    .expect("proxy");
    set_endpoint(&f, "acme", &proxy.endpoint());
    for _ in 0..20 {
        let (ok, v, all) = run(&f, &f.acme_session, &req);
        assert!(ok, "{all}");
        assert_eq!(v["items"], clean["items"]);
    }
    assert!(proxy.counts().total_faults() > 0, "{:?}", proxy.counts());
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

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_values_the_sample_missed_answers_exactly_with_notices_and_caches_schemas() {
    let f = fixture().await;
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = trap_table(&client, "traps").await.expect("trap table");
    // Through a proxy that counts the Scans (samples among them).
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig::none(),
    )
    .await
    .expect("proxy");
    set_endpoint(&f, "acme", &proxy.endpoint());
    let (year, title) = &table.traps.rating;
    let sql = format!(
        "SELECT max(votes) AS v, count(code) AS c, \
         sum(CASE WHEN \"year\" = {year} AND title = '{title}' THEN info['rating'] END) AS r \
         FROM \"{}\"",
        table.name
    );
    let request = json!({"inputs": {"operation": "sql", "sql": sql}}).to_string();
    let (ok, v, all) = run(&f, &f.acme_session, &request);
    assert!(ok, "{all}");
    let row = &v["items"][0];
    assert_eq!(row["v"].to_string(), "123456789012345678901234", "{v}");
    assert_eq!(row["c"], json!(TRAP_TABLE_ITEMS), "{v}");
    assert_eq!(row["r"].to_string(), "7.123456", "{v}");
    let notices: Vec<&str> = v["notices"]
        .as_array()
        .unwrap_or_else(|| panic!("notices: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let all_notices = notices.join("\n");
    for column in ["'votes'", "'code'", "'info.rating'"] {
        assert!(all_notices.contains(column), "{column}: {all_notices}");
    }
    assert_no_secret(&f, &all);

    // The next request reads the widened schema from the store: same
    // answer, nothing to widen.
    let (ok, again, all) = run(&f, &f.acme_session, &request);
    assert!(ok, "{all}");
    assert_eq!(again["items"], v["items"]);
    assert!(again.get("notices").is_none(), "{again}");

    // A key read samples nothing: the only reads are the GetItem.
    let get = format!(
        "SELECT info['rating'] AS r FROM \"{}\" WHERE \"year\" = {year} AND title = '{title}'",
        table.name
    );
    let before = proxy.counts();
    let (ok, got, all) = run(
        &f,
        &f.acme_session,
        &json!({"inputs": {"operation": "sql", "sql": get}}).to_string(),
    );
    assert!(ok, "{all}");
    assert_eq!(got["items"][0]["r"].to_string(), "7.123456", "{got}");
    let after = proxy.counts();
    assert_eq!(after.scans, before.scans, "no sample: {after:?}");
    assert_eq!(
        after.requests - before.requests,
        3,
        "ListTables, DescribeTable, GetItem"
    );

    // Another tenant's store entries are its own: globex has no such table.
    let (_, other, _) = run(
        &f,
        &f.globex_session,
        &json!({"inputs": {"operation": "sql", "sql": get}}).to_string(),
    );
    assert_eq!(code(&other), "table_not_found", "{other}");
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

/// POSTs a request to the connector's endpoint: (status, body).
fn post_connector(addr: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    http(addr, "POST", "/v1/connectors/dynamo", token, body)
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
    let (status, body) = post_connector(&addr, Some(&f.acme_session), req.as_bytes());
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
        let (status, text) = post_connector(&addr, token, body.as_bytes());
        assert_eq!(status, wanted_status, "{text}");
        let v: Value = serde_json::from_str(&text).expect("error JSON");
        assert_eq!(code(&v), wanted_code);
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = post_connector(&addr, Some(&f.acme_session), &huge);
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

/// What a catalogue case changes before its request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// Acme as the fixture made it.
    Acme,
    /// No session token.
    NoSession,
    /// A token the store never issued.
    UnknownSession,
    /// A session that expired.
    ExpiredSession,
    /// A client with no DynamoDB service configured.
    NoService,
    /// A client with a service but no stored credentials.
    NoCredentials,
    /// Credentials DynamoDB does not recognise.
    RejectedCredentials,
    /// Another master key than the one the credentials were encrypted with.
    WrongMasterKey,
    /// Acme's endpoint behind the fault proxy, always answering with this fault.
    Fault(Fault),
    /// Acme's endpoint on a port nothing listens on.
    EndpointDown,
    /// Through `serve`, over HTTP.
    Http,
}

struct Case {
    id: &'static str,
    setup: Setup,
    /// The request body; `{seed}` is the seed's example request.
    body: &'static [u8],
    /// `code: text the message contains`, as the README shows it.
    error: &'static str,
}

const SEED_QUERY: &[u8] = b"{seed}";

const CASES: &[Case] = &[
    Case {
        id: "conn-malformed-json",
        setup: Setup::Acme,
        body: b"{not json",
        error: "invalid_request: request is not valid JSON: key must be a string at line 1 column 2",
    },
    Case {
        id: "conn-invalid-utf8",
        setup: Setup::Acme,
        body: b"{\"inputs\": {\"tableName\": \"\xff\xfe\"}}",
        error: "invalid_request: request is not valid JSON: invalid unicode code point at line 1 column 27",
    },
    Case {
        id: "conn-misspelt-field",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "scan", "filterExpresion": "x"}}"#,
        error: "invalid_request: unknown field 'inputs.filterExpresion'; did you mean 'filterExpression'?",
    },
    Case {
        id: "conn-unbound-placeholder",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u"}}"#,
        error: "invalid_request: placeholder :u is used in inputs.keyCondition but not defined in inputs.expressionAttributeValues",
    },
    Case {
        id: "conn-bad-dynamodb-json",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u", "expressionAttributeValues": {":u": {"X": "1"}}}}"#,
        error: "invalid_request: expressionAttributeValues[\":u\"].X: unknown DynamoDB type 'X' (use S, N, B, BOOL, NULL, SS, NS, BS, L or M)",
    },
    Case {
        id: "conn-39-digits",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u", "filterExpression": "big = :b", "expressionAttributeValues": {":u": {"S": "123456"}, ":b": {"N": "123456789012345678901234567890123456789"}}}}"#,
        error: "invalid_request: expressionAttributeValues[\":b\"].N: '123456789012345678901234567890123456789' is not a DynamoDB number (decimal digits, optional sign, fraction and exponent; at most 38 significant digits)",
    },
    Case {
        id: "conn-bad-expression",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "engagementScore = :s", "expressionAttributeValues": {":s": {"N": "1"}}}}"#,
        error: "invalid_request: DynamoDB Query on 'UserEngagement' failed: ValidationException: Query condition missed key schema element",
    },
    Case {
        id: "conn-bad-sql",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELEC * FROM UserEngagement"}}"#,
        error: "invalid_request: SQL error: ParserError(\"Expected: an SQL statement, found: SELEC at Line: 1, Column: 1\")",
    },
    Case {
        id: "conn-sql-write",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "DROP TABLE UserEngagement"}}"#,
        error: "invalid_request: Error during planning: DDL not supported: DropTable",
    },
    Case {
        id: "conn-table-not-found",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "NoSuchTable", "operation": "scan"}}"#,
        error: "table_not_found: table 'NoSuchTable' does not exist for this client (ResourceNotFoundException: Cannot do operations on a non-existent table)",
    },
    Case {
        id: "conn-no-session",
        setup: Setup::NoSession,
        body: SEED_QUERY,
        error: "unauthenticated: no session: send the header `Authorization: Bearer <session token>` with the request",
    },
    Case {
        id: "conn-unknown-session",
        setup: Setup::UnknownSession,
        body: SEED_QUERY,
        error: "unauthenticated: unknown session: log in again",
    },
    Case {
        id: "conn-expired-session",
        setup: Setup::ExpiredSession,
        body: SEED_QUERY,
        error: "unauthenticated: session expired: log in again",
    },
    Case {
        id: "conn-no-service",
        setup: Setup::NoService,
        body: SEED_QUERY,
        error: "service_not_configured: no DynamoDB service is configured for client 'noservice'",
    },
    Case {
        id: "conn-no-credentials",
        setup: Setup::NoCredentials,
        body: SEED_QUERY,
        error: "credentials_not_found: no DynamoDB credentials are stored for client 'nocreds'",
    },
    Case {
        id: "conn-wrong-credentials",
        setup: Setup::RejectedCredentials,
        body: SEED_QUERY,
        error: "access_denied: DynamoDB Query on 'UserEngagement' failed: UnrecognizedClientException: The Access Key ID or security token is invalid.",
    },
    Case {
        id: "conn-sql-wrong-credentials",
        setup: Setup::RejectedCredentials,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELECT count(*) FROM UserEngagement"}}"#,
        error: "access_denied: DynamoDB ListTables failed: UnrecognizedClientException: The Access Key ID or security token is invalid.",
    },
    Case {
        id: "conn-sql-validation",
        setup: Setup::Acme,
        body: b"{long-key-sql}",
        error: "invalid_request: DynamoDB GetItem on table 'UserEngagement' failed: ValidationException: Hash primary key values must be under 2048 bytes",
    },
    Case {
        id: "conn-undecryptable",
        setup: Setup::WrongMasterKey,
        body: SEED_QUERY,
        error: "credentials_unreadable: stored credentials of client 'acme' cannot be decrypted: the master key is wrong or the stored value was altered",
    },
    Case {
        id: "conn-throttled",
        setup: Setup::Fault(Fault::Throttle),
        body: SEED_QUERY,
        error: "throttled: DynamoDB throttled Query on 'UserEngagement' beyond the retry budget (ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded (injected)); retry later, lower config.maxItems, or raise the table's capacity (gave up after 10 attempts)",
    },
    Case {
        id: "conn-garbage",
        setup: Setup::Fault(Fault::Garbage),
        body: SEED_QUERY,
        error: "dynamodb_error: DynamoDB Query on 'UserEngagement' failed: unreadable answer (HTTP 200): unhandled error: Error at offset 0: unexpected token '<'",
    },
    Case {
        id: "conn-endpoint-down",
        setup: Setup::EndpointDown,
        body: SEED_QUERY,
        error: "dynamodb_error: DynamoDB Query on 'UserEngagement' failed: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111) (gave up after 10 attempts)",
    },
    Case {
        id: "conn-oversized",
        setup: Setup::Http,
        body: b"{big}",
        error: "invalid_request: request body is larger than 1048576 bytes (HTTP 413)",
    },
];

/// Runs one case: (`code: message`, everything printed).
async fn run_catalogue_case(f: &Fixture, case: &Case) -> (String, String) {
    let seed = seed_request().to_string();
    let body: Vec<u8> = match case.body {
        b"{seed}" => seed.into_bytes(),
        b"{long-key-sql}" => {
            let key = "x".repeat(3_000);
            let sql =
                format!("SELECT * FROM UserEngagement WHERE userId = '{key}' AND eventTime = 1");
            json!({"inputs": {"operation": "sql", "sql": sql}})
                .to_string()
                .into_bytes()
        }
        b"{big}" => {
            let pad = "x".repeat(1_100_000);
            format!(r#"{{"inputs": {{"tableName": "UserEngagement", "operation": "scan", "filterExpression": "{pad}"}}}}"#).into_bytes()
        }
        other => other.to_vec(),
    };
    let acme = f.acme_session.clone();
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    let mut _proxy = None;
    let fresh_client = |name: &str| {
        assert!(admin(f, &["client", "add", name], None).status.success());
        String::from_utf8_lossy(&admin(f, &["session", "issue", name], None).stdout)
            .trim()
            .to_string()
    };
    let (session, key) = match case.setup {
        Setup::Acme => (acme, f.key_file.clone()),
        Setup::NoSession => (String::new(), f.key_file.clone()),
        Setup::UnknownSession => ("dcs_not-a-session".to_string(), f.key_file.clone()),
        Setup::ExpiredSession => {
            // A session of its own client, whose lifetime then runs out.
            let session = fresh_client("expiring");
            store_db(f)
                .execute(
                    "UPDATE sessions SET expires_at = 1 WHERE client_id = 'expiring'",
                    [],
                )
                .expect("age the session");
            (session, f.key_file.clone())
        }
        Setup::NoService => (fresh_client("noservice"), f.key_file.clone()),
        Setup::NoCredentials | Setup::RejectedCredentials => {
            let name = if case.setup == Setup::NoCredentials {
                "nocreds"
            } else {
                "rejected"
            };
            let session = fresh_client(name);
            set_endpoint(f, name, &endpoint);
            if case.setup == Setup::RejectedCredentials {
                let creds =
                    json!({"accessKeyId": "not_a_valid_key!", "secretAccessKey": "x-secret-x"})
                        .to_string();
                assert!(
                    admin(f, &["credentials", "set", name], Some(&creds))
                        .status
                        .success()
                );
            }
            (session, f.key_file.clone())
        }
        Setup::WrongMasterKey => {
            let other = f._dir.path().join("other.key");
            new_key(&other);
            (acme, other)
        }
        Setup::Fault(fault) => {
            let proxy = FaultProxy::start(&endpoint, FaultConfig::only(fault, 1.0))
                .await
                .expect("proxy");
            set_endpoint(f, "acme", &proxy.endpoint());
            _proxy = Some(proxy);
            (acme, f.key_file.clone())
        }
        Setup::EndpointDown => {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            set_endpoint(f, "acme", &format!("http://127.0.0.1:{port}"));
            (acme, f.key_file.clone())
        }
        Setup::Http => {
            let (mut child, addr) = start_server(f);
            let (status, text) = post_connector(&addr, Some(&acme), &body);
            let _ = child.kill();
            let _ = child.wait();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return (
                format!(
                    "{}: {} (HTTP {status})",
                    code(&v),
                    v["error"]["message"].as_str().unwrap_or_default()
                ),
                text,
            );
        }
    };
    let (ok, v, all) = run_bytes(f, &key, &session, &body);
    if let (Setup::Fault(Fault::Throttle), Some(proxy)) = (case.setup, &_proxy) {
        // One request per attempt: the SDK's own retries are off, the Retrier decides.
        assert_eq!(proxy.counts().requests, 10, "{}", case.id);
    }
    if matches!(case.setup, Setup::Fault(_) | Setup::EndpointDown) {
        set_endpoint(f, "acme", &endpoint);
    }
    if ok {
        return (format!("answer: {v}"), all);
    }
    (
        format!(
            "{}: {}",
            code(&v),
            v["error"]["message"].as_str().unwrap_or_default()
        ),
        all,
    )
}

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_of_the_catalogue_gets_its_error() {
    let f = fixture().await;
    let mut wrong = Vec::new();
    for case in CASES {
        let (got, all) = run_catalogue_case(&f, case).await;
        assert_no_secret(&f, &all);
        if !got.contains(case.error) {
            wrong.push(format!(
                "{}:\n  wanted: {}\n  got:    {got}",
                case.id, case.error
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_readme_catalogue_matches_the_cases() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let id = cells.get(1)?.trim_matches('`');
            if !id.starts_with("conn-") {
                return None;
            }
            let error = cells.get(cells.len().checked_sub(2)?)?;
            Some((id.to_string(), error.trim_matches('`').trim().to_string()))
        })
        .collect();
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    let cases: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    assert_eq!(ids, cases, "README rows and test cases differ");
    for ((id, error), case) in rows.iter().zip(CASES) {
        assert_eq!(error, case.error, "{id}: README shows another error");
    }
}

// Multi-threaded: the proxy serves while this thread waits on sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_http_client_stops_the_read() {
    let f = fixture().await;
    // A table of five 1 MB pages in acme's database.
    let acme_key = f.secrets[1].clone();
    let client = local_client_as(&acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    create_table(&client, &TableSpec::new("Wide", "id", T::S))
        .await
        .expect("create");
    let pad = "x".repeat(30_000);
    let items = (0..150)
        .map(|i| {
            HashMap::from([
                ("id".to_string(), AV::S(format!("i{i}"))),
                ("pad".to_string(), AV::S(pad.clone())),
            ])
        })
        .collect();
    put_items(&client, "Wide", items).await.expect("put");
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig {
            slow_delay: Duration::from_millis(600),
            ..FaultConfig::only(Fault::Slow, 1.0)
        },
    )
    .await
    .expect("proxy");
    set_endpoint(&f, "acme", &proxy.endpoint());
    let (mut child, addr) = start_server(&f);
    let body = json!({"inputs": {"tableName": "Wide", "operation": "scan"}}).to_string();

    // A client that waits reads every page.
    let before = proxy.counts().requests;
    let (status, _) = post_connector(&addr, Some(&f.acme_session), body.as_bytes());
    assert_eq!(status, 200);
    let full = proxy.counts().requests - before;
    assert!(full >= 4, "a full read takes {full} requests");

    // A client that hangs up during the first page.
    let before = proxy.counts().requests;
    {
        let mut s = TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "POST /v1/connectors/dynamo HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            f.acme_session,
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_millis(3_000));
    let after_close = proxy.counts().requests - before;
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("full read: {full} requests; after a hang-up: {after_close}");
    assert!(
        after_close <= 2,
        "{after_close} requests after the client hung up (a full read is {full})"
    );
}

/// Pages through one read with `nextToken` under `config`, checking every
/// answer's caps; returns every item's `id` in the order returned.
async fn page_through(
    connector: &dynamo_connector::Connector,
    session: &str,
    inputs: &Value,
    config: &Value,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..500 {
        let mut request = json!({"inputs": inputs, "config": config});
        if let Some(t) = &token {
            request["inputs"]["nextToken"] = json!(t);
        }
        let v = connector
            .handle(Some(session), request.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{request}: {}", e.to_json()));
        let items = v["items"].as_array().expect("items");
        if let Some(max) = config["maxItems"].as_u64() {
            assert!(items.len() as u64 <= max, "{v}");
        }
        if let Some(max) = config["maxScanned"].as_u64() {
            assert!(v["scannedCount"].as_u64().expect("scanned") <= max, "{v}");
        }
        if let Some(limit) = inputs["limit"].as_u64() {
            assert!(v["scannedCount"].as_u64().expect("scanned") <= limit, "{v}");
        }
        for item in items {
            assert!(
                inputs.get("projection").is_none() || item.get("pk").is_none(),
                "an added key attribute was returned: {item}"
            );
            seen.push(item["id"]["S"].as_str().expect("id").to_string());
        }
        token = v["nextToken"].as_str().map(str::to_string);
        assert_eq!(v["complete"], json!(token.is_none()), "{v}");
        if token.is_none() {
            assert!(v["stoppedBy"].is_null(), "{v}");
            return seen;
        }
        assert!(
            v["stoppedBy"].is_string(),
            "an early stop names its cap: {v}"
        );
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn caps_are_exact_and_paging_under_any_of_them_returns_every_item_once() {
    use dynamo_connector::{Connector, MasterKey, MasterKeyCipher, SqliteStore, TenantResolver};
    use std::sync::Arc;
    let f = fixture().await;
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 150 items in 3 partitions; GSI byGroup (group, n); score 0..149.
    let table = dynamo_testkit::unique_name("Paging");
    create_table(
        &client,
        &TableSpec::new(&table, "pk", T::S)
            .sort_key("n", T::N)
            .index(dynamo_testkit::IndexSpec {
                name: "byGroup".into(),
                local: false,
                partition_key: ("group".into(), T::S),
                sort_key: Some(("n".into(), T::N)),
                projection: None,
            }),
    )
    .await
    .expect("create");
    let total = 150;
    let items = (0..total)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 3))),
                ("n".to_string(), AV::N(i.to_string())),
                ("id".to_string(), AV::S(format!("i{i:03}"))),
                ("group".to_string(), AV::S(format!("g{}", i % 2))),
                ("score".to_string(), AV::N(i.to_string())),
                ("pad".to_string(), AV::S("x".repeat(100))),
            ])
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");

    let key = MasterKey::load(Some(&f.key_file)).expect("key");
    let store = Arc::new(SqliteStore::open(&f.store).expect("store"));
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store,
        Arc::new(MasterKeyCipher(key)),
    );
    let connector = Connector::new(Arc::new(resolver));

    let filters = [
        ("nothing", "score > :v", 1_000, 0),
        ("some", "score >= :v", 100, total - 100),
        ("all", "score >= :v", 0, total),
    ];
    let configs = [
        json!({"maxItems": 7}),
        json!({"maxScanned": 13}),
        json!({"maxCapacity": 1}),
        json!({"maxBytes": 700}),
        json!({"maxItems": 4, "maxScanned": 9}),
    ];
    for (what, filter, v, expected) in filters {
        for config in &configs {
            for limit in [None, Some(11)] {
                let mut inputs = json!({"tableName": table, "operation": "scan",
                    "filterExpression": filter, "expressionAttributeValues": {":v": {"N": v.to_string()}}});
                if let Some(l) = limit {
                    inputs["limit"] = json!(l);
                }
                let mut seen = page_through(&connector, &f.acme_session, &inputs, config).await;
                let n = seen.len();
                seen.sort();
                seen.dedup();
                assert_eq!(
                    (n, seen.len()),
                    (expected, expected),
                    "filter matching {what}, config {config}, limit {limit:?}: lost or repeated items"
                );
            }
        }
    }

    // An index Query with a projection that leaves the keys out: answers are
    // cut after any item, keys are not returned, nothing lost or repeated.
    let inputs = json!({"tableName": table, "operation": "query", "indexName": "byGroup",
        "keyCondition": "#g = :g", "filterExpression": "score >= :s",
        "expressionAttributeNames": {"#g": "group"},
        "expressionAttributeValues": {":g": {"S": "g1"}, ":s": {"N": "20"}},
        "projection": "id, score"});
    let mut seen = page_through(
        &connector,
        &f.acme_session,
        &inputs,
        &json!({"maxItems": 6}),
    )
    .await;
    let expected = (0..total).filter(|i| i % 2 == 1 && *i >= 20).count();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n, seen.len()), (expected, expected));

    // DynamoDB's Limit: one request evaluating 6 items, whatever matches.
    let one = json!({"inputs": {"tableName": table, "operation": "scan", "limit": 6,
        "filterExpression": "score > :v", "expressionAttributeValues": {":v": {"N": "1000"}}}});
    let v = connector
        .handle(Some(&f.acme_session), one.to_string().as_bytes())
        .await
        .expect("scan");
    assert_eq!(
        (
            v["scannedCount"].clone(),
            v["count"].clone(),
            v["stoppedBy"].clone()
        ),
        (json!(6), json!(0), json!("limit")),
        "{v}"
    );
    assert!(v["nextToken"].is_string());

    // maxItems cuts inside a page: exactly that many items.
    let capped =
        json!({"inputs": {"tableName": table, "operation": "scan"}, "config": {"maxItems": 5}});
    let v = connector
        .handle(Some(&f.acme_session), capped.to_string().as_bytes())
        .await
        .expect("scan");
    assert_eq!(
        (v["count"].clone(), v["stoppedBy"].clone()),
        (json!(5), json!("maxItems")),
        "{v}"
    );
}
