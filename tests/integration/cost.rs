//! Cost before reading: estimates against what DynamoDB Local reports, the
//! read-capacity ceiling (refused before any read, stopped while reading,
//! one ceiling over a query's reads), and the warning before a large Scan.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::config::Dialect;
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::decode::Item;
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::run::{ResultSink, RunOptions, run_statement};
use dynamo_datafusion::{
    CapacityCeilingRule, DynamoConfig, DynamoTableProvider, Error, TableOptions,
};
use dynamo_testkit::{FaultConfig, FaultProxy, TableSpec, local_endpoint, put_items, unique_name};

use crate::common::{client, run_with_plan};

/// Hours between a customer's orders; order `j` is at `T0 + j * HOUR`.
const HOUR: u64 = 3_600;
const T0: u64 = 1_760_000_000;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Orders of 150 customers, 8 to 16 each, of 1 to 2 KB, with a status
/// index: items big enough that a collection's size shows in its capacity.
async fn orders_table() -> String {
    let client = client().await;
    let table = unique_name("cost_orders");
    TableSpec::new(&table, "customer", ScalarAttributeType::S)
        .sort_key("ts", ScalarAttributeType::N)
        .global_index(
            "byStatus",
            ("status", ScalarAttributeType::S),
            Some(("ts", ScalarAttributeType::N)),
        )
        .create(&client)
        .await
        .expect("create");
    let mut items: Vec<Item> = Vec::new();
    for i in 0..150u64 {
        for j in 0..8 + (i * 7) % 9 {
            let size = 1_000 + ((i * 37 + j * 11) % 1_000) as usize;
            items.push(
                [
                    ("customer".to_string(), s(&format!("c{i:03}"))),
                    ("ts".to_string(), n(T0 + j * HOUR)),
                    (
                        "status".to_string(),
                        s(["open", "shipped", "returned"][((i + j) % 3) as usize]),
                    ),
                    ("payload".to_string(), s(&"x".repeat(size))),
                ]
                .into(),
            );
        }
    }
    put_items(&client, &table, items).await.expect("put");
    table
}

/// A session like `dynamo_session`'s (settings, the ceiling rule) with
/// `table` registered as `t`, its schema sampled from 500 items.
async fn session_over(client: aws_sdk_dynamodb::Client, table: &str) -> SessionContext {
    let provider = DynamoTableProvider::builder(client, table)
        .sample_size(500)
        .build()
        .await
        .expect("provider");
    ceiling_session(provider)
}

/// `provider` as `t` in a session with DynamoDB settings and the ceiling rule.
fn ceiling_session(provider: DynamoTableProvider) -> SessionContext {
    let mut config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(2)
        .with_option_extension(DynamoConfig::default());
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let state = datafusion::execution::session_state::SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(CapacityCeilingRule))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table("t", Arc::new(provider))
        .expect("register");
    ctx
}

/// Runs `sql`; the read statistics (estimate and actual) of its plan.
async fn stats_of(ctx: &SessionContext, sql: &str) -> ReadStats {
    let (_, plan) = run_with_plan(ctx, sql).await;
    ReadStats::of_plan(&plan)
}

/// The larger of estimate ÷ actual and actual ÷ estimate.
fn off_by(estimate: f64, actual: f64) -> f64 {
    assert!(estimate > 0.0 && actual > 0.0, "{estimate} vs {actual}");
    (estimate / actual).max(actual / estimate)
}

#[tokio::test]
async fn estimates_are_within_2x_for_key_reads_and_1_2x_for_full_scans() {
    let table = orders_table().await;
    let ctx = session_over(client().await, &table).await;
    let full_scans = [
        "SELECT count(*) FROM t",
        "SELECT customer FROM t WHERE payload LIKE '%y%'",
        "SELECT count(*) FROM t WHERE status = 'open' OR ts > 0",
    ];
    for sql in full_scans {
        let st = stats_of(&ctx, sql).await;
        let off = off_by(st.estimated_rcu, st.consumed_rcu);
        assert!(off <= 1.2, "{sql}: estimated {st:?}");
        assert_eq!(
            st.estimated_items.round() as usize,
            st.items_scanned,
            "{sql}"
        );
    }
    let key_reads = [
        "SELECT * FROM t WHERE customer = 'c000'".to_string(),
        "SELECT * FROM t WHERE customer = 'c008'".to_string(),
        "SELECT * FROM t WHERE customer = 'c149'".to_string(),
        format!(
            "SELECT * FROM t WHERE customer = 'c042' AND ts BETWEEN {} AND {}",
            T0 + 2 * HOUR,
            T0 + 5 * HOUR
        ),
        "SELECT * FROM t WHERE customer IN ('c001','c002','c003','c004','c005','c006','c007','c010','c020','c030')".to_string(),
        format!("SELECT * FROM t WHERE customer = 'c077' AND ts = {}", T0 + 3 * HOUR),
        format!(
            "SELECT * FROM t WHERE customer IN ('c011','c012','c013') AND ts IN ({}, {})",
            T0,
            T0 + HOUR
        ),
        "SELECT * FROM t WHERE status = 'open'".to_string(),
        "SELECT * FROM t LIMIT 5".to_string(),
    ];
    for sql in &key_reads {
        let st = stats_of(&ctx, sql).await;
        let off = off_by(st.estimated_rcu, st.consumed_rcu);
        assert!(off <= 2.0, "{sql}: {st:?} (off by {off:.2}×)");
    }
    // EXPLAIN shows the estimate and its price.
    let explain = crate::common::rows(
        &crate::common::query(&ctx, "EXPLAIN SELECT * FROM t WHERE customer = 'c000'")
            .await
            .expect("explain"),
    )
    .join("\n");
    assert!(
        explain.contains("estimate=[items≈")
            && explain.contains("at 0.125/M RRU, key sample of 500 items"),
        "{explain}"
    );
}

/// What a proxy counted between two moments.
fn requests(proxy: &FaultProxy, before: dynamo_testkit::FaultCounts) -> u64 {
    proxy.counts().requests - before.requests
}

#[tokio::test]
async fn a_query_estimated_above_the_ceiling_is_refused_before_any_read() {
    let table = orders_table().await;
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let ctx = session_over(proxy.client().await, &table).await;
    let full = stats_of(&ctx, "SELECT count(*) FROM t").await.estimated_rcu;
    ctx.sql(&format!("SET dynamodb.max_rcu = {}", (full / 2.0).round()))
        .await
        .expect("set");
    let before = proxy.counts();
    let err = crate::common::query(&ctx, "SELECT count(*) FROM t")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        matches!(Error::find_in(&err), Some(Error::OverCeiling { .. })),
        "{text}"
    );
    assert!(
        text.contains("refused before reading: a Scan of table") && text.contains("RCU (~$"),
        "{text}"
    );
    assert_eq!(requests(&proxy, before), 0, "nothing was read");
    // A Query of one customer is well under it, and runs.
    let st = stats_of(&ctx, "SELECT * FROM t WHERE customer = 'c001'").await;
    assert!(st.consumed_rcu > 0.0 && st.consumed_rcu <= full / 2.0);

    // Two reads, each under the ceiling, above it together: refused as one query.
    ctx.sql(&format!("SET dynamodb.max_rcu = {}", (full * 1.5).round()))
        .await
        .expect("set");
    let before = proxy.counts();
    let err = crate::common::query(
        &ctx,
        "SELECT count(*) FROM t a JOIN t b ON a.customer = b.customer AND a.ts = b.ts",
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string().contains("2 reads (a Scan of table"),
        "{err}"
    );
    assert_eq!(requests(&proxy, before), 0, "nothing was read");
    // The table option caps it too (the lower of the two wins).
    ctx.sql("SET dynamodb.max_rcu = 1000000")
        .await
        .expect("set");
    let capped = DynamoTableProvider::builder(proxy.client().await, &table)
        .options({
            let mut capped = TableOptions::default();
            capped.max_rcu = Some(1.0);
            capped
        })
        .build()
        .await
        .expect("provider");
    ctx.register_table("capped", Arc::new(capped))
        .expect("register");
    let err = crate::common::query(&ctx, "SELECT count(*) FROM capped")
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("above the ceiling of 1 RCU"),
        "{err}"
    );
}

#[tokio::test]
async fn a_read_that_consumes_more_than_the_ceiling_is_stopped_with_no_result() {
    // One customer with 400 orders of 1.5 KB; the schema is given, so there
    // are no key statistics and the Query is guessed at √400 = 20 items.
    let client = client().await;
    let table = unique_name("cost_whale");
    TableSpec::new(&table, "customer", ScalarAttributeType::S)
        .sort_key("ts", ScalarAttributeType::N)
        .create(&client)
        .await
        .expect("create");
    let items: Vec<Item> = (0..400)
        .map(|j| {
            [
                ("customer".to_string(), s("whale")),
                ("ts".to_string(), n(T0 + j)),
                ("payload".to_string(), s(&"x".repeat(1_500))),
            ]
            .into()
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer", DataType::Utf8, false),
        Field::new("ts", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, true),
    ]));
    let provider = DynamoTableProvider::builder(proxy.client().await, &table)
        .schema(schema)
        .page_size(50)
        .build()
        .await
        .expect("provider");
    let ctx = ceiling_session(provider);
    ctx.sql("SET dynamodb.max_rcu = 20").await.expect("set");
    let sql = "SELECT * FROM t WHERE customer = 'whale'";
    let df = ctx.sql(sql).await.expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    let estimate = crate::common::find_scan(&plan)
        .and_then(|s| s.scan_plan().estimate())
        .expect("estimated");
    assert!(
        estimate.rcu < 20.0,
        "the guess is under the ceiling: {estimate:?}"
    );
    let before = proxy.counts();
    let err = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .expect_err("stopped");
    let Some(Error::CeilingReached { consumed_rcu, .. }) = Error::find_in(&err) else {
        panic!("not the ceiling: {err}");
    };
    // Pages of 50 items × 1.5 KB: about 9.5 RCU each; the third crosses 20.
    assert!(
        *consumed_rcu > 20.0 && *consumed_rcu < 30.0,
        "{consumed_rcu}: {err}"
    );
    assert_eq!(requests(&proxy, before), 3, "no request after the ceiling");
    assert!(
        err.to_string()
            .contains("the result is incomplete and not returned")
    );
}

/// A sink that keeps warnings and rows.
#[derive(Default)]
struct Warnings {
    said: Vec<String>,
    rows: usize,
}

impl ResultSink for Warnings {
    fn start(
        &mut self,
        _schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> datafusion::error::Result<()> {
        Ok(())
    }

    fn batch(&mut self, batch: RecordBatch) -> datafusion::error::Result<bool> {
        self.rows += batch.num_rows();
        Ok(true)
    }

    fn warning(&mut self, text: &str) {
        self.said.push(text.to_string());
    }
}

#[tokio::test]
async fn a_full_scan_above_the_warning_threshold_is_warned_about_before_it_reads() {
    let table = orders_table().await;
    let ctx = session_over(client().await, &table).await;
    ctx.sql("SET dynamodb.warn_rcu = 10").await.expect("set");
    let run = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let statement = ctx
                .state()
                .sql_to_statement(sql, &Dialect::Generic)
                .expect("parse");
            let mut sink = Warnings::default();
            run_statement(&ctx, &statement, &RunOptions::default(), &mut sink)
                .await
                .expect("run");
            sink
        }
    };
    let scan = run("SELECT count(*) FROM t").await;
    assert_eq!(scan.said.len(), 1, "{:?}", scan.said);
    assert!(
        scan.said[0].contains(&format!("this query Scans all of table '{table}'")),
        "{}",
        scan.said[0]
    );
    assert_eq!(scan.rows, 1, "a warning, not a refusal");
    let key = run("SELECT * FROM t WHERE customer = 'c001'").await;
    assert!(key.said.is_empty(), "{:?}", key.said);
}
