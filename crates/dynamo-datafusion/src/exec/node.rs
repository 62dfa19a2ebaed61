//! [`DynamoExec`] as DataFusion's physical plan node: children, filters,
//! limits, sort order and projections pushed into the read.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::{PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter_pushdown::{
    ChildPushdownResult, FilterPushdownPhase, FilterPushdownPropagation, PushedDown,
};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{ExecutionPlan, PlanProperties, SortOrderPushdownResult};

use super::nested::{NestedProjection, uses_of};
use super::stream::ScanMetrics;
use super::{DynamoExec, plan_properties};
use crate::config::JoinKeyLookups;
use crate::plan::ProjectionExpression;
use crate::read::cancel::TaskWatch;
use crate::read::ceiling::Ceiling;
use crate::schema::infer::is_extra_field;

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

    /// Before the plan is optimized, tells the filters above that are the
    /// query's own filters they are taken care of here — enforced by the
    /// request or re-checked on every row — so each is evaluated once.
    ///
    /// After, takes a hash join's dynamic filters (once the other filters
    /// were placed): the stream reads them when it starts, and every row it
    /// hands on passes them. Not in a distributed plan (the filter lives in
    /// the joining process), not for a read with a limit, nor with
    /// `dynamodb.join_key_lookups` off.
    fn handle_child_pushdown_result(
        &self,
        phase: FilterPushdownPhase,
        child_pushdown_result: ChildPushdownResult,
        config: &datafusion::config::ConfigOptions,
    ) -> DfResult<FilterPushdownPropagation<Arc<dyn ExecutionPlan>>> {
        if phase == FilterPushdownPhase::Pre {
            let handled = self.handled_filters();
            let pushed = child_pushdown_result
                .parent_filters
                .iter()
                .map(|f| {
                    if handled.iter().any(|h| h.as_ref() == f.filter.as_ref()) {
                        PushedDown::Yes
                    } else {
                        PushedDown::No
                    }
                })
                .collect();
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                pushed,
            ));
        }
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
        new.join_choice = Arc::default();
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
        // A re-check drops rows after the read: the limit stays above.
        if !self.join_filters.is_empty() || self.recheck.is_some() {
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
        // A join's filter and a re-check name the columns as they are: keep them.
        if self.nested.is_some() || !self.join_filters.is_empty() || self.recheck.is_some() {
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
