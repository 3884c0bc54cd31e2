//! `chat3-bench-compare BEFORE.json AFTER.json`: the rows two bench runs share, side by side, as
//! a Markdown table. Each figure is shown with its ratio to the raw store figure of its own run,
//! and the last column compares those ratios (after ÷ before): runs on different days or on a
//! busier machine compare through the ratios, not through the raw values.

use std::collections::HashMap;

use anyhow::{bail, Context};
use serde_json::Value;

fn load(path: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {path}"))
}

fn label(run: &Value) -> String {
    let p = &run["parameters"];
    let label = p["label"].as_str().unwrap_or("");
    let mode = p["plan"]["mode"].as_str().unwrap_or("?");
    let started = p["startedUtc"].as_str().unwrap_or("?");
    format!("{label} ({mode}, {started})").trim().to_owned()
}

fn figure(row: &Value) -> String {
    let v = row["value"].as_f64();
    let unit = row["unit"].as_str().unwrap_or("");
    let value = match v {
        Some(v) if v >= 100.0 => format!("{v:.0} {unit}"),
        Some(v) => format!("{v:.3} {unit}"),
        None => "—".to_owned(),
    };
    match row["ratio"].as_f64() {
        Some(r) => format!("{value} ({r:.4}×)"),
        None => value,
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [before, after] = args.as_slice() else {
        bail!("usage: chat3-bench-compare BEFORE.json AFTER.json");
    };
    let (b, a) = (load(before)?, load(after)?);
    let key = |r: &Value| {
        (
            r["section"].as_str().unwrap_or("").to_owned(),
            r["metric"].as_str().unwrap_or("").to_owned(),
        )
    };
    let old: HashMap<_, _> = b["table"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (key(r), r))
        .collect();
    println!("before: {}  \nafter: {}\n", label(&b), label(&a));
    println!("| workload | metric | before (ratio to raw) | after (ratio to raw) | after ÷ before, by ratio |");
    println!("|---|---|---|---|---|");
    for row in a["table"].as_array().into_iter().flatten() {
        let Some(prev) = old.get(&key(row)) else {
            continue;
        };
        if row["value"].is_null() && prev["value"].is_null() {
            continue;
        }
        let change = match (row["ratio"].as_f64(), prev["ratio"].as_f64()) {
            (Some(n), Some(o)) if o > 0.0 => format!("{:.2}×", n / o),
            _ => String::new(),
        };
        let (section, metric) = key(row);
        println!(
            "| {section} | {metric} | {} | {} | {change} |",
            figure(prev),
            figure(row)
        );
    }
    Ok(())
}
