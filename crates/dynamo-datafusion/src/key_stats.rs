//! What the schema sample shows of a table's key attributes: how many
//! distinct values each partition key took and how sort-key values spread,
//! so a Query's size can be estimated before it is sent (`plan::cost`).
//!
//! Pure: items in, counts out. A Scan returns a partition's items one after
//! the other, so the sample holds whole item collections of the table's own
//! partition key (`clustered`): its items per value carry over to the table.
//! An index's partition key is spread over the table, so its distinct values
//! are estimated beyond the sample from how many were seen once and twice
//! (Chao's estimator, bounded by the items that have the attribute).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::value::{Item, compare_values};

/// Sort-key values kept per attribute: evenly spaced quantiles of the sample.
const MAX_QUANTILES: usize = 512;

/// What the sample showed of one key attribute.
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
    /// Sort keys: sampled values in ascending order, thinned to at most
    /// [`MAX_QUANTILES`] evenly spaced ones.
    #[serde(with = "crate::value::wire::many", default)]
    pub quantiles: Vec<AttributeValue>,
}

/// What the schema sample showed of the key attributes of a table and its indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyStats {
    /// Items sampled.
    pub sampled: u64,
    /// True when the sample read every item of the table.
    pub complete: bool,
    /// Per key attribute name.
    pub attributes: BTreeMap<String, KeyAttributeStats>,
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

    /// The share of `attribute`'s sampled values `matches` accepts, smoothed
    /// so that a range no sampled value falls in still reads a little.
    /// `None` without sampled values.
    pub(crate) fn fraction(
        &self,
        attribute: &str,
        matches: impl Fn(&AttributeValue) -> bool,
    ) -> Option<f64> {
        let q = &self.attributes.get(attribute)?.quantiles;
        if q.is_empty() {
            return None;
        }
        let hits = q.iter().filter(|v| matches(v)).count() as f64;
        Some((hits + 0.5) / (q.len() as f64 + 1.0))
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
    /// Key attributes, and whether each is a sort key.
    attributes: Vec<(String, bool)>,
    counts: HashMap<String, HashMap<String, u64>>,
    sort_values: HashMap<String, Vec<AttributeValue>>,
    sampled: u64,
}

impl KeyStatsBuilder {
    /// Counts `partition_keys` and `sort_keys` (attribute names; a name in
    /// both is counted once, as a sort key).
    pub(crate) fn new<'a>(
        partition_keys: impl IntoIterator<Item = &'a str>,
        sort_keys: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut attributes: Vec<(String, bool)> = Vec::new();
        for s in sort_keys {
            if !attributes.iter().any(|(n, _)| n == s) {
                attributes.push((s.to_string(), true));
            }
        }
        for p in partition_keys {
            if !attributes.iter().any(|(n, _)| n == p) {
                attributes.push((p.to_string(), false));
            }
        }
        Self {
            attributes,
            ..Self::default()
        }
    }

    /// Counts the key values of `items`.
    pub(crate) fn observe(&mut self, items: &[Item]) {
        self.sampled += items.len() as u64;
        for item in items {
            for (name, sort) in &self.attributes {
                let Some(v) = item.get(name) else { continue };
                let Some(k) = value_key(v) else { continue };
                *self
                    .counts
                    .entry(name.clone())
                    .or_default()
                    .entry(k)
                    .or_default() += 1;
                if *sort {
                    self.sort_values
                        .entry(name.clone())
                        .or_default()
                        .push(v.clone());
                }
            }
        }
    }

    /// Adds what another builder of the same attributes counted.
    pub(crate) fn merge(&mut self, other: KeyStatsBuilder) {
        self.sampled += other.sampled;
        for (name, counts) in other.counts {
            let mine = self.counts.entry(name).or_default();
            for (k, n) in counts {
                *mine.entry(k).or_default() += n;
            }
        }
        for (name, values) in other.sort_values {
            self.sort_values.entry(name).or_default().extend(values);
        }
    }

    /// The statistics; `complete` when the sample read the whole table.
    pub(crate) fn finish(mut self, complete: bool) -> KeyStats {
        let mut attributes = BTreeMap::new();
        for (name, counts) in &self.counts {
            let mut values = self.sort_values.remove(name).unwrap_or_default();
            values.sort_by(|a, b| compare_values(a, b).unwrap_or(std::cmp::Ordering::Equal));
            attributes.insert(
                name.clone(),
                KeyAttributeStats {
                    items: counts.values().sum(),
                    distinct: counts.len() as u64,
                    once: counts.values().filter(|n| **n == 1).count() as u64,
                    twice: counts.values().filter(|n| **n == 2).count() as u64,
                    quantiles: thin(values),
                },
            );
        }
        KeyStats {
            sampled: self.sampled,
            complete,
            attributes,
        }
    }
}

/// At most [`MAX_QUANTILES`] evenly spaced values of sorted `values`.
fn thin(values: Vec<AttributeValue>) -> Vec<AttributeValue> {
    if values.len() <= MAX_QUANTILES {
        return values;
    }
    let step = values.len() as f64 / MAX_QUANTILES as f64;
    (0..MAX_QUANTILES)
        .map(|i| values[((i as f64 + 0.5) * step) as usize].clone())
        .collect()
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

    #[test]
    fn counts_distinct_values_singletons_and_sorted_quantiles() {
        let mut b = KeyStatsBuilder::new(["pk", "status"], ["sk"]);
        b.observe(&[item("a", 3, "open"), item("a", 1, "open")]);
        let mut other = KeyStatsBuilder::new(["pk", "status"], ["sk"]);
        other.observe(&[item("b", 2, "done")]);
        b.merge(other);
        let stats = b.finish(true);
        assert_eq!(stats.sampled, 3);
        let pk = &stats.attributes["pk"];
        assert_eq!((pk.items, pk.distinct, pk.once, pk.twice), (3, 2, 1, 1));
        assert_eq!(stats.attributes["sk"].quantiles, vec![n(1), n(2), n(3)]);
        assert!(stats.attributes["pk"].quantiles.is_empty());
    }

    #[test]
    fn clustered_keys_carry_the_mean_collection_size_over() {
        // 100 sampled items in 10 collections of a 10,000-item table: 1,000 values.
        let mut b = KeyStatsBuilder::new(["pk"], []);
        for i in 0..100 {
            b.observe(&[item(&format!("u{}", i / 10), i, "x")]);
        }
        let stats = b.finish(false);
        assert_eq!(stats.distinct("pk", 10_000, true), Some(1_000.0));
    }

    #[test]
    fn spread_keys_estimate_unseen_values_from_singletons() {
        // Every value seen once: as many values as items.
        let mut b = KeyStatsBuilder::new(["pk"], []);
        b.observe(
            &(0..100)
                .map(|i| item(&i.to_string(), 0, "x"))
                .collect::<Vec<_>>(),
        );
        let stats = b.finish(false);
        assert_eq!(stats.distinct("pk", 5_000, false), Some(5_000.0));
        // Three values seen many times: three values.
        let mut b = KeyStatsBuilder::new(["status"], []);
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
    fn fractions_are_smoothed_shares_of_the_quantiles() {
        let mut b = KeyStatsBuilder::new([], ["sk"]);
        b.observe(&(0..9).map(|i| item("p", i, "x")).collect::<Vec<_>>());
        let stats = b.finish(false);
        let above =
            |v: &AttributeValue| compare_values(v, &n(5)) == Some(std::cmp::Ordering::Greater);
        // 6, 7, 8 of 0..9.
        assert_eq!(stats.fraction("sk", above), Some(3.5 / 10.0));
        assert_eq!(stats.fraction("sk", |_| false), Some(0.05));
    }

    #[test]
    fn long_samples_keep_evenly_spaced_quantiles() {
        let values: Vec<AttributeValue> = (0..10_000).map(n).collect();
        let q = thin(values);
        assert_eq!(q.len(), MAX_QUANTILES);
        assert_eq!(q.first(), Some(&n(9)));
        assert_eq!(q.last(), Some(&n(9_990)));
    }

    #[test]
    fn stats_serialize_and_come_back() {
        let mut b = KeyStatsBuilder::new(["pk"], ["sk"]);
        b.observe(&[item("a", 1, "x")]);
        let stats = b.finish(false);
        let text = serde_json::to_string(&stats).expect("serialize");
        assert_eq!(
            serde_json::from_str::<KeyStats>(&text).expect("parse"),
            stats
        );
    }
}
