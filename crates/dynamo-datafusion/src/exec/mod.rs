//! The physical plan: a DynamoDB read streamed as record batches, one page at a
//! time. Partitions are scan segments, groups of Queries, or groups of
//! BatchGetItem requests; each item belongs to exactly one partition.

//!
//! - [`DynamoExec`] (here): what a read is — its plan, decoder, layout —
//!   and the changes the optimizer makes to it.
//! - `node`: DataFusion's `ExecutionPlan` for it (filters, limits, sort
//!   order and projections pushed into the read).
//! - `explain`: what `EXPLAIN` shows, from one list of facts.
//! - `stream`: partitions as streams of decoded batches.
//! - `join_choice`: the read a hash join's keys choose at run time.
//! - `recheck`: filters a read does not enforce, checked on its rows.

pub(crate) mod ceiling_rule;
pub(crate) mod drive;
mod explain;
mod input;
mod join;
mod join_choice;
pub(crate) mod nested;
mod node;
mod parts;
pub(crate) mod readable;
mod recheck;
pub(crate) mod stats;
mod stream;
pub use ceiling_rule::CapacityCeilingRule;
pub use parts::{ExecLayout, ExecParts};
pub use readable::readable_plan;
pub use stats::ReadStats;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{ExecutionPlan, Partitioning, PlanProperties};

use crate::client::ConnectionOptions;
use crate::config::JoinKeyLookups;
use crate::decode::ItemDecoder;
use crate::error::Error;
use crate::exec::nested::NestedProjection;
use crate::plan::{Operation, ReadEstimate, ScanPlan, ScanRequest};
use crate::read::Reader;
use crate::read::ceiling::Ceiling;
use crate::schema::widen::SchemaState;
use join_choice::ChoiceCell;
pub(crate) use recheck::QueryFilters;
use recheck::Recheck;
use stream::ScanMetrics;

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
    join_choice: Arc<ChoiceCell>,
    /// The query's filters, made physical once with the session's state
    /// (`None`: not planned here).
    query_filters: Option<Arc<QueryFilters>>,
    /// The query's filters this read does not enforce, checked on every
    /// row it decodes (`None`: it enforces them all).
    recheck: Option<Arc<Recheck>>,
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
            join_choice: Arc::default(),
            query_filters: None,
            recheck: None,
        }
    }

    /// This node checking, on every row it reads, the query's filters
    /// (`query`) its plan does not enforce; it hands on its output columns.
    pub(crate) fn checking(mut self, query: Arc<QueryFilters>) -> DfResult<Self> {
        let mut plan = ScanPlan::clone(&self.plan);
        let residual = plan.residual.clone();
        self.recheck = Recheck::of(&self.decoder, &query, &residual, &mut plan)
            .map_err(DataFusionError::Plan)?
            .map(Arc::new);
        self.plan = Arc::new(plan);
        self.query_filters = Some(query);
        self.metrics = ScanMetrics::new();
        Ok(self)
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

    /// The query's filters this read takes care of, over its output
    /// columns: every one it was planned with (each is enforced by the
    /// request or re-checked on the rows), as far as its output has the
    /// columns to name it.
    fn handled_filters(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        let (Some(query), None) = (&self.query_filters, &self.nested) else {
            return Vec::new();
        };
        let output = self.output_schema();
        (0..query.len())
            .filter_map(|i| query.over(i, output))
            .collect()
    }

    /// What this read is estimated to cost: the read a join's keys chose
    /// when it started, else the planned read ([`ScanPlan::estimate`]).
    pub fn estimate(&self) -> Option<ReadEstimate> {
        match self.join_choice.get() {
            Some(chosen) => chosen.plan.estimate(),
            None => self.plan.estimate(),
        }
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
