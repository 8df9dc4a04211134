//! Benchmarks printing figures (no assertions):
//! 1. memory held by PodStartupLatency's tracker for 150,000 pods, fed through the same
//!    `Tracker::observe` the watch handler uses (three events per pod: created, scheduled,
//!    running) — target ≤ 100 MB;
//! 2. time to compute PodStartupLatency's summaries for those pods and to write every report
//!    file for a realistic result set — target ≤ 1 s.
//!
//! Run: `cargo bench -p cl2-measurements --bench measurements`.

use cl2_framework::measurement::{KeyNumber, MeasurementResult, Summary, Verdict};
use cl2_framework::report::{ReportMeta, write_reports};
use cl2_framework::run::{PhaseRecord, RunRecord, StepRecord};
use cl2_measurements::pod_startup_latency::{PodObservation, Tracker, default_summaries};
use std::time::{Duration, Instant};

const PODS: usize = 150_000;

fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let rss0 = rss_kib().unwrap_or(0);
    let t0 = Instant::now();
    let mut tracker = Tracker::new();
    let base = 1_780_000_000_000i64;
    let mut key = String::new();
    for i in 0..PODS {
        key.clear();
        key.push_str(&format!(
            "test-abcdef-{}/density-latency-pod-{}",
            i % 5000,
            i
        ));
        let created = base + i as i64 * 20;
        let mut o = PodObservation {
            server_create: created - created % 1000,
            ..PodObservation::default()
        };
        tracker.observe(&key, &o, created + 5);
        o.scheduled = true;
        o.server_schedule = created + 300 - (created + 300) % 1000;
        tracker.observe(&key, &o, created + 300 + (i % 97) as i64);
        o.running = true;
        o.server_run = created + 1200 - (created + 1200) % 1000;
        tracker.observe(&key, &o, created + 1250 + (i % 389) as i64);
    }
    let feed = t0.elapsed();
    let rss1 = rss_kib().unwrap_or(0);
    let delta_mb = (rss1.saturating_sub(rss0)) as f64 / 1024.0;
    println!(
        "PodStartupLatency tracker: {} pods, 3 events each, fed in {:.0} ms ({:.2} M events/s)",
        tracker.len(),
        feed.as_secs_f64() * 1000.0,
        3.0 * PODS as f64 / feed.as_secs_f64() / 1e6
    );
    println!(
        "PodStartupLatency tracker memory: RSS delta {delta_mb:.1} MB ({:.0} bytes/pod; target <= 100 MB)",
        delta_mb * 1024.0 * 1024.0 / PODS as f64
    );

    let t1 = Instant::now();
    let pod_summaries = default_summaries("PodStartupLatency", &tracker);
    let compute = t1.elapsed();
    println!(
        "PodStartupLatency gather (6 transitions x 3 groups + server view): {:.0} ms",
        compute.as_secs_f64() * 1000.0
    );

    // A realistic result set: pod startup at 5 load levels, API responsiveness with 150 calls,
    // scheduling throughput, a timer, 12 steps.
    let mut results = Vec::new();
    for level in ["10%", "25%", "50%", "90%", "100%"] {
        results.push(MeasurementResult {
            method: "PodStartupLatency".into(),
            identifier: format!("PodStartupLatency-{}pct", level.trim_end_matches('%')),
            summaries: pod_summaries.clone(),
            errors: vec![],
            load_level: Some(level.into()),
            started: None,
            actions: vec!["start".into(), "gather".into()],
            gathered_at_finish: false,
        });
        let items: Vec<serde_json::Value> = (0..150)
            .map(|i| serde_json::json!({"data": {"Perc50": i as f64, "Perc90": 2.0 * i as f64, "Perc99": 3.0 * i as f64},
                "unit": "ms", "labels": {"Verb": "GET", "Resource": format!("res{i}"), "Subresource": "",
                "Scope": "resource", "Count": "1000", "SlowCount": "0"}}))
            .collect();
        let mut api = Summary::new(
            "APIResponsivenessPrometheus",
            serde_json::json!({"version": "v1", "dataItems": items}),
        );
        api.verdict = Verdict::Pass;
        api.key_numbers = vec![
            KeyNumber::new("singleObjectP99", 42.0, "ms"),
            KeyNumber::new("worstP99", 447.0, "ms"),
        ];
        results.push(MeasurementResult {
            method: "APIResponsiveness".into(),
            identifier: format!("APIResponsiveness-{}pct", level.trim_end_matches('%')),
            summaries: vec![api],
            errors: vec![],
            load_level: Some(level.into()),
            started: None,
            actions: vec!["start".into(), "gather".into()],
            gathered_at_finish: false,
        });
    }
    let t = chrono::Utc::now();
    let steps = (0..12)
        .map(|i| StepRecord {
            index: i,
            name: format!("[step: {:02}] step {i}", i + 1),
            started: t,
            duration: Duration::from_secs(30),
            phases: vec![PhaseRecord {
                index: 0,
                tuning_set: "Uniform100qps".into(),
                objects: vec!["pod".into()],
                namespaces: 100,
                replicas_per_namespace: 30,
                requested_qps: Some(100.0),
                achieved_qps: 99.5,
                actions_started: 3000,
                actions_failed: 0,
                creates: 3000,
                patches: 0,
                deletes: 0,
                started: t,
                duration: Duration::from_secs(30),
                errors: vec![],
            }],
            errors: vec![],
        })
        .collect();
    let record = RunRecord {
        test_name: "density".into(),
        started: t,
        finished: t,
        steps,
        errors: vec![],
        partial: false,
        namespaces_created: vec![],
        namespaces_left: vec![],
    };
    let meta = ReportMeta {
        tool_version: "bench".into(),
        cluster: "bench".into(),
        ..ReportMeta::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let t2 = Instant::now();
    let files = write_reports(dir.path(), &record, &results, &meta).expect("write reports");
    let write = t2.elapsed();
    let bytes: u64 = files
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "write_reports: {} files, {:.1} KB, {:.0} ms (target <= 1 s); compute+write {:.0} ms",
        files.files.len(),
        bytes as f64 / 1024.0,
        write.as_secs_f64() * 1000.0,
        (compute + write).as_secs_f64() * 1000.0
    );
    drop(tracker);
}
