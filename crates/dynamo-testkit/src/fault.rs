//! A fault-injecting HTTP proxy on loopback, between the SDK and DynamoDB Local.
//!
//! Each request either passes through or meets one fault, drawn from a seeded
//! generator: a throttling answer, a 500, a connection dropped after DynamoDB
//! did the work, a slow answer, a body cut short, or a body of garbage. The
//! proxy counts what it did, so a test can show that faults really happened.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::local::{LocalError, check_loopback, client_at};

type Body = BoxBody<Bytes, std::io::Error>;

/// The faults a request can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `400 ProvisionedThroughputExceededException`, as DynamoDB throttles.
    Throttle,
    /// `500 InternalServerError`.
    ServerError,
    /// The request reaches DynamoDB, the connection closes before the answer.
    Drop,
    /// The answer is delayed by up to [`FaultConfig::slow_delay`].
    Slow,
    /// The answer's body stops halfway and the connection closes.
    Truncate,
    /// `200 OK` with a body that is not DynamoDB's JSON.
    Garbage,
}

impl Fault {
    /// Every fault, in the order [`FaultConfig::rates`] lists them.
    pub const ALL: [Fault; 6] = [
        Fault::Throttle,
        Fault::ServerError,
        Fault::Drop,
        Fault::Slow,
        Fault::Truncate,
        Fault::Garbage,
    ];
}

/// How often each fault happens.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability of each fault in [`Fault::ALL`] order; the rest pass through.
    pub rates: [f64; 6],
    /// Longest delay of a [`Fault::Slow`] answer.
    pub slow_delay: Duration,
    /// Seed of the generator that draws faults.
    pub seed: u64,
    /// Every answer DynamoDB gives is held this long (the service's latency).
    pub latency: Duration,
    /// The table's capacity, as requests at once: a request arriving while
    /// this many are being answered is throttled (`None`: no limit).
    pub capacity: Option<u64>,
}

impl FaultConfig {
    /// No faults: a plain proxy.
    pub fn none() -> Self {
        Self {
            rates: [0.0; 6],
            slow_delay: Duration::from_millis(50),
            seed: 0,
            latency: Duration::ZERO,
            capacity: None,
        }
    }

    /// A total fault `rate` split evenly over every fault.
    pub fn mixed(rate: f64, seed: u64) -> Self {
        Self {
            rates: [rate / Fault::ALL.len() as f64; 6],
            seed,
            ..Self::none()
        }
    }

    /// Only `fault`, at `rate`.
    pub fn only(fault: Fault, rate: f64) -> Self {
        let mut rates = [0.0; 6];
        rates[Fault::ALL.iter().position(|f| *f == fault).unwrap_or(0)] = rate;
        Self {
            rates,
            ..Self::none()
        }
    }

    fn draw(&self, r: f64) -> Option<Fault> {
        let mut acc = 0.0;
        for (fault, rate) in Fault::ALL.iter().zip(self.rates) {
            acc += rate;
            if r < acc {
                return Some(*fault);
            }
        }
        None
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests received.
    pub requests: u64,
    /// Requests answered by DynamoDB and passed back untouched.
    pub passed: u64,
    /// Faults injected, in [`Fault::ALL`] order.
    pub faults: [u64; 6],
    /// Scan requests DynamoDB answered (schema samples and scans).
    pub scans: u64,
    /// Items those Scans evaluated (their `ScannedCount`, added up).
    pub scanned_by_scans: u64,
    /// Most requests the proxy was answering at once.
    pub peak_in_flight: u64,
    /// Requests throttled because [`FaultConfig::capacity`] was reached
    /// (counted among the throttles in `faults` too).
    pub over_capacity: u64,
}

impl FaultCounts {
    /// Faults of every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.iter().sum()
    }
}

struct State {
    upstream: Uri,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    config: Mutex<(FaultConfig, fastrand::Rng)>,
    requests: AtomicU64,
    passed: AtomicU64,
    faults: [AtomicU64; 6],
    scans: AtomicU64,
    scanned_by_scans: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    over_capacity: AtomicU64,
    /// Errors to answer, in order, each after letting some requests of
    /// its operation pass ([`FaultProxy::answer_error`]).
    scripted: Mutex<Vec<Scripted>>,
    /// A stream's one shard shown as a parent and a child
    /// ([`FaultProxy::split_stream_at`]).
    split: Mutex<Option<crate::split::Split>>,
}

/// One error the proxy answers in place of DynamoDB.
#[derive(Debug, Clone)]
struct Scripted {
    /// The operation, as the end of `X-Amz-Target` (`.GetRecords`).
    target: String,
    /// Requests of that operation still to pass first.
    skip: u32,
    /// The error's type (`ExpiredIteratorException`).
    kind: String,
}

/// Counts a request as answered when dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is not a loopback URL.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The upstream URL does not parse.
    #[error("upstream '{0}' is not a URL")]
    BadUpstream(String),
    /// Binding the listener failed.
    #[error("binding the fault proxy: {0}")]
    Io(#[from] std::io::Error),
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1` in front of `upstream` (a loopback URL).
    pub async fn start(upstream: &str, config: FaultConfig) -> Result<Self, ProxyError> {
        check_loopback(upstream)?;
        let upstream: Uri = upstream
            .parse()
            .map_err(|_| ProxyError::BadUpstream(upstream.to_string()))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let rng = fastrand::Rng::with_seed(config.seed);
        let state = Arc::new(State {
            upstream,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            config: Mutex::new((config, rng)),
            requests: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            faults: Default::default(),
            scans: AtomicU64::new(0),
            scanned_by_scans: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            over_capacity: AtomicU64::new(0),
            scripted: Mutex::new(Vec::new()),
            split: Mutex::new(None),
        });
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), req));
                    // A connection ends with an error whenever a fault drops it.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// The proxy's URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, shows the one shard of a table's stream (DynamoDB
    /// Local has one) as two: a closed parent holding the records up to
    /// sequence number `at`, and an open child holding those after it,
    /// listed before its parent — a stream after a shard rolled over.
    pub fn split_stream_at(&self, at: &str) {
        *self.state.split.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(crate::split::Split::new(at));
    }

    /// Answers one request of an operation (`target`, the end of its
    /// `X-Amz-Target`: `.GetRecords`) with a `400` error of type `kind`,
    /// after `skip` requests of that operation have passed.
    pub fn answer_error(&self, target: &str, skip: u32, kind: &str) {
        self.state
            .scripted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Scripted {
                target: target.to_string(),
                skip,
                kind: kind.to_string(),
            });
    }

    /// Replaces the fault configuration (and reseeds the generator).
    pub fn set_config(&self, config: FaultConfig) {
        let rng = fastrand::Rng::with_seed(config.seed);
        *self.state.config.lock().unwrap_or_else(|p| p.into_inner()) = (config, rng);
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> FaultCounts {
        let s = &self.state;
        FaultCounts {
            requests: s.requests.load(Ordering::Relaxed),
            passed: s.passed.load(Ordering::Relaxed),
            faults: std::array::from_fn(|i| s.faults[i].load(Ordering::Relaxed)),
            scans: s.scans.load(Ordering::Relaxed),
            scanned_by_scans: s.scanned_by_scans.load(Ordering::Relaxed),
            peak_in_flight: s.peak_in_flight.load(Ordering::Relaxed),
            over_capacity: s.over_capacity.load(Ordering::Relaxed),
        }
    }

    /// An SDK client that talks to DynamoDB Local through the proxy, with the
    /// shared test credentials.
    pub async fn client(&self) -> Client {
        client_at(&self.endpoint(), "test", "us-east-1").await
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body =
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"{message}"}}"#);
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// The scripted error this request of `target` gets, if any.
fn scripted_error(state: &State, target: &str) -> Option<String> {
    let mut scripted = state.scripted.lock().unwrap_or_else(|p| p.into_inner());
    let i = scripted
        .iter()
        .position(|s| !target.is_empty() && target.ends_with(&s.target))?;
    if scripted[i].skip > 0 {
        scripted[i].skip -= 1;
        return None;
    }
    Some(scripted.remove(i).kind)
}

type HandlerError = Box<dyn std::error::Error + Send + Sync>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, HandlerError> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let now = state.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
    let _in_flight = InFlight(&state.in_flight);
    state.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    let (mut fault, slow, latency, capacity) = {
        let mut guard = state.config.lock().unwrap_or_else(|p| p.into_inner());
        let (config, rng) = &mut *guard;
        let fault = config.draw(rng.f64());
        let slow = config.slow_delay.mul_f64(rng.f64());
        (fault, slow, config.latency, config.capacity)
    };
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(kind) = scripted_error(&state, &target) {
        return Ok(json_error(
            StatusCode::BAD_REQUEST,
            &kind,
            "Answered by the test proxy (injected)",
        ));
    }
    if capacity.is_some_and(|c| now > c) {
        state.over_capacity.fetch_add(1, Ordering::Relaxed);
        fault = Some(Fault::Throttle);
    }
    if let Some(f) = fault {
        let i = Fault::ALL.iter().position(|x| *x == f).unwrap_or(0);
        state.faults[i].fetch_add(1, Ordering::Relaxed);
    }
    match fault {
        Some(Fault::Throttle) => {
            return Ok(json_error(
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded (injected)",
            ));
        }
        Some(Fault::ServerError) => {
            return Ok(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal server error (injected)",
            ));
        }
        Some(Fault::Garbage) => {
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/x-amz-json-1.0")
                .body(full("<html><body>502 Bad Gateway (injected)</body></html>"))?);
        }
        _ => {}
    }

    // Forward to DynamoDB.
    let (parts, body) = req.into_parts();
    let is_scan = parts
        .headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.ends_with(".Scan"));
    let mut body = body.collect().await?.to_bytes();
    let sent = body.clone();
    if let Some(rewritten) = state
        .split
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_mut()
        .and_then(|split| split.request(&target, &body))
    {
        body = Bytes::from(rewritten);
    }
    let mut parts = parts;
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        hyper::header::HeaderValue::from(body.len()),
    );
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let authority = state
        .upstream
        .authority()
        .map(|a| a.as_str())
        .unwrap_or("127.0.0.1");
    let uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path.to_string())
        .build()?;
    let mut forward = Request::from_parts(parts, Full::new(body));
    *forward.uri_mut() = uri;
    let answer = state.http.request(forward).await?;
    let (mut parts, body) = answer.into_parts();
    let mut body = body.collect().await?.to_bytes();
    if parts.status.is_success()
        && let Some(rewritten) = state
            .split
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .and_then(|split| split.answer(&target, &sent, &body))
    {
        body = Bytes::from(rewritten);
        parts.headers.remove("x-amz-crc32");
        parts.headers.insert(
            hyper::header::CONTENT_LENGTH,
            hyper::header::HeaderValue::from(body.len()),
        );
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if is_scan && parts.status.is_success() {
        state.scans.fetch_add(1, Ordering::Relaxed);
        state
            .scanned_by_scans
            .fetch_add(scanned_count(&body), Ordering::Relaxed);
    }

    match fault {
        Some(Fault::Drop) => Err("connection dropped (injected)".into()),
        Some(Fault::Truncate) => {
            let half = body.slice(..body.len() / 2);
            let frames = futures::stream::iter([
                Ok(Frame::data(half)),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "body truncated (injected)",
                )),
            ]);
            let mut response = Response::from_parts(parts, StreamBody::new(frames).boxed());
            // Keep the full length in the header: the client must notice the cut.
            response.headers_mut().insert(
                hyper::header::CONTENT_LENGTH,
                hyper::header::HeaderValue::from(body.len()),
            );
            Ok(response)
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(slow).await;
            state.passed.fetch_add(1, Ordering::Relaxed);
            Ok(Response::from_parts(parts, full(body)))
        }
        _ => {
            state.passed.fetch_add(1, Ordering::Relaxed);
            Ok(Response::from_parts(parts, full(body)))
        }
    }
}

/// The `ScannedCount` of a Scan answer (0 when absent).
fn scanned_count(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    text.split("\"ScannedCount\":")
        .nth(1)
        .map(|rest| {
            rest.trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scanned_count_of_an_answer() {
        assert_eq!(
            scanned_count(br#"{"Count":2,"Items":[],"ScannedCount":17}"#),
            17
        );
        assert_eq!(scanned_count(br#"{"Count":2}"#), 0);
    }

    #[test]
    fn draws_follow_the_rates() {
        let c = FaultConfig::mixed(0.6, 1);
        assert_eq!(c.draw(0.05), Some(Fault::Throttle));
        assert_eq!(c.draw(0.15), Some(Fault::ServerError));
        assert_eq!(c.draw(0.55), Some(Fault::Garbage));
        assert_eq!(c.draw(0.61), None);
        assert_eq!(FaultConfig::none().draw(0.0), None);
        assert_eq!(
            FaultConfig::only(Fault::Truncate, 1.0).draw(0.99),
            Some(Fault::Truncate)
        );
    }
}
