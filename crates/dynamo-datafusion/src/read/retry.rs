//! Retries of DynamoDB calls: exponential backoff with full jitter, an attempt
//! limit per call and a retry budget shared by every partition of a query.
//!
//! A read page is retried as the same request with the same
//! `ExclusiveStartKey`, so a retry resumes exactly where the failed attempt
//! started: no page is skipped and none is read twice. The SDK's own retries
//! are switched off for these calls (see [`without_sdk_retries`]) so that this
//! module is the only place that decides.

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::ErrorKind;
use crate::policy::RetryPolicy;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What a failed call is worth retrying as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retryable {
    /// DynamoDB throttled the request (or left BatchGetItem keys unprocessed).
    Throttled,
    /// A 5xx, a connection that failed or broke, a response cut short or unreadable.
    Transient,
    /// Retrying cannot help (bad request, missing table, access denied, ...).
    No,
}

/// How an SDK call failed, without the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request could not be built; nothing was sent.
    Construction,
    /// The call timed out.
    Timeout,
    /// No response arrived (connection refused, reset, closed).
    Dispatch,
    /// A response arrived but could not be read or parsed.
    Response,
    /// DynamoDB answered with an error.
    Service,
}

/// Error codes DynamoDB uses for credentials and permissions it refuses.
const ACCESS_CODES: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "InvalidClientTokenId",
];

/// Error codes DynamoDB uses for throttling.
const THROTTLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
];

/// The kind of a failure, from its parts. Pure, so the rules are unit-tested.
///
/// Throttling codes (any status) and 429 are [`ErrorKind::Throttled`]; any
/// 5xx, timeouts, failed connections and unreadable responses (including a
/// 2xx whose body did not parse, which the SDK reports as a service error
/// without a code) are [`ErrorKind::Transient`]; DynamoDB's codes name the
/// rest.
pub fn kind_of(failure: FailureKind, code: Option<&str>, status: Option<u16>) -> ErrorKind {
    if code.is_some_and(|c| THROTTLE_CODES.contains(&c)) || status == Some(429) {
        return ErrorKind::Throttled;
    }
    match failure {
        FailureKind::Construction => return ErrorKind::Other,
        // A success status whose body did not parse: garbled on the way.
        FailureKind::Service if status.is_some_and(|s| s < 300) => return ErrorKind::Transient,
        FailureKind::Timeout | FailureKind::Dispatch | FailureKind::Response => {
            return ErrorKind::Transient;
        }
        FailureKind::Service if status.is_some_and(|s| s >= 500) => return ErrorKind::Transient,
        FailureKind::Service => {}
    }
    match code {
        Some("ResourceNotFoundException") => ErrorKind::NotFound,
        Some(c) if ACCESS_CODES.contains(&c) => ErrorKind::AccessDenied,
        Some("ValidationException") => ErrorKind::Validation,
        _ => ErrorKind::Other,
    }
}

/// Classifies a failure from its parts for retrying. Reads are idempotent,
/// so everything that may be a passing fault is retried; other service errors
/// (4xx) are final.
pub fn classify_parts(kind: FailureKind, code: Option<&str>, status: Option<u16>) -> Retryable {
    match kind_of(kind, code, status) {
        ErrorKind::Throttled => Retryable::Throttled,
        ErrorKind::Transient => Retryable::Transient,
        _ => Retryable::No,
    }
}

/// The kind of an SDK error (see [`kind_of`]).
pub fn error_kind<E>(e: &SdkError<E, HttpResponse>) -> ErrorKind
where
    E: ProvideErrorMetadata,
{
    let (failure, code, status) = parts(e);
    kind_of(failure, code, status)
}

fn parts<E>(e: &SdkError<E, HttpResponse>) -> (FailureKind, Option<&str>, Option<u16>)
where
    E: ProvideErrorMetadata,
{
    let kind = match e {
        SdkError::ConstructionFailure(_) => FailureKind::Construction,
        SdkError::TimeoutError(_) => FailureKind::Timeout,
        SdkError::DispatchFailure(_) => FailureKind::Dispatch,
        SdkError::ResponseError(_) => FailureKind::Response,
        SdkError::ServiceError(_) => FailureKind::Service,
        _ => FailureKind::Response,
    };
    let code = e.as_service_error().and_then(|s| s.code());
    let status = e.raw_response().map(|r| r.status().as_u16());
    (kind, code, status)
}

/// Classifies an SDK error for retrying.
pub fn classify<E>(e: &SdkError<E, HttpResponse>) -> Retryable
where
    E: ProvideErrorMetadata,
{
    let (kind, code, status) = parts(e);
    classify_parts(kind, code, status)
}

/// A client like `client` (same endpoint, credentials, HTTP connections) with
/// the SDK's own retries off, for reads: their retries are [`Retrier`]'s,
/// counted against the query's budget. Made once per table or request, not per call.
pub fn without_sdk_retries(client: &Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// Why a call was given up.
#[derive(Debug)]
pub enum GiveUp<E> {
    /// The failure is not retryable.
    Final(E),
    /// Retryable failures went on until the call's attempts or the query's budget ran out.
    Exhausted {
        /// The last failure.
        last: E,
        /// Its classification.
        class: Retryable,
        /// Attempts made for this call.
        attempts: u32,
        /// True when the query's budget (not the call's attempt limit) ran out.
        budget_spent: bool,
    },
}

/// Retries calls by a [`RetryPolicy`], drawing on one budget shared by every
/// partition of a query.
#[derive(Debug)]
pub struct Retrier {
    policy: RetryPolicy,
    remaining: AtomicU32,
    retries: AtomicU64,
}

impl Retrier {
    /// A retrier with the policy's full budget.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            remaining: AtomicU32::new(policy.budget),
            retries: AtomicU64::new(0),
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Retries made so far.
    #[cfg(test)]
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Takes one retry from the budget; false when it is spent.
    pub(crate) fn take(&self) -> bool {
        let took = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1))
            .is_ok();
        if took {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        took
    }

    /// True when a call that failed as `class` after `attempts` attempts
    /// may be tried again: the failure is retryable, the call has attempts
    /// left, and the budget a retry (which this takes).
    pub(crate) fn may_retry(&self, class: Retryable, attempts: u32) -> bool {
        class != Retryable::No && attempts < self.policy.max_attempts && self.take()
    }

    /// Waits the jittered backoff before retry number `attempts`.
    pub(crate) async fn back_off(&self, attempts: u32) {
        tokio::time::sleep(self.policy.backoff(attempts)).await;
    }

    /// Runs `call` until it succeeds, fails finally, or retries run out. Each
    /// retry waits a jittered backoff first.
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        mut call: F,
        classify: impl Fn(&E) -> Retryable,
    ) -> Result<T, GiveUp<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let e = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let class = classify(&e);
            if class == Retryable::No {
                return Err(GiveUp::Final(e));
            }
            if !self.may_retry(class, attempts) {
                return Err(GiveUp::Exhausted {
                    last: e,
                    class,
                    attempts,
                    budget_spent: attempts < self.policy.max_attempts,
                });
            }
            self.back_off(attempts).await;
        }
    }
}

/// Runs one metadata call (ListTables, DescribeTable, DescribeTimeToLive)
/// under `policy`, as reads' requests run: throttling and passing faults are
/// retried with backoff (the soak found 1 in ~10,000 such calls failing a
/// statement at 5 % faults with the SDK's 3 attempts alone). Gives the last
/// error and the attempts made. `client` should have the SDK's own retries
/// off ([`without_sdk_retries`]).
pub(crate) async fn metadata_call<T, E, F, Fut>(
    policy: &RetryPolicy,
    call: F,
) -> Result<T, (SdkError<E, HttpResponse>, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata,
{
    match Retrier::new(policy.clone()).run(call, classify).await {
        Ok(v) => Ok(v),
        Err(GiveUp::Final(e)) => Err((e, 1)),
        Err(GiveUp::Exhausted { last, attempts, .. }) => Err((last, attempts)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn throttling_codes_are_throttled_whatever_the_status() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert_eq!(
                classify_parts(FailureKind::Service, Some(code), Some(400)),
                Retryable::Throttled
            );
        }
        assert_eq!(
            classify_parts(FailureKind::Service, None, Some(429)),
            Retryable::Throttled
        );
    }

    #[test]
    fn server_and_network_faults_are_transient_client_errors_final() {
        let t = Retryable::Transient;
        assert_eq!(
            classify_parts(FailureKind::Service, Some("InternalServerError"), Some(500)),
            t
        );
        assert_eq!(classify_parts(FailureKind::Service, None, Some(503)), t);
        assert_eq!(classify_parts(FailureKind::Dispatch, None, None), t);
        assert_eq!(classify_parts(FailureKind::Timeout, None, None), t);
        assert_eq!(classify_parts(FailureKind::Response, None, Some(200)), t);
        // A 200 whose body is not DynamoDB's JSON reaches us as a code-less service error.
        assert_eq!(classify_parts(FailureKind::Service, None, Some(200)), t);
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
            "UnrecognizedClientException",
        ] {
            assert_eq!(
                classify_parts(FailureKind::Service, Some(code), Some(400)),
                Retryable::No,
                "{code}"
            );
        }
        assert_eq!(
            classify_parts(FailureKind::Construction, None, None),
            Retryable::No
        );
    }

    #[test]
    fn kinds_are_decided_once_from_code_status_and_failure() {
        use FailureKind::*;
        let service = |code: &str, status: u16| kind_of(Service, Some(code), Some(status));
        assert_eq!(
            service("ResourceNotFoundException", 400),
            ErrorKind::NotFound
        );
        for code in [
            "UnrecognizedClientException",
            "AccessDeniedException",
            "InvalidSignatureException",
        ] {
            assert_eq!(service(code, 400), ErrorKind::AccessDenied, "{code}");
        }
        assert_eq!(service("ValidationException", 400), ErrorKind::Validation);
        assert_eq!(service("ThrottlingException", 400), ErrorKind::Throttled);
        assert_eq!(service("InternalServerError", 500), ErrorKind::Transient);
        assert_eq!(
            service("ConditionalCheckFailedException", 400),
            ErrorKind::Other
        );
        assert_eq!(kind_of(Dispatch, None, None), ErrorKind::Transient);
        assert_eq!(
            kind_of(Service, None, Some(200)),
            ErrorKind::Transient,
            "garbage 200"
        );
        assert_eq!(kind_of(Construction, None, None), ErrorKind::Other);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_below_it() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            ..RetryPolicy::default()
        };
        let caps: Vec<u64> = (1..=6)
            .map(|a| p.backoff_cap(a).as_millis() as u64)
            .collect();
        assert_eq!(caps, [10, 20, 40, 80, 100, 100]);
        assert_eq!(p.backoff_cap(u32::MAX), p.max_delay);
        let draws: Vec<Duration> = (0..200).map(|_| p.backoff(3)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(40)));
        // Jitter: not all the same.
        assert!(draws.iter().any(|d| *d != draws[0]));
    }

    fn fast(max_attempts: u32, budget: u32) -> Retrier {
        Retrier::new(RetryPolicy {
            max_attempts,
            budget,
            base_delay: Duration::from_micros(10),
            max_delay: Duration::from_micros(50),
        })
    }

    #[tokio::test]
    async fn retries_until_success_and_counts_retries() {
        let r = fast(5, 10);
        let mut calls = 0;
        let out: Result<u32, GiveUp<&str>> = r
            .run(
                || {
                    calls += 1;
                    let n = calls;
                    async move { if n < 3 { Err("busy") } else { Ok(n) } }
                },
                |_| Retryable::Throttled,
            )
            .await;
        assert_eq!(out.expect("third attempt succeeds"), 3);
        assert_eq!(r.retries(), 2);
    }

    #[tokio::test]
    async fn final_errors_are_not_retried() {
        let r = fast(5, 10);
        let mut calls = 0;
        let out: Result<(), GiveUp<&str>> = r
            .run(
                || {
                    calls += 1;
                    async { Err("bad request") }
                },
                |_| Retryable::No,
            )
            .await;
        assert!(matches!(out, Err(GiveUp::Final("bad request"))));
        assert_eq!(calls, 1);
        assert_eq!(r.retries(), 0);
    }

    /// Runs a call that always fails as `class`: (attempts, budget spent?).
    async fn exhaust(r: &Retrier, class: Retryable) -> (u32, bool) {
        let out: Result<(), GiveUp<&str>> = r.run(|| async { Err("busy") }, |_| class).await;
        match out {
            Err(GiveUp::Exhausted {
                attempts,
                budget_spent,
                class: got,
                ..
            }) => {
                assert_eq!(got, class);
                (attempts, budget_spent)
            }
            other => panic!("expected exhaustion, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn attempts_then_budget_run_out() {
        let r = fast(3, 5);
        // Attempt limit first: 3 attempts, 2 retries spent.
        assert_eq!(exhaust(&r, Retryable::Throttled).await, (3, false));
        // The budget is shared: 3 retries remain; this call again stops at its attempt limit.
        assert_eq!(exhaust(&r, Retryable::Throttled).await, (3, false));
        // One retry remains: the third call stops when the budget, not its limit, runs out.
        assert_eq!(exhaust(&r, Retryable::Transient).await, (2, true));
        assert_eq!(r.retries(), 5);
        assert!(!r.take());
    }
}
