//! [`DynamoWriteExec`]: the physical plan of an INSERT, REPLACE, UPDATE or
//! DELETE — its input's rows become writes, sent concurrently, and it
//! yields one row: `count`, the items written.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use tokio::task::JoinSet;

use super::encode::{ItemEncoder, write_units};
use super::ops::{
    Done, Op, OpError, Recheck, TransactionError, op_key, send_batch, send_op, send_transaction,
};
use super::{Statement, WriteMode, WriteSettings};
use crate::error::Error;
use crate::metadata::KeyType;
use crate::plan::predicate::Cond;
use crate::read::capacity::CapacityLimiter;
use crate::read::retry::Retrier;
use crate::value::Item;
use crate::value::dynamo_json::to_dynamo_json;

/// Items in one BatchWriteItem request (DynamoDB's limit).
const BATCH_ITEMS: usize = 25;
/// Writes in one TransactWriteItems request (DynamoDB's limit).
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// One assignment of an UPDATE: a column and the expression of its new value.
#[derive(Debug, Clone)]
pub(crate) struct Assignment {
    /// The attribute.
    pub column: String,
    /// The column's index in the table's schema (its type).
    pub table_index: usize,
    /// The new value, over the read's rows.
    pub expr: Arc<dyn PhysicalExpr>,
}

/// What a write statement does, ready to run.
#[derive(Debug)]
pub(crate) struct WriteJob {
    pub statement: Statement,
    pub table: String,
    /// The caller's client with the SDK's retries off.
    pub client: Client,
    pub keys: Vec<(String, KeyType)>,
    /// Rows of the input → items (the table's columns, or the read's).
    pub input_encoder: ItemEncoder,
    /// Values by the table's column types (an UPDATE's new values).
    pub table_encoder: ItemEncoder,
    /// An UPDATE's assignments.
    pub assignments: Vec<Assignment>,
    /// An UPDATE's guarded columns: attribute names (read in the input).
    pub guards: Vec<String>,
    /// The WHERE's part DynamoDB re-checks when an UPDATE or DELETE writes.
    pub recheck: Option<Arc<Cond>>,
    pub settings: WriteSettings,
    /// Average item size of the table, for the estimate.
    pub item_bytes: f64,
}

impl WriteJob {
    fn partition_key(&self) -> &str {
        &self.keys[0].0
    }

    /// Write capacity of one item's write, before it is known.
    fn unit_estimate(&self) -> f64 {
        let per_item = (self.item_bytes / 1024.0).ceil().max(1.0);
        match self.settings.mode {
            WriteMode::Transaction => 2.0 * per_item,
            WriteMode::Batch => per_item,
        }
    }
}

/// The plan node of a write statement.
#[derive(Debug)]
pub struct DynamoWriteExec {
    input: Arc<dyn ExecutionPlan>,
    job: Arc<WriteJob>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

/// The items a write statement wrote, from its answer (one row, `count`).
///
/// ```
/// use std::sync::Arc;
/// use datafusion::arrow::array::{RecordBatch, UInt64Array};
/// use datafusion::arrow::datatypes::{DataType, Field, Schema};
/// let schema = Arc::new(Schema::new(vec![Field::new("count", DataType::UInt64, false)]));
/// let answer = RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(vec![3]))]).unwrap();
/// assert_eq!(dynamo_datafusion::write::written_count(&[answer]), Some(3));
/// ```
pub fn written_count(batches: &[RecordBatch]) -> Option<u64> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let counts = batch.column(0).as_any().downcast_ref::<UInt64Array>()?;
    Some(counts.value(0))
}

/// The one-column schema of a write's answer.
fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]))
}

impl DynamoWriteExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, job: WriteJob) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(count_schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            job: Arc::new(job),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The table written.
    pub fn table(&self) -> &str {
        &self.job.table
    }

    /// `INSERT`, `REPLACE`, `UPDATE` or `DELETE`.
    pub fn statement(&self) -> &'static str {
        self.job.statement.name()
    }

    /// Items the input is estimated to hold (`None`: unknown) and the write
    /// capacity units their writes are estimated to take.
    pub fn estimate(&self) -> Option<(usize, f64)> {
        let stats = datafusion::physical_plan::statistics::StatisticsContext::new()
            .compute(
                self.input.as_ref(),
                &datafusion::physical_plan::statistics::StatisticsArgs::new(),
            )
            .ok()?;
        let rows = match stats.num_rows {
            Precision::Exact(n) | Precision::Inexact(n) => n,
            Precision::Absent => return None,
        };
        Some((rows, rows as f64 * self.job.unit_estimate()))
    }

    /// What the write did so far (or in all, once run).
    pub fn stats(&self) -> WriteStats {
        let metrics = self.metrics.clone_inner();
        let get = |name: &str| metrics.sum_by_name(name).map_or(0, |v| v.as_usize());
        WriteStats {
            writes: 1,
            items_written: get(WRITTEN),
            items_skipped: get(SKIPPED),
            requests: get(REQUESTS),
            retries: get(RETRIES),
            consumed_wcu: get(MILLI_WCU) as f64 / 1000.0,
        }
    }
}

const WRITTEN: &str = "items_written";
const SKIPPED: &str = "items_skipped";
const REQUESTS: &str = "write_requests";
const RETRIES: &str = "write_retries";
const MILLI_WCU: &str = "consumed_milli_wcu";

/// What the writes of an executed plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriteStats {
    /// Write statements in the plan.
    pub writes: usize,
    /// Items written (inserted, replaced, updated or deleted).
    pub items_written: usize,
    /// Items an UPDATE or DELETE found changed since it read them (or gone):
    /// left as they were.
    pub items_skipped: usize,
    /// DynamoDB requests sent, retries included.
    pub requests: usize,
    /// Of these, retries after throttling or faults.
    pub retries: usize,
    /// Write capacity units consumed.
    pub consumed_wcu: f64,
}

impl fmt::Display for WriteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "DynamoDB writes: {} {} written, {} skipped (changed since read), {} {} \
             ({} retries), {:.1} WCU",
            self.items_written,
            plural(self.items_written, "item", "items"),
            self.items_skipped,
            self.requests,
            plural(self.requests, "request", "requests"),
            self.retries,
            self.consumed_wcu
        )
    }
}

impl WriteStats {
    /// Sums the writes of every [`DynamoWriteExec`] in `plan`.
    pub fn of_plan(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut out = Self::default();
        for (_, s) in Self::by_table(plan) {
            out.absorb(&s);
        }
        out
    }

    /// [`Self::of_plan`] per table written, in the order first met.
    pub fn by_table(plan: &Arc<dyn ExecutionPlan>) -> Vec<(String, Self)> {
        let mut out: Vec<(String, Self)> = Vec::new();
        let mut stack = vec![Arc::clone(plan)];
        while let Some(node) = stack.pop() {
            if let Some(write) =
                (node.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoWriteExec>()
            {
                let s = write.stats();
                match out.iter_mut().find(|(t, _)| t == write.table()) {
                    Some((_, stats)) => stats.absorb(&s),
                    None => out.push((write.table().to_string(), s)),
                }
            }
            stack.extend(node.children().into_iter().cloned());
        }
        out
    }

    fn absorb(&mut self, s: &Self) {
        self.writes += s.writes;
        self.items_written += s.items_written;
        self.items_skipped += s.items_skipped;
        self.requests += s.requests;
        self.retries += s.retries;
        self.consumed_wcu += s.consumed_wcu;
    }
}

impl DisplayAs for DynamoWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let job = &self.job;
        let how = match (job.settings.mode, &job.statement) {
            (WriteMode::Transaction, _) => "TransactWriteItems, all or nothing".to_string(),
            (_, statement) => {
                let request = match statement {
                    Statement::Insert => "PutItem if the key is new".to_string(),
                    Statement::Replace => format!("BatchWriteItem of {BATCH_ITEMS}"),
                    Statement::Update => "UpdateItem if unchanged".to_string(),
                    Statement::Delete => "DeleteItem if unchanged".to_string(),
                };
                format!("{request}, {} in flight", job.settings.max_concurrency)
            }
        };
        write!(
            f,
            "DynamoWriteExec: {} table={} ({how})",
            job.statement.name(),
            job.table
        )?;
        if matches!(job.statement, Statement::Update) {
            let set: Vec<String> = job
                .assignments
                .iter()
                .map(|a| format!("{} = {}", a.column, a.expr))
                .collect();
            write!(f, ", set=[{}]", set.join(", "))?;
        }
        match self.estimate() {
            Some((items, wcu)) => {
                let usd = wcu * job.settings.price_per_million_wru / 1e6;
                write!(
                    f,
                    ", estimated_items={items}, estimated_wcu={wcu:.0} (~${})",
                    crate::plan::cost::usd_text(usd)
                )?;
            }
            None => write!(f, ", estimated_items=unknown")?,
        }
        if let Some(max) = job.settings.max_wcu {
            write!(f, ", max_wcu={max}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for DynamoWriteExec {
    fn name(&self) -> &str {
        "DynamoWriteExec"
    }

    /// The UPDATE's new values.
    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        for a in &self.job.assignments {
            if f(&a.expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!(
                "DynamoWriteExec takes one child, not {}",
                children.len()
            )));
        }
        Ok(Arc::new(Self {
            input: children.remove(0),
            job: Arc::clone(&self.job),
            properties: Arc::clone(&self.properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    /// Every row of every input partition: one stream of rows to write.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "DynamoWriteExec has one partition, not {}",
                partition + 1
            )));
        }
        if let (Some(max), Some((items, wcu))) = (self.job.settings.max_wcu, self.estimate())
            && wcu > max
        {
            return Err(Error::WriteRefused {
                statement: self.job.statement.name(),
                table: self.job.table.clone(),
                reason: format!(
                    "it would write about {items} items, about {wcu:.0} WCU, above the ceiling \
                     dynamodb.max_wcu = {max} (nothing was written; raise it with SET \
                     dynamodb.max_wcu = …, or write fewer rows)"
                ),
            }
            .into());
        }
        // Rows arrive in one stream: writes are concurrent requests, not
        // partitions. The optimizer coalesces the input as this node
        // requires; a plan run unoptimized is coalesced here.
        let input = match self
            .input
            .properties()
            .output_partitioning()
            .partition_count()
        {
            1 => self.input.execute(0, context)?,
            _ => CoalescePartitionsExec::new(Arc::clone(&self.input)).execute(0, context)?,
        };
        let counters = Counters::new(&self.metrics);
        let job = Arc::clone(&self.job);
        let stream = futures::stream::once(async move {
            let written = Writer::new(job, counters).run(input).await?;
            RecordBatch::try_new(
                count_schema(),
                vec![Arc::new(UInt64Array::from(vec![written])) as ArrayRef],
            )
            .map_err(DataFusionError::from)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            count_schema(),
            stream,
        )))
    }
}

/// The metrics a write updates as its requests finish.
#[derive(Debug, Clone)]
struct Counters {
    written: Count,
    skipped: Count,
    requests: Count,
    retries: Count,
    milli_wcu: Count,
}

impl Counters {
    fn new(metrics: &ExecutionPlanMetricsSet) -> Self {
        let counter = |name: &'static str| MetricBuilder::new(metrics).global_counter(name);
        Self {
            written: counter(WRITTEN),
            skipped: counter(SKIPPED),
            requests: counter(REQUESTS),
            retries: counter(RETRIES),
            milli_wcu: counter(MILLI_WCU),
        }
    }

    fn record(&self, done: &Done, items: usize) {
        if done.applied {
            self.written.add(items);
        } else {
            self.skipped.add(items);
        }
        self.requests.add(done.requests as usize);
        self.retries.add(done.retries as usize);
        self.milli_wcu.add((done.wcu * 1000.0).round() as usize);
    }

    /// A request that failed for good, after `requests` requests that
    /// consumed `wcu` (a failed condition is billed).
    fn record_failure(&self, requests: u64, wcu: f64) {
        self.requests.add(requests as usize);
        self.milli_wcu.add((wcu * 1000.0).round() as usize);
    }

    fn wcu(&self) -> f64 {
        self.milli_wcu.value() as f64 / 1000.0
    }
}

/// What a request task answers: the keys it wrote and how it went.
struct Finished {
    batch: u64,
    outcome: Result<(), Error>,
}

/// Sends a statement's writes: at most `max_concurrency` requests in
/// flight, never two writes of one key at once (the later waits), and
/// stops at the first failure after the writes in flight have finished.
struct Writer {
    job: Arc<WriteJob>,
    counters: Counters,
    retrier: Arc<Retrier>,
    limiter: Option<Arc<CapacityLimiter>>,
    tasks: JoinSet<Finished>,
    /// Keys (as text) of the writes in flight, by request.
    in_flight: HashMap<u64, Vec<String>>,
    busy_keys: HashSet<String>,
    next_batch: u64,
    /// Write capacity reserved by the requests in flight (estimates).
    reserved: HashMap<u64, f64>,
    /// REPLACE: items waiting for a full batch, by key.
    pending: Vec<(String, Item)>,
    /// Transaction mode: every write (by key), sent at the end.
    transaction: Vec<(String, Op)>,
    /// Rows accepted (a REPLACE's duplicate keys each count).
    rows: u64,
}

impl Writer {
    fn new(job: Arc<WriteJob>, counters: Counters) -> Self {
        Self {
            retrier: Arc::new(Retrier::new(job.settings.retry.clone())),
            limiter: job
                .settings
                .write_capacity
                .map(|rate| Arc::new(CapacityLimiter::new(rate))),
            job,
            counters,
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            busy_keys: HashSet::new(),
            next_batch: 0,
            reserved: HashMap::new(),
            pending: Vec::new(),
            transaction: Vec::new(),
            rows: 0,
        }
    }

    async fn run(mut self, mut input: SendableRecordBatchStream) -> DfResult<u64> {
        while let Some(batch) = input.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => return Err(self.stop(StopCause::Input(e)).await),
            };
            let ops = match self.ops_of(&batch) {
                Ok(ops) => ops,
                Err(e) => return Err(self.stop(StopCause::Write(e)).await),
            };
            for op in ops {
                if let Err(e) = self.submit(op).await {
                    return Err(self.stop(StopCause::Write(e)).await);
                }
            }
        }
        if let Err(e) = self.finish().await {
            return Err(self.stop(StopCause::Write(e)).await);
        }
        Ok(self.rows_written())
    }

    /// Rows written: a REPLACE counts every row it accepted (a key given
    /// twice is written twice, the last wins), the others count items.
    fn rows_written(&self) -> u64 {
        match (&self.job.statement, self.job.settings.mode) {
            (Statement::Replace, _) | (_, WriteMode::Transaction) => self.rows,
            _ => self.counters.written.value() as u64,
        }
    }

    /// The writes of one input batch.
    fn ops_of(&self, batch: &RecordBatch) -> Result<Vec<Op>, Error> {
        let job = &self.job;
        let items = job
            .input_encoder
            .encode(batch)
            .map_err(|(row, bad)| Error::BadWriteValue {
                table: job.table.clone(),
                row: self.rows + row as u64 + 1,
                column: bad.column,
                reason: bad.reason,
            })?;
        match job.statement {
            Statement::Insert => Ok(items
                .into_iter()
                .map(|item| Op::Put { item, if_new: true })
                .collect()),
            Statement::Replace => Ok(items
                .into_iter()
                .map(|item| Op::Put {
                    item,
                    if_new: false,
                })
                .collect()),
            Statement::Delete => Ok(items
                .into_iter()
                .map(|item| Op::Delete {
                    key: super::ops::key_of(&item, &job.keys),
                    recheck: Recheck {
                        cond: job.recheck.clone(),
                        guards: Vec::new(),
                    },
                })
                .collect()),
            Statement::Update => {
                let values: Vec<ArrayRef> = job
                    .assignments
                    .iter()
                    .map(|a| {
                        a.expr
                            .evaluate(batch)
                            .and_then(|v| v.into_array(batch.num_rows()))
                            .map_err(|e| Error::BadWriteValue {
                                table: job.table.clone(),
                                row: self.rows + 1,
                                column: a.column.clone(),
                                reason: format!("its new value could not be computed: {e}"),
                            })
                    })
                    .collect::<Result<_, _>>()?;
                items
                    .into_iter()
                    .enumerate()
                    .map(|(row, old)| {
                        let set = job
                            .assignments
                            .iter()
                            .zip(&values)
                            .map(|(a, array)| {
                                let value = job
                                    .table_encoder
                                    .value(a.table_index, array.as_ref(), row)
                                    .map_err(|bad| Error::BadWriteValue {
                                        table: job.table.clone(),
                                        row: self.rows + row as u64 + 1,
                                        column: bad.column,
                                        reason: bad.reason,
                                    })?;
                                Ok((a.column.clone(), value))
                            })
                            .collect::<Result<Vec<_>, Error>>()?;
                        let guards = job
                            .guards
                            .iter()
                            .map(|name| (name.clone(), old.get(name).cloned()))
                            .collect();
                        Ok(Op::Update {
                            key: super::ops::key_of(&old, &job.keys),
                            set,
                            recheck: Recheck {
                                cond: job.recheck.clone(),
                                guards,
                            },
                        })
                    })
                    .collect()
            }
        }
    }

    /// Queues or sends one write.
    async fn submit(&mut self, op: Op) -> Result<(), Error> {
        self.rows += 1;
        let key = key_text(&op_key(&op, &self.job.keys));
        if self.job.settings.mode == WriteMode::Transaction {
            return self.add_to_transaction(op, key);
        }
        match (&self.job.statement, op) {
            (Statement::Replace, Op::Put { item, .. }) => {
                // The same key twice in one batch: the later row wins.
                if let Some(slot) = self.pending.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = item;
                    return Ok(());
                }
                self.wait_for_key(&key).await?;
                self.pending.push((key, item));
                if self.pending.len() == BATCH_ITEMS {
                    self.send_pending().await?;
                }
                Ok(())
            }
            (_, op) => {
                self.wait_for_key(&key).await?;
                let estimate = match &op {
                    Op::Put { item, .. } => write_units(item),
                    _ => self.job.unit_estimate(),
                };
                let (job, retrier) = (Arc::clone(&self.job), Arc::clone(&self.retrier));
                let exists_key = op_key(&op, &job.keys);
                self.spawn_request(vec![key], estimate, 1, Some(exists_key), async move {
                    send_op(&job.client, &job.table, job.partition_key(), &op, &retrier).await
                })
                .await
            }
        }
    }

    fn add_to_transaction(&mut self, op: Op, key: String) -> Result<(), Error> {
        let same = self.transaction.iter().position(|(k, _)| *k == key);
        match (same, &self.job.statement) {
            (Some(_), Statement::Insert) => {
                return Err(Error::ItemExists {
                    table: self.job.table.clone(),
                    key: format!(
                        "{} (given twice in this statement)",
                        key_display(&op_key(&op, &self.job.keys))
                    ),
                });
            }
            (Some(at), _) => {
                self.transaction[at].1 = op;
                return Ok(());
            }
            (None, _) => {}
        }
        if self.transaction.len() == MAX_TRANSACTION_ITEMS {
            return Err(Error::WriteRefused {
                statement: self.job.statement.name(),
                table: self.job.table.clone(),
                reason: format!(
                    "dynamodb.write_mode = 'transaction' writes at most {MAX_TRANSACTION_ITEMS} \
                     items in one statement (DynamoDB's TransactWriteItems limit), and this one \
                     writes more; nothing was written (SET dynamodb.write_mode = 'batch' to write \
                     it item by item)"
                ),
            });
        }
        self.transaction.push((key, op));
        Ok(())
    }

    /// Registers a request in flight; returns its id.
    fn track(&mut self, keys: Vec<String>, estimate: f64) -> u64 {
        let id = self.next_batch;
        self.next_batch += 1;
        for k in &keys {
            self.busy_keys.insert(k.clone());
        }
        self.in_flight.insert(id, keys);
        self.reserved.insert(id, estimate);
        id
    }

    /// Waits until no write of `key` is in flight.
    async fn wait_for_key(&mut self, key: &str) -> Result<(), Error> {
        while self.busy_keys.contains(key) {
            self.join_one().await?;
        }
        Ok(())
    }

    /// Waits for a free request slot, and checks the write-capacity ceiling
    /// before a request estimated at `estimate` WCU is sent.
    async fn make_room(&mut self, estimate: f64) -> Result<(), Error> {
        while self.tasks.len() >= self.job.settings.max_concurrency {
            self.join_one().await?;
        }
        if let Some(max) = self.job.settings.max_wcu {
            let committed = self.counters.wcu() + self.reserved.values().sum::<f64>();
            if committed + estimate > max {
                return Err(Error::WriteCeilingReached {
                    table: self.job.table.clone(),
                    consumed_wcu: committed,
                    max_wcu: max,
                });
            }
        }
        Ok(())
    }

    /// Collects one finished request; its failure is returned.
    async fn join_one(&mut self) -> Result<(), Error> {
        let Some(joined) = self.tasks.join_next().await else {
            return Ok(());
        };
        let finished = joined.map_err(|e| Error::InvalidOption {
            key: "write".into(),
            reason: format!("a write task failed: {e}"),
        })?;
        if let Some(keys) = self.in_flight.remove(&finished.batch) {
            for k in keys {
                self.busy_keys.remove(&k);
            }
        }
        self.reserved.remove(&finished.batch);
        finished.outcome
    }

    /// Sends the waiting REPLACE items as one BatchWriteItem.
    async fn send_pending(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (keys, items): (Vec<String>, Vec<Item>) =
            std::mem::take(&mut self.pending).into_iter().unzip();
        let estimate: f64 = items.iter().map(write_units).sum();
        let (job, retrier) = (Arc::clone(&self.job), Arc::clone(&self.retrier));
        let count = items.len();
        self.spawn_request(keys, estimate, count, None, async move {
            send_batch(&job.client, &job.table, items, &retrier).await
        })
        .await
    }

    /// Sends one request (`send`, writing `items` items of `keys`, about
    /// `estimate` WCU) once a slot and the ceiling allow: it runs as its
    /// own task, under the write-capacity budget, and counts what it did
    /// when it ends. `exists_key` names the key an INSERT found taken.
    async fn spawn_request<F>(
        &mut self,
        keys: Vec<String>,
        estimate: f64,
        items: usize,
        exists_key: Option<Item>,
        send: F,
    ) -> Result<(), Error>
    where
        F: std::future::Future<Output = Result<Done, OpError>> + Send + 'static,
    {
        self.make_room(estimate).await?;
        let table = self.job.table.clone();
        let (counters, limiter) = (self.counters.clone(), self.limiter.clone());
        let batch = self.track(keys, estimate);
        self.tasks.spawn(async move {
            let reserved = match &limiter {
                Some(l) => Some(l.acquire_units(estimate).await),
                None => None,
            };
            let (outcome, wcu) = match send.await {
                Ok(done) => {
                    counters.record(&done, items);
                    (Ok(()), done.wcu)
                }
                Err(OpError::Exists { wcu, requests }) => {
                    counters.record_failure(requests, wcu);
                    let key = exists_key.as_ref().map(key_display).unwrap_or_default();
                    (Err(Error::ItemExists { table, key }), wcu)
                }
                Err(OpError::Failed { error, requests }) => {
                    counters.record_failure(requests, 0.0);
                    (Err(error), 0.0)
                }
            };
            if let (Some(l), Some(r)) = (&limiter, reserved) {
                l.settle(r, wcu, 0);
            }
            Finished { batch, outcome }
        });
        Ok(())
    }

    /// Sends what is still waiting and waits for every request.
    async fn finish(&mut self) -> Result<(), Error> {
        if self.job.settings.mode == WriteMode::Transaction {
            return self.send_transaction().await;
        }
        self.send_pending().await?;
        while !self.tasks.is_empty() {
            self.join_one().await?;
        }
        Ok(())
    }

    async fn send_transaction(&mut self) -> Result<(), Error> {
        if self.transaction.is_empty() {
            return Ok(());
        }
        let ops: Vec<Op> = std::mem::take(&mut self.transaction)
            .into_iter()
            .map(|(_, op)| op)
            .collect();
        let estimate = ops.len() as f64 * self.job.unit_estimate();
        self.make_room(estimate).await?;
        let token = statement_token();
        let job = &self.job;
        match send_transaction(
            &job.client,
            &job.table,
            job.partition_key(),
            &ops,
            &token,
            &self.retrier,
        )
        .await
        {
            Ok(done) => {
                self.counters.record(&done, ops.len());
                Ok(())
            }
            Err(TransactionError::Condition { index, current }) => {
                let key = key_display(&op_key(&ops[index], &job.keys));
                Err(match (&ops[index], current) {
                    (Op::Put { .. }, _) => Error::ItemExists {
                        table: job.table.clone(),
                        key,
                    },
                    (_, None) => Error::TransactionCancelled {
                        table: job.table.clone(),
                        reason: format!("the item with key {key} no longer exists"),
                    },
                    (_, Some(_)) => Error::TransactionCancelled {
                        table: job.table.clone(),
                        reason: format!(
                            "the item with key {key} changed since it was read (it no longer \
                             matches the WHERE, or a column the new values are computed from \
                             changed)"
                        ),
                    },
                })
            }
            Err(TransactionError::Failed(e)) => Err(e),
        }
    }

    /// Ends the statement after a failure: the writes in flight finish
    /// (and count), then the error says how many items were written.
    async fn stop(&mut self, cause: StopCause) -> DataFusionError {
        while !self.tasks.is_empty() {
            let _ = self.join_one().await;
        }
        let written = self.counters.written.value() as u64;
        let skipped = self.counters.skipped.value() as u64;
        let source = match cause {
            // Nothing written: the error passes as it is (a widened column
            // then plans the statement again).
            StopCause::Input(e) if written == 0 && skipped == 0 => return e,
            StopCause::Input(e) => Error::WriteInputFailed {
                reason: e.to_string(),
            },
            StopCause::Write(e) => e,
        };
        Error::WriteStopped {
            statement: self.job.statement.name(),
            table: self.job.table.clone(),
            written,
            skipped,
            source: Box::new(source),
        }
        .into()
    }
}

/// Why a write statement stopped.
enum StopCause {
    /// Its input (the rows to write, or an UPDATE's read) failed.
    Input(DataFusionError),
    /// A write failed.
    Write(Error),
}

/// A key as text that identifies it (DynamoDB JSON, attributes in order).
fn key_text(key: &Item) -> String {
    let mut names: Vec<&String> = key.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("{n}={}", to_dynamo_json(&key[n])))
        .collect::<Vec<_>>()
        .join(",")
}

/// A key for a message: `{"pk": {"S": "a"}}`.
fn key_display(key: &Item) -> String {
    serde_json::Value::Object(crate::value::dynamo_json::item_to_json(key)).to_string()
}

/// An idempotency token for one statement's transaction.
fn statement_token() -> String {
    (0..32)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
        .collect()
}
