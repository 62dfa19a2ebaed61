//! Reading whole tables: many pages, parallel segments, limits, sampling.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use dynamo_datafusion::DynamoTableProvider;
use dynamo_testkit::{TableSpec, put_items, unique_name};

use crate::common::{
    client, context_with, pk_sk_table, query, rows, run_with_plan, scan_metric, sorted_rows,
};

const BIG_ITEMS: usize = 3_000;

/// 3,000 items of ~1.6 KB: about 5 MB, so a scan needs several 1 MB pages.
async fn big_table() -> (String, aws_sdk_dynamodb::Client) {
    let client = client().await;
    let pad = "x".repeat(1_500);
    let items = (0..BIG_ITEMS)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 37))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("n".to_string(), AV::N(i.to_string())),
                ("pad".to_string(), AV::S(pad.clone())),
            ])
        })
        .collect();
    let table = pk_sk_table(&client, "big", items).await;
    (table, client)
}

#[tokio::test]
async fn many_pages_lose_and_duplicate_nothing() {
    let (table, client) = big_table().await;
    let provider = DynamoTableProvider::builder(client.clone(), &table)
        .segments(1)
        .build()
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let (batches, plan) = run_with_plan(
        &ctx,
        "SELECT count(*), count(DISTINCT sk), sum(n), min(sk), max(sk) FROM t",
    )
    .await;
    let expected_sum: usize = (0..BIG_ITEMS).sum();
    assert_eq!(
        rows(&batches),
        vec![format!(
            "{BIG_ITEMS}|{BIG_ITEMS}|{expected_sum}|0|{}",
            BIG_ITEMS - 1
        )]
    );
    assert!(
        scan_metric(&plan, "pages") >= 4,
        "a ~5 MB table must take several 1 MB pages"
    );
    assert_eq!(scan_metric(&plan, "output_rows"), BIG_ITEMS);

    // Tiny pages: hundreds of continuation keys, still every item exactly once.
    let provider = DynamoTableProvider::builder(client, &table)
        .segments(1)
        .page_size(7)
        .build()
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let (batches, plan) =
        run_with_plan(&ctx, "SELECT count(*), count(DISTINCT sk), sum(n) FROM t").await;
    assert_eq!(
        rows(&batches),
        vec![format!("{BIG_ITEMS}|{BIG_ITEMS}|{expected_sum}")]
    );
    assert!(scan_metric(&plan, "pages") >= BIG_ITEMS / 7);
}

#[tokio::test]
async fn parallel_scan_union_equals_plain_scan() {
    let (table, client) = big_table().await;
    let read = |segments: u32| {
        let client = client.clone();
        let table = table.clone();
        async move {
            let provider = DynamoTableProvider::builder(client, &table)
                .segments(segments)
                .build()
                .await
                .expect("provider");
            let ctx = context_with("t", provider);
            let (batches, plan) = run_with_plan(&ctx, "SELECT pk, sk, n FROM t").await;
            let scan = crate::common::find_scan(&plan).expect("scan");
            assert_eq!(scan.partition_count(), (segments as usize).min(4));
            (sorted_rows(&batches), scan.scan_plan().unit_count())
        }
    };
    let (plain, one) = read(1).await;
    assert_eq!(one, 1);
    assert_eq!(plain.len(), BIG_ITEMS);
    for segments in [2, 4, 7] {
        let (parallel, n) = read(segments).await;
        assert_eq!(n, segments as usize);
        assert_eq!(
            parallel, plain,
            "{segments} segments must return exactly the plain scan"
        );
    }
}

/// Segments are units of I/O (one per 1 MB page of the table), partitions
/// are DataFusion's CPU parallelism: a partition reads its segments
/// concurrently.
#[tokio::test]
async fn segments_follow_size_and_partitions_follow_target_partitions() {
    let (table, client) = big_table().await;
    let provider = DynamoTableProvider::try_new(client, &table)
        .await
        .expect("provider");
    let size = provider.meta().size_bytes;
    let ctx = context_with("t", provider); // target_partitions = 4
    let (batches, plan) = run_with_plan(&ctx, "SELECT count(*) FROM t").await;
    let scan = crate::common::find_scan(&plan).expect("scan");
    let segments = size.div_ceil(1024 * 1024).clamp(1, 1_000) as usize;
    assert!(segments > 4, "the table spans several pages: {size} bytes");
    assert_eq!(
        scan.scan_plan().unit_count(),
        segments,
        "table of {size} bytes"
    );
    assert_eq!(scan.partition_count(), 4);
    assert_eq!(rows(&batches), vec![BIG_ITEMS.to_string()]);
    assert!(
        scan.describe()
            .contains(&format!("segments={segments}, max_concurrency=64")),
        "{}",
        scan.describe()
    );
    let reached = datafusion::physical_plan::ExecutionPlan::metrics(scan)
        .and_then(|m| m.sum_by_name("max_in_flight"))
        .map(|v| v.as_usize())
        .unwrap_or(0);
    assert!(
        (2..=64).contains(&reached),
        "segments were read concurrently: {reached} in flight at most"
    );
}

#[tokio::test]
async fn plain_limit_reads_only_what_it_needs() {
    let (table, client) = big_table().await;
    let provider = DynamoTableProvider::try_new(client, &table)
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let (batches, plan) = run_with_plan(&ctx, "SELECT pk, sk FROM t LIMIT 5").await;
    assert_eq!(rows(&batches).len(), 5);
    let scan = crate::common::find_scan(&plan).expect("scan");
    assert_eq!(scan.limit(), Some(5));
    assert_eq!(
        scan_metric(&plan, "scanned_count"),
        5,
        "only 5 items evaluated"
    );
    assert_eq!(scan_metric(&plan, "requests"), 1);
    assert_eq!(
        scan.projected_attributes(),
        vec!["pk".to_string(), "sk".to_string()]
    );
}

#[tokio::test]
async fn sampling_finds_an_attribute_in_one_percent_of_20k_items() {
    let client = client().await;
    let table = unique_name("sparse");
    TableSpec::new(&table, "id", ScalarAttributeType::N)
        .create(&client)
        .await
        .expect("create");
    let items = (0..20_000u32)
        .map(|i| {
            let mut item = HashMap::from([("id".to_string(), AV::N(i.to_string()))]);
            if i % 100 == 37 {
                item.insert("rare".to_string(), AV::S(format!("r{i}")));
            }
            item
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");
    let provider = DynamoTableProvider::try_new(client, &table)
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let got = rows(
        &query(&ctx, "SELECT count(*), count(rare) FROM t")
            .await
            .expect("rare is in the schema"),
    );
    assert_eq!(got, vec!["20000|200"]);
}

/// Planned for a distributed engine (`dynamodb.distributed`), a scan reads
/// the partitions its in-memory input names. Restricting that input to
/// each task's slice, as Ballista's scheduler does for any memory scan,
/// splits the scan among tasks: together they return exactly the plain
/// scan, each item once.
#[tokio::test]
async fn a_distributed_scan_split_into_tasks_reads_each_item_once() {
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::execution_plan::{
        ChildrenPropertiesMode, ReplaceChildrenOptions,
    };

    let (table, client) = big_table().await;
    let provider = DynamoTableProvider::builder(client.clone(), &table)
        .segments(7)
        .build()
        .await
        .expect("provider");
    let ctx = crate::common::pushdown_session(4);
    ctx.register_table("t", std::sync::Arc::new(provider))
        .expect("register");
    let (plain, _) = run_with_plan(&ctx, "SELECT pk, sk, n FROM t").await;
    query(&ctx, "SET dynamodb.distributed = true")
        .await
        .expect("set");
    let df = ctx.sql("SELECT pk, sk, n FROM t").await.expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    let scan = crate::common::find_scan(&plan).expect("scan");
    assert_eq!(scan.partition_count(), 4);
    let [input] = scan.children()[..] else {
        panic!("a distributed scan has its partitions as input")
    };
    assert!(
        scan.describe().contains("partitions=4 of 4"),
        "{}",
        scan.describe()
    );
    let memory = input
        .downcast_ref::<DataSourceExec>()
        .and_then(|d| d.data_source().downcast_ref::<MemorySourceConfig>())
        .expect("an in-memory input");

    // Three tasks: partitions {0, 2}, {1} and {3}.
    let mut rows_read = Vec::new();
    for slice in [vec![0, 2], vec![1], vec![3]] {
        let kept: Vec<_> = slice
            .iter()
            .map(|p| memory.partitions()[*p].clone())
            .collect();
        let restricted = DataSourceExec::from_data_source(
            MemorySourceConfig::try_new(&kept, memory.original_schema(), None).expect("slice"),
        );
        let task = std::sync::Arc::new(scan.clone())
            .replace_children(
                vec![restricted],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
            )
            .expect("task plan");
        assert_eq!(
            task.properties().output_partitioning().partition_count(),
            slice.len()
        );
        let batches = datafusion::physical_plan::collect(task, ctx.task_ctx())
            .await
            .expect("task runs");
        rows_read.extend(rows(&batches));
    }
    rows_read.sort();
    assert_eq!(rows_read.len(), BIG_ITEMS, "each item once");
    assert_eq!(rows_read, sorted_rows(&plain));
}
