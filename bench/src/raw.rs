//! Reference rates of the bare store and broker on this machine, in this run: what the drivers
//! get without chat3 in between. Every service figure is divided by one of these, so runs on a
//! busy or a quiet machine can be compared. The store figures use a database of their own and
//! the broker figures an exchange and queue of their own; all are removed afterwards.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use mongodb::bson::{doc, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use serde_json::{json, Value};

use crate::cli::Plan;
use crate::load::{closed_loop, ClosedResult};
use crate::report::{Raw, Row};
use crate::stats::{rate, Outcome, Rng, Summary};

/// The store's reference figures.
#[derive(Debug, Clone)]
pub struct RawStore {
    /// Server version from `buildInfo`.
    pub version: Option<String>,
    /// insert_one with one task.
    pub insert_one_1: ClosedResult,
    /// insert_one with `tasks` tasks.
    pub insert_one_n: ClosedResult,
    /// Documents per second of unordered insert_many batches.
    pub insert_many_docs_per_sec: f64,
    /// Latency of one insert_many batch.
    pub insert_many_batch: Summary,
    /// find_one by an indexed key with `tasks` tasks.
    pub find_one_n: ClosedResult,
    /// Documents in the collection during the find measurement.
    pub find_docs: i64,
}

/// The broker's reference figures.
#[derive(Debug, Clone)]
pub struct RawBroker {
    /// Publish + confirm, one task.
    pub publish_1: ClosedResult,
    /// Publish + confirm, `tasks` tasks on one confirm channel.
    pub publish_n: ClosedResult,
}

fn doc_for(k: i64) -> Document {
    doc! {
        "tenantId": "raw",
        "k": k,
        "userId": format!("u-{}", k % 1000),
        "content": "x".repeat(200),
        "createdAt": DateTime::now(),
    }
}

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Status(200),
        Err(e) => Outcome::Transport(format!("driver: {}", first_words(&e.to_string()))),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
}

/// Measures the store at `uri` in database `db` (dropped at the end).
pub async fn store(uri: &str, db: &str, plan: &Plan) -> Result<RawStore> {
    let client = mongodb::Client::with_uri_str(uri).await?;
    let database = client.database(db);
    let version = database
        .run_command(doc! { "buildInfo": 1 })
        .await
        .ok()
        .and_then(|d| d.get_str("version").ok().map(str::to_owned));
    let coll: Collection<Document> = database.collection("docs");
    coll.create_index(
        IndexModel::builder()
            .keys(doc! { "tenantId": 1, "k": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build(),
    )
    .await
    .context("creating the raw index")?;
    let next = Arc::new(AtomicI64::new(0));

    let run_inserts = |tasks: usize| {
        let coll = coll.clone();
        let next = next.clone();
        closed_loop(
            tasks,
            Duration::from_millis(200),
            plan.raw_each,
            move |_, _| {
                let coll = coll.clone();
                let k = next.fetch_add(1, Ordering::Relaxed);
                async move { outcome(coll.insert_one(doc_for(k)).await) }
            },
            |_| {},
        )
    };
    let insert_one_1 = run_inserts(1).await;
    let insert_one_n = run_inserts(plan.raw_tasks).await;

    let mut batch_latencies = Vec::with_capacity(plan.raw_batches);
    let started = Instant::now();
    let mut inserted = 0usize;
    for _ in 0..plan.raw_batches {
        let first = next.fetch_add(plan.raw_batch as i64, Ordering::Relaxed);
        let docs: Vec<Document> = (0..plan.raw_batch as i64)
            .map(|i| doc_for(first + i))
            .collect();
        let t = Instant::now();
        coll.insert_many(docs).ordered(false).await?;
        batch_latencies.push(t.elapsed());
        inserted += plan.raw_batch;
    }
    let insert_many_docs_per_sec = rate(inserted, started.elapsed());

    let find_docs = next.load(Ordering::Relaxed);
    let find_one_n = {
        let coll = coll.clone();
        closed_loop(
            plan.raw_tasks,
            Duration::from_millis(200),
            plan.raw_each,
            move |task, i| {
                let coll = coll.clone();
                let mut rng = Rng::new((task as u64 + 1) * 7919 + i * 104_729);
                let k = rng.below(find_docs.max(1) as u64) as i64;
                async move {
                    match coll.find_one(doc! { "tenantId": "raw", "k": k }).await {
                        Ok(Some(_)) => Outcome::Status(200),
                        Ok(None) => Outcome::Status(404),
                        Err(e) => outcome::<(), _>(Err(e)),
                    }
                }
            },
            |_| {},
        )
        .await
    };
    let _ = database.drop().await;
    Ok(RawStore {
        version,
        insert_one_1,
        insert_one_n,
        insert_many_docs_per_sec,
        insert_many_batch: Summary::of(&batch_latencies),
        find_one_n,
        find_docs,
    })
}

/// Measures publish-with-confirm on the broker at `url`, on a durable exchange and queue named
/// `name` (deleted at the end), with persistent 200-byte JSON messages like chat3's.
pub async fn broker(url: &str, name: &str, plan: &Plan) -> Result<RawBroker> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.exchange_declare(
        name,
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        name,
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        name,
        name,
        "#",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let payload = Arc::new(serde_json::to_vec(
        &json!({ "k": 0, "pad": "x".repeat(180) }),
    )?);
    let run = |tasks: usize| {
        let ch = ch.clone();
        let payload = payload.clone();
        let exchange: Arc<str> = name.into();
        closed_loop(
            tasks,
            Duration::from_millis(200),
            plan.raw_each,
            move |_, _| {
                let ch = ch.clone();
                let payload = payload.clone();
                let exchange = exchange.clone();
                async move {
                    let confirm = ch
                        .basic_publish(
                            &exchange,
                            "raw.bench",
                            BasicPublishOptions::default(),
                            &payload,
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_content_type("application/json".into()),
                        )
                        .await;
                    match confirm {
                        Ok(c) => match c.await {
                            Ok(Confirmation::Ack(_)) => Outcome::Status(200),
                            Ok(_) => Outcome::Status(500),
                            Err(e) => outcome::<(), _>(Err(e)),
                        },
                        Err(e) => outcome::<(), _>(Err(e)),
                    }
                }
            },
            |_| {},
        )
    };
    let publish_1 = run(1).await;
    let publish_n = run(plan.raw_tasks).await;
    let _ = ch.queue_delete(name, QueueDeleteOptions::default()).await;
    let _ = ch
        .exchange_delete(name, ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "done").await;
    Ok(RawBroker {
        publish_1,
        publish_n,
    })
}

impl RawStore {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version,
            "insertOne1Task": closed_json(&self.insert_one_1),
            "insertOneNTasks": closed_json(&self.insert_one_n),
            "insertManyDocsPerSec": self.insert_many_docs_per_sec,
            "insertManyBatch": self.insert_many_batch.to_json(),
            "findOneNTasks": closed_json(&self.find_one_n),
            "findDocs": self.find_docs,
        })
    }
}

impl RawBroker {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "publishConfirm1Task": closed_json(&self.publish_1),
            "publishConfirmNTasks": closed_json(&self.publish_n),
        })
    }
}

/// A closed-loop result as JSON.
pub fn closed_json(r: &ClosedResult) -> Value {
    json!({
        "opsPerSec": r.rate(),
        "latency": r.summary().to_json(),
        "outcomes": r.tally.to_json(),
        "windowSecs": r.window.as_secs_f64(),
    })
}

/// The table rows of the raw figures.
pub fn rows(raw: &Raw) -> Vec<Row> {
    let mut rows = Vec::new();
    if let Some(s) = &raw.store {
        rows.push(
            Row::new(
                "raw store",
                "insert_one, 8 tasks",
                Some(s.insert_one_n.rate()),
                "ops/s",
            )
            .issue("12,700/s"),
        );
        rows.push(Row::new(
            "raw store",
            "insert_one p50, 8 tasks",
            s.insert_one_n.summary().p50,
            "ms",
        ));
        rows.push(
            Row::new(
                "raw store",
                "insert_one p50, 1 task",
                s.insert_one_1.summary().p50,
                "ms",
            )
            .issue("0.2 ms"),
        );
        rows.push(
            Row::new(
                "raw store",
                "insert_many (1,000/batch)",
                Some(s.insert_many_docs_per_sec),
                "docs/s",
            )
            .issue("57k docs/s"),
        );
        rows.push(
            Row::new(
                "raw store",
                "indexed find_one, 8 tasks",
                Some(s.find_one_n.rate()),
                "ops/s",
            )
            .issue("13,600/s"),
        );
    }
    if let Some(b) = &raw.broker {
        rows.push(
            Row::new(
                "raw broker",
                "publish+confirm p50, 1 task",
                b.publish_1.summary().p50,
                "ms",
            )
            .issue("0.4 ms"),
        );
        rows.push(Row::new(
            "raw broker",
            "publish+confirm, 1 task",
            Some(b.publish_1.rate()),
            "msg/s",
        ));
        rows.push(Row::new(
            "raw broker",
            "publish+confirm, 8 tasks",
            Some(b.publish_n.rate()),
            "msg/s",
        ));
    }
    rows
}

/// Prints the store figures.
pub fn print_store(s: &RawStore) {
    let p50 = |r: &ClosedResult| r.summary().p50.unwrap_or(f64::NAN);
    println!(
        "  insert_one 1 task: {:.0}/s p50 {:.3} ms; 8 tasks: {:.0}/s p50 {:.3} ms",
        s.insert_one_1.rate(),
        p50(&s.insert_one_1),
        s.insert_one_n.rate(),
        p50(&s.insert_one_n)
    );
    println!(
        "  insert_many: {:.0} docs/s (batch p50 {:.1} ms); indexed find_one 8 tasks: {:.0}/s p50 {:.3} ms over {} docs",
        s.insert_many_docs_per_sec,
        s.insert_many_batch.p50.unwrap_or(f64::NAN),
        s.find_one_n.rate(),
        p50(&s.find_one_n),
        s.find_docs
    );
}

/// Prints the broker figures.
pub fn print_broker(b: &RawBroker) {
    println!(
        "  publish+confirm 1 task: {:.0}/s p50 {:.3} ms; 8 tasks: {:.0}/s p50 {:.3} ms",
        b.publish_1.rate(),
        b.publish_1.summary().p50.unwrap_or(f64::NAN),
        b.publish_n.rate(),
        b.publish_n.summary().p50.unwrap_or(f64::NAN)
    );
}
