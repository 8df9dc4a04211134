//! The measurement plugin seam: the [`Measurement`] trait, descriptors, the owned [`Registry`]
//! and the [`MeasurementManager`] that keeps one instance per (method, identifier).
//!
//! Invariants:
//! - the registry is sorted by name and never holds two entries with the same name;
//! - the manager creates an instance lazily on its first action and keeps it for the whole run;
//! - [`MeasurementManager::finish`] gathers every instance that was started but never gathered
//!   (best effort, bounded in time) and disposes every instance, also after failures, so an
//!   interrupted run still reports what it measured.
//!
//! Besides compiled-in measurements, a method can be an out-of-process plugin
//! (`exec:PATH`, or a name registered with [`Registry::register_plugin`]); see [`plugin`].

pub mod params;
pub mod plugin;
pub mod stats;

use crate::cluster::Cluster;
use crate::config::{MeasurementSpec, Params};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The generic param every measurement accepts: the cluster-load level an instance measures at
/// (e.g. `"10%"`). The manager strips it before the measurement sees its params and keeps it on
/// the [`MeasurementResult`].
pub const LOAD_LEVEL_PARAM: &str = "loadLevel";

/// Prefix of a method naming an out-of-process plugin executable: `exec:/path/to/plugin`.
pub const EXEC_METHOD_PREFIX: &str = "exec:";

/// How long [`MeasurementManager::finish`] lets a forgotten instance gather.
pub const FINISH_GATHER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a measurement sees of the run.
#[derive(Clone, Debug)]
pub struct MeasurementContext {
    pub cluster: Cluster,
    pub test_name: String,
    /// The params the test config was rendered with.
    pub test_params: Params,
    /// Identifier of the instance being driven.
    pub identifier: String,
    /// `--enable-exec` was given.
    pub enable_exec: bool,
    /// Report directory (for raw dumps a measurement may want to write), if known.
    pub report_dir: Option<PathBuf>,
    /// Prefix of the automanaged namespaces (`<prefix>-1`, ...), if known.
    pub namespace_prefix: Option<String>,
    /// Cancelled when the run is interrupted; long waits (barriers, sleeps) stop early.
    pub cancel: CancellationToken,
    /// The run is finishing (interrupted or done): gathers must not wait for anything.
    pub finishing: bool,
}

impl MeasurementContext {
    /// A context with defaults for everything but the cluster and the test name.
    pub fn new(cluster: Cluster, test_name: impl Into<String>) -> Self {
        Self {
            cluster,
            test_name: test_name.into(),
            test_params: Params::new(),
            identifier: String::new(),
            enable_exec: false,
            report_dir: None,
            namespace_prefix: None,
            cancel: CancellationToken::new(),
            finishing: false,
        }
    }

    /// Reads the current wall-clock time (the report clock).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Scrapes the apiserver's `/metrics` through the API (no Prometheus needed).
    pub async fn scrape_apiserver_metrics(&self) -> Result<String, kube::Error> {
        let req = http::Request::get("/metrics")
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        self.cluster.client.request_text(req).await
    }
}

/// A measurement's SLO verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Pass,
    Fail,
    /// The SLO was violated but violations are not enforced (`enableViolations: false`):
    /// shown in reports, does not fail the run.
    Warn,
    /// Nothing to judge (no threshold, or an informational summary).
    #[default]
    None,
}

impl Verdict {
    /// Combines two verdicts: Fail > Warn > Pass > None.
    pub fn worst(self, other: Verdict) -> Verdict {
        fn rank(v: Verdict) -> u8 {
            match v {
                Verdict::None => 0,
                Verdict::Pass => 1,
                Verdict::Warn => 2,
                Verdict::Fail => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// Upper-case label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
            Verdict::None => "-",
        }
    }
}

/// A headline number of a summary (shown in verdict tables and load tables).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyNumber {
    /// Short name, e.g. `p99`, `singleObjectP99`, `max`.
    pub name: String,
    pub value: f64,
    /// Unit, e.g. `ms`, `pods/s`, `s`.
    #[serde(default)]
    pub unit: String,
}

impl KeyNumber {
    /// Builds a key number.
    pub fn new(name: &str, value: f64, unit: &str) -> Self {
        Self {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
        }
    }
}

/// One named output of a measurement (a perfdash PerfData document, usually).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Summary name, e.g. `PodStartupLatency_PodStartupLatency` (the file-name stem prefix).
    pub name: String,
    /// The document written to `<name>_<test>_<time>.json`.
    pub content: serde_json::Value,
    #[serde(default)]
    pub verdict: Verdict,
    /// Human lines explaining a failed verdict.
    #[serde(default)]
    pub violations: Vec<String>,
    /// Headline numbers for verdict and load tables.
    #[serde(default)]
    pub key_numbers: Vec<KeyNumber>,
    /// The SLO checked, in words (`pod_startup p99 <= 5s`), if any.
    #[serde(default)]
    pub slo: Option<String>,
}

impl Summary {
    /// A summary with no verdict.
    pub fn new(name: impl Into<String>, content: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            content,
            verdict: Verdict::None,
            violations: Vec::new(),
            key_numbers: Vec::new(),
            slo: None,
        }
    }

    /// Looks a key number up by name.
    pub fn key(&self, name: &str) -> Option<f64> {
        self.key_numbers
            .iter()
            .find(|k| k.name == name)
            .map(|k| k.value)
    }
}

/// Errors of a measurement action.
#[derive(Debug, thiserror::Error)]
pub enum MeasurementError {
    #[error("unknown measurement method {method:?}{}", did_you_mean(.suggestion))]
    UnknownMethod {
        method: String,
        suggestion: Option<String>,
    },
    #[error("{method}/{identifier}: invalid params: {message}")]
    InvalidParams {
        method: String,
        identifier: String,
        message: String,
    },
    #[error("{method}/{identifier}: {message}")]
    Failed {
        method: String,
        identifier: String,
        message: String,
    },
    /// A failure that must stop the test after the current step (CL2's `isFatal`).
    #[error("{method}/{identifier}: critical: {message}")]
    Critical {
        method: String,
        identifier: String,
        message: String,
    },
    /// Several instances of one spec failed.
    #[error("{}", join_errors(.0))]
    Multiple(Vec<MeasurementError>),
}

fn join_errors(errors: &[MeasurementError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl MeasurementError {
    /// True if this error (or one of several) must stop the test.
    pub fn is_critical(&self) -> bool {
        match self {
            MeasurementError::Critical { .. } => true,
            MeasurementError::Multiple(v) => v.iter().any(MeasurementError::is_critical),
            _ => false,
        }
    }

    /// Shorthand for [`MeasurementError::Failed`].
    pub fn failed(method: &str, identifier: &str, message: impl Into<String>) -> Self {
        MeasurementError::Failed {
            method: method.to_string(),
            identifier: identifier.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`MeasurementError::InvalidParams`].
    pub fn invalid(method: &str, identifier: &str, message: impl Into<String>) -> Self {
        MeasurementError::InvalidParams {
            method: method.to_string(),
            identifier: identifier.to_string(),
            message: message.into(),
        }
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// A measurement instance. One exists per (method, identifier) for the whole run.
#[async_trait::async_trait]
pub trait Measurement: Send + Sync {
    /// Runs one action; `params` include the `action` key (`start`, `gather`, ...).
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError>;

    /// Releases resources at the end of the run, also after failures.
    async fn dispose(&mut self) {}
}

/// Describes a measurement type for the registry.
#[derive(Clone, Copy)]
pub struct MeasurementDescriptor {
    pub name: &'static str,
    /// One-line summary for `cl2 measurements`.
    pub summary: &'static str,
    pub new: fn() -> Box<dyn Measurement>,
}

impl std::fmt::Debug for MeasurementDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeasurementDescriptor")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// Errors building a [`Registry`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("measurement {name:?} is registered twice")]
    Duplicate { name: String },
    #[error("invalid measurement name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
}

/// One registry entry, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub name: String,
    pub summary: String,
    /// Path of the executable, for out-of-process plugins.
    pub plugin: Option<PathBuf>,
}

/// Owned, sorted set of measurement descriptors and named out-of-process plugins.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    entries: Vec<MeasurementDescriptor>,
    plugins: BTreeMap<String, PathBuf>,
}

impl Registry {
    /// Builds a registry from descriptors (any order); duplicate names are rejected.
    pub fn new(descriptors: &[MeasurementDescriptor]) -> Result<Registry, RegistryError> {
        let mut r = Registry::default();
        for d in descriptors {
            r.register(*d)?;
        }
        Ok(r)
    }

    fn check_name(&self, name: &str) -> Result<(), RegistryError> {
        if name.is_empty() {
            return Err(RegistryError::InvalidName {
                name: name.into(),
                reason: "empty",
            });
        }
        if name.starts_with(EXEC_METHOD_PREFIX) {
            return Err(RegistryError::InvalidName {
                name: name.into(),
                reason: "the exec: prefix is reserved for plugin paths",
            });
        }
        if self.get(name).is_some() || self.plugins.contains_key(name) {
            return Err(RegistryError::Duplicate { name: name.into() });
        }
        Ok(())
    }

    /// Adds a compiled-in measurement, keeping the table sorted.
    pub fn register(&mut self, desc: MeasurementDescriptor) -> Result<(), RegistryError> {
        self.check_name(desc.name)?;
        let pos = self.entries.partition_point(|e| e.name < desc.name);
        self.entries.insert(pos, desc);
        Ok(())
    }

    /// Registers an out-of-process plugin under a method name (`--measurement-plugin NAME=PATH`).
    pub fn register_plugin(
        &mut self,
        name: &str,
        path: impl Into<PathBuf>,
    ) -> Result<(), RegistryError> {
        self.check_name(name)?;
        self.plugins.insert(name.to_string(), path.into());
        Ok(())
    }

    /// The compiled-in descriptor of `name`.
    pub fn get(&self, name: &str) -> Option<&MeasurementDescriptor> {
        self.entries
            .binary_search_by(|e| e.name.cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Path of the plugin registered as `name`.
    pub fn plugin(&self, name: &str) -> Option<&PathBuf> {
        self.plugins.get(name)
    }

    /// True if `method` can be instantiated (registered name or `exec:PATH`).
    pub fn contains(&self, method: &str) -> bool {
        method.starts_with(EXEC_METHOD_PREFIX)
            || self.get(method).is_some()
            || self.plugins.contains_key(method)
    }

    /// The closest known name to an unknown `name`, if any is close enough.
    pub fn suggest(&self, name: &str) -> Option<String> {
        let lower = name.to_lowercase();
        self.names()
            .into_iter()
            .map(|n| {
                let score = strsim::jaro_winkler(&lower, &n.to_lowercase());
                (score, n)
            })
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n)
    }

    /// Every registered name (compiled-in and plugins), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.entries.iter().map(|e| e.name.to_string()).collect();
        v.extend(self.plugins.keys().cloned());
        v.sort();
        v
    }

    /// Compiled-in descriptors, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &MeasurementDescriptor> {
        self.entries.iter()
    }

    /// Every entry (compiled-in and plugins) with its summary, sorted by name.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        let mut v: Vec<RegistryEntry> = self
            .entries
            .iter()
            .map(|e| RegistryEntry {
                name: e.name.into(),
                summary: e.summary.into(),
                plugin: None,
            })
            .collect();
        v.extend(self.plugins.iter().map(|(n, p)| RegistryEntry {
            name: n.clone(),
            summary: format!("out-of-process plugin {}", p.display()),
            plugin: Some(p.clone()),
        }));
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Creates a new instance of `method`.
    pub fn create(&self, method: &str) -> Result<Box<dyn Measurement>, MeasurementError> {
        if let Some(path) = method.strip_prefix(EXEC_METHOD_PREFIX) {
            return Ok(Box::new(plugin::ExecPlugin::new(
                method,
                PathBuf::from(path),
                true,
            )));
        }
        if let Some(d) = self.get(method) {
            return Ok((d.new)());
        }
        if let Some(path) = self.plugins.get(method) {
            return Ok(Box::new(plugin::ExecPlugin::new(
                method,
                path.clone(),
                false,
            )));
        }
        Err(MeasurementError::UnknownMethod {
            method: method.to_string(),
            suggestion: self.suggest(method),
        })
    }
}

/// Result of one instance, collected at the end of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementResult {
    pub method: String,
    pub identifier: String,
    pub summaries: Vec<Summary>,
    pub errors: Vec<String>,
    /// The `loadLevel` param the instance was driven with, if any (e.g. `"10%"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_level: Option<String>,
    /// When the instance received its first action.
    pub started: Option<DateTime<Utc>>,
    /// Actions received, in order.
    pub actions: Vec<String>,
    /// The instance was started but never gathered by the config; `finish` gathered it.
    pub gathered_at_finish: bool,
}

impl MeasurementResult {
    /// Worst verdict of the summaries; `Fail` if any action errored.
    pub fn verdict(&self) -> Verdict {
        let v = self
            .summaries
            .iter()
            .fold(Verdict::None, |acc, s| acc.worst(s.verdict));
        if self.errors.is_empty() {
            v
        } else {
            Verdict::Fail
        }
    }
}

struct InstanceState {
    measurement: Box<dyn Measurement>,
    result: MeasurementResult,
    /// Params of the last action other than gather (to reuse for a best-effort gather).
    last_params: Option<Params>,
    /// Started (any non-gather action) and not gathered since.
    pending_gather: bool,
}

type InstanceKey = (String, String);

/// Keeps one instance per (method, identifier) and drives actions on them.
pub struct MeasurementManager {
    registry: Arc<Registry>,
    base: MeasurementContext,
    instances: Mutex<BTreeMap<InstanceKey, Arc<tokio::sync::Mutex<InstanceState>>>>,
    /// Creation order of instances, for stable reporting.
    order: Mutex<Vec<InstanceKey>>,
}

fn action_of(params: &Params) -> String {
    params
        .get("action")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

fn is_gather(action: &str) -> bool {
    action == "gather"
}

impl MeasurementManager {
    /// A manager creating instances from `registry`; `base` is cloned per instance with its
    /// identifier filled in.
    pub fn new(registry: Arc<Registry>, base: MeasurementContext) -> Self {
        Self {
            registry,
            base,
            instances: Mutex::new(BTreeMap::new()),
            order: Mutex::new(Vec::new()),
        }
    }

    /// The registry instances are created from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The token measurements watch to stop waiting (the base context's `cancel`). Cancel it
    /// when the run is interrupted so barriers and sleeps return at once.
    pub fn cancel_token(&self) -> CancellationToken {
        self.base.cancel.clone()
    }

    fn instance(
        &self,
        method: &str,
        identifier: &str,
    ) -> Result<Arc<tokio::sync::Mutex<InstanceState>>, MeasurementError> {
        let key = (method.to_string(), identifier.to_string());
        let mut map = self.instances.lock();
        if let Some(i) = map.get(&key) {
            return Ok(i.clone());
        }
        let measurement = self.registry.create(method)?;
        let state = Arc::new(tokio::sync::Mutex::new(InstanceState {
            measurement,
            result: MeasurementResult {
                method: method.to_string(),
                identifier: identifier.to_string(),
                summaries: Vec::new(),
                errors: Vec::new(),
                load_level: None,
                started: None,
                actions: Vec::new(),
                gathered_at_finish: false,
            },
            last_params: None,
            pending_gather: false,
        }));
        map.insert(key.clone(), state.clone());
        self.order.lock().push(key);
        Ok(state)
    }

    async fn run_one(
        &self,
        method: &str,
        identifier: &str,
        params: &Params,
        finishing: bool,
    ) -> Result<(), MeasurementError> {
        let inst = self.instance(method, identifier)?;
        let mut st = inst.lock().await;
        let mut params = params.clone();
        if let Some(level) = params.remove(LOAD_LEVEL_PARAM) {
            let level = match level {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            st.result.load_level = Some(level);
        }
        let action = action_of(&params);
        if st.result.started.is_none() {
            st.result.started = Some(Utc::now());
        }
        st.result.actions.push(action.clone());
        let mut ctx = self.base.clone();
        ctx.identifier = identifier.to_string();
        ctx.finishing = finishing;
        let outcome = st.measurement.execute(&ctx, &params).await;
        // Only a successful `start` opens something to gather: one-shot measurements (Sleep,
        // Exec, barriers without actions) must not run again at finish.
        if is_gather(&action) {
            st.pending_gather = false;
        } else if action == "start" && outcome.is_ok() {
            st.pending_gather = true;
            st.last_params = Some(params.clone());
        }
        match outcome {
            Ok(summaries) => {
                st.result.summaries.extend(summaries);
                Ok(())
            }
            Err(e) => {
                st.result.errors.push(format!("{action}: {e}"));
                Err(e)
            }
        }
    }

    /// Executes one measurement step entry (all its instances concurrently).
    ///
    /// Errors of all failing instances are returned together ([`MeasurementError::Multiple`]
    /// when more than one failed); they are also kept on the instances' results.
    pub async fn execute(&self, spec: &MeasurementSpec) -> Result<(), MeasurementError> {
        if !self.registry.contains(&spec.method) {
            return Err(MeasurementError::UnknownMethod {
                method: spec.method.clone(),
                suggestion: self.registry.suggest(&spec.method),
            });
        }
        let futs = spec
            .instances
            .iter()
            .map(|i| self.run_one(&spec.method, &i.identifier, &i.params, false));
        let mut errors: Vec<MeasurementError> = futures::future::join_all(futs)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(MeasurementError::Multiple(errors)),
        }
    }

    /// Gathers instances started but never gathered (best effort, each bounded by
    /// [`FINISH_GATHER_TIMEOUT`]), disposes every instance and returns what each produced, in
    /// order of creation.
    pub async fn finish(&self) -> Vec<MeasurementResult> {
        let keys: Vec<InstanceKey> = self.order.lock().clone();
        let pending: Vec<(InstanceKey, Params)> = {
            let mut v = Vec::new();
            for key in &keys {
                let inst = self.instances.lock().get(key).cloned();
                if let Some(inst) = inst {
                    let st = inst.lock().await;
                    if st.pending_gather {
                        let mut p = st.last_params.clone().unwrap_or_default();
                        p.insert("action".into(), serde_json::Value::String("gather".into()));
                        v.push((key.clone(), p));
                    }
                }
            }
            v
        };
        let futs = pending.iter().map(|((method, id), params)| async move {
            let r = tokio::time::timeout(
                FINISH_GATHER_TIMEOUT,
                self.run_one(method, id, params, true),
            )
            .await;
            let inst = self
                .instances
                .lock()
                .get(&(method.clone(), id.clone()))
                .cloned();
            if let Some(inst) = inst {
                let mut st = inst.lock().await;
                st.result.gathered_at_finish = true;
                if r.is_err() {
                    st.result.errors.push(format!(
                        "gather at finish timed out after {FINISH_GATHER_TIMEOUT:?}"
                    ));
                }
            }
        });
        futures::future::join_all(futs).await;
        let mut out = Vec::with_capacity(keys.len());
        for key in &keys {
            let inst = self.instances.lock().get(key).cloned();
            if let Some(inst) = inst {
                let mut st = inst.lock().await;
                st.measurement.dispose().await;
                out.push(st.result.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
