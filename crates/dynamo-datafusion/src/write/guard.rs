//! [`DmlGuard`]: an UPDATE or DELETE runs only when the table sees its whole WHERE.
//!
//! DataFusion 55 hands a table's `update` and `delete_from` only the
//! conditions on the table's own columns, taken from the optimized plan: a
//! `WHERE x IN (SELECT …)`, `EXISTS (…)` or a scalar subquery becomes a join
//! there, and the table is handed *no* condition for it (apache/datafusion
//! issue 24654) — a DELETE would remove every item, or every item the rest of
//! the WHERE matches. The guard runs before the optimizer, sees the
//! statement as written, and refuses one whose WHERE or SET the table could
//! not be handed whole. A table refuses UPDATE and DELETE in a session
//! without the guard ([`uses_dml_guard`]).

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{DmlStatement, Expr, LogicalPlan, WriteOp};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule that refuses an UPDATE or DELETE whose WHERE (or SET)
/// holds a subquery or reads another table: DataFusion would hand the table
/// only part of its condition. [`crate::dynamo_session`] adds it; an
/// embedding application adds it to its own session:
///
/// ```
/// use std::sync::Arc;
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use dynamo_datafusion::write::DmlGuard;
///
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_analyzer_rule(Arc::new(DmlGuard))
///     .build();
/// assert!(dynamo_datafusion::write::uses_dml_guard(&state));
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct DmlGuard;

/// The guard's name among a session's analyzer rules.
const NAME: &str = "dynamo_dml_guard";

impl AnalyzerRule for DmlGuard {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> DfResult<LogicalPlan> {
        plan.apply(|node| {
            if let LogicalPlan::Dml(dml) = node
                && matches!(dml.op, WriteOp::Delete | WriteOp::Update)
            {
                check(dml)?;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        NAME
    }
}

/// True when `state` runs the [`DmlGuard`].
pub fn uses_dml_guard(state: &SessionState) -> bool {
    state.analyzer().rules.iter().any(|r| r.name() == NAME)
}

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::InSubquery(_)
                | Expr::Exists(_)
                | Expr::SetComparison(_)
        ))
    })
    .unwrap_or(true)
}

fn check(dml: &DmlStatement) -> DfResult<()> {
    let statement = match dml.op {
        WriteOp::Update => "UPDATE",
        _ => "DELETE",
    };
    let refuse = |what: String| {
        DataFusionError::Plan(format!(
            "{statement} on table '{}' refused: its {what}. DataFusion hands a table only the \
             conditions on its own columns (apache/datafusion issue 24654), so the table would \
             not see the whole WHERE and would change items it excludes. Name the keys instead \
             (WHERE pk IN ('a', 'b')), or run the subquery first and use its values",
            dml.table_name
        ))
    };
    let mut problem: Option<String> = None;
    dml.input.apply(|node| {
        let found = match node {
            LogicalPlan::TableScan(scan) if !scan.table_name.resolved_eq(&dml.table_name) => Some(
                format!("statement reads another table ('{}')", scan.table_name),
            ),
            LogicalPlan::TableScan(_) | LogicalPlan::SubqueryAlias(_) => None,
            LogicalPlan::Filter(filter) if has_subquery(&filter.predicate) => {
                Some("WHERE holds a subquery".to_string())
            }
            LogicalPlan::Projection(p) if p.expr.iter().any(has_subquery) => {
                Some("SET holds a subquery".to_string())
            }
            LogicalPlan::Filter(_) | LogicalPlan::Projection(_) => None,
            other => Some(format!(
                "statement needs a {} of rows, which a table's UPDATE or DELETE is not handed",
                other
                    .display()
                    .to_string()
                    .split(':')
                    .next()
                    .unwrap_or("step")
            )),
        };
        if let Some(found) = found {
            problem = Some(found);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match problem {
        Some(what) => Err(refuse(what)),
        None => Ok(()),
    }
}
