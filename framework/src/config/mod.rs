//! Loading a test config: gather params, render with tera, parse YAML, resolve.
//!
//! Two layers: the raw layer mirrors what the user wrote (CL2 key spellings accepted), the
//! resolved layer ([`model`]) is what the executor runs. Every problem is collected and reported
//! at once with file, line:column where known, and a field path.
//!
//! Rules worth knowing (see `docs/template-functions.md`):
//! - keys match case-insensitively like CL2 (`Method`, `Identifier`, `basename`), but unknown
//!   keys are errors naming the key (CL2 ignores them silently — a deliberate improvement);
//! - params: override files (later wins) → `Nodes` → `CL2_*` environment variables (typed;
//!   a different value for a key an override file set is a "merge conflict" error);
//! - modules, object templates and `IncludeFile` paths are relative to the directory of the
//!   top-level config (a leading `/` too) and may not leave it ([`crate::template::resolve_confined`]);
//! - YAML positions refer to the *rendered* text, which `cl2 render` prints; tera positions refer
//!   to the template source.

mod decode;
pub mod locate;
pub mod model;
mod suite;

pub use decode::random_prefix;
pub use model::*;
pub use suite::{Scenario, load_suite};

use decode::{Fields, Issue, Sink};
use serde_yaml::Value as Yaml;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::template::{TemplateEngine, TemplateError, resolve_confined};

/// Inputs to [`load`] besides the config path.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--testoverrides` files, applied in order (later wins).
    pub overrides: Vec<PathBuf>,
    /// Number of nodes, exposed to templates as `Nodes`. When None (e.g. `cl2 validate`
    /// without a cluster), an override file's `Nodes` is kept, else `Nodes` is 1.
    pub nodes: Option<u64>,
    /// Environment variables (only `CL2_*` ones are used). Injected for testability;
    /// `cmd` passes `std::env::vars()`.
    pub env: Vec<(String, String)>,
    /// Known measurement methods, to reject unknown ones at load time (with "did you mean").
    pub known_measurements: Vec<String>,
}

/// A loaded, rendered and resolved config.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// Path of the test config file as given.
    pub path: PathBuf,
    /// Hex SHA-256 of the config file's bytes.
    pub source_hash: String,
    /// The params templates saw (overrides, `Nodes`, `CL2_*`), for the report.
    pub params: Params,
}

/// One problem found while loading a config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigProblem {
    pub file: PathBuf,
    /// 1-based line and column, where the parser knows them.
    pub position: Option<(usize, usize)>,
    /// Field path such as `steps[2].phases[0].tuningSet`; empty for file-level problems.
    pub field: String,
    pub message: String,
}

impl ConfigProblem {
    /// A problem of a whole file (no position, no field).
    pub fn file_level(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position: None,
            field: String::new(),
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some((line, col)) = self.position {
            out.push_str(&format!(":{line}:{col}"));
        }
        if !self.field.is_empty() {
            out.push_str(&format!(": {}", self.field));
        }
        out.push_str(&format!(": {}", self.message));
        out
    }
}

/// All problems found while loading a config.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in test config:\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// Result of [`render`]: what `cl2 render` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The main config after templating and module flattening, as YAML.
    pub config: String,
    /// Every object template of every phase, rendered for the requested replica index in the
    /// phase's first namespace.
    pub objects: Vec<RenderedObject>,
}

/// One rendered object template.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    /// 0-based step index after flattening.
    pub step: usize,
    pub phase: usize,
    pub basename: String,
    pub template: PathBuf,
    pub namespace: String,
    pub name: String,
    pub text: String,
}

impl Rendered {
    /// Human/YAML text: the config, then each object as its own `---` document with a comment
    /// header.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# rendered test config\n");
        out.push_str(&self.config);
        for o in &self.objects {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!(
                "---\n# steps[{}].phases[{}] object {:?} from {} (namespace {:?})\n",
                o.step,
                o.phase,
                o.name,
                o.template.display(),
                o.namespace
            ));
            out.push_str(&o.text);
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// Template variables of one object: globals ∪ `templateFillMap` ∪ {`Name`, `Index`,
/// `Namespace`, `BaseName`} (the last four cannot be overridden).
pub fn object_vars(
    globals: &Params,
    fill: &Params,
    basename: &str,
    index: u64,
    namespace: &str,
) -> Params {
    let mut vars = globals.clone();
    for (k, v) in fill {
        vars.insert(k.clone(), v.clone());
    }
    for (k, v) in object_index_vars(basename, index, namespace) {
        vars.insert(k.into(), v);
    }
    vars
}

/// The variables naming one replica of an object (`Name`, `Index`, `Namespace`, `BaseName`);
/// they override globals and the fill map (see [`object_vars`]).
pub fn object_index_vars(
    basename: &str,
    index: u64,
    namespace: &str,
) -> [(&'static str, serde_json::Value); 4] {
    [
        ("Name", format!("{basename}-{index}").into()),
        ("Index", index.into()),
        ("Namespace", namespace.into()),
        ("BaseName", basename.into()),
    ]
}

impl NamespaceSelection {
    /// Namespace names this selection covers, given the automanaged prefix. Cluster-scoped
    /// phases yield one empty name.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        match self {
            NamespaceSelection::Range { min, max, basename } => {
                let base = basename.as_deref().unwrap_or(prefix);
                (*min..=*max).map(|i| format!("{base}-{i}")).collect()
            }
            NamespaceSelection::List(list) => list.clone(),
            NamespaceSelection::ClusterScoped => vec![String::new()],
        }
    }
}

/// Loads, renders and resolves the test config at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<LoadedConfig, ConfigErrors> {
    load_inner(path, opts).map(|(loaded, _)| loaded)
}

/// Validates the config at `path` (same as [`load`]; returns every problem at once).
pub fn validate(path: &Path, opts: &LoadOptions) -> Result<LoadedConfig, ConfigErrors> {
    load(path, opts)
}

/// Loads the config and renders it plus every object template for replica `replica`.
pub fn render(path: &Path, opts: &LoadOptions, replica: u64) -> Result<Rendered, ConfigErrors> {
    let (loaded, flat) = load_inner(path, opts)?;
    let engine = TemplateEngine::new(loaded.config.base_dir.clone());
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for (si, step) in loaded.config.steps.iter().enumerate() {
        let StepKind::Phases(phases) = &step.kind else {
            continue;
        };
        for (pi, phase) in phases.iter().enumerate() {
            // A phase down to zero replicas only deletes: a run renders nothing for it (the
            // objects are identified from the raw template), so neither does `render`.
            if phase.replicas_per_namespace == 0 {
                continue;
            }
            let namespace = phase
                .namespaces
                .names(&loaded.config.namespace.prefix)
                .into_iter()
                .next()
                .unwrap_or_default();
            for obj in &phase.object_bundle {
                let vars = object_vars(
                    &loaded.params,
                    &obj.template_fill_map,
                    &obj.basename,
                    replica,
                    &namespace,
                );
                let rendered = std::fs::read_to_string(&obj.object_template_path)
                    .map_err(|e| TemplateError {
                        message: e.to_string(),
                        position: None,
                    })
                    .and_then(|text| {
                        engine.render(
                            &obj.object_template_path.display().to_string(),
                            &text,
                            &vars,
                        )
                    });
                match rendered {
                    Ok(text) => objects.push(RenderedObject {
                        step: si,
                        phase: pi,
                        basename: obj.basename.clone(),
                        template: obj.object_template_path.clone(),
                        namespace: namespace.clone(),
                        name: format!("{}-{replica}", obj.basename),
                        text,
                    }),
                    Err(e) => problems.push(ConfigProblem {
                        file: obj.object_template_path.clone(),
                        position: e.position,
                        field: format!("steps[{si}].phases[{pi}]"),
                        message: format!("template error: {}", e.message),
                    }),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    let config = serde_yaml::to_string(&flat).map_err(|e| {
        ConfigErrors(vec![ConfigProblem::file_level(
            path,
            format!("cannot print rendered config: {e}"),
        )])
    })?;
    Ok(Rendered { config, objects })
}

/// One rendered file (main config or module) whose problems are reported against its text.
struct SourceDoc {
    file: PathBuf,
    /// The template source.
    source: String,
    /// The rendered text that was parsed.
    text: String,
    sink: Sink,
}

impl SourceDoc {
    fn into_problems(self, out: &mut Vec<ConfigProblem>) {
        for Issue { field, mut message } in self.sink.issues {
            let position = locate::locate(&self.text, &field).map(|pos| {
                match map_to_source(&self.source, &self.text, pos) {
                    Some(p) => p,
                    None => {
                        message.push_str(" (line of the rendered config, see `cl2 render`)");
                        pos
                    }
                }
            });
            out.push(ConfigProblem {
                position,
                file: self.file.clone(),
                field,
                message,
            });
        }
    }
}

/// Maps a position in rendered text to the template source when the rendered line appears
/// verbatim exactly once in the source (lines without template expressions).
fn map_to_source(
    source: &str,
    rendered: &str,
    (line, col): (usize, usize),
) -> Option<(usize, usize)> {
    let target = rendered.lines().nth(line.checked_sub(1)?)?;
    if target.trim().is_empty() {
        return None;
    }
    let mut hits = source.lines().enumerate().filter(|(_, l)| *l == target);
    let (idx, _) = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    Some((idx + 1, col))
}

/// Gathers template params: override files (later wins), `Nodes`, `ImageRegistry`, `CL2_*`
/// environment variables (typed; a conflicting override is an error).
pub fn gather_params(opts: &LoadOptions) -> Result<Params, ConfigErrors> {
    let mut params = Params::new();
    let mut origin: HashMap<String, PathBuf> = HashMap::new();
    let mut problems = Vec::new();
    for file in &opts.overrides {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(ConfigProblem::file_level(
                    file,
                    format!("cannot read override file: {e}"),
                ));
                continue;
            }
        };
        match serde_yaml::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    origin.insert(k.clone(), file.clone());
                    params.insert(k, v);
                }
            }
            Ok(serde_json::Value::Null) => {}
            Ok(_) => problems.push(ConfigProblem::file_level(
                file,
                "override file must be a YAML map of KEY: value",
            )),
            Err(e) => problems.push(ConfigProblem {
                file: file.clone(),
                position: e.location().map(|l| (l.line(), l.column())),
                field: String::new(),
                message: format!("invalid YAML: {e}"),
            }),
        }
    }
    match opts.nodes {
        Some(n) => {
            params.insert("Nodes".into(), n.into());
        }
        None => {
            params.entry("Nodes").or_insert_with(|| 1.into());
        }
    }
    params
        .entry("ImageRegistry")
        .or_insert_with(|| "registry.k8s.io".into());
    let mut env: Vec<&(String, String)> = opts
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("CL2_"))
        .collect();
    env.sort();
    for (k, raw) in env {
        let value = typed_env_value(raw);
        if let Some(existing) = params.get(k)
            && !same_value(existing, &value)
        {
            problems.push(ConfigProblem {
                file: origin.get(k).cloned().unwrap_or_default(),
                position: None,
                field: k.clone(),
                message: format!(
                    "merge conflict: override sets {k} = {existing} but environment variable {k}={raw}"
                ),
            });
            continue;
        }
        params.insert(k.clone(), value);
    }
    if problems.is_empty() {
        Ok(params)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// Types an environment value like CL2: integer, else float, else boolean, else string.
pub fn typed_env_value(raw: &str) -> serde_json::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = raw.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return serde_json::Value::Number(n);
    }
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => return true.into(),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => return false.into(),
        _ => {}
    }
    raw.into()
}

/// Deep equality where numbers compare by value (`5` equals `5.0`, unlike CL2).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn render_and_parse(
    engine: &TemplateEngine,
    file: &Path,
    text: &str,
    vars: &Params,
    problems: &mut Vec<ConfigProblem>,
) -> Option<(String, Yaml)> {
    let rendered = match engine.render(&file.display().to_string(), text, vars) {
        Ok(r) => r,
        Err(e) => {
            problems.push(ConfigProblem {
                file: file.to_path_buf(),
                position: e.position,
                field: String::new(),
                message: format!(
                    "template error: {}{}",
                    e.message,
                    crate::template::go_template_hint(text)
                ),
            });
            return None;
        }
    };
    use serde::Deserialize;
    let parsed = {
        let first = serde_yaml::Deserializer::from_str(&rendered).next();
        match first {
            None => Ok(Yaml::Null),
            Some(doc) => Yaml::deserialize(doc),
        }
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            let rendered_pos = e.location().map(|l| (l.line(), l.column()));
            let source_pos = rendered_pos.and_then(|p| map_to_source(text, &rendered, p));
            let message = match (rendered_pos, source_pos) {
                (Some(_), None) => format!(
                    "invalid YAML after rendering (line of the rendered config, see `cl2 render`): {e}"
                ),
                _ => format!("invalid YAML after rendering: {e}"),
            };
            problems.push(ConfigProblem {
                file: file.to_path_buf(),
                position: source_pos.or(rendered_pos),
                field: String::new(),
                message,
            });
            return None;
        }
    };
    Some((rendered, value))
}

/// A step after module flattening, with where it came from.
struct FlatStep {
    doc: usize,
    path: String,
    value: Yaml,
}

struct Flattener<'a> {
    engine: &'a TemplateEngine,
    globals: &'a Params,
    docs: Vec<SourceDoc>,
    problems: Vec<ConfigProblem>,
    steps: Vec<FlatStep>,
}

const MAX_MODULE_DEPTH: usize = 16;

impl Flattener<'_> {
    fn flatten(&mut self, doc: usize, list_path: &str, items: Vec<Yaml>, depth: usize) {
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{list_path}[{i}]");
            let module = match &item {
                Yaml::Mapping(m) => m
                    .iter()
                    .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case("module")))
                    .map(|(_, v)| v.clone()),
                _ => None,
            };
            let Some(module) = module else {
                self.steps.push(FlatStep {
                    doc,
                    path,
                    value: item,
                });
                continue;
            };
            let sink = &mut self.docs[doc].sink;
            let Some(fields) = Fields::new(&item, &path, decode::STEP_KEYS, sink) else {
                continue;
            };
            if fields.has("phases") || fields.has("measurements") {
                sink.push(
                    &path,
                    "a step must have exactly one of `phases`, `measurements`, `module`",
                );
                continue;
            }
            let mpath = decode::join(&path, "module");
            let Some(mf) = Fields::new(&module, &mpath, decode::MODULE_KEYS, sink) else {
                continue;
            };
            let Some(rel) = mf.string("path", sink) else {
                if !mf.has("path") {
                    sink.push(mf.path("path"), "missing module path");
                }
                continue;
            };
            let params = mf.params("params", sink);
            if depth >= MAX_MODULE_DEPTH {
                sink.push(
                    mf.path("path"),
                    format!(
                        "modules nested deeper than {MAX_MODULE_DEPTH} (a module including itself?)"
                    ),
                );
                continue;
            }
            let file = match resolve_confined(self.engine.root(), &rel) {
                Ok(f) => f,
                Err(e) => {
                    sink.push(mf.path("path"), e);
                    continue;
                }
            };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    sink.push(
                        mf.path("path"),
                        format!("module {} not found: {e}", file.display()),
                    );
                    continue;
                }
            };
            let mut vars = self.globals.clone();
            for (k, v) in params {
                vars.insert(k, v);
            }
            let Some((rendered, value)) =
                render_and_parse(self.engine, &file, &text, &vars, &mut self.problems)
            else {
                continue;
            };
            let mut msink = Sink::default();
            let mut steps = Vec::new();
            if let Some(f) = Fields::new(&value, "", &["steps"], &mut msink) {
                match f.get("steps") {
                    Some(Yaml::Sequence(s)) => steps = s.clone(),
                    Some(_) => msink.push("steps", "expected a list of steps"),
                    None => msink.push("steps", "a module needs `steps`"),
                }
            }
            self.docs.push(SourceDoc {
                file,
                source: text,
                text: rendered,
                sink: msink,
            });
            let new_doc = self.docs.len() - 1;
            self.flatten(new_doc, "steps", steps, depth + 1);
        }
    }
}

fn load_inner(path: &Path, opts: &LoadOptions) -> Result<(LoadedConfig, Yaml), ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigErrors(vec![ConfigProblem::file_level(
            path,
            format!("cannot read test config: {e}"),
        )])
    })?;
    let source_hash = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigErrors(vec![ConfigProblem::file_level(
            path,
            "test config is not UTF-8",
        )])
    })?;
    let params = gather_params(opts)?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let engine = TemplateEngine::new(base_dir.clone());
    let mut problems = Vec::new();
    let Some((rendered, top)) = render_and_parse(&engine, path, &text, &params, &mut problems)
    else {
        return Err(ConfigErrors(problems));
    };
    let mut main = SourceDoc {
        file: path.to_path_buf(),
        source: text.clone(),
        text: rendered,
        sink: Sink::default(),
    };
    let Some(fields) = Fields::new(&top, "", decode::TOP_KEYS, &mut main.sink) else {
        main.into_problems(&mut problems);
        return Err(ConfigErrors(problems));
    };
    let top_level = decode::decode_top(&fields, &mut main.sink);
    let step_items: Vec<Yaml> = match fields.get("steps") {
        Some(Yaml::Sequence(s)) if !s.is_empty() => s.clone(),
        Some(Yaml::Sequence(_)) | None => {
            main.sink.push("steps", "a test needs at least one step");
            Vec::new()
        }
        Some(_) => {
            main.sink.push("steps", "expected a list of steps");
            Vec::new()
        }
    };
    let mut flattener = Flattener {
        engine: &engine,
        globals: &params,
        docs: vec![main],
        problems,
        steps: Vec::new(),
    };
    flattener.flatten(0, "steps", step_items, 0);
    let Flattener {
        mut docs,
        mut problems,
        steps: flat,
        ..
    } = flattener;

    let tuning_names: Vec<String> = top_level
        .tuning_sets
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let mut template_problems: Vec<ConfigProblem> = Vec::new();
    let mut checked: HashMap<PathBuf, bool> = HashMap::new();
    let mut steps = Vec::new();
    for (n, fs) in flat.iter().enumerate() {
        let doc_file = docs[fs.doc].file.clone();
        let sink = &mut docs[fs.doc].sink;
        let Some(fields) = Fields::new(&fs.value, &fs.path, decode::STEP_KEYS, sink) else {
            continue;
        };
        let name = fields.string("name", sink).unwrap_or_else(|| {
            "[autogenerated, please name your step in the test config]".to_string()
        });
        let mut resolve_template = |rel: &str, field: &str, sink: &mut Sink| -> Option<PathBuf> {
            let file = match resolve_confined(&base_dir, rel) {
                Ok(f) => f,
                Err(e) => {
                    sink.push(field, e);
                    return None;
                }
            };
            if let Some(ok) = checked.get(&file) {
                return ok.then_some(file);
            }
            let ok = match std::fs::read_to_string(&file) {
                Err(e) => {
                    sink.push(
                        field,
                        format!("object template {} not found: {e}", file.display()),
                    );
                    false
                }
                Ok(t) => match engine.compile(&file.display().to_string(), &t, &Params::new()) {
                    Ok(_) => true,
                    Err(e) => {
                        template_problems.push(ConfigProblem {
                            file: file.clone(),
                            position: e.position,
                            field: String::new(),
                            message: format!(
                                "template error (used at {}: {field}): {}{}",
                                doc_file.display(),
                                e.message,
                                crate::template::go_template_hint(&t)
                            ),
                        });
                        false
                    }
                },
            };
            checked.insert(file.clone(), ok);
            ok.then_some(file)
        };
        if let Some(kind) = decode::decode_step(
            &fields,
            &fs.path,
            &tuning_names,
            &opts.known_measurements,
            &mut resolve_template,
            sink,
        ) {
            steps.push(Step {
                name: format!("[step: {:02}] {name}", n + 1),
                kind,
            });
        }
    }
    for doc in docs {
        doc.into_problems(&mut problems);
    }
    problems.extend(template_problems);
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    let mut flat_top = top.clone();
    if let Yaml::Mapping(m) = &mut flat_top {
        let key = m
            .keys()
            .find(|k| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case("steps")))
            .cloned()
            .unwrap_or_else(|| Yaml::String("steps".into()));
        m.insert(
            key,
            Yaml::Sequence(flat.into_iter().map(|s| s.value).collect()),
        );
    }
    let config = Config {
        name: top_level.name,
        namespace: top_level.namespace,
        tuning_sets: top_level.tuning_sets,
        steps,
        base_dir,
    };
    Ok((
        LoadedConfig {
            config,
            path: path.to_path_buf(),
            source_hash,
            params,
        },
        flat_top,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_vars_cannot_be_overridden() {
        let mut globals = Params::new();
        globals.insert("Nodes".into(), 3.into());
        globals.insert("Name".into(), "global".into());
        let mut fill = Params::new();
        fill.insert("Replicas".into(), 2.into());
        fill.insert("Index".into(), 99.into());
        let v = object_vars(&globals, &fill, "app", 4, "ns-1");
        assert_eq!(v["Name"], "app-4");
        assert_eq!(v["Index"], 4);
        assert_eq!(v["Namespace"], "ns-1");
        assert_eq!(v["BaseName"], "app");
        assert_eq!(v["Replicas"], 2);
        assert_eq!(v["Nodes"], 3);
    }

    #[test]
    fn namespace_selection_names() {
        let r = NamespaceSelection::Range {
            min: 2,
            max: 3,
            basename: None,
        };
        assert_eq!(r.names("test-abc"), ["test-abc-2", "test-abc-3"]);
        let r = NamespaceSelection::Range {
            min: 0,
            max: 0,
            basename: Some("x".into()),
        };
        assert_eq!(r.names("p"), ["x-0"]);
        assert_eq!(NamespaceSelection::List(vec!["a".into()]).names("p"), ["a"]);
        assert_eq!(NamespaceSelection::ClusterScoped.names("p"), [""]);
    }

    #[test]
    fn random_prefix_shape() {
        let p = random_prefix();
        assert_eq!(p.len(), 11);
        assert!(p.starts_with("test-"));
        assert!(
            p[5..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }

    #[test]
    fn render_cluster_scoped_and_listed_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pc.yaml"),
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {{ Name }}\nvalue: {{ Index }}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "name: t\ntuningSets:\n- name: T\n  qpsLoad:\n    qps: 1\nsteps:\n- name: cluster\n  phases:\n  - replicasPerNamespace: 1\n    tuningSet: T\n    objectBundle:\n    - basename: pc\n      objectTemplatePath: pc.yaml\n- name: listed\n  phases:\n  - namespaceList:\n    - kube-system\n    replicasPerNamespace: 1\n    tuningSet: T\n    objectBundle:\n    - basename: pc\n      objectTemplatePath: pc.yaml\n",
        )
        .unwrap();
        let r = render(&dir.path().join("config.yaml"), &LoadOptions::default(), 7).unwrap();
        assert_eq!(r.objects.len(), 2);
        assert_eq!(r.objects[0].namespace, "");
        assert_eq!(r.objects[0].name, "pc-7");
        assert!(r.objects[0].text.contains("value: 7"));
        assert_eq!(r.objects[1].namespace, "kube-system");
        assert!(r.to_text().contains("# steps[1].phases[0] object \"pc-7\""));
    }
}
