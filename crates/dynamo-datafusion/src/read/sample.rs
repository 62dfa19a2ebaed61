//! Schema inference by sampling: a few pages from several scan segments, so the
//! sample spreads over the whole key space instead of one corner of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use crate::error::Result;
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
}

/// Observes up to `sample_size` items of `table`.
pub(crate) async fn sample_table(
    client: &Client,
    table: &str,
    sample_size: usize,
    consistent_read: bool,
    retry: Arc<Retrier>,
) -> Result<Sample> {
    let segments = sample_size
        .div_ceil(ITEMS_PER_SEGMENT)
        .clamp(1, MAX_SAMPLE_SEGMENTS);
    let per_segment = sample_size.div_ceil(segments);
    let plan = ScanPlan::whole_table(table, segments as u32, consistent_read);
    let reader = Reader {
        retry,
        capacity: None,
        concurrency: None,
        buffer: None,
        items_as_json: false,
    };
    let (plan, reader) = (&plan, &reader);
    let reads = plan.partitions.iter().flatten().map(|unit| async move {
        let mut seen = BTreeMap::new();
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
            start = page.next;
            if remaining == 0 || start.is_none() {
                return Result::Ok((seen, read));
            }
        }
    });
    let mut observed = BTreeMap::new();
    let mut items = 0;
    for (seen, read) in try_join_all(reads).await? {
        merge_observations(&mut observed, seen);
        items += read;
    }
    Ok(Sample { observed, items })
}
