//! SDK clients from the standard AWS chain, with the overrides a command line offers.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;

/// Where and as whom to connect; unset fields come from the standard AWS chain
/// (environment, shared config and credentials files, SSO, instance roles).
///
/// Holds no secret: it names a profile, never credentials, so it may travel
/// with a plan to another process, which connects with its own chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectionOptions {
    /// Endpoint override, e.g. `http://127.0.0.1:8000` for a local server.
    pub endpoint_url: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Named profile from the shared config files.
    pub profile: Option<String>,
}

/// Region used with an endpoint override when the chain names none: a local
/// server needs some region to sign with, and the AWS CLI would refuse.
pub const LOCAL_DEFAULT_REGION: &str = "us-east-1";

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
