//! `dynamo-sql` run as a real process against DynamoDB Local: every output
//! format, exit codes, error messages, files, commands and the REPL.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use dynamo_testkit::{
    FaultConfig, FaultProxy, TableSpec, delete_table, local_endpoint, put_items, unique_name,
};

/// A table named in mixed case with three known items.
async fn fixture() -> String {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliItems");
    TableSpec::new(&table, "itemId", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create");
    let items = vec![
        HashMap::from([
            ("itemId".to_string(), AV::S("a".into())),
            (
                "price".to_string(),
                AV::N("12345678901234567890123456.789".into()),
            ),
            ("inStock".to_string(), AV::Bool(true)),
            ("note".to_string(), AV::S("has, comma".into())),
        ]),
        HashMap::from([
            ("itemId".to_string(), AV::S("b".into())),
            ("price".to_string(), AV::N("-0.5".into())),
            ("inStock".to_string(), AV::Bool(false)),
        ]),
        HashMap::from([
            ("itemId".to_string(), AV::S("c".into())),
            ("price".to_string(), AV::N("7".into())),
        ]),
    ];
    put_items(&client, &table, items).await.expect("put");
    table
}

fn dynamo_sql(args: &[&str], stdin: Option<&str>) -> Output {
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    dynamo_sql_via(&endpoint, args, stdin)
}

/// `dynamo-sql` against `endpoint` (DynamoDB Local, or a proxy in front of it).
fn dynamo_sql_via(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = dynamo_sql_command(endpoint, args)
        .spawn()
        .expect("spawn dynamo-sql");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("dynamo-sql runs")
}

/// `dynamo-sql` against `endpoint`, with the test client's credentials and
/// nothing of the host's AWS set-up; every stream piped.
fn dynamo_sql_command(endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamo-sql"));
    cmd.arg("--endpoint-url")
        .arg(endpoint)
        .args(args)
        // The same local database as the test client; nothing from the host's AWS set-up.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "local-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("HOME", std::env::temp_dir())
        .env_remove("AWS_PROFILE")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("DYNAMO_SQL_SCHEMA_CACHE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

#[tokio::test]
async fn every_output_format() {
    let table = fixture().await;
    // Unquoted, mixed-case names work as typed.
    let sql = format!("SELECT itemId, price, inStock, note FROM {table} ORDER BY itemId");

    let csv = ok(dynamo_sql(&["--format", "csv", "-c", &sql], None));
    assert_eq!(
        csv,
        "itemId,price,inStock,note\n\
         a,12345678901234567890123456.7890,true,\"has, comma\"\n\
         b,-0.5000,false,\n\
         c,7.0000,,\n"
    );

    let json = ok(dynamo_sql(&["--format", "json", "-c", &sql], None));
    assert_eq!(
        json,
        "[{\"itemId\":\"a\",\"price\":12345678901234567890123456.7890,\"inStock\":true,\"note\":\"has, comma\"},\
         {\"itemId\":\"b\",\"price\":-0.5000,\"inStock\":false,\"note\":null},\
         {\"itemId\":\"c\",\"price\":7.0000,\"inStock\":null,\"note\":null}]\n"
    );

    let ndjson = ok(dynamo_sql(&["--format", "ndjson", "-c", &sql], None));
    assert_eq!(ndjson.lines().count(), 3);
    assert_eq!(
        ndjson.lines().nth(1),
        Some("{\"itemId\":\"b\",\"price\":-0.5000,\"inStock\":false,\"note\":null}")
    );

    let table_out = ok(dynamo_sql(&["-c", &sql], None));
    assert!(table_out.contains("| itemId | price"), "{table_out}");
    assert!(
        table_out.contains("| a      | 12345678901234567890123456.7890 | true    | has, comma |"),
        "{table_out}"
    );
    assert_eq!(table_out.lines().count(), 7, "{table_out}");

    // An empty result still prints the CSV header and an empty JSON array.
    let empty = format!("SELECT itemId FROM {table} WHERE itemId = 'zzz'");
    assert_eq!(
        ok(dynamo_sql(&["--format", "csv", "-c", &empty], None)),
        "itemId\n"
    );
    assert_eq!(
        ok(dynamo_sql(&["--format", "json", "-c", &empty], None)),
        "[]\n"
    );
}

#[tokio::test]
async fn commands_and_files_run_in_order() {
    let table = fixture().await;
    let dir = std::env::temp_dir().join(unique_name("cli"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let file = dir.join("q.sql");
    std::fs::write(
        &file,
        format!("SELECT count(*) AS n FROM {table};\nSELECT max(itemId) AS m FROM {table};\n"),
    )
    .expect("write sql file");
    let out = ok(dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS one",
            "-f",
            file.to_str().expect("utf-8 path"),
        ],
        None,
    ));
    assert_eq!(out, "one\n1\nn\n3\nm\nc\n");

    // -c takes any SQL text, also one that starts with a comment (as -f does),
    // in both spellings of the flag.
    let commented = format!("-- how many items\nSELECT count(*) AS n FROM {table}");
    for flag in ["-c", "--command"] {
        assert_eq!(
            ok(dynamo_sql(&["--format", "csv", flag, &commented], None)),
            "n\n3\n"
        );
    }

    let described = ok(dynamo_sql(&["-c", &format!("\\d {table}")], None));
    assert!(described.contains("partition key (S)"), "{described}");
    assert!(described.contains("Decimal128(38, 4)"), "{described}");
    let listed = ok(dynamo_sql(&["--format", "csv", "-c", "\\dt"], None));
    assert!(listed.lines().any(|l| l == table), "{listed}");
}

#[tokio::test]
async fn errors_exit_non_zero_with_a_message() {
    let table = fixture().await;
    let hint = format!("did you mean {table}? (table names are case-sensitive)");
    let cases = [
        ("SELECT * FROM NoSuchTable_abc".to_string(), "not found"),
        (format!("SELECT nope FROM {table}"), "No field named nope"),
        ("SELEC 1".to_string(), "SELEC"),
        ("\\zz".to_string(), "unknown command"),
        // A table named in the wrong case: the one meant is suggested.
        (
            format!("SELECT * FROM {}", table.to_lowercase()),
            hint.as_str(),
        ),
    ];
    for (sql, expected) in cases {
        let o = dynamo_sql(&["-c", &sql], None);
        assert!(!o.status.success(), "{sql} should fail");
        assert!(stderr(&o).contains(expected), "{sql}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{sql}: nothing on stdout");
    }
    // A statement that fails stops the run: later ones do not execute.
    let o = dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS a; SELECT * FROM NoSuchTable_abc; SELECT 3 AS c",
        ],
        None,
    );
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "a\n1\n");
    // Text that does not parse runs nothing at all.
    let o = dynamo_sql(&["--format", "csv", "-c", "SELECT 1 AS a; SELEC 2"], None);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
}

#[test]
fn unreachable_endpoint_fails_fast_and_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let o = Command::new(env!("CARGO_BIN_EXE_dynamo-sql"))
        .args([
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
            "-c",
            "SELECT 1",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "local-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("ListTables failed"), "{err}");
    assert!(!err.contains("local-secret"), "{err}");
}

#[tokio::test]
async fn repl_reads_multi_line_statements_and_commands() {
    let table = fixture().await;
    let script = format!("SELECT count(*) AS n\n  FROM {table}\n  WHERE price > 0;\n\\dt\n\\q\n");
    let out = ok(dynamo_sql(&[], Some(&script)));
    assert!(out.contains("| n |") && out.contains("| 2 |"), "{out}");
    assert!(out.contains("1 row fetched."), "{out}");
    assert!(out.contains(&table), "{out}");
}

#[tokio::test]
async fn stats_report_what_dynamodb_did() {
    let table = fixture().await;
    let o = dynamo_sql(
        &[
            "--stats",
            "--format",
            "csv",
            "-c",
            &format!("SELECT price FROM {table} WHERE itemId = 'b'"),
        ],
        None,
    );
    let out = ok_ref(&o);
    assert_eq!(out, "price\n-0.5000\n", "stats never go to stdout");
    let err = stderr(&o);
    assert!(
        err.contains("DynamoDB: 1 request, 1 page, 1 items scanned, 1 returned"),
        "GetItem reads one item: {err}"
    );
    assert!(
        err.contains("RCU (estimated 1 items, 0.5 RCU)"),
        "estimate beside actual: {err}"
    );
}

#[tokio::test]
async fn a_large_full_scan_is_warned_about_on_stderr_and_a_ceiling_refuses_it() {
    let table = fixture().await;
    let scan = format!("SELECT count(*) AS n FROM {table}");
    let o = dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            "SET dynamodb.warn_rcu = 0.1",
            "-c",
            &scan,
        ],
        None,
    );
    let out = ok_ref(&o);
    assert!(out.starts_with("n\n"), "the query ran: {out}");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "Warning: this query Scans all of table '{table}': about"
        )),
        "{err}"
    );
    // Under the default threshold (10000 RCU) a small table is not warned about.
    let o = dynamo_sql(&["--format", "csv", "-c", &scan], None);
    ok_ref(&o);
    assert!(!stderr(&o).contains("Warning"), "{}", stderr(&o));
    // A ceiling below the estimate refuses it, naming the estimate.
    let o = dynamo_sql(&["-c", "SET dynamodb.max_rcu = 0.1", "-c", &scan], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("refused before reading: a Scan of table"),
        "{}",
        stderr(&o)
    );
    // RESET, or an explicit off, lifts the ceiling again (SQL and \set alike).
    for lift in [
        "RESET dynamodb.max_rcu",
        "SET dynamodb.max_rcu = off",
        "\\set dynamodb.max_rcu off",
    ] {
        let o = dynamo_sql(
            &[
                "--format",
                "csv",
                "-c",
                "SET dynamodb.max_rcu = 0.1",
                "-c",
                lift,
                "-c",
                &scan,
            ],
            None,
        );
        assert_eq!(ok_ref(&o), "n\n3\n", "{lift}");
    }
    // A misspelt setting names the ones there are.
    let o = dynamo_sql(&["-c", "RESET dynamodb.max_rc"], None);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no setting 'dynamodb.max_rc'; the settings are"),
        "{}",
        stderr(&o)
    );
}

fn ok_ref(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstderr: {}",
        o.status,
        stderr(o)
    );
    stdout(o)
}

/// A hash-only table `id` (S) of `n` items: `n` (N, whole) and `note` (S).
async fn numbered_table(client: &aws_sdk_dynamodb::Client, table: &str, items: usize) {
    TableSpec::new(table, "id", ScalarAttributeType::S)
        .create(client)
        .await
        .expect("create");
    let items = (0..items)
        .map(|i| {
            HashMap::from([
                ("id".to_string(), AV::S(format!("i{i}"))),
                ("n".to_string(), AV::N(i.to_string())),
                ("note".to_string(), AV::S(format!("note {i}"))),
            ])
        })
        .collect();
    put_items(client, table, items).await.expect("put");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_are_cached_between_runs_and_sampled_again_when_asked_or_new() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("Cached");
    numbered_table(&client, &table, 300).await;
    let upstream = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    let proxy = FaultProxy::start(&upstream, FaultConfig::none())
        .await
        .expect("proxy");
    let dir = std::env::temp_dir().join(unique_name("schema-cache"));
    let dir_arg = dir.to_str().expect("utf-8 path").to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--schema-cache", dir_arg.as_str()];
        all.extend_from_slice(args);
        dynamo_sql_via(&proxy.endpoint(), &all, None)
    };
    let get = format!("SELECT n, note FROM {table} WHERE id = 'i7'");

    // The first run samples the table (smaller than the sample: all of it).
    let before = proxy.counts();
    assert_eq!(
        ok(run(&["--format", "csv", "-c", &get])),
        "n,note\n7,note 7\n"
    );
    let first = proxy.counts();
    assert!(first.scans > before.scans, "{first:?}");
    assert_eq!(first.scanned_by_scans - before.scanned_by_scans, 300);

    // Later runs read the cached schema: no Scan at all for a GetItem.
    for _ in 0..3 {
        assert_eq!(
            ok(run(&["--format", "csv", "-c", &get])),
            "n,note\n7,note 7\n"
        );
    }
    let cached = proxy.counts();
    assert_eq!(
        (cached.scans, cached.scanned_by_scans),
        (first.scans, first.scanned_by_scans),
        "cached runs sample nothing"
    );
    let described = ok(run(&["-c", &format!("\\d {table}")]));
    assert!(
        described.contains("schema: sampled 300 items at")
            && described.contains("read from the schema cache"),
        "{described}"
    );

    // ANALYZE TABLE samples again (and \refresh is the same).
    let analyzed = ok(run(&["-c", &format!("ANALYZE TABLE {table}")]));
    assert!(analyzed.contains("sampled 300 items"), "{analyzed}");
    let after_analyze = proxy.counts();
    assert_eq!(
        after_analyze.scanned_by_scans - cached.scanned_by_scans,
        300
    );
    let refreshed = ok(run(&["-c", &format!("\\refresh {table}")]));
    assert!(refreshed.contains("sampled 300 items"), "{refreshed}");

    // A widening is kept: the next run plans with the widened column.
    put_items(
        &client,
        &table,
        vec![HashMap::from([
            ("id".to_string(), AV::S("frac".into())),
            ("n".to_string(), AV::N("0.123456".into())),
        ])],
    )
    .await
    .expect("put");
    let sum = format!("SELECT sum(n) AS s FROM {table}");
    let widened = run(&["--format", "csv", "-c", &sum]);
    assert_eq!(stdout(&widened), "s\n44850.123456\n");
    assert!(
        stderr(&widened).contains("Notice: table '")
            && stderr(&widened).contains("'n' widened from Int64 to Decimal128(38, 6)"),
        "{}",
        stderr(&widened)
    );
    let again = run(&["--format", "csv", "-c", &sum]);
    assert_eq!(stdout(&again), "s\n44850.123456\n");
    assert!(!stderr(&again).contains("Notice"), "{}", stderr(&again));
    let described = ok(run(&["-c", &format!("\\d {table}")]));
    assert!(described.contains("widened at"), "{described}");

    // The same name, created again: a new table, sampled again.
    delete_table(&client, &table).await.expect("delete");
    TableSpec::new(&table, "id", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create again");
    put_items(
        &client,
        &table,
        vec![HashMap::from([
            ("id".to_string(), AV::S("i7".into())),
            ("n".to_string(), AV::S("seven".into())),
            ("note".to_string(), AV::S("new".into())),
        ])],
    )
    .await
    .expect("put");
    let before = proxy.counts();
    assert_eq!(
        ok(run(&["--format", "csv", "-c", &get])),
        "n,note\nseven,new\n"
    );
    assert!(
        proxy.counts().scans > before.scans,
        "re-created table sampled"
    );

    // --no-schema-cache samples every time.
    let before = proxy.counts();
    ok(dynamo_sql_via(
        &proxy.endpoint(),
        &["--no-schema-cache", "-c", &get],
        None,
    ));
    assert!(proxy.counts().scans > before.scans);
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh directory for files a test writes.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tmp dir")
}

#[tokio::test]
async fn copy_exports_to_parquet_csv_and_json_and_reads_back_the_same() {
    let table = fixture().await;
    let dir = scratch();
    let path = |ext: &str| dir.path().join(format!("out.{ext}")).display().to_string();
    // The source, summed: every format must give it back.
    let truth = ok(dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            &format!("SELECT count(*) AS n, CAST(sum(price) AS VARCHAR) AS s FROM {table}"),
        ],
        None,
    ));
    for (ext, create) in [
        ("parquet", "STORED AS PARQUET"),
        ("csv", "STORED AS CSV"),
        ("json", "STORED AS JSON"),
    ] {
        let target = path(ext);
        let out = ok(dynamo_sql(
            &["-c", &format!("COPY (SELECT * FROM {table}) TO '{target}'")],
            None,
        ));
        assert!(
            out.contains("| 3 "),
            "{ext}: COPY reports the rows written: {out}"
        );
        let back = ok(dynamo_sql(
            &[
                "--format",
                "csv",
                "-c",
                &format!("CREATE EXTERNAL TABLE back {create} LOCATION '{target}'"),
                "-c",
                "SELECT count(*) AS n, CAST(sum(price) AS VARCHAR) AS s FROM back",
            ],
            None,
        ));
        if ext == "parquet" {
            assert_eq!(back, truth, "{ext}: the same rows and exact sum");
            // A file is a table by its path, as in datafusion-cli.
            let direct = ok(dynamo_sql(
                &[
                    "--format",
                    "csv",
                    "-c",
                    &format!(
                        "SELECT count(*) AS n, CAST(sum(price) AS VARCHAR) AS s FROM '{target}'"
                    ),
                ],
                None,
            ));
            assert_eq!(direct, truth, "{ext}: read by its path");
        } else {
            // Read back, CSV and JSON numbers are inferred as floats: the rows
            // come back, and the file holds every digit.
            assert!(back.starts_with("n,s\n3,"), "{ext}: {back}");
            let text = std::fs::read_to_string(&target).expect("written");
            assert!(
                text.contains("12345678901234567890123456.789"),
                "{ext}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn copy_to_csv_writes_nested_values_as_json_and_a_failed_copy_leaves_no_file() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliNested");
    TableSpec::new(&table, "id", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create");
    let item = HashMap::from([
        ("id".to_string(), AV::S("a".into())),
        (
            "dims".to_string(),
            AV::M(HashMap::from([("w".to_string(), AV::N("1.5".into()))])),
        ),
        (
            "tags".to_string(),
            AV::L(vec![AV::S("x".into()), AV::S("y, z".into())]),
        ),
    ]);
    put_items(&client, &table, vec![item]).await.expect("put");
    let dir = scratch();
    let target = dir.path().join("nested.csv");
    ok(dynamo_sql(
        &["-c", &format!("COPY {table} TO '{}'", target.display())],
        None,
    ));
    let text = std::fs::read_to_string(&target).expect("written");
    assert_eq!(
        text, "id,dims,tags\na,\"{\"\"w\"\":1.5000}\",\"[\"\"x\"\",\"\"y, z\"\"]\"\n",
        "maps and lists as JSON text"
    );
    // Refused by the ceiling: nothing is left behind.
    let failed = dir.path().join("failed.csv");
    let o = dynamo_sql(
        &[
            "-c",
            "SET dynamodb.max_rcu = 0.1",
            "-c",
            &format!("COPY {table} TO '{}'", failed.display()),
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("refused before reading"),
        "{}",
        stderr(&o)
    );
    assert!(!failed.exists(), "a failed COPY leaves no file");
}

#[tokio::test]
async fn output_commands_format_file_timing_and_maxrows() {
    let table = fixture().await;
    let dir = scratch();
    let file = dir.path().join("out.txt");
    let select = format!("SELECT \"itemId\" FROM {table} ORDER BY \"itemId\"");
    let o = dynamo_sql(
        &[
            "-c",
            "\\format csv",
            "-c",
            &format!("\\o {}", file.display()),
            "-c",
            &select,
            "-c",
            "\\o",
            "-c",
            "\\format ndjson",
            "-c",
            &select,
            "-c",
            "\\timing on",
            "-c",
            &select,
        ],
        None,
    );
    let out = ok_ref(&o);
    assert_eq!(
        std::fs::read_to_string(&file).expect("\\o file"),
        "itemId\na\nb\nc\n",
        "the first result went to the file, as CSV"
    );
    assert_eq!(
        out,
        "{\"itemId\":\"a\"}\n{\"itemId\":\"b\"}\n{\"itemId\":\"c\"}\n".repeat(2),
        "then stdout, as NDJSON"
    );
    let err = stderr(&o);
    assert_eq!(
        err.matches("Time: ").count(),
        1,
        "timing after it was turned on: {err}"
    );
    assert!(
        err.contains("format is ndjson") && err.contains("timing is on"),
        "{err}"
    );

    let o = dynamo_sql(&["--maxrows", "2", "-c", &select], None);
    let out = ok_ref(&o);
    assert!(
        out.contains("| a ") && out.contains("| b ") && !out.contains("| c "),
        "{out}"
    );
    assert!(
        out.contains("(3 rows, showing 2: --maxrows or \\set maxrows N shows more)"),
        "{out}"
    );
    let o = dynamo_sql(&["-c", "\\x", "-c", &select], None);
    let out = ok_ref(&o);
    assert!(
        out.starts_with("-[ RECORD 1 ]") && out.contains("itemId | c"),
        "{out}"
    );
    let o = dynamo_sql(&["-c", "\\format xml"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown format 'xml': table, csv, json or ndjson"));
}

#[tokio::test]
async fn help_lists_functions_and_describes_one_and_set_shows_and_sets() {
    let o = dynamo_sql(&["--format", "csv", "-c", "\\h"], None);
    let out = ok_ref(&o);
    assert!(out.starts_with("function,kind,description\n"), "{out}");
    for f in [
        "abs,scalar,",
        "count,aggregate,",
        "row_number,window,",
        "to_json,scalar,",
    ] {
        assert!(out.contains(f), "{f}: {out}");
    }
    // As a table, each line fits a terminal: one sentence of description.
    let o = dynamo_sql(&["-c", "\\h"], None);
    let out = ok_ref(&o);
    let widest = out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 120, "a line of {widest} characters: {out}");
    // \? starts with its first line.
    let o = dynamo_sql(&["-c", "\\?"], None);
    assert!(ok_ref(&o).starts_with("Commands:\n"));
    let o = dynamo_sql(&["-c", "\\h to_json"], None);
    let out = ok_ref(&o);
    assert!(
        out.contains("to_json (scalar function)") && out.contains("Syntax: to_json(expression)"),
        "{out}"
    );
    let o = dynamo_sql(&["-c", "\\h nope"], None);
    assert!(stderr(&o).contains("no function 'nope'; \\h lists them"));
    let o = dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            "\\set maxrows 7",
            "-c",
            "\\set dynamodb.max_rcu 50",
            "-c",
            "\\set",
        ],
        None,
    );
    let out = ok_ref(&o);
    assert!(
        out.contains("maxrows,7") && out.contains("dynamodb.max_rcu,50"),
        "{out}"
    );
}

#[tokio::test]
async fn explain_reads_as_a_block_for_a_person_and_as_a_tree() {
    let table = fixture().await;
    let sql = format!("EXPLAIN SELECT price FROM {table} WHERE \"itemId\" = 'b' AND price > 0");
    // What a terminal gets (readable_plans is on when stdout is one).
    let o = dynamo_sql(&["-c", "\\set readable_plans on", "-c", &sql], None);
    let out = ok_ref(&o);
    assert!(
        out.contains("\n    DynamoExec\n") || out.contains("DynamoExec\n"),
        "{out}"
    );
    for line in [
        "operation: GetItem",
        &format!("table: {table}"),
        "key: itemId = \"b\"",
        "projection: price",
        "estimate: ~1 items, ~0.5 RCU",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        !out.contains("#n0") && !out.contains(":v0"),
        "placeholders resolved: {out}"
    );
    // A pipe gets DataFusion's own EXPLAIN, one line per node.
    let o = dynamo_sql(&["--format", "csv", "-c", &sql], None);
    let out = ok_ref(&o);
    assert!(
        out.contains("DynamoExec: operation=GetItem") && out.contains("estimate=[items≈1"),
        "{out}"
    );
    // EXPLAIN FORMAT tree: the request's lines inside the node's box.
    let o = dynamo_sql(
        &[
            "-c",
            &format!("EXPLAIN FORMAT tree SELECT price FROM {table} WHERE \"itemId\" = 'b'"),
        ],
        None,
    );
    let out = ok_ref(&o);
    assert!(
        out.contains("DynamoExec")
            && out.contains("operation: GetItem")
            && out.contains("itemId = \"b\""),
        "{out}"
    );
}

// Multi-threaded: the proxy answers while the test waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_at_a_terminal_and_never_in_a_pipe() {
    let table = fixture().await;
    // Every answer held 400 ms; one item per page: a 4-page read takes ~1.6 s.
    let proxy = slow_proxy(400).await;
    let dir = scratch();
    let file = dir.path().join("slow.sql");
    std::fs::write(
        &file,
        format!(
            "CREATE EXTERNAL TABLE slow STORED AS DYNAMODB LOCATION '{table}' OPTIONS ('page_size' '1');\n\
             SELECT \"itemId\" FROM slow ORDER BY \"itemId\";\n"
        ),
    )
    .expect("write");
    let file = file.display().to_string();
    // Piped: the result alone, and no progress (nor any escape code) on stderr.
    let o = dynamo_sql_via(&proxy.endpoint(), &["--format", "csv", "-f", &file], None);
    assert_eq!(ok_ref(&o), "itemId\na\nb\nc\n");
    let err = stderr(&o);
    assert!(
        !err.contains("items read") && !err.contains('\u{1b}'),
        "{err:?}"
    );
    // At a terminal (a pseudo-terminal from `script`): the progress line,
    // then the result.
    let mut terminal =
        Terminal::dynamo_sql(&proxy.endpoint(), "", &format!("-f {file}"), dir.path());
    let status = terminal.finish();
    let screen = terminal.screen;
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("items read ·"),
        "progress at a terminal: {screen}"
    );
    let progress_at = screen.find("items read").unwrap_or(0);
    let result_at = screen.rfind("| c ").unwrap_or(0);
    assert!(
        progress_at < result_at,
        "the result after the progress: {screen}"
    );
}

/// `dynamo-sql` at a pseudo-terminal (`script`), typed into: what the
/// terminal showed.
fn at_terminal(extra_env: &str, typed: &[&str]) -> String {
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    // A home of its own: no history from other runs.
    let home = scratch();
    let mut terminal = Terminal::dynamo_sql(&endpoint, extra_env, "", home.path());
    terminal.wait_for("dynamo-sql> ");
    let mut prompts = 1;
    for text in typed {
        terminal.type_text(text);
        prompts += 1;
        // The next prompt: the statement ran.
        if !text.starts_with("\\q") {
            terminal.wait_for_count("dynamo-sql> ", prompts);
        }
    }
    terminal.finish();
    terminal.screen.replace('\u{1b}', "ESC")
}

#[tokio::test]
async fn tab_completes_names_at_a_terminal_and_no_color_turns_colour_off() {
    let table = fixture().await;
    // The table's name less its last two characters, then Tab.
    let prefix = &table[..table.len() - 2];
    let screen = at_terminal(
        "",
        &[&format!("SELECT count(*) AS n FROM {prefix}\t;\r"), "\\q\r"],
    );
    assert!(
        screen.contains(&format!(" {table};")),
        "completed {table}: {screen}"
    );
    assert!(screen.contains("| 3 "), "and ran: {screen}");
    assert!(
        screen.contains("ESC[1;34mSELECT"),
        "keywords coloured: {screen}"
    );
    let screen = at_terminal(
        "NO_COLOR=1",
        &[&format!("SELECT count(*) AS n FROM {table};\r"), "\\q\r"],
    );
    assert!(screen.contains("| 3 "), "{screen}");
    assert!(
        !screen.contains("ESC[1;34m") && !screen.contains("ESC[1;32m"),
        "{screen}"
    );
}

/// `dynamo-sql --cluster` on a real cluster (a `dynamo-ballista` scheduler and
/// two executors as processes, built beside `dynamo-sql`): Ctrl-C (SIGINT)
/// during a long read cancels the job on the cluster — its reads stop — and
/// leaves the executors serving the next query; a ceiling set in the session
/// refuses on the cluster too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_ctrl_c_cancels_the_job_and_the_ceiling_refuses() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliCluster");
    let items = (0..3_000)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("k{i}"))),
                ("n".to_string(), AV::N(i.to_string())),
            ])
        })
        .collect();
    TableSpec::new(&table, "pk", ScalarAttributeType::S)
        .create_with(&client, items)
        .await
        .expect("table");
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    // The executors read through a proxy that holds each answer 50 ms: a
    // scan of 10-item pages takes over a minute.
    let proxy = FaultProxy::start(
        &endpoint,
        FaultConfig {
            latency: std::time::Duration::from_millis(50),
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy");
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_dynamo-sql")).with_file_name("dynamo-ballista");
    assert!(
        binary.is_file(),
        "{} is built with the workspace (cargo build --workspace)",
        binary.display()
    );
    let mut spec = dynamo_testkit::ClusterSpec::new(&binary, 2, 2);
    spec.executor_args = vec![vec!["--endpoint-url".to_string(), proxy.endpoint()]; 2];
    spec.env.extend(
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "cluster-secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let cluster = dynamo_testkit::LocalCluster::start(spec)
        .await
        .expect("cluster");
    let url = cluster.url();
    let slow = format!(
        "CREATE EXTERNAL TABLE slow STORED AS DYNAMODB LOCATION '{table}' \
         OPTIONS ('page_size' '10', 'segments' '2')"
    );
    let mut child = dynamo_sql_command(
        &endpoint,
        &[
            "--cluster",
            &url,
            "--format",
            "csv",
            "-c",
            &slow,
            "-c",
            "SELECT count(*) FROM slow",
        ],
    )
    .spawn()
    .expect("spawn dynamo-sql");
    let started = std::time::Instant::now();
    while proxy.counts().requests < 10 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the cluster never started reading"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("dynamo-sql ends");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("Query cancelled; cluster job ") && err.contains(" cancelled."),
        "{err}"
    );
    // The job is cancelled on the scheduler, and its reads stop.
    let jobs: serde_json::Value =
        serde_json::from_str(&cluster.api("/api/jobs").await.expect("jobs")).expect("jobs JSON");
    let job = jobs
        .as_array()
        .and_then(|j| {
            j.iter()
                .find(|j| err.contains(j["job_id"].as_str().unwrap_or("?")))
        })
        .unwrap_or_else(|| panic!("the cancelled job is listed: {jobs}"));
    assert_ne!(job["status"], "Completed", "{job}");
    assert_ne!(job["status"], "Running", "{job}");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let settled = proxy.counts().requests;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        proxy.counts().requests,
        settled,
        "reads went on after the cancel"
    );
    // Both executors still serve: the next query answers in full.
    let count = format!("SELECT count(*) AS n FROM {table}");
    let o = dynamo_sql(&["--cluster", &url, "--format", "csv", "-c", &count], None);
    assert_eq!(ok_ref(&o), "n\n3000\n");
    // A ceiling set in the session refuses before any job is sent.
    let o = dynamo_sql(
        &[
            "--cluster",
            &url,
            "-c",
            "SET dynamodb.max_rcu = 1",
            "-c",
            &count,
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("refused before reading"),
        "{}",
        stderr(&o)
    );
}

/// A proxy in front of DynamoDB Local that holds every answer `ms`.
async fn slow_proxy(ms: u64) -> FaultProxy {
    FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig {
            latency: std::time::Duration::from_millis(ms),
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy")
}

/// A program at a pseudo-terminal (`script`): what it showed, and keys to type.
struct Terminal {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    screen: String,
}

impl Terminal {
    /// `dynamo-sql ARGS` against `endpoint` at a new pseudo-terminal, with
    /// `env` (`NAME=VALUE …`) added to its environment.
    fn dynamo_sql(endpoint: &str, env: &str, args: &str, home: &std::path::Path) -> Self {
        use std::io::Read;
        let command = format!(
            "env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=local-secret AWS_REGION=us-east-1 \
             AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
             HOME={home} {env} {bin} --endpoint-url {endpoint} --no-schema-cache {args}",
            home = home.display(),
            bin = env!("CARGO_BIN_EXE_dynamo-sql"),
        );
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script runs");
        let mut stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let input = child.stdin.take();
        Self {
            child,
            input,
            rx,
            screen: String::new(),
        }
    }

    /// Waits (30 s at most) until the screen shows `needle`.
    fn wait_for(&mut self, needle: &str) {
        self.wait_for_count(needle, 1);
    }

    /// Waits (30 s at most) until the screen shows `needle` `count` times.
    fn wait_for_count(&mut self, needle: &str, count: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.screen.matches(needle).count() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.screen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("'{needle}' never showed: {}", self.screen),
            }
        }
    }

    /// Collects what the screen shows for `duration`.
    fn watch(&mut self, duration: std::time::Duration) {
        let until = std::time::Instant::now() + duration;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            if let Ok(bytes) = self.rx.recv_timeout(left) {
                self.screen.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    fn type_text(&mut self, text: &str) {
        let input = self.input.as_mut().expect("typing after the end");
        input.write_all(text.as_bytes()).expect("type");
        input.flush().expect("flush");
    }

    /// Ends the input and waits for the program to exit: its status.
    fn finish(&mut self) -> std::process::ExitStatus {
        self.input = None;
        let status = self.child.wait().expect("the program ends");
        self.watch(std::time::Duration::from_millis(500));
        status
    }
}

/// After Ctrl-C, `screen` erased the progress line before saying the
/// statement was cancelled, and drew none afterwards.
fn cleared_on_cancel(screen: &str) {
    let cancelled_at = screen
        .rfind("Query cancelled")
        .unwrap_or_else(|| panic!("{screen}"));
    let drawn_at = screen[..cancelled_at]
        .rfind("items read")
        .unwrap_or_else(|| panic!("no progress before the cancel: {screen}"));
    assert!(
        screen[drawn_at..cancelled_at].contains("\u{1b}[2K"),
        "the progress line was not cleared: {:?}",
        screen[drawn_at..].replace('\u{1b}', "ESC")
    );
    assert!(
        !screen[cancelled_at..].contains("items read"),
        "the progress line was drawn after the cancel: {:?}",
        screen[cancelled_at..].replace('\u{1b}', "ESC")
    );
}

/// Ctrl-C during a long read at a terminal, in the REPL and in a one-shot
/// run: the statement is cancelled and its progress line erased for good —
/// nothing of it is drawn after the cancel. (A one-shot run used to die on
/// the signal with the line still drawn.)
// Multi-threaded: the proxy serves while this thread waits on the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_a_terminal_leaves_no_progress_line() {
    let table = fixture().await;
    // Every answer held 600 ms, one item per page: over two seconds a read.
    let proxy = slow_proxy(600).await;
    let home = scratch();
    let create = format!(
        "CREATE EXTERNAL TABLE slow STORED AS DYNAMODB LOCATION '{table}' \
         OPTIONS ('page_size' '1', 'segments' '1');"
    );

    // The REPL: cancelled, the prompt back.
    let mut repl = Terminal::dynamo_sql(&proxy.endpoint(), "", "", home.path());
    repl.wait_for("dynamo-sql> ");
    repl.type_text(&format!("{create}\n"));
    // The next statement once the prompt is back (a terminal drops what is
    // typed ahead when the line editor takes it over).
    repl.wait_for("0 rows fetched");
    repl.type_text("SELECT count(*) FROM slow;\n");
    repl.wait_for("items read");
    repl.type_text("\u{3}");
    repl.wait_for("Query cancelled");
    repl.watch(std::time::Duration::from_millis(1_500));
    repl.type_text("\\q\n");
    repl.finish();
    cleared_on_cancel(&repl.screen);

    // A one-shot run: cancelled, and it exits.
    let script = home.path().join("slow.sql");
    std::fs::write(&script, format!("{create}\nSELECT count(*) FROM slow;\n")).expect("write");
    let mut once = Terminal::dynamo_sql(
        &proxy.endpoint(),
        "",
        &format!("-f {}", script.display()),
        home.path(),
    );
    once.wait_for("items read");
    once.type_text("\u{3}");
    once.wait_for("Query cancelled");
    once.watch(std::time::Duration::from_millis(1_500));
    once.finish();
    cleared_on_cancel(&once.screen);
}

/// Loads the demo tables (if they are not there); the repository's root.
async fn demo_tables() -> std::path::PathBuf {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    dynamo_testkit::load_demo(&client)
        .await
        .expect("demo tables");
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every ```sql block of the README and of `docs/`, run by `dynamo-sql -f`
/// over the demo tables: each statement answers, none fails.
#[tokio::test]
async fn every_sql_example_in_the_docs_runs_on_the_demo_tables() {
    let root = demo_tables().await;
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut examples = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("page");
        for (i, block) in text.split("```sql\n").skip(1).enumerate() {
            let sql = block.split("```").next().expect("block");
            let dir = scratch();
            let file = dir.path().join("example.sql");
            std::fs::write(&file, sql).expect("write");
            // As scripts/demo.sh runs them: with the demo's declarations.
            let rc = root.join("scripts/demo.sql");
            let o = dynamo_sql_command(
                &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
                &[
                    "--rc",
                    rc.to_str().expect("path"),
                    "-f",
                    file.to_str().expect("path"),
                ],
            )
            .current_dir(dir.path())
            .output()
            .expect("dynamo-sql runs");
            assert!(
                o.status.success() && stderr(&o).is_empty(),
                "{} example {}:\n{sql}\nstdout: {}\nstderr: {}",
                page.display(),
                i + 1,
                stdout(&o),
                stderr(&o)
            );
            assert!(!stdout(&o).trim().is_empty(), "{sql}: no answer");
            examples += 1;
        }
    }
    assert!(examples >= 3, "{examples} SQL examples found");
}

#[tokio::test]
async fn the_demo_declarations_make_event_time_a_timestamp_that_queries_and_exports_as_one() {
    let root = demo_tables().await;
    let rc = root.join("scripts/demo.sql");
    let rc = rc.to_str().expect("path");
    let described = ok(dynamo_sql(&["--rc", rc, "-c", "\\d UserEngagement"], None));
    assert!(
        described.contains(r#"Timestamp(s, "UTC") (epoch_seconds)"#),
        "{described}"
    );
    // A time range of one user: one Query whose key condition holds it.
    let o = dynamo_sql(
        &[
            "--rc",
            rc,
            "--stats",
            "--format",
            "csv",
            "-c",
            "SELECT eventTime FROM UserEngagement WHERE userId = '123015' \
             AND eventTime BETWEEN TIMESTAMP '2025-11-03' AND TIMESTAMP '2025-11-07' ORDER BY eventTime",
        ],
        None,
    );
    assert_eq!(
        ok_ref(&o),
        "eventTime\n2025-11-03T14:20:49Z\n2025-11-04T19:48:01Z\n2025-11-06T13:48:42Z\n"
    );
    assert!(
        stderr(&o).contains("1 request, 1 page, 3 items scanned"),
        "only the range is read: {}",
        stderr(&o)
    );
    // COPY writes real timestamps: a Parquet reader sees the type, not a number.
    let dir = scratch();
    let target = dir.path().join("events.parquet").display().to_string();
    ok(dynamo_sql(
        &[
            "--rc",
            rc,
            "-c",
            &format!(
                "COPY (SELECT userId, eventTime FROM UserEngagement WHERE userId = '123015') TO '{target}'"
            ),
        ],
        None,
    ));
    let back = ok(dynamo_sql(
        &[
            "--format",
            "csv",
            "-c",
            &format!(
                "SELECT arrow_typeof(eventTime) AS t, min(eventTime) AS first FROM '{target}' GROUP BY 1"
            ),
        ],
        None,
    ));
    assert_eq!(
        back, "t,first\n\"Timestamp(s, \"\"UTC\"\")\",2025-11-01T16:09:45Z\n",
        "{back}"
    );
}

/// `CREATE EXTERNAL TABLE m` over the mirror at `path` of `table`, then
/// `sql`, as CSV: from the mirror (`max_staleness`/`on_stale` as given).
fn mirror_query(table: &str, path: &str, freshness: &str, sql: &str) -> String {
    let create = format!(
        "CREATE EXTERNAL TABLE m STORED AS DYNAMODB LOCATION '{table}' \
         OPTIONS (mirror '{path}', {freshness});"
    );
    ok(dynamo_sql(
        &[
            "--no-schema-cache",
            "--format",
            "csv",
            "-c",
            &create,
            "-c",
            sql,
        ],
        None,
    ))
}

/// A mirror made with `dynamo-sql mirror create`, followed by a
/// `dynamo-sql mirror follow` process killed (SIGKILL) at 20 seeded points
/// of a random workload and started again, then synced: it equals its
/// table row for row — read through `dynamo-sql` and by the independent
/// `deltalake` Python reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_followed_killed_and_resumed_twenty_times_equals_its_table() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliMirror");
    TableSpec::new(&table, "id", ScalarAttributeType::S)
        .stream(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
        .create(&client)
        .await
        .expect("create");
    let mut rng = dynamo_testkit::Xorshift(0x5eed_0f1d_2e3f);
    let mut next = move |n: u64| rng.below(n);
    let item = |id: u64, v: u64| {
        let mut item = HashMap::from([
            ("id".to_string(), AV::S(format!("i{id:02}"))),
            ("v".to_string(), AV::N(v.to_string())),
        ]);
        if v.is_multiple_of(3) {
            item.insert("note".to_string(), AV::S(format!("note {v}")));
        }
        item
    };
    put_items(&client, &table, (0..30).map(|i| item(i, i)).collect())
        .await
        .expect("put");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mirror");
    let path = path.to_str().expect("utf-8 path");
    let created = dynamo_sql(&["mirror", "create", &table, "--to", path], None);
    assert!(
        stderr(&created).contains("created at"),
        "{}",
        stderr(&created)
    );
    ok(created);
    for _round in 0..20 {
        let mut follower = dynamo_sql_command(
            &endpoint,
            &[
                "mirror",
                "follow",
                path,
                "--interval",
                "10ms",
                "--batch-records",
                "1",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follower");
        for _ in 0..8 {
            let id = next(40);
            if next(4) == 0 {
                client
                    .delete_item()
                    .table_name(&table)
                    .key("id", AV::S(format!("i{id:02}")))
                    .send()
                    .await
                    .expect("delete");
            } else {
                client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item(id, next(1000))))
                    .send()
                    .await
                    .expect("put");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(next(400))).await;
        follower.kill().expect("SIGKILL");
        follower.wait().expect("reaped");
    }
    ok(dynamo_sql(&["mirror", "sync", path], None));
    let status = ok(dynamo_sql(&["mirror", "status", path], None));
    assert!(
        status.contains(&format!("table:      {table}")) && status.contains("(batch "),
        "{status}"
    );
    let sql = "SELECT * FROM m ORDER BY id";
    let mirrored = mirror_query(&table, path, "max_staleness '1h', on_stale 'error'", sql);
    let live = mirror_query(&table, path, "max_staleness '0s', on_stale 'live'", sql);
    assert!(live.lines().count() > 10, "{live}");
    assert_eq!(mirrored, live, "the mirror equals the table");
    // EXPLAIN says the mirror answers, with its lag; --stats: no table read.
    let create = format!(
        "CREATE EXTERNAL TABLE m STORED AS DYNAMODB LOCATION '{table}' \
         OPTIONS (mirror '{path}', max_staleness '1h', on_stale 'error');"
    );
    let o = dynamo_sql(
        &[
            "--no-schema-cache",
            "--stats",
            "-c",
            &create,
            "-c",
            "EXPLAIN SELECT count(*) FROM m",
            "-c",
            "SELECT count(*) FROM m",
        ],
        None,
    );
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("MirrorScanExec: table=") && out.contains("lag="),
        "{out}"
    );
    assert!(!out.contains("DynamoExec"), "{out}");
    assert!(
        err.contains("DynamoDB: no request from this process") && !err.contains("scanned"),
        "{err}"
    );
    // An ordinary Delta table: the deltalake package reads the same rows.
    let python = std::env::var("PROJECT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "PROJECT_PYTHON is not set: run scripts/test.sh, or set it to a Python with deltalake"
        )
    });
    let script = "import os, sys, deltalake\n\
                  t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table().sort_by('id').to_pylist()\n\
                  print('\\n'.join(f\"{r['id']}|{r['v']}\" for r in t), flush=True)\n\
                  os._exit(0)\n";
    let read = Command::new(python)
        .args(["-c", script, path])
        .output()
        .expect("python runs");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let from_python = String::from_utf8_lossy(&read.stdout).trim().to_string();
    let expected = mirror_query(
        &table,
        path,
        "max_staleness '0s', on_stale 'live'",
        "SELECT id, v FROM m ORDER BY id",
    )
    .lines()
    .skip(1)
    .map(|l| l.replace(',', "|"))
    .collect::<Vec<_>>()
    .join("\n");
    assert_eq!(from_python, expected, "deltalake reads the table's rows");
}

/// A load stopped with Ctrl-C (SIGINT) says how many items it wrote; the
/// table holds at least those (writes in flight may have landed too) and
/// fewer than the whole load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_load_says_how_many_items_were_written() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliLoad");
    TableSpec::new(&table, "id", ScalarAttributeType::N)
        .create(&client)
        .await
        .expect("create");
    // Every answer held 100 ms, two writes in flight: 2,000 items take
    // ten seconds; the interrupt comes after two.
    let proxy = slow_proxy(100).await;
    let sql = format!(
        "CREATE EXTERNAL TABLE w (id BIGINT NOT NULL, v VARCHAR) STORED AS DYNAMODB LOCATION '{table}'; \
         SET dynamodb.max_concurrency = 2; \
         INSERT INTO w SELECT value, 'x' FROM generate_series(1, 2000);"
    );
    let child = dynamo_sql_command(&proxy.endpoint(), &["-c", &sql])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dynamo-sql");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("dynamo-sql exits");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let reported: u64 = stderr
        .split("Statement cancelled: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of items written: {stderr}"));
    let stored = client
        .scan()
        .table_name(&table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("count")
        .count() as u64;
    assert!(reported > 0, "{stderr}");
    assert!(
        stored >= reported && stored < 2000,
        "{stored} stored, {reported} reported: {stderr}"
    );
}

/// A write's EXPLAIN shows its requests and estimate with the price, and
/// `--stats` what it wrote and consumed; the table holds what it says.
#[tokio::test]
async fn a_writes_explain_and_stats_say_what_it_costs_and_did() {
    let client = dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = unique_name("CliWrite");
    TableSpec::new(&table, "id", ScalarAttributeType::N)
        .create(&client)
        .await
        .expect("create");
    let declare = format!(
        "CREATE EXTERNAL TABLE w (id BIGINT NOT NULL, v VARCHAR) STORED AS DYNAMODB LOCATION '{table}'"
    );
    let insert = "INSERT INTO w VALUES (1, 'a'), (2, 'b'), (3, 'c')";
    let o = dynamo_sql(
        &[
            "--stats",
            "--format",
            "csv",
            "-c",
            &declare,
            "-c",
            &format!("EXPLAIN {insert}"),
            "-c",
            insert,
            "-c",
            "UPDATE w SET v = 'z' WHERE id = 2",
        ],
        None,
    );
    let out = ok_ref(&o);
    assert!(
        out.contains("DynamoWriteExec: INSERT table=")
            && out.contains("estimated_items=3, estimated_wcu=3 (~$"),
        "{out}"
    );
    assert!(
        out.contains("count\n3\n") && out.contains("count\n1\n"),
        "{out}"
    );
    let err = stderr(&o);
    assert!(
        err.contains("DynamoDB writes: 3 items written, 0 skipped (changed since read), 3 requests (0 retries), 3.0 WCU"),
        "{err}"
    );
    assert!(
        err.contains("DynamoDB writes: 1 item written, 0 skipped (changed since read), 1 request (0 retries), 1.0 WCU"),
        "{err}"
    );
    let item = client
        .get_item()
        .table_name(&table)
        .key("id", AV::N("2".into()))
        .send()
        .await
        .expect("get")
        .item()
        .cloned()
        .expect("item 2");
    assert_eq!(item["v"], AV::S("z".into()));
}
