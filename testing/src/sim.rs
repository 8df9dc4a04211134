//! Starting and stopping the whole simulated cluster in-process: the API server over its
//! store (with garbage collection and namespace lifecycle), the control plane (scheduler and
//! controllers) and a fleet of hollow nodes, all on loopback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cl2_hollow::sim::SimError> {
//! let sim = cl2_hollow::sim::start(cl2_hollow::sim::SimConfig { nodes: 10, ..Default::default() }).await?;
//! let client = sim.client();
//! // ... drive it with kube::Client or `kubectl --kubeconfig` ...
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::controllers::{ControlPlaneOptions, spawn_control_plane};
use crate::kubelet::{HollowFleet, KubeletError, start_fleet};
use crate::metrics::SimMetrics;
use crate::server::{self, ApiServer, ServerConfig, ServerError};
use crate::stages::{ServerStages, SimStages};
use crate::store::{Store, StoreConfig};

/// Configuration of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of hollow nodes (0 = none, the default for API-only tests).
    pub nodes: usize,
    /// Listen address (default 127.0.0.1:0 = any free port).
    pub listen: SocketAddr,
    /// Realism settings, node template and pod lifecycle.
    pub stages: SimStages,
    /// Watch events retained per resource for resumption (older → 410 Gone). Default 50,000.
    pub event_window: usize,
    /// BOOKMARK period on watches that allow bookmarks. Default 10 s.
    pub bookmark_interval: Duration,
    /// Run the scheduler and controllers. Default true.
    pub control_plane: bool,
    /// Control plane options (metrics are filled in by [`start`]).
    pub control_plane_options: ControlPlaneOptions,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 0,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stages: SimStages::default(),
            event_window: StoreConfig::default().event_window,
            bookmark_interval: Duration::from_secs(10),
            control_plane: true,
            control_plane_options: ControlPlaneOptions::default(),
        }
    }
}

impl SimConfig {
    /// The API server alone, answering without realism delays ([`ServerStages::zero`]): no
    /// control plane and no nodes. The usual base for API tests and benchmarks.
    pub fn api_only() -> Self {
        Self {
            stages: SimStages {
                server: ServerStages::zero(),
                ..SimStages::default()
            },
            control_plane: false,
            ..Self::default()
        }
    }
}

/// Starting the simulated cluster failed.
#[derive(Debug, Error)]
pub enum SimError {
    /// The API server could not start.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// Building the client failed.
    #[error("building kube client: {0}")]
    Client(String),
    /// The hollow node fleet could not start.
    #[error("starting hollow nodes: {0}")]
    Kubelet(#[from] KubeletError),
}

/// A running simulated cluster.
pub struct SimCluster {
    server: ApiServer,
    store: Arc<Store>,
    metrics: Arc<SimMetrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    fleet: Option<HollowFleet>,
    client: kube::Client,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

fn kube_config_for(base: &str) -> Result<kube::Config, SimError> {
    let uri: http::Uri = base
        .parse()
        .map_err(|e: http::uri::InvalidUri| SimError::Client(e.to_string()))?;
    let mut cfg = kube::Config::new(uri);
    cfg.default_namespace = "default".into();
    cfg.read_timeout = Some(Duration::from_secs(295));
    cfg.connect_timeout = Some(Duration::from_secs(30));
    Ok(cfg)
}

/// Starts the API server, control plane and `cfg.nodes` hollow nodes; returns once the server
/// listens and every node is registered and Ready.
pub async fn start(cfg: SimConfig) -> Result<SimCluster, SimError> {
    let shutdown = CancellationToken::new();
    let store = Store::new(StoreConfig {
        event_window: cfg.event_window,
        ..StoreConfig::default()
    });
    server::seed(&store);
    let mut tasks = store.spawn_workers(shutdown.clone());
    let metrics = Arc::new(SimMetrics::new());
    let server_cfg = ServerConfig {
        listen: cfg.listen,
        stages: cfg.stages.server.clone(),
        bookmark_interval: cfg.bookmark_interval,
        ..ServerConfig::default()
    };
    let server =
        server::start(server_cfg, store.clone(), metrics.clone(), shutdown.clone()).await?;
    let base = format!("http://{}", server.addr);
    let client = kube::Client::try_from(kube_config_for(&base)?)
        .map_err(|e| SimError::Client(e.to_string()))?;
    if cfg.control_plane {
        let mut opts = cfg.control_plane_options.clone();
        opts.metrics = Some(metrics.clone());
        tasks.extend(spawn_control_plane(client.clone(), opts, shutdown.clone()));
    }
    let fleet = if cfg.nodes > 0 {
        Some(
            start_fleet(
                client.clone(),
                cfg.stages.node_config(),
                cfg.nodes,
                shutdown.clone(),
            )
            .await?,
        )
    } else {
        None
    };
    Ok(SimCluster {
        server,
        store,
        metrics,
        shutdown,
        tasks,
        fleet,
        client,
    })
}

impl SimCluster {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A kubeconfig for kubectl (context `cl2-sim`, no auth).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cl2-sim\n  cluster:\n    server: {}\ncontexts:\n- name: cl2-sim\n  context:\n    cluster: cl2-sim\n    user: cl2-sim\n    namespace: default\ncurrent-context: cl2-sim\nusers:\n- name: cl2-sim\n  user: {{}}\npreferences: {{}}\n",
            self.base_url()
        )
    }

    /// Writes [`SimCluster::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A `kube::Config` pointing at the server.
    pub fn kube_config(&self) -> kube::Config {
        kube_config_for(&self.base_url())
            .unwrap_or_else(|_| kube::Config::new(http::Uri::from_static("http://127.0.0.1")))
    }

    /// A client for the server.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The metrics registry (shared with the scheduler).
    pub fn metrics(&self) -> Arc<SimMetrics> {
        self.metrics.clone()
    }

    /// The object store (for in-process inspection in tests and benchmarks).
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Names of the hollow nodes.
    pub fn node_names(&self) -> Vec<String> {
        self.fleet
            .as_ref()
            .map(HollowFleet::node_names)
            .unwrap_or_default()
    }

    /// Stops hollow nodes, control loops and the server.
    pub async fn shutdown(self) {
        if let Some(f) = self.fleet {
            f.shutdown().await;
        }
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.server.shutdown().await;
    }
}
