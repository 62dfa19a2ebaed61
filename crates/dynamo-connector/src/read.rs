//! The connector's `scan` and `query`: DynamoDB's own semantics in `inputs`,
//! the connector's exact caps in `config`.
//!
//! - `inputs.limit` is DynamoDB's `Limit`: the items the one request this
//!   answer makes may evaluate, as in DynamoDB's documentation (a filter is
//!   applied after it, so fewer may match). With a `limit` an answer is one
//!   request; without one, requests follow each other until a cap is reached
//!   or the read ends.
//! - `config.maxItems` and `config.maxBytes` bound the items returned exactly:
//!   an answer is cut inside a page, and its `nextToken` resumes right after
//!   the last item returned (its table key, and the index key for an index
//!   read). At least one item is returned, so paging always advances.
//! - `config.maxScanned` bounds the items evaluated exactly: each request's
//!   `Limit` is at most what is left of it (and, without a filter, at most
//!   the items still wanted).
//! - `config.maxCapacity` bounds the read capacity: checked before each
//!   request, and each request's `Limit` sized from what the items read so
//!   far cost (the first from one RCU per 8 items, 4 with strong reads), so
//!   an answer exceeds it by at most what one request's items cost beyond
//!   that estimate.
//!
//! An answer that stopped early says which cap stopped it (`stoppedBy`);
//! `complete` is true only when the read reached its end. Paging with
//! `nextToken` returns every item exactly once, whatever the caps.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use dynamo_datafusion::{
    PageRequest, Retrier, RetryPolicy, TableMeta, describe_table, read_page, without_sdk_retries,
};
use serde_json::{Value, json};

use crate::dynamo_json::{item_from_json, item_to_json};
use crate::error::{ConnectorError, Result, read_error, table_error};
use crate::request::{Limits, ReadOperation, ReadRequest};

type Item = HashMap<String, AttributeValue>;

/// Items one RCU reads before the first page tells the real cost (items of
/// up to 512 bytes; eventually consistent reads read 8 KB per RCU).
const FIRST_GUESS_ITEMS_PER_RCU: f64 = 8.0;

/// What stopped an answer before the read's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Limit,
    MaxItems,
    MaxBytes,
    MaxScanned,
    MaxCapacity,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Limit => "limit",
            Stop::MaxItems => "maxItems",
            Stop::MaxBytes => "maxBytes",
            Stop::MaxScanned => "maxScanned",
            Stop::MaxCapacity => "maxCapacity",
        }
    }
}

/// The key attributes that identify an item of the read: the table's, and
/// the index's when an index is read (what an `ExclusiveStartKey` needs).
async fn key_names(client: &Client, read: &ReadRequest) -> Result<Vec<String>> {
    let meta: TableMeta = describe_table(client, &read.table_name)
        .await
        .map_err(|e| table_error(&read.table_name, e))?;
    let mut names: Vec<String> = meta.keys.attribute_names().map(str::to_string).collect();
    if let Some(index) = &read.index_name {
        let ix = meta
            .indexes
            .iter()
            .find(|i| &i.name == index)
            .ok_or_else(|| {
                ConnectorError::new(
                    crate::error::ErrorCode::TableNotFound,
                    format!("table '{}' has no index '{index}'", read.table_name),
                )
            })?;
        for k in ix.keys.attribute_names() {
            if !names.iter().any(|n| n == k) {
                names.push(k.to_string());
            }
        }
    }
    Ok(names)
}

/// The read as sent: the caller's projection, plus the key attributes it
/// lacks (so an answer can be cut after any item); those are not returned.
struct Shape {
    projection: Option<String>,
    names: HashMap<String, String>,
    /// Attributes added to the projection, removed from returned items.
    added: Vec<String>,
    /// Key attribute names, once known.
    keys: Option<Vec<String>>,
}

async fn shape(client: &Client, read: &ReadRequest) -> Result<Shape> {
    let mut shape = Shape {
        projection: read.projection.clone(),
        names: read.names.clone(),
        added: Vec::new(),
        keys: None,
    };
    let Some(projection) = &read.projection else {
        // Whole items: the keys are in every item; they are looked up only
        // if an answer is cut.
        return Ok(shape);
    };
    let keys = key_names(client, read).await?;
    let mut text = projection.clone();
    for (i, key) in keys.iter().enumerate() {
        if projects(projection, &read.names, key) {
            continue;
        }
        let placeholder = format!("#connectorKey{i}");
        text.push_str(&format!(", {placeholder}"));
        shape.names.insert(placeholder, key.clone());
        shape.added.push(key.clone());
    }
    shape.projection = Some(text);
    shape.keys = Some(keys);
    Ok(shape)
}

/// True when `projection` names the top-level attribute `attr` (directly or
/// through a `#name` placeholder).
fn projects(projection: &str, names: &HashMap<String, String>, attr: &str) -> bool {
    projection.split(',').any(|path| {
        let top = path.trim().split(['.', '[']).next().unwrap_or_default();
        top == attr || names.get(top).is_some_and(|n| n == attr)
    })
}

/// The `ExclusiveStartKey` that resumes right after `item`.
fn key_of(item: &Item, keys: &[String]) -> Result<Item> {
    keys.iter()
        .map(|k| {
            item.get(k).map(|v| (k.clone(), v.clone())).ok_or_else(|| {
                ConnectorError::internal(format!("an item lacks key attribute '{k}'"))
            })
        })
        .collect()
}

/// Runs a `scan` or `query` under `limits`.
pub(crate) async fn run_read(client: &Client, read: &ReadRequest, limits: Limits) -> Result<Value> {
    let mut start = read
        .next_token
        .as_deref()
        .map(|t| decode_token(read, t))
        .transpose()?;
    let client = &without_sdk_retries(client);
    let shape = shape(client, read).await?;
    let values = (!read.values.is_empty()).then(|| read.values.clone());
    // One budget for the whole answer; each page is retried from its own start key.
    let retrier = Retrier::new(RetryPolicy::default());
    let mut items: Vec<Value> = Vec::new();
    let mut last_item: Option<Item> = None;
    let (mut bytes, mut scanned, mut capacity) = (0usize, 0u64, 0f64);
    let mut stop: Option<Stop> = None;
    loop {
        let mut limit = read.limit.map(|l| l as u64);
        let scanned_left = (limits.max_scanned as u64).saturating_sub(scanned);
        limit = Some(limit.map_or(scanned_left, |l| l.min(scanned_left)));
        if read.filter_expression.is_none() {
            // Every item evaluated is returned: read no more than fit.
            let items_left = (limits.max_items.saturating_sub(items.len())).max(1) as u64;
            limit = limit.map(|l| l.min(items_left));
        }
        if let Some(max) = limits.max_capacity {
            let left = max - capacity;
            let per_item = if scanned > 0 && capacity > 0.0 {
                capacity / scanned as f64
            } else if read.consistent_read {
                2.0 / FIRST_GUESS_ITEMS_PER_RCU
            } else {
                1.0 / FIRST_GUESS_ITEMS_PER_RCU
            };
            let affordable = ((left / per_item).floor() as u64).max(1);
            limit = limit.map(|l| l.min(affordable));
        }
        let page = send(
            client,
            read,
            &shape,
            values.clone(),
            &retrier,
            limit,
            start.take(),
        )
        .await?;
        scanned += page.scanned_count;
        capacity += page.consumed_capacity;
        let mut cut = None;
        for item in page.items {
            if items.len() >= limits.max_items {
                cut = Some(Stop::MaxItems);
                break;
            }
            let mut shown = item_to_json(&item);
            for added in &shape.added {
                shown.remove(added);
            }
            let v = Value::Object(shown);
            let size = v.to_string().len();
            if !items.is_empty() && bytes + size > limits.max_bytes {
                cut = Some(Stop::MaxBytes);
                break;
            }
            bytes += size;
            items.push(v);
            last_item = Some(item);
        }
        if let Some(why) = cut {
            // Resume right after the last item returned.
            let fetched;
            let keys = match &shape.keys {
                Some(k) => k,
                None => {
                    fetched = key_names(client, read).await?;
                    &fetched
                }
            };
            let last = last_item.as_ref().ok_or_else(|| {
                ConnectorError::internal("an answer was cut before its first item")
            })?;
            start = Some(key_of(last, keys)?);
            stop = Some(why);
            break;
        }
        start = page.next;
        if start.is_none() {
            break;
        }
        stop = if read.limit.is_some() {
            Some(Stop::Limit)
        } else if scanned >= limits.max_scanned as u64 {
            Some(Stop::MaxScanned)
        } else if limits.max_capacity.is_some_and(|max| capacity >= max) {
            Some(Stop::MaxCapacity)
        } else if items.len() >= limits.max_items {
            Some(Stop::MaxItems)
        } else if bytes >= limits.max_bytes {
            Some(Stop::MaxBytes)
        } else {
            None
        };
        if stop.is_some() {
            break;
        }
    }
    Ok(json!({
        "items": items,
        "count": items.len(),
        "scannedCount": scanned,
        "consumedCapacity": capacity,
        "nextToken": start.map(|k| encode_token(read, &k)),
        "complete": stop.is_none(),
        "stoppedBy": stop.map(Stop::name),
    }))
}

/// One Scan or Query request, through the library's read loop (its
/// retries, error kinds and give-up).
async fn send(
    client: &Client,
    read: &ReadRequest,
    shape: &Shape,
    values: Option<HashMap<String, AttributeValue>>,
    retrier: &Retrier,
    limit: Option<u64>,
    start: Option<Item>,
) -> Result<dynamo_datafusion::Page> {
    let request = PageRequest {
        table: read.table_name.clone(),
        index: read.index_name.clone(),
        key_condition: match read.operation {
            ReadOperation::Scan => None,
            ReadOperation::Query => read.key_condition.clone(),
        },
        scan_forward: read.scan_index_forward,
        segment: None,
        projection: shape.projection.clone(),
        filter: read.filter_expression.clone(),
        names: (!shape.names.is_empty()).then(|| shape.names.clone()),
        values,
        consistent_read: read.consistent_read,
        limit: limit.map(|l| l.clamp(1, i32::MAX as u64) as i32),
        start,
    };
    read_page(client, &request, retrier)
        .await
        .map_err(read_error)
}

/// `nextToken`: where to continue, bound to the table and index it came from.
fn encode_token(read: &ReadRequest, key: &Item) -> String {
    let token = json!({"v": 1, "table": read.table_name, "index": read.index_name, "key": item_to_json(key)});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_token(read: &ReadRequest, token: &str) -> Result<Item> {
    let bad = || ConnectorError::invalid("inputs.nextToken is not a token this connector issued");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if v["table"].as_str() != Some(read.table_name.as_str())
        || v["index"].as_str() != read.index_name.as_deref()
    {
        return Err(ConnectorError::invalid(
            "inputs.nextToken belongs to a read of another table or index: send the same tableName and indexName",
        ));
    }
    let key = v["key"].as_object().ok_or_else(bad)?;
    item_from_json(key).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_name_attributes_directly_or_by_placeholder() {
        let names = HashMap::from([("#u".to_string(), "userId".to_string())]);
        assert!(projects("#u, score", &names, "userId"));
        assert!(projects("a.b, score", &names, "a"));
        assert!(projects("list[2], score", &names, "list"));
        assert!(!projects("score", &names, "userId"));
    }

    #[test]
    fn a_cut_resumes_after_the_last_item() {
        let item = HashMap::from([
            ("pk".to_string(), AttributeValue::S("a".into())),
            ("sk".to_string(), AttributeValue::N("3".into())),
            ("other".to_string(), AttributeValue::Bool(true)),
        ]);
        let key = key_of(&item, &["pk".to_string(), "sk".to_string()]).expect("keys");
        assert_eq!(key.len(), 2);
        assert!(key_of(&item, &["missing".to_string()]).is_err());
    }
}
