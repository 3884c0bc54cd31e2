//! `X-Idempotency-Key`: retries replay the first response; a reused key with another body is 422.

use chat3_tests::TestApi;
use serde_json::json;

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_replays_the_first_response() {
    let api = TestApi::start("idem").await;
    let (_, c) = api.tenant("tnt").await;
    let body = json!({"members": [{"userId": "alice"}, {"userId": "bob"}]});
    let key = [("X-Idempotency-Key", "create-dialog-1")];
    let first = c
        .raw("POST", "/api/dialogs", Some(&body), &key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let retry = c
        .raw("POST", "/api/dialogs", Some(&body), &key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.status, retry.status), (201, 201));
    assert_eq!(first.body, retry.body);
    assert_eq!(retry.header("idempotency-replayed"), Some("true"));
    assert_eq!(first.header("idempotency-replayed"), None);
    let dialogs = c
        .list_dialogs(1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dialogs.pagination.total, 1,
        "the retry created a second dialog"
    );

    let other = json!({"members": [{"userId": "carol"}]});
    let reused = c
        .raw("POST", "/api/dialogs", Some(&other), &key)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reused.status, 422);
    assert_eq!(
        reused.body,
        json!({
            "error": "Unprocessable Entity",
            "message": "X-Idempotency-Key 'create-dialog-1' was used with a different request body",
            "code": "idempotency_key_reused"
        })
    );
    api.stop().await;
}

#[tokio::test]
async fn idempotency_keys_are_scoped_by_tenant() {
    let api = TestApi::start("idem_tnt").await;
    let (_, a) = api.tenant("tnta").await;
    let (_, b) = api.tenant("tntb").await;
    let key = [("X-Idempotency-Key", "same-key")];
    let ra = a
        .raw(
            "POST",
            "/api/dialogs",
            Some(&json!({"members": [{"userId": "u1"}]})),
            &key,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rb = b
        .raw(
            "POST",
            "/api/dialogs",
            Some(&json!({"members": [{"userId": "u2"}]})),
            &key,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ra.status, rb.status), (201, 201));
    assert_ne!(ra.body["data"]["dialogId"], rb.body["data"]["dialogId"]);
    assert_eq!(
        rb.body["data"]["tenantId"],
        json!(
            b.list_dialogs(1, 1)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .data[0]
                .tenant_id
        )
    );
    api.stop().await;
}
