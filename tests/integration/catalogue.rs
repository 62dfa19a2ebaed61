//! The bad-input catalogue of the SQL surface (what `dynamo-sql` and embedders
//! see): every row of the "Bad input" table of `docs/reliability.md` whose id starts with
//! `sql-` is one case here, run for real, and its error must contain the text
//! the page shows. A row without a case, or a case without a row,
//! fails the suite.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::{TableOptions, dynamo_session};
use dynamo_testkit::{Fault, FaultConfig, FaultProxy, local_endpoint};

use crate::common::{client, dead_endpoint_client, pk_sk_table};

/// Where the case's statements run.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// DynamoDB Local, directly.
    Direct,
    /// The fault proxy, answering every request with this fault.
    Proxy(Fault),
    /// A loopback port nothing listens on.
    Down,
}

struct Case {
    id: &'static str,
    via: Via,
    /// Statements run in order; all but the last must succeed. `{t}` is the table.
    sql: &'static [&'static str],
    /// Text the error must contain (`{t}` is the table), or `answer: N rows`
    /// for an input that is not an error.
    error: &'static str,
}

const CASES: &[Case] = &[
    Case {
        id: "sql-malformed",
        via: Via::Direct,
        sql: &["SELEC * FROM {t}"],
        error: "SQL error: ParserError(\"Expected: an SQL statement, found: SELEC at Line: 1, Column: 1\")",
    },
    Case {
        id: "sql-unknown-table",
        via: Via::Direct,
        sql: &["SELECT * FROM NoSuchTable"],
        error: "table 'datafusion.public.NoSuchTable' not found",
    },
    Case {
        id: "sql-unknown-column",
        via: Via::Direct,
        sql: &["SELECT nope FROM {t}"],
        error: "No field named nope",
    },
    Case {
        id: "sql-type-mismatch",
        via: Via::Direct,
        sql: &["SELECT * FROM {t} WHERE pk + 1 = 2"],
        error: "Cannot coerce arithmetic expression Utf8 + Int64 to valid types",
    },
    Case {
        id: "sql-out-of-range",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE narrow STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('column_types' 'huge: bigint')",
            "SELECT huge FROM narrow",
        ],
        error: "attribute 'huge': value {\"N\": \"100000000000000000000\"} does not fit column type Int64 (the type was set explicitly: choose one that holds this value, e.g. json, Utf8 or a wider Decimal)",
    },
    Case {
        id: "sql-39-digits",
        via: Via::Direct,
        sql: &["SELECT * FROM {t} WHERE big = 123456789012345678901234567890123456789"],
        error: "answer: 0 rows",
    },
    Case {
        id: "sql-empty-key",
        via: Via::Direct,
        sql: &["SELECT * FROM {t} WHERE pk = '' OR pk IN ('', 'nope')"],
        error: "answer: 0 rows",
    },
    Case {
        id: "sql-unsupported-type",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE dated STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('column_types' 'n: Float16')",
        ],
        error: "column 'n': Arrow type Float16 is not supported for DynamoDB attributes",
    },
    Case {
        id: "sql-bad-time-format",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE timed STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('time_format' 'n: epoch_weeks')",
        ],
        error: "invalid DynamoDB table option 'time_format': format of 'n': 'epoch_weeks' is not a time format: give iso, iso_seconds",
    },
    Case {
        id: "sql-bad-time-value",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE timed STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('time_format' 'pk: iso_seconds')",
            "SELECT pk FROM timed WHERE pk > TIMESTAMP '2026-01-01T00:00:00'",
        ],
        error: "attribute 'pk': value {\"S\": \"p",
    },
    Case {
        id: "sql-unknown-option",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE x STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('colour' 'red')",
        ],
        error: "invalid DynamoDB table option 'colour': unknown option; accepted: sample_size, consistent_read",
    },
    Case {
        id: "sql-capacity-on-demand",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE x STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('read_capacity_percent' '50')",
        ],
        error: "is on-demand and has no provisioned read capacity; set read_capacity (RCU per second) instead",
    },
    Case {
        id: "sql-missing-location",
        via: Via::Direct,
        sql: &["CREATE EXTERNAL TABLE x STORED AS DYNAMODB LOCATION 'NoSuchTable'"],
        error: "DynamoDB table 'NoSuchTable' does not exist (check the table name, region and endpoint)",
    },
    Case {
        id: "sql-insert-existing-key",
        via: Via::Direct,
        sql: &["INSERT INTO {t} (pk, sk) VALUES ('p0', 0)"],
        error: "INSERT on table '{t}' wrote nothing: an item with key {\"pk\":{\"S\":\"p0\"},\"sk\":{\"N\":\"0\"}} already exists in table '{t}': INSERT writes only new items (REPLACE INTO overwrites, UPDATE changes attributes)",
    },
    Case {
        id: "sql-insert-overwrite",
        via: Via::Direct,
        sql: &["INSERT OVERWRITE {t} SELECT * FROM {t}"],
        error: "INSERT on table '{t}' refused: INSERT OVERWRITE would first delete every item of the table",
    },
    Case {
        id: "sql-write-empty-key",
        via: Via::Direct,
        sql: &["INSERT INTO {t} (pk, sk) VALUES ('', 99)"],
        error: "table '{t}', row 1, column 'pk': the value is a key of type S",
    },
    Case {
        id: "sql-update-whole-table",
        via: Via::Direct,
        sql: &["UPDATE {t} SET n = 0"],
        error: "UPDATE on table '{t}' refused: it has no WHERE the table is handed, so it would change every item",
    },
    Case {
        id: "sql-delete-subquery",
        via: Via::Direct,
        sql: &["DELETE FROM {t} WHERE sk IN (SELECT sk FROM {t} WHERE n = 1)"],
        error: "DELETE on table '{t}' refused: its WHERE holds a subquery",
    },
    Case {
        id: "sql-update-key",
        via: Via::Direct,
        sql: &["UPDATE {t} SET sk = 1 WHERE pk = 'p0'"],
        error: "'sk' is a key: an item's key cannot change",
    },
    Case {
        id: "sql-transaction-too-large",
        via: Via::Direct,
        sql: &[
            "SET dynamodb.write_mode = 'transaction'",
            "INSERT INTO {t} (pk, sk) SELECT 'new', value FROM generate_series(1000, 1100)",
        ],
        error: "writes at most 100 items in one statement (DynamoDB's TransactWriteItems limit), and this one writes more; nothing was written",
    },
    Case {
        id: "sql-write-over-ceiling",
        via: Via::Direct,
        sql: &[
            "SET dynamodb.max_wcu = 1",
            "INSERT INTO {t} (pk, sk) VALUES ('new', 1000), ('new', 1001)",
        ],
        error: "it would write about 2 items, about 2 WCU, above the ceiling dynamodb.max_wcu = 1 (nothing was written",
    },
    Case {
        id: "sql-bad-write-mode",
        via: Via::Direct,
        sql: &["SET dynamodb.write_mode = 'atomic'"],
        error: "dynamodb.write_mode is batch or transaction, not 'atomic'",
    },
    Case {
        id: "sql-bad-setting",
        via: Via::Direct,
        sql: &["SET dynamodb.pushdown = maybe"],
        error: "Error parsing 'maybe' as bool",
    },
    Case {
        id: "sql-bad-scan-guard",
        via: Via::Direct,
        sql: &["SET dynamodb.scan_guard = 'eror'"],
        error: "dynamodb.scan_guard is off, warn or error, not 'eror'",
    },
    Case {
        id: "sql-bad-join-lookups",
        via: Via::Direct,
        sql: &["SET dynamodb.join_key_lookups = 'always'"],
        error: "dynamodb.join_key_lookups is items, rcu or off (true is items, false is off), not 'always'",
    },
    Case {
        id: "sql-scan-guard",
        via: Via::Direct,
        sql: &[
            "SET dynamodb.scan_guard = 'error'",
            "SET dynamodb.scan_guard_bytes = 1",
            "SELECT count(*) FROM {t} WHERE n > 1",
        ],
        error: "query would Scan all of table '{t}' (~798 bytes, ~20 items): add a condition on its partition key 'pk' (or an index key), or SET dynamodb.scan_guard = 'off'",
    },
    Case {
        id: "sql-over-ceiling",
        via: Via::Direct,
        sql: &[
            "SET dynamodb.max_rcu = 0.1",
            "SELECT count(*) FROM {t} WHERE n > 1",
        ],
        error: "query refused before reading: a Scan of table '{t}' (~20 items) would take about 0.5 RCU",
    },
    Case {
        id: "sql-bad-ceiling",
        via: Via::Direct,
        sql: &[
            "CREATE EXTERNAL TABLE x STORED AS DYNAMODB LOCATION '{t}' OPTIONS ('max_rcu' '-1')",
        ],
        error: "invalid DynamoDB table option 'max_rcu': '-1' is not a positive number of read capacity units",
    },
    Case {
        id: "sql-endpoint-down",
        via: Via::Down,
        sql: &["SELECT * FROM {t}"],
        error: "DynamoDB ListTables failed: dispatch failure",
    },
    Case {
        id: "sql-garbage",
        via: Via::Proxy(Fault::Garbage),
        sql: &["SELECT * FROM quick"],
        error: "DynamoDB Scan on table '{t}' failed: gave up, 3 attempts failed: unreadable answer (HTTP 200)",
    },
    Case {
        id: "sql-throttled",
        via: Via::Proxy(Fault::Throttle),
        sql: &["SELECT * FROM quick"],
        error: "DynamoDB throttled Scan on table '{t}' beyond the retry budget (3 attempts failed; last answer: ProvisionedThroughputExceededException",
    },
];

async fn catalogue_table(client: &Client) -> String {
    let items = (0..20)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 4))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("n".to_string(), AV::N(i.to_string())),
                (
                    "big".to_string(),
                    AV::N("12345678901234567890123456789012345678".into()),
                ),
                (
                    "huge".to_string(),
                    AV::N(if i == 7 { "1e20" } else { "5" }.into()),
                ),
            ])
        })
        .collect();
    pk_sk_table(client, "catalogue", items).await
}

async fn session(client: Client) -> SessionContext {
    dynamo_session(client, SessionConfig::new(), TableOptions::default())
        .await
        .expect("session")
}

/// Runs the case: `answer: N rows`, or the error text of its last statement.
async fn run_case(case: &Case, table: &str) -> String {
    let direct = client().await;
    let mut _proxy = None;
    let ctx = match case.via {
        Via::Direct => session(direct).await,
        Via::Down => {
            match dynamo_session(
                dead_endpoint_client().await,
                SessionConfig::new(),
                TableOptions::default(),
            )
            .await
            {
                Ok(_) => panic!("{}: a session over a dead endpoint", case.id),
                Err(e) => return e.to_string(),
            }
        }
        Via::Proxy(fault) => {
            let proxy =
                FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
                    .await
                    .expect("proxy");
            let ctx = session(proxy.client().await).await;
            // Described and sampled fault-free; reads after this meet the fault.
            ctx.sql(&format!(
                "CREATE EXTERNAL TABLE quick STORED AS DYNAMODB LOCATION '{table}' \
                 OPTIONS ('max_attempts' '3', 'retry_base_delay_ms' '1')"
            ))
            .await
            .expect("create quick");
            proxy.set_config(FaultConfig::only(fault, 1.0));
            _proxy = Some(proxy);
            ctx
        }
    };
    let (last, setup) = case.sql.split_last().expect("a statement");
    for sql in setup {
        let sql = sql.replace("{t}", table);
        ctx.sql(&sql)
            .await
            .unwrap_or_else(|e| panic!("{}: setup '{sql}' failed: {e}", case.id));
    }
    let sql = last.replace("{t}", table);
    let result = match ctx.sql(&sql).await {
        Ok(df) => df.collect().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(batches) => format!(
            "answer: {} rows",
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        ),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn every_bad_input_of_the_catalogue_gets_its_error() {
    let table = catalogue_table(&client().await).await;
    let mut wrong = Vec::new();
    for case in CASES {
        let message = run_case(case, &table).await;
        let wanted = case.error.replace("{t}", &table);
        assert!(!message.contains("panicked"), "{}: {message}", case.id);
        if !message.contains(&wanted) {
            wrong.push(format!(
                "{}:\n  wanted: {wanted}\n  got:    {message}",
                case.id
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The bad-input table's rows (`docs/reliability.md`): `(id, error text)`, from lines
/// `| id | input | ... | `error` |`.
pub fn readme_rows(prefix: &str) -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md"))
            .expect("docs/reliability.md");
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let id = cells.get(1)?.trim_matches('`');
            if !id.starts_with(prefix) {
                return None;
            }
            let error = cells.get(cells.len().checked_sub(2)?)?;
            Some((id.to_string(), error.trim_matches('`').trim().to_string()))
        })
        .collect()
}

#[test]
fn the_documented_catalogue_matches_the_cases() {
    let rows = readme_rows("sql-");
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    let cases: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    assert_eq!(ids, cases, "docs/reliability.md rows and test cases differ");
    for ((id, error), case) in rows.iter().zip(CASES) {
        assert_eq!(
            error, case.error,
            "{id}: docs/reliability.md shows another error"
        );
    }
}
