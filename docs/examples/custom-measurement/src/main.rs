//! A `cl2` binary with one extra in-process measurement, `NamespaceCount`.
//!
//! This is the in-process plugin path: depend on `cl2-framework` (the trait) and `cl2` (the
//! CLI as a library), implement [`Measurement`], add a [`MeasurementDescriptor`] to the
//! built-in registry and hand it to `cl2::run_cli`. Every `cl2` subcommand works unchanged;
//! `cl2-custom measurements` lists the new method and test configs can use
//! `Method: NamespaceCount`.

use cl2_framework::config::Params;
use cl2_framework::measurement::params::decode;
use cl2_framework::measurement::stats::{DataItem, PerfData};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
    Verdict,
};
use k8s_openapi::api::core::v1::Namespace;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

const METHOD: &str = "NamespaceCount";

/// Typed params: unknown keys are rejected with the key named.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// SLO: at most this many namespaces at gather.
    #[serde(default)]
    max_namespaces: Option<u64>,
}

/// Counts namespaces at `start` and `gather`.
#[derive(Default)]
struct NamespaceCount {
    at_start: Option<u64>,
}

async fn count(ctx: &MeasurementContext) -> Result<u64, MeasurementError> {
    let api: kube::Api<Namespace> = kube::Api::all(ctx.cluster.client.clone());
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| MeasurementError::failed(METHOD, &ctx.identifier, e.to_string()))?;
    Ok(list.items.len() as u64)
}

#[async_trait::async_trait]
impl Measurement for NamespaceCount {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let (action, cfg): (String, Config) = decode(METHOD, &ctx.identifier, params)?;
        match action.as_str() {
            "start" => {
                self.at_start = Some(count(ctx).await?);
                Ok(vec![])
            }
            "gather" => {
                let end = count(ctx).await?;
                let start = self.at_start.take().unwrap_or(end);
                let mut pd = PerfData::new("v1");
                pd.data_items.push(DataItem {
                    data: BTreeMap::from([
                        ("start".to_string(), start as f64),
                        ("end".to_string(), end as f64),
                    ]),
                    unit: "namespaces".into(),
                    labels: BTreeMap::from([("Metric".to_string(), "namespaces".to_string())]),
                });
                let mut s =
                    Summary::new(format!("NamespaceCount_{}", ctx.identifier), pd.to_value());
                s.key_numbers = vec![KeyNumber::new("namespaces", end as f64, "")];
                if let Some(max) = cfg.max_namespaces {
                    s.slo = Some(format!("namespaces <= {max}"));
                    s.verdict = if end <= max {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    };
                    if end > max {
                        s.violations
                            .push(format!("{end} namespaces exist, at most {max} allowed"));
                    }
                }
                Ok(vec![s])
            }
            other => Err(MeasurementError::invalid(
                METHOD,
                &ctx.identifier,
                format!("unknown action {other:?}"),
            )),
        }
    }
}

const NAMESPACE_COUNT: MeasurementDescriptor = MeasurementDescriptor {
    name: METHOD,
    summary: "example: counts namespaces at start and gather",
    new: || Box::new(NamespaceCount::default()),
};

fn main() -> ExitCode {
    let mut registry = cl2::builtin_registry();
    if let Err(e) = registry.register(NAMESPACE_COUNT) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    cl2::run_cli(registry)
}
