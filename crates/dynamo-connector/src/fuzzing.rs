//! Checks the fuzz targets run (`fuzz/`) and the corpus replay in the test
//! suite: each takes arbitrary bytes and panics only when an invariant breaks.
//! Not part of the supported API.

use crate::dynamo_json::{item_from_json, item_to_json};
use crate::error::ErrorCode;
use crate::request::parse_request;

pub use dynamo_datafusion::fuzzing::check_render;

/// A request body: parsed and validated, or refused as `invalid_request` with a
/// message; never a panic.
pub fn check_request(data: &[u8]) {
    if let Err(e) = parse_request(data) {
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
        assert!(!e.message.is_empty());
    }
}

/// A DynamoDB-JSON item: converted to SDK values (or refused), written back to
/// the same JSON, and decoded into Arrow under several schemas.
pub fn check_decode(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        dynamo_datafusion::fuzzing::check_decode_json(text);
        dynamo_datafusion::fuzzing::check_decode_json(&format!("[{text}]"));
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(data) else {
        return;
    };
    let item = match item_from_json(&object) {
        Ok(item) => item,
        Err(message) => {
            assert!(!message.is_empty());
            return;
        }
    };
    // Writing the item back gives values that read back to the same item.
    let again = item_from_json(&item_to_json(&item)).expect("written values read back");
    assert_eq!(again, item, "round trip");
    dynamo_datafusion::fuzzing::check_decode(&item);
}
