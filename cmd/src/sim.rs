//! `cl2 sim`: the embedded simulated cluster on its own, for kubectl and other clients.

use crate::cli::SimArgs;
use crate::{Outcome, UsageError};
use anyhow::{Context, Result};
use cl2_hollow::sim::SimConfig;
use cl2_hollow::stages::SimStages;
use std::net::SocketAddr;
use std::path::Path;

/// Loads a `--stages` file (default stages without one); a bad file is a usage error.
pub fn load_stages(path: Option<&Path>) -> Result<SimStages> {
    match path {
        Some(p) => Ok(SimStages::load(p).map_err(|e| UsageError(e.to_string()))?),
        None => Ok(SimStages::default()),
    }
}

/// The simulated cluster's config for `nodes` hollow nodes on `listen` with `--stages`.
pub fn sim_config(nodes: usize, listen: SocketAddr, stages: Option<&Path>) -> Result<SimConfig> {
    Ok(SimConfig {
        nodes,
        listen,
        stages: load_stages(stages)?,
        ..Default::default()
    })
}

pub async fn run(args: SimArgs) -> Result<Outcome> {
    let config = sim_config(args.nodes, args.listen, args.stages.as_deref())?;
    let started = std::time::Instant::now();
    let sim = cl2_hollow::sim::start(config)
        .await
        .context("starting the simulated cluster")?;
    let kubeconfig = match &args.kubeconfig_out {
        Some(p) => p.clone(),
        None => std::env::temp_dir().join(format!("cl2-sim-{}.kubeconfig", std::process::id())),
    };
    sim.write_kubeconfig(&kubeconfig)
        .with_context(|| format!("writing kubeconfig {}", kubeconfig.display()))?;
    println!(
        "cl2 sim: simulated cluster at {} with {} hollow nodes (ready in {:.1}s)",
        sim.base_url(),
        args.nodes,
        started.elapsed().as_secs_f64()
    );
    println!("kubeconfig written to {}", kubeconfig.display());
    println!("  kubectl --kubeconfig {} get nodes", kubeconfig.display());
    println!("Press Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    println!("cl2 sim: stopping");
    sim.shutdown().await;
    if args.kubeconfig_out.is_none() {
        let _ = std::fs::remove_file(&kubeconfig);
    }
    Ok(Outcome::Pass)
}
