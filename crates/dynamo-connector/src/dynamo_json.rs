//! DynamoDB JSON ↔ SDK values: the provider's own conversion, shared so that
//! requests and answers read and write values exactly as scans decode them.

pub use dynamo_datafusion::dynamo_json::{
    from_dynamo_json, item_from_json, item_to_json, to_dynamo_json,
};
