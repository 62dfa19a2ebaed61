//! What a planned read will cost before it is sent: the items DynamoDB
//! evaluates (and bills, whatever the filter keeps) and the read capacity
//! units they take, from DescribeTable (items and bytes of the table or
//! index) and the schema sample's key statistics (items per partition-key
//! value, where sort-key values fall).
//!
//! DynamoDB's rules, as modelled here: a Scan or Query page costs its
//! items' total size rounded up to 4 KB, at least one unit; a GetItem, and
//! each key of a BatchGetItem, costs its item's size rounded up to 4 KB,
//! at least one unit; an eventually consistent read costs half a unit per
//! 4 KB, a strongly consistent one a whole unit. On-demand tables bill one
//! read request unit (RRU) per unit. Pure: no I/O.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{CmpOp, Operation, ReadUnit, SortCondition};
use crate::key_stats::{KeyStats, SortTest};
use crate::metadata::{IndexKind, TableMeta};
use crate::value::compare_values;

/// The published on-demand price of one million read request units in
/// us-east-1 (USD, since the November 2024 price change): the default of
/// `dynamodb.price_per_million_rru`.
pub const DEFAULT_PRICE_PER_MILLION_RRU: f64 = 0.125;

/// Bytes one read capacity unit reads.
const UNIT_BYTES: f64 = 4096.0;

/// Where a Query's items-per-key figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Basis {
    /// Known without statistics (a key read, a Scan, a table without a sort key).
    Table,
    /// The schema sample's key statistics (that many items sampled).
    KeySample(u64),
    /// No statistics for the key: a guess (the square root of the items).
    Guess,
}

/// The inputs of a read's estimate, decided with the plan: it travels
/// with it, so the estimate follows a limit pushed in later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CostModel {
    /// Items in the table or index read.
    pub items: u64,
    /// Their average size in bytes.
    pub item_bytes: f64,
    /// Items one Query of one partition-key value evaluates (its sort-key
    /// condition applied); `None` for other operations.
    pub per_query: Option<f64>,
    /// Where `per_query` comes from.
    pub basis: Basis,
}

/// What a read is estimated to cost.
///
/// ```
/// use dynamo_datafusion::ReadEstimate;
/// let scan = ReadEstimate { items: 600.0, rcu: 14.0, requests: 1 };
/// assert_eq!(scan.usd(0.125), 14.0 * 0.125 / 1e6);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadEstimate {
    /// Items DynamoDB evaluates (before any filter: what it bills).
    pub items: f64,
    /// Read capacity units (on-demand: read request units).
    pub rcu: f64,
    /// Requests at least: one per scan segment, Query, key or key batch.
    pub requests: u64,
}

impl ReadEstimate {
    /// The on-demand price of `rcu`, in USD, at `price_per_million` per
    /// million read request units.
    pub fn usd(&self, price_per_million: f64) -> f64 {
        self.rcu * price_per_million / 1e6
    }

    /// The price of `rcu` at `price_per_million`, as shown: two significant
    /// digits (`0.0000036`, `0.42`, `12`).
    ///
    /// ```
    /// use dynamo_datafusion::ReadEstimate;
    /// let scan = ReadEstimate { items: 2193.0, rcu: 29.0, requests: 1 };
    /// assert_eq!(scan.usd_text(0.125), "0.0000036");
    /// ```
    pub fn usd_text(&self, price_per_million: f64) -> String {
        usd_text(self.usd(price_per_million))
    }

    /// The sum of two estimates.
    pub fn plus(self, other: ReadEstimate) -> ReadEstimate {
        ReadEstimate {
            items: self.items + other.items,
            rcu: self.rcu + other.rcu,
            requests: self.requests + other.requests,
        }
    }
}

/// A price in USD as shown: two significant digits (`0.0000036`, `0.42`, `12`).
pub(crate) fn usd_text(usd: f64) -> String {
    if usd <= 0.0 || !usd.is_finite() {
        return "0".to_string();
    }
    let decimals = (1 - usd.log10().floor() as i32).clamp(0, 12) as usize;
    format!("{usd:.decimals$}")
}

/// The cost model of reading `meta`'s table by `operation`, with the
/// sample's key statistics `keys` when there are any.
pub(crate) fn cost_model(
    meta: &TableMeta,
    keys: Option<&KeyStats>,
    operation: &Operation,
) -> CostModel {
    let index = match operation {
        Operation::Query { index, .. } => index.as_deref(),
        _ => None,
    };
    let (items, bytes) = meta.size_of(index);
    let item_bytes = if items == 0 {
        0.0
    } else {
        bytes as f64 / items as f64
    };
    let Operation::Query {
        keys: key_schema,
        sort,
        ..
    } = operation
    else {
        return CostModel {
            items,
            item_bytes,
            per_query: None,
            basis: Basis::Table,
        };
    };
    // The table's own partition key, and an LSI's (the same), come in whole
    // collections in a Scan; a GSI's key is spread over the table.
    let clustered = index.is_none_or(|name| {
        meta.indexes
            .iter()
            .any(|i| i.name == name && i.kind == IndexKind::Local)
    });
    let pk = &key_schema.partition_key.name;
    let distinct = keys.and_then(|k| k.distinct(pk, items, clustered));
    let (per_key, mut basis) = match distinct {
        Some(d) => (
            items as f64 / d.max(1.0),
            Basis::KeySample(keys.map_or(0, |k| k.sampled)),
        ),
        // Without a sort key a partition-key value is one item.
        None if key_schema.sort_key.is_none() && index.is_none() => (1.0, Basis::Table),
        None => ((items as f64).sqrt().max(1.0), Basis::Guess),
    };
    let share = match (sort, &key_schema.sort_key) {
        (Some(cond), Some(sk)) => {
            let sampled = keys.and_then(|k| k.sort_fraction(pk, &sk.name, cond));
            match sampled {
                Some(f) => f,
                None => {
                    basis = Basis::Guess;
                    match cond {
                        SortCondition::Compare(CmpOp::Eq, _) => 1.0 / per_key.max(1.0),
                        _ => 0.5,
                    }
                }
            }
        }
        _ => 1.0,
    };
    CostModel {
        items,
        item_bytes,
        per_query: Some((per_key * share).min(items as f64)),
        basis,
    }
}

impl SortTest for SortCondition {
    fn accepts(&self, v: &AttributeValue) -> bool {
        satisfies(v, self)
    }

    fn touches(&self, low: &AttributeValue, high: &AttributeValue) -> bool {
        use std::cmp::Ordering::{Greater, Less};
        let cmp = compare_values;
        match self {
            SortCondition::Compare(op, x) => match op {
                CmpOp::Eq => {
                    cmp(low, x).is_some_and(|o| o != Greater)
                        && cmp(high, x).is_some_and(|o| o != Less)
                }
                CmpOp::Ne => true,
                CmpOp::Lt => cmp(low, x) == Some(Less),
                CmpOp::Le => cmp(low, x).is_some_and(|o| o != Greater),
                CmpOp::Gt => cmp(high, x) == Some(Greater),
                CmpOp::Ge => cmp(high, x).is_some_and(|o| o != Less),
            },
            SortCondition::Between(a, b) => {
                cmp(high, a).is_some_and(|o| o != Less) && cmp(low, b).is_some_and(|o| o != Greater)
            }
            SortCondition::BeginsWith(p) => {
                // Not wholly below the prefix, and not wholly above it.
                let below = cmp(high, p) == Some(Less) && !satisfies(high, self);
                let above = cmp(low, p) == Some(Greater) && !satisfies(low, self);
                !below && !above && cmp(low, p).is_some()
            }
        }
    }

    fn width_share(&self, low: &AttributeValue, high: &AttributeValue) -> Option<f64> {
        let number = |v: &AttributeValue| match v {
            AttributeValue::N(n) => n.parse::<f64>().ok(),
            _ => None,
        };
        match self {
            SortCondition::Between(a, b) => {
                let span = number(high)? - number(low)?;
                let width = number(b)? - number(a)?;
                (span > 0.0).then(|| (width / span).max(0.0))
            }
            _ => None,
        }
    }
}

/// True when a sort-key value `v` meets `cond`.
fn satisfies(v: &AttributeValue, cond: &SortCondition) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match cond {
        SortCondition::Compare(op, x) => match (op, compare_values(v, x)) {
            (_, None) => false,
            (CmpOp::Eq, Some(o)) => o == Equal,
            (CmpOp::Ne, Some(o)) => o != Equal,
            (CmpOp::Lt, Some(o)) => o == Less,
            (CmpOp::Le, Some(o)) => o != Greater,
            (CmpOp::Gt, Some(o)) => o == Greater,
            (CmpOp::Ge, Some(o)) => o != Less,
        },
        SortCondition::Between(low, high) => {
            compare_values(v, low).is_some_and(|o| o != Less)
                && compare_values(v, high).is_some_and(|o| o != Greater)
        }
        SortCondition::BeginsWith(prefix) => match (v, prefix) {
            (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
            (AttributeValue::B(b), AttributeValue::B(p)) => b.as_ref().starts_with(p.as_ref()),
            _ => false,
        },
    }
}

/// Capacity units of reading `bytes` in one request.
fn units(bytes: f64, consistent: bool) -> f64 {
    let half = if consistent { 1.0 } else { 0.5 };
    (bytes / UNIT_BYTES).ceil().max(1.0) * half
}

/// Items and capacity of one unit of a read.
fn unit_cost(model: &CostModel, unit: &ReadUnit, consistent: bool) -> (f64, f64) {
    let one_item = units(model.item_bytes, consistent);
    match unit {
        ReadUnit::Segment(_, total) => {
            let items = model.items as f64 / f64::from((*total).max(1));
            (items, units(items * model.item_bytes, consistent))
        }
        ReadUnit::Query(_) => {
            let items = model.per_query.unwrap_or(model.items as f64);
            (items, units(items * model.item_bytes, consistent))
        }
        ReadUnit::Get(_) => (1.0, one_item),
        ReadUnit::Batch(keys) => (keys.len() as f64, keys.len() as f64 * one_item),
    }
}

/// The estimate of reading `partitions`, each stopping after `limit` items
/// if set.
pub(crate) fn estimate(
    model: &CostModel,
    partitions: &[Vec<ReadUnit>],
    limit: Option<usize>,
    consistent: bool,
) -> ReadEstimate {
    let mut total = ReadEstimate::default();
    for units in partitions {
        let (mut items, mut rcu) = (0.0, 0.0);
        for unit in units {
            let (i, r) = unit_cost(model, unit, consistent);
            items += i;
            rcu += r;
        }
        if let Some(limit) = limit.map(|l| l as f64)
            && items > limit
        {
            // A limited partition reads one request's worth, then stops.
            let floor = if consistent { 1.0 } else { 0.5 };
            rcu = (rcu * limit / items).max(floor);
            items = limit;
        }
        total = total.plus(ReadEstimate {
            items,
            rcu,
            requests: units.len() as u64,
        });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_stats::KeyStatsBuilder;
    use crate::plan::fixture;
    use crate::value::Item;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: u64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    /// A sample of `customers` customers with 10 orders each (orderId 0..9).
    fn sample(customers: u64) -> KeyStats {
        let mut b = KeyStatsBuilder::new([("customer", Some("orderId")), ("status", None)]);
        let items: Vec<Item> = (0..customers * 10)
            .map(|i| {
                [
                    ("customer".to_string(), s(&format!("c{}", i / 10))),
                    ("orderId".to_string(), n(i % 10)),
                    ("status".to_string(), s(["open", "done"][(i % 2) as usize])),
                ]
                .into()
            })
            .collect();
        b.observe(&items);
        b.finish(false)
    }

    fn query(values: usize, sort: Option<SortCondition>) -> Operation {
        Operation::Query {
            index: None,
            keys: fixture::orders_meta().keys,
            partition_values: (0..values).map(|i| s(&format!("c{i}"))).collect(),
            sort,
        }
    }

    #[test]
    fn a_full_scan_costs_the_table_size_in_4_kb_units() {
        // 1,000 items of 100 bytes: 100,000 bytes = 25 units of 4 KB.
        let meta = fixture::orders_meta();
        let model = cost_model(&meta, None, &Operation::Scan);
        let one = vec![vec![ReadUnit::Segment(0, 1)]];
        let e = estimate(&model, &one, None, false);
        assert_eq!((e.items, e.rcu, e.requests), (1000.0, 12.5, 1));
        assert_eq!(estimate(&model, &one, None, true).rcu, 25.0);
        // Four segments each round up on their own.
        let four: Vec<Vec<ReadUnit>> = (0..4).map(|s| vec![ReadUnit::Segment(s, 4)]).collect();
        assert_eq!(estimate(&model, &four, None, false).rcu, 4.0 * 3.5);
        // A limit stops after one request's worth.
        assert_eq!(estimate(&model, &one, Some(10), false).rcu, 0.5);
    }

    #[test]
    fn a_query_reads_one_collection_as_the_sample_sized_it() {
        let meta = fixture::orders_meta();
        let keys = sample(20);
        let model = cost_model(&meta, Some(&keys), &query(1, None));
        assert_eq!(model.per_query, Some(10.0));
        assert_eq!(model.basis, Basis::KeySample(200));
        let units = vec![vec![ReadUnit::Query(s("c1"))]];
        let e = estimate(&model, &units, None, false);
        assert_eq!((e.items, e.rcu), (10.0, 0.5));
        // Six of the ten orderIds 0..9 are above 3: about 6 of 10 (smoothed).
        let above = SortCondition::Compare(CmpOp::Gt, n(3));
        let model = cost_model(&meta, Some(&keys), &query(1, Some(above)));
        let per = model.per_query.expect("a query");
        assert!((5.9..6.1).contains(&per), "{per}");
    }

    #[test]
    fn an_index_key_spread_over_the_table_divides_its_items() {
        let meta = fixture::orders_meta();
        let keys = sample(20);
        let op = Operation::Query {
            index: Some("byStatus".into()),
            keys: meta.indexes[0].keys.clone(),
            partition_values: vec![s("open")],
            sort: None,
        };
        // byStatus holds 400 items; two statuses.
        let model = cost_model(&meta, Some(&keys), &op);
        assert_eq!(model.items, 400);
        assert_eq!(model.per_query, Some(200.0));
    }

    #[test]
    fn without_statistics_a_composite_key_is_a_guess_and_a_simple_key_one_item() {
        let meta = fixture::orders_meta();
        let model = cost_model(&meta, None, &query(3, None));
        assert_eq!(model.basis, Basis::Guess);
        assert_eq!(model.per_query, Some((1000f64).sqrt()));
        let mut simple = TableMeta::hash_only("T", "id");
        simple.item_count = 50;
        simple.size_bytes = 5_000;
        let op = Operation::Query {
            index: None,
            keys: simple.keys.clone(),
            partition_values: vec![s("a")],
            sort: None,
        };
        let model = cost_model(&simple, None, &op);
        assert_eq!((model.per_query, model.basis), (Some(1.0), Basis::Table));
    }

    #[test]
    fn key_reads_cost_each_item_rounded_up_to_4_kb() {
        let mut meta = fixture::orders_meta();
        meta.size_bytes = 1000 * 9_000; // 9 KB items: 3 units each, strongly consistent.
        let key = vec![("customer".to_string(), s("c1"))];
        let model = cost_model(&meta, None, &Operation::GetItem { key: key.clone() });
        let get = estimate(&model, &[vec![ReadUnit::Get(key.clone())]], None, true);
        assert_eq!((get.items, get.rcu), (1.0, 3.0));
        let batch = estimate(
            &model,
            &[vec![ReadUnit::Batch(vec![key.clone(), key.clone()])]],
            None,
            false,
        );
        assert_eq!((batch.items, batch.rcu, batch.requests), (2.0, 3.0, 1));
    }

    #[test]
    fn sort_conditions_match_as_dynamodb_compares() {
        assert!(satisfies(&n(10), &SortCondition::Compare(CmpOp::Gt, n(9))));
        assert!(!satisfies(
            &s("10"),
            &SortCondition::Compare(CmpOp::Gt, n(9))
        ));
        assert!(satisfies(&n(5), &SortCondition::Between(n(5), n(6))));
        assert!(satisfies(
            &s("2026-11"),
            &SortCondition::BeginsWith(s("2026"))
        ));
        assert!(!satisfies(
            &s("2025-11"),
            &SortCondition::BeginsWith(s("2026"))
        ));
    }
}
