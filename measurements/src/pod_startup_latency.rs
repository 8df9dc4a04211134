//! PodStartupLatency: how long pods take from creation to running, per transition.
//!
//! `start` opens a pod watch (selector: `namespace`, `labelSelector`, `fieldSelector`);
//! `gather` stops it and computes nearest-rank percentiles (p10/p50/p90/p99) of six
//! transitions over all / stateless / stateful pods.
//!
//! Two sets of timestamps are kept per pod:
//! - **watch** (what the verdict uses, as CL2 since 2026): receive time of the first event
//!   seen for the pod (create), with `spec.nodeName` set (schedule), with phase Running (run =
//!   watch);
//! - **server**: `metadata.creationTimestamp`, the PodScheduled condition's
//!   `lastTransitionTime`, the latest container `state.running.startedAt` (second precision),
//!   with watch = receive time of the first Running event (CL2's legacy numbers).
//!
//! Per-pod state is a fixed 56-byte [`PodTimes`] keyed by `namespace/name`, so 150,000 pods
//! cost a few tens of MB (see the `measurements` benchmark).

use crate::common::{self, WatchTask};
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::stats::{DataItem, LatencyPercentiles, PerfData};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
    Verdict,
};
use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "PodStartupLatency",
    summary: "pod create→schedule→run→watch latency percentiles; SLO p99 <= 5s",
    new: || Box::new(PodStartupLatency::default()),
};

const METHOD: &str = "PodStartupLatency";

/// Transitions, in report order: (name, from, to).
const TRANSITIONS: [(&str, Phase, Phase); 6] = [
    ("create_to_schedule", Phase::Create, Phase::Schedule),
    ("schedule_to_run", Phase::Schedule, Phase::Run),
    ("run_to_watch", Phase::Run, Phase::Watch),
    ("schedule_to_watch", Phase::Schedule, Phase::Watch),
    ("pod_startup", Phase::Create, Phase::Watch),
    ("create_to_run", Phase::Create, Phase::Run),
];

#[derive(Clone, Copy, Debug)]
enum Phase {
    Create,
    Schedule,
    Run,
    Watch,
}

const UNSET: i64 = i64::MIN;

/// Compact per-pod timestamps, milliseconds since the Unix epoch (`i64::MIN` = unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodTimes {
    /// Watch receive times.
    pub create: i64,
    pub schedule: i64,
    pub run: i64,
    /// Server timestamps.
    pub server_create: i64,
    pub server_schedule: i64,
    pub server_run: i64,
    pub stateful: bool,
}

impl Default for PodTimes {
    fn default() -> Self {
        Self {
            create: UNSET,
            schedule: UNSET,
            run: UNSET,
            server_create: UNSET,
            server_schedule: UNSET,
            server_run: UNSET,
            stateful: false,
        }
    }
}

impl PodTimes {
    fn watch(&self, phase: Phase) -> i64 {
        match phase {
            Phase::Create => self.create,
            Phase::Schedule => self.schedule,
            Phase::Run | Phase::Watch => self.run,
        }
    }

    fn server(&self, phase: Phase) -> i64 {
        match phase {
            Phase::Create => self.server_create,
            Phase::Schedule => self.server_schedule,
            Phase::Run => self.server_run,
            Phase::Watch => self.run,
        }
    }
}

/// What one pod event says, extracted from the object (no per-event allocation: the watch
/// builds the key in a reused buffer and allocates it only for a pod seen the first time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodObservation {
    pub scheduled: bool,
    pub running: bool,
    pub stateful: bool,
    /// Server timestamps (ms) if present, else `i64::MIN`.
    pub server_create: i64,
    pub server_schedule: i64,
    pub server_run: i64,
}

impl PodObservation {
    /// Extracts the observation from a pod object.
    pub fn of(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let server_schedule = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "True")
            })
            .and_then(|c| c.last_transition_time.as_ref())
            .map_or(UNSET, common::time_ms);
        let server_run = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                    .map(common::time_ms)
                    .max()
            })
            .unwrap_or(UNSET);
        Self {
            scheduled: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty()),
            running: common::phase(pod) == "Running",
            stateful: !common::is_stateless(pod),
            server_create: pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(UNSET, common::time_ms),
            server_schedule,
            server_run,
        }
    }
}

/// Per-pod state of one PodStartupLatency instance. Public for the benchmark, which feeds it
/// through the same [`Tracker::observe`] the watch uses.
#[derive(Debug, Default)]
pub struct Tracker {
    pods: HashMap<Box<str>, PodTimes>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of pods tracked.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// True if no pod is tracked.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Applies one event for pod `key` received at `now_ms`, following CL2's order: schedule,
    /// then run (= watch), then create (so a pod first seen running has all three equal).
    pub fn observe(&mut self, key: &str, o: &PodObservation, now_ms: i64) {
        let t = match self.pods.get_mut(key) {
            Some(t) => t,
            None => self.pods.entry(Box::from(key)).or_default(),
        };
        if o.scheduled && t.schedule == UNSET {
            t.schedule = now_ms;
        }
        if o.running && t.run == UNSET {
            t.run = now_ms;
        }
        if t.create == UNSET {
            t.create = now_ms;
            t.stateful = o.stateful;
        }
        if t.server_create == UNSET {
            t.server_create = o.server_create;
        }
        if t.server_schedule == UNSET {
            t.server_schedule = o.server_schedule;
        }
        if t.server_run == UNSET && o.running {
            t.server_run = o.server_run;
        }
    }

    /// Per-pod times, for raw dumps.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PodTimes)> {
        self.pods.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

/// Which pods a group covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Group {
    All,
    Stateless,
    Stateful,
}

impl Group {
    fn matches(self, t: &PodTimes) -> bool {
        match self {
            Group::All => true,
            Group::Stateless => !t.stateful,
            Group::Stateful => t.stateful,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Group::All => "",
            Group::Stateless => "Stateless",
            Group::Stateful => "Stateful",
        }
    }
}

/// Percentiles (ms) per transition for one group; `server` selects server timestamps.
pub fn transition_percentiles(
    tracker: &Tracker,
    group: Group,
    server: bool,
) -> Vec<(&'static str, LatencyPercentiles)> {
    TRANSITIONS
        .iter()
        .map(|(name, from, to)| {
            let mut v: Vec<f64> = tracker
                .pods
                .values()
                .filter(|t| group.matches(t))
                .filter_map(|t| {
                    let (a, b) = if server {
                        (t.server(*from), t.server(*to))
                    } else {
                        (t.watch(*from), t.watch(*to))
                    };
                    (a != UNSET && b != UNSET).then(|| (b.saturating_sub(a)).max(0) as f64)
                })
                .collect();
            (*name, LatencyPercentiles::of(&mut v))
        })
        .collect()
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    field_selector: Option<String>,
    /// Default 5s.
    #[serde(default)]
    threshold: Option<GoDuration>,
    #[serde(default)]
    perc50_threshold: Option<GoDuration>,
    #[serde(default)]
    perc90_threshold: Option<GoDuration>,
    #[serde(default)]
    perc99_threshold: Option<GoDuration>,
    /// Accepted for CL2 compatibility; unused (as at CL2 HEAD).
    #[serde(default)]
    #[allow(dead_code)]
    map_events_by_order: Option<bool>,
    /// Accepted for CL2 compatibility; unused.
    #[serde(default)]
    #[allow(dead_code)]
    scheduler_name: Option<String>,
    /// Violations fail the run (default true, as CL2 where they are always fatal).
    #[serde(default)]
    enable_violations: Option<bool>,
    /// Also emit `PodStartupLatencyRaw_<id>` with per-pod timings.
    #[serde(default)]
    raw_timings: Option<bool>,
}

struct Thresholds {
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

impl Config {
    fn thresholds(&self) -> Thresholds {
        let base = self.threshold.map_or(Duration::from_secs(5), |d| d.0);
        Thresholds {
            p50: self.perc50_threshold.map_or(base, |d| d.0),
            p90: self.perc90_threshold.map_or(base, |d| d.0),
            p99: self.perc99_threshold.map_or(base, |d| d.0),
        }
    }
}

struct Running {
    tracker: Arc<Mutex<Tracker>>,
    watch: WatchTask,
    config: Config,
}

/// The PodStartupLatency measurement.
#[derive(Default)]
pub struct PodStartupLatency {
    running: Option<Running>,
}

fn fmt_dur(ms: f64) -> String {
    cl2_framework::report::format_value(ms, "ms")
}

/// Builds the summaries of a gather from a tracker (separate from I/O for unit tests).
fn summaries(identifier: &str, tracker: &Tracker, config: &Config) -> Vec<Summary> {
    let th = config.thresholds();
    let enforce = config.enable_violations.unwrap_or(true);
    let mut out = Vec::new();
    for group in [Group::All, Group::Stateless, Group::Stateful] {
        let per = transition_percentiles(tracker, group, false);
        let mut pd = PerfData::new("1.0");
        for (name, p) in &per {
            pd.data_items.push(DataItem {
                data: p.data(),
                unit: "ms".into(),
                labels: BTreeMap::from([("Metric".to_string(), (*name).to_string())]),
            });
        }
        let startup = per
            .iter()
            .find(|(n, _)| *n == "pod_startup")
            .map(|(_, p)| *p)
            .unwrap_or_default();
        let mut violations = Vec::new();
        for (label, got, limit) in [
            ("50th", startup.p50, th.p50),
            ("90th", startup.p90, th.p90),
            ("99th", startup.p99, th.p99),
        ] {
            let limit_ms = limit.as_secs_f64() * 1000.0;
            if startup.count > 0 && got > limit_ms {
                violations.push(format!(
                    "pod startup{}: too high latency {label} percentile: got {} expected: {}",
                    match group {
                        Group::All => "",
                        Group::Stateless => " (stateless)",
                        Group::Stateful => " (stateful)",
                    },
                    fmt_dur(got),
                    fmt_dur(limit_ms)
                ));
            }
        }
        let mut s = Summary::new(
            format!("{}PodStartupLatency_{identifier}", group.prefix()),
            pd.to_value(),
        );
        let verdict = if !violations.is_empty() {
            if enforce {
                Verdict::Fail
            } else {
                Verdict::Warn
            }
        } else if group == Group::All {
            Verdict::Pass
        } else {
            Verdict::None
        };
        s.verdict = verdict;
        s.violations = violations;
        if group == Group::All {
            s.key_numbers = vec![
                KeyNumber::new("p10", startup.p10, "ms"),
                KeyNumber::new("p50", startup.p50, "ms"),
                KeyNumber::new("p90", startup.p90, "ms"),
                KeyNumber::new("p99", startup.p99, "ms"),
                KeyNumber::new("pods", startup.count as f64, ""),
            ];
            s.slo = Some(format!(
                "pod_startup p50 <= {}, p90 <= {}, p99 <= {} (watch timestamps)",
                fmt_dur(th.p50.as_secs_f64() * 1000.0),
                fmt_dur(th.p90.as_secs_f64() * 1000.0),
                fmt_dur(th.p99.as_secs_f64() * 1000.0)
            ));
        }
        out.push(s);
    }
    // Server-timestamp view (informational).
    let mut pd = PerfData::new("1.0");
    pd.labels.insert("Timestamps".into(), "server".into());
    for (name, p) in transition_percentiles(tracker, Group::All, true) {
        pd.data_items.push(DataItem {
            data: p.data(),
            unit: "ms".into(),
            labels: BTreeMap::from([("Metric".to_string(), name.to_string())]),
        });
    }
    out.push(Summary::new(
        format!("PodStartupLatencyServerTimestamps_{identifier}"),
        pd.to_value(),
    ));
    if config.raw_timings.unwrap_or(false) {
        let opt = |v: i64| {
            if v == UNSET {
                serde_json::Value::Null
            } else {
                serde_json::Value::from(v)
            }
        };
        let mut pods: Vec<serde_json::Value> = tracker
            .iter()
            .map(|(k, t)| {
                serde_json::json!({
                    "pod": k, "stateful": t.stateful,
                    "createMs": opt(t.create), "scheduleMs": opt(t.schedule), "runMs": opt(t.run),
                    "serverCreateMs": opt(t.server_create), "serverScheduleMs": opt(t.server_schedule),
                    "serverRunMs": opt(t.server_run),
                })
            })
            .collect();
        pods.sort_by(|a, b| a["pod"].as_str().cmp(&b["pod"].as_str()));
        out.push(Summary::new(
            format!("PodStartupLatencyRaw_{identifier}"),
            serde_json::json!({"version": "v1", "unit": "ms since Unix epoch", "pods": pods}),
        ));
    }
    out
}

/// The summaries a `gather` with default params produces from `tracker` (for benchmarks and
/// tools replaying recorded pod events).
pub fn default_summaries(identifier: &str, tracker: &Tracker) -> Vec<Summary> {
    summaries(identifier, tracker, &Config::default())
}

#[async_trait::async_trait]
impl Measurement for PodStartupLatency {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, config): (String, Config) = decode(METHOD, id, params)?;
        match action.as_str() {
            "start" => {
                if self.running.is_some() {
                    return Err(MeasurementError::failed(METHOD, id, "already started"));
                }
                let selector = Selector::new(
                    config.namespace.as_deref(),
                    config.label_selector.as_deref(),
                    config.field_selector.as_deref(),
                );
                let tracker = Arc::new(Mutex::new(Tracker::new()));
                let t = tracker.clone();
                let api: kube::Api<Pod> = selector.api(&ctx.cluster.client);
                let mut key = common::KeyBuf::default();
                let watch = WatchTask::spawn(
                    api,
                    selector.watcher_config(),
                    move |pod: Pod, now| {
                        let obs = PodObservation::of(&pod);
                        t.lock().observe(key.of(&pod.metadata), &obs, now);
                    },
                    |_| {},
                    Duration::from_secs(60),
                )
                .await;
                self.running = Some(Running {
                    tracker,
                    watch,
                    config,
                });
                Ok(vec![])
            }
            "gather" => {
                let Some(run) = self.running.take() else {
                    return Err(common::not_started(METHOD, id));
                };
                run.watch.stop().await;
                // Thresholds given at gather override those given at start.
                let mut cfg = run.config.clone();
                merge(&mut cfg, &config);
                let tracker = run.tracker.lock();
                Ok(summaries(id, &tracker, &cfg))
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unknown action {other:?} (expected start or gather)"),
            )),
        }
    }

    async fn dispose(&mut self) {
        if let Some(run) = self.running.take() {
            run.watch.stop().await;
        }
    }
}

fn merge(base: &mut Config, over: &Config) {
    common::merge_set_fields!(
        base,
        over,
        threshold,
        perc50_threshold,
        perc90_threshold,
        perc99_threshold,
        enable_violations,
        raw_timings
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(scheduled: bool, running: bool, stateful: bool) -> PodObservation {
        PodObservation {
            scheduled,
            running,
            stateful,
            server_create: UNSET,
            server_schedule: UNSET,
            server_run: UNSET,
        }
    }

    /// Hand-computed: three stateless pods starting in 2000/3000/5000 ms and three stateful
    /// pods in 2000/6000/8000 ms (the startup values of CL2's pod_startup_latency_test).
    fn cl2_vector() -> Tracker {
        let mut t = Tracker::new();
        let starts = [
            ("default/stateless-1", false, 2000),
            ("default/stateless-2", false, 3000),
            ("default/stateless-3", false, 5000),
            ("default/stateful-1", true, 2000),
            ("default/stateful-2", true, 6000),
            ("default/stateful-3", true, 8000),
        ];
        for (k, stateful, d) in starts {
            t.observe(k, &obs(false, false, stateful), 0);
            t.observe(k, &obs(true, false, stateful), d / 2);
            t.observe(k, &obs(true, true, stateful), d);
        }
        t
    }

    fn get(per: &[(&str, LatencyPercentiles)], name: &str) -> LatencyPercentiles {
        per.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn cl2_stateless_and_stateful_vectors() {
        let t = cl2_vector();
        let sl = get(
            &transition_percentiles(&t, Group::Stateless, false),
            "pod_startup",
        );
        assert_eq!((sl.p50, sl.p90, sl.p99), (3000.0, 5000.0, 5000.0));
        let sf = get(
            &transition_percentiles(&t, Group::Stateful, false),
            "pod_startup",
        );
        assert_eq!((sf.p50, sf.p90, sf.p99), (6000.0, 8000.0, 8000.0));
        let all = transition_percentiles(&t, Group::All, false);
        assert_eq!(get(&all, "run_to_watch").p99, 0.0);
        assert_eq!(get(&all, "create_to_schedule").p50, 1500.0);
        assert_eq!(get(&all, "pod_startup").count, 6);
    }

    #[test]
    fn first_seen_running_has_equal_timestamps_and_order_is_kept() {
        let mut t = Tracker::new();
        t.observe("a/b", &obs(true, true, false), 500);
        t.observe("a/b", &obs(true, true, false), 900);
        let p = t.pods["a/b"];
        assert_eq!((p.create, p.schedule, p.run), (500, 500, 500));
        // A pod never running contributes to create_to_schedule only.
        t.observe("a/c", &obs(false, false, false), 100);
        t.observe("a/c", &obs(true, false, false), 400);
        let per = transition_percentiles(&t, Group::All, false);
        assert_eq!(get(&per, "create_to_schedule").count, 2);
        assert_eq!(get(&per, "pod_startup").count, 1);
    }

    #[test]
    fn server_timestamps_reported_separately() {
        let mut t = Tracker::new();
        let o = PodObservation {
            scheduled: true,
            running: true,
            stateful: false,
            server_create: 1000,
            server_schedule: 2000,
            server_run: 4000,
        };
        t.observe("a/b", &o, 4500);
        let per = transition_percentiles(&t, Group::All, true);
        assert_eq!(get(&per, "create_to_schedule").p50, 1000.0);
        assert_eq!(get(&per, "schedule_to_run").p50, 2000.0);
        assert_eq!(get(&per, "run_to_watch").p50, 500.0);
        assert_eq!(get(&per, "pod_startup").p50, 3500.0);
    }

    #[test]
    fn verdicts_follow_thresholds() {
        let t = cl2_vector();
        let cfg = Config::default();
        let s = summaries("id", &t, &cfg);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "PodStartupLatency_id",
                "StatelessPodStartupLatency_id",
                "StatefulPodStartupLatency_id",
                "PodStartupLatencyServerTimestamps_id"
            ]
        );
        // All pods: p99 8000 > 5000 -> fail; stateless p99 5000 -> ok; stateful fails.
        assert_eq!(s[0].verdict, Verdict::Fail);
        assert!(
            s[0].violations[0].contains("too high latency 90th percentile: got 8s expected: 5s"),
            "{:?}",
            s[0].violations
        );
        assert_eq!(s[1].verdict, Verdict::None);
        assert_eq!(s[2].verdict, Verdict::Fail);
        assert_eq!(s[0].key("p50"), Some(3000.0));
        let lenient = Config {
            threshold: Some(GoDuration(Duration::from_secs(10))),
            ..Config::default()
        };
        assert_eq!(summaries("id", &t, &lenient)[0].verdict, Verdict::Pass);
        let warn = Config {
            enable_violations: Some(false),
            ..Config::default()
        };
        assert_eq!(summaries("id", &t, &warn)[0].verdict, Verdict::Warn);
        let raw = Config {
            raw_timings: Some(true),
            ..Config::default()
        };
        let s = summaries("id", &t, &raw);
        assert_eq!(s[4].content["pods"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn params_accept_cl2_keys_and_reject_typos() {
        let p = crate::common::testutil::params(serde_json::json!({"action": "start",
            "labelSelector": "group = latency", "threshold": "20s", "perc99Threshold": "30s",
            "mapEventsByOrder": true, "schedulerName": "default-scheduler"}));
        let (_, c): (String, Config) = decode(METHOD, "x", &p).unwrap();
        assert_eq!(c.thresholds().p99, Duration::from_secs(30));
        assert_eq!(c.thresholds().p50, Duration::from_secs(20));
        let bad = crate::common::testutil::params(serde_json::json!({"treshold": "1s"}));
        let e = decode::<Config>(METHOD, "x", &bad).unwrap_err().to_string();
        assert!(e.contains("treshold"), "{e}");
    }

    #[tokio::test]
    async fn gather_without_start_errors() {
        let ctx = crate::common::testutil::offline_context();
        let mut m = PodStartupLatency::default();
        let e = m
            .execute(
                &ctx,
                &crate::common::testutil::params(serde_json::json!({"action": "gather"})),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("has not been started"));
    }
}
