//! Declarative realism and fault-injection settings of the simulated cluster (YAML, like KWOK
//! stages), loaded with `--stages FILE`.
//!
//! ```yaml
//! server:
//!   latency:                 # per verb; `default` applies to verbs not listed
//!     default: {type: lognormal, medianMs: 2, sigma: 0.5}
//!     LIST: {type: uniform, minMs: 2, maxMs: 8}
//!   maxInFlight: {readOnly: 400, mutating: 200}
//!   faults:
//!     - {verb: POST, resource: pods, errorRate: 0.01, code: 500}
//!   dropWatchesEverySeconds: 0   # 0 = never
//!   latencySpikes: {everySeconds: 0, durationSeconds: 1, extraMs: 200}
//! nodes: { ... }   # hollow node template (kubelet::HollowNodeConfig)
//! pods: { ... }    # pod lifecycle delays (kubelet::PodLifecycle), overrides nodes.podLifecycle
//! ```
//!
//! Defaults give plausible non-zero server latency (a lognormal around 1 ms) and real
//! kube-apiserver in-flight limits.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kubelet::{HollowNodeConfig, PodLifecycle};

/// A stages file could not be loaded.
#[derive(Debug, Error)]
pub enum StagesError {
    /// Reading the file failed.
    #[error("reading stages file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The YAML is invalid.
    #[error("parsing stages file {path}: {source}")]
    Parse {
        /// File path.
        path: String,
        /// Cause.
        source: serde_yaml::Error,
    },
}

/// A latency distribution in milliseconds.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Latency {
    /// Always `ms`.
    Fixed {
        /// Milliseconds.
        ms: f64,
    },
    /// Uniform in `[minMs, maxMs]`.
    #[serde(rename_all = "camelCase")]
    Uniform {
        /// Lower bound (ms).
        min_ms: f64,
        /// Upper bound (ms).
        max_ms: f64,
    },
    /// Normal, clamped at zero.
    #[serde(rename_all = "camelCase")]
    Normal {
        /// Mean (ms).
        mean_ms: f64,
        /// Standard deviation (ms).
        stddev_ms: f64,
    },
    /// Log-normal with the given median and shape `sigma`.
    #[serde(rename_all = "camelCase")]
    Lognormal {
        /// Median (ms).
        median_ms: f64,
        /// Shape.
        sigma: f64,
    },
}

fn std_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Latency {
    /// Draws one latency.
    pub fn sample(&self) -> Duration {
        let mut rng = rand::rng();
        let ms = match self {
            Latency::Fixed { ms } => *ms,
            Latency::Uniform { min_ms, max_ms } => {
                if max_ms <= min_ms {
                    *min_ms
                } else {
                    rng.random_range(*min_ms..=*max_ms)
                }
            }
            Latency::Normal { mean_ms, stddev_ms } => mean_ms + std_normal(&mut rng) * stddev_ms,
            Latency::Lognormal { median_ms, sigma } => {
                median_ms * (std_normal(&mut rng) * sigma).exp()
            }
        };
        Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 600.0))
    }
}

/// In-flight request limits (beyond → 429 with `Retry-After: 1`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MaxInFlight {
    /// Read-only requests (GET/LIST). Default 400. 0 = unlimited.
    pub read_only: i64,
    /// Mutating requests. Default 200. 0 = unlimited.
    pub mutating: i64,
}

impl Default for MaxInFlight {
    fn default() -> Self {
        Self {
            read_only: 400,
            mutating: 200,
        }
    }
}

/// An injected error.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Verb as in metrics (GET, LIST, POST, PUT, PATCH, DELETE, ...); empty or `*` = any.
    #[serde(default)]
    pub verb: String,
    /// Resource plural; empty or `*` = any.
    #[serde(default)]
    pub resource: String,
    /// Probability in [0, 1].
    pub error_rate: f64,
    /// HTTP status code to return (e.g. 500, 503, 429).
    #[serde(default = "default_fault_code")]
    pub code: u16,
}

fn default_fault_code() -> u16 {
    500
}

impl Fault {
    /// Whether the fault applies to the request.
    pub fn applies(&self, verb: &str, resource: &str) -> bool {
        (self.verb.is_empty() || self.verb == "*" || self.verb.eq_ignore_ascii_case(verb))
            && (self.resource.is_empty() || self.resource == "*" || self.resource == resource)
    }
}

/// Periodic latency spikes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LatencySpikes {
    /// Period in seconds (0 = off).
    pub every_seconds: f64,
    /// How long each spike lasts, in seconds.
    pub duration_seconds: f64,
    /// Extra latency during a spike (ms).
    pub extra_ms: f64,
}

/// API server realism settings.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ServerStages {
    /// Latency per verb (`GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `DELETE`, ...) with
    /// `default` for the rest.
    pub latency: BTreeMap<String, Latency>,
    /// In-flight limits.
    pub max_in_flight: MaxInFlight,
    /// Fault injection rules (first match wins).
    pub faults: Vec<Fault>,
    /// Close every watch stream after this many seconds (0 = never).
    pub drop_watches_every_seconds: f64,
    /// Latency spikes.
    pub latency_spikes: LatencySpikes,
}

impl Default for ServerStages {
    fn default() -> Self {
        let mut latency = BTreeMap::new();
        latency.insert(
            "default".to_string(),
            Latency::Lognormal {
                median_ms: 1.0,
                sigma: 0.5,
            },
        );
        latency.insert(
            "LIST".to_string(),
            Latency::Lognormal {
                median_ms: 3.0,
                sigma: 0.5,
            },
        );
        Self {
            latency,
            max_in_flight: MaxInFlight::default(),
            faults: Vec::new(),
            drop_watches_every_seconds: 0.0,
            latency_spikes: LatencySpikes::default(),
        }
    }
}

impl ServerStages {
    /// No injected latency, no limits: what tests that count requests want.
    pub fn zero() -> Self {
        Self {
            latency: BTreeMap::new(),
            max_in_flight: MaxInFlight {
                read_only: 0,
                mutating: 0,
            },
            ..Self::default()
        }
    }

    /// Injected latency for a verb at `elapsed` since server start.
    pub fn latency_for(&self, verb: &str, elapsed: Duration) -> Duration {
        let base = self
            .latency
            .get(verb)
            .or_else(|| self.latency.get("default"))
            .map(Latency::sample)
            .unwrap_or_default();
        let s = &self.latency_spikes;
        if s.every_seconds > 0.0 && s.extra_ms > 0.0 {
            let phase = elapsed.as_secs_f64() % s.every_seconds;
            if phase < s.duration_seconds {
                return base + Duration::from_secs_f64(s.extra_ms / 1000.0);
            }
        }
        base
    }

    /// The fault to inject for a request, if any (random draw).
    pub fn fault_for(&self, verb: &str, resource: &str) -> Option<u16> {
        let f = self.faults.iter().find(|f| f.applies(verb, resource))?;
        (rand::rng().random_range(0.0..1.0) < f.error_rate).then_some(f.code)
    }
}

/// Everything a stages file configures.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SimStages {
    /// API server realism.
    pub server: ServerStages,
    /// Hollow node template.
    pub nodes: HollowNodeConfig,
    /// Pod lifecycle (overrides `nodes.podLifecycle` when given).
    pub pods: Option<PodLifecycle>,
}

impl SimStages {
    /// Parses YAML.
    pub fn from_yaml(text: &str, path: &str) -> Result<Self, StagesError> {
        serde_yaml::from_str(text).map_err(|source| StagesError::Parse {
            path: path.to_string(),
            source,
        })
    }

    /// Loads a stages file.
    pub fn load(path: &Path) -> Result<Self, StagesError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| StagesError::Read {
            path: p.clone(),
            source,
        })?;
        Self::from_yaml(&text, &p)
    }

    /// The hollow node config with `pods` applied.
    pub fn node_config(&self) -> HollowNodeConfig {
        let mut n = self.nodes.clone();
        if let Some(p) = &self.pods {
            n.pod_lifecycle = p.clone();
        }
        n
    }
}

/// The documented default stages file shipped with the simulator.
pub const DEFAULT_STAGES_YAML: &str = include_str!("../fixtures/stages/default.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_and_samples() {
        let s = SimStages::from_yaml(DEFAULT_STAGES_YAML, "default.yaml").unwrap();
        assert_eq!(s.server.max_in_flight.read_only, 400);
        let d = s.server.latency_for("GET", Duration::ZERO);
        assert!(d < Duration::from_secs(1));
        let f = Fault {
            verb: "POST".into(),
            resource: "pods".into(),
            error_rate: 1.0,
            code: 503,
        };
        let srv = ServerStages {
            faults: vec![f],
            ..ServerStages::zero()
        };
        assert_eq!(srv.fault_for("POST", "pods"), Some(503));
        assert_eq!(srv.fault_for("GET", "pods"), None);
        assert!(SimStages::from_yaml("server: {bogus: 1}", "x").is_err());
    }
}
