//! How close the cost estimate (what `EXPLAIN` shows before reading) comes
//! to the read capacity DynamoDB Local reports after the read.
//!
//! Two sets of queries, each run once with pushdown and compared:
//! - the pushdown matrix's table (`load_bench_table`: 100 items per
//!   partition, sequential sort keys, a GSI and an LSI);
//! - a skewed table: partitions of 1 to ~400 orders (a long tail), sort
//!   keys that are timestamps shared by all partitions, items of 0.2 to
//!   3 KB, a GSI on a category of 12 values — and random queries over it:
//!   partition keys, sort ranges of random width, IN lists, full keys,
//!   BatchGetItem, GSI values, LIMITs, full scans with filters.
//!
//! Reported per kind: the distribution of estimate ÷ actual read capacity
//! (min, p10, median, p90, max) and the share within the targets (2× for
//! key reads, 1.2× for full scans). DynamoDB Local bills nothing for a
//! Query that finds no item (the service bills 0.5 RCU): such answers are
//! counted, not divided.
//!
//! `scripts/bench.sh estimates [--items N] [--runs R]` (R random queries
//! per kind, default 40; `--smoke` is the CI configuration).

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::DynamoTableProvider;
use dynamo_datafusion::exec::ReadStats;
use dynamo_testkit::{TableSpec, create_table, put_items, table_exists};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{Args, BoxError, bench_session, load_bench_table, pk, write_result};

const T0: u64 = 1_760_000_000;
const CATEGORIES: usize = 12;

/// Partition `i`'s size: a long tail (most small, a few in the hundreds).
fn partition_size(i: usize) -> usize {
    let u = ((i * 2_654_435_761) % 1_000) as f64 / 1_000.0;
    (1.0 / (1.0 - u * 0.995)).powf(1.15).round() as usize
}

/// Loads the skewed table of about `n` items (once per size).
async fn load_skewed(client: &Client, n: usize) -> Result<(String, usize), BoxError> {
    let mut sizes = Vec::new();
    let mut total = 0;
    while total < n {
        let s = partition_size(sizes.len()).max(1);
        sizes.push(s);
        total += s;
    }
    let table = format!("bench_estimates_{n}");
    if table_exists(client, &table).await? {
        return Ok((table, sizes.len()));
    }
    let spec = TableSpec::new(&table, "customer", T::S)
        .sort_key("ts", T::N)
        .global_index("byCategory", ("category", T::S), Some(("ts", T::N)));
    create_table(client, &spec).await?;
    let mut items = Vec::with_capacity(total);
    for (i, &size) in sizes.iter().enumerate() {
        for j in 0..size {
            let bytes = 200 + ((i * 7_919 + j * 104_729) % 2_800);
            items.push(HashMap::from([
                ("customer".to_string(), AV::S(format!("c{i:06}"))),
                // Spread over ~90 days, in order within a partition.
                (
                    "ts".to_string(),
                    AV::N((T0 + (j as u64 * 7_776_000) / size as u64 + i as u64 % 600).to_string()),
                ),
                (
                    "category".to_string(),
                    AV::S(format!("k{}", (i + j) % CATEGORIES)),
                ),
                ("body".to_string(), AV::S("x".repeat(bytes))),
            ]));
        }
    }
    put_items(client, &table, items).await?;
    Ok((table, sizes.len()))
}

async fn stats(ctx: &SessionContext, sql: &str) -> Result<ReadStats, BoxError> {
    let plan = ctx.sql(sql).await?.create_physical_plan().await?;
    collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    Ok(ReadStats::of_plan(&plan))
}

/// Ratios of one kind of query, and the answers Local billed nothing for.
#[derive(Default)]
struct Ratios {
    ratios: Vec<f64>,
    unbilled: usize,
    estimated: f64,
    consumed: f64,
}

impl Ratios {
    fn add(&mut self, st: &ReadStats) {
        self.estimated += st.estimated_rcu;
        self.consumed += st.consumed_rcu;
        if st.consumed_rcu > 0.0 {
            self.ratios.push(st.estimated_rcu / st.consumed_rcu);
        } else {
            self.unbilled += 1;
        }
    }

    fn row(&mut self, kind: &str, target: f64) -> String {
        let r = &mut self.ratios;
        r.sort_by(f64::total_cmp);
        if r.is_empty() {
            return format!("| {kind} | 0 | | | | | | | | {} |\n", self.unbilled);
        }
        let q = |p: f64| r[((r.len() - 1) as f64 * p).round() as usize];
        let within = r
            .iter()
            .filter(|x| **x <= target && **x >= 1.0 / target)
            .count();
        format!(
            "| {kind} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} % (≤ {target}×) | {:.2} | {} |\n",
            r.len(),
            q(0.0),
            q(0.1),
            q(0.5),
            q(0.9),
            q(1.0),
            100.0 * within as f64 / r.len() as f64,
            self.estimated / self.consumed.max(f64::MIN_POSITIVE),
            self.unbilled
        )
    }
}

const HEADER: &str = "| queries | n | min | p10 | median | p90 | max | within target | Σ estimated ÷ Σ consumed | empty answers (Local bills 0) |\n\
                      |---|---|---|---|---|---|---|---|---|---|\n";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[100_000], 40, 3_000)?;
    let client = dynamo_testkit::local_client().await?;
    let per_kind = if args.smoke { 3 } else { args.runs };
    let mut md = String::new();
    for &n in &args.items {
        // The pushdown matrix's table.
        let table = load_bench_table(&client, n).await?;
        let ctx = bench_session(DynamoTableProvider::try_new(client.clone(), &table).await?)?;
        let p = pk(4200.min(n - 1));
        let base = (4200.min(n - 1) / 100) * 100;
        let matrix = [
            (
                "full scan, count(*)",
                "SELECT count(*) FROM t".to_string(),
                1.2,
            ),
            (
                "full scan, filter",
                "SELECT count(*) FROM t WHERE active AND score > 900".to_string(),
                1.2,
            ),
            (
                "partition key",
                format!("SELECT sk, score FROM t WHERE pk = '{p}'"),
                2.0,
            ),
            (
                "key + sort range",
                format!(
                    "SELECT sk FROM t WHERE pk = '{p}' AND sk BETWEEN {} AND {}",
                    base + 10,
                    base + 19
                ),
                2.0,
            ),
            (
                "GSI equality + range",
                "SELECT pk, sk FROM t WHERE country = 'NO' AND score >= 990".to_string(),
                2.0,
            ),
            (
                "LSI range",
                format!("SELECT sk FROM t WHERE pk = '{p}' AND amount >= 90"),
                2.0,
            ),
            (
                "IN of 5 partition keys",
                format!(
                    "SELECT count(*) FROM t WHERE pk IN ({})",
                    (1..=5)
                        .map(|k| format!("'{}'", pk(k * 100)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                2.0,
            ),
            (
                "full key",
                format!("SELECT note FROM t WHERE pk = '{p}' AND sk = {}", base + 42),
                2.0,
            ),
        ];
        md += &format!(
            "### Pushdown matrix, {n} items\n\n| query | items estimated / read | RCU estimated / consumed | ratio |\n|---|---|---|---|\n"
        );
        for (label, sql, _) in &matrix {
            let st = stats(&ctx, sql).await?;
            md += &format!(
                "| {label} | {:.0} / {} | {:.1} / {:.1} | {:.2} |\n",
                st.estimated_items,
                st.items_scanned,
                st.estimated_rcu,
                st.consumed_rcu,
                st.estimated_rcu / st.consumed_rcu.max(f64::MIN_POSITIVE)
            );
        }

        // Random queries over the skewed table.
        let (table, partitions) = load_skewed(&client, n).await?;
        let ctx = bench_session(DynamoTableProvider::try_new(client.clone(), &table).await?)?;
        let mut rng = StdRng::seed_from_u64(17);
        let mut kinds: BTreeMap<&str, (Ratios, f64)> = BTreeMap::new();
        let customer = |rng: &mut StdRng| format!("c{:06}", rng.random_range(0..partitions));
        for _ in 0..per_kind {
            let c = customer(&mut rng);
            let from = T0 + rng.random_range(0..7_776_000u64);
            let width = rng.random_range(3_600..2_592_000u64);
            let list: Vec<String> = (0..rng.random_range(2..20usize))
                .map(|_| format!("'{}'", customer(&mut rng)))
                .collect();
            let queries = [
                (
                    "partition key",
                    format!("SELECT * FROM t WHERE customer = '{c}'"),
                    2.0,
                ),
                (
                    "key + ts range",
                    format!(
                        "SELECT * FROM t WHERE customer = '{c}' AND ts BETWEEN {from} AND {}",
                        from + width
                    ),
                    2.0,
                ),
                (
                    "key + ts after",
                    format!("SELECT * FROM t WHERE customer = '{c}' AND ts > {from}"),
                    2.0,
                ),
                (
                    "IN of 2–19 keys",
                    format!("SELECT * FROM t WHERE customer IN ({})", list.join(", ")),
                    2.0,
                ),
                (
                    "GSI category + ts range",
                    format!(
                        "SELECT customer FROM t WHERE category = 'k{}' AND ts BETWEEN {from} AND {}",
                        rng.random_range(0..CATEGORIES),
                        from + width
                    ),
                    2.0,
                ),
                (
                    "LIMIT",
                    format!("SELECT * FROM t LIMIT {}", rng.random_range(1..500)),
                    2.0,
                ),
            ];
            for (kind, sql, target) in queries {
                let st = stats(&ctx, &sql).await?;
                kinds
                    .entry(kind)
                    .or_insert((Ratios::default(), target))
                    .0
                    .add(&st);
            }
        }
        for sql in [
            "SELECT count(*) FROM t",
            "SELECT count(*) FROM t WHERE body LIKE '%y%'",
        ] {
            let st = stats(&ctx, sql).await?;
            kinds
                .entry("full scan")
                .or_insert((Ratios::default(), 1.2))
                .0
                .add(&st);
        }
        md += &format!(
            "\n### Random queries, skewed table of {n} items ({partitions} partitions), estimate ÷ consumed RCU\n\n{HEADER}"
        );
        for (kind, (ratios, target)) in kinds.iter_mut() {
            md += &ratios.row(kind, *target);
        }
        md += "\n";
    }
    println!("{md}");
    if !args.smoke {
        write_result("estimates.md", &md)?;
    }
    Ok(())
}
