//! The independent pieces a planned read splits into: scan segments, one
//! Query per partition-key value, GetItem keys, BatchGetItem key chunks.
//! Plain data, decided by the planner; `read` executes them.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::Key;

/// Keys per BatchGetItem request (DynamoDB's limit).
pub(crate) const BATCH_GET_MAX_KEYS: usize = 100;

/// One independent piece of a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadUnit {
    /// Scan segment `(segment, total)`; `total == 1` is a plain scan.
    Segment(i32, i32),
    /// Query for one partition-key value.
    Query(#[serde(with = "crate::value::wire::one")] AttributeValue),
    /// GetItem.
    Get(#[serde(with = "crate::value::wire::key")] Key),
    /// BatchGetItem of at most [`BATCH_GET_MAX_KEYS`] keys.
    Batch(#[serde(with = "crate::value::wire::keys")] Vec<Key>),
}
