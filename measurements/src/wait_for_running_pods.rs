//! WaitForRunningPods: waits until exactly `desiredPodCount` selected pods are running and
//! ready (inactive pods aside), polling every `refreshInterval` (5s) up to `timeout` (60s).
//! With `isFatal: true` a timeout stops the test after the current step.

use crate::common;
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "WaitForRunningPods",
    summary: "waits until desiredPodCount selected pods are running and ready",
    new: || Box::new(WaitForRunningPods),
};

const METHOD: &str = "WaitForRunningPods";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    desired_pod_count: u64,
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
    #[serde(default)]
    is_fatal: Option<bool>,
}

/// Counts of a pod list: (all, running+ready, inactive).
pub(crate) fn count(pods: &[Pod]) -> (u64, u64, u64) {
    let mut c = (0, 0, 0);
    for p in pods {
        c.0 += 1;
        if common::is_running_ready(p) && !common::is_terminating(&p.metadata) {
            c.1 += 1;
        } else if common::is_inactive(p) {
            c.2 += 1;
        }
    }
    c
}

pub(crate) struct WaitForRunningPods;

#[async_trait::async_trait]
impl Measurement for WaitForRunningPods {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (_, cfg): (String, Config) = decode(METHOD, id, params)?;
        let sel = Selector::new(
            cfg.namespace.as_deref(),
            cfg.label_selector.as_deref(),
            cfg.field_selector.as_deref(),
        );
        let api = sel.api::<Pod>(&ctx.cluster.client);
        let timeout = cfg.timeout.map_or(Duration::from_secs(60), |d| d.0);
        let poll = common::Poll::new(
            timeout,
            cfg.refresh_interval.map_or(Duration::from_secs(5), |d| d.0),
        );
        let want = cfg.desired_pod_count;
        let mut last = (0, 0, 0);
        let done = poll
            .list_until(ctx, METHOD, &api, &sel.list_params(), |pods| {
                last = count(&pods);
                let (all, running, inactive) = last;
                (running == want && all == running + inactive).then_some(())
            })
            .await;
        if done.is_some() {
            return Ok(vec![]);
        }
        let message = format!(
            "timed out after {timeout:?} waiting for {want} running pods ({}): {} pods, {} running, {} inactive",
            sel.describe(),
            last.0,
            last.1,
            last.2
        );
        if cfg.is_fatal.unwrap_or(false) {
            Err(MeasurementError::Critical {
                method: METHOD.into(),
                identifier: id.into(),
                message,
            })
        } else {
            Err(MeasurementError::failed(METHOD, id, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_running_ready_and_inactive() {
        let p = |phase: &str, ready: bool| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "x"},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
            .unwrap()
        };
        let pods = vec![
            p("Running", true),
            p("Running", false),
            p("Succeeded", false),
            p("Pending", false),
        ];
        assert_eq!(count(&pods), (4, 1, 1));
    }

    #[test]
    fn desired_count_is_required() {
        let e = decode::<Config>(
            METHOD,
            "x",
            &crate::common::testutil::params(serde_json::json!({})),
        )
        .unwrap_err();
        assert!(e.to_string().contains("desiredPodCount"), "{e}");
        let (_, c): (String, Config) = decode(
            METHOD,
            "x",
            &crate::common::testutil::params(
                serde_json::json!({"desiredPodCount": 10.0, "isFatal": true}),
            ),
        )
        .unwrap();
        assert_eq!(c.desired_pod_count, 10);
    }
}
