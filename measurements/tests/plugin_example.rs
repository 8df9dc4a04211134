//! Runs the documented out-of-process plugin example (`docs/examples/plugins/pod-counter.py`)
//! through the measurement manager, as `--measurement-plugin PodCounter=...` and `exec:PATH`.

use cl2_framework::cluster::Cluster;
use cl2_framework::config::{MeasurementInstance, MeasurementSpec};
use cl2_framework::measurement::{MeasurementContext, MeasurementManager, Registry, Verdict};
use std::path::PathBuf;
use std::sync::Arc;

fn plugin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/plugins/pod-counter.py")
}

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn offline_context() -> MeasurementContext {
    MeasurementContext::new(Cluster::offline(), "plugin-test")
}

fn spec(method: &str, id: &str, params: serde_json::Value) -> MeasurementSpec {
    MeasurementSpec {
        method: method.into(),
        instances: vec![MeasurementInstance {
            identifier: id.into(),
            params: params.as_object().cloned().unwrap(),
        }],
    }
}

#[tokio::test]
async fn pod_counter_plugin_speaks_the_protocol() {
    if !python_available() {
        eprintln!("python3 not available; skipping");
        return;
    }
    let mut registry = cl2_measurements::builtin_registry();
    registry
        .register_plugin("PodCounter", plugin_path())
        .unwrap();
    assert!(registry.names().contains(&"PodCounter".to_string()));
    let manager = MeasurementManager::new(Arc::new(registry), offline_context());

    manager
        .execute(&spec(
            "PodCounter",
            "pods",
            serde_json::json!({"action": "start"}),
        ))
        .await
        .unwrap();
    manager
        .execute(&spec(
            "PodCounter",
            "pods",
            serde_json::json!({"action": "gather", "maxPods": 10}),
        ))
        .await
        .unwrap();
    // Plugin errors come back as measurement errors.
    let err = manager
        .execute(&spec(
            "PodCounter",
            "bad",
            serde_json::json!({"action": "start", "bogus": 1}),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown params: bogus"), "{err}");
    // `exec:PATH` comes from the config: refused without --enable-exec.
    let exec = format!("exec:{}", plugin_path().display());
    let refused = manager
        .execute(&spec(
            &exec,
            "refused",
            serde_json::json!({"action": "start"}),
        ))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("--enable-exec"), "{refused}");

    let results = manager.finish().await;
    assert_eq!(results.len(), 3);
    let pods = &results[0];
    assert_eq!(pods.summaries.len(), 1);
    let s = &pods.summaries[0];
    assert_eq!(s.name, "PodCounter_pods");
    assert_eq!(s.content["dataItems"][0]["labels"]["Metric"], "pod_count");
    // No kubeconfig offline: the count is -1 and no verdict is given.
    assert_eq!(s.verdict, Verdict::None);
    assert_eq!(results[1].verdict(), Verdict::Fail);
    assert_eq!(results[2].verdict(), Verdict::Fail);

    // With --enable-exec, by path; started but never gathered: finish() gathers it.
    let mut ctx = offline_context();
    ctx.enable_exec = true;
    let manager = MeasurementManager::new(Arc::new(Registry::default()), ctx);
    manager
        .execute(&spec(
            &exec,
            "forgotten",
            serde_json::json!({"action": "start"}),
        ))
        .await
        .unwrap();
    let results = manager.finish().await;
    let forgotten = &results[0];
    assert!(forgotten.gathered_at_finish);
    assert_eq!(forgotten.summaries[0].name, "PodCounter_forgotten");
}

#[tokio::test]
async fn missing_plugin_executable_is_a_clear_error() {
    let mut registry = Registry::default();
    registry
        .register_plugin("Nope", "/nonexistent/plugin")
        .unwrap();
    let manager = MeasurementManager::new(Arc::new(registry), offline_context());
    let err = manager
        .execute(&spec("Nope", "x", serde_json::json!({"action": "start"})))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot start plugin /nonexistent/plugin"),
        "{err}"
    );
    assert_eq!(manager.finish().await.len(), 1);
}

#[tokio::test]
async fn silent_plugin_is_stopped_when_the_run_is_interrupted() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\n# Reads requests and never answers.\ncat > /dev/null\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut registry = Registry::default();
    registry.register_plugin("Silent", &path).unwrap();
    let ctx = offline_context();
    let cancel = ctx.cancel.clone();
    let manager = Arc::new(MeasurementManager::new(Arc::new(registry), ctx));
    let m = manager.clone();
    let task = tokio::spawn(async move {
        m.execute(&spec("Silent", "s", serde_json::json!({"action": "start"})))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    cancel.cancel();
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("interrupted"), "{err}");
    assert_eq!(manager.finish().await.len(), 1);
}
