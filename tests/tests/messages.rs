//! The message path through the API: seq, membership, clientMessageId, unread, errors.

use chat3_sdk::MessageQuery;
use chat3_tests::fixtures::{dialog_of, text, user};
use chat3_tests::TestApi;
use serde_json::json;

#[tokio::test]
async fn messages_get_increasing_seq_and_list_by_page_and_by_seq() {
    let api = TestApi::start("seq").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 1..=5u64 {
        let m = c
            .send_message(&d.dialog_id, &text("alice", &format!("m{i}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.seq, i);
    }
    let page = c
        .list_messages(
            &d.dialog_id,
            &MessageQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        page.data.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 4]
    );
    assert_eq!((page.pagination.total, page.pagination.pages), (5, 3));
    let after = c
        .list_messages(
            &d.dialog_id,
            &MessageQuery {
                after_seq: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        after.data.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5]
    );
    let before = c
        .list_messages(
            &d.dialog_id,
            &MessageQuery {
                before_seq: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        before.data.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let between = c
        .list_messages(
            &d.dialog_id,
            &MessageQuery {
                after_seq: Some(1),
                before_seq: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        between.data.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    assert_eq!(between.pagination.total, 3);
    api.stop().await;
}

#[tokio::test]
async fn a_user_listed_twice_is_one_member_with_the_first_type() {
    let api = TestApi::start("dupmember").await;
    let (_, c) = api.tenant("tnt").await;
    let r = c
        .raw(
            "POST",
            "/api/dialogs",
            Some(&json!({"members": [
                {"userId": "alice", "type": "bot"},
                {"userId": "bob"},
                {"userId": "alice"}
            ]})),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 201, "{}", r.body);
    let members = r.body["data"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<_> = members
        .iter()
        .map(|m| (m["userId"].clone(), m["type"].clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (json!("alice"), json!("bot")),
            (json!("bob"), json!("user"))
        ]
    );
    api.stop().await;
}

#[tokio::test]
async fn sending_twice_with_same_client_message_id_returns_original() {
    let api = TestApi::start("cmid").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut req = text("alice", "once");
    req.client_message_id = Some("client-1".to_owned());
    let body = serde_json::to_value(&req).unwrap_or_default();
    let path = format!("/api/dialogs/{}/messages", d.dialog_id);
    let first = c
        .raw("POST", &path, Some(&body), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = c
        .raw("POST", &path, Some(&body), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.status, second.status), (201, 200));
    assert_eq!(first.body, second.body);
    let all = c
        .list_messages(&d.dialog_id, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.data.len(), 1);
    let bob = c
        .user_dialogs(&user("bob"), 1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bob.data[0].unread_count, 1);
    api.stop().await;
}

#[tokio::test]
async fn a_sender_who_is_not_a_member_is_refused() {
    let api = TestApi::start("member").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = c
        .send_message(&d.dialog_id, &text("mallory", "hi"))
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted"));
    assert_eq!(
        (e.status(), e.code()),
        (Some(403), Some("sender_not_member"))
    );
    // The failed attempt consumed no seq.
    let m = c
        .send_message(&d.dialog_id, &text("bob", "hi"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.seq, 1);
    api.stop().await;
}

#[tokio::test]
async fn unread_counts_follow_sends_and_mark_all_read() {
    let api = TestApi::start("unread").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob", "carol"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let unread = |u: &'static str| {
        let c = c.clone();
        async move {
            let inbox = c
                .user_dialogs(&user(u), 1, 10)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (inbox.data[0].unread_count, inbox.data[0].last_read_seq)
        }
    };
    for i in 0..3 {
        c.send_message(&d.dialog_id, &text("alice", &format!("a{i}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(unread("alice").await, (0, 3));
    assert_eq!(unread("bob").await, (3, 0));
    let read = c
        .mark_all_read(&user("bob"), &d.dialog_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((read.last_read_seq, read.unread_count), (3, 0));
    assert_eq!(unread("bob").await, (0, 3));
    c.send_message(&d.dialog_id, &text("bob", "b"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Sending moves the sender's watermark; others see one more unread.
    assert_eq!(unread("bob").await, (0, 4));
    assert_eq!(unread("alice").await, (1, 3));
    assert_eq!(unread("carol").await, (4, 0));
    // System messages do not count as unread, and need no member sender.
    let mut sys = text("system", "alice joined");
    sys.message_type = Some("system.join".to_owned());
    let m = c
        .send_message(&d.dialog_id, &sys)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.seq, 5);
    assert_eq!(unread("carol").await, (4, 0));
    c.mark_all_read(&user("carol"), &d.dialog_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unread("carol").await, (0, 5));
    let inbox = c
        .user_dialogs(&user("carol"), 1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inbox.data[0].last_message.as_ref().map(|m| m.seq), Some(5));
    api.stop().await;
}

#[tokio::test]
async fn concurrent_sends_to_one_dialog_get_distinct_seqs_and_exact_unread() {
    let api = TestApi::start("conc").await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob", "carol"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let c = c.clone();
        let id = d.dialog_id.clone();
        let sender = if i % 2 == 0 { "alice" } else { "bob" };
        tasks.push(tokio::spawn(async move {
            c.send_message(&id, &text(sender, &format!("m{i}")))
                .await
                .map(|m| m.seq)
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(
            t.await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    let carol = c
        .user_dialogs(&user("carol"), 1, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(carol.data[0].unread_count, 30);
    let dialog = c
        .get_dialog(&d.dialog_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((dialog.last_seq, dialog.message_count), (30, 30));
    for m in &dialog.members {
        // Each sender's watermark is at their own newest message; unread = messages after it.
        let after: u64 = if m.user_id.as_str() == "carol" {
            30
        } else {
            30 - m.last_read_seq
        };
        assert_eq!(m.unread_count, after, "{}", m.user_id);
    }
    api.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let api = TestApi::start("errs").await;
    let (_, c) = api.tenant("tnt").await;
    let bad_json = c
        .raw(
            "POST",
            "/api/dialogs",
            None,
            &[("content-type", "application/json")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad_json.status, 400);
    assert_eq!(bad_json.body["code"], "invalid_json");
    let not_found = c
        .raw("GET", "/api/nope", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        not_found.body,
        json!({"error": "Not Found", "message": "no route for GET /api/nope", "code": "route_not_found"})
    );
    let not_allowed = c
        .raw("DELETE", "/api/dialogs", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.body["code"], "method_not_allowed");
    let bad_id = c
        .raw("GET", "/api/dialogs/nope", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (bad_id.status, bad_id.body["code"].as_str()),
        (400, Some("invalid_path_parameter"))
    );
    let too_big = json!({"senderId": "a", "content": "x".repeat(70_000)});
    let d = c
        .create_dialog(&dialog_of(&["a"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = c
        .raw(
            "POST",
            &format!("/api/dialogs/{}/messages", d.dialog_id),
            Some(&too_big),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (resp.status, resp.body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let long = json!({"senderId": "a", "content": "x".repeat(10_001)});
    let resp = c
        .raw(
            "POST",
            &format!("/api/dialogs/{}/messages", d.dialog_id),
            Some(&long),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (resp.status, resp.body["code"].as_str()),
        (400, Some("validation_error"))
    );
    let limit = c
        .raw("GET", "/api/dialogs?limit=101", None, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (limit.status, limit.body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let bad_user = json!({"members": [{"userId": "a.b"}]});
    let resp = c
        .raw("POST", "/api/dialogs", Some(&bad_user), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (resp.status, resp.body["code"].as_str()),
        (400, Some("validation_error"))
    );
    api.stop().await;
}

#[tokio::test]
async fn the_inbox_lists_the_most_recently_active_dialog_first() {
    let api = TestApi::start("inbox").await;
    let (_, c) = api.tenant("tnt").await;
    let older = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Activity times are milliseconds: keep the two dialogs apart.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let newer = c
        .create_dialog(&dialog_of(&["alice", "carol"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let order = |c: chat3_sdk::client::Client| async move {
        let inbox = c
            .user_dialogs(&user("alice"), 1, 10)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        inbox
            .data
            .into_iter()
            .map(|d| d.dialog_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        order(c.clone()).await,
        vec![newer.dialog_id.clone(), older.dialog_id.clone()]
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    c.send_message(&older.dialog_id, &text("bob", "bump"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        order(c.clone()).await,
        vec![older.dialog_id.clone(), newer.dialog_id.clone()]
    );
    // Paging keeps the order.
    let second = c
        .user_dialogs(&user("alice"), 2, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.data[0].dialog_id, newer.dialog_id);
    assert_eq!((second.pagination.total, second.pagination.pages), (2, 2));
    api.stop().await;
}

#[tokio::test]
async fn a_media_message_may_have_no_content_when_its_meta_names_the_media() {
    let api = TestApi::start("media").await;
    let (_, client) = api.tenant("tnt").await;
    let c = chat3_tests::checked::Checked::new(client);
    let d = c.dialog_of(&["alice", "bob"]).await;
    let path = format!("/api/dialogs/{d}/messages");
    let url = "https://cdn.example/p/1.png";
    let m = c
        .expect(
            "POST",
            &path,
            Some(json!({"senderId": "alice", "type": "image", "meta": {"url": url, "w": 640}})),
            201,
        )
        .await["data"]
        .clone();
    assert_eq!(
        (m["content"].clone(), m["type"].clone()),
        (json!(""), json!("image"))
    );
    assert_eq!(m["meta"]["url"], url);
    let id = m["messageId"].as_str().unwrap_or_default().to_owned();
    // It counts as unread like any message, and its caption can be set and removed again.
    assert_eq!(
        c.expect("GET", "/api/users/bob/stats", None, 200).await["data"]["totalUnread"],
        1
    );
    c.expect(
        "PUT",
        &format!("/api/messages/{id}"),
        Some(json!({"content": "a cat"})),
        200,
    )
    .await;
    c.expect(
        "PUT",
        &format!("/api/messages/{id}"),
        Some(json!({"content": ""})),
        200,
    )
    .await;
    // Without a media url there is no message without content.
    for body in [
        json!({"senderId": "alice"}),
        json!({"senderId": "alice", "content": "", "type": "image"}),
        json!({"senderId": "alice", "type": "file", "meta": {"url": ""}}),
        json!({"senderId": "alice", "type": "file", "meta": {"url": 5}}),
    ] {
        c.expect_error("POST", &path, Some(body), 400, "validation_error")
            .await;
    }
    c.expect_error(
        "PUT",
        &format!("/api/messages/{id}"),
        Some(json!({"content": "", "meta": {"w": 640}})),
        409,
        "content_required",
    )
    .await;
    assert_eq!(
        c.expect("GET", &format!("/api/messages/{id}"), None, 200)
            .await["data"]["meta"]["url"],
        url,
        "the refused edit changed nothing"
    );
}
