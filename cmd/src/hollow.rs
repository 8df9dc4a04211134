//! `cl2 hollow-nodes`: register simulated nodes against any cluster, as kubemark does.

use crate::cli::HollowNodesArgs;
use crate::{Outcome, UsageError};
use anyhow::{Context, Result};
use cl2_framework::cluster::{self, ConnectOptions};
use tokio_util::sync::CancellationToken;

fn split_pair<'a>(s: &'a str, sep: char, what: &str) -> Result<(&'a str, &'a str)> {
    s.split_once(sep)
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| UsageError(format!("{what} {s:?}: expected KEY{sep}VALUE")).into())
}

/// Parses `KEY[=VALUE]:EFFECT` as kubectl taint does.
fn parse_taint(s: &str) -> Result<cl2_hollow::kubelet::NodeTaint> {
    let bad = || {
        UsageError(format!(
            "--taint {s:?}: expected KEY[=VALUE]:EFFECT with EFFECT NoSchedule, PreferNoSchedule or NoExecute"
        ))
    };
    let (kv, effect) = s.rsplit_once(':').ok_or_else(bad)?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(bad().into());
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if key.is_empty() {
        return Err(bad().into());
    }
    Ok(cl2_hollow::kubelet::NodeTaint {
        key: key.into(),
        value: value.into(),
        effect: effect.into(),
    })
}

pub async fn run(args: HollowNodesArgs) -> Result<Outcome> {
    let Some(kubeconfig) = args.cluster.kubeconfig.clone() else {
        return Err(UsageError(
            "cl2 hollow-nodes needs a cluster: give --kubeconfig (or set KUBECONFIG); \
             for a self-contained cluster use `cl2 sim --nodes N`"
                .into(),
        )
        .into());
    };
    let mut config = crate::sim::load_stages(args.stages.as_deref())?.node_config();
    config.name_prefix = args.name_prefix.clone();
    config.streaming_lists = args.streaming_lists;
    config.capacity.insert("cpu".into(), args.cpu.clone());
    config.capacity.insert("memory".into(), args.memory.clone());
    config
        .capacity
        .insert("pods".into(), args.max_pods.to_string());
    for r in &args.extended_resources {
        let (k, v) = split_pair(r, '=', "--extended-resource")?;
        config.capacity.insert(k.to_string(), v.to_string());
    }
    for l in &args.labels {
        let (k, v) = split_pair(l, '=', "--label")?;
        config.labels.insert(k.to_string(), v.to_string());
    }
    for t in &args.taints {
        config.taints.push(parse_taint(t)?);
    }
    let opts = ConnectOptions {
        kubeconfig: Some(kubeconfig.clone()),
        context: args.cluster.context.clone(),
        qps: args.cluster.qps,
        burst: args.cluster.burst,
    };
    let cluster = cluster::connect(&opts)
        .await
        .with_context(|| format!("connecting with kubeconfig {}", kubeconfig.display()))?;
    let shutdown = CancellationToken::new();
    let started = std::time::Instant::now();
    eprintln!(
        "cl2 hollow-nodes: registering {} nodes ({}0..) ...",
        args.count, args.name_prefix
    );
    let fleet = cl2_hollow::kubelet::start_fleet(
        cluster.client.clone(),
        config,
        args.count,
        shutdown.clone(),
    )
    .await
    .context("starting hollow nodes")?;
    println!(
        "cl2 hollow-nodes: {} nodes registered and Ready in {:.1}s; renewing leases. Ctrl-C stops them \
         (the Node objects stay; delete them with kubectl delete nodes -l ...).",
        fleet.node_names().len(),
        started.elapsed().as_secs_f64()
    );
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("cl2 hollow-nodes: stopping");
    shutdown.cancel();
    fleet.shutdown().await;
    Ok(Outcome::Pass)
}
