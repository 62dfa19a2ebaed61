//! Clients for the local DynamoDB-API server the test command starts.

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::Client;

/// Environment variable holding the local server's URL (set by `scripts/test.sh`).
pub const ENDPOINT_ENV: &str = "DYNAMODB_ENDPOINT";

/// Why no local client could be made.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The endpoint variable is not set.
    #[error(
        "{ENDPOINT_ENV} is not set: run the tests with scripts/test.sh, which starts DynamoDB Local"
    )]
    NotSet,
    /// The endpoint is not on this machine.
    #[error("refusing endpoint '{0}': tests only talk to 127.0.0.1, localhost or [::1]")]
    NotLoopback(String),
}

/// The local server's URL, checked to be a loopback address.
pub fn local_endpoint() -> Result<String, LocalError> {
    let url = std::env::var(ENDPOINT_ENV).map_err(|_| LocalError::NotSet)?;
    check_loopback(&url)?;
    Ok(url)
}

pub(crate) fn check_loopback(url: &str) -> Result<(), LocalError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| LocalError::NotLoopback(url.to_string()))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let ok = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(LocalError::NotLoopback(url.to_string()))
    }
}

/// A client for the local server with the shared test credentials.
pub async fn local_client() -> Result<Client, LocalError> {
    local_client_as("test", "us-east-1").await
}

/// The secret access key of the test clients (for checks that it never
/// reaches a plan, a log or an error).
pub const LOCAL_SECRET: &str = "local-secret";

/// A client for the local server as `access_key` in `region`. DynamoDB Local
/// keeps a separate database per access key and region (unless `-sharedDb`).
pub async fn local_client_as(access_key: &str, region: &str) -> Result<Client, LocalError> {
    Ok(client_at(&local_endpoint()?, access_key, region).await)
}

/// A client for `endpoint` (already checked to be loopback) with the test credentials.
pub(crate) async fn client_at(endpoint: &str, access_key: &str, region: &str) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            LOCAL_SECRET,
            None,
            None,
            "static",
        ))
        .load()
        .await;
    Client::new(&config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_endpoints_pass() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://localhost:1",
            "http://[::1]:9/",
            "http://127.0.0.1",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.example.com:8000",
            "http://127.0.0.1.example.com",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
