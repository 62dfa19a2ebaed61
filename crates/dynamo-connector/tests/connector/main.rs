//! `dynamo-connector` end to end against DynamoDB Local (started without
//! `-sharedDb`, so each access key has its own database): the seed's example
//! through `run` and `serve`, every error code provoked for real, tenant
//! isolation, key rotation, paging, SQL, and no secret in any output.

mod catalogue;
mod fixture;
mod flight;
mod hostile;
mod http;
mod mirrors;
mod readme;
mod reads;
mod sessions;
mod sql;
mod tenancy;
mod usage;
mod writes;
