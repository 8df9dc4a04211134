//! What a run produces, independent of how it is reported.
//!
//! The executor fills a [`RunRecord`]; the measurement manager yields [`crate::measurement`]
//! results; [`crate::report`] writes both.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Outcome of one phase of a step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRecord {
    /// Index of the phase inside its step (0-based).
    pub index: usize,
    pub tuning_set: String,
    /// Object basenames of the bundle, for display.
    pub objects: Vec<String>,
    pub namespaces: usize,
    pub replicas_per_namespace: u32,
    /// Requested rate in actions/s, for rate-based tuning sets.
    pub requested_qps: Option<f64>,
    /// Actions completed per second over the phase's duration.
    pub achieved_qps: f64,
    pub actions_started: u64,
    pub actions_failed: u64,
    pub creates: u64,
    pub patches: u64,
    pub deletes: u64,
    pub started: DateTime<Utc>,
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// First errors seen (bounded), for the report.
    pub errors: Vec<String>,
}

/// Outcome of one step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    pub started: DateTime<Utc>,
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    pub phases: Vec<PhaseRecord>,
    /// Errors of measurement actions or phases in this step.
    pub errors: Vec<String>,
}

/// A problem of the run as a whole.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// Where: `step 3 "[step: 03] Create pods"`, `namespace setup`, `cleanup`, ...
    pub context: String,
    pub message: String,
    /// Fatal errors stop the run.
    pub fatal: bool,
}

/// Everything the executor recorded about a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub test_name: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub steps: Vec<StepRecord>,
    pub errors: Vec<RunError>,
    /// The run was interrupted or stopped by a fatal error before its last step.
    pub partial: bool,
    /// Automanaged namespaces that were created.
    pub namespaces_created: Vec<String>,
    /// Namespaces the run could not delete (left on the cluster).
    pub namespaces_left: Vec<String>,
}

pub(crate) mod duration_secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
