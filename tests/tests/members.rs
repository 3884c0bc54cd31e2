//! Dialog membership and dialog changes end to end: the routes (every response checked against
//! the spec), their events (exact envelopes), who receives an update and what it carries.

use std::time::Duration;

use chat3_sdk::{EventType, Update};
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::fixtures::user;
use chat3_tests::Stack;
use serde_json::json;

fn types(updates: &[Update]) -> Vec<EventType> {
    updates.iter().map(|u| u.event_type.clone()).collect()
}

#[tokio::test]
async fn members_join_at_the_newest_message_and_a_removed_member_gets_one_final_update() {
    let stack = Stack::start("members").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["dialog.member.#"],
    )
    .await;
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "alice"}, {"userId": "bob"}], "name": "Team"})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let send = |content: &str| json!({"senderId": "alice", "content": content});
    for i in 1..=2 {
        c.expect(
            "POST",
            &format!("/api/dialogs/{dialog}/messages"),
            Some(send(&format!("m{i}"))),
            201,
        )
        .await;
    }

    // Carol joins after two messages: nothing before is unread for her.
    let added = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/members/add"),
            Some(json!({"members": [{"userId": "carol"}, {"userId": "alice"}, {"userId": "carol", "type": "bot"}]})),
            201,
        )
        .await;
    let joined_at = added["data"]["added"][0]["joinedAt"].clone();
    let carol = json!({"userId": "carol", "type": "user", "lastReadSeq": 2, "unreadCount": 0, "joinedAt": joined_at});
    assert_eq!(
        added,
        json!({"data": {"dialogId": dialog, "added": [carol], "existing": ["alice"]}})
    );
    let add_event = events.next_body().await;
    assert_eq!(
        add_event,
        json!({
            "eventId": add_event["eventId"], "tenantId": tenant, "eventType": "dialog.member.add",
            "entityType": "dialogMember", "entityId": dialog, "dialogId": dialog,
            "actorId": "api", "actorType": "api", "occurredAt": add_event["occurredAt"],
            "data": {"members": [carol]},
        })
    );
    // The one-object form; a member already: 200, nothing changes, no event.
    let again = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/members/add"),
            Some(json!({"userId": "carol"})),
            200,
        )
        .await;
    assert_eq!(
        again,
        json!({"data": {"dialogId": dialog, "added": [], "existing": ["carol"]}})
    );
    let members = c
        .expect(
            "GET",
            &format!("/api/dialogs/{dialog}/members?limit=2"),
            None,
            200,
        )
        .await;
    assert_eq!(
        members["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "pages": 2})
    );
    let ids: Vec<&str> = members["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["userId"].as_str())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let page2 = c
        .expect(
            "GET",
            &format!("/api/dialogs/{dialog}/members?page=2&limit=2"),
            None,
            200,
        )
        .await;
    assert_eq!(page2["data"], json!([carol]));

    c.expect(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(send("m3")),
        201,
    )
    .await;
    let stats = c.expect("GET", "/api/users/carol/stats", None, 200).await;
    assert_eq!(
        stats,
        json!({"data": {"userId": "carol", "dialogCount": 1, "unreadDialogs": 1, "totalUnread": 1}})
    );

    // Removal: one final update for carol, the others are told, and nothing afterwards.
    let removed = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/members/carol/remove"),
            Some(json!({})),
            200,
        )
        .await;
    assert_eq!(
        removed,
        json!({"data": {"dialogId": dialog, "userId": "carol", "removedAt": removed["data"]["removedAt"]}})
    );
    let remove_event = events.next_body().await;
    let carol_then = json!({"userId": "carol", "type": "user", "lastReadSeq": 2, "unreadCount": 1, "joinedAt": joined_at});
    assert_eq!(
        remove_event,
        json!({
            "eventId": remove_event["eventId"], "tenantId": tenant, "eventType": "dialog.member.remove",
            "entityType": "dialogMember", "entityId": format!("{dialog}:carol"), "dialogId": dialog,
            "actorId": "api", "actorType": "api", "occurredAt": remove_event["occurredAt"],
            "data": {"member": carol_then, "name": "Team", "lastSeq": 3, "removedAt": removed["data"]["removedAt"]},
        })
    );
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/members/carol/remove"),
        Some(json!({})),
        404,
        "member_not_found",
    )
    .await;

    let carol_updates = c.updates_of("carol", 3).await;
    assert_eq!(
        types(&carol_updates),
        [
            EventType::DialogMemberAdd,
            EventType::MessageCreate,
            EventType::DialogMemberRemove
        ]
    );
    let last = &carol_updates[2];
    assert_eq!(
        last.data,
        json!({
            "dialog": {"dialogId": dialog, "name": "Team", "lastSeq": 3, "unreadCount": 0, "lastReadSeq": 2, "removed": true},
            "member": carol_then,
            "removedMember": carol_then,
        })
    );
    // bob: create, m1, m2, carol joined, m3, carol removed.
    let bob_updates = c.updates_of("bob", 6).await;
    assert_eq!(bob_updates[5].event_type, EventType::DialogMemberRemove);
    assert_eq!(bob_updates[5].data["removedMember"], carol_then);
    assert_eq!(bob_updates[5].data["dialog"]["unreadCount"], 3);

    // Afterwards: carol cannot send, and sees nothing of the dialog.
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(json!({"senderId": "carol", "content": "still here?"})),
        403,
        "sender_not_member",
    )
    .await;
    c.expect(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(send("m4")),
        201,
    )
    .await;
    c.updates_of("bob", 7).await;
    let after = c
        .client
        .user_updates(&user("carol"), 0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // user.add (joining created her), then the three about the dialog.
    assert_eq!(
        after.data.len(),
        4,
        "carol got something after her removal: {:?}",
        types(&after.data)
    );
    let inbox = c.expect("GET", "/api/users/carol/dialogs", None, 200).await;
    assert_eq!(inbox["data"], json!([]));
    let stats = c.expect("GET", "/api/users/carol/stats", None, 200).await;
    assert_eq!(
        stats["data"],
        json!({"userId": "carol", "dialogCount": 0, "unreadDialogs": 0, "totalUnread": 0})
    );

    // Errors.
    c.expect_error(
        "GET",
        "/api/dialogs/dlg_0000000000aaaaaaaaaa/members",
        None,
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "POST",
        "/api/dialogs/dlg_0000000000aaaaaaaaaa/members/add",
        Some(json!({"userId": "x"})),
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/members/add"),
        Some(json!({"members": []})),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/members/add"),
        Some(json!({"userId": "a.b"})),
        400,
        "validation_error",
    )
    .await;
    assert!(events.drain(Duration::from_millis(300)).await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn a_dialog_is_renamed_with_meta_merged_and_deleted_with_a_final_update_for_each_member() {
    let stack = Stack::start("dlgchange").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["dialog.changed.#", "dialog.delete.#"],
    )
    .await;
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": "alice"}, {"userId": "bob"}], "name": "Old", "meta": {"topic": "a", "keep": 1, "drop": true}})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/dialogs/{dialog}");
    let changed = c
        .expect(
            "PATCH",
            &path,
            Some(json!({"name": "New", "meta": {"topic": "b", "drop": null, "absent": null, "keep": 1}})),
            200,
        )
        .await;
    assert_eq!(changed["data"]["name"], "New");
    assert_eq!(changed["data"]["meta"], json!({"keep": 1, "topic": "b"}));
    assert_eq!(changed["data"]["members"].as_array().map(Vec::len), Some(2));
    assert!(changed["data"]["updatedAt"].as_i64() >= d["data"]["updatedAt"].as_i64());
    let e = events.next_body().await;
    assert_eq!(
        e,
        json!({
            "eventId": e["eventId"], "tenantId": tenant, "eventType": "dialog.changed",
            "entityType": "dialog", "entityId": dialog, "dialogId": dialog,
            "actorId": "api", "actorType": "api", "occurredAt": e["occurredAt"],
            "data": {"name": "New", "meta": {"keep": 1, "topic": "b"}, "changed": ["name", "meta.drop", "meta.topic"]},
        })
    );
    // Changing nothing: the dialog as it is, no event.
    let same = c
        .expect("PATCH", &path, Some(json!({"name": "New"})), 200)
        .await;
    assert_eq!(same["data"]["updatedAt"], changed["data"]["updatedAt"]);
    let bob = c.updates_of("bob", 2).await;
    assert_eq!(bob[1].event_type, EventType::DialogChanged);
    assert_eq!(bob[1].data["dialog"]["name"], "New");
    assert_eq!(
        bob[1].data["changed"],
        json!(["name", "meta.drop", "meta.topic"])
    );
    assert_eq!(bob[1].data["meta"], json!({"keep": 1, "topic": "b"}));
    c.expect_error(
        "PATCH",
        &path,
        Some(json!({"meta": {"$bad": 1}})),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "PATCH",
        &path,
        Some(json!({"name": "x".repeat(201)})),
        400,
        "validation_error",
    )
    .await;
    c.expect_error(
        "PATCH",
        &path,
        Some(json!({"title": "x"})),
        400,
        "validation_error",
    )
    .await;

    // Delete: a key without the `delete` scope may not; the others' final updates.
    let (_, writer) = stack
        .api
        .tenant_with_scopes(
            "dlgw",
            Some(vec![chat3_sdk::Scope::Read, chat3_sdk::Scope::Write]),
        )
        .await;
    c.with_client(writer)
        .expect_error("DELETE", &path, None, 403, "insufficient_scope")
        .await;
    c.expect(
        "POST",
        &format!("{path}/messages"),
        Some(json!({"senderId": "alice", "content": "bye"})),
        201,
    )
    .await;
    let deleted = c.expect("DELETE", &path, None, 200).await;
    let deleted_at = deleted["data"]["deletedAt"].clone();
    assert_eq!(
        deleted,
        json!({"data": {"dialogId": dialog, "deletedAt": deleted_at}})
    );
    let e = events.next_body().await;
    assert_eq!(e["eventType"], "dialog.delete");
    assert_eq!(e["entityType"], "dialog");
    assert_eq!(e["data"]["dialogId"], dialog.as_str());
    assert_eq!(e["data"]["name"], "New");
    assert_eq!(e["data"]["deletedAt"], deleted_at);
    let was: Vec<&str> = e["data"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["userId"].as_str())
        .collect();
    assert_eq!(was, ["alice", "bob"]);
    assert_eq!(e["data"]["members"][1]["unreadCount"], 1);
    for who in ["alice", "bob"] {
        let ups = c.updates_of(who, 4).await;
        let last = &ups[3];
        assert_eq!(last.event_type, EventType::DialogDelete, "{who}");
        assert_eq!(
            last.data["dialog"],
            json!({"dialogId": dialog, "name": "New", "deleted": true, "deletedAt": deleted_at})
        );
        assert_eq!(last.data["member"]["userId"], who);
    }
    c.expect_error("GET", &path, None, 404, "dialog_not_found")
        .await;
    c.expect_error(
        "GET",
        &format!("{path}/messages"),
        None,
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "GET",
        &format!("{path}/members"),
        None,
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error("DELETE", &path, None, 404, "dialog_not_found")
        .await;
    c.expect_error(
        "PATCH",
        &path,
        Some(json!({"name": "x"})),
        404,
        "dialog_not_found",
    )
    .await;
    c.expect_error(
        "POST",
        &format!("{path}/messages"),
        Some(json!({"senderId": "alice", "content": "x"})),
        404,
        "dialog_not_found",
    )
    .await;
    let inbox = c.expect("GET", "/api/users/bob/dialogs", None, 200).await;
    assert_eq!(inbox["data"], json!([]));
    assert!(events.drain(Duration::from_millis(300)).await.is_empty());
    stack.stop().await;
}
