//! What a connected end user's socket shows for each kind of change in their dialog: every
//! update as `chat3:update` followed by its mapped frame, in seq order.

use std::time::Duration;

use chat3_sdk::WsFrame;
use chat3_tests::checked::Checked;
use chat3_tests::ws::{connect, login, next_frame, Ws};
use chat3_tests::Stack;
use serde_json::{json, Value};

/// The next mapped frame (skipping `chat3:update`), with the raw update's event type.
async fn mapped(ws: &mut Ws) -> (String, WsFrame) {
    let mut event_type = String::new();
    loop {
        let f = next_frame(ws, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no frame"));
        if f.event == "chat3:update" {
            event_type = f.data["eventType"].as_str().unwrap_or_default().to_owned();
            continue;
        }
        return (event_type, f);
    }
}

#[tokio::test]
async fn a_socket_sees_the_right_frame_for_each_kind_of_change() {
    let stack = Stack::start("frames").await;
    let c = Checked::new(stack.client.clone());
    let ann = login(&stack, "+15550004001").await;
    let a = ann.user.user_id.to_string();
    let d = c
        .expect(
            "POST",
            "/api/dialogs",
            Some(json!({"members": [{"userId": a}, {"userId": "bob"}]})),
            201,
        )
        .await;
    let dialog = d["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut ws = connect(&stack, &ann.token, Some(0)).await;
    // (seq 1 is ann's own `user.add`, which has no mapped frame.)
    let (_, created) = mapped(&mut ws).await;
    assert_eq!(created.event, "dialog:update");

    let m = c
        .expect(
            "POST",
            &format!("/api/dialogs/{dialog}/messages"),
            Some(json!({"senderId": "bob", "content": "hi"})),
            201,
        )
        .await;
    let mid = m["data"]["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let steps: Vec<(&str, String, Option<Value>, u16)> = vec![
        (
            "PATCH",
            format!("/api/dialogs/{dialog}"),
            Some(json!({"name": "Renamed"})),
            200,
        ),
        (
            "PUT",
            format!("/api/messages/{mid}"),
            Some(json!({"content": "hi!"})),
            200,
        ),
        (
            "POST",
            format!("/api/users/bob/dialogs/{dialog}/messages/{mid}/reactions/set"),
            Some(json!({"reaction": "👍"})),
            200,
        ),
        (
            "POST",
            format!("/api/users/{a}/dialogs/{dialog}/messages/{mid}/status/read"),
            None,
            201,
        ),
        (
            "POST",
            format!("/api/dialogs/{dialog}/members/add"),
            Some(json!({"userId": "carol"})),
            201,
        ),
        (
            "POST",
            format!("/api/dialogs/{dialog}/members/carol/remove"),
            None,
            200,
        ),
        ("DELETE", format!("/api/messages/{mid}"), None, 200),
        ("DELETE", format!("/api/dialogs/{dialog}"), None, 200),
    ];
    for (method, path, body, status) in &steps {
        c.expect(method, path, body.clone(), *status).await;
    }
    let mut seen = Vec::new();
    let mut last_seq = created.seq.unwrap_or_default();
    for _ in 0..(steps.len() + 1) {
        let (event_type, f) = mapped(&mut ws).await;
        let seq = f
            .seq
            .unwrap_or_else(|| panic!("{event_type} without a seq"));
        assert_eq!(
            seq,
            last_seq + 1,
            "{event_type}: seqs in order without gaps"
        );
        last_seq = seq;
        seen.push((event_type, f.event.clone()));
        if f.event == "message:update" && seen.len() == 3 {
            assert_eq!(f.data["message"]["content"], "hi!");
        }
    }
    let expected = [
        ("message.create", "message:new"),
        ("dialog.changed", "dialog:update"),
        ("message.changed", "message:update"),
        ("message.reaction.changed", "message:update"),
        ("message.status.changed", "dialog:update"),
        ("dialog.member.add", "dialog:update"),
        ("dialog.member.remove", "dialog:update"),
        ("message.delete", "message:update"),
        ("dialog.delete", "dialog:update"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, f)| ((*t).to_owned(), (*f).to_owned()))
        .collect();
    assert_eq!(seen, expected);
    stack.stop().await;
}
