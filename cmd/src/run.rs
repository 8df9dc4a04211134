//! `cl2 run`, `cl2 validate`, `cl2 render`: loading configs, choosing the cluster (a real one
//! through a kubeconfig, or the embedded simulated one), running, reporting, exit codes.

use crate::cli::{RenderArgs, RunArgs, ValidateArgs};
use crate::{Outcome, UsageError, progress, table};
use anyhow::{Context, Result};
use cl2_framework::cluster::{self, Cluster, ConnectOptions};
use cl2_framework::config::{self, LoadOptions, LoadedConfig};
use cl2_framework::executor::{Executor, ExecutorOptions};
use cl2_framework::measurement::{MeasurementContext, MeasurementManager, Registry};
use cl2_framework::report::{self, ReportMeta};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One test to run: a config plus its own override files.
#[derive(Debug, Clone)]
struct Scenario {
    identifier: Option<String>,
    config: PathBuf,
    overrides: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuiteEntry {
    identifier: String,
    config_path: PathBuf,
    #[serde(default)]
    override_paths: Vec<PathBuf>,
}

fn scenarios(args: &RunArgs) -> Result<Vec<Scenario>> {
    if let Some(suite) = &args.testsuite {
        let text = std::fs::read_to_string(suite)
            .map_err(|e| UsageError(format!("{}: cannot read test suite: {e}", suite.display())))?;
        let entries: Vec<SuiteEntry> = serde_yaml::from_str(&text)
            .map_err(|e| UsageError(format!("{}: invalid test suite: {e}", suite.display())))?;
        let base = suite.parent().unwrap_or(Path::new("."));
        let mut out = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            if e.identifier.contains('_') {
                return Err(UsageError(format!(
                    "{}: [{i}].identifier {:?} must not contain '_' (it separates report file name parts)",
                    suite.display(),
                    e.identifier
                ))
                .into());
            }
            let mut overrides = args.testoverrides.clone();
            overrides.extend(e.override_paths.iter().map(|p| base.join(p)));
            out.push(Scenario {
                identifier: Some(e.identifier),
                config: base.join(e.config_path),
                overrides,
            });
        }
        Ok(out)
    } else {
        Ok(args
            .testconfig
            .iter()
            .map(|c| Scenario {
                identifier: None,
                config: c.clone(),
                overrides: args.testoverrides.clone(),
            })
            .collect())
    }
}

fn load_options(overrides: &[PathBuf], nodes: u64, registry: &Registry) -> LoadOptions {
    LoadOptions {
        overrides: overrides.to_vec(),
        nodes: Some(nodes),
        env: std::env::vars().collect(),
        known_measurements: registry.names(),
    }
}

fn load(scenario: &Scenario, nodes: u64, registry: &Registry) -> Result<LoadedConfig> {
    config::load(
        &scenario.config,
        &load_options(&scenario.overrides, nodes, registry),
    )
    .map_err(|e| UsageError(e.to_string()).into())
}

/// `cl2 validate`.
pub fn validate(args: ValidateArgs, registry: &Registry) -> Result<Outcome> {
    let mut outcome = Outcome::Pass;
    for path in &args.configs {
        match config::load(
            path,
            &load_options(&args.testoverrides, args.nodes, registry),
        ) {
            Ok(loaded) => {
                let steps = loaded.config.steps.len();
                println!(
                    "{}: ok ({} steps, test {:?})",
                    path.display(),
                    steps,
                    loaded.config.name
                );
            }
            Err(e) => {
                eprintln!("{e}");
                outcome = Outcome::Usage;
            }
        }
    }
    Ok(outcome)
}

/// `cl2 render`.
pub fn render(args: RenderArgs, registry: &Registry) -> Result<Outcome> {
    let opts = load_options(&args.testoverrides, args.nodes, registry);
    match config::render(&args.config, &opts, args.replica) {
        Ok(rendered) => {
            print!("{}", rendered.to_text());
            Ok(Outcome::Pass)
        }
        Err(e) => Err(UsageError(e.to_string()).into()),
    }
}

/// Where the test runs: a real cluster, or the embedded simulated one (which we own).
struct Target {
    cluster: Cluster,
    nodes: u64,
    sim: Option<cl2_hollow::sim::SimCluster>,
    _kubeconfig_dir: Option<tempfile::TempDir>,
    description: String,
}

async fn connect(args: &RunArgs) -> Result<Target> {
    let opts = ConnectOptions {
        kubeconfig: args.cluster.kubeconfig.clone(),
        context: args.cluster.context.clone(),
        qps: args.cluster.qps,
        burst: args.cluster.burst,
    };
    if let Some(kubeconfig) = &args.cluster.kubeconfig {
        let cluster = cluster::connect(&opts)
            .await
            .with_context(|| format!("connecting with kubeconfig {}", kubeconfig.display()))?;
        let nodes = match args.nodes {
            Some(n) => n,
            None => count_schedulable_nodes(&cluster).await?,
        };
        eprintln!(
            "cl2: using the cluster of kubeconfig {} ({nodes} nodes)",
            kubeconfig.display()
        );
        return Ok(Target {
            cluster,
            nodes,
            sim: None,
            _kubeconfig_dir: None,
            description: format!("kubeconfig {}", kubeconfig.display()),
        });
    }
    let nodes = args.nodes.unwrap_or(100);
    let sim_config = crate::sim::sim_config(
        nodes as usize,
        cl2_hollow::sim::SimConfig::default().listen,
        args.stages.as_deref(),
    )?;
    let started = std::time::Instant::now();
    let sim = cl2_hollow::sim::start(sim_config)
        .await
        .context("starting the embedded simulated cluster")?;
    let dir = tempfile::tempdir().context("creating a temporary directory for the kubeconfig")?;
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig)
        .context("writing the simulated cluster's kubeconfig")?;
    eprintln!(
        "cl2: no --kubeconfig given: started the embedded simulated cluster at {} with {nodes} hollow nodes in {:.1}s",
        sim.base_url(),
        started.elapsed().as_secs_f64()
    );
    let cluster = cluster::from_kube_config(sim.kube_config(), &opts, Some(kubeconfig), true)
        .context("building a client for the simulated cluster")?;
    Ok(Target {
        cluster,
        nodes,
        description: format!("embedded simulated cluster ({nodes} hollow nodes)"),
        sim: Some(sim),
        _kubeconfig_dir: Some(dir),
    })
}

/// Schedulable, Ready, untainted (by the well-known node-condition taints) nodes, as upstream counts.
async fn count_schedulable_nodes(cluster: &Cluster) -> Result<u64> {
    use k8s_openapi::api::core::v1::Node;
    let api: kube::Api<Node> = kube::Api::all(cluster.client.clone());
    let nodes = api
        .list(&Default::default())
        .await
        .context("listing nodes")?;
    let count = nodes
        .items
        .iter()
        .filter(|n| cl2_measurements::node_schedulable(n))
        .count();
    if count == 0 {
        anyhow::bail!("the cluster has no schedulable Ready node; pass --nodes to run anyway");
    }
    Ok(count as u64)
}

/// Parses a Go-style duration for `--timeout`.
fn parse_timeout(s: &str) -> Result<Duration> {
    cl2_framework::duration::parse_go_duration(s)
        .map_err(|e| UsageError(format!("--timeout {s:?}: {e}")).into())
}

/// `cl2 run`.
pub async fn run(args: RunArgs, registry: Registry) -> Result<Outcome> {
    let mut registry = registry;
    for plugin in &args.measurement_plugins {
        let (name, path) = plugin.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--measurement-plugin {plugin:?}: expected NAME=PATH"
            ))
        })?;
        registry
            .register_plugin(name, Path::new(path))
            .map_err(|e| UsageError(format!("--measurement-plugin {plugin:?}: {e}")))?;
    }
    let registry = Arc::new(registry);
    let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
    let scenarios = scenarios(&args)?;

    // Check every config before touching any cluster: config errors exit 2 at once.
    let planned_nodes = args.nodes.unwrap_or(100);
    for s in &scenarios {
        load(s, planned_nodes, &registry)?;
    }

    let target = connect(&args).await?;
    let interrupts = Interrupts::install();
    let mut outcome = Outcome::Pass;
    for scenario in &scenarios {
        if interrupts.token.is_cancelled() {
            break;
        }
        let result = run_one(&args, &registry, &target, scenario, &interrupts, timeout).await;
        match result {
            Ok(o) => outcome = outcome.worst(o),
            Err(e) => {
                eprintln!("error: {}: {e:#}", scenario.config.display());
                outcome = outcome.worst(if e.downcast_ref::<UsageError>().is_some() {
                    Outcome::Usage
                } else {
                    Outcome::Fail
                });
            }
        }
    }
    if let Some(sim) = target.sim {
        sim.shutdown().await;
    }
    Ok(outcome)
}

async fn run_one(
    args: &RunArgs,
    registry: &Arc<Registry>,
    target: &Target,
    scenario: &Scenario,
    interrupts: &Interrupts,
    timeout: Option<Duration>,
) -> Result<Outcome> {
    let loaded = Arc::new(load(scenario, target.nodes, registry)?);
    let test_name = scenario
        .identifier
        .clone()
        .unwrap_or_else(|| loaded.config.name.clone());
    let report_dir = match &args.report_dir {
        Some(d) => d.clone(),
        None => PathBuf::from("reports").join(format!(
            "{}-{}",
            loaded.config.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        )),
    };
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("creating report directory {}", report_dir.display()))?;
    eprintln!(
        "cl2: running test {test_name:?} from {}",
        scenario.config.display()
    );

    // A per-test token: the global one (Ctrl-C) or the timeout cancel it.
    let token = interrupts.token.child_token();
    let mut base = MeasurementContext::new(target.cluster.clone(), test_name.clone());
    base.test_params = loaded.params.clone();
    base.enable_exec = args.enable_exec;
    base.report_dir = Some(report_dir.clone());
    base.namespace_prefix = Some(loaded.config.namespace.prefix.clone());
    base.cancel = token.clone();
    let manager = Arc::new(MeasurementManager::new(registry.clone(), base));
    let progress = progress::Bars::new();
    let timer = timeout.map(|t| {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(t).await;
            eprintln!("cl2: --timeout of {t:?} reached: interrupting the test");
            token.cancel();
        })
    });
    let executor = Arc::new(Executor::new(
        target.cluster.clone(),
        loaded.clone(),
        manager.clone(),
        ExecutorOptions {
            cancel: token.clone(),
            progress: progress.clone(),
            delete_automanaged_namespaces: args.delete_automanaged_namespaces,
            delete_stale_namespaces: args.delete_stale_namespaces,
        },
    ));
    interrupts.set_executor(executor.clone());
    let record = executor.run().await;
    interrupts.clear_executor();
    if let Some(t) = timer {
        t.abort();
    }
    progress.clear();
    let results = manager.finish().await;

    let server_version = target
        .cluster
        .client
        .apiserver_version()
        .await
        .map(|v| v.git_version)
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let meta = ReportMeta {
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        server_version,
        config_path: scenario.config.display().to_string(),
        config_hash: loaded.source_hash.clone(),
        params: loaded.params.clone(),
        client_latency: target.cluster.latency.snapshot(),
        simulated: target.sim.is_some(),
        cluster: target.description.clone(),
        nodes: target.nodes,
        provider: args.provider.clone(),
        client_bottlenecks: client_bottlenecks(target, args),
    };
    let files = report::write_reports(&report_dir, &record, &results, &meta)
        .with_context(|| format!("writing reports to {}", report_dir.display()))?;

    table::print_run_summary(&record, &results, &files);
    if !record.namespaces_left.is_empty() {
        eprintln!(
            "cl2: namespaces left on the cluster: {}",
            record.namespaces_left.join(", ")
        );
    }
    let outcome = match files.verdict {
        cl2_framework::measurement::Verdict::Fail => Outcome::Fail,
        _ if record.partial || record.errors.iter().any(|e| e.fatal) => Outcome::Fail,
        _ if !record.errors.is_empty() || record.steps.iter().any(|s| !s.errors.is_empty()) => {
            Outcome::Fail
        }
        _ if files.client_bottleneck => Outcome::Invalid,
        _ => Outcome::Pass,
    };
    Ok(outcome)
}

/// Evidence that cl2's own client limited the load (which makes the run's numbers invalid).
fn client_bottlenecks(target: &Target, args: &RunArgs) -> Vec<String> {
    let t = target.cluster.latency.throttle();
    if t.client_was_bottleneck() {
        vec![format!(
            "{} of {} requests waited on cl2's client-side rate limit (--qps {} --burst {}), {:.1}s in total; \
             raise --qps/--burst",
            t.throttled, t.requests, args.cluster.qps, args.cluster.burst, t.total_wait_secs
        )]
    } else {
        Vec::new()
    }
}

/// Ctrl-C / SIGTERM handling: the first stops the run gracefully (measurements gather, reports
/// are written, namespaces deleted); the second exits at once, naming what is left behind.
struct Interrupts {
    token: CancellationToken,
    executor: Arc<parking_lot::Mutex<Option<Arc<Executor>>>>,
}

impl Interrupts {
    fn install() -> Self {
        let token = CancellationToken::new();
        let executor: Arc<parking_lot::Mutex<Option<Arc<Executor>>>> = Arc::default();
        let (t, ex) = (token.clone(), executor.clone());
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                wait_for_signal().await;
                count += 1;
                if count == 1 {
                    eprintln!(
                        "\ncl2: interrupted: stopping new actions, gathering measurements, writing the report and \
                         deleting namespaces (interrupt again to exit at once)"
                    );
                    t.cancel();
                } else {
                    let left = ex
                        .lock()
                        .as_ref()
                        .map(|e| e.namespaces())
                        .unwrap_or_default();
                    if left.is_empty() {
                        eprintln!(
                            "cl2: interrupted twice: exiting now; no automanaged namespace is known to exist"
                        );
                    } else {
                        eprintln!(
                            "cl2: interrupted twice: exiting now; namespaces left on the cluster: {}",
                            left.join(", ")
                        );
                    }
                    std::process::exit(130);
                }
            }
        });
        Self { token, executor }
    }

    fn set_executor(&self, e: Arc<Executor>) {
        *self.executor.lock() = Some(e);
    }

    fn clear_executor(&self) {
        *self.executor.lock() = None;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
