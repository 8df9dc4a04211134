//! WaitForGenericK8sObjects: waits until at least `minDesiredObjectCount` objects of
//! `objectGroup/objectVersion/objectResource` have one of `successfulConditions` (each
//! `Type=Status` against `status.conditions`) while at most `maxFailedObjectCount` have one of
//! `failedConditions`. Namespaces: `namespaceRange {min, max, prefix?}` (prefix defaults to the
//! automanaged prefix) or `{allNamespaces: true}`; none = cluster-scoped. `timeout` 30m,
//! `refreshInterval` 30s.

use crate::common;
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, decode};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use kube::api::{ApiResource, DynamicObject, ListParams};
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "WaitForGenericK8sObjects",
    summary: "waits until enough objects of any resource reach given status conditions",
    new: || Box::new(WaitForGenericK8sObjects),
};

const METHOD: &str = "WaitForGenericK8sObjects";

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NamespaceRange {
    #[serde(default)]
    min: u32,
    #[serde(default)]
    max: u32,
    #[serde(default, alias = "basename")]
    prefix: Option<String>,
    #[serde(default)]
    all_namespaces: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    object_group: String,
    object_version: String,
    object_resource: String,
    #[serde(default)]
    namespace_range: Option<NamespaceRange>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    refresh_interval: Option<GoDuration>,
    #[serde(default)]
    successful_conditions: Vec<String>,
    #[serde(default)]
    failed_conditions: Vec<String>,
    min_desired_object_count: u64,
    #[serde(default)]
    max_failed_object_count: u64,
    #[serde(default)]
    label_selector: Option<String>,
}

/// Parses `Type=Status`.
fn parse_condition(s: &str) -> Option<(String, String)> {
    let (t, st) = s.split_once('=')?;
    Some((t.trim().to_string(), st.trim().to_string()))
}

/// True if `obj.status.conditions` holds any of `conds`.
fn has_any(obj: &serde_json::Value, conds: &[(String, String)]) -> bool {
    obj["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            conds
                .iter()
                .any(|(t, s)| c["type"].as_str() == Some(t) && c["status"].as_str() == Some(s))
        })
    })
}

pub(crate) struct WaitForGenericK8sObjects;

#[async_trait::async_trait]
impl Measurement for WaitForGenericK8sObjects {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (_, cfg): (String, Config) = decode(METHOD, id, params)?;
        let parse_all = |v: &[String]| -> Result<Vec<(String, String)>, MeasurementError> {
            v.iter()
                .map(|c| {
                    parse_condition(c).ok_or_else(|| {
                        MeasurementError::invalid(
                            METHOD,
                            id,
                            format!("condition {c:?} is not Type=Status"),
                        )
                    })
                })
                .collect()
        };
        let ok_conds = parse_all(&cfg.successful_conditions)?;
        let bad_conds = parse_all(&cfg.failed_conditions)?;
        let api_version = if cfg.object_group.is_empty() {
            cfg.object_version.clone()
        } else {
            format!("{}/{}", cfg.object_group, cfg.object_version)
        };
        let ar = ApiResource {
            group: cfg.object_group.clone(),
            version: cfg.object_version.clone(),
            api_version,
            kind: String::new(),
            plural: cfg.object_resource.clone(),
        };
        let client = &ctx.cluster.client;
        let namespaces: Option<Vec<String>> = match &cfg.namespace_range {
            None => None,
            Some(r) if r.all_namespaces => None,
            Some(r) => {
                let prefix = r
                    .prefix
                    .clone()
                    .or_else(|| ctx.namespace_prefix.clone())
                    .ok_or_else(|| {
                        MeasurementError::invalid(
                            METHOD,
                            id,
                            "namespaceRange.prefix is required (no automanaged prefix known)",
                        )
                    })?;
                Some((r.min..=r.max).map(|i| format!("{prefix}-{i}")).collect())
            }
        };
        let mut lp = ListParams::default();
        if let Some(l) = &cfg.label_selector {
            lp = lp.labels(l);
        }
        let timeout = cfg.timeout.map_or(Duration::from_secs(1800), |d| d.0);
        let poll = common::Poll::new(
            timeout,
            cfg.refresh_interval
                .map_or(Duration::from_secs(30), |d| d.0),
        );
        let apis: Vec<kube::Api<DynamicObject>> = match &namespaces {
            None => vec![kube::Api::all_with(client.clone(), &ar)],
            Some(ns) => ns
                .iter()
                .map(|n| kube::Api::namespaced_with(client.clone(), n, &ar))
                .collect(),
        };
        let (mut ok, mut bad);
        loop {
            let mut counted = true;
            (ok, bad) = (0u64, 0u64);
            for api in &apis {
                match api.list(&lp).await {
                    Ok(list) => {
                        for o in &list.items {
                            // `status` is in the object's flattened `data`.
                            if has_any(&o.data, &bad_conds) {
                                bad += 1;
                            } else if has_any(&o.data, &ok_conds) {
                                ok += 1;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!("{METHOD} {id}: listing {}: {e}", cfg.object_resource);
                        counted = false;
                    }
                }
            }
            if counted && bad > cfg.max_failed_object_count {
                return Err(MeasurementError::failed(
                    METHOD,
                    id,
                    format!(
                        "{bad} {} objects failed, at most {} allowed",
                        cfg.object_resource, cfg.max_failed_object_count
                    ),
                ));
            }
            if counted && ok >= cfg.min_desired_object_count {
                return Ok(vec![]);
            }
            if !poll.next(ctx).await {
                break;
            }
        }
        Err(MeasurementError::failed(
            METHOD,
            id,
            format!(
                "timed out after {timeout:?}: {ok} of {} {} objects successful ({bad} failed)",
                cfg.min_desired_object_count, cfg.object_resource
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_match() {
        let o =
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(has_any(&o, &[parse_condition("Ready=True").unwrap()]));
        assert!(!has_any(&o, &[parse_condition("Ready=False").unwrap()]));
        assert!(!has_any(
            &serde_json::json!({}),
            &[parse_condition("Ready=True").unwrap()]
        ));
        assert_eq!(parse_condition("nope"), None);
    }

    #[test]
    fn params_decode() {
        let (_, c): (String, Config) = decode(
            METHOD,
            "x",
            &crate::common::testutil::params(serde_json::json!({
            "objectGroup": "apps", "objectVersion": "v1", "objectResource": "deployments",
            "namespaceRange": {"min": 1, "max": 3}, "successfulConditions": ["Available=True"],
            "minDesiredObjectCount": 3, "timeout": "1m"})),
        )
        .unwrap();
        assert_eq!(c.namespace_range.unwrap().max, 3);
    }
}
