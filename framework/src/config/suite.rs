//! `--testsuite` files: a YAML list of scenarios `{identifier, configPath, overridePaths}`.

use serde_yaml::Value as Yaml;
use std::path::{Path, PathBuf};

use super::decode::{Fields, Sink, sequence};
use super::{ConfigErrors, ConfigProblem, locate};

/// One scenario of a test suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Unique name without `_` (used in artifact names).
    pub identifier: String,
    /// Test config path, relative paths resolved against the suite file's directory.
    pub config_path: PathBuf,
    /// Scenario overrides, applied after the global `--testoverrides`.
    pub override_paths: Vec<PathBuf>,
}

/// Reads a test suite file.
pub fn load_suite(path: &Path) -> Result<Vec<Scenario>, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigProblem::file_level(
            path,
            format!("cannot read test suite: {e}"),
        )])
    })?;
    let value: Yaml = serde_yaml::from_str(&text).map_err(|e| {
        ConfigErrors(vec![ConfigProblem {
            file: path.to_path_buf(),
            position: e.location().map(|l| (l.line(), l.column())),
            field: String::new(),
            message: format!("invalid YAML: {e}"),
        }])
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut sink = Sink::default();
    let mut out: Vec<Scenario> = Vec::new();
    for (i, item) in sequence(&value, "", &mut sink).iter().enumerate() {
        let p = format!("[{i}]");
        let Some(f) = Fields::new(
            item,
            &p,
            &["identifier", "configPath", "overridePaths"],
            &mut sink,
        ) else {
            continue;
        };
        let identifier = f.string("identifier", &mut sink).unwrap_or_default();
        if identifier.contains('_') {
            sink.push(
                f.path("identifier"),
                format!("{identifier:?} must not contain '_'"),
            );
        }
        if out.iter().any(|s| s.identifier == identifier) {
            sink.push(
                f.path("identifier"),
                format!("duplicate scenario identifier {identifier:?}"),
            );
        }
        let Some(config) = f.string("configPath", &mut sink) else {
            sink.push(f.path("configPath"), "missing");
            continue;
        };
        let mut overrides = Vec::new();
        if let Some(o) = f.get("overridePaths") {
            for (j, x) in sequence(o, &f.path("overridePaths"), &mut sink)
                .iter()
                .enumerate()
            {
                match x.as_str() {
                    Some(s) => overrides.push(dir.join(s)),
                    None => sink.push(
                        format!("{}[{j}]", f.path("overridePaths")),
                        "expected a path",
                    ),
                }
            }
        }
        out.push(Scenario {
            identifier,
            config_path: dir.join(config),
            override_paths: overrides,
        });
    }
    if sink.issues.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(
            sink.issues
                .into_iter()
                .map(|i| ConfigProblem {
                    file: path.to_path_buf(),
                    position: locate::locate(&text, &i.field),
                    field: i.field,
                    message: i.message,
                })
                .collect(),
        ))
    }
}
