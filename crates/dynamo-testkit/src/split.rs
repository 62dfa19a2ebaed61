//! A stream seen as two shards: the fault proxy can present a table's one
//! open DynamoDB Local shard as a closed parent (its records up to a
//! sequence number) and an open child (the records after it) — the shard
//! lineage a real stream has after a shard rolls over, which DynamoDB
//! Local does not do by itself. DescribeStream lists the child first, so a
//! reader that does not order shards by lineage reads them out of order.

use std::collections::HashMap;

use serde_json::{Value, json};

/// Which shard an iterator the proxy handed out reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Parent,
    Child,
}

/// The split: the real shard, the sequence number it splits at, and the
/// iterators handed out for each side.
#[derive(Debug)]
pub(crate) struct Split {
    /// The sequence number of the parent's last record.
    at: String,
    /// The real shard (learnt from the first DescribeStream answer).
    real: Option<String>,
    iterators: HashMap<String, Role>,
}

/// The child shard's id.
pub(crate) const CHILD: &str = "shardId-00000000000000000000-splitchild";

/// Sequence numbers compare as the decimal numbers they are.
fn after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

impl Split {
    pub(crate) fn new(at: &str) -> Self {
        Self {
            at: at.to_string(),
            real: None,
            iterators: HashMap::new(),
        }
    }

    /// The request to send instead of `body` (`None`: send it as it is).
    pub(crate) fn request(&mut self, target: &str, body: &[u8]) -> Option<Vec<u8>> {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        if target.ends_with(".GetShardIterator") {
            let shard = value.get("ShardId")?.as_str()?.to_string();
            if shard != CHILD {
                return None;
            }
            let real = self.real.clone()?;
            value["ShardId"] = json!(real);
            if value.get("ShardIteratorType").and_then(Value::as_str) == Some("TRIM_HORIZON") {
                value["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
                value["SequenceNumber"] = json!(self.at);
            }
            return serde_json::to_vec(&value).ok();
        }
        None
    }

    /// The answer to return instead of `body`, for the request `sent`.
    pub(crate) fn answer(&mut self, target: &str, sent: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        let mut value: Value = serde_json::from_slice(body).ok()?;
        let request: Value = serde_json::from_slice(sent).ok()?;
        if target.ends_with(".DescribeStream") {
            let shards = value
                .pointer_mut("/StreamDescription/Shards")?
                .as_array_mut()?;
            let real = shards
                .iter()
                .find(|s| s.get("ParentShardId").is_none())?
                .clone();
            let id = real.get("ShardId")?.as_str()?.to_string();
            self.real = Some(id.clone());
            let mut parent = real.clone();
            parent["SequenceNumberRange"]["EndingSequenceNumber"] = json!(self.at);
            let child = json!({
                "ShardId": CHILD,
                "ParentShardId": id,
                "SequenceNumberRange": {"StartingSequenceNumber": self.at},
            });
            shards.retain(|s| s.get("ShardId") != real.get("ShardId"));
            shards.push(child);
            shards.push(parent);
            return serde_json::to_vec(&value).ok();
        }
        if target.ends_with(".GetShardIterator") {
            let role = if request.get("ShardId").and_then(Value::as_str) == Some(CHILD) {
                Role::Child
            } else {
                Role::Parent
            };
            let iterator = value.get("ShardIterator")?.as_str()?.to_string();
            self.iterators.insert(iterator, role);
            return None;
        }
        if target.ends_with(".GetRecords") {
            let asked = request.get("ShardIterator")?.as_str()?;
            let role = self.iterators.get(asked).copied()?;
            let mut closed = false;
            if role == Role::Parent {
                let records = value.get_mut("Records")?.as_array_mut()?;
                let before = records.len();
                let at = self.at.clone();
                records.retain(|r| {
                    r.pointer("/dynamodb/SequenceNumber")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !after(s, &at))
                });
                // Past its last record, or nothing more: the parent is closed.
                closed = records.len() < before || records.is_empty();
            }
            if closed {
                if let Some(object) = value.as_object_mut() {
                    object.remove("NextShardIterator");
                }
            } else if let Some(next) = value.get("NextShardIterator").and_then(Value::as_str) {
                self.iterators.insert(next.to_string(), role);
            }
            return serde_json::to_vec(&value).ok();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(after("100", "99"));
        assert!(!after("99", "100"));
        assert!(!after("100", "100"));
    }

    #[test]
    fn the_parent_ends_at_the_split_and_the_child_starts_after_it() {
        let mut split = Split::new("200");
        let described = br#"{"StreamDescription":{"Shards":[{"ShardId":"real","SequenceNumberRange":{"StartingSequenceNumber":"100"}}]}}"#;
        let answer = split
            .answer(".DescribeStream", b"{}", described)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&answer);
        let child = text.find(&format!(r#""ShardId":"{CHILD}""#));
        let parent = text.find(r#""ShardId":"real""#);
        assert!(child.is_some() && child < parent, "child first: {text}");
        assert!(text.contains(r#""EndingSequenceNumber":"200""#), "{text}");
        let asked = split
            .request(
                ".GetShardIterator",
                format!(r#"{{"ShardId":"{CHILD}","ShardIteratorType":"TRIM_HORIZON"}}"#).as_bytes(),
            )
            .unwrap_or_default();
        let asked = String::from_utf8_lossy(&asked);
        assert!(
            asked.contains(r#""ShardId":"real""#) && asked.contains(r#""SequenceNumber":"200""#),
            "{asked}"
        );
        split.answer(
            ".GetShardIterator",
            br#"{"ShardId":"real"}"#,
            br#"{"ShardIterator":"p1"}"#,
        );
        let page = br#"{"Records":[{"dynamodb":{"SequenceNumber":"150"}},{"dynamodb":{"SequenceNumber":"250"}}],"NextShardIterator":"p2"}"#;
        let read = split
            .answer(".GetRecords", br#"{"ShardIterator":"p1"}"#, page)
            .unwrap_or_default();
        let read = String::from_utf8_lossy(&read);
        assert!(
            read.contains("150") && !read.contains("250") && !read.contains("NextShardIterator"),
            "{read}"
        );
    }
}
