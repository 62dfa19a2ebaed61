//! The read a hash join's keys choose when the probe side starts.
//!
//! Once the join's build side is complete, its dynamic filter says which
//! keys (or bounds) can match ([`super::join`]). [`choose`] plans the scan
//! again with those conditions under each index policy it may use and
//! keeps the planned read unless the new one still enforces what the
//! planned one does (or can be re-checked here) and — by the session's
//! rule — costs less, or costs the same and filters more. Pure: plans and
//! estimates in, a typed [`JoinChoice`] out. The first partition to start
//! decides ([`ChoiceCell`]); the others share its choice.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;

use super::join::Implied;
use super::recheck::Recheck;
use crate::config::JoinKeyLookups;
use crate::plan::{ReadEstimate, ScanPlan, ScanRequest};

/// What the join's keys chose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JoinChoice {
    /// The planned read, and why it stays.
    Planned(Kept),
    /// Nothing: the join's other side is empty.
    Nothing,
    /// The scan planned again with the join's conditions.
    Narrowed {
        /// The read.
        plan: Box<ScanPlan>,
        /// The query's filters (by position) the planned read enforced and
        /// this one does not: re-checked on every row.
        recheck: Vec<usize>,
        /// Why it was chosen.
        gain: Gain,
    },
}

/// Why the planned read stays.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kept {
    /// The request is not known here (a plan from another process).
    NotPlannedHere,
    /// The filter names no values or bounds of this table's columns.
    NothingImplied,
    /// No estimate to compare with.
    NoEstimate,
    /// The same read, with the same FilterExpression.
    AddsNothing,
    /// The read by keys would not cost less.
    NotCheaper {
        read: String,
        by_keys: ReadEstimate,
        as_planned: ReadEstimate,
        unit: &'static str,
    },
    /// No read planned with the keys could be used, for this reason.
    Refused(String),
}

/// Why the read planned with the join's conditions was chosen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Gain {
    /// The same read, the join's filter sent as a FilterExpression.
    Filtered { read: String, by_keys: ReadEstimate },
    /// Another read, costing less by the session's rule.
    Cheaper {
        read: String,
        by_keys: ReadEstimate,
        as_planned: ReadEstimate,
        unit: &'static str,
        rechecked: bool,
    },
}

fn figures(e: &ReadEstimate) -> String {
    format!("~{:.0} items, ~{:.1} RCU", e.items, e.rcu)
}

impl fmt::Display for JoinChoice {
    /// What `EXPLAIN ANALYZE` shows as `join_keys`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinChoice::Nothing => f.write_str("nothing read: the join's other side is empty"),
            JoinChoice::Planned(kept) => write!(f, "planned read: {kept}"),
            JoinChoice::Narrowed { gain, .. } => write!(f, "{gain}"),
        }
    }
}

impl fmt::Display for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kept::NotPlannedHere => f.write_str("not planned in this process"),
            Kept::NothingImplied => {
                f.write_str("the join's filter names no values or bounds of this table")
            }
            Kept::NoEstimate => f.write_str("no estimate to compare"),
            Kept::AddsNothing => f.write_str("the join's filter adds nothing DynamoDB can use"),
            Kept::NotCheaper {
                read,
                by_keys,
                as_planned,
                unit,
            } => write!(
                f,
                "{read} would read {}, not fewer {unit} than {}",
                figures(by_keys),
                figures(as_planned)
            ),
            Kept::Refused(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for Gain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gain::Filtered { read, by_keys } => write!(
                f,
                "{read}: the join's filter sent to DynamoDB, {}",
                figures(by_keys)
            ),
            Gain::Cheaper {
                read,
                by_keys,
                as_planned,
                unit,
                rechecked,
            } => write!(
                f,
                "{read}: {} instead of {} (fewer {unit}){}",
                figures(by_keys),
                figures(as_planned),
                if *rechecked {
                    ", the query's own key conditions checked here"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The read for a join's filters: `implied` is what each complete filter
/// says of the table's columns; `request` what the scan was asked (`None`
/// when not planned here); the read keeps `partitions` partitions;
/// `can_recheck` says whether the query's filters can be re-checked here
/// on a read that no longer enforces them.
pub(crate) fn choose(
    plan: &ScanPlan,
    request: Option<&ScanRequest>,
    implied: Vec<Implied>,
    partitions: usize,
    rule: JoinKeyLookups,
    can_recheck: bool,
) -> JoinChoice {
    let Some(request) = request else {
        return JoinChoice::Planned(Kept::NotPlannedHere);
    };
    let mut conditions = Vec::new();
    for i in implied {
        match i {
            Implied::Nothing => return JoinChoice::Nothing,
            Implied::Conditions(c) => conditions.extend(c),
        }
    }
    if conditions.is_empty() {
        return JoinChoice::Planned(Kept::NothingImplied);
    }
    let Some(as_planned) = plan.estimate() else {
        return JoinChoice::Planned(Kept::NoEstimate);
    };
    let (narrowed, recheck, by_keys) = match cheapest_narrowing(
        plan,
        request,
        &conditions,
        as_planned,
        partitions,
        rule,
        can_recheck,
    ) {
        Ok(n) => n,
        Err(why) => return JoinChoice::Planned(Kept::Refused(why)),
    };
    let read = narrowed.describe_operation();
    let same_read = narrowed.access.operation == plan.access.operation
        && narrowed.partitions == plan.partitions;
    if same_read {
        if narrowed.access.filter == plan.access.filter {
            return JoinChoice::Planned(Kept::AddsNothing);
        }
        return JoinChoice::Narrowed {
            plan: Box::new(narrowed),
            recheck,
            gain: Gain::Filtered { read, by_keys },
        };
    }
    let unit = rule.unit();
    if rule.cost(&by_keys) < rule.cost(&as_planned) {
        let rechecked = !recheck.is_empty();
        JoinChoice::Narrowed {
            plan: Box::new(narrowed),
            recheck,
            gain: Gain::Cheaper {
                read,
                by_keys,
                as_planned,
                unit,
                rechecked,
            },
        }
    } else {
        JoinChoice::Planned(Kept::NotCheaper {
            read,
            by_keys,
            as_planned,
            unit,
        })
    }
}

/// The cheapest read (by `rule`, the first of equals) of the scan planned
/// again with the join's `implied` conditions under each index policy it
/// may use — the planner ranks reads by their shape — that keeps to what
/// the ceiling admitted (`as_planned`) and whose dropped key conditions
/// can be re-checked; else why none.
fn cheapest_narrowing(
    plan: &ScanPlan,
    request: &ScanRequest,
    implied: &[Expr],
    as_planned: ReadEstimate,
    partitions: usize,
    rule: JoinKeyLookups,
    can_recheck: bool,
) -> Result<(ScanPlan, Vec<usize>, ReadEstimate), String> {
    let mut best: Option<(ScanPlan, Vec<usize>, ReadEstimate)> = None;
    let mut refused: Option<String> = None;
    for index in request.index_choices() {
        let replanned = match request.plan_with(implied, partitions, index) {
            Ok(p) => p,
            Err(e) => {
                refused.get_or_insert(format!("planning with the join's keys failed: {e}"));
                continue;
            }
        };
        let (narrowed, positions) = plan.narrowed_to(replanned);
        if !positions.is_empty() && !can_recheck {
            refused.get_or_insert(
                "a read by the join's keys would not enforce the query's own key \
                 conditions, and they cannot be re-checked here"
                    .into(),
            );
            continue;
        }
        let Some(estimate) = narrowed.estimate() else {
            continue;
        };
        // The ceiling admitted the planned read's estimate: never more.
        if plan.max_rcu().is_some() && estimate.rcu > as_planned.rcu {
            refused.get_or_insert(format!(
                "{} would take ~{:.1} RCU, more than the ~{:.1} the ceiling admitted",
                narrowed.describe_operation(),
                estimate.rcu,
                as_planned.rcu
            ));
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| rule.cost(&estimate) < rule.cost(&b.2))
        {
            best = Some((narrowed, positions, estimate));
        }
    }
    best.ok_or_else(|| refused.unwrap_or_else(|| "no estimate to compare".into()))
}

/// The read a join's keys chose, as the node's partitions share it.
#[derive(Debug)]
pub(crate) struct Chosen {
    /// The join filters' expressions it was chosen for (the partitions of
    /// one execution see the very same ones and share the choice).
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// The read.
    pub(crate) plan: Arc<ScanPlan>,
    /// The query's filters that read does not enforce, checked here.
    pub(crate) recheck: Option<Arc<Recheck>>,
    /// What was chosen and why (`EXPLAIN ANALYZE`'s `join_keys`).
    why: String,
}

/// The choice of one execution: made by the first partition to start,
/// shared by the others; made again when the join's filters change (a
/// plan executed again).
#[derive(Debug, Default)]
pub(crate) struct ChoiceCell(Mutex<Option<Arc<Chosen>>>);

impl ChoiceCell {
    /// The choice for the join filters' `complete` expressions: the one
    /// already made for these very expressions, else `make`'s.
    pub(crate) fn get_or_choose(
        &self,
        complete: &[Arc<dyn PhysicalExpr>],
        make: impl FnOnce() -> (ScanPlan, Option<Arc<Recheck>>, String),
    ) -> Arc<Chosen> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(chosen) = slot.as_ref().filter(|c| made_for(&c.filters, complete)) {
            return Arc::clone(chosen);
        }
        let (plan, recheck, why) = make();
        let chosen = Arc::new(Chosen {
            filters: complete.to_vec(),
            plan: Arc::new(plan),
            recheck,
            why,
        });
        *slot = Some(Arc::clone(&chosen));
        chosen
    }

    /// What was chosen, once a partition started.
    pub(crate) fn get(&self) -> Option<Arc<Chosen>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Why the read is what it is (`None`: not started yet).
    pub(crate) fn why(&self) -> Option<String> {
        self.get().map(|c| c.why.clone())
    }
}

/// True when `a` and `b` are the very same expressions (the same objects,
/// not merely equal ones).
fn made_for(a: &[Arc<dyn PhysicalExpr>], b: &[Arc<dyn PhysicalExpr>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::logical_expr::{Expr, col, ident, lit};

    use super::*;
    use crate::plan::fixture::{orders_meta, orders_schema};
    use crate::plan::{Operation, ReadOptions};

    /// Orders read for `filters`, all columns handed on, 4 partitions.
    fn request(filters: Vec<Expr>) -> ScanRequest {
        ScanRequest {
            meta: Arc::new(orders_meta()),
            schema: orders_schema(),
            filters,
            projection: None,
            limit: None,
            options: ReadOptions {
                segments: 4,
                max_partitions: 4,
                ..ReadOptions::default()
            },
            key_stats: None,
            decisions: Arc::default(),
        }
    }

    fn choice(request: &ScanRequest, implied: Vec<Implied>, can_recheck: bool) -> JoinChoice {
        let plan = request.plan().expect("plans");
        choose(
            &plan,
            Some(request),
            implied,
            4,
            JoinKeyLookups::FewerItems,
            can_recheck,
        )
    }

    fn customers(values: &[&str]) -> Implied {
        Implied::Conditions(vec![
            col("customer").in_list(values.iter().map(|v| lit(*v)).collect(), false),
        ])
    }

    #[test]
    fn without_the_request_or_with_nothing_implied_the_planned_read_stays() {
        let r = request(vec![]);
        let plan = r.plan().expect("plans");
        let none = choose(&plan, None, vec![], 4, JoinKeyLookups::FewerItems, true);
        assert_eq!(none, JoinChoice::Planned(Kept::NotPlannedHere));
        assert_eq!(
            choice(&r, vec![Implied::Conditions(vec![])], true),
            JoinChoice::Planned(Kept::NothingImplied)
        );
        assert_eq!(
            choice(&r, vec![customers(&["c1"]), Implied::Nothing], true).to_string(),
            "nothing read: the join's other side is empty"
        );
    }

    #[test]
    fn a_scan_becomes_queries_of_the_join_keys_when_that_reads_fewer_items() {
        let JoinChoice::Narrowed {
            plan,
            recheck,
            gain,
        } = choice(&request(vec![]), vec![customers(&["c1", "c2"])], true)
        else {
            panic!("expected key lookups");
        };
        assert!(
            matches!(&plan.access.operation, Operation::Query { partition_values, index: None, .. } if partition_values.len() == 2)
        );
        assert!(recheck.is_empty(), "a Scan enforced nothing to re-check");
        let Gain::Cheaper {
            by_keys,
            as_planned,
            unit,
            rechecked,
            ..
        } = &gain
        else {
            panic!("expected a cheaper read: {gain}");
        };
        assert!(by_keys.items < as_planned.items);
        assert_eq!((*unit, *rechecked), ("items", false));
        assert!(gain.to_string().starts_with("Query of 2 partition keys: ~"));
    }

    #[test]
    fn a_read_that_drops_the_query_key_conditions_rechecks_them_or_is_not_chosen() {
        // Planned: a Query of the byDate index (customer, placed range). The
        // join pins `orderId`: BatchGetItem of the full keys no longer
        // enforces `placed > '2026'`.
        let r = request(vec![
            col("customer").eq(lit("c1")),
            col("placed").gt(lit("2026")),
        ]);
        let orders = || {
            Implied::Conditions(vec![
                ident("orderId").in_list(vec![lit(1i64), lit(2i64)], false),
            ])
        };
        let chosen = choice(&r, vec![orders()], true);
        let JoinChoice::Narrowed {
            plan,
            recheck,
            gain,
        } = &chosen
        else {
            panic!("expected key lookups: {chosen}");
        };
        assert!(
            matches!(&plan.access.operation, Operation::BatchGetItem { keys } if keys.len() == 2)
        );
        assert_eq!(recheck, &vec![1], "the sort-key range is re-checked");
        assert!(
            matches!(
                gain,
                Gain::Cheaper {
                    rechecked: true,
                    ..
                }
            ),
            "{gain}"
        );
        assert!(
            chosen
                .to_string()
                .ends_with("the query's own key conditions checked here")
        );
        // Where the conditions cannot be re-checked, no read that drops them.
        match choice(&r, vec![orders()], false) {
            JoinChoice::Narrowed { plan, recheck, .. } => {
                assert!(recheck.is_empty());
                assert!(!matches!(
                    plan.access.operation,
                    Operation::BatchGetItem { .. }
                ));
            }
            JoinChoice::Planned(_) | JoinChoice::Nothing => {}
        }
    }

    #[test]
    fn the_same_read_with_the_join_filter_sent_is_a_filtered_gain() {
        // Planned: a Scan. The join bounds `size`, which no key holds: the
        // same Scan with a FilterExpression.
        let implied = Implied::Conditions(vec![col("size").lt_eq(lit(10i64))]);
        let chosen = choice(&request(vec![]), vec![implied], true);
        let JoinChoice::Narrowed { plan, gain, .. } = &chosen else {
            panic!("expected the filter sent: {chosen}");
        };
        assert_eq!(plan.access.operation, Operation::Scan);
        assert!(plan.access.has_filter());
        assert!(matches!(gain, Gain::Filtered { .. }), "{gain}");
        assert!(
            chosen
                .to_string()
                .contains("the join's filter sent to DynamoDB")
        );
    }
}
