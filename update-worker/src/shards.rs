//! User shards: how N workers share the fan-out without contending for a user's seqs.
//!
//! A user's seqs are taken by inserting them (unique per user), so two workers writing updates
//! for the same user at once collide, and one of them redoes its whole batch. In a dialog of a
//! thousand members every event touches the same thousand users, so two workers on one queue
//! collided on nearly every batch and drained slower than one. Hence two stages:
//!
//! 1. **Split** (any worker, competing consumers on `{queue}`): an event's recipients are read
//!    (one query per batch) and grouped by shard, `shard = fnv1a(tenant, user) mod shards`; one
//!    [`ShardWork`] per (event, shard) goes to `{queue}.shards` with key `{k}`, and the event is
//!    acked once the broker confirmed all of them.
//! 2. **Write** (the shard's owner): the updates of the users in the work items are stored with
//!    their seqs and published (`chat3_core::updates::fan_out_batch`), then acked.
//!
//! Every user is in exactly one shard, and a shard is written by one worker at a time: its queue
//! has a single active consumer, and each worker only consumes the shards it owns. Ownership is
//! rendezvous hashing over the live workers: each worker records a heartbeat in the store
//! (`update_workers`) every `heartbeat` and owns the shards whose highest
//! `fnv1a(worker, queue, shard)` among the workers heard of within four heartbeats is its own.
//! When a worker joins or leaves (gracefully: it removes its heartbeat; or by dying: it is no
//! longer heard of), the others take over its shards at their next beat. While ownership moves,
//! the single active consumer keeps one writer per shard; and if two ever wrote for one user,
//! the unique seq index still keeps the seqs gapless and unique: ownership is what makes N
//! workers fast, not what makes them correct.

use std::collections::BTreeSet;

use bson::doc;
use chat3_core::store::Store;
use chat3_sdk::{EventEnvelope, TenantId, UserId};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

/// The collection of worker heartbeats.
pub const WORKERS: &str = "update_workers";

/// A worker is taken as gone when not heard of for this many heartbeats.
const MISSED_BEATS: u32 = 4;

/// One event's recipients in one shard: the message of stage 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardWork {
    /// The event.
    pub event: EventEnvelope,
    /// Its recipients in this shard.
    pub users: Vec<UserId>,
}

/// 64-bit FNV-1a over `parts`, each followed by a 0xff separator: stable across builds and
/// machines (every worker must agree on it).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// [`fnv1a`] with a final avalanche (MurmurHash3's `fmix64`): FNV alone keeps inputs that
/// differ only early (worker `w0` against `w1`) in the same order for every suffix, which would
/// give one worker every shard.
fn mixed(parts: &[&[u8]]) -> u64 {
    let mut h = fnv1a(parts);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The shard of a user.
pub fn shard_of(tenant: &TenantId, user: &UserId, shards: u16) -> u16 {
    let h = mixed(&[tenant.as_str().as_bytes(), user.as_str().as_bytes()]);
    (h % u64::from(shards.max(1))) as u16
}

/// The shards `me` owns among `live` workers (`me` counts as live).
pub fn owned(me: &str, live: &[String], queue: &str, shards: u16) -> BTreeSet<u16> {
    let mut workers: Vec<&str> = live.iter().map(String::as_str).collect();
    if !workers.contains(&me) {
        workers.push(me);
    }
    (0..shards)
        .filter(|k| {
            let key = k.to_be_bytes();
            let winner = workers
                .iter()
                .max_by_key(|w| (mixed(&[w.as_bytes(), queue.as_bytes(), &key]), **w));
            winner == Some(&me)
        })
        .collect()
}

/// Records that `me` is alive and returns the workers of `queue` heard of recently.
pub async fn beat(
    store: &Store,
    me: &str,
    queue: &str,
    interval: std::time::Duration,
) -> chat3_core::Result<Vec<String>> {
    let now = chat3_core::ids::now_ms();
    let coll = store.own::<bson::Document>(WORKERS);
    coll.update_one(
        doc! { "_id": me },
        doc! { "$set": { "queue": queue, "beatAt": bson::DateTime::from_millis(now) } },
    )
    .upsert(true)
    .await?;
    let gone_before = now - (interval.as_millis() as i64).saturating_mul(MISSED_BEATS.into());
    let live: Vec<String> = coll
        .find(
            doc! { "queue": queue, "beatAt": { "$gte": bson::DateTime::from_millis(gone_before) } },
        )
        .projection(doc! { "_id": 1 })
        .await?
        .try_collect::<Vec<_>>()
        .await?
        .iter()
        .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
        .collect();
    Ok(live)
}

/// Removes `me`'s heartbeat (graceful stop: the others take over at their next beat).
pub async fn leave(store: &Store, me: &str) -> chat3_core::Result<()> {
    store
        .own::<bson::Document>(WORKERS)
        .delete_one(doc! { "_id": me })
        .await?;
    Ok(())
}

/// Heartbeats of workers gone for a day are removed by the store.
pub async fn ensure_indexes(store: &Store) -> chat3_core::Result<()> {
    use mongodb::options::IndexOptions;
    use mongodb::IndexModel;
    let ttl = IndexModel::builder()
        .keys(doc! { "beatAt": 1 })
        .options(
            IndexOptions::builder()
                .expire_after(std::time::Duration::from_secs(24 * 3600))
                .build(),
        )
        .build();
    store
        .own::<bson::Document>(WORKERS)
        .create_index(ttl)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("w{i}")).collect()
    }

    #[test]
    fn every_shard_has_exactly_one_owner_and_the_shares_are_even() {
        for n in 1..=5 {
            let live = names(n);
            let mut count = vec![0; 64];
            for w in &live {
                for k in owned(w, &live, "q", 64) {
                    count[k as usize] += 1;
                }
            }
            assert!(count.iter().all(|c| *c == 1), "{n} workers: {count:?}");
            for w in &live {
                let share = owned(w, &live, "q", 64).len();
                assert!(share > 64 / n / 3, "{n} workers, {w}: {share} of 64");
            }
        }
    }

    #[test]
    fn a_leaving_worker_moves_only_its_own_shards() {
        let three = names(3);
        let two = names(2);
        for w in &two {
            let before = owned(w, &three, "q", 32);
            let after = owned(w, &two, "q", 32);
            assert!(before.is_subset(&after));
        }
    }

    #[test]
    fn a_user_is_always_in_the_same_shard() {
        let t: TenantId = "acme".parse().unwrap_or_else(|e| panic!("{e}"));
        let u: UserId = "alice".parse().unwrap_or_else(|e| panic!("{e}"));
        let k = shard_of(&t, &u, 8);
        assert!(k < 8);
        assert_eq!(shard_of(&t, &u, 8), k);
        // A fixed value: workers of every build must agree.
        assert_eq!(fnv1a(&[b"a"]), 0x089b_c907_b544_c769);
        assert_eq!(mixed(&[b"a"]), 0x3aec_69d2_86fb_d39b);
    }
}
