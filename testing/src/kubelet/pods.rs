//! Pod lifecycle of hollow nodes: watch pods bound to the fleet's nodes and drive them
//! Pending → Running (after the configured start delay), Job pods → Succeeded (after the run
//! duration), and finish graceful deletions (delete with grace period 0 after the termination
//! delay, never later than the pod's grace period).
//!
//! Per pod only a small [`PodTrack`] is kept; each pending transition is one sleeping task.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Fleet, WatchMode, api_code, pod_cidr_prefix};

/// `(namespace, name)` of a pod.
pub(crate) type PodKey = (String, String);

/// What the fleet remembers about one pod.
pub(crate) struct PodTrack {
    uid: String,
    node: String,
    stage: Stage,
    ip_host: Option<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Starting,
    Running,
    Done,
    Terminating,
}

/// The parts of a pod spec needed to fake its status.
struct PodShape {
    containers: Vec<(String, String)>,
    init_containers: Vec<(String, String)>,
    scheduled_at: Option<Time>,
    is_job: bool,
}

impl PodShape {
    fn of(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let list = |cs: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
            cs.map(|cs| {
                cs.iter()
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default()
        };
        let restart = spec
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let job_owned = pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o.kind == "Job"));
        let scheduled_at = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "True")
            })
            .and_then(|c| c.last_transition_time.clone());
        PodShape {
            containers: list(spec.map(|s| &s.containers)),
            init_containers: list(spec.and_then(|s| s.init_containers.as_ref())),
            scheduled_at,
            is_job: job_owned && restart != "Always",
        }
    }
}

/// Starts the pod watch(es) of the fleet.
pub(crate) fn spawn_pod_watchers(f: Arc<Fleet>) -> Vec<JoinHandle<()>> {
    match f.cfg.watch_mode {
        WatchMode::Shared => vec![tokio::spawn(watch_pods(
            f.clone(),
            "spec.nodeName!=".to_string(),
        ))],
        WatchMode::PerNode => f
            .names
            .iter()
            .map(|n| tokio::spawn(watch_pods(f.clone(), format!("spec.nodeName={n}"))))
            .collect(),
    }
}

async fn watch_pods(f: Arc<Fleet>, fields: String) {
    let api: Api<Pod> = Api::all(f.client.clone());
    let mut cfg = watcher::Config::default().fields(&fields);
    if f.cfg.streaming_lists {
        cfg = cfg.streaming_lists();
    }
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = f.token.cancelled() => return,
        };
        match ev {
            None => return,
            Some(Err(e)) => tracing::debug!(error = %e, "hollow pod watch error"),
            Some(Ok(Event::Apply(p) | Event::InitApply(p))) => on_pod(&f, p),
            Some(Ok(Event::Delete(p))) => on_delete(&f, &p),
            Some(Ok(Event::Init | Event::InitDone)) => {}
        }
    }
}

fn key_of(pod: &Pod) -> Option<PodKey> {
    Some((pod.metadata.namespace.clone()?, pod.metadata.name.clone()?))
}

fn on_delete(f: &Fleet, pod: &Pod) {
    let Some(key) = key_of(pod) else { return };
    let mut pods = f.pods.lock();
    if let Some(t) = pods.get(&key)
        && Some(&t.uid) == pod.metadata.uid.as_ref()
        && let Some(t) = pods.remove(&key)
    {
        release_ip(f, &t);
    }
}

fn release_ip(f: &Fleet, t: &PodTrack) {
    if let (Some(h), Some(slot)) = (t.ip_host, f.nodes.get(&t.node)) {
        slot.ips.lock().free(h);
    }
}

fn on_pod(f: &Arc<Fleet>, pod: Pod) {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return;
    };
    let Some(slot) = f.nodes.get(&node) else {
        return;
    };
    let Some(key) = key_of(&pod) else { return };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".to_string());
    let lc = &f.cfg.pod_lifecycle;
    let mut pods = f.pods.lock();
    if let Some(t) = pods.get(&key)
        && t.uid != uid
        && let Some(old) = pods.remove(&key)
    {
        release_ip(f, &old);
    }
    let track = pods.entry(key.clone()).or_insert_with(|| PodTrack {
        uid: uid.clone(),
        node: node.clone(),
        stage: Stage::Starting,
        ip_host: None,
    });
    let fresh = track.ip_host.is_none() && track.stage == Stage::Starting;

    if pod.metadata.deletion_timestamp.is_some() {
        if track.stage != Stage::Terminating {
            track.stage = Stage::Terminating;
            let grace = pod
                .metadata
                .deletion_grace_period_seconds
                .unwrap_or(30)
                .max(0) as f64;
            let delay = lc
                .termination_delay
                .sample()
                .min(Duration::from_secs_f64(grace));
            tokio::spawn(finish_deletion(f.clone(), key, uid, delay));
        }
        return;
    }
    match phase.as_str() {
        "Succeeded" | "Failed" => {
            if track.stage != Stage::Done {
                track.stage = Stage::Done;
                release_ip(f, track);
                track.ip_host = None;
            }
        }
        "Running" => {
            if fresh {
                // Found running (e.g. after a restart of the fleet): adopt its IP.
                track.stage = Stage::Running;
                let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
                let prefix = pod_cidr_prefix(slot.index);
                if let Some(host) = ip
                    .as_deref()
                    .and_then(|ip| ip.strip_prefix(prefix.as_str()))
                    .and_then(|h| h.parse::<u8>().ok())
                {
                    slot.ips.lock().mark(host);
                    track.ip_host = Some(host);
                }
                let shape = PodShape::of(&pod);
                if shape.is_job {
                    let delay = lc.job_run_duration.sample();
                    tokio::spawn(complete_pod(f.clone(), key, uid, shape, delay));
                }
            }
        }
        _ => {
            if fresh {
                // Mark as scheduled-to-start by taking an IP now (keeps `fresh` false later).
                let Some(host) = slot.ips.lock().take() else {
                    tracing::warn!(node = %node, "pod CIDR exhausted");
                    return;
                };
                track.ip_host = Some(host);
                let delay = lc.start_delay.sample();
                let shape = PodShape::of(&pod);
                tokio::spawn(start_pod(f.clone(), key, uid, shape, host, delay));
            }
        }
    }
}

fn still_current(f: &Fleet, key: &PodKey, uid: &str, stage: Stage) -> bool {
    f.pods
        .lock()
        .get(key)
        .is_some_and(|t| t.uid == uid && t.stage == stage)
}

fn set_stage(f: &Fleet, key: &PodKey, uid: &str, stage: Stage) {
    if let Some(t) = f.pods.lock().get_mut(key)
        && t.uid == uid
        && t.stage != Stage::Terminating
    {
        t.stage = stage;
    }
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn cond(type_: &str, status: &str, since: &Time, reason: Option<&str>) -> Value {
    let mut c = json!({
        "type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

fn image_ref(image: &str) -> (String, String) {
    let full = if image.contains('/') {
        image.to_string()
    } else {
        format!("docker.io/library/{image}")
    };
    let full = if full.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        full
    } else {
        format!("{full}:latest")
    };
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        full.hash(&mut h);
        format!("{:016x}", h.finish()).repeat(4)
    };
    let repo = full
        .rsplit_once(':')
        .map(|(r, _)| r)
        .unwrap_or(&full)
        .to_string();
    (full, format!("{repo}@sha256:{digest}"))
}

fn container_id() -> String {
    format!(
        "containerd://{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A container status; `started` is true exactly for running containers.
fn container_status(name: &str, image: &str, ready: bool, state: Value) -> Value {
    let started = state.get("running").is_some();
    let (image, image_id) = image_ref(image);
    json!({
        "name": name, "image": image, "imageID": image_id,
        "containerID": container_id(), "ready": ready, "started": started,
        "restartCount": 0, "state": state,
    })
}

/// Status of a container that ran to completion at `at` (init containers, finished jobs).
fn terminated_status(name: &str, image: &str, ready: bool, at: &Time) -> Value {
    let state = json!({ "terminated": {
        "exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at,
    } });
    container_status(name, image, ready, state)
}

fn running_status(f: &Fleet, node: &str, host: u8, shape: &PodShape, started: &Time) -> Value {
    let Some(slot) = f.nodes.get(node) else {
        return Value::Null;
    };
    let ip = format!("{}{}", pod_cidr_prefix(slot.index), host);
    let scheduled = shape
        .scheduled_at
        .clone()
        .unwrap_or_else(|| started.clone());
    let containers: Vec<Value> = shape
        .containers
        .iter()
        .map(|(name, image)| {
            container_status(
                name,
                image,
                true,
                json!({ "running": { "startedAt": started } }),
            )
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "hostIP": slot.internal_ip, "hostIPs": [{ "ip": slot.internal_ip }],
        "podIP": ip, "podIPs": [{ "ip": ip }],
        "startTime": started,
        "conditions": [
            cond("PodReadyToStartContainers", "True", started, None),
            cond("Initialized", "True", started, None),
            cond("Ready", "True", started, None),
            cond("ContainersReady", "True", started, None),
            cond("PodScheduled", "True", &scheduled, None),
        ],
        "containerStatuses": containers,
    });
    if !shape.init_containers.is_empty() {
        let inits: Vec<Value> = shape
            .init_containers
            .iter()
            .map(|(name, image)| terminated_status(name, image, true, started))
            .collect();
        status["initContainerStatuses"] = Value::Array(inits);
    }
    status
}

async fn patch_pod_status(f: &Fleet, key: &PodKey, status: Value) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(f.client.clone(), &key.0);
    let body = json!({ "status": status });
    let _permit = f.limiter.acquire().await;
    api.patch_status(&key.1, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map(|_| ())
}

/// Sleeps, unless the fleet shuts down first. Returns false on shutdown.
async fn sleep_or_stop(f: &Fleet, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = f.token.cancelled() => false,
    }
}

async fn start_pod(
    f: Arc<Fleet>,
    key: PodKey,
    uid: String,
    shape: PodShape,
    host: u8,
    delay: Duration,
) {
    if !sleep_or_stop(&f, delay).await {
        return;
    }
    let Some(node) = f.pods.lock().get(&key).map(|t| t.node.clone()) else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    for _ in 0..10 {
        if !still_current(&f, &key, &uid, Stage::Starting) {
            return;
        }
        let started = now();
        let status = running_status(&f, &node, host, &shape, &started);
        match patch_pod_status(&f, &key, status).await {
            Ok(()) => {
                set_stage(&f, &key, &uid, Stage::Running);
                if shape.is_job {
                    let d = f.cfg.pod_lifecycle.job_run_duration.sample();
                    complete_pod(f.clone(), key, uid, shape, d).await;
                }
                return;
            }
            Err(e) if api_code(&e) == Some(404) => return,
            Err(e) => {
                tracing::debug!(pod = ?key, error = %e, "pod start status update failed");
                if !sleep_or_stop(&f, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn complete_pod(f: Arc<Fleet>, key: PodKey, uid: String, shape: PodShape, delay: Duration) {
    if !sleep_or_stop(&f, delay).await {
        return;
    }
    if !still_current(&f, &key, &uid, Stage::Running) {
        return;
    }
    let finished = now();
    let containers: Vec<Value> = shape
        .containers
        .iter()
        .map(|(name, image)| terminated_status(name, image, false, &finished))
        .collect();
    let status = json!({
        "phase": "Succeeded",
        "conditions": [
            cond("PodReadyToStartContainers", "False", &finished, None),
            cond("Initialized", "True", &finished, Some("PodCompleted")),
            cond("Ready", "False", &finished, Some("PodCompleted")),
            cond("ContainersReady", "False", &finished, Some("PodCompleted")),
            cond("PodScheduled", "True", shape.scheduled_at.as_ref().unwrap_or(&finished), None),
        ],
        "containerStatuses": containers,
    });
    match patch_pod_status(&f, &key, status).await {
        Ok(()) => set_stage(&f, &key, &uid, Stage::Done),
        Err(e) => tracing::debug!(pod = ?key, error = %e, "pod completion update failed"),
    }
}

async fn finish_deletion(f: Arc<Fleet>, key: PodKey, uid: String, delay: Duration) {
    if !sleep_or_stop(&f, delay).await {
        return;
    }
    let api: Api<Pod> = Api::namespaced(f.client.clone(), &key.0);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let mut backoff = Duration::from_millis(100);
    for _ in 0..10 {
        let res = {
            let _permit = f.limiter.acquire().await;
            api.delete(&key.1, &dp).await
        };
        match res {
            Ok(_) => return,
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => {
                // Gone already, or replaced by a new pod of the same name.
                let mut pods = f.pods.lock();
                if pods.get(&key).is_some_and(|t| t.uid == uid)
                    && let Some(t) = pods.remove(&key)
                {
                    release_ip(&f, &t);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(pod = ?key, error = %e, "pod deletion failed");
                if !sleep_or_stop(&f, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs_look_real() {
        let (img, id) = image_ref("nginx");
        assert_eq!(img, "docker.io/library/nginx:latest");
        assert!(id.starts_with("docker.io/library/nginx@sha256:"));
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
        let (img, _) = image_ref("registry.k8s.io/pause:3.10");
        assert_eq!(img, "registry.k8s.io/pause:3.10");
        assert!(container_id().starts_with("containerd://"));
        assert_eq!(container_id().len(), "containerd://".len() + 64);
    }
}
