//! N workers share the fan-out by user shard: each shard is consumed by exactly one worker once
//! they have rebalanced, a worker that stops hands its shards to the others, and through all of
//! it every user gets every update once, with gapless seqs.

mod common;

use std::time::Duration;

use chat3_update_worker::topology;
use common::{eventually, Harness};
use tokio_util::sync::CancellationToken;

/// Consumers per shard queue.
async fn consumers(h: &Harness) -> Vec<u32> {
    let mut out = Vec::new();
    for k in 0..h.config.shards {
        out.push(
            h.queue_counts(&topology::shard_queue(&h.config.queue, k))
                .await
                .1,
        );
    }
    out
}

/// Waits until every shard has exactly one consumer (ownership settled, nothing held twice).
async fn settled(h: &Harness, what: &str) {
    eventually(what, || async {
        consumers(h).await.iter().all(|c| *c == 1).then_some(())
    })
    .await;
}

async fn send_and_check(h: &Harness, dialog: &chat3_sdk::DialogId, users: &[String], upto: u64) {
    let from = upto - 9;
    for i in from..=upto {
        let event = h.send_message(dialog, &users[0], &format!("m{i}")).await;
        h.publish(&event).await;
    }
    for u in users {
        let seqs = eventually(&format!("{u}'s updates up to {upto}"), || async {
            let stored = h.stored(u).await;
            (stored.len() as u64 >= upto).then_some(stored)
        })
        .await;
        let seqs: Vec<u64> = seqs.iter().filter_map(|x| x.seq).collect();
        assert_eq!(seqs, (1..=upto).collect::<Vec<_>>(), "{u}");
    }
}

#[tokio::test]
async fn two_workers_split_the_shards_and_one_takes_over_when_the_other_stops() {
    let h = Harness::new("shards").await;
    let a_stop = CancellationToken::new();
    let b_stop = CancellationToken::new();
    let a = h.start_worker_stopping_on(&a_stop).await;
    let b = h.start_worker_stopping_on(&b_stop).await;
    settled(&h, "both workers to share the shards").await;

    let users: Vec<String> = (0..24).map(|i| format!("user{i}")).collect();
    let members: Vec<(&str, &str)> = users.iter().map(|u| (u.as_str(), "user")).collect();
    let dialog = h.seed_dialog(&members).await;
    // Both workers wrote: the users span more shards than one worker owns.
    let shards: std::collections::BTreeSet<u16> = users
        .iter()
        .map(|u| {
            chat3_update_worker::shards::shard_of(
                &h.tenant,
                &u.parse().unwrap_or_else(|e| panic!("{e}")),
                h.config.shards,
            )
        })
        .collect();
    assert!(shards.len() > h.config.shards as usize / 2, "{shards:?}");
    send_and_check(&h, &dialog, &users, 10).await;

    b_stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), b.task)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    settled(&h, "the remaining worker to take every shard").await;
    send_and_check(&h, &dialog, &users, 20).await;

    assert_eq!(h.queue_depth(&h.config.dead_letter_queue()).await, 0);
    a_stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), a.task)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    h.stop().await;
}
