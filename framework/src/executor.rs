//! The executor: steps in order, phases (or measurements) of a step concurrently, CL2's
//! reconciliation of object bundles per namespace, automanaged namespaces.
//!
//! Reconciliation (per phase, per namespace, per bundle object identity
//! `(basename, kind, apiGroup)`): the executor remembers `current` replicas; when the phase asks
//! for `replicasPerNamespace`:
//! - more than current → create indices `current..desired`, bundle objects in order;
//! - fewer → delete indices `desired..current`, bundle objects in reverse order;
//! - equal → re-apply (JSON merge patch of the rendered template) every index `0..desired`.
//!
//! One action = one (namespace, index) with its whole bundle; all actions of a phase go to its
//! tuning set at once; afterwards `current = desired`, even if some actions failed (as CL2).
//! Objects are named `<basename>-<index>`; any kind the cluster serves works (discovery, cached).

use futures::future::join_all;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Scope};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::config::{
    LoadedConfig, MeasurementSpec, Phase, StepKind, object_index_vars, object_vars,
};
use crate::measurement::MeasurementManager;
use crate::run::{PhaseRecord, RunError, RunRecord, StepRecord};
use crate::template::{CompiledTemplate, TemplateEngine, TemplateVars};
use crate::tuning::{Action, ActionFuture, ProgressFn, TuningRunner, requested_qps};

/// Label put on every automanaged namespace.
pub const AUTOMANAGED_LABEL: &str = "cl2.k8s.io/automanaged";
/// Label holding the test name on automanaged namespaces.
pub const TEST_NAME_LABEL: &str = "cl2.k8s.io/test";

/// Progress callbacks for the command line (indicatif bars live in `cmd`).
pub trait Progress: Send + Sync {
    /// A phase with `total` actions started; `id` is unique within the run.
    fn phase_started(&self, id: usize, label: &str, total: u64);
    /// `done` actions finished so far, `failed` of them failed.
    fn phase_progress(&self, id: usize, done: u64, failed: u64);
    fn phase_finished(&self, id: usize);
    /// A measurement action is running (a wait barrier, usually).
    fn measurement_started(&self, id: usize, label: &str);
    fn measurement_finished(&self, id: usize, ok: bool);
}

/// Progress that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase_started(&self, _: usize, _: &str, _: u64) {}
    fn phase_progress(&self, _: usize, _: u64, _: u64) {}
    fn phase_finished(&self, _: usize) {}
    fn measurement_started(&self, _: usize, _: &str) {}
    fn measurement_finished(&self, _: usize, _: bool) {}
}

/// Run-time options of the executor.
#[derive(Clone)]
pub struct ExecutorOptions {
    /// Fired on the first Ctrl-C: stop issuing actions, skip remaining steps, clean up.
    pub cancel: CancellationToken,
    pub progress: Arc<dyn Progress>,
    /// `--delete-automanaged-namespaces` override of the config's setting.
    pub delete_automanaged_namespaces: Option<bool>,
    /// `--delete-stale-namespaces` override of the config's setting.
    pub delete_stale_namespaces: Option<bool>,
}

/// How often namespace deletion is polled during cleanup.
pub const NAMESPACE_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            cancel: CancellationToken::new(),
            progress: Arc::new(NoProgress),
            delete_automanaged_namespaces: None,
            delete_stale_namespaces: None,
        }
    }
}

/// Errors of one object operation or of phase preparation.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("template {path}: {message}")]
    Template { path: String, message: String },
    #[error("template {path}: rendered object has no apiVersion/kind")]
    NoKind { path: String },
    #[error("cannot resolve {kind} ({api_version}) on the cluster: {message}")]
    Discovery {
        api_version: String,
        kind: String,
        message: String,
    },
    #[error("{verb} {kind} {namespace}/{name}: {message}")]
    Api {
        verb: &'static str,
        kind: String,
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "bundle error in namespace {namespace:?}: objects have different replica counts ({counts})"
    )]
    Bundle { namespace: String, counts: String },
    #[error("{kind} is namespaced but the phase selects no namespace")]
    NeedsNamespace { kind: String },
}

/// Remembered replica counts per (namespace, basename, kind, apiGroup).
type StateKey = (String, String, String, String);

/// One resolved document of an object template.
#[derive(Clone)]
struct DocKind {
    ar: ApiResource,
    namespaced: bool,
}

/// Everything an action needs for one bundle object.
struct ObjectPlan {
    /// (apiVersion, kind) of each document, aligned with `docs`.
    gvks: Vec<(String, String)>,
    basename: String,
    path: String,
    template: CompiledTemplate,
    /// Globals ∪ `templateFillMap`, prepared once; each action adds its index variables.
    vars: TemplateVars,
    docs: Vec<DocKind>,
    identity: (String, String),
}

/// Runs a loaded test config against a cluster.
pub struct Executor {
    cluster: Cluster,
    loaded: Arc<LoadedConfig>,
    measurements: Arc<MeasurementManager>,
    opts: ExecutorOptions,
    runner: TuningRunner,
    engine: TemplateEngine,
    state: Mutex<HashMap<StateKey, u64>>,
    discovery: tokio::sync::Mutex<HashMap<(String, String), DocKind>>,
    live_namespaces: Mutex<Vec<String>>,
    next_id: AtomicUsize,
}

fn api_error(e: &kube::Error) -> (Option<u16>, String) {
    match e {
        kube::Error::Api(s) => (Some(s.code), format!("{} ({})", s.message, s.code)),
        other => {
            let mut msg = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                let m = s.to_string();
                if !msg.contains(&m) {
                    msg.push_str(": ");
                    msg.push_str(&m);
                }
                src = s.source();
            }
            (None, msg)
        }
    }
}

fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

/// apiVersion/kind of every document of a template read raw: each `{{...}}`, `{%...%}` and
/// `{#...#}` on a line is removed (greedy, like CL2's placeholder stripping). None when the
/// remainder is not YAML with literal apiVersion and kind in every document.
fn raw_kinds(text: &str) -> Option<Vec<(String, String)>> {
    fn strip(line: &str, open: &str, close: &str) -> String {
        match (line.find(open), line.rfind(close)) {
            (Some(a), Some(b)) if b >= a => format!("{}{}", &line[..a], &line[b + close.len()..]),
            _ => line.to_string(),
        }
    }
    let stripped: String = text
        .lines()
        .map(|l| strip(&strip(&strip(l, "{{", "}}"), "{%", "%}"), "{#", "#}"))
        .collect::<Vec<_>>()
        .join("\n");
    let docs = parse_docs(&stripped, "").ok()?;
    if docs.is_empty() {
        return None;
    }
    docs.iter()
        .map(|d| {
            let (v, k) = gvk_of(d)?;
            (!v.is_empty() && !k.is_empty()).then_some((v, k))
        })
        .collect()
}

/// Parses every non-empty YAML document of a rendered template into JSON.
fn parse_docs(text: &str, path: &str) -> Result<Vec<serde_json::Value>, ExecError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(doc).map_err(|e| ExecError::Template {
            path: path.to_string(),
            message: format!("invalid YAML: {e}"),
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// (apiVersion, kind) of a document, borrowed.
fn gvk_ref(v: &serde_json::Value) -> Option<(&str, &str)> {
    Some((v.get("apiVersion")?.as_str()?, v.get("kind")?.as_str()?))
}

fn gvk_of(v: &serde_json::Value) -> Option<(String, String)> {
    gvk_ref(v).map(|(a, k)| (a.to_string(), k.to_string()))
}

impl Executor {
    /// An executor for one run.
    pub fn new(
        cluster: Cluster,
        loaded: Arc<LoadedConfig>,
        measurements: Arc<MeasurementManager>,
        opts: ExecutorOptions,
    ) -> Self {
        let engine = TemplateEngine::new(loaded.config.base_dir.clone());
        Self {
            cluster,
            loaded,
            measurements,
            opts,
            runner: TuningRunner::new(),
            engine,
            state: Mutex::new(HashMap::new()),
            discovery: tokio::sync::Mutex::new(HashMap::new()),
            live_namespaces: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
        }
    }

    /// Automanaged namespaces that currently exist (created and not yet seen deleted).
    pub fn namespaces(&self) -> Vec<String> {
        self.live_namespaces.lock().clone()
    }

    fn automanaged_names(&self) -> Vec<String> {
        let ns = &self.loaded.config.namespace;
        (1..=ns.number)
            .map(|i| format!("{}-{i}", ns.prefix))
            .collect()
    }

    /// Namespace setup → steps → namespace cleanup. Never panics; errors land in the record.
    pub async fn run(&self) -> RunRecord {
        let started = chrono::Utc::now();
        let mut record = RunRecord {
            test_name: self.loaded.config.name.clone(),
            started,
            finished: started,
            steps: Vec::new(),
            errors: Vec::new(),
            partial: false,
            namespaces_created: Vec::new(),
            namespaces_left: Vec::new(),
        };
        match self.setup_namespaces(&mut record).await {
            Ok(()) => self.run_steps(&mut record).await,
            Err(message) => {
                record.errors.push(RunError {
                    context: "namespace setup".into(),
                    message,
                    fatal: true,
                });
                record.partial = true;
            }
        }
        self.cleanup_namespaces(&mut record).await;
        record.finished = chrono::Utc::now();
        record
    }

    async fn run_steps(&self, record: &mut RunRecord) {
        let steps = &self.loaded.config.steps;
        for (i, step) in steps.iter().enumerate() {
            if self.opts.cancel.is_cancelled() {
                record.partial = true;
                record.errors.push(RunError {
                    context: format!("step {} {:?}", i + 1, step.name),
                    message: format!("interrupted: {} step(s) not run", steps.len() - i),
                    fatal: false,
                });
                break;
            }
            let t0 = std::time::Instant::now();
            let step_started = chrono::Utc::now();
            let mut srec = StepRecord {
                index: i,
                name: step.name.clone(),
                started: step_started,
                duration: Duration::ZERO,
                phases: Vec::new(),
                errors: Vec::new(),
            };
            let mut fatal = false;
            match &step.kind {
                StepKind::Phases(phases) => {
                    let results = join_all(
                        phases
                            .iter()
                            .enumerate()
                            .map(|(pi, p)| self.run_phase(&step.name, pi, p)),
                    )
                    .await;
                    for (prec, phase_fatal) in results {
                        for e in &prec.errors {
                            srec.errors.push(format!("phase {}: {e}", prec.index));
                        }
                        fatal |= phase_fatal;
                        srec.phases.push(prec);
                    }
                }
                StepKind::Measurements(specs) => {
                    let results = join_all(specs.iter().map(|s| self.run_measurement(s))).await;
                    for (message, critical) in results.into_iter().flatten() {
                        srec.errors.push(message);
                        fatal |= critical;
                    }
                }
            }
            srec.duration = t0.elapsed();
            // Step errors stay in the step record; the run record gets run-level problems only.
            let fatal_message = fatal.then(|| srec.errors.first().cloned().unwrap_or_default());
            record.steps.push(srec);
            if self.opts.cancel.is_cancelled() && i + 1 < steps.len() {
                record.partial = true;
            }
            if let Some(first) = fatal_message {
                record.partial |= i + 1 < steps.len();
                record.errors.push(RunError {
                    context: format!("step {} {:?}", i + 1, step.name),
                    message: format!(
                        "fatal error ({first}): {} remaining step(s) skipped",
                        steps.len() - i - 1
                    ),
                    fatal: true,
                });
                break;
            }
        }
        if self.opts.cancel.is_cancelled() {
            record.partial = true;
        }
    }

    /// Runs one measurement entry; on error returns (message, critical).
    async fn run_measurement(&self, spec: &MeasurementSpec) -> Option<(String, bool)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ids: Vec<&str> = spec
            .instances
            .iter()
            .map(|i| i.identifier.as_str())
            .collect();
        let label = format!("{} {}", spec.method, ids.join(","));
        self.opts.progress.measurement_started(id, &label);
        let r = self.measurements.execute(spec).await;
        self.opts.progress.measurement_finished(id, r.is_ok());
        r.err()
            .map(|e| (format!("measurement {label}: {e}"), e.is_critical()))
    }

    async fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<DocKind, ExecError> {
        let key = (api_version.to_string(), kind.to_string());
        let mut cache = self.discovery.lock().await;
        if let Some(d) = cache.get(&key) {
            return Ok(d.clone());
        }
        let (group, version) = split_api_version(api_version);
        let gvk = kube::api::GroupVersionKind::gvk(&group, &version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.cluster.client, &gvk)
            .await
            .map_err(|e| ExecError::Discovery {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                message: api_error(&e).1,
            })?;
        let d = DocKind {
            ar,
            namespaced: matches!(caps.scope, Scope::Namespaced),
        };
        cache.insert(key, d.clone());
        Ok(d)
    }

    /// Compiles a bundle object's template and resolves its kinds (rendered once for index 0).
    async fn plan_object(
        &self,
        obj: &crate::config::ObjectSpec,
        first_ns: &str,
    ) -> Result<ObjectPlan, ExecError> {
        let path = obj.object_template_path.display().to_string();
        let text = std::fs::read_to_string(&obj.object_template_path).map_err(|e| {
            ExecError::Template {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let mut static_vars = self.loaded.params.clone();
        for (k, v) in &obj.template_fill_map {
            static_vars.insert(k.clone(), v.clone());
        }
        let template = self
            .engine
            .compile(&path, &text, &static_vars)
            .map_err(|e| ExecError::Template {
                path: path.clone(),
                message: e.message,
            })?;
        // Identity and kinds come from the raw template (placeholders stripped), as CL2 does,
        // so delete phases work without the templateFillMap; else from a render of index 0.
        let kinds = match raw_kinds(&text) {
            Some(k) => k,
            None => {
                let vars = object_vars(
                    &self.loaded.params,
                    &obj.template_fill_map,
                    &obj.basename,
                    0,
                    first_ns,
                );
                let rendered = template.render(&vars).map_err(|e| ExecError::Template {
                    path: path.clone(),
                    message: e.message,
                })?;
                let mut kinds = Vec::new();
                for d in parse_docs(&rendered, &path)? {
                    kinds.push(gvk_of(&d).ok_or_else(|| ExecError::NoKind { path: path.clone() })?);
                }
                kinds
            }
        };
        let mut docs = Vec::new();
        let mut identity = None;
        let mut seen: Vec<(String, String)> = Vec::new();
        for (api_version, kind) in kinds {
            if seen.contains(&(api_version.clone(), kind.clone())) {
                return Err(ExecError::Template {
                    path: path.clone(),
                    message: format!("{kind} ({api_version}) appears twice; names would collide"),
                });
            }
            seen.push((api_version.clone(), kind.clone()));
            let dk = self.resolve_kind(&api_version, &kind).await?;
            if identity.is_none() {
                identity = Some((kind.clone(), dk.ar.group.clone()));
            }
            docs.push(dk);
        }
        Ok(ObjectPlan {
            gvks: seen,
            basename: obj.basename.clone(),
            path,
            template,
            vars: TemplateVars::new(&static_vars),
            docs,
            identity: identity.unwrap_or_default(),
        })
    }

    async fn count_unknown(
        &self,
        plan: &ObjectPlan,
        ns: &str,
        selector: &str,
    ) -> Result<u64, ExecError> {
        let Some(doc) = plan.docs.first() else {
            return Ok(0);
        };
        let api: Api<DynamicObject> = if doc.namespaced {
            Api::namespaced_with(self.cluster.client.clone(), ns, &doc.ar)
        } else {
            Api::all_with(self.cluster.client.clone(), &doc.ar)
        };
        let lp = ListParams::default().labels(selector);
        let list = api.list_metadata(&lp).await.map_err(|e| ExecError::Api {
            verb: "LIST",
            kind: doc.ar.kind.clone(),
            namespace: ns.to_string(),
            name: String::new(),
            message: api_error(&e).1,
        })?;
        Ok(list.items.len() as u64)
    }

    /// Runs one phase; returns its record and whether its failure is fatal.
    async fn run_phase(&self, step_name: &str, index: usize, phase: &Phase) -> (PhaseRecord, bool) {
        let started = chrono::Utc::now();
        let t0 = std::time::Instant::now();
        let mut rec = PhaseRecord {
            index,
            tuning_set: phase.tuning_set.clone(),
            objects: phase
                .object_bundle
                .iter()
                .map(|o| o.basename.clone())
                .collect(),
            namespaces: 0,
            replicas_per_namespace: phase.replicas_per_namespace,
            requested_qps: None,
            achieved_qps: 0.0,
            actions_started: 0,
            actions_failed: 0,
            creates: 0,
            patches: 0,
            deletes: 0,
            started,
            duration: Duration::ZERO,
            errors: Vec::new(),
        };
        let namespaces = phase.namespaces.names(&self.loaded.config.namespace.prefix);
        rec.namespaces = namespaces.len();
        let Some(set) = self
            .loaded
            .config
            .tuning_sets
            .iter()
            .find(|t| t.name == phase.tuning_set)
        else {
            rec.errors
                .push(format!("tuning set {:?} not found", phase.tuning_set));
            return (rec, true);
        };
        // Plan every bundle object once.
        let first_ns = namespaces.first().cloned().unwrap_or_default();
        let mut plans = Vec::new();
        for obj in &phase.object_bundle {
            match self.plan_object(obj, &first_ns).await {
                Ok(p) => plans.push(p),
                Err(e) => {
                    rec.errors.push(e.to_string());
                    rec.duration = t0.elapsed();
                    return (rec, true);
                }
            }
        }
        for p in &plans {
            if first_ns.is_empty() && p.docs.iter().any(|d| d.namespaced) {
                rec.errors.push(
                    ExecError::NeedsNamespace {
                        kind: p.identity.0.clone(),
                    }
                    .to_string(),
                );
                return (rec, true);
            }
        }
        let plans = Arc::new(plans);
        let desired = u64::from(phase.replicas_per_namespace);
        // Diff per namespace.
        let mut actions: Vec<Action> = Vec::new();
        let counters = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let mut updates: Vec<StateKey> = Vec::new();
        for ns in &namespaces {
            let mut currents = Vec::new();
            for (pi, p) in plans.iter().enumerate() {
                let key: StateKey = (
                    ns.clone(),
                    p.basename.clone(),
                    p.identity.0.clone(),
                    p.identity.1.clone(),
                );
                let known = self.state.lock().get(&key).copied();
                let current = match known {
                    Some(c) => c,
                    None => match &phase.object_bundle[pi].list_unknown_objects_selector {
                        Some(sel) => match self.count_unknown(p, ns, sel).await {
                            Ok(c) => c,
                            Err(e) => {
                                rec.errors.push(e.to_string());
                                return (rec, true);
                            }
                        },
                        None => 0,
                    },
                };
                currents.push(current);
                updates.push(key);
            }
            let current = currents.first().copied().unwrap_or(0);
            if currents.iter().any(|c| *c != current) {
                let counts = plans
                    .iter()
                    .zip(&currents)
                    .map(|(p, c)| format!("{}={c}", p.basename))
                    .collect::<Vec<_>>()
                    .join(", ");
                rec.errors.push(
                    ExecError::Bundle {
                        namespace: ns.clone(),
                        counts,
                    }
                    .to_string(),
                );
                return (rec, true);
            }
            let (op, range) = match diff(current, desired) {
                Diff::Delete(r) => (Op::Delete, r),
                Diff::Patch(r) => (Op::Patch, r),
                Diff::Create(r) => (Op::Create, r),
            };
            for idx in range {
                let ctx = ActionCtx {
                    client: self.cluster.client.clone(),
                    plans: plans.clone(),
                    namespace: ns.clone(),
                    index: idx,
                    op,
                    counters: counters.clone(),
                };
                actions.push(Box::new(move || -> ActionFuture { Box::pin(ctx.run()) }));
            }
        }
        let total = actions.len();
        rec.requested_qps = requested_qps(&set.kind, total);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let label = format!(
            "{step_name} phase {index}: {} ({})",
            rec.objects.join(","),
            set.name
        );
        self.opts.progress.phase_started(id, &label, total as u64);
        let progress = self.opts.progress.clone();
        let pfn: ProgressFn =
            Arc::new(move |done, failed| progress.phase_progress(id, done, failed));
        let stats = self
            .runner
            .run(set, actions, &self.opts.cancel, Some(pfn))
            .await;
        self.opts.progress.phase_finished(id);
        {
            let mut st = self.state.lock();
            for k in updates {
                st.insert(k, desired);
            }
        }
        rec.actions_started = stats.started;
        rec.actions_failed = stats.failed;
        rec.creates = counters[0].load(Ordering::Relaxed);
        rec.patches = counters[1].load(Ordering::Relaxed);
        rec.deletes = counters[2].load(Ordering::Relaxed);
        rec.duration = t0.elapsed();
        let secs = stats.duration.as_secs_f64();
        rec.achieved_qps = if secs > 0.0 {
            stats.started as f64 / secs
        } else {
            0.0
        };
        if stats.failed > 0 {
            rec.errors.push(format!(
                "{} of {} actions failed",
                stats.failed, stats.started
            ));
        }
        rec.errors.extend(stats.errors);
        if stats.skipped > 0 {
            rec.errors.push(format!(
                "interrupted: {} action(s) not started",
                stats.skipped
            ));
        }
        (rec, false)
    }

    async fn setup_namespaces(&self, record: &mut RunRecord) -> Result<(), String> {
        let cfg = &self.loaded.config.namespace;
        let api: Api<Namespace> = Api::all(self.cluster.client.clone());
        let existing = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| format!("cannot list namespaces: {}", api_error(&e).1))?;
        let existing: Vec<String> = existing
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        let ours = self.automanaged_names();
        let is_ours = |n: &str| {
            n.strip_prefix(&cfg.prefix)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| {
                    !r.is_empty() && !r.starts_with('0') && r.bytes().all(|b| b.is_ascii_digit())
                })
        };
        let pre: Vec<&String> = existing.iter().filter(|n| is_ours(n)).collect();
        if !pre.is_empty() && !cfg.enable_existing_namespaces {
            return Err(format!(
                "pre-existing automanaged namespaces found: {} (set namespace.enableExistingNamespaces or use another prefix)",
                pre.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self
            .opts
            .delete_stale_namespaces
            .unwrap_or(cfg.delete_stale_namespaces)
        {
            let stale: Vec<&String> = existing
                .iter()
                .filter(|n| is_stale_name(n) && !is_ours(n))
                .collect();
            for n in stale {
                if let Err(e) = api.delete(n, &DeleteParams::background()).await {
                    let (code, msg) = api_error(&e);
                    if code != Some(404) {
                        record.errors.push(RunError {
                            context: "namespace setup".into(),
                            message: format!("cannot delete stale namespace {n}: {msg}"),
                            fatal: false,
                        });
                    }
                }
            }
        }
        let label_value = sanitize_label_value(&self.loaded.config.name);
        for name in ours {
            if existing.contains(&name) {
                self.live_namespaces.lock().push(name);
                continue;
            }
            let ns: Namespace = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": { AUTOMANAGED_LABEL: "true", TEST_NAME_LABEL: label_value },
                },
            }))
            .map_err(|e| e.to_string())?;
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => {}
                Err(e) => {
                    let (code, msg) = api_error(&e);
                    if code != Some(409) {
                        return Err(format!("cannot create namespace {name}: {msg}"));
                    }
                }
            }
            record.namespaces_created.push(name.clone());
            self.live_namespaces.lock().push(name);
        }
        Ok(())
    }

    async fn cleanup_namespaces(&self, record: &mut RunRecord) {
        let cfg = &self.loaded.config.namespace;
        let live = self.namespaces();
        if live.is_empty() {
            return;
        }
        if !self
            .opts
            .delete_automanaged_namespaces
            .unwrap_or(cfg.delete_automanaged_namespaces)
        {
            record.namespaces_left = live;
            return;
        }
        let api: Api<Namespace> = Api::all(self.cluster.client.clone());
        let results = join_all(live.iter().map(|n| {
            let api = api.clone();
            async move { (n.clone(), api.delete(n, &DeleteParams::background()).await) }
        }))
        .await;
        for (n, r) in results {
            if let Err(e) = r {
                let (code, msg) = api_error(&e);
                if code != Some(404) {
                    record.errors.push(RunError {
                        context: "cleanup".into(),
                        message: format!("cannot delete namespace {n}: {msg}"),
                        fatal: false,
                    });
                }
            }
        }
        let deadline = tokio::time::Instant::now() + cfg.delete_namespace_timeout;
        loop {
            let remaining: Vec<String> = match api.list_metadata(&ListParams::default()).await {
                Ok(list) => {
                    let names: Vec<String> = list
                        .items
                        .into_iter()
                        .filter_map(|n| n.metadata.name)
                        .collect();
                    live.iter().filter(|n| names.contains(n)).cloned().collect()
                }
                Err(_) => live.clone(),
            };
            *self.live_namespaces.lock() = remaining.clone();
            if remaining.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                record.errors.push(RunError {
                    context: "cleanup".into(),
                    message: format!(
                        "namespaces not deleted within {:?}: {}",
                        cfg.delete_namespace_timeout,
                        remaining.join(", ")
                    ),
                    fatal: false,
                });
                record.namespaces_left = remaining;
                return;
            }
            tokio::time::sleep(NAMESPACE_POLL_INTERVAL).await;
        }
    }
}

/// Stale = `test-<alnum>-<n>`, as CL2 names automanaged namespaces.
fn is_stale_name(n: &str) -> bool {
    let Some(rest) = n.strip_prefix("test-") else {
        return false;
    };
    let Some((mid, num)) = rest.rsplit_once('-') else {
        return false;
    };
    !mid.is_empty()
        && mid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
}

fn sanitize_label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Patch,
    Delete,
}

struct ActionCtx {
    client: kube::Client,
    plans: Arc<Vec<ObjectPlan>>,
    namespace: String,
    index: u64,
    op: Op,
    counters: Arc<[AtomicU64; 3]>,
}

impl ActionCtx {
    fn api(&self, doc: &DocKind) -> Api<DynamicObject> {
        if doc.namespaced {
            Api::namespaced_with(self.client.clone(), &self.namespace, &doc.ar)
        } else {
            Api::all_with(self.client.clone(), &doc.ar)
        }
    }

    async fn run(self) -> Result<(), String> {
        match self.op {
            Op::Delete => {
                for plan in self.plans.iter().rev() {
                    let name = format!("{}-{}", plan.basename, self.index);
                    for doc in plan.docs.iter().rev() {
                        match self
                            .api(doc)
                            .delete(&name, &DeleteParams::background())
                            .await
                        {
                            Ok(_) => {}
                            Err(e) => {
                                let (code, msg) = api_error(&e);
                                if code != Some(404) {
                                    return Err(self.err("DELETE", &doc.ar.kind, &name, msg));
                                }
                            }
                        }
                        self.counters[2].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
            Op::Create | Op::Patch => {
                for plan in self.plans.iter() {
                    self.apply(plan).await?;
                }
                Ok(())
            }
        }
    }

    fn err(&self, verb: &'static str, kind: &str, name: &str, message: String) -> String {
        ExecError::Api {
            verb,
            kind: kind.to_string(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
            message,
        }
        .to_string()
    }

    async fn apply(&self, plan: &ObjectPlan) -> Result<(), String> {
        let name = format!("{}-{}", plan.basename, self.index);
        let mut vars = plan.vars.clone();
        for (k, v) in object_index_vars(&plan.basename, self.index, &self.namespace) {
            vars.set(k, &v);
        }
        let text = plan
            .template
            .render_vars(&vars)
            .map_err(|e| format!("template {}: {}", plan.path, e.message))?;
        let docs = parse_docs(&text, &plan.path).map_err(|e| e.to_string())?;
        for mut value in docs {
            let (api_version, kind) = gvk_ref(&value).ok_or_else(|| {
                format!("template {}: a document has no apiVersion/kind", plan.path)
            })?;
            let Some(doc) = plan
                .gvks
                .iter()
                .position(|(v, k)| v == api_version && k == kind)
                .and_then(|i| plan.docs.get(i))
            else {
                return Err(format!(
                    "template {}: renders {kind} ({api_version}) for index {}, not among the template's kinds",
                    plan.path, self.index
                ));
            };
            if let Some(obj) = value.as_object_mut() {
                let meta = obj
                    .entry("metadata")
                    .or_insert_with(|| serde_json::json!({}));
                if let Some(m) = meta.as_object_mut() {
                    m.insert("name".into(), name.clone().into());
                    if doc.namespaced {
                        m.insert("namespace".into(), self.namespace.clone().into());
                    } else {
                        m.remove("namespace");
                    }
                }
            }
            let api = self.api(doc);
            match self.op {
                Op::Create => {
                    let obj: DynamicObject = serde_json::from_value(value).map_err(|e| {
                        format!("template {}: not a Kubernetes object: {e}", plan.path)
                    })?;
                    match api.create(&PostParams::default(), &obj).await {
                        Ok(_) => {}
                        Err(e) => {
                            let (code, msg) = api_error(&e);
                            if code != Some(409) {
                                return Err(self.err("CREATE", &doc.ar.kind, &name, msg));
                            }
                        }
                    }
                    self.counters[0].fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&value))
                        .await
                        .map_err(|e| self.err("PATCH", &doc.ar.kind, &name, api_error(&e).1))?;
                    self.counters[1].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

/// Pure reconciliation diff, for tests and tools: what a phase does in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Create these indices (bundle in order).
    Create(std::ops::Range<u64>),
    /// Delete these indices (bundle in reverse order).
    Delete(std::ops::Range<u64>),
    /// Re-apply these indices (count unchanged).
    Patch(std::ops::Range<u64>),
}

/// The reconciliation rule of one namespace: `current` replicas exist, `desired` are asked.
pub fn diff(current: u64, desired: u64) -> Diff {
    if desired < current {
        Diff::Delete(desired..current)
    } else if desired == current {
        Diff::Patch(0..desired)
    } else {
        Diff::Create(current..desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciliation_diff() {
        assert_eq!(diff(0, 3), Diff::Create(0..3));
        assert_eq!(diff(3, 5), Diff::Create(3..5));
        assert_eq!(diff(5, 2), Diff::Delete(2..5));
        assert_eq!(diff(5, 0), Diff::Delete(0..5));
        assert_eq!(diff(4, 4), Diff::Patch(0..4));
        assert_eq!(diff(0, 0), Diff::Patch(0..0));
    }

    #[test]
    fn stale_names() {
        assert!(is_stale_name("test-abc123-1"));
        assert!(is_stale_name("test-x-12"));
        assert!(!is_stale_name("test-abc"));
        assert!(!is_stale_name("kube-system"));
        assert!(!is_stale_name("test-ab_c-1"));
        assert!(!is_stale_name("test--1"));
    }

    #[test]
    fn label_values_are_sanitized() {
        assert_eq!(sanitize_label_value("density test!"), "density-test");
        assert_eq!(sanitize_label_value(&"a".repeat(100)).len(), 63);
    }

    #[test]
    fn raw_kinds_strip_placeholders() {
        let t = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ Name }}\n  labels:\n    group: {{ Group }}\nspec:\n  replicas: {{ Replicas }}\n{% if X %}\n  paused: true\n{% endif %}\n---\napiVersion: v1\nkind: Service\n";
        assert_eq!(
            raw_kinds(t),
            Some(vec![
                ("apps/v1".to_string(), "Deployment".to_string()),
                ("v1".to_string(), "Service".to_string())
            ])
        );
        assert_eq!(raw_kinds("apiVersion: v1\nkind: {{ Kind }}\n"), None);
        assert_eq!(raw_kinds("{{ IncludeFile(path=\"x\") }}"), None);
    }

    #[test]
    fn parses_multi_document_templates() {
        let docs = parse_docs("a: 1\n---\n---\nb: 2\n", "t").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_docs("a: [\n", "t").is_err());
    }
}
