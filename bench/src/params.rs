//! What a run prints and stores before it measures anything: the machine (cores, CPU model,
//! memory, load), the binaries and their versions, the store and broker, the run's names and
//! the plan.

use std::path::Path;

use serde_json::{json, Value};

use crate::cli::{Cli, Plan};
use crate::procs::StackEnv;
use crate::stats;

/// A small file's content, trimmed.
pub fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn mem_total() -> Option<String> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// `--version` of a binary (first line), when it answers.
fn version_of(bin: &Path) -> Option<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
}

/// Everything about the run, as JSON.
pub fn parameters(
    cli: &Cli,
    plan: &Plan,
    names: &StackEnv,
    ncpu: usize,
    out: &Path,
    stamp: &str,
) -> Value {
    json!({
        "startedUtc": stamp,
        "label": cli.label,
        "bench": format!("chat3-bench {}", env!("CARGO_PKG_VERSION")),
        "machine": {
            "nproc": ncpu,
            "cpuModel": cpu_model(),
            "memTotal": mem_total(),
            "loadAvgStart": read_trimmed("/proc/loadavg"),
            "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
        },
        "binaries": {
            "api": cli.api_bin.display().to_string(),
            "apiVersion": version_of(&cli.api_bin),
            "worker": cli.worker_bin.display().to_string(),
            "workerVersion": version_of(&cli.worker_bin),
        },
        "store": {
            "uri": cli.mongodb_uri,
            "desc": cli.store_desc,
            "version": cli.store_version,
            "pid": cli.store_pid,
        },
        "broker": {
            "url": stats::redact_password(&cli.rabbitmq_url),
            "version": cli.broker_version,
            "pid": cli.broker_pid,
        },
        "names": {
            "db": names.db,
            "eventsExchange": names.events_exchange,
            "updatesExchange": names.updates_exchange,
            "workerQueue": names.worker_queue,
            "workerShards": names.worker_shards,
        },
        "plan": plan.to_json(),
        "out": out.display().to_string(),
    })
}

/// Prints the parameters, one `key value` line each.
pub fn print_parameters(p: &Value) {
    println!("chat3-bench: parameters");
    let mut lines = Vec::new();
    flatten("", p, &mut lines);
    for (k, v) in lines {
        println!("  {k:<28} {v}");
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Null => out.push((prefix.to_owned(), "-".to_owned())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}
