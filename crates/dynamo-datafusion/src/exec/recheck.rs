//! The query's filters a read does not enforce, checked on its rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion::physical_plan::filter::batch_filter;

use crate::decode::ItemDecoder;
use crate::plan::{ScanPlan, ScanRequest, expr_columns};

/// Filters checked on every row a read decodes: the decoder reads the
/// output columns, then the columns the filters need; rows that pass are
/// handed on with the output columns only.
#[derive(Debug)]
pub(crate) struct Recheck {
    /// Decodes the read's output columns, then the columns the filters need.
    pub(crate) decoder: ItemDecoder,
    /// The filters, over the decoder's columns.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// How many output columns lead the decoder's (the rest are dropped).
    width: usize,
}

impl Recheck {
    /// What re-checks `request`'s filters at `positions` on the rows of a
    /// read whose output `decoder` decodes, with `plan` asking DynamoDB
    /// for the attributes they need; `None` when a filter's column is not
    /// the table's.
    pub(crate) fn of(
        decoder: &ItemDecoder,
        request: &ScanRequest,
        positions: &[usize],
        plan: &mut ScanPlan,
    ) -> Option<Self> {
        let output = decoder.schema();
        let filters: Vec<&Expr> = positions
            .iter()
            .map(|i| request.filters.get(*i))
            .collect::<Option<_>>()?;
        let mut columns = Vec::new();
        filters.iter().for_each(|f| expr_columns(f, &mut columns));
        columns.retain(|c| output.index_of(c).is_err());
        let mut fields: Vec<_> = output.fields().iter().cloned().collect();
        for c in &columns {
            fields.push(Arc::new(request.schema.field_with_name(c).ok()?.clone()));
        }
        let wide: SchemaRef =
            Arc::new(Schema::new_with_metadata(fields, output.metadata().clone()));
        let decoder = decoder.reshaped(Arc::clone(&wide)).ok()?;
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

    /// The rows of `batch` (the decoder's columns) that pass, as output columns.
    pub(crate) fn apply(&self, batch: RecordBatch) -> DfResult<RecordBatch> {
        let passed = pass_filters(batch, &self.filters)?;
        Ok(passed.project(&(0..self.width).collect::<Vec<_>>())?)
    }
}

/// The rows of `batch` that pass every one of `filters`.
pub(crate) fn pass_filters(
    batch: RecordBatch,
    filters: &[Arc<dyn PhysicalExpr>],
) -> DfResult<RecordBatch> {
    filters
        .iter()
        .try_fold(batch, |b, filter| batch_filter(&b, filter))
}
