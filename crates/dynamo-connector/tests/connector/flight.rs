//! Arrow Flight SQL through a client nobody here wrote — the ADBC Flight SQL
//! driver, run by the project's Python (pinned in `python/requirements.txt`)
//! as a process — against the HTTP path's answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, local_client_as};
use serde_json::{Value, json};

use crate::fixture::*;

/// The HTTP `sql` answer as rows of values in column order.
fn http_rows(addr: &str, token: &str, sql: &str) -> Value {
    let body = json!({"inputs": {"operation": "sql", "sql": sql}}).to_string();
    let (status, text) = post_connector(addr, Some(token), body.as_bytes());
    assert_eq!(status, 200, "{sql}: {text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let columns: Vec<&str> = v["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    let rows: Vec<Value> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| Value::Array(columns.iter().map(|c| item[*c].clone()).collect()))
        .collect();
    json!({"columns": columns, "rows": rows})
}

/// The ADBC example of `docs/connector.md`, run as written but for the
/// server's address and the session token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_adbc_example_runs_as_written() {
    let f = fixture().await;
    let (mut server, _, flight_addr) = start_both(&f);
    let page = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/connector.md"),
    )
    .expect("docs/connector.md");
    let block = page
        .split_once("<!-- flight-example -->\n```python\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(code, _)| code)
        .expect("the page has the example");
    assert!(block.contains("grpc://127.0.0.1:50060") && block.contains("Bearer dcs_…"));
    let code = block
        .replace("grpc://127.0.0.1:50060", &format!("grpc://{flight_addr}"))
        .replace("Bearer dcs_…", &format!("Bearer {}", f.acme_session));
    let out = Command::new(python())
        .args(["-c", &code])
        .output()
        .expect("the example runs");
    let _ = server.kill();
    let _ = server.wait();
    let printed = text(&out);
    assert!(out.status.success(), "the example failed:\n{printed}");
    // The user's count, then the session's tables.
    assert!(
        printed.contains("userId") && printed.contains("123456"),
        "{printed}"
    );
    assert!(printed.contains("UserEngagement"), "{printed}");
}

// Multi-threaded: the client process runs while the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_over_flight_sql_answers_as_http_and_keeps_tenants_apart() {
    let f = fixture().await;
    // A table only Acme has.
    let acme = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = dynamo_testkit::delete_table(&acme, "AcmeOnly").await;
    TableSpec::new("AcmeOnly", "id", T::S)
        .create_with(
            &acme,
            vec![HashMap::from([("id".to_string(), AV::S("a".into()))])],
        )
        .await
        .expect("AcmeOnly");
    // A BI user of Acme who logs in with a password.
    let password = "a long enough password";
    let o = admin(
        &f,
        &["user", "set", "acme", "bi-user"],
        Some(&format!("{password}\n")),
    );
    assert!(o.status.success(), "{}", text(&o));
    let (mut server, http_addr, flight_addr) = start_both(&f);
    let copy_target = f._dir.path().join("flight-copy.csv");
    let queries = [
        "SELECT userId, count(*) AS n, CAST(sum(engagementScore) AS BIGINT) AS total \
         FROM UserEngagement GROUP BY userId ORDER BY userId",
        "SELECT userId, eventTime, CAST(engagementScore AS BIGINT) AS score \
         FROM UserEngagement WHERE userId = '123456' ORDER BY eventTime",
        "SELECT count(*) AS n FROM UserEngagement WHERE engagementScore > 50",
    ];
    let spec = json!({
        "sessions": {"acme": f.acme_session, "globex": f.globex_session},
        "queries": queries,
        "bad_token": "not-a-session",
        "errors": [
            [f.acme_session, "SELECT * FROM NoSuchTable"],
            [f.acme_session, "DROP TABLE UserEngagement"],
            [f.globex_session, "SELECT * FROM AcmeOnly"],
            // Hostile statements: no server file is read or written, no
            // other host reached, a statement too deep to plan refused.
            [f.acme_session, format!("COPY (SELECT 1) TO '{}'", copy_target.display())],
            [f.acme_session, "SELECT * FROM '/etc/passwd'".to_string()],
            [f.acme_session, "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string()],
            [f.acme_session, "CREATE EXTERNAL TABLE far STORED AS DYNAMODB LOCATION 'UserEngagement' OPTIONS ('endpoint_url' 'http://192.0.2.1:8000')".to_string()],
            [f.acme_session, format!("SELECT 1{}", " + 1".repeat(5_000))],
        ],
        // Metadata filters with patterns and quoted names: never another
        // tenant's table (Globex has no AcmeOnly, whatever the pattern).
        "patterns": [
            [null, null, "%"],
            [null, null, "Acme%"],
            [null, null, "AcmeOnly"],
            [null, null, "%\"%"],
            [null, null, "\"AcmeOnly\""],
            ["%", "%", "%Only"],
            ["datafusion", "public", "_cmeOnly"],
            [null, null, "%' OR '1'='1"],
        ],
        "logins": [
            ["bi-user", password, queries[2]],
            ["bi-user", "not the password", queries[2]],
            ["nobody", password, queries[2]],
        ],
    });
    let (got, printed) = adbc_script("adbc_client.py", &flight_addr, &[&spec.to_string()]);

    for (name, token) in [("acme", &f.acme_session), ("globex", &f.globex_session)] {
        let session = &got["sessions"][name];
        for (i, sql) in queries.iter().enumerate() {
            let want = http_rows(&http_addr, token, sql);
            assert!(
                !want["rows"].as_array().expect("rows").is_empty(),
                "{sql}: the test needs rows"
            );
            assert_eq!(session["queries"][i], want, "{name}: {sql}");
        }
    }
    // Each session lists its own tables, and only those.
    let listed = |name: &str| got["sessions"][name]["tables"].clone();
    let table = |t: &str| json!(["datafusion", "public", t, "TABLE"]);
    assert_eq!(
        listed("acme"),
        json!([table("AcmeOnly"), table("UserEngagement")])
    );
    assert_eq!(listed("globex"), json!([table("UserEngagement")]));
    let matched = |name: &str, i: usize| got["sessions"][name]["patterns"][i].clone();
    for i in 0..8 {
        let acme = matched("acme", i);
        let globex = matched("globex", i);
        assert!(
            !globex.to_string().contains("AcmeOnly"),
            "pattern {i}: {globex}"
        );
        for (name, seen) in [("acme", &acme), ("globex", &globex)] {
            for t in seen.as_array().expect("tables") {
                assert!(
                    listed(name).as_array().expect("tables").contains(t),
                    "pattern {i} of {name} matched {t}, not one of its tables"
                );
            }
        }
    }
    assert_eq!(matched("acme", 1), json!([table("AcmeOnly")]));
    assert_eq!(matched("acme", 6), json!([table("AcmeOnly")]));
    assert_eq!(matched("acme", 7), json!([]));

    let status = |v: &Value| v["status"].as_str().unwrap_or_default().to_string();
    assert!(
        status(&got["bad_token"]).contains("UNAUTHENTICATED"),
        "{}",
        got["bad_token"]
    );
    assert!(
        got["bad_token"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unauthenticated")
    );
    let errors = got["errors"].as_array().expect("errors");
    assert!(status(&errors[0]).contains("NOT_FOUND"), "{}", errors[0]);
    assert!(
        status(&errors[1]).contains("INVALID_ARGUMENT"),
        "{}",
        errors[1]
    );
    assert!(
        status(&errors[2]).contains("NOT_FOUND"),
        "Globex cannot read Acme's table: {}",
        errors[2]
    );
    for (i, code, says) in [
        (3, "INVALID_ARGUMENT", "DML not supported: COPY"),
        (
            4,
            "NOT_FOUND",
            "table 'datafusion.public./etc/passwd' not found",
        ),
        (
            5,
            "INVALID_ARGUMENT",
            "DDL not supported: CreateExternalTable",
        ),
        (
            6,
            "INVALID_ARGUMENT",
            "DDL not supported: CreateExternalTable",
        ),
        (7, "INVALID_ARGUMENT", "statement too complex"),
    ] {
        assert!(status(&errors[i]).contains(code), "{}", errors[i]);
        assert!(
            errors[i]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{}",
            errors[i]
        );
    }
    assert!(!copy_target.exists(), "COPY wrote a file on the server");

    // A user name and password log in (Basic authentication at the
    // handshake) as Acme, and answer as Acme's session does; a wrong
    // password or an unknown user is refused alike.
    let logins = got["logins"].as_array().expect("logins");
    assert_eq!(logins[0]["status"], "ok", "{}", logins[0]);
    assert_eq!(
        logins[0]["result"],
        http_rows(&http_addr, &f.acme_session, queries[2])
    );
    for refused in &logins[1..] {
        assert!(status(refused).contains("UNAUTHENTICATED"), "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains("unknown user or wrong password"),
            "{refused}"
        );
    }

    // Each statement streamed over Flight SQL is counted (when its stream
    // ends) as the HTTP requests are: 3 queries for each of 2 sessions, and
    // the logged-in user's.
    let flight_ok = "dynamo_connector_requests_total{operation=\"flight_sql\",code=\"ok\"} 7";
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, body) = http(&http_addr, "GET", "/metrics", None, b"");
        assert_eq!(status, 200, "{body}");
        if body.contains(flight_ok) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(metrics.contains(flight_ok), "{metrics}");
    // So is each statement that failed while ADBC prepared it (it never ran):
    // three missing tables (one a file path), a write and four hostile
    // statements, and the bad token's statement.
    for (code, n) in [
        ("table_not_found", 3),
        ("invalid_request", 5),
        ("unauthenticated", 1),
    ] {
        let line = format!(
            "dynamo_connector_requests_total{{operation=\"flight_sql\",code=\"{code}\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // ... in the usage ledger, per client, as HTTP's failed sql is ...
    assert!(stop_gracefully(&mut server).success());
    let served = server.wait_with_output().expect("server output");
    let o = admin(&f, &["usage", "--format", "json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<Value> = serde_json::from_slice(&o.stdout).expect("usage JSON");
    let errors = |client: &str| {
        let mut sum: HashMap<String, u64> = HashMap::new();
        for row in rows.iter().filter(|r| r["clientId"] == client) {
            for (code, n) in row["errors"].as_object().expect("errors") {
                *sum.entry(code.clone()).or_default() += n.as_u64().expect("count");
            }
        }
        sum
    };
    let counted = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect::<HashMap<_, _>>()
    };
    assert_eq!(
        errors("acme"),
        counted(&[("table_not_found", 2), ("invalid_request", 5)])
    );
    assert_eq!(errors("globex"), counted(&[("table_not_found", 1)]));
    // ... and in the server's log.
    let log = text(&served);
    assert!(log.contains("NoSuchTable"), "{log}");
    assert_no_secret(&f, &printed);
    assert_no_secret(&f, &text(&served));
    assert!(!text(&served).contains(password), "a password was logged");
}
