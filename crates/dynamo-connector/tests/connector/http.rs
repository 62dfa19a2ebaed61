//! `dynamo-connector serve`: HTTP codes, body limit, shutdown, hang-ups.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{
    Fault, FaultConfig, FaultProxy, TableSpec, local_client_as, local_endpoint, put_items,
};
use serde_json::{Value, json};

use crate::fixture::*;

#[tokio::test]
async fn the_seed_example_through_serve() {
    let f = fixture().await;
    let (mut server, addr) = start_server(&f);
    let req = seed_request().to_string();
    let (status, body) = post_connector(&addr, Some(&f.acme_session), req.as_bytes());
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["count"], 2);
    assert_eq!(v["items"][0]["big"]["N"], BIG);
    for (token, body, wanted_status, wanted_code) in [
        (None, req.clone(), 401, "unauthenticated"),
        (Some("forged"), req.clone(), 401, "unauthenticated"),
        (
            Some(f.acme_session.as_str()),
            "[1, 2]".to_string(),
            400,
            "invalid_request",
        ),
        (
            Some(f.acme_session.as_str()),
            json!({"inputs": {"tableName": "NoSuchTable", "operation": "scan"}}).to_string(),
            404,
            "table_not_found",
        ),
    ] {
        let (status, text) = post_connector(&addr, token, body.as_bytes());
        assert_eq!(status, wanted_status, "{text}");
        let v: Value = serde_json::from_str(&text).expect("error JSON");
        assert_eq!(code(&v), wanted_code);
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = post_connector(&addr, Some(&f.acme_session), &huge);
    assert_eq!(status, 413, "request body limit");

    // Graceful shutdown on SIGTERM; then nothing it logged holds a secret.
    let status = stop_gracefully(&mut server);
    assert!(status.success(), "graceful exit");
    let mut logs = String::new();
    if let Some(mut e) = server.stderr.take() {
        let _ = e.read_to_string(&mut logs);
    }
    assert!(
        logs.contains("client 'acme'"),
        "debug logs were captured: {logs}"
    );
    assert_no_secret(&f, &logs);
}

// Multi-threaded: the proxy serves while this thread waits on sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_http_client_stops_the_read() {
    let f = fixture().await;
    // A table of five 1 MB pages in acme's database.
    let acme_key = f.secrets[1].clone();
    let client = local_client_as(&acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    TableSpec::new("Wide", "id", T::S)
        .create(&client)
        .await
        .expect("create");
    let pad = "x".repeat(30_000);
    let items = (0..150)
        .map(|i| {
            HashMap::from([
                ("id".to_string(), AV::S(format!("i{i}"))),
                ("pad".to_string(), AV::S(pad.clone())),
            ])
        })
        .collect();
    put_items(&client, "Wide", items).await.expect("put");
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig {
            slow_delay: Duration::from_millis(600),
            ..FaultConfig::only(Fault::Slow, 1.0)
        },
    )
    .await
    .expect("proxy");
    set_endpoint(&f, "acme", &proxy.endpoint());
    let (mut child, addr) = start_server(&f);
    let body = json!({"inputs": {"tableName": "Wide", "operation": "scan"}}).to_string();

    // A client that waits reads every page.
    let before = proxy.counts().requests;
    let (status, _) = post_connector(&addr, Some(&f.acme_session), body.as_bytes());
    assert_eq!(status, 200);
    let full = proxy.counts().requests - before;
    assert!(full >= 4, "a full read takes {full} requests");

    // A client that hangs up during the first page.
    let before = proxy.counts().requests;
    {
        let mut s = TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "POST /v1/connectors/dynamo HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            f.acme_session,
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body.as_bytes()).expect("write");
        // Hang up once the read has begun (its first request reached DynamoDB).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while proxy.counts().requests == before {
            assert!(std::time::Instant::now() < deadline, "the read never began");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // Then count until no request has come for a second (20 s at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seen = proxy.counts().requests;
    loop {
        std::thread::sleep(Duration::from_millis(1_000));
        let now = proxy.counts().requests;
        if now == seen || std::time::Instant::now() > deadline {
            break;
        }
        seen = now;
    }
    let after_close = proxy.counts().requests - before;
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("full read: {full} requests; after a hang-up: {after_close}");
    assert!(
        after_close <= 2,
        "{after_close} requests after the client hung up (a full read is {full})"
    );
}
