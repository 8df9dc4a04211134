//! Scratch scale probe for the control loops and hollow nodes (prints figures).
use cl2_hollow::sim::{SimConfig, start};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use std::time::{Duration, Instant};

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scale_probe() {
    let nodes: usize = std::env::var("PROBE_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let deps: usize = std::env::var("PROBE_DEPLOYMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let t0 = Instant::now();
    let mut cfg = SimConfig {
        nodes,
        ..SimConfig::default()
    };
    if let Some(p) = std::env::var("PROBE_PAR").ok().and_then(|v| v.parse().ok()) {
        cfg.control_plane_options.scheduler_parallelism = p;
    }
    let sim = start(cfg).await.unwrap();
    println!(
        "FIG {nodes} nodes registered+Ready in {:.2}s, rss {:.0} MiB",
        t0.elapsed().as_secs_f64(),
        rss_mb()
    );
    let idle = Duration::from_secs(
        std::env::var("PROBE_IDLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    let c0 = cpu_secs();
    let w0 = Instant::now();
    tokio::time::sleep(idle).await;
    println!(
        "FIG idle CPU (whole sim, real lease cadence): {:.3} cores over {:?}",
        (cpu_secs() - c0) / w0.elapsed().as_secs_f64(),
        idle
    );
    let client = sim.client();
    let per_ns = 10;
    let nss = deps.div_ceil(per_ns);
    for i in 0..nss {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("probe-{i}")}}))
                .unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let t1 = Instant::now();
    let c1 = cpu_secs();
    let mut hs = Vec::new();
    for d in 0..deps {
        let client = client.clone();
        hs.push(tokio::spawn(async move {
            let ns = format!("probe-{}", d / per_ns);
            let dep: Deployment = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("d{d}")},
                "spec": {"replicas": 100, "selector": {"matchLabels": {"app": format!("d{d}")}},
                  "template": {"metadata": {"labels": {"app": format!("d{d}")}},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]}}}
            })).unwrap();
            Api::<Deployment>::namespaced(client, &ns).create(&PostParams::default(), &dep).await.unwrap();
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    let want = (deps * 100) as i64;
    let mut last = 0;
    let mut half = None;
    loop {
        let list = Api::<Deployment>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        let avail: i64 = list
            .items
            .iter()
            .map(|d| {
                d.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0) as i64
            })
            .sum();
        if avail != last {
            last = avail;
        }
        {
            let text = sim.metrics().render();
            let get = |res: &str, sub: &str, verb: &str| -> f64 {
                text.lines()
                    .filter(|l| {
                        l.starts_with("apiserver_request_total{")
                            && l.contains(&format!("resource=\"{res}\""))
                            && l.contains(&format!("subresource=\"{sub}\""))
                            && l.contains(&format!("verb=\"{verb}\""))
                    })
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum()
            };
            println!(
                "FIG t={:.1}s created={} bound={} statusPatched={} events={} avail={avail}",
                t1.elapsed().as_secs_f64(),
                get("pods", "", "POST"),
                get("pods", "binding", "POST"),
                get("pods", "status", "PATCH"),
                get("events", "", "POST")
            );
        }
        if half.is_none() && avail >= want / 2 {
            half = Some(t1.elapsed());
        }
        if avail >= want || t1.elapsed() > Duration::from_secs(110) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2000)).await;
    }
    let el = t1.elapsed().as_secs_f64();
    println!(
        "FIG {last}/{want} pods Running+available via {deps} deployments in {el:.1}s (half at {:?}); {:.0} pods/s; CPU {:.2} cores; rss {:.0} MiB",
        half,
        last as f64 / el,
        (cpu_secs() - c1) / el,
        rss_mb()
    );
    {
        use k8s_openapi::api::apps::v1::ReplicaSet;
        use k8s_openapi::api::core::v1::Pod;
        let rs = Api::<ReplicaSet>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap();
        let rs_avail: i64 = rs
            .items
            .iter()
            .map(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0) as i64
            })
            .sum();
        let rs_ready: i64 = rs
            .items
            .iter()
            .map(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0) as i64
            })
            .sum();
        let rs_repl: i64 = rs
            .items
            .iter()
            .map(|r| r.status.as_ref().map(|s| s.replicas).unwrap_or(0) as i64)
            .sum();
        let running = Api::<Pod>::all(client.clone())
            .list(
                &ListParams::default()
                    .fields("status.phase=Running")
                    .limit(200000),
            )
            .await
            .unwrap()
            .items
            .len();
        println!(
            "FIG diag: rs count {} status.replicas {rs_repl} ready {rs_ready} available {rs_avail}; running pods {running}",
            rs.items.len()
        );
    }
    let m = sim.metrics();
    for (verb, res) in [
        ("POST", "pods"),
        ("PATCH", "pods"),
        ("POST", "events"),
        ("PATCH", "replicasets"),
        ("PATCH", "deployments"),
        ("GET", "replicasets"),
        ("DELETE", "pods"),
        ("PATCH", "leases"),
        ("PATCH", "nodes"),
    ] {
        println!("FIG req {verb} {res}: {}", m.request_count(verb, res));
    }
    let text = m.render();
    let n429: f64 = text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total") && l.contains("code=\"429\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!("FIG 429s: {n429}");
    for l in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total") && l.contains("code=\"201\""))
    {
        println!("FIG {l}");
    }
    sim.shutdown().await;
}
