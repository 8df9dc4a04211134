//! Node lifecycle controller: watches node Leases in `kube-node-lease` and, like the real
//! controller, judges health by when *it* last saw a lease renewal (its own clock, not the
//! timestamps written by the kubelet). A node silent for longer than the grace period gets all
//! its conditions set to `Unknown` (reason `NodeStatusUnknown`) and the
//! `node.kubernetes.io/unreachable` NoSchedule + NoExecute taints; a node reporting
//! `Ready=False` gets the `node.kubernetes.io/not-ready` taints; taints are removed once the node
//! is Ready again. Pod eviction after the taint toleration period is not simulated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Ctx;

const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Last time each node showed a sign of life.
#[derive(Default)]
pub(crate) struct Health {
    seen: Mutex<HashMap<String, Instant>>,
}

impl Health {
    /// A node appeared (starts its grace period) or disappeared.
    pub fn node_seen(&self, name: &str, exists: bool) {
        let mut s = self.seen.lock();
        if exists {
            s.entry(name.to_string()).or_insert_with(Instant::now);
        } else {
            s.remove(name);
        }
    }

    /// The node's lease was renewed.
    pub fn renewed(&self, name: &str) {
        let now = Instant::now();
        let mut s = self.seen.lock();
        match s.get_mut(name) {
            Some(t) => *t = now,
            None => {
                s.insert(name.to_string(), now);
            }
        }
    }

    fn silent_for(&self, name: &str) -> Option<std::time::Duration> {
        self.seen.lock().get(name).map(|t| t.elapsed())
    }
}

/// Taints the controller wants on a node given its Ready condition status.
pub(crate) fn wanted_taints(ready: &str) -> Vec<(&'static str, &'static str)> {
    match ready {
        "True" => vec![],
        "False" => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
        _ => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
    }
}

/// The node's taints with the controller-managed ones replaced by `wanted`; None if unchanged.
pub(crate) fn reconcile_taints(current: &[Taint], wanted: &[(&str, &str)]) -> Option<Vec<Taint>> {
    let managed = |t: &Taint| t.key == UNREACHABLE || t.key == NOT_READY;
    let have: Vec<(&str, &str)> = current
        .iter()
        .filter(|t| managed(t))
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    let mut a = have.clone();
    let mut b = wanted.to_vec();
    a.sort();
    b.sort();
    if a == b {
        return None;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut out: Vec<Taint> = current.iter().filter(|t| !managed(t)).cloned().collect();
    for (k, e) in wanted {
        let existing = current.iter().find(|t| t.key == *k && t.effect == *e);
        out.push(existing.cloned().unwrap_or(Taint {
            key: (*k).to_string(),
            value: None,
            effect: (*e).to_string(),
            time_added: Some(now.clone()),
        }));
    }
    Some(out)
}

fn ready_status(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_else(|| "Unknown".to_string())
}

/// Periodically evaluates node health until shutdown.
pub(crate) async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(ctx.opts.node_monitor_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        for node in ctx.nodes.list() {
            if shutdown.is_cancelled() {
                return;
            }
            check_node(&ctx, &node).await;
        }
    }
}

async fn check_node(ctx: &Ctx, node: &Node) {
    let Some(name) = node.metadata.name.as_deref() else {
        return;
    };
    let api: Api<Node> = Api::all(ctx.client.clone());
    let grace = ctx.opts.node_monitor_grace_period;
    let mut ready = ready_status(node);
    let stale = ctx.health.silent_for(name).is_some_and(|d| d > grace);
    if stale && ready != "Unknown" {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let conds: Vec<serde_json::Value> = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let mut v = serde_json::to_value(&c).unwrap_or_default();
                v["status"] = json!("Unknown");
                v["reason"] = json!("NodeStatusUnknown");
                v["message"] = json!("Kubelet stopped posting node status.");
                v["lastTransitionTime"] = json!(now);
                v
            })
            .collect();
        let patch = json!({ "status": { "conditions": conds } });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => ready = "Unknown".to_string(),
            Err(e) => {
                tracing::debug!(node = name, error = %e, "marking node unknown failed");
                return;
            }
        }
    }
    // A node that is Ready but whose lease is stale stays untouched until the status update
    // above lands; a fresh Ready node loses the unreachable taints.
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let wanted = if stale && ready == "True" {
        wanted_taints("Unknown")
    } else {
        wanted_taints(&ready)
    };
    if let Some(taints) = reconcile_taints(current, &wanted) {
        let patch = json!({ "spec": { "taints": taints } });
        if let Err(e) = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(node = name, error = %e, "updating node taints failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_follow_readiness() {
        let user = Taint {
            key: "gpu".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = reconcile_taints(std::slice::from_ref(&user), &wanted_taints("Unknown")).unwrap();
        assert_eq!(t.len(), 3);
        assert!(
            t.iter()
                .any(|t| t.key == UNREACHABLE && t.effect == "NoExecute")
        );
        assert!(reconcile_taints(&t, &wanted_taints("Unknown")).is_none());
        let healed = reconcile_taints(&t, &wanted_taints("True")).unwrap();
        assert_eq!(healed, vec![user]);
        let nr = reconcile_taints(&[], &wanted_taints("False")).unwrap();
        assert!(nr.iter().all(|t| t.key == NOT_READY));
    }

    #[test]
    fn health_tracks_renewals() {
        let h = Health::default();
        assert!(h.silent_for("n").is_none());
        h.node_seen("n", true);
        assert!(h.silent_for("n").is_some());
        h.renewed("n");
        h.node_seen("n", false);
        assert!(h.silent_for("n").is_none());
    }
}
