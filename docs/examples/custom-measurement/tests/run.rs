//! Runs the example binary on the embedded simulated cluster: the in-process measurement works
//! through the whole cl2 command line, verdict included.

use std::path::Path;
use std::process::Command;

fn run(max: &str) -> (Option<i32>, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_cl2-custom"))
        .args([
            "--testconfig",
            config.to_str().unwrap(),
            "--nodes",
            "2",
            "--report-dir",
        ])
        .arg(&reports)
        .env_remove("KUBECONFIG")
        .env("CL2_MAX_NAMESPACES", max)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text, reports, dir)
}

#[test]
fn in_process_measurement_reports_and_judges() {
    let (code, text, reports, _dir) = run("200");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("NamespaceCount"),
        "verdict table lists the custom measurement: {text}"
    );
    let perfdata = std::fs::read_dir(&reports)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("NamespaceCount_ns_")
        })
        .expect("NamespaceCount PerfData file");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(perfdata.path()).unwrap()).unwrap();
    // The simulator has default, kube-system, kube-public, kube-node-lease and the test's 3.
    let end = doc["dataItems"][0]["data"]["end"].as_f64().unwrap();
    assert!(end >= 7.0, "counted the test's namespaces too: {doc}");

    let (code, text, _, _dir) = run("1");
    assert_eq!(code, Some(1), "a violated custom SLO fails the run: {text}");
}
