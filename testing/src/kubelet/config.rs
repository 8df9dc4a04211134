//! Declarative configuration of hollow nodes: what each node advertises (capacity, labels,
//! taints), how it keeps itself alive (lease and status cadence) and how its pods move through
//! their lifecycle (delay distributions). Everything here is data so that simulator stages files
//! (YAML, camelCase) can tune it without code changes.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Configuration shared by every node of a hollow fleet.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HollowNodeConfig {
    /// Node names are `<namePrefix><index>`. Default `hollow-node-`.
    pub name_prefix: String,
    /// First index used in node names and address allocation. Default 0.
    pub start_index: usize,
    /// Capacity (and allocatable) advertised by each node, as Kubernetes quantities.
    /// Defaults: cpu `4`, memory `16Gi`, pods `110`, ephemeral-storage `100Gi`. Extra keys
    /// (e.g. `nvidia.com/gpu: "8"`) become extended resources.
    pub capacity: BTreeMap<String, String>,
    /// Extra node labels (on top of `kubernetes.io/hostname`, `kubernetes.io/os`, ...).
    pub labels: BTreeMap<String, String>,
    /// Taints put on every node at registration.
    pub taints: Vec<NodeTaint>,
    /// Pod lifecycle timings.
    pub pod_lifecycle: PodLifecycle,
    /// How often each node renews its Lease. Default `10s`.
    #[serde(with = "duration_str")]
    pub lease_renew_interval: Duration,
    /// `spec.leaseDurationSeconds` of the node Lease. Default 40.
    pub lease_duration_seconds: i32,
    /// How often each node re-posts its status (condition heartbeats). Default `60s`.
    #[serde(with = "duration_str")]
    pub node_status_update_period: Duration,
    /// How pods bound to the fleet's nodes are watched. Default `shared`.
    pub watch_mode: WatchMode,
    /// `status.nodeInfo.kubeletVersion`. Default `v1.36.0-cl2`.
    pub kubelet_version: String,
    /// `node.kubernetes.io/instance-type` label value. Default `hollow`.
    pub instance_type: String,
    /// Maximum concurrent API requests issued by the fleet. Default 64.
    pub max_concurrent_requests: usize,
    /// Get the initial pod state as a watch stream (`sendInitialEvents`, WatchList) instead of a
    /// paginated list. Default true; turn off for API servers without WatchList support.
    pub streaming_lists: bool,
}

impl Default for HollowNodeConfig {
    fn default() -> Self {
        let capacity = [
            ("cpu", "4"),
            ("memory", "16Gi"),
            ("pods", "110"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            name_prefix: "hollow-node-".to_string(),
            start_index: 0,
            capacity,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            pod_lifecycle: PodLifecycle::default(),
            lease_renew_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            node_status_update_period: Duration::from_secs(60),
            watch_mode: WatchMode::Shared,
            kubelet_version: "v1.36.0-cl2".to_string(),
            instance_type: "hollow".to_string(),
            max_concurrent_requests: 64,
            streaming_lists: true,
        }
    }
}

/// A taint as written in the config (`effect` is `NoSchedule`, `PreferNoSchedule` or
/// `NoExecute`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeTaint {
    /// Taint key.
    pub key: String,
    /// Taint value (may be empty).
    #[serde(default)]
    pub value: String,
    /// Taint effect.
    pub effect: String,
}

/// How a fleet learns about the pods bound to its nodes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum WatchMode {
    /// One watch on all pods with `spec.nodeName!=`, dispatched to the nodes (cheap at scale).
    #[default]
    Shared,
    /// One `spec.nodeName=<node>` watch per node, like a real kubelet.
    PerNode,
}

/// Timings of the pods run by hollow nodes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodLifecycle {
    /// Delay between a pod being bound and it reporting Running/Ready (image pull + start).
    /// Default uniform 100ms–500ms.
    pub start_delay: Delay,
    /// How long pods owned by a Job (restartPolicy Never/OnFailure) run before they succeed.
    /// Default fixed 1s.
    pub job_run_duration: Delay,
    /// Delay between a pod getting its deletionTimestamp and the kubelet removing it (capped
    /// at the pod's grace period). Default uniform 50ms–200ms.
    pub termination_delay: Delay,
}

impl Default for PodLifecycle {
    fn default() -> Self {
        Self {
            start_delay: Delay::Uniform {
                min: Duration::from_millis(100),
                max: Duration::from_millis(500),
            },
            job_run_duration: Delay::Fixed {
                value: Duration::from_secs(1),
            },
            termination_delay: Delay::Uniform {
                min: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
        }
    }
}

/// A random delay distribution, e.g. `{type: uniform, min: 100ms, max: 500ms}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Delay {
    /// Always the same delay.
    Fixed {
        /// The delay.
        #[serde(with = "duration_str")]
        value: Duration,
    },
    /// Uniformly distributed in `[min, max]`.
    Uniform {
        /// Lower bound.
        #[serde(with = "duration_str")]
        min: Duration,
        /// Upper bound.
        #[serde(with = "duration_str")]
        max: Duration,
    },
    /// Normally distributed, clamped at zero.
    Normal {
        /// Mean.
        #[serde(with = "duration_str")]
        mean: Duration,
        /// Standard deviation.
        #[serde(with = "duration_str")]
        stddev: Duration,
    },
    /// Exponentially distributed (memoryless), with the given mean.
    Exponential {
        /// Mean.
        #[serde(with = "duration_str")]
        mean: Duration,
    },
}

impl Delay {
    /// Draws one delay.
    pub fn sample(&self) -> Duration {
        let mut rng = rand::rng();
        match self {
            Delay::Fixed { value } => *value,
            Delay::Uniform { min, max } => {
                if max <= min {
                    *min
                } else {
                    let lo = min.as_secs_f64();
                    let hi = max.as_secs_f64();
                    Duration::from_secs_f64(rng.random_range(lo..=hi))
                }
            }
            Delay::Normal { mean, stddev } => {
                // Box-Muller transform.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random_range(0.0..1.0);
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let v = mean.as_secs_f64() + z * stddev.as_secs_f64();
                Duration::from_secs_f64(v.clamp(0.0, 86_400.0))
            }
            Delay::Exponential { mean } => {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                let v = -u.ln() * mean.as_secs_f64();
                Duration::from_secs_f64(v.clamp(0.0, 86_400.0))
            }
        }
    }
}

/// Parses a Go-style duration (`1h2m3s`, `150ms`, `1.5s`, `0`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * mult;
    }
    if !total.is_finite() || total > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// Formats a duration the way [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && d.as_nanos() > 0 {
        format!("{}us", d.as_micros())
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Serde helpers for durations written as Go-style strings (numbers are read as seconds).
pub mod duration_str {
    use super::*;

    /// Serializes as a Go-style string.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserializes from a Go-style string or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(f64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => parse_duration(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {s:?}"))),
            Raw::N(n) if n.is_finite() && (0.0..1e9).contains(&n) => Ok(Duration::from_secs_f64(n)),
            Raw::N(n) => Err(serde::de::Error::custom(format!("invalid duration {n}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_go_style() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn config_round_trips_through_yaml() {
        let yaml = r#"
namePrefix: gpu-node-
capacity: {cpu: "8", memory: 32Gi, pods: "110", nvidia.com/gpu: "8"}
taints: [{key: gpu, value: "true", effect: NoSchedule}]
podLifecycle:
  startDelay: {type: normal, mean: 1s, stddev: 200ms}
  jobRunDuration: {type: fixed, value: 2s}
leaseRenewInterval: 5s
watchMode: perNode
"#;
        let cfg: HollowNodeConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(cfg.name_prefix, "gpu-node-");
        assert_eq!(
            cfg.capacity.get("nvidia.com/gpu").map(String::as_str),
            Some("8")
        );
        assert_eq!(cfg.watch_mode, WatchMode::PerNode);
        assert_eq!(cfg.lease_renew_interval, Duration::from_secs(5));
        assert_eq!(cfg.lease_duration_seconds, 40);
        let back: HollowNodeConfig =
            serde_yaml::from_str(&serde_yaml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        assert!(serde_yaml::from_str::<HollowNodeConfig>("bogus: 1").is_err());
    }

    #[test]
    fn delays_stay_in_range() {
        let d = Delay::Uniform {
            min: Duration::from_millis(100),
            max: Duration::from_millis(200),
        };
        for _ in 0..1000 {
            let v = d.sample();
            assert!(v >= Duration::from_millis(100) && v <= Duration::from_millis(200));
        }
        let n = Delay::Normal {
            mean: Duration::from_millis(10),
            stddev: Duration::from_secs(1),
        };
        for _ in 0..1000 {
            // Clamped at zero, never panics on negative draws.
            let _ = n.sample();
        }
        let e = Delay::Exponential {
            mean: Duration::from_millis(100),
        };
        let mean: f64 = (0..4000).map(|_| e.sample().as_secs_f64()).sum::<f64>() / 4000.0;
        assert!(mean > 0.05 && mean < 0.2, "mean {mean}");
    }
}
