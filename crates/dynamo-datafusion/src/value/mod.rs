//! DynamoDB values outside Arrow: exact numbers ([`number`]), DynamoDB's JSON
//! ↔ SDK values ([`dynamo_json`]), lossless JSON text for heterogeneous
//! columns ([`json`]).

pub mod dynamo_json;
pub(crate) mod json;
pub(crate) mod number;
pub(crate) mod wire;
