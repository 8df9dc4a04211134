//! APIResponsiveness (alias APIResponsivenessPrometheus): API call latency SLOs without a
//! Prometheus stack.
//!
//! `start` scrapes the apiserver's `/metrics` through the API and keeps the request-duration
//! histogram (`apiserver_request_sli_duration_seconds`, or `apiserver_request_duration_seconds`
//! when the SLI histogram is absent); `gather` scrapes again and diffs. Per (verb, resource,
//! subresource, scope) it computes p50/p90/p99 with Prometheus' bucket interpolation, counts
//! calls and slow calls (non-LIST > 1 s, namespace LIST > 5 s, cluster LIST > 30 s) and checks
//! the SLO: threshold `singleResourceThreshold` (1 s) for resource scope, 30 s otherwise, or a
//! `customThresholds` entry; with `allowedSlowCalls > 0` a call passes while its slow count is
//! within the allowance. WATCH and log/exec/portforward/attach/proxy calls are excluded.
//! Violations only fail the run with `enableViolations: true` (CL2's default is false: the
//! verdict is then `warn`). The window covers the whole start→gather interval (CL2's "simple"
//! query); a Prometheus URL is not queried.
//!
//! Also emits `ClientAPILatency_<identifier>`: the latency cl2's own client saw per verb and
//! resource since the run began.

use crate::common::{self, yaml_or_value};
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, decode};
use cl2_framework::measurement::stats::{Bucket, DataItem, PerfData, count_le, histogram_quantile};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
    Verdict,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "APIResponsiveness",
    summary: "API call latency p50/p90/p99 per verb/resource from apiserver /metrics; SLO 1s/30s",
    new: || Box::new(ApiResponsiveness::new("APIResponsiveness")),
};

pub(crate) const DESCRIPTOR_PROMETHEUS: MeasurementDescriptor = MeasurementDescriptor {
    name: "APIResponsivenessPrometheus",
    summary: "alias of APIResponsiveness (CL2 name); scrapes /metrics, no Prometheus needed",
    new: || Box::new(ApiResponsiveness::new("APIResponsivenessPrometheus")),
};

const SLI_METRIC: &str = "apiserver_request_sli_duration_seconds";
const FALLBACK_METRIC: &str = "apiserver_request_duration_seconds";
const EXCLUDED_SUBRESOURCES: [&str; 5] = ["log", "exec", "portforward", "attach", "proxy"];

/// (verb, resource, subresource, scope).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallKey {
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub scope: String,
}

/// Cumulative bucket counts by `le`, keyed by call.
type Histograms = HashMap<CallKey, BTreeMap<u64, (f64, f64)>>;

fn le_key(le: f64) -> u64 {
    le.to_bits()
}

/// Parses the request-duration histograms out of a `/metrics` text; returns the metric used.
pub(crate) fn parse_metrics(text: &str) -> Result<(String, Histograms), String> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .map_err(|e| format!("cannot parse /metrics: {e}"))?;
    let has = |name: &str| {
        let bucket = format!("{name}_bucket");
        scrape
            .samples
            .iter()
            .any(|s| s.metric == name || s.metric == bucket)
    };
    let metric = if has(SLI_METRIC) {
        SLI_METRIC
    } else if has(FALLBACK_METRIC) {
        FALLBACK_METRIC
    } else {
        return Err(format!(
            "/metrics has neither {SLI_METRIC} nor {FALLBACK_METRIC}"
        ));
    };
    let bucket_name = format!("{metric}_bucket");
    let mut out: Histograms = HashMap::new();
    for s in &scrape.samples {
        // Only samples of the chosen histogram, decided before building the call key (most of
        // /metrics is other metrics): a typed histogram's buckets, or one untyped bucket line.
        let (line, hist): (Option<(f64, f64)>, &[prometheus_parse::HistogramCount]) = match &s.value
        {
            prometheus_parse::Value::Histogram(hs) if s.metric == metric => (None, hs),
            prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v)
                if s.metric == bucket_name =>
            {
                let le = match s.labels.get("le").unwrap_or("") {
                    "+Inf" => f64::INFINITY,
                    other => match other.parse::<f64>() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                };
                (Some((le, *v)), &[])
            }
            _ => continue,
        };
        if line.is_none() && hist.is_empty() {
            continue;
        }
        let get = |k: &str| s.labels.get(k).unwrap_or("").to_string();
        let key = CallKey {
            verb: get("verb").to_uppercase(),
            resource: get("resource"),
            subresource: get("subresource"),
            scope: get("scope"),
        };
        if key.verb == "WATCH"
            || key.verb == "WATCHLIST"
            || key.resource.is_empty()
            || EXCLUDED_SUBRESOURCES.contains(&key.subresource.as_str())
        {
            continue;
        }
        let buckets = out.entry(key).or_default();
        for (le, count) in line
            .into_iter()
            .chain(hist.iter().map(|h| (h.less_than, h.count)))
        {
            buckets.entry(le_key(le)).or_insert((le, 0.0)).1 += count;
        }
    }
    Ok((metric.to_string(), out))
}

/// `end - start` per bucket (a counter reset keeps `end`).
pub(crate) fn diff(start: &Histograms, end: &Histograms) -> HashMap<CallKey, Vec<Bucket>> {
    let mut out = HashMap::new();
    for (key, buckets) in end {
        let base = start.get(key);
        let total_end = buckets.values().map(|b| b.1).fold(0.0, f64::max);
        let total_start = base.map_or(0.0, |b| b.values().map(|b| b.1).fold(0.0, f64::max));
        let reset = total_end < total_start;
        let v: Vec<Bucket> = buckets
            .values()
            .map(|(le, c)| {
                let before = if reset {
                    0.0
                } else {
                    base.and_then(|b| b.get(&le_key(*le))).map_or(0.0, |b| b.1)
                };
                Bucket {
                    le: *le,
                    count: (c - before).max(0.0),
                }
            })
            .collect();
        if v.iter().any(|b| b.count > 0.0) {
            out.insert(key.clone(), v);
        }
    }
    out
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CustomThreshold {
    #[serde(default)]
    verb: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    scope: String,
    threshold: GoDuration,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// Default false (CL2): violations are reported as `warn` only.
    #[serde(default)]
    enable_violations: Option<bool>,
    /// Accepted; the whole window is always used (CL2's simple query).
    #[serde(default)]
    #[allow(dead_code)]
    use_simple_latency_query: Option<bool>,
    /// Default `APIResponsivenessPrometheus`.
    #[serde(default)]
    summary_name: Option<String>,
    #[serde(default)]
    allowed_slow_calls: Option<u64>,
    /// YAML string or list of `{verb, resource, subresource, scope, threshold}`.
    #[serde(default)]
    custom_thresholds: Option<serde_json::Value>,
    /// Default 1s.
    #[serde(default)]
    single_resource_threshold: Option<GoDuration>,
    /// Accepted for CL2 compatibility; ignored (cl2 scrapes /metrics directly).
    #[serde(default)]
    #[allow(dead_code)]
    prometheus_client: Option<String>,
    /// Accepted; a configured Prometheus is not queried yet.
    #[serde(default)]
    #[allow(dead_code)]
    prometheus_url: Option<String>,
}

/// One call's numbers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallStats {
    pub key: CallKey,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub count: u64,
    pub slow: u64,
}

fn ms(v: f64) -> f64 {
    if v.is_finite() { v * 1000.0 } else { 0.0 }
}

/// Latency and counts per call.
pub(crate) fn call_stats(diffed: &HashMap<CallKey, Vec<Bucket>>) -> Vec<CallStats> {
    let mut out: Vec<CallStats> = diffed
        .iter()
        .map(|(key, b)| {
            let count = b.iter().map(|b| b.count).fold(0.0, f64::max);
            let bound = if key.verb == "LIST" {
                if key.scope == "cluster" { 30.0 } else { 5.0 }
            } else {
                1.0
            };
            let fast = count_le(b, bound);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            CallStats {
                key: key.clone(),
                p50_ms: ms(histogram_quantile(0.5, b)),
                p90_ms: ms(histogram_quantile(0.9, b)),
                p99_ms: ms(histogram_quantile(0.99, b)),
                count: count.round() as u64,
                slow: (count - fast).max(0.0).round() as u64,
            }
        })
        .filter(|c| c.count > 0)
        .collect();
    out.sort_by(|a, b| {
        b.p99_ms
            .total_cmp(&a.p99_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// Aggregated percentiles of all single-object (resource scope, non-LIST) calls.
fn single_object(diffed: &HashMap<CallKey, Vec<Bucket>>) -> Option<(f64, f64, f64, f64)> {
    let mut agg: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (k, b) in diffed {
        if k.scope != "resource" || k.verb == "LIST" {
            continue;
        }
        for x in b {
            agg.entry(le_key(x.le)).or_insert((x.le, 0.0)).1 += x.count;
        }
    }
    if agg.is_empty() {
        return None;
    }
    let v: Vec<Bucket> = agg
        .values()
        .map(|(le, c)| Bucket { le: *le, count: *c })
        .collect();
    Some((
        ms(histogram_quantile(0.1, &v)),
        ms(histogram_quantile(0.5, &v)),
        ms(histogram_quantile(0.9, &v)),
        ms(histogram_quantile(0.99, &v)),
    ))
}

fn threshold_for(key: &CallKey, custom: &[CustomThreshold], single: Duration) -> Duration {
    if let Some(c) = custom.iter().find(|c| {
        c.verb.eq_ignore_ascii_case(&key.verb)
            && c.resource == key.resource
            && c.subresource == key.subresource
            && c.scope == key.scope
    }) {
        return c.threshold.0;
    }
    if key.scope == "resource" {
        single
    } else {
        Duration::from_secs(30)
    }
}

fn describe(k: &CallKey) -> String {
    let sub = if k.subresource.is_empty() {
        String::new()
    } else {
        format!("/{}", k.subresource)
    };
    format!("{} {}{} (scope {})", k.verb, k.resource, sub, k.scope)
}

/// The ApiResponsiveness measurement.
pub(crate) struct ApiResponsiveness {
    method: &'static str,
    start: Option<(String, Histograms)>,
    config: Config,
}

impl ApiResponsiveness {
    fn new(method: &'static str) -> Self {
        Self {
            method,
            start: None,
            config: Config::default(),
        }
    }

    fn evaluate(
        &self,
        id: &str,
        metric: &str,
        diffed: &HashMap<CallKey, Vec<Bucket>>,
        cfg: &Config,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let custom: Vec<CustomThreshold> = match &cfg.custom_thresholds {
            None => Vec::new(),
            Some(v) => yaml_or_value::<Option<Vec<CustomThreshold>>>(v)
                .map_err(|e| {
                    MeasurementError::invalid(self.method, id, format!("customThresholds: {e}"))
                })?
                .unwrap_or_default(),
        };
        if let Some(bad) = custom.iter().find(|c| c.threshold.0.is_zero()) {
            return Err(MeasurementError::invalid(
                self.method,
                id,
                format!(
                    "customThresholds: threshold for {} {} must be > 0",
                    bad.verb, bad.resource
                ),
            ));
        }
        let single = cfg
            .single_resource_threshold
            .map_or(Duration::from_secs(1), |d| d.0);
        let allowed = cfg.allowed_slow_calls.unwrap_or(0);
        let stats = call_stats(diffed);
        let mut pd = PerfData::new("v1");
        pd.labels.insert("Metric".into(), metric.into());
        let mut violations = Vec::new();
        for c in &stats {
            let th = threshold_for(&c.key, &custom, single);
            let th_ms = th.as_secs_f64() * 1000.0;
            let within_allowance = allowed > 0 && c.slow <= allowed;
            if !within_allowance && (c.p50_ms > th_ms || c.p90_ms > th_ms || c.p99_ms > th_ms) {
                violations.push(format!(
                    "{}: perc50 {:.1}ms, perc90 {:.1}ms, perc99 {:.1}ms above threshold {}ms ({} calls, {} slow)",
                    describe(&c.key), c.p50_ms, c.p90_ms, c.p99_ms, th_ms, c.count, c.slow
                ));
            }
            pd.data_items.push(DataItem {
                data: BTreeMap::from([
                    ("Perc50".to_string(), c.p50_ms),
                    ("Perc90".to_string(), c.p90_ms),
                    ("Perc99".to_string(), c.p99_ms),
                ]),
                unit: "ms".into(),
                labels: BTreeMap::from([
                    ("Verb".to_string(), c.key.verb.clone()),
                    ("Resource".to_string(), c.key.resource.clone()),
                    ("Subresource".to_string(), c.key.subresource.clone()),
                    ("Scope".to_string(), c.key.scope.clone()),
                    ("Count".to_string(), c.count.to_string()),
                    ("SlowCount".to_string(), c.slow.to_string()),
                ]),
            });
        }
        let name = cfg
            .summary_name
            .clone()
            .unwrap_or_else(|| "APIResponsivenessPrometheus".into());
        let mut s = Summary::new(name, pd.to_value());
        if !violations.is_empty() {
            violations.insert(
                0,
                "top latency metric: there should be no high-latency requests".into(),
            );
        }
        s.verdict = match (
            violations.is_empty(),
            cfg.enable_violations.unwrap_or(false),
        ) {
            (true, _) => Verdict::Pass,
            (false, true) => Verdict::Fail,
            (false, false) => Verdict::Warn,
        };
        s.violations = violations;
        if let Some((p10, p50, p90, p99)) = single_object(diffed) {
            s.key_numbers
                .push(KeyNumber::new("singleObjectP10", p10, "ms"));
            s.key_numbers
                .push(KeyNumber::new("singleObjectP50", p50, "ms"));
            s.key_numbers
                .push(KeyNumber::new("singleObjectP90", p90, "ms"));
            s.key_numbers
                .push(KeyNumber::new("singleObjectP99", p99, "ms"));
        }
        if let Some(w) = stats.first() {
            s.key_numbers
                .push(KeyNumber::new("worstP99", w.p99_ms, "ms"));
        }
        s.key_numbers.push(KeyNumber::new(
            "calls",
            stats.iter().map(|c| c.count).sum::<u64>() as f64,
            "",
        ));
        s.key_numbers.push(KeyNumber::new(
            "slowCalls",
            stats.iter().map(|c| c.slow).sum::<u64>() as f64,
            "",
        ));
        s.slo = Some(format!(
            "p50/p90/p99 <= {}s (resource scope), 30s (namespace/cluster){}{}",
            single.as_secs_f64(),
            if allowed > 0 {
                format!(", {allowed} slow calls allowed")
            } else {
                String::new()
            },
            if cfg.enable_violations.unwrap_or(false) {
                ""
            } else {
                " [not enforced]"
            }
        ));
        Ok(vec![s])
    }
}

fn client_summary(id: &str, ctx: &MeasurementContext) -> Summary {
    let mut pd = PerfData::new("v1");
    for e in ctx.cluster.latency.snapshot() {
        pd.data_items.push(DataItem {
            data: BTreeMap::from([
                ("Perc50".to_string(), e.p50_ms),
                ("Perc90".to_string(), e.p90_ms),
                ("Perc99".to_string(), e.p99_ms),
                ("Max".to_string(), e.max_ms),
            ]),
            unit: "ms".into(),
            labels: BTreeMap::from([
                ("Verb".to_string(), e.verb),
                ("Resource".to_string(), e.resource),
                ("Count".to_string(), e.count.to_string()),
                ("Errors".to_string(), e.errors.to_string()),
            ]),
        });
    }
    Summary::new(format!("ClientAPILatency_{id}"), pd.to_value())
}

fn merge(base: &mut Config, over: &Config) {
    common::merge_set_fields!(
        base,
        over,
        enable_violations,
        summary_name,
        allowed_slow_calls,
        custom_thresholds,
        single_resource_threshold
    );
}

#[async_trait::async_trait]
impl Measurement for ApiResponsiveness {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, config): (String, Config) = decode(self.method, id, params)?;
        let scrape = || async {
            let text = ctx.scrape_apiserver_metrics().await.map_err(|e| {
                MeasurementError::failed(self.method, id, format!("scraping /metrics: {e}"))
            })?;
            parse_metrics(&text).map_err(|e| MeasurementError::failed(self.method, id, e))
        };
        match action.as_str() {
            "start" => {
                self.start = Some(scrape().await?);
                self.config = config;
                Ok(vec![])
            }
            "gather" => {
                let Some((metric, start)) = self.start.take() else {
                    return Err(common::not_started(self.method, id));
                };
                let (_, end) = scrape().await?;
                let mut cfg = self.config.clone();
                merge(&mut cfg, &config);
                let diffed = diff(&start, &end);
                let mut out = self.evaluate(id, &metric, &diffed, &cfg)?;
                out.push(client_summary(id, ctx));
                Ok(out)
            }
            other => Err(MeasurementError::invalid(
                self.method,
                id,
                format!("unknown action {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(post_counts: [u64; 4], list_cluster: [u64; 4]) -> String {
        // Buckets 0.5, 1, 5, 30 (+Inf).
        let mut s = String::from("# TYPE apiserver_request_sli_duration_seconds histogram\n");
        let les = ["0.5", "1", "5", "30", "+Inf"];
        let row = |s: &mut String, labels: &str, counts: [u64; 4]| {
            for (i, le) in les.iter().enumerate() {
                let c = counts[i.min(3)];
                s.push_str(&format!(
                    "apiserver_request_sli_duration_seconds_bucket{{{labels},le=\"{le}\"}} {c}\n"
                ));
            }
            s.push_str(&format!(
                "apiserver_request_sli_duration_seconds_sum{{{labels}}} 1\n"
            ));
            s.push_str(&format!(
                "apiserver_request_sli_duration_seconds_count{{{labels}}} {}\n",
                counts[3]
            ));
        };
        row(
            &mut s,
            "component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"",
            post_counts,
        );
        row(
            &mut s,
            "component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"",
            list_cluster,
        );
        row(
            &mut s,
            "component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"WATCH\",version=\"v1\"",
            [1, 1, 1, 9],
        );
        row(
            &mut s,
            "component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"exec\",verb=\"CONNECT\",version=\"v1\"",
            [0, 0, 0, 9],
        );
        s
    }

    #[test]
    fn parses_diffs_and_excludes_watch_and_exec() {
        let (metric, a) = parse_metrics(&metrics([10, 10, 10, 10], [0, 0, 0, 0])).unwrap();
        assert_eq!(metric, SLI_METRIC);
        let (_, b) = parse_metrics(&metrics([100, 190, 200, 200], [0, 0, 2, 2])).unwrap();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2, "WATCH and exec are excluded: {:?}", d.keys());
        let stats = call_stats(&d);
        let post = stats.iter().find(|c| c.key.verb == "POST").unwrap();
        assert_eq!(post.count, 190);
        assert_eq!(post.slow, 10, "10 calls above 1s");
        // p50: rank 95 of 190; bucket 0.5 holds 90 -> (0.5,1]: 0.5 + 0.5*(5/90) s.
        assert!(
            (post.p50_ms - (500.0 + 500.0 * 5.0 / 90.0)).abs() < 1e-6,
            "{}",
            post.p50_ms
        );
        let list = stats.iter().find(|c| c.key.verb == "LIST").unwrap();
        assert_eq!(
            (list.count, list.slow),
            (2, 0),
            "cluster LIST is slow only above 30s"
        );
    }

    #[test]
    fn fallback_metric_and_untyped_buckets() {
        let text = "apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"nodes\",scope=\"resource\",subresource=\"\",le=\"1\"} 4\n\
                    apiserver_request_duration_seconds_bucket{verb=\"GET\",resource=\"nodes\",scope=\"resource\",subresource=\"\",le=\"+Inf\"} 4\n";
        let (metric, h) = parse_metrics(text).unwrap();
        assert_eq!(metric, FALLBACK_METRIC);
        let d = diff(&HashMap::new(), &h);
        let s = call_stats(&d);
        assert_eq!(s[0].count, 4);
        assert!(parse_metrics("foo 1\n").is_err());
    }

    fn eval(cfg: Config, post: [u64; 4]) -> Summary {
        let (_, a) = parse_metrics(&metrics([0, 0, 0, 0], [0, 0, 0, 0])).unwrap();
        let (_, b) = parse_metrics(&metrics(post, [0, 0, 0, 0])).unwrap();
        let m = ApiResponsiveness::new("APIResponsiveness");
        m.evaluate("id", SLI_METRIC, &diff(&a, &b), &cfg)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn slo_verdicts_follow_cl2_rules() {
        // All fast: pass.
        let s = eval(Config::default(), [100, 100, 100, 100]);
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!(s.content["dataItems"][0]["labels"]["Count"], "100");
        // p99 in (1,5]: violation; not enforced by default -> warn.
        let slow = [50, 90, 100, 100];
        assert_eq!(eval(Config::default(), slow).verdict, Verdict::Warn);
        let enforced = Config {
            enable_violations: Some(true),
            ..Config::default()
        };
        let s = eval(enforced.clone(), slow);
        assert_eq!(s.verdict, Verdict::Fail);
        assert!(
            s.violations
                .iter()
                .any(|v| v.contains("POST pods (scope resource)")),
            "{:?}",
            s.violations
        );
        // Within the allowed slow calls -> pass.
        let allowed = Config {
            allowed_slow_calls: Some(10),
            ..enforced.clone()
        };
        assert_eq!(eval(allowed, slow).verdict, Verdict::Pass);
        // Custom threshold of 10s for POST pods -> pass.
        let custom = Config {
            custom_thresholds: Some(serde_json::json!(
                "- verb: POST\n  resource: pods\n  scope: resource\n  threshold: 10s\n"
            )),
            ..enforced.clone()
        };
        assert_eq!(eval(custom, slow).verdict, Verdict::Pass);
        // singleResourceThreshold raised -> pass.
        let single = Config {
            single_resource_threshold: Some(GoDuration(Duration::from_secs(5))),
            ..enforced
        };
        assert_eq!(eval(single, slow).verdict, Verdict::Pass);
    }

    #[test]
    fn key_numbers_and_summary_name() {
        let cfg = Config {
            summary_name: Some("APIResponsivenessPrometheus_simple".into()),
            ..Config::default()
        };
        let s = eval(cfg, [100, 100, 100, 100]);
        assert_eq!(s.name, "APIResponsivenessPrometheus_simple");
        assert!(s.key("singleObjectP99").is_some());
        assert_eq!(s.key("calls"), Some(100.0));
    }

    #[test]
    fn cl2_load_test_params_decode() {
        // The params CL2's load test renders for APIResponsivenessPrometheus.
        let p = crate::common::testutil::params(serde_json::json!({
            "action": "gather",
            "enableViolations": true,
            "allowedSlowCalls": 1.0,
            "customThresholds": "- verb: PUT\n  resource: leases\n  subresource: ''\n  scope: namespace\n  threshold: 500ms\n- verb: DELETE\n  resource: pods\n  subresource: ''\n  scope: namespace\n  threshold: 700ms\n",
            "singleResourceThreshold": "1s",
            "useSimpleLatencyQuery": true,
            "summaryName": "APIResponsivenessPrometheus_simple",
        }));
        let (action, cfg): (String, Config) =
            decode("APIResponsivenessPrometheus", "x", &p).unwrap();
        assert_eq!(action, "gather");
        assert_eq!(cfg.allowed_slow_calls, Some(1));
        let custom: Vec<CustomThreshold> =
            yaml_or_value::<Option<Vec<CustomThreshold>>>(cfg.custom_thresholds.as_ref().unwrap())
                .unwrap()
                .unwrap();
        let key = |verb: &str, resource: &str| CallKey {
            verb: verb.into(),
            resource: resource.into(),
            subresource: String::new(),
            scope: "namespace".into(),
        };
        let single = Duration::from_secs(1);
        assert_eq!(
            threshold_for(&key("PUT", "leases"), &custom, single),
            Duration::from_millis(500)
        );
        assert_eq!(
            threshold_for(&key("DELETE", "pods"), &custom, single),
            Duration::from_millis(700)
        );
        assert_eq!(
            threshold_for(&key("GET", "pods"), &custom, single),
            Duration::from_secs(30)
        );
    }
}
