//! Differential fuzzing against an independent engine: random DynamoDB tables
//! and random SQL over them, each statement answered by the project (reading
//! DynamoDB Local, with every pushdown it chooses) and by DuckDB over the same
//! rows (`tests/oracle/duckdb_oracle.py`); the answers must be equal under the
//! normalisation of [`canon`].
//!
//! The test command runs it for `ORACLE_SECONDS` (default 40) from a fixed seed;
//! `scripts/fuzz-sql.sh --minutes N` runs it longer from a random seed.
//! `ORACLE_REPORT=file` writes every divergence there. `ORACLE_SEED=n` replays: round `r` of a run uses seed `n + r`, and every
//! divergence names its round's seed and statement number.

mod canon;
mod duck;
mod model;
mod query;

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use dynamo_datafusion::{DynamoTableProvider, TableOptions};
use rand::Rng;
use rand::seq::IndexedRandom;

use dynamo_testkit::{delete_table, put_items, unique_name};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::{client, dynamo_session_of, pushdown_session, run_as_dynamo_sql};

/// Statements per pair of tables.
const STATEMENTS_PER_ROUND: usize = 60;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

struct Report {
    statements: usize,
    agreed: usize,
    both_refused: usize,
    divergences: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sql_answers_what_duckdb_answers() {
    let budget = Duration::from_secs(env_u64("ORACLE_SECONDS").unwrap_or(40));
    let base_seed = env_u64("ORACLE_SEED").unwrap_or(20_261_207);
    let client = client().await;
    let mut oracle = duck::Oracle::start();
    let started = Instant::now();
    let mut report = Report {
        statements: 0,
        agreed: 0,
        both_refused: 0,
        divergences: Vec::new(),
    };
    let mut round = 0u64;
    while started.elapsed() < budget || round == 0 {
        let seed = base_seed + round;
        round += 1;
        let mut rng = StdRng::seed_from_u64(seed);
        let t = model::random_table(&mut rng, unique_name("oracle_t"), None);
        let u = model::random_table(&mut rng, unique_name("oracle_u"), Some(&t));
        for table in [&t, &u] {
            table.spec().create(&client).await.unwrap_or_else(|e| {
                panic!(
                    "seed {seed}: create {}: {e}: {:?}",
                    table.name,
                    table.spec()
                )
            });
            put_items(&client, &table.name, table.dynamo_items())
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: items of {}: {e}", table.name));
            oracle.load(&table.oracle_load());
        }
        let (ctx, reading) = session(&client, &[&t, &u], &mut rng).await;
        for n in 0..STATEMENTS_PER_ROUND {
            if started.elapsed() >= budget && n > 0 {
                break;
            }
            let q = query::random_query(&t, &u, &mut rng);
            report.statements += 1;
            let ours = tokio::time::timeout(Duration::from_secs(60), answer(&ctx, &q.datafusion))
                .await
                .map_err(|_| "no answer within 60 s".to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .and_then(|b| canon::rows_of_batches(&b));
            let theirs = oracle.query(&q.duckdb);
            let outcome = match (ours, theirs) {
                (Ok(a), Ok(b)) => canon::compare(a, b, q.ordered, &q.sets),
                (Err(a), Err(_)) if a.contains("no answer") => Err(a),
                (Err(_), Err(_)) => {
                    report.both_refused += 1;
                    continue;
                }
                (Err(a), Ok(_)) => Err(format!("the project failed: {a}")),
                (Ok(_), Err(b)) => Err(format!("DuckDB failed: {b}")),
            };
            match outcome {
                Ok(()) => report.agreed += 1,
                Err(why) => report.divergences.push(format!(
                    "seed {seed} statement {n}: {why}\n  project: {}\n  DuckDB:  {}\n  read with: {reading}\n  tables: {}\n  project's columns: {}",
                    q.datafusion,
                    q.duckdb,
                    describe(&[&t, &u]),
                    project_columns(&ctx, &[&t, &u]).await
                )),
            }
        }
        for table in [&t, &u] {
            let _ = delete_table(&client, &table.name).await;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "differential fuzzing: {} rounds, {} statements in {secs:.0} s ({:.1}/s): {} equal, \
         {} refused by both, {} divergences (base seed {base_seed})",
        round,
        report.statements,
        report.statements as f64 / secs,
        report.agreed,
        report.both_refused,
        report.divergences.len()
    );
    if let Ok(path) = std::env::var("ORACLE_REPORT") {
        std::fs::write(&path, report.divergences.join("\n\n"))
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    for d in report.divergences.iter().take(20) {
        eprintln!("DIVERGENCE {d}");
    }
    assert!(
        report.divergences.is_empty(),
        "{} of {} statements answered differently from DuckDB; the first: {}",
        report.divergences.len(),
        report.statements,
        report.divergences[0]
    );
    assert!(
        report.agreed * 10 >= report.statements * 9,
        "fewer than 90% of the statements were answered by both engines \
         ({} of {}): the generator writes statements both refuse",
        report.agreed,
        report.statements
    );
}

/// The project's answer as `dynamo-sql` and the connector get it
/// (`run_statement`: a column that widens re-plans the statement).
async fn answer(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::error::Result<Vec<datafusion::arrow::array::RecordBatch>> {
    Ok(run_as_dynamo_sql(ctx, sql).await?.0)
}

/// The session a round reads through: half the rounds `dynamo_session` as
/// `dynamo-sql` and the connector build it, the others providers with small
/// pages, several scan segments and few requests in flight, so that items
/// cross page and segment boundaries. Returns the session and its description.
async fn session(
    client: &aws_sdk_dynamodb::Client,
    tables: &[&model::Table],
    rng: &mut StdRng,
) -> (SessionContext, String) {
    if rng.random_bool(0.5) {
        return (dynamo_session_of(client).await, "dynamo_session".into());
    }
    let mut options = TableOptions::default();
    options.page_size = *[None, Some(3), Some(10), Some(50)]
        .choose(rng)
        .expect("page");
    // A small schema sample: values it missed widen columns while reading.
    // Not with a column of `S` and `N` values: while the sample saw only
    // strings it is a text column, and a read whose filter DynamoDB applies
    // may never meet a number (docs/types.md: the type is what was seen).
    let mixed = tables
        .iter()
        .any(|t| t.columns.iter().any(|c| c.kind == model::Kind::Mixed));
    if !mixed && rng.random_bool(0.5) {
        options.sample_size = 20;
    }
    options.segments = *[None, Some(1), Some(3), Some(8)]
        .choose(rng)
        .expect("segments");
    options.max_concurrency = *[1usize, 2, 64].choose(rng).expect("concurrency");
    let partitions = *[1usize, 3, 8].choose(rng).expect("partitions");
    let ctx = pushdown_session(partitions);
    for t in tables {
        let provider = DynamoTableProvider::builder(client.clone(), &t.name)
            .options(options.clone())
            .build()
            .await
            .unwrap_or_else(|e| panic!("provider {}: {e}", t.name));
        ctx.register_table(t.name.as_str(), Arc::new(provider))
            .expect("register");
    }
    let described = format!(
        "page_size {:?}, segments {:?}, max_concurrency {}, sample_size {}, target_partitions {partitions}",
        options.page_size, options.segments, options.max_concurrency, options.sample_size
    );
    (ctx, described)
}

/// The column types the project gave the tables (now, after any widening).
async fn project_columns(ctx: &SessionContext, tables: &[&model::Table]) -> String {
    let mut out = Vec::new();
    for t in tables {
        match ctx.table_provider(t.name.as_str()).await {
            Ok(p) => out.push(format!(
                "{}: {}",
                t.name,
                p.schema()
                    .fields()
                    .iter()
                    .map(|f| format!("{:?} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => out.push(format!("{}: {e}", t.name)),
        }
    }
    out.join("; ")
}

/// The tables' shapes, for a divergence report.
fn describe(tables: &[&model::Table]) -> String {
    tables
        .iter()
        .map(|t| {
            format!(
                "{} ({} items; key {:?}{}; columns {}; indexes {})",
                t.name,
                t.items.len(),
                t.pk.kind,
                t.sk.as_ref()
                    .map(|s| format!(", {:?}", s.kind))
                    .unwrap_or_default(),
                t.columns
                    .iter()
                    .map(|c| format!("{:?}: {:?}", c.name, c.kind))
                    .collect::<Vec<_>>()
                    .join(", "),
                t.indexes
                    .iter()
                    .map(|i| format!(
                        "{}{} {:?}/{:?} {:?}",
                        i.name,
                        if i.local { " (local)" } else { "" },
                        i.pk,
                        i.sk,
                        i.projection
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
