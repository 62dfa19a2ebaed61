//! One read-capacity ceiling for a whole query: every DynamoDB read of the
//! plan is held against the sum of their estimates before any of them
//! starts, and counts what it consumes in one shared counter.
//!
//! Without this rule each read holds its own estimate and consumption
//! against the ceiling; [`crate::dynamo_session`] installs it.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::exec::DynamoExec;
use crate::exec::stats::reads_in;
use crate::plan::ReadEstimate;
use crate::read::ceiling::Ceiling;

/// Joins the DynamoDB reads of a plan under one read-capacity ceiling
/// (`dynamodb.max_rcu`, or the lowest table option `max_rcu` among them):
/// the query is refused before any read when their estimates add up to
/// more, and stopped when what they consumed together passes it.
///
/// ```
/// use std::sync::Arc;
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use dynamo_datafusion::CapacityCeilingRule;
///
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_physical_optimizer_rule(Arc::new(CapacityCeilingRule))
///     .build();
/// assert!(state.physical_optimizers().iter().any(|r| r.name() == "dynamo_capacity_ceiling"));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct CapacityCeilingRule;

impl PhysicalOptimizerRule for CapacityCeilingRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let capped: Vec<DynamoExec> = reads_in(&plan)
            .into_iter()
            .filter(|r| r.scan_plan().max_rcu().is_some())
            .collect();
        let Some(max) = capped
            .iter()
            .filter_map(|r| r.scan_plan().max_rcu())
            .reduce(f64::min)
        else {
            return Ok(plan);
        };
        let total = capped
            .iter()
            .filter_map(|r| r.scan_plan().estimate())
            .fold(ReadEstimate::default(), ReadEstimate::plus);
        // Said as the read whose ceiling is the query's says it.
        let by_table = capped
            .iter()
            .find(|r| r.scan_plan().max_rcu() == Some(max))
            .is_some_and(|r| r.scan_plan().max_rcu_by_table);
        let ceiling = Arc::new(Ceiling::new(max, total.rcu, by_table));
        let summaries: Vec<String> = capped.iter().map(DynamoExec::read_summary).collect();
        let reads = match summaries.as_slice() {
            [one] => one.clone(),
            many => format!("{} reads ({})", many.len(), many.join(", ")),
        };
        plan.transform_up(|node| {
            let any = node.as_ref() as &dyn std::any::Any;
            match any.downcast_ref::<DynamoExec>() {
                Some(exec) if exec.scan_plan().max_rcu().is_some() => Ok(Transformed::yes(
                    Arc::new(exec.sharing_ceiling(max, total, reads.clone(), Arc::clone(&ceiling)))
                        as Arc<dyn ExecutionPlan>,
                )),
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "dynamo_capacity_ceiling"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Refuses `plan` when its reads' estimate is above their ceiling, as each
/// read does when it starts: for a plan that runs elsewhere (a cluster's
/// executors), said here before any job is sent.
pub(crate) fn refuse_over_ceiling(plan: &Arc<dyn ExecutionPlan>) -> crate::error::Result<()> {
    reads_in(plan)
        .iter()
        .try_for_each(DynamoExec::check_ceiling)
}
