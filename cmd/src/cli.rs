//! Command-line definition (clap). Flag names follow ClusterLoader2 where it has them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # Density test on the embedded simulated cluster (no cluster needed), 100 hollow nodes:
  cl2 --testconfig configs/density/config.yaml

  # The same test against a real cluster:
  cl2 --testconfig configs/density/config.yaml --kubeconfig ~/.kube/config

  # Override parameters, pick the report directory:
  CL2_PODS_PER_NODE=10 cl2 --testconfig configs/load/config.yaml --nodes 500 --report-dir out/

  # Check or render a config without running it:
  cl2 validate configs/load/config.yaml
  cl2 render configs/density/config.yaml --nodes 1000";

/// cl2: load-test Kubernetes control planes, ClusterLoader2-style, with an embedded simulated
/// cluster of hollow nodes when no cluster is given.
#[derive(Debug, Parser)]
#[command(name = "cl2", version, about, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Runs a test (the default command).
    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run test configs against a cluster, or against the embedded simulated cluster.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Load, render and check test configs; report every problem with its place.
    #[command(
        after_help = "Examples:\n  cl2 validate configs/density/config.yaml\n  cl2 validate --nodes 5000 configs/*/config.yaml"
    )]
    Validate(ValidateArgs),
    /// Print a fully rendered config (modules flattened) and its object templates.
    #[command(
        after_help = "Examples:\n  cl2 render configs/density/config.yaml --nodes 1000\n  cl2 render configs/load/config.yaml --replica 3"
    )]
    Render(RenderArgs),
    /// Start the simulated cluster alone, for kubectl or other tools; stops on Ctrl-C.
    #[command(
        after_help = "Examples:\n  cl2 sim --nodes 100 --kubeconfig-out /tmp/sim.kubeconfig\n  kubectl --kubeconfig /tmp/sim.kubeconfig get nodes"
    )]
    Sim(SimArgs),
    /// Register simulated ("hollow") nodes against any cluster, like kubemark.
    #[command(
        name = "hollow-nodes",
        after_help = "Examples:\n  cl2 hollow-nodes --kubeconfig ~/.kube/config --count 1000\n  cl2 hollow-nodes --count 10 --extended-resource nvidia.com/gpu=8 --taint gpu=true:NoSchedule"
    )]
    HollowNodes(HollowNodesArgs),
    /// List the registered measurements with their summaries.
    Measurements,
    /// Compare two report directories and flag regressions.
    #[command(
        after_help = "Examples:\n  cl2 compare reports/density-v1.35 reports/density-v1.36\n  cl2 compare old/ new/ --tolerance 10"
    )]
    Compare(CompareArgs),
    /// Print version information.
    Version,
    /// Print shell completions.
    #[command(after_help = "Examples:\n  cl2 completions bash > /etc/bash_completion.d/cl2")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Options of a test run.
#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// Test config file (repeatable; each runs in turn).
    #[arg(long = "testconfig", value_name = "FILE", conflicts_with = "testsuite")]
    pub testconfig: Vec<PathBuf>,

    /// Test suite file: a YAML list of {identifier, configPath, overridePaths}.
    #[arg(long, value_name = "FILE")]
    pub testsuite: Option<PathBuf>,

    /// Parameter override file (YAML map), repeatable; later files win.
    #[arg(long = "testoverrides", value_name = "FILE")]
    pub testoverrides: Vec<PathBuf>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Number of nodes the templates see as `Nodes`. Embedded cluster: hollow nodes to start
    /// (default 100). Real cluster: default counts schedulable nodes.
    #[arg(long, env = "NUM_NODES", value_name = "N")]
    pub nodes: Option<u64>,

    /// Provider name, recorded in the report (accepted for ClusterLoader2 compatibility).
    #[arg(long, env = "PROVIDER", default_value = "")]
    pub provider: String,

    /// Directory for reports [default: reports/<test>-<timestamp>].
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Allow the Exec measurement to run local commands.
    #[arg(long)]
    pub enable_exec: bool,

    /// Register an out-of-process measurement plugin: NAME=PATH (repeatable).
    #[arg(long = "measurement-plugin", value_name = "NAME=PATH")]
    pub measurement_plugins: Vec<String>,

    /// Delete stale namespaces of earlier runs before the test (config default).
    #[arg(long, env = "DELETE_STALE_NAMESPACES", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub delete_stale_namespaces: Option<bool>,

    /// Delete automanaged namespaces at the end (config default; `=false` keeps them).
    #[arg(long, env = "DELETE_AUTOMANAGED_NAMESPACES", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub delete_automanaged_namespaces: Option<bool>,

    /// Overall time limit of one test, e.g. 30m (Go duration). The run is interrupted then.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Realism stages for the embedded cluster (latency, pod start delays, faults): YAML file.
    #[arg(long, value_name = "FILE")]
    pub stages: Option<PathBuf>,
}

/// How to reach the cluster.
#[derive(Debug, Args, Default, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig of the cluster under test. Without it (and without KUBECONFIG), cl2 starts
    /// its embedded simulated cluster.
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Client-side request rate limit (requests/s) of cl2's client.
    #[arg(long, default_value_t = 500.0)]
    pub qps: f64,

    /// Client-side burst.
    #[arg(long, default_value_t = 1000)]
    pub burst: u32,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Config files to check.
    #[arg(required = true, value_name = "CONFIG")]
    pub configs: Vec<PathBuf>,
    /// Override files, as for run.
    #[arg(long = "testoverrides", value_name = "FILE")]
    pub testoverrides: Vec<PathBuf>,
    /// Nodes value the templates see.
    #[arg(long, default_value_t = 100)]
    pub nodes: u64,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Config file to render.
    #[arg(value_name = "CONFIG")]
    pub config: PathBuf,
    #[arg(long = "testoverrides", value_name = "FILE")]
    pub testoverrides: Vec<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub nodes: u64,
    /// Replica index the object templates are rendered for.
    #[arg(long, default_value_t = 0)]
    pub replica: u64,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Hollow nodes to start.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write a kubeconfig for the simulated cluster.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Realism stages (YAML).
    #[arg(long, value_name = "FILE")]
    pub stages: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HollowNodesArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Number of hollow nodes to register.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Node name prefix.
    #[arg(long, default_value = "hollow-node-")]
    pub name_prefix: String,
    /// Capacity cpu.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Capacity memory.
    #[arg(long, default_value = "16Gi")]
    pub memory: String,
    /// Capacity pods.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Extended resource NAME=QUANTITY (repeatable), e.g. nvidia.com/gpu=8.
    #[arg(long = "extended-resource", value_name = "NAME=QTY")]
    pub extended_resources: Vec<String>,
    /// Node label KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Taint KEY[=VALUE]:EFFECT (repeatable).
    #[arg(long = "taint", value_name = "KEY=VALUE:EFFECT")]
    pub taints: Vec<String>,
    /// Hollow-node stages (YAML with `nodes:`/`pods:` sections) for lifecycle timings.
    #[arg(long, value_name = "FILE")]
    pub stages: Option<PathBuf>,
    /// Use streaming lists (watch with sendInitialEvents) for the kubelets' pod watch. Needs an
    /// API server that serves them (WatchList); off by default for real clusters.
    #[arg(long)]
    pub streaming_lists: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline report directory.
    pub baseline: PathBuf,
    /// Candidate report directory.
    pub candidate: PathBuf,
    /// Percent increase of a latency percentile counted as a regression.
    #[arg(long, default_value_t = 10.0)]
    pub tolerance: f64,
    /// Write the comparison as JSON here too.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// More logs (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
