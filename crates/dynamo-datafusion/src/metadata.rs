//! What DescribeTable tells: key schema, indexes and their projections, size.

use aws_sdk_dynamodb::types::{
    BillingMode, KeySchemaElement, KeyType as SdkKeyType, Projection, ProjectionType,
    ScalarAttributeType, TableDescription,
};

use crate::error::{Error, Result};

/// DynamoDB type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyType {
    /// String (`S`).
    S,
    /// Number (`N`).
    N,
    /// Binary (`B`).
    B,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        })
    }
}

/// One key attribute: its name and type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyAttribute {
    /// Attribute name, exact case.
    pub name: String,
    /// Scalar type.
    pub key_type: KeyType,
}

/// Partition key and optional sort key of a table or index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeySchema {
    /// Partition (hash) key.
    pub partition_key: KeyAttribute,
    /// Sort (range) key, if any.
    pub sort_key: Option<KeyAttribute>,
}

impl KeySchema {
    /// Names of the key attributes, partition key first.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.partition_key.name.as_str())
            .chain(self.sort_key.iter().map(|k| k.name.as_str()))
    }
}

/// Global or local secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IndexKind {
    /// Global secondary index.
    Global,
    /// Local secondary index.
    Local,
}

/// Which attributes an index holds besides its keys and the table's keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IndexProjection {
    /// Every attribute.
    All,
    /// Only the index and table keys.
    KeysOnly,
    /// Keys plus these attributes.
    Include(Vec<String>),
}

/// A secondary index of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexMeta {
    /// Index name.
    pub name: String,
    /// GSI or LSI.
    pub kind: IndexKind,
    /// The index's own key schema.
    pub keys: KeySchema,
    /// Attributes projected into the index.
    pub projection: IndexProjection,
    /// Approximate item count of the index (refreshed by DynamoDB about
    /// every six hours; a sparse index holds only items with its keys).
    #[serde(default)]
    pub item_count: u64,
    /// Approximate size of the index in bytes.
    #[serde(default)]
    pub size_bytes: u64,
}

/// Everything the provider needs to know about a table, from DescribeTable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableMeta {
    /// Table name.
    pub name: String,
    /// Primary key.
    pub keys: KeySchema,
    /// Secondary indexes, GSIs first, in DescribeTable order.
    pub indexes: Vec<IndexMeta>,
    /// Approximate item count (DynamoDB refreshes it about every six hours).
    pub item_count: u64,
    /// Approximate size in bytes.
    pub size_bytes: u64,
    /// Every attribute with a declared type: table and index keys.
    pub attribute_types: Vec<KeyAttribute>,
    /// Provisioned read capacity units of the table; `None` for on-demand tables.
    pub provisioned_read_capacity: Option<u64>,
    /// The table's ARN (region, account and name), when DescribeTable gives it.
    pub arn: Option<String>,
    /// When the table was created, in milliseconds since the Unix epoch: a
    /// table deleted and created again under the same name differs here.
    pub created_millis: Option<i64>,
    /// The attribute DynamoDB's time to live reads (epoch seconds), when
    /// TTL is enabled (DescribeTimeToLive): items whose value is in the past
    /// have expired and wait to be deleted.
    #[serde(default)]
    pub ttl_attribute: Option<String>,
    /// The table's current DynamoDB stream (`LatestStreamArn`), when its
    /// stream is enabled: its change records, as `"T$changes"`.
    #[serde(default)]
    pub stream_arn: Option<String>,
    /// What the table's stream records of each change (`KEYS_ONLY`,
    /// `NEW_IMAGE`, `OLD_IMAGE`, `NEW_AND_OLD_IMAGES`), when it is enabled.
    #[serde(default)]
    pub stream_view_type: Option<String>,
}

#[cfg(test)]
impl TableMeta {
    /// A table keyed by one `S` attribute, with no index, for unit tests.
    pub(crate) fn hash_only(name: &str, partition_key: &str) -> Self {
        let pk = KeyAttribute {
            name: partition_key.into(),
            key_type: KeyType::S,
        };
        TableMeta {
            name: name.into(),
            keys: KeySchema {
                partition_key: pk.clone(),
                sort_key: None,
            },
            indexes: vec![],
            item_count: 0,
            size_bytes: 0,
            attribute_types: vec![pk],
            provisioned_read_capacity: None,
            arn: None,
            created_millis: None,
            ttl_attribute: None,
            stream_arn: None,
            stream_view_type: None,
        }
    }
}

impl TableMeta {
    /// Builds the metadata from a DescribeTable answer. Pure: no I/O.
    pub fn from_description(desc: &TableDescription) -> Result<Self> {
        let name = desc.table_name().unwrap_or_default().to_string();
        let bad = |reason: String| Error::Metadata {
            table: name.clone(),
            reason,
        };
        let attribute_types = desc
            .attribute_definitions()
            .iter()
            .map(|d| {
                Ok(KeyAttribute {
                    name: d.attribute_name().to_string(),
                    key_type: scalar_type(d.attribute_type()).ok_or_else(|| {
                        bad(format!(
                            "attribute '{}' has unknown key type {:?}",
                            d.attribute_name(),
                            d.attribute_type()
                        ))
                    })?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let key_schema = |elements: &[KeySchemaElement], what: &str| -> Result<KeySchema> {
            let find = |kt: SdkKeyType| {
                elements
                    .iter()
                    .find(|e| *e.key_type() == kt)
                    .map(|e| e.attribute_name().to_string())
            };
            let typed = |attr: String| -> Result<KeyAttribute> {
                let key_type = attribute_types
                    .iter()
                    .find(|a| a.name == attr)
                    .map(|a| a.key_type)
                    .ok_or_else(|| {
                        bad(format!("{what} key '{attr}' has no attribute definition"))
                    })?;
                Ok(KeyAttribute {
                    name: attr,
                    key_type,
                })
            };
            let pk = find(SdkKeyType::Hash)
                .ok_or_else(|| bad(format!("{what} has no partition key")))?;
            Ok(KeySchema {
                partition_key: typed(pk)?,
                sort_key: find(SdkKeyType::Range).map(typed).transpose()?,
            })
        };
        let keys = key_schema(desc.key_schema(), "table")?;
        let mut indexes = Vec::new();
        for g in desc.global_secondary_indexes() {
            let iname = g.index_name().unwrap_or_default().to_string();
            indexes.push(IndexMeta {
                keys: key_schema(g.key_schema(), &format!("index '{iname}'"))?,
                projection: projection(g.projection()),
                name: iname,
                kind: IndexKind::Global,
                item_count: g.item_count().unwrap_or(0).max(0) as u64,
                size_bytes: g.index_size_bytes().unwrap_or(0).max(0) as u64,
            });
        }
        for l in desc.local_secondary_indexes() {
            let iname = l.index_name().unwrap_or_default().to_string();
            indexes.push(IndexMeta {
                keys: key_schema(l.key_schema(), &format!("index '{iname}'"))?,
                projection: projection(l.projection()),
                name: iname,
                kind: IndexKind::Local,
                item_count: l.item_count().unwrap_or(0).max(0) as u64,
                size_bytes: l.index_size_bytes().unwrap_or(0).max(0) as u64,
            });
        }
        Ok(Self {
            keys,
            indexes,
            item_count: desc.item_count().unwrap_or(0).max(0) as u64,
            size_bytes: desc.table_size_bytes().unwrap_or(0).max(0) as u64,
            attribute_types,
            provisioned_read_capacity: provisioned_read_capacity(desc),
            arn: desc.table_arn().map(str::to_string),
            created_millis: desc.creation_date_time().and_then(|t| t.to_millis().ok()),
            ttl_attribute: None,
            stream_arn: desc
                .stream_specification()
                .filter(|s| s.stream_enabled())
                .and(desc.latest_stream_arn())
                .map(str::to_string),
            stream_view_type: desc
                .stream_specification()
                .filter(|s| s.stream_enabled())
                .and_then(|s| s.stream_view_type())
                .map(|v| v.as_str().to_string()),
            name,
        })
    }

    /// Declared DynamoDB type of a key attribute of the table or an index.
    pub fn key_type_of(&self, attribute: &str) -> Option<KeyType> {
        self.attribute_types
            .iter()
            .find(|a| a.name == attribute)
            .map(|a| a.key_type)
    }

    /// Items and bytes of the table (`None`) or of one of its indexes: what
    /// a read of it evaluates. An unknown index counts as the table.
    pub fn size_of(&self, index: Option<&str>) -> (u64, u64) {
        match index.and_then(|name| self.indexes.iter().find(|i| i.name == name)) {
            Some(i) => (i.item_count, i.size_bytes),
            None => (self.item_count, self.size_bytes),
        }
    }

    /// True when `attribute` is a key of the table itself.
    pub fn is_table_key(&self, attribute: &str) -> bool {
        self.keys.attribute_names().any(|k| k == attribute)
    }
}

/// Provisioned RCU, unless the table bills per request (DynamoDB then reports 0).
fn provisioned_read_capacity(desc: &TableDescription) -> Option<u64> {
    let on_demand = desc
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .is_some_and(|m| *m == BillingMode::PayPerRequest);
    if on_demand {
        return None;
    }
    desc.provisioned_throughput()
        .and_then(|p| p.read_capacity_units())
        .filter(|r| *r > 0)
        .map(|r| r as u64)
}

fn scalar_type(t: &ScalarAttributeType) -> Option<KeyType> {
    match t {
        ScalarAttributeType::S => Some(KeyType::S),
        ScalarAttributeType::N => Some(KeyType::N),
        ScalarAttributeType::B => Some(KeyType::B),
        _ => None,
    }
}

fn projection(p: Option<&Projection>) -> IndexProjection {
    match p.and_then(|p| p.projection_type()) {
        Some(ProjectionType::KeysOnly) => IndexProjection::KeysOnly,
        Some(ProjectionType::Include) => IndexProjection::Include(
            p.map(|p| p.non_key_attributes().to_vec())
                .unwrap_or_default(),
        ),
        _ => IndexProjection::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, GlobalSecondaryIndexDescription, LocalSecondaryIndexDescription,
    };

    fn kse(name: &str, kt: SdkKeyType) -> KeySchemaElement {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kt)
            .build()
            .expect("valid key schema element")
    }

    fn def(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .expect("valid definition")
    }

    #[test]
    fn reads_keys_indexes_and_projections() {
        let desc = TableDescription::builder()
            .table_name("Orders")
            .attribute_definitions(def("customer", ScalarAttributeType::S))
            .attribute_definitions(def("orderedAt", ScalarAttributeType::N))
            .attribute_definitions(def("status", ScalarAttributeType::S))
            .key_schema(kse("customer", SdkKeyType::Hash))
            .key_schema(kse("orderedAt", SdkKeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndexDescription::builder()
                    .index_name("byStatus")
                    .key_schema(kse("status", SdkKeyType::Hash))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::Include)
                            .non_key_attributes("total")
                            .build(),
                    )
                    .build(),
            )
            .local_secondary_indexes(
                LocalSecondaryIndexDescription::builder()
                    .index_name("byStatusLocal")
                    .key_schema(kse("customer", SdkKeyType::Hash))
                    .key_schema(kse("status", SdkKeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build(),
            )
            .item_count(42)
            .table_size_bytes(4200)
            .build();
        let meta = TableMeta::from_description(&desc).expect("valid");
        assert_eq!(meta.keys.partition_key.name, "customer");
        assert_eq!(
            meta.keys.sort_key.as_ref().map(|k| k.key_type),
            Some(KeyType::N)
        );
        assert_eq!(meta.indexes.len(), 2);
        assert_eq!(meta.indexes[0].kind, IndexKind::Global);
        assert_eq!(
            meta.indexes[0].projection,
            IndexProjection::Include(vec!["total".into()])
        );
        assert_eq!(meta.indexes[1].projection, IndexProjection::KeysOnly);
        assert_eq!(meta.key_type_of("status"), Some(KeyType::S));
        assert!(meta.is_table_key("orderedAt") && !meta.is_table_key("status"));
        assert_eq!((meta.item_count, meta.size_bytes), (42, 4200));
    }

    #[test]
    fn missing_definition_is_an_error() {
        let desc = TableDescription::builder()
            .table_name("T")
            .key_schema(kse("id", SdkKeyType::Hash))
            .build();
        let err = TableMeta::from_description(&desc).expect_err("no definition");
        assert!(
            err.to_string().contains("'id' has no attribute definition"),
            "{err}"
        );
    }
}
