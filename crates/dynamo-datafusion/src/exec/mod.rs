//! The physical plan: a DynamoDB read streamed as record batches, one page at a
//! time. Partitions are scan segments, groups of Queries, or groups of
//! BatchGetItem requests; each item belongs to exactly one partition.

pub(crate) mod ceiling_rule;
pub(crate) mod drive;
mod input;
mod join;
pub(crate) mod nested;
mod parts;
pub(crate) mod readable;
pub(crate) mod recheck_rule;
pub use parts::{ExecLayout, ExecParts};
pub(crate) mod stats;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::ExecutionProps;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::{
    EquivalenceProperties, PhysicalExpr, PhysicalSortExpr, create_physical_expr,
};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::filter::batch_filter;
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SortOrderPushdownResult,
};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, stream};

use crate::client::ConnectionOptions;
use crate::config::JoinKeyLookups;
use crate::decode::{Item, ItemDecoder};
use crate::error::Error;
use crate::exec::nested::{NestedProjection, uses_of};
use crate::plan::cost::Basis;
use crate::plan::render::{display_value, resolve_placeholders};
use crate::plan::{Operation, ProjectionExpression, ReadEstimate, ReadUnit, ScanPlan, ScanRequest};
use crate::read::Reader;
use crate::read::cancel::TaskWatch;
use crate::read::ceiling::Ceiling;
use crate::read::concurrency::Concurrency;
use crate::schema::infer::is_extra_field;
use crate::schema::widen::{SchemaState, schema_changes};
use crate::value::dynamo_json::items_from_json_text;
use drive::{Arrival, Remaining, drive};

/// Reads a DynamoDB table (or index) as a stream of record batches.
///
/// `EXPLAIN` shows the operation, table, index, key condition, filter,
/// projection, limit and partitions; `EXPLAIN ANALYZE` adds `requests`,
/// `pages`, `output_rows` (items returned), `scanned_count` and
/// `consumed_rcu_milli` (read capacity units × 1000).
///
/// On the probe side of a hash join it takes the join's dynamic filter and,
/// when its stream starts, plans its read again with the build side's keys
/// (BatchGetItem, Queries of the table or an index, or a FilterExpression)
/// when that still enforces what the planned read does and costs less
/// (`dynamodb.join_key_lookups`); `EXPLAIN ANALYZE` shows the choice as
/// `join_keys=[…]`, and every row handed on passes the filter.
#[derive(Debug, Clone)]
pub struct DynamoExec {
    client: Client,
    /// What is read (plain data).
    plan: Arc<ScanPlan>,
    /// The plan's runtime half: retry budget and capacity limiter, shared
    /// by its partitions.
    reader: Reader,
    decoder: ItemDecoder,
    ordering: Option<PhysicalSortExpr>,
    properties: Arc<PlanProperties>,
    metrics: ScanMetrics,
    /// The table's live schema, widened when an item does not fit the
    /// decoder's (`None`: the schema was given and never widens).
    schema_state: Option<Arc<SchemaState>>,
    /// A projection of columns and map fields absorbed into the read: what
    /// the decoder produces is cut down to it.
    nested: Option<Arc<NestedProjection>>,
    /// Where the client connects (no credentials).
    connection: Arc<ConnectionOptions>,
    /// Which of the plan's partitions each of this node's partitions reads,
    /// as a plan a distributed scheduler can divide among tasks (see
    /// [`Self::with_partitions_input`]); `None`: partition `p` reads the
    /// plan's partition `p`.
    input: Option<Arc<dyn ExecutionPlan>>,
    /// Dynamic filters a hash join pushed down (its build side's keys):
    /// read when the stream starts, they may turn the read into key
    /// lookups, and every row handed on passes them.
    join_filters: Vec<Arc<dyn PhysicalExpr>>,
    /// When the join's keys replace the planned read (the session's
    /// `dynamodb.join_key_lookups` when the filters were taken).
    join_rule: JoinKeyLookups,
    /// What the scan was asked, to plan it again with the join's keys
    /// (`None`: not planned here, e.g. a plan from another process).
    request: Option<Arc<ScanRequest>>,
    /// What the read chose at run time and its estimate, for `EXPLAIN
    /// ANALYZE` and the read's statistics.
    runtime_choice: Arc<std::sync::Mutex<Option<RuntimeChoice>>>,
}

/// The read a join's keys chose when the stream started.
#[derive(Debug)]
struct RuntimeChoice {
    /// The join filters' expressions it was chosen for (the partitions of
    /// one execution see the very same ones and share the choice).
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// The read.
    plan: Arc<ScanPlan>,
    /// The query's filters that read no longer enforces, checked here.
    recheck: Option<Arc<Recheck>>,
    /// What was chosen and why (`EXPLAIN ANALYZE`'s `join_keys`).
    why: String,
}

/// The query's filters a read chosen at run time no longer enforces (its
/// planned key conditions, now a FilterExpression or nothing), checked on
/// every row: nothing above the read checks them, as the planned read
/// enforced them exactly.
#[derive(Debug)]
struct Recheck {
    /// Decodes the read's output columns, then the columns the filters need.
    decoder: ItemDecoder,
    /// The filters, over the decoder's columns.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// How many output columns lead the decoder's (the rest are dropped).
    width: usize,
}

impl Recheck {
    /// The rows of `batch` (the decoder's columns) that pass, as output columns.
    fn apply(&self, batch: RecordBatch) -> DfResult<RecordBatch> {
        let passed = pass_filters(batch, &self.filters)?;
        Ok(passed.project(&(0..self.width).collect::<Vec<_>>())?)
    }
}

/// A read of the query narrowed by a join's keys, with its estimate.
struct Narrowing {
    plan: ScanPlan,
    recheck: Option<Recheck>,
    estimate: ReadEstimate,
}

/// The read a join's keys chose, before it is shared.
struct Chosen {
    plan: ScanPlan,
    recheck: Option<Recheck>,
    why: String,
}

impl RuntimeChoice {
    /// True when it was chosen for exactly these expressions (the same
    /// objects, not merely equal ones).
    fn made_for(&self, filters: &[Arc<dyn PhysicalExpr>]) -> bool {
        self.filters.len() == filters.len()
            && self
                .filters
                .iter()
                .zip(filters)
                .all(|(a, b)| std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)))
    }
}

impl DynamoExec {
    pub(crate) fn new(
        client: Client,
        plan: ScanPlan,
        decoder: ItemDecoder,
        schema_state: Option<Arc<SchemaState>>,
    ) -> Self {
        let partitions = plan.partitions.len();
        // One Query returns items in sort-key order: declare it, so DataFusion can
        // drop a sort (and `try_pushdown_sort` can flip the direction).
        let ordering = match (plan.access.ordered_by(), partitions) {
            (Some(sk), 1) => decoder.schema().index_of(sk).ok().map(|i| {
                PhysicalSortExpr::new(
                    Arc::new(Column::new(sk, i)),
                    SortOptions {
                        descending: !plan.scan_forward,
                        nulls_first: !plan.scan_forward,
                    },
                )
            }),
            _ => None,
        };
        let properties = Arc::new(plan_properties(
            decoder.schema(),
            partitions.max(1),
            ordering.as_ref(),
        ));
        Self {
            client,
            reader: Reader::for_plan(&plan, 1.0),
            plan: Arc::new(plan),
            decoder,
            ordering,
            properties,
            metrics: ScanMetrics::new(),
            schema_state,
            nested: None,
            connection: Arc::default(),
            input: None,
            join_filters: Vec::new(),
            join_rule: JoinKeyLookups::default(),
            request: None,
            runtime_choice: Arc::default(),
        }
    }

    /// This node, keeping what its scan was asked so a join's keys can
    /// plan its read again when it starts.
    pub(crate) fn replanning(mut self, request: ScanRequest) -> Self {
        self.request = Some(Arc::new(request));
        self
    }

    /// This node, reading its partitions as named by an input plan: an
    /// in-memory scan whose partition `p` holds the number `p`. A
    /// distributed scheduler that hands each task its slice of an
    /// in-memory scan's partitions (Ballista does) then hands each task
    /// its slice of this scan, and every partition is read once across
    /// all tasks; a node left with `k` of the scan's `n` partitions reads
    /// at `k / n` of the read-capacity budget, so the query as a whole
    /// keeps to it.
    ///
    /// ```
    /// # use dynamo_datafusion::DynamoExec;
    /// # fn f(scan: DynamoExec) -> datafusion::error::Result<()> {
    /// use datafusion::physical_plan::ExecutionPlan;
    /// let n = scan.partition_count();
    /// let distributed = scan.with_partitions_input()?;
    /// assert_eq!(distributed.children().len(), 1);
    /// assert_eq!(distributed.partition_count(), n);
    /// # Ok(()) }
    /// ```
    pub fn with_partitions_input(self) -> DfResult<Self> {
        let input = input::partitions_input(self.plan.partitions.len())?;
        self.reading_partitions_from(input)
    }

    /// This node, reading the partitions `input` names (a slice of what
    /// [`Self::with_partitions_input`] made, as a scheduler restricted it
    /// for one task, or the whole of it).
    pub fn reading_partitions_from(mut self, input: Arc<dyn ExecutionPlan>) -> DfResult<Self> {
        input::check_input(&input)?;
        let held = input.properties().output_partitioning().partition_count();
        self.reader = Reader::for_plan(&self.plan, self.capacity_share_of(held));
        self.input = Some(input);
        self.properties = Arc::new(plan_properties(
            self.output_schema(),
            held,
            self.ordering.as_ref(),
        ));
        self.metrics = ScanMetrics::new();
        Ok(self)
    }

    /// The part of the plan's budgets (read capacity, ceiling) a node
    /// holding `held` of the plan's partitions uses.
    fn capacity_share_of(&self, held: usize) -> f64 {
        input::capacity_share(held, self.plan.partitions.len())
    }

    /// This node's partition count: its input's, or the plan's.
    fn output_partitions(&self) -> usize {
        match &self.input {
            Some(input) => input.properties().output_partitioning().partition_count(),
            None => self.plan.partitions.len().max(1),
        }
    }

    /// This node cutting what it decodes down with `nested` (the decoder
    /// and the plan's ProjectionExpression already read for it).
    fn absorbing(mut self, nested: NestedProjection) -> Self {
        let output = Arc::clone(&nested.output_schema);
        self.nested = Some(Arc::new(nested));
        self.ordering = match (&self.ordering, self.sort_key_output()) {
            (Some(o), Some(i)) => Some(PhysicalSortExpr::new(
                Arc::new(Column::new(output.field(i).name(), i)),
                o.options,
            )),
            _ => None,
        };
        self.properties = Arc::new(plan_properties(
            &output,
            self.output_partitions(),
            self.ordering.as_ref(),
        ));
        self.metrics = ScanMetrics::new();
        self
    }

    /// This node, noting where its client connects (see [`Self::to_parts`]).
    pub(crate) fn connecting_to(mut self, connection: Arc<ConnectionOptions>) -> Self {
        self.connection = connection;
        self
    }

    /// The schema of the batches handed on.
    fn output_schema(&self) -> &SchemaRef {
        self.properties.eq_properties.schema()
    }

    /// The output column holding the sort key, whole, if any.
    fn sort_key_output(&self) -> Option<usize> {
        let sk = self.plan.access.ordered_by()?;
        match &self.nested {
            Some(n) => n.output_of_whole(sk),
            None => self.decoder.schema().index_of(sk).ok(),
        }
    }

    /// The DynamoDB operation: `GetItem`, `BatchGetItem`, `Query` or `Scan`.
    pub fn operation(&self) -> &'static str {
        self.plan.access.operation.name()
    }

    /// The index queried, if any.
    pub fn index(&self) -> Option<&str> {
        match &self.plan.access.operation {
            Operation::Query { index, .. } => index.as_deref(),
            _ => None,
        }
    }

    /// What this node reads, as plain serializable data.
    pub fn scan_plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// Number of partitions (scan segments, query groups, key groups), or
    /// of the plan's partitions its input names (see
    /// [`Self::with_partitions_input`]).
    pub fn partition_count(&self) -> usize {
        self.output_partitions()
    }

    /// Attributes named in the `ProjectionExpression` (empty: every attribute).
    pub fn projected_attributes(&self) -> Vec<String> {
        self.plan
            .projection
            .as_ref()
            .map(|p| p.attributes())
            .unwrap_or_default()
    }

    /// The item limit pushed into the read, if any.
    pub fn limit(&self) -> Option<usize> {
        self.plan.limit
    }

    /// True when a Query reads in ascending sort-key order.
    pub fn scan_forward(&self) -> bool {
        self.plan.scan_forward
    }

    /// True when a FilterExpression is sent.
    pub fn has_filter(&self) -> bool {
        self.plan.access.has_filter()
    }

    /// The request for a person: (label, value) lines with names and values
    /// in place of their placeholders — what `EXPLAIN FORMAT tree` shows,
    /// and `dynamo-sql` prints as a block.
    ///
    /// ```no_run
    /// # fn show(exec: &dynamo_datafusion::DynamoExec) {
    /// for (label, value) in exec.request_lines() {
    ///     println!("{label:>12}: {value}");
    /// }
    /// // operation: Query
    /// //     table: UserEngagement
    /// //       key: userId = "123015" AND eventTime > 1762000000
    /// # }
    /// ```
    pub fn request_lines(&self) -> Vec<(&'static str, String)> {
        let plan = &self.plan;
        let r = self.first_request();
        let names = r.names.clone().unwrap_or_default();
        let values = r.values.clone().unwrap_or_default();
        let resolve = |e: &str| resolve_placeholders(e, &names, &values);
        let mut lines = vec![
            ("operation", plan.access.operation.name().to_string()),
            ("table", plan.table.clone()),
        ];
        match &plan.access.operation {
            Operation::Query {
                index,
                partition_values,
                keys,
                ..
            } => {
                if let Some(ix) = index {
                    lines.push(("index", ix.clone()));
                }
                if let Some(key) = &r.key_condition {
                    lines.push(("key", resolve(key)));
                }
                if partition_values.len() > 1 {
                    let all: Vec<String> = partition_values.iter().map(display_value).collect();
                    lines.push((
                        "queries",
                        format!(
                            "{}, one per {} in [{}]",
                            partition_values.len(),
                            keys.partition_key.name,
                            all.join(", ")
                        ),
                    ));
                }
                if !plan.scan_forward {
                    lines.push(("order", "descending sort key".to_string()));
                }
            }
            Operation::GetItem { key } => {
                let k: Vec<String> = key
                    .iter()
                    .map(|(n, v)| format!("{n} = {}", display_value(v)))
                    .collect();
                lines.push(("key", k.join(" AND ")));
            }
            Operation::BatchGetItem { keys } => {
                lines.push(("keys", format!("{} full keys", keys.len())));
            }
            Operation::Scan => {}
        }
        if let Some(filter) = &r.filter {
            lines.push(("filter", resolve(filter)));
        }
        lines.push((
            "projection",
            match &plan.projection {
                Some(p) => p.attributes().join(", "),
                None => "all attributes".to_string(),
            },
        ));
        if let Some(limit) = plan.limit {
            lines.push(("limit", limit.to_string()));
        }
        if plan.consistent_read {
            lines.push(("consistent", "strongly consistent reads".to_string()));
        }
        let units = plan.unit_count();
        let mut layout = String::new();
        if matches!(plan.access.operation, Operation::Scan) && units > 1 {
            layout.push_str(&format!("{units} segments, "));
        }
        if units > 1 {
            layout.push_str(&format!(
                "up to {} requests in flight, ",
                plan.max_concurrency
            ));
        }
        let partitions = self.output_partitions();
        layout.push_str(&format!(
            "{partitions} partition{}",
            if partitions == 1 { "" } else { "s" }
        ));
        lines.push(("reads", layout));
        if let Some(e) = plan.estimate() {
            lines.push((
                "estimate",
                format!(
                    "~{:.0} items, ~{:.1} RCU, ~${} at ${}/M RRU{}",
                    e.items,
                    e.rcu,
                    e.usd_text(plan.price_per_million_rru),
                    plan.price_per_million_rru,
                    self.basis_suffix(" (", ")")
                ),
            ));
        }
        if let Some(max) = plan.max_rcu {
            let over = plan.ceiling_estimate().filter(|q| q.rcu > max);
            lines.push((
                "ceiling",
                match over {
                    Some(q) => format!(
                        "{max} RCU: the query's estimate {:.1} is above it, refused",
                        q.rcu
                    ),
                    None => format!("{max} RCU"),
                },
            ));
        }
        lines
    }

    /// The rendered request, as `EXPLAIN` shows it.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = self.write_description(&mut s);
        s
    }

    /// The first unit's request, rendered as `read` renders it.
    fn first_request(&self) -> crate::plan::RenderedRequest {
        let unit = self
            .plan
            .partitions
            .iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or(ReadUnit::Segment(0, 1));
        self.plan.render(&unit)
    }

    /// Where the estimate comes from, between `open` and `close` (empty
    /// when DescribeTable alone gives it).
    fn basis_suffix(&self, open: &str, close: &str) -> String {
        match self.plan.estimate_basis() {
            Some(Basis::KeySample(n)) => format!("{open}key sample of {n} items{close}"),
            Some(Basis::Guess) => format!("{open}guessed: no key sample{close}"),
            _ => String::new(),
        }
    }

    fn write_description(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let plan = &self.plan;
        let r = self.first_request();
        write!(
            f,
            "operation={}, table={}",
            plan.access.operation.name(),
            plan.table
        )?;
        match &plan.access.operation {
            Operation::Query {
                index,
                partition_values,
                ..
            } => {
                if let Some(ix) = index {
                    write!(f, ", index={ix}")?;
                }
                if let Some(key) = &r.key_condition {
                    write!(f, ", key_condition=[{key}]")?;
                }
                if partition_values.len() > 1 {
                    let all: Vec<String> = partition_values.iter().map(display_value).collect();
                    write!(
                        f,
                        ", queries={} (:v0 in [{}])",
                        partition_values.len(),
                        all.join(", ")
                    )?;
                }
                if !plan.scan_forward {
                    write!(f, ", scan_index_forward=false")?;
                }
            }
            Operation::GetItem { key } => {
                let k: Vec<String> = key
                    .iter()
                    .map(|(n, v)| format!("{n}={}", display_value(v)))
                    .collect();
                write!(f, ", key=[{}]", k.join(", "))?;
            }
            Operation::BatchGetItem { keys } => write!(f, ", keys={}", keys.len())?,
            Operation::Scan => {}
        }
        if let Some(filter) = &r.filter {
            write!(f, ", filter=[{filter}]")?;
        }
        match &plan.projection {
            Some(p) => write!(f, ", projection=[{}]", p.attributes().join(", "))?,
            None => write!(f, ", projection=ALL")?,
        }
        let numbered = |k: &str| k[2..].parse::<usize>().unwrap_or(usize::MAX);
        if let Some(names) = r.names {
            let mut names: Vec<(String, String)> = names.into_iter().collect();
            names.sort_by_key(|(k, _)| numbered(k));
            let names: Vec<String> = names.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, ", names={{{}}}", names.join(", "))?;
        }
        if let Some(values) = r.values {
            let mut values: Vec<(String, AttributeValue)> = values.into_iter().collect();
            values.sort_by_key(|(k, _)| numbered(k));
            let values: Vec<String> = values
                .iter()
                .map(|(k, v)| format!("{k}={}", display_value(v)))
                .collect();
            write!(f, ", values={{{}}}", values.join(", "))?;
        }
        if let Some(limit) = plan.limit {
            write!(f, ", limit={limit}")?;
        }
        if let Some(p) = plan.page_size {
            write!(f, ", page_size={p}")?;
        }
        if plan.consistent_read {
            write!(f, ", consistent_read=true")?;
        }
        let units = plan.unit_count();
        if matches!(plan.access.operation, Operation::Scan) && units > 1 {
            write!(f, ", segments={units}")?;
        }
        if units > 1 {
            write!(f, ", max_concurrency={}", plan.max_concurrency)?;
        }
        write!(f, ", partitions={}", self.output_partitions())?;
        if self.input.is_some() {
            write!(f, " of {} (from its input)", plan.partitions.len())?;
        }
        if let Some(e) = plan.estimate() {
            write!(
                f,
                ", estimate=[items≈{:.0}, rcu≈{:.1}, usd≈{} at {}/M RRU{}]",
                e.items,
                e.rcu,
                e.usd_text(plan.price_per_million_rru),
                plan.price_per_million_rru,
                self.basis_suffix(", ", "")
            )?;
        }
        if let Some(max) = plan.max_rcu {
            write!(f, ", max_rcu={max}")?;
            if let Some(q) = plan.ceiling_estimate().filter(|q| q.rcu > max) {
                write!(f, " (query estimate {:.1} is above it: refused)", q.rcu)?;
            }
        }
        if !self.join_filters.is_empty() {
            let why = self
                .runtime_choice
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|c| c.why.clone());
            match why {
                Some(why) => write!(f, ", join_keys=[{why}]")?,
                None => write!(f, ", join_keys=[from the join's build side, at run time]")?,
            }
        }
        Ok(())
    }

    /// What this read is estimated to cost: the read a join's keys chose
    /// when it started, else the planned read ([`ScanPlan::estimate`]).
    pub fn estimate(&self) -> Option<ReadEstimate> {
        let chosen = self
            .runtime_choice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.plan.estimate());
        chosen.unwrap_or_else(|| self.plan.estimate())
    }

    /// Refuses to start when the query's estimate is above its ceiling.
    pub(crate) fn check_ceiling(&self) -> crate::error::Result<()> {
        let plan = &self.plan;
        let (Some(max), Some(estimate)) = (plan.max_rcu, plan.ceiling_estimate()) else {
            return Ok(());
        };
        if estimate.rcu <= max {
            return Ok(());
        }
        let reads = match &plan.query_reads {
            Some(reads) => reads.clone(),
            None => self.read_summary(),
        };
        Err(Error::OverCeiling {
            reads,
            estimated_rcu: estimate.rcu,
            usd: estimate.usd_text(plan.price_per_million_rru),
            max_rcu: max,
            raise: crate::error::ceiling_hint(plan.max_rcu_by_table),
        })
    }

    /// `a Scan of table 'T' (~2193 items)`: this read, for messages.
    pub(crate) fn read_summary(&self) -> String {
        let plan = &self.plan;
        let items = plan.estimate().map_or(0.0, |e| e.items);
        format!(
            "a {} of table '{}' (~{items:.0} items)",
            plan.access.operation.name(),
            plan.table,
        )
    }

    /// This node holding `query`'s estimate (of every read of the query)
    /// against the ceiling `max_rcu`, and counting consumption in
    /// `ceiling`, which the query's other reads share.
    pub(crate) fn sharing_ceiling(
        &self,
        max_rcu: f64,
        query: ReadEstimate,
        reads: String,
        ceiling: Arc<Ceiling>,
    ) -> Self {
        let by_table = ceiling.set_by_table();
        let mut new =
            self.with_plan(|plan| plan.with_query_ceiling(max_rcu, query, reads, by_table));
        // The query's one counter, not the node's own.
        new.reader.ceiling = Some(ceiling);
        new
    }

    /// This node reading `change(plan)` instead of its plan, with metrics
    /// of its own. The ceiling's counter is kept (a query's reads may share
    /// one): a change that moves the estimate derives it again.
    fn with_plan(&self, change: impl FnOnce(ScanPlan) -> ScanPlan) -> Self {
        let mut new = self.clone();
        new.plan = Arc::new(change(ScanPlan::clone(&self.plan)));
        new.metrics = ScanMetrics::new();
        new
    }
}

/// A value that did not fit its inferred column widens the table's schema
/// (by what the whole page shows, so one page's surprises cost one re-plan):
/// the error then says the statement must be planned again. A misfit the
/// schema cannot widen for (a column the user typed) stays as it was.
fn widen_on_misfit(e: Error, state: &SchemaState, decoder: &ItemDecoder, page: &[Item]) -> Error {
    let Error::ValueDoesNotFit {
        table,
        attribute,
        value,
        ..
    } = &e
    else {
        return e;
    };
    state.widen(page);
    // Against what this read decoded with: another query may have widened
    // the schema since this plan was made.
    let changes = schema_changes(decoder.schema(), &state.schema());
    if changes.is_empty() {
        return e;
    }
    Error::SchemaWidened {
        table: table.clone(),
        changes: changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        widenings: changes,
        attribute: attribute.clone(),
        value: value.clone(),
    }
}

/// The rows of `batch` that pass every one of `filters`.
fn pass_filters(batch: RecordBatch, filters: &[Arc<dyn PhysicalExpr>]) -> DfResult<RecordBatch> {
    filters
        .iter()
        .try_fold(batch, |b, filter| batch_filter(&b, filter))
}

/// Output schema, partitioning and (for one Query) sort order of a read.
fn plan_properties(
    schema: &SchemaRef,
    partitions: usize,
    ordering: Option<&PhysicalSortExpr>,
) -> PlanProperties {
    let schema = Arc::clone(schema);
    let eq = match ordering {
        Some(o) => EquivalenceProperties::new_with_orderings(schema, [[o.clone()]]),
        None => EquivalenceProperties::new(schema),
    };
    PlanProperties::new(
        eq,
        Partitioning::UnknownPartitioning(partitions),
        EmissionType::Incremental,
        Boundedness::Bounded,
    )
}

impl DisplayAs for DynamoExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        if t == DisplayFormatType::TreeRender {
            // `EXPLAIN FORMAT tree`: one `label=value` line each, in the node's box.
            for (label, value) in self.request_lines() {
                writeln!(f, "{label}={value}")?;
            }
            return Ok(());
        }
        write!(f, "DynamoExec: ")?;
        self.write_description(f)
    }
}

/// One partition's stream: pages as they arrive, decoded into batches.
struct Partition {
    pages: Pin<Box<dyn Stream<Item = crate::error::Result<Arrival>> + Send>>,
    remaining: Arc<Remaining>,
    decoder: ItemDecoder,
    metrics: ReadMetrics,
    in_flight: Gauge,
    concurrency: Option<Arc<Concurrency>>,
    schema_state: Option<Arc<SchemaState>>,
    nested: Option<Arc<NestedProjection>>,
}

impl Partition {
    /// The next non-empty batch, `None` after the last page or the limit.
    async fn next_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        loop {
            let wanted = self.remaining.get();
            if wanted == Some(0) {
                return Ok(None);
            }
            let Some(arrival) = self.pages.next().await else {
                return Ok(None);
            };
            let mut arrival = arrival?;
            let page = std::mem::take(&mut arrival.page);
            self.metrics.requests.add(page.requests as usize);
            self.metrics.retries.add(page.retries as usize);
            self.metrics.pages.add(1);
            self.metrics.scanned.add(page.scanned_count as usize);
            self.metrics
                .capacity_milli
                .add((page.consumed_capacity * 1000.0).round() as usize);
            if let Some(c) = &self.concurrency {
                self.in_flight.set_max(c.reached());
            }
            let mut items = page.items;
            let decoded = match &page.items_json {
                Some(json) => self.decoder.decode_json(json.as_str(), wanted),
                None => {
                    items.truncate(wanted.unwrap_or(usize::MAX));
                    self.decoder.decode(&items)
                }
            };
            let batch = decoded.map_err(|e| {
                let Some(state) = &self.schema_state else {
                    return DataFusionError::from(e);
                };
                let items = match &page.items_json {
                    Some(json) => items_from_json_text(json.as_str()).unwrap_or_default(),
                    None => items,
                };
                DataFusionError::from(widen_on_misfit(e, state, &self.decoder, &items))
            })?;
            // Counted before the page's places in flight are given back.
            self.remaining.take(batch.num_rows());
            drop(arrival);
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = match &self.nested {
                Some(n) => n.project(&batch)?,
                None => batch,
            };
            self.metrics.items.add(batch.num_rows());
            return Ok(Some(batch));
        }
    }
}

/// Per-partition counters shown by `EXPLAIN ANALYZE`.
#[derive(Clone)]
struct ReadMetrics {
    requests: Count,
    retries: Count,
    pages: Count,
    items: Count,
    scanned: Count,
    /// Consumed read capacity in thousandths of a unit (counters are integers).
    capacity_milli: Count,
}

impl ReadMetrics {
    fn new(set: &ExecutionPlanMetricsSet, partition: usize) -> Self {
        Self {
            requests: MetricBuilder::new(set).counter("requests", partition),
            retries: MetricBuilder::new(set).counter("retries", partition),
            pages: MetricBuilder::new(set).counter("pages", partition),
            items: MetricBuilder::new(set).output_rows(partition),
            scanned: MetricBuilder::new(set).counter("scanned_count", partition),
            capacity_milli: MetricBuilder::new(set).counter("consumed_rcu_milli", partition),
        }
    }
}

/// The metrics of one plan node, and the gauge every partition raises to
/// the most requests the scan had in flight.
#[derive(Debug, Clone)]
struct ScanMetrics {
    set: ExecutionPlanMetricsSet,
    in_flight: Gauge,
}

impl ScanMetrics {
    fn new() -> Self {
        let set = ExecutionPlanMetricsSet::new();
        let in_flight = MetricBuilder::new(&set).global_gauge("max_in_flight");
        Self { set, in_flight }
    }
}

impl ExecutionPlan for DynamoExec {
    fn name(&self) -> &str {
        "DynamoExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.input.iter().collect()
    }

    /// The input names partitions to read: spreading it over more
    /// partitions would not spread the reads.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.input.iter().count()]
    }

    /// The join filters it holds: their producer sees they are used.
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        for filter in &self.join_filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    /// Takes a hash join's dynamic filters (after the other filters were
    /// placed): the stream reads them when it starts, and every row it
    /// hands on passes them. Not in a distributed plan (the filter lives in
    /// the joining process), not for a read with a limit, nor with
    /// `dynamodb.join_key_lookups` off.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        config: &datafusion::config::ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        let rule = config
            .extensions
            .get::<crate::config::DynamoConfig>()
            .map_or_else(JoinKeyLookups::default, |c| c.join_key_lookups);
        // A read that stops after a limit must not drop rows after it.
        if phase != FilterPushdownPhase::Post
            || self.input.is_some()
            || self.plan.limit.is_some()
            || rule == JoinKeyLookups::Off
        {
            return Ok(FilterPushdownPropagation::if_all(child_pushdown_result));
        }
        let mut taken = Vec::new();
        let pushed: Vec<PushedDown> = child_pushdown_result
            .parent_filters
            .iter()
            .map(|f| {
                if f.filter
                    .downcast_ref::<DynamicFilterPhysicalExpr>()
                    .is_some()
                {
                    taken.push(Arc::clone(&f.filter));
                    PushedDown::Yes
                } else {
                    PushedDown::No
                }
            })
            .collect();
        if taken.is_empty() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                pushed,
            ));
        }
        let mut new = self.clone();
        new.join_filters.extend(taken);
        new.join_rule = rule;
        new.runtime_choice = Arc::default();
        new.metrics = ScanMetrics::new();
        Ok(
            FilterPushdownPropagation::with_parent_pushdown_result(pushed)
                .with_updated_node(Arc::new(new) as Arc<dyn ExecutionPlan>),
        )
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match (children.len(), &self.input) {
            (0, None) => Ok(self),
            (1, Some(_)) => {
                let input = children.into_iter().next().expect("one child");
                Ok(Arc::new(
                    Arc::unwrap_or_clone(self).reading_partitions_from(input)?,
                ))
            }
            (n, input) => Err(DataFusionError::Internal(format!(
                "DynamoExec takes {} children, not {n}",
                usize::from(input.is_some())
            ))),
        }
    }

    /// Required by the trait; the work is in `replace_children`.
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.set.clone_inner())
    }

    /// The estimate's items, as inexact statistics: the join planner then
    /// builds on the smaller side, and the larger side's read can turn
    /// into key lookups.
    fn partition_statistics(
        &self,
        partition: Option<usize>,
    ) -> DfResult<Arc<datafusion::common::Statistics>> {
        use datafusion::common::stats::Precision;
        let schema = self.output_schema();
        let mut stats = datafusion::common::Statistics::new_unknown(schema);
        if let Some(e) = self.plan.estimate() {
            let share = match partition {
                Some(_) => 1.0 / self.output_partitions().max(1) as f64,
                None => 1.0,
            };
            let rows = (e.items * share).ceil() as usize;
            stats.num_rows = Precision::Inexact(rows);
            let bytes = self.plan.cost.as_ref().map_or(0.0, |c| c.item_bytes);
            stats.total_byte_size = Precision::Inexact((e.items * share * bytes) as usize);
        }
        Ok(Arc::new(stats))
    }

    fn fetch(&self) -> Option<usize> {
        self.plan.limit
    }

    /// Every row this node emits is final, so a limit above it can stop its
    /// reads — unless a join's filter drops rows after the read.
    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        if !self.join_filters.is_empty() {
            return None;
        }
        let mut new = self.with_plan(|plan| plan.with_limit(limit));
        // The estimate follows the limit; the ceiling's with it.
        new.reader.ceiling =
            Ceiling::of_plan(&new.plan, new.capacity_share_of(new.output_partitions()));
        Some(Arc::new(new))
    }

    /// One Query can return its items in either sort-key direction.
    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
    ) -> DfResult<SortOrderPushdownResult<Arc<dyn ExecutionPlan>>> {
        // `sort_key_output` is `None` unless one Query reads in sort-key order.
        let [wanted] = order else {
            return Ok(SortOrderPushdownResult::Unsupported);
        };
        let on_sort_key = wanted
            .expr
            .downcast_ref::<Column>()
            .is_some_and(|c| self.sort_key_output() == Some(c.index()));
        if self.output_partitions() != 1 || !on_sort_key {
            return Ok(SortOrderPushdownResult::Unsupported);
        }
        let mut new = self.with_plan(|plan| plan.with_descending(wanted.options.descending));
        // Sort keys are never NULL, so either NULL placement holds.
        new.ordering = Some(wanted.clone());
        new.properties = Arc::new(plan_properties(
            self.output_schema(),
            self.output_partitions(),
            new.ordering.as_ref(),
        ));
        Ok(SortOrderPushdownResult::Exact {
            inner: Arc::new(new),
        })
    }

    /// Absorbs a projection of columns and struct fields (`info['rating']`):
    /// only those document paths are read and decoded.
    fn try_swapping_with_projection(
        &self,
        projection: &ProjectionExec,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        // A join's filter names the columns as they are: keep them.
        if self.nested.is_some() || !self.join_filters.is_empty() {
            return Ok(None);
        }
        let input = self.decoder.schema();
        // The extra-attributes column needs every attribute of the item.
        if input.fields().iter().any(|f| is_extra_field(f)) {
            return Ok(None);
        }
        let Some(uses) = uses_of(projection.expr(), input) else {
            return Ok(None);
        };
        let nested = NestedProjection::new(input, uses, projection.schema());
        let mut new = match ProjectionExpression::of_paths(nested.paths.clone()) {
            Some(p) => self.with_plan(|plan| plan.with_projection(p)),
            // Nothing but the row count: keep reading the smallest thing there is.
            None => self.clone(),
        };
        new.decoder = self
            .decoder
            .reshaped(Arc::clone(&nested.read_schema))
            .map_err(DataFusionError::from)?;
        Ok(Some(Arc::new(new.absorbing(nested))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.check_ceiling()?;
        // A read stops once its engine task is cancelled (read::cancel).
        let watched = TaskWatch::of(&context).map(|watch| {
            let mut this = self.clone();
            this.reader.watch = Some(watch);
            this
        });
        let this = watched.as_ref().unwrap_or(self);
        this.execute_watched(partition, context)
    }
}

impl DynamoExec {
    /// [`ExecutionPlan::execute`], with the reader watching its task.
    fn execute_watched(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let schema: SchemaRef = Arc::clone(self.output_schema());
        if !self.join_filters.is_empty() && self.input.is_none() {
            let this = self.clone();
            let batches =
                stream::once(async move { this.read_joined(partition).await }).try_flatten();
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)));
        }
        let Some(input) = &self.input else {
            let units = self
                .plan
                .partitions
                .get(partition)
                .cloned()
                .ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "DynamoExec has {} partitions, asked for partition {partition}",
                        self.plan.partitions.len()
                    ))
                })?;
            let batches = self.read(partition, units);
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)));
        };
        // The plan's partitions this one reads, as its input names them.
        let named = input.execute(partition, context)?;
        let this = self.clone();
        let batches = stream::once(async move {
            let numbers = input::partition_numbers(named, this.plan.partitions.len()).await?;
            let units: Vec<ReadUnit> = numbers
                .iter()
                .flat_map(|n| this.plan.partitions[*n].iter().cloned())
                .collect();
            Ok::<_, DataFusionError>(this.read(partition, units))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

impl DynamoExec {
    /// Partition `partition` of a read a join filters: once the join's
    /// build side is complete, its keys — when they pin the partition key
    /// and reading them costs less than the planned read — are read by key
    /// instead; either way every row handed on passes the join's filters.
    async fn read_joined(
        self,
        partition: usize,
    ) -> DfResult<Pin<Box<dyn Stream<Item = DfResult<RecordBatch>> + Send>>> {
        // A hash join polls this side only once its build side is complete,
        // so its filter is final by now. A filter still changing (a TopK's
        // bound, tightening as rows arrive) is only applied as it stands —
        // never waited for, never used to choose keys.
        let mut current = Vec::with_capacity(self.join_filters.len());
        let mut complete = Vec::new();
        for filter in &self.join_filters {
            if let Some(d) = filter.downcast_ref::<DynamicFilterPhysicalExpr>() {
                let expr = d.current()?;
                if d.wait_complete().now_or_never().is_some() {
                    complete.push(Arc::clone(&expr));
                }
                current.push(expr);
            }
        }
        let (plan, recheck) = self.chosen_plan(&complete);
        let units = plan.partitions.get(partition).cloned().unwrap_or_default();
        let decoder = recheck
            .as_ref()
            .map_or_else(|| self.decoder.clone(), |r| r.decoder.clone());
        let batches = self.read_with(plan, decoder, partition, units);
        let filtered = batches.and_then(move |batch| {
            // The join's filters name output columns, which lead the batch.
            let passed = pass_filters(batch, &current).and_then(|b| match &recheck {
                Some(r) => r.apply(b),
                None => Ok(b),
            });
            async move { passed }
        });
        Ok(Box::pin(filtered))
    }

    /// The read for the join filters' `complete` expressions: chosen by the
    /// first partition to start, shared by the others.
    fn chosen_plan(
        &self,
        complete: &[Arc<dyn PhysicalExpr>],
    ) -> (Arc<ScanPlan>, Option<Arc<Recheck>>) {
        let mut slot = self
            .runtime_choice
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(choice) = slot.as_ref().filter(|c| c.made_for(complete)) {
            return (Arc::clone(&choice.plan), choice.recheck.clone());
        }
        let Chosen { plan, recheck, why } = self.runtime_plan(complete);
        let (plan, recheck) = (Arc::new(plan), recheck.map(Arc::new));
        *slot = Some(RuntimeChoice {
            filters: complete.to_vec(),
            plan: Arc::clone(&plan),
            recheck: recheck.clone(),
            why,
        });
        (plan, recheck)
    }

    /// What re-checks the query's filters at `positions` (of `request`'s)
    /// on the rows of a read chosen at run time, with `plan` asking
    /// DynamoDB for the attributes they need; `None` when they cannot be
    /// checked here (an absorbed projection of struct fields).
    fn recheck(
        &self,
        request: &ScanRequest,
        positions: &[usize],
        plan: &mut ScanPlan,
    ) -> Option<Recheck> {
        if self.nested.is_some() {
            return None;
        }
        let output = self.decoder.schema();
        let filters: Vec<&Expr> = positions
            .iter()
            .map(|i| request.filters.get(*i))
            .collect::<Option<_>>()?;
        let mut columns = Vec::new();
        filters
            .iter()
            .for_each(|f| crate::plan::expr_columns(f, &mut columns));
        columns.retain(|c| output.index_of(c).is_err());
        let mut fields: Vec<_> = output.fields().iter().cloned().collect();
        for c in &columns {
            fields.push(Arc::new(request.schema.field_with_name(c).ok()?.clone()));
        }
        let wide: SchemaRef = Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
            fields,
            output.metadata().clone(),
        ));
        let decoder = self.decoder.reshaped(Arc::clone(&wide)).ok()?;
        let df_schema = DFSchema::try_from(wide.as_ref().clone()).ok()?;
        let (props, planning) = (ExecutionProps::new(), PhysicalPlanningContext::default());
        let filters = filters
            .into_iter()
            .map(|f| {
                let f = unnormalize_col(f.clone());
                create_physical_expr(&f, &df_schema, &props, &planning).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        plan.reading_also(&columns);
        Some(Recheck {
            decoder,
            filters,
            width: output.fields().len(),
        })
    }

    /// The read to run given the join filters' `complete` expressions, and
    /// why, for `EXPLAIN ANALYZE`: the scan planned again with what the
    /// filters say of its columns (key values, bounds), when that read
    /// still enforces what the planned one does and — by the session's
    /// rule — costs less, or costs the same and filters more.
    fn runtime_plan(&self, complete: &[Arc<dyn PhysicalExpr>]) -> Chosen {
        let plan = self.plan.as_ref();
        let planned = |why: String| Chosen {
            plan: plan.clone(),
            recheck: None,
            why: format!("planned read: {why}"),
        };
        let Some(request) = &self.request else {
            return planned("not planned in this process".into());
        };
        let mut implied = Vec::new();
        for expr in complete {
            match join::implied_conditions(expr, self.output_schema(), &request.schema) {
                join::Implied::Nothing => {
                    return Chosen {
                        plan: plan.reading_nothing(),
                        recheck: None,
                        why: "nothing read: the join's other side is empty".into(),
                    };
                }
                join::Implied::Conditions(c) => implied.extend(c),
            }
        }
        if implied.is_empty() {
            return planned("the join's filter names no values or bounds of this table".into());
        }
        let Some(as_planned) = plan.estimate() else {
            return planned("no estimate to compare".into());
        };
        let rule = self.join_rule;
        let Narrowing {
            plan: narrowed,
            recheck,
            estimate: by_keys,
        } = match self.cheapest_narrowing(request, &implied, as_planned) {
            Ok(n) => n,
            Err(why) => return planned(why),
        };
        let rechecked = if recheck.is_some() {
            ", the query's own key conditions checked here"
        } else {
            ""
        };
        let same_read = narrowed.access.operation == plan.access.operation
            && narrowed.partitions == plan.partitions;
        let cheaper = rule.cost(&by_keys) < rule.cost(&as_planned);
        let figures = |e: &ReadEstimate| format!("~{:.0} items, ~{:.1} RCU", e.items, e.rcu);
        if same_read {
            if narrowed.access.filter == plan.access.filter {
                return planned("the join's filter adds nothing DynamoDB can use".into());
            }
            let why = format!(
                "{}: the join's filter sent to DynamoDB, {}",
                narrowed.describe_operation(),
                figures(&by_keys)
            );
            return Chosen {
                plan: narrowed,
                recheck,
                why,
            };
        }
        let unit = rule.unit();
        if cheaper {
            let why = format!(
                "{}: {} instead of {} (fewer {unit}){rechecked}",
                narrowed.describe_operation(),
                figures(&by_keys),
                figures(&as_planned)
            );
            Chosen {
                plan: narrowed,
                recheck,
                why,
            }
        } else {
            planned(format!(
                "{} would read {}, not fewer {unit} than {}",
                narrowed.describe_operation(),
                figures(&by_keys),
                figures(&as_planned)
            ))
        }
    }

    /// The cheapest read (by the session's rule, the first of equals) of
    /// the query planned again with the join's `implied` conditions under
    /// each index policy it may use — the planner ranks reads by their
    /// shape — that keeps to what the ceiling admitted (`as_planned`) and
    /// whose dropped key conditions can be re-checked here; else why none.
    fn cheapest_narrowing(
        &self,
        request: &ScanRequest,
        implied: &[Expr],
        as_planned: ReadEstimate,
    ) -> Result<Narrowing, String> {
        let plan = self.plan.as_ref();
        let mut best: Option<Narrowing> = None;
        let mut refused: Option<String> = None;
        for index in request.index_choices() {
            let replanned = match request.plan_with(implied, self.output_partitions(), index) {
                Ok(p) => p,
                Err(e) => {
                    refused.get_or_insert(format!("planning with the join's keys failed: {e}"));
                    continue;
                }
            };
            let (mut narrowed, positions) = plan.narrowed_to(replanned);
            let recheck = if positions.is_empty() {
                None
            } else if let Some(r) = self.recheck(request, &positions, &mut narrowed) {
                Some(r)
            } else {
                refused.get_or_insert(
                    "a read by the join's keys would not enforce the query's own key \
                     conditions, and they cannot be re-checked here"
                        .into(),
                );
                continue;
            };
            let Some(estimate) = narrowed.estimate() else {
                continue;
            };
            // The ceiling admitted the planned read's estimate: never more.
            if plan.max_rcu().is_some() && estimate.rcu > as_planned.rcu {
                refused.get_or_insert(format!(
                    "{} would take ~{:.1} RCU, more than the ~{:.1} the ceiling admitted",
                    narrowed.describe_operation(),
                    estimate.rcu,
                    as_planned.rcu
                ));
                continue;
            }
            let rule = self.join_rule;
            if best
                .as_ref()
                .is_none_or(|b| rule.cost(&estimate) < rule.cost(&b.estimate))
            {
                best = Some(Narrowing {
                    plan: narrowed,
                    recheck,
                    estimate,
                });
            }
        }
        best.ok_or_else(|| refused.unwrap_or_else(|| "no estimate to compare".into()))
    }

    /// The batches of `units`, read as this node's partition `partition`.
    fn read(
        &self,
        partition: usize,
        units: Vec<ReadUnit>,
    ) -> impl Stream<Item = DfResult<RecordBatch>> + Send + use<> {
        self.read_with(
            Arc::clone(&self.plan),
            self.decoder.clone(),
            partition,
            units,
        )
    }

    /// The batches of `units` of `plan` (this node's plan, or the key
    /// lookups a join chose), read as this node's partition `partition`.
    fn read_with(
        &self,
        plan: Arc<ScanPlan>,
        decoder: ItemDecoder,
        partition: usize,
        units: Vec<ReadUnit>,
    ) -> impl Stream<Item = DfResult<RecordBatch>> + Send + use<> {
        let remaining = Remaining::new(plan.limit);
        let pages = drive(
            self.client.clone(),
            plan,
            self.reader.clone(),
            units,
            Arc::clone(&remaining),
        );
        let state = Partition {
            pages: Box::pin(pages),
            remaining,
            decoder,
            metrics: ReadMetrics::new(&self.metrics.set, partition),
            in_flight: self.metrics.in_flight.clone(),
            concurrency: self.reader.concurrency.clone(),
            schema_state: self.schema_state.clone(),
            nested: self.nested.clone(),
        };
        stream::try_unfold(state, |mut p| async move {
            match p.next_batch().await? {
                Some(batch) => Ok(Some((batch, p))),
                None => Ok(None),
            }
        })
    }
}
