//! Receipts, reactions and the user's view of a dialog, end to end: routes (checked against the
//! spec), events, each recipient's update, and the frames a connected sender sees.

use std::time::Duration;

use chat3_sdk::{EventType, Update, UpdateType};
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::ws::{connect, frame_named, login};
use chat3_tests::Stack;
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["messageId"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn receipts_move_watermarks_and_reach_the_sender_with_exact_summaries() {
    let stack = Stack::start("receipts").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let ann = login(&stack, "+15550003001").await;
    let a = ann.user.user_id.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["message.status.#"],
    )
    .await;
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": a}, {"userId": "bob"}, {"userId": "carol"}]})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut ws = connect(&stack, &ann.token, None).await;
    let post = format!("/api/dialogs/{dialog}/messages");
    let m1 = c
        .expect(
            "POST",
            &post,
            Some(json!({"senderId": a, "content": "one"})),
            201,
        )
        .await["data"]
        .clone();
    frame_named(&mut ws, "message:new", Duration::from_secs(15)).await;
    let m2 = c
        .expect(
            "POST",
            &post,
            Some(json!({"senderId": a, "content": "two"})),
            201,
        )
        .await["data"]
        .clone();
    let (id1, id2) = (id(&m1), id(&m2));
    let base = |u: &str, m: &str| format!("/api/users/{u}/dialogs/{dialog}/messages/{m}");

    // bob: delivered on m1, once.
    let first = c
        .expect(
            "POST",
            &format!("{}/status/delivered", base("bob", &id1)),
            None,
            201,
        )
        .await;
    let created_at = first["data"]["createdAt"].clone();
    let receipt = json!({"messageId": id1, "dialogId": dialog, "userId": "bob", "status": "delivered", "createdAt": created_at});
    assert_eq!(first, json!({"data": receipt}));
    let again = c
        .expect(
            "POST",
            &format!("{}/status/delivered", base("bob", &id1)),
            None,
            200,
        )
        .await;
    assert_eq!(again, json!({"data": receipt}));
    let e = events
        .next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no event"))
        .body;
    assert_eq!(
        e,
        json!({
            "eventId": e["eventId"], "tenantId": tenant, "eventType": "message.status.changed",
            "entityType": "message", "entityId": id1, "dialogId": dialog,
            "actorId": "bob", "actorType": "user", "occurredAt": e["occurredAt"],
            "data": {"messageId": id1, "senderId": a, "userId": "bob", "status": "delivered", "at": created_at},
        })
    );
    // The sender sees the receipt live.
    let live = frame_named(&mut ws, "message:update", Duration::from_secs(15)).await;
    assert_eq!(live.data["status"]["userId"], "bob");
    assert_eq!(
        live.data["message"]["statuses"],
        json!({"delivered": 1, "read": 0})
    );

    // read moves the watermark (and unread) up, never back.
    c.expect(
        "POST",
        &format!("{}/status/read", base("bob", &id2)),
        None,
        201,
    )
    .await;
    c.expect(
        "POST",
        &format!("{}/status/read", base("bob", &id1)),
        None,
        201,
    )
    .await;
    c.expect(
        "POST",
        &format!("{}/status/read", base("carol", &id1)),
        None,
        201,
    )
    .await;
    c.expect(
        "POST",
        &format!("{}/status/read", base(&a, &id1)),
        None,
        201,
    )
    .await;
    c.expect(
        "POST",
        &format!("{}/status/seen_by-bot", base("bob", &id1)),
        None,
        201,
    )
    .await;
    let members = c
        .expect("GET", &format!("/api/dialogs/{dialog}/members"), None, 200)
        .await;
    let state: Vec<(Value, Value, Value)> = members["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["userId"].clone(),
                m["lastReadSeq"].clone(),
                m["unreadCount"].clone(),
            )
        })
        .collect();
    assert_eq!(
        state,
        // Joined together: in user id order.
        [
            (json!("bob"), json!(2), json!(0)),
            (json!("carol"), json!(1), json!(1)),
            (json!(a), json!(2), json!(0)),
        ]
    );
    // A read receipt counts as seen even when the watermark was past the message already.
    let inbox = c.expect("GET", "/api/users/bob/dialogs", None, 200).await;
    let context = &inbox["data"][0]["context"];
    assert_eq!(
        (
            context["userId"].clone(),
            context["unreadCount"].clone(),
            context["lastMessageAt"].clone()
        ),
        (json!("bob"), json!(0), m2["createdAt"].clone())
    );
    assert!(
        context["lastSeenAt"].as_i64() >= created_at.as_i64(),
        "{context}"
    );
    assert_eq!(inbox["data"][0]["membersCount"], 3);
    // Summaries leave the sender out.
    let s1 = c
        .expect("GET", &format!("/api/messages/{id1}"), None, 200)
        .await;
    assert_eq!(
        s1["data"]["statuses"],
        json!({"delivered": 1, "read": 2, "seen_by-bot": 1})
    );
    let s2 = c
        .expect("GET", &format!("/api/messages/{id2}"), None, 200)
        .await;
    assert_eq!(s2["data"]["statuses"], json!({"delivered": 0, "read": 1}));
    let list = c
        .expect(
            "GET",
            &format!("{}/statuses?limit=10", base("carol", &id1)),
            None,
            200,
        )
        .await;
    let who: Vec<(Value, Value)> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["userId"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(who.len(), 5);
    assert_eq!(who[0], (json!("bob"), json!("delivered")));
    assert_eq!(list["pagination"]["total"], 5);

    // Recipients: the sender a `message` update, the reader a `dialog` update.
    let carol = c.updates_of("carol", 4).await;
    let mine = carol
        .iter()
        .find(|u| u.event_type == EventType::MessageStatusChanged)
        .unwrap_or_else(|| panic!("no receipt update"));
    assert_eq!(mine.update_type, UpdateType::Dialog);
    assert_eq!(mine.data["member"]["unreadCount"], 1);
    assert_eq!(mine.data["dialog"]["unreadCount"], 1);
    assert!(
        carol
            .iter()
            .filter(|u| u.event_type == EventType::MessageStatusChanged)
            .count()
            == 1,
        "carol gets only her own receipt"
    );
    let ann_feed = c.updates_of(&a, 9).await;
    let receipts: Vec<&Update> = ann_feed
        .iter()
        .filter(|u| u.event_type == EventType::MessageStatusChanged)
        .collect();
    // bob delivered, bob read m2, bob read m1, carol read m1, ann's own read (a dialog update), bob custom.
    assert_eq!(receipts.len(), 6);
    assert_eq!(
        receipts
            .iter()
            .filter(|u| u.update_type == UpdateType::Message)
            .count(),
        5
    );

    // Errors.
    c.expect_error(
        "POST",
        &format!("{}/status/READ", base("bob", &id1)),
        None,
        400,
        "invalid_status",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/status/read", base("dave", &id1)),
        None,
        404,
        "member_not_found",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/status/read", base("bob", "msg_0000000000aaaaaaaaaa")),
        None,
        404,
        "message_not_found",
    )
    .await;
    c.expect_error(
        "GET",
        &format!("{}/statuses", base("dave", &id1)),
        None,
        403,
        "not_a_member",
    )
    .await;
    let other = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "bob"}]})),
            201,
        )
        .await;
    let other = other["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.expect_error(
        "POST",
        &format!("/api/users/bob/dialogs/{other}/messages/{id1}/status/read"),
        None,
        404,
        "message_not_found",
    )
    .await;
    c.expect("DELETE", &format!("/api/messages/{id2}"), None, 200)
        .await;
    c.expect_error(
        "POST",
        &format!("{}/status/delivered", base("carol", &id2)),
        None,
        409,
        "message_deleted",
    )
    .await;
    stack.stop().await;
}

#[tokio::test]
async fn reactions_count_exactly_under_concurrent_users_with_me_from_each_side() {
    let stack = Stack::start("reactions").await;
    let c = Checked::new(stack.client.clone());
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["message.reaction.#"],
    )
    .await;
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "ann"}, {"userId": "bob"}, {"userId": "carol"}]})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let m = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/messages"),
            Some(json!({"senderId": "ann", "content": "party?"})),
            201,
        )
        .await["data"]
        .clone();
    let mid = id(&m);
    let base = |u: &str| format!("/api/users/{u}/dialogs/{dialog}/messages/{mid}/reactions");
    let set = |r: &str| Some(json!({"reaction": r}));

    let r = c
        .expect("POST", &format!("{}/set", base("bob")), set("👍"), 200)
        .await;
    assert_eq!(
        r,
        json!({"data": {"messageId": mid, "reactions": [{"reaction": "👍", "count": 1, "me": true}]}})
    );
    let again = c
        .expect("POST", &format!("{}/set", base("bob")), set("👍"), 200)
        .await;
    assert_eq!(again, r);
    let e = events.next_body().await;
    assert_eq!(
        e,
        json!({
            "eventId": e["eventId"], "tenantId": stack.tenant, "eventType": "message.reaction.changed",
            "entityType": "message", "entityId": mid, "dialogId": dialog,
            "actorId": "bob", "actorType": "user", "occurredAt": e["occurredAt"],
            "data": {"messageId": mid, "userId": "bob", "reaction": "👍", "action": "set"},
        })
    );
    c.expect("POST", &format!("{}/set", base("carol")), set("👍"), 200)
        .await;
    let r = c
        .expect("POST", &format!("{}/set", base("carol")), set("❤️"), 200)
        .await;
    assert_eq!(
        r["data"]["reactions"],
        json!([{"reaction": "👍", "count": 2, "me": true}, {"reaction": "❤️", "count": 1, "me": true}])
    );
    c.expect("POST", &format!("{}/set", base("bob")), set("❤️"), 200)
        .await;
    let r = c
        .expect("POST", &format!("{}/unset", base("bob")), set("❤️"), 200)
        .await;
    assert_eq!(
        r["data"]["reactions"],
        json!([{"reaction": "👍", "count": 2, "me": true}, {"reaction": "❤️", "count": 1, "me": false}])
    );

    // Views: the user's (me, isMine) and the tenant's (no viewer).
    let bob_view = c
        .expect(
            "GET",
            &format!("/api/users/bob/dialogs/{dialog}/messages"),
            None,
            200,
        )
        .await;
    assert_eq!(bob_view["data"][0]["isMine"], false);
    assert_eq!(
        bob_view["data"][0]["reactions"],
        json!([{"reaction": "👍", "count": 2, "me": true}, {"reaction": "❤️", "count": 1, "me": false}])
    );
    let ann_view = c
        .expect(
            "GET",
            &format!("/api/users/ann/dialogs/{dialog}/messages?afterSeq=0"),
            None,
            200,
        )
        .await;
    assert_eq!(ann_view["data"][0]["isMine"], true);
    assert_eq!(ann_view["data"][0]["reactions"][0]["me"], false);
    let tenant_view = c
        .expect("GET", &format!("/api/messages/{mid}"), None, 200)
        .await;
    assert_eq!(
        tenant_view["data"]["reactions"],
        json!([{"reaction": "👍", "count": 2, "me": false}, {"reaction": "❤️", "count": 1, "me": false}])
    );
    let list = c.expect("GET", &base("ann"), None, 200).await;
    assert_eq!(list["pagination"]["total"], 3);

    // Each member's update carries me from their side.
    // Unsetting what was not set changes nothing and emits nothing.
    let same = c
        .expect("POST", &format!("{}/unset", base("carol")), set("🎈"), 200)
        .await;
    assert_eq!(same["data"]["reactions"].as_array().map(Vec::len), Some(2));
    // create, message, then five reaction events.
    let carol = c.updates_of("carol", 7).await;
    let last = carol
        .iter()
        .rev()
        .find(|u| u.event_type == EventType::MessageReactionChanged)
        .unwrap_or_else(|| panic!("no reaction update"));
    assert_eq!(last.data["reaction"]["action"], "unset");
    assert_eq!(
        last.data["message"]["reactions"][1],
        json!({"reaction": "❤️", "count": 1, "me": true})
    );
    let ann = c.updates_of("ann", 7).await;
    let last = ann
        .iter()
        .rev()
        .find(|u| u.event_type == EventType::MessageReactionChanged)
        .unwrap_or_else(|| panic!("no reaction update"));
    assert_eq!(last.data["message"]["reactions"][1]["me"], false);
    // Five changes, one update each per member (the repeats emitted none).
    assert_eq!(
        ann.iter()
            .filter(|u| u.event_type == EventType::MessageReactionChanged)
            .count(),
        5
    );

    // One event per change: bob's first set above, then four more; the repeats emitted none.
    let rest = events.drain(Duration::from_millis(500)).await;
    let actions: Vec<(Value, Value, Value)> = rest
        .iter()
        .map(|r| {
            (
                r.body["data"]["userId"].clone(),
                r.body["data"]["reaction"].clone(),
                r.body["data"]["action"].clone(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (json!("carol"), json!("👍"), json!("set")),
            (json!("carol"), json!("❤️"), json!("set")),
            (json!("bob"), json!("❤️"), json!("set")),
            (json!("bob"), json!("❤️"), json!("unset")),
        ]
    );
    // Errors.
    c.expect_error(
        "POST",
        &format!("{}/set", base("bob")),
        set(""),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/set", base("bob")),
        set(&"x".repeat(51)),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/set", base("bob")),
        set("a\u{7}b"),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/set", base("bob")),
        Some(json!({"reaction": "x", "extra": 1})),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{}/set", base("dave")),
        set("👍"),
        404,
        "member_not_found",
    )
    .await;
    // Not a route (so not in the spec either): the JSON 404 of unknown paths.
    let toggle = c
        .client
        .raw(
            "POST",
            &format!("{}/toggle", base("bob")),
            set("👍").as_ref(),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (toggle.status, toggle.body["code"].clone()),
        (404, json!("route_not_found"))
    );
    c.expect_error(
        "GET",
        &format!("/api/users/dave/dialogs/{dialog}/messages"),
        None,
        403,
        "not_a_member",
    )
    .await;
    c.expect_error(
        "GET",
        "/api/users/dave/dialogs/dlg_0000000000aaaaaaaaaa/messages",
        None,
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "GET",
        &format!("/api/users/bob/dialogs/{dialog}/messages?limit=0"),
        None,
        400,
        "invalid_query",
    )
    .await;
    stack.stop().await;
}

/// Exact counts under concurrent writers, at the API (no worker: the fan-out of every reaction to
/// two dozen members would compete with the writes for the test store, which is not what this
/// checks).
#[tokio::test]
async fn concurrent_reactions_and_receipts_on_one_message_count_exactly() {
    let api = chat3_tests::TestApi::start("reactrace").await;
    let (_, client) = api.tenant("tnt").await;
    let c = Checked::new(client);
    let crowd: Vec<String> = (0..20).map(|i| format!("guest{i}")).collect();
    let names: Vec<&str> = std::iter::once("ann")
        .chain(crowd.iter().map(String::as_str))
        .collect();
    let dialog = c.dialog_of(&names).await;
    let mid = id(&c.send(&dialog, "ann", "party?").await);
    let base = |u: &str| format!("/api/users/{u}/dialogs/{dialog}/messages/{mid}");
    let mut tasks = tokio::task::JoinSet::new();
    for g in &crowd {
        let (c, react, read) = (
            c.clone(),
            format!("{}/reactions/set", base(g)),
            format!("{}/status/read", base(g)),
        );
        tasks.spawn(async move {
            c.expect("POST", &react, Some(json!({"reaction": "🎉"})), 200)
                .await;
            c.expect("POST", &read, None, 201).await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    for g in &crowd[..10] {
        let (c, path) = (c.clone(), format!("{}/reactions/unset", base(g)));
        tasks.spawn(async move {
            c.expect("POST", &path, Some(json!({"reaction": "🎉"})), 200)
                .await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    let now = c
        .expect("GET", &format!("/api/messages/{mid}"), None, 200)
        .await;
    assert_eq!(
        now["data"]["reactions"],
        json!([{"reaction": "🎉", "count": 10, "me": false}])
    );
    assert_eq!(now["data"]["statuses"], json!({"delivered": 0, "read": 20}));
    let rows = c
        .expect(
            "GET",
            &format!("{}/reactions?limit=100", base("ann")),
            None,
            200,
        )
        .await;
    assert_eq!(rows["pagination"]["total"], 10);
    let stats = c.expect("GET", "/api/users/guest7/stats", None, 200).await;
    assert_eq!(stats["data"]["totalUnread"], 0);
    api.stop().await;
}
