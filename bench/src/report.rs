//! The summary table: one row per figure, each with the raw reference figure of the same run it
//! is divided by (so a busy machine shows up in both), and the figure the project's issue quoted
//! for the code before the work on speed, for orientation.

use serde_json::{json, Value};

use crate::raw::{RawBroker, RawStore};

/// The raw figure a service figure is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// insert_one ops/s with the concurrent task count.
    InsertOneRate,
    /// insert_one p50 with one task.
    InsertOneP50,
    /// insert_many documents/s.
    InsertManyRate,
    /// Indexed find_one ops/s with the concurrent task count.
    FindRate,
    /// Publish with confirm, p50, one task.
    PublishP50,
}

impl Basis {
    /// Short name shown in the table.
    pub fn label(self) -> &'static str {
        match self {
            Basis::InsertOneRate => "raw insert_one/s (8 tasks)",
            Basis::InsertOneP50 => "raw insert_one p50",
            Basis::InsertManyRate => "raw insert_many docs/s",
            Basis::FindRate => "raw indexed find/s (8 tasks)",
            Basis::PublishP50 => "raw publish-confirm p50",
        }
    }

    fn value(self, raw: &Raw) -> Option<f64> {
        match self {
            Basis::InsertOneRate => raw.store.as_ref().map(|s| s.insert_one_n.rate()),
            Basis::InsertOneP50 => raw
                .store
                .as_ref()
                .and_then(|s| s.insert_one_1.summary().p50),
            Basis::InsertManyRate => raw.store.as_ref().map(|s| s.insert_many_docs_per_sec),
            Basis::FindRate => raw.store.as_ref().map(|s| s.find_one_n.rate()),
            Basis::PublishP50 => raw.broker.as_ref().and_then(|b| b.publish_1.summary().p50),
        }
    }
}

/// The raw figures of a run (absent when skipped or failed).
#[derive(Debug, Clone, Default)]
pub struct Raw {
    /// Store.
    pub store: Option<RawStore>,
    /// Broker.
    pub broker: Option<RawBroker>,
}

/// One line of the summary.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload.
    pub section: String,
    /// What is measured.
    pub metric: String,
    /// The figure.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: &'static str,
    /// What it is divided by.
    pub basis: Option<Basis>,
    /// The issue's figure for the old code, when it quotes one.
    pub issue: Option<&'static str>,
    /// Free text (error counts and the like) instead of or next to the value.
    pub note: String,
}

impl Row {
    /// A row with a value.
    pub fn new(section: &str, metric: &str, value: Option<f64>, unit: &'static str) -> Self {
        Self {
            section: section.to_owned(),
            metric: metric.to_owned(),
            value,
            unit,
            basis: None,
            issue: None,
            note: String::new(),
        }
    }

    /// A row of text only.
    pub fn text(section: &str, metric: &str, note: String) -> Self {
        Self {
            note,
            ..Self::new(section, metric, None, "")
        }
    }

    /// Sets the basis of the ratio.
    pub fn vs(mut self, basis: Basis) -> Self {
        self.basis = Some(basis);
        self
    }

    /// Sets the issue's figure.
    pub fn issue(mut self, figure: &'static str) -> Self {
        self.issue = Some(figure);
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: String) -> Self {
        self.note = note;
        self
    }

    fn ratio(&self, raw: &Raw) -> Option<f64> {
        let v = self.value?;
        let b = self.basis?.value(raw)?;
        (b > 0.0).then(|| v / b)
    }
}

/// Formats a figure with a sensible number of digits.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_ratio(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}×")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}×")
    } else {
        format!("{v:.4}×")
    }
}

/// The table as text.
pub fn table(rows: &[Row], raw: &Raw) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let value = match r.value {
                Some(v) => format!("{} {}", fmt_num(v), r.unit),
                None if r.note.is_empty() => "n/a".to_owned(),
                None => String::new(),
            };
            let ratio = match (r.ratio(raw), r.basis) {
                (Some(x), Some(b)) => format!("{} {}", fmt_ratio(x), b.label()),
                _ => String::new(),
            };
            [
                r.section.clone(),
                r.metric.clone(),
                value,
                ratio,
                r.issue.unwrap_or("").to_owned(),
                r.note.clone(),
            ]
        })
        .collect();
    let heads = [
        "workload",
        "metric",
        "value",
        "ratio to raw",
        "issue (old)",
        "notes",
    ];
    let mut widths = heads.map(|h| h.chars().count());
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c.iter()) {
            *w = (*w).max(s.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in c.iter().zip(widths.iter()).enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(cell);
            if i + 1 < c.len() {
                s.push_str(&" ".repeat(w.saturating_sub(cell.chars().count())));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(&heads.map(str::to_owned));
    out.push('\n');
    let total: usize = widths.iter().sum::<usize>() + 3 * (widths.len() - 1);
    out.push_str(&"-".repeat(total.min(200)));
    out.push('\n');
    for c in &cells {
        out.push_str(&line(c));
        out.push('\n');
    }
    out
}

/// The rows as JSON.
pub fn rows_json(rows: &[Row], raw: &Raw) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "section": r.section,
                    "metric": r.metric,
                    "value": r.value,
                    "unit": r.unit,
                    "ratio": r.ratio(raw),
                    "basis": r.basis.map(Basis::label),
                    "basisValue": r.basis.and_then(|b| b.value(raw)),
                    "issue": r.issue,
                    "note": r.note,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_fewer_decimals_as_they_grow() {
        assert_eq!(fmt_num(12_700.4), "12700");
        assert_eq!(fmt_num(263.44), "263.4");
        assert_eq!(fmt_num(8.456), "8.46");
        assert_eq!(fmt_num(0.2134), "0.213");
    }

    #[test]
    fn rows_without_raw_figures_have_no_ratio() {
        let row = Row::new("send", "msg/s", Some(10.0), "msg/s").vs(Basis::InsertOneRate);
        assert_eq!(row.ratio(&Raw::default()), None);
        let text = table(&[row], &Raw::default());
        assert!(text.contains("10.00 msg/s"));
    }
}
