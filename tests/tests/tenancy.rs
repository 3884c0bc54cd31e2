//! Tenant isolation, authentication and scopes.

use chat3_sdk::Scope;
use chat3_tests::fixtures::{dialog_of, text, user};
use chat3_tests::TestApi;
use serde_json::json;

#[tokio::test]
async fn one_tenant_cannot_read_or_write_another_tenants_data() {
    let api = TestApi::start("iso").await;
    let (_ta, a) = api.tenant("tnta").await;
    let (tb, b) = api.tenant("tntb").await;
    let d = b
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    b.send_message(&d.dialog_id, &text("alice", "secret"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Reads of B's dialog, messages, inbox and updates through A's key see nothing.
    let e = a
        .get_dialog(&d.dialog_id)
        .await
        .err()
        .unwrap_or_else(|| panic!("A read B's dialog"));
    assert_eq!(
        (e.status(), e.code()),
        (Some(404), Some("dialog_not_found"))
    );
    let e = a
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .err()
        .unwrap_or_else(|| panic!("A listed B's messages"));
    assert_eq!(e.status(), Some(404));
    assert!(a
        .list_dialogs(1, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .data
        .is_empty());
    // B's alice is not a user of A: her views through A's key are 404, not B's data.
    let e = a
        .user_dialogs(&user("alice"), 1, 100)
        .await
        .err()
        .unwrap_or_else(|| panic!("A read the inbox of B's user"));
    assert_eq!(e.status(), Some(404));
    let e = a
        .user_updates(&user("alice"), 0, 100)
        .await
        .err()
        .unwrap_or_else(|| panic!("A read the feed of B's user"));
    assert_eq!(e.status(), Some(404));

    // Writes into B's dialog through A's key fail and change nothing.
    let e = a
        .send_message(&d.dialog_id, &text("alice", "intrusion"))
        .await
        .err()
        .unwrap_or_else(|| panic!("A wrote into B's dialog"));
    assert_eq!(e.status(), Some(404));
    let e = a
        .mark_all_read(&user("bob"), &d.dialog_id)
        .await
        .err()
        .unwrap_or_else(|| panic!("A marked B's dialog read"));
    assert_eq!(e.status(), Some(404));
    let msgs = b
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(msgs.data.len(), 1);
    let bob = b
        .user_dialogs(&user("bob"), 1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bob.data[0].unread_count, 1);

    // X-Tenant-ID cannot switch A's key to B.
    let switched = a.clone().with_tenant(tb.as_str());
    let e = switched
        .get_dialog(&d.dialog_id)
        .await
        .err()
        .unwrap_or_else(|| panic!("switched"));
    assert_eq!((e.status(), e.code()), (Some(403), Some("tenant_mismatch")));
    api.stop().await;
}

#[tokio::test]
async fn unknown_and_revoked_keys_get_401_and_missing_scope_gets_403() {
    let api = TestApi::start("auth").await;
    let (tenant, key_client) = api.tenant("tnt").await;

    let none = api
        .anonymous()
        .raw("GET", "/api/dialogs", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(none.status, 401);
    assert_eq!(
        none.body,
        json!({"error": "Unauthorized", "message": "send your API key in the X-API-Key header", "code": "missing_api_key"})
    );
    let wrong = chat3_sdk::client::Client::new(&api.url, "c3k_wrong");
    let e = wrong
        .list_dialogs(1, 10)
        .await
        .err()
        .unwrap_or_else(|| panic!("wrong key accepted"));
    assert_eq!((e.status(), e.code()), (Some(401), Some("invalid_api_key")));

    // Revocation takes effect within the key cache TTL (1 s in tests).
    let admin = api.admin();
    let keys = admin
        .list_api_keys(&tenant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys.len(), 1);
    key_client
        .list_dialogs(1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    admin
        .revoke_api_key(&tenant, &keys[0].key_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    chat3_tests::eventually(std::time::Duration::from_secs(5), "revocation", || {
        let c = key_client.clone();
        async move { (c.list_dialogs(1, 10).await.err()?.status() == Some(401)).then_some(()) }
    })
    .await;

    // A read-only key can read but not write.
    let (_, reader) = api.tenant_with_scopes("ro", Some(vec![Scope::Read])).await;
    reader
        .list_dialogs(1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = reader
        .create_dialog(&dialog_of(&["a"]))
        .await
        .err()
        .unwrap_or_else(|| panic!("wrote"));
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some("insufficient_scope"))
    );

    // Tenant keys cannot manage tenants.
    let e = reader
        .list_tenants(1, 10)
        .await
        .err()
        .unwrap_or_else(|| panic!("listed tenants"));
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some("operator_required"))
    );
    api.stop().await;
}

#[tokio::test]
async fn the_operator_key_acts_on_a_tenant_named_by_x_tenant_id() {
    let api = TestApi::start("op").await;
    let (tenant, client) = api.tenant("tnt").await;
    let d = client
        .create_dialog(&dialog_of(&["alice"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let as_operator = api.admin().with_tenant(tenant.as_str());
    let got = as_operator
        .get_dialog(&d.dialog_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.dialog_id, d.dialog_id);
    let e = api
        .admin()
        .get_dialog(&d.dialog_id)
        .await
        .err()
        .unwrap_or_else(|| panic!("no tenant"));
    assert_eq!((e.status(), e.code()), (Some(400), Some("tenant_required")));
    // Naming a tenant that does not exist is refused rather than creating orphan data.
    let ghost = api.admin().with_tenant("no-such-tenant");
    let e = ghost
        .create_dialog(&dialog_of(&["alice"]))
        .await
        .err()
        .unwrap_or_else(|| panic!("wrote into a missing tenant"));
    assert_eq!(
        (e.status(), e.code()),
        (Some(404), Some("tenant_not_found"))
    );
    api.stop().await;
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let mongo = chat3_core::testing::mongo_args("rate");
    let amqp = chat3_core::testing::amqp_args("rate");
    let mut config = chat3_tests::api_config(&mongo, &amqp);
    config.rate_limit_per_second = 1;
    config.rate_limit_burst = 3;
    let api = TestApi::start_config(config).await;
    let (_, c) = api.tenant("tnt").await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = c
            .raw("GET", "/api/dialogs", None, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        seen.push((
            r.status,
            r.header("x-ratelimit-remaining").map(str::to_owned),
        ));
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
            assert_eq!(r.body["code"], "rate_limited");
        }
    }
    assert_eq!(
        seen,
        vec![
            (200, Some("2".to_owned())),
            (200, Some("1".to_owned())),
            (200, Some("0".to_owned())),
            (429, Some("0".to_owned())),
        ]
    );
    api.stop().await;
}
