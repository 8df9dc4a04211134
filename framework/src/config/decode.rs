//! Decoding rendered YAML into the resolved model, collecting every problem.
//!
//! Keys match case-insensitively, as CL2's Go JSON decoding does (`Method`, `Identifier`,
//! `RandomizedTimeLimitedLoad`, `basename` all work), but — deliberately unlike CL2 — unknown
//! keys are rejected with the key named, so a typo never silently drops a setting.

use serde_yaml::Value as Yaml;
use std::time::Duration;

use super::model::*;
use crate::duration::parse_go_duration;

/// One problem found while decoding, before file/position are attached.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub field: String,
    pub message: String,
}

/// Collects issues for one document.
#[derive(Default)]
pub(crate) struct Sink {
    pub issues: Vec<Issue>,
}

impl Sink {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            field: field.into(),
            message: message.into(),
        });
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a map",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A mapping whose keys are matched case-insensitively against a known set.
pub(crate) struct Fields<'a> {
    entries: Vec<(String, &'a Yaml)>,
    path: String,
}

impl<'a> Fields<'a> {
    /// Checks `v` is a map and that every key is one of `known` (case-insensitively).
    pub fn new(v: &'a Yaml, path: &str, known: &[&str], sink: &mut Sink) -> Option<Self> {
        let Yaml::Mapping(map) = v else {
            sink.push(path, format!("expected a map, got {}", type_name(v)));
            return None;
        };
        let mut entries: Vec<(String, &Yaml)> = Vec::new();
        for (k, val) in map {
            let Some(key) = k.as_str() else {
                sink.push(path, format!("keys must be strings, got {}", type_name(k)));
                continue;
            };
            match known.iter().find(|c| c.eq_ignore_ascii_case(key)) {
                Some(canonical) => {
                    if entries.iter().any(|(c, _)| c == canonical) {
                        sink.push(
                            join(path, key),
                            format!("duplicate key (keys are case-insensitive: {canonical:?})"),
                        );
                        continue;
                    }
                    entries.push((canonical.to_string(), val));
                }
                None => {
                    let hint = suggest(key, known)
                        .map(|s| format!("; did you mean {s:?}?"))
                        .unwrap_or_default();
                    sink.push(
                        join(path, key),
                        format!("unknown key {key:?} (known: {}){hint}", known.join(", ")),
                    );
                }
            }
        }
        Some(Self {
            entries,
            path: path.to_string(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a Yaml> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn string(&self, key: &str, sink: &mut Sink) -> Option<String> {
        let v = self.get(key)?;
        match v {
            Yaml::String(s) => Some(s.clone()),
            other => {
                sink.push(
                    self.path(key),
                    format!("expected a string, got {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn boolean(&self, key: &str, sink: &mut Sink) -> Option<bool> {
        match self.get(key)? {
            Yaml::Bool(b) => Some(*b),
            other => {
                sink.push(
                    self.path(key),
                    format!("expected true or false, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A signed integer (integral floats such as `5.0` are accepted, as templates produce them).
    pub fn int(&self, key: &str, sink: &mut Sink) -> Option<i64> {
        let v = self.get(key)?;
        match v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        {
            Some(i) => Some(i),
            None => {
                let got = match v {
                    Yaml::Number(n) => format!("the non-integer {n}"),
                    Yaml::String(s) => format!("the string {s:?}"),
                    other => type_name(other).to_string(),
                };
                sink.push(self.path(key), format!("expected an integer, got {got}"));
                None
            }
        }
    }

    pub fn float(&self, key: &str, sink: &mut Sink) -> Option<f64> {
        let v = self.get(key)?;
        match v.as_f64() {
            Some(f) => Some(f),
            None => {
                sink.push(
                    self.path(key),
                    format!("expected a number, got {}", type_name(v)),
                );
                None
            }
        }
    }

    pub fn duration(&self, key: &str, sink: &mut Sink) -> Option<Duration> {
        let v = self.get(key)?;
        let Yaml::String(s) = v else {
            sink.push(
                self.path(key),
                format!(
                    "expected a Go duration string such as \"30s\", got {}",
                    type_name(v)
                ),
            );
            return None;
        };
        match parse_go_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                sink.push(self.path(key), e.to_string());
                None
            }
        }
    }

    pub fn params(&self, key: &str, sink: &mut Sink) -> Params {
        let Some(v) = self.get(key) else {
            return Params::new();
        };
        to_params(v, &self.path(key), sink)
    }
}

pub(crate) fn to_params(v: &Yaml, path: &str, sink: &mut Sink) -> Params {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(other) => {
            sink.push(
                path,
                format!("expected a map, got {}", json_type_name(&other)),
            );
            Params::new()
        }
        Err(e) => {
            sink.push(path, format!("cannot convert to JSON: {e}"));
            Params::new()
        }
    }
}

fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
    }
}

/// Closest candidate by Jaro-Winkler similarity, if similar enough.
pub(crate) fn suggest<S: AsRef<str>>(name: &str, candidates: &[S]) -> Option<String> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &c.as_ref().to_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_ref().to_string())
}

pub(crate) fn sequence<'a>(v: &'a Yaml, path: &str, sink: &mut Sink) -> &'a [Yaml] {
    match v {
        Yaml::Sequence(items) => items,
        Yaml::Null => &[],
        other => {
            sink.push(path, format!("expected a list, got {}", type_name(other)));
            &[]
        }
    }
}

pub(crate) const TOP_KEYS: &[&str] = &[
    "name",
    "namespace",
    "tuningSets",
    "steps",
    "automanagedNamespaces",
    "dependencies",
    "chaosMonkey",
];
const NAMESPACE_KEYS: &[&str] = &[
    "number",
    "prefix",
    "deleteStaleNamespaces",
    "deleteAutomanagedNamespaces",
    "enableExistingNamespaces",
    "deleteNamespaceTimeout",
];
const TUNING_KINDS: &[&str] = &[
    "qpsLoad",
    "randomizedLoad",
    "steppedLoad",
    "timeLimitedLoad",
    "randomizedTimeLimitedLoad",
    "parallelismLimitedLoad",
    "globalQPSLoad",
    "poissonLoad",
];
pub(crate) const STEP_KEYS: &[&str] = &["name", "phases", "measurements", "module"];
pub(crate) const MODULE_KEYS: &[&str] = &["path", "params"];
const PHASE_KEYS: &[&str] = &[
    "namespaceRange",
    "namespaceList",
    "replicasPerNamespace",
    "tuningSet",
    "objectBundle",
];
const RANGE_KEYS: &[&str] = &["min", "max", "basename"];
const OBJECT_KEYS: &[&str] = &[
    "basename",
    "objectTemplatePath",
    "templateFillMap",
    "listUnknownObjectOptions",
];
const MEASUREMENT_KEYS: &[&str] = &["method", "identifier", "params", "instances"];
const INSTANCE_KEYS: &[&str] = &["identifier", "params"];

/// Default automanaged namespace prefix: `test-` + 6 random `[a-z0-9]`.
pub fn random_prefix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("test-{suffix}")
}

/// Decoded top level without steps (steps are flattened separately).
pub(crate) struct TopLevel {
    pub name: String,
    pub namespace: NamespaceConfig,
    pub tuning_sets: Vec<TuningSet>,
}

pub(crate) fn decode_top(fields: &Fields<'_>, sink: &mut Sink) -> TopLevel {
    let name = fields.string("name", sink).unwrap_or_default();
    if name.is_empty() && !fields.has("name") {
        sink.push("name", "missing test name");
    }
    for unsupported in ["dependencies", "chaosMonkey"] {
        if fields.has(unsupported) {
            sink.push(
                unsupported,
                format!("`{unsupported}` is not supported by cl2 yet"),
            );
        }
    }
    let mut namespace = NamespaceConfig {
        number: 1,
        prefix: random_prefix(),
        delete_stale_namespaces: false,
        delete_automanaged_namespaces: true,
        enable_existing_namespaces: false,
        delete_namespace_timeout: Duration::from_secs(600),
    };
    let legacy = fields.int("automanagedNamespaces", sink);
    if let Some(n) = legacy
        && n < 0
    {
        sink.push("automanagedNamespaces", format!("must be ≥ 0, got {n}"));
    }
    if let Some(v) = fields.get("namespace")
        && let Some(ns) = Fields::new(v, "namespace", NAMESPACE_KEYS, sink)
    {
        if let Some(n) = ns.int("number", sink) {
            if n <= 0 || n > u32::MAX as i64 {
                sink.push("namespace.number", format!("must be > 0, got {n}"));
            } else {
                namespace.number = n as u32;
            }
        }
        if let Some(p) = ns.string("prefix", sink) {
            if !is_dns_label_prefix(&p) {
                sink.push(
                    "namespace.prefix",
                    format!(
                        "{p:?} is not a valid namespace name prefix (lowercase [a-z0-9-], max 50)"
                    ),
                );
            }
            namespace.prefix = p;
        }
        if let Some(b) = ns.boolean("deleteStaleNamespaces", sink) {
            namespace.delete_stale_namespaces = b;
        }
        if let Some(b) = ns.boolean("deleteAutomanagedNamespaces", sink) {
            namespace.delete_automanaged_namespaces = b;
        }
        if let Some(b) = ns.boolean("enableExistingNamespaces", sink) {
            namespace.enable_existing_namespaces = b;
        }
        if let Some(d) = ns.duration("deleteNamespaceTimeout", sink) {
            namespace.delete_namespace_timeout = d;
        }
    }
    if namespace.number == 1
        && let Some(n) = legacy
        && n > 1
    {
        namespace.number = n as u32;
    }
    let mut tuning_sets: Vec<TuningSet> = Vec::new();
    if let Some(v) = fields.get("tuningSets") {
        for (i, item) in sequence(v, "tuningSets", sink).iter().enumerate() {
            let path = format!("tuningSets[{i}]");
            let mut known = vec!["name", "initialDelay"];
            known.extend_from_slice(TUNING_KINDS);
            let Some(ts) = Fields::new(item, &path, &known, sink) else {
                continue;
            };
            let Some(name) = ts.string("name", sink) else {
                if !ts.has("name") {
                    sink.push(join(&path, "name"), "missing tuning set name");
                }
                continue;
            };
            if tuning_sets.iter().any(|t| t.name == name) {
                sink.push(
                    join(&path, "name"),
                    format!("duplicate tuning set {name:?}"),
                );
            }
            let _ = ts.duration("initialDelay", sink);
            let kinds: Vec<&str> = TUNING_KINDS.iter().copied().filter(|k| ts.has(k)).collect();
            if kinds.len() != 1 {
                sink.push(
                    &path,
                    if kinds.is_empty() {
                        format!(
                            "tuning set {name:?} needs exactly one of: {}",
                            TUNING_KINDS.join(", ")
                        )
                    } else {
                        format!(
                            "tuning set {name:?} has several kinds: {}",
                            kinds.join(", ")
                        )
                    },
                );
                continue;
            }
            if let Some(kind) = decode_tuning_kind(&ts, kinds[0], sink) {
                tuning_sets.push(TuningSet { name, kind });
            }
        }
    }
    TopLevel {
        name,
        namespace,
        tuning_sets,
    }
}

fn is_dns_label_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 50
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && p.as_bytes()[0].is_ascii_alphanumeric()
}

/// DNS-1123 subdomain, as Kubernetes object names must be.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && label.as_bytes()[0].is_ascii_alphanumeric()
                && label.as_bytes()[label.len() - 1].is_ascii_alphanumeric()
        })
}

fn decode_tuning_kind(ts: &Fields<'_>, kind: &str, sink: &mut Sink) -> Option<TuningSetKind> {
    let v = ts.get(kind)?;
    let path = ts.path(kind);
    let pos_f = |f: &Fields<'_>, key: &str, sink: &mut Sink| -> Option<f64> {
        match f.float(key, sink) {
            Some(x) if x > 0.0 && x.is_finite() => Some(x),
            Some(x) => {
                sink.push(f.path(key), format!("must be > 0, got {x}"));
                None
            }
            None => {
                if !f.has(key) {
                    sink.push(f.path(key), "missing (required, > 0)");
                }
                None
            }
        }
    };
    let pos_i = |f: &Fields<'_>, key: &str, sink: &mut Sink| -> Option<u32> {
        match f.int(key, sink) {
            Some(x) if x > 0 && x <= u32::MAX as i64 => Some(x as u32),
            Some(x) => {
                sink.push(f.path(key), format!("must be > 0, got {x}"));
                None
            }
            None => {
                if !f.has(key) {
                    sink.push(f.path(key), "missing (required, > 0)");
                }
                None
            }
        }
    };
    let pos_d = |f: &Fields<'_>, key: &str, sink: &mut Sink| -> Option<Duration> {
        match f.duration(key, sink) {
            Some(d) if !d.is_zero() => Some(d),
            Some(_) => {
                sink.push(f.path(key), "must be > 0");
                None
            }
            None => {
                if !f.has(key) {
                    sink.push(f.path(key), "missing (required, Go duration > 0)");
                }
                None
            }
        }
    };
    Some(match kind {
        "qpsLoad" => {
            let f = Fields::new(v, &path, &["qps"], sink)?;
            TuningSetKind::QpsLoad {
                qps: pos_f(&f, "qps", sink)?,
            }
        }
        "randomizedLoad" => {
            let f = Fields::new(v, &path, &["averageQps"], sink)?;
            TuningSetKind::RandomizedLoad {
                average_qps: pos_f(&f, "averageQps", sink)?,
            }
        }
        "steppedLoad" => {
            let f = Fields::new(v, &path, &["burstSize", "stepDelay"], sink)?;
            let burst = pos_i(&f, "burstSize", sink);
            let delay = pos_d(&f, "stepDelay", sink);
            TuningSetKind::SteppedLoad {
                burst_size: burst?,
                step_delay: delay?,
            }
        }
        "timeLimitedLoad" => {
            let f = Fields::new(v, &path, &["timeLimit"], sink)?;
            TuningSetKind::TimeLimitedLoad {
                time_limit: pos_d(&f, "timeLimit", sink)?,
            }
        }
        "randomizedTimeLimitedLoad" => {
            let f = Fields::new(v, &path, &["timeLimit"], sink)?;
            TuningSetKind::RandomizedTimeLimitedLoad {
                time_limit: pos_d(&f, "timeLimit", sink)?,
            }
        }
        "parallelismLimitedLoad" => {
            let f = Fields::new(v, &path, &["parallelismLimit"], sink)?;
            TuningSetKind::ParallelismLimitedLoad {
                parallelism_limit: pos_i(&f, "parallelismLimit", sink)?,
            }
        }
        "globalQPSLoad" => {
            let f = Fields::new(v, &path, &["qps", "burst"], sink)?;
            let qps = pos_f(&f, "qps", sink);
            let burst = pos_i(&f, "burst", sink);
            TuningSetKind::GlobalQpsLoad {
                qps: qps?,
                burst: burst?,
            }
        }
        "poissonLoad" => {
            let f = Fields::new(v, &path, &["expectedActionsPerSecond"], sink)?;
            TuningSetKind::PoissonLoad {
                expected_actions_per_second: pos_f(&f, "expectedActionsPerSecond", sink)?,
            }
        }
        _ => return None,
    })
}

/// Decodes one (non-module) step. `resolve_template` checks an object template path and
/// returns where it lives.
pub(crate) fn decode_step(
    fields: &Fields<'_>,
    path: &str,
    tuning_names: &[String],
    known_measurements: &[String],
    resolve_template: &mut dyn FnMut(&str, &str, &mut Sink) -> Option<std::path::PathBuf>,
    sink: &mut Sink,
) -> Option<StepKind> {
    let has_phases = fields.has("phases");
    let has_measurements = fields.has("measurements");
    if has_phases && has_measurements {
        sink.push(path, "a step must have exactly one of `phases`, `measurements`, `module` (found both phases and measurements)");
        return None;
    }
    if !has_phases && !has_measurements {
        sink.push(
            path,
            "a step must have exactly one of `phases`, `measurements`, `module` (found none)",
        );
        return None;
    }
    if has_phases {
        let v = fields.get("phases")?;
        let mut phases = Vec::new();
        let items = sequence(v, &fields.path("phases"), sink);
        if items.is_empty() {
            sink.push(fields.path("phases"), "must not be empty");
        }
        for (i, item) in items.iter().enumerate() {
            let ppath = format!("{}[{i}]", fields.path("phases"));
            if let Some(p) = decode_phase(item, &ppath, tuning_names, resolve_template, sink) {
                phases.push(p);
            }
        }
        Some(StepKind::Phases(phases))
    } else {
        let v = fields.get("measurements")?;
        let mut specs = Vec::new();
        let items = sequence(v, &fields.path("measurements"), sink);
        if items.is_empty() {
            sink.push(fields.path("measurements"), "must not be empty");
        }
        for (i, item) in items.iter().enumerate() {
            let mpath = format!("{}[{i}]", fields.path("measurements"));
            if let Some(m) = decode_measurement(item, &mpath, known_measurements, sink) {
                specs.push(m);
            }
        }
        Some(StepKind::Measurements(specs))
    }
}

fn decode_phase(
    v: &Yaml,
    path: &str,
    tuning_names: &[String],
    resolve_template: &mut dyn FnMut(&str, &str, &mut Sink) -> Option<std::path::PathBuf>,
    sink: &mut Sink,
) -> Option<Phase> {
    let f = Fields::new(v, path, PHASE_KEYS, sink)?;
    let mut ok = true;
    let namespaces = match (f.get("namespaceRange"), f.get("namespaceList")) {
        (Some(_), Some(_)) => {
            sink.push(
                path,
                "`namespaceRange` and `namespaceList` are mutually exclusive",
            );
            ok = false;
            NamespaceSelection::ClusterScoped
        }
        (Some(r), None) => {
            let rpath = f.path("namespaceRange");
            match Fields::new(r, &rpath, RANGE_KEYS, sink) {
                Some(rf) => {
                    let min = rf.int("min", sink).unwrap_or(0);
                    let max = rf.int("max", sink).unwrap_or(0);
                    if !rf.has("max") {
                        sink.push(rf.path("max"), "missing");
                        ok = false;
                    }
                    if min < 0 {
                        sink.push(rf.path("min"), format!("must be ≥ 0, got {min}"));
                        ok = false;
                    }
                    if max < min {
                        sink.push(rpath.clone(), format!("max ({max}) must be ≥ min ({min})"));
                        ok = false;
                    }
                    if max > u32::MAX as i64 {
                        sink.push(rf.path("max"), "too large");
                        ok = false;
                    }
                    let basename = rf.string("basename", sink);
                    NamespaceSelection::Range {
                        min: min.clamp(0, u32::MAX as i64) as u32,
                        max: max.clamp(0, u32::MAX as i64) as u32,
                        basename,
                    }
                }
                None => {
                    ok = false;
                    NamespaceSelection::ClusterScoped
                }
            }
        }
        (None, Some(l)) => {
            let lpath = f.path("namespaceList");
            let mut names = Vec::new();
            for (i, item) in sequence(l, &lpath, sink).iter().enumerate() {
                match item.as_str() {
                    Some(s) => names.push(s.to_string()),
                    None => {
                        sink.push(
                            format!("{lpath}[{i}]"),
                            format!("expected a namespace name, got {}", type_name(item)),
                        );
                        ok = false;
                    }
                }
            }
            NamespaceSelection::List(names)
        }
        (None, None) => NamespaceSelection::ClusterScoped,
    };
    let replicas = match f.int("replicasPerNamespace", sink) {
        Some(r) if r >= 0 && r <= u32::MAX as i64 => r as u32,
        Some(r) => {
            sink.push(
                f.path("replicasPerNamespace"),
                format!("must be ≥ 0, got {r}"),
            );
            ok = false;
            0
        }
        None => {
            if f.get("replicasPerNamespace").is_some() {
                ok = false;
            }
            0
        }
    };
    let tuning_set = f.string("tuningSet", sink).unwrap_or_default();
    if tuning_set.is_empty() {
        sink.push(f.path("tuningSet"), "missing tuning set name");
        ok = false;
    } else if !tuning_names.contains(&tuning_set) {
        let hint = suggest(&tuning_set, tuning_names)
            .map(|s| format!("; did you mean {s:?}?"))
            .unwrap_or_default();
        sink.push(
            f.path("tuningSet"),
            format!(
                "{tuning_set:?} is not declared (declared: {}){hint}",
                if tuning_names.is_empty() {
                    "none".to_string()
                } else {
                    tuning_names.join(", ")
                }
            ),
        );
        ok = false;
    }
    let mut bundle = Vec::new();
    match f.get("objectBundle") {
        None => {
            sink.push(
                f.path("objectBundle"),
                "missing (a phase needs at least one object)",
            );
            ok = false;
        }
        Some(b) => {
            let bpath = f.path("objectBundle");
            let items = sequence(b, &bpath, sink);
            if items.is_empty() {
                sink.push(&bpath, "must not be empty");
                ok = false;
            }
            for (i, item) in items.iter().enumerate() {
                let opath = format!("{bpath}[{i}]");
                match decode_object(item, &opath, resolve_template, sink) {
                    Some(o) => bundle.push(o),
                    None => ok = false,
                }
            }
        }
    }
    ok.then_some(Phase {
        namespaces,
        replicas_per_namespace: replicas,
        tuning_set,
        object_bundle: bundle,
    })
}

fn decode_object(
    v: &Yaml,
    path: &str,
    resolve_template: &mut dyn FnMut(&str, &str, &mut Sink) -> Option<std::path::PathBuf>,
    sink: &mut Sink,
) -> Option<ObjectSpec> {
    let f = Fields::new(v, path, OBJECT_KEYS, sink)?;
    let basename = f.string("basename", sink);
    match &basename {
        None if !f.has("basename") => sink.push(f.path("basename"), "missing"),
        Some(b) if !is_dns1123_subdomain(b) => sink.push(
            f.path("basename"),
            format!("{b:?} is not a DNS-1123 subdomain (lowercase alphanumerics, '-', '.')"),
        ),
        _ => {}
    }
    let tpl = f.string("objectTemplatePath", sink);
    let resolved = match &tpl {
        None => {
            if !f.has("objectTemplatePath") {
                sink.push(f.path("objectTemplatePath"), "missing");
            }
            None
        }
        Some(t) => resolve_template(t, &f.path("objectTemplatePath"), sink),
    };
    let fill = f.params("templateFillMap", sink);
    let mut selector = None;
    if let Some(lu) = f.get("listUnknownObjectOptions") {
        let lpath = f.path("listUnknownObjectOptions");
        if let Some(lf) = Fields::new(lu, &lpath, &["labelSelector"], sink)
            && let Some(ls) = lf.get("labelSelector")
        {
            selector = label_selector(ls, &lf.path("labelSelector"), sink);
        }
    }
    let basename = basename.filter(|b| is_dns1123_subdomain(b))?;
    Some(ObjectSpec {
        basename,
        object_template_path: resolved?,
        template_fill_map: fill,
        list_unknown_objects_selector: selector,
    })
}

/// Renders a `metav1.LabelSelector` as a selector string (`a=b,c in (d,e),!f`).
fn label_selector(v: &Yaml, path: &str, sink: &mut Sink) -> Option<String> {
    let f = Fields::new(v, path, &["matchLabels", "matchExpressions"], sink)?;
    let mut parts = Vec::new();
    if let Some(ml) = f.get("matchLabels") {
        let Yaml::Mapping(map) = ml else {
            sink.push(
                f.path("matchLabels"),
                format!("expected a map, got {}", type_name(ml)),
            );
            return None;
        };
        for (k, val) in map {
            let key = k.as_str().unwrap_or_default();
            let value = match val {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                other => {
                    sink.push(
                        join(&f.path("matchLabels"), key),
                        format!("expected a string, got {}", type_name(other)),
                    );
                    continue;
                }
            };
            parts.push(format!("{key}={value}"));
        }
    }
    if let Some(me) = f.get("matchExpressions") {
        let mpath = f.path("matchExpressions");
        for (i, item) in sequence(me, &mpath, sink).iter().enumerate() {
            let epath = format!("{mpath}[{i}]");
            let Some(ef) = Fields::new(item, &epath, &["key", "operator", "values"], sink) else {
                continue;
            };
            let key = ef.string("key", sink).unwrap_or_default();
            let op = ef.string("operator", sink).unwrap_or_default();
            let values: Vec<String> = ef
                .get("values")
                .map(|v| {
                    sequence(v, &ef.path("values"), sink)
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            match op.as_str() {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key),
                "DoesNotExist" => parts.push(format!("!{key}")),
                other => sink.push(
                    ef.path("operator"),
                    format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                ),
            }
        }
    }
    Some(parts.join(","))
}

fn decode_measurement(
    v: &Yaml,
    path: &str,
    known: &[String],
    sink: &mut Sink,
) -> Option<MeasurementSpec> {
    let f = Fields::new(v, path, MEASUREMENT_KEYS, sink)?;
    let method = f.string("method", sink).unwrap_or_default();
    let mut ok = true;
    if method.is_empty() {
        sink.push(f.path("method"), "missing measurement method");
        ok = false;
    } else if !known.is_empty() && !method.starts_with("exec:") && !known.contains(&method) {
        let hint = suggest(&method, known)
            .map(|s| format!("; did you mean {s:?}?"))
            .unwrap_or_default();
        sink.push(
            f.path("method"),
            format!("unknown measurement method {method:?}{hint}"),
        );
        ok = false;
    }
    let params = f.params("params", sink);
    let mut instances = Vec::new();
    match (f.get("identifier"), f.get("instances")) {
        (Some(_), Some(_)) => {
            sink.push(path, "`identifier` and `instances` are mutually exclusive");
            ok = false;
        }
        (None, None) => {
            sink.push(
                f.path("identifier"),
                "missing (one of `identifier` or `instances` is required)",
            );
            ok = false;
        }
        (Some(_), None) => {
            let id = f.string("identifier", sink)?;
            instances.push(MeasurementInstance {
                identifier: id,
                params: params.clone(),
            });
        }
        (None, Some(list)) => {
            let ipath = f.path("instances");
            let items = sequence(list, &ipath, sink);
            if items.is_empty() {
                sink.push(&ipath, "must not be empty");
                ok = false;
            }
            for (i, item) in items.iter().enumerate() {
                let p = format!("{ipath}[{i}]");
                let Some(inf) = Fields::new(item, &p, INSTANCE_KEYS, sink) else {
                    ok = false;
                    continue;
                };
                let Some(id) = inf.string("identifier", sink) else {
                    sink.push(inf.path("identifier"), "missing");
                    ok = false;
                    continue;
                };
                let mut merged = params.clone();
                for (k, v) in inf.params("params", sink) {
                    merged.insert(k, v);
                }
                instances.push(MeasurementInstance {
                    identifier: id,
                    params: merged,
                });
            }
        }
    }
    ok.then_some(MeasurementSpec { method, instances })
}
