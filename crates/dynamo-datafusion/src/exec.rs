//! The physical plan: a DynamoDB read streamed as record batches, one page at a
//! time, with one DataFusion partition per parallel-scan segment.

use std::fmt;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::stream;

use crate::decode::ItemDecoder;
use crate::read::ScanRequest;

/// What the plan reads: the parameters shared by all its partitions.
#[derive(Debug, Clone)]
pub(crate) struct ScanPlan {
    pub table: String,
    /// Parallel-scan segments (= output partitions).
    pub segments: u32,
    pub projection: Option<crate::expression::ProjectionExpression>,
    pub consistent_read: bool,
    /// Items per request, if set.
    pub page_size: Option<i32>,
    /// Stop after this many items (per partition; only set with one segment).
    pub limit: Option<usize>,
}

/// Reads a DynamoDB table as a stream of record batches.
#[derive(Debug)]
pub struct DynamoScanExec {
    client: Client,
    plan: Arc<ScanPlan>,
    decoder: ItemDecoder,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl DynamoScanExec {
    pub(crate) fn new(client: Client, plan: ScanPlan, decoder: ItemDecoder) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(decoder.schema())),
            Partitioning::UnknownPartitioning(plan.segments.max(1) as usize),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            client,
            plan: Arc::new(plan),
            decoder,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// Number of parallel-scan segments this plan reads.
    pub fn segments(&self) -> u32 {
        self.plan.segments
    }

    /// Attributes named in the `ProjectionExpression` (empty: every attribute).
    pub fn projected_attributes(&self) -> Vec<String> {
        self.plan
            .projection
            .as_ref()
            .map(|p| p.attributes.clone())
            .unwrap_or_default()
    }

    /// The item limit pushed into the read, if any.
    pub fn limit(&self) -> Option<usize> {
        self.plan.limit
    }
}

impl DisplayAs for DynamoScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let p = &self.plan;
        write!(
            f,
            "DynamoScanExec: operation=Scan, table={}, segments={}",
            p.table, p.segments
        )?;
        match &p.projection {
            Some(proj) => write!(f, ", projection=[{}]", proj.attributes.join(", "))?,
            None => write!(f, ", projection=ALL")?,
        }
        if let Some(limit) = p.limit {
            write!(f, ", limit={limit}")?;
        }
        if let Some(page) = p.page_size {
            write!(f, ", page_size={page}")?;
        }
        if p.consistent_read {
            write!(f, ", consistent_read=true")?;
        }
        Ok(())
    }
}

/// Per-partition counters shown by `EXPLAIN ANALYZE`.
#[derive(Clone)]
struct ReadMetrics {
    requests: Count,
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
            pages: MetricBuilder::new(set).counter("pages", partition),
            items: MetricBuilder::new(set).output_rows(partition),
            scanned: MetricBuilder::new(set).counter("scanned_count", partition),
            capacity_milli: MetricBuilder::new(set).counter("consumed_rcu_milli", partition),
        }
    }
}

struct PageCursor {
    start: Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    done: bool,
    remaining: Option<usize>,
}

impl ExecutionPlan for DynamoScanExec {
    fn name(&self) -> &str {
        "DynamoScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "DynamoScanExec is a leaf and takes no children".to_string(),
            ))
        }
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let segments = self.plan.segments.max(1);
        if partition >= segments as usize {
            return Err(DataFusionError::Internal(format!(
                "DynamoScanExec has {segments} partitions, asked for partition {partition}"
            )));
        }
        let request = Arc::new(ScanRequest {
            table: self.plan.table.clone(),
            segment: (segments > 1).then_some((partition as i32, segments as i32)),
            projection: self.plan.projection.clone(),
            consistent_read: self.plan.consistent_read,
        });
        let client = self.client.clone();
        let decoder = self.decoder.clone();
        let page_size = self.plan.page_size;
        let metrics = ReadMetrics::new(&self.metrics, partition);
        let cursor = PageCursor {
            start: None,
            done: false,
            remaining: self.plan.limit,
        };
        let batches = stream::try_unfold(cursor, move |mut cursor| {
            let (client, request, decoder, metrics) = (
                client.clone(),
                Arc::clone(&request),
                decoder.clone(),
                metrics.clone(),
            );
            async move {
                loop {
                    if cursor.done {
                        return Ok(None);
                    }
                    let limit = match (cursor.remaining, page_size) {
                        (Some(r), Some(p)) => Some(p.min(i32::try_from(r).unwrap_or(i32::MAX))),
                        (Some(r), None) => Some(i32::try_from(r).unwrap_or(i32::MAX)),
                        (None, p) => p,
                    };
                    let page = request.page(&client, cursor.start.take(), limit).await?;
                    metrics.requests.add(1);
                    metrics.pages.add(1);
                    metrics.scanned.add(page.scanned_count as usize);
                    metrics
                        .capacity_milli
                        .add((page.consumed_capacity * 1000.0).round() as usize);
                    cursor.start = page.next;
                    cursor.done = cursor.start.is_none();
                    let mut items = page.items;
                    if let Some(remaining) = cursor.remaining.as_mut() {
                        items.truncate(*remaining);
                        *remaining -= items.len();
                        cursor.done |= *remaining == 0;
                    }
                    if items.is_empty() {
                        continue;
                    }
                    metrics.items.add(items.len());
                    let batch = decoder.decode(&items).map_err(DataFusionError::from)?;
                    return Ok(Some((batch, cursor)));
                }
            }
        });
        let schema: SchemaRef = Arc::clone(self.decoder.schema());
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}
