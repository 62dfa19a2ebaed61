//! The bad-input catalogue: every connector row of `docs/reliability.md`, run for real.

use dynamo_testkit::{Fault, FaultConfig, FaultProxy, local_endpoint};
use serde_json::{Value, json};

use crate::fixture::*;

/// What a catalogue case changes before its request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// Acme as the fixture made it.
    Acme,
    /// No session token.
    NoSession,
    /// A token the store never issued.
    UnknownSession,
    /// A session that expired.
    ExpiredSession,
    /// A client with no DynamoDB service configured.
    NoService,
    /// A client with a service but no stored credentials.
    NoCredentials,
    /// Credentials DynamoDB does not recognise.
    RejectedCredentials,
    /// Another master key than the one the credentials were encrypted with.
    WrongMasterKey,
    /// Acme's endpoint behind the fault proxy, always answering with this fault.
    Fault(Fault),
    /// Acme's endpoint on a port nothing listens on.
    EndpointDown,
    /// Through `serve`, over HTTP.
    Http,
    /// Acme after a read, with a daily quota below what it read.
    OverQuota,
    /// Through `serve --auth-failures 2`, after two requests with bad tokens.
    AfterFailedLogins,
}

struct Case {
    id: &'static str,
    setup: Setup,
    /// The request body; `{seed}` is the seed's example request.
    body: &'static [u8],
    /// `code: text the message contains`, as `docs/reliability.md` shows it.
    error: &'static str,
}

const SEED_QUERY: &[u8] = b"{seed}";

const CASES: &[Case] = &[
    Case {
        id: "conn-malformed-json",
        setup: Setup::Acme,
        body: b"{not json",
        error: "invalid_request: request is not valid JSON: key must be a string at line 1 column 2",
    },
    Case {
        id: "conn-invalid-utf8",
        setup: Setup::Acme,
        body: b"{\"inputs\": {\"tableName\": \"\xff\xfe\"}}",
        error: "invalid_request: request is not valid JSON: invalid unicode code point at line 1 column 27",
    },
    Case {
        id: "conn-misspelt-field",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "scan", "filterExpresion": "x"}}"#,
        error: "invalid_request: unknown field 'inputs.filterExpresion'; did you mean 'filterExpression'?",
    },
    Case {
        id: "conn-unbound-placeholder",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u"}}"#,
        error: "invalid_request: placeholder :u is used in inputs.keyCondition but not defined in inputs.expressionAttributeValues",
    },
    Case {
        id: "conn-bad-dynamodb-json",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u", "expressionAttributeValues": {":u": {"X": "1"}}}}"#,
        error: "invalid_request: expressionAttributeValues[\":u\"].X: unknown DynamoDB type 'X' (use S, N, B, BOOL, NULL, SS, NS, BS, L or M)",
    },
    Case {
        id: "conn-39-digits",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "userId = :u", "filterExpression": "big = :b", "expressionAttributeValues": {":u": {"S": "123456"}, ":b": {"N": "123456789012345678901234567890123456789"}}}}"#,
        error: "invalid_request: expressionAttributeValues[\":b\"].N: '123456789012345678901234567890123456789' is not a DynamoDB number (decimal digits, optional sign, fraction and exponent; at most 38 significant digits)",
    },
    Case {
        id: "conn-bad-expression",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "UserEngagement", "operation": "query", "keyCondition": "engagementScore = :s", "expressionAttributeValues": {":s": {"N": "1"}}}}"#,
        error: "invalid_request: DynamoDB Query on 'UserEngagement' failed: ValidationException: Query condition missed key schema element",
    },
    Case {
        id: "conn-bad-sql",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELEC * FROM UserEngagement"}}"#,
        error: "invalid_request: SQL error: ParserError(\"Expected: an SQL statement, found: SELEC at Line: 1, Column: 1\")",
    },
    Case {
        id: "conn-sql-write",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "DROP TABLE UserEngagement"}}"#,
        error: "invalid_request: Error during planning: DDL not supported: DropTable",
    },
    Case {
        id: "conn-write-not-allowed",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "DELETE FROM \"UserEngagement\" WHERE \"userId\" = '999'"}}"#,
        error: "write_not_allowed: client 'acme' is read-only: INSERT, REPLACE, UPDATE and DELETE need write access (`dynamo-connector admin client writes acme on`)",
    },
    Case {
        id: "conn-table-not-found",
        setup: Setup::Acme,
        body: br#"{"inputs": {"tableName": "NoSuchTable", "operation": "scan"}}"#,
        error: "table_not_found: table 'NoSuchTable' does not exist for this client (ResourceNotFoundException: Cannot do operations on a non-existent table)",
    },
    Case {
        id: "conn-over-capacity",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELECT count(*) FROM UserEngagement"}, "config": {"maxCapacity": 0.1}}"#,
        error: "capacity_exceeded: statement refused before reading: a Scan of table 'UserEngagement' (~4 items) would take about 0.5 RCU",
    },
    Case {
        id: "conn-over-quota",
        setup: Setup::OverQuota,
        body: SEED_QUERY,
        error: "quota_exceeded: client 'acme' has used 0.5 read capacity units of its daily quota of 0.1 on",
    },
    Case {
        id: "conn-no-session",
        setup: Setup::NoSession,
        body: SEED_QUERY,
        error: "unauthenticated: no session: send the header `Authorization: Bearer <session token>` with the request",
    },
    Case {
        id: "conn-unknown-session",
        setup: Setup::UnknownSession,
        body: SEED_QUERY,
        error: "unauthenticated: unknown session: log in again",
    },
    Case {
        id: "conn-expired-session",
        setup: Setup::ExpiredSession,
        body: SEED_QUERY,
        error: "unauthenticated: session expired: log in again",
    },
    Case {
        id: "conn-no-service",
        setup: Setup::NoService,
        body: SEED_QUERY,
        error: "service_not_configured: no DynamoDB service is configured for client 'noservice'",
    },
    Case {
        id: "conn-no-credentials",
        setup: Setup::NoCredentials,
        body: SEED_QUERY,
        error: "credentials_not_found: no DynamoDB credentials are stored for client 'nocreds'",
    },
    Case {
        id: "conn-wrong-credentials",
        setup: Setup::RejectedCredentials,
        body: SEED_QUERY,
        error: "access_denied: DynamoDB Query on 'UserEngagement' failed: UnrecognizedClientException: The Access Key ID or security token is invalid.",
    },
    Case {
        id: "conn-sql-wrong-credentials",
        setup: Setup::RejectedCredentials,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELECT count(*) FROM UserEngagement"}}"#,
        error: "access_denied: DynamoDB ListTables failed: UnrecognizedClientException: The Access Key ID or security token is invalid.",
    },
    Case {
        id: "conn-sql-validation",
        setup: Setup::Acme,
        body: b"{long-key-sql}",
        error: "invalid_request: DynamoDB GetItem on table 'UserEngagement' failed: ValidationException: Hash primary key values must be under 2048 bytes",
    },
    Case {
        id: "conn-undecryptable",
        setup: Setup::WrongMasterKey,
        body: SEED_QUERY,
        error: "credentials_unreadable: stored credentials of client 'acme' cannot be decrypted: the master key is wrong or the stored value was altered",
    },
    Case {
        id: "conn-throttled",
        setup: Setup::Fault(Fault::Throttle),
        body: SEED_QUERY,
        error: "throttled: DynamoDB throttled Query on 'UserEngagement' beyond the retry budget (ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded (injected)); retry later, lower config.maxItems, or raise the table's capacity (gave up after 10 attempts)",
    },
    Case {
        id: "conn-garbage",
        setup: Setup::Fault(Fault::Garbage),
        body: SEED_QUERY,
        error: "dynamodb_error: DynamoDB Query on 'UserEngagement' failed: unreadable answer (HTTP 200): unhandled error: Error at offset 0: unexpected token '<'",
    },
    Case {
        id: "conn-endpoint-down",
        setup: Setup::EndpointDown,
        body: SEED_QUERY,
        error: "dynamodb_error: DynamoDB Query on 'UserEngagement' failed: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111) (gave up after 10 attempts)",
    },
    Case {
        id: "conn-oversized",
        setup: Setup::Http,
        body: b"{big}",
        error: "invalid_request: request body is larger than 1048576 bytes (HTTP 413)",
    },
    Case {
        id: "conn-sql-file-table",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'"}}"#,
        error: "invalid_request: Error during planning: DDL not supported: CreateExternalTable",
    },
    Case {
        id: "conn-sql-file-path",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELECT * FROM '/etc/passwd'"}}"#,
        error: "table_not_found: Error during planning: table 'datafusion.public./etc/passwd' not found",
    },
    Case {
        id: "conn-sql-file-function",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "SELECT * FROM read_csv('/etc/passwd')"}}"#,
        error: "table_not_found: Error during planning: table function 'read_csv' not found",
    },
    Case {
        id: "conn-sql-copy",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "COPY (SELECT 1) TO '/tmp/dynamo-connector-copy.csv'"}}"#,
        error: "invalid_request: Error during planning: DML not supported: COPY",
    },
    Case {
        id: "conn-sql-other-host",
        setup: Setup::Acme,
        body: br#"{"inputs": {"operation": "sql", "sql": "CREATE EXTERNAL TABLE far STORED AS DYNAMODB LOCATION 'UserEngagement' OPTIONS ('endpoint_url' 'http://192.0.2.1:8000')"}}"#,
        error: "invalid_request: Error during planning: DDL not supported: CreateExternalTable",
    },
    Case {
        id: "conn-sql-in-10000",
        setup: Setup::Acme,
        body: b"{in-10000}",
        error: "answer: {\"columns\":[{\"name\":\"count(*)\",\"type\":\"Int64\"}],\"consumedCapacity\":0.5,\"count\":1,\"estimatedCapacity\":0.5,\"items\":[{\"count(*)\":1}]",
    },
    Case {
        id: "conn-sql-deep",
        setup: Setup::Acme,
        body: b"{deep-sql}",
        error: "invalid_request: SQL error: RecursionLimitExceeded (current limit: 50)",
    },
    Case {
        id: "conn-sql-long-expression",
        setup: Setup::Acme,
        body: b"{long-expression}",
        error: "invalid_request: Error during planning: statement too complex: it holds 200000 operators, at most 1000 are accepted in one statement",
    },
    Case {
        id: "conn-deep-json",
        setup: Setup::Acme,
        body: b"{deep-json}",
        error: "invalid_request: request is not valid JSON: recursion limit exceeded at line 1 column 165",
    },
    Case {
        id: "conn-too-many-attempts",
        setup: Setup::AfterFailedLogins,
        body: SEED_QUERY,
        error: "too_many_attempts: too many failed authentications from this address (2 within 60 s): try again in",
    },
];

/// Runs one case: (`code: message`, everything printed).
async fn run_catalogue_case(f: &Fixture, case: &Case) -> (String, String) {
    let seed = seed_request().to_string();
    let body: Vec<u8> = match case.body {
        b"{seed}" => seed.into_bytes(),
        b"{long-key-sql}" => {
            let key = "x".repeat(3_000);
            let sql =
                format!("SELECT * FROM UserEngagement WHERE userId = '{key}' AND eventTime = 1");
            json!({"inputs": {"operation": "sql", "sql": sql}})
                .to_string()
                .into_bytes()
        }
        b"{big}" => {
            let pad = "x".repeat(1_100_000);
            format!(r#"{{"inputs": {{"tableName": "UserEngagement", "operation": "scan", "filterExpression": "{pad}"}}}}"#).into_bytes()
        }
        b"{in-10000}" => {
            let keys: Vec<String> = (0..10_000).map(|i| format!("'{i}'")).collect();
            let sql = format!(
                "SELECT count(*) FROM UserEngagement WHERE userId IN ({})",
                keys.join(", ")
            );
            sql_body(&sql)
        }
        b"{deep-sql}" => sql_body(&format!(
            "SELECT {}1{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        )),
        b"{long-expression}" => sql_body(&format!("SELECT 1{}", " + 1".repeat(200_000))),
        b"{deep-json}" => format!(
            r#"{{"inputs": {{"operation": "sql", "sql": {}"SELECT 1"{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
        other => other.to_vec(),
    };
    let acme = f.acme_session.clone();
    let endpoint = local_endpoint().unwrap_or_else(|e| panic!("{e}"));
    let mut _proxy = None;
    let fresh_client = |name: &str| {
        assert!(admin(f, &["client", "add", name], None).status.success());
        String::from_utf8_lossy(&admin(f, &["session", "issue", name], None).stdout)
            .trim()
            .to_string()
    };
    let (session, key) = match case.setup {
        Setup::Acme => (acme, f.key_file.clone()),
        Setup::NoSession => (String::new(), f.key_file.clone()),
        Setup::UnknownSession => ("dcs_not-a-session".to_string(), f.key_file.clone()),
        Setup::ExpiredSession => {
            // A session of its own client, whose lifetime then runs out.
            let session = fresh_client("expiring");
            store_db(f)
                .execute(
                    "UPDATE sessions SET expires_at = 1 WHERE client_id = 'expiring'",
                    [],
                )
                .expect("age the session");
            (session, f.key_file.clone())
        }
        Setup::NoService => (fresh_client("noservice"), f.key_file.clone()),
        Setup::NoCredentials | Setup::RejectedCredentials => {
            let name = if case.setup == Setup::NoCredentials {
                "nocreds"
            } else {
                "rejected"
            };
            let session = fresh_client(name);
            set_endpoint(f, name, &endpoint);
            if case.setup == Setup::RejectedCredentials {
                let creds =
                    json!({"accessKeyId": "not_a_valid_key!", "secretAccessKey": "x-secret-x"})
                        .to_string();
                assert!(
                    admin(f, &["credentials", "set", name], Some(&creds))
                        .status
                        .success()
                );
            }
            (session, f.key_file.clone())
        }
        Setup::WrongMasterKey => {
            let other = f._dir.path().join("other.key");
            new_key(&other);
            (acme, other)
        }
        Setup::Fault(fault) => {
            let proxy = FaultProxy::start(&endpoint, FaultConfig::only(fault, 1.0))
                .await
                .expect("proxy");
            set_endpoint(f, "acme", &proxy.endpoint());
            _proxy = Some(proxy);
            (acme, f.key_file.clone())
        }
        Setup::EndpointDown => {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            set_endpoint(f, "acme", &format!("http://127.0.0.1:{port}"));
            (acme, f.key_file.clone())
        }
        Setup::OverQuota => {
            let (ok, _, all) = run_bytes(f, &f.key_file, &acme, &body);
            assert!(ok, "{all}");
            let set = admin(f, &["quota", "set", "acme", "--daily-rcu", "0.1"], None);
            assert!(set.status.success(), "{}", text(&set));
            let (_, v, all) = run_bytes(f, &f.key_file, &acme, &body);
            let clear = admin(f, &["quota", "clear", "acme"], None);
            assert!(clear.status.success(), "{}", text(&clear));
            return (error_line(&v), all);
        }
        Setup::AfterFailedLogins => {
            let (mut child, addr) = start_server_with(f, &["--auth-failures", "2"]);
            for _ in 0..2 {
                let (status, text) = post_connector(&addr, Some("dcs_guessed"), &body);
                assert_eq!(status, 401, "{text}");
            }
            // Even Acme's own session, from this address, until the window ends.
            let (status, text) = post_connector(&addr, Some(&acme), &body);
            let _ = child.kill();
            let _ = child.wait();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return (format!("{} (HTTP {status})", error_line(&v)), text);
        }
        Setup::Http => {
            let (mut child, addr) = start_server(f);
            let (status, text) = post_connector(&addr, Some(&acme), &body);
            let _ = child.kill();
            let _ = child.wait();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return (format!("{} (HTTP {status})", error_line(&v)), text);
        }
    };
    let (ok, v, all) = run_bytes(f, &key, &session, &body);
    if let (Setup::Fault(Fault::Throttle), Some(proxy)) = (case.setup, &_proxy) {
        // One request per attempt: the SDK's own retries are off, the Retrier decides.
        assert_eq!(proxy.counts().requests, 10, "{}", case.id);
    }
    if matches!(case.setup, Setup::Fault(_) | Setup::EndpointDown) {
        set_endpoint(f, "acme", &endpoint);
    }
    if ok {
        return (format!("answer: {v}"), all);
    }
    (error_line(&v), all)
}

/// A `sql` request for `sql`.
fn sql_body(sql: &str) -> Vec<u8> {
    json!({"inputs": {"operation": "sql", "sql": sql}})
        .to_string()
        .into_bytes()
}

/// `code: message` of an error answer, as `docs/reliability.md` shows it.
fn error_line(v: &Value) -> String {
    format!(
        "{}: {}",
        code(v),
        v["error"]["message"].as_str().unwrap_or_default()
    )
}

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_of_the_catalogue_gets_its_error() {
    let f = fixture().await;
    let mut wrong = Vec::new();
    for case in CASES {
        let (got, all) = run_catalogue_case(&f, case).await;
        assert_no_secret(&f, &all);
        if !got.contains(case.error) {
            wrong.push(format!(
                "{}:\n  wanted: {}\n  got:    {got}",
                case.id, case.error
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_documented_catalogue_matches_the_cases() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/reliability.md"
    ))
    .expect("docs/reliability.md");
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let id = cells.get(1)?.trim_matches('`');
            if !id.starts_with("conn-") {
                return None;
            }
            let error = cells.get(cells.len().checked_sub(2)?)?;
            Some((id.to_string(), error.trim_matches('`').trim().to_string()))
        })
        .collect();
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
