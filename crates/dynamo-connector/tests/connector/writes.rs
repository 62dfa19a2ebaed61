//! Writes through the connector: a client is read-only until an
//! administrator allows it; then `sql` over HTTP and Flight SQL — the ADBC
//! driver's ExecuteUpdate and bulk ingest, run by the project's Python as a
//! process — write its own DynamoDB tables, and the usage ledger counts
//! the items and write capacity.

use dynamo_testkit::local_client_as;
use serde_json::{Value, json};

use crate::fixture::*;

/// An HTTP `sql` request: (status, answer).
fn sql(addr: &str, token: &str, sql: &str) -> (u16, Value) {
    let body = json!({"inputs": {"operation": "sql", "sql": sql}}).to_string();
    let (status, text) = post_connector(addr, Some(token), body.as_bytes());
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}")),
    )
}

/// The items of acme's `UserEngagement` whose `userId` is `user`: (eventTime, score).
async fn items_of(f: &Fixture, user: &str) -> Vec<(String, String)> {
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = client
        .query()
        .table_name("UserEngagement")
        .key_condition_expression("userId = :u")
        .expression_attribute_values(
            ":u",
            aws_sdk_dynamodb::types::AttributeValue::S(user.into()),
        )
        .send()
        .await
        .expect("query");
    out.items()
        .iter()
        .map(|i| {
            let n = |k: &str| {
                i.get(k)
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (n("eventTime"), n("engagementScore"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_allowed_to_write_writes_over_http_and_flight_sql() {
    let f = fixture().await;
    let (mut server, http_addr, flight_addr) = start_both(&f);
    let insert = "INSERT INTO \"UserEngagement\" (\"userId\", \"eventTime\", \"engagementScore\") \
                  VALUES ('http', 1, 5), ('http', 2, 6)";

    // Read-only by default: refused with its own code, nothing written.
    let (status, answer) = sql(&http_addr, &f.acme_session, insert);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(code(&answer), "write_not_allowed", "{answer}");
    assert!(items_of(&f, "http").await.is_empty());

    let o = admin(&f, &["client", "writes", "acme", "on"], None);
    assert!(o.status.success(), "{}", text(&o));
    let (status, answer) = sql(&http_addr, &f.acme_session, insert);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"], json!([{"count": 2}]), "{answer}");
    assert_eq!(
        items_of(&f, "http").await,
        vec![
            ("1".to_string(), "5".to_string()),
            ("2".to_string(), "6".to_string())
        ]
    );
    // Write access is to the client's tables, never to the server's files.
    let target = f._dir.path().join("copied.csv");
    let copy = format!(
        "COPY (SELECT * FROM \"UserEngagement\") TO '{}' STORED AS CSV",
        target.display()
    );
    let (status, answer) = sql(&http_addr, &f.acme_session, &copy);
    assert_eq!(status, 400, "{answer}");
    assert!(!target.exists(), "COPY wrote a server file: {answer}");
    // A duplicate key is the table's own error, named.
    let (status, answer) = sql(&http_addr, &f.acme_session, insert);
    assert_ne!(status, 200, "{answer}");
    assert!(answer.to_string().contains("already exists"), "{answer}");

    // Flight SQL through the ADBC driver, as a process.
    let (got, printed) = adbc_script(
        "adbc_writes.py",
        &flight_addr,
        &[&f.acme_session, &f.globex_session],
    );
    assert_eq!(got["insert"], json!([{"count": 2}]), "{got}");
    assert_eq!(got["update"], json!(1), "{got}");
    assert_eq!(got["delete"], json!(1), "{got}");
    assert_eq!(got["ingest"], json!(50), "{got}");
    assert_eq!(
        items_of(&f, "adbc").await,
        vec![("1".to_string(), "70".to_string())]
    );
    let mut ingested = 0;
    for user in 0..5 {
        ingested += items_of(&f, &format!("ingest{user}")).await.len();
    }
    assert_eq!(ingested, 50);
    // Ingesting the same rows again: INSERT semantics, the first existing key stops it.
    assert!(
        got["ingest_again"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already exists"),
        "{got}"
    );
    assert!(
        got["create"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("created outside the connector"),
        "{got}"
    );
    // The read-only client is refused, its table unchanged.
    for case in ["read_only_ingest", "read_only_update"] {
        assert_eq!(got[case]["status"], "UNAUTHORIZED", "{case}: {got}");
        assert!(
            got[case]["message"]
                .as_str()
                .unwrap_or("")
                .contains("write_not_allowed"),
            "{case}: {got}"
        );
    }
    let globex = local_client_as(&f.secrets[2], "us-east-1")
        .await
        .expect("client");
    let count = globex
        .scan()
        .table_name("UserEngagement")
        .send()
        .await
        .expect("scan")
        .count();
    assert_eq!(count, 1, "globex's table is as seeded");

    stop_gracefully(&mut server);
    // The ledger counts what was written and its capacity.
    let o = admin(&f, &["usage", "--client", "acme", "--format", "json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).expect("usage JSON");
    let written: u64 = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["itemsWritten"].as_u64().unwrap_or(0))
        .sum();
    let wcu: f64 = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["wcu"].as_f64().unwrap_or(0.0))
        .sum();
    // 2 (HTTP) + 2 + 1 + 1 (Flight) + 50 (ingest), and the failed duplicate attempts wrote nothing.
    assert_eq!(written, 56, "{rows}");
    assert!(wcu >= 56.0, "{rows}");
    assert_no_secret(&f, &printed);
}
