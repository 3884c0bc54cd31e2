//! Pure helpers: latency summaries (nearest-rank percentiles), tallies of request outcomes, a
//! tiny deterministic random generator and a UTC timestamp for file names.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

/// The value at percentile `p` (0–100) of ascending `sorted`, by nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied()
}

/// Count, mean and percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

impl Summary {
    /// Summarises latencies given in milliseconds.
    pub fn of_ms(mut ms: Vec<f64>) -> Self {
        ms.retain(|v| v.is_finite());
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() {
            None
        } else {
            Some(ms.iter().sum::<f64>() / ms.len() as f64)
        };
        Self {
            count: ms.len(),
            p50: percentile(&ms, 50.0),
            p90: percentile(&ms, 90.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied(),
            mean,
        }
    }

    /// Summarises durations.
    pub fn of(durations: &[Duration]) -> Self {
        Self::of_ms(durations.iter().map(|d| ms(*d)).collect())
    }

    /// As JSON (milliseconds, rounded to microseconds).
    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "p50Ms": self.p50.map(round3),
            "p90Ms": self.p90.map(round3),
            "p99Ms": self.p99.map(round3),
            "maxMs": self.max.map(round3),
            "meanMs": self.mean.map(round3),
        })
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rounds to three decimals (keeps the JSON readable).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `count / secs`, or 0 for an empty interval.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0.0
    } else {
        count as f64 / secs
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response with this status.
    Status(u16),
    /// The client timeout fired.
    Timeout,
    /// Connecting failed (refused, unreachable, ...).
    Connect,
    /// The connection was reset or closed mid-request.
    Reset,
    /// Another transport failure (described).
    Transport(String),
}

impl Outcome {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Status(s) if (200..300).contains(s))
    }
}

/// Counts of outcomes, grouped the way the report shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport failures by kind (`timeout`, `connect`, `reset`, or a description).
    pub transport: BTreeMap<String, u64>,
}

impl Tally {
    /// Adds one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Status(s) => *self.statuses.entry(*s).or_default() += 1,
            Outcome::Timeout => *self.transport.entry("timeout".into()).or_default() += 1,
            Outcome::Connect => *self.transport.entry("connect".into()).or_default() += 1,
            Outcome::Reset => *self.transport.entry("reset".into()).or_default() += 1,
            Outcome::Transport(what) => *self.transport.entry(what.clone()).or_default() += 1,
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.transport {
            *self.transport.entry(k.clone()).or_default() += v;
        }
    }

    /// Responses with a 2xx status.
    pub fn ok(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses with exactly this status.
    pub fn status(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Responses that are neither 2xx nor 429 nor 503.
    pub fn other_status(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s) && **s != 429 && **s != 503)
            .map(|(_, n)| n)
            .sum()
    }

    /// Transport failures of every kind.
    pub fn transport_errors(&self) -> u64 {
        self.transport.values().sum()
    }

    /// Everything counted.
    pub fn total(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors()
    }

    /// One line: `2xx=… 429=… 503=… other=… transport=… (timeout=…, …)`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "2xx={} 429={} 503={} other={} transport={}",
            self.ok(),
            self.status(429),
            self.status(503),
            self.other_status(),
            self.transport_errors()
        );
        if !self.transport.is_empty() {
            let kinds: Vec<String> = self
                .transport
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" ({})", kinds.join(", ")));
        }
        s
    }

    /// As JSON, with the grouped counts and the detail.
    pub fn to_json(&self) -> Value {
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({
            "total": self.total(),
            "ok2xx": self.ok(),
            "status429": self.status(429),
            "status503": self.status(503),
            "otherStatus": self.other_status(),
            "transportErrors": self.transport_errors(),
            "byStatus": statuses,
            "byTransportKind": self.transport,
        })
    }
}

/// xorshift64*: enough randomness for picking keys, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// `scheme://user:***@host...` for a URL with a password; other URLs unchanged.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((creds, host)) => {
            let user = creds.split_once(':').map_or(creds, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// `YYYYMMDD-HHMMSS` (UTC) of a Unix time in seconds.
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_summary_sorts_its_samples_and_ignores_non_finite_ones() {
        let s = Summary::of_ms(vec![3.0, f64::NAN, 1.0, 2.0, 4.0]);
        assert_eq!(s.count, 4);
        assert_eq!(s.p50, Some(2.0));
        assert_eq!(s.p99, Some(4.0));
        assert_eq!(s.max, Some(4.0));
        assert_eq!(s.mean, Some(2.5));
    }

    #[test]
    fn a_tally_groups_statuses_and_transport_errors() {
        let mut t = Tally::default();
        for o in [
            Outcome::Status(201),
            Outcome::Status(201),
            Outcome::Status(429),
            Outcome::Status(503),
            Outcome::Status(500),
            Outcome::Timeout,
            Outcome::Reset,
        ] {
            t.add(&o);
        }
        assert_eq!(t.ok(), 2);
        assert_eq!(t.status(429), 1);
        assert_eq!(t.status(503), 1);
        assert_eq!(t.other_status(), 1);
        assert_eq!(t.transport_errors(), 2);
        assert_eq!(t.total(), 7);
    }

    #[test]
    fn passwords_are_hidden_in_printed_urls() {
        assert_eq!(
            redact_password("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_password("mongodb://h:1/"), "mongodb://h:1/");
    }

    #[test]
    fn utc_stamps_are_calendar_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
    }
}
