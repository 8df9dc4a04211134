//! Sleep: blocks the step for `duration` (a Go duration string, required). Stops early when
//! the run is interrupted.

use crate::common::sleep_or_cancel;
use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, decode};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use serde::Deserialize;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "Sleep",
    summary: "waits for the given duration",
    new: || Box::new(Sleep),
};

const METHOD: &str = "Sleep";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    duration: GoDuration,
}

pub(crate) struct Sleep;

#[async_trait::async_trait]
impl Measurement for Sleep {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let (_, cfg): (String, Config) = decode(METHOD, &ctx.identifier, params)?;
        if !ctx.finishing {
            sleep_or_cancel(ctx, cfg.duration.0).await;
        }
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::{offline_context, params};

    #[tokio::test]
    async fn sleeps_and_requires_duration() {
        let ctx = offline_context();
        let t = std::time::Instant::now();
        Sleep
            .execute(&ctx, &params(serde_json::json!({"duration": "50ms"})))
            .await
            .unwrap();
        assert!(t.elapsed() >= std::time::Duration::from_millis(50));
        let e = Sleep
            .execute(&ctx, &params(serde_json::json!({})))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
    }

    #[tokio::test]
    async fn stops_when_cancelled() {
        let ctx = offline_context();
        ctx.cancel.cancel();
        Sleep
            .execute(&ctx, &params(serde_json::json!({"duration": "1h"})))
            .await
            .unwrap();
    }
}
