//! A read learns that the engine task it runs for was cancelled, where the
//! cancellation does not reach it.
//!
//! Ballista's executors cancel a task by aborting its future, but the
//! task's shuffle writer polls the plan in a task of its own, which goes on:
//! without this, a cancelled query reads — and is billed — to its end. An
//! engine that knows better registers a [`TaskCancellation`] in the session
//! config ([`CancellationProbe`]); each read then asks it, before each
//! request, whether its task (`TaskContext::task_id`) was cancelled, and stops
//! with [`Error::Cancelled`] if so. An implementation answers from a cache:
//! it is asked once per request.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::execution::TaskContext;

use crate::error::{Error, Result};

/// Whether an engine's task was cancelled.
#[async_trait]
pub trait TaskCancellation: Send + Sync + Debug {
    /// True once the task named `task_id` (as its `TaskContext` names it)
    /// was cancelled. Asked before every request of a read: answer from a
    /// cache, and answer `false` when unsure (the read then goes on).
    async fn is_cancelled(&self, task_id: &str) -> bool;
}

/// A [`TaskCancellation`] as a session config extension, which every read
/// of a task of that session asks.
///
/// ```
/// use std::sync::Arc;
/// use datafusion::prelude::SessionConfig;
/// use dynamo_datafusion::read::{CancellationProbe, TaskCancellation};
///
/// #[derive(Debug)]
/// struct Never;
///
/// #[async_trait::async_trait]
/// impl TaskCancellation for Never {
///     async fn is_cancelled(&self, _task: &str) -> bool {
///         false
///     }
/// }
///
/// let config = SessionConfig::new().with_extension(Arc::new(CancellationProbe(Arc::new(Never))));
/// assert!(config.get_extension::<CancellationProbe>().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct CancellationProbe(pub Arc<dyn TaskCancellation>);

/// A probe and the task a read asks it about.
#[derive(Debug)]
pub(crate) struct TaskWatch {
    probe: Arc<dyn TaskCancellation>,
    task: String,
}

impl TaskWatch {
    /// The watch of a read run in `context`: when its session has a probe
    /// and the context names its task.
    pub(crate) fn of(context: &TaskContext) -> Option<Arc<Self>> {
        let probe = context
            .session_config()
            .get_extension::<CancellationProbe>()?;
        let task = context.task_id()?;
        Some(Arc::new(Self {
            probe: Arc::clone(&probe.0),
            task,
        }))
    }

    /// Before a request to `table`: an error once the task is cancelled.
    pub(crate) async fn check(&self, table: &str) -> Result<()> {
        if self.probe.is_cancelled(&self.task).await {
            return Err(Error::Cancelled {
                table: table.to_string(),
                task: self.task.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Cancelled(&'static str);

    #[async_trait]
    impl TaskCancellation for Cancelled {
        async fn is_cancelled(&self, task_id: &str) -> bool {
            task_id == self.0
        }
    }

    fn context(probe: Option<&'static str>, task: Option<&str>) -> TaskContext {
        let mut config = datafusion::prelude::SessionConfig::new();
        if let Some(p) = probe {
            config = config.with_extension(Arc::new(CancellationProbe(Arc::new(Cancelled(p)))));
        }
        let context = TaskContext::default().with_session_config(config);
        match task {
            Some(t) => context.with_task_id(t.to_string()),
            None => context,
        }
    }

    #[tokio::test]
    async fn a_read_of_a_cancelled_task_stops_and_others_go_on() {
        assert!(TaskWatch::of(&context(None, Some("t1"))).is_none());
        assert!(TaskWatch::of(&context(Some("t1"), None)).is_none());
        let watch = TaskWatch::of(&context(Some("t1"), Some("t1"))).expect("watched");
        let e = watch.check("T").await.expect_err("cancelled").to_string();
        assert!(e.contains("table 'T'") && e.contains("t1"), "{e}");
        let other = TaskWatch::of(&context(Some("t1"), Some("t2"))).expect("watched");
        other.check("T").await.expect("not cancelled");
    }
}
