//! The services under test as child processes (`chat3-api serve`, `update-worker run`), started
//! with a fresh database and fresh broker names per run and stopped with SIGTERM (SIGKILL after a
//! grace period); and CPU accounting from `/proc` so a report can say which process used the
//! cores.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tokio::process::{Child, Command};

/// The names and settings every service of one run shares.
#[derive(Debug, Clone)]
pub struct StackEnv {
    /// MongoDB URI.
    pub mongodb_uri: String,
    /// Fresh database name.
    pub db: String,
    /// AMQP URL.
    pub rabbitmq_url: String,
    /// Fresh events exchange.
    pub events_exchange: String,
    /// Fresh updates exchange.
    pub updates_exchange: String,
    /// Fresh worker queue.
    pub worker_queue: String,
    /// User shards of the workers.
    pub worker_shards: u16,
    /// Operator key.
    pub admin_key: String,
    /// Where service logs go.
    pub log_dir: PathBuf,
}

impl StackEnv {
    /// The queues that hold the workers' pending work: the events queue first, then the shard
    /// queues.
    pub fn work_queues(&self) -> Vec<String> {
        let mut all = vec![self.worker_queue.clone()];
        all.extend(
            (0..self.worker_shards)
                .map(|k| chat3_update_worker::topology::shard_queue(&self.worker_queue, k)),
        );
        all
    }

    fn common(&self, cmd: &mut Command) {
        cmd.env("MONGODB_URI", &self.mongodb_uri)
            .env("CHAT3_MONGODB_DB", &self.db)
            .env("RABBITMQ_URL", &self.rabbitmq_url)
            .env("CHAT3_EVENTS_EXCHANGE", &self.events_exchange)
            .env("CHAT3_UPDATES_EXCHANGE", &self.updates_exchange)
            .env("CHAT3_LOG_FORMAT", "text")
            .env("RUST_LOG", "warn");
    }
}

/// One running service.
#[derive(Debug)]
pub struct Service {
    /// Name in reports (`api`, `worker-1`, ...).
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// Its log file.
    pub log: PathBuf,
    child: Child,
}

impl Service {
    fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("child has no pid")?;
        Ok(Self {
            name: name.to_owned(),
            pid,
            log,
            child,
        })
    }

    /// Fails when the process has exited already.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; see {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL when it has not exited after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // `kill` is used instead of a libc binding: the workspace forbids unsafe code.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("  {} did not stop within {grace:?}; killing it", self.name);
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// Sends `signal` (`STOP`, `CONT`, ...) to `pid` (with `kill`: the workspace forbids unsafe
/// code).
pub fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts `chat3-api serve` on `port`.
pub fn start_api(bin: &Path, env: &StackEnv, port: u16) -> Result<Service> {
    let mut cmd = Command::new(bin);
    cmd.arg("serve");
    env.common(&mut cmd);
    cmd.env("CHAT3_API_BIND", format!("127.0.0.1:{port}"))
        .env("CHAT3_ADMIN_API_KEY", &env.admin_key)
        .env("CHAT3_RATE_LIMIT_PER_SECOND", "1000000")
        .env("CHAT3_RATE_LIMIT_BURST", "1000000");
    Service::spawn("api", cmd, &env.log_dir)
}

/// Starts `update-worker run` on the run's queue. `CHAT3_WORKER_BIND` gets a free port so that
/// several workers (of builds that serve HTTP) do not collide.
pub fn start_worker(bin: &Path, env: &StackEnv, name: &str) -> Result<Service> {
    let mut cmd = Command::new(bin);
    cmd.arg("run");
    env.common(&mut cmd);
    cmd.env("CHAT3_UPDATE_WORKER_QUEUE", &env.worker_queue)
        .env("CHAT3_UPDATE_WORKER_SHARDS", env.worker_shards.to_string())
        .env("CHAT3_WORKER_BIND", format!("127.0.0.1:{}", free_port()?));
    Service::spawn(name, cmd, &env.log_dir)
}

/// Waits until `GET {base}/ready` answers 200.
pub async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    service: &mut Service,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        service.check_alive()?;
        if let Ok(resp) = http.get(format!("{base}/ready")).send().await {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} not ready within {within:?}; see {}",
                service.name,
                service.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Message and consumer counts of a queue (a passive declare on a channel of its own, since a
/// missing queue closes the channel).
pub async fn queue_counts(conn: &lapin::Connection, queue: &str) -> Result<(u32, u32)> {
    let ch = conn.create_channel().await?;
    let q = ch
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    let _ = ch.close(200, "probe done").await;
    let q = q?;
    Ok((q.message_count(), q.consumer_count()))
}

/// Waits until the worker queue has at least `consumers` consumers.
pub async fn wait_consumers(
    conn: &lapin::Connection,
    queue: &str,
    consumers: u32,
    workers: &mut [Service],
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        for w in workers.iter_mut() {
            w.check_alive()?;
        }
        if let Ok((_, c)) = queue_counts(conn, queue).await {
            if c >= consumers {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("queue {queue} has fewer than {consumers} consumers after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages waiting in `queues` (the first must exist; the others count when they exist: a
/// build without shard queues has none).
pub async fn pending(conn: &lapin::Connection, queues: &[String]) -> Option<u32> {
    let (first, rest) = queues.split_first()?;
    let mut total = queue_counts(conn, first).await.ok()?.0;
    for q in rest {
        total += queue_counts(conn, q).await.map_or(0, |(n, _)| n);
    }
    Some(total)
}

/// Waits until the workers' queues are empty (the workers caught up); returns whether it got
/// there.
pub async fn wait_queue_empty(
    conn: &lapin::Connection,
    queues: &[String],
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pending(conn, queues).await == Some(0) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat)
}

/// utime + stime from the text of `/proc/<pid>/stat` (fields 14 and 15; the command name in
/// parentheses may contain spaces, so fields are counted after the last `)`).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) jiffies of the whole machine from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The processes whose CPU use is reported, by name.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// (name, pid).
    pub procs: Vec<(String, u32)>,
}

/// CPU counters at one instant.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    procs: Vec<(String, Option<u64>)>,
    machine: Option<(u64, u64)>,
}

impl Watched {
    /// Reads every counter now.
    pub fn snapshot(&self) -> CpuSnapshot {
        CpuSnapshot {
            at: Instant::now(),
            procs: self
                .procs
                .iter()
                .map(|(n, pid)| (n.clone(), process_ticks(*pid)))
                .collect(),
            machine: machine_ticks(),
        }
    }
}

/// Cores used per process between two snapshots, plus the whole machine's busy cores.
pub fn cores_between(
    a: &CpuSnapshot,
    b: &CpuSnapshot,
    ticks_per_sec: f64,
    ncpu: usize,
) -> BTreeMap<String, f64> {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let mut out = BTreeMap::new();
    if wall <= 0.0 {
        return out;
    }
    for ((name, ta), (_, tb)) in a.procs.iter().zip(&b.procs) {
        if let (Some(ta), Some(tb)) = (ta, tb) {
            let cores = tb.saturating_sub(*ta) as f64 / ticks_per_sec / wall;
            *out.entry(name.clone()).or_default() += cores;
        }
    }
    if let (Some((ba, ta)), Some((bb, tb))) = (a.machine, b.machine) {
        let total = tb.saturating_sub(ta) as f64;
        if total > 0.0 {
            out.insert(
                "machine (all processes)".to_owned(),
                bb.saturating_sub(ba) as f64 / total * ncpu as f64,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }
}
