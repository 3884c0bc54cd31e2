//! The meta routes end to end, for every entity type (every response checked against the spec):
//! merge, one key, clear; the entity's change event with `changed`; the meta in the entity's own
//! reads; who receives the update; and the refusals.

use std::time::Duration;

use chat3_sdk::EventType;
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::Stack;
use serde_json::json;

#[tokio::test]
async fn every_entity_type_has_its_meta_changed_in_place_with_its_own_event() {
    let stack = Stack::start("meta").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["#.changed.#"],
    )
    .await;
    let d = c.dialog_of(&["alice", "bob"]).await;
    let m = c.send(&d, "alice", "hi").await["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let cases = [
        ("tenant", tenant.clone(), "tenant.changed"),
        ("user", "alice".to_owned(), "user.changed"),
        ("dialog", d.clone(), "dialog.changed"),
        ("dialogMember", format!("{d}:bob"), "dialog.member.changed"),
        ("message", m.clone(), "message.changed"),
    ];
    for (entity_type, id, event_type) in &cases {
        let base = format!("/api/meta/{entity_type}/{id}");
        let put = c
            .expect(
                "PUT",
                &base,
                Some(json!({"priority": 2, "labels": ["vip"], "gone": null})),
                200,
            )
            .await;
        assert_eq!(
            put["data"],
            json!({"entityType": entity_type, "entityId": id, "meta": {"priority": 2, "labels": ["vip"]}}),
            "{entity_type}"
        );
        let e = events.next_body().await;
        assert_eq!(e["eventType"], *event_type, "{e}");
        assert_eq!(e["tenantId"], tenant);
        assert_eq!(
            e["data"]["changed"],
            json!(["meta.labels", "meta.priority"]),
            "{e}"
        );
        // One key: read, set, remove (idempotently).
        let got = c
            .expect("GET", &format!("{base}/priority"), None, 200)
            .await;
        assert_eq!(
            got["data"],
            json!({"entityType": entity_type, "entityId": id, "key": "priority", "value": 2})
        );
        c.expect(
            "PUT",
            &format!("{base}/theme"),
            Some(json!({"value": {"dark": true}})),
            200,
        )
        .await;
        assert_eq!(
            events.next_body().await["data"]["changed"],
            json!(["meta.theme"])
        );
        c.expect("DELETE", &format!("{base}/priority"), None, 200)
            .await;
        assert_eq!(
            events.next_body().await["data"]["changed"],
            json!(["meta.priority"])
        );
        let again = c
            .expect("DELETE", &format!("{base}/priority"), None, 200)
            .await;
        assert_eq!(
            again["data"]["meta"],
            json!({"labels": ["vip"], "theme": {"dark": true}})
        );
        c.expect_error(
            "GET",
            &format!("{base}/priority"),
            None,
            404,
            "meta_key_not_found",
        )
        .await;
        c.expect_error(
            "PUT",
            &format!("{base}/bad-key"),
            Some(json!({"value": 1})),
            400,
            "invalid_path_parameter",
        )
        .await;
        c.expect_error(
            "PUT",
            &base,
            Some(json!({"k": {"$where": 1}})),
            400,
            "validation_error",
        )
        .await;
        // Nothing changes: no event.
        c.expect("PUT", &base, Some(json!({"labels": ["vip"]})), 200)
            .await;
        assert!(
            events.drain(Duration::from_millis(300)).await.is_empty(),
            "{entity_type}: an unchanged PUT emits nothing"
        );
    }

    // The meta is in every read of the entity.
    let alice = c.expect("GET", "/api/users/alice", None, 200).await;
    assert_eq!(alice["data"]["meta"]["theme"], json!({"dark": true}));
    let dialog = c
        .expect("GET", &format!("/api/dialogs/{d}"), None, 200)
        .await;
    assert_eq!(dialog["data"]["meta"]["labels"], json!(["vip"]));
    let bob = dialog["data"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["userId"] == "bob")
        .cloned()
        .unwrap_or_default();
    assert_eq!(bob["meta"]["theme"], json!({"dark": true}));
    let msg = c
        .expect("GET", &format!("/api/messages/{m}"), None, 200)
        .await;
    assert_eq!(msg["data"]["meta"]["labels"], json!(["vip"]));
    let tenants = Checked::new(stack.api.admin())
        .expect(
            "GET",
            &format!("/api/tenants?filter=(tenantId,eq,{tenant})"),
            None,
            200,
        )
        .await;
    assert_eq!(tenants["data"][0]["meta"]["labels"], json!(["vip"]));

    // A membership's change reaches every member, naming whose it was.
    let alice_updates = c.updates_of("alice", 1).await;
    let member_update = alice_updates
        .iter()
        .find(|u| u.event_type == EventType::DialogMemberChanged)
        .unwrap_or_else(|| panic!("alice got no dialog.member.changed update"));
    assert_eq!(member_update.data["changedMember"]["userId"], "bob");
    assert_eq!(
        member_update.data["changed"],
        json!(["meta.labels", "meta.priority"])
    );

    // Clearing names every key once.
    c.expect("DELETE", "/api/meta/user/alice", None, 200).await;
    let cleared = events.next_body().await;
    assert_eq!(
        cleared["data"]["changed"],
        json!(["meta.labels", "meta.theme"])
    );
    assert_eq!(cleared["data"]["user"]["meta"], json!({}));

    // Refusals: unknown entities, another tenant, a deleted message.
    c.expect_error("GET", "/api/meta/user/nobody", None, 404, "user_not_found")
        .await;
    c.expect_error(
        "GET",
        &format!("/api/meta/dialogMember/{d}:carol"),
        None,
        404,
        "member_not_found",
    )
    .await;
    c.expect_error(
        "GET",
        "/api/meta/tenant/someone_else",
        None,
        404,
        "tenant_not_found",
    )
    .await;
    // An id that cannot name an entity of the type names none.
    c.expect_error(
        "GET",
        "/api/meta/dialogMember/x",
        None,
        404,
        "member_not_found",
    )
    .await;
    c.expect_error(
        "DELETE",
        "/api/meta/message/0",
        None,
        404,
        "message_not_found",
    )
    .await;
    c.expect_error(
        "GET",
        "/api/meta/room/x",
        None,
        400,
        "invalid_path_parameter",
    )
    .await;
    c.expect("DELETE", &format!("/api/messages/{m}"), None, 200)
        .await;
    c.expect_error(
        "PUT",
        &format!("/api/meta/message/{m}"),
        Some(json!({"k": 1})),
        409,
        "message_deleted",
    )
    .await;
    stack.stop().await;
}
