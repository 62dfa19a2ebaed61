//! The identity a DynamoDB client signs with, lent to the DynamoDB Streams
//! client that reads the same table's changes.
//!
//! A DynamoDB client does not hand its credentials out (its configuration
//! no longer answers which provider it has). An interceptor on one of its
//! calls sees the identity resolver the call signs with; the Streams client
//! asks that resolver, so both sign as the same caller — a tenant's stored
//! credentials in the connector, the standard chain in `dynamo-sql` —
//! and no credentials are copied or kept beyond the resolver itself.

use std::sync::{Arc, Mutex, PoisonError};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::client::auth::AuthSchemeId;
use aws_smithy_runtime_api::client::identity::{ResolveIdentity, SharedIdentityResolver};
use aws_smithy_runtime_api::client::runtime_components::GetIdentityResolver;

/// SigV4, the scheme DynamoDB and DynamoDB Streams sign with.
const SIGV4: AuthSchemeId = AuthSchemeId::new("sigv4");

/// Notes the identity resolver of the calls it sees.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerIdentity {
    slot: Arc<Mutex<Option<Lent>>>,
}

#[derive(Debug, Clone)]
struct Lent {
    resolver: SharedIdentityResolver,
    components: RuntimeComponents,
}

impl CallerIdentity {
    /// The caller's credentials, as a provider a Streams client can use
    /// (`None` before a call was seen).
    pub(crate) fn credentials(&self) -> Option<SharedCredentialsProvider> {
        let lent = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some(SharedCredentialsProvider::new(lent))
    }
}

impl Intercept for CallerIdentity {
    fn name(&self) -> &'static str {
        "CallerIdentity"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(resolver) = components.identity_resolver(SIGV4) {
            // The call's components hold its interceptors, this one among
            // them: kept as they are, they would hold this slot, which holds
            // them — a cycle that kept every provider's components (and its
            // client's connector and credentials) alive, ~3 KB per table
            // described. Resolving an identity needs no interceptor.
            let components = components
                .to_builder()
                .with_interceptors(std::iter::empty())
                .build()?;
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Lent {
                resolver,
                components,
            });
        }
        Ok(())
    }
}

impl ProvideCredentials for Lent {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let cfg = ConfigBag::base();
            let identity = self
                .resolver
                .resolve_identity(&self.components, &cfg)
                .await
                .map_err(CredentialsError::provider_error)?;
            identity.data::<Credentials>().cloned().ok_or_else(|| {
                CredentialsError::not_loaded(
                    "the DynamoDB client's identity holds no AWS credentials",
                )
            })
        })
    }
}
