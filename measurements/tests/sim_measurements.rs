//! Measurements against the embedded simulated cluster (real HTTP API, scheduler, hollow
//! kubelets): pod startup latency consistent with the configured start delay, API
//! responsiveness from the simulator's /metrics, a Deployment barrier, the plugin example with
//! a real kubeconfig, and reports written and parsed back (passing and failing SLOs).

use cl2_framework::cluster::Cluster;
use cl2_framework::config::{MeasurementInstance, MeasurementSpec};
use cl2_framework::measurement::{
    MeasurementContext, MeasurementManager, MeasurementResult, Verdict,
};
use cl2_framework::report::{ReportMeta, write_reports};
use cl2_framework::run::{RunRecord, StepRecord};
use cl2_hollow::kubelet::{Delay, PodLifecycle};
use cl2_hollow::sim::{SimCluster, SimConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;

const START_DELAY_MS: u64 = 1000;

async fn sim(nodes: usize) -> SimCluster {
    let mut cfg = SimConfig {
        nodes,
        ..SimConfig::default()
    };
    cfg.stages.pods = Some(PodLifecycle {
        start_delay: Delay::Fixed {
            value: Duration::from_millis(START_DELAY_MS),
        },
        ..PodLifecycle::default()
    });
    cl2_hollow::sim::start(cfg).await.expect("simulator starts")
}

fn context(sim: &SimCluster, dir: &std::path::Path) -> MeasurementContext {
    let kubeconfig = dir.join("kubeconfig.yaml");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let cluster = Cluster {
        client: sim.client(),
        latency: Arc::default(),
        kubeconfig_path: Some(kubeconfig),
        simulated: true,
    };
    MeasurementContext::new(cluster, "sim-test")
}

fn spec(method: &str, instances: &[(&str, serde_json::Value)]) -> MeasurementSpec {
    MeasurementSpec {
        method: method.into(),
        instances: instances
            .iter()
            .map(|(id, p)| MeasurementInstance {
                identifier: (*id).into(),
                params: p.as_object().cloned().unwrap(),
            })
            .collect(),
    }
}

/// Runs one measurement step with a single instance; panics if it fails.
async fn step(manager: &MeasurementManager, method: &str, id: &str, params: serde_json::Value) {
    manager
        .execute(&spec(method, &[(id, params)]))
        .await
        .unwrap();
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

async fn create_pods(client: &kube::Client, ns: &str, n: usize) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for i in 0..n {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("latency-{i}"), "labels": {"group": "latency"}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
}

fn record(test: &str) -> RunRecord {
    let now = chrono::Utc::now();
    RunRecord {
        test_name: test.into(),
        started: now,
        finished: now,
        steps: vec![StepRecord {
            index: 0,
            name: "[step: 01] measure".into(),
            started: now,
            duration: Duration::from_secs(1),
            phases: vec![],
            errors: vec![],
        }],
        errors: vec![],
        partial: false,
        namespaces_created: vec![],
        namespaces_left: vec![],
    }
}

fn find<'a>(results: &'a [MeasurementResult], method: &str) -> &'a MeasurementResult {
    results
        .iter()
        .find(|r| r.method == method)
        .unwrap_or_else(|| panic!("{method} result missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn density_style_measurements_and_reports() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&sim, dir.path());
    let client = ctx.cluster.client.clone();
    let manager = MeasurementManager::new(Arc::new(cl2_measurements::builtin_registry()), ctx);

    step(
        &manager,
        "PodStartupLatency",
        "PodStartupLatency",
        serde_json::json!({
            "action": "start", "labelSelector": "group = latency", "threshold": "20s",
            "loadLevel": "10%"
        }),
    )
    .await;
    step(
        &manager,
        "APIResponsiveness",
        "APIResponsiveness",
        serde_json::json!({"action": "start", "loadLevel": "10%"}),
    )
    .await;
    step(
        &manager,
        "SchedulingThroughput",
        "SchedulingThroughput",
        serde_json::json!({"action": "start", "measurmentInterval": "500ms"}),
    )
    .await;
    step(
        &manager,
        "Timer",
        "Timer",
        serde_json::json!({"action": "start", "label": "create"}),
    )
    .await;

    create_namespace(&client, "lat").await;
    create_pods(&client, "lat", 12).await;

    step(
        &manager,
        "WaitForRunningPods",
        "wait",
        serde_json::json!({
            "desiredPodCount": 12, "namespace": "lat", "timeout": "180s",
            "refreshInterval": "300ms"
        }),
    )
    .await;
    step(
        &manager,
        "Timer",
        "Timer",
        serde_json::json!({"action": "stop", "label": "create"}),
    )
    .await;
    for (m, id) in [
        ("PodStartupLatency", "PodStartupLatency"),
        ("APIResponsiveness", "APIResponsiveness"),
        ("SchedulingThroughput", "SchedulingThroughput"),
        ("Timer", "Timer"),
    ] {
        step(&manager, m, id, serde_json::json!({"action": "gather"})).await;
    }
    let results = manager.finish().await;

    let pod = find(&results, "PodStartupLatency");
    assert_eq!(pod.load_level.as_deref(), Some("10%"));
    let all = &pod.summaries[0];
    assert_eq!(all.name, "PodStartupLatency_PodStartupLatency");
    assert_eq!(all.key("pods"), Some(12.0));
    let p50 = all.key("p50").unwrap();
    // The simulator starts pods START_DELAY_MS after binding: startup must be at least that,
    // and not wildly more on a loaded machine.
    assert!(
        p50 >= START_DELAY_MS as f64 * 0.9 && p50 < 15_000.0,
        "pod_startup p50 {p50}ms"
    );
    assert_eq!(all.verdict, Verdict::Pass);

    let api = find(&results, "APIResponsiveness");
    let s = &api.summaries[0];
    assert_eq!(s.name, "APIResponsivenessPrometheus");
    let items = s.content["dataItems"].as_array().unwrap();
    let post = items
        .iter()
        .find(|i| {
            i["labels"]["Verb"] == "POST"
                && i["labels"]["Resource"] == "pods"
                && i["labels"]["Subresource"] == ""
        })
        .expect("POST pods measured");
    assert!(
        post["labels"]["Count"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 12
    );
    assert!(items.iter().all(|i| i["labels"]["Verb"] != "WATCH"));
    assert!(s.key("singleObjectP99").is_some());

    let st = find(&results, "SchedulingThroughput");
    assert!(
        st.summaries[0].content["max"].as_f64().unwrap() > 0.0,
        "{}",
        st.summaries[0].content
    );

    let out = dir.path().join("reports");
    let meta = ReportMeta {
        tool_version: "test".into(),
        cluster: "simulated".into(),
        simulated: true,
        ..ReportMeta::default()
    };
    let files = write_reports(&out, &record("density"), &results, &meta).unwrap();
    assert_eq!(
        files.verdict,
        Verdict::Pass,
        "{:?}",
        results
            .iter()
            .map(|r| (&r.method, &r.errors))
            .collect::<Vec<_>>()
    );
    for f in &files.files {
        let text = std::fs::read_to_string(f).unwrap();
        if f.extension().is_some_and(|e| e == "json") {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["latencyByLoad"][0]["level"], "10%");
    assert!(
        report["latencyByLoad"][0]["podStartupP50"]
            .as_f64()
            .unwrap()
            >= START_DELAY_MS as f64 * 0.9
    );
    assert!(report["latencyByLoad"][0]["apiP99"].is_number());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| PodStartupLatency | PodStartupLatency |"),
        "{md}"
    );
    assert!(
        std::fs::read_to_string(out.join("junit.xml"))
            .unwrap()
            .contains("failures=\"0\"")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_threshold_fails_with_the_violation_named() {
    let sim = sim(2).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&sim, dir.path());
    let client = ctx.cluster.client.clone();
    let manager = MeasurementManager::new(Arc::new(cl2_measurements::builtin_registry()), ctx);
    step(
        &manager,
        "PodStartupLatency",
        "Impossible",
        serde_json::json!({
            "action": "start", "namespace": "imp", "threshold": "1ms"}),
    )
    .await;
    create_namespace(&client, "imp").await;
    create_pods(&client, "imp", 4).await;
    step(
        &manager,
        "WaitForRunningPods",
        "wait",
        serde_json::json!({
            "desiredPodCount": 4, "namespace": "imp", "timeout": "180s",
            "refreshInterval": "300ms"
        }),
    )
    .await;
    // Not gathered explicitly: finish() gathers it, as for an interrupted run.
    let results = manager.finish().await;
    let pod = find(&results, "PodStartupLatency");
    assert!(pod.gathered_at_finish);
    assert_eq!(pod.verdict(), Verdict::Fail);

    let out = dir.path().join("reports");
    let mut rec = record("impossible");
    rec.partial = true;
    let files = write_reports(&out, &rec, &results, &ReportMeta::default()).unwrap();
    assert_eq!(files.exit_code(), 1);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("PARTIAL RUN"));
    assert!(
        md.contains("pod startup: too high latency 50th percentile"),
        "{md}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("PodStartupLatency - Impossible"));
    assert!(
        junit.contains("too high latency 99th percentile"),
        "{junit}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_controlled_pods_running_on_a_deployment() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&sim, dir.path());
    let client = ctx.cluster.client.clone();
    let manager = MeasurementManager::new(Arc::new(cl2_measurements::builtin_registry()), ctx);
    create_namespace(&client, "dep").await;
    let start = serde_json::json!({"action": "start", "apiVersion": "apps/v1", "kind": "Deployment",
        "namespace": "dep", "labelSelector": "group = load", "operationTimeout": "180s"});
    step(
        &manager,
        "WaitForControlledPodsRunning",
        "WaitForRunningDeployments",
        start,
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "dep");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "labels": {"group": "load"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let gather = serde_json::json!({"action": "gather"});
    step(
        &manager,
        "WaitForControlledPodsRunning",
        "WaitForRunningDeployments",
        gather.clone(),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "dep");
    let running = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count();
    assert_eq!(running, 3);
    // Delete it: the barrier waits for the pods to go.
    deployments
        .delete("web", &Default::default())
        .await
        .unwrap();
    step(
        &manager,
        "WaitForControlledPodsRunning",
        "WaitForRunningDeployments",
        gather,
    )
    .await;
    let results = manager.finish().await;
    assert!(results[0].errors.is_empty(), "{:?}", results[0].errors);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_example_counts_pods_through_kubeconfig() {
    let has = |p: &str| {
        std::process::Command::new(p)
            .arg("--help")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("python3") || !has("kubectl") {
        eprintln!("python3 or kubectl missing; skipping");
        return;
    }
    let sim = sim(1).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&sim, dir.path());
    let client = ctx.cluster.client.clone();
    let mut registry = cl2_measurements::builtin_registry();
    registry
        .register_plugin(
            "PodCounter",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/examples/plugins/pod-counter.py"),
        )
        .unwrap();
    let manager = MeasurementManager::new(Arc::new(registry), ctx);
    step(
        &manager,
        "PodCounter",
        "pods",
        serde_json::json!({"action": "start", "namespace": "pc"}),
    )
    .await;
    create_namespace(&client, "pc").await;
    create_pods(&client, "pc", 3).await;
    step(
        &manager,
        "PodCounter",
        "pods",
        serde_json::json!({"action": "gather", "namespace": "pc", "maxPods": 2}),
    )
    .await;
    let results = manager.finish().await;
    let s = &results[0].summaries[0];
    assert_eq!(s.content["dataItems"][0]["data"]["end"], 3, "{}", s.content);
    assert_eq!(s.verdict, Verdict::Fail);
    assert_eq!(s.violations[0], "3 pods exist, at most 2 allowed");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_startup_latency_sees_new_hollow_nodes() {
    let sim = sim(0).await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&sim, dir.path());
    let client = ctx.cluster.client.clone();
    let manager = MeasurementManager::new(Arc::new(cl2_measurements::builtin_registry()), ctx);
    step(
        &manager,
        "NodeStartupLatency",
        "nodes",
        serde_json::json!({"action": "start", "threshold": "60s"}),
    )
    .await;
    let token = tokio_util::sync::CancellationToken::new();
    let fleet = cl2_hollow::kubelet::start_fleet(
        client.clone(),
        cl2_hollow::kubelet::HollowNodeConfig::default(),
        3,
        token.clone(),
    )
    .await
    .unwrap();
    // Poll until the watch has seen all three nodes Ready (bounded).
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let ready = nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready == 3 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    step(
        &manager,
        "NodeStartupLatency",
        "nodes",
        serde_json::json!({"action": "gather"}),
    )
    .await;
    let results = manager.finish().await;
    let s = &results[0].summaries[0];
    assert_eq!(s.name, "NodeStartupLatency_nodes");
    assert_eq!(s.key("nodes"), Some(3.0), "{:?}", s.key_numbers);
    assert!(s.key("p99").unwrap() < 60_000.0);
    assert_eq!(s.verdict, Verdict::Pass);
    fleet.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barriers_on_nodes_jobs_and_generic_objects() {
    let sim = sim(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(&sim, dir.path());
    ctx.namespace_prefix = Some("bar".into());
    let client = ctx.cluster.client.clone();
    let manager = MeasurementManager::new(Arc::new(cl2_measurements::builtin_registry()), ctx);

    step(
        &manager,
        "WaitForNodes",
        "nodes",
        serde_json::json!({
            "minDesiredNodeCount": 2, "maxDesiredNodeCount": 2, "timeout": "120s",
            "refreshInterval": "200ms"
        }),
    )
    .await;
    let impossible = manager
        .execute(&spec("WaitForNodes", &[("too-many", serde_json::json!({
            "minDesiredNodeCount": 5, "maxDesiredNodeCount": 9, "timeout": "300ms", "refreshInterval": "100ms"}))]))
        .await
        .unwrap_err();
    assert!(
        impossible.to_string().contains("2 schedulable nodes"),
        "{impossible}"
    );

    create_namespace(&client, "bar-1").await;
    step(
        &manager,
        "WaitForFinishedJobs",
        "jobs",
        serde_json::json!({"action": "start", "namespace": "bar-1"}),
    )
    .await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "bar-1");
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "once"},
        "spec": {"completions": 1, "parallelism": 1, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    step(
        &manager,
        "WaitForFinishedJobs",
        "jobs",
        serde_json::json!({"action": "gather", "timeout": "180s", "refreshInterval": "200ms"}),
    )
    .await;

    // Jobs in namespaces bar-1..bar-1 reach Complete=True.
    step(
        &manager,
        "WaitForGenericK8sObjects",
        "complete-jobs",
        serde_json::json!({
            "objectGroup": "batch", "objectVersion": "v1", "objectResource": "jobs",
            "namespaceRange": {"min": 1, "max": 1}, "successfulConditions": ["Complete=True"],
            "failedConditions": ["Failed=True"], "minDesiredObjectCount": 1,
            "timeout": "60s", "refreshInterval": "200ms"}),
    )
    .await;
    let results = manager.finish().await;
    let jobs_result = results
        .iter()
        .find(|r| r.method == "WaitForFinishedJobs")
        .unwrap();
    assert_eq!(jobs_result.summaries[0].content["jobs"], 1);
    assert_eq!(jobs_result.summaries[0].content["failed"], 0);
    sim.shutdown().await;
}
