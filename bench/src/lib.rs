//! chat3's benchmark program. One run: the raw store and broker reference rates, then the API
//! and update worker(s) started as child processes with fresh names, then the workloads (send
//! throughput, open-loop end-to-end latency, fan-out, hot user, inbox, and fan-out again with two
//! workers), then a table where every figure is also divided by a raw figure of the same run,
//! and the whole result as JSON. Benchmarks are programs, not timed tests: nothing here asserts
//! a duration.

pub mod cli;
pub mod http;
pub mod listen;
pub mod load;
pub mod params;
pub mod procs;
pub mod raw;
pub mod report;
pub mod scenarios;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use serde_json::{json, Map, Value};

use crate::cli::{Cli, Plan};
use crate::procs::{Service, StackEnv, Watched};
use crate::report::{Raw, Row};
use crate::scenarios::Ctx;

/// How long a stopped service gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs the whole benchmark.
pub async fn run(cli: Cli) -> Result<()> {
    let began = Instant::now();
    let plan = Plan::from_cli(&cli);
    let unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let stamp = stats::utc_stamp(unix);
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("target/bench/bench-{stamp}.json")));
    let out_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("bench-{stamp}"));
    let log_dir = out_dir.join(format!("{stem}-logs"));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;

    // Names unique to this run (lowercase, for tenant ids too).
    let tag = format!(
        "b{}{:04x}",
        &stamp.replace('-', "")[2..],
        std::process::id() & 0xffff
    );
    let names = StackEnv {
        mongodb_uri: cli.mongodb_uri.clone(),
        db: format!("chat3_bench_{tag}"),
        rabbitmq_url: cli.rabbitmq_url.clone(),
        events_exchange: format!("chat3_bench_{tag}_events"),
        updates_exchange: format!("chat3_bench_{tag}_updates"),
        worker_queue: format!("chat3_bench_{tag}_worker"),
        worker_shards: cli.worker_shards,
        admin_key: format!(
            "bench-admin-{tag}-{:016x}",
            stats::Rng::new(unix ^ 0x5eed).next_u64()
        ),
        log_dir: log_dir.clone(),
    };

    let ncpu = std::thread::available_parallelism().map_or(1, usize::from);
    let params = params::parameters(&cli, &plan, &names, ncpu, &out, &stamp);
    params::print_parameters(&params);

    let mut results = Map::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut raw = Raw::default();
    if plan.raw {
        println!("\n== raw store ({})", cli.mongodb_uri);
        match raw::store(&cli.mongodb_uri, &format!("chat3_bench_raw_{tag}"), &plan).await {
            Ok(s) => {
                raw::print_store(&s);
                results.insert("rawStore".into(), s.to_json());
                raw.store = Some(s);
            }
            Err(e) => fail(&mut results, "rawStore", &e),
        }
        println!("== raw broker");
        match raw::broker(&cli.rabbitmq_url, &format!("chat3_bench_raw_{tag}"), &plan).await {
            Ok(b) => {
                raw::print_broker(&b);
                results.insert("rawBroker".into(), b.to_json());
                raw.broker = Some(b);
            }
            Err(e) => fail(&mut results, "rawBroker", &e),
        }
        rows.extend(raw::rows(&raw));
    }

    let services = run_services(&cli, plan.clone(), &names, ncpu, &mut results, &mut rows).await;
    if let Err(e) = &services {
        fail(&mut results, "services", e);
    }

    let table = report::table(&rows, &raw);
    println!(
        "\n== results ({} mode, {:.0} s)\n",
        plan.mode,
        began.elapsed().as_secs_f64()
    );
    println!("{table}");
    let doc = json!({
        "parameters": params,
        "results": results,
        "table": report::rows_json(&rows, &raw),
        "tableText": table,
        "elapsedSecs": began.elapsed().as_secs_f64(),
        "loadAvgEnd": params::read_trimmed("/proc/loadavg"),
    });
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "results: {}\nservice logs: {}",
        out.display(),
        log_dir.display()
    );
    services
}

fn fail(results: &mut Map<String, Value>, what: &str, e: &anyhow::Error) {
    eprintln!("  {what} failed: {e:#}");
    results.insert(format!("{what}Error"), json!(format!("{e:#}")));
}

/// Starts the services, runs the workloads, and stops the services whatever happened.
async fn run_services(
    cli: &Cli,
    plan: Plan,
    names: &StackEnv,
    ncpu: usize,
    results: &mut Map<String, Value>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let http = http::client(plan.request_timeout)?;
    let amqp = std::sync::Arc::new(
        lapin::Connection::connect(&cli.rabbitmq_url, lapin::ConnectionProperties::default())
            .await
            .context("connecting to RabbitMQ")?,
    );
    // Declared here too so listeners can bind before any service has connected.
    let ch = amqp.create_channel().await?;
    for exchange in [&names.events_exchange, &names.updates_exchange] {
        ch.exchange_declare(
            exchange,
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    }
    let port = procs::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    println!(
        "\n== starting services (api on {base}, logs in {})",
        names.log_dir.display()
    );
    let mut api = procs::start_api(&cli.api_bin, names, port)?;
    let mut workers: Vec<Service> = Vec::new();
    let outcome = async {
        procs::wait_ready(&http, &base, &mut api, Duration::from_secs(60)).await?;
        workers.push(procs::start_worker(&cli.worker_bin, names, "worker-1")?);
        procs::wait_consumers(
            &amqp,
            &names.worker_queue,
            1,
            &mut workers,
            Duration::from_secs(60),
        )
        .await?;
        let mut ctx = Ctx {
            http: http.clone(),
            base: base.clone(),
            admin_key: names.admin_key.clone(),
            amqp: amqp.clone(),
            updates_exchange: names.updates_exchange.clone(),
            work_queues: names.work_queues(),
            plan,
            watched: watched(cli, &api, &workers),
            ticks: procs::clock_ticks(),
            ncpu,
            prefix: names
                .db
                .trim_start_matches("chat3_bench_")
                .replace('_', "-"),
        };
        workloads(&mut ctx, cli, names, &mut workers, &api, results, rows).await
    }
    .await;
    println!("\n== stopping services");
    for w in workers {
        let _ = w.stop(STOP_GRACE).await;
    }
    let _ = api.stop(STOP_GRACE).await;
    cleanup(&amqp, &cli.mongodb_uri, names).await;
    let _ = amqp.close(200, "done").await;
    outcome
}

/// The workloads in order; a failing workload is recorded and the next one still runs.
async fn workloads(
    ctx: &mut Ctx,
    cli: &Cli,
    names: &StackEnv,
    workers: &mut Vec<Service>,
    api: &Service,
    results: &mut Map<String, Value>,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let mut record =
        |results: &mut Map<String, Value>, key: &str, r: Result<scenarios::Outcome>| match r {
            Ok((detail, mut new_rows)) => {
                results.insert(key.to_owned(), detail);
                rows.append(&mut new_rows);
            }
            Err(e) => fail(results, key, &e),
        };
    println!(
        "\n== send throughput ({} senders, {} dialogs, {:?} + {:?} warm-up), 1 worker",
        ctx.plan.senders, ctx.plan.send_dialogs, ctx.plan.send_duration, ctx.plan.send_warmup
    );
    let send = scenarios::send::throughput(ctx).await;
    let send_rate = send
        .as_ref()
        .ok()
        .and_then(|(d, _)| d["result"]["opsPerSec"].as_f64());
    record(results, "send", send);
    println!(
        "\n== open loop, end to end, below capacity (rates {:?}/s, {:?} each), 1 worker",
        ctx.plan.e2e_rates, ctx.plan.e2e_duration
    );
    let e2e = match scenarios::e2e::setup(ctx).await {
        Ok(setup) => {
            let r = scenarios::e2e::below_capacity(ctx, &setup).await;
            record(results, "e2e", r);
            Some(setup)
        }
        Err(e) => {
            fail(results, "e2e", &e);
            None
        }
    };
    println!(
        "\n== fan-out ({} members, {} messages), 1 worker",
        ctx.plan.fanout_members, ctx.plan.fanout_messages
    );
    record(
        results,
        "fanout1",
        scenarios::fanout::fanout(ctx, 1, false).await,
    );
    println!("== fan-out backlog (workers frozen while posting), 1 worker");
    record(
        results,
        "backlog1",
        scenarios::fanout::fanout(ctx, 1, true).await,
    );
    println!("\n== hot user ({} dialogs), 1 worker", ctx.plan.hot_dialogs);
    let mut hot = match scenarios::hot::setup(ctx).await {
        Ok((hot, detail)) => {
            results.insert("hotSetup".into(), detail);
            Some(hot)
        }
        Err(e) => {
            fail(results, "hotSetup", &e);
            None
        }
    };
    if let Some(h) = hot.as_mut() {
        let r = scenarios::hot::burst(ctx, h, 1, false).await;
        record(results, "hot1", r);
        println!("== hot user backlog (workers frozen while posting), 1 worker");
        let r = scenarios::hot::burst(ctx, h, 1, true).await;
        record(results, "hotBacklog1", r);
        println!(
            "\n== inbox ({} readers, {:?})",
            ctx.plan.inbox_readers, ctx.plan.inbox_duration
        );
        let r = scenarios::hot::inbox(ctx, h).await;
        record(results, "inbox", r);
    }

    println!("\n== 2 update workers on the same queue");
    restart_workers(ctx, cli, names, workers, api, &["worker-2a", "worker-2b"]).await?;
    println!("== fan-out, 2 workers");
    record(
        results,
        "fanout2",
        scenarios::fanout::fanout(ctx, 2, false).await,
    );
    println!("== fan-out backlog (workers frozen while posting), 2 workers");
    record(
        results,
        "backlog2",
        scenarios::fanout::fanout(ctx, 2, true).await,
    );
    if let Some(h) = hot.as_mut() {
        println!("== hot user, 2 workers");
        let r = scenarios::hot::burst(ctx, h, 2, false).await;
        record(results, "hot2", r);
        println!("== hot user backlog (workers frozen while posting), 2 workers");
        let r = scenarios::hot::burst(ctx, h, 2, true).await;
        record(results, "hotBacklog2", r);
    }

    if let Some(setup) = &e2e {
        println!(
            "\n== open loop beyond capacity (rates {:?}/s and {}× the send throughput, {:?} each, then up to {:?} for the service to get quiet), 1 worker",
            ctx.plan.overload_rates,
            ctx.plan.overload_factor,
            ctx.plan.overload_duration,
            ctx.plan.recovery_max
        );
        restart_workers(ctx, cli, names, workers, api, &["worker-3"]).await?;
        let r = scenarios::e2e::beyond_capacity(ctx, setup, send_rate).await;
        record(results, "overload", r);
    }
    for w in workers.iter_mut() {
        w.check_alive()?;
    }
    Ok(())
}

/// Replaces the running workers with new ones named `names` on the same queue.
async fn restart_workers(
    ctx: &mut Ctx,
    cli: &Cli,
    env: &StackEnv,
    workers: &mut Vec<Service>,
    api: &Service,
    names: &[&str],
) -> Result<()> {
    for w in workers.drain(..) {
        w.stop(STOP_GRACE).await?;
    }
    for name in names {
        workers.push(procs::start_worker(&cli.worker_bin, env, name)?);
    }
    procs::wait_consumers(
        &ctx.amqp,
        &env.worker_queue,
        names.len() as u32,
        workers,
        Duration::from_secs(60),
    )
    .await?;
    ctx.watched = watched(cli, api, workers);
    Ok(())
}

fn watched(cli: &Cli, api: &Service, workers: &[Service]) -> Watched {
    let mut procs = Vec::new();
    if let Some(pid) = cli.store_pid {
        procs.push(("store".to_owned(), pid));
    }
    if let Some(pid) = cli.broker_pid {
        procs.push(("broker".to_owned(), pid));
    }
    procs.push(("api".to_owned(), api.pid));
    for w in workers {
        procs.push((w.name.clone(), w.pid));
    }
    procs.push(("bench (this program)".to_owned(), std::process::id()));
    Watched { procs }
}

/// Removes this run's broker objects and database (the store's storage may outlive the run).
async fn cleanup(amqp: &lapin::Connection, mongodb_uri: &str, names: &StackEnv) {
    if let Ok(ch) = amqp.create_channel().await {
        let q = &names.worker_queue;
        for queue in chat3_update_worker::topology::queues(q, names.worker_shards) {
            let _ = ch.queue_delete(&queue, QueueDeleteOptions::default()).await;
        }
        let mut exchanges = chat3_update_worker::topology::exchanges(q);
        exchanges.extend([
            names.events_exchange.clone(),
            names.updates_exchange.clone(),
        ]);
        for exchange in exchanges {
            let _ = ch
                .exchange_delete(&exchange, ExchangeDeleteOptions::default())
                .await;
        }
        let _ = ch.close(200, "cleanup done").await;
    }
    if let Ok(client) = mongodb::Client::with_uri_str(mongodb_uri).await {
        let _ = client.database(&names.db).drop().await;
    }
}
