//! Executor integration tests against the embedded simulated cluster (real HTTP API server):
//! create → scale → update → delete across 5 namespaces with the cluster state checked after
//! each step, and an interrupted run that must be partial and leave no namespace behind.

use async_trait::async_trait;
use cl2_framework::cluster::{self, Cluster, ConnectOptions};
use cl2_framework::config::{self, LoadOptions, Params};
use cl2_framework::executor::{AUTOMANAGED_LABEL, Executor, ExecutorOptions, Progress};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, MeasurementManager,
    Registry, Summary,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One observation of the `CheckState` measurement: (label, configmaps per ns, secrets per ns).
type Observation = (String, Vec<usize>, Vec<usize>);

static OBSERVED: Mutex<Vec<Observation>> = Mutex::new(Vec::new());

/// A test measurement that lists configmaps and secrets in every automanaged namespace.
struct CheckState;

#[async_trait]
impl Measurement for CheckState {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let prefix = ctx.namespace_prefix.clone().unwrap_or_default();
        let label = params
            .get("label")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let mut cms = Vec::new();
        let mut secrets = Vec::new();
        for i in 1..=5 {
            let ns = format!("{prefix}-{i}");
            let lp = ListParams::default().labels("cl2-test=objects");
            let cm: Api<ConfigMap> = Api::namespaced(ctx.cluster.client.clone(), &ns);
            let s: Api<Secret> = Api::namespaced(ctx.cluster.client.clone(), &ns);
            let err = |e: kube::Error| MeasurementError::Failed {
                method: "CheckState".into(),
                identifier: ctx.identifier.clone(),
                message: e.to_string(),
            };
            cms.push(cm.list(&lp).await.map_err(err)?.items.len());
            secrets.push(s.list(&lp).await.map_err(err)?.items.len());
        }
        OBSERVED
            .lock()
            .push((format!("{prefix}/{label}"), cms, secrets));
        Ok(Vec::new())
    }
}

fn new_check_state() -> Box<dyn Measurement> {
    Box::new(CheckState)
}

const CONFIG: &str = r#"name: engine-sim
namespace:
  number: 5
  prefix: {{ Prefix }}
  deleteNamespaceTimeout: 2m
tuningSets:
- name: Fast
  parallelismLimitedLoad:
    parallelismLimit: 20
- name: Slow
  qpsLoad:
    qps: {{ DefaultParam(param="SlowQps", default=20) }}
steps:
{% for s in Steps %}
- name: {{ s.name }}
  phases:
  - namespaceRange:
      min: 1
      max: 5
    replicasPerNamespace: {{ s.replicas }}
    tuningSet: {{ s.tuning }}
    objectBundle:
    - basename: cm
      objectTemplatePath: cm.yaml
      templateFillMap:
        Generation: "{{ s.generation }}"
    - basename: secret
      objectTemplatePath: secret.yaml
- name: check {{ s.name }}
  measurements:
  - Identifier: check
    Method: CheckState
    Params:
      label: {{ s.name }}
{% endfor %}
"#;

const CM: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ Name }}
  labels:
    cl2-test: objects
    generation: "{{ Generation }}"
data:
  index: "{{ Index }}"
  namespace: {{ Namespace }}
"#;

const SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: {{ Name }}
  labels:
    cl2-test: objects
stringData:
  token: {{ RandData(n=16) }}
"#;

fn write_config(
    dir: &Path,
    prefix: &str,
    steps: serde_json::Value,
    slow_qps: u32,
) -> Arc<config::LoadedConfig> {
    std::fs::write(dir.join("config.yaml"), CONFIG).unwrap();
    std::fs::write(dir.join("cm.yaml"), CM).unwrap();
    std::fs::write(dir.join("secret.yaml"), SECRET).unwrap();
    let overrides = dir.join("overrides.yaml");
    let o = serde_json::json!({ "Prefix": prefix, "Steps": steps, "SlowQps": slow_qps });
    std::fs::write(&overrides, serde_yaml::to_string(&o).unwrap()).unwrap();
    let opts = LoadOptions {
        overrides: vec![overrides],
        nodes: Some(1),
        known_measurements: vec!["CheckState".into()],
        ..Default::default()
    };
    Arc::new(config::load(&dir.join("config.yaml"), &opts).unwrap_or_else(|e| panic!("{e}")))
}

async fn start() -> (cl2_hollow::sim::SimCluster, Cluster) {
    let sim = cl2_hollow::sim::start(cl2_hollow::sim::SimConfig::default())
        .await
        .unwrap();
    let opts = ConnectOptions {
        qps: 2000.0,
        burst: 2000,
        ..Default::default()
    };
    let cluster = cluster::from_kube_config(sim.kube_config(), &opts, None, true).unwrap();
    (sim, cluster)
}

/// Run-level and step-level errors of a run.
fn all_errors(record: &cl2_framework::run::RunRecord) -> Vec<String> {
    let mut out: Vec<String> = record
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.context, e.message))
        .collect();
    for s in &record.steps {
        out.extend(s.errors.iter().cloned());
    }
    out
}

fn manager(cluster: &Cluster, loaded: &config::LoadedConfig) -> Arc<MeasurementManager> {
    let mut registry = Registry::default();
    registry
        .register(MeasurementDescriptor {
            name: "CheckState",
            summary: "test: count objects",
            new: new_check_state,
        })
        .unwrap();
    let mut ctx = MeasurementContext::new(cluster.clone(), loaded.config.name.clone());
    ctx.namespace_prefix = Some(loaded.config.namespace.prefix.clone());
    Arc::new(MeasurementManager::new(Arc::new(registry), ctx))
}

/// Loads `config.yaml` in `dir` with default load options.
fn load_plain(dir: &Path) -> Arc<config::LoadedConfig> {
    Arc::new(config::load(&dir.join("config.yaml"), &LoadOptions::default()).unwrap())
}

/// Runs `loaded` to the end with a fresh measurement manager.
async fn run(
    cluster: &Cluster,
    loaded: &Arc<config::LoadedConfig>,
    opts: ExecutorOptions,
) -> cl2_framework::run::RunRecord {
    Executor::new(
        cluster.clone(),
        loaded.clone(),
        manager(cluster, loaded),
        opts,
    )
    .run()
    .await
}

async fn automanaged_namespaces(cluster: &Cluster, prefix: &str) -> Vec<String> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let lp = ListParams::default().labels(&format!("{AUTOMANAGED_LABEL}=true"));
    api.list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_scale_update_delete_across_five_namespaces() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let steps = serde_json::json!([
        { "name": "create", "replicas": 3, "tuning": "Fast", "generation": 1 },
        { "name": "scale-up", "replicas": 5, "tuning": "Slow", "generation": 1 },
        { "name": "update", "replicas": 5, "tuning": "Fast", "generation": 2 },
        { "name": "scale-down", "replicas": 2, "tuning": "Fast", "generation": 2 },
        { "name": "delete", "replicas": 0, "tuning": "Fast", "generation": 2 },
    ]);
    let loaded = write_config(dir.path(), "simtest", steps, 100);
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert!(
        all_errors(&record).is_empty(),
        "errors: {:#?}",
        all_errors(&record)
    );
    assert!(!record.partial);
    assert_eq!(record.namespaces_created.len(), 5);
    assert!(
        record.namespaces_left.is_empty(),
        "left: {:?}",
        record.namespaces_left
    );

    let observed: Vec<_> = OBSERVED
        .lock()
        .iter()
        .filter(|o| o.0.starts_with("simtest/"))
        .cloned()
        .collect();
    let expect = [
        ("simtest/create", 3),
        ("simtest/scale-up", 5),
        ("simtest/update", 5),
        ("simtest/scale-down", 2),
        ("simtest/delete", 0),
    ];
    assert_eq!(observed.len(), expect.len(), "{observed:?}");
    for ((label, cms, secrets), (el, n)) in observed.iter().zip(expect) {
        assert_eq!(label, el);
        assert_eq!(cms, &vec![n; 5], "configmaps after {label}");
        assert_eq!(secrets, &vec![n; 5], "secrets after {label}");
    }
    // Per-phase accounting: creates/patches/deletes count bundle objects.
    let phases: Vec<_> = record.steps.iter().flat_map(|s| s.phases.iter()).collect();
    assert_eq!(phases.len(), 5);
    assert_eq!((phases[0].creates, phases[0].actions_started), (30, 15));
    assert_eq!(phases[1].creates, 20);
    assert!(phases[1].requested_qps == Some(100.0));
    assert_eq!(phases[2].patches, 50);
    assert_eq!(phases[3].deletes, 30);
    assert_eq!(phases[4].deletes, 20);
    assert!(phases.iter().all(|p| p.actions_failed == 0));
    assert!(automanaged_namespaces(&cluster, "simtest").await.is_empty());
    // Client-side latency was recorded per verb and resource.
    let lat = cluster.latency.snapshot();
    assert!(
        lat.iter()
            .any(|e| e.verb == "POST" && e.resource == "configmaps" && e.count == 25),
        "{lat:?}"
    );
    assert!(
        lat.iter()
            .any(|e| e.verb == "PATCH" && e.resource == "secrets")
    );
    assert!(
        lat.iter()
            .any(|e| e.verb == "DELETE" && e.resource == "configmaps")
    );
    sim.shutdown().await;
}

/// Cancels the run once a phase has finished `after` actions.
struct CancelAfter {
    token: CancellationToken,
    after: u64,
}

impl Progress for CancelAfter {
    fn phase_started(&self, _: usize, _: &str, _: u64) {}
    fn phase_progress(&self, _: usize, done: u64, _: u64) {
        if done >= self.after {
            self.token.cancel();
        }
    }
    fn phase_finished(&self, _: usize) {}
    fn measurement_started(&self, _: usize, _: &str) {}
    fn measurement_finished(&self, _: usize, _: bool) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_is_partial_and_cleans_up() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let steps = serde_json::json!([
        { "name": "slow-create", "replicas": 40, "tuning": "Slow", "generation": 1 },
        { "name": "never-run", "replicas": 0, "tuning": "Fast", "generation": 1 },
    ]);
    let loaded = write_config(dir.path(), "cancelled", steps, 20);
    let token = CancellationToken::new();
    let opts = ExecutorOptions {
        cancel: token.clone(),
        progress: Arc::new(CancelAfter {
            token: token.clone(),
            after: 10,
        }),
        delete_automanaged_namespaces: None,
        delete_stale_namespaces: None,
    };
    let mm = manager(&cluster, &loaded);
    let exec = Executor::new(cluster.clone(), loaded.clone(), mm.clone(), opts);
    let record = tokio::time::timeout(Duration::from_secs(240), exec.run())
        .await
        .expect("run finishes");
    assert!(record.partial);
    // The caller then gathers measurements and writes the (partial) report.
    let results = mm.finish().await;
    let meta = cl2_framework::report::ReportMeta {
        client_latency: cluster.latency.snapshot(),
        simulated: true,
        ..Default::default()
    };
    let report_dir = dir.path().join("report");
    let files =
        cl2_framework::report::write_reports(&report_dir, &record, &results, &meta).unwrap();
    assert!(files.partial);
    assert!(report_dir.join("report.json").exists());
    let phase = &record.steps[0].phases[0];
    assert!(
        phase.actions_started >= 10 && phase.actions_started < 200,
        "{}",
        phase.actions_started
    );
    assert!(
        phase.errors.iter().any(|e| e.contains("not started")),
        "{:?}",
        phase.errors
    );
    // Only the interrupted phase ran: its check step and the later steps were skipped.
    assert_eq!(record.steps.len(), 1);
    assert!(
        record
            .errors
            .iter()
            .any(|e| e.message.contains("interrupted")),
        "{:?}",
        record.errors
    );
    assert!(
        record.namespaces_left.is_empty(),
        "left: {:?}",
        record.namespaces_left
    );
    assert!(exec.namespaces().is_empty());
    assert!(
        automanaged_namespaces(&cluster, "cancelled")
            .await
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_namespace_deletion_reports_what_is_left() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let steps =
        serde_json::json!([{ "name": "create", "replicas": 1, "tuning": "Fast", "generation": 1 }]);
    let loaded = write_config(dir.path(), "kept", steps, 20);
    let opts = ExecutorOptions {
        delete_automanaged_namespaces: Some(false),
        ..Default::default()
    };
    let record = run(&cluster, &loaded, opts).await;
    assert!(all_errors(&record).is_empty(), "{:?}", all_errors(&record));
    let mut left = record.namespaces_left.clone();
    left.sort();
    assert_eq!(left, ["kept-1", "kept-2", "kept-3", "kept-4", "kept-5"]);
    assert_eq!(automanaged_namespaces(&cluster, "kept").await.len(), 5);
    // A second run with the same prefix refuses the pre-existing namespaces.
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert!(record.partial);
    assert!(
        record
            .errors
            .iter()
            .any(|e| e.fatal && e.message.contains("pre-existing")),
        "{:?}",
        record.errors
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_unknown_objects_counts_existing_ones() {
    let (sim, cluster) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    for i in 0..3 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": { "name": format!("stray-{i}"), "labels": { "app": "stray" } },
        }))
        .unwrap();
        cms.create(&Default::default(), &cm).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cm.yaml"), CM).unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "name: unknown\nnamespace:\n  prefix: unknown\ntuningSets:\n- name: T\n  parallelismLimitedLoad:\n    parallelismLimit: 2\nsteps:\n- name: shrink strays\n  phases:\n  - namespaceList:\n    - default\n    replicasPerNamespace: 1\n    tuningSet: T\n    objectBundle:\n    - basename: stray\n      objectTemplatePath: cm.yaml\n      templateFillMap:\n        Generation: \"1\"\n      listUnknownObjectOptions:\n        labelSelector:\n          matchLabels:\n            app: stray\n",
    )
    .unwrap();
    let loaded = load_plain(dir.path());
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert!(all_errors(&record).is_empty(), "{:?}", all_errors(&record));
    let phase = &record.steps[0].phases[0];
    assert_eq!((phase.deletes, phase.creates), (2, 0));
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("app=stray"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["stray-0"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_kind_through_discovery_including_cluster_scoped() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pc.yaml"),
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {{ Name }}\nvalue: {{ AddInt(a=Index, b=1000) }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ Name }}\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {{ Name }}\n  template:\n    metadata:\n      labels:\n        app: {{ Name }}\n    spec:\n      containers:\n      - name: c\n        image: registry.k8s.io/pause:3.10\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "name: kinds\nnamespace:\n  prefix: kinds\ntuningSets:\n- name: T\n  qpsLoad:\n    qps: 500\nsteps:\n- name: create\n  phases:\n  - replicasPerNamespace: 2\n    tuningSet: T\n    objectBundle:\n    - basename: pc\n      objectTemplatePath: pc.yaml\n  - namespaceRange:\n      min: 1\n      max: 1\n    replicasPerNamespace: 2\n    tuningSet: T\n    objectBundle:\n    - basename: deploy\n      objectTemplatePath: deploy.yaml\n",
    )
    .unwrap();
    let loaded = load_plain(dir.path());
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert!(all_errors(&record).is_empty(), "{:?}", all_errors(&record));
    let pcs: Api<k8s_openapi::api::scheduling::v1::PriorityClass> =
        Api::all(cluster.client.clone());
    let pc = pcs.get("pc-1").await.unwrap();
    assert_eq!(pc.value, Some(1001));
    let phases = &record.steps[0].phases;
    assert_eq!((phases[0].creates, phases[1].creates), (2, 2));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kind_is_a_fatal_step_error() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("widget.yaml"),
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {{ Name }}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("cm.yaml"), CM).unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "name: fatal\nnamespace:\n  prefix: fatal\ntuningSets:\n- name: T\n  qpsLoad:\n    qps: 100\nsteps:\n- name: widgets\n  phases:\n  - namespaceRange:\n      min: 1\n      max: 1\n    replicasPerNamespace: 1\n    tuningSet: T\n    objectBundle:\n    - basename: w\n      objectTemplatePath: widget.yaml\n- name: never\n  phases:\n  - namespaceRange:\n      min: 1\n      max: 1\n    replicasPerNamespace: 1\n    tuningSet: T\n    objectBundle:\n    - basename: cm\n      objectTemplatePath: cm.yaml\n      templateFillMap:\n        Generation: \"1\"\n",
    )
    .unwrap();
    let loaded = load_plain(dir.path());
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert!(record.partial);
    assert_eq!(record.steps.len(), 1, "the second step is skipped");
    assert!(
        record.steps[0].errors[0].contains("Widget"),
        "{:?}",
        record.steps[0].errors
    );
    assert!(
        record
            .errors
            .iter()
            .any(|e| e.fatal && e.message.contains("1 remaining step(s) skipped")),
        "{:?}",
        record.errors
    );
    assert!(record.namespaces_left.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_bundle_mid_test_is_a_bundle_error() {
    let (sim, cluster) = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cm.yaml"), CM).unwrap();
    std::fs::write(dir.path().join("secret.yaml"), SECRET).unwrap();
    let phase = |replicas: u32, bundle: &str| {
        format!(
            "  phases:\n  - namespaceRange:\n      min: 1\n      max: 1\n    replicasPerNamespace: {replicas}\n    tuningSet: T\n    objectBundle:\n{bundle}"
        )
    };
    let cm = "    - basename: cm\n      objectTemplatePath: cm.yaml\n      templateFillMap:\n        Generation: \"1\"\n";
    let secret = "    - basename: secret\n      objectTemplatePath: secret.yaml\n";
    let text = format!(
        "name: bundle\nnamespace:\n  prefix: bundle\ntuningSets:\n- name: T\n  parallelismLimitedLoad:\n    parallelismLimit: 4\nsteps:\n- name: configmaps only\n{}- name: configmaps and secrets\n{}",
        phase(2, cm),
        phase(2, &format!("{cm}{secret}"))
    );
    std::fs::write(dir.path().join("config.yaml"), text).unwrap();
    let loaded = load_plain(dir.path());
    let record = run(&cluster, &loaded, ExecutorOptions::default()).await;
    assert_eq!(record.steps.len(), 2);
    assert_eq!(record.steps[0].phases[0].creates, 2);
    let errors = &record.steps[1].errors;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("bundle error") && e.contains("cm=2, secret=0")),
        "{errors:?}"
    );
    assert!(record.errors.iter().any(|e| e.fatal), "{:?}", record.errors);
    sim.shutdown().await;
}
