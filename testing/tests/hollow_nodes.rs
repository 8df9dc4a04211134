//! Hollow nodes and control loops through `kube::Client`: the per-node watch mode, node
//! lifecycle (a fleet that stops renewing its leases goes NotReady and gets tainted), a
//! StatefulSet rolling out in order, a DaemonSet covering every node, and Job completion.

use std::time::{Duration, Instant};

use cl2_hollow::controllers::ControlPlaneOptions;
use cl2_hollow::kubelet::{HollowNodeConfig, WatchMode, start_fleet};
use cl2_hollow::sim::{SimConfig, start};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(90);

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn create_ns(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn ready(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_watch_and_node_lifecycle() {
    let sim = start(SimConfig {
        nodes: 0,
        control_plane_options: ControlPlaneOptions {
            node_monitor_grace_period: Duration::from_secs(3),
            node_monitor_period: Duration::from_millis(500),
            ..ControlPlaneOptions::default()
        },
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = sim.client();
    let cfg = HollowNodeConfig {
        name_prefix: "pn-".into(),
        watch_mode: WatchMode::PerNode,
        lease_renew_interval: Duration::from_millis(500),
        ..HollowNodeConfig::default()
    };
    let token = tokio_util::sync::CancellationToken::new();
    let fleet = start_fleet(client.clone(), cfg, 3, token.clone())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    for n in fleet.node_names() {
        let node = nodes.get(&n).await.unwrap();
        assert_eq!(ready(&node), "True");
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels.get("kubernetes.io/hostname"), Some(&n));
        let info = node.status.unwrap().node_info.unwrap();
        assert_eq!(
            info.container_runtime_version,
            "containerd://2.0.0-cl2hollow"
        );
    }

    create_ns(&client, "pn").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pn");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = eventually("pod running via per-node watch", || async {
        let p = pods.get("p").await.ok()?;
        let st = p.status.clone()?;
        (st.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    let st = running.status.unwrap();
    assert!(st.pod_ip.unwrap().starts_with("10.128."));
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.ready && cs.started == Some(true));
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    let conds: Vec<String> = st
        .conditions
        .unwrap()
        .into_iter()
        .filter(|c| c.status == "True")
        .map(|c| c.type_)
        .collect();
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        assert!(conds.iter().any(|x| x == c), "{c} missing in {conds:?}");
    }

    // Stop the kubelets: leases expire, nodes go Unknown and get unreachable taints.
    fleet.shutdown().await;
    let node = eventually("node unreachable", || async {
        let n = nodes.get("pn-0").await.ok()?;
        let tainted = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|ts| {
                ts.iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            });
        (ready(&n) == "Unknown" && tainted).then_some(n)
    })
    .await;
    let cond = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("NodeStatusUnknown"));
    token.cancel();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_daemonset_and_job() {
    let sim = start(SimConfig {
        nodes: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = sim.client();
    create_ns(&client, "wl").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "wl");

    // StatefulSet: ordered pods with stable names and labels.
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 3, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "postgres"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]
        }
    }))
    .unwrap();
    let sapi: Api<StatefulSet> = Api::namespaced(client.clone(), "wl");
    sapi.create(&PostParams::default(), &sts).await.unwrap();
    eventually("statefulset ready", || async {
        let s = sapi.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3) && s.updated_replicas == Some(3)).then_some(())
    })
    .await;
    for i in 0..3 {
        let p = pods.get(&format!("db-{i}")).await.unwrap();
        let labels = p.metadata.labels.unwrap();
        assert_eq!(
            labels.get("statefulset.kubernetes.io/pod-name"),
            Some(&format!("db-{i}"))
        );
        assert_eq!(p.spec.unwrap().hostname, Some(format!("db-{i}")));
    }
    // Ordered creation: db-1 was created only once db-0 was Ready (second precision).
    let p0 = pods.get("db-0").await.unwrap();
    let p1 = pods.get("db-1").await.unwrap();
    let ready_at = p0
        .status
        .and_then(|s| s.conditions)
        .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time)
        .unwrap()
        .0;
    let created1 = p1.metadata.creation_timestamp.clone().unwrap().0;
    assert!(
        ready_at <= created1,
        "db-0 ready at {ready_at}, db-1 created at {created1}: {p1:?}"
    );

    // One claim per ordinal from the claim template.
    let claims: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), "wl");
    for i in 0..3 {
        let c = claims.get(&format!("data-db-{i}")).await.unwrap();
        assert_eq!(
            c.metadata.labels.unwrap().get("app").map(String::as_str),
            Some("db")
        );
    }

    // DaemonSet: one pod per node, pinned by node affinity.
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "fluentd"}]}}
        }
    }))
    .unwrap();
    let dapi: Api<DaemonSet> = Api::namespaced(client.clone(), "wl");
    dapi.create(&PostParams::default(), &ds).await.unwrap();
    eventually("daemonset ready", || async {
        let s = dapi.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 4 && s.number_ready == 4).then_some(())
    })
    .await;
    let agents = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap();
    let mut nodes: Vec<String> = agents
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref()?.node_name.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 4);

    // Job: three completions, two at a time.
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "batch"},
        "spec": {"completions": 3, "parallelism": 2,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    let japi: Api<Job> = Api::namespaced(client.clone(), "wl");
    japi.create(&PostParams::default(), &job).await.unwrap();
    let status = eventually("job complete", || async {
        let s = japi.get("batch").await.ok()?.status?;
        s.conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(s)
    })
    .await;
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.active.unwrap_or(0), 0);
    assert!(status.completion_time.is_some() && status.start_time.is_some());
    sim.shutdown().await;
}
