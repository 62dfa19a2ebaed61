//! The HTTP service: `POST /v1/connectors/dynamo` with `Authorization: Bearer
//! TOKEN` and the request as body; `GET /healthz`; `GET /metrics`
//! (Prometheus, when the connector has metrics).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::connector::Connector;
use crate::error::{ConnectorError, ErrorCode};
use crate::metrics::METRICS_CONTENT_TYPE;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The service's routes.
pub fn router(connector: Arc<Connector>) -> Router {
    Router::new()
        .route(
            "/v1/connectors/dynamo",
            post(connect).layer(from_fn_with_state(Arc::clone(&connector), address_gate)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(connector)
}

fn json(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn metrics(State(connector): State<Arc<Connector>>) -> Response {
    match connector.metrics() {
        Some(m) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            m.encode(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no metrics: this connector keeps none\n",
        )
            .into_response(),
    }
}

/// Refuses an address that failed to authenticate too often (when the
/// connector limits it and the server knows the caller's address), and
/// counts each `401` it answers against the address.
async fn address_gate(
    State(connector): State<Arc<Connector>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (Some(attempts), Some(ip)) = (connector.auth_attempts().cloned(), ip) else {
        return next.run(request).await;
    };
    if let Err(e) = attempts.admit(ip) {
        return error_response(&e);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        attempts.failed(ip);
    }
    response
}

fn error_response(e: &ConnectorError) -> Response {
    let status = if e.code == ErrorCode::Internal {
        500
    } else {
        e.code.http_status()
    };
    let mut response = json(status, e.to_json());
    if let Some(secs) = e.retry_after_secs
        && let Ok(value) = header::HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn connect(
    State(connector): State<Arc<Connector>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let e = ConnectorError::invalid(if too_large {
                format!("request body is larger than {MAX_BODY_BYTES} bytes")
            } else {
                format!("cannot read request body: {}", rejection.body_text())
            });
            return json(if too_large { 413 } else { 400 }, e.to_json());
        }
    };
    match connector.handle(bearer(&headers), &body).await {
        Ok(v) => json(200, v),
        Err(e) => error_response(&e),
    }
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    connector: Arc<Connector>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The caller's address, for the gate on failed authentications.
    axum::serve(
        listener,
        router(connector).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
