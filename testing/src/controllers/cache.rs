//! Informers of the control plane: one watch per kind feeding in-memory caches, and the event
//! handlers that turn changes into work-queue keys (and feed the scheduler).
//!
//! Typed objects are kept for the low-cardinality kinds ([`Store`]); pods are reduced to a
//! compact [`PodInfo`] in the [`PodCache`], indexed by controller owner uid and namespace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, ReplicationController, Service};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Ctx, Key, controller_of, key_of};

/// A cache of typed objects keyed by `(namespace, name)`.
pub(crate) struct Store<K> {
    map: RwLock<HashMap<Key, Arc<K>>>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<K> Store<K> {
    /// The object at `key`.
    pub fn get(&self, key: &Key) -> Option<Arc<K>> {
        self.map.read().get(key).cloned()
    }

    /// All objects.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.map.read().values().cloned().collect()
    }

    /// Objects passing `f`.
    pub fn filter(&self, f: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.map.read().values().filter(|o| f(o)).cloned().collect()
    }

    fn insert(&self, key: Key, obj: Arc<K>) -> Option<Arc<K>> {
        self.map.write().insert(key, obj)
    }

    fn remove(&self, key: &Key) -> Option<Arc<K>> {
        self.map.write().remove(key)
    }

    fn keys(&self) -> Vec<Key> {
        self.map.read().keys().cloned().collect()
    }
}

/// Pod phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Pending,
    Unknown,
    Running,
    Succeeded,
    Failed,
}

/// What controllers need to know about a pod.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PodInfo {
    pub name: String,
    pub uid: String,
    pub rv: u64,
    /// Controller owner `(kind, name, uid)`.
    pub owner: Option<(String, String, String)>,
    pub labels: BTreeMap<String, String>,
    pub node: Option<String>,
    /// For unscheduled daemon pods: the node their affinity pins them to.
    pub target_node: Option<String>,
    pub phase: Phase,
    pub ready: bool,
    pub ready_since: Option<Timestamp>,
    pub terminating: bool,
    pub ip: Option<String>,
    pub created: Option<Timestamp>,
    /// Named container ports `(name, port, protocol)`.
    pub named_ports: Vec<(String, i32, String)>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
}

impl PodInfo {
    /// Reduces a pod.
    pub fn from_pod(p: &Pod) -> Option<Self> {
        let meta = &p.metadata;
        let status = p.status.as_ref();
        let spec = p.spec.as_ref();
        let phase = match status.and_then(|s| s.phase.as_deref()) {
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            Some("Unknown") => Phase::Unknown,
            _ => Phase::Pending,
        };
        let ready_cond = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
        let ready = ready_cond.is_some_and(|c| c.status == "True");
        let owner = controller_of(meta).map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()));
        let target_node = if owner.as_ref().is_some_and(|o| o.0 == "DaemonSet") {
            spec.and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|na| {
                    na.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .and_then(|ns| {
                    ns.node_selector_terms.iter().find_map(|t| {
                        t.match_fields.iter().flatten().find_map(|f| {
                            (f.key == "metadata.name" && f.operator == "In")
                                .then(|| f.values.as_ref().and_then(|v| v.first().cloned()))
                                .flatten()
                        })
                    })
                })
        } else {
            None
        };
        let named_ports = spec
            .map(|s| {
                s.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| {
                        Some((
                            p.name.clone()?,
                            p.container_port,
                            p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(PodInfo {
            name: meta.name.clone()?,
            uid: meta.uid.clone().unwrap_or_default(),
            rv: meta
                .resource_version
                .as_deref()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            owner,
            labels: meta.labels.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone()),
            target_node,
            phase,
            ready,
            ready_since: if ready {
                ready_cond.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
            } else {
                None
            },
            terminating: meta.deletion_timestamp.is_some(),
            ip: status.and_then(|s| s.pod_ip.clone()),
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
            named_ports,
            hostname: spec.and_then(|s| s.hostname.clone()),
            subdomain: spec.and_then(|s| s.subdomain.clone()),
        })
    }

    /// Not terminating and not in a terminal phase.
    pub fn active(&self) -> bool {
        !self.terminating && !matches!(self.phase, Phase::Succeeded | Phase::Failed)
    }

    /// Ready for at least `min_ready_seconds` at `now`.
    pub fn available(&self, min_ready_seconds: i32, now: Timestamp) -> bool {
        if !self.ready {
            return false;
        }
        if min_ready_seconds <= 0 {
            return true;
        }
        self.ready_since
            .is_some_and(|t| t.as_second() + i64::from(min_ready_seconds) <= now.as_second())
    }
}

#[derive(Default)]
struct PodCacheInner {
    /// Pods by namespace, then name (namespace listing needs no extra index).
    pods: HashMap<String, HashMap<String, Arc<PodInfo>>>,
    by_owner: HashMap<String, HashSet<Key>>,
}

impl PodCacheInner {
    fn get(&self, key: &Key) -> Option<&Arc<PodInfo>> {
        self.pods.get(&key.0)?.get(&key.1)
    }

    fn unindex_owner(&mut self, key: &Key, p: &PodInfo) {
        if let Some(o) = &p.owner
            && let Some(set) = self.by_owner.get_mut(&o.2)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_owner.remove(&o.2);
            }
        }
    }
}

/// Compact cache of all pods.
#[derive(Default)]
pub(crate) struct PodCache {
    inner: RwLock<PodCacheInner>,
}

impl PodCache {
    /// Inserts or updates a pod unless the cached version is newer. Returns the previous
    /// entry and whether the cache changed.
    pub fn apply(&self, ns: &str, info: PodInfo) -> (Option<Arc<PodInfo>>, bool) {
        let key = (ns.to_string(), info.name.clone());
        let mut g = self.inner.write();
        let prev = g.get(&key).cloned();
        if let Some(p) = &prev {
            if p.uid == info.uid && p.rv > info.rv {
                return (prev, false);
            }
            g.unindex_owner(&key, p);
        }
        if let Some(o) = &info.owner {
            g.by_owner
                .entry(o.2.clone())
                .or_default()
                .insert(key.clone());
        }
        let (ns, name) = key;
        g.pods.entry(ns).or_default().insert(name, Arc::new(info));
        (prev, true)
    }

    /// Removes a pod (only if `uid` matches, when given).
    pub fn remove(&self, key: &Key, uid: Option<&str>) -> Option<Arc<PodInfo>> {
        let mut g = self.inner.write();
        if let (Some(p), Some(uid)) = (g.get(key), uid)
            && p.uid != uid
        {
            return None;
        }
        let names = g.pods.get_mut(&key.0)?;
        let p = names.remove(&key.1)?;
        if names.is_empty() {
            g.pods.remove(&key.0);
        }
        g.unindex_owner(key, &p);
        Some(p)
    }

    /// Marks a pod terminating (after the controller asked to delete it).
    pub fn mark_terminating(&self, key: &Key) {
        let mut g = self.inner.write();
        if let Some(p) = g.pods.get_mut(&key.0).and_then(|m| m.get_mut(&key.1)) {
            let mut np = (**p).clone();
            np.terminating = true;
            *p = Arc::new(np);
        }
    }

    /// The pod at `key`.
    pub fn get(&self, key: &Key) -> Option<Arc<PodInfo>> {
        self.inner.read().get(key).cloned()
    }

    /// Pods whose controller owner has `uid`.
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<PodInfo>> {
        let g = self.inner.read();
        g.by_owner
            .get(uid)
            .map(|keys| keys.iter().filter_map(|k| g.get(k).cloned()).collect())
            .unwrap_or_default()
    }

    /// Pods of a namespace passing `f`.
    pub fn in_namespace(&self, ns: &str, f: impl Fn(&PodInfo) -> bool) -> Vec<Arc<PodInfo>> {
        self.inner
            .read()
            .pods
            .get(ns)
            .map(|pods| pods.values().filter(|p| f(p)).cloned().collect())
            .unwrap_or_default()
    }

    /// Number of cached pods.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.read().pods.values().map(HashMap::len).sum()
    }

    fn keys(&self) -> Vec<Key> {
        let g = self.inner.read();
        g.pods
            .iter()
            .flat_map(|(ns, names)| names.keys().map(|n| (ns.clone(), n.clone())))
            .collect()
    }
}

/// Watch configuration of every informer: the initial state is streamed through the watch
/// itself (`sendInitialEvents`), an atomic snapshot, rather than listed page by page — a
/// paginated relist taken during heavy churn can miss updates to already-listed objects.
fn informer_config() -> watcher::Config {
    watcher::Config::default().streaming_lists()
}

/// Runs a watch for `K`, keeping `store` in sync and calling `on_change(ctx, key, old, new)`
/// for every change (`new` is None on deletion).
async fn run_store_informer<K>(
    ctx: Arc<Ctx>,
    api: Api<K>,
    cfg: watcher::Config,
    store: fn(&Ctx) -> &Store<K>,
    on_change: fn(&Arc<Ctx>, &Key, Option<&K>, Option<&K>),
    shutdown: CancellationToken,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut relist: Option<HashSet<Key>> = None;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = shutdown.cancelled() => return,
        };
        let ev = match ev {
            None => return,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "control-plane watch error");
                continue;
            }
            Some(Ok(ev)) => ev,
        };
        match ev {
            Event::Init => relist = Some(HashSet::new()),
            Event::InitApply(obj) | Event::Apply(obj) => {
                let Some(key) = key_of(obj.meta()) else {
                    continue;
                };
                if let Some(seen) = relist.as_mut() {
                    seen.insert(key.clone());
                }
                let obj = Arc::new(obj);
                let old = store(&ctx).insert(key.clone(), obj.clone());
                on_change(&ctx, &key, old.as_deref(), Some(&obj));
            }
            Event::Delete(obj) => {
                let Some(key) = key_of(obj.meta()) else {
                    continue;
                };
                let old = store(&ctx).remove(&key);
                on_change(&ctx, &key, old.as_deref().or(Some(&obj)), None);
            }
            Event::InitDone => {
                if let Some(seen) = relist.take() {
                    for key in store(&ctx).keys() {
                        if !seen.contains(&key)
                            && let Some(old) = store(&ctx).remove(&key)
                        {
                            on_change(&ctx, &key, Some(&old), None);
                        }
                    }
                }
            }
        }
    }
}

/// Runs the pod watch: compact cache + scheduler + owner/endpoint queues.
async fn run_pod_informer(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let mut stream = watcher::watcher(api, informer_config())
        .default_backoff()
        .boxed();
    let mut relist: Option<HashSet<Key>> = None;
    loop {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = shutdown.cancelled() => return,
        };
        let ev = match ev {
            None => return,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "control-plane pod watch error");
                continue;
            }
            Some(Ok(ev)) => ev,
        };
        match ev {
            Event::Init => relist = Some(HashSet::new()),
            Event::InitApply(pod) | Event::Apply(pod) => {
                let Some(key) = key_of(&pod.metadata) else {
                    continue;
                };
                if let Some(seen) = relist.as_mut() {
                    seen.insert(key.clone());
                }
                if let Some(s) = &ctx.scheduler {
                    s.on_pod(&pod);
                }
                if let Some(info) = PodInfo::from_pod(&pod) {
                    let (old, changed) = ctx.pods.apply(&key.0, info);
                    if changed {
                        let new = ctx.pods.get(&key);
                        pod_changed(&ctx, &key, old.as_deref(), new.as_deref());
                    }
                }
            }
            Event::Delete(pod) => {
                let Some(key) = key_of(&pod.metadata) else {
                    continue;
                };
                if let Some(s) = &ctx.scheduler {
                    s.on_pod_deleted(&pod);
                }
                let old = ctx
                    .pods
                    .remove(&key, pod.metadata.uid.as_deref())
                    .or_else(|| PodInfo::from_pod(&pod).map(Arc::new));
                pod_changed(&ctx, &key, old.as_deref(), None);
            }
            Event::InitDone => {
                if let Some(seen) = relist.take() {
                    for key in ctx.pods.keys() {
                        if !seen.contains(&key)
                            && let Some(old) = ctx.pods.remove(&key, None)
                        {
                            if let Some(s) = &ctx.scheduler {
                                s.on_pod_gone(&key, Some(&old.uid));
                            }
                            pod_changed(&ctx, &key, Some(&old), None);
                        }
                    }
                }
            }
        }
    }
}

fn enqueue_owner(ctx: &Ctx, ns: &str, owner: &(String, String, String)) {
    let key = (ns.to_string(), owner.1.clone());
    match owner.0.as_str() {
        "ReplicaSet" => ctx.q_rs.add(key),
        "ReplicationController" => ctx.q_rc.add(key),
        "StatefulSet" => ctx.q_sts.add(key),
        "DaemonSet" => ctx.q_ds.add(key),
        "Job" => ctx.q_job.add(key),
        _ => {}
    }
}

fn pod_changed(ctx: &Arc<Ctx>, key: &Key, old: Option<&PodInfo>, new: Option<&PodInfo>) {
    let owner_relevant = match (old, new) {
        (Some(o), Some(n)) => {
            o.phase != n.phase
                || o.ready != n.ready
                || o.terminating != n.terminating
                || o.node != n.node
                || o.owner != n.owner
                || o.labels != n.labels
        }
        _ => true,
    };
    if owner_relevant {
        for p in [old, new].into_iter().flatten() {
            if let Some(o) = &p.owner {
                enqueue_owner(ctx, &key.0, o);
            }
        }
    }
    let ep_relevant = match (old, new) {
        (Some(o), Some(n)) => {
            o.ready != n.ready
                || o.ip != n.ip
                || o.labels != n.labels
                || o.terminating != n.terminating
                || o.phase != n.phase
                || o.node != n.node
        }
        _ => true,
    };
    if ep_relevant {
        let services = ctx.services.filter(|s| {
            s.metadata.namespace.as_deref() == Some(key.0.as_str())
                && s.spec
                    .as_ref()
                    .and_then(|sp| sp.selector.as_ref())
                    .is_some_and(|sel| {
                        !sel.is_empty()
                            && [old, new]
                                .into_iter()
                                .flatten()
                                .any(|p| sel.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
                    })
        });
        for s in services {
            if let Some(k) = key_of(&s.metadata) {
                ctx.q_ep.add(k);
            }
        }
    }
}

fn rs_changed(ctx: &Arc<Ctx>, key: &Key, old: Option<&ReplicaSet>, new: Option<&ReplicaSet>) {
    ctx.q_rs.add(key.clone());
    for rs in [old, new].into_iter().flatten() {
        if let Some(o) = controller_of(&rs.metadata)
            && o.kind == "Deployment"
        {
            ctx.q_deploy.add((key.0.clone(), o.name.clone()));
        }
    }
}

fn node_changed(ctx: &Arc<Ctx>, key: &Key, old: Option<&Node>, new: Option<&Node>) {
    if let Some(s) = &ctx.scheduler {
        match new {
            Some(n) => s.on_node(n),
            None => s.on_node_deleted(&key.1),
        }
    }
    ctx.health.node_seen(&key.1, new.is_some());
    let ds_relevant = match (old, new) {
        (Some(o), Some(n)) => {
            o.metadata.labels != n.metadata.labels
                || o.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
                    != n.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
        }
        _ => true,
    };
    if ds_relevant {
        for ds in ctx.daemonsets.list() {
            if let Some(k) = key_of(&ds.metadata) {
                ctx.q_ds.add(k);
            }
        }
    }
}

fn lease_changed(ctx: &Arc<Ctx>, key: &Key, old: Option<&Lease>, new: Option<&Lease>) {
    let renew = |l: Option<&Lease>| {
        l.and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.clone())
    };
    if let Some(n) = new
        && (old.is_none() || renew(old) != renew(Some(n)))
    {
        ctx.health.renewed(&key.1);
    }
}

/// Starts every informer.
pub(crate) fn spawn_informers(ctx: Arc<Ctx>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
    let c = &ctx.client;
    let cfg = informer_config;
    let mut t = vec![
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<Node>::all(c.clone()),
            cfg(),
            |c| &c.nodes,
            node_changed,
            shutdown.clone(),
        )),
        tokio::spawn(run_pod_informer(ctx.clone(), shutdown.clone())),
    ];
    if !ctx.opts.controllers {
        return t;
    }
    t.extend([
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<Deployment>::all(c.clone()),
            cfg(),
            |c| &c.deployments,
            |ctx, k, _, _| ctx.q_deploy.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<ReplicaSet>::all(c.clone()),
            cfg(),
            |c| &c.replicasets,
            rs_changed,
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<ReplicationController>::all(c.clone()),
            cfg(),
            |c| &c.rcs,
            |ctx, k, _, _| ctx.q_rc.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<StatefulSet>::all(c.clone()),
            cfg(),
            |c| &c.statefulsets,
            |ctx, k, _, _| ctx.q_sts.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<DaemonSet>::all(c.clone()),
            cfg(),
            |c| &c.daemonsets,
            |ctx, k, _, _| ctx.q_ds.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<Job>::all(c.clone()),
            cfg(),
            |c| &c.jobs,
            |ctx, k, _, _| ctx.q_job.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<Service>::all(c.clone()),
            cfg(),
            |c| &c.services,
            |ctx, k, _, _| ctx.q_ep.add(k.clone()),
            shutdown.clone(),
        )),
        tokio::spawn(run_store_informer(
            ctx.clone(),
            Api::<Lease>::namespaced(c.clone(), crate::kubelet::NODE_LEASE_NAMESPACE),
            cfg(),
            |c| &c.leases,
            lease_changed,
            shutdown.clone(),
        )),
    ]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, owner_uid: &str, rv: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "resourceVersion": rv, "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "rs", "uid": owner_uid, "controller": true}]
            },
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": "10.128.0.5",
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    #[test]
    fn pod_cache_indexes_and_orders_by_rv() {
        let c = PodCache::default();
        let p = PodInfo::from_pod(&pod("a", "o1", "10", true)).unwrap();
        assert_eq!(p.named_ports, vec![("http".into(), 8080, "TCP".into())]);
        assert!(p.ready && p.active());
        assert!(c.apply("ns", p).1);
        // Older version is ignored.
        let old = PodInfo::from_pod(&pod("a", "o1", "5", false)).unwrap();
        assert!(!c.apply("ns", old).1);
        assert!(c.owned_by("o1")[0].ready);
        // Owner change moves the index entry.
        let moved = PodInfo::from_pod(&pod("a", "o2", "11", true)).unwrap();
        assert!(c.apply("ns", moved).1);
        assert!(c.owned_by("o1").is_empty());
        assert_eq!(c.owned_by("o2").len(), 1);
        assert_eq!(c.in_namespace("ns", |p| p.ready).len(), 1);
        c.mark_terminating(&("ns".into(), "a".into()));
        assert!(!c.owned_by("o2")[0].active());
        assert!(
            c.remove(&("ns".into(), "a".into()), Some("other"))
                .is_none()
        );
        assert!(
            c.remove(&("ns".into(), "a".into()), Some("uid-a"))
                .is_some()
        );
        assert_eq!(c.len(), 0);
        assert!(c.in_namespace("ns", |_| true).is_empty());
    }
}
