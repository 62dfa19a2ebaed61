//! Prometheus metrics of a serving connector, at `GET /metrics` in the
//! OpenMetrics text format a Prometheus server scrapes: requests by
//! operation and outcome, request latency, read capacity and items by
//! client, schema-cache lookups. Client ids are labels; nothing secret is.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s text.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// `scan`, `query`, `sql`, `flight_sql`, or `none` (refused before parsing).
    operation: String,
    /// `ok` or the error code.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    /// `hit` or `miss`.
    result: String,
}

/// The connector's metrics.
///
/// ```
/// use dynamo_connector::Metrics;
/// let metrics = Metrics::new();
/// metrics.request("sql", "ok", 0.012);
/// metrics.reads("acme", 12.5, 300, 10);
/// let text = metrics.encode();
/// assert!(text.contains("dynamo_connector_requests_total{operation=\"sql\",code=\"ok\"} 1"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    rcu: Family<ClientLabels, Counter<f64, AtomicU64>>,
    items_read: Family<ClientLabels, Counter>,
    items_returned: Family<ClientLabels, Counter>,
    schema_cache: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("dynamo_connector");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests served, by operation and outcome (ok or the error code)",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            // 5 ms to about 41 s.
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer (to a Flight stream's end)",
            latency.clone(),
        );
        let rcu = Family::<ClientLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "read_capacity_units",
            "Read capacity units consumed in DynamoDB, by client",
            rcu.clone(),
        );
        let items_read = Family::<ClientLabels, Counter>::default();
        registry.register(
            "items_read",
            "Items DynamoDB evaluated, by client",
            items_read.clone(),
        );
        let items_returned = Family::<ClientLabels, Counter>::default();
        registry.register(
            "items_returned",
            "Items DynamoDB returned, by client",
            items_returned.clone(),
        );
        let schema_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "schema_cache_lookups",
            "Stored table schemas looked up, by result (hit: used instead of sampling)",
            schema_cache.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            rcu,
            items_read,
            items_returned,
            schema_cache,
        }
    }

    /// Counts one request of `operation` that ended with `code` (`ok` or
    /// an error code) after `seconds`.
    pub fn request(&self, operation: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                operation: operation.to_string(),
            })
            .observe(seconds);
    }

    /// Adds what `client`'s request read.
    pub fn reads(&self, client: &str, rcu: f64, items_read: u64, items_returned: u64) {
        let labels = ClientLabels {
            client: client.to_string(),
        };
        self.rcu.get_or_create(&labels).inc_by(rcu.max(0.0));
        self.items_read.get_or_create(&labels).inc_by(items_read);
        self.items_returned
            .get_or_create(&labels)
            .inc_by(items_returned);
    }

    /// Counts a schema lookup.
    pub fn schema_lookup(&self, hit: bool) {
        self.schema_cache
            .get_or_create(&CacheLabels {
                result: if hit { "hit" } else { "miss" }.to_string(),
            })
            .inc();
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            log::warn!("metrics not encoded: {e}");
        }
        text
    }
}
