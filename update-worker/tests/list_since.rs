//! `chat3_core::updates::list_since` (behind `GET /api/users/{u}/updates`) and the fan-out write
//! it reads, used directly against a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bson::doc;
use chat3_core::docs::UserDoc;
use chat3_core::events::{envelope, Actor};
use chat3_core::store::{coll, Store};
use chat3_core::testing::{mongo_args, unique_name};
use chat3_core::updates::{self, Planned};
use chat3_sdk::EventType;
use chat3_sdk::{TenantId, UpdateType, UserId, UserType};
use serde_json::json;

struct Db {
    store: Store,
    tenant: TenantId,
    alice: UserId,
}

impl Db {
    async fn new() -> Self {
        let store = Store::connect(&mongo_args("uw_list")).await.unwrap();
        updates::ensure_indexes(&store, updates::DEFAULT_RETENTION)
            .await
            .unwrap();
        let db = Self {
            store,
            tenant: unique_name("tnt").parse().unwrap(),
            alice: "alice".parse().unwrap(),
        };
        // The feed of a user that does not exist is a 404: alice exists.
        let alice = UserDoc::created(&db.tenant, &db.alice, &UserType::default(), 1);
        chat3_core::testing::collection(&db.store, coll::USERS)
            .insert_one(alice.to_doc())
            .await
            .unwrap();
        db
    }

    /// Stores one update for alice from a fresh event; returns the event id.
    async fn add(&self, n: u32) -> String {
        let event = envelope(
            &self.tenant,
            EventType::DialogRead,
            "d",
            None,
            &Actor::user("alice"),
            json!({}),
        );
        let stored = updates::fan_out(
            &self.store,
            &event,
            UpdateType::Dialog,
            vec![self.alice.clone()],
            |users: Vec<UserId>| async move {
                Ok(users
                    .into_iter()
                    .map(|user_id| Planned {
                        user_id,
                        update_type: None,
                        user_type: Default::default(),
                        data: json!({ "n": n }),
                    })
                    .collect())
            },
        )
        .await
        .unwrap();
        assert_eq!(stored.len(), 1);
        event.event_id
    }

    async fn page(&self, since: u64, limit: u64) -> (Vec<u64>, bool, bool, u64) {
        let p = updates::list_since(&self.store, &self.tenant, &self.alice, since, limit)
            .await
            .unwrap();
        let seqs = p.data.iter().map(|u| u.seq.unwrap()).collect();
        (seqs, p.has_more, p.resync_required, p.head_seq)
    }

    async fn drop_seqs_up_to(&self, seq: i64) {
        chat3_core::testing::collection(&self.store, coll::UPDATES)
            .delete_many(doc! { "tenantId": self.tenant.as_str(), "seq": { "$lte": seq } })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn pages_follow_seq_order_with_has_more_and_head_seq() {
    let db = Db::new().await;
    assert_eq!(db.page(0, 10).await, (vec![], false, false, 0));
    for n in 1..=5 {
        db.add(n).await;
    }
    assert_eq!(db.page(0, 2).await, (vec![1, 2], true, false, 5));
    assert_eq!(db.page(2, 2).await, (vec![3, 4], true, false, 5));
    assert_eq!(db.page(4, 2).await, (vec![5], false, false, 5));
    assert_eq!(db.page(5, 2).await, (vec![], false, false, 5));
    let p = updates::list_since(&db.store, &db.tenant, &db.alice, 0, 1)
        .await
        .unwrap();
    assert_eq!(p.data[0].data, json!({ "n": 1 }));
    chat3_core::testing::drop_database(&db.store).await.unwrap();
}

#[tokio::test]
async fn resync_is_required_when_updates_after_since_were_dropped_or_since_is_ahead() {
    let db = Db::new().await;
    for n in 1..=5 {
        db.add(n).await;
    }
    assert_eq!(db.page(9, 10).await, (vec![], false, true, 5));
    db.drop_seqs_up_to(2).await;
    assert_eq!(db.page(1, 10).await, (vec![3, 4, 5], false, true, 5));
    assert_eq!(db.page(2, 10).await, (vec![3, 4, 5], false, false, 5));
    assert_eq!(db.page(0, 10).await, (vec![3, 4, 5], false, false, 5));
    chat3_core::testing::drop_database(&db.store).await.unwrap();
}

#[tokio::test]
async fn seqs_continue_after_every_stored_update_expired() {
    let db = Db::new().await;
    for n in 1..=3 {
        db.add(n).await;
    }
    db.drop_seqs_up_to(3).await;
    assert_eq!(db.page(3, 10).await, (vec![], false, false, 3));
    db.add(4).await;
    assert_eq!(db.page(3, 10).await, (vec![4], false, false, 4));
    chat3_core::testing::drop_database(&db.store).await.unwrap();
}

#[tokio::test]
async fn fanning_out_the_same_event_twice_returns_the_stored_update() {
    let db = Db::new().await;
    let event = envelope(
        &db.tenant,
        EventType::MessageCreate,
        "m",
        None,
        &Actor::user("alice"),
        json!({}),
    );
    let run = |n: u32| {
        let store = db.store.clone();
        let event = event.clone();
        let alice = db.alice.clone();
        async move {
            updates::fan_out(
                &store,
                &event,
                UpdateType::Message,
                vec![alice],
                |users: Vec<UserId>| async move {
                    Ok(users
                        .into_iter()
                        .map(|user_id| Planned {
                            user_id,
                            update_type: None,
                            user_type: Default::default(),
                            data: json!({ "n": n }),
                        })
                        .collect())
                },
            )
            .await
            .unwrap()
        }
    };
    let first = run(1).await;
    let second = run(2).await;
    assert_eq!(first, second);
    assert_eq!(db.page(0, 10).await, (vec![1], false, false, 1));
    chat3_core::testing::drop_database(&db.store).await.unwrap();
}
