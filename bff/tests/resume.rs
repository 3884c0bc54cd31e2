//! Resume through the tenant API, against a tiny fake of `GET /api/users/{u}/updates` (the
//! end-to-end resume test against the real API lives in the `tests` crate): replay after
//! `since`, dedup of the live overlap, `resync:required`, and an unreachable API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use chat3_sdk::{Update, UpdatesPage};
use common::{connect, message_update, next_frame, spawn_with, test_config};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// What the fake API stores and what it was asked.
#[derive(Default)]
struct Fake {
    /// Filled once the test knows its user.
    updates: Mutex<Vec<Update>>,
    retained_from: u64,
    /// `(since, X-API-Key, X-Tenant-ID)` of each call.
    calls: Mutex<Vec<(u64, String, String)>>,
}

#[derive(Deserialize)]
struct Q {
    since: u64,
    limit: u64,
}

async fn updates(req: HttpRequest, q: web::Query<Q>, fake: web::Data<Fake>) -> HttpResponse {
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    fake.calls
        .lock()
        .unwrap()
        .push((q.since, header("x-api-key"), header("x-tenant-id")));
    let stored = fake.updates.lock().unwrap().clone();
    let head_seq = stored.iter().filter_map(|u| u.seq).max().unwrap_or(0);
    if q.since + 1 < fake.retained_from {
        return HttpResponse::Ok().json(UpdatesPage {
            data: vec![],
            has_more: false,
            resync_required: true,
            head_seq,
        });
    }
    let after: Vec<Update> = stored
        .into_iter()
        .filter(|u| u.seq.unwrap_or(0) > q.since)
        .collect();
    let page: Vec<Update> = after.iter().take(q.limit as usize).cloned().collect();
    HttpResponse::Ok().json(UpdatesPage {
        has_more: after.len() > page.len(),
        data: page,
        resync_required: false,
        head_seq,
    })
}

/// Serves `fake` on a free port; returns its base URL.
fn serve(fake: Arc<Fake>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let data = web::Data::from(fake);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/users/{user}/updates", web::get().to(updates))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

/// A BFF whose API is a fake holding `seqs` for a freshly logged-in user.
async fn bff_with_stored(
    prefix: &str,
    seqs: std::ops::RangeInclusive<u64>,
    retained_from: u64,
) -> (common::TestBff, chat3_sdk::Session, Arc<Fake>) {
    let fake = Arc::new(Fake {
        retained_from,
        ..Default::default()
    });
    let mut config = test_config(prefix);
    config.api_url = serve(fake.clone());
    let bff = spawn_with(config).await;
    let ann = bff.login().await;
    *fake.updates.lock().unwrap() = seqs
        .map(|s| message_update(&bff.tenant, &ann.user.user_id, s))
        .collect();
    (bff, ann, fake)
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnecting_with_since_replays_stored_updates_then_live_ones_without_duplicates() {
    let (bff, ann, fake) = bff_with_stored("resume", 1..=3, 1).await;
    let (tenant, user) = (bff.tenant.clone(), ann.user.user_id.clone());
    let mut ws = connect(&bff, &format!("token={}&since=1", ann.token)).await;
    for seq in [2, 3] {
        let raw = next_frame(&mut ws).await;
        assert_eq!((raw.event.as_str(), raw.seq), ("chat3:update", Some(seq)));
        let mapped = next_frame(&mut ws).await;
        assert_eq!(
            (mapped.event.as_str(), mapped.seq),
            ("message:new", Some(seq))
        );
    }
    // Live: seq 3 was already replayed, seq 4 is new.
    bff.publish(&message_update(&tenant, &user, 3)).await;
    bff.publish(&message_update(&tenant, &user, 4)).await;
    let next = next_frame(&mut ws).await;
    assert_eq!((next.event.as_str(), next.seq), ("chat3:update", Some(4)));

    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(calls, vec![(1, "c3k_test".to_owned(), tenant.to_string())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn since_older_than_retention_sends_resync_required_then_live_updates_above_head() {
    let (bff, ann, _fake) = bff_with_stored("resync", 10..=12, 10).await;
    let (tenant, user) = (bff.tenant.clone(), ann.user.user_id.clone());
    let mut ws = connect(&bff, &format!("token={}&since=2", ann.token)).await;
    let resync = next_frame(&mut ws).await;
    assert_eq!(resync.event, "resync:required");
    assert_eq!(resync.data, json!({ "headSeq": 12 }));
    bff.publish(&message_update(&tenant, &user, 12)).await;
    bff.publish(&message_update(&tenant, &user, 13)).await;
    let next = next_frame(&mut ws).await;
    assert_eq!(next.seq, Some(13));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_closes_a_resuming_socket_with_try_again_later() {
    // The default test configuration points the API at a closed port.
    let bff = spawn_with(test_config("noapi")).await;
    let ann = bff.login().await;
    let mut ws = connect(&bff, &format!("token={}&since=5", ann.token)).await;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("an answer within 10 s");
    match msg {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1013);
            assert_eq!(frame.reason.as_str(), "replay unavailable");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_updates_out_of_order_are_delivered_in_seq_order_once_each() {
    // Stored: 1..=6. Live they arrive as 1, 4, 2, 3, 6, 5 (two workers publishing one user's
    // updates): the socket must still see 1..=6 exactly once, in order.
    let (bff, ann, fake) = bff_with_stored("gaps", 1..=6, 1).await;
    let (tenant, user) = (bff.tenant.clone(), ann.user.user_id.clone());
    let mut ws = connect(&bff, &format!("token={}&since=0", ann.token)).await;
    // The replay from 0 sends everything stored so far.
    for seq in 1..=6 {
        assert_eq!(next_frame(&mut ws).await.seq, Some(seq));
        assert_eq!(next_frame(&mut ws).await.seq, Some(seq));
    }
    // The "workers" store 7..=12, then publish them out of order.
    let more: Vec<_> = (7..=12)
        .map(|s| message_update(&tenant, &user, s))
        .collect();
    fake.updates.lock().unwrap().extend(more.clone());
    for seq in [7, 10, 8, 9, 12, 11] {
        bff.publish(&more[seq as usize - 7]).await;
    }
    let mut raw_seqs = Vec::new();
    loop {
        let f = next_frame(&mut ws).await;
        if f.event == "chat3:update" {
            raw_seqs.push(f.seq.unwrap_or(0));
        }
        if f.event == "message:new" && f.seq == Some(12) {
            break;
        }
    }
    assert_eq!(raw_seqs, vec![7, 8, 9, 10, 11, 12]);
    // Nothing more: a marker after the late copies arrives next.
    bff.publish(&message_update(&tenant, &user, 13)).await;
    fake.updates
        .lock()
        .unwrap()
        .push(message_update(&tenant, &user, 13));
    let next = next_frame(&mut ws).await;
    assert_eq!((next.event.as_str(), next.seq), ("chat3:update", Some(13)));
}
