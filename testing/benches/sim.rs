//! Benchmark of the simulated cluster (prints figures, asserts nothing).
//!
//! `cargo bench -p cl2-hollow --bench sim`. Scale with environment variables:
//! `CL2_BENCH_PODS` (150000), `CL2_BENCH_NODES` (5000), `CL2_BENCH_CONCURRENCY` (128),
//! `CL2_BENCH_CLIENTS` (4), `CL2_BENCH_IDLE_SECS` (30), `CL2_BENCH_NAMESPACES` (50).
//!
//! 1. Pod creates/s sustained through HTTP by concurrent kube-rs clients (no injected latency,
//!    no control plane), server handling p50/p99.
//! 2. RSS holding `CL2_BENCH_NODES` Node objects + `CL2_BENCH_PODS` bound, Running pods.
//! 3. A fresh cluster with `CL2_BENCH_NODES` hollow nodes: time to register and go Ready, then
//!    CPU used while idling at real lease cadence (whole process: server + control plane +
//!    kubelets).

use std::time::{Duration, Instant};

use cl2_hollow::sim::{SimConfig, start};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_string())
        .unwrap_or_default()
}

/// utime + stime of this process in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime is 11, stime is 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn pod_json(ns: &str, name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench", "group": "density", "name": name},
                     "ownerReferences": []},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}, "limits": {"cpu": "10m", "memory": "10Mi"}},
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]
        }
    }))
    .unwrap()
}

fn running_status(i: usize) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ip = format!("10.{}.{}.{}", 128 + (i >> 16) % 64, (i >> 8) % 256, i % 256);
    json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.64.0.1", "hostIPs": [{"ip": "10.64.0.1"}],
        "startTime": now,
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}],
        "containerStatuses": [{"name": "pause", "ready": true, "started": true, "restartCount": 0,
            "image": "registry.k8s.io/pause:3.10", "imageID": "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "containerID": format!("containerd://{:064x}", i), "state": {"running": {"startedAt": now}}}],
    }})
}

fn node_json(i: usize) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("bench-node-{i}"), "labels": {
            "kubernetes.io/hostname": format!("bench-node-{i}"), "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "hollow"}},
        "spec": {"podCIDR": format!("10.128.{}.0/24", i % 256)},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": format!("10.64.{}.{}", i / 256, i % 256)}, {"type": "Hostname", "address": format!("bench-node-{i}")}],
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.8.0", "osImage": "cl2 hollow", "containerRuntimeVersion": "containerd://2.0.0",
                         "kubeletVersion": "v1.36.0", "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }
    }))
    .unwrap()
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3} ms", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "n/a".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let pods = env("CL2_BENCH_PODS", 150_000);
    let nodes = env("CL2_BENCH_NODES", 5_000);
    let conc = env("CL2_BENCH_CONCURRENCY", 128);
    let nclients = env("CL2_BENCH_CLIENTS", 4).max(1);
    let idle = env("CL2_BENCH_IDLE_SECS", 30);
    let nss = env("CL2_BENCH_NAMESPACES", 50).max(1);
    println!(
        "cl2-hollow bench: pods={pods} nodes={nodes} concurrency={conc} clients={nclients} idle={idle}s"
    );
    println!("RSS before start: {}", proc_status("VmRSS:"));

    // 1 + 2: API throughput and memory.
    let sim = start(SimConfig::api_only()).await.unwrap();
    let clients: Vec<kube::Client> = (0..nclients)
        .map(|_| kube::Client::try_from(sim.kube_config()).unwrap())
        .collect();
    let ns_api: Api<Namespace> = Api::all(clients[0].clone());
    for n in 0..nss {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("bench-{n}")}})).unwrap();
        ns_api.create(&PostParams::default(), &ns).await.unwrap();
    }
    let node_count = nodes.max(1);
    let t = Instant::now();
    let errors = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(0..pods)
        .map(|i| {
            let client = clients[i % nclients].clone();
            let errors = &errors;
            async move {
                let ns = format!("bench-{}", i % nss);
                let api: Api<Pod> = Api::namespaced(client, &ns);
                let p = pod_json(
                    &ns,
                    &format!("pod-{i}"),
                    &format!("bench-node-{}", i % node_count),
                );
                if api.create(&PostParams::default(), &p).await.is_err() {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(conc)
        .collect::<Vec<()>>()
        .await;
    let el = t.elapsed();
    let m = sim.metrics();
    println!(
        "[1] pod creates: {pods} in {:.2}s = {:.0} creates/s ({} errors); server handling p50 {} p99 {}",
        el.as_secs_f64(),
        pods as f64 / el.as_secs_f64(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        ms(m.handling_quantile(0.5)),
        ms(m.handling_quantile(0.99)),
    );
    let t = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let client = clients[i % nclients].clone();
            async move {
                let ns = format!("bench-{}", i % nss);
                let api: Api<Pod> = Api::namespaced(client, &ns);
                let _ = api
                    .patch_status(
                        &format!("pod-{i}"),
                        &PatchParams::default(),
                        &Patch::Merge(running_status(i)),
                    )
                    .await;
            }
        })
        .buffer_unordered(conc)
        .collect::<Vec<()>>()
        .await;
    let el = t.elapsed();
    println!(
        "    pod status patches: {pods} in {:.2}s = {:.0} patches/s",
        el.as_secs_f64(),
        pods as f64 / el.as_secs_f64()
    );
    let node_api: Api<Node> = Api::all(clients[0].clone());
    futures::stream::iter(0..nodes)
        .map(|i| {
            let api = node_api.clone();
            async move {
                let _ = api.create(&PostParams::default(), &node_json(i)).await;
            }
        })
        .buffer_unordered(conc)
        .collect::<Vec<()>>()
        .await;
    let t = Instant::now();
    let list = Api::<Pod>::all(clients[0].clone())
        .list(&kube::api::ListParams::default().limit(500))
        .await
        .unwrap();
    println!(
        "    LIST pods limit=500: {} items in {:.1} ms",
        list.items.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let stored_bytes: usize = {
        let store = sim.store();
        let f = cl2_hollow::store::Filter::default();
        store
            .list(cl2_hollow::resources::idx("", "pods"), &f, 0, None)
            .items
            .iter()
            .map(|e| e.bytes.len())
            .sum()
    };
    println!(
        "[2] stored {nodes} nodes + {pods} pods (pod JSON total {:.1} MiB): VmRSS {} VmHWM {}",
        stored_bytes as f64 / 1048576.0,
        proc_status("VmRSS:"),
        proc_status("VmHWM:")
    );
    drop(clients);
    sim.shutdown().await;

    // 3: hollow nodes.
    if nodes > 0 {
        let t = Instant::now();
        let sim = start(SimConfig {
            nodes,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let ready = t.elapsed();
        println!(
            "[3] {nodes} hollow nodes registered and Ready in {:.2}s (VmRSS {})",
            ready.as_secs_f64(),
            proc_status("VmRSS:")
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let c0 = cpu_seconds();
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs(idle as u64)).await;
        let used = cpu_seconds() - c0;
        println!(
            "    idle CPU over {:.0}s with {nodes} hollow nodes (whole process: API server + control plane + kubelets): {:.3} cores; leases renewed {} times",
            t.elapsed().as_secs_f64(),
            used / t.elapsed().as_secs_f64(),
            sim.metrics().request_count("PUT", "leases")
                + sim.metrics().request_count("PATCH", "leases"),
        );
        sim.shutdown().await;
    }
}
