//! Exec: runs a local command (`command`: list of strings, `$VAR`/`${VAR}` expanded per
//! element; `timeout` 1h; `retries` 1; `backoffDelay` 1s). Only with `--enable-exec`: running
//! arbitrary local programs from a test config must be opted into. Success = exit status 0.

use cl2_framework::config::Params;
use cl2_framework::measurement::params::{GoDuration, decode};
use cl2_framework::measurement::{
    Measurement, MeasurementContext, MeasurementDescriptor, MeasurementError, Summary,
};
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DESCRIPTOR: MeasurementDescriptor = MeasurementDescriptor {
    name: "Exec",
    summary: "runs a local command (requires --enable-exec)",
    new: || Box::new(Exec),
};

const METHOD: &str = "Exec";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    command: Vec<String>,
    #[serde(default)]
    timeout: Option<GoDuration>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    backoff_delay: Option<GoDuration>,
}

pub(crate) struct Exec;

/// Expands `$VAR` and `${VAR}` from `lookup` (unset = empty, like Go's `os.ExpandEnv`).
fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'{' {
                if let Some(end) = s[i + 2..].find('}') {
                    out.push_str(&lookup(&s[i + 2..i + 2 + end]).unwrap_or_default());
                    i += end + 3;
                    continue;
                }
            } else {
                let name_len = s[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(s.len() - i - 1);
                if name_len > 0 {
                    out.push_str(&lookup(&s[i + 1..i + 1 + name_len]).unwrap_or_default());
                    i += name_len + 1;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or('$');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[async_trait::async_trait]
impl Measurement for Exec {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        let id = ctx.identifier.as_str();
        let (_, cfg): (String, Config) = decode(METHOD, id, params)?;
        if !ctx.enable_exec {
            return Err(MeasurementError::failed(
                METHOD,
                id,
                "running local commands is disabled; pass --enable-exec to allow Exec",
            ));
        }
        let env = |k: &str| std::env::var(k).ok();
        let argv: Vec<String> = cfg.command.iter().map(|a| expand(a, &env)).collect();
        let Some((prog, args)) = argv.split_first() else {
            return Err(MeasurementError::invalid(METHOD, id, "`command` is empty"));
        };
        let timeout = cfg.timeout.map_or(Duration::from_secs(3600), |d| d.0);
        let retries = cfg.retries.unwrap_or(1).max(1);
        let backoff = cfg.backoff_delay.map_or(Duration::from_secs(1), |d| d.0);
        let mut last = String::new();
        for attempt in 1..=retries {
            let mut cmd = tokio::process::Command::new(prog);
            cmd.args(args).kill_on_drop(true);
            if let Some(k) = &ctx.cluster.kubeconfig_path {
                cmd.env("KUBECONFIG", k);
            }
            match tokio::time::timeout(timeout, cmd.output()).await {
                Ok(Ok(out)) if out.status.success() => {
                    tracing::info!(
                        "Exec {id}: {}",
                        String::from_utf8_lossy(&out.stdout).trim_end()
                    );
                    return Ok(vec![]);
                }
                Ok(Ok(out)) => {
                    last = format!(
                        "{prog} exited with {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim_end()
                    );
                }
                Ok(Err(e)) => last = format!("cannot run {prog}: {e}"),
                Err(_) => last = format!("{prog} timed out after {timeout:?}"),
            }
            if attempt < retries && !crate::common::sleep_or_cancel(ctx, backoff).await {
                break;
            }
        }
        Err(MeasurementError::failed(METHOD, id, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::{offline_context, params};

    #[test]
    fn env_expansion() {
        let look = |k: &str| (k == "A").then(|| "x".to_string());
        assert_eq!(expand("$A-${A}-$B-$", &look), "x-x--$");
        assert_eq!(expand("plain", &look), "plain");
    }

    #[tokio::test]
    async fn requires_enable_exec() {
        let ctx = offline_context();
        let e = Exec
            .execute(&ctx, &params(serde_json::json!({"command": ["true"]})))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--enable-exec"));
    }

    #[tokio::test]
    async fn runs_commands_and_reports_failures() {
        let mut ctx = offline_context();
        ctx.enable_exec = true;
        Exec.execute(
            &ctx,
            &params(serde_json::json!({"command": ["sh", "-c", "exit 0"]})),
        )
        .await
        .unwrap();
        let e = Exec
            .execute(
                &ctx,
                &params(
                    serde_json::json!({"command": ["sh", "-c", "echo bad >&2; exit 3"],
                "retries": 2, "backoffDelay": "10ms"}),
                ),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
    }
}
