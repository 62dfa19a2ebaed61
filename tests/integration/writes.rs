//! INSERT, REPLACE, UPDATE and DELETE against DynamoDB Local: the items
//! afterwards are asserted as DynamoDB holds them (read with the SDK, not
//! through the provider), a random workload matches an in-memory model after
//! every statement — also through a proxy that throttles, fails and drops
//! 10 % of requests — and every refusal leaves the table as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::decode::Item;
use dynamo_datafusion::{DynamoTableProvider, TableOptions};
use dynamo_testkit::{FaultConfig, FaultProxy, Xorshift, local_endpoint, put_items};

use crate::common::{client, pk_sk_table, query, rows};

/// Every item of `table`, as DynamoDB holds it, by key text.
async fn items_of(client: &Client, table: &str) -> BTreeMap<String, Item> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            out.insert(key_text(item), item.clone());
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

fn key_text(item: &Item) -> String {
    let pk = item.get("pk").map(|v| format!("{v:?}")).unwrap_or_default();
    let sk = item.get("sk").map(|v| format!("{v:?}")).unwrap_or_default();
    format!("{pk}/{sk}")
}

/// An item with sets in a fixed order, for comparison.
fn canonical(item: &Item) -> BTreeMap<String, String> {
    fn value(v: &AV) -> String {
        match v {
            AV::Ss(s) => {
                let mut s = s.clone();
                s.sort();
                format!("SS{s:?}")
            }
            AV::Ns(s) => {
                let mut s = s.clone();
                s.sort();
                format!("NS{s:?}")
            }
            AV::Bs(s) => {
                let mut s: Vec<Vec<u8>> = s.iter().map(|b| b.as_ref().to_vec()).collect();
                s.sort();
                format!("BS{s:?}")
            }
            AV::L(l) => format!("L[{}]", l.iter().map(value).collect::<Vec<_>>().join(",")),
            AV::M(m) => {
                let sorted: BTreeMap<&String, String> =
                    m.iter().map(|(k, v)| (k, value(v))).collect();
                format!("M{sorted:?}")
            }
            other => format!("{other:?}"),
        }
    }
    item.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// A new, empty table keyed by `pk` (S) and `sk` (N).
async fn new_table(client: &Client, prefix: &str) -> String {
    pk_sk_table(client, prefix, Vec::new()).await
}

/// A `dynamo_session` over `client` with `table` declared as `t` with the
/// workload's columns.
async fn session_with_t(client: &Client, table: &str) -> SessionContext {
    session_with_t_options(client, table, "").await
}

/// [`session_with_t`] with table `options` (`OPTIONS (…)`).
async fn session_with_t_options(client: &Client, table: &str, options: &str) -> SessionContext {
    let ctx = dynamo_datafusion::dynamo_session(
        client.clone(),
        SessionConfig::new(),
        TableOptions::default(),
    )
    .await
    .expect("session");
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t (pk VARCHAR NOT NULL, sk BIGINT NOT NULL, n BIGINT, s VARCHAR, \
         price DECIMAL(38, 4)) STORED AS DYNAMODB LOCATION '{table}' {options}"
    ))
    .await
    .expect("create external table");
    ctx
}

async fn count_of(ctx: &SessionContext, sql: &str) -> u64 {
    let batches = query(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = rows(&batches);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0]
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: count {rows:?}"))
}

fn s(v: &str) -> AV {
    AV::S(v.into())
}

fn n(v: &str) -> AV {
    AV::N(v.into())
}

#[tokio::test]
async fn each_statement_writes_what_dynamodb_means_by_it() {
    let client = client().await;
    let table = new_table(&client, "writes").await;
    let ctx = session_with_t(&client, &table).await;

    let inserted = count_of(
        &ctx,
        "INSERT INTO t (pk, sk, n, s, price) VALUES ('a', 1, 10, 'x', 1.25), ('a', 2, NULL, 'y', 2), ('b', 1, 3, NULL, NULL)",
    )
    .await;
    assert_eq!(inserted, 3);
    let items = items_of(&client, &table).await;
    assert_eq!(items.len(), 3);
    let a1 = items
        .values()
        .find(|i| i["pk"] == s("a") && i["sk"] == n("1"))
        .expect("a/1");
    assert_eq!(a1["n"], n("10"));
    assert_eq!(a1["price"], n("1.25"), "decimals are exact numbers");
    let a2 = items
        .values()
        .find(|i| i["pk"] == s("a") && i["sk"] == n("2"))
        .expect("a/2");
    assert!(!a2.contains_key("n"), "NULL is no attribute: {a2:?}");

    // An existing key stops an INSERT, naming it; nothing else is written.
    let err = query(&ctx, "INSERT INTO t (pk, sk, n) VALUES ('a', 1, 99)")
        .await
        .expect_err("duplicate key");
    let text = err.to_string();
    assert!(
        text.contains(r#"{"pk":{"S":"a"},"sk":{"N":"1"}}"#) && text.contains("already exists"),
        "{text}"
    );
    assert!(text.contains("wrote nothing"), "{text}");
    assert_eq!(
        items_of(&client, &table).await["S(\"a\")/N(\"1\")"]["n"],
        n("10")
    );

    // REPLACE replaces the whole item: attributes not given are gone.
    assert_eq!(
        count_of(
            &ctx,
            "REPLACE INTO t (pk, sk, s) VALUES ('a', 1, 'z'), ('c', 1, 'new')"
        )
        .await,
        2
    );
    let items = items_of(&client, &table).await;
    let a1 = &items["S(\"a\")/N(\"1\")"];
    assert_eq!(
        canonical(a1),
        canonical(&Item::from([
            ("pk".to_string(), s("a")),
            ("sk".to_string(), n("1")),
            ("s".to_string(), s("z")),
        ]))
    );
    assert_eq!(items.len(), 4);

    // UPDATE changes the matching items' attributes, NULL removes one.
    let updated = count_of(
        &ctx,
        "UPDATE t SET n = coalesce(n, 0) + 1, s = NULL WHERE pk = 'a'",
    )
    .await;
    assert_eq!(updated, 2);
    let items = items_of(&client, &table).await;
    assert_eq!(items["S(\"a\")/N(\"1\")"]["n"], n("1"));
    assert!(!items["S(\"a\")/N(\"1\")"].contains_key("s"));
    assert_eq!(items["S(\"a\")/N(\"2\")"]["n"], n("1"));
    assert_eq!(
        items["S(\"b\")/N(\"1\")"]["n"],
        n("3"),
        "not matched, not changed"
    );

    // DELETE with a condition on a non-key attribute.
    assert_eq!(
        count_of(&ctx, "DELETE FROM t WHERE n = 1 AND sk = 2").await,
        1
    );
    let items = items_of(&client, &table).await;
    assert_eq!(items.len(), 3);
    assert!(!items.contains_key("S(\"a\")/N(\"2\")"));

    // A WHERE that matches nothing changes nothing.
    assert_eq!(count_of(&ctx, "DELETE FROM t WHERE pk = 'nobody'").await, 0);
    assert_eq!(
        count_of(&ctx, "UPDATE t SET n = 5 WHERE s = 'nothing'").await,
        0
    );
    assert_eq!(items_of(&client, &table).await, items);
}

#[tokio::test]
async fn refusals_leave_the_table_as_it_was() {
    let client = client().await;
    let table = new_table(&client, "refusals").await;
    let ctx = session_with_t(&client, &table).await;
    count_of(
        &ctx,
        "INSERT INTO t (pk, sk, n) VALUES ('a', 1, 1), ('a', 2, 2), ('b', 1, 3)",
    )
    .await;
    let before = items_of(&client, &table).await;
    let refused = [
        ("UPDATE t SET n = 0", "allow_full_table_writes"),
        ("DELETE FROM t", "allow_full_table_writes"),
        (
            "DELETE FROM t WHERE sk IN (SELECT sk FROM t WHERE n = 1)",
            "subquery",
        ),
        (
            "DELETE FROM t WHERE pk = 'a' AND sk IN (SELECT sk FROM t WHERE n = 1)",
            "subquery",
        ),
        (
            "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t WHERE n = 99)",
            "subquery",
        ),
        (
            "UPDATE t SET n = (SELECT max(n) FROM t) WHERE pk = 'a'",
            "subquery",
        ),
        ("UPDATE t SET sk = 5 WHERE pk = 'a'", "is a key"),
        ("UPDATE t SET pk = 'z' WHERE pk = 'a'", "is a key"),
        ("INSERT OVERWRITE t SELECT * FROM t", "INSERT OVERWRITE"),
        (
            "INSERT INTO t (pk, sk, n) VALUES (NULL, 1, 1)",
            "non-nullable",
        ),
        ("INSERT INTO t (pk, sk, n) VALUES ('', 1, 1)", "non-empty"),
    ];
    for (sql, expected) in refused {
        let err = query(&ctx, sql).await.expect_err(sql);
        assert!(err.to_string().contains(expected), "{sql}: {err}");
        assert_eq!(
            items_of(&client, &table).await,
            before,
            "{sql} changed the table"
        );
    }
    // Whole-table writes when the session allows them.
    query(&ctx, "SET dynamodb.allow_full_table_writes = true")
        .await
        .expect("set");
    assert_eq!(count_of(&ctx, "UPDATE t SET n = 0").await, 3);
    assert_eq!(count_of(&ctx, "DELETE FROM t").await, 3);
    assert!(items_of(&client, &table).await.is_empty());
}

#[tokio::test]
async fn a_transaction_writes_all_or_nothing() {
    let client = client().await;
    let table = new_table(&client, "transaction").await;
    let ctx = session_with_t(&client, &table).await;
    count_of(&ctx, "INSERT INTO t (pk, sk, n) VALUES ('a', 3, 3)").await;
    query(&ctx, "SET dynamodb.write_mode = 'transaction'")
        .await
        .expect("set");
    // The third row's key exists: none of the three is written.
    let err = query(
        &ctx,
        "INSERT INTO t (pk, sk, n) VALUES ('a', 1, 1), ('a', 2, 2), ('a', 3, 30)",
    )
    .await
    .expect_err("conflict");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(items_of(&client, &table).await.len(), 1, "rolled back");
    assert_eq!(
        count_of(
            &ctx,
            "INSERT INTO t (pk, sk, n) VALUES ('a', 1, 1), ('a', 2, 2)"
        )
        .await,
        2
    );
    assert_eq!(
        count_of(&ctx, "UPDATE t SET n = n * 10 WHERE pk = 'a'").await,
        3
    );
    let items = items_of(&client, &table).await;
    let ns: Vec<&AV> = items.values().map(|i| &i["n"]).collect();
    assert_eq!(ns, vec![&n("10"), &n("20"), &n("30")]);
    // More than 100 items: refused before anything is written.
    let values: Vec<String> = (100..201).map(|i| format!("('b', {i}, {i})")).collect();
    let err = query(
        &ctx,
        &format!("INSERT INTO t (pk, sk, n) VALUES {}", values.join(", ")),
    )
    .await
    .expect_err("too many");
    assert!(err.to_string().contains("at most 100"), "{err}");
    assert_eq!(items_of(&client, &table).await.len(), 3);
}

/// Random items of every type the reader infers: scalars, exact decimals,
/// binary, sets, lists and maps, attributes present in some items only.
fn random_items(rng: &mut Xorshift, count: usize) -> Vec<Item> {
    (0..count)
        .map(|i| {
            let mut item = Item::from([
                ("pk".to_string(), s(&format!("p{}", i % 7))),
                ("sk".to_string(), n(&i.to_string())),
            ]);
            let mut maybe = |name: &str, v: AV, rng: &mut Xorshift| {
                if rng.below(4) != 0 {
                    item.insert(name.to_string(), v);
                }
            };
            let digits = rng.below(1_000_000_000);
            maybe("text", s(&format!("t{}é", rng.below(1000))), rng);
            maybe("int", n(&format!("-{}", rng.below(1 << 40))), rng);
            maybe("dec", n(&format!("{digits}.{:04}", rng.below(10_000))), rng);
            maybe(
                "big",
                n(&format!("1234567890123456789012345678.{}", rng.below(1000))),
                rng,
            );
            maybe("flag", AV::Bool(rng.below(2) == 0), rng);
            maybe(
                "raw",
                AV::B(Blob::new(vec![rng.below(256) as u8, 0, 255])),
                rng,
            );
            maybe(
                "tags",
                AV::Ss(vec![format!("x{}", rng.below(5)), "y".into()]),
                rng,
            );
            maybe(
                "nums",
                AV::Ns(vec!["1.5".into(), format!("{}", rng.below(100) + 2)]),
                rng,
            );
            maybe(
                "blobs",
                AV::Bs(vec![
                    Blob::new(vec![1]),
                    Blob::new(vec![rng.below(200) as u8 + 2]),
                ]),
                rng,
            );
            maybe(
                "list",
                AV::L(vec![n("1"), n(&rng.below(9).to_string())]),
                rng,
            );
            maybe(
                "info",
                AV::M(HashMap::from([
                    ("a".to_string(), s("v")),
                    ("b".to_string(), n(&rng.below(50).to_string())),
                ])),
                rng,
            );
            item
        })
        .collect()
}

#[tokio::test]
async fn what_is_read_writes_back_as_the_same_items() {
    let client = client().await;
    let mut rng = Xorshift(0x5eed_0030);
    let source = new_table(&client, "roundtrip_src").await;
    let target = new_table(&client, "roundtrip_dst").await;
    let items = random_items(&mut rng, 300);
    put_items(&client, &source, items).await.expect("put");
    let src = DynamoTableProvider::try_new(client.clone(), &source)
        .await
        .expect("provider");
    let dst = DynamoTableProvider::builder(client.clone(), &target)
        .schema(datafusion::catalog::TableProvider::schema(&src))
        .build()
        .await
        .expect("provider");
    let ctx = dynamo_datafusion::dynamo_session(
        client.clone(),
        SessionConfig::new(),
        TableOptions::default(),
    )
    .await
    .expect("session");
    ctx.register_table("src", Arc::new(src)).expect("register");
    ctx.register_table("dst", Arc::new(dst)).expect("register");
    assert_eq!(
        count_of(&ctx, "INSERT INTO dst SELECT * FROM src").await,
        300
    );
    let (a, b) = (
        items_of(&client, &source).await,
        items_of(&client, &target).await,
    );
    assert_eq!(a.len(), b.len());
    for (key, item) in &a {
        assert_eq!(canonical(item), canonical(&b[key]), "item {key}");
    }
    // And a REPLACE of the same rows changes nothing.
    assert_eq!(
        count_of(&ctx, "REPLACE INTO dst SELECT * FROM src").await,
        300
    );
    let again = items_of(&client, &target).await;
    assert!(
        a.iter()
            .all(|(k, item)| canonical(item) == canonical(&again[k]))
    );
}

/// One row of the model: `n` and `s` may be missing (NULL).
#[derive(Debug, Clone, PartialEq)]
struct Row {
    n: Option<i64>,
    s: Option<String>,
}

type Model = BTreeMap<(String, i64), Row>;

/// A model row's key.
type Key = (String, i64);

/// Whether a model row matches a WHERE.
type Holds = Box<dyn Fn(&Key, &Row) -> bool>;

/// A WHERE as SQL and as the model evaluates it (SQL's three-valued logic:
/// NULL is not true).
struct Where {
    sql: String,
    holds: Holds,
}

fn random_where(rng: &mut Xorshift) -> Where {
    let p = format!("p{}", rng.below(4));
    let k = rng.below(8) as i64;
    let v = rng.below(10) as i64;
    let text = format!("v{}", rng.below(3));
    match rng.below(6) {
        0 => Where {
            sql: format!("pk = '{p}'"),
            holds: Box::new(move |key, _| key.0 == p),
        },
        1 => Where {
            sql: format!("pk = '{p}' AND sk >= {k}"),
            holds: Box::new(move |key, _| key.0 == p && key.1 >= k),
        },
        2 => Where {
            sql: format!("n > {v}"),
            holds: Box::new(move |_, row| row.n.is_some_and(|n| n > v)),
        },
        3 => Where {
            sql: format!("s = '{text}' OR n < {v}"),
            holds: Box::new(move |_, row| {
                row.s.as_deref() == Some(text.as_str()) || row.n.is_some_and(|n| n < v)
            }),
        },
        4 => Where {
            sql: format!("pk = '{p}' AND sk = {k}"),
            holds: Box::new(move |key, _| key.0 == p && key.1 == k),
        },
        _ => Where {
            sql: "n IS NULL".to_string(),
            holds: Box::new(|_, row| row.n.is_none()),
        },
    }
}

/// A random key and row of the workload's small key space.
fn random_row(rng: &mut Xorshift) -> (Key, Row) {
    let key = (format!("p{}", rng.below(4)), rng.below(8) as i64);
    let row = Row {
        n: (rng.below(4) != 0).then(|| rng.below(10) as i64),
        s: (rng.below(3) != 0).then(|| format!("v{}", rng.below(3))),
    };
    (key, row)
}

/// `rows` as a VALUES list of `(pk, sk, n, s)`.
fn values_sql(rows: &[(Key, Row)]) -> String {
    rows.iter()
        .map(|((p, k), r)| {
            format!(
                "('{p}', {k}, {}, {})",
                sql_value(&r.n, false),
                sql_value(&r.s, true)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn sql_value<T: ToString>(v: &Option<T>, quote: bool) -> String {
    match v {
        None => "NULL".into(),
        Some(v) if quote => format!("'{}'", v.to_string()),
        Some(v) => v.to_string(),
    }
}

/// Runs `statements` random statements against `ctx`'s `t` and the model,
/// comparing the table with the model after each.
async fn run_workload(
    client: &Client,
    ctx: &SessionContext,
    table: &str,
    seed: u64,
    statements: usize,
) {
    let mut rng = Xorshift(seed);
    let mut model = Model::new();
    for step in 0..statements {
        let (sql, expected) = match rng.below(5) {
            // INSERT of keys the model does not have; REPLACE of any keys
            // (a key given twice: the later row wins).
            kind @ (0 | 1) => {
                let insert = kind == 0;
                let mut rows: Vec<(Key, Row)> = Vec::new();
                for _ in 0..1 + rng.below(if insert { 6 } else { 30 }) {
                    let (key, row) = random_row(&mut rng);
                    let taken = model.contains_key(&key) || rows.iter().any(|(k, _)| *k == key);
                    if insert && taken {
                        continue;
                    }
                    rows.push((key, row));
                }
                if rows.is_empty() {
                    continue;
                }
                let sql = format!(
                    "{} INTO t (pk, sk, n, s) VALUES {}",
                    if insert { "INSERT" } else { "REPLACE" },
                    values_sql(&rows)
                );
                let count = rows.len() as u64;
                model.extend(rows);
                (sql, count)
            }
            2 | 3 => {
                let w = random_where(&mut rng);
                let add = rng.below(3) as i64 + 1;
                let text = format!("u{}", rng.below(3));
                let mut count = 0;
                for (key, row) in model.iter_mut() {
                    if (w.holds)(key, row) {
                        // `n + add` of NULL is NULL: the attribute stays absent.
                        row.n = row.n.map(|n| n + add);
                        row.s = Some(text.clone());
                        count += 1;
                    }
                }
                (
                    format!("UPDATE t SET n = n + {add}, s = '{text}' WHERE {}", w.sql),
                    count,
                )
            }
            _ => {
                let w = random_where(&mut rng);
                let before = model.len();
                model.retain(|key, row| !(w.holds)(key, row));
                (
                    format!("DELETE FROM t WHERE {}", w.sql),
                    (before - model.len()) as u64,
                )
            }
        };
        let got = count_of(ctx, &sql).await;
        assert_eq!(got, expected, "step {step}: {sql}");
        let items = items_of(client, table).await;
        let actual: Model = items
            .values()
            .map(|i| {
                let key = (
                    i["pk"].as_s().expect("pk").clone(),
                    i["sk"].as_n().expect("sk").parse::<i64>().expect("sk"),
                );
                let row = Row {
                    n: i.get("n").map(|v| v.as_n().expect("n").parse().expect("n")),
                    s: i.get("s").map(|v| v.as_s().expect("s").clone()),
                };
                (key, row)
            })
            .collect();
        assert_eq!(actual, model, "step {step}: {sql}");
    }
}

#[tokio::test]
async fn a_random_workload_matches_a_model_after_every_statement() {
    let client = client().await;
    let table = new_table(&client, "workload").await;
    let ctx = session_with_t(&client, &table).await;
    run_workload(&client, &ctx, &table, 0x3000_0001, 60).await;
}

#[tokio::test]
async fn under_faults_nothing_is_lost_and_nothing_written_twice() {
    let client = client().await;
    let table = new_table(&client, "workload_faults").await;
    let endpoint = local_endpoint().expect("endpoint");
    // Described fault-free; the statements' reads and writes meet the faults.
    let proxy = FaultProxy::start(&endpoint, FaultConfig::none())
        .await
        .expect("proxy");
    let ctx = session_with_t_options(
        &proxy.client().await,
        &table,
        // Patient retries: every fault passes on a later attempt.
        "OPTIONS ('max_attempts' '12', 'retry_budget' '100000', 'retry_base_delay_ms' '1', \
         'retry_max_delay_ms' '20')",
    )
    .await;
    proxy.set_config(FaultConfig::mixed(0.10, 0x3000_0002));
    run_workload(&client, &ctx, &table, 0x3000_0003, 60).await;
    let counts = proxy.counts();
    assert!(
        counts.total_faults() > 20,
        "faults were injected: {counts:?}"
    );
}

#[tokio::test]
async fn a_write_ceiling_stops_before_the_write_that_would_pass_it() {
    let client = client().await;
    let table = new_table(&client, "ceiling").await;
    let ctx = session_with_t(&client, &table).await;
    // Five 3 KB items: 3 WCU each. The estimate (1 WCU per item: the table
    // is empty, its average item size unknown) passes a ceiling of 10; the
    // writes stop before the fourth, which would take 12.
    query(&ctx, "SET dynamodb.max_wcu = 10").await.expect("set");
    query(&ctx, "SET dynamodb.max_concurrency = 1")
        .await
        .expect("set");
    let rows: Vec<String> = (0..5)
        .map(|i| format!("('c', {i}, {i}, repeat('x', 3000))"))
        .collect();
    let err = query(
        &ctx,
        &format!("INSERT INTO t (pk, sk, n, s) VALUES {}", rows.join(", ")),
    )
    .await
    .expect_err("stopped");
    let text = err.to_string();
    assert!(
        text.contains("stopped after 3 items were written"),
        "{text}"
    );
    assert!(text.contains("dynamodb.max_wcu = 10"), "{text}");
    assert_eq!(items_of(&client, &table).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_changed_between_the_read_and_the_write_is_not_clobbered() {
    let client = client().await;
    let table = new_table(&client, "clobber").await;
    let items: Vec<Item> = (0..10)
        .map(|i| {
            Item::from([
                ("pk".to_string(), s("a")),
                ("sk".to_string(), n(&i.to_string())),
                ("n".to_string(), n("1")),
            ])
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");
    // Every answer held 200 ms and one write in flight: the UPDATE reads
    // at once, then writes item 9 about two seconds later.
    let proxy = FaultProxy::start(
        &local_endpoint().expect("endpoint"),
        FaultConfig {
            latency: std::time::Duration::from_millis(200),
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy");
    let ctx = session_with_t(&proxy.client().await, &table).await;
    query(&ctx, "SET dynamodb.max_concurrency = 1")
        .await
        .expect("set");
    let statement = ctx
        .state()
        .sql_to_statement(
            "UPDATE t SET n = n + 1 WHERE pk = 'a'",
            &datafusion::config::Dialect::Generic,
        )
        .expect("parse");
    let update = async {
        let mut sink = dynamo_datafusion::run::CollectSink::default();
        let outcome = dynamo_datafusion::run::run_statement(
            &ctx,
            &statement,
            &dynamo_datafusion::run::RunOptions::default(),
            &mut sink,
        )
        .await
        .expect("update");
        (rows(&sink.batches), outcome.notices)
    };
    let meanwhile = async {
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        client
            .update_item()
            .table_name(&table)
            .key("pk", s("a"))
            .key("sk", n("9"))
            .update_expression("SET n = :v")
            .expression_attribute_values(":v", n("100"))
            .send()
            .await
            .expect("concurrent write");
    };
    let ((counted, notices), ()) = tokio::join!(update, meanwhile);
    assert_eq!(counted, vec!["9".to_string()], "{notices:?}");
    assert!(
        notices
            .iter()
            .any(|n| n.contains("1 items were left as they were")),
        "{notices:?}"
    );
    let after = items_of(&client, &table).await;
    assert_eq!(
        after["S(\"a\")/N(\"9\")"]["n"],
        n("100"),
        "the concurrent write stands"
    );
    assert_eq!(after["S(\"a\")/N(\"0\")"]["n"], n("2"));
}

#[tokio::test]
async fn write_null_stores_dynamodbs_null_type_when_asked() {
    let client = client().await;
    let table = new_table(&client, "nulltype").await;
    let ctx = session_with_t_options(&client, &table, "OPTIONS ('write_null' 'null')").await;
    count_of(
        &ctx,
        "INSERT INTO t (pk, sk, n, s) VALUES ('a', 1, NULL, 'x')",
    )
    .await;
    count_of(&ctx, "UPDATE t SET s = NULL WHERE pk = 'a'").await;
    let item = &items_of(&client, &table).await["S(\"a\")/N(\"1\")"];
    assert_eq!(item["n"], AV::Null(true));
    assert_eq!(item["s"], AV::Null(true));
    let err = ctx
        .sql(&format!(
            "CREATE EXTERNAL TABLE u STORED AS DYNAMODB LOCATION '{table}' OPTIONS ('write_null' 'maybe')"
        ))
        .await
        .expect_err("bad option");
    assert!(err.to_string().contains("'absent'"), "{err}");
}

#[tokio::test]
async fn a_file_load_is_one_statement_from_csv_or_json() {
    let client = client().await;
    let table = new_table(&client, "fileload").await;
    let ctx = session_with_t(&client, &table).await;
    let dir = tempfile::tempdir().expect("tmp");
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "pk,sk,n,price\na,1,10,1.50\na,2,,2.25\nb,1,30,\n").expect("csv");
    let json = dir.path().join("rows.json");
    std::fs::write(
        &json,
        "{\"pk\": \"c\", \"sk\": 1, \"n\": 5, \"price\": \"9.99\"}\n{\"pk\": \"c\", \"sk\": 2}\n",
    )
    .expect("json");
    query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE csv_rows (pk VARCHAR, sk BIGINT, n BIGINT, price DECIMAL(38, 2)) \
             STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
            csv.display()
        ),
    )
    .await
    .expect("csv table");
    query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE json_rows (pk VARCHAR, sk BIGINT, n BIGINT, price VARCHAR) \
             STORED AS JSON LOCATION '{}'",
            json.display()
        ),
    )
    .await
    .expect("json table");
    assert_eq!(
        count_of(
            &ctx,
            "INSERT INTO t (pk, sk, n, price) SELECT pk, sk, n, price FROM csv_rows"
        )
        .await,
        3
    );
    assert_eq!(
        count_of(&ctx, "REPLACE INTO t (pk, sk, n, price) SELECT pk, sk, n, CAST(price AS DECIMAL(38, 2)) FROM json_rows").await,
        2
    );
    let items = items_of(&client, &table).await;
    assert_eq!(items.len(), 5);
    assert_eq!(items["S(\"a\")/N(\"1\")"]["price"], n("1.5"));
    assert!(
        !items["S(\"a\")/N(\"2\")"].contains_key("n"),
        "an empty CSV field is NULL: no attribute"
    );
    assert_eq!(items["S(\"c\")/N(\"1\")"]["price"], n("9.99"));
    assert_eq!(
        canonical(&items["S(\"c\")/N(\"2\")"]),
        canonical(&Item::from([
            ("pk".to_string(), s("c")),
            ("sk".to_string(), n("2")),
        ]))
    );
}
