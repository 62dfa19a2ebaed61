//! The table the planner's unit tests and the `render` fuzz check plan against.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::metadata::{
    IndexKind, IndexMeta, IndexProjection, KeyAttribute, KeySchema, KeyType, TableMeta,
};

fn key(name: &str, t: KeyType) -> KeyAttribute {
    KeyAttribute {
        name: name.into(),
        key_type: t,
    }
}

/// Orders: pk `customer` (S), sk `orderId` (N); GSI `byStatus` (status S, total N, INCLUDE note);
/// GSI `byRegion` (region S, no sort key, KEYS_ONLY); LSI `byDate` (customer, placed S, ALL).
pub(crate) fn orders_meta() -> TableMeta {
    let customer = key("customer", KeyType::S);
    let order = key("orderId", KeyType::N);
    TableMeta {
        name: "Orders".into(),
        keys: KeySchema {
            partition_key: customer.clone(),
            sort_key: Some(order.clone()),
        },
        indexes: vec![
            IndexMeta {
                name: "byStatus".into(),
                kind: IndexKind::Global,
                keys: KeySchema {
                    partition_key: key("status", KeyType::S),
                    sort_key: Some(key("total", KeyType::N)),
                },
                projection: IndexProjection::Include(vec!["note".into()]),
                item_count: 400,
                size_bytes: 40_000,
            },
            IndexMeta {
                name: "byRegion".into(),
                kind: IndexKind::Global,
                keys: KeySchema {
                    partition_key: key("region", KeyType::S),
                    sort_key: None,
                },
                projection: IndexProjection::KeysOnly,
                item_count: 1000,
                size_bytes: 20_000,
            },
            IndexMeta {
                name: "byDate".into(),
                kind: IndexKind::Local,
                keys: KeySchema {
                    partition_key: customer.clone(),
                    sort_key: Some(key("placed", KeyType::S)),
                },
                projection: IndexProjection::All,
                item_count: 1000,
                size_bytes: 100_000,
            },
        ],
        item_count: 1000,
        size_bytes: 100_000,
        attribute_types: vec![
            customer,
            order,
            key("status", KeyType::S),
            key("total", KeyType::N),
            key("region", KeyType::S),
            key("placed", KeyType::S),
        ],
        provisioned_read_capacity: None,
        arn: None,
        created_millis: None,
        ttl_attribute: None,
        stream_arn: None,
        stream_view_type: None,
    }
}

/// Orders' columns: its keys and index keys, and attributes of every scalar
/// type the planner translates (`a.b` is one attribute with a dot in its name).
pub(crate) fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer", DataType::Utf8, false),
        Field::new("orderId", DataType::Int64, false),
        Field::new("note", DataType::Utf8, true),
        Field::new("placed", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("total", DataType::Decimal128(38, 2), true),
        Field::new("price", DataType::Float64, true),
        Field::new("size", DataType::Int64, true),
        Field::new("a.b", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("raw", DataType::Binary, true),
    ]))
}
