//! WaitForControlledPodsRunning: a barrier until every selected controller (Deployment,
//! ReplicaSet, ReplicationController, StatefulSet, DaemonSet, Job) runs exactly its desired
//! pods, and pods of controllers deleted meanwhile are gone.
//!
//! `start` (`apiVersion`, `kind`, selector, `operationTimeout` 10m, `checkIfPodsAreUpdated`
//! true, `countErrorMargin` 0) opens three watches kept for the whole run, each storing a
//! compact record: the selected controllers (desired replicas, a hash of the template's
//! container images), their pods (owner, running+ready, inactive, terminating, image hash) and,
//! for Deployments, ReplicaSet → Deployment ownership. Nothing is polled from the API.
//!
//! `gather` lists the controllers once and waits (up to `syncTimeout`, 60s) until the watch
//! has seen every listed one, as CL2 syncs its informer; then it re-evaluates every
//! `refreshInterval` (1s; CL2 polls every 5s) until, for each controller, pods == running +
//! inactive and running == updated == desired (with a margin m > 0: updated ≥ desired − m,
//! pods − inactive ≤ desired, inactive ≤ m), and deleted controllers have no pods left; or
//! until `operationTimeout` (counted from the gather) expires. Desired: `spec.replicas`
//! (default 1), Job `spec.parallelism` (default 1; 0 once Complete), DaemonSet
//! `status.desiredNumberScheduled` (else the number of schedulable nodes). "Updated" compares
//! the pod's container images with the template's (an approximation of CL2's check).

use crate::common::{self, WatchTask};
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams};
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "WaitForControlledPodsRunning",
    summary: "barrier: waits until controllers (Deployment, Job, ...) run their desired pods",
    new: || Box::new(WaitForControlledPodsRunning::default()),
};

const METHOD: &str = "WaitForControlledPodsRunning";
const KINDS: [&str; 6] = [
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "StatefulSet",
    "DaemonSet",
    "Job",
];

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    field_selector: Option<String>,
    #[serde(default)]
    operation_timeout: Option<GoDuration>,
    #[serde(default)]
    check_if_pods_are_updated: Option<bool>,
    #[serde(default)]
    count_error_margin: Option<u64>,
    #[serde(default)]
    sync_timeout: Option<GoDuration>,
    #[serde(default)]
    refresh_interval: Option<GoDuration>,
}

/// Compact per-pod record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PodLite {
    owner: u64,
    running: bool,
    inactive: bool,
    terminating: bool,
    images: u64,
}

/// Compact per-controller record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ctrl {
    name: String,
    /// None: a DaemonSet without status yet (desired = schedulable nodes).
    desired: Option<u64>,
    template: u64,
}

#[derive(Default)]
struct Tracked {
    ctrls: HashMap<u64, Ctrl>,
    /// Controllers deleted since `start` whose pods may still exist.
    deleted: HashMap<u64, String>,
    /// ReplicaSet uid hash → owning Deployment uid hash.
    rs_owner: HashMap<u64, u64>,
    pods: HashMap<String, PodLite>,
}

fn hash_str(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Hash of sorted (container name, image) pairs.
fn images_hash<'a>(containers: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut v: Vec<(&str, &str)> = containers.collect();
    v.sort_unstable();
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

fn pod_lite(pod: &Pod) -> PodLite {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| {
            o.iter()
                .find(|r| r.controller.unwrap_or(false))
                .or(o.first())
        })
        .map_or(0, |r| hash_str(&r.uid));
    let images = images_hash(
        pod.spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or(""))),
    );
    PodLite {
        owner,
        running: common::is_running_ready(pod),
        inactive: common::is_inactive(pod),
        terminating: common::is_terminating(&pod.metadata),
        images,
    }
}

fn ctrl_of(kind: &str, o: &DynamicObject) -> Ctrl {
    let v = &o.data;
    let containers = v["spec"]["template"]["spec"]["containers"].as_array();
    let template = images_hash(containers.into_iter().flatten().map(|c| {
        (
            c["name"].as_str().unwrap_or(""),
            c["image"].as_str().unwrap_or(""),
        )
    }));
    Ctrl {
        name: format!("{kind} {}", common::key_of(&o.metadata)),
        desired: desired_of(kind, v),
        template,
    }
}

/// Pod counts of one controller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    pods: u64,
    running: u64,
    updated: u64,
    inactive: u64,
}

fn satisfied(c: Counts, desired: u64, margin: u64) -> bool {
    if margin == 0 {
        c.pods == c.running + c.inactive && c.running == c.updated && c.running == desired
    } else {
        c.updated + margin >= desired
            && c.pods - c.inactive.min(c.pods) <= desired
            && c.inactive <= margin
    }
}

/// Desired pods from a controller object (`None`: DaemonSet without status).
fn desired_of(kind: &str, o: &serde_json::Value) -> Option<u64> {
    let u = |v: &serde_json::Value| v.as_u64();
    match kind {
        "DaemonSet" => u(&o["status"]["desiredNumberScheduled"]),
        "Job" => {
            let done = o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True")
            });
            Some(if done {
                0
            } else {
                u(&o["spec"]["parallelism"]).unwrap_or(1)
            })
        }
        _ => Some(u(&o["spec"]["replicas"]).unwrap_or(1)),
    }
}

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

/// What one evaluation found.
#[derive(Debug, Default)]
struct Evaluation {
    pending: Vec<String>,
    objects: usize,
}

/// Evaluates every tracked controller; forgets deleted ones whose pods are gone.
fn evaluate(t: &mut Tracked, check_updated: bool, margin: u64, nodes: u64) -> Evaluation {
    let mut counts: HashMap<u64, Counts> = HashMap::new();
    for p in t.pods.values() {
        let top = t.rs_owner.get(&p.owner).copied().unwrap_or(p.owner);
        if top == 0 {
            continue;
        }
        let Some(template) = t
            .ctrls
            .get(&top)
            .map(|c| c.template)
            .or_else(|| t.deleted.contains_key(&top).then_some(0))
        else {
            continue;
        };
        let c = counts.entry(top).or_default();
        c.pods += 1;
        if p.running && !p.terminating {
            c.running += 1;
            if !check_updated || template == p.images {
                c.updated += 1;
            }
        } else if p.inactive {
            c.inactive += 1;
        }
    }
    let mut pending = Vec::new();
    for (h, ctrl) in &t.ctrls {
        let desired = ctrl.desired.unwrap_or(nodes);
        let c = counts.get(h).copied().unwrap_or_default();
        if !satisfied(c, desired, margin) {
            pending.push(format!(
                "{}: {} of {desired} running ({} pods, {} updated)",
                ctrl.name, c.running, c.pods, c.updated
            ));
        }
    }
    t.deleted.retain(
        |h, name| match counts.get(h).filter(|c| c.pods > c.inactive) {
            Some(c) => {
                pending.push(format!("{name} (deleted): {} pods left", c.pods));
                true
            }
            None => false,
        },
    );
    pending.sort();
    Evaluation {
        pending,
        objects: t.ctrls.len(),
    }
}

/// The selected controllers' API: in `ns`, or across all namespaces when it is empty.
fn controller_api(
    client: &kube::Client,
    ns: &str,
    resource: &ApiResource,
) -> kube::Api<DynamicObject> {
    if ns.is_empty() {
        kube::Api::all_with(client.clone(), resource)
    } else {
        kube::Api::namespaced_with(client.clone(), ns, resource)
    }
}

struct Started {
    config: Config,
    kind: String,
    resource: ApiResource,
    tracked: Arc<Mutex<Tracked>>,
    watches: Vec<WatchTask>,
}

#[derive(Default)]
pub(crate) struct WaitForControlledPodsRunning {
    started: Option<Started>,
}

impl WaitForControlledPodsRunning {
    async fn stop(&mut self) {
        if let Some(st) = self.started.take() {
            for w in st.watches {
                w.stop().await;
            }
        }
    }

    async fn start(
        &mut self,
        ctx: &MeasurementContext,
        cfg: Config,
    ) -> Result<(), MeasurementError> {
        let id = ctx.identifier.as_str();
        self.stop().await;
        let kind = cfg.kind.clone().unwrap_or_default();
        if !KINDS.contains(&kind.as_str()) {
            return Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unsupported kind {kind:?} (one of {})", KINDS.join(", ")),
            ));
        }
        let api_version = cfg.api_version.clone().unwrap_or_default();
        if api_version.is_empty() {
            return Err(MeasurementError::invalid(
                METHOD,
                id,
                "`apiVersion` is required",
            ));
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let resource = ApiResource {
            group,
            version,
            api_version: api_version.clone(),
            kind: kind.clone(),
            plural: plural(&kind),
        };
        let client = ctx.cluster.client.clone();
        let ns = cfg.namespace.clone().unwrap_or_default();
        let sel = Selector::new(
            Some(&ns),
            cfg.label_selector.as_deref(),
            cfg.field_selector.as_deref(),
        );
        let tracked: Arc<Mutex<Tracked>> = Arc::default();
        let init = Duration::from_secs(120);
        let mut watches = Vec::new();

        let (a, d, k) = (tracked.clone(), tracked.clone(), kind.clone());
        let ctrl_api = controller_api(&client, &ns, &resource);
        watches.push(
            WatchTask::spawn(
                ctrl_api,
                sel.watcher_config(),
                move |o: DynamicObject, _| {
                    if let Some(uid) = o.metadata.uid.as_deref() {
                        let h = hash_str(uid);
                        let mut t = a.lock();
                        t.deleted.remove(&h);
                        t.ctrls.insert(h, ctrl_of(&k, &o));
                    }
                },
                move |o: DynamicObject| {
                    if let Some(uid) = o.metadata.uid.as_deref() {
                        let h = hash_str(uid);
                        let mut t = d.lock();
                        if let Some(c) = t.ctrls.remove(&h) {
                            t.deleted.insert(h, c.name);
                        }
                    }
                },
                init,
            )
            .await,
        );
        if kind == "Deployment" {
            let r = tracked.clone();
            watches.push(
                WatchTask::spawn(
                    Selector::new(Some(&ns), None, None).api::<ReplicaSet>(&client),
                    kube::runtime::watcher::Config::default(),
                    move |rs: ReplicaSet, _| {
                        let (Some(uid), Some(owner)) = (
                            rs.metadata.uid.as_deref(),
                            rs.metadata
                                .owner_references
                                .as_ref()
                                .and_then(|o| o.first()),
                        ) else {
                            return;
                        };
                        r.lock()
                            .rs_owner
                            .insert(hash_str(uid), hash_str(&owner.uid));
                    },
                    |_| {},
                    init,
                )
                .await,
            );
        }
        let (a, d) = (tracked.clone(), tracked.clone());
        let (mut apply_key, mut delete_key) =
            (common::KeyBuf::default(), common::KeyBuf::default());
        watches.push(
            WatchTask::spawn(
                Selector::new(Some(&ns), None, None).api::<Pod>(&client),
                kube::runtime::watcher::Config::default(),
                move |p: Pod, _| {
                    let lite = pod_lite(&p);
                    let key = apply_key.of(&p.metadata);
                    let mut t = a.lock();
                    match t.pods.get_mut(key) {
                        Some(old) => *old = lite,
                        None => {
                            t.pods.insert(key.to_owned(), lite);
                        }
                    }
                },
                move |p: Pod| {
                    d.lock().pods.remove(delete_key.of(&p.metadata));
                },
                init,
            )
            .await,
        );
        self.started = Some(Started {
            config: cfg,
            kind,
            resource,
            tracked,
            watches,
        });
        Ok(())
    }

    async fn gather(
        &mut self,
        ctx: &MeasurementContext,
        over: &Config,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let Some(st) = self.started.as_ref() else {
            return Err(common::not_started(METHOD, id));
        };
        if ctx.finishing {
            // End-of-run gather of an interrupted test: report nothing, don't wait.
            return Ok(vec![]);
        }
        let cfg = &st.config;
        let pick = |a: Option<GoDuration>, b: Option<GoDuration>, d: u64| {
            a.or(b).map_or(Duration::from_secs(d), |x| x.0)
        };
        let timeout = pick(over.operation_timeout, cfg.operation_timeout, 600);
        let sync_timeout = pick(over.sync_timeout, cfg.sync_timeout, 60);
        let refresh =
            pick(over.refresh_interval, cfg.refresh_interval, 1).max(Duration::from_millis(100));
        let check_updated = over
            .check_if_pods_are_updated
            .or(cfg.check_if_pods_are_updated)
            .unwrap_or(true);
        let margin = over
            .count_error_margin
            .or(cfg.count_error_margin)
            .unwrap_or(0);
        let began = Instant::now();
        let client = ctx.cluster.client.clone();

        // Sync: the watch must have seen every controller a fresh LIST returns.
        let ns = cfg.namespace.clone().unwrap_or_default();
        let api = controller_api(&client, &ns, &st.resource);
        let sel = Selector::new(
            None,
            cfg.label_selector.as_deref(),
            cfg.field_selector.as_deref(),
        );
        let listed: HashSet<u64> = api
            .list(&sel.list_params())
            .await
            .map_err(|e| MeasurementError::failed(METHOD, id, format!("listing {}: {e}", st.kind)))?
            .items
            .iter()
            .filter_map(|o| o.metadata.uid.as_deref().map(hash_str))
            .collect();
        loop {
            let missing = {
                let t = st.tracked.lock();
                listed.iter().filter(|h| !t.ctrls.contains_key(h)).count()
            };
            if missing == 0 {
                break;
            }
            if began.elapsed() >= sync_timeout
                || !common::sleep_or_cancel(ctx, Duration::from_millis(100)).await
            {
                return Err(MeasurementError::failed(
                    METHOD,
                    id,
                    format!(
                        "the {} watch did not sync within {sync_timeout:?}: {missing} listed objects not seen",
                        st.kind
                    ),
                ));
            }
        }

        loop {
            let nodes = if st.kind == "DaemonSet" {
                let napi: kube::Api<Node> = kube::Api::all(client.clone());
                napi.list(&ListParams::default())
                    .await
                    .map(|l| {
                        l.items
                            .iter()
                            .filter(|n| common::node_schedulable(n))
                            .count() as u64
                    })
                    .unwrap_or(0)
            } else {
                0
            };
            let ev = evaluate(&mut st.tracked.lock(), check_updated, margin, nodes);
            if ev.pending.is_empty() {
                let wait = began.elapsed().as_secs_f64();
                let mut s = Summary::new(
                    format!("WaitForControlledPodsRunning_{id}"),
                    serde_json::json!({"objects": ev.objects, "waitSeconds": wait}),
                );
                s.key_numbers = vec![
                    KeyNumber::new("objects", ev.objects as f64, ""),
                    KeyNumber::new("wait", wait, "s"),
                ];
                return Ok(vec![s]);
            }
            let expired = !timeout.is_zero() && began.elapsed() >= timeout;
            if expired || !common::sleep_or_cancel(ctx, refresh).await {
                let n = ev.pending.len();
                let mut shown: Vec<String> = ev.pending.into_iter().take(10).collect();
                if n > 10 {
                    shown.push(format!("... and {} more", n - 10));
                }
                let why = if expired {
                    format!("timed out after {timeout:?}")
                } else {
                    "interrupted".into()
                };
                return Err(MeasurementError::failed(
                    METHOD,
                    id,
                    format!("{why}: {n} objects not ready: {}", shown.join("; ")),
                ));
            }
        }
    }
}

#[async_trait::async_trait]
impl Measurement for WaitForControlledPodsRunning {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, cfg): (String, Config) = decode(METHOD, id, params)?;
        match action.as_str() {
            "start" => {
                self.start(ctx, cfg).await?;
                Ok(vec![])
            }
            "gather" => self.gather(ctx, &cfg).await,
            "stop" => {
                self.stop().await;
                Ok(vec![])
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unknown action {other:?} (expected start, gather or stop)"),
            )),
        }
    }

    async fn dispose(&mut self) {
        self.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_rules() {
        let c = |pods, running, updated, inactive| Counts {
            pods,
            running,
            updated,
            inactive,
        };
        assert!(satisfied(c(3, 3, 3, 0), 3, 0));
        assert!(!satisfied(c(4, 3, 3, 0), 3, 0), "a pending extra pod");
        assert!(!satisfied(c(3, 3, 2, 0), 3, 0), "not updated");
        assert!(satisfied(c(0, 0, 0, 0), 0, 0));
        assert!(satisfied(c(4, 2, 2, 1), 3, 1), "margin 1");
        assert!(!satisfied(c(4, 1, 1, 0), 3, 1));
    }

    #[test]
    fn desired_per_kind() {
        let d = serde_json::json!({"spec": {"replicas": 5}});
        assert_eq!(desired_of("Deployment", &d), Some(5));
        assert_eq!(desired_of("Deployment", &serde_json::json!({})), Some(1));
        assert_eq!(
            desired_of("Job", &serde_json::json!({"spec": {"parallelism": 2}})),
            Some(2)
        );
        let done = serde_json::json!({"spec": {"parallelism": 2},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(desired_of("Job", &done), Some(0));
        assert_eq!(desired_of("DaemonSet", &serde_json::json!({})), None);
        let ds = serde_json::json!({"status": {"desiredNumberScheduled": 3}});
        assert_eq!(desired_of("DaemonSet", &ds), Some(3));
        assert_eq!(plural("ReplicationController"), "replicationcontrollers");
    }

    #[test]
    fn images_hash_ignores_order() {
        let a = images_hash([("a", "x"), ("b", "y")].into_iter());
        let b = images_hash([("b", "y"), ("a", "x")].into_iter());
        assert_eq!(a, b);
        assert_ne!(a, images_hash([("a", "z")].into_iter()));
    }

    fn pod(owner: u64, running: bool, images: u64) -> PodLite {
        PodLite {
            owner,
            running,
            inactive: false,
            terminating: false,
            images,
        }
    }

    #[test]
    fn evaluation_follows_owners_and_deletions() {
        let mut t = Tracked::default();
        t.ctrls.insert(
            1,
            Ctrl {
                name: "Deployment ns/web".into(),
                desired: Some(2),
                template: 7,
            },
        );
        t.rs_owner.insert(10, 1);
        t.pods.insert("ns/a".into(), pod(10, true, 7));
        t.pods.insert("ns/b".into(), pod(10, false, 7));
        let ev = evaluate(&mut t, true, 0, 0);
        assert_eq!(
            ev.pending,
            vec!["Deployment ns/web: 1 of 2 running (2 pods, 1 updated)"]
        );
        t.pods.insert("ns/b".into(), pod(10, true, 7));
        assert!(evaluate(&mut t, true, 0, 0).pending.is_empty());
        // Old image: not updated.
        t.pods.insert("ns/b".into(), pod(10, true, 8));
        assert_eq!(evaluate(&mut t, true, 0, 0).pending.len(), 1);
        assert!(evaluate(&mut t, false, 0, 0).pending.is_empty());
        // Deleted: wait until the pods are gone, then forget it.
        t.ctrls.remove(&1);
        t.deleted.insert(1, "Deployment ns/web".into());
        assert_eq!(
            evaluate(&mut t, true, 0, 0).pending,
            vec!["Deployment ns/web (deleted): 2 pods left"]
        );
        t.pods.clear();
        assert!(evaluate(&mut t, true, 0, 0).pending.is_empty());
        assert!(t.deleted.is_empty());
        // DaemonSet without status: desired = schedulable nodes.
        t.ctrls.insert(
            2,
            Ctrl {
                name: "DaemonSet ns/ds".into(),
                desired: None,
                template: 1,
            },
        );
        assert_eq!(evaluate(&mut t, true, 0, 3).pending.len(), 1);
        assert!(evaluate(&mut t, true, 0, 0).pending.is_empty());
    }
}
