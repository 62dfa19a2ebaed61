//! What the schema sample shows of a table's key attributes: how many
//! distinct values each partition key took, and how each partition's
//! sort-key values spread, so a Query's size can be estimated before it is
//! sent (`plan::cost`).
//!
//! Pure: items in, counts out. A Scan returns a partition's items one after
//! the other, so the sample holds whole item collections of the table's own
//! partition key (`clustered`): its items per value carry over to the table.
//! An index's partition key is spread over the table, so its distinct values
//! are estimated beyond the sample from how many were seen once and twice
//! (Chao's estimator, bounded by the items that have the attribute).
//!
//! Sort keys are kept per partition (collection), not pooled: a condition
//! on a sort key is judged by the collections whose span it touches, since
//! sort keys often live in each partition's own range (sequential ids)
//! rather than one range shared by all (timestamps). Both are handled alike.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::value::{Item, compare_values};

/// Sort-key values kept per key schema, in whole collections.
const MAX_SORT_VALUES: usize = 4_096;

/// What the sample showed of one partition-key attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyAttributeStats {
    /// Sampled items that have the attribute.
    pub items: u64,
    /// Distinct values among them.
    pub distinct: u64,
    /// Values seen in exactly one sampled item.
    pub once: u64,
    /// Values seen in exactly two sampled items.
    pub twice: u64,
}

/// The sort-key values of sampled collections of one key schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SortKeyStats {
    /// The partition key the collections are grouped by.
    pub partition_key: String,
    /// The sort key.
    pub sort_key: String,
    /// Each sampled collection's sort-key values, ascending.
    #[serde(with = "crate::value::wire::nested")]
    pub collections: Vec<Vec<AttributeValue>>,
}

/// Where a sort-key condition falls, for [`KeyStats::sort_fraction`].
pub(crate) trait SortTest {
    /// True when `v` meets the condition.
    fn accepts(&self, v: &AttributeValue) -> bool;
    /// True when the condition may accept a value in `[low, high]`.
    fn touches(&self, low: &AttributeValue, high: &AttributeValue) -> bool;
    /// Fraction of a span `[low, high]` the condition covers, when it can
    /// be measured (a numeric range); `None` otherwise.
    fn width_share(&self, low: &AttributeValue, high: &AttributeValue) -> Option<f64>;
}

/// What the schema sample showed of the key attributes of a table and its indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyStats {
    /// Items sampled.
    pub sampled: u64,
    /// True when the sample read every item of the table.
    pub complete: bool,
    /// Per partition-key attribute name.
    pub attributes: BTreeMap<String, KeyAttributeStats>,
    /// Per key schema with a sort key.
    pub sort_keys: Vec<SortKeyStats>,
}

impl KeyStats {
    /// Estimated distinct values of `attribute` among the `population`
    /// items that have it; `clustered` when the sample holds whole item
    /// collections of it (the table's partition key). `None` when the
    /// sample never met the attribute.
    pub(crate) fn distinct(
        &self,
        attribute: &str,
        population: u64,
        clustered: bool,
    ) -> Option<f64> {
        let a = self.attributes.get(attribute)?;
        if a.items == 0 || a.distinct == 0 {
            return None;
        }
        let (n, d, big) = (a.items as f64, a.distinct as f64, population as f64);
        let estimate = if clustered {
            // Whole collections: the mean collection size carries over.
            big * d / n
        } else if self.complete {
            d
        } else {
            let (f1, f2) = (a.once as f64, a.twice as f64);
            if f2 > 0.0 {
                d + f1 * f1 / (2.0 * f2)
            } else {
                d + f1 * (f1 - 1.0).max(0.0) / 2.0
            }
        };
        Some(estimate.clamp(d.min(big.max(1.0)), big.max(d)))
    }

    /// The share of one collection of (`partition_key`, `sort_key`) that a
    /// condition reads: the mean share over sampled collections whose span
    /// it touches; when it touches none, the share of a typical span it
    /// covers (numeric ranges), else `None` (no basis).
    pub(crate) fn sort_fraction(
        &self,
        partition_key: &str,
        sort_key: &str,
        test: &dyn SortTest,
    ) -> Option<f64> {
        let stats = self
            .sort_keys
            .iter()
            .find(|s| s.partition_key == partition_key && s.sort_key == sort_key)?;
        let spans: Vec<(&AttributeValue, &AttributeValue, &Vec<AttributeValue>)> = stats
            .collections
            .iter()
            .filter_map(|c| Some((c.first()?, c.last()?, c)))
            .collect();
        if spans.is_empty() {
            return None;
        }
        let touched: Vec<f64> = spans
            .iter()
            .filter(|(low, high, _)| test.touches(low, high))
            .map(|(_, _, c)| c.iter().filter(|v| test.accepts(v)).count() as f64 / c.len() as f64)
            .collect();
        if !touched.is_empty() {
            return Some(touched.iter().sum::<f64>() / touched.len() as f64);
        }
        let widths: Vec<f64> = spans
            .iter()
            .filter_map(|(low, high, _)| test.width_share(low, high))
            .collect();
        if widths.is_empty() {
            return None;
        }
        let mean_items =
            spans.iter().map(|(_, _, c)| c.len()).sum::<usize>() as f64 / spans.len() as f64;
        let share = widths.iter().sum::<f64>() / widths.len() as f64;
        Some(share.clamp(1.0 / mean_items.max(1.0), 1.0))
    }
}

/// A value as a map key: type and text (DynamoDB sends numbers normalized).
fn value_key(v: &AttributeValue) -> Option<String> {
    match v {
        AttributeValue::S(s) => Some(format!("S{s}")),
        AttributeValue::N(n) => Some(format!("N{n}")),
        AttributeValue::B(b) => Some(format!(
            "B{}",
            b.as_ref()
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        )),
        _ => None,
    }
}

/// Counts key values over the pages of a sample.
#[derive(Debug, Default)]
pub(crate) struct KeyStatsBuilder {
    partition_keys: Vec<String>,
    /// (partition key, sort key) of each key schema with a sort key.
    schemas: Vec<(String, String)>,
    counts: HashMap<String, HashMap<String, u64>>,
    /// Per schema: sort-key values by partition-key value.
    sorts: Vec<HashMap<String, Vec<AttributeValue>>>,
    sampled: u64,
    /// The items of the collection being read (the table's partition key,
    /// the first schema's): counted once the next collection starts, as a
    /// segment stopped by the sample's size may have cut it short.
    pending: Vec<Item>,
    /// Items counted so far.
    counted: u64,
}

impl KeyStatsBuilder {
    /// Counts the partition keys of `schemas` (partition key, optional sort
    /// key) and, per partition, their sort keys.
    pub(crate) fn new<'a>(schemas: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Self {
        let mut b = Self::default();
        for (pk, sk) in schemas {
            if !b.partition_keys.iter().any(|p| p == pk) {
                b.partition_keys.push(pk.to_string());
            }
            if let Some(sk) = sk {
                let pair = (pk.to_string(), sk.to_string());
                if !b.schemas.contains(&pair) {
                    b.schemas.push(pair);
                    b.sorts.push(HashMap::new());
                }
            }
        }
        b
    }

    /// Takes the key values of `items`, read in Scan order.
    pub(crate) fn observe(&mut self, items: &[Item]) {
        self.sampled += items.len() as u64;
        let Some(table_key) = self.partition_keys.first().cloned() else {
            return;
        };
        for item in items {
            let next = item.get(&table_key).and_then(value_key);
            let current = self
                .pending
                .first()
                .and_then(|i| i.get(&table_key))
                .and_then(value_key);
            if next != current {
                self.commit();
            }
            let keys: Item = item
                .iter()
                .filter(|(name, _)| self.is_key(name))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            self.pending.push(keys);
        }
    }

    fn is_key(&self, name: &str) -> bool {
        self.partition_keys.iter().any(|p| p == name) || self.schemas.iter().any(|(_, s)| s == name)
    }

    /// The end of a segment's sample: its last collection is counted when
    /// the segment was read to its end (`whole`), or when it is all the
    /// segment showed; else it may be cut short and is left out.
    pub(crate) fn end_segment(&mut self, whole: bool) {
        if whole || self.counted == 0 {
            self.commit();
        } else {
            self.pending.clear();
        }
    }

    /// Counts the pending collection.
    fn commit(&mut self) {
        let items = std::mem::take(&mut self.pending);
        self.counted += items.len() as u64;
        for item in &items {
            for name in &self.partition_keys {
                let Some(k) = item.get(name).and_then(value_key) else {
                    continue;
                };
                *self
                    .counts
                    .entry(name.clone())
                    .or_default()
                    .entry(k)
                    .or_default() += 1;
            }
            for ((pk, sk), sorts) in self.schemas.iter().zip(&mut self.sorts) {
                let (Some(p), Some(v)) = (item.get(pk).and_then(value_key), item.get(sk)) else {
                    continue;
                };
                sorts.entry(p).or_default().push(v.clone());
            }
        }
    }

    /// Adds what another builder of the same schemas counted.
    pub(crate) fn merge(&mut self, mut other: KeyStatsBuilder) {
        other.commit();
        self.sampled += other.sampled;
        self.counted += other.counted;
        for (name, counts) in other.counts {
            let mine = self.counts.entry(name).or_default();
            for (k, n) in counts {
                *mine.entry(k).or_default() += n;
            }
        }
        for (mine, theirs) in self.sorts.iter_mut().zip(other.sorts) {
            for (p, values) in theirs {
                mine.entry(p).or_default().extend(values);
            }
        }
    }

    /// The statistics; `complete` when the sample read the whole table.
    pub(crate) fn finish(mut self, complete: bool) -> KeyStats {
        self.commit();
        let attributes = self
            .counts
            .iter()
            .map(|(name, counts)| {
                (
                    name.clone(),
                    KeyAttributeStats {
                        items: counts.values().sum(),
                        distinct: counts.len() as u64,
                        once: counts.values().filter(|n| **n == 1).count() as u64,
                        twice: counts.values().filter(|n| **n == 2).count() as u64,
                    },
                )
            })
            .collect();
        let sort_keys = self
            .schemas
            .into_iter()
            .zip(self.sorts)
            .map(|((partition_key, sort_key), by_partition)| {
                // In a stable order (by partition value), whole collections
                // up to the cap.
                let mut groups: Vec<(String, Vec<AttributeValue>)> =
                    by_partition.into_iter().collect();
                groups.sort_by(|a, b| a.0.cmp(&b.0));
                let mut kept = 0;
                let mut collections = Vec::new();
                for (_, mut values) in groups {
                    if kept + values.len() > MAX_SORT_VALUES && !collections.is_empty() {
                        break;
                    }
                    values
                        .sort_by(|a, b| compare_values(a, b).unwrap_or(std::cmp::Ordering::Equal));
                    kept += values.len();
                    collections.push(values);
                }
                SortKeyStats {
                    partition_key,
                    sort_key,
                    collections,
                }
            })
            .collect();
        KeyStats {
            sampled: self.sampled,
            complete,
            attributes,
            sort_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: u64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    fn item(pk: &str, sk: u64, status: &str) -> Item {
        [
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), n(sk)),
            ("status".to_string(), s(status)),
        ]
        .into()
    }

    fn builder() -> KeyStatsBuilder {
        KeyStatsBuilder::new([("pk", Some("sk")), ("status", None)])
    }

    /// `sk` above (exclusive) or between (inclusive) numbers.
    enum Range {
        Above(u64),
        Between(u64, u64),
    }

    fn num(v: &AttributeValue) -> f64 {
        match v {
            AttributeValue::N(x) => x.parse().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    impl SortTest for Range {
        fn accepts(&self, v: &AttributeValue) -> bool {
            let x = num(v);
            match self {
                Range::Above(a) => x > *a as f64,
                Range::Between(a, b) => x >= *a as f64 && x <= *b as f64,
            }
        }
        fn touches(&self, low: &AttributeValue, high: &AttributeValue) -> bool {
            match self {
                Range::Above(a) => num(high) > *a as f64,
                Range::Between(a, b) => num(high) >= *a as f64 && num(low) <= *b as f64,
            }
        }
        fn width_share(&self, low: &AttributeValue, high: &AttributeValue) -> Option<f64> {
            match self {
                Range::Above(_) => None,
                Range::Between(a, b) => Some((*b - *a) as f64 / (num(high) - num(low)).max(1.0)),
            }
        }
    }

    #[test]
    fn counts_distinct_values_singletons_and_collections() {
        let mut b = builder();
        b.observe(&[item("a", 3, "open"), item("a", 1, "open")]);
        let mut other = builder();
        other.observe(&[item("b", 2, "done")]);
        b.merge(other);
        let stats = b.finish(true);
        assert_eq!(stats.sampled, 3);
        let pk = &stats.attributes["pk"];
        assert_eq!((pk.items, pk.distinct, pk.once, pk.twice), (3, 2, 1, 1));
        assert_eq!(stats.sort_keys.len(), 1);
        assert_eq!(
            stats.sort_keys[0].collections,
            vec![vec![n(1), n(3)], vec![n(2)]]
        );
    }

    #[test]
    fn a_collection_a_stopped_segment_may_have_cut_short_is_left_out() {
        let mut b = builder();
        b.observe(&(0..10).map(|i| item("a", i, "x")).collect::<Vec<_>>());
        b.observe(&(0..3).map(|i| item("b", i, "x")).collect::<Vec<_>>());
        b.end_segment(false);
        let stats = b.finish(false);
        assert_eq!(stats.attributes["pk"].items, 10, "'b' may have more items");
        assert_eq!(stats.sampled, 13);
        // Read to its end, the segment's last collection is whole.
        let mut b = builder();
        b.observe(&(0..10).map(|i| item("a", i, "x")).collect::<Vec<_>>());
        b.observe(&(0..3).map(|i| item("b", i, "x")).collect::<Vec<_>>());
        b.end_segment(true);
        assert_eq!(b.finish(true).attributes["pk"].items, 13);
        // A segment of one collection keeps it: it is all there is to go by.
        let mut b = builder();
        b.observe(&(0..3).map(|i| item("b", i, "x")).collect::<Vec<_>>());
        b.end_segment(false);
        assert_eq!(b.finish(false).attributes["pk"].items, 3);
    }

    #[test]
    fn clustered_keys_carry_the_mean_collection_size_over() {
        // 100 sampled items in 10 collections of a 10,000-item table: 1,000 values.
        let mut b = builder();
        for i in 0..100 {
            b.observe(&[item(&format!("u{}", i / 10), i, "x")]);
        }
        let stats = b.finish(false);
        assert_eq!(stats.distinct("pk", 10_000, true), Some(1_000.0));
    }

    #[test]
    fn spread_keys_estimate_unseen_values_from_singletons() {
        // Every value seen once: as many values as items.
        let mut b = builder();
        b.observe(
            &(0..100)
                .map(|i| item(&i.to_string(), 0, "x"))
                .collect::<Vec<_>>(),
        );
        let stats = b.finish(false);
        assert_eq!(stats.distinct("pk", 5_000, false), Some(5_000.0));
        // Three values seen many times: three values.
        let mut b = builder();
        b.observe(
            &(0..90)
                .map(|i| item("p", i, ["a", "b", "c"][i as usize % 3]))
                .collect::<Vec<_>>(),
        );
        let stats = b.finish(false);
        assert_eq!(stats.distinct("status", 1_000_000, false), Some(3.0));
        assert_eq!(stats.distinct("missing", 10, false), None);
    }

    #[test]
    fn a_sort_range_shared_by_every_partition_reads_its_share_of_each() {
        // Timestamps 0..9 in every partition: `sk > 5` reads 4 of 10.
        let mut b = builder();
        for p in 0..5 {
            b.observe(
                &(0..10)
                    .map(|t| item(&format!("u{p}"), t, "x"))
                    .collect::<Vec<_>>(),
            );
        }
        let stats = b.finish(false);
        assert_eq!(stats.sort_fraction("pk", "sk", &Range::Above(5)), Some(0.4));
    }

    #[test]
    fn a_sort_range_inside_one_partition_is_judged_by_the_partitions_it_touches() {
        // Sequential ids: partition p holds 100p..100p+99.
        let mut b = builder();
        for p in 0..5u64 {
            b.observe(
                &(0..100)
                    .map(|i| item(&format!("u{p}"), 100 * p + i, "x"))
                    .collect::<Vec<_>>(),
            );
        }
        let stats = b.finish(false);
        // Touches u2 only: 10 of its 100.
        let f = stats.sort_fraction("pk", "sk", &Range::Between(210, 219));
        assert_eq!(f, Some(0.1));
        // A partition the sample did not see: by the span the range covers.
        let f = stats
            .sort_fraction("pk", "sk", &Range::Between(9_010, 9_019))
            .expect("a width share");
        assert!((0.08..0.1).contains(&f), "{f}");
        // No basis for a half-open range nothing touches.
        assert_eq!(stats.sort_fraction("pk", "sk", &Range::Above(10_000)), None);
        assert_eq!(stats.sort_fraction("status", "sk", &Range::Above(0)), None);
    }

    #[test]
    fn stats_serialize_and_come_back() {
        let mut b = builder();
        b.observe(&[item("a", 1, "x")]);
        let stats = b.finish(false);
        let text = serde_json::to_string(&stats).expect("serialize");
        assert_eq!(
            serde_json::from_str::<KeyStats>(&text).expect("parse"),
            stats
        );
    }
}
