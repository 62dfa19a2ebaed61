//! Pushdown against DynamoDB Local: for a fixed dataset, each canonical query's
//! operation and items scanned, and every answer equal to the unpushed answer.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, create_table, put_items, unique_name};

use crate::common::{
    client, rows, run_with_plan, scan_metric, sorted_rows, with_and_without_pushdown,
};

const USERS: usize = 20;
const EVENTS: usize = 25;

/// `Events`: user (S) + ts (N); GSI byKind (kind S, score N); LSI byAmount (amount N).
/// `score` is missing on every 4th item and `amount` on every 5th (sparse indexes).
async fn events() -> (String, aws_sdk_dynamodb::Client) {
    let client = client().await;
    let table = unique_name("Events");
    let spec = TableSpec::new(&table, "user", T::S)
        .sort_key("ts", T::N)
        .global_index("byKind", ("kind", T::S), Some(("score", T::N)))
        .local_index("byAmount", ("amount", T::N));
    create_table(&client, &spec).await.expect("create");
    let kinds = ["click", "view", "buy"];
    let mut items = Vec::new();
    for u in 0..USERS {
        for t in 0..EVENTS {
            let i = u * EVENTS + t;
            let mut item = HashMap::from([
                ("user".to_string(), AV::S(format!("u{u:02}"))),
                ("ts".to_string(), AV::N(t.to_string())),
                ("kind".to_string(), AV::S(kinds[i % 3].to_string())),
                (
                    "status".to_string(),
                    AV::S(
                        if i.is_multiple_of(7) {
                            "active"
                        } else {
                            "idle"
                        }
                        .to_string(),
                    ),
                ),
                ("name".to_string(), AV::S(format!("event {i}"))),
            ]);
            if !i.is_multiple_of(4) {
                item.insert("score".to_string(), AV::N((i % 100).to_string()));
            }
            if !i.is_multiple_of(5) {
                item.insert(
                    "amount".to_string(),
                    AV::N(format!("{}.{:02}", i % 40, i % 100)),
                );
            }
            items.push(item);
        }
    }
    put_items(&client, &table, items).await.expect("put");
    (table, client)
}

struct Expect {
    sql: &'static str,
    operation: &'static str,
    index: Option<&'static str>,
    scanned: usize,
    rows: usize,
}

#[tokio::test]
async fn canonical_queries_read_only_what_they_need() {
    let (table, client) = events().await;
    let (on, off) = with_and_without_pushdown(&client, &table, 4).await;
    let total = USERS * EVENTS;
    // Counts computed from the generator, independently of the engine.
    let click_over_50 = (0..total)
        .filter(|i| i % 3 == 0 && i % 4 != 0 && i % 100 > 50)
        .count();
    let u03_amount_ge_10 = (75..100).filter(|i| i % 5 != 0 && i % 40 >= 10).count();
    let active = (0..total).filter(|i| i % 7 == 0).count();
    let cases = [
        Expect {
            sql: "SELECT ts, kind FROM t WHERE user = 'u03'",
            operation: "Query",
            index: None,
            scanned: EVENTS,
            rows: EVENTS,
        },
        Expect {
            sql: "SELECT ts FROM t WHERE user = 'u03' AND ts BETWEEN 5 AND 9",
            operation: "Query",
            index: None,
            scanned: 5,
            rows: 5,
        },
        Expect {
            sql: "SELECT ts FROM t WHERE user = 'u03' AND ts >= 5 AND ts < 9",
            operation: "Query",
            index: None,
            scanned: 5,
            rows: 4,
        },
        Expect {
            sql: "SELECT name FROM t WHERE user = 'u03' AND ts = 7",
            operation: "GetItem",
            index: None,
            scanned: 1,
            rows: 1,
        },
        Expect {
            sql: "SELECT name FROM t WHERE user IN ('u01', 'u02') AND ts IN (1, 2, 3)",
            operation: "BatchGetItem",
            index: None,
            scanned: 6,
            rows: 6,
        },
        Expect {
            sql: "SELECT ts FROM t WHERE user IN ('u01', 'u02', 'u02')",
            operation: "Query",
            index: None,
            scanned: 2 * EVENTS,
            rows: 2 * EVENTS,
        },
        Expect {
            sql: "SELECT user, ts FROM t WHERE kind = 'click' AND score > 50",
            operation: "Query",
            index: Some("byKind"),
            scanned: click_over_50,
            rows: click_over_50,
        },
        Expect {
            sql: "SELECT ts FROM t WHERE user = 'u03' AND amount >= 10",
            operation: "Query",
            index: Some("byAmount"),
            scanned: u03_amount_ge_10,
            rows: u03_amount_ge_10,
        },
        Expect {
            sql: "SELECT name FROM t WHERE status = 'active'",
            operation: "Scan",
            index: None,
            scanned: total,
            rows: active,
        },
        // byKind would miss items without `score`: a Scan is the only correct read.
        Expect {
            sql: "SELECT user, ts FROM t WHERE kind = 'click'",
            operation: "Scan",
            index: None,
            scanned: total,
            rows: total.div_ceil(3),
        },
    ];
    for case in cases {
        let sql = case.sql;
        let off_plan = expect_read(&on, &off, case, None).await;
        assert_eq!(
            crate::common::find_scan(&off_plan)
                .expect("exec")
                .operation(),
            "Scan",
            "{sql}"
        );
        assert_eq!(scan_metric(&off_plan, "scanned_count"), total, "{sql}");
    }
}

#[tokio::test]
async fn order_by_sort_key_desc_limit_reads_only_n_items() {
    let (table, client) = events().await;
    let (on, off) = with_and_without_pushdown(&client, &table, 4).await;
    let sql = "SELECT ts, kind FROM t WHERE user = 'u07' ORDER BY ts DESC LIMIT 3";
    let (batches, plan) = run_with_plan(&on, sql).await;
    assert_eq!(rows(&batches), vec!["24|view", "23|click", "22|buy"]);
    let scan = crate::common::find_scan(&plan).expect("exec");
    assert_eq!(
        (scan.operation(), scan.scan_forward(), scan.limit()),
        ("Query", false, Some(3))
    );
    assert_eq!(scan_metric(&plan, "scanned_count"), 3, "only 3 items read");
    let (unpushed, _) = run_with_plan(&off, sql).await;
    assert_eq!(rows(&batches), rows(&unpushed));

    // Ascending order is the Query's natural order: no sort, 4 items read.
    let sql = "SELECT ts FROM t WHERE user = 'u07' ORDER BY ts LIMIT 4";
    let (batches, plan) = run_with_plan(&on, sql).await;
    assert_eq!(rows(&batches), vec!["0", "1", "2", "3"]);
    assert_eq!(scan_metric(&plan, "scanned_count"), 4);
}

#[tokio::test]
async fn explain_shows_the_request_and_analyze_its_cost() {
    let (table, client) = events().await;
    let (on, _) = with_and_without_pushdown(&client, &table, 4).await;
    let text = rows(
        &crate::common::query(
            &on,
            "EXPLAIN SELECT name FROM t WHERE user = 'u01' AND ts > 20 AND status = 'idle'",
        )
        .await
        .expect("explain"),
    )
    .join("\n");
    assert!(text.contains("operation=Query"), "{text}");
    // Placeholders are numbered as in the request: projection, key condition, filter.
    assert!(
        text.contains("key_condition=[#n2 = :v0 AND #n3 > :v1]"),
        "{text}"
    );
    assert!(text.contains("filter=[#n1 = :v2]"), "{text}");
    assert!(text.contains("projection=[name, status]"), "{text}");
    assert!(
        text.contains("names={#n0=name, #n1=status, #n2=user, #n3=ts}"),
        "{text}"
    );
    assert!(
        text.contains(r#"values={:v0="u01", :v1=20, :v2="idle"}"#),
        "{text}"
    );
    let text = rows(
        &crate::common::query(&on, "EXPLAIN ANALYZE SELECT name FROM t WHERE user = 'u01'")
            .await
            .expect("analyze"),
    )
    .join("\n");
    for metric in [
        "requests=1",
        "pages=1",
        "output_rows=25",
        "scanned_count=25",
        "consumed_rcu_milli=",
    ] {
        assert!(text.contains(metric), "{metric} missing in {text}");
    }
}

#[tokio::test]
async fn session_switch_and_scan_guard() {
    let (table, client) = events().await;
    let (on, _) = with_and_without_pushdown(&client, &table, 4).await;
    crate::common::query(&on, "SET dynamodb.pushdown = false")
        .await
        .expect("set");
    let (batches, plan) =
        run_with_plan(&on, "SELECT ts FROM t WHERE user = 'u03' AND ts = 7").await;
    assert_eq!(
        rows(&batches),
        vec!["7"],
        "exact filters are re-applied when pushdown is off"
    );
    assert_eq!(
        crate::common::find_scan(&plan).expect("exec").operation(),
        "Scan"
    );
    crate::common::query(&on, "SET dynamodb.pushdown = true")
        .await
        .expect("set");

    crate::common::query(&on, "SET dynamodb.scan_guard = 'error'")
        .await
        .expect("set");
    crate::common::query(&on, "SET dynamodb.scan_guard_bytes = 1000")
        .await
        .expect("set");
    let err = crate::common::query(&on, "SELECT count(*) FROM t WHERE status = 'active'")
        .await
        .expect_err("guarded");
    let msg = err.to_string();
    assert!(
        msg.contains("would Scan all of table") && msg.contains("'user'"),
        "{msg}"
    );
    let ok = crate::common::query(&on, "SELECT count(*) FROM t WHERE user = 'u01'")
        .await
        .expect("a Query is fine");
    assert_eq!(rows(&ok), vec!["25"]);
}

#[tokio::test]
async fn reserved_words_and_injection_attempts_are_plain_values() {
    let (table, client) = events().await;
    let (on, off) = with_and_without_pushdown(&client, &table, 4).await;
    for sql in [
        "SELECT name, status FROM t WHERE name = 'event 7' AND status = 'active'",
        "SELECT name FROM t WHERE user = 'u00'' OR ''a''=''a' ",
        "SELECT name FROM t WHERE name LIKE 'event 1%' AND status <> 'x) OR (#n0 = :v0'",
    ] {
        let (a, _) = run_with_plan(&on, sql).await;
        let (b, _) = run_with_plan(&off, sql).await;
        assert_eq!(sorted_rows(&a), sorted_rows(&b), "{sql}");
    }
    let (a, _) = run_with_plan(&on, "SELECT name FROM t WHERE name = 'event 7'").await;
    assert_eq!(rows(&a), vec!["event 7"]);
}

/// Checks one query: its operation and index, items scanned (and returned,
/// when given), and the same rows with pushdown off; returns the plan
/// without pushdown.
async fn expect_read(
    on: &datafusion::prelude::SessionContext,
    off: &datafusion::prelude::SessionContext,
    case: Expect,
    returned: Option<usize>,
) -> std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    let (batches, plan) = run_with_plan(on, case.sql).await;
    let scan = crate::common::find_scan(&plan).expect("a DynamoExec");
    assert_eq!(
        (scan.operation(), scan.index()),
        (case.operation, case.index),
        "{}",
        case.sql
    );
    assert_eq!(
        scan_metric(&plan, "scanned_count"),
        case.scanned,
        "items scanned by {}",
        case.sql
    );
    if let Some(returned) = returned {
        assert_eq!(
            scan_metric(&plan, "output_rows"),
            returned,
            "items DynamoDB returned for {}",
            case.sql
        );
    }
    assert_eq!(rows(&batches).len(), case.rows, "{}", case.sql);
    let (unpushed, off_plan) = run_with_plan(off, case.sql).await;
    assert_eq!(
        sorted_rows(&batches),
        sorted_rows(&unpushed),
        "pushdown changed the answer of {}",
        case.sql
    );
    off_plan
}

/// The shapes a held-out workload found read in full: each is now a key read
/// (or a filter that returns only what matches).
#[tokio::test]
async fn held_out_shapes_read_by_key() {
    let client = client().await;

    // Orders: customer (S) + ts (N); GSI byStatus (status, ts) where ts is the
    // table's sort key: every item with a status is in it.
    let orders = unique_name("HeldOrders");
    let spec = TableSpec::new(&orders, "customer", T::S)
        .sort_key("ts", T::N)
        .global_index("byStatus", ("status", T::S), Some(("ts", T::N)));
    create_table(&client, &spec).await.expect("create");
    let total = 600;
    let items = (0..total)
        .map(|i| {
            let mut item = HashMap::from([
                ("customer".to_string(), AV::S(format!("c{:02}", i % 30))),
                ("ts".to_string(), AV::N(i.to_string())),
                ("amount".to_string(), AV::N(format!("{}.5", i % 70))),
            ]);
            if i % 9 == 0 {
                item.insert("status".into(), AV::S("CANCELLED".into()));
            } else if i % 4 == 0 {
                item.insert("status".into(), AV::S("SHIPPED".into()));
            }
            let tags = if i % 11 == 0 {
                vec!["vip", "new"]
            } else {
                vec!["new"]
            };
            item.insert(
                "tags".into(),
                AV::Ss(tags.into_iter().map(str::to_string).collect()),
            );
            item
        })
        .collect();
    put_items(&client, &orders, items).await.expect("put");
    let (on, off) = with_and_without_pushdown(&client, &orders, 4).await;
    let cancelled = (0..total).filter(|i| i % 9 == 0).count();
    expect_read(
        &on,
        &off,
        Expect {
            sql: "SELECT customer, ts, amount FROM t WHERE status = 'CANCELLED'",
            operation: "Query",
            index: Some("byStatus"),
            scanned: cancelled,
            rows: cancelled,
        },
        Some(cancelled),
    )
    .await;
    let vip = (0..total).filter(|i| i % 11 == 0).count();
    expect_read(
        &on,
        &off,
        Expect {
            sql: "SELECT customer, ts FROM t WHERE array_has(tags, 'vip')",
            operation: "Scan",
            index: None,
            scanned: total,
            rows: vip,
        },
        Some(vip),
    )
    .await;

    // Devices: hash-only; 150 keys in one IN list are BatchGetItem requests.
    let devices = unique_name("HeldDevices");
    TableSpec::new(&devices, "device_id", T::S)
        .create(&client)
        .await
        .expect("create");
    let items = (0..400)
        .map(|i| {
            HashMap::from([
                ("device_id".to_string(), AV::S(format!("d{i:03}"))),
                ("model".to_string(), AV::S(format!("m{}", i % 7))),
            ])
        })
        .collect();
    put_items(&client, &devices, items).await.expect("put");
    let (on, off) = with_and_without_pushdown(&client, &devices, 4).await;
    let list: Vec<String> = (0..150).map(|i| format!("'d{:03}'", i * 2)).collect();
    let sql = format!(
        "SELECT device_id, model FROM t WHERE device_id IN ({})",
        list.join(", ")
    );
    expect_read(
        &on,
        &off,
        Expect {
            sql: Box::leak(sql.into_boxed_str()),
            operation: "BatchGetItem",
            index: None,
            scanned: 150,
            rows: 150,
        },
        Some(150),
    )
    .await;

    // Titles: year (N) + title (S); LIKE 'A_%' bounds the sort key by its prefix.
    let titles = unique_name("HeldTitles");
    TableSpec::new(&titles, "year", T::N)
        .sort_key("title", T::S)
        .create(&client)
        .await
        .expect("create");
    let letters = ["A", "B", "C", "Ab", "Ax", "a"];
    let items = (0..180)
        .map(|i| {
            HashMap::from([
                ("year".to_string(), AV::N((2012 + i % 3).to_string())),
                (
                    "title".to_string(),
                    AV::S(format!("{}{i:03}", letters[i % letters.len()])),
                ),
            ])
        })
        .collect();
    put_items(&client, &titles, items).await.expect("put");
    let (on, off) = with_and_without_pushdown(&client, &titles, 4).await;
    let in_2013 = |i: &usize| 2012 + i % 3 == 2013;
    let starts_a = (0..180)
        .filter(in_2013)
        .filter(|i| letters[i % letters.len()].starts_with('A'))
        .count();
    expect_read(
        &on,
        &off,
        Expect {
            sql: "SELECT title FROM t WHERE \"year\" = 2013 AND title LIKE 'A_%'",
            operation: "Query",
            index: None,
            scanned: starts_a,
            rows: starts_a,
        },
        Some(starts_a),
    )
    .await;
}
