//! Out-of-process measurement plugins: an executable speaking JSON lines on stdin/stdout.
//!
//! One process per measurement instance, started on the instance's first action and kept for
//! the whole run, so a plugin can hold state between `start` and `gather` in memory. For every
//! action cl2 writes one [`PluginRequest`] as a single JSON line on the plugin's stdin and
//! reads one [`PluginResponse`] line from its stdout (other stdout lines are not allowed;
//! stderr is passed through to cl2's log). At the end of the run cl2 sends a request with
//! `action: "dispose"` (no answer expected), closes stdin and waits up to 10 s before killing
//! the process. The full protocol is documented in `docs/plugins.md`.

use super::{Measurement, MeasurementContext, MeasurementError, Summary};
use crate::config::Params;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

/// Version of the JSON-lines protocol cl2 speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// How long one action may take before cl2 gives up on the plugin (it is then killed).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(3600);

/// One request line cl2 sends to a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginRequest {
    pub protocol_version: u32,
    /// `start`, `gather`, any other action of the config, or `dispose` at the end.
    pub action: String,
    /// The action's params without the `action` key.
    pub params: Params,
    pub method: String,
    pub identifier: String,
    pub test_name: String,
    /// Kubeconfig reaching the cluster under test, if cl2 has one.
    pub kubeconfig: Option<String>,
}

/// One response line a plugin sends back.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PluginResponse {
    #[serde(default)]
    pub summaries: Vec<Summary>,
    /// Set when the action failed; the message is reported as the measurement's error.
    #[serde(default)]
    pub error: Option<String>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// A measurement backed by an external executable.
pub struct ExecPlugin {
    method: String,
    path: PathBuf,
    /// Named by the config (`exec:PATH`) rather than registered on the command line: needs
    /// `--enable-exec`, like the Exec measurement.
    needs_enable_exec: bool,
    proc: Option<Running>,
    identifier: String,
    test_name: String,
    kubeconfig: Option<String>,
}

impl ExecPlugin {
    /// A plugin instance for `method` running `path` (started on the first action).
    /// `needs_enable_exec`: the path comes from the test config (`exec:PATH`), so running it
    /// requires `--enable-exec`.
    pub fn new(method: &str, path: PathBuf, needs_enable_exec: bool) -> Self {
        Self {
            method: method.to_string(),
            path,
            needs_enable_exec,
            proc: None,
            identifier: String::new(),
            test_name: String::new(),
            kubeconfig: None,
        }
    }

    fn err(&self, msg: impl Into<String>) -> MeasurementError {
        MeasurementError::failed(&self.method, &self.identifier, msg)
    }

    fn spawn(&mut self, ctx: &MeasurementContext) -> Result<(), MeasurementError> {
        let mut cmd = Command::new(&self.path);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.kill_on_drop(true);
        if let Some(k) = &ctx.cluster.kubeconfig_path {
            cmd.env("KUBECONFIG", k);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| self.err(format!("cannot start plugin {}: {e}", self.path.display())))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| self.err("plugin stdin unavailable"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| self.err("plugin stdout unavailable"))?;
        self.proc = Some(Running {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        });
        Ok(())
    }

    async fn send(&mut self, req: &PluginRequest) -> Result<(), MeasurementError> {
        let mut line = serde_json::to_string(req).map_err(|e| self.err(e.to_string()))?;
        line.push('\n');
        let method = self.method.clone();
        let id = self.identifier.clone();
        let Some(p) = self.proc.as_mut() else {
            return Err(self.err("plugin is not running"));
        };
        p.stdin.write_all(line.as_bytes()).await.map_err(|e| {
            MeasurementError::failed(&method, &id, format!("writing to plugin: {e}"))
        })?;
        p.stdin
            .flush()
            .await
            .map_err(|e| MeasurementError::failed(&method, &id, format!("writing to plugin: {e}")))
    }

    /// Kills the plugin (after a timeout or interruption the protocol is out of step).
    async fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.child.kill().await;
        }
    }

    /// Reads one response line; `cancel` (when given) aborts the wait and kills the plugin.
    async fn receive(
        &mut self,
        cancel: Option<CancellationToken>,
    ) -> Result<PluginResponse, MeasurementError> {
        let method = self.method.clone();
        let id = self.identifier.clone();
        let Some(p) = self.proc.as_mut() else {
            return Err(self.err("plugin is not running"));
        };
        let mut line = String::new();
        let read = tokio::time::timeout(ACTION_TIMEOUT, p.stdout.read_line(&mut line));
        let outcome = match cancel {
            Some(c) => tokio::select! {
                r = read => Some(r),
                () = c.cancelled() => None,
            },
            None => Some(read.await),
        };
        let n = match outcome {
            None => {
                self.kill().await;
                return Err(self.err("interrupted while waiting for the plugin; plugin stopped"));
            }
            Some(Err(_)) => {
                self.kill().await;
                return Err(self.err(format!(
                    "plugin did not answer within {ACTION_TIMEOUT:?}; plugin stopped"
                )));
            }
            Some(Ok(Err(e))) => {
                return Err(MeasurementError::failed(
                    &method,
                    &id,
                    format!("reading plugin: {e}"),
                ));
            }
            Some(Ok(Ok(n))) => n,
        };
        let Some(p) = self.proc.as_mut() else {
            return Err(self.err("plugin is not running"));
        };
        if n == 0 {
            let status = p.child.try_wait().ok().flatten();
            self.proc = None;
            return Err(MeasurementError::failed(
                &method,
                &id,
                format!(
                    "plugin closed its stdout without answering{}",
                    status.map(|s| format!(" ({s})")).unwrap_or_default()
                ),
            ));
        }
        serde_json::from_str::<PluginResponse>(line.trim()).map_err(|e| {
            MeasurementError::failed(
                &method,
                &id,
                format!(
                    "plugin answered invalid JSON ({e}): {}",
                    truncate(line.trim(), 200)
                ),
            )
        })
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[async_trait::async_trait]
impl Measurement for ExecPlugin {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        self.identifier = ctx.identifier.clone();
        self.test_name = ctx.test_name.clone();
        self.kubeconfig = ctx
            .cluster
            .kubeconfig_path
            .as_ref()
            .map(|p| p.display().to_string());
        if self.proc.is_none() {
            if self.needs_enable_exec && !ctx.enable_exec {
                return Err(self.err(
                    "exec: methods run local programs named by the test config; pass \
                     --enable-exec, or register the plugin with --measurement-plugin NAME=PATH",
                ));
            }
            self.spawn(ctx)?;
        }
        let mut p = params.clone();
        let action = match p.remove("action") {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        let req = PluginRequest {
            protocol_version: PROTOCOL_VERSION,
            action,
            params: p,
            method: self.method.clone(),
            identifier: self.identifier.clone(),
            test_name: self.test_name.clone(),
            kubeconfig: self.kubeconfig.clone(),
        };
        self.send(&req).await?;
        // The end-of-run gather must finish even though the run was interrupted.
        let cancel = (!ctx.finishing).then(|| ctx.cancel.clone());
        let resp = self.receive(cancel).await?;
        if let Some(e) = resp.error {
            return Err(self.err(e));
        }
        Ok(resp.summaries)
    }

    async fn dispose(&mut self) {
        if self.proc.is_none() {
            return;
        }
        let req = PluginRequest {
            protocol_version: PROTOCOL_VERSION,
            action: "dispose".into(),
            params: Params::new(),
            method: self.method.clone(),
            identifier: self.identifier.clone(),
            test_name: self.test_name.clone(),
            kubeconfig: self.kubeconfig.clone(),
        };
        let _ = self.send(&req).await;
        if let Some(mut p) = self.proc.take() {
            drop(p.stdin);
            if tokio::time::timeout(Duration::from_secs(10), p.child.wait())
                .await
                .is_err()
            {
                let _ = p.child.kill().await;
            }
        }
    }
}
