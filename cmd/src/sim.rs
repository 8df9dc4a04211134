//! `cl2 sim`: the embedded simulated cluster on its own, for kubectl and other clients.

use crate::cli::SimArgs;
use crate::{Outcome, UsageError};
use anyhow::{Context, Result};

pub async fn run(args: SimArgs) -> Result<Outcome> {
    let mut config = cl2_hollow::sim::SimConfig {
        nodes: args.nodes,
        listen: args.listen,
        ..Default::default()
    };
    if let Some(stages) = &args.stages {
        config.stages =
            cl2_hollow::stages::SimStages::load(stages).map_err(|e| UsageError(e.to_string()))?;
    }
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
