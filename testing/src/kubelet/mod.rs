//! Hollow kubelets: simulated nodes that talk to an API server only through `kube::Client`.
//!
//! A [`HollowFleet`] registers `count` Nodes (capacity/allocatable including extended
//! resources, labels, taints, addresses, nodeInfo, healthy conditions), creates and renews one
//! Lease per node in `kube-node-lease`, re-posts node status periodically, and drives the pods
//! bound to its nodes through their lifecycle ([`pods`]): Pending → Running (IPs, container
//! statuses, Ready conditions) after a configured delay, Job pods → Succeeded, and graceful
//! deletion. Because nothing here touches the simulator's internals, the same code registers
//! hollow nodes against real clusters.
//!
//! Scale notes: periodic work (lease renewals, status heartbeats) is done by one ticker per kind
//! that spreads the nodes evenly over the period, not by one task per node; in
//! [`WatchMode::Shared`] one pod watch serves the whole fleet.

pub mod config;
mod pods;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Namespace, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Delay, HollowNodeConfig, NodeTaint, PodLifecycle, WatchMode};

/// Namespace holding node leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Errors starting a hollow fleet.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// A capacity entry is not a valid Kubernetes quantity.
    #[error("invalid capacity quantity {value:?} for resource {resource}")]
    InvalidQuantity {
        /// Resource name.
        resource: String,
        /// Offending value.
        value: String,
    },
    /// A taint effect is not one of NoSchedule, PreferNoSchedule, NoExecute.
    #[error("invalid taint effect {effect:?} for key {key}")]
    InvalidTaint {
        /// Taint key.
        key: String,
        /// Offending effect.
        effect: String,
    },
    /// The API server rejected a registration request.
    #[error("registering node {node}: {source}")]
    Register {
        /// Node name.
        node: String,
        /// Underlying client error.
        #[source]
        source: kube::Error,
    },
    /// Shutdown was requested before every node was registered.
    #[error("fleet shut down before registration finished")]
    Cancelled,
}

/// Per-node state of the fleet.
pub(crate) struct NodeSlot {
    /// Position of the node in the fleet (after `start_index`), used for addresses.
    pub index: usize,
    /// Node InternalIP.
    pub internal_ip: String,
    /// Pod IP allocator for the node's /24 pod CIDR.
    pub ips: parking_lot::Mutex<IpAlloc>,
    /// Registration time, used as lastTransitionTime of the node conditions.
    pub registered: Time,
}

/// Allocates host numbers 1..=254 of a node's /24.
#[derive(Default)]
pub(crate) struct IpAlloc {
    next: u8,
    used: std::collections::HashSet<u8>,
}

impl IpAlloc {
    /// Takes a free host number, or `None` when all 254 are in use.
    pub fn take(&mut self) -> Option<u8> {
        for _ in 0..254 {
            self.next = if self.next >= 254 { 1 } else { self.next + 1 };
            if self.used.insert(self.next) {
                return Some(self.next);
            }
        }
        None
    }

    /// Marks a host number as used (pods found Running after a restart).
    pub fn mark(&mut self, host: u8) {
        self.used.insert(host);
    }

    /// Returns a host number.
    pub fn free(&mut self, host: u8) {
        self.used.remove(&host);
    }
}

/// Shared state of a running fleet.
pub(crate) struct Fleet {
    pub client: Client,
    pub cfg: HollowNodeConfig,
    pub nodes: HashMap<String, NodeSlot>,
    pub names: Vec<String>,
    pub pods: parking_lot::Mutex<HashMap<pods::PodKey, pods::PodTrack>>,
    pub limiter: Arc<Semaphore>,
    pub token: CancellationToken,
}

/// A running fleet of hollow nodes.
pub struct HollowFleet {
    fleet: Arc<Fleet>,
    tasks: Vec<JoinHandle<()>>,
    token: CancellationToken,
}

impl HollowFleet {
    /// Names of the fleet's nodes, in index order.
    pub fn node_names(&self) -> Vec<String> {
        self.fleet.names.clone()
    }

    /// Number of pods the fleet currently tracks (any phase).
    pub fn tracked_pods(&self) -> usize {
        self.fleet.pods.lock().len()
    }

    /// Stops the fleet's tasks (nodes and leases stay registered and will expire).
    pub async fn shutdown(self) {
        self.token.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Node name for fleet position `i`.
fn node_name(cfg: &HollowNodeConfig, i: usize) -> String {
    format!("{}{}", cfg.name_prefix, cfg.start_index + i)
}

/// InternalIP for fleet position `i` (10.64.0.0/10 space).
fn node_ip(i: usize) -> String {
    let n = i as u32 + 1;
    format!(
        "10.{}.{}.{}",
        64 + ((n >> 16) & 0x3f),
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// Pod CIDR (/24) prefix `a.b.c.` for fleet position `i`: 10.128.0.0/9 space.
pub(crate) fn pod_cidr_prefix(i: usize) -> String {
    let n = i as u32;
    format!("10.{}.{}.", 128 + ((n >> 8) & 0x7f), n & 0xff)
}

/// Starts a fleet of `count` hollow nodes and returns once every node is registered with
/// `Ready=True` and has a Lease.
pub async fn start_fleet(
    client: Client,
    cfg: HollowNodeConfig,
    count: usize,
    shutdown: CancellationToken,
) -> Result<HollowFleet, KubeletError> {
    let capacity = parse_capacity(&cfg.capacity)?;
    let taints = build_taints(&cfg.taints)?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let names: Vec<String> = (0..count).map(|i| node_name(&cfg, i)).collect();
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                NodeSlot {
                    index: cfg.start_index + i,
                    internal_ip: node_ip(cfg.start_index + i),
                    ips: parking_lot::Mutex::new(IpAlloc::default()),
                    registered: now.clone(),
                },
            )
        })
        .collect();
    let token = shutdown.child_token();
    let fleet = Arc::new(Fleet {
        client: client.clone(),
        limiter: Arc::new(Semaphore::new(cfg.max_concurrent_requests.max(1))),
        cfg,
        nodes,
        names,
        pods: parking_lot::Mutex::new(HashMap::new()),
        token: token.clone(),
    });

    ensure_lease_namespace(&client).await;

    let concurrency = fleet.cfg.max_concurrent_requests.max(1);
    let results: Vec<Result<(), KubeletError>> = {
        let fleet = &fleet;
        let capacity = &capacity;
        let taints = &taints;
        let work = futures::stream::iter(fleet.names.iter().cloned())
            .map(|name| async move { register_node(fleet, &name, capacity, taints).await })
            .buffer_unordered(concurrency)
            .collect::<Vec<_>>();
        tokio::select! {
            r = work => r,
            _ = token.cancelled() => return Err(KubeletError::Cancelled),
        }
    };
    for r in results {
        r?;
    }

    let mut tasks = Vec::new();
    // Lease renewals.
    {
        let f = fleet.clone();
        let period = f.cfg.lease_renew_interval;
        tasks.push(tokio::spawn(periodic(f, period, |f, name| async move {
            renew_lease(&f, &name).await;
        })));
    }
    // Node status heartbeats.
    {
        let f = fleet.clone();
        let period = f.cfg.node_status_update_period;
        tasks.push(tokio::spawn(periodic(f, period, |f, name| async move {
            post_node_status(&f, &name).await;
        })));
    }
    tasks.extend(pods::spawn_pod_watchers(fleet.clone()));
    Ok(HollowFleet {
        fleet,
        tasks,
        token,
    })
}

/// Creates `kube-node-lease` if it is missing (real clusters and the simulator have it).
async fn ensure_lease_namespace(client: &Client) {
    let api: Api<Namespace> = Api::all(client.clone());
    if let Ok(None) = api.get_opt(NODE_LEASE_NAMESPACE).await {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(NODE_LEASE_NAMESPACE.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = api.create(&PostParams::default(), &ns).await {
            tracing::debug!(error = %e, "creating kube-node-lease");
        }
    }
}

/// The HTTP status code of an API error.
pub(crate) fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Parses and validates the capacity map.
fn parse_capacity(
    cap: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Quantity>, KubeletError> {
    let mut out = BTreeMap::new();
    for (k, v) in cap {
        if crate::scheduler::parse_quantity_milli(v).is_none() {
            return Err(KubeletError::InvalidQuantity {
                resource: k.clone(),
                value: v.clone(),
            });
        }
        out.insert(k.clone(), Quantity(v.clone()));
    }
    Ok(out)
}

fn build_taints(taints: &[NodeTaint]) -> Result<Vec<Taint>, KubeletError> {
    taints
        .iter()
        .map(|t| {
            if !matches!(
                t.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ) {
                return Err(KubeletError::InvalidTaint {
                    key: t.key.clone(),
                    effect: t.effect.clone(),
                });
            }
            Ok(Taint {
                key: t.key.clone(),
                value: (!t.value.is_empty()).then(|| t.value.clone()),
                effect: t.effect.clone(),
                time_added: None,
            })
        })
        .collect()
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    since: &Time,
) -> NodeCondition {
    NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
        last_transition_time: Some(since.clone()),
    }
}

/// The healthy conditions a hollow node reports.
fn node_conditions(since: &Time) -> Vec<NodeCondition> {
    vec![
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            since,
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            since,
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            since,
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
            since,
        ),
    ]
}

fn node_status(
    f: &Fleet,
    name: &str,
    slot: &NodeSlot,
    capacity: &BTreeMap<String, Quantity>,
) -> NodeStatus {
    NodeStatus {
        capacity: Some(capacity.clone()),
        allocatable: Some(capacity.clone()),
        conditions: Some(node_conditions(&slot.registered)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_string(),
                address: slot.internal_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".to_string(),
                address: name.to_string(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(k8s_openapi::api::core::v1::DaemonEndpoint { port: 10250 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".to_string(),
            boot_id: uuid::Uuid::new_v4().to_string(),
            container_runtime_version: "containerd://2.0.0-cl2hollow".to_string(),
            kernel_version: "6.8.0-cl2hollow".to_string(),
            kube_proxy_version: String::new(),
            kubelet_version: f.cfg.kubelet_version.clone(),
            machine_id: format!("{:032x}", slot.index),
            operating_system: "linux".to_string(),
            os_image: "cl2 hollow node (Linux)".to_string(),
            system_uuid: uuid::Uuid::new_v4().to_string(),
            swap: None,
        }),
        ..Default::default()
    }
}

fn build_node(
    f: &Fleet,
    name: &str,
    slot: &NodeSlot,
    capacity: &BTreeMap<String, Quantity>,
    taints: &[Taint],
) -> Node {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        (
            "node.kubernetes.io/instance-type",
            f.cfg.instance_type.as_str(),
        ),
        ("type", "hollow"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(f.cfg.labels.clone());
    let prefix = pod_cidr_prefix(slot.index);
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".to_string(),
                "0".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(format!("{prefix}0/24")),
            pod_cidrs: Some(vec![format!("{prefix}0/24")]),
            taints: (!taints.is_empty()).then(|| taints.to_vec()),
            ..Default::default()
        }),
        status: Some(node_status(f, name, slot, capacity)),
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn register_node(
    f: &Arc<Fleet>,
    name: &str,
    capacity: &BTreeMap<String, Quantity>,
    taints: &[Taint],
) -> Result<(), KubeletError> {
    let Some(slot) = f.nodes.get(name) else {
        return Ok(());
    };
    let api: Api<Node> = Api::all(f.client.clone());
    let node = build_node(f, name, slot, capacity, taints);
    let err = |source| KubeletError::Register {
        node: name.to_string(),
        source,
    };
    let pp = PostParams::default();
    let patch_params = PatchParams::default();
    let status = serde_json::json!({ "status": node.status });
    let status_patch = Patch::Merge(&status);
    let uid = match with_retry(|| api.create(&pp, &node)).await {
        Ok(created) => {
            if !is_ready(&created) {
                with_retry(|| api.patch_status(name, &patch_params, &status_patch))
                    .await
                    .map_err(err)?;
            }
            created.metadata.uid
        }
        Err(e) if api_code(&e) == Some(409) => {
            // Re-registration: refresh labels/taints/status of the existing node.
            let meta = serde_json::json!({
                "metadata": { "labels": node.metadata.labels },
                "spec": { "taints": node.spec.as_ref().and_then(|s| s.taints.clone()) },
            });
            let meta_patch = Patch::Merge(&meta);
            let existing = with_retry(|| api.patch(name, &patch_params, &meta_patch))
                .await
                .map_err(err)?;
            with_retry(|| api.patch_status(name, &patch_params, &status_patch))
                .await
                .map_err(err)?;
            existing.metadata.uid
        }
        Err(e) => return Err(err(e)),
    };
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), NODE_LEASE_NAMESPACE);
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
            owner_references: uid.map(|uid| {
                vec![OwnerReference {
                    api_version: "v1".to_string(),
                    kind: "Node".to_string(),
                    name: name.to_string(),
                    uid,
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_string()),
            lease_duration_seconds: Some(f.cfg.lease_duration_seconds),
            renew_time: Some(now.clone()),
            acquire_time: Some(now),
            ..Default::default()
        }),
    };
    match with_retry(|| leases.create(&pp, &lease)).await {
        Ok(_) => {}
        Err(e) if api_code(&e) == Some(409) => renew_lease(f, name).await,
        Err(e) => return Err(err(e)),
    }
    Ok(())
}

/// Retries a request on 429/5xx/transport errors a few times with backoff.
async fn with_retry<T, Fut, F>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let retriable = match api_code(&e) {
                    Some(code) => code == 429 || code >= 500,
                    None => true,
                };
                attempt += 1;
                if !retriable || attempt >= 8 {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn renew_lease(f: &Fleet, name: &str) {
    let leases: Api<Lease> = Api::namespaced(f.client.clone(), NODE_LEASE_NAMESPACE);
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let patch = serde_json::json!({ "spec": { "renewTime": now, "holderIdentity": name } });
    let _permit = f.limiter.acquire().await;
    if let Err(e) = leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(node = name, error = %e, "lease renewal failed");
    }
}

async fn post_node_status(f: &Fleet, name: &str) {
    let Some(slot) = f.nodes.get(name) else {
        return;
    };
    let api: Api<Node> = Api::all(f.client.clone());
    let patch =
        serde_json::json!({ "status": { "conditions": node_conditions(&slot.registered) } });
    let _permit = f.limiter.acquire().await;
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(node = name, error = %e, "node status update failed");
    }
}

/// Runs `work` for every node once per `period`, spreading nodes evenly over the period in
/// 100 ms slots (with a random phase), until the fleet shuts down.
async fn periodic<F, Fut>(f: Arc<Fleet>, period: Duration, work: F)
where
    F: Fn(Arc<Fleet>, String) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slot = Duration::from_millis(100);
    let slots = ((period.as_millis() / slot.as_millis()).max(1)) as usize;
    let phase: usize = rand::random_range(0..slots);
    let mut ticker = tokio::time::interval(slot);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first round starts one period after registration.
    ticker.tick().await;
    let mut tick: usize = 0;
    let start = tokio::time::Instant::now() + period.saturating_sub(slot);
    tokio::select! {
        _ = tokio::time::sleep_until(start) => {}
        _ = f.token.cancelled() => return,
    }
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = f.token.cancelled() => return,
        }
        let bucket = (tick + phase) % slots;
        tick = tick.wrapping_add(1);
        let batch: Vec<String> = f
            .names
            .iter()
            .skip(bucket)
            .step_by(slots)
            .cloned()
            .collect();
        if batch.is_empty() {
            continue;
        }
        let f2 = f.clone();
        let work = work.clone();
        tokio::spawn(async move {
            let conc = f2.cfg.max_concurrent_requests.max(1);
            futures::stream::iter(batch)
                .for_each_concurrent(conc, |name| work(f2.clone(), name))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..40_000 {
            assert!(seen.insert(node_ip(i)));
        }
        assert_eq!(node_ip(0), "10.64.0.1");
        assert_eq!(pod_cidr_prefix(0), "10.128.0.");
        assert_eq!(pod_cidr_prefix(257), "10.129.1.");
    }

    #[test]
    fn ip_alloc_reuses_freed_hosts() {
        let mut a = IpAlloc::default();
        let hosts: Vec<u8> = (0..254).filter_map(|_| a.take()).collect();
        assert_eq!(hosts.len(), 254);
        assert!(a.take().is_none());
        a.free(17);
        assert_eq!(a.take(), Some(17));
    }

    #[test]
    fn capacity_and_taints_are_validated() {
        let mut cap = HollowNodeConfig::default().capacity;
        assert!(parse_capacity(&cap).is_ok());
        cap.insert("nvidia.com/gpu".into(), "eight".into());
        assert!(matches!(
            parse_capacity(&cap),
            Err(KubeletError::InvalidQuantity { .. })
        ));
        let bad = [NodeTaint {
            key: "k".into(),
            value: String::new(),
            effect: "Sometimes".into(),
        }];
        assert!(matches!(
            build_taints(&bad),
            Err(KubeletError::InvalidTaint { .. })
        ));
    }
}
