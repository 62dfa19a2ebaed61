//! Hostile input to `serve`: statements too deep to plan, and callers that
//! keep failing to authenticate (the rows of docs/reliability.md's catalogue
//! run in `catalogue.rs`).

use serde_json::{Value, json};

use crate::fixture::*;

/// A statement at the operator limit
/// plans within a server thread's stack and answers; past the limit it is
/// refused before it is parsed (a chain of 200,000 operators used to abort
/// the whole server with a stack overflow); the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_at_the_operator_limit_answer_and_the_server_survives_longer_ones() {
    let f = fixture().await;
    let (mut child, addr) = start_server(&f);
    let post = |sql: &str| {
        let body = json!({"inputs": {"operation": "sql", "sql": sql}}).to_string();
        post_connector(&addr, Some(&f.acme_session), body.as_bytes())
    };
    let limit = dynamo_datafusion::statement::MAX_OPERATORS;
    // The deepest chain the limit allows.
    let (status, body) = post(&format!("SELECT 1{} AS n", " + 1".repeat(limit)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{}", limit + 1)), "{body}");
    // An OR chain of keys at the limit (each term holds `=` and `OR`).
    let terms: Vec<String> = (0..limit / 2)
        .map(|i| format!("\"userId\" = '{i}'"))
        .collect();
    let (status, body) = post(&format!(
        "SELECT count(*) AS n FROM UserEngagement WHERE {}",
        terms.join(" OR ")
    ));
    assert_eq!(status, 200, "{body}");
    for long in [
        format!("SELECT 1{}", " + 1".repeat(200_000)),
        format!("SELECT 1{}", " OR true".repeat(limit + 1)),
    ] {
        let (status, body) = post(&long);
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("statement too complex"), "{body}");
    }
    let (status, body) = post("SELECT 1 AS n");
    assert_eq!(status, 200, "the server still answers: {body}");
    let _ = child.kill();
    let _ = child.wait();
}

/// An address that keeps sending bad tokens is refused (HTTP 429 /
/// RESOURCE_EXHAUSTED `too_many_attempts`, with Retry-After) without its
/// token being checked, over HTTP and Flight SQL alike (one count per
/// address); its good tokens too until the window ends; health checks and
/// other addresses are not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_failing_to_authenticate_is_refused_for_a_while() {
    let f = fixture().await;
    let (mut child, http_addr, flight_addr) =
        start_both_with(&f, &["--auth-failures", "3", "--auth-window-secs", "60"]);
    let seed = seed_request().to_string();
    let post = |token: &str| post_connector(&http_addr, Some(token), seed.as_bytes());
    // Failures over Flight SQL and HTTP count together: one ADBC attempt
    // (the driver makes one or two calls before it gives up), then HTTP
    // answers 401 only for what is left of the three.
    let flight = |calls: Value| -> Value {
        adbc_script("adbc_failures.py", &flight_addr, &[&calls.to_string()]).0
    };
    let got = flight(json!([["dcs_guessed-token", "SELECT 1"]]));
    assert_eq!(got[0]["status"], "UNAUTHENTICATED", "{got:?}");
    let mut unauthorized = 0;
    loop {
        let (status, body) = post("dcs_guessed-token");
        match status {
            401 => unauthorized += 1,
            429 => break,
            other => panic!("HTTP {other}: {body}"),
        }
        assert!(unauthorized <= 2, "more than three failures were answered");
    }
    assert!(
        unauthorized >= 1,
        "Flight's failures alone used up the three"
    );

    // Now every request of the address is refused, good token or not.
    let (status, head, body) = http_full(
        &http_addr,
        "POST",
        "/v1/connectors/dynamo",
        Some(&f.acme_session),
        seed.as_bytes(),
    );
    assert_eq!(status, 429, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(code(&v), "too_many_attempts", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many failed authentications from this address (3 within 60 s)"),
        "{v}"
    );
    assert!(head.contains("retry-after:"), "{head}");
    let got = flight(json!([
        [f.acme_session, "SELECT count(*) FROM UserEngagement"],
        ["dcs_guessed-token", "SELECT 1"]
    ]));
    for refused in got.as_array().expect("answers") {
        // The driver reports the server's RESOURCE_EXHAUSTED in its message.
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("too_many_attempts") && message.contains("ResourceExhausted"),
            "{got:?}"
        );
    }
    let (status, _) = http(&http_addr, "GET", "/healthz", None, b"");
    assert_eq!(status, 200, "health checks are not gated");

    // Another server (another count) answers the same good token.
    let (mut other, other_addr) = start_server(&f);
    let (status, body) = post_connector(&other_addr, Some(&f.acme_session), seed.as_bytes());
    assert_eq!(status, 200, "{body}");
    for c in [&mut child, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
}
