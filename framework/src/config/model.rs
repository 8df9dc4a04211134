//! The resolved test config: what the executor and the measurements see.
//!
//! Produced from the raw (user-written) layer by `config::resolve`: defaults are applied,
//! tuning-set references and measurement methods are checked, durations are parsed and modules
//! are flattened. Nothing downstream re-validates these values.

use std::path::PathBuf;
use std::time::Duration;

/// Free-form parameters (measurement params, template fill maps), JSON-typed.
pub type Params = serde_json::Map<String, serde_json::Value>;

/// A fully resolved test config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Test name (`name:`), used in report file names.
    pub name: String,
    pub namespace: NamespaceConfig,
    pub tuning_sets: Vec<TuningSet>,
    pub steps: Vec<Step>,
    /// Directory of the test config; object templates are resolved below it.
    pub base_dir: PathBuf,
}

/// Automanaged namespaces (`namespace:`).
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceConfig {
    /// Number of automanaged namespaces, `<prefix>-1 ..= <prefix>-<number>`. Default 1.
    pub number: u32,
    /// Prefix; default `test-` + 6 random `[a-z0-9]`.
    pub prefix: String,
    /// Delete stale `test-*-N` namespaces before the test. Default false.
    pub delete_stale_namespaces: bool,
    /// Delete automanaged namespaces at the end. Default true.
    pub delete_automanaged_namespaces: bool,
    /// Allow reusing existing namespaces with the current prefix. Default false.
    pub enable_existing_namespaces: bool,
    /// How long to wait for namespace deletion. Default 10m.
    pub delete_namespace_timeout: Duration,
}

/// A named pacing policy (`tuningSets[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TuningSet {
    pub name: String,
    pub kind: TuningSetKind,
}

/// Exactly one pacing policy; semantics as in upstream ClusterLoader2 (`docs/config-reference.md`).
#[derive(Debug, Clone, PartialEq)]
pub enum TuningSetKind {
    /// `qpsLoad`: one action every `1/qps` seconds, each in its own task.
    QpsLoad { qps: f64 },
    /// `randomizedLoad`: each action after a uniform random delay in `[0, 2/averageQps]`.
    RandomizedLoad { average_qps: f64 },
    /// `steppedLoad`: `burstSize` actions at once, then sleep `stepDelay`.
    SteppedLoad {
        burst_size: u32,
        step_delay: Duration,
    },
    /// `timeLimitedLoad`: spread all actions evenly over `timeLimit`.
    TimeLimitedLoad { time_limit: Duration },
    /// `randomizedTimeLimitedLoad`: each action at a uniform random time in `[0, timeLimit)`.
    RandomizedTimeLimitedLoad { time_limit: Duration },
    /// `parallelismLimitedLoad`: at most `parallelismLimit` actions in flight.
    ParallelismLimitedLoad { parallelism_limit: u32 },
    /// `globalQPSLoad`: a token bucket shared by every phase using this tuning set's name.
    GlobalQpsLoad { qps: f64, burst: u32 },
    /// `poissonLoad`: exponentially distributed gaps with mean `1/expectedActionsPerSecond`.
    PoissonLoad { expected_actions_per_second: f64 },
}

/// One step, after module flattening. Exactly one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `[step: NN] <name>` as upstream renders it.
    pub name: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Phases run concurrently.
    Phases(Vec<Phase>),
    /// Measurement actions run concurrently.
    Measurements(Vec<MeasurementSpec>),
}

/// Which namespaces a phase reconciles objects in.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceSelection {
    /// `namespaceRange {min, max, basename}`; `basename` None = automanaged prefix.
    Range {
        min: u32,
        max: u32,
        basename: Option<String>,
    },
    /// `namespaceList`.
    List(Vec<String>),
    /// Neither: cluster-scoped objects (namespace "").
    ClusterScoped,
}

/// `steps[].phases[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub namespaces: NamespaceSelection,
    pub replicas_per_namespace: u32,
    /// Name of a declared tuning set.
    pub tuning_set: String,
    pub object_bundle: Vec<ObjectSpec>,
}

/// `objectBundle[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    pub basename: String,
    /// Template path, resolved against `Config::base_dir` and checked to exist.
    pub object_template_path: PathBuf,
    pub template_fill_map: Params,
    /// `listUnknownObjectOptions.labelSelector`, rendered as a Kubernetes selector string.
    pub list_unknown_objects_selector: Option<String>,
}

/// `steps[].measurements[]`: one measurement action, possibly on several instances.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementSpec {
    pub method: String,
    /// One entry per instance; a spec without `instances` has exactly one.
    pub instances: Vec<MeasurementInstance>,
}

/// One (identifier, params) target of a measurement action. Params already include the
/// spec-level params merged under the instance's own, and the `action` key.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasurementInstance {
    pub identifier: String,
    pub params: Params,
}
