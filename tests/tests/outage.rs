//! Outages of the store and the broker: the API fails fast with 503 and `Retry-After` while
//! MongoDB is unreachable and recovers by itself; the update worker retries through a store
//! outage and a broker cut that outlast its old retry window, dead-lettering nothing.

use std::net::SocketAddr;
use std::time::Duration;

use chat3_core::config::{AmqpArgs, MongoArgs};
use chat3_core::service::Running;
use chat3_tests::amqp::{delete_worker_objects, queue_depth};
use chat3_tests::fixtures::{dialog_of, text, user};
use chat3_tests::openapi::Spec;
use chat3_tests::proxy::CutProxy;
use chat3_tests::{eventually, TestApi};
use tokio_util::sync::CancellationToken;

/// The test SecantusDB's address (from `CHAT3_TEST_MONGODB_URI`).
fn store_addr() -> SocketAddr {
    let uri = chat3_core::testing::mongo_args("x").uri;
    let host = uri
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .unwrap_or_default()
        .to_owned();
    host.parse()
        .unwrap_or_else(|e| panic!("{host} from {uri}: {e}"))
}

/// Storage settings for `prefix` reaching the store through `proxy`, failing after 500 ms.
fn mongo_via(proxy: &CutProxy, prefix: &str) -> MongoArgs {
    let mut m = chat3_core::testing::mongo_args(prefix);
    m.uri = format!("mongodb://{}/?directConnection=true", proxy.addr);
    m.timeout_ms = 500;
    m
}

/// An update worker for the API's database and exchanges, with quick retries.
async fn worker(
    mongo: MongoArgs,
    amqp: AmqpArgs,
    shutdown: &CancellationToken,
) -> (Running, chat3_update_worker::Config) {
    let mut wc = chat3_update_worker::Config::new(mongo, amqp);
    wc.queue = chat3_core::testing::unique_name("t_outage_q");
    wc.retry_backoff_ms = 50;
    wc.retry_backoff_max_ms = 400;
    let running = chat3_update_worker::start(wc.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|e| panic!("worker: {e:#}"));
    (running, wc)
}

async fn stop_worker(
    running: Running,
    shutdown: CancellationToken,
    config: &chat3_update_worker::Config,
) {
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(30), running.task).await {
        Ok(Ok(Ok(()))) => {}
        other => panic!("worker did not stop cleanly: {other:?}"),
    }
    delete_worker_objects(&config.amqp.url, config).await;
}

/// Lets an outage last `d` (the scenario, not a wait for a result: results are polled), or `CHAT3_TEST_OUTAGE_SECS` when set: the same tests reproduce
/// the long outages the worker must outlast (a 60 s store restart, a 15 s broker cut) on demand,
/// while the suite keeps short ones.
async fn outage_lasts(d: Duration) {
    let d = std::env::var("CHAT3_TEST_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(d, Duration::from_secs);
    tokio::time::sleep(d).await;
}

#[tokio::test]
async fn requests_fail_fast_with_503_while_the_store_is_down_and_recover_after() {
    let spec = Spec::load();
    let proxy = CutProxy::start(store_addr()).await;
    let api = TestApi::start_with(
        mongo_via(&proxy, "out_api"),
        chat3_core::testing::amqp_args("out_api"),
    )
    .await;
    let (_, c) = api.tenant("tnt").await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let msgs = format!("/api/dialogs/{}/messages", d.dialog_id);
    let body = serde_json::to_value(text("alice", "during")).unwrap_or_default();

    proxy.cut();
    for (method, path, body) in [
        ("POST", msgs.as_str(), Some(&body)),
        ("GET", msgs.as_str(), None),
        ("GET", "/api/dialogs", None),
        ("GET", "/api/users/bob/dialogs", None),
        ("GET", "/api/users/bob/updates", None),
    ] {
        let r = c
            .raw(method, path, body, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 503, "{method} {path}: {}", r.body);
        assert_eq!(r.body["code"], "store_unavailable", "{method} {path}");
        assert!(r.header("retry-after").is_some(), "{method} {path}");
        spec.validate(method, path, r.status, &r.body)
            .unwrap_or_else(|p| panic!("{p}"));
    }
    proxy.restore();
    let m = eventually(
        Duration::from_secs(20),
        "the store to serve again",
        || async {
            c.send_message(&d.dialog_id, &text("alice", "after"))
                .await
                .ok()
        },
    )
    .await;
    // Nothing from the outage was half-written: the failed send took no seq.
    assert_eq!(m.seq, 1);
    api.stop().await;
}

#[tokio::test]
async fn the_worker_retries_through_a_store_outage_and_dead_letters_nothing() {
    let api = TestApi::start("out_wstore").await;
    let (_, c) = api.tenant("tnt").await;
    let proxy = CutProxy::start(store_addr()).await;
    let mut worker_mongo = mongo_via(&proxy, "unused");
    worker_mongo.db = api.mongo.db.clone();
    let shutdown = CancellationToken::new();
    let (running, wc) = worker(worker_mongo, api.amqp.clone(), &shutdown).await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = user("bob");
    // user.add (joining created bob) and dialog.create.
    eventually(Duration::from_secs(20), "bob's first updates", || async {
        let p = c.user_updates(&bob, 0, 10).await.ok()?;
        (p.head_seq == 2).then_some(())
    })
    .await;

    proxy.cut();
    for i in 0..3 {
        c.send_message(&d.dialog_id, &text("alice", &format!("m{i}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Longer than the whole retry window the worker used to have (4 attempts, requeue, 4 more).
    outage_lasts(Duration::from_secs(5)).await;
    proxy.restore();
    let feed = eventually(
        Duration::from_secs(30),
        "every update after the outage",
        || async {
            // The page itself, not only the head: the head is read after the page and may
            // already count updates stored in between.
            let p = c.user_updates(&bob, 0, 10).await.ok()?;
            (p.data.last().and_then(|u| u.seq) == Some(5)).then_some(p)
        },
    )
    .await;
    let seqs: Vec<_> = feed.data.iter().filter_map(|u| u.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(queue_depth(&api.amqp.url, &wc.dead_letter_queue()).await, 0);
    stop_worker(running, shutdown, &wc).await;
    api.stop().await;
}

#[tokio::test]
async fn the_worker_rides_out_a_broker_cut_and_dead_letters_nothing() {
    let api = TestApi::start("out_wbroker").await;
    let (_, c) = api.tenant("tnt").await;
    let broker: SocketAddr = "127.0.0.1:5672".parse().unwrap_or_else(|e| panic!("{e}"));
    let proxy = CutProxy::start(broker).await;
    let mut worker_amqp = api.amqp.clone();
    worker_amqp.url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let shutdown = CancellationToken::new();
    let (running, wc) = worker(api.mongo.clone(), worker_amqp, &shutdown).await;
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = user("bob");
    // user.add (joining created bob) and dialog.create.
    eventually(Duration::from_secs(20), "bob's first updates", || async {
        let p = c.user_updates(&bob, 0, 10).await.ok()?;
        (p.head_seq == 2).then_some(())
    })
    .await;

    proxy.cut();
    for i in 0..3 {
        c.send_message(&d.dialog_id, &text("alice", &format!("m{i}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    outage_lasts(Duration::from_secs(4)).await;
    proxy.restore();
    eventually(
        Duration::from_secs(40),
        "every update after the cut",
        || async {
            let p = c.user_updates(&bob, 0, 10).await.ok()?;
            (p.head_seq == 5).then_some(())
        },
    )
    .await;
    assert_eq!(queue_depth(&api.amqp.url, &wc.dead_letter_queue()).await, 0);
    stop_worker(running, shutdown, &wc).await;
    api.stop().await;
}

/// The send path's two steps are the commit (messages and their events) and the publish after
/// it. An API that goes away between them — its broker cut, then stopped — leaves the events
/// only in the store; another instance's sweeper publishes them, and every member gets every
/// message once, with gapless seqs.
#[tokio::test]
async fn an_api_gone_between_commit_and_publish_loses_no_message() {
    let broker: SocketAddr = "127.0.0.1:5672".parse().unwrap_or_else(|e| panic!("{e}"));
    let proxy = CutProxy::start(broker).await;
    let mongo = chat3_core::testing::mongo_args("out_crash");
    let direct = chat3_core::testing::amqp_args("out_crash");
    let mut via = direct.clone();
    via.url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let first = TestApi::start_with(mongo.clone(), via).await;
    let (tenant, c) = first.tenant("tnt").await;
    let shutdown = CancellationToken::new();
    let (running, wc) = worker(mongo.clone(), direct.clone(), &shutdown).await;
    let store = chat3_core::store::Store::connect(&mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = user("bob");
    let feed = |n: usize| {
        let (store, tenant, bob) = (store.clone(), tenant.clone(), bob.clone());
        async move {
            let p = chat3_core::updates::list_since(&store, &tenant, &bob, 0, 100)
                .await
                .ok()?;
            (p.data.len() >= n).then_some(p.data)
        }
    };
    eventually(Duration::from_secs(20), "bob's first updates", || feed(2)).await;

    proxy.cut();
    let mut sent = Vec::new();
    for i in 0..5 {
        let m = c
            .send_message(&d.dialog_id, &text("alice", &format!("m{i}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sent.push(m.message_id);
    }
    first.halt().await;
    let unpublished = || async {
        chat3_core::testing::collection(&store, chat3_core::store::coll::EVENTS)
            .count_documents(bson::doc! { "tenantId": tenant.as_str(), "published": false })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(unpublished().await, 5, "the five events wait in the store");

    let second = TestApi::start_with(mongo.clone(), direct.clone()).await;
    let got = eventually(
        Duration::from_secs(30),
        "every message after the restart",
        || feed(7),
    )
    .await;
    let seqs: Vec<_> = got.iter().filter_map(|u| u.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    // user.add and dialog.create, then the five messages.
    let delivered: Vec<String> = got[2..]
        .iter()
        .filter_map(|u| u.data["message"]["messageId"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        delivered,
        sent.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    eventually(
        Duration::from_secs(10),
        "the events marked published",
        || async { (unpublished().await == 0).then_some(()) },
    )
    .await;
    assert_eq!(queue_depth(&direct.url, &wc.dead_letter_queue()).await, 0);
    stop_worker(running, shutdown, &wc).await;
    second.stop().await;
}
