//! Reads through a fault-injecting proxy (throttling, 500s, dropped connections,
//! slow answers, truncated bodies, garbage): every query returns exactly the
//! fault-free result, or fails with a clear error when the retries run out.
//! Never a partial result reported as complete.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::{DynamoTableProvider, RetryPolicy, TableOptions};
use dynamo_testkit::{Fault, FaultConfig, FaultProxy, local_endpoint};

use crate::common::{client, find_scan, pk_sk_table, pushdown_session, sorted_rows};

const PARTITIONS: usize = 20;
const PER_PARTITION: usize = 60;
/// Items per page: small pages make many requests, so many chances for faults.
const PAGE: i32 = 25;

/// The queries, each with the DynamoDB operation its plan must use.
const QUERIES: &[(&str, &str, &str)] = &[
    ("scan", "Scan", "SELECT pk, sk, n, body FROM t1"),
    ("parallel scan", "Scan", "SELECT pk, sk, n, body FROM t4"),
    (
        "32 segments read concurrently",
        "Scan",
        "SELECT pk, sk, n, body FROM t32",
    ),
    (
        "scan with filter",
        "Scan",
        "SELECT pk, sk, n FROM t4 WHERE n % 7 = 3 AND body >= 'item-1'",
    ),
    (
        "query",
        "Query",
        "SELECT pk, sk, n, body FROM t4 WHERE pk = 'p3'",
    ),
    (
        "multi-query",
        "Query",
        "SELECT pk, sk, n FROM t4 WHERE pk IN ('p1', 'p5', 'p7', 'p11', 'p19') AND sk > 10",
    ),
    (
        "batch get",
        "BatchGetItem",
        "SELECT pk, sk, n, body FROM t4 WHERE pk IN ('p0', 'p2', 'p4', 'p6', 'p8') \
         AND sk IN (0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39)",
    ),
    (
        "get item",
        "GetItem",
        "SELECT pk, sk, n, body FROM t4 WHERE pk = 'p9' AND sk = 17",
    ),
    (
        "aggregate",
        "Scan",
        "SELECT pk, count(*), sum(n) FROM t4 GROUP BY pk",
    ),
];

async fn fault_table(client: &Client) -> String {
    let items = (0..PARTITIONS * PER_PARTITION)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % PARTITIONS))),
                ("sk".to_string(), AV::N((i / PARTITIONS).to_string())),
                ("n".to_string(), AV::N(i.to_string())),
                (
                    "body".to_string(),
                    AV::S(format!("item-{i}-{}", "x".repeat(80))),
                ),
            ])
        })
        .collect();
    pk_sk_table(client, "faults", items).await
}

/// `t1` (one segment), `t4` (four) and `t32` (32, read concurrently by
/// four partitions) over `client`, small pages.
async fn session(client: &Client, table: &str, retry: RetryPolicy) -> SessionContext {
    let ctx = pushdown_session(4);
    for (name, segments) in [("t1", 1), ("t4", 4), ("t32", 32)] {
        let provider = DynamoTableProvider::builder(client.clone(), table)
            .options({
                let mut options = TableOptions::default();
                options.page_size = Some(PAGE);
                options.segments = Some(segments);
                options.retry = retry.clone();
                options
            })
            .build()
            .await
            .expect("provider");
        ctx.register_table(name, Arc::new(provider))
            .expect("register");
    }
    ctx
}

/// Retries fast enough for a test: the backoff still doubles and jitters.
fn quick_retries(max_attempts: u32, budget: u32) -> RetryPolicy {
    RetryPolicy::new(max_attempts, budget)
        .with_delays(Duration::from_millis(1), Duration::from_millis(20))
}

/// The proxy's request count once no request has arrived for 200 ms.
async fn quiet_requests(proxy: &FaultProxy) -> u64 {
    let mut seen = proxy.counts().requests;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = proxy.counts().requests;
        if now == seen {
            return now;
        }
        seen = now;
    }
}

/// Runs `sql`; the operation of its read, and its rows sorted (a multiset).
async fn run(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<(String, Vec<String>)> {
    let plan = ctx.sql(sql).await?.create_physical_plan().await?;
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    let op = find_scan(&plan)
        .map(|s| s.operation().to_string())
        .unwrap_or_default();
    Ok((op, sorted_rows(&batches)))
}

async fn truth(ctx: &SessionContext) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (name, op, sql) in QUERIES {
        let (got_op, rows) = run(ctx, sql).await.expect("fault-free run");
        assert_eq!(got_op, *op, "{name}: plan uses {got_op}");
        assert!(!rows.is_empty(), "{name}: the test needs rows");
        out.push(rows);
    }
    out
}

/// A fresh fault table, and a session reading it through a proxy that injects
/// nothing yet (set its faults after planning).
async fn through_proxy(retry: RetryPolicy) -> (String, FaultProxy, SessionContext) {
    let table = fault_table(&client().await).await;
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let ctx = session(&proxy.client().await, &table, retry).await;
    (table, proxy, ctx)
}

fn seed() -> u64 {
    std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026)
}

#[tokio::test]
async fn ten_percent_faults_lose_and_duplicate_nothing() {
    let direct = client().await;
    let table = fault_table(&direct).await;
    let expected = truth(&session(&direct, &table, quick_retries(10, 100_000)).await).await;

    let seed = seed();
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let faulty = proxy.client().await;
    // Table metadata is read before faults start; every read after goes through them.
    let ctx = session(&faulty, &table, quick_retries(10, 100_000)).await;
    proxy.set_config(FaultConfig::mixed(0.10, seed));
    let before = proxy.counts();
    let rounds: usize = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for round in 0..rounds {
        for ((name, _, sql), want) in QUERIES.iter().zip(&expected) {
            let (_, got) = run(&ctx, sql)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}, round {round}, {name}: {e}"));
            assert_eq!(
                got.len(),
                want.len(),
                "seed {seed}, round {round}, {name}: row count"
            );
            assert_eq!(
                &got, want,
                "seed {seed}, round {round}, {name}: rows differ"
            );
        }
    }
    let c = proxy.counts();
    let requests = c.requests - before.requests;
    let faults = c.total_faults() - before.total_faults();
    eprintln!(
        "fault test: seed {seed}, {rounds} rounds, {requests} requests, {faults} faults {:?}",
        c.faults
    );
    assert!(
        requests >= 2_000,
        "only {requests} requests: too few to mean much"
    );
    let rate = faults as f64 / requests as f64;
    assert!(
        (0.07..=0.13).contains(&rate),
        "fault rate {rate:.3}, expected about 0.10"
    );
    assert!(
        c.faults.iter().all(|n| *n > 0),
        "every kind of fault happened: {:?}",
        c.faults
    );
}

#[tokio::test]
async fn exhausted_retries_fail_the_query_instead_of_returning_part_of_it() {
    let direct = client().await;
    let table = fault_table(&direct).await;
    let expected = truth(&session(&direct, &table, quick_retries(10, 100_000)).await).await;
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let faulty = proxy.client().await;

    // Half the requests fail and the whole query may retry only 6 times: most
    // queries fail, the ones that finish are complete.
    let ctx = session(&faulty, &table, quick_retries(4, 6)).await;
    proxy.set_config(FaultConfig::mixed(0.5, seed()));
    let (mut complete, mut failed) = (0, 0);
    for _ in 0..3 {
        for ((name, _, sql), want) in QUERIES.iter().zip(&expected) {
            match run(&ctx, sql).await {
                Ok((_, got)) => {
                    assert_eq!(&got, want, "{name}: a result must be complete");
                    complete += 1;
                }
                Err(e) => {
                    let m = e.to_string();
                    assert!(
                        m.contains(&table)
                            && (m.contains("beyond the retry budget") || m.contains("gave up")),
                        "{name}: unclear error: {m}"
                    );
                    failed += 1;
                }
            }
        }
    }
    assert!(failed > 0, "the budget ran out at least once");
    eprintln!("budget test: {complete} complete, {failed} failed with a clear error");
}

#[tokio::test]
async fn throttling_beyond_the_budget_is_a_throttled_error_that_says_what_to_change() {
    let (table, proxy, ctx) = through_proxy(quick_retries(3, 1_000)).await;
    proxy.set_config(FaultConfig::only(Fault::Throttle, 1.0));
    for (name, _, sql) in QUERIES {
        let e = run(&ctx, sql).await.expect_err("always throttled");
        let m = e.to_string();
        assert!(
            m.contains("throttled")
                && m.contains(&table)
                && m.contains("3 attempts failed")
                && m.contains("ProvisionedThroughputExceededException")
                && m.contains("read_capacity"),
            "{name}: {m}"
        );
    }
    // One request per attempt: the SDK's own retries are off, the Retrier decides.
    // Partitions of the queries above may still have a request on its way when
    // their query fails: count from when the proxy has gone quiet.
    let one_query = QUERIES
        .iter()
        .find(|(name, _, _)| *name == "query")
        .map(|(_, _, sql)| *sql)
        .expect("a one-Query case");
    let before = quiet_requests(&proxy).await;
    run(&ctx, one_query).await.expect_err("always throttled");
    assert_eq!(proxy.counts().requests - before, 3);
    // Garbage answers are retried too, then reported as such.
    proxy.set_config(FaultConfig::only(Fault::Garbage, 1.0));
    let e = run(&ctx, one_query).await.expect_err("garbage");
    let m = e.to_string();
    assert!(
        m.contains("gave up, 3 attempts failed") && m.contains("Query"),
        "{m}"
    );
}

#[tokio::test]
async fn dropping_a_query_stream_stops_its_requests() {
    let (_, proxy, ctx) = through_proxy(quick_retries(3, 100)).await;
    // Every answer is slowed, so the scan is still running when it is dropped.
    proxy.set_config(FaultConfig {
        slow_delay: Duration::from_millis(40),
        ..FaultConfig::only(Fault::Slow, 1.0)
    });
    let pages_in_full = (PARTITIONS * PER_PARTITION).div_ceil(PAGE as usize) as u64;
    for (table_name, segments) in [("t1", 1), ("t4", 4), ("t32", 32)] {
        let start = proxy.counts().requests;
        let mut stream = ctx
            .sql(&format!("SELECT pk, sk, n, body FROM {table_name}"))
            .await
            .expect("plan")
            .execute_stream()
            .await
            .expect("stream");
        let first = futures::StreamExt::next(&mut stream)
            .await
            .expect("a batch")
            .expect("no error");
        assert!(first.num_rows() > 0);
        drop(stream);
        let at_drop = proxy.counts().requests;
        // Requests already on their way may still arrive...
        let settled = quiet_requests(&proxy).await;
        assert!(
            settled - at_drop <= 4,
            "{table_name}: {} requests arrived after the drop",
            settled - at_drop
        );
        // ...then nothing more: an observation window, not a wait for
        // something to happen (15 times the slowed requests' 40 ms).
        tokio::time::sleep(Duration::from_millis(600)).await;
        let later = proxy.counts().requests;
        assert_eq!(
            later, settled,
            "{table_name}: requests went on after the stream was dropped"
        );
        // A whole read takes a page per 25 items and a last page per
        // segment; this one had sent its first round (every segment of an
        // on-demand table at once) and little more.
        assert!(
            later - start < (pages_in_full + segments) * 3 / 4,
            "{table_name}: {} requests before the drop, the scan should have been far from done",
            later - start
        );
    }
}

/// A table that holds only three requests at once, at 20 ms a request: a
/// scan of 32 segments starts with more in flight than that (all 32: the
/// table is on demand), is throttled,
/// halves its concurrency until the table keeps up, and completes — with a
/// retry budget far too small for a scan that kept pushing.
#[tokio::test]
async fn concurrency_comes_down_when_the_table_cannot_keep_up() {
    let (_, proxy, ctx) = through_proxy(quick_retries(10, 70)).await;
    let expected = truth(&ctx).await;
    proxy.set_config(FaultConfig {
        latency: Duration::from_millis(20),
        capacity: Some(3),
        ..FaultConfig::none()
    });
    let sql = "SELECT pk, sk, n, body FROM t32";
    let before = proxy.counts();
    let plan = ctx
        .sql(sql)
        .await
        .expect("plan")
        .create_physical_plan()
        .await
        .expect("physical plan");
    let batches = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .expect("the scan completes");
    let got = sorted_rows(&batches);
    let want = QUERIES
        .iter()
        .zip(&expected)
        .find(|((_, _, q), _)| *q == sql)
        .map(|(_, rows)| rows)
        .expect("the query is among QUERIES");
    assert_eq!(&got, want, "nothing lost or duplicated");
    let c = proxy.counts();
    let (requests, throttled) = (
        c.requests - before.requests,
        c.over_capacity - before.over_capacity,
    );
    let pages = (PARTITIONS * PER_PARTITION).div_ceil(PAGE as usize) as u64 + 32;
    eprintln!("capacity test: {requests} requests for ~{pages} pages, {throttled} throttled");
    // Completing within a budget of 70 retries is the proof: a scan that kept
    // 32 requests in flight against a table that holds 3 spends it in its
    // third round; halving, it spends ~29 + 13 + 5 + 1 (47–51 measured).
    assert!(
        throttled > 0,
        "the scan started faster than the table allows"
    );
    assert!(throttled <= 70, "{throttled} throttled requests");
    let scan = find_scan(&plan).expect("scan");
    let reached = datafusion::physical_plan::ExecutionPlan::metrics(scan)
        .and_then(|m| m.sum_by_name("max_in_flight"))
        .map(|v| v.as_usize())
        .unwrap_or(0);
    assert!(
        reached > 3,
        "it did start above the table's capacity: {reached}"
    );
}

/// Found by the connector's soak (9 of 28,219 `sql` statements failed at 5 %
/// faults): ListTables, DescribeTable and DescribeTimeToLive had only the
/// SDK's three attempts, where reads have the retry policy's ten. Now each
/// is retried as reads are: four throttles in a row of each still answer.
#[tokio::test]
async fn table_metadata_calls_are_retried_as_reads_are() {
    let table = fault_table(&client().await).await;
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    for target in [".ListTables", ".DescribeTable", ".DescribeTimeToLive"] {
        for _ in 0..4 {
            proxy.answer_error(target, 0, "ProvisionedThroughputExceededException");
        }
    }
    let ctx = crate::common::dynamo_session_of(&proxy.client().await).await;
    let batches = crate::common::query(&ctx, &format!("SELECT count(*) FROM \"{table}\""))
        .await
        .expect("answers after four throttles of each metadata call");
    assert_eq!(sorted_rows(&batches).len(), 1);
    let counts = proxy.counts();
    assert_eq!(
        counts.requests - counts.passed,
        12,
        "every scripted throttle was answered: {counts:?}"
    );
}
