//! Statements Flight SQL planned to describe them, kept for the call that
//! runs them.
//!
//! A Flight SQL client asks `GetFlightInfo` (the statement's schema, which
//! takes planning it) and then `DoGet` (running it): without this the
//! statement is planned twice. The plan made for the first call is kept for
//! [`PLAN_TTL`], under the caller's client, its client generation, whether
//! it may write, and the SQL text, and the second call takes it (once). A
//! changed client (credentials, service), a change of write access, or a
//! plan older than that plans again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::prelude::DataFrame;

use crate::bounded::make_room;

/// How long a planned statement waits for the call that runs it.
pub(crate) const PLAN_TTL: Duration = Duration::from_secs(30);
/// The most planned statements kept at once.
const MAX_PLANS: usize = 1_024;

/// Who planned a statement, and which statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    pub client_id: String,
    pub generation: u64,
    pub may_write: bool,
    pub sql: String,
}

/// Planned statements waiting to run.
#[derive(Default)]
pub(crate) struct PlannedStatements {
    kept: Mutex<HashMap<PlanKey, (DataFrame, Instant)>>,
}

impl PlannedStatements {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PlanKey, (DataFrame, Instant)>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `frame` for the call that runs `key`'s statement.
    pub(crate) fn keep(&self, key: PlanKey, frame: DataFrame) {
        self.keep_at(key, frame, Instant::now());
    }

    fn keep_at(&self, key: PlanKey, frame: DataFrame, now: Instant) {
        let mut kept = self.lock();
        make_room(&mut kept, &key, MAX_PLANS, PLAN_TTL, now, |(_, at)| *at);
        kept.insert(key, (frame, now));
    }

    /// The plan kept for `key`, if it is younger than [`PLAN_TTL`]: taken,
    /// so each plan runs once.
    pub(crate) fn take(&self, key: &PlanKey) -> Option<DataFrame> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &PlanKey, now: Instant) -> Option<DataFrame> {
        let (frame, at) = self.lock().remove(key)?;
        (now.duration_since(at) < PLAN_TTL).then_some(frame)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    fn key(sql: &str) -> PlanKey {
        PlanKey {
            client_id: "acme".into(),
            generation: 1,
            may_write: false,
            sql: sql.into(),
        }
    }

    async fn frame() -> DataFrame {
        SessionContext::new().sql("SELECT 1").await.expect("plans")
    }

    #[tokio::test]
    async fn a_plan_is_taken_once_by_the_same_caller_before_it_expires() {
        let plans = PlannedStatements::default();
        let now = Instant::now();
        plans.keep_at(key("SELECT 1"), frame().await, now);
        let other = PlanKey {
            generation: 2,
            ..key("SELECT 1")
        };
        assert!(plans.take_at(&other, now).is_none(), "another client build");
        let writer = PlanKey {
            may_write: true,
            ..key("SELECT 1")
        };
        assert!(plans.take_at(&writer, now).is_none(), "other write access");
        assert!(plans.take_at(&key("SELECT 1"), now).is_some());
        assert!(plans.take_at(&key("SELECT 1"), now).is_none(), "taken");

        plans.keep_at(key("SELECT 2"), frame().await, now);
        assert!(
            plans.take_at(&key("SELECT 2"), now + PLAN_TTL).is_none(),
            "expired"
        );
    }

    #[tokio::test]
    async fn at_most_so_many_plans_wait() {
        let plans = PlannedStatements::default();
        let now = Instant::now();
        let one = frame().await;
        for i in 0..MAX_PLANS + 10 {
            plans.keep_at(
                key(&format!("SELECT {i}")),
                one.clone(),
                now + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(plans.lock().len(), MAX_PLANS);
        assert!(
            plans
                .lock()
                .contains_key(&key(&format!("SELECT {}", MAX_PLANS + 9)))
        );
        assert!(
            !plans.lock().contains_key(&key("SELECT 0")),
            "the oldest went"
        );
    }
}
