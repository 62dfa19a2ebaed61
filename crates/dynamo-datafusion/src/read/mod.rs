//! DynamoDB reads, one page at a time, resumable from `LastEvaluatedKey`.
//!
//! [`read_page`] sends one Scan or Query ([`PageRequest`]: expressions as
//! DynamoDB takes them) through the retrier: every Scan and Query of this
//! crate and of the connector's raw reads goes through it, so retries,
//! error kinds and give-up exist once. [`Reader`] executes a [`ScanPlan`]'s
//! units — scan segments, one Query per partition-key value, GetItem keys,
//! BatchGetItem key chunks — with the plan's rendered request, the shared
//! retry budget and the read-capacity limiter.

pub(crate) mod cancel;
pub(crate) mod capacity;
pub(crate) mod capture;
pub(crate) mod ceiling;
pub(crate) mod concurrency;
pub(crate) mod retry;
pub(crate) mod sample;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity,
};

use crate::decode::Item;
use crate::error::ErrorKind;
use crate::error::{Error, Result, describe_sdk_error};
use crate::plan::{Key, Operation, ReadUnit, ScanPlan};
use capacity::CapacityLimiter;
use capture::{ItemsCapture, ItemsJson};
use ceiling::Ceiling;
use concurrency::Concurrency;
use retry::{GiveUp, Retryable, classify, error_kind};

pub use cancel::{CancellationProbe, TaskCancellation};
pub use retry::{Retrier, without_sdk_retries};

/// One Scan or Query request, with its expressions as DynamoDB takes them.
///
/// ```
/// use dynamo_datafusion::read::PageRequest;
/// let first_page = PageRequest {
///     table: "Orders".into(),
///     key_condition: Some("#c = :c".into()),
///     names: Some([("#c".to_string(), "customer".to_string())].into()),
///     limit: Some(100),
///     ..PageRequest::default()
/// };
/// assert!(first_page.is_query());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// Table name.
    pub table: String,
    /// Index read, if any.
    pub index: Option<String>,
    /// `KeyConditionExpression`: `Some` makes the request a Query, `None` a Scan.
    pub key_condition: Option<String>,
    /// Query direction (ascending sort key when true).
    pub scan_forward: bool,
    /// Parallel-scan `(Segment, TotalSegments)` of a Scan, if any.
    pub segment: Option<(i32, i32)>,
    /// `ProjectionExpression`.
    pub projection: Option<String>,
    /// `FilterExpression`.
    pub filter: Option<String>,
    /// `ExpressionAttributeNames`.
    pub names: Option<HashMap<String, String>>,
    /// `ExpressionAttributeValues`.
    pub values: Option<HashMap<String, AttributeValue>>,
    /// Strongly consistent read.
    pub consistent_read: bool,
    /// `Limit`: items this request may evaluate.
    pub limit: Option<i32>,
    /// `ExclusiveStartKey`: the previous page's `next`.
    pub start: Option<HashMap<String, AttributeValue>>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            table: String::new(),
            index: None,
            key_condition: None,
            scan_forward: true,
            segment: None,
            projection: None,
            filter: None,
            names: None,
            values: None,
            consistent_read: false,
            limit: None,
            start: None,
        }
    }
}

impl PageRequest {
    /// True for a Query, false for a Scan.
    pub fn is_query(&self) -> bool {
        self.key_condition.is_some()
    }

    /// `Query` or `Scan`.
    pub fn operation(&self) -> &'static str {
        if self.is_query() { "Query" } else { "Scan" }
    }
}

/// One page of a read.
#[derive(Debug, Default)]
pub struct Page {
    /// The items as SDK values (empty when the crate kept them as JSON text).
    pub items: Vec<Item>,
    /// A Scan or Query answer's items as DynamoDB's JSON text, when captured.
    pub(crate) items_json: Option<ItemsJson>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<HashMap<String, AttributeValue>>,
    /// Items DynamoDB evaluated (before any filter).
    pub scanned_count: u64,
    /// Read capacity units consumed.
    pub consumed_capacity: f64,
    /// Requests made for this page, retries included.
    pub requests: u64,
    /// Of these, retries (after throttling, faults or unprocessed keys).
    pub retries: u64,
    /// Attempts DynamoDB throttled (and BatchGetItem rounds that left keys
    /// unprocessed): the signal that brings a scan's concurrency down.
    pub throttled: u64,
}

impl Page {
    /// Takes what a Scan or Query answered.
    fn fill(
        &mut self,
        items: Option<Vec<Item>>,
        last_evaluated_key: Option<HashMap<String, AttributeValue>>,
        scanned_count: i32,
        capacity: Option<&ConsumedCapacity>,
    ) {
        self.items = items.unwrap_or_default();
        self.next = last_evaluated_key.filter(|k| !k.is_empty());
        self.scanned_count = scanned_count.max(0) as u64;
        self.consumed_capacity = capacity.and_then(|c| c.capacity_units()).unwrap_or(0.0);
    }
}

/// Sends one Scan or Query through `retry` (the client should have the
/// SDK's own retries off: [`retry::without_sdk_retries`]) and returns its
/// page with the items as SDK values.
///
/// Errors: a missing table is [`Error::TableNotFound`]; throttling beyond
/// the retries is [`Error::Throttled`]; anything else [`Error::Request`],
/// with its [`ErrorKind`].
pub async fn read_page(client: &Client, request: &PageRequest, retry: &Retrier) -> Result<Page> {
    send_page(client, request, Attempts { retry, gate: None }, false).await
}

/// How a request's attempts are made: retried by `retry`, each attempt
/// waiting for a place in flight at `gate` (and telling it of throttles).
#[derive(Clone, Copy)]
struct Attempts<'a> {
    retry: &'a Retrier,
    gate: Option<&'a Arc<Concurrency>>,
}

/// [`read_page`], keeping the items as DynamoDB's JSON text when `capture`.
async fn send_page(
    client: &Client,
    r: &PageRequest,
    attempts: Attempts<'_>,
    capture: bool,
) -> Result<Page> {
    // Scan and Query builders share these setters but not a type.
    macro_rules! common {
        ($builder:expr) => {
            $builder
                .table_name(&r.table)
                .set_index_name(r.index.clone())
                .consistent_read(r.consistent_read)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(r.start.clone())
                .set_limit(r.limit)
                .set_projection_expression(r.projection.clone())
                .set_filter_expression(r.filter.clone())
                .set_expression_attribute_names(r.names.clone())
                .set_expression_attribute_values(r.values.clone())
        };
    }
    let mut page = Page::default();
    let capture = capture.then(ItemsCapture::default);
    let table = r.table.as_str();
    // Sends a built request and takes its answer (the outputs are different types).
    macro_rules! send {
        ($operation:literal, $req:expr) => {{
            let req = $req;
            let out = call(table, attempts, $operation, &mut page, || {
                ItemsCapture::attach(&capture, req.clone().customize()).send()
            })
            .await?;
            page.fill(
                out.items,
                out.last_evaluated_key,
                out.scanned_count,
                out.consumed_capacity.as_ref(),
            );
        }};
    }
    match (&r.key_condition, r.segment) {
        (Some(key_condition), _) => send!(
            "Query",
            common!(client.query())
                .key_condition_expression(key_condition)
                .scan_index_forward(r.scan_forward)
        ),
        (None, Some((segment, total))) if total > 1 => send!(
            "Scan",
            common!(client.scan())
                .segment(segment)
                .total_segments(total)
        ),
        (None, _) => send!("Scan", common!(client.scan())),
    }
    page.items_json = capture.and_then(|c| c.take());
    Ok(page)
}

/// Sends one request through the retrier; `page.requests` and
/// `page.retries` count the attempts.
async fn call<T, E, F, Fut>(
    table: &str,
    how: Attempts<'_>,
    operation: &'static str,
    page: &mut Page,
    mut send: F,
) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
{
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut attempts = 0u64;
    let throttled = AtomicU64::new(0);
    // The limit the last attempt was sent under (see `read::concurrency`).
    let sent_under = AtomicU64::new(0);
    let out = how
        .retry
        .run(
            || {
                attempts += 1;
                let attempt = send();
                let (gate, sent_under) = (how.gate, &sent_under);
                async move {
                    // On the wire only with a place in flight; a retry queues again.
                    let place = match gate {
                        Some(g) => Some(g.acquire().await),
                        None => None,
                    };
                    if let Some(p) = &place {
                        sent_under.store(p.generation(), Ordering::Relaxed);
                    }
                    attempt.await
                }
            },
            |e| {
                let class = classify(e);
                if class == Retryable::Throttled {
                    throttled.fetch_add(1, Ordering::Relaxed);
                    if let Some(g) = how.gate {
                        g.on_throttle(sent_under.load(Ordering::Relaxed));
                    }
                }
                class
            },
        )
        .await;
    page.requests += attempts;
    page.retries += attempts.saturating_sub(1);
    page.throttled += throttled.into_inner();
    out.map_err(|g| give_up_error(table, how.retry, operation, g, attempts as u32))
}

/// Maps an SDK error of a request about `table`, sent `attempts` times: a
/// missing table is [`Error::TableNotFound`], the rest carry the
/// operation, their kind and the SDK's full message. The one place an SDK
/// error becomes this crate's.
pub(crate) fn request_error<E>(
    table: &str,
    operation: &'static str,
    e: &SdkError<E, HttpResponse>,
    attempts: u32,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error_kind(e) {
        ErrorKind::NotFound => Error::TableNotFound {
            table: table.to_string(),
            message: describe_sdk_error(e),
        },
        kind => Error::Request {
            operation,
            table: table.to_string(),
            kind,
            message: describe_sdk_error(e),
            gave_up: None,
            attempts,
        },
    }
}

/// Maps a call given up by the retrier.
fn give_up_error<E>(
    table: &str,
    retry: &Retrier,
    operation: &'static str,
    g: GiveUp<SdkError<E, HttpResponse>>,
    sent: u32,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match g {
        GiveUp::Final(e) => request_error(table, operation, &e, sent),
        GiveUp::Exhausted {
            last,
            class,
            attempts,
            budget_spent,
        } => {
            let why = if budget_spent {
                format!(
                    "the query's retry budget of {} retries is spent",
                    retry.policy().budget
                )
            } else {
                format!("{attempts} attempts failed")
            };
            if class == Retryable::Throttled {
                Error::Throttled {
                    operation,
                    table: table.to_string(),
                    why,
                    message: describe_sdk_error(&last),
                    attempts,
                }
            } else {
                Error::Request {
                    operation,
                    table: table.to_string(),
                    kind: error_kind(&last),
                    message: describe_sdk_error(&last),
                    gave_up: Some(why),
                    attempts,
                }
            }
        }
    }
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    key.iter().cloned().collect()
}

/// Executes a [`ScanPlan`]'s units: the plan's requests, with the retry
/// budget and the read-capacity limiter every partition of one scan shares.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    /// Retries, with the budget every partition of the scan draws on.
    pub retry: Arc<Retrier>,
    /// Read-capacity limit shared by every partition, if any.
    pub capacity: Option<Arc<CapacityLimiter>>,
    /// Attempts in flight over every partition of the scan (`None`: as
    /// many as the caller starts).
    pub concurrency: Option<Arc<Concurrency>>,
    /// Places for pages between their request and their hand-on, over
    /// every partition of the scan: bounds the pages held in memory.
    pub buffer: Option<Arc<tokio::sync::Semaphore>>,
    /// Keep Scan and Query items as the JSON text DynamoDB sent
    /// ([`Page::items_json`]) instead of SDK values, for decoding straight to Arrow.
    pub items_as_json: bool,
    /// The query's read-capacity ceiling, if it has one.
    pub ceiling: Option<Arc<Ceiling>>,
    /// Whether the engine task this read runs for was cancelled.
    pub watch: Option<Arc<cancel::TaskWatch>>,
}

impl Reader {
    /// The runtime half of `plan`: a fresh retry budget and a capacity
    /// limiter at `share` (0 to 1) of the plan's read-capacity budget, for
    /// a node that reads that part of the plan's partitions. A node with
    /// no part reads nothing and gets no limiter.
    pub(crate) fn for_plan(plan: &ScanPlan, share: f64) -> Self {
        Self {
            retry: Arc::new(Retrier::new(plan.retry.clone())),
            capacity: plan
                .read_capacity
                .filter(|_| share > 0.0)
                .map(|rate| Arc::new(CapacityLimiter::new(rate * share.min(1.0)))),
            concurrency: Some(Concurrency::new(
                plan.initial_concurrency,
                plan.max_concurrency,
            )),
            buffer: Some(Arc::new(tokio::sync::Semaphore::new(plan.max_concurrency))),
            items_as_json: true,
            ceiling: Ceiling::of_plan(plan, share),
            watch: None,
        }
    }

    fn attempts(&self) -> Attempts<'_> {
        Attempts {
            retry: &self.retry,
            gate: self.concurrency.as_ref(),
        }
    }

    /// `Limit` for a request. With a FilterExpression DynamoDB applies `Limit`
    /// to items evaluated, not returned, so the row limit is never sent then;
    /// the capacity budget's page size is (it only makes pages smaller).
    fn request_limit(&self, plan: &ScanPlan, remaining: Option<usize>) -> Option<i32> {
        let pacing = self.capacity.as_ref().map(|c| c.page_items());
        let remaining = if plan.access.has_filter() {
            None
        } else {
            remaining.map(|r| i32::try_from(r).unwrap_or(i32::MAX))
        };
        [remaining, plan.page_size, pacing]
            .into_iter()
            .flatten()
            .min()
    }

    /// Reads one page of `unit` of `plan`, starting at `start` (the previous
    /// page's `next`).
    pub(crate) async fn page(
        &self,
        client: &Client,
        plan: &ScanPlan,
        unit: &ReadUnit,
        start: Option<HashMap<String, AttributeValue>>,
        remaining: Option<usize>,
    ) -> Result<Page> {
        let index = match (&plan.access.operation, unit) {
            (Operation::Query { index, .. }, ReadUnit::Query(_)) => index.clone(),
            (_, ReadUnit::Query(_)) => {
                return Err(Error::Metadata {
                    table: plan.table.clone(),
                    reason: "a Query unit in a plan that is not a Query".into(),
                });
            }
            _ => None,
        };
        if let Some(ceiling) = &self.ceiling {
            ceiling.check(&plan.table)?;
        }
        if let Some(watch) = &self.watch {
            watch.check(&plan.table).await?;
        }
        let r = plan.render(unit);
        let reserved = match &self.capacity {
            Some(capacity) => capacity.acquire().await,
            None => 0.0,
        };
        let page = match unit {
            ReadUnit::Segment(..) | ReadUnit::Query(_) => {
                let request = PageRequest {
                    table: plan.table.clone(),
                    index,
                    key_condition: r.key_condition,
                    scan_forward: plan.scan_forward,
                    segment: match unit {
                        ReadUnit::Segment(segment, total) => Some((*segment, *total)),
                        _ => None,
                    },
                    projection: r.projection,
                    filter: r.filter,
                    names: r.names,
                    values: r.values,
                    consistent_read: plan.consistent_read,
                    limit: self.request_limit(plan, remaining),
                    start,
                };
                send_page(client, &request, self.attempts(), self.items_as_json).await?
            }
            ReadUnit::Get(key) => {
                let mut page = Page::default();
                let req = client
                    .get_item()
                    .table_name(&plan.table)
                    .set_key(Some(key_map(key)))
                    .consistent_read(plan.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_projection_expression(r.projection)
                    .set_expression_attribute_names(r.names);
                let out = call(&plan.table, self.attempts(), "GetItem", &mut page, || {
                    req.clone().send()
                })
                .await?;
                page.items = out.item.into_iter().collect();
                page.scanned_count = page.items.len() as u64;
                page.consumed_capacity = out
                    .consumed_capacity
                    .and_then(|c| c.capacity_units)
                    .unwrap_or(0.0);
                page
            }
            ReadUnit::Batch(keys) => {
                self.batch_get(client, plan, keys, r.projection, r.names)
                    .await?
            }
        };
        let mut page = page;
        if let (Some(expiry), ReadUnit::Get(_) | ReadUnit::Batch(_)) = (&plan.expiry, unit) {
            // Key lookups have no FilterExpression: expired items are
            // dropped here (they were read, and count as read).
            page.items.retain(|item| !expiry.expired(item));
        }
        if let Some(capacity) = &self.capacity {
            capacity.settle(reserved, page.consumed_capacity, page.scanned_count);
        }
        if let Some(c) = &self.concurrency {
            c.on_page(page.scanned_count);
        }
        if let Some(ceiling) = &self.ceiling {
            ceiling.spend(&plan.table, page.consumed_capacity)?;
        }
        Ok(page)
    }

    /// BatchGetItem, retrying `UnprocessedKeys` with backoff until every key is
    /// answered; each such round is a throttling retry drawn from the budget.
    async fn batch_get(
        &self,
        client: &Client,
        plan: &ScanPlan,
        keys: &[Key],
        projection: Option<String>,
        names: Option<HashMap<String, String>>,
    ) -> Result<Page> {
        let table = plan.table.as_str();
        let mut page = Page::default();
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_map).collect()))
            .consistent_read(plan.consistent_read)
            .set_projection_expression(projection)
            .set_expression_attribute_names(names)
            .build()
            .map_err(|e| Error::Request {
                operation: "BatchGetItem",
                table: table.to_string(),
                kind: ErrorKind::Other,
                message: e.to_string(),
                gave_up: None,
                attempts: 0,
            })?;
        let policy = self.retry.policy();
        let mut rounds = 0u32;
        loop {
            let req = client
                .batch_get_item()
                .request_items(table, pending.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let out = call(table, self.attempts(), "BatchGetItem", &mut page, || {
                req.clone().send()
            })
            .await?;
            rounds += 1;
            page.consumed_capacity += out
                .consumed_capacity()
                .iter()
                .filter_map(|c| c.capacity_units())
                .sum::<f64>();
            let mut responses = out.responses.unwrap_or_default();
            let got = responses.remove(table).unwrap_or_default();
            page.scanned_count += got.len() as u64;
            page.items.extend(got);
            let Some(rest) = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .filter(|rest| !rest.keys().is_empty())
            else {
                return Ok(page);
            };
            if rounds >= policy.max_attempts || !self.retry.take() {
                return Err(Error::Throttled {
                    operation: "BatchGetItem",
                    table: table.to_string(),
                    why: format!(
                        "{} of {} keys were still unprocessed after {rounds} rounds",
                        rest.keys().len(),
                        keys.len()
                    ),
                    message: "DynamoDB returned UnprocessedKeys".into(),
                    attempts: rounds,
                });
            }
            page.retries += 1;
            page.throttled += 1;
            if let Some(c) = &self.concurrency {
                c.on_throttle(c.generation());
            }
            pending = rest;
            tokio::time::sleep(policy.backoff(rounds)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;
    use crate::plan::fixture::{orders_meta, orders_schema};
    use crate::plan::{ReadOptions, ScanPlan};

    /// Orders read for `filters`, with a page size and a capacity budget.
    fn plan(filters: &[datafusion::logical_expr::Expr]) -> ScanPlan {
        let options = ReadOptions {
            page_size: Some(50),
            read_capacity: Some(100.0),
            ..ReadOptions::default()
        };
        ScanPlan::new(
            &orders_meta(),
            &orders_schema(),
            filters,
            None,
            None,
            &options,
        )
        .expect("plan")
    }

    #[test]
    fn the_smallest_of_rows_wanted_page_size_and_pacing_is_the_limit() {
        let plan = plan(&[col("customer").eq(lit("c1"))]);
        assert!(!plan.access.has_filter());
        let reader = Reader::for_plan(&plan, 1.0);
        let pacing = reader.capacity.as_ref().expect("a budget").page_items();
        let limit = |remaining| reader.request_limit(&plan, remaining);
        assert_eq!(limit(Some(7)), Some(7));
        assert_eq!(limit(None), Some(50.min(pacing)));
        assert_eq!(limit(Some(1 << 40)), Some(50.min(pacing)), "never past i32");
    }

    #[test]
    fn a_filter_expression_never_carries_the_rows_wanted() {
        // DynamoDB counts `Limit` in items evaluated, not returned.
        let plan = plan(&[col("note").eq(lit("x"))]);
        assert!(plan.access.has_filter());
        let reader = Reader::for_plan(&plan, 1.0);
        let pacing = reader.capacity.as_ref().expect("a budget").page_items();
        assert_eq!(reader.request_limit(&plan, Some(3)), Some(50.min(pacing)));
    }

    #[test]
    fn a_node_reads_at_its_share_of_the_budget_and_without_one_has_no_limiter() {
        let plan = plan(&[]);
        let rate = |share| Reader::for_plan(&plan, share).capacity.map(|c| c.rate());
        assert_eq!(rate(1.0), Some(100.0));
        assert_eq!(rate(0.25), Some(25.0));
        assert_eq!(rate(2.0), Some(100.0), "a share is at most the whole");
        assert_eq!(rate(0.0), None);
    }

    #[test]
    fn a_page_request_names_its_operation() {
        let scan = PageRequest::default();
        assert!(!scan.is_query());
        assert_eq!(scan.operation(), "Scan");
    }
}
