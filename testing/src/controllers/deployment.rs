//! Deployment controller: owns ReplicaSets named `<deployment>-<pod-template-hash>`, rolls
//! between them with the RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy, keeps
//! the `deployment.kubernetes.io/revision` annotations, prunes old ReplicaSets beyond
//! `revisionHistoryLimit`, and reports the status `kubectl rollout status` reads
//! (observedGeneration, replicas, updated/ready/available/unavailable, Available and
//! Progressing conditions).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{
    Ctx, EventTarget, Key, Reconciled, api_err, controller_of, controller_ref,
    merge_condition_times, record_event, template_hash, write_status,
};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// Resolves an int-or-percent against `total` (percent rounded up or down).
pub(crate) fn resolve_int_or_percent(
    v: Option<&IntOrString>,
    total: i32,
    default_pct: i32,
    round_up: bool,
) -> i32 {
    let pct = |p: i32| {
        let x = i64::from(p) * i64::from(total);
        (if round_up { (x + 99) / 100 } else { x / 100 }) as i32
    };
    match v {
        None => pct(default_pct),
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|n| n.parse::<i32>().ok())
            .map(pct)
            .unwrap_or_else(|| pct(default_pct)),
    }
}

/// `(maxSurge, maxUnavailable)` of a rolling update; never both zero.
pub(crate) fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge =
        resolve_int_or_percent(ru.and_then(|r| r.max_surge.as_ref()), replicas, 25, true).max(0);
    let mut unavail = resolve_int_or_percent(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        25,
        false,
    )
    .max(0);
    if surge == 0 && unavail == 0 {
        unavail = 1;
    }
    (surge, unavail.min(replicas.max(0)))
}

/// The template with the hash label removed, as JSON (for template equality).
fn template_sans_hash(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    let mut t = t.cloned().unwrap_or_default();
    if let Some(m) = t.metadata.as_mut()
        && let Some(l) = m.labels.as_mut()
    {
        l.remove(HASH_LABEL);
        if l.is_empty() {
            m.labels = None;
        }
    }
    serde_json::to_value(&t).unwrap_or_default()
}

fn revision_of(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn st(rs: &ReplicaSet, f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

async fn scale_rs(
    ctx: &Ctx,
    d: &Deployment,
    rs: &ReplicaSet,
    to: i32,
    max_surge: i32,
) -> Result<(), super::ReconcileError> {
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let from = spec_replicas(rs);
    if from == to {
        return Ok(());
    }
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "metadata": { "annotations": {
            "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
            "deployment.kubernetes.io/max-replicas": (replicas + max_surge).to_string(),
        } },
        "spec": { "replicas": to },
    });
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_err(format!("scaling replicaset {ns}/{name}")))?;
    let dir = if to > from { "up" } else { "down" };
    record_event(
        &ctx.client,
        EventTarget {
            kind: "Deployment",
            api_version: "apps/v1",
            namespace: &ns,
            name: d.metadata.name.as_deref().unwrap_or(""),
            uid: d.metadata.uid.as_deref().unwrap_or(""),
        },
        "Normal",
        "ScalingReplicaSet",
        &format!("Scaled {dir} replica set {name} from {from} to {to}"),
        "deployment-controller",
    )
    .await;
    Ok(())
}

pub(crate) async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(d) = ctx.deployments.get(&key) else {
        return Ok(None);
    };
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(spec) = d.spec.as_ref() else {
        return Ok(None);
    };
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let (ns, name) = key.clone();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (max_surge, max_unavailable) = if recreate {
        (0, 0)
    } else {
        surge_and_unavailable(&d, replicas)
    };
    let mut all: Vec<Arc<ReplicaSet>> = ctx.replicasets.filter(|rs| {
        rs.metadata.namespace.as_deref() == Some(ns.as_str())
            && controller_of(&rs.metadata).is_some_and(|o| o.uid == uid)
            && rs.metadata.deletion_timestamp.is_none()
    });
    all.sort_by_key(|rs| {
        (
            revision_of(rs),
            rs.metadata.creation_timestamp.clone().map(|t| t.0),
        )
    });
    let want_template = template_sans_hash(Some(&spec.template));
    let new_idx = all.iter().position(|rs| {
        template_sans_hash(rs.spec.as_ref().and_then(|s| s.template.as_ref())) == want_template
    });
    let max_rev = all.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
    let paused = spec.paused.unwrap_or(false);
    let mut created_new = false;

    let new_rs: Option<Arc<ReplicaSet>> = match new_idx {
        Some(i) => {
            let rs = all.remove(i);
            // A rollback to an old template bumps its revision.
            if revision_of(&rs) < max_rev && !paused {
                let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
                let patch = json!({ "metadata": { "annotations": { REVISION: (max_rev + 1).to_string() } } });
                let rs_name = rs.metadata.name.clone().unwrap_or_default();
                api.patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err("bumping revision"))?;
            }
            Some(rs)
        }
        None if paused => None,
        None => {
            let collision = d.status.as_ref().and_then(|s| s.collision_count);
            let hash = template_hash(&spec.template, collision);
            let rs_name = format!("{name}-{hash}");
            let old_total: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
            let initial = if recreate {
                if old_total > 0 { 0 } else { replicas }
            } else if old_total == 0 {
                replicas
            } else {
                (replicas + max_surge - old_total).clamp(0, replicas)
            };
            let mut template = spec.template.clone();
            let tm = template.metadata.get_or_insert_with(ObjectMeta::default);
            tm.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), hash.clone());
            let mut selector = spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), hash.clone());
            let mut labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(HASH_LABEL.into(), hash.clone());
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(rs_name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([
                        (REVISION.to_string(), (max_rev + 1).to_string()),
                        (
                            "deployment.kubernetes.io/desired-replicas".to_string(),
                            replicas.to_string(),
                        ),
                        (
                            "deployment.kubernetes.io/max-replicas".to_string(),
                            (replicas + max_surge).to_string(),
                        ),
                    ])),
                    owner_references: Some(vec![controller_ref(
                        "apps/v1",
                        "Deployment",
                        &name,
                        &uid,
                    )]),
                    ..Default::default()
                },
                spec: Some(ReplicaSetSpec {
                    replicas: Some(initial),
                    min_ready_seconds: spec.min_ready_seconds,
                    selector,
                    template: Some(template),
                }),
                status: None,
            };
            let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
            match api.create(&PostParams::default(), &rs).await {
                Ok(created) => {
                    created_new = true;
                    if initial > 0 {
                        record_event(
                            &ctx.client,
                            EventTarget {
                                kind: "Deployment",
                                api_version: "apps/v1",
                                namespace: &ns,
                                name: &name,
                                uid: &uid,
                            },
                            "Normal",
                            "ScalingReplicaSet",
                            &format!("Scaled up replica set {rs_name} from 0 to {initial}"),
                            "deployment-controller",
                        )
                        .await;
                    }
                    Some(Arc::new(created))
                }
                Err(e) if crate::kubelet::api_code(&e) == Some(409) => {
                    // Exists but not (yet) in our cache, or a hash collision: bump the
                    // collision count if it belongs to someone else / another template.
                    let existing = api
                        .get_opt(&rs_name)
                        .await
                        .map_err(api_err("reading replicaset"))?;
                    let ours_same = existing.as_ref().is_some_and(|e| {
                        controller_of(&e.metadata).is_some_and(|o| o.uid == uid)
                            && template_sans_hash(e.spec.as_ref().and_then(|s| s.template.as_ref()))
                                == want_template
                    });
                    if !ours_same {
                        let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
                        let patch =
                            json!({ "status": { "collisionCount": collision.unwrap_or(0) + 1 } });
                        dapi.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map_err(api_err("bumping collisionCount"))?;
                    }
                    return Ok(Some(std::time::Duration::from_millis(100)));
                }
                Err(e) => return Err(api_err(format!("creating replicaset {ns}/{rs_name}"))(e)),
            }
        }
    };
    let olds = all;

    if !paused && let Some(new_rs) = new_rs.as_ref() {
        if recreate {
            let old_running: i32 = olds
                .iter()
                .map(|rs| spec_replicas(rs) + st(rs, |s| Some(s.replicas)))
                .sum();
            if old_running > 0 {
                for rs in &olds {
                    scale_rs(&ctx, &d, rs, 0, max_surge).await?;
                }
            } else {
                scale_rs(&ctx, &d, new_rs, replicas, max_surge).await?;
            }
        } else {
            // Scale up the new ReplicaSet within maxSurge.
            let total: i32 =
                olds.iter().map(|rs| spec_replicas(rs)).sum::<i32>() + spec_replicas(new_rs);
            let cur = spec_replicas(new_rs);
            let target = if cur > replicas {
                replicas
            } else if cur < replicas && total < replicas + max_surge {
                (cur + (replicas + max_surge - total)).min(replicas)
            } else {
                cur
            };
            scale_rs(&ctx, &d, new_rs, target, max_surge).await?;
            // Scale down old ReplicaSets within maxUnavailable.
            let old_total: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum();
            if old_total > 0 {
                let min_available = replicas - max_unavailable;
                let all_pods = old_total + target;
                let new_unavailable = (target - st(new_rs, |s| s.available_replicas)).max(0);
                // First drop unhealthy old replicas.
                let mut budget = (all_pods - min_available - new_unavailable).max(0);
                let mut scaled: Vec<(Arc<ReplicaSet>, i32)> = olds
                    .iter()
                    .map(|rs| (rs.clone(), spec_replicas(rs)))
                    .collect();
                for (rs, to) in scaled.iter_mut() {
                    if budget == 0 {
                        break;
                    }
                    let unhealthy = (*to - st(rs, |s| s.available_replicas)).max(0);
                    let cut = unhealthy.min(budget);
                    *to -= cut;
                    budget -= cut;
                }
                // Then healthy ones, as far as availability allows.
                let available: i32 = olds
                    .iter()
                    .map(|rs| st(rs, |s| s.available_replicas))
                    .sum::<i32>()
                    + st(new_rs, |s| s.available_replicas);
                let mut healthy_budget = (available - min_available).max(0);
                for (rs, to) in scaled.iter_mut() {
                    if healthy_budget == 0 {
                        break;
                    }
                    let healthy = (*to).min(st(rs, |s| s.available_replicas));
                    let cut = healthy.min(healthy_budget).min(*to);
                    *to -= cut;
                    healthy_budget -= cut;
                }
                for (rs, to) in &scaled {
                    scale_rs(&ctx, &d, rs, *to, max_surge).await?;
                }
            }
        }
        // Keep the deployment's revision annotation in step with the new ReplicaSet.
        let rev = revision_of(new_rs).max(if created_new { max_rev + 1 } else { 0 });
        let cur = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        if rev > 0 && cur.as_deref() != Some(rev.to_string().as_str()) {
            let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
            let patch = json!({ "metadata": { "annotations": { REVISION: rev.to_string() } } });
            dapi.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(api_err("annotating deployment revision"))?;
        }
        // Prune old ReplicaSets beyond the history limit.
        let limit = spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let dead: Vec<&Arc<ReplicaSet>> = olds
            .iter()
            .filter(|rs| spec_replicas(rs) == 0 && st(rs, |s| Some(s.replicas)) == 0)
            .collect();
        if dead.len() > limit {
            let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
            for rs in &dead[..dead.len() - limit] {
                let n = rs.metadata.name.clone().unwrap_or_default();
                if let Err(e) = api.delete(&n, &DeleteParams::background()).await
                    && crate::kubelet::api_code(&e) != Some(404)
                {
                    return Err(api_err(format!("pruning replicaset {ns}/{n}"))(e));
                }
            }
        }
    }

    // Status from the ReplicaSets' (cached) statuses.
    let mut every: Vec<&Arc<ReplicaSet>> = olds.iter().collect();
    if let Some(n) = new_rs.as_ref() {
        every.push(n);
    }
    let sum = |f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>| -> i32 {
        every.iter().map(|rs| st(rs, f)).sum()
    };
    let actual = sum(|s| Some(s.replicas));
    let ready = sum(|s| s.ready_replicas);
    let available = sum(|s| s.available_replicas);
    let updated = new_rs
        .as_ref()
        .map(|rs| st(rs, |s| Some(s.replicas)))
        .unwrap_or(0);
    let spec_total: i32 = every.iter().map(|rs| spec_replicas(rs)).sum();
    let unavailable = (spec_total - available).max(0);
    let new_name = new_rs
        .as_ref()
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let complete =
        updated == replicas && actual == replicas && available == replicas && new_rs.is_some();
    let min_ok = available >= replicas - max_unavailable;
    let available_cond = if min_ok {
        json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
               "message": "Deployment has minimum availability."})
    } else {
        json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
               "message": "Deployment does not have minimum availability."})
    };
    let progressing_cond = if paused {
        json!({"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused",
               "message": "Deployment is paused"})
    } else if complete {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
               "message": format!("ReplicaSet \"{new_name}\" has successfully progressed.")})
    } else if created_new {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated",
               "message": format!("Created new replica set \"{new_name}\"")})
    } else {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
               "message": format!("ReplicaSet \"{new_name}\" is progressing.")})
    };
    let old_status = serde_json::to_value(&d.status).unwrap_or_default();
    let mut conds = vec![available_cond, progressing_cond];
    merge_condition_times(&mut conds, old_status.get("conditions"), true);
    let terminating: usize = every
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .map(|u| {
            ctx.pods
                .owned_by(u)
                .iter()
                .filter(|p| p.terminating)
                .count()
        })
        .sum();
    let status = json!({
        "observedGeneration": generation,
        "replicas": actual,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "terminatingReplicas": terminating,
        "conditions": conds,
    });
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, status, &old_status, || {
        format!("updating deployment status {ns}/{name}")
    })
    .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(surge: Option<IntOrString>, unavail: Option<IntOrString>) -> Deployment {
        let mut d = Deployment::default();
        let spec = d.spec.get_or_insert_with(Default::default);
        spec.strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                max_surge: surge,
                max_unavailable: unavail,
            }),
        });
        d
    }

    #[test]
    fn rolling_update_math() {
        // Defaults 25%/25%: surge rounds up, unavailable rounds down.
        assert_eq!(surge_and_unavailable(&dep(None, None), 10), (3, 2));
        assert_eq!(surge_and_unavailable(&dep(None, None), 1), (1, 0));
        assert_eq!(
            surge_and_unavailable(
                &dep(Some(IntOrString::Int(0)), Some(IntOrString::Int(0))),
                5
            ),
            (0, 1)
        );
        assert_eq!(
            surge_and_unavailable(
                &dep(
                    Some(IntOrString::String("50%".into())),
                    Some(IntOrString::Int(2))
                ),
                5
            ),
            (3, 2)
        );
        assert_eq!(
            resolve_int_or_percent(Some(&IntOrString::String("bogus".into())), 8, 25, false),
            2
        );
    }

    #[test]
    fn template_equality_ignores_hash_label() {
        let a = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(BTreeMap::from([("app".to_string(), "x".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut b = a.clone();
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "abc".into());
        assert_eq!(template_sans_hash(Some(&a)), template_sans_hash(Some(&b)));
        let h1 = template_hash(&a, None);
        b.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("v".into(), "2".into());
        assert_ne!(h1, template_hash(&b, None));
    }
}
