//! Guard: every measurement method named in the shipped `configs/` resolves in the built-in
//! registry (so a renamed measurement cannot silently break a shipped config).

use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_method_in_configs_is_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    let registry = cl2_measurements::builtin_registry();
    let mut checked = 0;
    let mut unknown = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            let t = line.trim_start().trim_start_matches("- ");
            let Some(rest) = t
                .strip_prefix("method:")
                .or_else(|| t.strip_prefix("Method:"))
            else {
                continue;
            };
            let m = rest.trim().trim_matches('"').trim_matches('\'');
            if m.is_empty() || m.contains("{{") || m.contains("{%") {
                continue;
            }
            checked += 1;
            if !registry.contains(m) {
                unknown.push(format!(
                    "{}: {m} (did you mean {:?}?)",
                    f.display(),
                    registry.suggest(m)
                ));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "unknown methods in configs: {unknown:#?}"
    );
    eprintln!(
        "{checked} measurement methods in {} config files resolve",
        files.len()
    );
}
