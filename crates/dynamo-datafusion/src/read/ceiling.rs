//! A query's read-capacity ceiling while it reads: what its reads consumed,
//! shared by every partition of a read (and by every read of a query when
//! `CapacityCeilingRule` joined them), held against `max_rcu`.
//!
//! A request is not sent once the ceiling is reached, and a page whose
//! capacity takes the query above it is not handed on: the read fails
//! instead, so nothing past the ceiling is reported as complete. Requests
//! already in flight when the ceiling is reached still return (and are
//! billed): consumption may pass the ceiling by at most those pages.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Consumption against a ceiling, in thousandths of a unit.
#[derive(Debug)]
pub(crate) struct Ceiling {
    max_rcu: f64,
    estimated_rcu: f64,
    /// How to raise it, said where it was set.
    raise: String,
    /// A table option set it (else the session).
    by_table: bool,
    spent_milli: AtomicU64,
}

impl Ceiling {
    /// A ceiling of `max_rcu` for a query estimated at `estimated_rcu`,
    /// set by a table option (`by_table`) or the session.
    pub(crate) fn new(max_rcu: f64, estimated_rcu: f64, by_table: bool) -> Self {
        Self {
            max_rcu,
            estimated_rcu,
            raise: crate::error::ceiling_hint(by_table),
            by_table,
            spent_milli: AtomicU64::new(0),
        }
    }

    /// The ceiling `plan` reads under, if it has one, held against its
    /// estimate: `share` (0 to 1) of it, for a node that reads that part of
    /// the plan's partitions — on a cluster each task holds its share, so
    /// the tasks of one read together stay under the ceiling.
    pub(crate) fn of_plan(
        plan: &crate::plan::ScanPlan,
        share: f64,
    ) -> Option<std::sync::Arc<Self>> {
        let max = plan.max_rcu?;
        let estimated = plan.ceiling_estimate().map_or(0.0, |e| e.rcu);
        Some(std::sync::Arc::new(Self::new(
            max * share.clamp(0.0, 1.0),
            estimated,
            plan.max_rcu_by_table,
        )))
    }

    /// Whether a table option set it (else the session).
    pub(crate) fn set_by_table(&self) -> bool {
        self.by_table
    }

    fn spent(&self) -> f64 {
        self.spent_milli.load(Ordering::Acquire) as f64 / 1000.0
    }

    fn reached(&self, table: &str, consumed_rcu: f64) -> Error {
        Error::CeilingReached {
            table: table.to_string(),
            consumed_rcu,
            max_rcu: self.max_rcu,
            estimated_rcu: self.estimated_rcu,
            raise: self.raise.clone(),
        }
    }

    /// Before a request to `table`: an error once the ceiling is reached
    /// (any request costs something).
    pub(crate) fn check(&self, table: &str) -> Result<()> {
        let spent = self.spent();
        if spent >= self.max_rcu {
            return Err(self.reached(table, spent));
        }
        Ok(())
    }

    /// After a response from `table` that consumed `units`: an error when
    /// the query is now above the ceiling.
    pub(crate) fn spend(&self, table: &str, units: f64) -> Result<()> {
        let milli = (units.max(0.0) * 1000.0).round() as u64;
        let spent = (self.spent_milli.fetch_add(milli, Ordering::AcqRel) + milli) as f64 / 1000.0;
        if spent > self.max_rcu {
            return Err(self.reached(table, spent));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_the_page_that_crosses_and_before_the_next_request() {
        let c = Ceiling::new(10.0, 4.0, false);
        assert!(c.check("T").is_ok());
        assert!(c.spend("T", 6.0).is_ok());
        assert!(
            c.spend("T", 4.0).is_ok(),
            "exactly at the ceiling is within it"
        );
        let before = c.check("T").expect_err("reached");
        assert!(before.to_string().contains("consumed 10.0 RCU"), "{before}");
        let c = Ceiling::new(10.0, 4.0, false);
        let after = c.spend("T", 10.5).expect_err("above");
        let text = after.to_string();
        assert!(
            text.contains("above the ceiling of 10 RCU")
                && text.contains("estimated before reading: 4.0"),
            "{text}"
        );
    }
}
