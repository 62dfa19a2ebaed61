//! DynamoDB reads, one page at a time, resumable from `LastEvaluatedKey`.
//!
//! A partition of the plan is a list of [`ReadUnit`]s — scan segments, one
//! Query per partition-key value, GetItem keys or BatchGetItem key chunks —
//! read one after the other.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity,
};

use crate::decode::Item;
use crate::error::{Error, Result, sdk_message};
use crate::plan::render::{ExpressionBuilder, ProjectionExpression};
use crate::plan::{AccessPlan, Key, Operation, render_key_condition};

/// Keys per BatchGetItem request (DynamoDB's limit).
pub(crate) const BATCH_GET_MAX_KEYS: usize = 100;
/// Attempts to get every key of a BatchGetItem answered before giving up.
const BATCH_GET_ATTEMPTS: u32 = 10;

/// One independent piece of a read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReadUnit {
    /// Scan segment `(segment, total)`; `total == 1` is a plain scan.
    Segment(i32, i32),
    /// Query for one partition-key value.
    Query(AttributeValue),
    /// GetItem.
    Get(Key),
    /// BatchGetItem of at most [`BATCH_GET_MAX_KEYS`] keys.
    Batch(Vec<Key>),
}

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
}

/// One page of a read.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub items: Vec<Item>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<HashMap<String, AttributeValue>>,
    /// Items DynamoDB evaluated (before any filter).
    pub scanned_count: u64,
    /// Read capacity units consumed.
    pub consumed_capacity: f64,
    /// Requests made for this page (BatchGetItem retries unprocessed keys).
    pub requests: u64,
}

impl Page {
    /// The page a Scan or Query answered.
    fn of_response(
        items: Option<Vec<Item>>,
        last_evaluated_key: Option<HashMap<String, AttributeValue>>,
        scanned_count: i32,
        capacity: Option<&ConsumedCapacity>,
    ) -> Self {
        Self {
            items: items.unwrap_or_default(),
            next: last_evaluated_key.filter(|k| !k.is_empty()),
            scanned_count: scanned_count.max(0) as u64,
            consumed_capacity: capacity.and_then(|c| c.capacity_units()).unwrap_or(0.0),
            requests: 1,
        }
    }
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    key.iter().cloned().collect()
}

impl ReadSpec {
    /// Maps an SDK error: a missing table is [`Error::TableNotFound`], the rest
    /// carry the operation and the SDK's full message.
    fn request_error<E, R>(&self, operation: &'static str, e: &SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let missing = e
            .as_service_error()
            .is_some_and(|s| s.code() == Some("ResourceNotFoundException"));
        if missing {
            Error::TableNotFound {
                table: self.table.clone(),
            }
        } else {
            Error::Request {
                operation,
                table: self.table.clone(),
                message: sdk_message(e),
            }
        }
    }

    /// `Limit` for a request: never with a FilterExpression, since DynamoDB
    /// applies it to items evaluated, not items returned.
    fn request_limit(&self, remaining: Option<usize>) -> Option<i32> {
        if self.plan.has_filter() {
            return None;
        }
        let remaining = remaining.map(|r| i32::try_from(r).unwrap_or(i32::MAX));
        match (remaining, self.page_size) {
            (Some(r), Some(p)) => Some(r.min(p)),
            (r, p) => r.or(p),
        }
    }

    /// Reads one page of `unit`, starting at `start` (the previous page's `next`).
    pub(crate) async fn page(
        &self,
        client: &Client,
        unit: &ReadUnit,
        start: Option<HashMap<String, AttributeValue>>,
        remaining: Option<usize>,
    ) -> Result<Page> {
        let mut b = ExpressionBuilder::default();
        let projection = self.projection.as_ref().map(|p| p.render(&mut b));
        match unit {
            ReadUnit::Segment(segment, total) => {
                let filter = self.plan.render_filter(&mut b);
                let mut req = client
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start)
                    .set_limit(self.request_limit(remaining))
                    .set_projection_expression(projection)
                    .set_filter_expression(filter)
                    .set_expression_attribute_names(b.attribute_names())
                    .set_expression_attribute_values(b.attribute_values());
                if *total > 1 {
                    req = req.segment(*segment).total_segments(*total);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| self.request_error("Scan", &e))?;
                Ok(Page::of_response(
                    out.items,
                    out.last_evaluated_key,
                    out.scanned_count,
                    out.consumed_capacity.as_ref(),
                ))
            }
            ReadUnit::Query(value) => {
                let Operation::Query {
                    index, keys, sort, ..
                } = &self.plan.operation
                else {
                    return Err(Error::Metadata {
                        table: self.table.clone(),
                        reason: "a Query unit in a plan that is not a Query".into(),
                    });
                };
                let key_condition = render_key_condition(keys, value, sort.as_ref(), &mut b);
                let filter = self.plan.render_filter(&mut b);
                let out = client
                    .query()
                    .table_name(&self.table)
                    .set_index_name(index.clone())
                    .key_condition_expression(key_condition)
                    .scan_index_forward(self.scan_forward)
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start)
                    .set_limit(self.request_limit(remaining))
                    .set_projection_expression(projection)
                    .set_filter_expression(filter)
                    .set_expression_attribute_names(b.attribute_names())
                    .set_expression_attribute_values(b.attribute_values())
                    .send()
                    .await
                    .map_err(|e| self.request_error("Query", &e))?;
                Ok(Page::of_response(
                    out.items,
                    out.last_evaluated_key,
                    out.scanned_count,
                    out.consumed_capacity.as_ref(),
                ))
            }
            ReadUnit::Get(key) => {
                let out = client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key_map(key)))
                    .consistent_read(self.consistent_read)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_projection_expression(projection)
                    .set_expression_attribute_names(b.attribute_names())
                    .send()
                    .await
                    .map_err(|e| self.request_error("GetItem", &e))?;
                let items: Vec<Item> = out.item.into_iter().collect();
                Ok(Page {
                    scanned_count: items.len() as u64,
                    consumed_capacity: out
                        .consumed_capacity
                        .and_then(|c| c.capacity_units)
                        .unwrap_or(0.0),
                    next: None,
                    items,
                    requests: 1,
                })
            }
            ReadUnit::Batch(keys) => self.batch_get(client, keys, projection, &b).await,
        }
    }

    /// BatchGetItem, retrying `UnprocessedKeys` with backoff until every key is answered.
    async fn batch_get(
        &self,
        client: &Client,
        keys: &[Key],
        projection: Option<String>,
        b: &ExpressionBuilder,
    ) -> Result<Page> {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_map).collect()))
            .consistent_read(self.consistent_read)
            .set_projection_expression(projection)
            .set_expression_attribute_names(b.attribute_names())
            .build()
            .map_err(|e| Error::Request {
                operation: "BatchGetItem",
                table: self.table.clone(),
                message: e.to_string(),
            })?;
        let mut page = Page::default();
        for attempt in 0..BATCH_GET_ATTEMPTS {
            let out = client
                .batch_get_item()
                .request_items(&self.table, pending.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| self.request_error("BatchGetItem", &e))?;
            page.requests += 1;
            page.consumed_capacity += out
                .consumed_capacity()
                .iter()
                .filter_map(|c| c.capacity_units())
                .sum::<f64>();
            let mut responses = out.responses.unwrap_or_default();
            let got = responses.remove(&self.table).unwrap_or_default();
            page.scanned_count += got.len() as u64;
            page.items.extend(got);
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    pending = rest;
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
                _ => return Ok(page),
            }
        }
        Err(Error::Request {
            operation: "BatchGetItem",
            table: self.table.clone(),
            message: format!(
                "keys were still unprocessed after {BATCH_GET_ATTEMPTS} attempts (throttled): \
                 lower the query's key count or raise the table's read capacity"
            ),
        })
    }
}
