//! The `sql` operation over values the schema sample missed, and its schema cache.

use dynamo_testkit::{
    FaultConfig, FaultProxy, TRAP_TABLE_ITEMS, TrapTable, local_client_as, local_endpoint,
    trap_table,
};
use serde_json::{Value, json};

use crate::fixture::*;

/// A trap table of Acme's named after `name`, and Acme's endpoint behind a
/// proxy that counts its requests (samples among them).
async fn acme_trap_table_behind_proxy(f: &Fixture, name: &str) -> (TrapTable, FaultProxy) {
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = trap_table(&client, name).await.expect("trap table");
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig::none(),
    )
    .await
    .expect("proxy");
    set_endpoint(f, "acme", &proxy.endpoint());
    (table, proxy)
}

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_values_the_sample_missed_answers_exactly_with_notices_and_caches_schemas() {
    let f = fixture().await;
    let (table, proxy) = acme_trap_table_behind_proxy(&f, "traps").await;
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
        4,
        "ListTables, DescribeTable, DescribeTimeToLive, GetItem"
    );

    // Another tenant's store entries are its own: globex has no such table.
    let (_, other, _) = run(
        &f,
        &f.globex_session,
        &json!({"inputs": {"operation": "sql", "sql": get}}).to_string(),
    );
    assert_eq!(code(&other), "table_not_found", "{other}");
}

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_above_config_max_capacity_is_refused_before_reading_and_estimates_are_answered() {
    let f = fixture().await;
    let (table, proxy) = acme_trap_table_behind_proxy(&f, "ceiling").await;
    let sql = |sql: String, max: f64| {
        json!({"inputs": {"operation": "sql", "sql": sql}, "config": {"maxCapacity": max}})
            .to_string()
    };
    // Sample the table first (the schema is stored), so the refused request's
    // reads are its own.
    let count = format!("SELECT count(*) AS n FROM \"{}\"", table.name);
    let (ok, v, all) = run(&f, &f.acme_session, &sql(count.clone(), 1000.0));
    assert!(ok, "{all}");
    let estimated = v["estimatedCapacity"].as_f64().expect("estimatedCapacity");
    let consumed = v["consumedCapacity"].as_f64().expect("consumedCapacity");
    assert!(
        estimated > 0.0 && (estimated / consumed).max(consumed / estimated) <= 1.2,
        "{v}"
    );

    let before = proxy.counts();
    let (ok, refused, all) = run(&f, &f.acme_session, &sql(count, estimated / 2.0));
    assert!(!ok, "{all}");
    assert_eq!(code(&refused), "capacity_exceeded", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused before reading: a Scan of table")
            && message.contains("raise config.maxCapacity"),
        "{message}"
    );
    assert_eq!(proxy.counts().scans, before.scans, "no Scan was sent");
    assert_no_secret(&f, &all);
}

/// A tenant's table whose sort key is ISO-8601 text and whose items expire:
/// the connector's `sql` reads time as a type and hides expired items, as
/// the library does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_reads_iso_text_as_time_pushes_ranges_and_hides_expired_items() {
    use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
    let f = fixture().await;
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = dynamo_testkit::unique_name("Readings");
    dynamo_testkit::TableSpec::new(&table, "sensor", T::S)
        .sort_key("at", T::S)
        .create(&client)
        .await
        .expect("create");
    dynamo_testkit::enable_time_to_live(&client, &table, "expires")
        .await
        .expect("enable TTL");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // Ten readings on ten days; the first three expired an hour ago.
    let items = (0..10u64)
        .map(|d| {
            let mut item = std::collections::HashMap::from([
                ("sensor".to_string(), AV::S("s1".into())),
                (
                    "at".to_string(),
                    AV::S(format!("2025-11-{:02}T06:00:00Z", 10 + d)),
                ),
                ("value".to_string(), AV::N(d.to_string())),
            ]);
            if d < 3 {
                item.insert("expires".to_string(), AV::N((now - 3600).to_string()));
            }
            item
        })
        .collect();
    dynamo_testkit::put_items(&client, &table, items)
        .await
        .expect("put");
    let sql = format!(
        "SELECT at, value FROM \"{table}\" WHERE sensor = 's1' \
         AND at >= TIMESTAMP '2025-11-11' AND at < TIMESTAMP '2025-11-15' ORDER BY at"
    );
    let (ok, v, all) = run(
        &f,
        &f.acme_session,
        &json!({"inputs": {"operation": "sql", "sql": sql}}).to_string(),
    );
    assert!(ok, "{all}");
    // 11th and 12th expired; 13th and 14th in the range.
    let got: Vec<String> = v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {v}"))
        .iter()
        .map(|row| format!("{}|{}", row["at"], row["value"]))
        .collect();
    assert_eq!(
        got,
        vec![
            "\"2025-11-13T06:00:00Z\"|3".to_string(),
            "\"2025-11-14T06:00:00Z\"|4".to_string()
        ],
        "{v}"
    );
    let explain = format!("EXPLAIN {sql}");
    let (ok, v, all) = run(
        &f,
        &f.acme_session,
        &json!({"inputs": {"operation": "sql", "sql": explain}}).to_string(),
    );
    assert!(ok, "{all}");
    let text = v.to_string();
    assert!(
        text.contains("operation=Query") && text.contains("2025-11-11T00:00:00"),
        "the range is in the key condition: {text}"
    );
    assert!(
        text.contains("attribute_not_exists"),
        "expired items are filtered: {text}"
    );
}
