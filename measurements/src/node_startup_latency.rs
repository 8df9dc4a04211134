//! NodeStartupLatency: how long nodes registered during the measurement take to become Ready
//! and to renew their first Lease (kubemark's node startup SLO: p99 ≤ 4 s by default).
//!
//! `start` watches Nodes and `kube-node-lease` Leases; only nodes whose `creationTimestamp` is
//! not older than the second `start` ran in count. Per node: create = receive time of the first
//! event when the node was first seen not Ready (else its `creationTimestamp`), ready = receive
//! time of the first event with Ready=True, lease = receive time of the first Lease named after
//! the node. `gather` reports p10/p50/p90/p99 of `create_to_ready` and
//! `create_to_lease` (PerfData v1, ms) and checks `create_to_ready` against `threshold`
//! (default 4s; `perc50/90/99Threshold` override).

use crate::common::{self, WatchTask};
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, decode};
use cl2_framework::measurement::stats::{DataItem, LatencyPercentiles, PerfData};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
    Verdict,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "NodeStartupLatency",
    summary: "node creation → Ready and → first Lease latency; SLO p99 <= 4s",
    new: || Box::new(NodeStartupLatency::default()),
};

const METHOD: &str = "NodeStartupLatency";

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    threshold: Option<GoDuration>,
    #[serde(default)]
    perc50_threshold: Option<GoDuration>,
    #[serde(default)]
    perc90_threshold: Option<GoDuration>,
    #[serde(default)]
    perc99_threshold: Option<GoDuration>,
    #[serde(default)]
    enable_violations: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeTimes {
    create: Option<i64>,
    ready: Option<i64>,
    lease: Option<i64>,
}

#[derive(Default)]
struct Shared {
    since_ms: i64,
    nodes: HashMap<String, NodeTimes>,
    /// Leases seen before their node (name → receive ms).
    early_leases: HashMap<String, i64>,
}

struct Running {
    shared: Arc<Mutex<Shared>>,
    nodes: WatchTask,
    leases: WatchTask,
    config: Config,
}

#[derive(Default)]
pub(crate) struct NodeStartupLatency {
    running: Option<Running>,
}

fn compute(shared: &Shared, cfg: &Config, id: &str) -> Summary {
    let mut ready: Vec<f64> = Vec::new();
    let mut lease: Vec<f64> = Vec::new();
    for t in shared.nodes.values() {
        let Some(c) = t.create else { continue };
        if let Some(r) = t.ready {
            ready.push((r - c).max(0) as f64);
        }
        if let Some(l) = t.lease {
            lease.push((l - c).max(0) as f64);
        }
    }
    let r = LatencyPercentiles::of(&mut ready);
    let l = LatencyPercentiles::of(&mut lease);
    let mut pd = PerfData::new("v1");
    for (name, p) in [("create_to_ready", r), ("create_to_lease", l)] {
        pd.data_items.push(DataItem {
            data: p.data(),
            unit: "ms".into(),
            labels: BTreeMap::from([("Metric".to_string(), name.to_string())]),
        });
    }
    let base = cfg.threshold.map_or(Duration::from_secs(4), |d| d.0);
    let th = |o: Option<GoDuration>| o.map_or(base, |d| d.0).as_secs_f64() * 1000.0;
    let mut s = Summary::new(format!("NodeStartupLatency_{id}"), pd.to_value());
    for (label, got, limit) in [
        ("50th", r.p50, th(cfg.perc50_threshold)),
        ("90th", r.p90, th(cfg.perc90_threshold)),
        ("99th", r.p99, th(cfg.perc99_threshold)),
    ] {
        if r.count > 0 && got > limit {
            s.violations.push(format!(
                "node startup: too high latency {label} percentile: got {got}ms expected: {limit}ms"
            ));
        }
    }
    s.verdict = match (
        s.violations.is_empty(),
        cfg.enable_violations.unwrap_or(true),
    ) {
        (true, _) => Verdict::Pass,
        (false, true) => Verdict::Fail,
        (false, false) => Verdict::Warn,
    };
    s.key_numbers = vec![
        KeyNumber::new("p50", r.p50, "ms"),
        KeyNumber::new("p99", r.p99, "ms"),
        KeyNumber::new("nodes", r.count as f64, ""),
        KeyNumber::new("leaseP99", l.p99, "ms"),
    ];
    s.slo = Some(format!(
        "create_to_ready p99 <= {}",
        cl2_framework::report::format_value(th(cfg.perc99_threshold), "ms")
    ));
    s
}

#[async_trait::async_trait]
impl Measurement for NodeStartupLatency {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, cfg): (String, Config) = decode(METHOD, id, params)?;
        match action.as_str() {
            "start" => {
                let shared = Arc::new(Mutex::new(Shared {
                    // creationTimestamp has 1 s precision: count nodes created in the
                    // second `start` ran in.
                    since_ms: {
                        let now = common::now_ms();
                        now - now.rem_euclid(1000)
                    },
                    ..Shared::default()
                }));
                let s = shared.clone();
                let mut wc = kube::runtime::watcher::Config::default();
                if let Some(l) = &cfg.label_selector {
                    wc = wc.labels(l);
                }
                let nodes = WatchTask::spawn(
                    kube::Api::<Node>::all(ctx.cluster.client.clone()),
                    wc,
                    move |n: Node, now| {
                        let created = n.metadata.creation_timestamp.as_ref().map(common::time_ms);
                        let mut g = s.lock();
                        if created.is_none_or(|c| c < g.since_ms) {
                            return;
                        }
                        let name = n.metadata.name.clone().unwrap_or_default();
                        let early = g.early_leases.remove(&name);
                        let ready = common::node_ready(&n);
                        let t = g.nodes.entry(name).or_default();
                        if t.create.is_none() {
                            // Seen before it is Ready: the receive time is a millisecond-precise
                            // creation time; otherwise fall back to creationTimestamp (1 s).
                            t.create = if ready {
                                created
                            } else {
                                Some(now.max(created.unwrap_or(now)))
                            };
                        }
                        if t.lease.is_none() {
                            t.lease = early;
                        }
                        if t.ready.is_none() && ready {
                            t.ready = Some(now);
                        }
                    },
                    |_| {},
                    Duration::from_secs(60),
                )
                .await;
                let s = shared.clone();
                let leases = WatchTask::spawn(
                    kube::Api::<Lease>::namespaced(ctx.cluster.client.clone(), "kube-node-lease"),
                    kube::runtime::watcher::Config::default(),
                    move |l: Lease, now| {
                        let name = l.metadata.name.clone().unwrap_or_default();
                        let mut g = s.lock();
                        match g.nodes.get_mut(&name) {
                            Some(t) => {
                                if t.lease.is_none() {
                                    t.lease = Some(now);
                                }
                            }
                            None => {
                                g.early_leases.entry(name).or_insert(now);
                            }
                        }
                    },
                    |_| {},
                    Duration::from_secs(60),
                )
                .await;
                self.running = Some(Running {
                    shared,
                    nodes,
                    leases,
                    config: cfg,
                });
                Ok(vec![])
            }
            "gather" => {
                let Some(run) = self.running.take() else {
                    return Err(common::not_started(METHOD, id));
                };
                run.nodes.stop().await;
                run.leases.stop().await;
                let mut c = run.config.clone();
                if cfg.threshold.is_some() {
                    c.threshold = cfg.threshold;
                }
                let g = run.shared.lock();
                Ok(vec![compute(&g, &c, id)])
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unknown action {other:?}"),
            )),
        }
    }

    async fn dispose(&mut self) {
        if let Some(run) = self.running.take() {
            run.nodes.stop().await;
            run.leases.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_threshold() {
        let mut sh = Shared::default();
        for (i, d) in [1000, 2000, 3000, 5000].iter().enumerate() {
            sh.nodes.insert(
                format!("n{i}"),
                NodeTimes {
                    create: Some(0),
                    ready: Some(*d),
                    lease: Some(d / 2),
                },
            );
        }
        sh.nodes.insert(
            "old".into(),
            NodeTimes {
                create: None,
                ready: Some(1),
                lease: None,
            },
        );
        let s = compute(&sh, &Config::default(), "x");
        assert_eq!(s.key("p50"), Some(2000.0));
        assert_eq!(s.key("p99"), Some(5000.0));
        assert_eq!(s.key("nodes"), Some(4.0));
        assert_eq!(s.verdict, Verdict::Fail);
        assert!(
            s.violations
                .iter()
                .any(|v| v.contains("99th percentile: got 5000ms expected: 4000ms")),
            "{:?}",
            s.violations
        );
        let ok = Config {
            threshold: Some(GoDuration(Duration::from_secs(6))),
            ..Config::default()
        };
        assert_eq!(compute(&sh, &ok, "x").verdict, Verdict::Pass);
    }
}
