//! Decoding speed: DynamoDB items → Arrow record batches, against baselines in
//! the same run. Single-threaded, so items/s is per core.
//!
//! - Scan and Query answers are decoded from DynamoDB's JSON text
//!   (`ItemDecoder::decode_json`); baseline: parsing the same text into
//!   `serde_json::Value`, a generic JSON parse that builds no Arrow at all.
//! - GetItem/BatchGetItem items arrive as SDK values (`ItemDecoder::decode`);
//!   baseline: the same items through `serde_dynamo` into `serde_json::Value`,
//!   what code without a schema-driven decoder does.
//!
//! `cargo bench --bench decode` (release); CI runs it once in the test profile.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue as AV;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use dynamo_datafusion::decode::ItemDecoder;

const ITEMS: usize = 10_000;

/// Ten attributes: strings, an integer, a 20-digit number, a decimal, a string
/// set, a list of numbers and a map.
fn items() -> Vec<HashMap<String, AV>> {
    (0..ITEMS)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("user#{:06}", i / 10))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("name".to_string(), AV::S(format!("Customer number {i}"))),
                (
                    "email".to_string(),
                    AV::S(format!("customer{i}@example.com")),
                ),
                ("score".to_string(), AV::N(((i * 7919) % 1000).to_string())),
                (
                    "big".to_string(),
                    AV::N(format!("{}", 10u128.pow(19) + i as u128 * 7_777_777)),
                ),
                (
                    "price".to_string(),
                    AV::N(format!("{}.{:02}", i % 500, i % 100)),
                ),
                (
                    "tags".to_string(),
                    AV::Ss(vec!["alpha".into(), format!("t{}", i % 7), "beta".into()]),
                ),
                (
                    "history".to_string(),
                    AV::L((0..5).map(|k| AV::N((i + k).to_string())).collect()),
                ),
                (
                    "profile".to_string(),
                    AV::M(HashMap::from([
                        (
                            "city".to_string(),
                            AV::S(["Oslo", "Lagos", "Lima"][i % 3].to_string()),
                        ),
                        ("zip".to_string(), AV::N((1000 + i % 9000).to_string())),
                        ("verified".to_string(), AV::Bool(i % 2 == 0)),
                    ])),
                ),
            ])
        })
        .collect()
}

fn schema() -> Arc<Schema> {
    let list = |t: DataType| DataType::List(Field::new("item", t, true).into());
    Arc::new(Schema::new(vec![
        Field::new("pk", DataType::Utf8, false),
        Field::new("sk", DataType::Int64, false),
        Field::new("big", DataType::Decimal128(38, 0), true),
        Field::new("email", DataType::Utf8, true),
        Field::new("history", list(DataType::Int64), true),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(38, 2), true),
        Field::new(
            "profile",
            DataType::Struct(Fields::from(vec![
                Field::new("city", DataType::Utf8, true),
                Field::new("verified", DataType::Boolean, true),
                Field::new("zip", DataType::Int64, true),
            ])),
            true,
        ),
        Field::new("score", DataType::Int64, true),
        Field::new("tags", list(DataType::Utf8), true),
    ]))
}

fn decode(c: &mut Criterion) {
    let items = items();
    let json = serde_json::Value::Array(
        items
            .iter()
            .map(|item| {
                serde_json::Value::Object(dynamo_datafusion::dynamo_json::item_to_json(item))
            })
            .collect(),
    )
    .to_string();
    let decoder = ItemDecoder::try_new("bench", schema()).expect("supported schema");
    let mut group = c.benchmark_group("decode 10k items");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("ItemDecoder::decode_json: answer JSON → Arrow", |b| {
        b.iter(|| {
            black_box(
                decoder
                    .decode_json(black_box(&json), None)
                    .expect("decodes"),
            )
        })
    });
    group.bench_function("baseline: answer JSON → serde_json::Value", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_str(black_box(&json)).expect("JSON");
            black_box(value)
        })
    });
    group.bench_function("ItemDecoder::decode: SDK values → Arrow", |b| {
        b.iter(|| black_box(decoder.decode(black_box(&items)).expect("decodes")))
    });
    group.bench_function(
        "baseline: SDK values → serde_dynamo → serde_json::Value",
        |b| {
            b.iter(|| {
                let values: Vec<serde_json::Value> = black_box(&items)
                    .iter()
                    .map(|item| serde_dynamo::from_item(item.clone()).expect("converts"))
                    .collect();
                black_box(values)
            })
        },
    );
    // serde_dynamo consumes its input, so the baseline pays for a clone; this
    // line shows how much of its time that is.
    group.bench_function("clone only (part of the baseline)", |b| {
        b.iter(|| black_box(black_box(&items).to_vec()))
    });
    group.finish();
    // The same decode in bytes of DynamoDB's wire format per second.
    let mut bytes = c.benchmark_group(format!("decode {} bytes of answer JSON", json.len()));
    bytes.throughput(Throughput::Bytes(json.len() as u64));
    bytes.bench_function("ItemDecoder::decode_json (MB/s)", |b| {
        b.iter(|| {
            black_box(
                decoder
                    .decode_json(black_box(&json), None)
                    .expect("decodes"),
            )
        })
    });
    bytes.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
