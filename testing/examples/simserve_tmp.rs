#[tokio::main]
async fn main() {
    let n: usize = std::env::var("NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let t = std::time::Instant::now();
    let cfg = cl2_hollow::sim::SimConfig { nodes: n, listen: "127.0.0.1:18080".parse().unwrap(), ..Default::default() };
    eprintln!("cfg.nodes={}", cfg.nodes);
    let sim = cl2_hollow::sim::start(cfg).await.unwrap();
    sim.write_kubeconfig(std::path::Path::new("/tmp/sim.kubeconfig")).unwrap();
    println!("up {} in {:?} nodes={:?}", sim.base_url(), t.elapsed(), sim.node_names().len());
    tokio::signal::ctrl_c().await.unwrap();
    sim.shutdown().await;
}
