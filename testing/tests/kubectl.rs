//! Fidelity test: the real `kubectl` drives the simulated cluster (API server, scheduler,
//! controllers, 50 hollow nodes) through a day-one workflow, asserting on kubectl's output.
//! Also runs a smaller subset with every `kubectl.1.NN` installed beside `kubectl`, and checks
//! extended-resource scheduling (GPUs, taints, Unschedulable condition).
//!
//! Skipped (with a message) only when no `kubectl` is on PATH.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cl2_hollow::kubelet::{HollowNodeConfig, NodeTaint, start_fleet};
use cl2_hollow::sim::{SimCluster, SimConfig, start};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kubectl");
const DEADLINE: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// `kubectl` on PATH plus every `kubectl.1.NN` beside its real location.
fn kubectls() -> Option<(PathBuf, Vec<PathBuf>)> {
    let path = std::env::var_os("PATH")?;
    let main = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())?;
    let real = std::fs::canonicalize(&main).unwrap_or_else(|_| main.clone());
    let mut others: Vec<PathBuf> = real
        .parent()
        .and_then(|d| std::fs::read_dir(d).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubectl.1."))
        })
        .collect();
    others.sort();
    Some((main, others))
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn exec(&self, args: &[&str]) -> Out {
        let out = tokio::time::timeout(
            DEADLINE,
            Command::new(&self.bin)
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e}"));
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs kubectl, asserts success, returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let o = self.exec(args).await;
        assert!(
            o.ok,
            "{} {args:?} failed:\nstdout: {}\nstderr: {}",
            self.bin.display(),
            o.stdout,
            o.stderr
        );
        o.stdout
    }

    /// Runs kubectl, asserts failure, returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let o = self.exec(args).await;
        assert!(
            !o.ok,
            "kubectl {args:?} unexpectedly succeeded: {}",
            o.stdout
        );
        o.stderr
    }

    /// Polls `kubectl args` until `pred(stdout)` holds; returns that stdout.
    async fn until(&self, what: &str, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < DEADLINE {
            let o = self.exec(args).await;
            if o.ok && pred(&o.stdout) {
                return o.stdout;
            }
            last = format!("stdout: {}\nstderr: {}", o.stdout, o.stderr);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("timed out waiting for {what} (kubectl {args:?}); last output:\n{last}");
    }
}

/// Data rows (header dropped) of a `kubectl get` table.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

async fn start_sim(nodes: usize) -> (SimCluster, tempfile::TempDir, PathBuf) {
    let sim = start(SimConfig {
        nodes,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    (sim, dir, kubeconfig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_simulated_cluster() {
    let Some((main, others)) = kubectls() else {
        eprintln!("SKIP: no kubectl on PATH");
        return;
    };
    let (sim, _dir, kubeconfig) = start_sim(50).await;
    let k = Kubectl {
        bin: main,
        kubeconfig: kubeconfig.clone(),
    };
    full_workflow(&k).await;
    for bin in others {
        let k = Kubectl {
            bin,
            kubeconfig: kubeconfig.clone(),
        };
        version_subset(&k).await;
    }
    sim.shutdown().await;
}

async fn full_workflow(k: &Kubectl) {
    // version / api-resources
    let v = k.ok(&["version"]).await;
    assert!(v.contains("Client Version: v1."), "{v}");
    assert!(v.contains("Server Version: v1."), "{v}");
    let ar = k.ok(&["api-resources"]).await;
    for needle in [
        "deployments",
        "apps/v1",
        "replicationcontrollers",
        "leases",
        "jobs",
        "events",
    ] {
        assert!(ar.contains(needle), "api-resources lacks {needle}:\n{ar}");
    }
    assert!(
        ar.lines()
            .any(|l| l.starts_with("pods ") && l.contains(" po ")),
        "{ar}"
    );

    // get nodes: 50, Ready, real columns.
    let nodes = k.ok(&["get", "nodes"]).await;
    assert_eq!(
        header(&nodes),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{nodes}"
    );
    let nrows = rows(&nodes);
    assert_eq!(nrows.len(), 50, "{nodes}");
    assert!(
        nrows
            .iter()
            .all(|r| r[1] == "Ready" && r[4] == "v1.36.0-cl2" && r[0].starts_with("hollow-node-")),
        "{nodes}"
    );
    let wide = k.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(
        wide.contains("INTERNAL-IP")
            && wide.contains("10.64.0.1")
            && wide.contains("containerd://2.0.0-cl2hollow"),
        "{wide}"
    );

    // namespace + objects
    assert!(
        k.ok(&["create", "namespace", "fid"])
            .await
            .contains("namespace/fid created")
    );
    let n = ["-n", "fid"];
    let with_ns = |args: &[&str]| -> Vec<String> {
        args.iter().chain(n.iter()).map(|s| s.to_string()).collect()
    };
    macro_rules! kn {
        ($($a:expr),*) => {{
            let v = with_ns(&[$($a),*]);
            let r: Vec<&str> = v.iter().map(String::as_str).collect();
            k.ok(&r).await
        }};
    }
    let dep = fixture("deployment.yaml");
    assert!(kn!("create", "-f", &dep).contains("deployment.apps/web created"));
    assert!(kn!("create", "-f", &fixture("configmap.yaml")).contains("configmap/settings created"));
    assert!(
        kn!("apply", "-f", &fixture("rc.yaml")).contains("replicationcontroller/legacy created")
    );
    assert!(kn!("apply", "-f", &fixture("service.yaml")).contains("service/web created"));
    assert!(kn!("apply", "-f", &fixture("job.yaml")).contains("job.batch/pi created"));
    assert!(
        kn!("apply", "-f", &fixture("configmap-v2.yaml")).contains("configmap/settings configured")
    );
    assert_eq!(
        kn!(
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}"
        ),
        "slow"
    );
    assert!(kn!("apply", "-f", &fixture("service.yaml")).contains("service/web unchanged"));

    // rollout
    let rs = kn!("rollout", "status", "deployment/web", "--timeout=90s");
    assert!(rs.contains("successfully rolled out"), "{rs}");
    let deploy = kn!("get", "deployment", "web");
    assert_eq!(
        header(&deploy),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{deploy}"
    );
    assert_eq!(&rows(&deploy)[0][1..4], ["3/3", "3", "3"], "{deploy}");

    // pods on hollow nodes with IPs
    let pods = kn!("get", "pods", "-o", "wide", "-l", "app=web");
    assert_eq!(
        header(&pods)[..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
        "{pods}"
    );
    let prow = rows(&pods);
    assert_eq!(prow.len(), 3, "{pods}");
    for r in &prow {
        assert!(r[0].starts_with("web-"), "{pods}");
        assert_eq!(r[1], "1/1", "{pods}");
        assert_eq!(r[2], "Running", "{pods}");
        assert!(r[5].starts_with("10.1"), "{pods}");
        assert!(r[6].starts_with("hollow-node-"), "{pods}");
    }
    let running = kn!(
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name"
    );
    assert_eq!(running.lines().count(), 3, "{running}");
    let none = kn!(
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector",
        "status.phase=Pending",
        "-o",
        "name"
    );
    assert!(none.trim().is_empty(), "{none}");

    // RC, service endpoints, job
    k.until("rc ready", &["get", "rc", "legacy", "-n", "fid"], |o| {
        rows(o)
            .first()
            .is_some_and(|r| r[1] == "2" && r[2] == "2" && r[3] == "2")
    })
    .await;
    let ep = k
        .until(
            "endpoints",
            &["get", "endpoints", "web", "-n", "fid"],
            |o| {
                rows(o)
                    .first()
                    .is_some_and(|r| r[1].matches(":8080").count() == 3)
            },
        )
        .await;
    assert!(ep.contains("10.1"), "{ep}");
    let slices = k
        .until(
            "endpointslice",
            &[
                "get",
                "endpointslices",
                "-n",
                "fid",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "jsonpath={.items[*].endpoints[*].addresses[0]} {.items[*].ports[0].port}",
            ],
            |o| o.matches("10.1").count() == 3,
        )
        .await;
    assert!(slices.ends_with(" 8080"), "{slices}");
    let jw = kn!(
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=90s"
    );
    assert!(jw.contains("job.batch/pi condition met"), "{jw}");
    let jobs = kn!("get", "jobs");
    assert!(
        rows(&jobs)
            .iter()
            .any(|r| r[0] == "pi" && r.iter().any(|c| c == "3/3")),
        "{jobs}"
    );
    let jp = kn!("get", "pods", "-l", "batch.kubernetes.io/job-name=pi");
    assert_eq!(
        rows(&jp).iter().filter(|r| r[2] == "Completed").count(),
        3,
        "{jp}"
    );

    // chunked list across namespaces
    let all = k.ok(&["get", "pods", "--chunk-size=10", "-A"]).await;
    assert_eq!(header(&all)[..2], ["NAMESPACE", "NAME"], "{all}");
    assert!(
        rows(&all).iter().filter(|r| r[0] == "fid").count() >= 8,
        "{all}"
    );

    // scale + wait
    assert!(
        kn!("scale", "deployment", "web", "--replicas=20").contains("deployment.apps/web scaled")
    );
    k.until(
        "20 web pods",
        &["get", "pods", "-n", "fid", "-l", "app=web", "-o", "name"],
        |o| o.lines().count() == 20,
    )
    .await;
    let w = kn!(
        "wait",
        "--for=condition=Ready",
        "pods",
        "-l",
        "app=web",
        "--timeout=90s"
    );
    assert_eq!(
        w.lines().filter(|l| l.contains("condition met")).count(),
        20,
        "{w}"
    );
    kn!("rollout", "status", "deployment/web", "--timeout=90s");

    // label / annotate / patch
    assert!(
        kn!("label", "deployment", "web", "tier=frontend").contains("deployment.apps/web labeled")
    );
    assert!(
        kn!("get", "deployments", "-l", "tier=frontend", "-o", "name")
            .contains("deployment.apps/web")
    );
    assert!(
        kn!("annotate", "configmap", "settings", "owner=team-a")
            .contains("configmap/settings annotated")
    );
    assert_eq!(
        kn!(
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ),
        "team-a"
    );
    assert!(
        kn!(
            "patch",
            "configmap",
            "settings",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"extra":"1"}}"#
        )
        .contains("patched")
    );
    assert!(
        kn!(
            "patch",
            "configmap",
            "settings",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/data/mode","value":"json"}]"#
        )
        .contains("patched")
    );
    assert_eq!(
        kn!(
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}/{.data.extra}"
        ),
        "json/1"
    );
    // A strategic merge patch of the pod template rolls the deployment to a new ReplicaSet.
    assert!(
        kn!(
            "patch",
            "deployment",
            "web",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"template":{"metadata":{"labels":{"rev":"two"}}}}}"#
        )
        .contains("patched")
    );
    let rs = kn!("rollout", "status", "deployment/web", "--timeout=120s");
    assert!(rs.contains("successfully rolled out"), "{rs}");
    let rsets = k
        .until(
            "old replicaset scaled to zero",
            &["get", "rs", "-n", "fid", "-l", "app=web"],
            |o| {
                let r = rows(o);
                r.len() == 2
                    && r.iter().any(|r| r[1] == "0" && r[2] == "0")
                    && r.iter().any(|r| r[1] == "20" && r[3] == "20")
            },
        )
        .await;
    assert!(rsets.contains("web-"), "{rsets}");
    let hist = kn!("rollout", "history", "deployment/web");
    assert!(hist.contains('1') && hist.contains('2'), "{hist}");
    k.until(
        "20 new pods",
        &[
            "get",
            "pods",
            "-n",
            "fid",
            "-l",
            "app=web,rev=two",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ],
        |o| o.lines().count() == 20,
    )
    .await;

    // describe pod / node
    let pod_name = kn!(
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}"
    );
    let node_name = kn!("get", "pod", &pod_name, "-o", "jsonpath={.spec.nodeName}");
    let dp = kn!("describe", "pod", &pod_name);
    for needle in [
        "Status:           Running".to_string(),
        format!("Node:             {node_name}/"),
        "IP:               10.1".to_string(),
        "Controlled By:  ReplicaSet/web-".to_string(),
        "Events:".to_string(),
        "Scheduled".to_string(),
        format!("Successfully assigned fid/{pod_name} to {node_name}"),
        "default-scheduler".to_string(),
    ] {
        assert!(dp.contains(&needle), "describe pod lacks {needle:?}:\n{dp}");
    }
    let dn = k.ok(&["describe", "node", &node_name]).await;
    for needle in [
        "Capacity:",
        "Allocatable:",
        "Non-terminated Pods:",
        pod_name.as_str(),
        "Ready            True",
        "Lease:",
        "HolderIdentity:",
    ] {
        assert!(dn.contains(needle), "describe node lacks {needle:?}:\n{dn}");
    }
    let dd = kn!("describe", "deployment", "web");
    assert!(
        dd.contains("ScalingReplicaSet") && dd.contains("NewReplicaSetAvailable"),
        "{dd}"
    );

    // events
    let ev = kn!("get", "events");
    assert!(
        ev.contains("Scheduled") && ev.contains("ScalingReplicaSet"),
        "{ev}"
    );
    assert!(ev.contains(&format!("pod/{pod_name}")), "{ev}");

    // cordon: new pods avoid the node
    let cordoned = "hollow-node-7";
    assert!(
        k.ok(&["cordon", cordoned])
            .await
            .contains(&format!("node/{cordoned} cordoned"))
    );
    let nodes = k.ok(&["get", "node", cordoned]).await;
    assert_eq!(rows(&nodes)[0][1], "Ready,SchedulingDisabled", "{nodes}");
    assert!(
        kn!("create", "-f", &fixture("spread.yaml")).contains("deployment.apps/spread created")
    );
    kn!("rollout", "status", "deployment/spread", "--timeout=90s");
    let placed = kn!(
        "get",
        "pods",
        "-l",
        "app=spread",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}"
    );
    assert_eq!(placed.lines().count(), 60, "{placed}");
    assert!(
        !placed.lines().any(|n| n == cordoned),
        "cordoned node got pods:\n{placed}"
    );
    assert!(k.ok(&["uncordon", cordoned]).await.contains("uncordoned"));

    // delete pod: it goes away and the ReplicaSet replaces it
    let victim = kn!(
        "get",
        "pods",
        "-l",
        "app=spread",
        "-o",
        "jsonpath={.items[0].metadata.name}"
    );
    assert!(kn!("delete", "pod", &victim).contains(&format!("pod \"{victim}\" deleted")));
    let err = k.fails(&["get", "pod", &victim, "-n", "fid"]).await;
    assert!(err.contains("NotFound"), "{err}");
    k.until(
        "replacement pod",
        &[
            "get",
            "pods",
            "-n",
            "fid",
            "-l",
            "app=spread",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ],
        |o| o.lines().count() == 60,
    )
    .await;

    // get pods -w receives events
    let mut child = Command::new(&k.bin)
        .arg("--kubeconfig")
        .arg(&k.kubeconfig)
        .args(["get", "pods", "-n", "fid", "-w", "-l", "run=watched"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        kn!("run", "watched", "--image=nginx", "--labels=run=watched")
            .contains("pod/watched created")
    );
    let mut seen = String::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !(seen.contains("watched") && seen.contains("Running")) && start.elapsed() < DEADLINE {
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), stdout.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let _ = child.kill().await;
    assert!(
        seen.contains("watched") && seen.contains("Pending") && seen.contains("Running"),
        "watch saw:\n{seen}"
    );

    // delete deployment: ReplicaSets and pods go through GC
    assert!(kn!("delete", "deployment", "web").contains("deployment.apps \"web\" deleted"));
    k.until(
        "web replicasets gone",
        &["get", "rs", "-n", "fid", "-l", "app=web", "-o", "name"],
        |o| o.trim().is_empty(),
    )
    .await;
    k.until(
        "web pods gone",
        &["get", "pods", "-n", "fid", "-l", "app=web", "-o", "name"],
        |o| o.trim().is_empty(),
    )
    .await;

    // error cases
    let e = k.fails(&["get", "pod", "missing", "-n", "fid"]).await;
    assert!(
        e.contains("Error from server (NotFound): pods \"missing\" not found"),
        "{e}"
    );
    let e = k.fails(&["create", "namespace", "fid"]).await;
    assert!(
        e.contains("Error from server (AlreadyExists): namespaces \"fid\" already exists"),
        "{e}"
    );
    let e = k
        .fails(&["create", "-f", &fixture("configmap.yaml"), "-n", "fid"])
        .await;
    assert!(e.contains("AlreadyExists"), "{e}");
    let e = k
        .fails(&["create", "configmap", "Bad_Name", "-n", "fid"])
        .await;
    assert!(e.contains("is invalid") && e.contains("Bad_Name"), "{e}");

    // delete namespace --wait: contents gone
    let d = k
        .ok(&["delete", "namespace", "fid", "--wait", "--timeout=120s"])
        .await;
    assert!(d.contains("namespace \"fid\" deleted"), "{d}");
    let e = k.fails(&["get", "namespace", "fid"]).await;
    assert!(e.contains("NotFound"), "{e}");
    let o = k
        .exec(&[
            "get",
            "pods,rs,deployments,jobs,configmaps",
            "-n",
            "fid",
            "-o",
            "name",
        ])
        .await;
    assert!(o.stdout.trim().is_empty(), "{}", o.stdout);
}

/// A smaller workflow for other kubectl versions.
async fn version_subset(k: &Kubectl) {
    let bin = k
        .bin
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("kubectl")
        .to_string();
    let v = k.ok(&["version"]).await;
    assert!(
        v.contains("Server Version") && v.contains("v1.36."),
        "{bin}: {v}"
    );
    let nodes = k.ok(&["get", "nodes"]).await;
    assert_eq!(rows(&nodes).len(), 50, "{bin}: {nodes}");
    let ns = format!("v{}", bin.trim_start_matches("kubectl.").replace('.', "-"));
    k.ok(&["create", "namespace", &ns]).await;
    let a = k.ok(&["apply", "-f", &fixture("rc.yaml"), "-n", &ns]).await;
    assert!(
        a.contains("replicationcontroller/legacy created"),
        "{bin}: {a}"
    );
    k.until(
        "rc pods running",
        &[
            "get",
            "pods",
            "-n",
            &ns,
            "--field-selector",
            "status.phase=Running",
        ],
        |o| rows(o).len() == 2,
    )
    .await;
    let d = k
        .ok(&["delete", "-f", &fixture("rc.yaml"), "-n", &ns])
        .await;
    assert!(d.contains("\"legacy\" deleted"), "{bin}: {d}");
    k.until(
        "rc pods gone",
        &["get", "pods", "-n", &ns, "-o", "name"],
        |o| o.trim().is_empty(),
    )
    .await;
    k.ok(&["delete", "namespace", &ns]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_resources_taints_and_unschedulable() {
    let Some((main, _)) = kubectls() else {
        eprintln!("SKIP: no kubectl on PATH");
        return;
    };
    let (sim, _dir, kubeconfig) = start_sim(3).await;
    let mut cfg = HollowNodeConfig {
        name_prefix: "gpu-node-".into(),
        ..HollowNodeConfig::default()
    };
    cfg.capacity.insert("nvidia.com/gpu".into(), "8".into());
    cfg.labels.insert("accelerator".into(), "h100".into());
    cfg.taints.push(NodeTaint {
        key: "gpu".into(),
        value: "true".into(),
        effect: "NoSchedule".into(),
    });
    let token = tokio_util::sync::CancellationToken::new();
    let fleet = start_fleet(sim.client(), cfg, 2, token.clone())
        .await
        .unwrap();
    assert_eq!(fleet.node_names(), ["gpu-node-0", "gpu-node-1"]);
    let k = Kubectl {
        bin: main,
        kubeconfig,
    };
    let cap = k
        .ok(&[
            "get",
            "node",
            "gpu-node-0",
            "-o",
            "jsonpath={.status.allocatable.nvidia\\.com/gpu}",
        ])
        .await;
    assert_eq!(cap, "8");
    let created = k.ok(&["create", "-f", &fixture("gpu-pods.yaml")]).await;
    assert_eq!(created.lines().count(), 3, "{created}");
    k.until("gpu4 running", &["get", "pod", "gpu4"], |o| {
        rows(o).first().is_some_and(|r| r[2] == "Running")
    })
    .await;
    let node = k
        .ok(&["get", "pod", "gpu4", "-o", "jsonpath={.spec.nodeName}"])
        .await;
    assert!(node.starts_with("gpu-node-"), "{node}");
    let msg = k
        .until(
            "gpu9 unschedulable",
            &["get", "pod", "gpu9", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason} {.status.conditions[?(@.type==\"PodScheduled\")].message}"],
            |o| o.starts_with("Unschedulable"),
        )
        .await;
    assert!(msg.contains("0/5 nodes are available:"), "{msg}");
    // Nodes without the extended resource have none of it: all five are short of GPUs.
    assert!(msg.contains("5 Insufficient nvidia.com/gpu"), "{msg}");
    let msg = k
        .until(
            "intolerant unschedulable",
            &[
                "get",
                "pod",
                "gpu-intolerant",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
            ],
            |o| o.contains("nodes are available"),
        )
        .await;
    assert!(
        msg.contains("2 node(s) had untolerated taint {gpu: true}"),
        "{msg}"
    );
    let pending = k.ok(&["get", "pod", "gpu9"]).await;
    assert_eq!(rows(&pending)[0][2], "Pending", "{pending}");
    let ev = k.ok(&["describe", "pod", "gpu9"]).await;
    assert!(ev.contains("FailedScheduling"), "{ev}");
    // Freeing GPUs lets a 4-GPU pod in next to the first one: 2 nodes x 8 GPUs.
    k.ok(&["delete", "pod", "gpu9", "--wait=false"]).await;
    fleet.shutdown().await;
    token.cancel();
    sim.shutdown().await;
}
