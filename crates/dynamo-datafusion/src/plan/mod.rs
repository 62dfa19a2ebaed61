//! The pushdown planner: SQL filters, the columns a query needs, and the
//! table's key and index metadata in; the cheapest correct DynamoDB read out.
//!
//! Pure: no I/O. `supports_filters_pushdown` and `scan` take the read from
//! one decision ([`Decisions`], which calls [`plan_access`]). Each conjunct
//! goes to one of three places: the key (GetItem, BatchGetItem keys or a
//! Query's key condition — exact), the FilterExpression (re-checked on the
//! read's rows), or the re-check alone.

pub(crate) mod cost;
mod decision;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fixture;
pub(crate) mod predicate;
pub mod render;
mod scan;
mod time;
mod units;

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::split_conjunction;
use serde::{Deserialize, Serialize};

use crate::metadata::{IndexKind, IndexMeta, IndexProjection, KeySchema, KeyType, TableMeta};
use predicate::{Atom, CmpOp, Cond, MAX_IN_VALUES, Translator, compare_values};
use render::ExpressionBuilder;

pub use cost::{DEFAULT_PRICE_PER_MILLION_RRU, ReadEstimate};
pub(crate) use decision::Decisions;
pub use render::ProjectionExpression;
pub use scan::ScanPlan;
pub(crate) use scan::{Expiry, ReadOptions, ScanRequest, expr_columns};
pub(crate) use units::BATCH_GET_MAX_KEYS;
pub use units::ReadUnit;

/// Most keys a planned BatchGetItem may have (100 per request).
pub const MAX_BATCH_KEYS: usize = 1_000;
/// DynamoDB's limit on one expression's length.
pub const MAX_EXPRESSION_BYTES: usize = 4_096;
/// DynamoDB's limit on operators and functions in one expression.
pub const MAX_EXPRESSION_OPERATORS: usize = 300;

/// Which secondary indexes the planner may use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexPolicy {
    /// Any eligible index, when it reads less than the table.
    #[default]
    Auto,
    /// Never an index.
    Never,
    /// Only this index, whenever it can answer the query.
    Only(String),
}

/// Planner settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// When false, every read is a plain Scan and DataFusion evaluates every filter.
    pub pushdown: bool,
    /// Index use.
    pub index: IndexPolicy,
    /// Strongly consistent reads (rules out GSIs).
    pub consistent_read: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            pushdown: true,
            index: IndexPolicy::Auto,
            consistent_read: false,
        }
    }
}

/// A full primary key: partition key, then sort key if the table has one.
pub type Key = Vec<(String, AttributeValue)>;

/// The one condition a Query may put on the sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SortCondition {
    /// `=`, `<`, `<=`, `>`, `>=`.
    Compare(
        CmpOp,
        #[serde(with = "crate::value::wire::one")] AttributeValue,
    ),
    /// `BETWEEN low AND high`.
    Between(
        #[serde(with = "crate::value::wire::one")] AttributeValue,
        #[serde(with = "crate::value::wire::one")] AttributeValue,
    ),
    /// `begins_with`.
    BeginsWith(#[serde(with = "crate::value::wire::one")] AttributeValue),
}

/// The DynamoDB operation a query becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    /// One item by its full key.
    GetItem {
        /// The key.
        #[serde(with = "crate::value::wire::key")]
        key: Key,
    },
    /// Items by full keys, in requests of at most 100.
    BatchGetItem {
        /// Distinct keys.
        #[serde(with = "crate::value::wire::keys")]
        keys: Vec<Key>,
    },
    /// One Query per partition-key value, on the table or an index.
    Query {
        /// Index name; `None` for the table.
        index: Option<String>,
        /// Keys of the table or index queried.
        keys: KeySchema,
        /// Distinct partition-key values (one Query each).
        #[serde(with = "crate::value::wire::many")]
        partition_values: Vec<AttributeValue>,
        /// Condition on the sort key.
        sort: Option<SortCondition>,
    },
    /// A (parallel) Scan.
    Scan,
}

impl Operation {
    /// `GetItem`, `BatchGetItem`, `Query` or `Scan`.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::GetItem { .. } => "GetItem",
            Operation::BatchGetItem { .. } => "BatchGetItem",
            Operation::Query { .. } => "Query",
            Operation::Scan => "Scan",
        }
    }

    /// Rank: higher reads fewer items (full key > keys > key + sort range > key > scan).
    fn rank(&self) -> u8 {
        match self {
            Operation::GetItem { .. } => 6,
            Operation::BatchGetItem { .. } => 5,
            Operation::Query {
                partition_values,
                sort,
                ..
            } => match (partition_values.len() == 1, sort.is_some()) {
                (true, true) => 4,
                (true, false) => 3,
                (false, true) => 2,
                (false, false) => 1,
            },
            Operation::Scan => 0,
        }
    }
}

/// One request's expressions with their placeholders ([`AccessPlan::render`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RenderedRequest {
    /// `ProjectionExpression`.
    pub projection: Option<String>,
    /// `KeyConditionExpression` (Query).
    pub key_condition: Option<String>,
    /// `FilterExpression` (Scan and Query).
    pub filter: Option<String>,
    /// `ExpressionAttributeNames`.
    pub names: Option<HashMap<String, String>>,
    /// `ExpressionAttributeValues`.
    pub values: Option<HashMap<String, AttributeValue>>,
}

/// The planned read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessPlan {
    /// What to call.
    pub operation: Operation,
    /// Sent as FilterExpression (Query and Scan only); DataFusion re-checks it.
    pub(crate) filter: Option<Cond>,
    /// Per input filter: true when the read enforces it exactly.
    pub exact: Vec<bool>,
}

impl AccessPlan {
    /// A plain Scan that enforces none of `filters` filters.
    pub fn full_scan(filters: usize) -> Self {
        Self {
            operation: Operation::Scan,
            filter: None,
            exact: vec![false; filters],
        }
    }

    /// The read units of this plan (`segments` for a Scan), spread round-robin
    /// over at most `max_partitions` partitions. Every unit is in exactly one
    /// partition.
    pub(crate) fn partitions(&self, segments: u32, max_partitions: usize) -> Vec<Vec<ReadUnit>> {
        let units: Vec<ReadUnit> = match &self.operation {
            Operation::Scan => {
                let total = segments.max(1) as i32;
                (0..total).map(|s| ReadUnit::Segment(s, total)).collect()
            }
            Operation::GetItem { key } => vec![ReadUnit::Get(key.clone())],
            Operation::BatchGetItem { keys } => keys
                .chunks(BATCH_GET_MAX_KEYS)
                .map(|c| ReadUnit::Batch(c.to_vec()))
                .collect(),
            Operation::Query {
                partition_values, ..
            } => partition_values
                .iter()
                .cloned()
                .map(ReadUnit::Query)
                .collect(),
        };
        let n = units.len().min(max_partitions.max(1)).max(1);
        let mut parts: Vec<Vec<ReadUnit>> = vec![Vec::new(); n];
        for (i, u) in units.into_iter().enumerate() {
            parts[i % n].push(u);
        }
        parts
    }

    /// One request's expressions for `unit`, rendered once: what `read`
    /// sends, what `EXPLAIN` shows, what the fuzz check parses. The
    /// projection comes first, then the key condition, then the filter, so
    /// placeholders number the same wherever the request is shown.
    pub(crate) fn render(
        &self,
        unit: &ReadUnit,
        projection: Option<&ProjectionExpression>,
    ) -> RenderedRequest {
        let mut b = ExpressionBuilder::default();
        let projection = projection.map(|p| p.render(&mut b));
        let (key_condition, filter) = match (unit, &self.operation) {
            (ReadUnit::Query(value), Operation::Query { keys, sort, .. }) => {
                let key = render_key_condition(keys, value, sort.as_ref(), &mut b);
                (Some(key), self.render_filter(&mut b))
            }
            (ReadUnit::Segment(..), _) => (None, self.render_filter(&mut b)),
            _ => (None, None),
        };
        RenderedRequest {
            projection,
            key_condition,
            filter,
            names: b.attribute_names(),
            values: b.attribute_values(),
        }
    }

    /// True when the operation reads items in sort-key order (one Query).
    pub fn ordered_by(&self) -> Option<&str> {
        match &self.operation {
            Operation::Query {
                keys,
                partition_values,
                ..
            } if partition_values.len() == 1 => keys.sort_key.as_ref().map(|k| k.name.as_str()),
            _ => None,
        }
    }

    /// True when a FilterExpression is sent.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Renders the FilterExpression into `b`, if any.
    pub fn render_filter(&self, b: &mut ExpressionBuilder) -> Option<String> {
        let mut ops = 0;
        self.filter.as_ref().map(|f| b.condition(f, &mut ops))
    }
}

/// Renders a Query's key condition into `b`.
pub fn render_key_condition(
    keys: &KeySchema,
    partition_value: &AttributeValue,
    sort: Option<&SortCondition>,
    b: &mut ExpressionBuilder,
) -> String {
    let pk = b.name(&keys.partition_key.name);
    let v = b.value(partition_value.clone());
    let mut text = format!("{pk} = {v}");
    if let (Some(sk), Some(cond)) = (&keys.sort_key, sort) {
        let sk = b.name(&sk.name);
        let part = match cond {
            SortCondition::Compare(op, v) => {
                format!("{sk} {} {}", op.symbol(), b.value(v.clone()))
            }
            SortCondition::Between(l, h) => {
                let (l, h) = (b.value(l.clone()), b.value(h.clone()));
                format!("{sk} BETWEEN {l} AND {h}")
            }
            SortCondition::BeginsWith(p) => format!("begins_with({sk}, {})", b.value(p.clone())),
        };
        text.push_str(" AND ");
        text.push_str(&part);
    }
    text
}

/// One conjunct of an input filter, with what DynamoDB can do with it.
struct Conjunct {
    filter: usize,
    cond: Option<Cond>,
    exact: bool,
}

/// What one key attribute's conjuncts allow.
#[derive(Default)]
struct KeyUse {
    /// Distinct values from `=` / `IN` / `OR` of `=` (the values every
    /// such conjunct allows), with the conjuncts used.
    values: Option<(Vec<AttributeValue>, Vec<usize>)>,
}

/// Plans the read for `filters` when the query needs `columns`.
pub fn plan_access(
    meta: &TableMeta,
    schema: &SchemaRef,
    filters: &[Expr],
    columns: &[String],
    options: &PlanOptions,
) -> AccessPlan {
    let scan = AccessPlan {
        operation: Operation::Scan,
        filter: None,
        exact: vec![false; filters.len()],
    };
    if !options.pushdown {
        return scan;
    }
    let translator = Translator { schema };
    let conjuncts: Vec<Conjunct> = filters
        .iter()
        .enumerate()
        .flat_map(|(i, f)| split_conjunction(f).into_iter().map(move |c| (i, c)))
        .map(|(filter, c)| match translator.translate(c) {
            Some(t) => Conjunct {
                filter,
                cond: Some(t.cond),
                exact: t.exact,
            },
            None => Conjunct {
                filter,
                cond: None,
                exact: false,
            },
        })
        .collect();
    let null_rejected: HashSet<&str> = conjuncts
        .iter()
        .filter_map(|c| match &c.cond {
            Some(Cond::Atom(a)) if a.rejects_missing() && a.path().len() == 1 => {
                Some(a.path()[0].as_str())
            }
            Some(Cond::Or(branches)) => or_of_equalities(branches).map(|(attr, _)| attr),
            _ => None,
        })
        .collect();

    // Candidates: the table first (ties go to it), then eligible indexes.
    let mut candidates: Vec<(Operation, Vec<usize>)> = Vec::new();
    candidates.extend(table_candidates(meta, &conjuncts));
    for index in &meta.indexes {
        if index_allowed(index, meta, columns, &null_rejected, options)
            && let Some(q) = query_candidate(Some(index), &index.keys, &conjuncts)
        {
            candidates.push(q);
        }
    }
    let best =
        candidates
            .into_iter()
            .fold(None::<(Operation, Vec<usize>)>, |best, c| match &best {
                Some(b) if b.0.rank() >= c.0.rank() => best,
                _ => Some(c),
            });
    let (operation, consumed) = best.unwrap_or((Operation::Scan, Vec::new()));

    // What the key does not consume may go to the FilterExpression: never a key
    // attribute of a Query (DynamoDB rejects it), never for GetItem/BatchGetItem.
    let key_attrs: Vec<&str> = match &operation {
        Operation::Query { keys, .. } => keys.attribute_names().collect(),
        _ => Vec::new(),
    };
    let filter = match operation {
        Operation::GetItem { .. } | Operation::BatchGetItem { .. } => None,
        _ => {
            let mut parts: Vec<Cond> = Vec::new();
            for (i, c) in conjuncts.iter().enumerate() {
                let Some(cond) = &c.cond else { continue };
                if consumed.contains(&i) {
                    continue;
                }
                let mut paths = Vec::new();
                cond.paths(&mut paths);
                if paths.iter().any(|p| key_attrs.contains(&p[0].as_str())) {
                    continue;
                }
                // A longer IN list serves keys only: DynamoDB's IN takes 100.
                if !in_lists_fit(cond) {
                    continue;
                }
                parts.push(cond.clone());
            }
            fit_filter(parts)
        }
    };
    let mut exact = vec![true; filters.len()];
    for (i, c) in conjuncts.iter().enumerate() {
        if !(consumed.contains(&i) && c.exact) {
            exact[c.filter] = false;
        }
    }
    AccessPlan {
        operation,
        filter,
        exact,
    }
}

/// True when every `IN` in `cond` has at most [`MAX_IN_VALUES`] values.
fn in_lists_fit(cond: &Cond) -> bool {
    match cond {
        Cond::Atom(Atom::In { values, .. }) => values.len() <= MAX_IN_VALUES,
        Cond::Atom(_) => true,
        Cond::Not(inner) => in_lists_fit(inner),
        Cond::And(parts) | Cond::Or(parts) => parts.iter().all(in_lists_fit),
    }
}

/// Drops trailing conjuncts until the FilterExpression fits DynamoDB's limits.
/// Dropping a conjunct only widens the filter, and DataFusion re-checks it.
fn fit_filter(mut parts: Vec<Cond>) -> Option<Cond> {
    while !parts.is_empty() {
        let cond = if parts.len() == 1 {
            parts[0].clone()
        } else {
            Cond::And(parts.clone())
        };
        let mut b = ExpressionBuilder::default();
        let mut ops = 0;
        let text = b.condition(&cond, &mut ops);
        if text.len() <= MAX_EXPRESSION_BYTES && ops <= MAX_EXPRESSION_OPERATORS {
            return Some(cond);
        }
        parts.pop();
    }
    None
}

/// `a = x OR a = y OR ...` → (`a`, distinct values).
fn or_of_equalities(branches: &[Cond]) -> Option<(&str, Vec<AttributeValue>)> {
    let mut attr: Option<&str> = None;
    let mut values: Vec<AttributeValue> = Vec::new();
    for b in branches {
        match b {
            Cond::Atom(Atom::Cmp {
                path,
                op: CmpOp::Eq,
                value,
            }) if path.len() == 1 => {
                if attr.is_some_and(|a| a != path[0]) {
                    return None;
                }
                attr = Some(&path[0]);
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
            Cond::Atom(Atom::In { path, values: vs }) if path.len() == 1 => {
                if attr.is_some_and(|a| a != path[0]) {
                    return None;
                }
                attr = Some(&path[0]);
                for v in vs {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
            _ => return None,
        }
    }
    attr.map(|a| (a, values))
}

fn value_has_type(v: &AttributeValue, t: KeyType) -> bool {
    matches!(
        (v, t),
        (AttributeValue::S(_), KeyType::S)
            | (AttributeValue::N(_), KeyType::N)
            | (AttributeValue::B(_), KeyType::B)
    )
}

/// A value DynamoDB accepts for a key attribute: the key's type, and not an
/// empty string or binary (DynamoDB rejects those in keys and key conditions;
/// no item, and no index entry, has one).
fn usable_key_value(v: &AttributeValue, t: KeyType) -> bool {
    value_has_type(v, t)
        && match v {
            AttributeValue::S(s) => !s.is_empty(),
            AttributeValue::B(b) => !b.as_ref().is_empty(),
            _ => true,
        }
}

/// Equality values for a key attribute: the values every exact conjunct of
/// equalities on it allows (`pk IN (a, b) AND pk IN (b, c)` is `b`), with
/// those conjuncts. Empty strings and binaries are left out: no key holds one.
fn key_values(attr: &str, key_type: KeyType, conjuncts: &[Conjunct]) -> KeyUse {
    let mut best: Option<(Vec<AttributeValue>, Vec<usize>)> = None;
    for (i, c) in conjuncts.iter().enumerate() {
        if !c.exact {
            continue;
        }
        let values = match &c.cond {
            Some(Cond::Atom(Atom::Cmp {
                path,
                op: CmpOp::Eq,
                value,
            })) if path.len() == 1 && path[0] == attr => {
                vec![value.clone()]
            }
            Some(Cond::Atom(Atom::In { path, values })) if path.len() == 1 && path[0] == attr => {
                values.clone()
            }
            Some(Cond::Or(branches)) => match or_of_equalities(branches) {
                Some((a, values)) if a == attr => values,
                _ => continue,
            },
            _ => continue,
        };
        if !values.iter().all(|v| value_has_type(v, key_type)) {
            continue;
        }
        let values: Vec<AttributeValue> = values
            .into_iter()
            .filter(|v| usable_key_value(v, key_type))
            .collect();
        if values.is_empty() {
            continue;
        }
        best = Some(match best {
            None => (values, vec![i]),
            Some((kept, mut used)) => {
                used.push(i);
                (
                    kept.into_iter().filter(|v| values.contains(v)).collect(),
                    used,
                )
            }
        });
    }
    KeyUse { values: best }
}

/// The best single sort-key condition and the conjuncts it consumes
/// (conjunct, exactly enforced?).
fn sort_condition(
    attr: &str,
    key_type: KeyType,
    conjuncts: &[Conjunct],
) -> Option<(SortCondition, Vec<(usize, bool)>)> {
    let mut lower: Option<(usize, CmpOp, AttributeValue, bool)> = None;
    let mut upper: Option<(usize, CmpOp, AttributeValue, bool)> = None;
    let mut between = None;
    let mut prefix = None;
    for (i, c) in conjuncts.iter().enumerate() {
        let Some(Cond::Atom(a)) = &c.cond else {
            continue;
        };
        if a.path().len() != 1 || a.path()[0] != attr {
            continue;
        }
        // An atom only implied by its conjunct (a LIKE's prefix, a time
        // range a second wide) is a key condition too: the read re-checks
        // the conjunct.
        match a {
            Atom::Cmp {
                op: CmpOp::Eq,
                value,
                ..
            } if usable_key_value(value, key_type) => {
                return Some((
                    SortCondition::Compare(CmpOp::Eq, value.clone()),
                    vec![(i, c.exact)],
                ));
            }
            Atom::Cmp { op, value, .. } if usable_key_value(value, key_type) => {
                let tighter = |cur: &Option<(usize, CmpOp, AttributeValue, bool)>,
                               want: std::cmp::Ordering| {
                    cur.as_ref()
                        .is_none_or(|(_, cop, cv, _)| match compare_values(value, cv) {
                            Some(o) if o == want => true,
                            Some(std::cmp::Ordering::Equal) => {
                                matches!(op, CmpOp::Gt | CmpOp::Lt)
                                    && !matches!(cop, CmpOp::Gt | CmpOp::Lt)
                            }
                            _ => false,
                        })
                };
                match op {
                    CmpOp::Gt | CmpOp::Ge if tighter(&lower, std::cmp::Ordering::Greater) => {
                        lower = Some((i, *op, value.clone(), c.exact))
                    }
                    CmpOp::Lt | CmpOp::Le if tighter(&upper, std::cmp::Ordering::Less) => {
                        upper = Some((i, *op, value.clone(), c.exact))
                    }
                    _ => {}
                }
            }
            Atom::Between { low, high, .. }
                if usable_key_value(low, key_type)
                    && usable_key_value(high, key_type)
                    && between.is_none() =>
            {
                between = Some((i, low.clone(), high.clone(), c.exact));
            }
            Atom::BeginsWith { prefix: p, .. }
                if usable_key_value(p, key_type)
                    && prefix
                        .as_ref()
                        .is_none_or(|(_, _, exact)| !exact && c.exact) =>
            {
                prefix = Some((i, p.clone(), c.exact));
            }
            _ => {}
        }
    }
    if let Some((i, low, high, exact)) = between {
        return Some((SortCondition::Between(low, high), vec![(i, exact)]));
    }
    match (lower, upper) {
        (Some((li, lop, lv, lexact)), Some((ui, uop, uv, uexact)))
            if compare_values(&lv, &uv).is_some_and(|o| o != std::cmp::Ordering::Greater) =>
        {
            // BETWEEN is inclusive: a strict bound is only approximated.
            Some((
                SortCondition::Between(lv, uv),
                vec![
                    (li, lexact && lop == CmpOp::Ge),
                    (ui, uexact && uop == CmpOp::Le),
                ],
            ))
        }
        (Some((i, op, v, exact)), _) | (None, Some((i, op, v, exact))) => {
            Some((SortCondition::Compare(op, v), vec![(i, exact)]))
        }
        (None, None) => {
            prefix.map(|(i, p, exact)| (SortCondition::BeginsWith(p), vec![(i, exact)]))
        }
    }
}

/// A Query on `keys` (the table's, or `index`'s), with the conjuncts it enforces
/// exactly.
fn query_candidate(
    index: Option<&IndexMeta>,
    keys: &KeySchema,
    conjuncts: &[Conjunct],
) -> Option<(Operation, Vec<usize>)> {
    let pk = &keys.partition_key;
    let (values, mut consumed) = key_values(&pk.name, pk.key_type, conjuncts).values?;
    let sort = keys.sort_key.as_ref().and_then(|sk| {
        let (cond, used) = sort_condition(&sk.name, sk.key_type, conjuncts)?;
        consumed.extend(used.iter().filter(|(_, exact)| *exact).map(|(i, _)| *i));
        Some(cond)
    });
    Some((
        Operation::Query {
            index: index.map(|i| i.name.clone()),
            keys: keys.clone(),
            partition_values: values,
            sort,
        },
        consumed,
    ))
}

/// GetItem, BatchGetItem or Query on the table's own keys.
fn table_candidates(meta: &TableMeta, conjuncts: &[Conjunct]) -> Vec<(Operation, Vec<usize>)> {
    let mut out = Vec::new();
    let pk = &meta.keys.partition_key;
    let pk_use = key_values(&pk.name, pk.key_type, conjuncts).values;
    let sk_use = meta
        .keys
        .sort_key
        .as_ref()
        .map(|sk| key_values(&sk.name, sk.key_type, conjuncts).values);
    // Full keys from the cross product of key values, or one OR of full
    // keys: the fewer keys.
    let product: Option<(Vec<Key>, Vec<usize>)> = match (&pk_use, &sk_use) {
        (Some((pks, pi)), None) => Some((
            pks.iter()
                .map(|v| vec![(pk.name.clone(), v.clone())])
                .collect(),
            pi.clone(),
        )),
        (Some((pks, pi)), Some(Some((sks, si)))) if pks.len() * sks.len() <= MAX_BATCH_KEYS => {
            let sk_name = meta
                .keys
                .sort_key
                .as_ref()
                .map(|k| k.name.clone())
                .unwrap_or_default();
            Some((
                pks.iter()
                    .flat_map(|p| {
                        sks.iter().map(|s| {
                            vec![(pk.name.clone(), p.clone()), (sk_name.clone(), s.clone())]
                        })
                    })
                    .collect(),
                pi.iter().chain(si).copied().collect(),
            ))
        }
        _ => None,
    };
    let keys = match (product, full_key_disjunction(meta, conjuncts)) {
        (Some(p), Some(d)) => Some(if d.0.len() < p.0.len() { d } else { p }),
        (p, d) => p.or(d),
    };
    if let Some((keys, consumed)) = keys {
        if keys.len() == 1 {
            out.push((
                Operation::GetItem {
                    key: keys.into_iter().next().unwrap_or_default(),
                },
                consumed,
            ));
        } else if keys.len() <= MAX_BATCH_KEYS {
            out.push((Operation::BatchGetItem { keys }, consumed));
        }
    }
    if let Some(q) = query_candidate(None, &meta.keys, conjuncts) {
        out.push(q);
    }
    out
}

/// `(pk = a AND sk = 1) OR (pk = b AND sk = 2) ...` as a list of full keys.
fn full_key_disjunction(
    meta: &TableMeta,
    conjuncts: &[Conjunct],
) -> Option<(Vec<Key>, Vec<usize>)> {
    let names: Vec<&str> = meta.keys.attribute_names().collect();
    for (i, c) in conjuncts.iter().enumerate() {
        let Some(Cond::Or(branches)) = &c.cond else {
            continue;
        };
        if !c.exact {
            continue;
        }
        let mut keys: Vec<Key> = Vec::new();
        let ok = branches.iter().all(|b| {
            let atoms: Vec<&Cond> = match b {
                Cond::And(parts) => parts.iter().collect(),
                other => vec![other],
            };
            let mut key: Key = Vec::new();
            for name in &names {
                let kt = meta.key_type_of(name);
                let found = atoms.iter().find_map(|a| match a {
                    Cond::Atom(Atom::Cmp {
                        path,
                        op: CmpOp::Eq,
                        value,
                    }) if path.len() == 1
                        && path[0] == *name
                        && kt.is_some_and(|t| value_has_type(value, t)) =>
                    {
                        Some(value.clone())
                    }
                    _ => None,
                });
                match found {
                    Some(v) => key.push((name.to_string(), v)),
                    None => return false,
                }
            }
            if atoms.len() != names.len() {
                return false;
            }
            // A branch with an empty string or binary key matches no item.
            let possible = key.iter().all(|(name, v)| {
                meta.key_type_of(name)
                    .is_some_and(|t| usable_key_value(v, t))
            });
            if possible && !keys.contains(&key) {
                keys.push(key);
            }
            true
        });
        if ok && !keys.is_empty() && keys.len() <= MAX_BATCH_KEYS {
            return Some((keys, vec![i]));
        }
    }
    None
}

/// An index may answer the query only if every item of the answer is in it and
/// it holds every column the query needs.
fn index_allowed(
    index: &IndexMeta,
    meta: &TableMeta,
    columns: &[String],
    null_rejected: &HashSet<&str>,
    options: &PlanOptions,
) -> bool {
    match &options.index {
        IndexPolicy::Never => return false,
        IndexPolicy::Only(name) if name != &index.name => return false,
        _ => {}
    }
    if index.kind == IndexKind::Global && options.consistent_read {
        return false;
    }
    // A sparse index lacks items without its keys: the predicate must reject
    // those rows. A table key attribute is in every item, so only the index's
    // other key attributes need such a predicate.
    if !index
        .keys
        .attribute_names()
        .all(|k| null_rejected.contains(k) || meta.keys.attribute_names().any(|t| t == k))
    {
        return false;
    }
    index_projects(index, meta, columns)
}

/// True when `index` holds every one of `columns` (its keys, the table's
/// keys, and what it projects).
fn index_projects(index: &IndexMeta, meta: &TableMeta, columns: &[String]) -> bool {
    match &index.projection {
        IndexProjection::All => true,
        projection => columns.iter().all(|c| {
            index.keys.attribute_names().any(|k| k == c)
                || meta.keys.attribute_names().any(|k| k == c)
                || matches!(projection, IndexProjection::Include(attrs) if attrs.contains(c))
        }),
    }
}

#[cfg(test)]
mod tests;
