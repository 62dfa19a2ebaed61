//! Scan vs query pushdown against DynamoDB Local: a matrix of queries, each run
//! with pushdown on and off, beside the best hand-written DynamoDB call.
//! Records requests, items scanned and returned, consumed capacity and wall time
//! (median); checks both answers agree; writes a Markdown table and an SVG chart
//! to `benches/results/`.
//!
//! `scripts/bench.sh pushdown [--items N]... [--runs R]` (default 10,000 and
//! 100,000 items, 5 runs); `--smoke` is the CI configuration.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, ConsumedCapacity, ReturnConsumedCapacity, ScalarAttributeType as T,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::{DynamoTableProvider, TableOptions};
use support::{
    Args, BoxError, bar_chart_svg, bench_session, load_bench_table as load, median, pk,
    write_result,
};

/// What a hand-written call cost.
#[derive(Default)]
struct Cost {
    requests: usize,
    scanned: usize,
    returned: usize,
    rcu: f64,
}

impl Cost {
    /// Adds one Scan or Query page.
    fn add_page(&mut self, scanned: i32, returned: i32, capacity: Option<&ConsumedCapacity>) {
        self.requests += 1;
        self.scanned += scanned.max(0) as usize;
        self.returned += returned.max(0) as usize;
        self.rcu += capacity.and_then(|c| c.capacity_units).unwrap_or(0.0);
    }
}

/// A hand-written Query: index, key condition, values, Limit, ScanIndexForward.
type HandQuery<'a> = (
    Option<&'a str>,
    &'a str,
    Vec<(&'a str, AV)>,
    Option<i32>,
    bool,
);

/// The best hand-written DynamoDB call for each query of the matrix.
async fn hand_written(
    client: &Client,
    table: &str,
    case: usize,
    n: usize,
) -> Result<Cost, BoxError> {
    let mut cost = Cost::default();
    let p = pk(4200.min(n - 1));
    let base = (4200.min(n - 1) / 100) * 100;
    let s = |v: &str| AV::S(v.to_string());
    let num = |v: usize| AV::N(v.to_string());
    let queries: Vec<HandQuery> = match case {
        0 => vec![(None, "pk = :p", vec![(":p", s(&p))], None, true)],
        1 => vec![(
            None,
            "pk = :p AND sk BETWEEN :a AND :b",
            vec![
                (":p", s(&p)),
                (":a", num(base + 10)),
                (":b", num(base + 19)),
            ],
            None,
            true,
        )],
        2 => vec![(None, "pk = :p", vec![(":p", s(&p))], Some(10), false)],
        3 => vec![(
            Some("byCountry"),
            "country = :c AND score >= :s",
            vec![(":c", s("NO")), (":s", num(990))],
            None,
            true,
        )],
        4 => vec![(
            Some("byAmount"),
            "pk = :p AND amount >= :a",
            vec![(":p", s(&p)), (":a", num(90))],
            None,
            true,
        )],
        5 => (1..=5)
            .map(|k| (None, "pk = :p", vec![(":p", s(&pk(k * 100)))], None, true))
            .collect(),
        6 => {
            let out = client
                .get_item()
                .table_name(table)
                .key("pk", s(&p))
                .key("sk", num(base + 42))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await?;
            cost.requests = 1;
            cost.scanned = usize::from(out.item.is_some());
            cost.returned = cost.scanned;
            cost.rcu = out
                .consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            return Ok(cost);
        }
        _ => {
            // A filter or an aggregate over every item: a Scan is the best there is.
            let filter = (case == 7).then_some("active = :t AND score > :s");
            let mut start = None;
            loop {
                let mut req = client
                    .scan()
                    .table_name(table)
                    .set_exclusive_start_key(start.take())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total);
                if let Some(f) = filter {
                    req = req
                        .filter_expression(f)
                        .expression_attribute_values(":t", AV::Bool(true))
                        .expression_attribute_values(":s", num(900));
                } else {
                    req = req.projection_expression("country, amount");
                }
                let out = req.send().await?;
                cost.add_page(out.scanned_count, out.count, out.consumed_capacity.as_ref());
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => return Ok(cost),
                }
            }
        }
    };
    for (index, key, values, limit, forward) in queries {
        let mut start = None;
        loop {
            let mut req = client
                .query()
                .table_name(table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(key)
                .scan_index_forward(forward)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            for (k, v) in &values {
                req = req.expression_attribute_values(*k, v.clone());
            }
            let out = req.send().await?;
            cost.add_page(out.scanned_count, out.count, out.consumed_capacity.as_ref());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && limit.is_none() => start = Some(k),
                _ => break,
            }
        }
    }
    Ok(cost)
}

fn queries(n: usize) -> Vec<(&'static str, String)> {
    let p = pk(4200.min(n - 1));
    let base = (4200.min(n - 1) / 100) * 100;
    let in_list: Vec<String> = (1..=5).map(|k| format!("'{}'", pk(k * 100))).collect();
    vec![
        (
            "partition-key lookup",
            format!("SELECT sk, score FROM t WHERE pk = '{p}'"),
        ),
        (
            "key + sort range",
            format!(
                "SELECT sk FROM t WHERE pk = '{p}' AND sk BETWEEN {} AND {}",
                base + 10,
                base + 19
            ),
        ),
        (
            "ORDER BY sk DESC LIMIT 10",
            format!("SELECT sk, score FROM t WHERE pk = '{p}' ORDER BY sk DESC LIMIT 10"),
        ),
        (
            "GSI equality + range",
            "SELECT pk, sk FROM t WHERE country = 'NO' AND score >= 990".to_string(),
        ),
        (
            "LSI range",
            format!("SELECT sk FROM t WHERE pk = '{p}' AND amount >= 90"),
        ),
        (
            "IN of 5 partition keys",
            format!(
                "SELECT count(*) FROM t WHERE pk IN ({})",
                in_list.join(", ")
            ),
        ),
        (
            "full-key lookup",
            format!("SELECT note FROM t WHERE pk = '{p}' AND sk = {}", base + 42),
        ),
        (
            "non-key filter",
            "SELECT count(*) FROM t WHERE active AND score > 900".to_string(),
        ),
        (
            "aggregate with projection",
            "SELECT country, count(*), avg(amount) FROM t GROUP BY country".to_string(),
        ),
    ]
}

/// Runs `sql` `runs` times: median wall time, the last run's stats and sorted rows.
async fn measure(
    ctx: &SessionContext,
    sql: &str,
    runs: usize,
) -> Result<(std::time::Duration, ReadStats, String, Vec<String>), BoxError> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let df = ctx.sql(sql).await?;
        let plan = df.create_physical_plan().await?;
        let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
        times.push(start.elapsed());
        last = Some((plan, batches));
    }
    let (plan, batches) = last.ok_or("no run")?;
    let op = operation_of(&plan);
    let mut rows = Vec::new();
    for b in &batches {
        let f: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()))
            .collect::<Result<_, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(
                f.iter()
                    .map(|x| x.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    rows.sort();
    Ok((median(times), ReadStats::of_plan(&plan), op, rows))
}

/// Joins of a small side (a `VALUES` list) with the table, with the
/// join's keys read by key and with the planned read: 100 partition keys
/// (one Query each) and 100 whole keys (BatchGetItem).
async fn join_rows(
    client: &Client,
    table: &str,
    n: usize,
    runs: usize,
) -> Result<String, BoxError> {
    let partition_keys: Vec<String> = (0..100)
        .map(|k| format!("('{}')", pk((k * 7 % (n / 100).max(1)) * 100)))
        .collect();
    let whole_keys: Vec<String> = (0..100)
        .map(|k| {
            let i = (k * 7919) % n;
            format!("('{}', {i})", pk(i))
        })
        .collect();
    let cases = [
        (
            "100 partition keys",
            format!(
                "SELECT count(*), sum(t.score) FROM (VALUES {}) AS k(pk) JOIN t ON k.pk = t.pk",
                partition_keys.join(", ")
            ),
        ),
        (
            "100 whole keys",
            format!(
                "SELECT count(*), sum(t.score) FROM (VALUES {}) AS k(pk, sk) \
                 JOIN t ON k.pk = t.pk AND k.sk = t.sk",
                whole_keys.join(", ")
            ),
        ),
    ];
    let lookups = bench_session(DynamoTableProvider::try_new(client.clone(), table).await?)?;
    let planned = bench_session(DynamoTableProvider::try_new(client.clone(), table).await?)?;
    planned.sql("SET dynamodb.join_key_lookups = 'off'").await?;
    let mut md = format!(
        "\n#### Joins: a `VALUES` list × the {n}-item table\n\n| join on | read | operation | requests | items scanned | RCU | time |\n|---|---|---|---|---|---|---|\n"
    );
    for (label, sql) in cases {
        let (t_on, s_on, _, rows_on) = measure(&lookups, &sql, runs).await?;
        let (t_off, s_off, op_off, rows_off) = measure(&planned, &sql, runs).await?;
        if rows_on != rows_off {
            return Err(format!("key lookups changed the answer of {sql}").into());
        }
        let op_on = runtime_operation(&lookups, &sql).await?;
        md += &format!(
            "| {label} | join keys read by key | {op_on} | {} | {} | {:.1} | {:.1} ms |\n\
             | {label} | planned read (`join_key_lookups = 'off'`) | {op_off} | {} | {} | {:.1} | {:.1} ms |\n\
             | {label} | ratio | | | {:.3} | {:.3} | {:.2}× faster |\n",
            s_on.requests,
            s_on.items_scanned,
            s_on.consumed_rcu,
            t_on.as_secs_f64() * 1e3,
            s_off.requests,
            s_off.items_scanned,
            s_off.consumed_rcu,
            t_off.as_secs_f64() * 1e3,
            s_on.items_scanned as f64 / s_off.items_scanned.max(1) as f64,
            s_on.consumed_rcu / s_off.consumed_rcu.max(f64::MIN_POSITIVE),
            t_off.as_secs_f64() / t_on.as_secs_f64().max(1e-9),
        );
    }
    Ok(md)
}

/// The time-range table: 10 devices, each with `n / 10` events spread over
/// 70 days, the sort key `ts` an ISO-8601 UTC string (inferred as a
/// timestamp).
async fn load_time_table(client: &Client, n: usize) -> Result<String, BoxError> {
    let table = format!("bench_time_{n}");
    if dynamo_testkit::table_exists(client, &table).await? {
        return Ok(table);
    }
    let spec = dynamo_testkit::TableSpec::new(&table, "device", T::S).sort_key("ts", T::S);
    dynamo_testkit::create_table(client, &spec).await?;
    let per_device = (n / 10).max(1);
    let step = 70 * 86_400 / per_device as i64;
    let items = (0..n)
        .map(|i| {
            let secs = TIME_START + (i / 10) as i64 * step;
            let ts = chrono::DateTime::from_timestamp(secs, 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            HashMap::from([
                ("device".to_string(), AV::S(format!("d{}", i % 10))),
                ("ts".to_string(), AV::S(ts)),
                (
                    "reading".to_string(),
                    AV::N(((i * 7919) % 1000).to_string()),
                ),
            ])
        })
        .collect();
    dynamo_testkit::put_items(client, &table, items).await?;
    Ok(table)
}

/// 2025-09-01T00:00:00Z: the first event of every device.
const TIME_START: i64 = 1_756_684_800;

/// A 7-day range of one device: the key condition holds the range (time
/// as a type), the whole partition read and the range checked after it
/// (the column kept as text, the range written with a cast — what a
/// query did before), and a full Scan (pushdown off).
async fn time_rows(client: &Client, n: usize, runs: usize) -> Result<String, BoxError> {
    let table = load_time_table(client, n).await?;
    let typed = bench_session(DynamoTableProvider::try_new(client.clone(), &table).await?)?;
    let text = bench_session(
        DynamoTableProvider::builder(client.clone(), &table)
            .options({
                let mut o = TableOptions::default();
                o.infer_time = false;
                o
            })
            .build()
            .await?,
    )?;
    let scan = bench_session(
        DynamoTableProvider::builder(client.clone(), &table)
            .options({
                let mut o = TableOptions::default();
                o.pushdown = false;
                o
            })
            .build()
            .await?,
    )?;
    let (from, to) = ("2025-10-01T00:00:00", "2025-10-08T00:00:00");
    let range = format!("ts >= TIMESTAMP '{from}' AND ts < TIMESTAMP '{to}'");
    let cast = format!(
        "CAST(ts AS TIMESTAMP) >= TIMESTAMP '{from}' AND CAST(ts AS TIMESTAMP) < TIMESTAMP '{to}'"
    );
    let cases = [
        (
            "time type: range in the key condition",
            &typed,
            format!("SELECT count(*), sum(reading) FROM t WHERE device = 'd3' AND {range}"),
        ),
        (
            "text + CAST: partition read, range checked after",
            &text,
            format!("SELECT count(*), sum(reading) FROM t WHERE device = 'd3' AND {cast}"),
        ),
        (
            "pushdown off: Scan",
            &scan,
            format!("SELECT count(*), sum(reading) FROM t WHERE device = 'd3' AND {range}"),
        ),
    ];
    let mut md = format!(
        "\n#### Time ranges: 7 days of one device, {n}-item table (sort key an ISO-8601 string; 10 devices × 70 days)\n\n\
         | read | operation | requests | items scanned | RCU | time | vs partition read |\n|---|---|---|---|---|---|---|\n"
    );
    let mut results = Vec::new();
    for (label, ctx, sql) in &cases {
        let (t, stats, op, rows) = measure(ctx, sql, runs).await?;
        results.push((label, t, stats, op, rows));
    }
    if results.iter().any(|r| r.4 != results[0].4) {
        return Err(format!("the time-range reads disagree on table {table}").into());
    }
    let base = &results[1];
    for (label, t, stats, op, _) in &results {
        md += &format!(
            "| {label} | {op} | {} | {} | {:.1} | {:.1} ms | items {:.3}×, RCU {:.3}×, time {:.2}× |\n",
            stats.requests,
            stats.items_scanned,
            stats.consumed_rcu,
            t.as_secs_f64() * 1e3,
            stats.items_scanned as f64 / base.2.items_scanned.max(1) as f64,
            stats.consumed_rcu / base.2.consumed_rcu.max(f64::MIN_POSITIVE),
            t.as_secs_f64() / base.1.as_secs_f64().max(1e-9),
        );
    }
    Ok(md)
}

/// The read a join chose at run time (`EXPLAIN ANALYZE`'s `join_keys`).
async fn runtime_operation(ctx: &SessionContext, sql: &str) -> Result<String, BoxError> {
    let batches = ctx
        .sql(&format!("EXPLAIN ANALYZE {sql}"))
        .await?
        .collect()
        .await?;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
    let choice = text
        .split("join_keys=[")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .ok_or("no join_keys in EXPLAIN ANALYZE")?;
    Ok(choice.trim().to_string())
}

fn operation_of(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> String {
    if let Some(e) =
        (plan.as_ref() as &dyn std::any::Any).downcast_ref::<dynamo_datafusion::DynamoExec>()
    {
        return match e.index() {
            Some(ix) => format!("{} ({ix})", e.operation()),
            None => e.operation().to_string(),
        };
    }
    plan.children()
        .into_iter()
        .map(operation_of)
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[10_000, 100_000], 5, 300)?;
    let client = dynamo_testkit::local_client().await?;
    for &n in &args.items {
        let table = load(&client, n).await?;
        let on = bench_session(DynamoTableProvider::try_new(client.clone(), &table).await?)?;
        let off = bench_session(
            DynamoTableProvider::builder(client.clone(), &table)
                .options({
                    let mut off = TableOptions::default();
                    off.pushdown = false;
                    off
                })
                .build()
                .await?,
        )?;
        let mut md = format!(
            "### {n} items (median of {} runs; pushdown on / off; \"hand\" = best hand-written DynamoDB call)\n\n\
             | query | read chosen | requests on / off | items scanned on / off / hand | items returned on / off | RCU on / off | time on / off | speed-up | scanned vs full scan |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            args.runs
        );
        let mut chart = Vec::new();
        for (case, (label, sql)) in queries(n).into_iter().enumerate() {
            let (t_on, s_on, op, rows_on) = measure(&on, &sql, args.runs).await?;
            let (t_off, s_off, _, rows_off) = measure(&off, &sql, args.runs).await?;
            if rows_on != rows_off {
                return Err(format!("pushdown changed the answer of {sql}").into());
            }
            let hand = hand_written(&client, &table, case, n).await?;
            if s_on.items_scanned > hand.scanned {
                eprintln!(
                    "WARNING: {label}: pushdown scanned {} items, hand-written {}",
                    s_on.items_scanned, hand.scanned
                );
            }
            md += &format!(
                "| {label} | {op} | {} / {} | {} / {} / {} | {} / {} | {:.1} / {:.1} | {:.1} ms / {:.1} ms | {:.1}× | {:.4} |\n",
                s_on.requests,
                s_off.requests,
                s_on.items_scanned,
                s_off.items_scanned,
                hand.scanned,
                s_on.items_returned,
                s_off.items_returned,
                s_on.consumed_rcu,
                s_off.consumed_rcu,
                t_on.as_secs_f64() * 1e3,
                t_off.as_secs_f64() * 1e3,
                t_off.as_secs_f64() / t_on.as_secs_f64().max(1e-9),
                s_on.items_scanned as f64 / n as f64,
            );
            chart.push((
                label.to_string(),
                vec![
                    s_on.items_scanned as f64,
                    s_off.items_scanned as f64,
                    hand.scanned as f64,
                ],
            ));
        }
        md += &join_rows(&client, &table, n, args.runs).await?;
        md += &time_rows(&client, n, args.runs).await?;
        println!("{md}");
        if !args.smoke {
            write_result(&format!("pushdown-{n}.md"), &md)?;
            let svg = bar_chart_svg(
                &format!("Items scanned per query, {n}-item table (log scale)"),
                &["pushdown", "no pushdown", "hand-written"],
                &chart,
            );
            write_result(&format!("pushdown-{n}.svg"), &svg)?;
        }
    }
    Ok(())
}
