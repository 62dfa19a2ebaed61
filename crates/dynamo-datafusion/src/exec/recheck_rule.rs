//! Each filter re-checked once above a DynamoDB read.
//!
//! A filter the read sends as a FilterExpression is answered `Inexact`, so
//! DataFusion keeps its own `FilterExec` for it; `scan` also re-applies
//! every filter its final plan does not enforce exactly (the safe rule for
//! a filter first answered `Exact` with fewer filters in view). The two
//! end up merged as `x AND x`. This rule keeps one of each conjunct.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// Removes repeated conjuncts from filters (`x AND x` is `x` when `x` is
/// not volatile), such as a filter DataFusion and the DynamoDB read both
/// re-check; [`crate::dynamo_session`] installs it.
///
/// ```
/// use std::sync::Arc;
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use dynamo_datafusion::RecheckOnceRule;
///
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_physical_optimizer_rule(Arc::new(RecheckOnceRule))
///     .build();
/// assert!(state.physical_optimizers().iter().any(|r| r.name() == "dynamo_recheck_once"));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct RecheckOnceRule;

impl PhysicalOptimizerRule for RecheckOnceRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(predicate) = distinct_conjuncts(filter.predicate()) else {
                return Ok(Transformed::no(node));
            };
            let once = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Transformed::yes(Arc::new(once) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dynamo_recheck_once"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `predicate` with each conjunct once, when it repeats one and none is
/// volatile; `None` when nothing changes.
fn distinct_conjuncts(predicate: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
    let parts = split_conjunction(predicate);
    if parts.iter().any(|p| is_volatile(p)) {
        return None;
    }
    let mut kept: Vec<Arc<dyn PhysicalExpr>> = Vec::with_capacity(parts.len());
    for p in &parts {
        if !kept.iter().any(|k| k.as_ref() == p.as_ref()) {
            kept.push(Arc::clone(p));
        }
    }
    (kept.len() < parts.len()).then(|| conjunction(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, Column, lit};

    fn eq(name: &str, index: usize, v: &str) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(
            Arc::new(Column::new(name, index)),
            Operator::Eq,
            lit(v),
        ))
    }

    fn and(l: Arc<dyn PhysicalExpr>, r: Arc<dyn PhysicalExpr>) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(l, Operator::And, r))
    }

    #[test]
    fn repeated_conjuncts_are_kept_once_in_order() {
        let (a, b) = (eq("a", 0, "x"), eq("b", 1, "y"));
        let twice = and(
            and(Arc::clone(&a), Arc::clone(&b)),
            and(Arc::clone(&a), Arc::clone(&b)),
        );
        let once = distinct_conjuncts(&twice).expect("changed");
        assert_eq!(once.to_string(), and(a, b).to_string());
        assert!(
            distinct_conjuncts(&once).is_none(),
            "nothing left to remove"
        );
    }
}
