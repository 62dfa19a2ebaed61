//! DynamoDB reads, one page at a time, resumable from `LastEvaluatedKey`.
//!
//! A partition of the plan is a list of [`ReadUnit`]s — scan segments, one
//! Query per partition-key value, GetItem keys or BatchGetItem key chunks —
//! read one after the other.

pub(crate) mod capacity;
pub(crate) mod capture;
pub mod retry;

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
use crate::error::{Error, Result, describe_sdk_error};
use crate::plan::render::ProjectionExpression;
use crate::plan::{AccessPlan, Key, Operation, ReadUnit};
use crate::read::capacity::CapacityLimiter;
use crate::read::capture::{ItemsCapture, ItemsJson};
use crate::read::retry::{ErrorKind, GiveUp, Retrier, Retryable, classify, error_kind};

/// Everything a request needs apart from its unit and start key.
#[derive(Debug, Clone)]
pub(crate) struct ReadSpec {
    pub table: String,
    pub plan: AccessPlan,
    pub projection: Option<ProjectionExpression>,
    pub consistent_read: bool,
    /// Items per request, if set (never sent together with a filter).
    pub page_size: Option<i32>,
    /// Query direction.
    pub scan_forward: bool,
    /// Retries, with the budget every partition of the query draws on.
    pub retry: Arc<Retrier>,
    /// Read-capacity limit shared by every partition, if any.
    pub capacity: Option<Arc<CapacityLimiter>>,
    /// Keep Scan and Query items as the JSON text DynamoDB sent
    /// ([`Page::items_json`]) instead of SDK values, for decoding straight to Arrow.
    pub items_as_json: bool,
}

/// One page of a read.
#[derive(Debug, Default)]
pub(crate) struct Page {
    /// The items as SDK values (empty when they are in `items_json`).
    pub items: Vec<Item>,
    /// A Scan or Query answer's items as DynamoDB's JSON text, when
    /// [`ReadSpec::items_as_json`] is set.
    pub items_json: Option<ItemsJson>,
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

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    key.iter().cloned().collect()
}

impl ReadSpec {
    /// Maps an SDK error: a missing table is [`Error::TableNotFound`], the rest
    /// carry the operation and the SDK's full message.
    fn request_error<E>(&self, operation: &'static str, e: &SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match error_kind(e) {
            ErrorKind::NotFound => Error::TableNotFound {
                table: self.table.clone(),
            },
            kind => Error::Request {
                operation,
                table: self.table.clone(),
                kind,
                message: describe_sdk_error(e),
            },
        }
    }

    /// Maps a call given up by the retrier.
    fn give_up_error<E>(
        &self,
        operation: &'static str,
        g: GiveUp<SdkError<E, HttpResponse>>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match g {
            GiveUp::Final(e) => self.request_error(operation, &e),
            GiveUp::Exhausted {
                last,
                class,
                attempts,
                budget_spent,
            } => {
                let why = if budget_spent {
                    format!(
                        "the query's retry budget of {} retries is spent",
                        self.retry.policy().budget
                    )
                } else {
                    format!("{attempts} attempts failed")
                };
                if class == Retryable::Throttled {
                    Error::Throttled {
                        operation,
                        table: self.table.clone(),
                        why,
                        message: describe_sdk_error(&last),
                    }
                } else {
                    Error::Request {
                        operation,
                        table: self.table.clone(),
                        kind: error_kind(&last),
                        message: format!("gave up, {why}: {}", describe_sdk_error(&last)),
                    }
                }
            }
        }
    }

    /// Sends one request through the retrier; `page.requests` and
    /// `page.retries` count the attempts.
    async fn call<T, E, F, Fut>(
        &self,
        operation: &'static str,
        page: &mut Page,
        mut send: F,
    ) -> Result<T>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    {
        let mut attempts = 0u64;
        let out = self
            .retry
            .run(
                || {
                    attempts += 1;
                    send()
                },
                classify,
            )
            .await;
        page.requests += attempts;
        page.retries += attempts.saturating_sub(1);
        out.map_err(|g| self.give_up_error(operation, g))
    }

    /// `Limit` for a request. With a FilterExpression DynamoDB applies `Limit`
    /// to items evaluated, not returned, so the row limit is never sent then;
    /// the capacity budget's page size is (it only makes pages smaller).
    fn request_limit(&self, remaining: Option<usize>) -> Option<i32> {
        let pacing = self.capacity.as_ref().map(|c| c.page_items());
        let remaining = if self.plan.has_filter() {
            None
        } else {
            remaining.map(|r| i32::try_from(r).unwrap_or(i32::MAX))
        };
        [remaining, self.page_size, pacing]
            .into_iter()
            .flatten()
            .min()
    }

    /// Reads one page of `unit`, starting at `start` (the previous page's `next`).
    pub(crate) async fn page(
        &self,
        client: &Client,
        unit: &ReadUnit,
        start: Option<HashMap<String, AttributeValue>>,
        remaining: Option<usize>,
    ) -> Result<Page> {
        if matches!(unit, ReadUnit::Query(_))
            && !matches!(self.plan.operation, Operation::Query { .. })
        {
            return Err(Error::Metadata {
                table: self.table.clone(),
                reason: "a Query unit in a plan that is not a Query".into(),
            });
        }
        let r = self.plan.render(unit, self.projection.as_ref());
        let reserved = match &self.capacity {
            Some(capacity) => capacity.acquire().await,
            None => 0.0,
        };
        let mut page = Page::default();
        match unit {
            ReadUnit::Segment(segment, total) => {
                let mut req = client
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start)
                    .set_limit(self.request_limit(remaining))
                    .set_projection_expression(r.projection)
                    .set_filter_expression(r.filter)
                    .set_expression_attribute_names(r.names)
                    .set_expression_attribute_values(r.values);
                if *total > 1 {
                    req = req.segment(*segment).total_segments(*total);
                }
                let capture = self.items_as_json.then(ItemsCapture::default);
                let out = self
                    .call("Scan", &mut page, || {
                        ItemsCapture::attach(&capture, req.clone().customize()).send()
                    })
                    .await?;
                page.items_json = capture.and_then(|c| c.take());
                page.fill(
                    out.items,
                    out.last_evaluated_key,
                    out.scanned_count,
                    out.consumed_capacity.as_ref(),
                );
            }
            ReadUnit::Query(_) => {
                let index = match &self.plan.operation {
                    Operation::Query { index, .. } => index.clone(),
                    _ => None,
                };
                let req = client
                    .query()
                    .table_name(&self.table)
                    .set_index_name(index)
                    .set_key_condition_expression(r.key_condition)
                    .scan_index_forward(self.scan_forward)
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start)
                    .set_limit(self.request_limit(remaining))
                    .set_projection_expression(r.projection)
                    .set_filter_expression(r.filter)
                    .set_expression_attribute_names(r.names)
                    .set_expression_attribute_values(r.values);
                let capture = self.items_as_json.then(ItemsCapture::default);
                let out = self
                    .call("Query", &mut page, || {
                        ItemsCapture::attach(&capture, req.clone().customize()).send()
                    })
                    .await?;
                page.items_json = capture.and_then(|c| c.take());
                page.fill(
                    out.items,
                    out.last_evaluated_key,
                    out.scanned_count,
                    out.consumed_capacity.as_ref(),
                );
            }
            ReadUnit::Get(key) => {
                let req = client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_projection_expression(r.projection)
                    .set_expression_attribute_names(r.names);
                let out = self
                    .call("GetItem", &mut page, || req.clone().send())
                    .await?;
                page.items = out.item.into_iter().collect();
                page.scanned_count = page.items.len() as u64;
                page.consumed_capacity = out
                    .consumed_capacity
                    .and_then(|c| c.capacity_units)
                    .unwrap_or(0.0);
            }
            ReadUnit::Batch(keys) => {
                self.batch_get(client, keys, r.projection, r.names, &mut page)
                    .await?
            }
        }
        if let Some(capacity) = &self.capacity {
            capacity.settle(reserved, page.consumed_capacity, page.scanned_count);
        }
        Ok(page)
    }

    /// BatchGetItem, retrying `UnprocessedKeys` with backoff until every key is
    /// answered; each such round is a throttling retry drawn from the budget.
    async fn batch_get(
        &self,
        client: &Client,
        keys: &[Key],
        projection: Option<String>,
        names: Option<HashMap<String, String>>,
        page: &mut Page,
    ) -> Result<()> {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_map).collect()))
            .consistent_read(self.consistent_read)
            .set_projection_expression(projection)
            .set_expression_attribute_names(names)
            .build()
            .map_err(|e| Error::Request {
                operation: "BatchGetItem",
                table: self.table.clone(),
                kind: ErrorKind::Other,
                message: e.to_string(),
            })?;
        let policy = self.retry.policy();
        let mut rounds = 0u32;
        loop {
            let req = client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let out = self
                .call("BatchGetItem", page, || req.clone().send())
                .await?;
            rounds += 1;
            page.consumed_capacity += out
                .consumed_capacity()
                .iter()
                .filter_map(|c| c.capacity_units())
                .sum::<f64>();
            let mut responses = out.responses.unwrap_or_default();
            let got = responses.remove(&self.table).unwrap_or_default();
            page.scanned_count += got.len() as u64;
            page.items.extend(got);
            let Some(rest) = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|rest| !rest.keys().is_empty())
            else {
                return Ok(());
            };
            if rounds >= policy.max_attempts || !self.retry.take() {
                return Err(Error::Throttled {
                    operation: "BatchGetItem",
                    table: self.table.clone(),
                    why: format!(
                        "{} of {} keys were still unprocessed after {rounds} rounds",
                        rest.keys().len(),
                        keys.len()
                    ),
                    message: "DynamoDB returned UnprocessedKeys".into(),
                });
            }
            page.retries += 1;
            pending = rest;
            tokio::time::sleep(policy.backoff(rounds)).await;
        }
    }
}
