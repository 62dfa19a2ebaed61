//! One item's write (PutItem, UpdateItem, DeleteItem), a BatchWriteItem of
//! puts, and a TransactWriteItems of up to 100 writes — each sent, retried
//! and judged here.
//!
//! A write retried after a failure that may have been applied (the
//! connection broke after the request was sent, a 5xx) can meet its own
//! earlier success: the condition then fails. Such a write is judged by what
//! DynamoDB returns with the failed condition (the item as it is): an insert
//! that finds exactly its own item, an update that finds its new values, a
//! delete that finds the item gone, were applied by the earlier attempt —
//! counted once, never reported as a conflict and never written twice.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, Delete, Put, PutRequest, ReturnConsumedCapacity,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
};

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;

use crate::error::{Error, ErrorKind, describe_sdk_error};
use crate::plan::predicate::Cond;
use crate::plan::render::ExpressionBuilder;
use crate::read::retry::{Retrier, Retryable};
use crate::value::Item;
use crate::value::number::ExactNumber;

/// What an UPDATE or DELETE re-checks when it writes: the item still
/// exists and still matches what the read saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recheck {
    /// The WHERE's part DynamoDB can evaluate (a superset of the rows it
    /// matches), shared by every item of the statement.
    pub cond: Option<Arc<Cond>>,
    /// Attributes the new values were computed from, with the values read
    /// (`None`: missing or NULL): an item changed in between is not clobbered.
    pub guards: Vec<(String, Option<AttributeValue>)>,
}

/// One item's write.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A new item (`if_new`: only when no item has its key), or a
    /// replacement of whatever item has its key.
    Put { item: Item, if_new: bool },
    /// New values for some attributes (`None`: removed) of an existing item.
    Update {
        key: Item,
        set: Vec<(String, Option<AttributeValue>)>,
        recheck: Recheck,
    },
    /// Removes an existing item.
    Delete { key: Item, recheck: Recheck },
}

/// What one op did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Done {
    /// The item was written (or deleted).
    pub applied: bool,
    /// Write capacity consumed, as DynamoDB reported it (or estimated).
    pub wcu: f64,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Of these, retries.
    pub retries: u64,
}

impl Done {
    /// Counts a retry and waits its backoff.
    async fn wait_to_retry(&mut self, retrier: &Retrier, attempt: u32) {
        self.retries += 1;
        retrier.back_off(attempt).await;
    }
}

/// Why an op or batch failed for good.
#[derive(Debug)]
pub(crate) enum OpError {
    /// An INSERT met an item with its key that it did not write.
    Exists { wcu: f64, requests: u64 },
    /// DynamoDB refused or kept failing the write.
    Failed { error: Error, requests: u64 },
}

/// How a failed call failed.
#[derive(Debug)]
struct Failure {
    class: Retryable,
    kind: ErrorKind,
    code: Option<String>,
    message: String,
    /// The item as it is, when a condition failed (and DynamoDB returned it).
    current: Option<Item>,
}

impl Failure {
    fn of<E>(e: &SdkError<E, HttpResponse>, current: Option<Item>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let kind = crate::read::retry::error_kind(e);
        let class = match kind {
            ErrorKind::Throttled => Retryable::Throttled,
            ErrorKind::Transient => Retryable::Transient,
            _ => Retryable::No,
        };
        Self {
            class,
            kind,
            code: e
                .as_service_error()
                .and_then(|s| s.code())
                .map(str::to_string),
            message: describe_sdk_error(e),
            current,
        }
    }

    fn condition_failed(&self) -> bool {
        self.code.as_deref() == Some("ConditionalCheckFailedException")
    }

    /// A failure after which the write may or may not have been applied.
    fn ambiguous(&self) -> bool {
        self.class == Retryable::Transient
    }
}

/// The expressions of one op: condition, update, names and values.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub condition: Option<String>,
    pub update: Option<String>,
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

/// The partition key's name, for `attribute_exists`/`attribute_not_exists`.
fn exists_condition(b: &mut ExpressionBuilder, partition_key: &str, exists: bool) -> String {
    let name = b.name(partition_key);
    if exists {
        format!("attribute_exists({name})")
    } else {
        format!("attribute_not_exists({name})")
    }
}

/// The condition and update expressions of `op`.
pub(crate) fn render(op: &Op, partition_key: &str) -> Rendered {
    let mut b = ExpressionBuilder::default();
    let (condition, update) = match op {
        Op::Put { if_new: false, .. } => (None, None),
        Op::Put { if_new: true, .. } => {
            (Some(exists_condition(&mut b, partition_key, false)), None)
        }
        Op::Update { set, recheck, .. } => {
            let condition = recheck_condition(&mut b, partition_key, recheck);
            let mut sets = Vec::new();
            let mut removes = Vec::new();
            for (name, value) in set {
                let placeholder = b.name(name);
                match value {
                    Some(v) => {
                        let v = b.value(v.clone());
                        sets.push(format!("{placeholder} = {v}"));
                    }
                    None => removes.push(placeholder),
                }
            }
            let mut update = Vec::new();
            if !sets.is_empty() {
                update.push(format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                update.push(format!("REMOVE {}", removes.join(", ")));
            }
            (
                Some(condition),
                (!update.is_empty()).then(|| update.join(" ")),
            )
        }
        Op::Delete { recheck, .. } => (
            Some(recheck_condition(&mut b, partition_key, recheck)),
            None,
        ),
    };
    Rendered {
        condition,
        update,
        names: b.attribute_names(),
        values: b.attribute_values(),
    }
}

/// DynamoDB's limit on operators and functions in one condition.
const MAX_OPERATORS: usize = 300;

fn recheck_condition(b: &mut ExpressionBuilder, partition_key: &str, recheck: &Recheck) -> String {
    let mut parts = vec![exists_condition(b, partition_key, true)];
    for (name, value) in &recheck.guards {
        let n = b.name(name);
        parts.push(match value {
            Some(v) => {
                let v = b.value(v.clone());
                format!("{n} = {v}")
            }
            None => {
                let null = b.value(AttributeValue::S("NULL".into()));
                format!("(attribute_not_exists({n}) OR attribute_type({n}, {null}))")
            }
        });
    }
    if let Some(cond) = &recheck.cond {
        // A condition too large for one request is left out: the guards and
        // the key still protect the write; the read already matched the WHERE.
        let mut probe = b.clone();
        let mut operators = 0;
        let text = probe.condition(cond, &mut operators);
        if operators + parts.len() * 3 <= MAX_OPERATORS && text.len() <= 2048 {
            *b = probe;
            parts.push(text);
        }
    }
    parts.join(" AND ")
}

/// The key attributes of `item`.
pub(crate) fn key_of(item: &Item, keys: &[(String, crate::metadata::KeyType)]) -> Item {
    keys.iter()
        .filter_map(|(k, _)| item.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// True when two values are the same DynamoDB value (numbers by value, sets
/// in any order).
pub(crate) fn same_value(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    let num = |x: &str, y: &str| match (ExactNumber::parse(x), ExactNumber::parse(y)) {
        (Ok(x), Ok(y)) => x == y,
        _ => x == y,
    };
    match (a, b) {
        (V::N(x), V::N(y)) => num(x, y),
        (V::Ss(x), V::Ss(y)) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            x.sort();
            y.sort();
            x == y
        }
        (V::Bs(x), V::Bs(y)) => {
            let mut x: Vec<&[u8]> = x.iter().map(|b| b.as_ref()).collect();
            let mut y: Vec<&[u8]> = y.iter().map(|b| b.as_ref()).collect();
            x.sort();
            y.sort();
            x == y
        }
        (V::Ns(x), V::Ns(y)) => x.len() == y.len() && x.iter().all(|n| y.iter().any(|m| num(n, m))),
        (V::L(x), V::L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (V::M(x), V::M(y)) => same_item(x, y),
        _ => a == b,
    }
}

/// True when two items hold the same attributes with the same values.
pub(crate) fn same_item(a: &Item, b: &Item) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| same_value(v, w)))
}

/// Sends one item's write, retrying passing failures; judges a failed
/// condition after an ambiguous attempt by the item as it is (see the module
/// documentation).
pub(crate) async fn send_op(
    client: &Client,
    table: &str,
    partition_key: &str,
    op: &Op,
    retrier: &Retrier,
) -> Result<Done, OpError> {
    let rendered = render(op, partition_key);
    let mut done = Done::default();
    let mut ambiguous_before = false;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        done.requests += 1;
        let result = call(client, table, op, &rendered).await;
        let failure = match result {
            Ok(consumed) => {
                done.wcu += consumed;
                done.applied = true;
                return Ok(done);
            }
            Err(f) => f,
        };
        if failure.condition_failed() {
            // A failed condition is billed like a write.
            done.wcu += 1.0;
            let ours = ambiguous_before && applied_already(op, failure.current.as_ref());
            return match op {
                _ if ours => {
                    done.applied = true;
                    Ok(done)
                }
                Op::Put { .. } => Err(OpError::Exists {
                    wcu: done.wcu,
                    requests: done.requests,
                }),
                // The item is gone or no longer matches: skipped.
                Op::Update { .. } | Op::Delete { .. } => Ok(done),
            };
        }
        ambiguous_before |= failure.ambiguous();
        if !retrier.may_retry(failure.class, attempt) {
            return Err(OpError::Failed {
                error: op_error(table, op_name(op), &failure, attempt),
                requests: done.requests,
            });
        }
        done.wait_to_retry(retrier, attempt).await;
    }
}

/// True when the item as it is shows this op's own effect.
fn applied_already(op: &Op, current: Option<&Item>) -> bool {
    match (op, current) {
        (Op::Put { item, .. }, Some(current)) => same_item(item, current),
        (Op::Update { set, .. }, Some(current)) => {
            set.iter()
                .all(|(name, value)| match (value, current.get(name)) {
                    (Some(v), Some(c)) => same_value(v, c),
                    (None, None) => true,
                    _ => false,
                })
        }
        (Op::Delete { .. }, None) => true,
        _ => false,
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Put { .. } => "PutItem",
        Op::Update { .. } => "UpdateItem",
        Op::Delete { .. } => "DeleteItem",
    }
}

/// The error of a write given up on.
fn op_error(table: &str, operation: &'static str, f: &Failure, attempts: u32) -> Error {
    if f.kind == ErrorKind::Throttled {
        return Error::Throttled {
            operation,
            table: table.to_string(),
            why: format!("{attempts} attempts"),
            message: f.message.clone(),
            attempts,
        };
    }
    Error::Request {
        operation,
        table: table.to_string(),
        kind: f.kind,
        message: f.message.clone(),
        gave_up: (attempts > 1).then(|| format!("{attempts} attempts failed")),
        attempts,
    }
}

fn units(c: Option<&ConsumedCapacity>) -> Option<f64> {
    c.and_then(ConsumedCapacity::capacity_units)
}

/// One request of `op`: the capacity it consumed, or how it failed.
async fn call(client: &Client, table: &str, op: &Op, r: &Rendered) -> Result<f64, Failure> {
    let old = ReturnValuesOnConditionCheckFailure::AllOld;
    let total = ReturnConsumedCapacity::Total;
    match op {
        Op::Put { item, .. } => client
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .set_condition_expression(r.condition.clone())
            .set_expression_attribute_names(r.names.clone())
            .set_expression_attribute_values(r.values.clone())
            .return_values_on_condition_check_failure(old)
            .return_consumed_capacity(total)
            .send()
            .await
            .map(|out| {
                units(out.consumed_capacity()).unwrap_or_else(|| super::encode::write_units(item))
            })
            .map_err(write_failure),
        Op::Update { key, .. } => client
            .update_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .set_condition_expression(r.condition.clone())
            .set_update_expression(r.update.clone())
            .set_expression_attribute_names(r.names.clone())
            .set_expression_attribute_values(r.values.clone())
            .return_values_on_condition_check_failure(old)
            .return_consumed_capacity(total)
            .send()
            .await
            .map(|out| units(out.consumed_capacity()).unwrap_or(1.0))
            .map_err(write_failure),
        Op::Delete { key, .. } => client
            .delete_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .set_condition_expression(r.condition.clone())
            .set_expression_attribute_names(r.names.clone())
            .set_expression_attribute_values(r.values.clone())
            .return_values_on_condition_check_failure(old)
            .return_consumed_capacity(total)
            .send()
            .await
            .map(|out| units(out.consumed_capacity()).unwrap_or(1.0))
            .map_err(write_failure),
    }
}

/// How a single-item write failed, with the item as it is when its
/// condition failed (DynamoDB returns it: `ALL_OLD`).
fn write_failure<E>(e: SdkError<E, HttpResponse>) -> Failure
where
    E: ConditionFailure + ProvideErrorMetadata + std::error::Error + 'static,
{
    let current = e
        .as_service_error()
        .and_then(|s| s.condition_failed())
        .and_then(|c| c.item().cloned());
    Failure::of(&e, current)
}

/// The single-item write errors that carry a failed condition.
trait ConditionFailure {
    fn condition_failed(&self) -> Option<&ConditionalCheckFailedException>;
}

impl ConditionFailure for PutItemError {
    fn condition_failed(&self) -> Option<&ConditionalCheckFailedException> {
        match self {
            PutItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        }
    }
}

impl ConditionFailure for UpdateItemError {
    fn condition_failed(&self) -> Option<&ConditionalCheckFailedException> {
        match self {
            UpdateItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        }
    }
}

impl ConditionFailure for DeleteItemError {
    fn condition_failed(&self) -> Option<&ConditionalCheckFailedException> {
        match self {
            DeleteItemError::ConditionalCheckFailedException(c) => Some(c),
            _ => None,
        }
    }
}

/// BatchWriteItem of up to 25 puts, resending what DynamoDB leaves
/// unprocessed (after a backoff) until all are written: every item is
/// written or the error says the batch failed. Puts are idempotent, so a
/// resend after an ambiguous failure writes nothing twice.
pub(crate) async fn send_batch(
    client: &Client,
    table: &str,
    items: Vec<Item>,
    retrier: &Retrier,
) -> Result<Done, OpError> {
    let mut done = Done::default();
    let mut pending: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| OpError::Failed {
            error: Error::InvalidOption {
                key: "write".into(),
                reason: format!("building a BatchWriteItem request: {e}"),
            },
            requests: 0,
        })?;
    let total = pending.len() as u64;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        done.requests += 1;
        let result = client
            .batch_write_item()
            .request_items(table, pending.clone())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let class = match result {
            Ok(out) => {
                done.wcu += out
                    .consumed_capacity()
                    .iter()
                    .filter_map(|c| c.capacity_units())
                    .sum::<f64>();
                let left: Vec<WriteRequest> = out
                    .unprocessed_items()
                    .and_then(|m| m.get(table))
                    .cloned()
                    .unwrap_or_default();
                if left.is_empty() {
                    done.applied = true;
                    return Ok(done);
                }
                pending = left;
                // Unprocessed items are DynamoDB's way of throttling a batch.
                Retryable::Throttled
            }
            Err(e) => {
                let failure = Failure::of(&e, None);
                if !retrier.may_retry(failure.class, attempt) {
                    return Err(OpError::Failed {
                        error: op_error(table, "BatchWriteItem", &failure, attempt),
                        requests: done.requests,
                    });
                }
                done.wait_to_retry(retrier, attempt).await;
                continue;
            }
        };
        if !retrier.may_retry(class, attempt) {
            let written = total - pending.len() as u64;
            return Err(OpError::Failed {
                error: Error::Throttled {
                    operation: "BatchWriteItem",
                    table: table.to_string(),
                    why: format!(
                        "{attempt} attempts; {} of a batch of {total} items still unprocessed \
                         ({written} of it written)",
                        pending.len()
                    ),
                    message: "UnprocessedItems".into(),
                    attempts: attempt,
                },
                requests: done.requests,
            });
        }
        done.wait_to_retry(retrier, attempt).await;
    }
}

/// Why a transaction was refused.
#[derive(Debug)]
pub(crate) enum TransactionError {
    /// A condition failed on `ops[index]`: nothing was written.
    Condition { index: usize, current: Option<Item> },
    /// DynamoDB refused or kept failing the transaction: nothing was written.
    Failed(Error),
}

/// TransactWriteItems of `ops` (at most 100), all or nothing, with one
/// idempotency token: a resend after an ambiguous failure is not applied twice.
pub(crate) async fn send_transaction(
    client: &Client,
    table: &str,
    partition_key: &str,
    ops: &[Op],
    token: &str,
    retrier: &Retrier,
) -> Result<Done, TransactionError> {
    let items = ops
        .iter()
        .map(|op| transact_item(table, partition_key, op))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|reason| {
            TransactionError::Failed(Error::InvalidOption {
                key: "write_mode".into(),
                reason,
            })
        })?;
    let mut done = Done::default();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        done.requests += 1;
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let e = match result {
            Ok(out) => {
                done.wcu += out
                    .consumed_capacity()
                    .iter()
                    .filter_map(|c| c.capacity_units())
                    .sum::<f64>();
                done.applied = true;
                return Ok(done);
            }
            Err(e) => e,
        };
        let reasons: Vec<(Option<String>, Option<Item>)> = e
            .as_service_error()
            .and_then(|s| match s {
                TransactWriteItemsError::TransactionCanceledException(t) => Some(t),
                _ => None,
            })
            .map(|t| {
                t.cancellation_reasons()
                    .iter()
                    .map(|r| (r.code().map(str::to_string), r.item().cloned()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(index) = reasons
            .iter()
            .position(|(code, _)| code.as_deref() == Some("ConditionalCheckFailed"))
        {
            return Err(TransactionError::Condition {
                index,
                current: reasons[index].1.clone(),
            });
        }
        let mut failure = Failure::of(&e, None);
        // A conflict with another transaction, or throttling of one of its
        // items: nothing was applied, the same token may be sent again.
        if reasons.iter().any(|(code, _)| {
            matches!(
                code.as_deref(),
                Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
            )
        }) {
            failure.class = Retryable::Throttled;
            failure.kind = ErrorKind::Throttled;
        }
        if !retrier.may_retry(failure.class, attempt) {
            return Err(TransactionError::Failed(op_error(
                table,
                "TransactWriteItems",
                &failure,
                attempt,
            )));
        }
        done.wait_to_retry(retrier, attempt).await;
    }
}

fn transact_item(table: &str, partition_key: &str, op: &Op) -> Result<TransactWriteItem, String> {
    let r = render(op, partition_key);
    let old = ReturnValuesOnConditionCheckFailure::AllOld;
    let item = match op {
        Op::Put { item, .. } => TransactWriteItem::builder().put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item.clone()))
                .set_condition_expression(r.condition)
                .set_expression_attribute_names(r.names)
                .set_expression_attribute_values(r.values)
                .return_values_on_condition_check_failure(old)
                .build()
                .map_err(|e| e.to_string())?,
        ),
        Op::Update { key, .. } => TransactWriteItem::builder().update(
            Update::builder()
                .table_name(table)
                .set_key(Some(key.clone()))
                .set_condition_expression(r.condition)
                .set_update_expression(r.update)
                .set_expression_attribute_names(r.names)
                .set_expression_attribute_values(r.values)
                .return_values_on_condition_check_failure(old)
                .build()
                .map_err(|e| e.to_string())?,
        ),
        Op::Delete { key, .. } => TransactWriteItem::builder().delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key.clone()))
                .set_condition_expression(r.condition)
                .set_expression_attribute_names(r.names)
                .set_expression_attribute_values(r.values)
                .return_values_on_condition_check_failure(old)
                .build()
                .map_err(|e| e.to_string())?,
        ),
    };
    Ok(item.build())
}

/// The key of an op.
pub(crate) fn op_key(op: &Op, keys: &[(String, crate::metadata::KeyType)]) -> Item {
    match op {
        Op::Put { item, .. } => key_of(item, keys),
        Op::Update { key, .. } | Op::Delete { key, .. } => key.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn an_update_sets_and_removes_under_its_recheck() {
        let op = Op::Update {
            key: Item::from([("pk".to_string(), s("a"))]),
            set: vec![("x".into(), Some(s("1"))), ("y".into(), None)],
            recheck: Recheck {
                cond: None,
                guards: vec![("x".into(), Some(s("0"))), ("z".into(), None)],
            },
        };
        let r = render(&op, "pk");
        assert_eq!(
            r.condition.as_deref(),
            Some(
                "attribute_exists(#n0) AND #n1 = :v0 AND (attribute_not_exists(#n2) OR \
                 attribute_type(#n2, :v1))"
            )
        );
        assert_eq!(r.update.as_deref(), Some("SET #n1 = :v2 REMOVE #n3"));
        let names = r.names.expect("names");
        assert_eq!(names["#n3"], "y");
        assert_eq!(r.values.expect("values")[":v1"], s("NULL"));
    }

    #[test]
    fn inserts_write_only_new_keys_and_replaces_anything() {
        let item = Item::from([("pk".to_string(), s("a"))]);
        let insert = render(
            &Op::Put {
                item: item.clone(),
                if_new: true,
            },
            "pk",
        );
        assert_eq!(
            insert.condition.as_deref(),
            Some("attribute_not_exists(#n0)")
        );
        let replace = render(
            &Op::Put {
                item,
                if_new: false,
            },
            "pk",
        );
        assert!(replace.condition.is_none() && replace.names.is_none());
    }

    #[test]
    fn values_compare_as_dynamodb_compares_them() {
        assert!(same_value(
            &AttributeValue::N("1.50".into()),
            &AttributeValue::N("1.5".into())
        ));
        assert!(same_value(
            &AttributeValue::Ss(vec!["b".into(), "a".into()]),
            &AttributeValue::Ss(vec!["a".into(), "b".into()])
        ));
        assert!(!same_value(&s("1"), &AttributeValue::N("1".into())));
    }

    #[test]
    fn a_retried_write_recognises_its_own_success() {
        let item = Item::from([("pk".to_string(), s("a")), ("v".to_string(), s("x"))]);
        let put = Op::Put {
            item: item.clone(),
            if_new: true,
        };
        assert!(applied_already(&put, Some(&item)));
        let mut other = item.clone();
        other.insert("v".into(), s("y"));
        assert!(!applied_already(&put, Some(&other)));
        let delete = Op::Delete {
            key: Item::from([("pk".to_string(), s("a"))]),
            recheck: Recheck::default(),
        };
        assert!(applied_already(&delete, None));
        assert!(!applied_already(&delete, Some(&item)));
    }
}
