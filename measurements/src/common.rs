//! Helpers shared by the built-in measurements: pod and node predicates, timestamp
//! conversion, and a background watch task.

use cl2_framework::measurement::{MeasurementContext, MeasurementError};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the Unix epoch of a Kubernetes timestamp.
pub(crate) fn time_ms(t: &Time) -> i64 {
    t.0.as_millisecond()
}

/// `namespace/name` of an object.
pub(crate) fn key_of(meta: &kube::api::ObjectMeta) -> String {
    let mut buf = KeyBuf::default();
    buf.of(meta);
    buf.0
}

/// A reusable buffer for [`key_of`]'s `namespace/name`, so watch handlers can look a key up
/// without allocating on every event (they allocate only when inserting a new key).
#[derive(Debug, Default)]
pub(crate) struct KeyBuf(String);

impl KeyBuf {
    /// `namespace/name` of `meta`, valid until the next call.
    pub fn of(&mut self, meta: &kube::api::ObjectMeta) -> &str {
        self.0.clear();
        self.0.push_str(meta.namespace.as_deref().unwrap_or(""));
        self.0.push('/');
        self.0.push_str(meta.name.as_deref().unwrap_or(""));
        &self.0
    }
}

/// Phase of a pod (`""` when unset).
pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Running and Ready (CL2's "running" for barriers).
pub(crate) fn is_running_ready(pod: &Pod) -> bool {
    phase(pod) == "Running"
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Succeeded or Failed.
pub(crate) fn is_inactive(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Has a deletion timestamp.
pub(crate) fn is_terminating(meta: &kube::api::ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

/// CL2's stateless pod: every volume is emptyDir, downwardAPI, configMap, secret or projected.
pub(crate) fn is_stateless(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_none_or(|vols| {
            vols.iter().all(|v| {
                v.empty_dir.is_some()
                    || v.downward_api.is_some()
                    || v.config_map.is_some()
                    || v.secret.is_some()
                    || v.projected.is_some()
            })
        })
}

const NOT_SCHEDULABLE_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/out-of-service",
    "node.cloudprovider.kubernetes.io/uninitialized",
    "node.cloudprovider.kubernetes.io/shutdown",
];

/// True if the node's Ready condition is True.
pub(crate) fn node_ready(node: &Node) -> bool {
    condition_true(node, "Ready")
}

fn condition_true(node: &Node, type_: &str) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// CL2's schedulable untainted node (see `docs/measurements.md`, WaitForNodes): not
/// cordoned, Ready, network available, and without a NoSchedule/NoExecute node-condition
/// taint.
pub fn node_schedulable(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable).unwrap_or(false) {
        return false;
    }
    if !node_ready(node) || condition_true(node, "NetworkUnavailable") {
        return false;
    }
    !spec.and_then(|s| s.taints.as_ref()).is_some_and(|ts| {
        ts.iter().any(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute")
                && NOT_SCHEDULABLE_TAINTS.contains(&t.key.as_str())
        })
    })
}

/// The error of a `gather` (or `stop`) that came without a `start`.
pub(crate) fn not_started(method: &str, id: &str) -> MeasurementError {
    MeasurementError::failed(method, id, "measurement has not been started")
}

/// Overwrites each listed `Option` field of `$base` that `$over` sets (a gather's params over
/// its start's).
macro_rules! merge_set_fields {
    ($base:expr, $over:expr, $($field:ident),+ $(,)?) => {
        $(
            if $over.$field.is_some() {
                $base.$field = $over.$field.clone();
            }
        )+
    };
}
pub(crate) use merge_set_fields;

/// The schedule of a polling wait: list, check, sleep `refresh` (at least 100ms), until
/// `timeout` has passed since [`Poll::new`].
pub(crate) struct Poll {
    deadline: Instant,
    refresh: Duration,
}

impl Poll {
    pub fn new(timeout: Duration, refresh: Duration) -> Self {
        Poll {
            deadline: Instant::now() + timeout,
            refresh: refresh.max(Duration::from_millis(100)),
        }
    }

    /// Sleeps until the next poll; false when the wait should give up instead: the run is
    /// finishing, the deadline has passed, or the run was cancelled while sleeping.
    pub async fn next(&self, ctx: &MeasurementContext) -> bool {
        !ctx.finishing && Instant::now() < self.deadline && sleep_or_cancel(ctx, self.refresh).await
    }

    /// Lists `api` with `lp` on this schedule until `check` accepts a list (returns `Some`).
    /// A failed list is logged (`<method> <identifier>: listing <plural>: <error>`) and
    /// retried. `None` when the wait gives up first (see [`Poll::next`]).
    pub async fn list_until<K, T>(
        &self,
        ctx: &MeasurementContext,
        method: &str,
        api: &kube::Api<K>,
        lp: &kube::api::ListParams,
        mut check: impl FnMut(Vec<K>) -> Option<T>,
    ) -> Option<T>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        loop {
            match api.list(lp).await {
                Ok(list) => {
                    if let Some(done) = check(list.items) {
                        return Some(done);
                    }
                }
                Err(e) => tracing::warn!(
                    "{method} {}: listing {}: {e}",
                    ctx.identifier,
                    K::plural(&())
                ),
            }
            if !self.next(ctx).await {
                return None;
            }
        }
    }
}

/// Sleeps `d` unless the run is cancelled first; returns false when cancelled.
pub(crate) async fn sleep_or_cancel(ctx: &MeasurementContext, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        () = ctx.cancel.cancelled() => false,
    }
}

/// A background watch feeding every object event to a handler.
pub(crate) struct WatchTask {
    pub cancel: CancellationToken,
    pub handle: JoinHandle<()>,
}

impl WatchTask {
    /// Watches `api` with `config`, calling `on_apply(obj, receive_ms)` for every added or
    /// modified object (also during the initial list) and `on_delete` for deletions.
    /// Returns once the initial list is done (or after `init_timeout`).
    pub async fn spawn<K, A, D>(
        api: kube::Api<K>,
        config: watcher::Config,
        mut on_apply: A,
        mut on_delete: D,
        init_timeout: Duration,
    ) -> WatchTask
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
        A: FnMut(K, i64) + Send + 'static,
        D: FnMut(K) + Send + 'static,
    {
        let cancel = CancellationToken::new();
        let (tx, rx) = oneshot::channel::<()>();
        let token = cancel.clone();
        let handle = tokio::spawn(async move {
            let mut tx = Some(tx);
            let stream = watcher(api, config).default_backoff();
            futures::pin_mut!(stream);
            loop {
                let ev = tokio::select! {
                    () = token.cancelled() => break,
                    ev = stream.next() => ev,
                };
                match ev {
                    None => break,
                    Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => {
                        on_apply(o, now_ms());
                    }
                    Some(Ok(watcher::Event::Delete(o))) => on_delete(o),
                    Some(Ok(watcher::Event::Init)) => {}
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Some(Err(e)) => tracing::warn!("watch error: {e}"),
                }
            }
        });
        let _ = tokio::time::timeout(init_timeout, rx).await;
        WatchTask { cancel, handle }
    }

    /// Stops the watch and waits for the task to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.handle.await;
    }
}

/// Deserializes `Option<T>` from YAML text or a JSON value (CL2 passes some params as YAML
/// strings, e.g. `customThresholds`).
pub(crate) fn yaml_or_value<T: serde::de::DeserializeOwned>(
    v: &serde_json::Value,
) -> Result<T, String> {
    match v {
        serde_json::Value::String(s) => serde_yaml::from_str(s).map_err(|e| e.to_string()),
        other => serde_json::from_value(other.clone()).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use cl2_framework::cluster::Cluster;
    use cl2_framework::config::Params;
    use cl2_framework::measurement::MeasurementContext;

    /// A context whose client points nowhere (for measurements that do not call the API).
    pub fn offline_context() -> MeasurementContext {
        MeasurementContext::new(Cluster::offline(), "unit")
    }

    /// Params from a JSON literal.
    pub fn params(v: serde_json::Value) -> Params {
        v.as_object().cloned().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_predicates() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "a", "namespace": "n"},
            "spec": {"containers": [], "volumes": [{"name": "x", "emptyDir": {}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(is_running_ready(&p) && is_stateless(&p) && !is_inactive(&p));
        assert_eq!(key_of(&p.metadata), "n/a");
        let s = pod(serde_json::json!({"metadata": {"name": "b"},
            "spec": {"containers": [], "volumes": [{"name": "x",
                "persistentVolumeClaim": {"claimName": "c"}}]},
            "status": {"phase": "Running"}}));
        assert!(!is_stateless(&s) && !is_running_ready(&s));
    }

    #[test]
    fn key_buf_matches_key_of() {
        let meta = |ns: Option<&str>, name: &str| kube::api::ObjectMeta {
            namespace: ns.map(str::to_string),
            name: Some(name.to_string()),
            ..Default::default()
        };
        let mut buf = KeyBuf::default();
        assert_eq!(
            buf.of(&meta(Some("ns"), "long-pod-name")),
            "ns/long-pod-name"
        );
        assert_eq!(buf.of(&meta(None, "n")), "/n");
        assert_eq!(key_of(&meta(None, "n")), "/n");
    }

    #[test]
    fn node_schedulability_follows_cl2() {
        let ready = serde_json::json!({"type": "Ready", "status": "True"});
        let n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n"},
            "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
            "status": {"conditions": [ready]}}))
        .unwrap();
        assert!(
            node_schedulable(&n),
            "control-plane taint is not in CL2's list"
        );
        let t: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n"},
            "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]},
            "status": {"conditions": [ready]}}))
        .unwrap();
        assert!(!node_schedulable(&t));
        let u: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n"},
            "spec": {"unschedulable": true}, "status": {"conditions": [ready]}}))
        .unwrap();
        assert!(!node_schedulable(&u));
    }
}
