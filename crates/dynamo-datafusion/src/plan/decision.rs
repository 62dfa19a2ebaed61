//! Which filters a read enforces, decided once per filter set.
//!
//! DataFusion asks `supports_filters_pushdown` about a query's filters
//! before it calls `scan` with them, and the answer (Exact or Inexact) must
//! come from the decision the read is then built on. [`Decisions`] is that
//! one owner: it plans the read for a set of filters ([`plan_access`]) and
//! remembers the result, so the early answer and the scan share one
//! decision. The early question does not know which columns the query
//! hands on; the filters' own columns stand for them, and the scan takes
//! the remembered decision whenever the read it chose also serves the
//! columns the query needs — then planning with those columns would choose
//! the same read (a column only removes index candidates, and the chosen
//! one is kept). Only when the chosen index does not project a needed
//! column does the scan decide again, and what that read does not enforce
//! is re-checked by the read itself.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;

use super::{AccessPlan, Operation, PlanOptions, expr_columns, index_projects, plan_access};
use crate::metadata::TableMeta;

/// Decisions remembered per provider: a query asks about its filters,
/// then scans with them, before the next query's plan starts.
const REMEMBERED: usize = 16;

/// A filter set's decision.
#[derive(Debug)]
struct Decided {
    filters: Vec<Expr>,
    options: PlanOptions,
    schema: SchemaRef,
    access: AccessPlan,
}

/// The planner's decisions for the filter sets a table was asked about
/// (shared by the copies of one provider).
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    recent: Mutex<VecDeque<Decided>>,
    /// How many times the planner ran (for tests and diagnostics).
    planned: AtomicUsize,
}

impl Decisions {
    /// Per filter, true when the read enforces it exactly: DataFusion's
    /// early question, asked before the columns handed on are known. The
    /// answer comes from a remembered decision that covers these filters
    /// (DataFusion asks again about the filters it kept above the read,
    /// after it asked about them with the others), else from a new one.
    pub(crate) fn for_filters(
        &self,
        meta: &TableMeta,
        schema: &SchemaRef,
        filters: &[Expr],
        options: &PlanOptions,
    ) -> Vec<bool> {
        let filters: Vec<Expr> = filters.iter().cloned().map(unnormalize_col).collect();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let covering = recent.iter().rev().find_map(|d| {
            let same = &d.options == options && &d.schema == schema;
            same.then(|| positions(&d.filters, &filters))
                .flatten()
                .map(|at| (d, at))
        });
        if let Some((decided, at)) = covering {
            return at.iter().map(|i| decided.access.exact[*i]).collect();
        }
        drop(recent);
        self.decide(meta, schema, &filters, &[], options).exact
    }

    /// The read for `filters` when the query needs `columns` (besides the
    /// filters' own): the remembered decision for these filters when its
    /// read serves the columns, else a new one.
    pub(crate) fn for_scan(
        &self,
        meta: &TableMeta,
        schema: &SchemaRef,
        filters: &[Expr],
        columns: &[String],
        options: &PlanOptions,
    ) -> AccessPlan {
        let filters: Vec<Expr> = filters.iter().cloned().map(unnormalize_col).collect();
        let mut needed = columns.to_vec();
        filters.iter().for_each(|f| expr_columns(f, &mut needed));
        if let Some(access) = self.remembered(schema, &filters, options)
            && serves(&access, meta, &needed)
        {
            return access;
        }
        self.decide(meta, schema, &filters, columns, options)
    }

    /// A new decision, remembered when it was made without columns beyond
    /// the filters' own (the decision the early question and a scan share).
    fn decide(
        &self,
        meta: &TableMeta,
        schema: &SchemaRef,
        filters: &[Expr],
        columns: &[String],
        options: &PlanOptions,
    ) -> AccessPlan {
        self.planned.fetch_add(1, Ordering::Relaxed);
        let mut own = Vec::new();
        filters.iter().for_each(|f| expr_columns(f, &mut own));
        let mut needed = own.clone();
        columns.iter().for_each(|c| {
            if !needed.contains(c) {
                needed.push(c.clone());
            }
        });
        let access = plan_access(meta, schema, filters, &needed, options);
        if needed.len() == own.len() {
            self.remember(schema, filters, options, &access);
        }
        access
    }

    /// How many times the planner ran.
    #[cfg(test)]
    pub(crate) fn planned(&self) -> usize {
        self.planned.load(Ordering::Relaxed)
    }

    /// The remembered decision for exactly these filters (in any order:
    /// its per-filter answers follow `filters`' order).
    fn remembered(
        &self,
        schema: &SchemaRef,
        filters: &[Expr],
        options: &PlanOptions,
    ) -> Option<AccessPlan> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().find_map(|d| {
            if &d.options != options || &d.schema != schema || d.filters.len() != filters.len() {
                return None;
            }
            let at = positions(&d.filters, filters)?;
            let mut access = d.access.clone();
            access.exact = at.iter().map(|i| d.access.exact[*i]).collect();
            Some(access)
        })
    }

    fn remember(
        &self,
        schema: &SchemaRef,
        filters: &[Expr],
        options: &PlanOptions,
        access: &AccessPlan,
    ) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == REMEMBERED {
            recent.pop_front();
        }
        recent.push_back(Decided {
            filters: filters.to_vec(),
            options: options.clone(),
            schema: schema.clone(),
            access: access.clone(),
        });
    }
}

/// Where each of `wanted` is in `decided` (`None`: one is not there).
fn positions(decided: &[Expr], wanted: &[Expr]) -> Option<Vec<usize>> {
    wanted
        .iter()
        .map(|w| decided.iter().position(|d| d == w))
        .collect()
}

/// True when `access`'s read returns every one of `columns`: a table read
/// does; an index read when the index projects them.
fn serves(access: &AccessPlan, meta: &TableMeta, columns: &[String]) -> bool {
    let Operation::Query {
        index: Some(name), ..
    } = &access.operation
    else {
        return true;
    };
    meta.indexes
        .iter()
        .find(|i| &i.name == name)
        .is_some_and(|index| index_projects(index, meta, columns))
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;
    use crate::plan::fixture::{orders_meta, orders_schema};

    #[test]
    fn the_scan_takes_the_early_decision_when_its_read_serves_the_columns() {
        let (meta, schema) = (orders_meta(), orders_schema());
        let decisions = Decisions::default();
        let filters = vec![col("customer").eq(lit("c1")), col("note").eq(lit("x"))];
        let options = PlanOptions::default();
        let early = decisions.for_filters(&meta, &schema, &filters, &options);
        assert_eq!(early, vec![true, false]);
        // DataFusion asks again about the filter it kept above the read.
        let again = decisions.for_filters(&meta, &schema, &filters[1..], &options);
        assert_eq!(again, vec![false]);
        let all: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let reversed: Vec<Expr> = filters.iter().rev().cloned().collect();
        let scan = decisions.for_scan(&meta, &schema, &reversed, &all, &options);
        assert_eq!(decisions.planned(), 1, "planned once");
        assert_eq!(scan, plan_access(&meta, &schema, &reversed, &all, &options));
        assert_eq!(scan.exact, vec![false, true]);
    }

    #[test]
    fn an_index_that_lacks_a_needed_column_makes_the_scan_decide_again() {
        // byRegion is KEYS_ONLY: it serves `region` and the table's keys only.
        let (meta, schema) = (orders_meta(), orders_schema());
        let decisions = Decisions::default();
        let filters = vec![col("region").eq(lit("eu"))];
        let options = PlanOptions::default();
        assert_eq!(
            decisions.for_filters(&meta, &schema, &filters, &options),
            vec![true]
        );
        let early = decisions.for_scan(&meta, &schema, &filters, &[], &options);
        assert!(
            matches!(&early.operation, Operation::Query { index: Some(i), .. } if i == "byRegion")
        );
        assert_eq!(decisions.planned(), 1);
        let needed = vec!["price".to_string()];
        let scan = decisions.for_scan(&meta, &schema, &filters, &needed, &options);
        assert_eq!(decisions.planned(), 2);
        let mut all = needed.clone();
        all.push("region".into());
        assert_eq!(scan, plan_access(&meta, &schema, &filters, &all, &options));
        assert_ne!(scan, early);
        // Columns the index projects: the early decision stands.
        let keys = vec!["customer".to_string(), "orderId".to_string()];
        assert_eq!(
            decisions.for_scan(&meta, &schema, &filters, &keys, &options),
            early
        );
        assert_eq!(decisions.planned(), 2);
    }

    #[test]
    fn other_options_or_filters_are_other_decisions() {
        let (meta, schema) = (orders_meta(), orders_schema());
        let decisions = Decisions::default();
        let filters = vec![col("customer").eq(lit("c1"))];
        decisions.for_filters(&meta, &schema, &filters, &PlanOptions::default());
        let off = PlanOptions {
            pushdown: false,
            ..PlanOptions::default()
        };
        let plain = decisions.for_scan(&meta, &schema, &filters, &[], &off);
        assert_eq!(plain.operation, Operation::Scan);
        decisions.for_filters(
            &meta,
            &schema,
            &[col("customer").eq(lit("c2"))],
            &PlanOptions::default(),
        );
        assert_eq!(decisions.planned(), 3);
    }
}
