//! A cluster's scheduler, as clients and executors address it: its URL,
//! and cancelling a job so that its DynamoDB reads stop.
//!
//! - The client ([`cancel_jobs`]): an interrupted statement's job is
//!   cancelled at the scheduler; dropping the client's stream alone leaves it
//!   running.
//! - The executors ([`JobWatch`]): Ballista aborts a cancelled task's future,
//!   but the task's shuffle writer keeps polling the plan in a task of its
//!   own. Each read asks the watch, before each request, whether its job is
//!   still alive; the watch asks the scheduler at most once a second per job
//!   and says "cancelled" once the job has failed (a cancel is a failure
//!   named `Cancelled`) or the scheduler no longer knows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::job_status::Status;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobStatusParams};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::protobuf::LogicalPlanNode;
use dynamo_datafusion::read::TaskCancellation;

/// How long a job's state is taken as known before the scheduler is asked
/// again: a cancelled job's reads stop within about this long.
const RECHECK: Duration = Duration::from_secs(1);

/// The scheduler URL Ballista's client takes, from `df://HOST:PORT` (or
/// `http://HOST:PORT`).
pub fn scheduler_url(cluster: &str) -> std::result::Result<String, String> {
    let rest = cluster
        .strip_prefix("df://")
        .or_else(|| cluster.strip_prefix("http://"))
        .ok_or_else(|| format!("cluster '{cluster}' is not df://HOST:PORT"))?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(|| format!("cluster '{cluster}' names no port: df://HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("cluster '{cluster}': '{port}' is not a port"))?;
    if host.is_empty() {
        return Err(format!("cluster '{cluster}' names no host"));
    }
    Ok(format!("http://{host}:{port}"))
}

/// Cancels, on the cluster at `cluster` (`df://HOST:PORT`), the jobs `plan`
/// submitted — what an interrupted statement (Ctrl-C) must do. Returns the
/// ids of the jobs cancelled; a plan that submitted none cancels nothing.
pub async fn cancel_jobs(cluster: &str, plan: &Arc<dyn ExecutionPlan>) -> Result<Vec<String>> {
    let mut jobs = Vec::new();
    plan.apply(|node| {
        if let Some(query) = node.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>()
            && let Some(job) = query.job_id()
        {
            jobs.push(job.to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let url = scheduler_url(cluster).map_err(DataFusionError::Configuration)?;
    let failed = |e: String| {
        DataFusionError::External(
            format!("cancelling job(s) {} at {cluster}: {e}", jobs.join(", ")).into(),
        )
    };
    let mut scheduler = SchedulerGrpcClient::connect(url)
        .await
        .map_err(|e| failed(e.to_string()))?;
    for job in &jobs {
        scheduler
            .cancel_job(CancelJobParams {
                job_id: job.clone(),
            })
            .await
            .map_err(|e| failed(e.message().to_string()))?;
    }
    Ok(jobs)
}

/// The job of a Ballista task, from the name its executor gives the task's
/// context: `TID <job>/<stage>.<attempt>/<task>.<attempt>`.
fn job_of(task_id: &str) -> Option<&str> {
    let rest = task_id.strip_prefix("TID ")?;
    rest.split('/').next().filter(|job| !job.is_empty())
}

/// An executor's answer to "was this read's job cancelled?", from the
/// scheduler's job states (see the module documentation).
#[derive(Debug)]
pub struct JobWatch {
    scheduler: String,
    /// Per job: when it was last asked about, and whether it is over.
    known: Mutex<HashMap<String, (Instant, bool)>>,
}

impl JobWatch {
    /// A watch asking the scheduler at `scheduler` (`HOST:PORT`).
    pub fn new(scheduler: &str) -> Self {
        Self {
            scheduler: format!("http://{scheduler}"),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the scheduler says `job` is over (failed, cancelled, or no
    /// longer known); `None` when it cannot be asked.
    async fn ask(&self, job: &str) -> Option<bool> {
        let mut scheduler = SchedulerGrpcClient::connect(self.scheduler.clone())
            .await
            .ok()?;
        let answer = scheduler
            .get_job_status(GetJobStatusParams {
                job_id: job.to_string(),
            })
            .await
            .ok()?
            .into_inner();
        Some(match answer.status.and_then(|s| s.status) {
            None | Some(Status::Failed(_)) => true,
            Some(Status::Queued(_) | Status::Running(_) | Status::Successful(_)) => false,
        })
    }
}

#[async_trait]
impl TaskCancellation for JobWatch {
    async fn is_cancelled(&self, task_id: &str) -> bool {
        let Some(job) = job_of(task_id) else {
            return false;
        };
        let fresh = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            known
                .get(job)
                .filter(|(at, over)| *over || at.elapsed() < RECHECK)
                .map(|(_, over)| *over)
        };
        if let Some(over) = fresh {
            return over;
        }
        // Unsure (the scheduler cannot be asked): the read goes on, and is
        // asked about again after RECHECK.
        let over = self.ask(job).await.unwrap_or(false);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        // Forget jobs not asked about for a minute: an executor lives long.
        known.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(60));
        known.insert(job.to_string(), (Instant::now(), over));
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_df_urls() {
        assert_eq!(
            scheduler_url("df://127.0.0.1:50050").as_deref(),
            Ok("http://127.0.0.1:50050")
        );
        assert_eq!(scheduler_url("http://h:1/").as_deref(), Ok("http://h:1"));
        for bad in ["127.0.0.1:50050", "df://host", "df://:5", "df://h:port"] {
            assert!(scheduler_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tasks_job_is_read_from_its_name() {
        assert_eq!(job_of("TID 038JEPAZ6Y000/0.0/[0].0"), Some("038JEPAZ6Y000"));
        assert_eq!(job_of("TID job-1/2.0/3.1"), Some("job-1"));
        assert_eq!(job_of("task 7"), None);
        assert_eq!(job_of("TID /0.0/1.0"), None);
    }

    #[tokio::test]
    async fn a_watch_that_cannot_ask_lets_reads_go_on() {
        // Nothing listens on port 9 of the loopback.
        let watch = JobWatch::new("127.0.0.1:9");
        assert!(!watch.is_cancelled("TID j/0.0/0.0").await);
        assert!(!watch.is_cancelled("not a ballista task").await);
    }
}
