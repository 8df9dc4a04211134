//! Timer: named stopwatches. `start` / `stop` with a `label`; `gather` emits summary `Timer`
//! (PerfData v1, one item, unit `s`, labels `{test: phases}`, data `{<label>: seconds}`).

use cl2_framework::config::Params;
use cl2_framework::measurement::params::decode;
use cl2_framework::measurement::stats::{DataItem, PerfData};
use cl2_framework::measurement::{
    KeyNumber, Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "Timer",
    summary: "measures wall time between start and stop actions per label",
    new: || Box::new(Timer::default()),
};

const METHOD: &str = "Timer";

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    label: Option<String>,
}

#[derive(Default)]
pub(crate) struct Timer {
    started: BTreeMap<String, Instant>,
    done: BTreeMap<String, Duration>,
}

#[async_trait::async_trait]
impl Measurement for Timer {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (action, cfg): (String, Config) = decode(METHOD, id, params)?;
        let label = || {
            cfg.label
                .clone()
                .ok_or_else(|| MeasurementError::invalid(METHOD, id, "`label` is required"))
        };
        match action.as_str() {
            "start" => {
                self.started.insert(label()?, Instant::now());
                Ok(vec![])
            }
            "stop" => {
                let l = label()?;
                let Some(t) = self.started.remove(&l) else {
                    return Err(MeasurementError::failed(
                        METHOD,
                        id,
                        format!("timer {l:?} was not started"),
                    ));
                };
                self.done.insert(l, t.elapsed());
                Ok(vec![])
            }
            "gather" => {
                // Timers still running (interrupted runs) report their time so far.
                let mut all = self.done.clone();
                for (l, t) in &self.started {
                    all.entry(l.clone()).or_insert_with(|| t.elapsed());
                }
                let mut pd = PerfData::new("v1");
                pd.data_items.push(DataItem {
                    data: all
                        .iter()
                        .map(|(l, d)| (l.clone(), d.as_secs_f64()))
                        .collect(),
                    unit: "s".into(),
                    labels: BTreeMap::from([("test".to_string(), "phases".to_string())]),
                });
                let mut s = Summary::new("Timer", pd.to_value());
                s.key_numbers = all
                    .iter()
                    .map(|(l, d)| KeyNumber::new(l, d.as_secs_f64(), "s"))
                    .collect();
                Ok(vec![s])
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
    use crate::common::testutil::{offline_context, params};

    #[tokio::test]
    async fn start_stop_gather() {
        let ctx = offline_context();
        let mut t = Timer::default();
        t.execute(
            &ctx,
            &params(serde_json::json!({"action": "start", "label": "create"})),
        )
        .await
        .unwrap();
        t.execute(
            &ctx,
            &params(serde_json::json!({"action": "stop", "label": "create"})),
        )
        .await
        .unwrap();
        let e = t
            .execute(
                &ctx,
                &params(serde_json::json!({"action": "stop", "label": "x"})),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not started"));
        let s = t
            .execute(&ctx, &params(serde_json::json!({"action": "gather"})))
            .await
            .unwrap();
        assert_eq!(s[0].name, "Timer");
        assert_eq!(s[0].content["dataItems"][0]["labels"]["test"], "phases");
        assert!(
            s[0].content["dataItems"][0]["data"]["create"]
                .as_f64()
                .unwrap()
                >= 0.0
        );
        assert_eq!(s[0].content["dataItems"][0]["unit"], "s");
    }
}
