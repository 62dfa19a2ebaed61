//! The order shards of a DynamoDB stream are read in: a parent before its
//! children, so every item's changes come in the order they happened.
//!
//! A shard lives about four hours, then closes and is split into children
//! (one or two) that take over its keys. A key's records are in order
//! within a shard, and its later records are in a descendant: reading each
//! shard whole, parents first, gives every key its changes in order. A shard
//! whose parent the stream no longer lists (trimmed after 24 hours, or
//! not yet listed in this DescribeStream answer) is a root.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};

/// What the reader needs of a shard from DescribeStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardInfo {
    pub id: String,
    pub parent: Option<String>,
    /// The first sequence number the shard holds.
    pub starting: Option<String>,
    /// Set once the shard is closed: it gets no more records.
    pub ending: Option<String>,
}

impl ShardInfo {
    /// True while the shard can still get records.
    pub fn is_open(&self) -> bool {
        self.ending.is_none()
    }
}

/// Sequence numbers are decimal digit strings of varying length: compared
/// as numbers.
pub(crate) fn cmp_sequence(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `shards` ordered so that every parent comes before its children; among
/// shards ready to be read, the earliest starting sequence number first.
/// Each shard appears once (DescribeStream pages may repeat one).
pub(crate) fn lineage_order(shards: Vec<ShardInfo>) -> Vec<ShardInfo> {
    let mut seen = HashSet::new();
    let shards: Vec<ShardInfo> = shards
        .into_iter()
        .filter(|s| seen.insert(s.id.clone()))
        .collect();
    let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut ready: Vec<usize> = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        match s.parent.as_deref().filter(|p| listed.contains(p)) {
            Some(parent) => children.entry(parent).or_default().push(i),
            None => ready.push(i),
        }
    }
    let by_start = |shards: &[ShardInfo], a: &usize, b: &usize| {
        let start = |i: &usize| shards[*i].starting.clone().unwrap_or_default();
        cmp_sequence(&start(a), &start(b)).then_with(|| shards[*a].id.cmp(&shards[*b].id))
    };
    ready.sort_by(|a, b| by_start(&shards, a, b));
    let mut queue: VecDeque<usize> = ready.into();
    let mut order = Vec::with_capacity(shards.len());
    while let Some(i) = queue.pop_front() {
        order.push(i);
        if let Some(kids) = children.get(shards[i].id.as_str()) {
            let mut kids = kids.clone();
            kids.sort_by(|a, b| by_start(&shards, a, b));
            queue.extend(kids);
        }
    }
    let mut slots: Vec<Option<ShardInfo>> = shards.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, start: &str, open: bool) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parent: parent.map(String::from),
            starting: Some(start.into()),
            ending: (!open).then(|| format!("{start}9")),
        }
    }

    fn ids(order: &[ShardInfo]) -> Vec<&str> {
        order.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn parents_come_before_their_children_whatever_the_listing_order() {
        let order = lineage_order(vec![
            shard("c2", Some("b"), "300", true),
            shard("c1", Some("b"), "250", true),
            shard("b", Some("a"), "200", false),
            shard("a", None, "100", false),
            shard("x", Some("trimmed"), "150", false),
            shard("y", Some("x"), "900", true),
        ]);
        assert_eq!(ids(&order), ["a", "x", "b", "y", "c1", "c2"]);
    }

    #[test]
    fn a_shard_listed_twice_is_read_once() {
        let a = shard("a", None, "1", false);
        let order = lineage_order(vec![a.clone(), shard("b", Some("a"), "2", true), a]);
        assert_eq!(ids(&order), ["a", "b"]);
    }

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert_eq!(cmp_sequence("900", "1000"), Ordering::Less);
        assert_eq!(cmp_sequence("000123", "123"), Ordering::Equal);
        assert_eq!(
            cmp_sequence("21000000000000000000001", "2100000000000000000000"),
            Ordering::Greater
        );
    }
}
