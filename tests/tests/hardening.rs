//! Hostile input and crashes against the landed path: client JSON is stored and read back
//! literally or refused, ids are bounded so every routing key fits, an unreadable stored update
//! cannot take a feed down, idempotency keys survive crashes exactly once, numbers at the edges
//! are 4xx, and a revoked key stops at once where it was revoked.

use std::time::Duration;

use bson::doc;
use chat3_api::config::ApiConfig;
use chat3_core::bus::{Bus, BusError};
use chat3_core::idempotency::{self, Claim};
use chat3_core::store::{coll, Store};
use chat3_core::{messages, Ctx};
use chat3_sdk::client::Client;
use chat3_sdk::{CreateApiKey, CreateDialog, CreateTenant, MemberInput, Meta, TenantId, UserId};
use chat3_tests::amqp::TestQueue;
use chat3_tests::fixtures::{dialog_of, text, user};
use chat3_tests::openapi::Spec;
use chat3_tests::ws::{connect, frame_with, login};
use chat3_tests::{api_config, eventually, Stack, TestApi};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn meta(v: Value) -> Meta {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

/// `{"k": [[...[1]...]]}` with the meta object at level 1 and `levels` levels in all.
fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels.saturating_sub(1) {
        v = json!([v]);
    }
    json!({ "k": v })
}

async fn store_of(api: &TestApi) -> Store {
    Store::connect(&api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn count(store: &Store, collection: &str, tenant: &TenantId) -> u64 {
    chat3_core::testing::collection(store, collection)
        .count_documents(doc! {"tenantId": tenant.as_str()})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `body` and checks the answer against the spec.
async fn send(spec: &Spec, c: &Client, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .raw(method, path, Some(&body), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(p) = spec.validate(method, path, r.status, &r.body) {
        panic!("{method} {path} -> {}: {p}\n{}", r.status, r.body);
    }
    (r.status, r.body)
}

#[tokio::test]
async fn meta_that_mongodb_would_read_differently_is_refused_and_nothing_is_written() {
    let spec = Spec::load();
    let api = TestApi::start("hard_extjson").await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = store_of(&api).await;
    let events_before = count(&store, coll::EVENTS, &tenant).await;
    let path = format!("/api/dialogs/{}/messages", d.dialog_id);
    let bad = [
        json!({"k": {"$binary": {"base64": "AAAA", "subType": "00"}}}),
        json!({"k": {"$numberDecimal": "1.5"}}),
        json!({"k": [{"$oid": "5f0000000000000000000000"}]}),
        json!({"$set": 1}),
        json!({"a.b": 1}),
        json!({"k\u{0}": 1}),
        json!({"k": {"x\u{0}y": 1}}),
        json!({"k": {"a.b": 1}}),
        json!({"k": 18446744073709551615u64}),
        json!({"k": -1e19}),
        nested(17),
        json!({"k": "x".repeat(33 * 1024)}),
    ];
    for m in &bad {
        let body = json!({"senderId": "alice", "content": "hi", "meta": m});
        let (status, err) = send(&spec, &c, "POST", &path, body).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (400, Some("validation_error")),
            "{m}"
        );
        let body = json!({"members": [{"userId": "alice"}], "meta": m});
        let (status, _) = send(&spec, &c, "POST", "/api/dialogs", body).await;
        assert_eq!(status, 400, "dialog meta {m}");
    }
    // Nothing half-written: no message, no seq consumed, no event staged.
    let after = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.pagination.total, 0);
    assert_eq!(count(&store, coll::EVENTS, &tenant).await, events_before);
    assert_eq!(count(&store, coll::DIALOGS, &tenant).await, 1);
    let ok = c
        .send_message(&d.dialog_id, &text("alice", "after"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.seq, 1);
    api.stop().await;
}

#[tokio::test]
async fn accepted_meta_reads_back_as_the_same_json_in_reads_events_updates_and_frames() {
    let stack = Stack::start("hard_roundtrip").await;
    let session = login(&stack, "+15550002001").await;
    let me = session.user.user_id.clone();
    let c = &stack.client;
    let d = c
        .create_dialog(&CreateDialog {
            members: vec![
                MemberInput {
                    user_id: me.clone(),
                    user_type: Default::default(),
                },
                MemberInput {
                    user_id: user("friend"),
                    user_type: Default::default(),
                },
            ],
            name: None,
            meta: None,
            created_by: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ws = connect(&stack, &session.token, Some(0)).await;
    // (seq 1 is my own user.add.)
    frame_with(&mut ws, "dialog:update", 2, WAIT).await;
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["message.#"],
    )
    .await;

    let sent = json!({
        "text": "жзы 😀 \u{0} \n \"quoted\" \\",
        "lookalike": {"binary": {"base64": "AAAA", "subType": "00"}, "dollar$inside": 1},
        "numbers": [0, -1, 1.5, -0.25, 1.5e18, 9223372036854775807i64, -9223372036854775808i64],
        "empty": {"o": {}, "a": []},
        "flags": [true, false, null],
        "deep": nested(15)["k"],
    });
    let mut req = text("friend", "with meta");
    req.meta = Some(meta(sent.clone()));
    let m = c
        .send_message(&d.dialog_id, &req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json!(m.meta), sent, "POST response");
    let listed = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json!(listed.data[0].meta), sent, "GET messages");
    let event = events
        .next(WAIT)
        .await
        .unwrap_or_else(|| panic!("no message.create event"));
    assert_eq!(event.body["data"]["message"]["meta"], sent, "event");
    let frame = frame_with(&mut ws, "message:new", 3, WAIT).await;
    assert_eq!(frame.data["message"]["meta"], sent, "socket frame");
    let feed = c
        .user_updates(&me, 2, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(feed.data[0].data["message"]["meta"], sent, "updates feed");
    stack.stop().await;
}

#[tokio::test]
async fn an_unreadable_stored_update_is_skipped_and_the_feed_and_resume_keep_working() {
    let stack = Stack::start("hard_poison").await;
    let session = login(&stack, "+15550002002").await;
    let me = session.user.user_id.clone();
    let c = &stack.client;
    let mut dialog = dialog_of(&["friend"]);
    dialog.members.push(MemberInput {
        user_id: me.clone(),
        user_type: Default::default(),
    });
    let d = c
        .create_dialog(&dialog)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.send_message(&d.dialog_id, &text("friend", "one"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // user.add (1), dialog.create (2), message.create (3).
    eventually(WAIT, "three stored updates", || async {
        let p = c.user_updates(&me, 0, 10).await.ok()?;
        (p.head_seq == 3).then_some(())
    })
    .await;
    // What earlier code or a defect may have left: seq 4 with BSON types inside its data (the
    // old extended-JSON conversion), seq 5 without the fields an update needs.
    let store = store_of(&stack.api).await;
    let t = stack.tenant.as_str();
    chat3_core::testing::collection(&store, coll::UPDATES)
        .insert_many([
            doc! {
                "_id": "upd_poison_binary", "updateId": "upd_poison_binary", "tenantId": t,
                "userId": me.as_str(), "userType": "user", "seq": 4_i64, "updateType": "message",
                "eventType": "message.create", "eventId": "evt_poison_1", "createdAt": 1_i64,
                "data": {"k": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 0, 0] }},
            },
            doc! {
                "_id": "upd_poison_shape", "tenantId": t, "userId": me.as_str(), "seq": 5_i64,
                "updateType": 42, "eventId": "evt_poison_2",
            },
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.send_message(&d.dialog_id, &text("friend", "after the damage"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let feed = eventually(WAIT, "the next update after the damaged ones", || async {
        let p = c.user_updates(&me, 0, 100).await.ok()?;
        (p.data.last().and_then(|u| u.seq) == Some(6)).then_some(p)
    })
    .await;
    let seqs: Vec<_> = feed.data.iter().filter_map(|u| u.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 6]);
    assert_eq!(
        feed.data[3].data["k"],
        json!({"$binary": {"base64": "AAAA", "subType": "00"}})
    );
    // The socket resumes across them instead of closing.
    let mut ws = connect(&stack, &session.token, Some(0)).await;
    let last = frame_with(&mut ws, "message:new", 6, WAIT).await;
    assert_eq!(last.data["message"]["content"], "after the damage");
    stack.stop().await;
}

#[tokio::test]
async fn user_ids_are_bounded_by_bytes_so_the_longest_routing_key_still_fits() {
    let spec = Spec::load();
    let stack = Stack::start("hard_ids").await;
    // The longest tenant id, user type and user id there can be.
    let admin = stack.api.admin();
    let tenant: TenantId = format!("t{}", chat3_core::ids::random_base36(63))
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    admin
        .create_tenant(&CreateTenant {
            tenant_id: tenant.clone(),
            name: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let key = admin
        .create_api_key(&tenant, &CreateApiKey::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = Client::new(&stack.api.url, key.key);

    let too_long = "😀".repeat(100);
    let (status, body) = send(
        &spec,
        &c,
        "POST",
        "/api/dialogs",
        json!({"members": [{"userId": too_long}]}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("validation_error"))
    );
    let path = format!(
        "/api/users/{}/dialogs",
        chat3_sdk::client::encode_path(&too_long)
    );
    let r = c
        .raw("GET", &path, None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_path_parameter"))
    );

    let longest: UserId = "😀".repeat(32).parse().unwrap_or_else(|e| panic!("{e}"));
    let kind = "k".repeat(32);
    let mut updates = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.updates_exchange,
        &[&format!("update.{tenant}.#")],
    )
    .await;
    let d = c
        .create_dialog(&CreateDialog {
            members: vec![
                MemberInput {
                    user_id: longest.clone(),
                    user_type: kind.parse().unwrap_or_else(|e| panic!("{e}")),
                },
                MemberInput {
                    user_id: user("peer"),
                    user_type: Default::default(),
                },
            ],
            name: None,
            meta: None,
            created_by: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.send_message(&d.dialog_id, &text("peer", "hi"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let key = format!("update.{tenant}.{kind}.{longest}.message");
    assert!(key.len() > 240 && key.len() <= 255, "{}", key.len());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = updates
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .unwrap_or_else(|| panic!("no update with the longest routing key arrived"));
        if m.routing_key == key {
            break;
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_routing_key_over_255_bytes_is_refused_without_breaking_the_shared_connection() {
    let args = chat3_core::testing::amqp_args("hard_rk");
    let bus = Bus::connect(args.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut q = TestQueue::bind(&args.url, &args.events_exchange, &["ok.#"]).await;
    let long = format!("ok.{}", "x".repeat(253));
    let refused = bus
        .publish_json(&args.events_exchange, &long, "m1", b"{}")
        .await;
    assert!(
        matches!(refused, Err(BusError::RoutingKeyTooLong(256))),
        "{refused:?}"
    );
    bus.publish_json(&args.events_exchange, "ok.fine", "m2", b"{\"n\":2}")
        .await
        .unwrap_or_else(|e| panic!("the next publish failed too: {e}"));
    let got = q.next(WAIT).await.unwrap_or_else(|| panic!("nothing"));
    assert_eq!(got.message_id.as_deref(), Some("m2"));
    bus.close().await;
    chat3_tests::amqp::delete_exchanges(
        &args.url,
        &[&args.events_exchange, &args.updates_exchange],
    )
    .await;
}

/// A claim made as a request that then crashed (it never reaches `complete`).
async fn crashed_claim(
    store: &Store,
    tenant: &TenantId,
    key: &str,
    path: &str,
    body: &Value,
    lease: Duration,
) -> idempotency::Claimed {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let hash = idempotency::body_hash(&bytes);
    match idempotency::claim(store, tenant.as_str(), key, "POST", path, &hash, lease).await {
        Ok(Claim::New(c)) => c,
        other => panic!("claim: {other:?}"),
    }
}

#[tokio::test]
async fn a_request_that_crashed_before_committing_is_run_once_after_its_lease() {
    let api = TestApi::start("hard_lease").await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/api/dialogs/{}/messages", d.dialog_id);
    let body = json!({"senderId": "alice", "content": "exactly once"});
    let store = store_of(&api).await;
    crashed_claim(
        &store,
        &tenant,
        "k-crash",
        &path,
        &body,
        Duration::from_secs(1),
    )
    .await;
    let headers = [("X-Idempotency-Key", "k-crash")];

    let early = c
        .raw("POST", &path, Some(&body), &headers)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (early.status, early.body["code"].as_str()),
        (409, Some("idempotency_key_in_use"))
    );
    let through = eventually(WAIT, "the retry to take the expired claim over", || async {
        let r = c.raw("POST", &path, Some(&body), &headers).await.ok()?;
        (r.status == 201).then_some(r)
    })
    .await;
    let again = c
        .raw("POST", &path, Some(&body), &headers)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.body, through.body);
    let all = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.pagination.total, 1);
    api.stop().await;
}

#[tokio::test]
async fn a_request_that_committed_before_crashing_is_replayed_not_run_again() {
    let api = TestApi::start("hard_commit").await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/api/dialogs/{}/messages", d.dialog_id);
    let body = json!({"senderId": "alice", "content": "committed"});
    let store = store_of(&api).await;
    let claimed = crashed_claim(
        &store,
        &tenant,
        "k-commit",
        &path,
        &body,
        Duration::from_millis(1),
    )
    .await;
    // The request's write commits (with its reply) and then the process dies before answering.
    let ctx = Ctx::new(store.clone(), Bus::lazy(api.amqp.clone()));
    let req = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (written, _) =
        idempotency::with_claim(claimed, messages::create(&ctx, &tenant, &d.dialog_id, &req))
            .await
            .unwrap_or_else(|e| panic!("{e}"));

    let retry = c
        .raw(
            "POST",
            &path,
            Some(&body),
            &[("X-Idempotency-Key", "k-commit")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotency-replayed"), Some("true"));
    assert_eq!(retry.body["data"]["messageId"], json!(written.message_id));
    let all = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.pagination.total, 1);
    ctx.bus.close().await;
    api.stop().await;
}

#[tokio::test]
async fn a_slow_request_whose_claim_was_taken_over_cannot_commit() {
    let api = TestApi::start("hard_takeover").await;
    let (tenant, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let path = format!("/api/dialogs/{}/messages", d.dialog_id);
    let body = json!({"senderId": "alice", "content": "only one"});
    let store = store_of(&api).await;
    let slow = crashed_claim(
        &store,
        &tenant,
        "k-slow",
        &path,
        &body,
        Duration::from_millis(1),
    )
    .await;
    let retry = eventually(WAIT, "the retry to take the claim over", || async {
        let r = c
            .raw(
                "POST",
                &path,
                Some(&body),
                &[("X-Idempotency-Key", "k-slow")],
            )
            .await
            .ok()?;
        (r.status == 201).then_some(r)
    })
    .await;
    assert!(retry.header("idempotency-replayed").is_none());
    // The first holder wakes up and tries to write: its claim is no longer its own.
    let ctx = Ctx::new(store.clone(), Bus::lazy(api.amqp.clone()));
    let req = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}"));
    let late =
        idempotency::with_claim(slow, messages::create(&ctx, &tenant, &d.dialog_id, &req)).await;
    match late {
        Err(chat3_core::Error::Conflict { code, .. }) => assert_eq!(code, "idempotency_key_in_use"),
        other => panic!("the late writer was not stopped: {other:?}"),
    }
    let all = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.pagination.total, 1);
    ctx.bus.close().await;
    api.stop().await;
}

#[tokio::test]
async fn creating_a_key_again_with_the_same_idempotency_key_never_shows_the_secret_twice() {
    let api = TestApi::start("hard_keyidem").await;
    let (tenant, _) = api.tenant("tnt").await;
    let admin = api.admin();
    let path = format!("/api/tenants/{tenant}/api-keys");
    let headers = [("X-Idempotency-Key", "key-once")];
    let body = json!({"name": "once"});
    let first = admin
        .raw("POST", &path, Some(&body), &headers)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.status, 201);
    let again = admin
        .raw("POST", &path, Some(&body), &headers)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("api_key_secret_not_replayed"))
    );
    assert!(!again.body.to_string().contains("c3k_"));
    let store = store_of(&api).await;
    let stored = chat3_core::testing::collection(&store, coll::IDEMPOTENCY_KEYS)
        .find_one(doc! {"key": "key-once"})
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no idempotency record"));
    let secret = first.body["data"]["key"].as_str().unwrap_or("c3k_");
    assert!(
        !stored.to_string().contains(secret),
        "the secret was stored"
    );
    let keys = admin
        .list_api_keys(&tenant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys.len(), 2, "the tenant's first key and this one");
    api.stop().await;
}

#[tokio::test]
async fn numbers_and_characters_at_the_edges_are_documented_4xx() {
    let spec = Spec::load();
    let api = TestApi::start("hard_edges").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let msgs = format!("/api/dialogs/{}/messages", d.dialog_id);
    for path in [
        "/api/dialogs?page=18446744073709551615".to_owned(),
        "/api/dialogs?page=4611686018427387904&limit=100".to_owned(),
        "/api/dialogs?page=10001".to_owned(),
        "/api/dialogs?page=-1".to_owned(),
        "/api/dialogs?limit=101".to_owned(),
        "/api/dialogs?page=1.5".to_owned(),
        format!("{msgs}?afterSeq=9223372036854775808"),
        format!("{msgs}?beforeSeq=18446744073709551615"),
        "/api/users/alice/updates?since=9223372036854775808".to_owned(),
        "/api/users/alice/updates?since=18446744073709551616".to_owned(),
        "/api/users/alice/dialogs?sort=(x,asc)".to_owned(),
        format!("{msgs}?filter=(a,eq,b)"),
    ] {
        let r = c
            .raw("GET", &path, None, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        spec.validate("GET", &path, r.status, &r.body)
            .unwrap_or_else(|p| panic!("{path}: {p}"));
    }
    // The largest bounds that are allowed answer normally.
    for path in [
        format!("{msgs}?afterSeq=9223372036854775807"),
        "/api/users/alice/updates?since=9223372036854775807".to_owned(),
        "/api/dialogs?page=10000&limit=100".to_owned(),
    ] {
        let r = c
            .raw("GET", &path, None, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(
            r.body["data"].as_array().is_some_and(|a| a.is_empty()),
            "{path}"
        );
    }
    // Control characters in ids, a NUL in a meta key.
    for (path, body) in [
        (
            "/api/dialogs".to_owned(),
            json!({"members": [{"userId": "a\u{0}b"}]}),
        ),
        (
            "/api/dialogs".to_owned(),
            json!({"members": [{"userId": "a\u{7}b"}]}),
        ),
        (
            msgs.clone(),
            json!({"senderId": "alice", "content": "x", "meta": {"a\u{0}": 1}}),
        ),
        (msgs.clone(), json!({"senderId": "alice", "content": ""})),
        (
            msgs.clone(),
            json!({"senderId": "alice", "content": "x", "type": "Bad Type"}),
        ),
        (msgs.clone(), json!({"senderId": "alice", "content": 5})),
        (msgs.clone(), json!({"senderId": ["alice"], "content": "x"})),
    ] {
        let (status, _) = send(&spec, &c, "POST", &path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}");
    }
    // An oversized body with an idempotency key is the same JSON 413 as without one.
    let big = json!({"senderId": "alice", "content": "x".repeat(70 * 1024)});
    for headers in [vec![], vec![("X-Idempotency-Key", "big-1")]] {
        let r = c
            .raw("POST", &msgs, Some(&big), &headers)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (413, Some("payload_too_large")),
            "{headers:?}"
        );
    }
    let r = c
        .raw(
            "POST",
            &msgs,
            Some(&json!({"senderId": "alice", "content": "x"})),
            &[("X-Idempotency-Key", "bad key é")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 400);
    // A 405 says what the path allows.
    let r = c
        .raw("DELETE", &msgs, None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    api.stop().await;
}

#[tokio::test]
async fn a_revoked_key_stops_at_once_on_the_instance_that_revoked_it() {
    let mongo = chat3_core::testing::mongo_args("hard_revoke");
    let amqp = chat3_core::testing::amqp_args("hard_revoke");
    // A long cache window: only the explicit invalidation can explain an immediate refusal.
    let config = ApiConfig {
        key_cache_seconds: 3600,
        ..api_config(&mongo, &amqp)
    };
    let api = TestApi::start_config(config).await;
    let (tenant, c) = api.tenant("tnt").await;
    c.list_dialogs(1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = api
        .admin()
        .list_api_keys(&tenant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    api.admin()
        .revoke_api_key(&tenant, &keys[0].key_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = c
        .list_dialogs(1, 10)
        .await
        .err()
        .unwrap_or_else(|| panic!("the revoked key still works"));
    assert_eq!((e.status(), e.code()), (Some(401), Some("invalid_api_key")));
    api.stop().await;
}
