//! Users end to end: the routes (every response checked against the spec), `user.add`,
//! `user.changed` and `user.remove` (exact envelopes), the user's own updates, users created by
//! joining a dialog, and deletion removing the user from every dialog and their feed.

use std::time::Duration;

use chat3_sdk::{EventType, UpdateType};
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::{eventually, Stack};
use serde_json::{json, Value};

fn envelope(tenant: &str, e: &Value, event_type: &str, user: &str, data: Value) -> Value {
    json!({
        "eventId": e["eventId"], "tenantId": tenant, "eventType": event_type,
        "entityType": "user", "entityId": user,
        "actorId": "api", "actorType": "api", "occurredAt": e["occurredAt"],
        "data": data,
    })
}

#[tokio::test]
async fn users_are_created_changed_and_listed_with_their_events_and_updates() {
    let stack = Stack::start("users").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["user.#"],
    )
    .await;

    let created = c
        .expect(
            "POST",
            "/api/users",
            Some(json!({"userId": "alice", "type": "bot", "name": "Alice", "meta": {"plan": "pro", "n": 1}})),
            201,
        )
        .await["data"]
        .clone();
    let at = created["createdAt"].clone();
    let alice = json!({"userId": "alice", "type": "bot", "name": "Alice", "meta": {"plan": "pro", "n": 1}, "createdAt": at, "updatedAt": at});
    assert_eq!(created, alice);
    let e = events.next_body().await;
    assert_eq!(
        e,
        envelope(&tenant, &e, "user.add", "alice", json!({"user": alice}))
    );
    c.expect_error(
        "POST",
        "/api/users",
        Some(json!({"userId": "alice"})),
        409,
        "user_exists",
    )
    .await;
    assert_eq!(
        c.expect("GET", "/api/users/alice", None, 200).await["data"],
        alice
    );
    c.expect_error("GET", "/api/users/nobody", None, 404, "user_not_found")
        .await;
    c.expect_error(
        "POST",
        "/api/users",
        Some(json!({"userId": "x", "type": "Bot!"})),
        400,
        "validation_error",
    )
    .await;

    // PUT changes the fields given; `null` removes the name and a meta key.
    let changed = c
        .expect(
            "PUT",
            "/api/users/alice",
            Some(json!({"name": null, "meta": {"plan": "team", "n": null, "tz": "UTC"}})),
            200,
        )
        .await["data"]
        .clone();
    assert_eq!(changed["type"], "bot");
    assert!(changed.get("name").is_none(), "{changed}");
    assert_eq!(changed["meta"], json!({"plan": "team", "tz": "UTC"}));
    let e = events.next_body().await;
    assert_eq!(
        e,
        envelope(
            &tenant,
            &e,
            "user.changed",
            "alice",
            json!({"user": changed, "changed": ["name", "meta.n", "meta.plan", "meta.tz"]})
        )
    );
    // Nothing changes: 200, no event.
    c.expect(
        "PUT",
        "/api/users/alice",
        Some(json!({"type": "bot", "meta": {"plan": "team"}})),
        200,
    )
    .await;
    c.expect_error(
        "PUT",
        "/api/users/nobody",
        Some(json!({"name": "x"})),
        404,
        "user_not_found",
    )
    .await;

    // Joining a dialog creates the users who do not exist yet, with the member's type.
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "alice"}, {"userId": "bob", "type": "contact"}]})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let e = events.next_body().await;
    assert_eq!(e["eventType"], "user.add");
    assert_eq!(e["data"]["user"]["userId"], "bob");
    assert_eq!(e["data"]["user"]["type"], "contact");
    c.expect(
        "POST",
        &format!("/api/dialogs/{dialog}/members/add"),
        Some(json!({"userId": "carol"})),
        201,
    )
    .await;
    let e = events.next_body().await;
    assert_eq!(
        (e["eventType"].clone(), e["data"]["user"]["userId"].clone()),
        (json!("user.add"), json!("carol"))
    );
    assert!(
        events.drain(Duration::from_millis(300)).await.is_empty(),
        "alice existed: no second user.add"
    );

    let page = c.expect("GET", "/api/users?limit=2", None, 200).await;
    let ids: Vec<&str> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userId"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert_eq!(
        page["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "pages": 2})
    );

    // The user's own updates: `user` updates without a dialog, in seq order.
    let feed = c.all_updates_of("alice", 3).await;
    let mine: Vec<(UpdateType, EventType)> = feed
        .iter()
        .filter(|u| u.update_type == UpdateType::User)
        .map(|u| (u.update_type, u.event_type.clone()))
        .collect();
    assert_eq!(
        mine,
        [
            (UpdateType::User, EventType::UserAdd),
            (UpdateType::User, EventType::UserChanged)
        ]
    );
    let changed_update = feed
        .iter()
        .find(|u| u.event_type == EventType::UserChanged)
        .unwrap_or_else(|| panic!("no user.changed update"));
    assert_eq!(changed_update.dialog_id, None);
    assert_eq!(
        changed_update.data,
        json!({"user": changed, "changed": ["name", "meta.n", "meta.plan", "meta.tz"]})
    );
    stack.stop().await;
}

#[tokio::test]
async fn deleting_a_user_removes_them_from_every_dialog_and_their_feed() {
    let stack = Stack::start("userdel").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["user.remove.#", "dialog.member.remove.#"],
    )
    .await;
    let d1 = c.dialog_of(&["alice", "bob"]).await;
    let d2 = c.dialog_of(&["bob", "carol", "alice"]).await;
    c.send(&d1, "bob", "hi alice").await;
    c.send(&d2, "bob", "hi all").await;
    c.updates_of("bob", 4).await;
    c.updates_of("alice", 4).await;

    let deleted = c.expect("DELETE", "/api/users/bob", None, 200).await["data"].clone();
    assert_eq!(deleted["userId"], "bob");
    assert_eq!(deleted["deleted"], true);
    let mut removed: Vec<&str> = deleted["removedFrom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    removed.sort();
    let mut both = vec![d1.as_str(), d2.as_str()];
    both.sort();
    assert_eq!(removed, both);

    // One dialog.member.remove per dialog (marked userDeleted), then user.remove.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = events.next_body().await;
        seen.push(e);
    }
    let removals: Vec<&Value> = seen
        .iter()
        .filter(|e| e["eventType"] == "dialog.member.remove")
        .collect();
    assert_eq!(removals.len(), 2);
    for r in &removals {
        assert_eq!(r["data"]["member"]["userId"], "bob");
        assert_eq!(r["data"]["userDeleted"], true);
    }
    let gone = &seen[2];
    assert_eq!(
        *gone,
        envelope(
            &tenant,
            gone,
            "user.remove",
            "bob",
            json!({"user": gone["data"]["user"], "removedAt": gone["data"]["removedAt"]})
        )
    );
    assert_eq!(gone["data"]["user"]["userId"], "bob");

    // The others see bob leave; bob has no user, no memberships, no feed.
    let d2_members = c
        .expect("GET", &format!("/api/dialogs/{d2}/members"), None, 200)
        .await;
    let ids: Vec<&str> = d2_members["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["userId"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "carol"]);
    eventually(
        Duration::from_secs(20),
        "alice's updates about bob leaving both dialogs",
        || async {
            let feed = c.updates_of("alice", 1).await;
            let n = feed
                .iter()
                .filter(|u| u.event_type == EventType::DialogMemberRemove)
                .count();
            (n == 2).then_some(())
        },
    )
    .await;
    c.expect_error("GET", "/api/users/bob", None, 404, "user_not_found")
        .await;
    // His views are gone with him (not an empty inbox): 404, and the feed answers 404 only
    // while nothing is stored for him, so the worker wrote nothing for bob after the delete.
    for view in ["dialogs", "stats", "updates"] {
        c.expect_error(
            "GET",
            &format!("/api/users/bob/{view}"),
            None,
            404,
            "user_not_found",
        )
        .await;
    }
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{d1}/messages"),
        Some(json!({"senderId": "bob", "content": "still here?"})),
        403,
        "sender_not_member",
    )
    .await;

    // Idempotent: a second delete finds nothing and emits nothing.
    let again = c.expect("DELETE", "/api/users/bob", None, 200).await;
    assert_eq!(
        again["data"],
        json!({"userId": "bob", "deleted": false, "removedFrom": []})
    );
    assert!(events.drain(Duration::from_millis(300)).await.is_empty());
    // Created again by joining a dialog: a new user, a fresh feed.
    c.expect(
        "POST",
        &format!("/api/dialogs/{d1}/members/add"),
        Some(json!({"userId": "bob"})),
        201,
    )
    .await;
    assert_eq!(
        c.expect("GET", "/api/users/bob", None, 200).await["data"]["userId"],
        "bob"
    );
    let inbox = c.expect("GET", "/api/users/bob/dialogs", None, 200).await;
    assert_eq!(inbox["data"][0]["dialogId"], d1.as_str(), "{inbox}");
    stack.stop().await;
}

#[tokio::test]
async fn the_views_of_a_user_without_dialogs_are_empty_and_of_an_unknown_user_404() {
    let stack = Stack::start("userviews").await;
    let c = Checked::new(stack.client.clone());
    c.expect("POST", "/api/users", Some(json!({"userId": "dora"})), 201)
        .await;
    let inbox = c.expect("GET", "/api/users/dora/dialogs", None, 200).await;
    assert_eq!(inbox["data"], json!([]));
    assert_eq!(inbox["pagination"]["total"], 0);
    let stats = c.expect("GET", "/api/users/dora/stats", None, 200).await;
    assert_eq!(
        stats["data"],
        json!({"userId": "dora", "dialogCount": 0, "unreadDialogs": 0, "totalUnread": 0})
    );
    // Her feed holds her user.add (or nothing yet, while the worker has not written it).
    let feed = c.expect("GET", "/api/users/dora/updates", None, 200).await;
    assert!(
        feed["data"].as_array().is_some_and(|d| d.len() <= 1),
        "{feed}"
    );
    // A filter that matches nothing is still her (empty) inbox.
    let none = c
        .expect(
            "GET",
            "/api/users/dora/dialogs?filter=(unreadCount,gt,0)",
            None,
            200,
        )
        .await;
    assert_eq!(none["data"], json!([]));
    for view in [
        "dialogs",
        "stats",
        "updates",
        "dialogs?filter=(unreadCount,gt,0)",
    ] {
        c.expect_error(
            "GET",
            &format!("/api/users/nobody/{view}"),
            None,
            404,
            "user_not_found",
        )
        .await;
    }
    stack.stop().await;
}
