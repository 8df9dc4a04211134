//! SchedulingThroughput: pods scheduled per second, sampled every `measurmentInterval`.
//!
//! `start` (selector, `measurmentInterval` — CL2's spelling; `measurementInterval` accepted —
//! default 5s) watches the selected pods and counts non-terminating pods with
//! `spec.nodeName` set; every interval one sample = (scheduled now − scheduled before) /
//! interval seconds. Unlike CL2, the first sample starts from the pods already scheduled at
//! `start`, not from zero, so pre-existing pods do not inflate it. `gather` (`threshold`,
//! default 0 = none; `enableViolations`, default true) reports nearest-rank perc50/perc90/perc99
//! and max of the samples; the SLO fails when `max < threshold`.

use crate::common::{self, WatchTask};
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::stats::percentiles;
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
    Verdict,
};
use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "SchedulingThroughput",
    summary: "pods scheduled per second (perc50/90/99, max) sampled every measurmentInterval",
    new: || Box::new(SchedulingThroughput::default()),
};

const METHOD: &str = "SchedulingThroughput";

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    field_selector: Option<String>,
    #[serde(default, alias = "measurmentInterval")]
    measurement_interval: Option<GoDuration>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    enable_violations: Option<bool>,
}

#[derive(Default)]
struct Shared {
    scheduled: HashSet<String>,
}

struct Running {
    watch: WatchTask,
    sampler: JoinHandle<()>,
    samples: Arc<Mutex<Vec<f64>>>,
}

#[derive(Default)]
pub(crate) struct SchedulingThroughput {
    running: Option<Running>,
}

/// The summary of a set of samples.
fn summary(samples: &[f64], threshold: f64, enforce: bool) -> Summary {
    let mut v = samples.to_vec();
    let p = percentiles(&mut v, &[50.0, 90.0, 99.0, 100.0]);
    let (p50, p90, p99, max) = (p[0], p[1], p[2], p[3]);
    let mut s = Summary::new(
        "SchedulingThroughput",
        serde_json::json!({"perc50": p50, "perc90": p90, "perc99": p99, "max": max}),
    );
    s.key_numbers = vec![
        KeyNumber::new("max", max, "pods/s"),
        KeyNumber::new("perc50", p50, "pods/s"),
        KeyNumber::new("samples", samples.len() as f64, ""),
    ];
    if threshold > 0.0 {
        s.slo = Some(format!("max >= {threshold} pods/s"));
        if max < threshold {
            s.violations.push(format!(
                "scheduler throughput: actual throughput {max} lower than threshold {threshold}"
            ));
            s.verdict = if enforce {
                Verdict::Fail
            } else {
                Verdict::Warn
            };
        } else {
            s.verdict = Verdict::Pass;
        }
    }
    s
}

#[async_trait::async_trait]
impl Measurement for SchedulingThroughput {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, cfg): (String, Config) = decode(METHOD, id, params)?;
        match action.as_str() {
            "start" => {
                if self.running.is_some() {
                    return Err(MeasurementError::failed(METHOD, id, "already started"));
                }
                let interval = cfg
                    .measurement_interval
                    .map_or(Duration::from_secs(5), |d| d.0);
                if interval < Duration::from_millis(100) {
                    return Err(MeasurementError::invalid(
                        METHOD,
                        id,
                        "measurmentInterval must be >= 100ms",
                    ));
                }
                let sel = Selector::new(
                    cfg.namespace.as_deref(),
                    cfg.label_selector.as_deref(),
                    cfg.field_selector.as_deref(),
                );
                let shared = Arc::new(Mutex::new(Shared::default()));
                let (a, d) = (shared.clone(), shared.clone());
                let (mut apply_key, mut delete_key) =
                    (common::KeyBuf::default(), common::KeyBuf::default());
                let watch = WatchTask::spawn(
                    sel.api::<Pod>(&ctx.cluster.client),
                    sel.watcher_config(),
                    move |pod: Pod, _| {
                        let key = apply_key.of(&pod.metadata);
                        let scheduled = pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.node_name.as_deref())
                            .is_some_and(|n| !n.is_empty())
                            && !common::is_terminating(&pod.metadata);
                        let mut g = a.lock();
                        if !scheduled {
                            g.scheduled.remove(key);
                        } else if !g.scheduled.contains(key) {
                            g.scheduled.insert(key.to_owned());
                        }
                    },
                    move |pod: Pod| {
                        d.lock().scheduled.remove(delete_key.of(&pod.metadata));
                    },
                    Duration::from_secs(60),
                )
                .await;
                let samples = Arc::new(Mutex::new(Vec::new()));
                let (sh, sm) = (shared.clone(), samples.clone());
                let sampler = tokio::spawn(async move {
                    let mut prev = sh.lock().scheduled.len();
                    let mut tick = tokio::time::interval(interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        let now = sh.lock().scheduled.len();
                        let rate = now.saturating_sub(prev) as f64 / interval.as_secs_f64();
                        prev = now;
                        sm.lock().push(rate);
                    }
                });
                self.running = Some(Running {
                    watch,
                    sampler,
                    samples,
                });
                Ok(vec![])
            }
            "gather" => {
                let Some(run) = self.running.take() else {
                    return Err(common::not_started(METHOD, id));
                };
                run.sampler.abort();
                run.watch.stop().await;
                let samples = run.samples.lock().clone();
                Ok(vec![summary(
                    &samples,
                    cfg.threshold.unwrap_or(0.0),
                    cfg.enable_violations.unwrap_or(true),
                )])
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unknown action {other:?}"),
            )),
        }
    }

    async fn dispose(&mut self) {
        if let Some(run) = self.running.take() {
            run.sampler.abort();
            run.watch.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_threshold() {
        let samples = [0.0, 10.0, 20.0, 30.0, 40.0];
        let s = summary(&samples, 0.0, true);
        assert_eq!(
            s.content,
            serde_json::json!({"perc50": 20.0, "perc90": 40.0, "perc99": 40.0, "max": 40.0})
        );
        assert_eq!(s.verdict, Verdict::None);
        let f = summary(&samples, 50.0, true);
        assert_eq!(f.verdict, Verdict::Fail);
        assert_eq!(
            f.violations[0],
            "scheduler throughput: actual throughput 40 lower than threshold 50"
        );
        assert_eq!(summary(&samples, 50.0, false).verdict, Verdict::Warn);
        assert_eq!(summary(&samples, 40.0, true).verdict, Verdict::Pass);
        assert_eq!(summary(&[], 0.0, true).content["max"], 0.0);
    }

    #[test]
    fn accepts_cl2_misspelling() {
        let p = crate::common::testutil::params(
            serde_json::json!({"action": "start", "measurmentInterval": "1s"}),
        );
        let (_, c): (String, Config) = decode(METHOD, "x", &p).unwrap();
        assert_eq!(c.measurement_interval.unwrap().0, Duration::from_secs(1));
        let p = crate::common::testutil::params(
            serde_json::json!({"measurementInterval": "2s", "threshold": 100}),
        );
        let (_, c): (String, Config) = decode(METHOD, "x", &p).unwrap();
        assert_eq!(c.threshold, Some(100.0));
    }
}
