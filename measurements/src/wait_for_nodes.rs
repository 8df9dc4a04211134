//! WaitForNodes: waits until the number of schedulable, untainted, ready nodes (selected by
//! `labelSelector`/`fieldSelector`) is within [`minDesiredNodeCount`, `maxDesiredNodeCount`],
//! polling every `refreshInterval` (30s) up to `timeout` (30m).

use crate::common;
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, Selector, decode};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use k8s_openapi::api::core::v1::Node;
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "WaitForNodes",
    summary: "waits until the count of schedulable ready nodes is within [min, max]",
    new: || Box::new(WaitForNodes),
};

const METHOD: &str = "WaitForNodes";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    min_desired_node_count: u64,
    max_desired_node_count: u64,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    field_selector: Option<String>,
    /// Accepted (CL2's selector has it); nodes are cluster-scoped.
    #[serde(default)]
    #[allow(dead_code)]
    namespace: Option<String>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    refresh_interval: Option<GoDuration>,
}

pub(crate) struct WaitForNodes;

#[async_trait::async_trait]
impl Measurement for WaitForNodes {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (_, cfg): (String, Config) = decode(METHOD, id, params)?;
        if cfg.min_desired_node_count > cfg.max_desired_node_count {
            return Err(MeasurementError::invalid(
                METHOD,
                id,
                "minDesiredNodeCount > maxDesiredNodeCount",
            ));
        }
        let sel = Selector::new(
            None,
            cfg.label_selector.as_deref(),
            cfg.field_selector.as_deref(),
        );
        let api: kube::Api<Node> = kube::Api::all(ctx.cluster.client.clone());
        let timeout = cfg.timeout.map_or(Duration::from_secs(1800), |d| d.0);
        let poll = common::Poll::new(
            timeout,
            cfg.refresh_interval
                .map_or(Duration::from_secs(30), |d| d.0),
        );
        let mut n = 0;
        let done = poll
            .list_until(ctx, METHOD, &api, &sel.list_params(), |nodes| {
                n = nodes.iter().filter(|n| common::node_schedulable(n)).count() as u64;
                (cfg.min_desired_node_count..=cfg.max_desired_node_count)
                    .contains(&n)
                    .then_some(())
            })
            .await;
        if done.is_some() {
            return Ok(vec![]);
        }
        Err(MeasurementError::failed(
            METHOD,
            id,
            format!(
                "timed out after {timeout:?}: {n} schedulable nodes, want between {} and {}",
                cfg.min_desired_node_count, cfg.max_desired_node_count
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejects_inverted_bounds() {
        let ctx = crate::common::testutil::offline_context();
        let e = WaitForNodes
            .execute(
                &ctx,
                &crate::common::testutil::params(
                    serde_json::json!({"minDesiredNodeCount": 3, "maxDesiredNodeCount": 2}),
                ),
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("minDesiredNodeCount > maxDesiredNodeCount")
        );
    }
}
