//! Writing reports: CL2-compatible PerfData JSON files, `junit.xml`, `report.json`,
//! `summary.md` and `report.html`, atomically, also for partial runs.
//!
//! Every file is written to a temporary file in the report directory and renamed into place,
//! so readers never see half a report. A partial run (interrupted, or stopped by a fatal error)
//! is written the same way and marked `PARTIAL` in every human-facing file and `partial: true`
//! in `report.json`. The `report.json` schema is documented in `docs/report-format.md`; its
//! [`SCHEMA_VERSION`] changes on incompatible edits.

mod html;
mod markdown;
pub mod svg;

use crate::cluster::LatencyEntry;
use crate::config::Params;
use crate::measurement::{MeasurementResult, Summary, Verdict};
use crate::run::RunRecord;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Version of the `report.json` document.
pub const SCHEMA_VERSION: u32 = 1;

/// A phase whose achieved rate is below this fraction of the requested rate makes the run
/// invalid (cl2, not the cluster, was the bottleneck).
pub const MIN_ACHIEVED_RATE_RATIO: f64 = 0.9;

/// Phases with fewer actions are too short to judge their achieved rate.
pub const MIN_ACTIONS_FOR_RATE_CHECK: u64 = 20;

/// What the reports say about the run besides the executor's record and the results.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMeta {
    /// cl2's version.
    pub tool_version: String,
    /// The apiserver's `gitVersion` (or `unknown (<why>)`).
    pub server_version: String,
    /// The test config file, as given.
    pub config_path: String,
    /// SHA-256 (hex) of the config source.
    pub config_hash: String,
    /// Params the config was rendered with.
    pub params: Params,
    /// Client-side latency cl2 saw, per (verb, resource).
    pub client_latency: Vec<LatencyEntry>,
    /// The cluster was cl2's embedded simulated cluster.
    pub simulated: bool,
    /// Human description of the cluster (`embedded simulated cluster, 100 nodes`, API URL...).
    pub cluster: String,
    /// Number of (schedulable) nodes the test ran with.
    pub nodes: u64,
    /// `--provider` given to cl2.
    pub provider: String,
    /// Evidence that cl2 itself was the bottleneck, found by the caller (client-side
    /// throttling waits, local CPU saturation, ...). Each line makes the run invalid.
    pub client_bottlenecks: Vec<String>,
}

/// Errors writing reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create report directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
}

/// What [`write_reports`] wrote and concluded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportFiles {
    /// The report directory.
    pub dir: PathBuf,
    /// Every file written, in writing order.
    pub files: Vec<PathBuf>,
    /// Overall verdict: `Fail` on any failed measurement, error or partial run.
    pub verdict: Verdict,
    /// False when cl2 itself was the bottleneck.
    pub valid: bool,
    /// Why the run is invalid.
    pub validity_issues: Vec<String>,
    /// cl2 itself was the bottleneck (same as `!valid`): exit code 3.
    pub client_bottleneck: bool,
    pub partial: bool,
}

impl ReportFiles {
    /// Exit code per the documented convention: 3 invalid run, 1 failed, 0 passed.
    pub fn exit_code(&self) -> i32 {
        if !self.valid {
            3
        } else if self.verdict == Verdict::Fail {
            1
        } else {
            0
        }
    }
}

/// One row of the end-of-run verdict table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictRow {
    pub measurement: String,
    pub identifier: String,
    /// Summary name the row is about.
    pub summary: String,
    /// Key numbers, e.g. `p50 812ms, p90 950ms, p99 1.02s`.
    pub numbers: String,
    /// The SLO checked, in words, or `-`.
    pub slo: String,
    pub verdict: Verdict,
    /// Violations and errors, one per line.
    pub problems: Vec<String>,
}

/// Rows of the verdict table: one per summary with a verdict or key numbers, plus one per
/// instance that only has errors.
pub fn verdict_table(results: &[MeasurementResult]) -> Vec<VerdictRow> {
    let mut rows = Vec::new();
    for r in results {
        let mut any = false;
        for s in &r.summaries {
            if s.verdict == Verdict::None && s.key_numbers.is_empty() {
                continue;
            }
            any = true;
            rows.push(VerdictRow {
                measurement: r.method.clone(),
                identifier: r.identifier.clone(),
                summary: s.name.clone(),
                numbers: format_key_numbers(s),
                slo: s.slo.clone().unwrap_or_else(|| "-".into()),
                verdict: s.verdict,
                problems: s.violations.clone(),
            });
        }
        if !r.errors.is_empty() || !any {
            rows.push(VerdictRow {
                measurement: r.method.clone(),
                identifier: r.identifier.clone(),
                summary: String::new(),
                numbers: "-".into(),
                slo: if r.errors.is_empty() {
                    "-".into()
                } else {
                    "measurement error".into()
                },
                verdict: if r.errors.is_empty() {
                    Verdict::None
                } else {
                    Verdict::Fail
                },
                problems: r.errors.clone(),
            });
        }
    }
    rows
}

/// Formats a number with its unit compactly (`812ms`, `1.02s`, `35.2 pods/s`).
pub fn format_value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    match unit {
        "ms" if v >= 1000.0 => format!("{}s", sig(v / 1000.0)),
        "ms" => format!("{}ms", sig(v)),
        "s" => format!("{}s", sig(v)),
        "" => sig(v),
        u => format!("{} {u}", sig(v)),
    }
}

fn sig(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn format_key_numbers(s: &Summary) -> String {
    if s.key_numbers.is_empty() {
        return "-".into();
    }
    s.key_numbers
        .iter()
        .map(|k| format!("{} {}", k.name, format_value(k.value, &k.unit)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the "Latency by cluster load" table (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LoadRow {
    /// The `loadLevel` param, e.g. `"50%"`.
    pub level: String,
    pub pod_startup_p10: Option<f64>,
    pub pod_startup_p50: Option<f64>,
    pub pod_startup_p90: Option<f64>,
    pub pod_startup_p99: Option<f64>,
    /// API calls: all single-object (resource-scope, non-LIST) calls aggregated.
    pub api_p10: Option<f64>,
    pub api_p50: Option<f64>,
    pub api_p90: Option<f64>,
    pub api_p99: Option<f64>,
    /// API calls: worst p99 of any (verb, resource, subresource, scope).
    pub api_worst_p99: Option<f64>,
    /// Which call had the worst p99, e.g. `POST pods`.
    pub api_worst_call: Option<String>,
}

/// Headers of the load table's latency columns, in the order of [`LoadRow::latencies`].
pub(crate) const LOAD_LATENCY_HEADERS: [&str; 8] = [
    "Pod p10", "Pod p50", "Pod p90", "Pod p99", "API p10", "API p50", "API p90", "API p99",
];

impl LoadRow {
    /// Pod startup then single-object API percentiles, in the load table's column order.
    pub(crate) fn latencies(&self) -> [Option<f64>; 8] {
        [
            self.pod_startup_p10,
            self.pod_startup_p50,
            self.pod_startup_p90,
            self.pod_startup_p99,
            self.api_p10,
            self.api_p50,
            self.api_p90,
            self.api_p99,
        ]
    }
}

/// Builds the load table from results carrying a `loadLevel`, levels in order of appearance.
///
/// Pod numbers come from PodStartupLatency's all-pods summary (key numbers `p10..p99` of
/// `pod_startup`), API numbers from APIResponsiveness's key numbers `singleObjectP10/50/90/99`
/// and `worstP99`.
pub fn latency_by_load(results: &[MeasurementResult]) -> Vec<LoadRow> {
    let mut rows: Vec<LoadRow> = Vec::new();
    for r in results {
        let Some(level) = &r.load_level else { continue };
        let idx = match rows.iter().position(|row| &row.level == level) {
            Some(i) => i,
            None => {
                rows.push(LoadRow {
                    level: level.clone(),
                    ..LoadRow::default()
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[idx];
        for s in &r.summaries {
            if s.name.starts_with("PodStartupLatency_") {
                row.pod_startup_p10 = s.key("p10").or(row.pod_startup_p10);
                row.pod_startup_p50 = s.key("p50").or(row.pod_startup_p50);
                row.pod_startup_p90 = s.key("p90").or(row.pod_startup_p90);
                row.pod_startup_p99 = s.key("p99").or(row.pod_startup_p99);
            }
            if s.key("singleObjectP99").is_some() || s.key("worstP99").is_some() {
                row.api_p10 = s.key("singleObjectP10").or(row.api_p10);
                row.api_p50 = s.key("singleObjectP50").or(row.api_p50);
                row.api_p90 = s.key("singleObjectP90").or(row.api_p90);
                row.api_p99 = s.key("singleObjectP99").or(row.api_p99);
                row.api_worst_p99 = s.key("worstP99").or(row.api_worst_p99);
                if let Some(c) = s.content.get("dataItems").and_then(|d| d.get(0)) {
                    let l = &c["labels"];
                    let call = format!(
                        "{} {}{}",
                        l["Verb"].as_str().unwrap_or(""),
                        l["Resource"].as_str().unwrap_or(""),
                        l["Subresource"]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .map(|s| format!("/{s}"))
                            .unwrap_or_default()
                    );
                    row.api_worst_call = Some(call);
                }
            }
        }
    }
    rows
}

/// Why the run is invalid (empty = valid).
pub fn validity_issues(record: &RunRecord, meta: &ReportMeta) -> Vec<String> {
    let mut issues = Vec::new();
    for step in &record.steps {
        for ph in &step.phases {
            let Some(req) = ph.requested_qps else {
                continue;
            };
            if req <= 0.0 || ph.actions_started < MIN_ACTIONS_FOR_RATE_CHECK {
                continue;
            }
            if ph.achieved_qps < MIN_ACHIEVED_RATE_RATIO * req {
                issues.push(format!(
                    "{} phase {}: achieved {:.1} actions/s of the requested {:.1}/s ({:.0}%, \
                     below {:.0}%): cl2 could not issue requests fast enough",
                    step.name,
                    ph.index,
                    ph.achieved_qps,
                    req,
                    100.0 * ph.achieved_qps / req,
                    100.0 * MIN_ACHIEVED_RATE_RATIO
                ));
            }
        }
    }
    issues.extend(meta.client_bottlenecks.iter().cloned());
    issues
}

/// Overall verdict and the reasons for a failure.
pub fn overall(record: &RunRecord, results: &[MeasurementResult]) -> (Verdict, Vec<String>) {
    let mut reasons = Vec::new();
    let mut v = Verdict::Pass;
    if record.partial {
        reasons.push("the run is partial (interrupted or stopped early)".to_string());
    }
    // The executor may record one problem both as a run error and as a step error; keep the
    // run error (it has the context) and skip step errors with the same message.
    let run_messages: BTreeSet<&str> = record.errors.iter().map(|e| e.message.as_str()).collect();
    for e in &record.errors {
        reasons.push(format!("{}: {}", e.context, e.message));
    }
    for s in &record.steps {
        for e in &s.errors {
            if !run_messages.contains(e.as_str()) {
                reasons.push(format!("{}: {e}", s.name));
            }
        }
        for ph in &s.phases {
            if ph.actions_failed > 0 {
                reasons.push(format!(
                    "{} phase {}: {} of {} actions failed",
                    s.name, ph.index, ph.actions_failed, ph.actions_started
                ));
            }
        }
    }
    for r in results {
        for s in &r.summaries {
            if s.verdict == Verdict::Fail {
                let what = if s.violations.is_empty() {
                    "SLO violated".to_string()
                } else {
                    s.violations.join("; ")
                };
                reasons.push(format!("{} {}: {what}", r.method, r.identifier));
            }
        }
        for e in &r.errors {
            reasons.push(format!("{} {}: {e}", r.method, r.identifier));
        }
    }
    // Measurement errors are usually also in step errors; keep each reason once.
    let mut seen = BTreeSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    if !reasons.is_empty() {
        v = Verdict::Fail;
    }
    (v, reasons)
}

/// A summary file and the summary it holds.
#[derive(Debug, Clone)]
struct SummaryFile<'a> {
    result: &'a MeasurementResult,
    summary: &'a Summary,
    file: String,
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn summary_files<'a>(record: &RunRecord, results: &'a [MeasurementResult]) -> Vec<SummaryFile<'a>> {
    let time = record.finished.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for r in results {
        for s in &r.summaries {
            let stem = sanitize(&format!("{}_{}_{}", s.name, record.test_name, time));
            let mut file = format!("{stem}.json");
            let mut n = 2;
            while !used.insert(file.clone()) {
                file = format!("{stem}_{n}.json");
                n += 1;
            }
            out.push(SummaryFile {
                result: r,
                summary: s,
                file,
            });
        }
    }
    out
}

/// Serializes like CL2 (Go `json.Indent` with two spaces, `<>&` escaped, trailing newline).
fn perfdata_json(v: &serde_json::Value) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(v)?;
    s = s
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    s.push('\n');
    Ok(s)
}

/// Writes `bytes` to `dir/name` atomically (temp file in `dir`, then rename).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, ReportError> {
    let path = dir.join(name);
    let werr = |source| ReportError::Write {
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cl2-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(&path).map_err(|e| ReportError::Write {
        path: path.clone(),
        source: e.error,
    })?;
    Ok(path)
}

/// Everything the human renderers need, computed once.
pub(crate) struct View<'a> {
    pub record: &'a RunRecord,
    pub results: &'a [MeasurementResult],
    pub meta: &'a ReportMeta,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub validity: Vec<String>,
    pub rows: Vec<VerdictRow>,
    pub load: Vec<LoadRow>,
}

fn report_json(
    view: &View<'_>,
    files: &[SummaryFile<'_>],
) -> Result<serde_json::Value, ReportError> {
    let record = view.record;
    let measurements: Vec<serde_json::Value> = view
        .results
        .iter()
        .map(|r| {
            let summaries: Vec<serde_json::Value> = r
                .summaries
                .iter()
                .map(|s| {
                    let file = files
                        .iter()
                        .find(|f| std::ptr::eq(f.summary, s))
                        .map(|f| f.file.clone());
                    serde_json::json!({
                        "name": s.name,
                        "file": file,
                        "verdict": s.verdict,
                        "violations": s.violations,
                        "keyNumbers": s.key_numbers,
                        "slo": s.slo,
                        "content": s.content,
                    })
                })
                .collect();
            serde_json::json!({
                "method": r.method,
                "identifier": r.identifier,
                "loadLevel": r.load_level,
                "verdict": r.verdict(),
                "errors": r.errors,
                "actions": r.actions,
                "started": r.started,
                "gatheredAtFinish": r.gathered_at_finish,
                "summaries": summaries,
            })
        })
        .collect();
    let v = serde_json::json!({
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "cl2", "version": view.meta.tool_version},
        "server": {"gitVersion": view.meta.server_version},
        "cluster": {
            "simulated": view.meta.simulated,
            "description": view.meta.cluster,
            "nodes": view.meta.nodes,
            "provider": view.meta.provider,
        },
        "config": {"path": view.meta.config_path, "sha256": view.meta.config_hash},
        "params": view.meta.params,
        "testName": record.test_name,
        "started": record.started,
        "finished": record.finished,
        "durationSeconds": duration_secs(record),
        "partial": record.partial,
        "verdict": view.verdict,
        "failureReasons": view.reasons,
        "validity": {"valid": view.validity.is_empty(), "issues": view.validity},
        "steps": record.steps,
        "errors": record.errors,
        "namespacesCreated": record.namespaces_created,
        "namespacesLeft": record.namespaces_left,
        "clientLatency": view.meta.client_latency,
        "measurements": measurements,
        "verdictTable": view.rows,
        "latencyByLoad": view.load,
    });
    Ok(v)
}

/// Headers of the client-side latency table, in the order of [`client_latency_cells`].
pub(crate) const CLIENT_LATENCY_HEADERS: [&str; 8] = [
    "Verb", "Resource", "Count", "Errors", "p50", "p90", "p99", "max",
];

/// One client-side latency table row, unescaped.
pub(crate) fn client_latency_cells(e: &LatencyEntry) -> [String; 8] {
    [
        e.verb.clone(),
        e.resource.clone(),
        e.count.to_string(),
        e.errors.to_string(),
        format_value(e.p50_ms, "ms"),
        format_value(e.p90_ms, "ms"),
        format_value(e.p99_ms, "ms"),
        format_value(e.max_ms, "ms"),
    ]
}

/// Milliseconds for a table cell; `-` when unknown.
pub(crate) fn opt_ms(v: Option<f64>) -> String {
    v.map(|v| format_value(v, "ms"))
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn duration_secs(record: &RunRecord) -> f64 {
    (record.finished - record.started).num_milliseconds().max(0) as f64 / 1000.0
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Renders `junit.xml`: an overall case, one case per step and one per measurement instance.
pub(crate) fn junit(view: &View<'_>) -> String {
    struct Case {
        name: String,
        time: f64,
        failures: Vec<String>,
        errors: Vec<String>,
    }
    let record = view.record;
    let test = &record.test_name;
    let mut cases = Vec::new();
    let mut overall_failures = view.reasons.clone();
    overall_failures.extend(view.validity.iter().map(|v| format!("run invalid: {v}")));
    cases.push(Case {
        name: format!("{test} overall ({})", view.meta.config_path),
        time: duration_secs(record),
        failures: overall_failures,
        errors: Vec::new(),
    });
    for s in &record.steps {
        let mut failures = s.errors.clone();
        for ph in &s.phases {
            if ph.actions_failed > 0 {
                failures.push(format!(
                    "phase {}: {} of {} actions failed{}",
                    ph.index,
                    ph.actions_failed,
                    ph.actions_started,
                    ph.errors
                        .first()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ));
            }
        }
        cases.push(Case {
            name: format!("{test}: {}", s.name),
            time: s.duration.as_secs_f64(),
            failures,
            errors: Vec::new(),
        });
    }
    for r in view.results {
        let mut failures = Vec::new();
        for s in &r.summaries {
            if s.verdict == Verdict::Fail {
                if s.violations.is_empty() {
                    failures.push(format!("{}: SLO violated", s.name));
                }
                failures.extend(s.violations.iter().map(|v| format!("{}: {v}", s.name)));
            }
        }
        cases.push(Case {
            name: format!("{test}: {} - {}", r.method, r.identifier),
            time: 0.0,
            failures,
            errors: r.errors.clone(),
        });
    }
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let errors = cases
        .iter()
        .filter(|c| c.failures.is_empty() && !c.errors.is_empty())
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuite name=\"ClusterLoaderV2\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n",
        cases.len(),
        duration_secs(record)
    ));
    for c in &cases {
        out.push_str(&format!(
            "  <testcase name=\"{}\" classname=\"ClusterLoaderV2\" time=\"{:.3}\"",
            xml_escape(&c.name),
            c.time
        ));
        if c.failures.is_empty() && c.errors.is_empty() {
            out.push_str("></testcase>\n");
            continue;
        }
        out.push_str(">\n");
        if !c.failures.is_empty() {
            let first = c.failures.first().map(String::as_str).unwrap_or("");
            out.push_str(&format!(
                "    <failure type=\"Failure\" message=\"{}\">{}</failure>\n",
                xml_escape(first),
                xml_escape(&c.failures.join("\n"))
            ));
        }
        if !c.errors.is_empty() {
            let tag = if c.failures.is_empty() {
                "error"
            } else {
                "system-err"
            };
            let first = c.errors.first().map(String::as_str).unwrap_or("");
            if tag == "error" {
                out.push_str(&format!(
                    "    <error type=\"Error\" message=\"{}\">{}</error>\n",
                    xml_escape(first),
                    xml_escape(&c.errors.join("\n"))
                ));
            } else {
                out.push_str(&format!(
                    "    <system-err>{}</system-err>\n",
                    xml_escape(&c.errors.join("\n"))
                ));
            }
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// Writes every report file into `dir` (created if missing) and returns what was written and
/// the overall verdict. Safe to call for a partial run.
pub fn write_reports(
    dir: &Path,
    record: &RunRecord,
    results: &[MeasurementResult],
    meta: &ReportMeta,
) -> Result<ReportFiles, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let (verdict, reasons) = overall(record, results);
    let validity = validity_issues(record, meta);
    let view = View {
        record,
        results,
        meta,
        verdict,
        reasons,
        validity,
        rows: verdict_table(results),
        load: latency_by_load(results),
    };
    let mut written = Vec::new();
    let files = summary_files(record, results);
    for f in &files {
        let body = perfdata_json(&f.summary.content).map_err(|source| ReportError::Encode {
            what: f.summary.name.clone(),
            source,
        })?;
        written.push(write_atomic(dir, &f.file, body.as_bytes())?);
        let _ = f.result;
    }
    written.push(write_atomic(dir, "junit.xml", junit(&view).as_bytes())?);
    let rj = report_json(&view, &files)?;
    let mut body = serde_json::to_string_pretty(&rj).map_err(|source| ReportError::Encode {
        what: "report.json".into(),
        source,
    })?;
    body.push('\n');
    written.push(write_atomic(dir, "report.json", body.as_bytes())?);
    written.push(write_atomic(
        dir,
        "summary.md",
        markdown::render(&view).as_bytes(),
    )?);
    written.push(write_atomic(
        dir,
        "report.html",
        html::render(&view).as_bytes(),
    )?);
    Ok(ReportFiles {
        dir: dir.to_path_buf(),
        client_bottleneck: !view.validity.is_empty(),
        files: written,
        verdict: view.verdict,
        valid: view.validity.is_empty(),
        validity_issues: view.validity.clone(),
        partial: record.partial,
    })
}

#[cfg(test)]
mod tests;
