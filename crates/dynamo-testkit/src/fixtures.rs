//! Creating, filling and deleting uniquely named tables.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, PutRequest,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    WriteRequest,
};
use futures::{StreamExt, TryStreamExt, stream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A table name no other test (or test run) uses: prefix, process id, counter, random suffix.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}_{:06x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// A secondary index to create.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// True for a local secondary index (shares the table's partition key).
    pub local: bool,
    /// Partition key name and type.
    pub partition_key: (String, ScalarAttributeType),
    /// Sort key name and type.
    pub sort_key: Option<(String, ScalarAttributeType)>,
    /// `None`: ALL; `Some(vec![])`: KEYS_ONLY; `Some(attrs)`: INCLUDE.
    pub projection: Option<Vec<String>>,
}

/// A table to create.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name.
    pub name: String,
    /// Partition key name and type.
    pub partition_key: (String, ScalarAttributeType),
    /// Sort key name and type.
    pub sort_key: Option<(String, ScalarAttributeType)>,
    /// Secondary indexes.
    pub indexes: Vec<IndexSpec>,
    /// Provisioned (read, write) capacity units of the table and its global
    /// indexes; `None` bills per request.
    pub provisioned: Option<(i64, i64)>,
    /// A DynamoDB stream of the table's changes, with this view.
    pub stream: Option<StreamViewType>,
}

impl TableSpec {
    /// A table with a partition key only.
    pub fn new(name: impl Into<String>, pk: &str, pk_type: ScalarAttributeType) -> Self {
        Self {
            name: name.into(),
            partition_key: (pk.to_string(), pk_type),
            sort_key: None,
            indexes: Vec::new(),
            provisioned: None,
            stream: None,
        }
    }

    /// A stream of the table's changes (`NEW_AND_OLD_IMAGES` and the like).
    pub fn stream(mut self, view: StreamViewType) -> Self {
        self.stream = Some(view);
        self
    }

    /// Provisioned capacity instead of on-demand billing.
    pub fn provisioned(mut self, read: i64, write: i64) -> Self {
        self.provisioned = Some((read, write));
        self
    }

    /// Adds a sort key.
    pub fn sort_key(mut self, sk: &str, sk_type: ScalarAttributeType) -> Self {
        self.sort_key = Some((sk.to_string(), sk_type));
        self
    }

    /// Adds an index.
    pub fn index(mut self, index: IndexSpec) -> Self {
        self.indexes.push(index);
        self
    }

    /// Adds a global secondary index projecting every attribute.
    pub fn global_index(
        self,
        name: &str,
        pk: (&str, ScalarAttributeType),
        sk: Option<(&str, ScalarAttributeType)>,
    ) -> Self {
        self.index(IndexSpec {
            name: name.to_string(),
            local: false,
            partition_key: (pk.0.to_string(), pk.1),
            sort_key: sk.map(|(n, t)| (n.to_string(), t)),
            projection: None,
        })
    }

    /// Adds a local secondary index (the table's partition key, sort key
    /// `sk`) projecting every attribute.
    pub fn local_index(self, name: &str, sk: (&str, ScalarAttributeType)) -> Self {
        let partition_key = self.partition_key.clone();
        self.index(IndexSpec {
            name: name.to_string(),
            local: true,
            partition_key,
            sort_key: Some((sk.0.to_string(), sk.1)),
            projection: None,
        })
    }

    /// Creates the table (see [`create_table`]); returns its name.
    pub async fn create(&self, client: &Client) -> Result<String, BoxError> {
        create_table(client, self).await?;
        Ok(self.name.clone())
    }

    /// Creates the table and writes `items` into it; returns its name.
    pub async fn create_with(
        &self,
        client: &Client,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<String, BoxError> {
        create_table(client, self).await?;
        put_items(client, &self.name, items).await?;
        Ok(self.name.clone())
    }

    /// Makes the index added last project only its keys and `attributes`
    /// (KEYS_ONLY when there are none).
    pub fn projecting(mut self, attributes: &[&str]) -> Self {
        if let Some(ix) = self.indexes.last_mut() {
            ix.projection = Some(attributes.iter().map(|a| a.to_string()).collect());
        }
        self
    }
}

fn key_schema(pk: &str, sk: Option<&str>) -> Result<Vec<KeySchemaElement>, BoxError> {
    let mut out = vec![
        KeySchemaElement::builder()
            .attribute_name(pk)
            .key_type(KeyType::Hash)
            .build()?,
    ];
    if let Some(sk) = sk {
        out.push(
            KeySchemaElement::builder()
                .attribute_name(sk)
                .key_type(KeyType::Range)
                .build()?,
        );
    }
    Ok(out)
}

fn projection(p: &Option<Vec<String>>) -> Projection {
    match p {
        None => Projection::builder()
            .projection_type(ProjectionType::All)
            .build(),
        Some(v) if v.is_empty() => Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build(),
        Some(v) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(v.clone()))
            .build(),
    }
}

/// True when table `name` exists (every page of ListTables).
pub async fn table_exists(client: &Client, name: &str) -> Result<bool, BoxError> {
    let mut pages = client.list_tables().into_paginator().items().send();
    while let Some(table) = pages.next().await {
        if table? == name {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Turns on DynamoDB's time to live for `table`, reading `attribute`.
pub async fn enable_time_to_live(
    client: &Client,
    table: &str,
    attribute: &str,
) -> Result<(), BoxError> {
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(attribute)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates the table (on-demand billing) and waits until it is active.
pub async fn create_table(client: &Client, spec: &TableSpec) -> Result<(), BoxError> {
    let mut defs: Vec<(String, ScalarAttributeType)> = vec![spec.partition_key.clone()];
    defs.extend(spec.sort_key.clone());
    for ix in &spec.indexes {
        defs.push(ix.partition_key.clone());
        defs.extend(ix.sort_key.clone());
    }
    let mut seen = std::collections::HashSet::new();
    defs.retain(|(n, _)| seen.insert(n.clone()));
    let throughput = spec
        .provisioned
        .map(|(r, w)| {
            ProvisionedThroughput::builder()
                .read_capacity_units(r)
                .write_capacity_units(w)
                .build()
        })
        .transpose()?;
    let mut req = client
        .create_table()
        .table_name(&spec.name)
        .billing_mode(if throughput.is_some() {
            BillingMode::Provisioned
        } else {
            BillingMode::PayPerRequest
        })
        .set_provisioned_throughput(throughput.clone())
        .set_stream_specification(
            spec.stream
                .clone()
                .map(|view| {
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(view)
                        .build()
                })
                .transpose()?,
        )
        .set_key_schema(Some(key_schema(
            &spec.partition_key.0,
            spec.sort_key.as_ref().map(|s| s.0.as_str()),
        )?));
    for (name, ty) in defs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ty)
                .build()?,
        );
    }
    for ix in &spec.indexes {
        let ks = key_schema(
            &ix.partition_key.0,
            ix.sort_key.as_ref().map(|s| s.0.as_str()),
        )?;
        if ix.local {
            req = req.local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .set_key_schema(Some(ks))
                    .projection(projection(&ix.projection))
                    .build()?,
            );
        } else {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .set_key_schema(Some(ks))
                    .projection(projection(&ix.projection))
                    .set_provisioned_throughput(throughput.clone())
                    .build()?,
            );
        }
    }
    req.send().await?;
    client
        .wait_until_table_exists()
        .table_name(&spec.name)
        .wait(Duration::from_secs(60))
        .await?;
    Ok(())
}

/// Deletes a table (ignoring "not found").
pub async fn delete_table(client: &Client, name: &str) -> Result<(), BoxError> {
    match client.delete_table().table_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Writes `items` with BatchWriteItem, 25 per request and a few requests at
/// once, retrying unprocessed items until every one is written.
pub async fn put_items(
    client: &Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), BoxError> {
    let mut chunks = Vec::new();
    let mut iter = items.into_iter().peekable();
    while iter.peek().is_some() {
        chunks.push(iter.by_ref().take(25).collect::<Vec<_>>());
    }
    stream::iter(chunks)
        .map(|chunk| write_chunk(client, table, chunk))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

async fn write_chunk(
    client: &Client,
    table: &str,
    chunk: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), BoxError> {
    let mut pending: Vec<WriteRequest> = chunk
        .into_iter()
        .map(|item| {
            Ok(WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build()?)
                .build())
        })
        .collect::<Result<_, BoxError>>()?;
    let mut attempt = 0u32;
    while !pending.is_empty() {
        let out = client
            .batch_write_item()
            .request_items(table, std::mem::take(&mut pending))
            .send()
            .await?;
        pending = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
        if !pending.is_empty() {
            attempt += 1;
            if attempt > 20 {
                return Err("BatchWriteItem kept returning unprocessed items".into());
            }
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
    }
    Ok(())
}
