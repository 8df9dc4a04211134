//! Workload controllers of the simulated cluster (deployments, replicasets, ...), talking to the
//! API server through `kube::Client` like real controllers.
//!
//! [`spawn_control_plane`] starts one watch per resource kind (the "informers"), the
//! [`Scheduler`](crate::scheduler::Scheduler) and one work queue per controller. Informers keep
//! typed objects for the low-cardinality kinds (deployments, replicasets, nodes, ...) and only a
//! compact [`PodInfo`](cache::PodInfo) per pod. Events are turned into queue keys
//! (`namespace/name`); workers reconcile each key, never the same key twice at once. Controllers
//! write objects they create back into the pod cache immediately, which plays the role of the
//! real controllers' "expectations" (no double creation while the watch catches up).
//!
//! Garbage collection and namespace lifecycle live in the store, not here.

pub(crate) mod cache;
mod daemonset;
mod deployment;
mod endpoints;
mod job;
mod nodelifecycle;
mod queue;
mod replicaset;
mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Event, EventSource, Node, ObjectReference, Pod, PodTemplateSpec, ReplicationController, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::SimMetrics;
use crate::scheduler::Scheduler;
use cache::{PodCache, Store};
use queue::WorkQueue;

/// Knobs of the in-process control plane.
#[derive(Clone)]
pub struct ControlPlaneOptions {
    /// Where scheduler metrics go (the API server's `/metrics`).
    pub metrics: Option<Arc<SimMetrics>>,
    /// A node whose lease is not renewed for this long becomes `Ready=Unknown` and gets the
    /// `node.kubernetes.io/unreachable` taints. Default 40 s.
    pub node_monitor_grace_period: Duration,
    /// How often node health is evaluated. Default 5 s.
    pub node_monitor_period: Duration,
    /// Maximum concurrent binds of the scheduler. Default 128.
    pub scheduler_parallelism: usize,
    /// Concurrent reconciles per controller. Default 4.
    pub workers: usize,
    /// Maximum concurrent pod creations/deletions per reconcile. Default 32.
    pub burst: usize,
    /// Run the scheduler. Default true.
    pub scheduler: bool,
    /// Run the workload controllers (deployment, replicaset, ...). Default true.
    pub controllers: bool,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            metrics: None,
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            scheduler_parallelism: 128,
            workers: 4,
            burst: 32,
            scheduler: true,
            controllers: true,
        }
    }
}

impl std::fmt::Debug for ControlPlaneOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneOptions")
            .field("node_monitor_grace_period", &self.node_monitor_grace_period)
            .field("scheduler_parallelism", &self.scheduler_parallelism)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// `(namespace, name)`; namespace is empty for cluster-scoped objects.
pub(crate) type Key = (String, String);

/// Shared state of all controllers.
pub(crate) struct Ctx {
    pub client: Client,
    pub opts: ControlPlaneOptions,
    pub pods: PodCache,
    pub deployments: Store<Deployment>,
    pub replicasets: Store<ReplicaSet>,
    pub rcs: Store<ReplicationController>,
    pub statefulsets: Store<StatefulSet>,
    pub daemonsets: Store<DaemonSet>,
    pub jobs: Store<Job>,
    pub services: Store<Service>,
    pub nodes: Store<Node>,
    pub leases: Store<Lease>,
    pub scheduler: Option<Arc<Scheduler>>,
    pub q_deploy: WorkQueue,
    pub q_rs: WorkQueue,
    pub q_rc: WorkQueue,
    pub q_sts: WorkQueue,
    pub q_ds: WorkQueue,
    pub q_job: WorkQueue,
    pub q_ep: WorkQueue,
    pub health: nodelifecycle::Health,
}

/// Errors of one reconcile (requeued with backoff).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    /// An API call failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// Underlying client error.
        #[source]
        source: kube::Error,
    },
}

pub(crate) fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError {
    let action = action.into();
    move |source| ReconcileError::Api { action, source }
}

/// Result of a reconcile: optionally requeue after a delay (e.g. minReadySeconds).
pub(crate) type Reconciled = Result<Option<Duration>, ReconcileError>;

/// Starts the informers, the scheduler and the controllers; the returned tasks end on
/// `shutdown`.
pub fn spawn_control_plane(
    client: Client,
    opts: ControlPlaneOptions,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let scheduler = opts.scheduler.then(|| {
        Scheduler::new(
            client.clone(),
            opts.metrics.clone(),
            opts.scheduler_parallelism,
        )
    });
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        pods: PodCache::default(),
        deployments: Store::default(),
        replicasets: Store::default(),
        rcs: Store::default(),
        statefulsets: Store::default(),
        daemonsets: Store::default(),
        jobs: Store::default(),
        services: Store::default(),
        nodes: Store::default(),
        leases: Store::default(),
        scheduler: scheduler.clone(),
        q_deploy: WorkQueue::default(),
        q_rs: WorkQueue::default(),
        q_rc: WorkQueue::default(),
        q_sts: WorkQueue::default(),
        q_ds: WorkQueue::default(),
        q_job: WorkQueue::default(),
        q_ep: WorkQueue::default(),
        health: nodelifecycle::Health::default(),
        opts,
    });
    let mut tasks = Vec::new();
    if let Some(s) = scheduler {
        tasks.push(tokio::spawn(s.run(shutdown.clone())));
    }
    tasks.extend(cache::spawn_informers(ctx.clone(), shutdown.clone()));
    if ctx.opts.controllers {
        let w = ctx.opts.workers.max(1);
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_deploy,
            w,
            shutdown.clone(),
            deployment::reconcile,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_rs,
            w,
            shutdown.clone(),
            replicaset::reconcile_rs,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_rc,
            w,
            shutdown.clone(),
            replicaset::reconcile_rc,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_sts,
            w,
            shutdown.clone(),
            statefulset::reconcile,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_ds,
            w,
            shutdown.clone(),
            daemonset::reconcile,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_job,
            w,
            shutdown.clone(),
            job::reconcile,
        ));
        tasks.extend(queue::spawn_workers(
            ctx.clone(),
            |c| &c.q_ep,
            w,
            shutdown.clone(),
            endpoints::reconcile,
        ));
        tasks.push(tokio::spawn(nodelifecycle::run(
            ctx.clone(),
            shutdown.clone(),
        )));
    }
    tasks
}

/// Whether the owner object still exists with this uid and is not being deleted (a live read,
/// not the cache: the informer may lag behind a deletion, and pods created for a vanished
/// owner would be orphans).
pub(crate) async fn owner_alive(
    ctx: &Ctx,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<bool, ReconcileError> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, &ar);
    let obj = api
        .get_opt(name)
        .await
        .map_err(api_err(format!("reading {kind} {namespace}/{name}")))?;
    Ok(obj.is_some_and(|o| {
        o.metadata.uid.as_deref() == Some(uid) && o.metadata.deletion_timestamp.is_none()
    }))
}

/// The object an event is about.
pub(crate) struct EventTarget<'a> {
    pub kind: &'a str,
    pub api_version: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

/// Records a core/v1 Event (best effort: failures are logged, not returned).
pub(crate) async fn record_event(
    client: &Client,
    target: EventTarget<'_>,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = if target.namespace.is_empty() {
        "default"
    } else {
        target.namespace
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let nanos = now.0.as_nanosecond() as u64;
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}{:04x}",
                target.name,
                nanos,
                rand::random::<u16>()
            )),
            namespace: Some(ns.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(target.api_version.to_string()),
            kind: Some(target.kind.to_string()),
            name: Some(target.name.to_string()),
            namespace: (!target.namespace.is_empty()).then(|| target.namespace.to_string()),
            uid: Some(target.uid.to_string()),
            ..Default::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(type_.to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        reporting_instance: Some(format!("{component}-cl2")),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(reason, error = %e, "recording event failed");
    }
}

/// Alphabet the API server and controllers use for random name suffixes (no vowels).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random `n`-char suffix from the safe alphabet.
pub(crate) fn random_suffix(n: usize) -> String {
    (0..n)
        .map(|_| SAFE_ALPHABET[rand::random_range(0..SAFE_ALPHABET.len())] as char)
        .collect()
}

/// Encodes a number the way controllers encode template hashes (each decimal digit mapped into
/// the safe alphabet).
pub(crate) fn safe_encode(n: u32) -> String {
    n.to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[(b as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// FNV-1a 32-bit hash.
pub(crate) fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Hash of a pod template (plus collision count), as used for `pod-template-hash` /
/// `controller-revision-hash`.
pub(crate) fn template_hash(template: &PodTemplateSpec, collision: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision.filter(|c| *c > 0) {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(fnv32a(&bytes))
}

/// Name for a generated object: `<base>` truncated to 58 chars plus 5 random chars.
pub(crate) fn generated_name(prefix: &str) -> String {
    let cut = prefix
        .char_indices()
        .nth(58)
        .map(|(i, _)| i)
        .unwrap_or(prefix.len());
    format!("{}{}", &prefix[..cut], random_suffix(5))
}

/// A controller owner reference.
pub(crate) fn controller_ref(
    api_version: &str,
    kind: &str,
    name: &str,
    uid: &str,
) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller owner reference of an object, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

/// `(namespace, name)` of an object.
pub(crate) fn key_of(meta: &ObjectMeta) -> Option<Key> {
    Some((
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone()?,
    ))
}

/// Builds a pod from a template for a controller.
pub(crate) fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    name: String,
    generate_name: Option<String>,
    owner: OwnerReference,
    extra_labels: &[(&str, String)],
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), v.clone());
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            generate_name,
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Sets `lastTransitionTime`/`lastUpdateTime` of freshly computed conditions, keeping the old
/// times when a condition's status did not change. Conditions are `serde_json` objects with
/// `type`/`status`/`reason`/`message`.
pub(crate) fn merge_condition_times(
    new: &mut [serde_json::Value],
    old: Option<&serde_json::Value>,
    with_update_time: bool,
) {
    let now = serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).unwrap_or_default();
    let old = old.and_then(|o| o.as_array());
    for c in new.iter_mut() {
        let prev = old.and_then(|o| o.iter().find(|p| p.get("type") == c.get("type")));
        let same_status = prev.is_some_and(|p| p.get("status") == c.get("status"));
        let same_all = same_status
            && prev.is_some_and(|p| {
                p.get("reason") == c.get("reason") && p.get("message") == c.get("message")
            });
        c["lastTransitionTime"] = if same_status {
            prev.and_then(|p| p.get("lastTransitionTime").cloned())
                .unwrap_or(now.clone())
        } else {
            now.clone()
        };
        if with_update_time {
            c["lastUpdateTime"] = if same_all {
                prev.and_then(|p| p.get("lastUpdateTime").cloned())
                    .unwrap_or(now.clone())
            } else {
                now.clone()
            };
        }
    }
}

/// Writes `status` to the status subresource of `name` when it differs from `old` (see
/// [`status_changed`]). An object deleted meanwhile is not an error.
pub(crate) async fn write_status<K>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
    old: &serde_json::Value,
    action: impl FnOnce() -> String,
) -> Result<(), ReconcileError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if !status_changed(&status, old) {
        return Ok(());
    }
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    match api
        .patch_status(name, &PatchParams::default(), &patch)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::kubelet::api_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(api_err(action())(e)),
    }
}

/// Creates `pods` in `namespace` (at most `burst` at once), writing each created pod through
/// to the pod cache; the first failure is kept in `first_err` as `action: error`.
pub(crate) async fn create_pods(
    ctx: &Ctx,
    namespace: &str,
    pods: impl IntoIterator<Item = Pod>,
    action: &str,
    first_err: &mut Option<ReconcileError>,
) {
    use futures::StreamExt;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let results: Vec<Result<Pod, kube::Error>> = futures::stream::iter(pods)
        .map(|pod| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod).await }
        })
        .buffer_unordered(ctx.opts.burst.max(1))
        .collect()
        .await;
    for r in results {
        match r {
            Ok(p) => {
                if let Some(info) = cache::PodInfo::from_pod(&p) {
                    ctx.pods.apply(namespace, info);
                }
            }
            Err(e) => {
                first_err.get_or_insert_with(|| api_err(action)(e));
            }
        }
    }
}

/// Whether the freshly computed `new` status differs from `old` in any field it sets
/// (conditions compared on type/status/reason/message only).
pub(crate) fn status_changed(new: &serde_json::Value, old: &serde_json::Value) -> bool {
    let Some(obj) = new.as_object() else {
        return true;
    };
    obj.iter().any(|(k, v)| {
        let o = old.get(k);
        if k == "conditions" {
            let strip = |x: Option<&serde_json::Value>| -> Vec<(String, String, String, String)> {
                let mut v: Vec<_> = x
                    .and_then(|x| x.as_array())
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                let f = |n: &str| {
                                    c.get(n).and_then(|s| s.as_str()).unwrap_or("").to_string()
                                };
                                (f("type"), f("status"), f("reason"), f("message"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            };
            return strip(Some(v)) != strip(o);
        }
        match (v, o) {
            (serde_json::Value::Number(a), None) => a.as_i64() != Some(0),
            (serde_json::Value::Null, None) => false,
            (v, Some(o)) => v != o,
            (_, None) => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_hashes() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        let long = "x".repeat(80);
        assert_eq!(generated_name(&long).len(), 63);
        assert!(generated_name("web-").starts_with("web-"));
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        let t = PodTemplateSpec::default();
        assert_eq!(template_hash(&t, None), template_hash(&t, None));
        assert_ne!(template_hash(&t, None), template_hash(&t, Some(1)));
        assert_eq!(template_hash(&t, None), template_hash(&t, Some(0)));
        assert!(
            template_hash(&t, None)
                .bytes()
                .all(|b| SAFE_ALPHABET.contains(&b))
        );
    }

    #[test]
    fn status_diff_ignores_times() {
        let old = json!({"replicas": 3, "conditions": [
            {"type": "Available", "status": "True", "reason": "R", "message": "m", "lastUpdateTime": "x"}
        ]});
        let same = json!({"replicas": 3, "conditions": [
            {"type": "Available", "status": "True", "reason": "R", "message": "m", "lastUpdateTime": "y"}
        ]});
        assert!(!status_changed(&same, &old));
        assert!(status_changed(&json!({"replicas": 4}), &old));
        assert!(!status_changed(&json!({"readyReplicas": 0}), &old));
        assert!(status_changed(&json!({"readyReplicas": 1}), &old));
        let mut conds =
            vec![json!({"type": "Available", "status": "True", "reason": "R", "message": "m"})];
        merge_condition_times(&mut conds, old.get("conditions"), true);
        assert_eq!(conds[0]["lastUpdateTime"], "x");
    }
}
