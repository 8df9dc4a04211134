use super::*;
use crate::measurement::KeyNumber;
use crate::run::{PhaseRecord, StepRecord};
use chrono::{TimeZone, Utc};
use std::time::Duration;

fn record(partial: bool, achieved: f64) -> RunRecord {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 2, 15, 4, 5).unwrap();
    RunRecord {
        test_name: "density".into(),
        started: t0,
        finished: t0 + chrono::Duration::seconds(90),
        steps: vec![
            StepRecord {
                index: 0,
                name: "[step: 01] Starting measurements".into(),
                started: t0,
                duration: Duration::from_millis(200),
                phases: vec![],
                errors: vec![],
            },
            StepRecord {
                index: 1,
                name: "[step: 02] Create pods".into(),
                started: t0,
                duration: Duration::from_secs(60),
                phases: vec![PhaseRecord {
                    index: 0,
                    tuning_set: "Uniform100qps".into(),
                    objects: vec!["pod".into()],
                    namespaces: 10,
                    replicas_per_namespace: 100,
                    requested_qps: Some(100.0),
                    achieved_qps: achieved,
                    actions_started: 1000,
                    actions_failed: 0,
                    creates: 1000,
                    patches: 0,
                    deletes: 0,
                    started: t0,
                    duration: Duration::from_secs(10),
                    errors: vec![],
                }],
                errors: vec![],
            },
        ],
        errors: vec![],
        partial,
        namespaces_created: vec!["test-abc-1".into()],
        namespaces_left: vec![],
    }
}

fn pod_summary(id: &str, p99: f64, fail: bool) -> Summary {
    let mut s = Summary::new(
        format!("PodStartupLatency_{id}"),
        serde_json::json!({"version": "1.0", "dataItems": [
            {"data": {"Perc50": p99 / 2.0, "Perc90": p99 * 0.9, "Perc99": p99}, "unit": "ms",
             "labels": {"Metric": "pod_startup"}}]}),
    );
    s.key_numbers = vec![
        KeyNumber::new("p10", p99 / 4.0, "ms"),
        KeyNumber::new("p50", p99 / 2.0, "ms"),
        KeyNumber::new("p90", p99 * 0.9, "ms"),
        KeyNumber::new("p99", p99, "ms"),
    ];
    s.slo = Some("pod_startup p50/p90/p99 <= 5s".into());
    if fail {
        s.verdict = Verdict::Fail;
        s.violations = vec![format!(
            "pod startup: too high latency 99th percentile: got {p99}ms expected: 1ms"
        )];
    } else {
        s.verdict = Verdict::Pass;
    }
    s
}

fn result(
    method: &str,
    id: &str,
    level: Option<&str>,
    summaries: Vec<Summary>,
) -> MeasurementResult {
    MeasurementResult {
        method: method.into(),
        identifier: id.into(),
        summaries,
        errors: vec![],
        load_level: level.map(str::to_string),
        started: None,
        actions: vec!["start".into(), "gather".into()],
        gathered_at_finish: false,
    }
}

fn meta() -> ReportMeta {
    ReportMeta {
        tool_version: "0.1.0".into(),
        server_version: "v1.36.0".into(),
        config_path: "configs/density.yaml".into(),
        config_hash: "ab".repeat(32),
        cluster: "embedded simulated cluster".into(),
        simulated: true,
        ..ReportMeta::default()
    }
}

#[test]
fn passing_run_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut api = Summary::new(
        "APIResponsivenessPrometheus",
        serde_json::json!({"version": "v1", "dataItems": [
            {"data": {"Perc50": 5.0, "Perc90": 9.0, "Perc99": 12.0}, "unit": "ms",
             "labels": {"Verb": "POST", "Resource": "pods", "Subresource": "", "Scope": "resource",
                        "Count": "100", "SlowCount": "0"}}]}),
    );
    api.key_numbers = vec![
        KeyNumber::new("singleObjectP50", 4.0, "ms"),
        KeyNumber::new("singleObjectP99", 10.0, "ms"),
        KeyNumber::new("worstP99", 12.0, "ms"),
    ];
    api.verdict = Verdict::Pass;
    let results = vec![
        result(
            "PodStartupLatency",
            "PodStartupLatency-10pct",
            Some("10%"),
            vec![pod_summary("PodStartupLatency-10pct", 800.0, false)],
        ),
        result("APIResponsiveness", "API-10pct", Some("10%"), vec![api]),
        result(
            "PodStartupLatency",
            "PodStartupLatency-50pct",
            Some("50%"),
            vec![pod_summary("PodStartupLatency-50pct", 1200.0, false)],
        ),
    ];
    let files = write_reports(dir.path(), &record(false, 99.0), &results, &meta()).unwrap();
    assert_eq!(files.verdict, Verdict::Pass);
    assert_eq!(files.exit_code(), 0);
    let names: Vec<String> = files
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(
        &"PodStartupLatency_PodStartupLatency-10pct_density_2026-01-02T15:05:35Z.json".to_string()
    ));
    for n in ["junit.xml", "report.json", "summary.md", "report.html"] {
        assert!(names.contains(&n.to_string()), "{n} missing");
    }
    let pd: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(&names[0])).unwrap())
            .unwrap();
    assert_eq!(pd["dataItems"][0]["labels"]["Metric"], "pod_startup");
    let rj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(rj["schemaVersion"], SCHEMA_VERSION);
    assert_eq!(rj["verdict"], "pass");
    assert_eq!(rj["latencyByLoad"][0]["level"], "10%");
    assert_eq!(rj["latencyByLoad"][0]["podStartupP99"], 800.0);
    assert_eq!(rj["latencyByLoad"][0]["apiP99"], 10.0);
    assert_eq!(rj["latencyByLoad"][0]["apiWorstCall"], "POST pods");
    assert_eq!(rj["latencyByLoad"][1]["level"], "50%");
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("Latency by cluster load"));
    assert!(
        md.contains("| 10% | 200ms | 400ms | 720ms | 800ms |"),
        "{md}"
    );
    assert!(!md.contains("PARTIAL"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("<svg")
            && !html.contains("<script")
            && !html.contains("src=")
            && !html.contains("<link")
    );
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("tests=\"6\" failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    // No temp files left behind.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".cl2-")
    }));
}

#[test]
fn violations_and_partial_runs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut failing = result(
        "PodStartupLatency",
        "Pods",
        None,
        vec![pod_summary("Pods", 900.0, true)],
    );
    failing.gathered_at_finish = true;
    let mut errored = result("WaitForRunningPods", "wait", None, vec![]);
    errored
        .errors
        .push("gather: timed out waiting for 10 pods".into());
    let files = write_reports(
        dir.path(),
        &record(true, 99.0),
        &[failing, errored],
        &meta(),
    )
    .unwrap();
    assert_eq!(files.verdict, Verdict::Fail);
    assert_eq!(files.exit_code(), 1);
    assert!(files.partial);
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("PARTIAL RUN"));
    assert!(md.contains("too high latency 99th percentile"));
    assert!(md.contains("| PodStartupLatency | Pods |"));
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    // overall + 2 steps + 2 measurements; overall and PodStartupLatency fail; wait errors.
    assert!(
        junit.contains("tests=\"5\" failures=\"2\" errors=\"1\""),
        "{junit}"
    );
    assert!(junit.contains("too high latency 99th percentile"));
    assert!(junit.contains("<error type=\"Error\""));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("PARTIAL RUN"));
}

#[test]
fn slow_client_makes_the_run_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_reports(dir.path(), &record(false, 50.0), &[], &meta()).unwrap();
    assert!(!files.valid);
    assert_eq!(files.exit_code(), 3);
    assert!(files.validity_issues[0].contains("achieved 50.0 actions/s of the requested 100.0/s"));
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(md.contains("RUN INVALID"));
}

#[test]
fn duplicate_summary_names_get_distinct_files() {
    let rec = record(false, 100.0);
    let results = vec![
        result(
            "SchedulingThroughput",
            "a",
            None,
            vec![Summary::new("SchedulingThroughput", serde_json::json!({}))],
        ),
        result(
            "SchedulingThroughput",
            "b",
            None,
            vec![Summary::new("SchedulingThroughput", serde_json::json!({}))],
        ),
    ];
    let files = summary_files(&rec, &results);
    assert_ne!(files[0].file, files[1].file);
    assert!(files[1].file.ends_with("_2.json"));
}

#[test]
fn perfdata_is_indented_and_html_escaped() {
    let s = perfdata_json(&serde_json::json!({"b": "<&>", "a": 1})).unwrap();
    assert_eq!(s, "{\n  \"a\": 1,\n  \"b\": \"\\u003c\\u0026\\u003e\"\n}\n");
}

#[test]
fn verdict_rows_format_key_numbers() {
    let r = result(
        "PodStartupLatency",
        "x",
        None,
        vec![pod_summary("x", 1500.0, false)],
    );
    let rows = verdict_table(&[r]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].numbers, "p10 375ms, p50 750ms, p90 1.35s, p99 1.5s");
    assert_eq!(rows[0].verdict, Verdict::Pass);
}

/// Golden files for the human/CI renderings of a fixed run. Regenerate with
/// `CL2_UPDATE_GOLDEN=1 cargo test -p cl2-framework --lib report::tests::golden`.
#[test]
fn golden_summary_and_junit() {
    let mut failing = result(
        "PodStartupLatency",
        "Pods",
        None,
        vec![pod_summary("Pods", 900.0, true)],
    );
    failing.errors.push("gather: watch restarted".into());
    let results = vec![
        result(
            "PodStartupLatency",
            "PodStartupLatency-10pct",
            Some("10%"),
            vec![pod_summary("PodStartupLatency-10pct", 800.0, false)],
        ),
        failing,
    ];
    let rec = record(false, 99.0);
    let m = meta();
    let (verdict, reasons) = overall(&rec, &results);
    let view = View {
        record: &rec,
        results: &results,
        meta: &m,
        verdict,
        reasons,
        validity: validity_issues(&rec, &m),
        rows: verdict_table(&results),
        load: latency_by_load(&results),
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/report/testdata");
    for (name, got) in [
        ("summary.golden.md", markdown::render(&view)),
        ("junit.golden.xml", junit(&view)),
    ] {
        let path = dir.join(name);
        if std::env::var_os("CL2_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            got, want,
            "{name} differs; regenerate with CL2_UPDATE_GOLDEN=1 if intended"
        );
    }
}
