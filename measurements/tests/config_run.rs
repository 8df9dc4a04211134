//! A small density-style test config run end to end on the embedded simulated cluster through
//! the framework (config loading, executor, measurement manager, report writer) — everything
//! `cl2 run` does minus the command line: once passing, once with an impossible threshold.

use cl2_framework::cluster::Cluster;
use cl2_framework::config::{self, LoadOptions};
use cl2_framework::executor::{Executor, ExecutorOptions};
use cl2_framework::measurement::{MeasurementContext, MeasurementManager, Verdict};
use cl2_framework::report::{ReportFiles, ReportMeta, write_reports};
use cl2_hollow::kubelet::{Delay, PodLifecycle};
use cl2_hollow::sim::SimConfig;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ Name }}
  labels:
    group: {{ Group }}
spec:
  replicas: {{ Replicas }}
  selector:
    matchLabels:
      name: {{ Name }}
  template:
    metadata:
      labels:
        name: {{ Name }}
        group: {{ Group }}
    spec:
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.10
"#;

const CONFIG: &str = r#"name: mini-density
namespace:
  number: 2
tuningSets:
- name: Fast
  qpsLoad:
    qps: 50
steps:
- name: Start measurements
  measurements:
  - identifier: PodStartupLatency
    method: PodStartupLatency
    params:
      action: start
      labelSelector: group = latency
      threshold: {{ CL2_THRESHOLD | default(value="30s") }}
  - identifier: APIResponsiveness
    method: APIResponsiveness
    params:
      action: start
  - identifier: WaitForRunningLatencyDeployments
    method: WaitForControlledPodsRunning
    params:
      action: start
      apiVersion: apps/v1
      kind: Deployment
      labelSelector: group = latency
      operationTimeout: 3m
- name: Create latency deployments
  phases:
  - namespaceRange:
      min: 1
      max: 2
    replicasPerNamespace: 3
    tuningSet: Fast
    objectBundle:
    - basename: latency
      objectTemplatePath: deployment.yaml
      templateFillMap:
        Replicas: 2
        Group: latency
- name: Wait for latency pods
  measurements:
  - identifier: WaitForRunningLatencyDeployments
    method: WaitForControlledPodsRunning
    params:
      action: gather
- name: Gather
  measurements:
  - identifier: PodStartupLatency
    method: PodStartupLatency
    params:
      action: gather
  - identifier: APIResponsiveness
    method: APIResponsiveness
    params:
      action: gather
"#;

async fn run_config(dir: &Path, env: Vec<(String, String)>) -> (ReportFiles, std::path::PathBuf) {
    std::fs::write(dir.join("deployment.yaml"), DEPLOYMENT).unwrap();
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let registry = Arc::new(cl2_measurements::builtin_registry());
    let loaded = config::load(
        &config_path,
        &LoadOptions {
            overrides: vec![],
            nodes: Some(3),
            env,
            known_measurements: registry.names(),
        },
    )
    .unwrap_or_else(|e| panic!("config loads: {e:?}"));

    let mut cfg = SimConfig {
        nodes: 3,
        ..SimConfig::default()
    };
    cfg.stages.pods = Some(PodLifecycle {
        start_delay: Delay::Fixed {
            value: Duration::from_millis(500),
        },
        ..PodLifecycle::default()
    });
    let sim = cl2_hollow::sim::start(cfg).await.unwrap();
    let cluster = Cluster {
        client: sim.client(),
        latency: Arc::default(),
        kubeconfig_path: None,
        simulated: true,
    };
    let mut base = MeasurementContext::new(cluster.clone(), loaded.config.name.clone());
    base.namespace_prefix = Some(loaded.config.namespace.prefix.clone());
    let manager = Arc::new(MeasurementManager::new(registry, base));
    let executor = Executor::new(
        cluster.clone(),
        Arc::new(loaded.clone()),
        manager.clone(),
        ExecutorOptions::default(),
    );
    let record = executor.run().await;
    let results = manager.finish().await;
    let meta = ReportMeta {
        tool_version: "test".into(),
        config_path: config_path.display().to_string(),
        config_hash: loaded.source_hash.clone(),
        params: loaded.params.clone(),
        client_latency: cluster.latency.snapshot(),
        simulated: true,
        cluster: "embedded simulated cluster (3 hollow nodes)".into(),
        nodes: 3,
        ..ReportMeta::default()
    };
    let out = dir.join("reports");
    let files = write_reports(&out, &record, &results, &meta).unwrap();
    sim.shutdown().await;
    (files, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn density_style_config_passes_and_reports_parse() {
    let dir = tempfile::tempdir().unwrap();
    let (files, out) = run_config(dir.path(), vec![]).await;
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        files.verdict,
        Verdict::Pass,
        "{:#}",
        report["failureReasons"]
    );
    assert_eq!(files.exit_code(), 0);
    // Every file exists and the JSON ones parse.
    for f in &files.files {
        assert!(f.exists(), "{}", f.display());
        if f.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(f).unwrap())
                .unwrap();
        }
    }
    let names: Vec<String> = files
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("PodStartupLatency_PodStartupLatency_mini-density_")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("APIResponsivenessPrometheus_mini-density_")),
        "{names:?}"
    );
    // 2 namespaces x 3 deployments x 2 replicas, started 500 ms after binding.
    let pod = report["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "PodStartupLatency")
        .unwrap();
    let keys = pod["summaries"][0]["keyNumbers"].as_array().unwrap();
    let key = |n: &str| {
        keys.iter().find(|k| k["name"] == n).unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(key("pods"), 12.0);
    assert!(
        key("p50") >= 450.0 && key("p50") < 15_000.0,
        "p50 {}",
        key("p50")
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\" errors=\"0\""), "{junit}");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("**Verdict: PASS**"));
    assert!(
        std::fs::read_to_string(out.join("report.html"))
            .unwrap()
            .contains("<svg")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_threshold_fails_the_run_with_the_violation_named() {
    let dir = tempfile::tempdir().unwrap();
    let (files, out) = run_config(dir.path(), vec![("CL2_THRESHOLD".into(), "1ms".into())]).await;
    assert_eq!(files.verdict, Verdict::Fail);
    assert_eq!(files.exit_code(), 1);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("**Verdict: FAIL**"));
    assert!(
        md.contains("pod startup: too high latency 99th percentile"),
        "{md}"
    );
    assert!(md.contains("expected: 1ms"), "{md}");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("mini-density: PodStartupLatency - PodStartupLatency"));
    assert!(junit.contains("too high latency 99th percentile"));
    assert!(!junit.contains("failures=\"0\""), "{junit}");
}
