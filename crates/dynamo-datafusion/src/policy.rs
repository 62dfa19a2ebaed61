//! How reads behave against the service: the retry policy and the most
//! requests a scan keeps in flight. Plain data a [`crate::ScanPlan`]
//! carries; `read::retry` and `read::concurrency` carry it out.

use std::time::Duration;

/// Default most requests one scan keeps in flight (table option and session
/// setting `max_concurrency`): at ~100 ms per 1 MB page, 64 requests keep
/// ~640 MB/s coming, more than one client decodes, while pages waiting in
/// memory stay under 64 MB.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// How DynamoDB calls are retried.
///
/// ```
/// use std::time::Duration;
/// use dynamo_datafusion::RetryPolicy;
///
/// let patient = RetryPolicy::new(20, 1_000);
/// assert!(patient.backoff_cap(3) <= patient.max_delay);
/// assert_eq!(RetryPolicy::default().base_delay, Duration::from_millis(25));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Retries per query, summed over all its partitions and calls; once spent,
    /// the next retryable failure ends the query.
    pub budget: u32,
    /// Backoff cap of the first retry; it doubles with each further attempt.
    pub base_delay: Duration,
    /// Largest backoff cap.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `max_attempts` per call (the first included) and `budget` retries per
    /// query, with the default backoff.
    pub fn new(max_attempts: u32, budget: u32) -> Self {
        Self {
            max_attempts,
            budget,
            ..Self::default()
        }
    }

    /// This policy with backoff caps from `base_delay` (the first retry's)
    /// doubling up to `max_delay`.
    pub fn with_delays(mut self, base_delay: Duration, max_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self.max_delay = max_delay;
        self
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            budget: 200,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the wait before attempt `attempt + 1` (`attempt` ≥ 1 failed
    /// attempts so far): `base_delay · 2^(attempt-1)`, at most `max_delay`.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A wait drawn uniformly from `[0, backoff_cap(attempt)]` ("full jitter"), so
    /// that segments throttled together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt).as_micros() as u64;
        Duration::from_micros(fastrand::u64(0..=cap))
    }
}
