//! Schema inference by sampling: a few pages from several scan segments, so the
//! sample spreads over the whole key space instead of one corner of it. The
//! same items give the key statistics read costs are estimated from.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use crate::error::Result;
use crate::key_stats::{KeyStats, KeyStatsBuilder};
use crate::metadata::TableMeta;
use crate::plan::ScanPlan;
use crate::read::Reader;
use crate::read::retry::Retrier;
use crate::schema::infer::{Observed, merge_observations, observe_items};

/// Items sampled per segment; more segments are used for larger samples.
const ITEMS_PER_SEGMENT: usize = 250;
/// At most this many segments (and concurrent requests) while sampling.
const MAX_SAMPLE_SEGMENTS: usize = 8;

/// What a sample showed.
#[derive(Debug)]
pub(crate) struct Sample {
    /// Every attribute seen, unified across the items.
    pub observed: BTreeMap<String, Observed>,
    /// Items read.
    pub items: usize,
    /// What the items showed of the key attributes.
    pub keys: KeyStats,
}

/// A counter of `meta`'s key attributes (table and indexes).
fn key_counter(meta: &TableMeta) -> KeyStatsBuilder {
    let schemas = std::iter::once(&meta.keys).chain(meta.indexes.iter().map(|i| &i.keys));
    KeyStatsBuilder::new(schemas.map(|k| {
        (
            k.partition_key.name.as_str(),
            k.sort_key.as_ref().map(|s| s.name.as_str()),
        )
    }))
}

/// Observes up to `sample_size` items of `meta`'s table.
pub(crate) async fn sample_table(
    client: &Client,
    meta: &TableMeta,
    sample_size: usize,
    consistent_read: bool,
    retry: Arc<Retrier>,
) -> Result<Sample> {
    let segments = sample_size
        .div_ceil(ITEMS_PER_SEGMENT)
        .clamp(1, MAX_SAMPLE_SEGMENTS);
    let per_segment = sample_size.div_ceil(segments);
    let plan = ScanPlan::whole_table(&meta.name, segments as u32, consistent_read);
    let reader = Reader {
        retry,
        capacity: None,
        concurrency: None,
        buffer: None,
        items_as_json: false,
        ceiling: None,
        watch: None,
    };
    let (plan, reader) = (&plan, &reader);
    let reads = plan.partitions.iter().flatten().map(|unit| async move {
        let mut seen = BTreeMap::new();
        let mut keys = key_counter(meta);
        let mut read = 0;
        let mut remaining = per_segment;
        let mut start = None;
        loop {
            let page = reader
                .page(client, plan, unit, start, Some(remaining))
                .await?;
            remaining = remaining.saturating_sub(page.items.len());
            read += page.items.len();
            merge_observations(&mut seen, observe_items(&page.items));
            keys.observe(&page.items);
            start = page.next;
            if remaining == 0 || start.is_none() {
                keys.end_segment(start.is_none());
                return Result::Ok((seen, keys, read, start.is_none()));
            }
        }
    });
    let mut observed = BTreeMap::new();
    let mut keys = key_counter(meta);
    let (mut items, mut complete) = (0, true);
    for (seen, segment_keys, read, ended) in try_join_all(reads).await? {
        merge_observations(&mut observed, seen);
        keys.merge(segment_keys);
        items += read;
        complete &= ended;
    }
    Ok(Sample {
        observed,
        items,
        keys: keys.finish(complete),
    })
}
