//! The scan contract: everything one scan of a table does, decided before
//! any request — which operation, which conditions go where, which columns
//! are read and decoded, how the read splits into units and the units into
//! partitions, where it may stop. [`ScanPlan`] is plain data (serializable,
//! no SDK client, no credentials) and a pure function of the table's
//! metadata, its schema, the query's filters, projection and limit and the
//! read options, so `scan()` is plan → guard → exec and the plan can travel
//! to another process.
//!
//! ## How an early Exact answer stays safe
//! DataFusion asks `supports_filters_pushdown` about the filters first and
//! hands `scan` those it kept; both take the read from one decision
//! ([`super::Decisions`]). Every filter the scan's read does not enforce
//! exactly ([`ScanPlan::residual`]) is re-checked on the read's rows by the
//! read itself, whatever was answered before: a filter declared Exact and
//! then not enforced (the scan needed a column the early read's index
//! lacks) is still evaluated, and a filter goes unchecked only where this
//! very read enforces it.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::logical_expr::Expr;
use serde::{Deserialize, Serialize};

use super::cost::{
    Basis, CostModel, DEFAULT_PRICE_PER_MILLION_RRU, ReadEstimate, cost_model, estimate,
};
use super::predicate::{Atom, CmpOp, Cond};
use super::{
    AccessPlan, Decisions, IndexPolicy, Operation, PlanOptions, ProjectionExpression, ReadUnit,
    RenderedRequest, plan_access,
};
use crate::key_stats::KeyStats;
use crate::metadata::TableMeta;
use crate::policy::{DEFAULT_MAX_CONCURRENCY, RetryPolicy};
use crate::schema::infer::is_extra_field;
use aws_sdk_dynamodb::types::AttributeValue;

/// Top-level columns an expression reads, added to `out` once each.
pub(crate) fn expr_columns(e: &Expr, out: &mut Vec<String>) {
    for c in e.column_refs() {
        if !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
}

/// The columns handed on (DataFusion's projection, all when `None`) and
/// the columns the planner must know the query needs (those and the
/// filters' columns).
pub(crate) fn query_columns(
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    filters: &[Expr],
) -> (Vec<String>, Vec<String>) {
    let output: Vec<String> = match projection {
        Some(indices) => indices
            .iter()
            .map(|i| schema.field(*i).name().clone())
            .collect(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let mut needed = output.clone();
    filters.iter().for_each(|f| expr_columns(f, &mut needed));
    (output, needed)
}

/// How a table is read, apart from the query: the planner's options and
/// the read's own settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadOptions {
    /// Pushdown, index choice, consistency.
    pub(crate) plan: PlanOptions,
    /// Segments of a full parallel Scan.
    pub(crate) segments: u32,
    /// Most partitions the units are spread over (DataFusion's target).
    pub(crate) max_partitions: usize,
    /// Items per request, if set.
    pub(crate) page_size: Option<i32>,
    /// Retries of each request, and the query's retry budget.
    pub(crate) retry: RetryPolicy,
    /// Read capacity units per second the whole scan may use, if limited.
    pub(crate) read_capacity: Option<f64>,
    /// Most requests the whole scan keeps in flight.
    pub(crate) max_concurrency: usize,
    /// Requests in flight when the scan starts, when set by hand (otherwise
    /// [`initial_limit`](crate::read::concurrency::initial_limit)).
    pub(crate) initial_concurrency: Option<usize>,
    /// Pages one second of the table's provisioned read capacity pays for
    /// (`None`: on-demand), bounding the automatic initial concurrency.
    pub(crate) capacity_pages: Option<usize>,
    /// Read capacity units a query may consume at most, if capped.
    pub(crate) max_rcu: Option<f64>,
    /// The cap is the table option's (lower than the session's, or the only
    /// one), not the session's `dynamodb.max_rcu`: says how to raise it.
    pub(crate) max_rcu_by_table: bool,
    /// USD per million read request units, for estimates.
    pub(crate) price_per_million_rru: f64,
    /// Items whose time to live has passed are hidden.
    pub(crate) hide_expired: Option<Expiry>,
}

/// Hiding items whose time to live has passed: those whose TTL attribute
/// (epoch seconds) is at or before `now`. Scans and Queries send it in
/// their FilterExpression (`attribute_not_exists(#ttl) OR #ttl > :now`);
/// GetItem and BatchGetItem, which have none, check it on the items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Expiry {
    /// The TTL attribute.
    pub(crate) attribute: String,
    /// The query's time, in seconds since the epoch.
    pub(crate) now: i64,
}

impl Expiry {
    /// The condition that keeps an item: no TTL, or a TTL after `now`.
    pub(crate) fn condition(&self) -> Cond {
        let path = vec![self.attribute.clone()];
        Cond::Or(vec![
            Cond::Atom(Atom::IsNull { path: path.clone() }),
            Cond::Atom(Atom::Cmp {
                path,
                op: CmpOp::Gt,
                value: AttributeValue::N(self.now.to_string()),
            }),
        ])
    }

    /// True when `item` has expired: its TTL is a number at or before `now`.
    pub(crate) fn expired(&self, item: &std::collections::HashMap<String, AttributeValue>) -> bool {
        item.get(&self.attribute).is_some_and(|ttl| {
            crate::value::compare_values(ttl, &AttributeValue::N(self.now.to_string()))
                .is_some_and(|o| o != std::cmp::Ordering::Greater)
        })
    }
}

/// What one scan was asked: the planner's inputs. A read keeps it to plan
/// again when it learns more conditions as it starts (a join's keys).
#[derive(Debug, Clone)]
pub(crate) struct ScanRequest {
    /// The table's metadata (DescribeTable).
    pub(crate) meta: Arc<TableMeta>,
    /// The table's columns, as the scan saw them.
    pub(crate) schema: SchemaRef,
    /// The query's filters, in the order `residual` and `exact` count them.
    pub(crate) filters: Vec<Expr>,
    /// The columns handed on (all when `None`).
    pub(crate) projection: Option<Vec<usize>>,
    /// The query's limit.
    pub(crate) limit: Option<usize>,
    /// How the table is read.
    pub(crate) options: ReadOptions,
    /// The schema sample's key statistics, for the estimate.
    pub(crate) key_stats: Option<Arc<KeyStats>>,
    /// The table's decisions: the read DataFusion's early question chose.
    pub(crate) decisions: Arc<Decisions>,
}

impl ScanRequest {
    /// The plan of this scan, with its estimate.
    pub(crate) fn plan(&self) -> Result<ScanPlan, ArrowError> {
        let index = self.options.plan.index.clone();
        self.plan_with(&[], self.options.max_partitions, index)
    }

    /// The index policies a read planned again may try: the scan's own,
    /// and when that is `Auto`, the table alone and each index alone too —
    /// the planner ranks reads by their shape, the caller by their cost.
    pub(crate) fn index_choices(&self) -> Vec<IndexPolicy> {
        match &self.options.plan.index {
            IndexPolicy::Auto => [IndexPolicy::Auto, IndexPolicy::Never]
                .into_iter()
                .chain(
                    self.meta
                        .indexes
                        .iter()
                        .map(|i| IndexPolicy::Only(i.name.clone())),
                )
                .collect(),
            other => vec![other.clone()],
        }
    }

    /// The plan of this scan with `implied` conditions added after its own
    /// filters (conditions its rows are known to meet), its units spread
    /// over at most `max_partitions` partitions, indexes used as `index`
    /// allows.
    pub(crate) fn plan_with(
        &self,
        implied: &[Expr],
        max_partitions: usize,
        index: IndexPolicy,
    ) -> Result<ScanPlan, ArrowError> {
        let filters: Vec<Expr> = self.filters.iter().chain(implied).cloned().collect();
        let options = ReadOptions {
            max_partitions,
            plan: PlanOptions {
                index,
                ..self.options.plan.clone()
            },
            ..self.options.clone()
        };
        let (output, _) = query_columns(&self.schema, self.projection.as_deref(), &[]);
        let access =
            self.decisions
                .for_scan(&self.meta, &self.schema, &filters, &output, &options.plan);
        Ok(ScanPlan::decided(
            access,
            &self.meta,
            &self.schema,
            &filters,
            self.projection.as_deref(),
            self.limit,
            &options,
        )?
        .with_cost(&self.meta, self.key_stats.as_deref()))
    }
}

fn default_price() -> f64 {
    DEFAULT_PRICE_PER_MILLION_RRU
}

/// One scan of a table, decided: what DynamoDB is asked, how the asking is
/// split, what is decoded and what is re-checked above the read.
///
/// Plain data: it serializes (serde, self-describing formats such as JSON;
/// DynamoDB values travel as DynamoDB JSON) and holds no client and no
/// credentials. Get one from an executed or planned [`crate::DynamoExec`]:
///
/// ```no_run
/// # fn show(exec: &dynamo_datafusion::DynamoExec) -> serde_json::Result<()> {
/// use dynamo_datafusion::ScanPlan;
/// let plan = exec.scan_plan();
/// println!("{} on {} in {} partitions", plan.operation(), plan.table(), plan.partition_count());
/// let text = serde_json::to_string(plan)?;
/// assert_eq!(&serde_json::from_str::<ScanPlan>(&text)?, plan);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanPlan {
    /// The table read.
    pub(crate) table: String,
    /// The operation and the conditions that go into it.
    pub(crate) access: AccessPlan,
    /// Columns handed on, in order (the first of `read_columns`).
    pub(crate) output: Vec<String>,
    /// The filters (by position) the read does not enforce exactly: they are
    /// re-applied above it.
    pub(crate) residual: Vec<usize>,
    /// Columns decoded: `output`, then what the residual filters need.
    pub(crate) read_columns: Vec<String>,
    /// The `ProjectionExpression` (`None`: whole items).
    pub(crate) projection: Option<ProjectionExpression>,
    /// The read's units (segments, Queries, keys), by partition: every
    /// unit is in exactly one partition.
    pub(crate) partitions: Vec<Vec<ReadUnit>>,
    /// Items each partition may stop after: the query's limit, when nothing
    /// is re-checked above the read.
    pub(crate) limit: Option<usize>,
    /// Strongly consistent reads.
    pub(crate) consistent_read: bool,
    /// Items per request, if set (never sent together with a filter).
    pub(crate) page_size: Option<i32>,
    /// Query direction.
    pub(crate) scan_forward: bool,
    /// Retries of each request, and the scan's retry budget.
    pub(crate) retry: RetryPolicy,
    /// Read capacity units per second, if limited.
    pub(crate) read_capacity: Option<f64>,
    /// Most requests the scan keeps in flight (over all its partitions).
    pub(crate) max_concurrency: usize,
    /// Requests in flight when the scan starts (the adaptive limit's start).
    #[serde(default = "initial_concurrency_default")]
    pub(crate) initial_concurrency: usize,
    /// What the estimate is made from (`None`: not estimated).
    #[serde(default)]
    pub(crate) cost: Option<CostModel>,
    /// Read capacity units the query may consume at most, if capped.
    #[serde(default)]
    pub(crate) max_rcu: Option<f64>,
    /// `max_rcu` is the table option's, not the session's.
    #[serde(default)]
    pub(crate) max_rcu_by_table: bool,
    /// The estimate of the whole query this read is part of, when several
    /// reads share the ceiling (set by [`crate::CapacityCeilingRule`]).
    #[serde(default)]
    pub(crate) query_estimate: Option<ReadEstimate>,
    /// The query's reads, described for a refusal (with `query_estimate`).
    #[serde(default)]
    pub(crate) query_reads: Option<String>,
    /// USD per million read request units, for the estimate's price.
    #[serde(default = "default_price")]
    pub(crate) price_per_million_rru: f64,
    /// Items whose time to live has passed are hidden: in the
    /// FilterExpression of a Scan or Query, on the items of key lookups.
    #[serde(default)]
    pub(crate) expiry: Option<Expiry>,
}

/// The initial concurrency of plans serialized before it was part of them.
fn initial_concurrency_default() -> usize {
    crate::read::concurrency::INITIAL_LIMIT
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            plan: PlanOptions::default(),
            segments: 1,
            max_partitions: 1,
            page_size: None,
            retry: RetryPolicy::default(),
            read_capacity: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            initial_concurrency: None,
            capacity_pages: None,
            max_rcu: None,
            max_rcu_by_table: false,
            price_per_million_rru: DEFAULT_PRICE_PER_MILLION_RRU,
            hide_expired: None,
        }
    }
}

impl ScanPlan {
    /// Plans reading `meta`'s table (columns `schema`) for a query that
    /// hands on `projection` (all columns when `None`), with `filters` and
    /// `limit`.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn new(
        meta: &TableMeta,
        schema: &SchemaRef,
        filters: &[Expr],
        projection: Option<&[usize]>,
        limit: Option<usize>,
        options: &ReadOptions,
    ) -> Result<Self, ArrowError> {
        let (_, needed) = query_columns(schema, projection, filters);
        let access = plan_access(meta, schema, filters, &needed, &options.plan);
        Self::decided(access, meta, schema, filters, projection, limit, options)
    }

    /// The plan reading with `access`, decided for `filters` and the
    /// columns the query needs.
    pub(crate) fn decided(
        access: AccessPlan,
        meta: &TableMeta,
        schema: &SchemaRef,
        filters: &[Expr],
        projection: Option<&[usize]>,
        limit: Option<usize>,
        options: &ReadOptions,
    ) -> Result<Self, ArrowError> {
        let (output, _) = query_columns(schema, projection, filters);
        let residual: Vec<usize> = access
            .exact
            .iter()
            .enumerate()
            .filter(|(_, exact)| !**exact)
            .map(|(i, _)| i)
            .collect();
        let mut read_columns = output.clone();
        for &i in &residual {
            if let Some(f) = filters.get(i) {
                expr_columns(f, &mut read_columns);
            }
        }
        let read_schema = project(schema, &read_columns)?;
        let reads_extra = read_schema.fields().iter().any(|f| is_extra_field(f));
        let attributes = if read_columns.is_empty() {
            // Nothing needed but the row count: read the smallest thing there is.
            vec![meta.keys.partition_key.name.clone()]
        } else if reads_extra {
            // Every attribute, to find those the schema has no column for.
            vec![]
        } else {
            read_columns.clone()
        };
        // Scans and Queries filter expired items in DynamoDB; key lookups
        // drop them after the read (see `request_projection`).
        let mut access = access;
        if let (Some(expiry), Operation::Scan | Operation::Query { .. }) =
            (&options.hide_expired, &access.operation)
        {
            access.filter = Some(match access.filter.take() {
                Some(Cond::And(mut all)) => {
                    all.push(expiry.condition());
                    Cond::And(all)
                }
                Some(other) => Cond::And(vec![other, expiry.condition()]),
                None => expiry.condition(),
            });
        }
        let segments = match (&access.operation, limit, residual.is_empty()) {
            // A limit is met fastest by one segment reading only that many items.
            (Operation::Scan, Some(_), true) => 1,
            (Operation::Scan, _, _) => options.segments.max(1),
            _ => 1,
        };
        let partitions = access.partitions(segments, options.max_partitions);
        let max_concurrency = options.max_concurrency.max(1);
        let units = partitions.iter().map(Vec::len).sum();
        let initial_concurrency = options
            .initial_concurrency
            .unwrap_or_else(|| {
                crate::read::concurrency::initial_limit(units, options.capacity_pages)
            })
            .clamp(1, max_concurrency);
        Ok(Self {
            table: meta.name.clone(),
            partitions,
            limit: if residual.is_empty() { limit } else { None },
            access,
            output,
            residual,
            read_columns,
            projection: ProjectionExpression::new(attributes),
            consistent_read: options.plan.consistent_read,
            page_size: options.page_size,
            scan_forward: true,
            retry: options.retry.clone(),
            read_capacity: options.read_capacity,
            max_concurrency,
            initial_concurrency,
            cost: None,
            max_rcu: options.max_rcu,
            max_rcu_by_table: options.max_rcu_by_table,
            query_estimate: None,
            query_reads: None,
            price_per_million_rru: options.price_per_million_rru,
            expiry: options.hide_expired.clone(),
        })
    }

    /// This plan with its cost estimated from `meta` (DescribeTable) and
    /// the schema sample's key statistics `keys`.
    pub(crate) fn with_cost(mut self, meta: &TableMeta, keys: Option<&KeyStats>) -> Self {
        self.cost = Some(cost_model(meta, keys, &self.access.operation));
        self
    }

    /// This read, narrowed to the operation and conditions of `replanned`
    /// — the same query planned with more conditions (a join's keys, which
    /// the caller checks on every row) — and the filters (by position) this
    /// read enforces exactly and the narrowed one does not: the caller
    /// re-checks those too, as nothing above the read does. What is
    /// decoded, the projection and the limit stay this plan's; a Scan keeps
    /// its segments.
    pub(crate) fn narrowed_to(&self, replanned: ScanPlan) -> (ScanPlan, Vec<usize>) {
        let recheck: Vec<usize> = self
            .access
            .exact
            .iter()
            .enumerate()
            .filter(|(i, exact)| {
                **exact && !replanned.access.exact.get(*i).copied().unwrap_or(false)
            })
            .map(|(i, _)| i)
            .collect();
        let mut plan = self.clone();
        if replanned.access.operation != Operation::Scan {
            plan.partitions = replanned.partitions;
        }
        plan.access = AccessPlan {
            exact: self.access.exact.clone(),
            ..replanned.access
        };
        plan.cost = replanned.cost;
        plan.query_estimate = None;
        (plan, recheck)
    }

    /// This read, asking DynamoDB for `attributes` too (when it names the
    /// attributes it reads; whole items hold them already).
    pub(crate) fn reading_also(&mut self, attributes: &[String]) {
        if let Some(p) = &mut self.projection {
            for a in attributes {
                if !p.paths.iter().any(|path| path.len() == 1 && &path[0] == a) {
                    p.paths.push(vec![a.clone()]);
                }
            }
        }
    }

    /// This read reading nothing (a join whose other side is empty).
    pub(crate) fn reading_nothing(&self) -> ScanPlan {
        let mut plan = self.clone();
        plan.access.operation = Operation::BatchGetItem { keys: Vec::new() };
        plan.access.filter = None;
        plan.partitions = Vec::new();
        plan.query_estimate = None;
        plan
    }

    /// The operation, for a reader: `BatchGetItem of 52 keys`, `Query of
    /// 3 partition keys on index 'byDevice'`, `Scan of 4 segments with a
    /// FilterExpression`.
    pub(crate) fn describe_operation(&self) -> String {
        let filtered = if self.access.has_filter() {
            " with a FilterExpression"
        } else {
            ""
        };
        match &self.access.operation {
            Operation::GetItem { .. } => "GetItem of 1 key".to_string(),
            Operation::BatchGetItem { keys } => format!(
                "BatchGetItem of {} key{}",
                keys.len(),
                if keys.len() == 1 { "" } else { "s" }
            ),
            Operation::Query {
                index,
                partition_values,
                sort,
                ..
            } => format!(
                "Query of {} partition key{}{}{}{filtered}",
                partition_values.len(),
                if partition_values.len() == 1 { "" } else { "s" },
                if sort.is_some() {
                    " and a sort-key range"
                } else {
                    ""
                },
                index
                    .as_ref()
                    .map(|i| format!(" on index '{i}'"))
                    .unwrap_or_default(),
            ),
            Operation::Scan => {
                let n = self.unit_count();
                let s = if n == 1 { "" } else { "s" };
                format!("Scan of {n} segment{s}{filtered}")
            }
        }
    }

    /// A plain parallel Scan of whole items in `segments` segments, one
    /// partition each (schema sampling).
    pub(crate) fn whole_table(table: &str, segments: u32, consistent_read: bool) -> Self {
        let access = AccessPlan::full_scan(0);
        Self {
            table: table.to_string(),
            partitions: access.partitions(segments, segments as usize),
            access,
            output: vec![],
            residual: vec![],
            read_columns: vec![],
            projection: None,
            limit: None,
            consistent_read,
            page_size: None,
            scan_forward: true,
            retry: RetryPolicy::default(),
            read_capacity: None,
            max_concurrency: segments.max(1) as usize,
            initial_concurrency: segments.max(1) as usize,
            cost: None,
            max_rcu: None,
            max_rcu_by_table: false,
            query_estimate: None,
            query_reads: None,
            price_per_million_rru: DEFAULT_PRICE_PER_MILLION_RRU,
            expiry: None,
        }
    }

    /// The table read.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB operation: `GetItem`, `BatchGetItem`, `Query` or `Scan`.
    pub fn operation(&self) -> &'static str {
        self.access.operation.name()
    }

    /// Partitions the read is spread over.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Requests the read starts with: scan segments, Queries, GetItem keys,
    /// BatchGetItem chunks (each may take several pages).
    pub fn unit_count(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }

    /// The filters (by their position in the scan's filters) re-applied
    /// above the read.
    pub fn residual_filters(&self) -> &[usize] {
        &self.residual
    }

    /// Items each partition may stop after, if the read is limited.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Most requests the scan keeps in flight, over all its partitions.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// What this read is estimated to cost before it is sent (`None` when
    /// the plan was made without an estimate).
    pub fn estimate(&self) -> Option<ReadEstimate> {
        let model = self.cost.as_ref()?;
        Some(estimate(
            model,
            &self.partitions,
            self.limit,
            self.consistent_read,
        ))
    }

    /// Read capacity units the query may consume at most, if capped.
    pub fn max_rcu(&self) -> Option<f64> {
        self.max_rcu
    }

    /// USD per million read request units the estimate is priced at.
    pub fn price_per_million_rru(&self) -> f64 {
        self.price_per_million_rru
    }

    /// This plan with at most `limit` items (the lower of its own and
    /// `limit`); the estimate follows it.
    pub(crate) fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = match (self.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }

    /// This plan reading its Query in descending sort-key order, or not.
    pub(crate) fn with_descending(mut self, descending: bool) -> Self {
        self.scan_forward = !descending;
        self
    }

    /// This plan asking DynamoDB for `projection` only.
    pub(crate) fn with_projection(mut self, projection: ProjectionExpression) -> Self {
        self.projection = Some(projection);
        self
    }

    /// This plan held to `max_rcu` as one of a query's reads estimated at
    /// `query` together (`reads` says which, for messages), the ceiling set
    /// by a table option (`by_table`) or the session.
    pub(crate) fn with_query_ceiling(
        mut self,
        max_rcu: f64,
        query: ReadEstimate,
        reads: String,
        by_table: bool,
    ) -> Self {
        self.max_rcu = Some(max_rcu);
        self.max_rcu_by_table = by_table;
        self.query_estimate = Some(query);
        self.query_reads = Some(reads);
        self
    }

    /// What the ceiling is held against: the whole query's estimate when
    /// several reads share it, else this read's.
    pub(crate) fn ceiling_estimate(&self) -> Option<ReadEstimate> {
        self.query_estimate.or_else(|| self.estimate())
    }

    /// Where this read's estimate comes from, for `EXPLAIN`.
    pub(crate) fn estimate_basis(&self) -> Option<&Basis> {
        self.cost.as_ref().map(|c| &c.basis)
    }

    /// What is decoded: `read_columns` of the table's `schema`.
    #[cfg(test)]
    pub(crate) fn read_schema(&self, schema: &SchemaRef) -> Result<SchemaRef, ArrowError> {
        project(schema, &self.read_columns)
    }

    /// The columns handed on, of the table's `schema`.
    pub(crate) fn output_schema(&self, schema: &SchemaRef) -> Result<SchemaRef, ArrowError> {
        project(schema, &self.output)
    }

    /// The expressions of `unit`'s request, rendered once: what the read
    /// sends, what `EXPLAIN` shows, what the fuzz check parses.
    pub(crate) fn render(&self, unit: &ReadUnit) -> RenderedRequest {
        self.access
            .render(unit, self.request_projection().as_deref())
    }

    /// The ProjectionExpression requests carry: the plan's, and for a key
    /// lookup that drops expired items itself, the TTL attribute too —
    /// whatever the projection became (a join's keys, an absorbed
    /// projection).
    pub(crate) fn request_projection(&self) -> Option<Cow<'_, ProjectionExpression>> {
        let p = self.projection.as_ref()?;
        match (&self.expiry, &self.access.operation) {
            (Some(e), Operation::GetItem { .. } | Operation::BatchGetItem { .. })
                if !p
                    .paths
                    .iter()
                    .any(|path| path.len() == 1 && path[0] == e.attribute) =>
            {
                let mut p = p.clone();
                p.paths.push(vec![e.attribute.clone()]);
                Some(Cow::Owned(p))
            }
            _ => Some(Cow::Borrowed(p)),
        }
    }
}

/// `columns` of `schema`, in that order.
fn project(schema: &SchemaRef, columns: &[String]) -> Result<SchemaRef, ArrowError> {
    let indices = columns
        .iter()
        .map(|c| schema.index_of(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(schema.project(&indices)?))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::{col, ident, lit};

    use super::*;
    use crate::plan::fixture;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            crate::schema::infer::extra_field(),
        ]))
    }

    fn options(segments: u32) -> ReadOptions {
        ReadOptions {
            segments,
            max_partitions: segments as usize,
            ..ReadOptions::default()
        }
    }

    #[test]
    fn residual_filters_add_the_columns_they_read_after_the_output() {
        let meta = TableMeta::hash_only("T", "id");
        // The key lookup enforces `id = 'u1'`; `b = 'x'` is re-checked above it.
        let filters = [col("b").eq(lit("x")), col("id").eq(lit("u1"))];
        let plan = ScanPlan::new(&meta, &schema(), &filters, Some(&[1]), Some(5), &options(4))
            .expect("plan");
        assert_eq!(plan.operation(), "GetItem");
        assert_eq!(plan.output, ["a"]);
        assert_eq!(plan.residual, vec![0]);
        assert_eq!(plan.read_columns, ["a", "b"]);
        let read = plan.read_schema(&schema()).expect("schema");
        let names: Vec<&str> = read.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(plan.limit, None, "a re-checked filter may drop rows");
        assert_eq!(
            plan.projection.map(|p| p.attributes()),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn a_row_count_reads_the_partition_key_and_a_limit_one_segment() {
        let meta = TableMeta::hash_only("T", "id");
        let plan =
            ScanPlan::new(&meta, &schema(), &[], Some(&[]), Some(3), &options(4)).expect("plan");
        assert_eq!(
            plan.projection.map(|p| p.attributes()),
            Some(vec!["id".to_string()])
        );
        assert_eq!(plan.partitions, vec![vec![ReadUnit::Segment(0, 1)]]);
        assert_eq!(plan.limit, Some(3));
    }

    #[test]
    fn the_extra_attributes_column_reads_whole_items_in_every_segment() {
        let meta = TableMeta::hash_only("T", "id");
        let plan =
            ScanPlan::new(&meta, &schema(), &[], Some(&[0, 3]), None, &options(2)).expect("plan");
        assert!(plan.projection.is_none());
        assert_eq!(
            plan.partitions,
            vec![vec![ReadUnit::Segment(0, 2)], vec![ReadUnit::Segment(1, 2)]]
        );
    }

    #[test]
    fn expired_items_are_filtered_by_scans_and_dropped_by_key_lookups() {
        let meta = TableMeta::hash_only("T", "id");
        let hide = ReadOptions {
            hide_expired: Some(Expiry {
                attribute: "ttl".into(),
                now: 100,
            }),
            ..options(1)
        };
        let scan = ScanPlan::new(&meta, &schema(), &[], Some(&[1]), None, &hide).expect("plan");
        let r = scan.render(&scan.partitions[0][0]);
        assert_eq!(
            r.filter.as_deref(),
            Some("((attribute_not_exists(#n1) OR attribute_type(#n1, :v0)) OR #n1 > :v1)")
        );
        let get = ScanPlan::new(
            &meta,
            &schema(),
            &[col("id").eq(lit("u1"))],
            Some(&[1]),
            None,
            &hide,
        )
        .expect("plan");
        assert_eq!(get.operation(), "GetItem");
        // The lookup reads the TTL attribute even when its projection
        // changes later (a join's keys, an absorbed projection).
        let mut narrowed = get.clone();
        narrowed.projection = ProjectionExpression::new(vec!["a".into()]);
        let r = narrowed.render(&narrowed.partitions[0][0]);
        assert_eq!(r.projection.as_deref(), Some("#n0, #n1"));
        assert_eq!(
            r.names.and_then(|n| n.get("#n1").cloned()).as_deref(),
            Some("ttl")
        );
        let expiry = get.expiry.expect("kept for the lookup");
        let item = |ttl: &str| {
            std::collections::HashMap::from([("ttl".to_string(), AttributeValue::N(ttl.into()))])
        };
        assert!(expiry.expired(&item("100")) && expiry.expired(&item("99.5")));
        assert!(!expiry.expired(&item("100.5")) && !expiry.expired(&Default::default()));
    }

    #[test]
    fn a_plan_serializes_and_comes_back_the_same() {
        let (meta, schema) = (fixture::orders_meta(), fixture::orders_schema());
        let filters = [
            col("customer").in_list(vec![lit("c1"), lit("c2"), lit("c3")], false),
            ident("orderId").gt(lit(5i64)),
            col("status").eq(lit("open")),
        ];
        let plan =
            ScanPlan::new(&meta, &schema, &filters, None, Some(10), &options(3)).expect("plan");
        assert_eq!(plan.operation(), "Query");
        assert!(plan.access.has_filter());
        let text = serde_json::to_string(&plan).expect("serialize");
        assert!(!text.contains("client"), "no client in a plan: {text}");
        let back: ScanPlan = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, plan);
        let unit = &plan.partitions[0][0];
        assert_eq!(
            back.render(unit),
            plan.render(unit),
            "renders the same request"
        );
    }
}
