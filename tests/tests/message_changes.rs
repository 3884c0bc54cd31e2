//! One message by id: read, edit, soft delete, quotes; unread and stats exact through all of it,
//! concurrent writers included. Every response is checked against the spec.

use chat3_sdk::EventType;
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::{Stack, TestApi};
use serde_json::{json, Value};

async fn send(c: &Checked, dialog: &str, from: &str, content: &str) -> Value {
    c.expect(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(json!({"senderId": from, "content": content, "meta": {"n": content}})),
        201,
    )
    .await["data"]
        .clone()
}

/// Each member's unread count as the dialog reports it.
async fn unread(c: &Checked, dialog: &str) -> Vec<(String, u64)> {
    let d = c
        .expect("GET", &format!("/api/dialogs/{dialog}"), None, 200)
        .await;
    d["data"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["userId"].as_str().unwrap_or_default().to_owned(),
                m["unreadCount"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(u, n)| ((*u).to_owned(), *n)).collect()
}

#[tokio::test]
async fn edits_and_soft_deletes_reach_every_member_and_unread_stays_exact() {
    let stack = Stack::start("msgchange").await;
    let c = Checked::new(stack.client.clone());
    let tenant = stack.tenant.to_string();
    let mut events = TestQueue::bind(
        &stack.api.amqp.url,
        &stack.api.amqp.events_exchange,
        &["message.changed.#", "message.delete.#"],
    )
    .await;
    let dialog = c.dialog_of(&["alice", "bob", "carol"]).await;
    let m1 = send(&c, &dialog, "alice", "m1").await;
    let m2 = send(&c, &dialog, "alice", "m2").await;
    c.expect(
        "POST",
        &format!("/api/users/bob/dialogs/{dialog}/markAllRead"),
        Some(json!({})),
        200,
    )
    .await;
    let m3 = send(&c, &dialog, "alice", "m3").await;
    let m4 = send(&c, &dialog, "alice", "m4").await;
    assert_eq!(
        unread(&c, &dialog).await,
        pairs(&[("alice", 0), ("bob", 2), ("carol", 4)])
    );

    let get = c
        .expect(
            "GET",
            &format!(
                "/api/messages/{}",
                m1["messageId"].as_str().unwrap_or_default()
            ),
            None,
            200,
        )
        .await;
    assert_eq!(get["data"], m1);
    assert_eq!(m1["statuses"], json!({"read": 0, "delivered": 0}));
    assert_eq!(m1["reactions"], json!([]));

    // Deleting below bob's watermark changes only carol's count; above it, both.
    let id2 = m2["messageId"].as_str().unwrap_or_default().to_owned();
    let deleted = c
        .expect("DELETE", &format!("/api/messages/{id2}"), None, 200)
        .await;
    let deleted_at = deleted["data"]["deletedAt"].clone();
    assert!(deleted_at.as_i64().is_some());
    let mut expect = m2.clone();
    expect["content"] = json!("");
    expect["meta"] = json!({});
    expect["deletedAt"] = deleted_at.clone();
    assert_eq!(deleted["data"], expect);
    assert_eq!(
        unread(&c, &dialog).await,
        pairs(&[("alice", 0), ("bob", 2), ("carol", 3)])
    );
    let e = events.next_body().await;
    assert_eq!(
        e,
        json!({
            "eventId": e["eventId"], "tenantId": tenant, "eventType": "message.delete",
            "entityType": "message", "entityId": id2, "dialogId": dialog,
            "actorId": "alice", "actorType": "user", "occurredAt": e["occurredAt"],
            "data": {"message": expect},
        })
    );
    let id4 = m4["messageId"].as_str().unwrap_or_default().to_owned();
    c.expect("DELETE", &format!("/api/messages/{id4}"), None, 200)
        .await;
    assert_eq!(
        unread(&c, &dialog).await,
        pairs(&[("alice", 0), ("bob", 1), ("carol", 2)])
    );
    // Again: the same deleted message, nothing changes, no event.
    let again = c
        .expect("DELETE", &format!("/api/messages/{id4}"), None, 200)
        .await;
    assert_eq!(
        again["data"]["deletedAt"],
        events.next_body().await["data"]["message"]["deletedAt"]
    );
    assert_eq!(
        unread(&c, &dialog).await,
        pairs(&[("alice", 0), ("bob", 1), ("carol", 2)])
    );
    let d = c
        .expect("GET", &format!("/api/dialogs/{dialog}"), None, 200)
        .await;
    assert_eq!(
        (
            d["data"]["messageCount"].clone(),
            d["data"]["lastSeq"].clone()
        ),
        (json!(2), json!(4))
    );
    // The inbox shows the newest message as deleted.
    let inbox = c.expect("GET", "/api/users/carol/dialogs", None, 200).await;
    assert_eq!(
        inbox["data"][0]["lastMessage"]["deletedAt"],
        again["data"]["deletedAt"]
    );
    assert_eq!(inbox["data"][0]["lastMessage"]["content"], "");
    assert_eq!(inbox["data"][0]["unreadCount"], 2);

    // Edit: content and meta replaced, editedAt set; a deleted message cannot be edited.
    let id3 = m3["messageId"].as_str().unwrap_or_default().to_owned();
    let edited = c
        .expect(
            "PUT",
            &format!("/api/messages/{id3}"),
            Some(json!({"content": "m3, edited", "meta": {"e": 1}})),
            200,
        )
        .await;
    let mut expect3 = m3.clone();
    expect3["content"] = json!("m3, edited");
    expect3["meta"] = json!({"e": 1});
    expect3["editedAt"] = edited["data"]["editedAt"].clone();
    assert_eq!(edited["data"], expect3);
    let e = events.next_body().await;
    assert_eq!(e["eventType"], "message.changed");
    assert_eq!(e["data"], json!({"message": expect3}));
    let kept_meta = c
        .expect(
            "PUT",
            &format!("/api/messages/{id3}"),
            Some(json!({"content": "m3, edited twice"})),
            200,
        )
        .await;
    assert_eq!(kept_meta["data"]["meta"], json!({"e": 1}));
    events.next_body().await;
    c.expect_error(
        "PUT",
        &format!("/api/messages/{id2}"),
        Some(json!({"content": "back"})),
        409,
        "message_deleted",
    )
    .await;
    c.expect_error(
        "PUT",
        &format!("/api/messages/{id3}"),
        Some(json!({"content": ""})),
        409,
        "content_required",
    )
    .await;
    c.expect_error(
        "PUT",
        &format!("/api/messages/{id3}"),
        Some(json!({"content": "x", "seq": 9})),
        400,
        "validation_error",
    )
    .await;
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"content": "x"}))),
        ("DELETE", None),
    ] {
        c.expect_error(
            method,
            "/api/messages/msg_0000000000aaaaaaaaaa",
            body,
            404,
            "message_not_found",
        )
        .await;
    }
    c.expect_error(
        "GET",
        "/api/messages/not-an-id",
        None,
        400,
        "invalid_path_parameter",
    )
    .await;

    // Quotes carry a snapshot taken when quoting; a deleted message cannot be quoted.
    let quoting = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/messages"),
            Some(json!({"senderId": "bob", "content": "re", "quotedMessageId": id3})),
            201,
        )
        .await;
    let snapshot = json!({"messageId": id3, "senderId": "alice", "content": "m3, edited twice", "type": "text", "createdAt": m3["createdAt"]});
    assert_eq!(quoting["data"]["quotedMessage"], snapshot);
    c.expect(
        "PUT",
        &format!("/api/messages/{id3}"),
        Some(json!({"content": "m3, later"})),
        200,
    )
    .await;
    let qid = quoting["data"]["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let read_back = c
        .expect("GET", &format!("/api/messages/{qid}"), None, 200)
        .await;
    assert_eq!(read_back["data"]["quotedMessage"], snapshot);
    c.expect_error(
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(json!({"senderId": "bob", "content": "re", "quotedMessageId": id2})),
        409,
        "message_deleted",
    )
    .await;

    // A read-write key may edit but not delete.
    let (_, writer) = stack
        .api
        .tenant_with_scopes(
            "msgw",
            Some(vec![chat3_sdk::Scope::Read, chat3_sdk::Scope::Write]),
        )
        .await;
    c.with_client(writer)
        .expect_error(
            "DELETE",
            &format!("/api/messages/{id3}"),
            None,
            403,
            "insufficient_scope",
        )
        .await;

    // Every member got the changes with the message's current state.
    // bob: create, m1, m2, read, m3, m4, delete m2, delete m4, edit, edit, quote(own), edit.
    let bob = c.updates_of("bob", 12).await;
    let kinds: Vec<EventType> = bob.iter().map(|u| u.event_type.clone()).collect();
    assert_eq!(
        kinds[6..],
        [
            EventType::MessageDelete,
            EventType::MessageDelete,
            EventType::MessageChanged,
            EventType::MessageChanged,
            EventType::MessageCreate,
            EventType::MessageChanged,
        ]
    );
    assert_eq!(bob[6].data["message"]["deletedAt"], deleted_at);
    assert_eq!(bob[6].data["message"]["content"], "");
    // Current state when fanned out: every write above had finished (bob's quote moved his
    // watermark to the newest message).
    assert_eq!(bob[11].data["dialog"]["unreadCount"], 0);
    assert_eq!(bob[11].data["message"]["content"], "m3, later");
    let carol = c.updates_of("carol", 11).await;
    assert_eq!(carol[10].data["message"]["messageId"], id3.as_str());

    // Stats agree with the counts.
    c.expect(
        "POST",
        &format!("/api/users/bob/dialogs/{dialog}/markAllRead"),
        Some(json!({})),
        200,
    )
    .await;
    let stats = c.expect("GET", "/api/users/carol/stats", None, 200).await;
    assert_eq!(
        stats["data"],
        json!({"userId": "carol", "dialogCount": 1, "unreadDialogs": 1, "totalUnread": 3})
    );
    let stats = c.expect("GET", "/api/users/bob/stats", None, 200).await;
    assert_eq!(stats["data"]["totalUnread"], 0);
    stack.stop().await;
}

/// Unread as it should be: the member's live countable messages above their watermark.
async fn counted(c: &Checked, dialog: &str, last_read: u64) -> u64 {
    let mut n = 0;
    let mut after = last_read;
    loop {
        let page = c
            .expect(
                "GET",
                &format!("/api/dialogs/{dialog}/messages?afterSeq={after}&limit=100"),
                None,
                200,
            )
            .await;
        let items = page["data"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return n;
        }
        for m in &items {
            after = m["seq"].as_u64().unwrap_or(u64::MAX);
            if m.get("deletedAt").is_none() {
                n += 1;
            }
        }
    }
}

#[tokio::test]
async fn unread_stays_exact_through_concurrent_sends_deletes_reads_joins_and_removals() {
    let api = TestApi::start("unreadrace").await;
    let (_, client) = api.tenant("tnt").await;
    let c = Checked::new(client);
    let dialog = c.dialog_of(&["alice", "bob", "carol", "frank"]).await;
    let mut first = Vec::new();
    for i in 0..10 {
        first.push(send(&c, &dialog, "alice", &format!("a{i}")).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let c = c.clone();
        let dialog = dialog.clone();
        let from = ["alice", "bob"][i % 2];
        tasks.spawn(async move {
            send(&c, &dialog, from, &format!("b{i}")).await;
        });
    }
    for m in first.iter().step_by(2) {
        let c = c.clone();
        let id = m["messageId"].as_str().unwrap_or_default().to_owned();
        tasks.spawn(async move {
            c.expect("DELETE", &format!("/api/messages/{id}"), None, 200)
                .await;
        });
    }
    for who in ["carol", "bob", "carol"] {
        let c = c.clone();
        let dialog = dialog.clone();
        tasks.spawn(async move {
            c.expect(
                "POST",
                &format!("/api/users/{who}/dialogs/{dialog}/markAllRead"),
                Some(json!({})),
                200,
            )
            .await;
        });
    }
    {
        let c = c.clone();
        let dialog = dialog.clone();
        tasks.spawn(async move {
            c.expect(
                "POST",
                &format!("/api/dialogs/{dialog}/members/frank/remove"),
                None,
                200,
            )
            .await;
        });
    }
    for who in ["dave", "erin"] {
        let c = c.clone();
        let dialog = dialog.clone();
        tasks.spawn(async move {
            c.expect(
                "POST",
                &format!("/api/dialogs/{dialog}/members/add"),
                Some(json!({"userId": who})),
                201,
            )
            .await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    let d = c
        .expect("GET", &format!("/api/dialogs/{dialog}"), None, 200)
        .await;
    assert_eq!(d["data"]["lastSeq"], 30);
    assert_eq!(d["data"]["messageCount"], 25, "30 sent, 5 deleted");
    let mut total = 0;
    for m in d["data"]["members"].as_array().cloned().unwrap_or_default() {
        let who = m["userId"].as_str().unwrap_or_default().to_owned();
        let expected = counted(&c, &dialog, m["lastReadSeq"].as_u64().unwrap_or(0)).await;
        assert_eq!(m["unreadCount"].as_u64(), Some(expected), "{who}: {m}");
        let stats = c
            .expect("GET", &format!("/api/users/{who}/stats"), None, 200)
            .await;
        assert_eq!(
            stats["data"]["totalUnread"].as_u64(),
            Some(expected),
            "{who}"
        );
        total += expected;
    }
    assert!(total > 0);
    let who: Vec<&str> = d["data"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["userId"].as_str())
        .collect();
    assert!(!who.contains(&"frank"), "{who:?}");
    let gone = c.expect("GET", "/api/users/frank/stats", None, 200).await;
    assert_eq!(
        gone["data"],
        json!({"userId": "frank", "dialogCount": 0, "unreadDialogs": 0, "totalUnread": 0})
    );
    api.stop().await;
}
