//! The measurement plugin seam: the [`Measurement`] trait, descriptors, the owned [`Registry`]
//! and the [`MeasurementManager`] that keeps one instance per (method, identifier).

use crate::cluster::Cluster;
use crate::config::{MeasurementSpec, Params};
use serde::Serialize;
use std::sync::Arc;

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
}

/// A measurement's SLO verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Nothing to judge (no threshold, or violations disabled).
    None,
}

/// One named output of a measurement (a perfdash PerfData document, usually).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Summary name, e.g. `PodStartupLatency_PodStartupLatency` (the file-name stem prefix).
    pub name: String,
    /// The document written to `<name>_<test>_<time>.json`.
    pub content: serde_json::Value,
    pub verdict: Verdict,
    /// Human lines explaining a failed verdict.
    pub violations: Vec<String>,
}

/// Errors of a measurement action.
#[derive(Debug, thiserror::Error)]
pub enum MeasurementError {
    #[error("unknown measurement method {method:?}{}", did_you_mean(.suggestion))]
    UnknownMethod { method: String, suggestion: Option<String> },
    #[error("{method}/{identifier}: invalid params: {message}")]
    InvalidParams { method: String, identifier: String, message: String },
    #[error("{method}/{identifier}: {message}")]
    Failed { method: String, identifier: String, message: String },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
}

/// A measurement instance. One exists per (method, identifier) for the whole run.
#[async_trait::async_trait]
pub trait Measurement: Send + Sync {
    /// Runs one action; `params` include the `action` key (`start`, `gather`, ...).
    async fn execute(&mut self, ctx: &MeasurementContext, params: &Params) -> Result<Vec<Summary>, MeasurementError>;

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

/// Owned, sorted set of measurement descriptors.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<MeasurementDescriptor>,
}

impl Registry {
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name.to_string()).collect()
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
}

/// Keeps one instance per (method, identifier) and drives actions on them.
pub struct MeasurementManager {
    registry: Arc<Registry>,
}

impl MeasurementManager {
    pub fn new(registry: Arc<Registry>, base: MeasurementContext) -> Self {
        let _ = base;
        Self { registry }
    }

    /// Executes one measurement step entry (all its instances concurrently).
    pub async fn execute(&self, spec: &MeasurementSpec) -> Result<(), MeasurementError> {
        let _ = &self.registry;
        Err(MeasurementError::UnknownMethod { method: spec.method.clone(), suggestion: None })
    }

    /// Disposes every instance and returns what each produced.
    pub async fn finish(&self) -> Vec<MeasurementResult> {
        Vec::new()
    }
}
