//! Sessions, tenants, encrypted credentials, key rotation, the client cache.

use serde_json::json;

use crate::fixture::*;

#[tokio::test]
async fn the_seed_example_through_run() {
    let f = fixture().await;
    let (ok, v, all) = run(&f, &f.acme_session, &seed_request().to_string());
    assert!(ok, "{all}");
    assert_eq!(v["count"], 2);
    assert_eq!(
        v["scannedCount"], 3,
        "the key condition read only user 123456"
    );
    assert!(
        v["consumedCapacity"].as_f64().is_some_and(|c| c > 0.0),
        "{v}"
    );
    assert!(v["nextToken"].is_null());
    let scores: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["engagementScore"]["N"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(scores, vec!["80", "51"]);
    assert_eq!(v["items"][0]["big"]["N"], BIG, "a 38-digit number survives");
    assert_no_secret(&f, &all);
}

#[tokio::test]
async fn tampered_or_swapped_ciphertexts_are_unreadable() {
    let f = fixture().await;
    let req = seed_request().to_string();
    // Swap: globex's row gets acme's nonce and ciphertext (valid under the same key).
    store_db(&f)
        .execute(
            "UPDATE credentials SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM credentials WHERE client_id = 'acme') \
             WHERE client_id = 'globex'",
            [],
        )
        .expect("swap");
    let (ok, v, all) = run(&f, &f.globex_session, &req);
    assert!(
        !ok && code(&v) == "credentials_unreadable",
        "a ciphertext moved to another client must not decrypt: {all}"
    );
    assert_no_secret(&f, &all);
    // Tamper: flip the first byte of acme's ciphertext.
    let db = store_db(&f);
    let mut ciphertext: Vec<u8> = db
        .query_row(
            "SELECT ciphertext FROM credentials WHERE client_id = 'acme'",
            [],
            |r| r.get(0),
        )
        .expect("read");
    ciphertext[0] ^= 1;
    db.execute(
        "UPDATE credentials SET ciphertext = ?1 WHERE client_id = 'acme'",
        [ciphertext],
    )
    .expect("tamper");
    let (ok, v, all) = run(&f, &f.acme_session, &req);
    assert!(!ok && code(&v) == "credentials_unreadable", "{all}");
}

#[tokio::test]
async fn tenants_see_only_their_own_data() {
    let f = fixture().await;
    let req = seed_request().to_string();
    let (_, a, _) = run(&f, &f.acme_session, &req);
    let (_, b, _) = run(&f, &f.globex_session, &req);
    assert_eq!(a["count"], 2);
    assert_eq!(b["count"], 1);
    assert_eq!(b["items"][0]["engagementScore"]["N"], "99");
    let sql = json!({"inputs": {"operation": "sql", "sql": "SELECT count(*) AS n, max(engagementScore) AS top FROM UserEngagement"}}).to_string();
    let (ok, a, all) = run(&f, &f.acme_session, &sql);
    assert!(ok, "{all}");
    assert_eq!(
        (a["items"][0]["n"].clone(), a["items"][0]["top"].clone()),
        (json!(4), json!(90))
    );
    let (_, b, _) = run(&f, &f.globex_session, &sql);
    assert_eq!(
        (b["items"][0]["n"].clone(), b["items"][0]["top"].clone()),
        (json!(1), json!(99))
    );
}

#[tokio::test]
async fn key_rotation_keeps_credentials_readable_only_with_the_new_key() {
    let f = fixture().await;
    let new_file = f._dir.path().join("new.key");
    let new_secret = new_key(&new_file);
    let o = admin(
        &f,
        &[
            "rotate-key",
            "--new-key-file",
            new_file.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&new_secret));
    let req = seed_request().to_string();
    let (ok, v, all) = run_with_key(&f, &new_file, &f.acme_session, &req);
    assert!(ok && v["count"] == 2, "{all}");
    let (ok, v, _) = run_with_key(&f, &new_file, &f.globex_session, &req);
    assert!(ok && v["count"] == 1);
    let (ok, v, _) = run(&f, &f.acme_session, &req);
    assert!(
        !ok && code(&v) == "credentials_unreadable",
        "the old key no longer opens them"
    );
}

#[tokio::test]
async fn cached_clients_follow_credential_changes() {
    use dynamo_connector::{Connector, MasterKey, MasterKeyCipher, SqliteStore, TenantResolver};
    use std::sync::Arc;
    let f = fixture().await;
    let key = MasterKey::load(Some(&f.key_file)).expect("key");
    let store = Arc::new(SqliteStore::open(&f.store).expect("store"));
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key.clone())),
    );
    let connector = Connector::new(Arc::new(resolver));
    let req = seed_request().to_string();
    let first = connector
        .handle(Some(&f.acme_session), req.as_bytes())
        .await
        .expect("works");
    assert_eq!(first["count"], 2);
    // Same process, same cache: new credentials must take effect at once.
    let rejected = dynamo_connector::Credentials::from_json(
        br#"{"accessKeyId":"not_valid!","secretAccessKey":"x"}"#,
    )
    .expect("creds");
    store.set_credentials(&key, "acme", &rejected).expect("set");
    let err = connector
        .handle(Some(&f.acme_session), req.as_bytes())
        .await
        .expect_err("stale client reused");
    assert_eq!(err.code.as_str(), "access_denied");
}
