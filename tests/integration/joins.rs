//! Joins that read only the keys they need: the build side's keys turn the
//! other side's read into key lookups at run time — BatchGetItem of full
//! keys, Queries of the table's or an index's partition keys, or a
//! FilterExpression — and answer exactly what the planned read answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::DynamoTableProvider;
use dynamo_datafusion::decode::Item;
use dynamo_datafusion::exec::ReadStats;
use dynamo_testkit::{TableSpec, put_items, unique_name};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::common::{client, pushdown_session, sorted_rows};

/// The tables and what their data says.
struct Tables {
    orders: String,
    devices: String,
    returns: String,
    /// The 52 distinct devices of customer `c00`'s 53 orders.
    c00_devices: BTreeSet<String>,
    /// Orders naming each device.
    orders_by_device: BTreeMap<String, usize>,
    /// Distinct (customer, orderId) pairs the returns name.
    returned_keys: usize,
    /// Of these, the orders that exist.
    returned_orders: usize,
}

/// Devices `d0000`..`d1999` (a hash-only key); the orders of 30 customers
/// (`c00`..`c29`, 40 orders each; `c00` has 53 over 52 distinct devices)
/// naming devices that exist, devices that do not (`d2xxx`), or none, with
/// indexes on the device and on the status (a quarter are open); 30 returns naming orders by their whole key
/// (some orders do not exist, one return names no order id).
async fn tables() -> Tables {
    let client = client().await;
    let devices = unique_name("join_devices");
    TableSpec::new(&devices, "device_id", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("devices");
    let items: Vec<Item> = (0..2000)
        .map(|i| {
            HashMap::from([
                ("device_id".to_string(), AV::S(format!("d{i:04}"))),
                (
                    "os".to_string(),
                    AV::S(["ios", "android", "web"][i % 3].into()),
                ),
                ("model".to_string(), AV::S(format!("m{}", i % 17))),
            ])
        })
        .collect();
    put_items(&client, &devices, items)
        .await
        .expect("put devices");
    let orders = unique_name("join_orders");
    TableSpec::new(&orders, "customer", ScalarAttributeType::S)
        .sort_key("orderId", ScalarAttributeType::N)
        .global_index("byDevice", ("device_id", ScalarAttributeType::S), None)
        .global_index(
            "byStatus",
            ("status", ScalarAttributeType::S),
            Some(("orderId", ScalarAttributeType::N)),
        )
        .create(&client)
        .await
        .expect("orders");
    let mut rng = StdRng::seed_from_u64(5);
    let mut items: Vec<Item> = Vec::new();
    let mut c00_devices = BTreeSet::new();
    let mut orders_by_device: BTreeMap<String, usize> = BTreeMap::new();
    for c in 0..30 {
        let n = if c == 0 { 53 } else { 40 };
        for o in 0..n {
            let mut item = HashMap::from([
                ("customer".to_string(), AV::S(format!("c{c:02}"))),
                ("orderId".to_string(), AV::N(o.to_string())),
                (
                    "amount".to_string(),
                    AV::N(rng.random_range(1..500).to_string()),
                ),
                (
                    "status".to_string(),
                    AV::S(["open", "shipped", "returned", "shipped"][(c + o) % 4].into()),
                ),
            ]);
            let device = if c == 0 {
                // 52 distinct existing devices, one ordered twice.
                Some(format!("d{:04}", (o % 52) * 37))
            } else if o % 10 == 9 {
                None
            } else if o % 10 == 8 {
                Some(format!("d{}", rng.random_range(2000..2500)))
            } else {
                Some(format!("d{:04}", rng.random_range(0..2000)))
            };
            if let Some(d) = device {
                if c == 0 {
                    c00_devices.insert(d.clone());
                }
                *orders_by_device.entry(d.clone()).or_default() += 1;
                item.insert("device_id".to_string(), AV::S(d));
            }
            items.push(item);
        }
    }
    put_items(&client, &orders, items)
        .await
        .expect("put orders");
    let returns = unique_name("join_returns");
    TableSpec::new(&returns, "rid", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("returns");
    let mut items: Vec<Item> = Vec::new();
    let mut named = BTreeSet::new();
    let mut existing = BTreeSet::new();
    for i in 0..30 {
        let (customer, order, exists) = match i {
            0..24 => {
                let c = rng.random_range(0..30);
                (format!("c{c:02}"), Some(rng.random_range(0..40)), true)
            }
            24..27 => ("c40".to_string(), Some(1), false),
            27..29 => ("c01".to_string(), Some(500), false),
            _ => ("c02".to_string(), None, false),
        };
        let mut item = HashMap::from([
            ("rid".to_string(), AV::S(format!("r{i:02}"))),
            ("customer".to_string(), AV::S(customer.clone())),
            (
                "reason".to_string(),
                AV::S(["late", "broken"][i % 2].into()),
            ),
        ]);
        if let Some(o) = order {
            item.insert("orderId".to_string(), AV::N(o.to_string()));
            named.insert((customer.clone(), o));
            if exists {
                existing.insert((customer, o));
            }
        }
        items.push(item);
    }
    put_items(&client, &returns, items)
        .await
        .expect("put returns");
    Tables {
        orders,
        devices,
        returns,
        c00_devices,
        orders_by_device,
        returned_keys: named.len(),
        returned_orders: existing.len(),
    }
}

/// A session over the tables, with key lookups `items`, `rcu` or `off`.
async fn session(t: &Tables, lookups: &str) -> SessionContext {
    let client = client().await;
    let ctx = pushdown_session(4);
    for (name, table) in [
        ("orders", &t.orders),
        ("devices", &t.devices),
        ("returns", &t.returns),
    ] {
        let provider = DynamoTableProvider::try_new(client.clone(), table)
            .await
            .expect("provider");
        ctx.register_table(name, Arc::new(provider))
            .expect("register");
    }
    ctx.sql(&format!("SET dynamodb.join_key_lookups = '{lookups}'"))
        .await
        .expect("set");
    ctx
}

/// Runs `sql`: its sorted rows and the read statistics per table.
async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, HashMap<String, ReadStats>) {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .create_physical_plan()
        .await
        .expect("physical plan");
    let batches = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (
        sorted_rows(&batches),
        ReadStats::by_table(&plan).into_iter().collect(),
    )
}

/// A query's answer and reads, with the join's keys (`with`) and with the
/// planned read.
struct Compared {
    rows: Vec<String>,
    read: HashMap<String, ReadStats>,
    planned_read: HashMap<String, ReadStats>,
}

/// Runs `sql` in `with` and in `planned` (lookups off): the answers must be
/// the same.
async fn compare(with: &SessionContext, planned: &SessionContext, sql: &str) -> Compared {
    let (rows, read) = run(with, sql).await;
    let (planned_rows, planned_read) = run(planned, sql).await;
    assert_eq!(rows, planned_rows, "the same answer: {sql}");
    Compared {
        rows,
        read,
        planned_read,
    }
}

/// `EXPLAIN ANALYZE` of `sql`, as text.
async fn explain_analyze(ctx: &SessionContext, sql: &str) -> String {
    crate::common::rows(
        &crate::common::query(ctx, &format!("EXPLAIN ANALYZE {sql}"))
            .await
            .expect("explain"),
    )
    .join("\n")
}

#[tokio::test]
async fn a_join_reads_only_the_devices_its_orders_name() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let off = session(&t, "off").await;
    let sql = "SELECT o.\"orderId\", d.model FROM orders o JOIN devices d \
               ON o.device_id = d.device_id WHERE o.customer = 'c00'";
    let Compared {
        rows,
        read,
        planned_read,
    } = compare(&on, &off, sql).await;
    assert_eq!(rows.len(), 53);
    assert_eq!(read[&t.orders].items_scanned, 53, "one customer's orders");
    assert_eq!(
        read[&t.devices].items_scanned,
        t.c00_devices.len(),
        "only the devices named: {read:?}"
    );
    assert_eq!(t.c00_devices.len(), 52);
    let estimated = read[&t.devices].estimated_items;
    assert!(
        (estimated - 52.0).abs() < 1.0,
        "the statistics estimate the read chosen at run time: {estimated}"
    );
    assert!(
        read[&t.orders].items_scanned + read[&t.devices].items_scanned <= 105,
        "the ideal: 53 orders and their 52 devices"
    );
    assert_eq!(
        planned_read[&t.devices].items_scanned, 2000,
        "without lookups: the whole table"
    );
    // EXPLAIN ANALYZE says what was chosen and why.
    let text = explain_analyze(&on, sql).await;
    assert!(
        text.contains("join_keys=[BatchGetItem of 52 keys: ~52 items"),
        "{text}"
    );
    // `IN (SELECT …)` is a semi join: the same path.
    let semi = "SELECT device_id, os FROM devices WHERE device_id IN \
                (SELECT device_id FROM orders WHERE customer = 'c00')";
    let Compared { rows, read, .. } = compare(&on, &off, semi).await;
    assert_eq!(rows.len(), 52);
    assert_eq!(read[&t.devices].items_scanned, 52, "{read:?}");

    // By capacity, 52 lookups (26 RCU, each item rounded up to 4 KB) cost
    // more than one Scan of this small table (7 RCU): the Scan runs.
    let by_rcu = session(&t, "rcu").await;
    let Compared { read, .. } = compare(&by_rcu, &off, sql).await;
    assert_eq!(read[&t.devices].items_scanned, 2000);
    let text = explain_analyze(&by_rcu, sql).await;
    assert!(text.contains("not fewer RCU than ~2000 items"), "{text}");

    // Under a ceiling, a join never reads more capacity than was admitted.
    on.sql("SET dynamodb.max_rcu = 100").await.expect("set");
    let Compared { read, .. } = compare(&on, &off, sql).await;
    assert_eq!(read[&t.devices].items_scanned, 2000);
    let text = explain_analyze(&on, sql).await;
    assert!(text.contains("the ceiling admitted"), "{text}");
}

#[tokio::test]
async fn a_join_on_an_index_key_queries_the_index() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let off = session(&t, "off").await;
    let ids: Vec<String> = t.c00_devices.iter().take(10).cloned().collect();
    let list = ids
        .iter()
        .map(|d| format!("('{d}')"))
        .collect::<Vec<_>>()
        .join(", ");
    // A list of devices (not a filter DataFusion could copy to the orders).
    let sql = format!(
        "WITH watched(device_id) AS (VALUES {list}, ('d9999')) \
         SELECT w.device_id, o.customer, o.\"orderId\" FROM watched w JOIN orders o \
         ON o.device_id = w.device_id"
    );
    let Compared {
        rows,
        read,
        planned_read,
    } = compare(&on, &off, &sql).await;
    let expected: usize = ids.iter().map(|d| t.orders_by_device[d]).sum();
    assert_eq!(rows.len(), expected);
    assert_eq!(
        read[&t.orders].items_scanned, expected,
        "only the orders of those devices, from the index: {read:?}"
    );
    assert_eq!(planned_read[&t.orders].items_scanned, 1213);
    let text = explain_analyze(&on, &sql).await;
    assert!(
        text.contains("join_keys=[Query of 11 partition keys on index 'byDevice'"),
        "{text}"
    );
}

#[tokio::test]
async fn a_join_on_the_whole_key_reads_those_items_and_on_the_sort_key_filters() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let off = session(&t, "off").await;
    let sql = "SELECT r.rid, o.amount FROM returns r JOIN orders o \
               ON o.customer = r.customer AND o.\"orderId\" = r.\"orderId\"";
    let Compared { read, .. } = compare(&on, &off, sql).await;
    assert_eq!(
        read[&t.orders].items_scanned, t.returned_orders,
        "only the orders returned: {read:?}"
    );
    let text = explain_analyze(&on, sql).await;
    assert!(
        text.contains(&format!(
            "join_keys=[BatchGetItem of {} keys",
            t.returned_keys
        )),
        "{text}"
    );

    // On the sort key alone no key is pinned: the Scan stays, with the
    // join's keys as its FilterExpression, so DynamoDB returns only those.
    let sql = "SELECT r.rid, o.customer FROM returns r JOIN orders o \
               ON o.\"orderId\" = r.\"orderId\" WHERE r.reason = 'late'";
    let Compared {
        read, planned_read, ..
    } = compare(&on, &off, sql).await;
    let orders = &read[&t.orders];
    assert_eq!(orders.items_scanned, 1213, "the Scan reads the table");
    assert!(
        orders.items_returned < orders.items_scanned / 2,
        "DynamoDB returns only the orders with those ids: {orders:?}"
    );
    assert_eq!(planned_read[&t.orders].items_returned, 1213);
    let text = explain_analyze(&on, sql).await;
    assert!(
        text.contains("with a FilterExpression: the join's filter sent to DynamoDB"),
        "{text}"
    );
}

#[tokio::test]
async fn a_join_on_the_table_key_replaces_a_planned_index_query() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let off = session(&t, "off").await;
    // Planned: the open orders, from the status index (~300 items). The
    // two customers' orders are 80: read by the table's key, the status
    // (no longer a key condition) is sent as a filter and checked here.
    let sql = "SELECT o.customer, o.\"orderId\", o.amount FROM (VALUES ('c01'), ('c02')) AS k(customer) \
               JOIN orders o ON o.customer = k.customer WHERE o.status = 'open'";
    let Compared {
        rows,
        read,
        planned_read,
    } = compare(&on, &off, sql).await;
    assert_eq!(rows.len(), 20, "10 open orders each");
    assert_eq!(read[&t.orders].items_scanned, 80, "{read:?}");
    assert!(
        planned_read[&t.orders].items_scanned > 250,
        "{planned_read:?}"
    );
    let text = explain_analyze(&on, sql).await;
    assert!(
        text.contains("join_keys=[Query of 2 partition keys with a FilterExpression")
            && text.contains("the query's own key conditions checked here"),
        "{text}"
    );
    // By whole keys, BatchGetItem sends no filter at all: the status is
    // checked here only.
    let sql = "SELECT r.rid, o.amount FROM returns r JOIN orders o \
               ON o.customer = r.customer AND o.\"orderId\" = r.\"orderId\" \
               WHERE o.status = 'shipped'";
    let Compared { rows, read, .. } = compare(&on, &off, sql).await;
    assert!(
        !rows.is_empty() && rows.len() < t.returned_orders,
        "{rows:?}"
    );
    assert_eq!(read[&t.orders].items_scanned, t.returned_orders);
    let text = explain_analyze(&on, sql).await;
    assert!(
        text.contains(&format!(
            "join_keys=[BatchGetItem of {} keys",
            t.returned_keys
        )) && text.contains("checked here"),
        "{text}"
    );
}

#[tokio::test]
async fn build_sides_over_150_keys_are_read_by_key() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let sql = "SELECT o.\"orderId\", d.model FROM orders o JOIN devices d \
               ON o.device_id = d.device_id \
               WHERE o.customer IN ('c01', 'c02', 'c03', 'c04', 'c05', 'c06', 'c07', 'c08')";
    let (rows, read) = run(&on, sql).await;
    let devices = read[&t.devices].items_scanned;
    assert!(
        (150..320).contains(&devices),
        "over 150 distinct devices, each read once: {read:?}"
    );
    // With DataFusion's default of 150 keys in a list, the join hands on
    // only bounds and a hash lookup: the planned read runs.
    on.sql("SET datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values = 150")
        .await
        .expect("set");
    let (planned, read) = run(&on, sql).await;
    assert_eq!(rows, planned);
    assert_eq!(read[&t.devices].items_scanned, 2000);
}

/// One random join of the tables: either order, random filters on either
/// side, keys that match nothing, NULL keys, and keys of another type.
fn random_join(rng: &mut StdRng, t: &Tables) -> String {
    let customers: Vec<String> = (0..rng.random_range(1..4))
        .map(|_| format!("'c{:02}'", rng.random_range(0..32)))
        .collect();
    let customers = customers.join(", ");
    let order_filter = match rng.random_range(0..3) {
        0 => format!("o.customer IN ({customers})"),
        1 => format!(
            "o.customer IN ({customers}) AND o.amount > {}",
            rng.random_range(0..500)
        ),
        _ => format!(
            "o.\"orderId\" < {} AND o.customer >= 'c2'",
            rng.random_range(0..10)
        ),
    };
    let device_filter = match rng.random_range(0..3) {
        0 => "TRUE".to_string(),
        1 => "d.os = 'ios'".to_string(),
        _ => format!("d.model <> 'm{}'", rng.random_range(0..17)),
    };
    let select = "SELECT o.customer, o.\"orderId\", d.device_id, d.os";
    match rng.random_range(0..8) {
        // Orders' devices, read from the devices table by key.
        0 => format!(
            "{select} FROM orders o JOIN devices d ON o.device_id = d.device_id \
             WHERE {order_filter} AND {device_filter}"
        ),
        1 => format!(
            "{select} FROM devices d JOIN orders o ON d.device_id = o.device_id \
             WHERE {order_filter} AND {device_filter}"
        ),
        // Devices' orders, through the index on the orders' device.
        2 => format!(
            "{select} FROM devices d JOIN orders o ON o.device_id = d.device_id \
             WHERE d.device_id IN ({}) AND {device_filter}{}",
            some_devices(rng, t),
            if rng.random_bool(0.5) {
                format!(" AND o.amount > {}", rng.random_range(0..500))
            } else {
                String::new()
            }
        ),
        // Returns and their orders, by the whole key or the sort key alone.
        3 => format!(
            "SELECT r.rid, o.customer, o.amount FROM returns r JOIN orders o \
             ON o.customer = r.customer AND o.\"orderId\" = r.\"orderId\" WHERE r.reason = '{}'{}",
            ["late", "broken"][rng.random_range(0..2)],
            match rng.random_range(0..3) {
                0 => format!(" AND o.customer IN ({customers})"),
                1 => format!(
                    " AND o.status = '{}'",
                    ["open", "shipped", "returned"][rng.random_range(0..3)]
                ),
                _ => String::new(),
            }
        ),
        4 => format!(
            "SELECT r.rid, o.customer FROM orders o JOIN returns r \
             ON o.\"orderId\" = r.\"orderId\" WHERE o.amount > {}",
            rng.random_range(0..500)
        ),
        // Customers' orders in a status: the status index as planned, or
        // the customers' keys with the status checked here.
        7 => format!(
            "SELECT o.customer, o.\"orderId\"{} FROM (VALUES {}) AS k(customer) \
             JOIN orders o ON o.customer = k.customer WHERE o.status = '{}'{}",
            if rng.random_bool(0.5) {
                ", o.status"
            } else {
                ""
            },
            customers
                .split(", ")
                .map(|c| format!("({c})"))
                .collect::<Vec<_>>()
                .join(", "),
            ["open", "shipped", "returned", "lost"][rng.random_range(0..4)],
            if rng.random_bool(0.5) {
                format!(" AND o.amount > {}", rng.random_range(0..500))
            } else {
                String::new()
            }
        ),
        // Keys of another type: a number as a device id, a float as an order id.
        5 => format!(
            "{select} FROM orders o JOIN devices d ON d.device_id = CAST(o.amount AS VARCHAR) \
             WHERE {order_filter}"
        ),
        _ => "SELECT r.rid, o.customer FROM returns r JOIN orders o \
              ON o.\"orderId\" = CAST(r.\"orderId\" AS DOUBLE) AND o.customer = r.customer"
            .to_string(),
    }
}

/// Eight devices that orders name, and one that does not exist.
fn some_devices(rng: &mut StdRng, t: &Tables) -> String {
    let known: Vec<&String> = t.orders_by_device.keys().collect();
    let mut picked: Vec<String> = (0..8)
        .map(|_| format!("'{}'", known.choose(rng).expect("devices")))
        .collect();
    picked.push("'d9999'".into());
    picked.join(", ")
}

#[tokio::test]
async fn joins_with_key_lookups_answer_as_the_planned_read_on_random_queries() {
    let t = tables().await;
    let on = session(&t, "items").await;
    let off = session(&t, "off").await;
    // Joins of hash partitions: each partition's keys, behind a `CASE`.
    let partitioned = session(&t, "items").await;
    for setting in [
        "hash_join_single_partition_threshold",
        "hash_join_single_partition_threshold_rows",
    ] {
        partitioned
            .sql(&format!("SET datafusion.optimizer.{setting} = 0"))
            .await
            .expect("set");
    }
    let seed: u64 = std::env::var("JOIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut narrowed = 0;
    for i in 0..40 {
        let sql = random_join(&mut rng, &t);
        let ctx = if i % 2 == 0 { &on } else { &partitioned };
        let (rows, read) = run(ctx, &sql).await;
        let (planned, planned_read) = run(&off, &sql).await;
        assert_eq!(rows, planned, "query {i} (JOIN_SEED={seed}): {sql}");
        // Fewer items scanned (key lookups) or returned (a FilterExpression)
        // than the planned read: the join's keys were used.
        if read.iter().any(|(table, s)| {
            let p = &planned_read[table];
            s.items_scanned < p.items_scanned || s.items_returned < p.items_returned
        }) {
            narrowed += 1;
        }
    }
    assert!(
        narrowed >= 10,
        "joins read by the join's keys: {narrowed} of 40"
    );
}
