//! Prometheus metrics of the simulated cluster, served on `/metrics` in text format 0.0.4.
//!
//! The API server records every request here (`apiserver_request_duration_seconds`,
//! `apiserver_request_sli_duration_seconds`, `apiserver_request_total`,
//! `apiserver_current_inflight_requests`), with the names, labels and bucket boundaries a real
//! kube-apiserver uses, so measurements such as APIResponsiveness work unchanged against the
//! simulator. The in-process scheduler records its metrics through the same [`SimMetrics`]
//! (`scheduler_schedule_attempts_total`, `scheduler_scheduling_attempt_duration_seconds`,
//! `scheduler_pod_scheduling_sli_duration_seconds`, ...).
//!
//! Recording is cheap: keys are small `Copy` structs of `&'static str`, values are fixed-size
//! bucket arrays; text is only formatted on scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Bucket boundaries of `apiserver_request_duration_seconds` (and the SLI histogram).
pub const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

const FINE_BUCKETS: usize = 200;

/// Upper bound (µs) of fine bucket `i`: 1.1^i.
fn fine_upper(i: usize) -> f64 {
    1.1f64.powi(i as i32)
}

fn fine_bucket(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= 1.0 {
        return 0;
    }
    ((us.ln() / 1.1f64.ln()).ceil() as usize).min(FINE_BUCKETS - 1)
}

/// A fixed-bucket cumulative histogram.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0u64;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cum}",
                fmt_f64(*b)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", fmt_f64(self.sum));
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

fn fmt_f64(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn exp_buckets(start: f64, factor: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| start * factor.powi(i as i32)).collect()
}

fn sched_attempt_buckets() -> &'static [f64] {
    static B: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    B.get_or_init(|| exp_buckets(0.001, 2.0, 15))
}

fn sched_sli_buckets() -> &'static [f64] {
    static B: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    B.get_or_init(|| exp_buckets(0.01, 2.0, 20))
}

fn sched_ext_buckets() -> &'static [f64] {
    static B: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    B.get_or_init(|| exp_buckets(0.0001, 2.0, 12))
}

/// The scope label of an API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A single named object.
    Resource,
    /// A collection within a namespace.
    Namespace,
    /// A cluster-wide collection.
    Cluster,
}

impl Scope {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Resource => "resource",
            Scope::Namespace => "namespace",
            Scope::Cluster => "cluster",
        }
    }
}

/// Labels of one API request series (without the response code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// GET, LIST, WATCH, POST, PUT, PATCH, DELETE, DELETECOLLECTION, APPLY, CONNECT.
    pub verb: &'static str,
    /// Whether `dryRun=All` was given.
    pub dry_run: bool,
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name ("" for non-resource requests).
    pub resource: &'static str,
    /// Subresource ("" for none).
    pub subresource: &'static str,
    /// Request scope.
    pub scope: Scope,
}

#[derive(Default)]
struct RequestSeries {
    hists: HashMap<RequestKey, (Histogram, Histogram)>,
    totals: HashMap<(RequestKey, u16), u64>,
}

#[derive(Default)]
struct SchedulerSeries {
    attempts: HashMap<(&'static str, &'static str), u64>,
    attempt_duration: HashMap<(&'static str, &'static str), Histogram>,
    sli: HashMap<u32, Histogram>,
    algorithm: Option<Histogram>,
    extension: HashMap<(&'static str, &'static str), Histogram>,
    pending: HashMap<&'static str, i64>,
}

/// The simulated cluster's metrics registry. Shared (`Arc`) between the API server and the
/// in-process scheduler/controllers.
pub struct SimMetrics {
    requests: Mutex<RequestSeries>,
    fine: Mutex<Vec<u64>>,
    scheduler: Mutex<SchedulerSeries>,
    inflight_readonly: AtomicI64,
    inflight_mutating: AtomicI64,
    storage_objects: Mutex<Vec<(String, i64)>>,
    sched_attempt_buckets: &'static [f64],
    sched_sli_buckets: &'static [f64],
    sched_ext_buckets: &'static [f64],
}

impl Default for SimMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SimMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMetrics").finish_non_exhaustive()
    }
}

/// Decrements an in-flight gauge when dropped.
#[derive(Debug)]
pub struct InflightGuard<'a> {
    gauge: &'a AtomicI64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SimMetrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            requests: Mutex::new(RequestSeries::default()),
            fine: Mutex::new(vec![0; FINE_BUCKETS]),
            scheduler: Mutex::new(SchedulerSeries::default()),
            inflight_readonly: AtomicI64::new(0),
            inflight_mutating: AtomicI64::new(0),
            storage_objects: Mutex::new(Vec::new()),
            sched_attempt_buckets: sched_attempt_buckets(),
            sched_sli_buckets: sched_sli_buckets(),
            sched_ext_buckets: sched_ext_buckets(),
        }
    }

    /// Records one finished API request: its handling time (real plus injected latency) and
    /// response code.
    pub fn record_request(&self, key: RequestKey, code: u16, duration: Duration) {
        let secs = duration.as_secs_f64();
        let mut r = self.requests.lock();
        let (h, sli) = r.hists.entry(key).or_insert_with(|| {
            (
                Histogram::new(REQUEST_BUCKETS),
                Histogram::new(REQUEST_BUCKETS),
            )
        });
        h.observe(secs);
        if key.verb != "WATCH" && key.verb != "CONNECT" {
            sli.observe(secs);
        }
        *r.totals.entry((key, code)).or_insert(0) += 1;
        drop(r);
        if key.verb != "WATCH" {
            let i = fine_bucket(duration);
            self.fine.lock()[i] += 1;
        }
    }

    /// Quantile (0..=1) of non-watch request handling times from a fine-grained internal
    /// histogram (~10% resolution from 1 µs to minutes); for benchmarks and reports.
    pub fn handling_quantile(&self, q: f64) -> Option<Duration> {
        let fine = self.fine.lock();
        let total: u64 = fine.iter().sum();
        if total == 0 {
            return None;
        }
        let target = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut cum = 0;
        for (i, c) in fine.iter().enumerate() {
            cum += c;
            if cum >= target {
                return Some(Duration::from_secs_f64(fine_upper(i) / 1e6));
            }
        }
        None
    }

    /// Counts an in-flight request until the guard is dropped. Returns the guard and the number
    /// of in-flight requests of that kind including this one.
    pub fn inflight(&self, mutating: bool) -> (InflightGuard<'_>, i64) {
        let gauge = if mutating {
            &self.inflight_mutating
        } else {
            &self.inflight_readonly
        };
        let n = gauge.fetch_add(1, Ordering::Relaxed) + 1;
        (InflightGuard { gauge }, n)
    }

    /// Replaces the `apiserver_storage_objects` gauge values (resource, count).
    pub fn set_storage_objects(&self, counts: Vec<(String, i64)>) {
        *self.storage_objects.lock() = counts;
    }

    /// Records one scheduling attempt: `result` is `scheduled`, `unschedulable` or `error`.
    /// Feeds `scheduler_schedule_attempts_total{result,profile}` and
    /// `scheduler_scheduling_attempt_duration_seconds{result,profile}`.
    pub fn record_schedule_attempt(
        &self,
        result: &'static str,
        profile: &'static str,
        duration: Duration,
    ) {
        let mut s = self.scheduler.lock();
        let key = (result, profile);
        *s.attempts.entry(key).or_insert(0) += 1;
        let b = self.sched_attempt_buckets;
        s.attempt_duration
            .entry(key)
            .or_insert_with(|| Histogram::new(b))
            .observe(duration.as_secs_f64());
    }

    /// Records the end-to-end scheduling latency of a pod (from first seen to bound) into
    /// `scheduler_pod_scheduling_sli_duration_seconds{attempts}`.
    pub fn record_pod_scheduling_sli(&self, duration: Duration, attempts: u32) {
        let b = self.sched_sli_buckets;
        let bucket = attempts.clamp(1, 16);
        self.scheduler
            .lock()
            .sli
            .entry(bucket)
            .or_insert_with(|| Histogram::new(b))
            .observe(duration.as_secs_f64());
    }

    /// Records `scheduler_scheduling_algorithm_duration_seconds`.
    pub fn record_scheduling_algorithm(&self, duration: Duration) {
        let b = self.sched_attempt_buckets;
        self.scheduler
            .lock()
            .algorithm
            .get_or_insert_with(|| Histogram::new(b))
            .observe(duration.as_secs_f64());
    }

    /// Records `scheduler_framework_extension_point_duration_seconds{extension_point,status}`.
    pub fn record_extension_point(
        &self,
        extension_point: &'static str,
        status: &'static str,
        duration: Duration,
    ) {
        let b = self.sched_ext_buckets;
        self.scheduler
            .lock()
            .extension
            .entry((extension_point, status))
            .or_insert_with(|| Histogram::new(b))
            .observe(duration.as_secs_f64());
    }

    /// Sets `scheduler_pending_pods{queue}` (queue: active, backoff, unschedulable, gated).
    pub fn set_pending_pods(&self, queue: &'static str, n: i64) {
        self.scheduler.lock().pending.insert(queue, n);
    }

    /// Total count of recorded requests matching `verb` and `resource` (for tests and benches).
    pub fn request_count(&self, verb: &str, resource: &str) -> u64 {
        let r = self.requests.lock();
        r.totals
            .iter()
            .filter(|((k, _), _)| k.verb == verb && k.resource == resource)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Quantile (0..=1) of recorded request durations (all non-watch series), estimated from
    /// the histogram buckets by linear interpolation, in seconds.
    pub fn request_quantile(&self, q: f64) -> Option<f64> {
        let r = self.requests.lock();
        let mut merged = Histogram::new(REQUEST_BUCKETS);
        for (_, (_, sli)) in r.hists.iter() {
            for (m, c) in merged.counts.iter_mut().zip(&sli.counts) {
                *m += c;
            }
            merged.count += sli.count;
        }
        if merged.count == 0 {
            return None;
        }
        let target = q * merged.count as f64;
        let mut cum = 0.0;
        let mut lower = 0.0;
        for (b, c) in REQUEST_BUCKETS.iter().zip(&merged.counts) {
            let next = cum + *c as f64;
            if next >= target && *c > 0 {
                let frac = (target - cum) / *c as f64;
                return Some(lower + (b - lower) * frac);
            }
            cum = next;
            lower = *b;
        }
        Some(lower)
    }

    /// Renders every metric in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        {
            let r = self.requests.lock();
            let mut keys: Vec<(String, &RequestKey)> =
                r.hists.keys().map(|k| (label_string(k), k)).collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            out.push_str("# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
            out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
            for (labels, k) in &keys {
                if let Some((h, _)) = r.hists.get(*k) {
                    h.render(&mut out, "apiserver_request_duration_seconds", labels);
                }
            }
            out.push_str("# HELP apiserver_request_sli_duration_seconds [ALPHA] Response latency distribution (not counting webhook duration and priority & fairness queue wait times) in seconds for each verb, group, version, resource, subresource, scope and component.\n");
            out.push_str("# TYPE apiserver_request_sli_duration_seconds histogram\n");
            for (labels, k) in &keys {
                if let Some((_, sli)) = r.hists.get(*k)
                    && sli.count > 0
                {
                    sli.render(&mut out, "apiserver_request_sli_duration_seconds", labels);
                }
            }
            out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
            out.push_str("# TYPE apiserver_request_total counter\n");
            let mut totals: Vec<(String, u64)> = r
                .totals
                .iter()
                .map(|((k, code), n)| (format!("{},code=\"{code}\"", label_string(k)), *n))
                .collect();
            totals.sort();
            for (l, n) in totals {
                let _ = writeln!(out, "apiserver_request_total{{{l}}} {n}");
            }
        }
        out.push_str("# HELP apiserver_current_inflight_requests [STABLE] Maximal number of currently used inflight request limit of this apiserver per request kind in last second.\n");
        out.push_str("# TYPE apiserver_current_inflight_requests gauge\n");
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"mutating\"}} {}",
            self.inflight_mutating.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{{request_kind=\"readOnly\"}} {}",
            self.inflight_readonly.load(Ordering::Relaxed).max(0)
        );
        {
            let objs = self.storage_objects.lock();
            out.push_str("# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind.\n");
            out.push_str("# TYPE apiserver_storage_objects gauge\n");
            for (res, n) in objs.iter() {
                let _ = writeln!(out, "apiserver_storage_objects{{resource=\"{res}\"}} {n}");
            }
            out.push_str("# HELP etcd_object_counts [ALPHA] Number of stored objects at the time of last check split by kind.\n");
            out.push_str("# TYPE etcd_object_counts gauge\n");
            for (res, n) in objs.iter() {
                let _ = writeln!(out, "etcd_object_counts{{resource=\"{res}\"}} {n}");
            }
        }
        self.render_scheduler(&mut out);
        out
    }

    fn render_scheduler(&self, out: &mut String) {
        let s = self.scheduler.lock();
        out.push_str("# HELP scheduler_schedule_attempts_total [STABLE] Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.\n");
        out.push_str("# TYPE scheduler_schedule_attempts_total counter\n");
        let mut attempts: Vec<_> = s.attempts.iter().collect();
        attempts.sort();
        for ((result, profile), n) in attempts {
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{profile=\"{profile}\",result=\"{result}\"}} {n}"
            );
        }
        out.push_str("# HELP scheduler_scheduling_attempt_duration_seconds [STABLE] Scheduling attempt latency in seconds (scheduling algorithm + binding)\n");
        out.push_str("# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n");
        let mut ad: Vec<_> = s.attempt_duration.iter().collect();
        ad.sort_by(|a, b| a.0.cmp(b.0));
        for ((result, profile), h) in ad {
            let labels = format!("profile=\"{profile}\",result=\"{result}\"");
            h.render(
                out,
                "scheduler_scheduling_attempt_duration_seconds",
                &labels,
            );
        }
        out.push_str("# HELP scheduler_pod_scheduling_sli_duration_seconds [BETA] E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.\n");
        out.push_str("# TYPE scheduler_pod_scheduling_sli_duration_seconds histogram\n");
        let mut sli: Vec<_> = s.sli.iter().collect();
        sli.sort_by_key(|(k, _)| **k);
        for (attempts, h) in sli {
            let labels = format!("attempts=\"{attempts}\"");
            h.render(
                out,
                "scheduler_pod_scheduling_sli_duration_seconds",
                &labels,
            );
        }
        out.push_str("# HELP scheduler_scheduling_algorithm_duration_seconds [ALPHA] Scheduling algorithm latency in seconds\n");
        out.push_str("# TYPE scheduler_scheduling_algorithm_duration_seconds histogram\n");
        if let Some(h) = &s.algorithm {
            h.render(out, "scheduler_scheduling_algorithm_duration_seconds", "");
        }
        out.push_str("# HELP scheduler_framework_extension_point_duration_seconds [STABLE] Latency for running all plugins of a specific extension point.\n");
        out.push_str("# TYPE scheduler_framework_extension_point_duration_seconds histogram\n");
        let mut ext: Vec<_> = s.extension.iter().collect();
        ext.sort_by(|a, b| a.0.cmp(b.0));
        for ((ep, status), h) in ext {
            let labels = format!(
                "extension_point=\"{ep}\",profile=\"default-scheduler\",status=\"{status}\""
            );
            h.render(
                out,
                "scheduler_framework_extension_point_duration_seconds",
                &labels,
            );
        }
        out.push_str(
            "# HELP scheduler_pending_pods [STABLE] Number of pending pods, by the queue type.\n",
        );
        out.push_str("# TYPE scheduler_pending_pods gauge\n");
        let mut pending: Vec<_> = s.pending.iter().collect();
        pending.sort();
        for (q, n) in pending {
            let _ = writeln!(out, "scheduler_pending_pods{{queue=\"{q}\"}} {n}");
        }
    }
}

fn label_string(k: &RequestKey) -> String {
    format!(
        "component=\"apiserver\",dry_run=\"{}\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
        if k.dry_run { "All" } else { "" },
        k.group,
        k.resource,
        k.scope.as_str(),
        k.subresource,
        k.verb,
        k.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_request_histogram_with_real_labels() {
        let m = SimMetrics::new();
        let key = RequestKey {
            verb: "POST",
            dry_run: false,
            group: "",
            version: "v1",
            resource: "pods",
            subresource: "",
            scope: Scope::Namespace,
        };
        m.record_request(key, 201, Duration::from_millis(30));
        m.record_schedule_attempt("scheduled", "default-scheduler", Duration::from_millis(2));
        let text = m.render();
        assert!(text.contains("apiserver_request_duration_seconds_bucket{component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"POST\",version=\"v1\",le=\"0.05\"} 1"));
        assert!(text.contains("le=\"0.025\"} 0"));
        assert!(text.contains("code=\"201\"} 1"));
        assert!(text.contains("scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1"));
        assert_eq!(m.request_count("POST", "pods"), 1);
        let fine = m.handling_quantile(0.5).unwrap_or_default();
        assert!(
            fine >= Duration::from_millis(29) && fine <= Duration::from_millis(34),
            "{fine:?}"
        );
        let q = m.request_quantile(0.5).unwrap_or(0.0);
        assert!(q > 0.025 && q <= 0.05, "{q}");
    }
}
