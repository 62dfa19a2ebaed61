//! Joins that read only the keys they need: the build side's keys turn the
//! other side's read into key lookups at run time — and answer exactly what
//! the planned read answers.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::{DynamoTableProvider, Item, ReadStats};
use dynamo_testkit::{TableSpec, put_items, unique_name};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{client, pushdown_session, sorted_rows};

/// Devices `d0000`..`d1999` (a hash-only key) and the orders of 30
/// customers (`c00`..`c29`, 40 orders each; `c00` has 60 over 52 distinct
/// devices) naming devices that exist, devices that do not (`d2xxx`), or
/// none.
async fn tables() -> (String, String, BTreeSet<String>) {
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
        .create(&client)
        .await
        .expect("orders");
    let mut rng = StdRng::seed_from_u64(5);
    let mut items: Vec<Item> = Vec::new();
    let mut c00_devices = BTreeSet::new();
    for c in 0..30 {
        let n = if c == 0 { 60 } else { 40 };
        for o in 0..n {
            let mut item = HashMap::from([
                ("customer".to_string(), AV::S(format!("c{c:02}"))),
                ("orderId".to_string(), AV::N(o.to_string())),
                (
                    "amount".to_string(),
                    AV::N(rng.random_range(1..500).to_string()),
                ),
            ]);
            let device = if c == 0 {
                // 52 distinct existing devices, some ordered twice.
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
                item.insert("device_id".to_string(), AV::S(d));
            }
            items.push(item);
        }
    }
    put_items(&client, &orders, items)
        .await
        .expect("put orders");
    (orders, devices, c00_devices)
}

/// A session over both tables, with key lookups on or off.
async fn session(orders: &str, devices: &str, lookups: bool) -> SessionContext {
    let client = client().await;
    let ctx = pushdown_session(4);
    for (name, table) in [("orders", orders), ("devices", devices)] {
        let provider = DynamoTableProvider::try_new(client.clone(), table)
            .await
            .expect("provider");
        ctx.register_table(name, Arc::new(provider))
            .expect("register");
    }
    if !lookups {
        ctx.sql("SET dynamodb.join_key_lookups = false")
            .await
            .expect("set");
    }
    ctx
}

/// Runs `sql`: its sorted rows and the items read per table.
async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, HashMap<String, usize>) {
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
    let read = ReadStats::by_table(&plan)
        .into_iter()
        .map(|(t, s)| (t, s.items_scanned))
        .collect();
    (sorted_rows(&batches), read)
}

#[tokio::test]
async fn a_join_reads_only_the_devices_its_orders_name() {
    let (orders, devices, c00_devices) = tables().await;
    let on = session(&orders, &devices, true).await;
    let off = session(&orders, &devices, false).await;
    let sql = "SELECT o.\"orderId\", d.model FROM orders o JOIN devices d \
               ON o.device_id = d.device_id WHERE o.customer = 'c00'";
    let (rows, read) = run(&on, sql).await;
    let (planned, planned_read) = run(&off, sql).await;
    assert_eq!(rows, planned, "the same answer");
    assert_eq!(rows.len(), 60);
    assert_eq!(read[&orders], 60, "one customer's orders");
    assert_eq!(
        read[&devices],
        c00_devices.len(),
        "only the devices named: {read:?}"
    );
    assert_eq!(c00_devices.len(), 52);
    assert_eq!(
        planned_read[&devices], 2000,
        "without lookups: the whole table"
    );
    // EXPLAIN ANALYZE says what was chosen and why.
    let text = crate::common::rows(
        &crate::common::query(&on, &format!("EXPLAIN ANALYZE {sql}"))
            .await
            .expect("explain"),
    )
    .join("\n");
    assert!(
        text.contains("join_keys=[52 keys read by BatchGetItem: ~52 items"),
        "{text}"
    );
    // `IN (SELECT …)` is a semi join: the same path.
    let sql = "SELECT device_id, os FROM devices WHERE device_id IN \
               (SELECT device_id FROM orders WHERE customer = 'c00')";
    let (rows, read) = run(&on, sql).await;
    let (planned, _) = run(&off, sql).await;
    assert_eq!(rows, planned);
    assert_eq!(rows.len(), 52);
    assert_eq!(read[&devices], 52, "{read:?}");
}

#[tokio::test]
async fn joins_with_key_lookups_answer_as_the_planned_read_on_random_queries() {
    let (orders, devices, _) = tables().await;
    let on = session(&orders, &devices, true).await;
    let off = session(&orders, &devices, false).await;
    let seed: u64 = std::env::var("JOIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut looked_up = 0;
    for i in 0..30 {
        let customers: Vec<String> = (0..rng.random_range(1..4))
            .map(|_| format!("'c{:02}'", rng.random_range(0..32)))
            .collect();
        let order_filter = match rng.random_range(0..3) {
            0 => format!("o.customer IN ({})", customers.join(", ")),
            1 => format!(
                "o.customer IN ({}) AND o.amount > {}",
                customers.join(", "),
                rng.random_range(0..500)
            ),
            _ => format!(
                "o.\"orderId\" < {} AND o.customer >= 'c2'",
                rng.random_range(0..10)
            ),
        };
        let device_filter = match rng.random_range(0..3) {
            0 => String::new(),
            1 => " AND d.os = 'ios'".to_string(),
            _ => format!(" AND d.model <> 'm{}'", rng.random_range(0..17)),
        };
        let sql = if rng.random_bool(0.5) {
            format!(
                "SELECT o.customer, o.\"orderId\", d.device_id, d.os FROM orders o \
                 JOIN devices d ON o.device_id = d.device_id WHERE {order_filter}{device_filter}"
            )
        } else {
            format!(
                "SELECT o.customer, o.\"orderId\", d.device_id, d.os FROM devices d \
                 JOIN orders o ON d.device_id = o.device_id WHERE {order_filter}{device_filter}"
            )
        };
        let (rows, read) = run(&on, &sql).await;
        let (planned, _) = run(&off, &sql).await;
        assert_eq!(rows, planned, "query {i} (JOIN_SEED={seed}): {sql}");
        if read.get(&devices).is_some_and(|n| *n < 2000) {
            looked_up += 1;
        }
    }
    assert!(looked_up > 0, "some joins read devices by key");
}
