//! Executor benchmark against the embedded simulated cluster (prints figures, asserts nothing).
//!
//! 1. qpsLoad at 10, 100 and 1,000 QPS over N configmap creates each: achieved vs requested.
//! 2. parallelismLimitedLoad: maximum configmap create rate, client and simulator together.
//!
//! Run: `cargo bench -p cl2-framework --bench executor`. Scale with env vars:
//! `CL2_BENCH_QPS=10,100,1000`, `CL2_BENCH_ACTIONS=2000`, `CL2_BENCH_PARALLEL_ACTIONS=10000`,
//! `CL2_BENCH_PARALLELISM=64`.

use cl2_framework::cluster::{self, Cluster, ConnectOptions};
use cl2_framework::config::{self, LoadOptions};
use cl2_framework::executor::{Executor, ExecutorOptions};
use cl2_framework::measurement::{MeasurementContext, MeasurementManager, Registry};
use cl2_framework::run::PhaseRecord;
use std::path::Path;
use std::sync::Arc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ Name }}\ndata:\n  index: \"{{ Index }}\"\n";

fn write_config(
    dir: &Path,
    prefix: &str,
    tuning: &str,
    replicas: u64,
) -> Arc<config::LoadedConfig> {
    let text = format!(
        "name: bench\nnamespace:\n  number: 1\n  prefix: {prefix}\n  deleteAutomanagedNamespaces: false\ntuningSets:\n- name: T\n{tuning}\nsteps:\n- name: create\n  phases:\n  - namespaceRange:\n      min: 1\n      max: 1\n    replicasPerNamespace: {replicas}\n    tuningSet: T\n    objectBundle:\n    - basename: cm\n      objectTemplatePath: cm.yaml\n"
    );
    std::fs::write(dir.join("config.yaml"), text).expect("write config");
    std::fs::write(dir.join("cm.yaml"), CM).expect("write template");
    let opts = LoadOptions {
        nodes: Some(1),
        ..Default::default()
    };
    Arc::new(config::load(&dir.join("config.yaml"), &opts).unwrap_or_else(|e| panic!("{e}")))
}

async fn run_phase(cluster: &Cluster, loaded: Arc<config::LoadedConfig>) -> PhaseRecord {
    let ctx = MeasurementContext::new(cluster.clone(), "bench");
    let mm = Arc::new(MeasurementManager::new(Arc::new(Registry::default()), ctx));
    let exec = Executor::new(cluster.clone(), loaded, mm, ExecutorOptions::default());
    let record = exec.run().await;
    if !record.errors.is_empty() {
        eprintln!("errors: {:#?}", record.errors);
    }
    record.steps[0].phases[0].clone()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sim = cl2_hollow::sim::start(cl2_hollow::sim::SimConfig {
            control_plane: false,
            ..Default::default()
        })
        .await
        .expect("start simulated cluster");
        let opts = ConnectOptions { qps: 0.0, burst: 0, ..Default::default() };
        let cluster = cluster::from_kube_config(sim.kube_config(), &opts, None, true).expect("client");
        let dir = tempfile::tempdir().expect("tempdir");
        let actions: u64 = env_or("CL2_BENCH_ACTIONS", 2000);
        let qps_list: String = env_or("CL2_BENCH_QPS", "10,100,1000".to_string());
        println!("executor benchmark: configmap creates against the embedded simulated cluster");
        for (i, qps) in qps_list.split(',').filter_map(|q| q.trim().parse::<f64>().ok()).enumerate() {
            let tuning = format!("  qpsLoad:\n    qps: {qps}");
            let loaded = write_config(dir.path(), &format!("bench-qps-{i}"), &tuning, actions);
            let p = run_phase(&cluster, loaded).await;
            let dev = (p.achieved_qps / qps - 1.0) * 100.0;
            println!(
                "qpsLoad {qps:>7.1} QPS requested: achieved {:>8.2} QPS ({dev:+.2} %) over {} actions in {:.2}s, {} failed",
                p.achieved_qps,
                p.actions_started,
                p.duration.as_secs_f64(),
                p.actions_failed
            );
        }
        let par_actions: u64 = env_or("CL2_BENCH_PARALLEL_ACTIONS", 10_000);
        let parallelism: u32 = env_or("CL2_BENCH_PARALLELISM", 64);
        let tuning = format!("  parallelismLimitedLoad:\n    parallelismLimit: {parallelism}");
        let loaded = write_config(dir.path(), "bench-par", &tuning, par_actions);
        let p = run_phase(&cluster, loaded).await;
        println!(
            "parallelismLimitedLoad({parallelism}): {} creates in {:.2}s = {:.0} objects/s, {} failed",
            p.creates,
            p.duration.as_secs_f64(),
            p.creates as f64 / p.duration.as_secs_f64(),
            p.actions_failed
        );
        for e in cluster.latency.snapshot() {
            println!(
                "client latency {:<6} {:<12} n={:<6} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms errors={}",
                e.verb, e.resource, e.count, e.p50_ms, e.p90_ms, e.p99_ms, e.max_ms, e.errors
            );
        }
        sim.shutdown().await;
    });
}
