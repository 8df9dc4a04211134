//! A quick `kubectl` smoke test of the API server alone (no nodes): discovery, version,
//! tables, protobuf `create namespace`, `create -f`/`apply -f` with default validation,
//! `-o json`, patches and error messages. Runs every `kubectl.1.NN` found beside `kubectl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use cl2_hollow::sim::{SimConfig, start};

fn kubectls() -> Vec<PathBuf> {
    let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg("command -v kubectl")
        .output()
    else {
        return Vec::new();
    };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        return Vec::new();
    }
    let real = std::fs::canonicalize(&path).unwrap_or_else(|_| PathBuf::from(&path));
    let mut found = vec![PathBuf::from(&path)];
    if let Some(dir) = real.parent()
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        let mut versions: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kubectl.1."))
            })
            .collect();
        versions.sort();
        found.extend(versions);
    }
    found
}

fn run(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    stdin: Option<&Path>,
) -> (bool, String, String) {
    let mut cmd = Command::new(kubectl);
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_smoke_against_api_server() {
    let binaries = kubectls();
    if binaries.is_empty() {
        eprintln!("kubectl not found; skipping");
        return;
    }
    let sim = start(SimConfig::api_only()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kc).unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\n  labels: {app: smoke}\ndata:\n  a: \"1\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: c, image: nginx}\n",
    )
    .unwrap();
    let kc2 = kc.clone();
    tokio::task::spawn_blocking(move || {
        for (i, k) in binaries.iter().enumerate() {
            let name = k.display().to_string();
            let ns = format!("smoke-{i}");
            let (ok, out, err) = run(k, &kc2, &["version", "-o", "json"], None);
            assert!(ok, "{name} version: {err}");
            assert!(out.contains("v1.36.0-cl2sim"), "{name}: {out}");
            let (ok, out, err) = run(k, &kc2, &["api-resources"], None);
            assert!(ok, "{name} api-resources: {err}");
            assert!(
                out.lines().any(|l| l.starts_with("deployments")
                    && l.contains("deploy")
                    && l.contains("apps/v1")),
                "{name}: {out}"
            );
            let (ok, out, err) = run(k, &kc2, &["get", "ns"], None);
            assert!(ok, "{name} get ns: {err}");
            assert!(
                out.starts_with("NAME") && out.contains("STATUS") && out.contains("kube-system"),
                "{name}: {out}"
            );
            let (ok, out, err) = run(k, &kc2, &["create", "namespace", &ns], None);
            assert!(ok, "{name} create ns: {err}");
            assert!(
                out.contains(&format!("namespace/{ns} created")),
                "{name}: {out}"
            );
            let (ok, out, err) = run(
                k,
                &kc2,
                &["-n", &ns, "create", "-f", manifest.to_str().unwrap()],
                None,
            );
            assert!(ok, "{name} create -f: {err}");
            assert!(
                out.contains("configmap/smoke created")
                    && out.contains("deployment.apps/web created"),
                "{name}: {out}"
            );
            let (ok, out, err) = run(
                k,
                &kc2,
                &["-n", &ns, "apply", "-f", manifest.to_str().unwrap()],
                None,
            );
            assert!(ok, "{name} apply: {err}");
            assert!(out.contains("configmap/smoke configured"), "{name}: {out}");
            let (ok, out, err) = run(
                k,
                &kc2,
                &["-n", &ns, "get", "cm", "smoke", "-o", "json"],
                None,
            );
            assert!(ok, "{name} get -o json: {err}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["data"]["a"], "1");
            let (ok, out, err) = run(k, &kc2, &["-n", &ns, "get", "deploy", "-o", "wide"], None);
            assert!(ok, "{name} get deploy: {err}");
            assert!(
                out.contains("READY")
                    && out.contains("UP-TO-DATE")
                    && out.contains("SELECTOR")
                    && out.contains("app=web"),
                "{name}: {out}"
            );
            for (ty, patch) in [
                ("merge", r#"{"data":{"b":"2"}}"#),
                ("json", r#"[{"op":"add","path":"/data/c","value":"3"}]"#),
                ("strategic", r#"{"metadata":{"labels":{"x":"y"}}}"#),
            ] {
                let (ok, out, err) = run(
                    k,
                    &kc2,
                    &["-n", &ns, "patch", "cm", "smoke", "--type", ty, "-p", patch],
                    None,
                );
                assert!(ok, "{name} patch {ty}: {err}");
                assert!(out.contains("patched"), "{name}: {out}");
            }
            let (ok, out, err) = run(
                k,
                &kc2,
                &["-n", &ns, "label", "cm", "smoke", "tier=fe"],
                None,
            );
            assert!(ok && out.contains("labeled"), "{name} label: {err}");
            let (ok, out, _) = run(
                k,
                &kc2,
                &["-n", &ns, "get", "cm", "-l", "tier=fe", "-o", "name"],
                None,
            );
            assert!(ok && out.trim() == "configmap/smoke", "{name}: {out}");
            let (ok, _, err) = run(k, &kc2, &["-n", &ns, "get", "cm", "missing"], None);
            assert!(
                !ok && err.contains("NotFound") && err.contains("configmaps \"missing\" not found"),
                "{name}: {err}"
            );
            let (ok, _, err) = run(
                k,
                &kc2,
                &["-n", &ns, "create", "-f", manifest.to_str().unwrap()],
                None,
            );
            assert!(!ok && err.contains("AlreadyExists"), "{name}: {err}");
            let (ok, _, err) = run(k, &kc2, &["create", "namespace", "Bad_Name"], None);
            assert!(!ok && err.contains("is invalid"), "{name}: {err}");
            let (ok, out, err) = run(
                k,
                &kc2,
                &["delete", "namespace", &ns, "--wait=true", "--timeout=60s"],
                None,
            );
            assert!(ok && out.contains("deleted"), "{name} delete ns: {err}");
        }
    })
    .await
    .unwrap();
    sim.shutdown().await;
}
