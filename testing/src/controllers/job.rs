//! Job controller: runs up to `parallelism` pods until `completions` have succeeded (or, without
//! `completions`, until one succeeds and none is left running), counts succeeded/failed pods,
//! fails the job past `backoffLimit`, honours `suspend`, supports `Indexed` completion mode, and
//! reports status (active, ready, terminating, succeeded, failed, startTime, completionTime,
//! SuccessCriteriaMet + Complete / FailureTarget + Failed conditions).

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use serde_json::json;

use super::cache::{Phase, PodInfo};
use super::replicaset::delete_pods;
use super::{
    Ctx, Key, Reconciled, controller_ref, create_pods, generated_name, merge_condition_times,
    pod_from_template, write_status,
};

const INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// How many pods should be active given the job's shape and progress.
pub(crate) fn want_active(
    parallelism: i32,
    completions: Option<i32>,
    succeeded: i32,
    active: i32,
) -> i32 {
    match completions {
        Some(c) => parallelism.min((c - succeeded).max(0)),
        // Work-queue mode: once any pod succeeded, no new pods; let the rest finish.
        None if succeeded > 0 => active.min(parallelism),
        None => parallelism,
    }
    .max(0)
}

pub(crate) async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(job) = ctx.jobs.get(&key) else {
        return Ok(None);
    };
    let Some(spec) = job.spec.as_ref() else {
        return Ok(None);
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let (ns, name) = key.clone();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let old_status = job.status.clone().unwrap_or_default();
    let finished = old_status
        .conditions
        .iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
    let pods = ctx.pods.owned_by(&uid);
    let active: Vec<Arc<PodInfo>> = pods.iter().filter(|p| p.active()).cloned().collect();
    let succeeded_pods: Vec<&Arc<PodInfo>> = pods
        .iter()
        .filter(|p| p.phase == Phase::Succeeded)
        .collect();
    let failed_pods = pods.iter().filter(|p| p.phase == Phase::Failed).count() as i32;
    let succeeded = (succeeded_pods.len() as i32).max(old_status.succeeded.unwrap_or(0));
    let failed = failed_pods.max(old_status.failed.unwrap_or(0));
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let completions = spec.completions;
    let suspended = spec.suspend.unwrap_or(false);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");

    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    let failed_now = failed > backoff_limit;
    let mut first_err = None;
    if !finished && !complete && !failed_now && !suspended {
        let want = want_active(parallelism, completions, succeeded, active.len() as i32) as usize;
        if active.len() < want
            && super::owner_alive(&ctx, "batch/v1", "Job", &ns, &name, &uid).await?
        {
            let owner = controller_ref("batch/v1", "Job", &name, &uid);
            let mut indexes: Vec<Option<i32>> = vec![None; want - active.len()];
            if indexed {
                let taken: BTreeSet<i32> = active
                    .iter()
                    .chain(succeeded_pods.iter().copied())
                    .filter_map(|p| p.labels.get(INDEX).and_then(|i| i.parse().ok()))
                    .collect();
                let limit = completions.unwrap_or(parallelism);
                let free: Vec<i32> = (0..limit)
                    .filter(|i| !taken.contains(i))
                    .take(indexes.len())
                    .collect();
                indexes = free.into_iter().map(Some).collect();
            }
            let pods = indexes.into_iter().map(|idx| {
                let prefix = match idx {
                    Some(i) => format!("{name}-{i}-"),
                    None => format!("{name}-"),
                };
                let mut extra = vec![
                    ("batch.kubernetes.io/controller-uid", uid.clone()),
                    ("batch.kubernetes.io/job-name", name.clone()),
                    ("controller-uid", uid.clone()),
                    ("job-name", name.clone()),
                ];
                if let Some(i) = idx {
                    extra.push((INDEX, i.to_string()));
                }
                let mut pod = pod_from_template(
                    &spec.template,
                    &ns,
                    generated_name(&prefix),
                    Some(prefix.clone()),
                    owner.clone(),
                    &extra,
                );
                if let Some(i) = idx {
                    pod.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(INDEX.to_string(), i.to_string());
                    if let Some(s) = pod.spec.as_mut() {
                        s.hostname = Some(format!("{name}-{i}"));
                    }
                }
                pod
            });
            let action = format!("creating pod for job {ns}/{name}");
            create_pods(&ctx, &ns, pods, &action, &mut first_err).await;
        } else if active.len() > want {
            let mut extra = active.clone();
            extra.sort_by_key(|p| super::replicaset::deletion_rank(p));
            let victims = extra[..active.len() - want].to_vec();
            delete_pods(&ctx, &ns, &victims, &mut first_err).await;
        }
    } else if (failed_now || suspended) && !active.is_empty() {
        delete_pods(&ctx, &ns, &active, &mut first_err).await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }

    let pods = ctx.pods.owned_by(&uid);
    let active_n = pods.iter().filter(|p| p.active()).count();
    let ready_n = pods.iter().filter(|p| p.active() && p.ready).count();
    let terminating_n = pods.iter().filter(|p| p.terminating).count();
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let old_json = serde_json::to_value(&job.status).unwrap_or_default();
    let mut conds: Vec<serde_json::Value> = old_json
        .get("conditions")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let has = |conds: &[serde_json::Value], t: &str| conds.iter().any(|c| c["type"] == t);
    let mut status = json!({
        "active": active_n,
        "ready": ready_n,
        "terminating": terminating_n,
        "succeeded": succeeded,
        "failed": failed,
        "uncountedTerminatedPods": {},
    });
    if !suspended && old_status.start_time.is_none() {
        status["startTime"] = json!(now);
    }
    if complete && !has(&conds, "Complete") && active_n == 0 {
        let mut add = vec![
            json!({"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                   "message": "Reached expected number of succeeded pods"}),
            json!({"type": "Complete", "status": "True", "reason": "CompletionsReached",
                   "message": "Reached expected number of succeeded pods"}),
        ];
        merge_condition_times(&mut add, None, false);
        for c in add.iter_mut() {
            c["lastProbeTime"] = json!(now);
        }
        conds.retain(|c| c["type"] != "SuccessCriteriaMet");
        conds.extend(add);
        status["completionTime"] = json!(now);
    } else if complete && active_n > 0 && !has(&conds, "SuccessCriteriaMet") {
        let mut add = vec![json!({"type": "SuccessCriteriaMet", "status": "True",
            "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"})];
        merge_condition_times(&mut add, None, false);
        conds.extend(add);
    }
    if failed_now && !has(&conds, "Failed") {
        let msg = "Job has reached the specified backoff limit";
        let mut add = vec![
            json!({"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": msg}),
            json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": msg}),
        ];
        merge_condition_times(&mut add, None, false);
        conds.extend(add);
    }
    let suspended_cond = conds
        .iter()
        .any(|c| c["type"] == "Suspended" && c["status"] == "True");
    if suspended != suspended_cond && (suspended || has(&conds, "Suspended")) {
        conds.retain(|c| c["type"] != "Suspended");
        let mut add = vec![if suspended {
            json!({"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"})
        } else {
            json!({"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed"})
        }];
        merge_condition_times(&mut add, None, false);
        conds.extend(add);
    }
    if !conds.is_empty() {
        status["conditions"] = json!(conds);
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, status, &old_json, || {
        format!("updating job status {ns}/{name}")
    })
    .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_targets() {
        assert_eq!(want_active(3, Some(10), 0, 0), 3);
        assert_eq!(want_active(3, Some(10), 8, 2), 2);
        assert_eq!(want_active(3, Some(10), 10, 0), 0);
        assert_eq!(want_active(2, None, 0, 0), 2);
        assert_eq!(want_active(2, None, 1, 1), 1);
        assert_eq!(want_active(0, Some(5), 0, 0), 0);
    }
}
