//! Every DynamoDB type written by the SDK and read back through SQL, exactly.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use dynamo_datafusion::DynamoTableProvider;
use dynamo_datafusion::schema::is_json_field;
use dynamo_testkit::{TableSpec, put_items, unique_name};

use crate::common::{client, context_with, query, rows};

fn item(pairs: Vec<(&str, AV)>) -> HashMap<String, AV> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn n(s: &str) -> AV {
    AV::N(s.to_string())
}

async fn typed_table() -> (String, aws_sdk_dynamodb::Client) {
    let client = client().await;
    let table = unique_name("types");
    TableSpec::new(&table, "id", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create");
    let a = item(vec![
        ("id", AV::S("a".into())),
        ("price", n("1234567890123456789012345678.9012345678")),
        ("big", n("12345678901234567890123456789012345678")),
        ("i", n("-9223372036854775808")),
        ("tiny", n("1E-130")),
        ("wide", n("1E+29")),
        ("bin", AV::B(Blob::new(vec![0u8, 1, 2, 255]))),
        ("flag", AV::Bool(true)),
        ("nothing", AV::Null(true)),
        ("ss", AV::Ss(vec!["x".into(), "y".into()])),
        ("ns", AV::Ns(vec!["1.5".into(), "-2".into()])),
        ("bs", AV::Bs(vec![Blob::new(vec![9u8])])),
        (
            "mixed",
            AV::L(vec![AV::S("s".into()), n("1"), AV::Bool(false)]),
        ),
        (
            "m",
            AV::M(HashMap::from([
                ("city".to_string(), AV::S("Oslo".into())),
                ("zip".to_string(), n("150")),
                (
                    "tags".to_string(),
                    AV::L(vec![AV::S("t1".into()), AV::S("t2".into())]),
                ),
                (
                    "inner".to_string(),
                    AV::M(HashMap::from([("deep".to_string(), AV::Bool(true))])),
                ),
            ])),
        ),
        ("empty", AV::S(String::new())),
        ("emptyList", AV::L(vec![])),
        ("emptyMap", AV::M(HashMap::new())),
        ("name", AV::S("reserved-name".into())),
        ("status", AV::S("active".into())),
        ("size", n("3")),
        ("userName", AV::S("lower".into())),
        ("USERNAME", AV::S("upper".into())),
        ("conflict", AV::S("text".into())),
    ]);
    let b = item(vec![
        ("id", AV::S("b".into())),
        ("price", n("-0.0000000001")),
        ("big", n("-1")),
        ("i", n("9223372036854775807")),
        ("tiny", n("9.9999999999999999999999999999999999999E+125")),
        ("wide", n("1E-20")),
        ("ns", AV::Ns(vec!["0.25".into()])),
        ("conflict", n("42")),
        ("m", AV::M(HashMap::from([("zip".to_string(), n("7"))]))),
    ]);
    put_items(&client, &table, vec![a, b]).await.expect("put");
    (table, client)
}

#[tokio::test]
async fn every_type_round_trips_exactly() {
    let (table, client) = typed_table().await;
    let provider = DynamoTableProvider::try_new(client, &table)
        .await
        .expect("provider");
    let schema = provider.schema();
    let ty = |c: &str| schema.field_with_name(c).expect(c).data_type().clone();
    assert_eq!(ty("id"), DataType::Utf8);
    assert!(!schema.field_with_name("id").expect("id").is_nullable());
    assert_eq!(ty("price"), DataType::Decimal128(38, 10));
    assert_eq!(ty("big"), DataType::Decimal128(38, 0));
    assert_eq!(ty("i"), DataType::Int64);
    assert_eq!(ty("wide"), DataType::Decimal256(76, 20));
    assert!(is_json_field(schema.field_with_name("tiny").expect("tiny")));
    assert!(is_json_field(
        schema.field_with_name("mixed").expect("mixed")
    ));
    assert!(is_json_field(
        schema.field_with_name("conflict").expect("conflict")
    ));
    assert_eq!(ty("bin"), DataType::Binary);
    assert_eq!(ty("flag"), DataType::Boolean);
    assert!(matches!(ty("ss"), DataType::List(f) if f.data_type() == &DataType::Utf8));
    assert!(matches!(ty("ns"), DataType::List(f) if f.data_type() == &DataType::Decimal128(38, 4)));
    assert!(matches!(ty("bs"), DataType::List(f) if f.data_type() == &DataType::Binary));
    assert!(matches!(ty("m"), DataType::Struct(_)));

    let ctx = context_with("t", provider);
    let got = rows(
        &query(
            &ctx,
            "SELECT id, price, big, i, tiny, wide, flag, nothing, array_sort(ss), array_sort(ns), mixed, \
             empty, \"emptyList\", name, status, size, \"userName\", \"USERNAME\", conflict \
             FROM t ORDER BY id",
        )
        .await
        .expect("query"),
    );
    let tiny_a = format!("0.{}1", "0".repeat(129));
    let tiny_b = format!("99999999999999999999999999999999999999{}", "0".repeat(88));
    assert_eq!(
        got,
        vec![
            format!(
                "a|1234567890123456789012345678.9012345678|12345678901234567890123456789012345678|\
                 -9223372036854775808|{tiny_a}|100000000000000000000000000000.00000000000000000000|\
                 true|NULL|[x, y]|[-2.0000, 1.5000]|[\"s\",1,false]||[]|reserved-name|active|3|lower|upper|\"text\""
            ),
            format!(
                "b|-0.0000000001|-1|9223372036854775807|{tiny_b}|0.00000000000000000001|\
                 NULL|NULL|NULL|[0.2500]|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|42"
            ),
        ]
    );

    // Nested struct fields and binary values, checked on the Arrow arrays.
    let batches = query(
        &ctx,
        "SELECT m['city'], m['zip'], m['tags'], m['inner']['deep'], bin, bs FROM t ORDER BY id",
    )
    .await
    .expect("nested query");
    assert_eq!(
        rows(&batches),
        vec![
            "Oslo|150|[t1, t2]|true|000102ff|[09]",
            "NULL|7|NULL|NULL|NULL|NULL"
        ]
    );
    let bin = batches[0].column(4).as_binary::<i32>();
    assert_eq!(bin.value(0), &[0u8, 1, 2, 255]);
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_a_clear_error() {
    let (table, client) = typed_table().await;
    let provider = DynamoTableProvider::builder(client, &table)
        .column_type("price", DataType::Int64)
        .build()
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let err = query(&ctx, "SELECT price FROM t")
        .await
        .expect_err("1.5 does not fit Int64");
    let msg = err.to_string();
    assert!(msg.contains(&format!("table '{table}'")), "{msg}");
    assert!(msg.contains("attribute 'price'"), "{msg}");
    // Whichever item the scan meets first is named, with its exact value.
    assert!(
        msg.contains("1234567890123456789012345678.9012345678") || msg.contains("-0.0000000001"),
        "{msg}"
    );
    assert!(msg.contains("Int64"), "{msg}");
}

#[tokio::test]
async fn overrides_read_as_asked() {
    let (table, client) = typed_table().await;
    let provider = DynamoTableProvider::builder(client, &table)
        .column_type("price", DataType::Utf8)
        .column_type("size", DataType::Float64)
        .json_column("m")
        .build()
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let got = rows(
        &query(&ctx, "SELECT price, size, m FROM t ORDER BY id")
            .await
            .expect("query"),
    );
    assert_eq!(
        got,
        vec![
            "1234567890123456789012345678.9012345678|3.0|{\"city\":\"Oslo\",\"inner\":{\"deep\":true},\"tags\":[\"t1\",\"t2\"],\"zip\":150}",
            "-0.0000000001|NULL|{\"zip\":7}",
        ]
    );
}
