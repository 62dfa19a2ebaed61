//! DynamoDB values outside Arrow: exact numbers ([`number`]), DynamoDB's JSON
//! ↔ SDK values ([`dynamo_json`]), lossless JSON text for heterogeneous
//! columns ([`json`]), time in strings and numbers ([`time`]).

pub mod dynamo_json;
pub(crate) mod json;
pub(crate) mod number;
pub(crate) mod time;
pub(crate) mod wire;

use std::cmp::Ordering;
use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use number::ExactNumber;

/// One DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Orders two values of the same scalar type as DynamoDB does: numbers by
/// value, strings and binaries by bytes. `None` for other pairs.
pub(crate) fn compare_values(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(
            ExactNumber::parse(x)
                .ok()?
                .cmp(&ExactNumber::parse(y).ok()?),
        ),
        _ => None,
    }
}
