//! The one place a read's rows are checked against the query's filters it
//! does not enforce: a FilterExpression's conditions (DynamoDB's semantics
//! differ from SQL's at the edges), conditions no request can express, and
//! key conditions a read chosen at run time dropped.
//!
//! The scan's filters become physical expressions once, with the session's
//! state, over the table's columns ([`QueryFilters`]); a [`Recheck`] takes
//! the ones a read leaves to it and evaluates them on what the read
//! decodes. DataFusion's own filter above the read learns that these
//! filters are taken care of (see `node`), so each is evaluated once.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_plan::filter::batch_filter;

use crate::decode::ItemDecoder;
use crate::plan::ScanPlan;

/// A scan's filters as physical expressions over the table's columns, in
/// the order the plan counts them (`None`: a filter that could not be
/// made one, never re-checked here).
#[derive(Debug)]
pub(crate) struct QueryFilters {
    schema: SchemaRef,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
}

impl QueryFilters {
    /// `filters` over `schema`, made physical by `create` (the session's
    /// planner: its functions, its time of the query).
    pub(crate) fn new(
        schema: &SchemaRef,
        filters: &[Expr],
        create: impl Fn(Expr, &DFSchema) -> DfResult<Arc<dyn PhysicalExpr>>,
    ) -> DfResult<Self> {
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let filters = filters
            .iter()
            .map(|f| create(unnormalize_col(f.clone()), &df_schema).map(Some))
            .collect::<DfResult<_>>()?;
        Ok(Self {
            schema: Arc::clone(schema),
            filters,
        })
    }

    /// The filter at `position`, over `schema`'s columns (`None`: it is
    /// not known here, or names a column `schema` lacks).
    pub(crate) fn over(&self, position: usize, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
        let f = self.filters.get(position)?.as_ref()?;
        reassign_expr_columns(Arc::clone(f), schema).ok()
    }

    /// How many filters there are.
    pub(crate) fn len(&self) -> usize {
        self.filters.len()
    }
}

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
    /// What checks `query`'s filters at `positions` on the rows of a read
    /// whose output `output` decodes, with `plan` asking DynamoDB for the
    /// attributes they need; `None` when there is nothing to check, and an
    /// error when a filter cannot be checked here.
    pub(crate) fn of(
        output: &ItemDecoder,
        query: &QueryFilters,
        positions: &[usize],
        plan: &mut ScanPlan,
    ) -> Result<Option<Self>, String> {
        if positions.is_empty() {
            return Ok(None);
        }
        Self::build(output, query, positions, plan).map(Some)
    }

    fn build(
        output: &ItemDecoder,
        query: &QueryFilters,
        positions: &[usize],
        plan: &mut ScanPlan,
    ) -> Result<Self, String> {
        let schema = output.schema();
        let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
        let mut extra = Vec::new();
        let mut table_filters = Vec::with_capacity(positions.len());
        for &p in positions {
            let f = query
                .over(p, &query.schema)
                .ok_or_else(|| format!("filter {p} of the query is not known to the read"))?;
            for c in collect_columns(&f) {
                let name = c.name();
                if schema.index_of(name).is_err() && !extra.iter().any(|e: &String| e == name) {
                    extra.push(name.to_string());
                    fields.push(Arc::new(
                        query
                            .schema
                            .field_with_name(name)
                            .map_err(|e| e.to_string())?
                            .clone(),
                    ));
                }
            }
            table_filters.push(f);
        }
        let wide = Schema::new_with_metadata(fields, schema.metadata().clone());
        let filters = table_filters
            .into_iter()
            .map(|f| reassign_expr_columns(f, &wide).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let decoder = output.reshaped(Arc::new(wide)).map_err(|e| e.to_string())?;
        plan.reading_also(&extra);
        Ok(Recheck {
            decoder,
            filters,
            width: schema.fields().len(),
        })
    }

    /// A re-check that was taken apart ([`Self::parts`]): `decoder` decodes
    /// the output's `width` columns and then the filters' columns.
    pub(crate) fn from_parts(
        decoder: ItemDecoder,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        width: usize,
    ) -> Self {
        Self {
            decoder,
            filters,
            width,
        }
    }

    /// The filters, over the decoder's columns.
    pub(crate) fn filters(&self) -> &[Arc<dyn PhysicalExpr>] {
        &self.filters
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
