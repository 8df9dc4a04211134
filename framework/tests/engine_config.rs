//! Config engine tests: golden rendered configs, param precedence, CL2 key spellings,
//! unknown keys, and the broken-config corpus under `testing/fixtures/broken-configs/`.
//!
//! Regenerate golden files with `UPDATE_GOLDEN=1 cargo test -p cl2-framework --test engine_config`.

use cl2_framework::config::{
    self, LoadOptions, NamespaceSelection, StepKind, TuningSetKind, load, load_suite,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    manifest().join("tests/golden")
}

const KNOWN: &[&str] = &[
    "APIResponsivenessPrometheus",
    "PodStartupLatency",
    "WaitForControlledPodsRunning",
    "Sleep",
];

fn opts() -> LoadOptions {
    LoadOptions {
        nodes: Some(10),
        known_measurements: KNOWN.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn redact(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "<config-dir>")
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(format!("{name}.rendered.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        actual,
        expected,
        "golden file {} differs (UPDATE_GOLDEN=1 to regenerate)",
        path.display()
    );
}

#[test]
fn golden_rendered_configs() {
    for name in ["basic", "spellings"] {
        let dir = golden_dir().join("configs").join(name);
        let rendered = config::render(&dir.join("config.yaml"), &opts(), 1)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_golden(name, &redact(&rendered.to_text(), &dir));
    }
}

#[test]
fn basic_config_resolves() {
    let dir = golden_dir().join("configs/basic");
    let loaded = load(&dir.join("config.yaml"), &opts()).unwrap();
    let c = &loaded.config;
    assert_eq!(c.name, "basic");
    assert_eq!(c.namespace.number, 2);
    assert_eq!(c.namespace.prefix, "golden");
    assert_eq!(
        c.namespace.delete_namespace_timeout,
        Duration::from_secs(150)
    );
    assert!(c.namespace.delete_automanaged_namespaces);
    assert_eq!(c.tuning_sets[0].kind, TuningSetKind::QpsLoad { qps: 5.0 });
    assert_eq!(
        c.tuning_sets[2].kind,
        TuningSetKind::GlobalQpsLoad {
            qps: 20.0,
            burst: 5
        }
    );
    // Module flattened: start, create, wait, scale to zero.
    let names: Vec<&str> = c.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "[step: 01] Start measurements",
            "[step: 02] Create objects (3 per namespace)",
            "[step: 03] Wait",
            "[step: 04] Scale to zero"
        ]
    );
    let StepKind::Phases(phases) = &c.steps[1].kind else {
        panic!("phases expected")
    };
    assert_eq!(phases[0].replicas_per_namespace, 3);
    assert_eq!(
        phases[0].namespaces,
        NamespaceSelection::Range {
            min: 1,
            max: 2,
            basename: None
        }
    );
    assert_eq!(
        phases[0].namespaces.names("golden"),
        ["golden-1", "golden-2"]
    );
    let app = &phases[0].object_bundle[0];
    assert_eq!(app.template_fill_map["Replicas"], 4);
    assert_eq!(app.template_fill_map["Image"], "registry.k8s.io/pause:3.10");
    assert!(
        app.object_template_path
            .ends_with("objects/deployment.yaml")
    );
    let StepKind::Measurements(ms) = &c.steps[2].kind else {
        panic!("measurements expected")
    };
    assert_eq!(ms[0].method, "WaitForControlledPodsRunning");
    let inst = &ms[0].instances[0];
    assert_eq!(inst.identifier, "WaitForRunningDeployments");
    assert_eq!(inst.params["action"], "gather");
    assert_eq!(inst.params["kind"], "Deployment");
    assert_eq!(loaded.params["Nodes"], 10);
    assert_eq!(loaded.source_hash.len(), 64);
}

#[test]
fn cl2_key_spellings_are_accepted() {
    let dir = golden_dir().join("configs/spellings");
    let loaded = load(&dir.join("config.yaml"), &opts()).unwrap();
    let c = &loaded.config;
    assert_eq!(c.name, "spellings");
    assert_eq!(
        c.tuning_sets[0].kind,
        TuningSetKind::RandomizedTimeLimitedLoad {
            time_limit: Duration::from_secs(30)
        }
    );
    assert_eq!(
        c.tuning_sets[1].kind,
        TuningSetKind::SteppedLoad {
            burst_size: 5,
            step_delay: Duration::from_millis(500)
        }
    );
    let StepKind::Phases(p) = &c.steps[0].kind else {
        panic!()
    };
    assert_eq!(
        p[0].namespaces,
        NamespaceSelection::Range {
            min: 1,
            max: 1,
            basename: Some("spell".into())
        }
    );
    assert_eq!(
        p[0].object_bundle[0]
            .list_unknown_objects_selector
            .as_deref(),
        Some("app=spell")
    );
    let StepKind::Measurements(m) = &c.steps[1].kind else {
        panic!()
    };
    assert_eq!(m[0].instances.len(), 2);
    assert_eq!(m[0].instances[1].params["useSimpleLatencyQuery"], true);
    assert_eq!(m[0].instances[1].params["action"], "gather");
    assert!(c.steps[1].name.starts_with("[step: 02] [autogenerated"));
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const PARAMS_CONFIG: &str = r#"name: params
namespace:
  number: {{ DefaultParam(param="CL2_NS", default=1) }}
steps:
- name: s
  measurements:
  - Identifier: x
    Method: Sleep
    Params:
      a: {{ A }}
      nodes: {{ Nodes }}
      env: {{ DefaultParam(param="CL2_FLAG", default="unset") }}
"#;

fn params_of(loaded: &config::LoadedConfig) -> serde_json::Map<String, serde_json::Value> {
    let StepKind::Measurements(m) = &loaded.config.steps[0].kind else {
        panic!()
    };
    m[0].instances[0].params.clone()
}

#[test]
fn param_precedence_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "config.yaml", PARAMS_CONFIG);
    let o1 = write(dir.path(), "o1.yaml", "A: first\nNodes: 99\nCL2_NS: 3\n");
    let o2 = write(dir.path(), "o2.yaml", "A: second\n");
    // Later override wins; Nodes from --nodes beats the override file.
    let mut o = LoadOptions {
        overrides: vec![o1.clone(), o2.clone()],
        nodes: Some(7),
        ..Default::default()
    };
    let loaded = load(&cfg, &o).unwrap();
    let p = params_of(&loaded);
    assert_eq!(p["a"], "second");
    assert_eq!(p["nodes"], 7);
    assert_eq!(p["env"], "unset");
    assert_eq!(loaded.config.namespace.number, 3);
    // Without --nodes, the override's Nodes stays.
    o.nodes = None;
    assert_eq!(params_of(&load(&cfg, &o).unwrap())["nodes"], 99);
    // CL2_* env vars are typed and keep their prefix.
    o.env = vec![
        ("CL2_FLAG".into(), "true".into()),
        ("CL2_NS".into(), "3".into()),
        ("OTHER".into(), "x".into()),
    ];
    let loaded = load(&cfg, &o).unwrap();
    assert_eq!(params_of(&loaded)["env"], true);
    assert_eq!(loaded.params["CL2_NS"], 3);
    assert!(!loaded.params.contains_key("OTHER"));
    // An env var conflicting with an override is an error naming both.
    o.env = vec![("CL2_NS".into(), "4".into())];
    let err = load(&cfg, &o).unwrap_err();
    let p = &err.0[0];
    assert_eq!(p.field, "CL2_NS");
    assert!(p.message.contains("merge conflict"), "{}", p.message);
    assert_eq!(p.file, o1);
    // Same value as a float in the override does not conflict (deliberate fix of a CL2 quirk).
    let o3 = write(dir.path(), "o3.yaml", "CL2_NS: 4.0\n");
    o.overrides = vec![o2, o3];
    assert!(load(&cfg, &o).is_ok());
}

#[test]
fn env_values_are_typed() {
    use config::typed_env_value as t;
    assert_eq!(t("42"), serde_json::json!(42));
    assert_eq!(t("-3"), serde_json::json!(-3));
    assert_eq!(t("2.5"), serde_json::json!(2.5));
    assert_eq!(t("true"), serde_json::json!(true));
    assert_eq!(t("F"), serde_json::json!(false));
    assert_eq!(t("hello"), serde_json::json!("hello"));
}

#[test]
fn unknown_keys_are_rejected_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "config.yaml",
        "name: x\nsteps:\n- name: s\n  measurements:\n  - Identifier: a\n    Method: Sleep\n    Parms:\n      duration: 1s\n",
    );
    let err = load(&cfg, &opts()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    let p = &err.0[0];
    assert_eq!(p.field, "steps[0].measurements[0].Parms");
    assert!(p.message.contains("unknown key \"Parms\""), "{}", p.message);
    assert!(
        p.message.contains("did you mean \"params\""),
        "{}",
        p.message
    );
    assert_eq!(p.position, Some((7, 5)));
    let text = err.to_string();
    assert!(
        text.contains("config.yaml:7:5: steps[0].measurements[0].Parms"),
        "{text}"
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "config.yaml",
        "name: x\ntuningSets:\n- name: A\n  qpsLoad:\n    qps: -1\nsteps:\n- name: s\n  phases:\n  - tuningSet: B\n    replicasPerNamespace: -1\n    objectBundle:\n    - basename: x\n      objectTemplatePath: missing.yaml\n- name: t\n  measurements:\n  - Identifier: a\n    Method: Slep\n",
    );
    let err = load(&cfg, &opts()).unwrap_err();
    let fields: Vec<&str> = err.0.iter().map(|p| p.field.as_str()).collect();
    for f in [
        "tuningSets[0].qpsLoad.qps",
        "steps[0].phases[0].tuningSet",
        "steps[0].phases[0].replicasPerNamespace",
        "steps[0].phases[0].objectBundle[0].objectTemplatePath",
        "steps[1].measurements[0].method",
    ] {
        assert!(fields.contains(&f), "missing {f} in {fields:?}");
    }
}

#[test]
fn exec_plugins_and_empty_registry_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "config.yaml",
        "name: x\nsteps:\n- name: s\n  measurements:\n  - Identifier: a\n    Method: exec:/usr/bin/true\n  - Identifier: b\n    Method: Anything\n",
    );
    let err = load(&cfg, &opts()).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].field, "steps[0].measurements[1].method");
    assert!(load(&cfg, &LoadOptions::default()).is_ok());
}

#[test]
fn test_suite_files() {
    let dir = tempfile::tempdir().unwrap();
    let suite = write(
        dir.path(),
        "suite.yaml",
        "- identifier: density\n  configPath: density/config.yaml\n  overridePaths:\n  - o.yaml\n- identifier: load\n  configPath: load.yaml\n",
    );
    let s = load_suite(&suite).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].identifier, "density");
    assert_eq!(s[0].config_path, dir.path().join("density/config.yaml"));
    assert_eq!(s[0].override_paths, vec![dir.path().join("o.yaml")]);
    let bad = write(
        dir.path(),
        "bad.yaml",
        "- identifier: a_b\n  configPath: x.yaml\n",
    );
    let err = load_suite(&bad).unwrap_err();
    assert_eq!(err.0[0].field, "[0].identifier");
}

/// The expectation on the first line of a broken config.
struct Expect {
    field: String,
    message: String,
    line: Option<usize>,
    file: Option<String>,
}

fn parse_expect(first_line: &str) -> Expect {
    let (_, rest) = first_line
        .split_once("expect: ")
        .expect("first line must contain `expect: `");
    let (field, rest) = rest.split_once(" :: ").expect("expect: FIELD :: MESSAGE");
    let (rest, file) = match rest.split_once(" file=") {
        Some((r, f)) => (r, Some(f.trim().to_string())),
        None => (rest, None),
    };
    let (message, line) = match rest.rsplit_once(" @ line ") {
        Some((m, l)) => (m, Some(l.trim().parse().unwrap())),
        None => (rest, None),
    };
    let field = if field == "-" {
        String::new()
    } else {
        field.to_string()
    };
    Expect {
        field,
        message: message.trim().to_string(),
        line,
        file,
    }
}

#[test]
fn broken_config_corpus() {
    let dir = manifest().join("../testing/fixtures/broken-configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus has only {} configs", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let expect = parse_expect(text.lines().next().unwrap_or_default());
        let result = std::panic::catch_unwind(|| load(f, &opts()));
        let Ok(result) = result else {
            failures.push(format!("{}: panicked", f.display()));
            continue;
        };
        let Err(errors) = result else {
            failures.push(format!("{}: loaded without error", f.display()));
            continue;
        };
        let matched = errors.0.iter().any(|p| {
            p.field == expect.field
                && p.message.contains(&expect.message)
                && expect
                    .line
                    .is_none_or(|l| p.position.map(|x| x.0) == Some(l))
                && match &expect.file {
                    Some(suffix) => p.file.ends_with(suffix),
                    None => p.file == *f,
                }
        });
        if !matched {
            failures.push(format!(
                "{}: expected field {:?} message ~{:?} line {:?} file {:?}; got:\n{errors}",
                f.file_name().unwrap().to_string_lossy(),
                expect.field,
                expect.message,
                expect.line,
                expect.file
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} broken config(s) not reported as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every deterministic `example` → `result` pair in docs/template-functions.md renders as documented.
#[test]
fn template_function_docs_examples_render_as_documented() {
    let doc = std::fs::read_to_string(manifest().join("../docs/template-functions.md")).unwrap();
    let doc = doc.replace("\\|", "|");
    let re = regex::Regex::new(r"`([^`]*)` → `([^`]*)`").unwrap();
    let engine = cl2_framework::template::TemplateEngine::new(std::env::temp_dir());
    let mut vars = serde_json::Map::new();
    vars.insert("Nodes".into(), 10.into());
    vars.insert("Name".into(), "app-1".into());
    let mut checked = 0;
    for cap in re.captures_iter(&doc) {
        let (example, expected) = (&cap[1], &cap[2]);
        if example.contains("Rand") || expected.contains('…') {
            continue;
        }
        let got = engine
            .render("doc", example, &vars)
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(got, expected, "docs example {example}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} examples checked");
}
