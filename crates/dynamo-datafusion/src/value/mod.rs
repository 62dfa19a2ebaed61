//! DynamoDB values outside Arrow: exact numbers ([`number`]), DynamoDB's JSON
//! ↔ SDK values ([`dynamo_json`]), lossless JSON text for heterogeneous
//! columns ([`json`]).

pub mod dynamo_json;
pub(crate) mod json;
pub(crate) mod number;
pub(crate) mod wire;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// One DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;
