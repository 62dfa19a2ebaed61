//! The connector's `scan` and `query`: DynamoDB's own semantics in `inputs`,
//! the connector's exact caps in `config`.
//!
//! - `inputs.limit` is DynamoDB's `Limit`: the items the one request this
//!   answer makes may evaluate, as in DynamoDB's documentation (a filter is
//!   applied after it, so fewer may match). With a `limit` an answer is one
//!   request; without one, requests follow each other until a cap is reached
//!   or the read ends.
//! - `config.maxItems` and `config.maxBytes`, when the caller sets them,
//!   bound the items returned exactly: an answer is cut inside a page, and
//!   its `nextToken` resumes right after the last item returned (its table
//!   key, and the index key for an index read) and carries what is left of
//!   the cut page, so the next answer's first request is sent a `Limit` of at
//!   most that remainder: it re-reads no more than the part of the page that
//!   was not returned. At least one item is returned, so paging always
//!   advances. Under `maxItems` requests are sized so that pages are rarely
//!   cut: an answer's first request evaluates at most the items it wants,
//!   and later ones (with a filter) what the answer's share of matches says
//!   fills it.
//! - `config.maxScanned`, when the caller sets it, bounds the items
//!   evaluated exactly: each request's `Limit` is at most what is left of it
//!   (and, without a filter, at most the items still wanted).
//! - Caps left to their defaults end an answer at the end of the first page
//!   that reaches them, and send no `Limit`: a read paged with the defaults
//!   makes the requests DynamoDB's own paging makes, and reads each item once.
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
use dynamo_datafusion::read::{PageRequest, Retrier, read_page, without_sdk_retries};
use dynamo_datafusion::{RetryPolicy, TableMeta, describe_table};
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

/// Where an answer resumes: after `key`, and, when the answer before was
/// cut inside a page, with at most `rest` items of that page left to read.
#[derive(Debug, Clone, PartialEq)]
struct Resume {
    key: Item,
    rest: Option<u64>,
}

/// What one answer has read and returned so far.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    returned: usize,
    scanned: u64,
    capacity: f64,
}

/// DynamoDB's `Limit` for the next request of an answer, or `None` for a
/// whole page. `rest` is what is left of a page the previous answer cut.
fn request_limit(
    read: &ReadRequest,
    limits: &Limits,
    done: Progress,
    rest: Option<u64>,
) -> Option<u64> {
    let mut limit = read.limit.map(u64::from);
    let mut at_most = |n: u64| limit = Some(limit.map_or(n, |l| l.min(n)));
    if let Some(rest) = rest {
        at_most(rest);
    }
    if let Some(max) = limits.max_scanned {
        at_most((max as u64).saturating_sub(done.scanned));
    }
    if let Some(max) = limits.max_items {
        let wanted = max.saturating_sub(done.returned).max(1) as u64;
        if read.filter_expression.is_none() || done.scanned == 0 {
            // Evaluating `wanted` items returns at most `wanted` (all of them
            // without a filter): such a page is never cut.
            at_most(wanted);
        } else if done.returned > 0 {
            // With a filter, as many as this answer's share of matches says
            // fill it: an estimate, so a page it overfills is cut (and its
            // rest read again), but rarely by much.
            let per_match = done.scanned as f64 / done.returned as f64;
            at_most((wanted as f64 * per_match).ceil() as u64);
        }
    }
    if let Some(max) = limits.max_capacity {
        let left = max - done.capacity;
        let per_item = if done.scanned > 0 && done.capacity > 0.0 {
            done.capacity / done.scanned as f64
        } else if read.consistent_read {
            2.0 / FIRST_GUESS_ITEMS_PER_RCU
        } else {
            1.0 / FIRST_GUESS_ITEMS_PER_RCU
        };
        at_most(((left / per_item).floor() as u64).max(1));
    }
    limit
}

/// The cap that ends an answer at a page boundary, if any.
fn stop_after_page(
    read: &ReadRequest,
    limits: &Limits,
    done: Progress,
    bytes: usize,
) -> Option<Stop> {
    if read.limit.is_some() {
        Some(Stop::Limit)
    } else if done.scanned >= limits.scanned() as u64 {
        Some(Stop::MaxScanned)
    } else if limits.max_capacity.is_some_and(|max| done.capacity >= max) {
        Some(Stop::MaxCapacity)
    } else if done.returned >= limits.items() {
        Some(Stop::MaxItems)
    } else if bytes >= limits.bytes() {
        Some(Stop::MaxBytes)
    } else {
        None
    }
}

/// Runs a `scan` or `query` under `limits`.
pub(crate) async fn run_read(client: &Client, read: &ReadRequest, limits: Limits) -> Result<Value> {
    let resume = read
        .next_token
        .as_deref()
        .map(|t| decode_token(read, t))
        .transpose()?;
    let (mut start, mut rest) = match resume {
        Some(r) => (Some(r.key), r.rest),
        None => (None, None),
    };
    let client = &without_sdk_retries(client);
    let shape = shape(client, read).await?;
    let values = (!read.values.is_empty()).then(|| read.values.clone());
    // One budget for the whole answer; each page is retried from its own start key.
    let retrier = Retrier::new(RetryPolicy::default());
    let mut items: Vec<Value> = Vec::new();
    let mut done = Progress::default();
    let mut bytes = 0usize;
    let mut stop: Option<Stop> = None;
    loop {
        let limit = request_limit(read, &limits, done, rest.take());
        let page_start = start.take();
        let page = send(
            client,
            read,
            &shape,
            values.clone(),
            &retrier,
            limit,
            page_start.clone(),
        )
        .await?;
        done.scanned += page.scanned_count;
        done.capacity += page.consumed_capacity;
        let page_scanned = page.scanned_count;
        // Only the caller's own caps cut inside a page.
        let mut cut = None;
        let mut taken: Option<Item> = None;
        let mut taken_count = 0u64;
        for item in page.items {
            if limits.max_items.is_some_and(|max| items.len() >= max) {
                cut = Some(Stop::MaxItems);
                break;
            }
            let mut shown = item_to_json(&item);
            for added in &shape.added {
                shown.remove(added);
            }
            let v = Value::Object(shown);
            let size = v.to_string().len();
            if limits
                .max_bytes
                .is_some_and(|max| !items.is_empty() && bytes + size > max)
            {
                cut = Some(Stop::MaxBytes);
                break;
            }
            bytes += size;
            items.push(v);
            taken = Some(item);
            taken_count += 1;
        }
        done.returned = items.len();
        if let Some(why) = cut {
            start = Some(match taken {
                // Resume right after the last item returned.
                Some(last) => {
                    let fetched;
                    let keys = match &shape.keys {
                        Some(k) => k,
                        None => {
                            fetched = key_names(client, read).await?;
                            &fetched
                        }
                    };
                    key_of(&last, keys)?
                }
                // Nothing of this page fit: it is read again from its start
                // (a later page of this answer, so it has one).
                None => page_start.ok_or_else(|| {
                    ConnectorError::internal("an answer was cut before its first item")
                })?,
            });
            // At least `taken_count` of the page's items were evaluated up to
            // the cut (more when a filter dropped some): the rest is at most
            // the remainder, and at least one item (one was not taken).
            rest = Some(page_scanned.saturating_sub(taken_count).max(1));
            stop = Some(why);
            break;
        }
        start = page.next;
        if start.is_none() {
            break;
        }
        stop = stop_after_page(read, &limits, done, bytes);
        if stop.is_some() {
            break;
        }
    }
    Ok(json!({
        "items": items,
        "count": items.len(),
        "scannedCount": done.scanned,
        "consumedCapacity": done.capacity,
        "nextToken": start.map(|key| encode_token(read, &Resume { key, rest })),
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
) -> Result<dynamo_datafusion::read::Page> {
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
fn encode_token(read: &ReadRequest, resume: &Resume) -> String {
    let mut token = json!({"v": 1, "table": read.table_name, "index": read.index_name, "key": item_to_json(&resume.key)});
    if let Some(rest) = resume.rest {
        token["rest"] = json!(rest);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_token(read: &ReadRequest, token: &str) -> Result<Resume> {
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
    let rest = match v.get("rest") {
        None => None,
        Some(r) => Some(r.as_u64().filter(|n| *n >= 1).ok_or_else(bad)?),
    };
    Ok(Resume {
        key: item_from_json(key).map_err(|_| bad())?,
        rest,
    })
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

    fn scan(filter: bool) -> ReadRequest {
        ReadRequest {
            table_name: "T".into(),
            operation: ReadOperation::Scan,
            key_condition: None,
            filter_expression: filter.then(|| "a > :v".to_string()),
            values: HashMap::new(),
            names: HashMap::new(),
            projection: None,
            index_name: None,
            limit: None,
            consistent_read: false,
            scan_index_forward: true,
            next_token: None,
        }
    }

    #[test]
    fn default_caps_send_no_limit_and_stop_only_at_a_page_boundary() {
        let none = Progress::default();
        for filter in [false, true] {
            assert_eq!(
                request_limit(&scan(filter), &Limits::default(), none, None),
                None
            );
        }
        let read = scan(true);
        let mut done = Progress {
            returned: 999,
            scanned: 2_000,
            capacity: 10.0,
        };
        assert_eq!(stop_after_page(&read, &Limits::default(), done, 0), None);
        done.returned = 2_300;
        assert_eq!(
            stop_after_page(&read, &Limits::default(), done, 0),
            Some(Stop::MaxItems)
        );
    }

    #[test]
    fn caller_caps_and_a_cut_page_bound_the_limit() {
        let caps = Limits {
            max_items: Some(10),
            max_scanned: Some(50),
            ..Limits::default()
        };
        let done = Progress {
            returned: 4,
            scanned: 20,
            capacity: 0.0,
        };
        // Without a filter every item read is returned: at most 6 more.
        assert_eq!(request_limit(&scan(false), &caps, done, None), Some(6));
        // With a filter, what fills the answer at its share of matches (4
        // in 20: 6 more in 30), what is left of maxScanned, of a cut page.
        assert_eq!(request_limit(&scan(true), &caps, done, None), Some(30));
        let sparse = Progress {
            returned: 1,
            scanned: 5,
            capacity: 0.0,
        };
        assert_eq!(request_limit(&scan(true), &caps, sparse, None), Some(45));
        assert_eq!(request_limit(&scan(true), &caps, done, Some(12)), Some(12));
        // An answer's first request evaluates what it wants at most: its page
        // cannot be cut; with no match yet, a whole page (to maxScanned).
        assert_eq!(
            request_limit(&scan(true), &caps, Progress::default(), None),
            Some(10)
        );
        let none_yet = Progress {
            returned: 0,
            scanned: 20,
            capacity: 0.0,
        };
        assert_eq!(request_limit(&scan(true), &caps, none_yet, None), Some(30));
        // The remainder of a cut page alone, under default caps.
        assert_eq!(
            request_limit(
                &scan(true),
                &Limits::default(),
                Progress::default(),
                Some(7)
            ),
            Some(7)
        );
    }

    #[test]
    fn tokens_carry_the_rest_of_a_cut_page() {
        let read = scan(true);
        let key = HashMap::from([("pk".to_string(), AttributeValue::S("a".into()))]);
        for rest in [None, Some(17)] {
            let resume = Resume {
                key: key.clone(),
                rest,
            };
            let token = encode_token(&read, &resume);
            assert_eq!(decode_token(&read, &token).expect("decodes"), resume);
        }
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"v":1,"table":"T","index":null,"key":{"pk":{"S":"a"}},"rest":0}"#);
        assert!(decode_token(&read, &forged).is_err());
    }
}
