//! WaitForFinishedJobs: `start` records the selector; `gather` waits (`timeout`, 10m) until
//! every selected Job has a `Complete` or `Failed` condition that is True, and names the jobs
//! still running on timeout.

use crate::common;
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use k8s_openapi::api::batch::v1::Job;
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "WaitForFinishedJobs",
    summary: "waits until every selected Job is Complete or Failed",
    new: || Box::new(WaitForFinishedJobs::default()),
};

const METHOD: &str = "WaitForFinishedJobs";

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    field_selector: Option<String>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    refresh_interval: Option<GoDuration>,
}

/// True if the job has a True `Complete` or `Failed` condition.
pub(crate) fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn failed(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
}

#[derive(Default)]
pub(crate) struct WaitForFinishedJobs {
    selector: Option<Selector>,
}

#[async_trait::async_trait]
impl Measurement for WaitForFinishedJobs {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, cfg): (String, Config) = decode(METHOD, id, params)?;
        let sel = Selector::new(
            cfg.namespace.as_deref(),
            cfg.label_selector.as_deref(),
            cfg.field_selector.as_deref(),
        );
        match action.as_str() {
            "start" => {
                self.selector = Some(sel);
                Ok(vec![])
            }
            "gather" => {
                let Some(sel) = self.selector.clone() else {
                    return Err(common::not_started(METHOD, id));
                };
                if ctx.finishing {
                    // End-of-run gather of an interrupted test: report nothing, don't wait.
                    return Ok(vec![]);
                }
                let api = sel.api::<Job>(&ctx.cluster.client);
                let timeout = cfg.timeout.map_or(Duration::from_secs(600), |d| d.0);
                let poll = common::Poll::new(
                    timeout,
                    cfg.refresh_interval.map_or(Duration::from_secs(2), |d| d.0),
                );
                let mut pending: Vec<String> = Vec::new();
                let done = poll
                    .list_until(ctx, METHOD, &api, &sel.list_params(), |jobs| {
                        pending = jobs
                            .iter()
                            .filter(|j| !finished(j))
                            .map(|j| common::key_of(&j.metadata))
                            .collect();
                        pending.is_empty().then(|| {
                            let failed = jobs.iter().filter(|j| failed(j)).count();
                            let mut s = Summary::new(
                                format!("WaitForFinishedJobs_{id}"),
                                serde_json::json!({"jobs": jobs.len(), "failed": failed}),
                            );
                            s.key_numbers = vec![
                                KeyNumber::new("jobs", jobs.len() as f64, ""),
                                KeyNumber::new("failed", failed as f64, ""),
                            ];
                            s
                        })
                    })
                    .await;
                if let Some(s) = done {
                    return Ok(vec![s]);
                }
                pending.truncate(20);
                Err(MeasurementError::failed(
                    METHOD,
                    id,
                    format!(
                        "timed out after {timeout:?} waiting for jobs to finish: {}",
                        pending.join(", ")
                    ),
                ))
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                id,
                format!("unknown action {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_conditions() {
        let j = |t: &str, s: &str| -> Job {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "j"},
                "status": {"conditions": [{"type": t, "status": s}]}}))
            .unwrap()
        };
        assert!(finished(&j("Complete", "True")));
        assert!(finished(&j("Failed", "True")) && failed(&j("Failed", "True")));
        assert!(!finished(&j("Complete", "False")));
        assert!(!finished(&j("Suspended", "True")));
    }
}
