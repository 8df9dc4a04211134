//! The simulated cluster's scheduler: binds pending pods via the `binding` subresource.
//!
//! Pods reach it from the control plane's single pod watch ([`Scheduler::on_pod`]), nodes from
//! the node watch. Node usage (requests of pods bound to each node) is tracked in memory:
//! pods are *assumed* on their node as soon as the scheduler decides, and released when they
//! are deleted or reach a terminal phase. Filtering follows the default scheduler's plugin
//! order — NodeUnschedulable, TaintToleration (including not-ready nodes), NodeAffinity
//! (nodeSelector + required node affinity), NodeResourcesFit (cpu, memory, ephemeral storage,
//! pod count, extended resources) — and, like the real one, stops after finding enough
//! feasible nodes (`percentageOfNodesToScore` adaptive rule), scoring them least-allocated.
//! Pods that fit nowhere get `PodScheduled=False/Unschedulable` with the real message shape
//! (`0/50 nodes are available: 50 Insufficient cpu. ...`) and are retried when nodes or pods
//! change. Binds run concurrently (bounded).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::metrics::SimMetrics;

/// Name of the scheduler profile this scheduler serves.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Parses a Kubernetes quantity (`100m`, `2Gi`, `1.5`, `1e3`, `500M`) into thousandths of the
/// base unit. `None` on malformed input or overflow.
pub fn parse_quantity_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            10f64.powi(exp)
        }
        _ => return None,
    };
    let milli = (value * mult * 1000.0).ceil();
    if !milli.is_finite() || milli.abs() > 9.0e18 {
        return None;
    }
    Some(milli as i64)
}

/// Resource amounts, in milli-units (cpu in millicores, memory in milli-bytes, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU, millicores.
    pub cpu: i64,
    /// Memory, milli-bytes.
    pub memory: i64,
    /// Ephemeral storage, milli-bytes.
    pub ephemeral: i64,
    /// Pod count (x1000).
    pub pods: i64,
    /// Extended resources (e.g. `nvidia.com/gpu`), milli-units, sorted by name.
    pub extended: Vec<(String, i64)>,
}

impl Resources {
    fn slot(&mut self, name: &str) -> &mut i64 {
        match name {
            "cpu" => &mut self.cpu,
            "memory" => &mut self.memory,
            "ephemeral-storage" => &mut self.ephemeral,
            "pods" => &mut self.pods,
            _ => {
                let pos = match self
                    .extended
                    .binary_search_by(|(k, _)| k.as_str().cmp(name))
                {
                    Ok(p) => p,
                    Err(p) => {
                        self.extended.insert(p, (name.to_string(), 0));
                        p
                    }
                };
                &mut self.extended[pos].1
            }
        }
    }

    fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral,
            "pods" => self.pods,
            _ => self
                .extended
                .binary_search_by(|(k, _)| k.as_str().cmp(name))
                .map(|p| self.extended[p].1)
                .unwrap_or(0),
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        self.cpu += other.cpu;
        self.memory += other.memory;
        self.ephemeral += other.ephemeral;
        self.pods += other.pods;
        for (k, v) in &other.extended {
            *self.slot(k) += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resources) {
        self.cpu -= other.cpu;
        self.memory -= other.memory;
        self.ephemeral -= other.ephemeral;
        self.pods -= other.pods;
        for (k, v) in &other.extended {
            *self.slot(k) -= v;
        }
    }

    fn max_with(&mut self, other: &Resources) {
        self.cpu = self.cpu.max(other.cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral = self.ephemeral.max(other.ephemeral);
        for (k, v) in &other.extended {
            let s = self.slot(k);
            *s = (*s).max(*v);
        }
    }

    /// Builds resources from a `resources.requests`-like map; malformed quantities count 0.
    pub fn from_map(
        map: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    ) -> Self {
        let mut r = Resources::default();
        for (k, v) in map {
            *r.slot(k) += parse_quantity_milli(&v.0).unwrap_or(0);
        }
        r
    }
}

/// The effective requests of a pod: sum over containers (limits stand in for missing
/// requests), at least the largest init container, plus overhead, and one pod.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    fn container(c: &k8s_openapi::api::core::v1::Container) -> Resources {
        let Some(res) = c.resources.as_ref() else {
            return Resources::default();
        };
        let mut merged = res.limits.clone().unwrap_or_default();
        if let Some(req) = &res.requests {
            merged.extend(req.clone());
        }
        Resources::from_map(&merged)
    }
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&container(c));
    }
    for c in spec.init_containers.iter().flatten() {
        total.max_with(&container(c));
    }
    if let Some(o) = &spec.overhead {
        total.add(&Resources::from_map(o));
    }
    total.pods = 1000;
    total
}

/// Whether `tol` tolerates `taint`.
pub fn tolerates(tol: &Toleration, taint_key: &str, taint_value: &str, effect: &str) -> bool {
    if let Some(e) = tol.effect.as_deref()
        && !e.is_empty()
        && e != effect
    {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    let op = tol.operator.as_deref().unwrap_or("Equal");
    if key.is_empty() {
        return op == "Exists";
    }
    if key != taint_key {
        return false;
    }
    match op {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint_value,
        _ => false,
    }
}

/// Whether a node's labels and name satisfy one node selector requirement set.
fn requirement_matches<'a>(
    req: &NodeSelectorRequirement,
    get: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    let actual = get(&req.key);
    let values = req.values.as_deref().unwrap_or(&[]);
    let listed = |a: &str| values.iter().any(|v| v == a);
    match req.operator.as_str() {
        "In" => actual.is_some_and(listed),
        "NotIn" => actual.is_none_or(|a| !listed(a)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        "Gt" | "Lt" => {
            let (Some(a), Some(v)) = (
                actual.and_then(|a| a.parse::<i64>().ok()),
                values.first().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" { a > v } else { a < v }
        }
        _ => false,
    }
}

/// Whether a node matches a required node affinity term (expressions on labels AND fields).
pub fn term_matches(
    term: &NodeSelectorTerm,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, |k| labels.get(k).map(String::as_str)))
        && fields
            .iter()
            .all(|r| requirement_matches(r, |k| (k == "metadata.name").then_some(name)))
}

/// The scheduling-relevant parts of a pending pod.
#[derive(Clone, Debug)]
pub struct SchedPod {
    /// `(namespace, name)`.
    pub key: (String, String),
    /// Pod uid.
    pub uid: String,
    /// Effective requests.
    pub requests: Resources,
    /// `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `spec.tolerations`.
    pub tolerations: Vec<Toleration>,
    /// Required node affinity terms (ORed), if any.
    pub affinity: Option<Vec<NodeSelectorTerm>>,
    first_seen: Instant,
    attempts: u32,
    last_message: Option<String>,
    /// Not retried before this instant (per-pod backoff: 1 s doubling to 10 s).
    retry_at: Instant,
}

impl SchedPod {
    /// Extracts the scheduling-relevant parts of `pod` (None without name/namespace/spec).
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let spec = pod.spec.as_ref()?;
        let affinity = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| ns.node_selector_terms.clone());
        Some(SchedPod {
            key: (pod.metadata.namespace.clone()?, pod.metadata.name.clone()?),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests: pod_requests(spec),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            affinity,
            first_seen: Instant::now(),
            attempts: 0,
            last_message: None,
            retry_at: Instant::now(),
        })
    }
}

/// A node as the scheduler sees it.
#[derive(Clone, Debug, Default)]
pub struct SchedNode {
    /// Node name.
    pub name: String,
    /// Allocatable resources.
    pub alloc: Resources,
    /// Requests of pods bound or assumed on the node.
    pub used: Resources,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// Ready condition is True.
    pub ready: bool,
}

impl SchedNode {
    /// Builds the scheduler's view of `node` (usage starts empty).
    pub fn from_node(node: &Node) -> Option<Self> {
        let name = node.metadata.name.clone()?;
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let alloc = status
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(Resources::from_map)
            .unwrap_or_default();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        Some(SchedNode {
            name,
            alloc,
            used: Resources::default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            ready,
        })
    }
}

/// Why a node was filtered out (the real scheduler's reason strings).
pub fn filter(node: &SchedNode, pod: &SchedPod) -> Result<(), Vec<String>> {
    let tolerated = |key: &str, value: &str, effect: &str| {
        pod.tolerations
            .iter()
            .any(|t| tolerates(t, key, value, effect))
    };
    if node.unschedulable && !tolerated("node.kubernetes.io/unschedulable", "", "NoSchedule") {
        return Err(vec!["node(s) were unschedulable".to_string()]);
    }
    for t in &node.taints {
        if t.effect == "PreferNoSchedule" {
            continue;
        }
        let value = t.value.as_deref().unwrap_or("");
        if !tolerated(&t.key, value, &t.effect) {
            return Err(vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, value
            )]);
        }
    }
    if !node.ready
        && !node
            .taints
            .iter()
            .any(|t| t.key.starts_with("node.kubernetes.io/"))
        && !tolerated("node.kubernetes.io/not-ready", "", "NoSchedule")
    {
        return Err(vec![
            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }".to_string(),
        ]);
    }
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let affinity_ok = pod.affinity.as_ref().is_none_or(|terms| {
        terms
            .iter()
            .any(|t| term_matches(t, &node.name, &node.labels))
    });
    if !selector_ok || !affinity_ok {
        return Err(vec![
            "node(s) didn't match Pod's node affinity/selector".to_string(),
        ]);
    }
    let mut reasons = Vec::new();
    let r = &pod.requests;
    if node.used.pods + r.pods > node.alloc.pods {
        reasons.push("Too many pods".to_string());
    }
    let check = |name: &str, want: i64, reasons: &mut Vec<String>| {
        if want > 0 && node.used.get(name) + want > node.alloc.get(name) {
            reasons.push(format!("Insufficient {name}"));
        }
    };
    check("cpu", r.cpu, &mut reasons);
    check("memory", r.memory, &mut reasons);
    check("ephemeral-storage", r.ephemeral, &mut reasons);
    for (k, v) in &r.extended {
        check(k, *v, &mut reasons);
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Least-allocated score (0..=100) of placing `pod` on `node`.
pub fn score(node: &SchedNode, pod: &SchedPod) -> i64 {
    let frac = |alloc: i64, used: i64, req: i64| {
        if alloc <= 0 {
            return 0;
        }
        ((alloc - used - req).max(0) * 100) / alloc
    };
    (frac(node.alloc.cpu, node.used.cpu, pod.requests.cpu)
        + frac(node.alloc.memory, node.used.memory, pod.requests.memory))
        / 2
}

/// How many feasible nodes to find before scoring (the default scheduler's adaptive rule).
pub fn nodes_to_find(total: usize) -> usize {
    if total < 100 {
        return total;
    }
    let pct = (50 - (total as i64) / 125).max(5) as usize;
    (total * pct / 100).max(100).min(total)
}

/// The real scheduler's "0/N nodes are available: ..." message.
pub fn unschedulable_message(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} \
         Preemption is not helpful for scheduling.",
        parts.join(", ")
    )
}

/// Outcome of one scheduling decision.
enum Decision {
    Bind(String),
    Unschedulable(String),
}

#[derive(Default)]
struct State {
    nodes: Vec<SchedNode>,
    index: HashMap<String, usize>,
    /// Usage of pods on nodes the scheduler does not know (yet).
    orphan_usage: HashMap<String, Resources>,
    /// Pods counted on a node: key → (uid, node, requests).
    placed: HashMap<(String, String), (String, String, Resources)>,
    active: VecDeque<SchedPod>,
    unschedulable: HashMap<(String, String), SchedPod>,
    /// Keys queued in `active`, being bound, or unschedulable, with their uid.
    queued: HashMap<(String, String), String>,
    cluster_changed: bool,
    next_start: usize,
}

impl State {
    fn usage_of(&mut self, node: &str) -> &mut Resources {
        match self.index.get(node) {
            Some(&i) => &mut self.nodes[i].used,
            None => self.orphan_usage.entry(node.to_string()).or_default(),
        }
    }

    fn place(&mut self, key: (String, String), uid: String, node: String, req: Resources) {
        if let Some((old_uid, old_node, old_req)) = self.placed.get(&key) {
            if *old_uid == uid && *old_node == node {
                return;
            }
            let (old_node, old_req) = (old_node.clone(), old_req.clone());
            self.usage_of(&old_node).sub(&old_req);
        }
        self.usage_of(&node).add(&req);
        self.placed.insert(key, (uid, node, req));
    }

    fn release(&mut self, key: &(String, String), uid: Option<&str>) {
        let matches = self
            .placed
            .get(key)
            .is_some_and(|(u, _, _)| uid.is_none_or(|uid| uid == u));
        if matches && let Some((_, node, req)) = self.placed.remove(key) {
            self.usage_of(&node).sub(&req);
            self.cluster_changed = true;
        }
    }

    fn decide(&mut self, pod: &SchedPod) -> Decision {
        let total = self.nodes.len();
        if total == 0 {
            return Decision::Unschedulable(
                "0/0 nodes are available: no nodes available to schedule pods.".to_string(),
            );
        }
        let want = nodes_to_find(total);
        let start = self.next_start % total;
        let mut best: Option<(i64, usize)> = None;
        let mut found = 0;
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut visited = 0;
        for off in 0..total {
            let i = (start + off) % total;
            visited += 1;
            match filter(&self.nodes[i], pod) {
                Ok(()) => {
                    found += 1;
                    let s = score(&self.nodes[i], pod);
                    if best.is_none_or(|(bs, _)| s > bs) {
                        best = Some((s, i));
                    }
                    if found >= want {
                        break;
                    }
                }
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_insert(0) += 1;
                    }
                }
            }
        }
        self.next_start = (start + visited) % total;
        match best {
            Some((_, i)) => {
                let name = self.nodes[i].name.clone();
                self.place(
                    pod.key.clone(),
                    pod.uid.clone(),
                    name.clone(),
                    pod.requests.clone(),
                );
                Decision::Bind(name)
            }
            None => Decision::Unschedulable(unschedulable_message(total, &reasons)),
        }
    }
}

/// The scheduler: fed by the control plane's informers, runs its own scheduling loop.
pub struct Scheduler {
    client: Client,
    metrics: Option<Arc<SimMetrics>>,
    state: Mutex<State>,
    notify: Notify,
    binds: Arc<Semaphore>,
    events: Semaphore,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Scheduler {
    /// Creates a scheduler binding through `client` with at most `parallelism` binds in flight.
    pub fn new(client: Client, metrics: Option<Arc<SimMetrics>>, parallelism: usize) -> Arc<Self> {
        Arc::new(Scheduler {
            client,
            metrics,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            binds: Arc::new(Semaphore::new(parallelism.max(1))),
            events: Semaphore::new(parallelism.max(1)),
        })
    }

    /// Feeds a pod add/update from the pod watch.
    pub fn on_pod(&self, pod: &Pod) {
        let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            return;
        };
        let key = (ns.clone(), name.clone());
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let mut st = self.state.lock();
        if is_terminal(pod) || (pod.metadata.deletion_timestamp.is_some() && node.is_none()) {
            st.release(&key, Some(&uid));
            Self::forget(&mut st, &key);
            return;
        }
        if let Some(node) = node {
            let known = st
                .placed
                .get(&key)
                .is_some_and(|(u, n, _)| *u == uid && *n == node);
            if !known {
                let req = pod.spec.as_ref().map(pod_requests).unwrap_or_default();
                st.place(key.clone(), uid, node, req);
            }
            st.unschedulable.remove(&key);
            return;
        }
        let sched_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(SCHEDULER_NAME);
        if sched_name != SCHEDULER_NAME {
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        match st.queued.get(&key) {
            Some(u) if *u == uid => {
                // Spec updates (tolerations, affinity) of an unschedulable pod: refresh & retry.
                if let Some(mut old) = st.unschedulable.remove(&key)
                    && let Some(mut fresh) = SchedPod::from_pod(pod)
                {
                    fresh.first_seen = old.first_seen;
                    fresh.attempts = old.attempts;
                    fresh.last_message = old.last_message.take();
                    st.active.push_back(fresh);
                    self.notify.notify_one();
                }
            }
            _ => {
                if let Some(sp) = SchedPod::from_pod(pod) {
                    st.unschedulable.remove(&key);
                    st.queued.insert(key, uid);
                    st.active.push_back(sp);
                    self.notify.notify_one();
                }
            }
        }
    }

    /// Feeds a pod deletion from the pod watch.
    pub fn on_pod_deleted(&self, pod: &Pod) {
        let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
            return;
        };
        self.on_pod_gone(&(ns.clone(), name.clone()), pod.metadata.uid.as_deref());
    }

    /// Forgets the pod at `key` (only the incarnation with `uid`, when given) and releases
    /// its usage: a deletion, or a pod missing from a relist.
    pub fn on_pod_gone(&self, key: &(String, String), uid: Option<&str>) {
        let mut st = self.state.lock();
        st.release(key, uid);
        Self::forget(&mut st, key);
        st.cluster_changed = true;
        drop(st);
        self.notify.notify_one();
    }

    fn forget(st: &mut State, key: &(String, String)) {
        st.queued.remove(key);
        st.unschedulable.remove(key);
    }

    /// Feeds a node add/update.
    pub fn on_node(&self, node: &Node) {
        let Some(mut sn) = SchedNode::from_node(node) else {
            return;
        };
        let mut st = self.state.lock();
        // Heartbeats (condition timestamps) are not scheduling-relevant: only wake the
        // unschedulable pods when something a filter looks at changed.
        let relevant = match st.index.get(&sn.name).copied() {
            Some(i) => {
                let old = &st.nodes[i];
                let changed = old.alloc != sn.alloc
                    || old.labels != sn.labels
                    || old.taints != sn.taints
                    || old.unschedulable != sn.unschedulable
                    || old.ready != sn.ready;
                sn.used = std::mem::take(&mut st.nodes[i].used);
                st.nodes[i] = sn;
                changed
            }
            None => {
                if let Some(u) = st.orphan_usage.remove(&sn.name) {
                    sn.used = u;
                }
                let i = st.nodes.len();
                st.index.insert(sn.name.clone(), i);
                st.nodes.push(sn);
                true
            }
        };
        if relevant {
            st.cluster_changed = true;
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Feeds a node deletion.
    pub fn on_node_deleted(&self, name: &str) {
        let mut st = self.state.lock();
        if let Some(i) = st.index.remove(name) {
            let gone = st.nodes.swap_remove(i);
            st.orphan_usage.insert(gone.name, gone.used);
            if i < st.nodes.len() {
                let moved = st.nodes[i].name.clone();
                st.index.insert(moved, i);
            }
        }
    }

    /// Number of pods waiting (active + unschedulable).
    pub fn pending(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.active.len(), st.unschedulable.len())
    }

    /// Runs the scheduling loop until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_flush = Instant::now();
        loop {
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return,
            }
            loop {
                let batch: Vec<SchedPod> = {
                    let mut st = self.state.lock();
                    let flush_due = st.cluster_changed
                        && last_flush.elapsed() >= Duration::from_millis(250)
                        || last_flush.elapsed() >= Duration::from_secs(30);
                    if flush_due && !st.unschedulable.is_empty() {
                        let now = Instant::now();
                        let due: Vec<(String, String)> = st
                            .unschedulable
                            .iter()
                            .filter(|(_, p)| p.retry_at <= now)
                            .map(|(k, _)| k.clone())
                            .collect();
                        for k in due {
                            if let Some(p) = st.unschedulable.remove(&k) {
                                st.active.push_back(p);
                            }
                        }
                        // Pods still backing off are moved by a later pass (the loop wakes at
                        // least every second), not forgotten until the next cluster change.
                        st.cluster_changed = !st.unschedulable.is_empty() && st.cluster_changed;
                        last_flush = Instant::now();
                    } else if flush_due {
                        st.cluster_changed = false;
                        last_flush = Instant::now();
                    }
                    let n = st.active.len().min(256);
                    st.active.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                for pod in batch {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    self.schedule_one(pod).await;
                }
                self.report_pending();
            }
            self.report_pending();
        }
    }

    fn report_pending(&self) {
        if let Some(m) = &self.metrics {
            let (a, u) = self.pending();
            m.set_pending_pods("active", a as i64);
            m.set_pending_pods("unschedulable", u as i64);
        }
    }

    async fn schedule_one(self: &Arc<Self>, mut pod: SchedPod) {
        let t0 = Instant::now();
        let decision = {
            let mut st = self.state.lock();
            if st.queued.get(&pod.key) != Some(&pod.uid) {
                return; // deleted or bound meanwhile
            }
            st.decide(&pod)
        };
        let took = t0.elapsed();
        pod.attempts += 1;
        if let Some(m) = &self.metrics {
            m.record_scheduling_algorithm(took);
        }
        match decision {
            Decision::Bind(node) => {
                let Ok(permit) = self.binds.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.bind(pod, node, t0).await;
                    drop(permit);
                });
            }
            Decision::Unschedulable(msg) => {
                if let Some(m) = &self.metrics {
                    m.record_schedule_attempt("unschedulable", SCHEDULER_NAME, t0.elapsed());
                }
                let post = pod.last_message.as_deref() != Some(msg.as_str());
                if post {
                    pod.last_message = Some(msg.clone());
                    let me = self.clone();
                    let key = pod.key.clone();
                    let uid = pod.uid.clone();
                    tokio::spawn(async move { me.mark_unschedulable(key, uid, msg).await });
                }
                let backoff_ms = 1000u64 << pod.attempts.saturating_sub(1).min(4);
                pod.retry_at = Instant::now() + Duration::from_millis(backoff_ms.min(10_000));
                let mut st = self.state.lock();
                if st.queued.get(&pod.key) == Some(&pod.uid) {
                    st.unschedulable.insert(pod.key.clone(), pod);
                }
            }
        }
    }

    async fn bind(self: Arc<Self>, pod: SchedPod, node: String, t0: Instant) {
        let (ns, name) = pod.key.clone();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let body = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": name, "namespace": ns, "uid": pod.uid },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node },
        });
        let res: Result<serde_json::Value, kube::Error> = api
            .create_subresource("binding", &name, &PostParams::default(), &body)
            .await;
        match res {
            Ok(_) => {
                if let Some(m) = &self.metrics {
                    m.record_schedule_attempt("scheduled", SCHEDULER_NAME, t0.elapsed());
                    m.record_pod_scheduling_sli(pod.first_seen.elapsed(), pod.attempts);
                }
                {
                    let mut st = self.state.lock();
                    if st.queued.get(&pod.key) == Some(&pod.uid) {
                        st.queued.remove(&pod.key);
                    }
                }
                let msg = format!("Successfully assigned {ns}/{name} to {node}");
                // The event does not hold a bind slot.
                let me = self.clone();
                let uid = pod.uid.clone();
                tokio::spawn(async move {
                    let _permit = me.events.acquire().await;
                    crate::controllers::record_event(
                        &me.client,
                        crate::controllers::EventTarget {
                            kind: "Pod",
                            api_version: "v1",
                            namespace: &ns,
                            name: &name,
                            uid: &uid,
                        },
                        "Normal",
                        "Scheduled",
                        &msg,
                        SCHEDULER_NAME,
                    )
                    .await;
                });
            }
            Err(e) => {
                let code = crate::kubelet::api_code(&e);
                if let Some(m) = &self.metrics {
                    m.record_schedule_attempt("error", SCHEDULER_NAME, t0.elapsed());
                }
                let mut st = self.state.lock();
                st.release(&pod.key, Some(&pod.uid));
                match code {
                    // Gone, or bound by someone else (the watch will tell where).
                    Some(404 | 409) => {
                        Self::forget(&mut st, &pod.key);
                    }
                    _ => {
                        tracing::debug!(pod = ?pod.key, error = %e, "bind failed; retrying");
                        if st.queued.get(&pod.key) == Some(&pod.uid) {
                            st.unschedulable.insert(pod.key.clone(), pod);
                            st.cluster_changed = true;
                        }
                    }
                }
            }
        }
    }

    async fn mark_unschedulable(self: Arc<Self>, key: (String, String), uid: String, msg: String) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let patch = json!({
            "status": { "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": msg, "lastProbeTime": null,
                "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
            }] }
        });
        if let Err(e) = api
            .patch_status(&key.1, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            // Servers without strategic merge on status: fall back to JSON merge.
            if crate::kubelet::api_code(&e) != Some(404) {
                let _ = api
                    .patch_status(&key.1, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        }
        crate::controllers::record_event(
            &self.client,
            crate::controllers::EventTarget {
                kind: "Pod",
                api_version: "v1",
                namespace: &key.0,
                name: &key.1,
                uid: &uid,
            },
            "Warning",
            "FailedScheduling",
            &msg,
            SCHEDULER_NAME,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelector};

    fn node(name: &str, cpu: &str, gpu: Option<&str>) -> SchedNode {
        let mut alloc = Resources {
            cpu: parse_quantity_milli(cpu).unwrap(),
            memory: parse_quantity_milli("16Gi").unwrap(),
            pods: 110_000,
            ..Default::default()
        };
        if let Some(g) = gpu {
            *alloc.slot("nvidia.com/gpu") = parse_quantity_milli(g).unwrap();
        }
        SchedNode {
            name: name.into(),
            alloc,
            ready: true,
            labels: BTreeMap::from([("kubernetes.io/hostname".into(), name.into())]),
            ..Default::default()
        }
    }

    fn pod(cpu: &str) -> SchedPod {
        SchedPod {
            key: ("ns".into(), "p".into()),
            uid: "u".into(),
            requests: Resources {
                cpu: parse_quantity_milli(cpu).unwrap(),
                pods: 1000,
                ..Default::default()
            },
            node_selector: BTreeMap::new(),
            tolerations: vec![],
            affinity: None,
            first_seen: Instant::now(),
            attempts: 0,
            last_message: None,
            retry_at: Instant::now(),
        }
    }

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_quantity_milli("100m"), Some(100));
        assert_eq!(parse_quantity_milli("2"), Some(2000));
        assert_eq!(parse_quantity_milli("1.5"), Some(1500));
        assert_eq!(parse_quantity_milli("1Ki"), Some(1_024_000));
        assert_eq!(
            parse_quantity_milli("16Gi"),
            Some(16 * 1024 * 1024 * 1024 * 1000)
        );
        assert_eq!(parse_quantity_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity_milli("5M"), Some(5_000_000_000));
        assert_eq!(parse_quantity_milli("abc"), None);
        assert_eq!(parse_quantity_milli("1Xi"), None);
        assert_eq!(parse_quantity_milli(""), None);
        assert_eq!(parse_quantity_milli("1e400"), None);
    }

    #[test]
    fn resources_fit_and_messages() {
        let n = node("n1", "1", None);
        assert!(filter(&n, &pod("500m")).is_ok());
        assert_eq!(
            filter(&n, &pod("2")),
            Err(vec!["Insufficient cpu".to_string()])
        );
        let mut full = n.clone();
        full.used.pods = 110_000;
        assert_eq!(
            filter(&full, &pod("1m")),
            Err(vec!["Too many pods".to_string()])
        );
        let reasons = BTreeMap::from([("Insufficient cpu".to_string(), 50)]);
        assert!(
            unschedulable_message(50, &reasons)
                .starts_with("0/50 nodes are available: 50 Insufficient cpu.")
        );
    }

    #[test]
    fn extended_resources_and_taints() {
        let mut n = node("gpu-0", "8", Some("8"));
        n.taints.push(Taint {
            key: "gpu".into(),
            value: Some("true".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        });
        let mut p = pod("1");
        *p.requests.slot("nvidia.com/gpu") = 4000;
        assert_eq!(
            filter(&n, &p),
            Err(vec![
                "node(s) had untolerated taint {gpu: true}".to_string()
            ])
        );
        p.tolerations.push(Toleration {
            key: Some("gpu".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        });
        assert!(filter(&n, &p).is_ok());
        *p.requests.slot("nvidia.com/gpu") = 9000;
        assert_eq!(
            filter(&n, &p),
            Err(vec!["Insufficient nvidia.com/gpu".to_string()])
        );
        // A node without the resource has zero of it.
        let plain = node("cpu-0", "8", None);
        assert_eq!(
            filter(&plain, &p),
            Err(vec!["Insufficient nvidia.com/gpu".to_string()])
        );
    }

    #[test]
    fn unschedulable_and_not_ready_nodes() {
        let mut n = node("n", "4", None);
        n.unschedulable = true;
        assert_eq!(
            filter(&n, &pod("1")),
            Err(vec!["node(s) were unschedulable".into()])
        );
        let mut p = pod("1");
        p.tolerations.push(Toleration {
            key: Some("node.kubernetes.io/unschedulable".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        });
        assert!(filter(&n, &p).is_ok());
        let mut nr = node("m", "4", None);
        nr.ready = false;
        assert!(filter(&nr, &pod("1")).is_err());
        // PreferNoSchedule is ignored.
        let mut soft = node("s", "4", None);
        soft.taints.push(Taint {
            key: "x".into(),
            effect: "PreferNoSchedule".into(),
            ..Default::default()
        });
        assert!(filter(&soft, &pod("1")).is_ok());
        // Wildcard toleration.
        let wild = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&wild, "anything", "v", "NoExecute"));
        let eq = Toleration {
            key: Some("k".into()),
            value: Some("v".into()),
            ..Default::default()
        };
        assert!(tolerates(&eq, "k", "v", "NoSchedule"));
        assert!(!tolerates(&eq, "k", "w", "NoSchedule"));
    }

    #[test]
    fn node_affinity_and_selector() {
        let mut n = node("n7", "4", None);
        n.labels.insert("zone".into(), "a".into());
        n.labels.insert("rank".into(), "5".into());
        let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let term = |exprs: Vec<NodeSelectorRequirement>, fields: Vec<NodeSelectorRequirement>| {
            NodeSelectorTerm {
                match_expressions: Some(exprs),
                match_fields: Some(fields),
            }
        };
        let labels = n.labels.clone();
        assert!(term_matches(
            &term(vec![req("zone", "In", &["a", "b"])], vec![]),
            "n7",
            &labels
        ));
        assert!(!term_matches(
            &term(vec![req("zone", "NotIn", &["a"])], vec![]),
            "n7",
            &labels
        ));
        assert!(term_matches(
            &term(vec![req("gpu", "DoesNotExist", &[])], vec![]),
            "n7",
            &labels
        ));
        assert!(term_matches(
            &term(vec![req("zone", "Exists", &[])], vec![]),
            "n7",
            &labels
        ));
        assert!(term_matches(
            &term(vec![req("rank", "Gt", &["3"])], vec![]),
            "n7",
            &labels
        ));
        assert!(!term_matches(
            &term(vec![req("rank", "Lt", &["3"])], vec![]),
            "n7",
            &labels
        ));
        assert!(term_matches(
            &term(vec![], vec![req("metadata.name", "In", &["n7"])]),
            "n7",
            &labels
        ));
        assert!(!term_matches(&term(vec![], vec![]), "n7", &labels));
        let mut p = pod("1");
        p.node_selector.insert("zone".into(), "b".into());
        assert_eq!(
            filter(&n, &p),
            Err(vec![
                "node(s) didn't match Pod's node affinity/selector".into()
            ])
        );
        p.node_selector.clear();
        let na = NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![term(vec![], vec![req("metadata.name", "In", &["n8"])])],
            }),
            ..Default::default()
        };
        p.affinity = na
            .required_during_scheduling_ignored_during_execution
            .map(|s| s.node_selector_terms);
        assert!(filter(&n, &p).is_err());
    }

    #[test]
    fn decide_spreads_and_accounts() {
        let mut st = State::default();
        for i in 0..4 {
            let n = node(&format!("n{i}"), "1", None);
            st.index.insert(n.name.clone(), i);
            st.nodes.push(n);
        }
        let mut placed = BTreeMap::new();
        for i in 0..8 {
            let mut p = pod("500m");
            p.key.1 = format!("p{i}");
            match st.decide(&p) {
                Decision::Bind(n) => *placed.entry(n).or_insert(0) += 1,
                Decision::Unschedulable(m) => panic!("unexpected: {m}"),
            }
        }
        // Least-allocated spreads two 500m pods on each 1-cpu node.
        assert_eq!(
            placed.values().copied().collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
        let mut p = pod("500m");
        p.key.1 = "extra".into();
        match st.decide(&p) {
            Decision::Unschedulable(m) => {
                assert!(
                    m.starts_with("0/4 nodes are available: 4 Insufficient cpu."),
                    "{m}"
                )
            }
            Decision::Bind(n) => panic!("bound to {n}"),
        }
        st.release(&("ns".into(), "p0".into()), None);
        assert!(matches!(st.decide(&p), Decision::Bind(_)));
        assert_eq!(nodes_to_find(50), 50);
        assert_eq!(nodes_to_find(5000), 500);
        assert_eq!(nodes_to_find(100_000), 5000);
    }

    #[test]
    fn pod_requests_sum_containers_and_init() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"limits": {"cpu": "200m", "nvidia.com/gpu": "1"}}}
                ],
                "initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "1"}}}
                ]
            }
        }))
        .unwrap();
        let r = pod_requests(pod.spec.as_ref().unwrap());
        assert_eq!(r.cpu, 1000);
        assert_eq!(r.memory, 1024 * 1024 * 1024 * 1000);
        assert_eq!(r.get("nvidia.com/gpu"), 1000);
        assert_eq!(r.pods, 1000);
    }
}
