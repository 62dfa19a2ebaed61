//! A value the schema sample never saw must not fail a query: the column
//! widens and the statement runs again, answering exactly.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::schema::is_json_field;
use dynamo_datafusion::{Error, TableOptions, dynamo_session};
use dynamo_testkit::{TRAP_TABLE_ITEMS, TrapTable, trap_table};

use crate::common::{client, query, rows, run_as_dynamo_sql};

/// Runs `sql` as `dynamo-sql` and the connector do: rows and notices.
async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, Vec<String>) {
    let (batches, outcome) = run_as_dynamo_sql(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert_eq!(outcome.reruns, outcome.notices.len());
    (rows(&batches), outcome.notices)
}

async fn session() -> SessionContext {
    dynamo_session(
        client().await,
        SessionConfig::new(),
        TableOptions::default(),
    )
    .await
    .expect("session")
}

fn s(item: &HashMap<String, AV>, name: &str) -> String {
    match item.get(name) {
        Some(AV::S(v) | AV::N(v)) => v.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn info<'a>(item: &'a HashMap<String, AV>, key: &str) -> Option<&'a AV> {
    match item.get("info") {
        Some(AV::M(m)) => m.get(key),
        _ => None,
    }
}

/// `d.ddd` as millionths.
fn micros(n: &str) -> i64 {
    let (int, frac) = n.split_once('.').unwrap_or((n, ""));
    let frac = format!("{frac:0<6}");
    int.parse::<i64>().expect("int") * 1_000_000 + frac.parse::<i64>().expect("frac")
}

#[tokio::test]
async fn values_the_sample_missed_widen_their_columns_and_queries_answer_exactly() {
    let TrapTable { name, items, traps } = trap_table(&client().await, "traps")
        .await
        .expect("trap table");
    let ctx = session().await;

    // The sample (2,000 items, default) missed every trap.
    let schema = ctx
        .table_provider(name.as_str())
        .await
        .expect("table")
        .schema();
    let ty = |c: &str| schema.field_with_name(c).expect(c).data_type().clone();
    assert_eq!(ty("votes"), DataType::Int64);
    assert_eq!(ty("code"), DataType::Int64);
    let DataType::Struct(info_fields) = ty("info") else {
        panic!("info is a struct")
    };
    assert_eq!(
        info_fields
            .find("rating")
            .map(|(_, f)| f.data_type().clone()),
        Some(DataType::Decimal128(38, 4)),
        "a one-decimal sample, with headroom"
    );
    assert!(info_fields.find("trivia").is_none());

    let mut reruns = 0;
    let t = format!("\"{name}\"");

    // Queries that touch no trap column never re-run.
    let (got, notices) = run(&ctx, &format!("SELECT count(*) FROM {t}")).await;
    assert_eq!(
        (got, notices.len()),
        (vec![TRAP_TABLE_ITEMS.to_string()], 0)
    );
    let (got, notices) = run(
        &ctx,
        &format!("SELECT title FROM {t} WHERE \"year\" = 2001 ORDER BY title"),
    )
    .await;
    assert_eq!(notices.len(), 0);
    assert_eq!(
        got.len(),
        items.iter().filter(|i| s(i, "year") == "2001").count()
    );

    // array_has over a field of info (a contains() filter, re-checked): only
    // info.genres is read, so the six-decimal rating and the new map key
    // elsewhere in info are never met.
    let (got, notices) = run(
        &ctx,
        &format!("SELECT title FROM {t} WHERE array_has(info['genres'], 'Sci-Fi') ORDER BY title"),
    )
    .await;
    reruns += notices.len();
    let mut expected: Vec<String> = items
        .iter()
        .filter(
            |i| matches!(info(i, "genres"), Some(AV::L(g)) if g.contains(&AV::S("Sci-Fi".into()))),
        )
        .map(|i| s(i, "title"))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    assert!(notices.is_empty(), "{notices:?}");

    // sum over a field of info: exact, and info is already wide.
    let (got, notices) = run(
        &ctx,
        &format!("SELECT sum(info['running_time_secs']) FROM {t}"),
    )
    .await;
    reruns += notices.len();
    let total: i64 = items
        .iter()
        .map(|i| match info(i, "running_time_secs") {
            Some(AV::N(n)) => n.parse::<i64>().expect("int"),
            _ => 0,
        })
        .sum();
    assert_eq!(got, vec![total.to_string()]);

    // count and sum of ratings in the year of the six-decimal one.
    let year = traps.rating.0;
    let (got, notices) = run(
        &ctx,
        &format!("SELECT count(*), sum(info['rating']) FROM {t} WHERE \"year\" = {year}"),
    )
    .await;
    reruns += notices.len();
    let of_year: Vec<&HashMap<String, AV>> = items
        .iter()
        .filter(|i| s(i, "year") == year.to_string())
        .collect();
    let sum: i64 = of_year
        .iter()
        .map(|i| match info(i, "rating") {
            Some(AV::N(n)) => micros(n),
            _ => 0,
        })
        .sum();
    assert_eq!(
        got,
        vec![format!(
            "{}|{}.{:06}",
            of_year.len(),
            sum / 1_000_000,
            sum % 1_000_000
        )]
    );

    let all = notices.join("\n");
    assert!(
        all.contains("'info.rating' widened from Decimal128(38, 4) to Decimal128(38, 6)")
            && all.contains("{\"N\": \"7.123456\"}"),
        "{all}"
    );

    // A number beyond Int64.
    let (got, notices) = run(
        &ctx,
        &format!("SELECT title, votes FROM {t} WHERE votes > 1000000"),
    )
    .await;
    reruns += notices.len();
    assert_eq!(
        got,
        vec![format!("{}|123456789012345678901234", traps.huge_votes.1)]
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains("'votes' widened from Int64 to Decimal128(38, 0)")),
        "{notices:?}"
    );

    // An S among numbers: the column becomes JSON text, every value kept.
    let (got, notices) = run(
        &ctx,
        &format!(
            "SELECT code FROM {t} WHERE \"year\" = {} AND title = '{}'",
            traps.text_code.0, traps.text_code.1
        ),
    )
    .await;
    reruns += notices.len();
    // A key read (GetItem) meets only the trap item itself.
    assert_eq!(got, vec!["\"A-17\"".to_string()]);
    let (got, notices) = run(&ctx, &format!("SELECT count(code) FROM {t}")).await;
    reruns += notices.len();
    assert_eq!(got, vec![TRAP_TABLE_ITEMS.to_string()]);
    let schema = ctx
        .table_provider(name.as_str())
        .await
        .expect("table")
        .schema();
    assert!(is_json_field(schema.field_with_name("code").expect("code")));

    // All of info, for the item with a map key no other item has: the
    // struct gains the field, and the key is there.
    let (got, notices) = run(
        &ctx,
        &format!(
            "SELECT info FROM {t} WHERE \"year\" = {} AND title = '{}'",
            traps.new_key.0, traps.new_key.1
        ),
    )
    .await;
    reruns += notices.len();
    assert!(
        got.len() == 1 && got[0].contains("trivia: filmed twice"),
        "{got:?}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains("column 'info' widened") && n.contains("trivia")),
        "{notices:?}"
    );
    let (got, _) = run(
        &ctx,
        &format!(
            "SELECT info['trivia'] FROM {t} WHERE \"year\" = {} AND title = '{}'",
            traps.new_key.0, traps.new_key.1
        ),
    )
    .await;
    assert_eq!(got, vec!["filmed twice".to_string()]);

    // The two-decimal rating fit the headroom: exact, no widening for it.
    let (got, _) = run(
        &ctx,
        &format!(
            "SELECT info['rating'] FROM {t} WHERE \"year\" = {} AND title = '{}'",
            traps.two_decimals.0, traps.two_decimals.1
        ),
    )
    .await;
    assert_eq!(got, vec!["6.180000".to_string()]);

    // Every query above ran again at most once per widened column.
    assert_eq!(reruns, 4, "info.rating, votes, code, info's new key");
    eprintln!("re-runs caused by widening on the trap table: {reruns}");
}

#[tokio::test]
async fn unread_fields_never_fail_and_without_the_runner_a_widening_is_a_clear_error() {
    let table = trap_table(&client().await, "traps_plain")
        .await
        .expect("trap table");
    let ctx = session().await;

    // Fields of info the query does not read are never decoded: the
    // six-decimal rating and the new map key cannot fail this one.
    let sum = format!(
        "SELECT sum(info['running_time_secs']) FROM \"{}\"",
        table.name
    );
    let total: i64 = table
        .items
        .iter()
        .map(|i| match info(i, "running_time_secs") {
            Some(AV::N(n)) => n.parse::<i64>().expect("int"),
            _ => 0,
        })
        .sum();
    let got = rows(
        &query(&ctx, &sum)
            .await
            .expect("reads only running_time_secs"),
    );
    assert_eq!(got, vec![total.to_string()]);

    let sql = format!("SELECT max(votes) FROM \"{}\"", table.name);
    let err = query(&ctx, &sql)
        .await
        .expect_err("votes meets a wider value");
    assert!(
        matches!(Error::find_in(&err), Some(Error::SchemaWidened { .. })),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("column 'votes' widened from Int64 to Decimal128(38, 0)")
            && msg.contains("{\"N\": \"123456789012345678901234\"}")
            && msg.contains("run the statement again"),
        "{msg}"
    );
    let got = rows(&query(&ctx, &sql).await.expect("widened schema"));
    assert_eq!(got, vec!["123456789012345678901234".to_string()]);
}

#[tokio::test]
async fn a_column_type_the_user_fixed_never_widens() {
    let table = trap_table(&client().await, "traps_fixed")
        .await
        .expect("trap table");
    let ctx = session().await;
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE fixed STORED AS DYNAMODB LOCATION '{}' OPTIONS ('column_types' 'votes: bigint')",
        table.name
    ))
    .await
    .expect("create");
    let err = run_as_dynamo_sql(&ctx, "SELECT max(votes) FROM fixed")
        .await
        .expect_err("votes is fixed to Int64");
    assert!(
        err.to_string()
            .contains("value {\"N\": \"123456789012345678901234\"} does not fit column type Int64 (the type was set explicitly"),
        "{err}"
    );
}

#[tokio::test]
async fn the_extra_attributes_column_shows_what_no_column_holds() {
    let table = trap_table(&client().await, "traps_extra")
        .await
        .expect("trap table");
    let ctx = session().await;
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS DYNAMODB LOCATION '{}' OPTIONS ('extra_attributes' 'true')",
        table.name
    ))
    .await
    .expect("create");
    let schema = ctx.table_provider("t").await.expect("t").schema();
    assert!(
        schema.field_with_name("premiere").is_err(),
        "the sample missed it"
    );
    let last = schema.fields().last().expect("columns");
    assert_eq!(last.name(), "_extra");

    let (year, title) = &table.traps.rare;
    let got = rows(
        &query(
            &ctx,
            "SELECT \"year\", title, _extra FROM t WHERE _extra IS NOT NULL",
        )
        .await
        .expect("query"),
    );
    assert_eq!(
        got,
        vec![format!(
            "{year}|{title}|{{\"premiere\":{{\"S\":\"Cannes\"}}}}"
        )]
    );
    let got = rows(
        &query(&ctx, "SELECT count(*) FROM t WHERE _extra LIKE '%Cannes%'")
            .await
            .expect("query"),
    );
    assert_eq!(got, vec!["1".to_string()]);
    // A key read of that item shows it too; SELECT * ends with the column.
    let batches = query(
        &ctx,
        &format!("SELECT * FROM t WHERE \"year\" = {year} AND title = '{title}'"),
    )
    .await
    .expect("query");
    let row = rows(&batches);
    assert!(
        row[0].ends_with("|{\"premiere\":{\"S\":\"Cannes\"}}"),
        "{row:?}"
    );
    // Items without extra attributes have NULL there.
    let got = rows(
        &query(&ctx, "SELECT count(*) FROM t WHERE _extra IS NULL")
            .await
            .expect("query"),
    );
    assert_eq!(got, vec![(TRAP_TABLE_ITEMS - 1).to_string()]);
}

/// Found by the differential fuzzer (tests/integration/oracle): an attribute
/// the sample saw only as `NULL` (or as empty lists and maps) was typed JSON
/// text for good, so the strings read later came back quoted (`"abc"`), lists
/// as JSON text. Now such a column is undetermined: the first value with a
/// type widens it to that type.
#[tokio::test]
async fn a_column_the_sample_saw_only_as_null_takes_the_type_of_its_first_value() {
    let client = client().await;
    let table = crate::common::pk_sk_table(
        &client,
        "undetermined",
        vec![HashMap::from([
            ("pk".to_string(), AV::S("a".into())),
            ("sk".to_string(), AV::N("1".into())),
            ("note".to_string(), AV::Null(true)),
            ("tags".to_string(), AV::L(vec![])),
            ("meta".to_string(), AV::M(HashMap::new())),
        ])],
    )
    .await;
    let ctx = session().await;
    let t = format!("\"{table}\"");
    // The schema comes from the one item: nothing tells the three types.
    let schema = ctx
        .table_provider(table.as_str())
        .await
        .expect("table")
        .schema();
    for c in ["note", "tags", "meta"] {
        assert!(is_json_field(schema.field_with_name(c).expect(c)), "{c}");
    }
    dynamo_testkit::put_items(
        &client,
        &table,
        vec![HashMap::from([
            ("pk".to_string(), AV::S("b".into())),
            ("sk".to_string(), AV::N("2".into())),
            ("note".to_string(), AV::S("plain text".into())),
            (
                "tags".to_string(),
                AV::L(vec![AV::N("1".into()), AV::N("2".into())]),
            ),
            (
                "meta".to_string(),
                AV::M(HashMap::from([("x".to_string(), AV::N("3".into()))])),
            ),
        ])],
    )
    .await
    .expect("put");
    let (got, notices) = run(
        &ctx,
        &format!("SELECT pk, note, tags, meta FROM {t} ORDER BY pk"),
    )
    .await;
    assert_eq!(got, ["a|NULL|[]|{x: NULL}", "b|plain text|[1, 2]|{x: 3}"]);
    assert!(!notices.is_empty(), "the columns widened: {notices:?}");
    let schema = ctx
        .table_provider(table.as_str())
        .await
        .expect("table")
        .schema();
    let ty = |c: &str| schema.field_with_name(c).expect(c).data_type().clone();
    assert_eq!(ty("note"), DataType::Utf8);
    assert!(!is_json_field(
        schema.field_with_name("note").expect("note")
    ));
    assert!(matches!(ty("tags"), DataType::List(_)));
    assert!(matches!(ty("meta"), DataType::Struct(_)));
    // Filters and fields of the widened columns answer exactly (a field of
    // a column not yet known to be a map cannot be planned before).
    let (got, _) = run(
        &ctx,
        &format!("SELECT pk, meta['x'] FROM {t} WHERE note = 'plain text'"),
    )
    .await;
    assert_eq!(got, ["b|3"]);
}
