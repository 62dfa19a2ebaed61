//! SDK clients from the standard AWS chain, with the overrides a command line offers.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;

/// Where and as whom to connect; unset fields come from the standard AWS chain
/// (environment, shared config and credentials files, SSO, instance roles).
///
/// Holds no secret: it names a profile, never credentials, so it may travel
/// with a plan to another process, which connects with its own chain.
///
/// ```
/// use dynamo_datafusion::ConnectionOptions;
/// let local = ConnectionOptions::default()
///     .with_endpoint_url(Some("http://127.0.0.1:8000".into()))
///     .with_region(Some("us-east-1".into()));
/// assert_eq!(local.profile, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Endpoint override, e.g. `http://127.0.0.1:8000` for a local server.
    pub endpoint_url: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
}

impl ConnectionOptions {
    /// These options with this endpoint override (`None`: the chain's).
    pub fn with_endpoint_url(mut self, endpoint_url: Option<String>) -> Self {
        self.endpoint_url = endpoint_url;
        self
    }

    /// These options with this region override (`None`: the chain's).
    pub fn with_region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// These options with this named profile (`None`: the default one).
    pub fn with_profile(mut self, profile: Option<String>) -> Self {
        self.profile = profile;
        self
    }
}

/// Region used with an endpoint override when the chain names none: a local
/// server needs some region to sign with, and the AWS CLI would refuse.
pub const LOCAL_DEFAULT_REGION: &str = "us-east-1";

/// An endpoint URL checked before any SDK call sees it: `http://` or
/// `https://`, a host, an optional port, nothing else; the error is one line
/// saying what is wrong (the SDK's own is its whole request structure).
/// Usable as a clap `value_parser`.
///
/// ```
/// use dynamo_datafusion::parse_endpoint_url;
/// assert!(parse_endpoint_url("http://127.0.0.1:8000").is_ok());
/// assert!(parse_endpoint_url("https://dynamodb.eu-west-1.amazonaws.com").is_ok());
/// let e = parse_endpoint_url("localhost:8000").unwrap_err();
/// assert!(e.contains("http://localhost:8000"), "{e}");
/// ```
pub fn parse_endpoint_url(url: &str) -> std::result::Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "endpoint URL '{url}' has no scheme: write it as http://{url} (or https://)"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "endpoint URL '{url}': the scheme is http or https, not '{scheme}'"
        ));
    }
    let authority = rest.trim_end_matches('/');
    // `[v6 address]:port`, or `host:port`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
            None => ("", None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "endpoint URL '{url}' is not {scheme}://HOST[:PORT] (no path, query or user)"
        ));
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "endpoint URL '{url}': '{port}' is not a port (1 to 65535)"
        ));
    }
    Ok(url.to_string())
}

impl ConnectionOptions {
    /// Loads the SDK configuration.
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() && self.endpoint_url.is_some() {
            return config
                .into_builder()
                .region(Region::new(LOCAL_DEFAULT_REGION))
                .build();
        }
        config
    }

    /// Builds a DynamoDB client.
    pub async fn client(&self) -> Client {
        Client::new(&self.sdk_config().await)
    }

    /// A client from `base` (a process's own configuration and credential
    /// chain, loaded once) with this region and endpoint, if set. No I/O.
    pub fn client_from(&self, base: &SdkConfig) -> Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(base);
        if let Some(region) = &self.region {
            config = config.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        Client::from_conf(config.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_a_scheme_a_host_and_a_port() {
        for good in [
            "http://127.0.0.1:8000",
            "http://localhost",
            "https://dynamodb.us-east-1.amazonaws.com/",
            "http://[::1]:8000",
            "http://[::1]",
        ] {
            assert_eq!(parse_endpoint_url(good).as_deref(), Ok(good), "{good}");
        }
        for (bad, says) in [
            ("127.0.0.1:8000", "has no scheme"),
            ("ftp://h:1", "not 'ftp'"),
            ("http://", "is not http://HOST[:PORT]"),
            ("http://h:port", "'port' is not a port"),
            ("http://h:99999", "'99999' is not a port"),
            ("http://h/path", "no path"),
            ("http://user@h", "no path, query or user"),
        ] {
            let e = parse_endpoint_url(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}
