//! The whole message path: API → events → update worker → per-user updates → BFF WebSocket.

use chat3_sdk::EventType;
use std::time::Duration;

use chat3_sdk::{CreateDialog, MemberInput};
use chat3_tests::fixtures::{dialog_of, text, user};
use chat3_tests::ws::{connect, frames_until_quiet, login, next_frame};
use chat3_tests::{eventually, Stack};
use futures_util::StreamExt;

#[tokio::test]
async fn every_member_gets_sequenced_updates_through_the_api() {
    let stack = Stack::start("e2e_fanout").await;
    let c = &stack.client;
    let (alice, bob) = (user("alice"), user("bob"));
    let d = c
        .create_dialog(&CreateDialog {
            members: vec![
                MemberInput {
                    user_id: alice.clone(),
                    user_type: Default::default(),
                },
                MemberInput {
                    user_id: bob.clone(),
                    user_type: Default::default(),
                },
            ],
            name: Some("pair".to_owned()),
            meta: None,
            created_by: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = c
        .send_message(&d.dialog_id, &text("alice", "hi bob"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.mark_all_read(&bob, &d.dialog_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // bob: user.add (1: he was created by joining), dialog.create (2), message.create (3),
    // dialog.read (4); alice: 1 to 3.
    let bob_updates = eventually(Duration::from_secs(20), "bob's four updates", || async {
        let p = c.user_updates(&bob, 0, 100).await.ok()?;
        (p.data.len() == 4).then_some(p)
    })
    .await;
    let seqs: Vec<_> = bob_updates.data.iter().map(|u| u.seq).collect();
    assert_eq!(seqs, vec![Some(1), Some(2), Some(3), Some(4)]);
    let types: Vec<_> = bob_updates
        .data
        .iter()
        .map(|u| u.event_type.clone())
        .collect();
    assert_eq!(
        types,
        vec![
            EventType::UserAdd,
            EventType::DialogCreate,
            EventType::MessageCreate,
            EventType::DialogRead
        ]
    );
    let msg_update = &bob_updates.data[2];
    assert_eq!(
        msg_update.data["message"]["messageId"],
        serde_json::json!(m.message_id)
    );
    assert_eq!(bob_updates.head_seq, 4);
    let alice_updates = eventually(Duration::from_secs(20), "alice's three updates", || async {
        let p = c.user_updates(&alice, 0, 100).await.ok()?;
        (p.data.len() == 3).then_some(p)
    })
    .await;
    assert_eq!(alice_updates.data[2].seq, Some(3));
    // Paging by since.
    let after_one = c
        .user_updates(&bob, 1, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after_one.data.len(), 1);
    assert_eq!(after_one.data[0].seq, Some(2));
    assert!(after_one.has_more);
    stack.stop().await;
}

#[tokio::test]
async fn a_new_end_user_in_no_dialog_connects_and_then_sees_their_first_dialog() {
    let stack = Stack::start("e2e_new").await;
    let session = login(&stack, "+15550002222").await;
    let me = session.user.user_id.clone();
    // The tenant API does not know this user yet (its feed is a 404 user_not_found): the
    // socket replays nothing and stays open.
    let e = stack.client.user_updates(&me, 0, 100).await.err();
    assert_eq!(e.and_then(|e| e.status()), Some(404));
    let mut ws = connect(&stack, &session.token, Some(0)).await;
    let first = frames_until_quiet(&mut ws, Duration::from_secs(2)).await;
    assert!(first.iter().all(|f| f.event != "error"), "{first:?}");
    stack
        .client
        .create_dialog(&CreateDialog {
            name: Some("welcome".into()),
            ..dialog_of(&[me.as_str()])
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let created = loop {
        let f = next_frame(&mut ws, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no frame for the new dialog: the socket closed?"));
        if f.event == "dialog:update" {
            break f;
        }
    };
    assert_eq!(created.data["dialog"]["name"], "welcome", "{created:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_logged_in_user_sees_messages_live_and_resumes_without_duplicates() {
    let stack = Stack::start("e2e_ws").await;
    let session = login(&stack, "+15550001111").await;
    let me = session.user.user_id.clone();
    let friend = user("friend");
    let c = &stack.client;
    let d = c
        .create_dialog(&CreateDialog {
            members: vec![
                MemberInput {
                    user_id: me.clone(),
                    user_type: Default::default(),
                },
                MemberInput {
                    user_id: friend.clone(),
                    user_type: Default::default(),
                },
            ],
            name: None,
            meta: None,
            created_by: Some(friend.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut ws = connect(&stack, &session.token, Some(0)).await;
    // Replay brings my user.add (seq 1, only as chat3:update) and the dialog.create (seq 2).
    let first = frames_until_quiet(&mut ws, Duration::from_secs(3)).await;
    assert!(
        first
            .iter()
            .any(|f| f.event == "dialog:update" && f.seq == Some(2)),
        "{first:?}"
    );

    // Live: a message posted through the tenant API arrives as message:new.
    c.send_message(&d.dialog_id, &text("friend", "live one"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live = loop {
        let f = next_frame(&mut ws, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no live frame"));
        if f.event == "message:new" {
            break f;
        }
    };
    assert_eq!(live.seq, Some(3));
    assert_eq!(live.data["message"]["content"], "live one");
    assert_eq!(live.data["dialog"]["unreadCount"], 1);
    drop(ws);

    // Missed while disconnected: two messages. Resume from seq 3 gets exactly those, once each.
    c.send_message(&d.dialog_id, &text("friend", "missed 1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.send_message(&d.dialog_id, &text("friend", "missed 2"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eventually(
        Duration::from_secs(20),
        "the missed updates to be stored",
        || async {
            let p = c.user_updates(&me, 3, 10).await.ok()?;
            (p.data.len() == 2).then_some(())
        },
    )
    .await;
    let mut ws = connect(&stack, &session.token, Some(3)).await;
    let resumed = frames_until_quiet(&mut ws, Duration::from_secs(3)).await;
    let new_msgs: Vec<_> = resumed
        .iter()
        .filter(|f| f.event == "message:new")
        .map(|f| {
            (
                f.seq,
                f.data["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        new_msgs,
        vec![
            (Some(4), "missed 1".to_owned()),
            (Some(5), "missed 2".to_owned())
        ]
    );
    let raw_seqs: Vec<_> = resumed
        .iter()
        .filter(|f| f.event == "chat3:update")
        .map(|f| f.seq)
        .collect();
    assert_eq!(raw_seqs, vec![Some(4), Some(5)]);
    stack.stop().await;
}

#[tokio::test]
async fn a_connected_socket_gets_every_update_once_and_in_order_from_two_workers() {
    let stack = Stack::start_with_workers("e2e_order", 2).await;
    let session = login(&stack, "+15550004444").await;
    let me = session.user.user_id.clone();
    let c = &stack.client;
    const DIALOGS: usize = 5;
    const MESSAGES: usize = 200;
    let mut dialogs = Vec::new();
    for i in 0..DIALOGS {
        let friend = user(&format!("friend{i}"));
        let d = c
            .create_dialog(&CreateDialog {
                members: vec![
                    MemberInput {
                        user_id: me.clone(),
                        user_type: Default::default(),
                    },
                    MemberInput {
                        user_id: friend.clone(),
                        user_type: Default::default(),
                    },
                ],
                name: None,
                meta: None,
                created_by: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        dialogs.push((d.dialog_id, friend));
    }
    let mut ws = connect(&stack, &session.token, Some(0)).await;
    // Eight concurrent senders over the user's dialogs, while both workers fan out.
    let sends = (0..MESSAGES).map(|i| {
        let (d, friend) = dialogs[i % DIALOGS].clone();
        async move {
            c.send_message(&d, &text(friend.as_str(), &format!("m{i}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    });
    futures_util::stream::iter(sends)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let total = (DIALOGS + MESSAGES) as u64;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&total) {
        let f = next_frame(&mut ws, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("socket went quiet after seqs {:?}", seqs.last()));
        if f.event == "chat3:update" {
            seqs.push(f.seq.unwrap_or(0));
        }
    }
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    stack.stop().await;
}
