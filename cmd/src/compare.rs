//! `cl2 compare`: did latency regress between two runs? Reads the CL2-compatible PerfData files
//! of two report directories, pairs data items by (summary, labels), and flags percentiles that
//! grew by more than the tolerance.

use crate::cli::CompareArgs;
use crate::{Outcome, UsageError, table};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Key of one comparable number: summary name, rendered labels, data field.
type Key = (String, String, String);

/// Reads every `<Summary>_<test>_<time>.json` PerfData file of `dir`.
fn read_perfdata(dir: &Path) -> Result<BTreeMap<Key, (f64, String)>> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        UsageError(format!(
            "{}: cannot read report directory: {e}",
            dir.display()
        ))
    })?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        // <summary>_<test>_<time>: the summary is everything before the last two '_'.
        let parts: Vec<&str> = stem.rsplitn(3, '_').collect();
        if parts.len() != 3 {
            continue;
        }
        let summary = parts[2].to_string();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(items) = doc.get("dataItems").and_then(|d| d.as_array()) else {
            continue;
        };
        for item in items {
            let unit = item
                .get("unit")
                .and_then(|u| u.as_str())
                .unwrap_or("")
                .to_string();
            let labels = item
                .get("labels")
                .and_then(|l| l.as_object())
                .map(|l| {
                    let mut pairs: Vec<String> = l
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "Count" | "SlowCount"))
                        .map(|(k, v)| {
                            format!(
                                "{k}={}",
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())
                            )
                        })
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                })
                .unwrap_or_default();
            let Some(data) = item.get("data").and_then(|d| d.as_object()) else {
                continue;
            };
            for (field, value) in data {
                if let Some(v) = value.as_f64() {
                    out.insert(
                        (summary.clone(), labels.clone(), field.clone()),
                        (v, unit.clone()),
                    );
                }
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    summary: String,
    labels: String,
    field: String,
    unit: String,
    baseline: f64,
    candidate: f64,
    change_percent: Option<f64>,
    regression: bool,
}

/// Whether a field is a latency-like number where larger is worse.
fn larger_is_worse(summary: &str, field: &str) -> bool {
    !summary.starts_with("SchedulingThroughput")
        && (field.starts_with("Perc") || field == "Max" || field.ends_with("Latency"))
}

pub fn run(args: CompareArgs) -> Result<Outcome> {
    let base = read_perfdata(&args.baseline)?;
    let cand = read_perfdata(&args.candidate)?;
    if base.is_empty() || cand.is_empty() {
        return Err(UsageError(format!(
            "no PerfData files found in {}",
            if base.is_empty() {
                args.baseline.display()
            } else {
                args.candidate.display()
            }
        ))
        .into());
    }
    let mut rows = Vec::new();
    for (key, (b, unit)) in &base {
        let Some((c, _)) = cand.get(key) else {
            continue;
        };
        let change = if *b != 0.0 {
            Some((c - b) / b * 100.0)
        } else {
            None
        };
        // Sub-millisecond wobble is noise, not a regression.
        let significant = (c - b).abs() >= 1.0 || unit != "ms";
        let regression = larger_is_worse(&key.0, &key.2)
            && significant
            && change.is_some_and(|p| p > args.tolerance);
        rows.push(Row {
            summary: key.0.clone(),
            labels: key.1.clone(),
            field: key.2.clone(),
            unit: unit.clone(),
            baseline: *b,
            candidate: *c,
            change_percent: change,
            regression,
        });
    }
    let only_base = base.keys().filter(|k| !cand.contains_key(*k)).count();
    let only_cand = cand.keys().filter(|k| !base.contains_key(*k)).count();

    let mut table_rows = vec![vec![
        "SUMMARY".into(),
        "LABELS".into(),
        "FIELD".into(),
        "BASELINE".into(),
        "CANDIDATE".into(),
        "CHANGE".into(),
        "".into(),
    ]];
    for r in rows
        .iter()
        .filter(|r| larger_is_worse(&r.summary, &r.field) || r.regression)
    {
        table_rows.push(vec![
            r.summary.clone(),
            r.labels.clone(),
            r.field.clone(),
            format!("{:.2}{}", r.baseline, r.unit),
            format!("{:.2}{}", r.candidate, r.unit),
            r.change_percent
                .map(|p| format!("{p:+.1}%"))
                .unwrap_or_else(|| "n/a".into()),
            if r.regression {
                "REGRESSION".into()
            } else {
                String::new()
            },
        ]);
    }
    table::print_table(&table_rows);
    let regressions = rows.iter().filter(|r| r.regression).count();
    println!();
    println!(
        "{} numbers compared, {regressions} regression(s) over {:.0}% tolerance; {only_base} only in baseline, {only_cand} only in candidate",
        rows.len(),
        args.tolerance
    );
    if let Some(out) = &args.output {
        let json = serde_json::to_string_pretty(&rows)?;
        std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(if regressions > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, p99: f64) {
        let doc = serde_json::json!({"version": "v1", "dataItems": [
            {"data": {"Perc50": p99 / 2.0, "Perc99": p99}, "unit": "ms", "labels": {"Metric": "pod_startup"}}
        ]});
        std::fs::write(dir.join(name), doc.to_string()).unwrap();
    }

    #[test]
    fn flags_grown_percentiles_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(
            a.path(),
            "PodStartupLatency_PodStartupLatency_density_2026-01-01T00:00:00Z.json",
            1000.0,
        );
        write(
            b.path(),
            "PodStartupLatency_PodStartupLatency_density_2026-01-02T00:00:00Z.json",
            1500.0,
        );
        let base = read_perfdata(a.path()).unwrap();
        let cand = read_perfdata(b.path()).unwrap();
        let key = (
            "PodStartupLatency_PodStartupLatency".to_string(),
            "Metric=pod_startup".to_string(),
            "Perc99".to_string(),
        );
        assert_eq!(base[&key].0, 1000.0);
        assert_eq!(cand[&key].0, 1500.0);
        let out = run(CompareArgs {
            baseline: a.path().into(),
            candidate: b.path().into(),
            tolerance: 10.0,
            output: None,
        })
        .unwrap();
        assert_eq!(out, Outcome::Fail);
        let out = run(CompareArgs {
            baseline: a.path().into(),
            candidate: b.path().into(),
            tolerance: 60.0,
            output: None,
        })
        .unwrap();
        assert_eq!(out, Outcome::Pass);
    }
}
