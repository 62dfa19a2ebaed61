//! A read's partitions as streams: pages as they arrive (`drive`), decoded
//! into batches, counted in the node's metrics; for a read a join filters,
//! the read its keys chose ([`super::join_choice`]).

use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt, stream};

use super::drive::{Arrival, Remaining, drive};
use super::join::implied_conditions;
use super::join_choice::{JoinChoice, choose};
use super::nested::NestedProjection;
use super::recheck::{Recheck, pass_filters};
use super::{DynamoExec, input};
use crate::decode::{Item, ItemDecoder};
use crate::error::Error;
use crate::plan::{ReadUnit, ScanPlan};
use crate::read::concurrency::Concurrency;
use crate::schema::widen::{SchemaState, schema_changes};
use crate::value::dynamo_json::items_from_json_text;

fn widen_on_misfit(e: Error, state: &SchemaState, decoder: &ItemDecoder, page: &[Item]) -> Error {
    let (Error::ValueDoesNotFit {
        table,
        attribute,
        value,
        ..
    }
    | Error::BadTimeValue {
        table,
        attribute,
        value,
        ..
    }) = &e
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

struct Partition {
    pages: Pin<Box<dyn Stream<Item = crate::error::Result<Arrival>> + Send>>,
    remaining: Arc<Remaining>,
    decoder: ItemDecoder,
    metrics: ReadMetrics,
    in_flight: Gauge,
    concurrency: Option<Arc<Concurrency>>,
    schema_state: Option<Arc<SchemaState>>,
    recheck: Option<Arc<Recheck>>,
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
            let bad = self.decoder.take_bad_times();
            if bad > 0 {
                self.metrics.bad_times.add(bad);
            }
            let batch = match &self.recheck {
                Some(r) => r.apply(batch)?,
                None => batch,
            };
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
    /// Values not in their time format, read as NULL (`on_bad_time`).
    bad_times: Count,
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
            bad_times: MetricBuilder::new(set).counter("bad_time_values", partition),
        }
    }
}

/// The metrics of one plan node, and the gauge every partition raises to
/// the most requests the scan had in flight.
#[derive(Debug, Clone)]
pub(super) struct ScanMetrics {
    pub(super) set: ExecutionPlanMetricsSet,
    pub(super) in_flight: Gauge,
}

impl ScanMetrics {
    pub(super) fn new() -> Self {
        let set = ExecutionPlanMetricsSet::new();
        let in_flight = MetricBuilder::new(&set).global_gauge("max_in_flight");
        Self { set, in_flight }
    }
}

impl DynamoExec {
    /// [`ExecutionPlan::execute`], with the reader watching its task.
    pub(super) fn execute_watched(
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
        let chosen = self
            .join_choice
            .get_or_choose(&complete, || self.choose_for_join(&complete));
        let units = chosen
            .plan
            .partitions
            .get(partition)
            .cloned()
            .unwrap_or_default();
        let batches = self.read_with(
            Arc::clone(&chosen.plan),
            chosen.recheck.clone(),
            partition,
            units,
        );
        // The join's filters name output columns.
        let filtered = batches.and_then(move |batch| {
            let passed = pass_filters(batch, &current);
            async move { passed }
        });
        Ok(Box::pin(filtered))
    }

    /// The read for the join filters' `complete` expressions, what
    /// re-checks the query's filters it does not enforce, and why it was
    /// chosen.
    fn choose_for_join(
        &self,
        complete: &[Arc<dyn PhysicalExpr>],
    ) -> (ScanPlan, Option<Arc<Recheck>>, String) {
        let planned = |why: String| (ScanPlan::clone(&self.plan), self.recheck.clone(), why);
        let (Some(request), Some(query)) = (self.request.as_deref(), &self.query_filters) else {
            let choice = choose(&self.plan, None, vec![], 0, self.join_rule, false);
            return planned(choice.to_string());
        };
        let implied = complete
            .iter()
            .map(|expr| implied_conditions(expr, self.output_schema(), &request.schema))
            .collect();
        let choice = choose(
            &self.plan,
            Some(request),
            implied,
            self.output_partitions(),
            self.join_rule,
            // What the read decodes is cut down to an absorbed projection:
            // the filters' columns are not there to check.
            self.nested.is_none(),
        );
        let why = choice.to_string();
        match choice {
            JoinChoice::Planned(_) => planned(why),
            JoinChoice::Nothing => (self.plan.reading_nothing(), None, why),
            JoinChoice::Narrowed {
                mut plan, recheck, ..
            } => {
                // What the planned read left to the re-check, and the key
                // conditions this one drops.
                let mut positions = self.plan.residual.clone();
                positions.extend(recheck);
                positions.sort_unstable();
                positions.dedup();
                match Recheck::of(&self.decoder, query, &positions, &mut plan) {
                    Ok(r) => (*plan, r.map(Arc::new), why),
                    Err(e) => planned(format!(
                        "planned read: the join's read cannot check the query's filters here ({e})"
                    )),
                }
            }
        }
    }

    /// The batches of `units`, read as this node's partition `partition`.
    pub(super) fn read(
        &self,
        partition: usize,
        units: Vec<ReadUnit>,
    ) -> impl Stream<Item = DfResult<RecordBatch>> + Send + use<> {
        self.read_with(
            Arc::clone(&self.plan),
            self.recheck.clone(),
            partition,
            units,
        )
    }

    /// The batches of `units` of `plan` (this node's plan, or the key
    /// lookups a join chose) with what `recheck` checks, read as this
    /// node's partition `partition`.
    fn read_with(
        &self,
        plan: Arc<ScanPlan>,
        recheck: Option<Arc<Recheck>>,
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
        let decoder = recheck
            .as_ref()
            .map_or_else(|| self.decoder.clone(), |r| r.decoder.clone());
        let state = Partition {
            pages: Box::pin(pages),
            remaining,
            decoder,
            recheck,
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
