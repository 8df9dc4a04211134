//! End-to-end: run the `cl2` binary on every shipped config at small scale against the embedded
//! simulated cluster, and check exit codes and report contents.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Heavy runs (each starts a simulated cluster) take turns: the CI machine has 2 cores.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs cl2 with `args` and `env`, killing it after `limit`.
fn cl2(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cl2"));
    cmd.args(args)
        .current_dir(repo_root())
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cl2");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "cl2 {args:?} did not finish in {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks the report directory holds parseable reports and returns report.json.
fn check_reports(dir: &Path) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("report.json")).expect("report.json"),
    )
    .expect("report.json parses");
    assert!(
        report.get("schemaVersion").is_some(),
        "report.json has a schemaVersion"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains("<testsuite"),
        "junit.xml has a testsuite: {junit}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(!summary.trim().is_empty());
    assert!(dir.join("report.html").exists(), "report.html written");
    let mut perfdata = 0;
    for entry in std::fs::read_dir(dir).expect("read report dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.ends_with(".json") && name != "report.json" {
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                    .unwrap_or_else(|e| panic!("{name} parses: {e}"));
            if doc.get("dataItems").is_some() {
                perfdata += 1;
            }
        }
    }
    assert!(
        perfdata > 0,
        "at least one PerfData file in {}",
        dir.display()
    );
    report
}

const LIMIT: Duration = Duration::from_secs(600);

/// Runs a shipped config on `nodes` simulated nodes with reports in a fresh temporary
/// directory, which lives as long as the returned `TempDir`.
fn run_config(
    config: &str,
    nodes: u32,
    env: &[(&str, &str)],
) -> (Output, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("r");
    let out = cl2(
        &[
            "--testconfig",
            config,
            "--nodes",
            &nodes.to_string(),
            "--report-dir",
            report_dir.to_str().unwrap(),
        ],
        env,
        LIMIT,
    );
    (out, dir, report_dir)
}

#[test]
fn density_small_passes_and_reports() {
    let _turn = heavy();
    let (out, _dir, report_dir) = run_config(
        "configs/density/config.yaml",
        10,
        &[
            ("CL2_PODS_PER_NODE", "5"),
            ("CL2_LATENCY_PODS", "10"),
            ("CL2_LATENCY_QPS", "50"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("PodStartupLatency"),
        "verdict table names PodStartupLatency: {}",
        show(&out)
    );
    assert!(stdout.contains("Reports:"), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("embedded simulated cluster"),
        "says it started the simulator: {stderr}"
    );
    check_reports(&report_dir);
}

#[test]
fn load_small_passes_and_reports() {
    let _turn = heavy();
    let (out, _dir, report_dir) = run_config(
        "configs/load/config.yaml",
        10,
        &[
            ("CL2_PODS_PER_NODE", "10"),
            ("CL2_LOAD_TEST_THROUGHPUT", "200"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    check_reports(&report_dir);
}

#[test]
fn density_sweep_small_has_load_table() {
    let _turn = heavy();
    let (out, _dir, report_dir) = run_config(
        "configs/density-sweep/config.yaml",
        10,
        &[
            ("CL2_PODS_PER_NODE", "10"),
            ("CL2_LATENCY_PODS", "10"),
            ("CL2_LATENCY_QPS", "50"),
            ("CL2_SATURATION_QPS", "50"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    check_reports(&report_dir);
    let summary = std::fs::read_to_string(report_dir.join("summary.md")).unwrap();
    for level in ["10%", "25%", "50%", "90%", "100%"] {
        assert!(
            summary.contains(level),
            "summary.md has the {level} load level:\n{summary}"
        );
    }
}

#[test]
fn hollow_scale_small_passes() {
    let _turn = heavy();
    let (out, _dir, report_dir) = run_config("configs/hollow-scale/config.yaml", 20, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    check_reports(&report_dir);
}

#[test]
fn broken_configs_exit_2_with_place() {
    let corpus = repo_root().join("testing/fixtures/broken-configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("broken-config corpus exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") || path.is_dir() {
            continue;
        }
        let out = cl2(
            &["validate", path.to_str().unwrap()],
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            path.display(),
            show(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            stderr.contains(file_name) || stderr.contains(".yaml"),
            "{}: the error names a file: {stderr}",
            path.display()
        );
        assert!(
            !stderr.contains("panicked"),
            "{}: no panic: {stderr}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 20, "at least 20 broken configs, found {checked}");
}

#[test]
fn every_shipped_config_validates() {
    for config in ["density", "load", "density-sweep", "hollow-scale"] {
        let path = format!("configs/{config}/config.yaml");
        for nodes in ["1", "100", "5000"] {
            let out = cl2(
                &["validate", &path, "--nodes", nodes],
                &[],
                Duration::from_secs(60),
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{path} --nodes {nodes}: {}",
                show(&out)
            );
        }
        let out = cl2(
            &["render", &path, "--nodes", "10"],
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "render {path}: {}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("steps:"),
            "render {path} prints the config: {text}"
        );
        if config != "hollow-scale" {
            assert!(
                text.contains("\nkind: "),
                "render {path} prints object templates: {text}"
            );
        }
    }
}

#[test]
fn impossible_threshold_exits_1() {
    let _turn = heavy();
    let (out, _dir, report_dir) = run_config(
        "configs/density/config.yaml",
        5,
        &[
            ("CL2_PODS_PER_NODE", "2"),
            ("CL2_LATENCY_PODS", "5"),
            ("CL2_LATENCY_QPS", "50"),
            ("CL2_POD_STARTUP_THRESHOLD", "1ms"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let summary = std::fs::read_to_string(report_dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("PodStartupLatency"),
        "summary names the violation:\n{summary}"
    );
    let junit = std::fs::read_to_string(report_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "junit has a failure:\n{junit}");
}

#[test]
fn unreachable_cluster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let out = cl2(
        &[
            "--testconfig",
            "configs/hollow-scale/config.yaml",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--nodes",
            "1",
        ],
        &[],
        Duration::from_secs(120),
    );
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("127.0.0.1:9"),
        "names the unreachable server: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let out = cl2(&[], &[], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = cl2(
        &["--testconfig", "does/not/exist.yaml"],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does/not/exist.yaml"),
        "{}",
        show(&out)
    );
}

/// Reads lines from a child's stdout until one contains `needle` (or the child ends).
fn wait_for_line(reader: &mut impl std::io::BufRead, needle: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => panic!("output ended before {needle:?}:\n{seen}"),
            Ok(_) => {
                seen.push_str(&line);
                if line.contains(needle) {
                    return seen;
                }
            }
        }
    }
}

fn interrupt(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("child did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sim_and_hollow_nodes_with_gpus_and_taints() {
    let _turn = heavy();
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_cl2"))
        .args([
            "sim",
            "--nodes",
            "0",
            "--kubeconfig-out",
            kubeconfig.to_str().unwrap(),
        ])
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut sim_out = std::io::BufReader::new(sim.stdout.take().unwrap());
    wait_for_line(&mut sim_out, "Press Ctrl-C");

    let mut hollow = Command::new(env!("CARGO_BIN_EXE_cl2"))
        .args([
            "hollow-nodes",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--count",
            "5",
            "--name-prefix",
            "gpu-node-",
            "--extended-resource",
            "nvidia.com/gpu=8",
            "--label",
            "pool=gpu",
            "--taint",
            "gpu=true:NoSchedule",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut hollow_out = std::io::BufReader::new(hollow.stdout.take().unwrap());
    let said = wait_for_line(&mut hollow_out, "Ready");
    assert!(said.contains("5 nodes registered"), "{said}");

    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let nodes = kubectl(&["get", "nodes", "-l", "pool=gpu", "--no-headers"]);
    assert_eq!(nodes.lines().count(), 5, "{nodes}");
    assert!(nodes.lines().all(|l| l.contains(" Ready ")), "{nodes}");
    let gpus = kubectl(&[
        "get",
        "node",
        "gpu-node-0",
        "-o",
        "jsonpath={.status.allocatable.nvidia\\.com/gpu}",
    ]);
    assert_eq!(gpus.trim(), "8");
    let taints = kubectl(&[
        "get",
        "node",
        "gpu-node-0",
        "-o",
        "jsonpath={.spec.taints[0].key}={.spec.taints[0].value}:{.spec.taints[0].effect}",
    ]);
    assert_eq!(taints.trim(), "gpu=true:NoSchedule");

    interrupt(&mut hollow);
    interrupt(&mut sim);
}
