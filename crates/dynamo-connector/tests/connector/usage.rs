//! Usage per client, table and day; daily quotas; Prometheus metrics — the
//! server as a process, its `/metrics` read by the Prometheus project's own
//! parser (a Python process), the day's reset with an injected clock.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use dynamo_connector::{
    Clock, Connector, ErrorCode, MasterKey, MasterKeyCipher, SqliteStore, TenantResolver,
    UsageRecorder, UsageStore,
};
use serde_json::{Value, json};

use crate::fixture::*;

/// An HTTP/1.1 exchange with a text body: (status, head in lower case, body).
fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    http_full(addr, method, path, token, body.as_bytes())
}

/// Parses `/metrics` with prometheus_client's OpenMetrics parser: samples.
fn parse_metrics(text: &str) -> Vec<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/prometheus/parse_metrics.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("sample"))
        .collect()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn sample_sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap_or(0.0))
        .sum()
}

/// Stops `serve` with SIGTERM; it must exit cleanly.
fn stop(mut server: Child) {
    assert!(stop_gracefully(&mut server).success(), "graceful exit");
}

/// What a client's answers said, to compare with the recorded usage.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    requests: u64,
    items_read: u64,
    rcu: f64,
    errors: BTreeMap<String, u64>,
}

#[tokio::test]
async fn usage_equals_the_answers_and_survives_shutdown_restart_and_quota() {
    let f = fixture().await;
    // Nothing is written before shutdown: what the store holds after it
    // was written by the graceful shutdown.
    let (server, addr) = start_server_with(&f, &["--usage-flush-ms", "600000"]);
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("USAGE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7),
    );
    let mut expected: HashMap<&str, Expected> = HashMap::new();
    let mut by_code: HashMap<String, u64> = HashMap::new();
    for _ in 0..40 {
        let (client, token) = if rng.bool() {
            ("acme", f.acme_session.as_str())
        } else {
            ("globex", f.globex_session.as_str())
        };
        let request = match rng.u8(0..5) {
            0 => seed_request(),
            1 => json!({"inputs": {"tableName": "UserEngagement", "operation": "scan"},
                        "config": {"maxItems": rng.u32(1..5)}}),
            2 => json!({"inputs": {"operation": "sql",
                        "sql": format!("SELECT count(*) AS n FROM \"UserEngagement\" WHERE \"engagementScore\" > {}", rng.u32(0..100))}}),
            3 => json!({"inputs": {"tableName": "NoSuchTable", "operation": "scan"}}),
            _ => json!({"inputs": {"operation": "sql", "sql": "SELECT * FROM \"NoSuchTable\""}}),
        };
        let (status, _, body) = exchange(
            &addr,
            "POST",
            "/v1/connectors/dynamo",
            Some(token),
            &request.to_string(),
        );
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let e = expected.entry(client).or_default();
        e.requests += 1;
        if status == 200 {
            e.items_read += v["scannedCount"].as_u64().expect("scannedCount");
            e.rcu += v["consumedCapacity"].as_f64().expect("consumedCapacity");
            *by_code.entry("ok".into()).or_default() += 1;
        } else {
            let c = code(&v).to_string();
            *e.errors.entry(c.clone()).or_default() += 1;
            *by_code.entry(c).or_default() += 1;
        }
    }
    assert!(
        expected
            .values()
            .all(|e| e.rcu > 0.0 && !e.errors.is_empty()),
        "{expected:?}"
    );

    // /metrics, as Prometheus reads it.
    let (status, head, text) = exchange(&addr, "GET", "/metrics", None, "");
    assert_eq!(status, 200, "{text}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let samples = parse_metrics(&text);
    for (code, n) in &by_code {
        assert_eq!(
            sample_sum(
                &samples,
                "dynamo_connector_requests_total",
                &[("code", code)]
            ),
            *n as f64,
            "{code}"
        );
    }
    assert_eq!(
        sample_sum(
            &samples,
            "dynamo_connector_request_duration_seconds_count",
            &[]
        ),
        40.0
    );
    for (client, e) in &expected {
        let rcu = sample_sum(
            &samples,
            "dynamo_connector_read_capacity_units_total",
            &[("client", client)],
        );
        assert!((rcu - e.rcu).abs() < 1e-6, "{client}: {rcu} vs {}", e.rcu);
    }
    assert!(
        sample_sum(
            &samples,
            "dynamo_connector_schema_cache_lookups_total",
            &[("result", "hit")]
        ) > 0.0,
        "stored schemas are used: {text}"
    );
    stop(server);

    // What the store holds equals what the answers said.
    let o = admin(&f, &["usage", "--format", "json"], None);
    assert!(o.status.success(), "{}", text_of(&o));
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).expect("usage JSON");
    for (client, e) in &expected {
        let mine: Vec<&Value> = rows.iter().filter(|r| r["clientId"] == *client).collect();
        let mut got = Expected::default();
        for r in &mine {
            got.requests += r["requests"].as_u64().expect("requests");
            got.items_read += r["itemsRead"].as_u64().expect("itemsRead");
            got.rcu += r["rcu"].as_f64().expect("rcu");
            for (code, n) in r["errors"].as_object().expect("errors") {
                *got.errors.entry(code.clone()).or_default() += n.as_u64().expect("count");
            }
        }
        assert!((got.rcu - e.rcu).abs() < 1e-6, "{client}: {got:?} vs {e:?}");
        got.rcu = e.rcu;
        assert_eq!(&got, e, "{client}");
        assert!(
            mine.iter().any(|r| r["table"] == "UserEngagement"),
            "{mine:?}"
        );
        assert!(
            mine.iter()
                .any(|r| r["table"] == "NoSuchTable" || r["table"] == "(sql)")
        );
    }
    let table = admin(&f, &["usage", "--client", "acme"], None);
    let shown = String::from_utf8_lossy(&table.stdout);
    assert!(
        shown.starts_with("client") && shown.contains("acme") && !shown.contains("globex"),
        "{shown}"
    );

    // A quota at what acme used today: after a restart acme is refused
    // (the store remembers), globex is not.
    let used = expected["acme"].rcu.to_string();
    let o = admin(&f, &["quota", "set", "acme", "--daily-rcu", &used], None);
    assert!(o.status.success(), "{}", text_of(&o));
    let (server, addr) = start_server(&f);
    let body = seed_request().to_string();
    let (status, head, text) = exchange(
        &addr,
        "POST",
        "/v1/connectors/dynamo",
        Some(&f.acme_session),
        &body,
    );
    assert_eq!(status, 429, "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(code(&v), "quota_exceeded", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("T00:00:00Z"),
        "{v}"
    );
    assert!(head.contains("retry-after: "), "{head}");
    let (status, _, text) = exchange(
        &addr,
        "POST",
        "/v1/connectors/dynamo",
        Some(&f.globex_session),
        &body,
    );
    assert_eq!(status, 200, "{text}");
    stop(server);
    let o = admin(&f, &["usage", "--client", "acme", "--format", "csv"], None);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.contains("quota_exceeded=1"),
        "the refusal is counted: {csv}"
    );
}

fn text_of(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(Mutex<SystemTime>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock")
    }
}

/// The fixture's store, and a resolver over it.
fn store_and_resolver(f: &Fixture) -> (Arc<SqliteStore>, TenantResolver) {
    let store = Arc::new(SqliteStore::open(&f.store).expect("store"));
    let key = MasterKey::load(Some(&f.key_file)).expect("key");
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key)),
    );
    (store, resolver)
}

#[tokio::test]
async fn a_quota_refuses_until_the_next_utc_day() {
    let f = fixture().await;
    let (store, resolver) = store_and_resolver(&f);
    // 2026-11-30 23:00 UTC.
    let clock = Arc::new(TestClock(Mutex::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_079_600),
    )));
    let usage = UsageRecorder::start(store.clone(), clock.clone(), Duration::from_millis(5));
    let connector = Connector::new(Arc::new(resolver)).with_usage(Arc::clone(&usage));
    store.set_daily_quota("acme", Some(1.0)).expect("quota");
    let scan = json!({"inputs": {"tableName": "UserEngagement", "operation": "scan"}}).to_string();
    let mut consumed = 0.0;
    let refusal = loop {
        match connector
            .handle(Some(&f.acme_session), scan.as_bytes())
            .await
        {
            Ok(v) => consumed += v["consumedCapacity"].as_f64().expect("capacity"),
            Err(e) => break e,
        }
        assert!(consumed < 10.0, "never refused");
    };
    assert_eq!(refusal.code, ErrorCode::QuotaExceeded, "{refusal}");
    assert!(
        consumed >= 1.0,
        "refused only once the quota is used: {consumed}"
    );
    assert!(
        refusal
            .message
            .contains("on 2026-11-30 (UTC); the quota resets at 2026-12-01T00:00:00Z, in 1h 00m"),
        "{}",
        refusal.message
    );
    assert_eq!(refusal.retry_after_secs, Some(3_600));
    usage.flush().await;
    assert!((store.day_rcu("acme", "2026-11-30").expect("sum") - consumed).abs() < 1e-9);
    // The next day, the quota starts again.
    *clock.0.lock().expect("clock") += Duration::from_secs(3_600);
    let v = connector
        .handle(Some(&f.acme_session), scan.as_bytes())
        .await
        .expect("a new day");
    usage.close().await;
    assert_eq!(
        store.day_rcu("acme", "2026-12-01").expect("sum"),
        v["consumedCapacity"].as_f64().expect("capacity")
    );
}

#[tokio::test]
async fn a_statement_that_fails_after_reading_is_billed_for_what_it_read() {
    let f = fixture().await;
    let (store, resolver) = store_and_resolver(&f);
    let clock = Arc::new(TestClock(Mutex::new(SystemTime::now())));
    let usage = UsageRecorder::start(store.clone(), clock.clone(), Duration::from_secs(60));
    let connector = Connector::new(Arc::new(resolver)).with_usage(Arc::clone(&usage));
    // The division fails only once the rows are read.
    let sql = json!({"inputs": {"operation": "sql",
        "sql": "SELECT \"engagementScore\" / 0 AS x FROM UserEngagement"}})
    .to_string();
    let err = connector
        .handle(Some(&f.acme_session), sql.as_bytes())
        .await
        .expect_err("divides by zero");
    usage.close().await;
    let rows = store.usage(&Default::default()).expect("usage");
    let row = rows
        .iter()
        .find(|r| r.client_id == "acme" && r.table == "UserEngagement")
        .unwrap_or_else(|| panic!("the table read is counted: {rows:?}"));
    assert!(row.rcu > 0.0 && row.items_read > 0, "{row:?}");
    assert_eq!(row.errors.get(err.code.as_str()), Some(&1), "{row:?}");
    assert!(
        !rows.iter().any(|r| r.table == "(sql)"),
        "counted once: {rows:?}"
    );
}
