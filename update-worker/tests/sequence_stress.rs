//! Per-user sequences under two concurrent worker instances.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chat3_sdk::DialogId;

use common::{eventually_within, Harness};
use futures_util::StreamExt;

const USERS: [&str; 8] = ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"];
const EVENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_give_every_user_gapless_unique_seqs_and_never_older_state() {
    let mut h = Harness::new("uw_stress").await;
    h.config.prefetch = 16;
    h.start_worker().await;
    h.start_worker().await;

    // Six dialogs of four members each over eight users: every user is in several dialogs.
    let mut dialogs: Vec<(DialogId, Vec<&str>)> = Vec::new();
    for d in 0..6 {
        let members: Vec<&str> = (0..4).map(|i| USERS[(d + i * 2) % USERS.len()]).collect();
        let with_types: Vec<(&str, &str)> = members.iter().map(|m| (*m, "user")).collect();
        dialogs.push((h.seed_dialog(&with_types).await, members));
    }

    let t0 = std::time::Instant::now();
    // Eight producers store and publish concurrently, so state keeps changing while both
    // workers fan out.
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut plan = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let (dialog, members) = &dialogs[(i * 7) % dialogs.len()];
        for m in members {
            *expected.entry(m).or_default() += 1;
        }
        plan.push((i, dialog, members[i % members.len()]));
    }
    let h_ref = &h;
    futures_util::stream::iter(plan)
        .map(|(i, dialog, sender)| async move {
            let event = h_ref.send_message(dialog, sender, &format!("m{i}")).await;
            h_ref.publish(&event).await;
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let total: usize = expected.values().sum();
    eprintln!("TIMING published at {:?}", t0.elapsed());
    // The test database is slow under load; the bound only keeps a hang from running forever.
    eventually_within(Duration::from_secs(180), "all updates stored", || async {
        (h.stored_count().await as usize >= total).then_some(())
    })
    .await;
    eprintln!("TIMING stored at {:?}", t0.elapsed());
    h.stop_workers().await;
    assert_eq!(h.stored_count().await as usize, total);

    for (user, count) in &expected {
        let stored = h.stored(user).await;
        let seqs: Vec<u64> = stored.iter().map(|u| u.seq.unwrap()).collect();
        let want: Vec<u64> = (1..=*count as u64).collect();
        assert_eq!(seqs, want, "{user}: seqs are exactly 1..={count}");
        let events: HashSet<&str> = stored.iter().map(|u| u.event_id.as_str()).collect();
        assert_eq!(events.len(), stored.len(), "{user}: no event twice");

        // State is read after the head, so along a user's seqs the dialog's lastSeq never goes
        // back (a non-sender's unread count may drop only because they sent in between).
        let mut last_seen: BTreeMap<String, u64> = BTreeMap::new();
        for u in &stored {
            let dialog = u.data["dialog"]["dialogId"].as_str().unwrap().to_owned();
            let last_seq = u.data["dialog"]["lastSeq"].as_u64().unwrap();
            let previous = last_seen.insert(dialog.clone(), last_seq).unwrap_or(0);
            assert!(
                last_seq >= previous,
                "{user}: seq {:?} carries lastSeq {last_seq} of {dialog} after {previous}",
                u.seq
            );
        }
    }
    h.stop().await;
}
