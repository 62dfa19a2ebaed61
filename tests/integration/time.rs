//! Time kept in strings and numbers against DynamoDB Local: temporal
//! columns (inferred and declared), time ranges pushed into key conditions
//! and filters, every pushed answer equal to the unpushed one, values not
//! in their format, and items whose time to live has passed hidden.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::schema::time_format_of;
use dynamo_datafusion::{DynamoTableProvider, TableOptions};
use dynamo_testkit::{TableSpec, Xorshift, create_table, put_items, unique_name};

use crate::common::{
    client, pushdown_session, query, rows, run_with_plan, scan_metric, sorted_rows,
};

const USERS: i64 = 4;
/// Events per user, six hours apart.
const EVENTS: i64 = 120;
const SIX_HOURS: i64 = 6 * 3600;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("in range")
}

/// `2025-11-30T08:15:00Z`: written by chrono, not by the library under test.
fn iso_seconds(secs: i64) -> String {
    at(secs).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn iso_millis(ms: i64) -> String {
    let t = DateTime::from_timestamp_millis(ms).expect("in range");
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The SQL literal of an instant.
fn ts_literal(secs: i64) -> String {
    format!("TIMESTAMP '{}'", at(secs).format("%Y-%m-%dT%H:%M:%S"))
}

/// A table, a provider with `options` and one with pushdown off besides.
async fn pair(
    client: &Client,
    table: &str,
    options: &[(&str, &str)],
) -> (SessionContext, SessionContext, DynamoTableProvider) {
    let map: HashMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let on_options = TableOptions::from_map(&map).expect("options");
    let mut off_options = on_options.clone();
    off_options.pushdown = false;
    let on = DynamoTableProvider::builder(client.clone(), table)
        .options(on_options)
        .build()
        .await
        .expect("provider");
    let off = DynamoTableProvider::builder(client.clone(), table)
        .options(off_options)
        .build()
        .await
        .expect("provider");
    let (a, b) = (pushdown_session(4), pushdown_session(4));
    a.register_table("t", std::sync::Arc::new(on.clone()))
        .expect("register");
    b.register_table("t", std::sync::Arc::new(off))
        .expect("register");
    (a, b, on)
}

/// `Events`: user (S) + ts (S, ISO seconds, UTC); GSI byKind (kind, at: ISO
/// millis); `day` an ISO date; `ms` epoch milliseconds. Events run from 30
/// days before `now` to 3 hours before it, six hours apart, so a bound
/// `now() - INTERVAL 'n days'` is never within three hours of an event.
async fn iso_events(client: &Client, now: i64) -> String {
    let table = unique_name("IsoEvents");
    let spec = TableSpec::new(&table, "user", T::S)
        .sort_key("ts", T::S)
        .global_index("byKind", ("kind", T::S), Some(("at", T::S)));
    create_table(client, &spec).await.expect("create");
    let first = now - 30 * 86_400 + 3 * 3600;
    let kinds = ["click", "view", "buy"];
    let mut items = Vec::new();
    for u in 0..USERS {
        for k in 0..EVENTS {
            let secs = first + k * SIX_HOURS;
            let ms = secs * 1000 + (k * 37 % 1000);
            items.push(HashMap::from([
                ("user".to_string(), AV::S(format!("u{u}"))),
                ("ts".to_string(), AV::S(iso_seconds(secs))),
                ("kind".to_string(), AV::S(kinds[(k % 3) as usize].into())),
                ("at".to_string(), AV::S(iso_millis(ms))),
                (
                    "day".to_string(),
                    AV::S(at(secs).format("%Y-%m-%d").to_string()),
                ),
                ("ms".to_string(), AV::N(ms.to_string())),
            ]));
        }
    }
    put_items(client, &table, items).await.expect("put");
    table
}

#[tokio::test]
async fn iso_strings_are_inferred_as_timestamps_and_ranges_become_key_conditions() {
    let client = client().await;
    let now = Utc::now().timestamp();
    let table = iso_events(&client, now).await;
    let (on, off, provider) = pair(&client, &table, &[("time_format", "ms: epoch_millis")]).await;

    // Inference: canonical UTC text of one precision, and dates.
    let schema = provider.schema();
    let typed = |name: &str| {
        let f = schema.field_with_name(name).expect("column");
        (
            f.data_type().clone(),
            time_format_of(f).map(|t| t.to_string()),
        )
    };
    let utc = |u| DataType::Timestamp(u, Some("UTC".into()));
    assert_eq!(
        typed("ts"),
        (utc(TimeUnit::Second), Some("iso_seconds".into()))
    );
    assert_eq!(
        typed("at"),
        (utc(TimeUnit::Millisecond), Some("iso_millis".into()))
    );
    assert_eq!(typed("day"), (DataType::Date32, Some("date".into())));
    assert_eq!(
        typed("ms"),
        (utc(TimeUnit::Millisecond), Some("epoch_millis".into()))
    );
    assert_eq!(typed("kind"), (DataType::Utf8, None));

    // The last 7 days of one user: events 92..120 (see iso_events).
    let last_week = (EVENTS - 92) as usize;
    let cases: Vec<(String, &str, Option<&str>, usize, usize)> = vec![
        (
            "SELECT ts FROM t WHERE user = 'u1' AND ts >= now() - INTERVAL '7 days'".into(),
            "Query",
            None,
            last_week,
            last_week,
        ),
        (
            format!(
                "SELECT ts FROM t WHERE user = 'u1' AND ts BETWEEN {} AND {}",
                ts_literal(now - 30 * 86_400 + 3 * 3600 + 10 * SIX_HOURS),
                ts_literal(now - 30 * 86_400 + 3 * 3600 + 19 * SIX_HOURS)
            ),
            "Query",
            None,
            10,
            10,
        ),
        (
            format!(
                "SELECT ts, kind FROM t WHERE user = 'u2' AND ts = {}",
                ts_literal(now - 30 * 86_400 + 3 * 3600 + 5 * SIX_HOURS)
            ),
            "Query",
            None,
            1,
            1,
        ),
        (
            "SELECT user, ts FROM t WHERE kind = 'buy' AND at >= now() - INTERVAL '3 days'".into(),
            "Query",
            Some("byKind"),
            // Events 108..120 of every user, every third a 'buy'.
            (USERS * (108..EVENTS).filter(|k| k % 3 == 2).count() as i64) as usize,
            (USERS * (108..EVENTS).filter(|k| k % 3 == 2).count() as i64) as usize,
        ),
        (
            "SELECT ts FROM t WHERE user = 'u3' AND ms < now() - INTERVAL '29 days'".into(),
            "Query",
            None,
            EVENTS as usize,
            4,
        ),
    ];
    for (sql, operation, index, scanned, returned) in cases {
        let (batches, plan) = run_with_plan(&on, &sql).await;
        let scan = crate::common::find_scan(&plan).expect("a read");
        assert_eq!(
            (scan.operation(), scan.index()),
            (operation, index),
            "{sql}"
        );
        assert_eq!(
            scan_metric(&plan, "scanned_count"),
            scanned,
            "items read by {sql}"
        );
        assert_eq!(rows(&batches).len(), returned, "{sql}");
        let (unpushed, _) = run_with_plan(&off, &sql).await;
        assert_eq!(sorted_rows(&batches), sorted_rows(&unpushed), "{sql}");
    }

    // The key condition holds the range, in the attribute's own text.
    let week_ago = iso_seconds(now - 7 * 86_400);
    let text = rows(
        &query(
            &on,
            &format!(
                "EXPLAIN SELECT ts FROM t WHERE user = 'u1' AND ts > {}",
                ts_literal(now - 7 * 86_400)
            ),
        )
        .await
        .expect("explain"),
    )
    .join("\n");
    assert!(
        text.contains("key_condition=[#n1 = :v0 AND #n0 >= :v1]"),
        "{text}"
    );
    assert!(
        text.contains(&format!(":v1=\"{}\"", &week_ago[..19])),
        "the second's text, without its Z: {text}"
    );
    assert!(
        text.contains("recheck="),
        "a bound a second wide is re-checked: {text}"
    );
}

/// `EpochEvents`: user (S) + ts (N, epoch seconds); a GSI whose sort key
/// is epoch milliseconds.
async fn epoch_events(client: &Client) -> String {
    let table = unique_name("EpochEvents");
    let spec = TableSpec::new(&table, "user", T::S)
        .sort_key("ts", T::N)
        .global_index("byKind", ("kind", T::S), Some(("ms", T::N)));
    create_table(client, &spec).await.expect("create");
    let mut items = Vec::new();
    for u in 0..USERS {
        for k in 0..EVENTS {
            let secs = 1_764_460_800 + k * SIX_HOURS + u;
            items.push(HashMap::from([
                ("user".to_string(), AV::S(format!("u{u}"))),
                ("ts".to_string(), AV::N(secs.to_string())),
                ("ms".to_string(), AV::N((secs * 1000 + k).to_string())),
                (
                    "kind".to_string(),
                    AV::S(["a", "b"][(k % 2) as usize].into()),
                ),
            ]));
        }
    }
    put_items(client, &table, items).await.expect("put");
    table
}

#[tokio::test]
async fn epoch_numbers_declared_as_time_push_exact_ranges_and_limits() {
    let client = client().await;
    let table = epoch_events(&client).await;
    let (on, off, provider) = pair(
        &client,
        &table,
        &[("time_format", "ts: epoch_seconds; ms: epoch_millis")],
    )
    .await;
    assert_eq!(
        provider
            .schema()
            .field_with_name("ts")
            .map(|f| f.data_type().clone())
            .ok(),
        Some(DataType::Timestamp(TimeUnit::Second, Some("UTC".into())))
    );
    // 2025-12-01T00:00:00Z is event 4 of user 0 (1_764_460_800 + 4 × 6 h).
    let sql = "SELECT ts FROM t WHERE user = 'u0' AND ts >= TIMESTAMP '2025-12-01T00:00:00' \
               AND ts < TIMESTAMP '2025-12-02T00:00:00'";
    let (batches, plan) = run_with_plan(&on, sql).await;
    assert_eq!(
        rows(&batches),
        vec![
            "2025-12-01T00:00:00Z",
            "2025-12-01T06:00:00Z",
            "2025-12-01T12:00:00Z",
            "2025-12-01T18:00:00Z"
        ]
    );
    let scan = crate::common::find_scan(&plan).expect("a read");
    assert_eq!(scan.operation(), "Query");
    assert_eq!(
        scan_metric(&plan, "scanned_count"),
        5,
        "BETWEEN, its upper end re-checked"
    );
    // A strict range on an exact format: nothing is re-checked, the limit
    // reaches the request, only that many items are read.
    let sql = "SELECT ts FROM t WHERE user = 'u2' AND ts > TIMESTAMP '2025-12-01T00:00:00' \
               ORDER BY ts DESC LIMIT 3";
    let (batches, plan) = run_with_plan(&on, sql).await;
    let scan = crate::common::find_scan(&plan).expect("a read");
    assert_eq!((scan.operation(), scan.limit()), ("Query", Some(3)));
    assert_eq!(scan_metric(&plan, "scanned_count"), 3);
    let (unpushed, _) = run_with_plan(&off, sql).await;
    assert_eq!(rows(&batches), rows(&unpushed));
    // The bound is the attribute's own number (DataFusion brings the
    // literal to the column's unit first, so both reads compare the same).
    let text = rows(
        &query(
            &on,
            "EXPLAIN SELECT ts FROM t WHERE user = 'u0' AND ts > TIMESTAMP '2025-12-01T00:00:00.5'",
        )
        .await
        .expect("explain"),
    )
    .join("\n");
    assert!(
        text.contains("key_condition=[#n1 = :v0 AND #n0 > :v1]")
            && text.contains(":v1=1764547200}"),
        "{text}"
    );
    // The GSI's epoch-millisecond sort key.
    let sql = "SELECT user, ms FROM t WHERE kind = 'b' AND ms BETWEEN \
               TIMESTAMP '2025-12-01T00:00:00' AND TIMESTAMP '2025-12-03T00:00:00'";
    let (batches, plan) = run_with_plan(&on, sql).await;
    let scan = crate::common::find_scan(&plan).expect("a read");
    assert_eq!((scan.operation(), scan.index()), ("Query", Some("byKind")));
    let (unpushed, _) = run_with_plan(&off, sql).await;
    assert_eq!(sorted_rows(&batches), sorted_rows(&unpushed));
    assert_eq!(rows(&batches).len() as i64, 4 * USERS);
}

#[tokio::test]
async fn every_pushed_time_range_answers_what_the_unpushed_read_answers() {
    let client = client().await;
    // Text of every shape on one sort key: whole seconds, fractions of
    // 1–9 digits, offsets; around a leap day and the turn of a year.
    let table = unique_name("TimeShapes");
    let spec = TableSpec::new(&table, "p", T::S).sort_key("ts", T::S);
    create_table(&client, &spec).await.expect("create");
    let base = at(1_709_164_800); // 2024-02-29T00:00:00Z
    let mut stored: Vec<i64> = Vec::new();
    let mut items = Vec::new();
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    for i in 0..240i64 {
        let secs = base.timestamp() + (i - 120) * 5_003 + i64::try_from(rng.below(3)).unwrap_or(0);
        let nanos = [0, 500_000_000, 120_000_000, 123_456_789, 7][(i % 5) as usize];
        let t = DateTime::from_timestamp(secs, nanos).expect("in range");
        let text = match i % 6 {
            0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            1 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            2 => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
            3 => t
                .with_timezone(&chrono::FixedOffset::east_opt(5 * 3600 + 1800).expect("offset"))
                .format("%Y-%m-%dT%H:%M:%S%.f%:z")
                .to_string(),
            4 => t
                .with_timezone(&chrono::FixedOffset::west_opt(8 * 3600).expect("offset"))
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            _ => t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        };
        stored.push(secs);
        items.push(HashMap::from([
            ("p".to_string(), AV::S(format!("p{}", i % 2))),
            ("ts".to_string(), AV::S(text)),
            ("n".to_string(), AV::N(secs.to_string())),
            ("d".to_string(), AV::S(t.format("%Y-%m-%d").to_string())),
            // Canonical UTC text of one precision: inferred as iso_millis.
            (
                "u".to_string(),
                AV::S(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            ),
        ]));
    }
    put_items(&client, &table, items).await.expect("put");
    let (on, off, _) = pair(
        &client,
        &table,
        &[("time_format", "ts: iso; n: epoch_seconds; d: date")],
    )
    .await;
    let ops = [">", ">=", "<", "<=", "="];
    let mut pushed = 0;
    for case in 0..80 {
        // Bounds exactly on stored values, or a little off them.
        let pick = |rng: &mut Xorshift| {
            let s = stored[rng.below(stored.len() as u64) as usize];
            s + [0, 0, 1, -1, 3_600][rng.below(5) as usize]
        };
        let column = ["ts", "n", "d", "u"][case % 4];
        let p = format!("p{}", rng.below(2));
        let (a, b) = (pick(&mut rng), pick(&mut rng));
        let (low, high) = (a.min(b), a.max(b));
        let sql = match rng.below(4) {
            0 => format!(
                "SELECT ts, n FROM t WHERE p = '{p}' AND {column} {} {}",
                ops[rng.below(5) as usize],
                ts_literal(a)
            ),
            1 => format!(
                "SELECT ts, n FROM t WHERE p = '{p}' AND {column} BETWEEN {} AND {}",
                ts_literal(low),
                ts_literal(high)
            ),
            2 => format!(
                "SELECT ts, n FROM t WHERE {column} IN ({}, {}) ",
                ts_literal(a),
                ts_literal(b)
            ),
            _ => format!(
                "SELECT count(*) FROM t WHERE {column} >= {} AND {column} < {}",
                ts_literal(low),
                ts_literal(high)
            ),
        };
        let (x, plan) = run_with_plan(&on, &sql).await;
        let (y, _) = run_with_plan(&off, &sql).await;
        assert_eq!(sorted_rows(&x), sorted_rows(&y), "{sql}");
        if crate::common::find_scan(&plan)
            .is_some_and(|s| s.has_filter() || s.operation() == "Query")
        {
            pushed += 1;
        }
    }
    assert!(pushed >= 60, "only {pushed} of 80 cases were pushed down");
}

#[tokio::test]
async fn a_value_not_in_its_declared_format_is_an_error_naming_the_item_or_null_when_asked() {
    let client = client().await;
    let table = unique_name("BadTimes");
    let spec = TableSpec::new(&table, "id", T::S);
    create_table(&client, &spec).await.expect("create");
    let items = vec![
        HashMap::from([
            ("id".to_string(), AV::S("good".into())),
            ("at".to_string(), AV::N("1764490500".into())),
        ]),
        HashMap::from([
            ("id".to_string(), AV::S("bad".into())),
            ("at".to_string(), AV::S("yesterday".into())),
        ]),
    ];
    put_items(&client, &table, items).await.expect("put");
    let (on, _, _) = pair(&client, &table, &[("time_format", "at: epoch_seconds")]).await;
    let err = query(&on, "SELECT * FROM t")
        .await
        .expect_err("a bad value");
    let msg = err.to_string();
    for part in [
        r#"item {"id":{"S":"bad"}}"#,
        "attribute 'at'",
        "yesterday",
        "epoch_seconds",
        "on_bad_time",
    ] {
        assert!(msg.contains(part), "{part} missing in: {msg}");
    }
    let (on, _, _) = pair(
        &client,
        &table,
        &[
            ("time_format", "at: epoch_seconds"),
            ("on_bad_time", "null"),
        ],
    )
    .await;
    let got = rows(
        &query(&on, "SELECT id, at FROM t ORDER BY id")
            .await
            .expect("read"),
    );
    assert_eq!(got, vec!["bad|NULL", "good|2025-11-30T08:15:00Z"]);
    // Run as dynamo-sql and the connector run statements: a notice says so.
    let (_, outcome) = crate::common::run_as_dynamo_sql(&on, "SELECT id, at FROM t")
        .await
        .expect("runs");
    assert_eq!(
        outcome.notices,
        vec![format!(
            "table '{table}': 1 values were not in their column's time format and read as NULL \
             (on_bad_time = 'null')"
        )]
    );
    // A NULL from a bad value is not a missing attribute: IS NULL is
    // answered after the read.
    let got = rows(
        &query(&on, "SELECT id FROM t WHERE at IS NULL")
            .await
            .expect("read"),
    );
    assert_eq!(got, vec!["bad"]);
}

#[tokio::test]
async fn items_whose_time_to_live_has_passed_are_hidden_unless_asked_for() {
    let client = client().await;
    let table = unique_name("Expiring");
    let spec = TableSpec::new(&table, "id", T::S).sort_key("n", T::N);
    create_table(&client, &spec).await.expect("create");
    dynamo_testkit::enable_time_to_live(&client, &table, "expiresAt")
        .await
        .expect("enable TTL");
    let now = Utc::now().timestamp();
    let mut items = Vec::new();
    for i in 0..30i64 {
        let mut item = HashMap::from([
            ("id".to_string(), AV::S(format!("k{}", i % 3))),
            ("n".to_string(), AV::N(i.to_string())),
        ]);
        match i % 3 {
            // Expired a day ago, valid for a day, no TTL.
            0 => item.insert("expiresAt".to_string(), AV::N((now - 86_400).to_string())),
            1 => item.insert("expiresAt".to_string(), AV::N((now + 86_400).to_string())),
            _ => None,
        };
        items.push(item);
    }
    put_items(&client, &table, items).await.expect("put");
    let (on, _, provider) = pair(&client, &table, &[]).await;
    assert_eq!(
        provider
            .schema()
            .field_with_name("expiresAt")
            .ok()
            .and_then(|f| time_format_of(f).map(|t| t.to_string())),
        Some("epoch_seconds".into()),
        "the TTL attribute is a timestamp"
    );
    let count = |ctx: SessionContext, sql: &'static str| async move {
        rows(&query(&ctx, sql).await.expect(sql))
    };
    // Scan, Query, GetItem and BatchGetItem all hide the 10 expired items.
    assert_eq!(
        count(on.clone(), "SELECT count(*) FROM t").await,
        vec!["20"]
    );
    assert_eq!(
        count(on.clone(), "SELECT count(*) FROM t WHERE id = 'k0'").await,
        vec!["0"]
    );
    assert_eq!(
        count(on.clone(), "SELECT count(*) FROM t WHERE id = 'k1'").await,
        vec!["10"]
    );
    assert_eq!(
        count(on.clone(), "SELECT n FROM t WHERE id = 'k0' AND n = 3").await,
        Vec::<String>::new()
    );
    assert_eq!(
        count(
            on.clone(),
            "SELECT n FROM t WHERE id IN ('k0', 'k1') AND n IN (3, 4) ORDER BY n"
        )
        .await,
        vec!["4"]
    );
    let (_, plan) = run_with_plan(
        &on,
        "SELECT n FROM t WHERE id IN ('k0', 'k1') AND n IN (3, 4)",
    )
    .await;
    assert_eq!(
        crate::common::find_scan(&plan).map(|s| s.operation()),
        Some("BatchGetItem")
    );
    let text = rows(
        &query(&on, "EXPLAIN SELECT n FROM t WHERE id = 'k2'")
            .await
            .expect("explain"),
    )
    .join("\n");
    assert!(
        text.contains("filter=[(attribute_not_exists(#n1) OR #n1 > :v1)]")
            || text.contains("attribute_not_exists(#n"),
        "{text}"
    );
    assert!(text.contains("expiresAt"), "{text}");
    // Asked for: every item still stored. DynamoDB Local's own sweeper
    // deletes expired items at any moment, so each answer is checked against
    // the stored items counted just before and just after it.
    query(&on, "SET dynamodb.include_expired = true")
        .await
        .expect("set");
    let (shown, _, _) = pair(&client, &table, &[("include_expired", "true")]).await;
    for (ctx, sql, not_expired) in [
        (on.clone(), "SELECT count(*) FROM t", 20),
        (
            on.clone(),
            "SELECT count(*) FROM t WHERE expiresAt < now()",
            0,
        ),
        (shown, "SELECT count(*) FROM t WHERE id = 'k0'", 0),
    ] {
        let before = stored_items(&client, &table).await;
        let got: i64 = count(ctx, sql).await.concat().parse().expect("a count");
        let after = stored_items(&client, &table).await;
        assert!(
            (after - 20 + not_expired..=before - 20 + not_expired).contains(&got),
            "{sql}: {got}, with {before} then {after} items stored (20 not expired)"
        );
    }
}

/// Items stored in `table` now, expired or not (a Scan that counts).
async fn stored_items(client: &aws_sdk_dynamodb::Client, table: &str) -> i64 {
    let out = client
        .scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("count");
    i64::from(out.count())
}

#[tokio::test]
async fn a_column_list_declares_timestamps_and_dates_and_current_date_is_pushed() {
    let client = client().await;
    let now = Utc::now().timestamp();
    let table = iso_events(&client, now).await;
    let ctx = crate::common::dynamo_session_of(&client).await;
    query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE ev (user VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, day DATE, ms TIMESTAMP) \
             STORED AS DYNAMODB LOCATION '{table}' OPTIONS ('time_format' 'ms: epoch_millis')"
        ),
    )
    .await
    .expect("declared");
    let provider = ctx.table_provider("ev").await.expect("table");
    let schema = provider.schema();
    let format = |name: &str| {
        schema
            .field_with_name(name)
            .ok()
            .and_then(|f| time_format_of(f).map(|t| t.to_string()))
    };
    assert_eq!(
        format("ts").as_deref(),
        Some("iso"),
        "a declared TIMESTAMP reads RFC 3339"
    );
    assert_eq!(format("day").as_deref(), Some("date"));
    assert_eq!(format("ms").as_deref(), Some("epoch_millis"));
    // The last three days by date: `current_date` is folded when planned.
    let sql =
        "SELECT count(*) FROM ev WHERE user = 'u0' AND day >= current_date - INTERVAL '3 days'";
    let (batches, plan) = run_with_plan(&ctx, sql).await;
    let scan = crate::common::find_scan(&plan).expect("a read");
    assert!(
        scan.has_filter(),
        "the date range is in the FilterExpression"
    );
    let today = now.div_euclid(86_400);
    let first = now - 30 * 86_400 + 3 * 3600;
    let expected = (0..EVENTS)
        .filter(|k| (first + k * SIX_HOURS).div_euclid(86_400) >= today - 3)
        .count();
    assert_eq!(rows(&batches), vec![expected.to_string()]);
    // A declared TIMESTAMP over ISO seconds text: the range is still a key condition.
    let sql = "SELECT count(*) FROM ev WHERE user = 'u0' AND ts >= now() - INTERVAL '7 days'";
    let (batches, plan) = run_with_plan(&ctx, sql).await;
    assert_eq!(rows(&batches), vec![(EVENTS - 92).to_string()]);
    // `iso` allows offsets: the bound is a day wider (its date, less a
    // day), so up to eight more events (four a day) are read, and re-checked.
    let scanned = scan_metric(&plan, "scanned_count") as i64;
    assert!(
        (EVENTS - 92..=EVENTS - 92 + 8).contains(&scanned),
        "{scanned} items read of the partition's {EVENTS}"
    );
}
