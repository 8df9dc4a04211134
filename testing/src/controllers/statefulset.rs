//! StatefulSet controller: pods `<name>-0 … <name>-(N-1)` with stable hostnames. With the
//! default `OrderedReady` policy a pod is created only when every lower ordinal is Running and
//! Ready, and scale-down removes the highest ordinal first, one at a time; `Parallel` creates and
//! deletes all at once. Template changes roll out (RollingUpdate, honouring `partition`) by
//! deleting the highest outdated pod once all pods are ready. Pods carry the
//! `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//! `controller-revision-hash` labels. `volumeClaimTemplates` become PersistentVolumeClaims
//! `<template>-<set>-<ordinal>` created before their pod (kept on scale-down, like the default
//! retention policy); nothing binds them to volumes.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::cache::{Phase, PodInfo};
use super::replicaset::delete_pods;
use super::{
    Ctx, Key, Reconciled, api_err, controller_ref, pod_from_template, template_hash, write_status,
};

const REVISION_LABEL: &str = "controller-revision-hash";

/// Ordinal of `pod` in set `set`, if its name is `<set>-<n>`.
pub(crate) fn ordinal(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Creates the PersistentVolumeClaims `<template>-<set>-<ordinal>` of one pod from the
/// set's `volumeClaimTemplates` (existing claims are kept, like the real controller).
async fn ensure_claims(
    ctx: &Ctx,
    sts: &StatefulSet,
    ns: &str,
    name: &str,
    ordinal: usize,
) -> Result<(), super::ReconcileError> {
    let templates = sts
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref());
    let Some(templates) = templates.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let selector_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
    for t in templates {
        let tname = t.metadata.name.clone().unwrap_or_default();
        let claim = format!("{tname}-{name}-{ordinal}");
        let mut pvc = t.clone();
        pvc.metadata.name = Some(claim.clone());
        pvc.metadata.namespace = Some(ns.to_string());
        pvc.metadata.resource_version = None;
        pvc.metadata.uid = None;
        let labels = pvc.metadata.labels.get_or_insert_with(Default::default);
        labels.extend(selector_labels.clone());
        pvc.status = None;
        match api.create(&PostParams::default(), &pvc).await {
            Ok(_) => {}
            // Exists already, or the server does not serve claims: nothing to do.
            Err(e) if matches!(crate::kubelet::api_code(&e), Some(409 | 404 | 405)) => {}
            Err(e) => return Err(api_err(format!("creating claim {ns}/{claim}"))(e)),
        }
    }
    Ok(())
}

pub(crate) async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(sts) = ctx.statefulsets.get(&key) else {
        return Ok(None);
    };
    let Some(spec) = sts.spec.as_ref() else {
        return Ok(None);
    };
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let (ns, name) = key.clone();
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0) as usize;
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let revision = format!(
        "{name}-{}",
        template_hash(
            &spec.template,
            sts.status.as_ref().and_then(|s| s.collision_count)
        )
    );
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = k8s_openapi::jiff::Timestamp::now();

    let owned = ctx.pods.owned_by(&uid);
    let mut by_ord: BTreeMap<usize, Arc<PodInfo>> = BTreeMap::new();
    for p in &owned {
        if let Some(o) = ordinal(&name, &p.name) {
            by_ord.insert(o, p.clone());
        }
    }
    let healthy = |p: &PodInfo| p.phase == Phase::Running && p.ready && !p.terminating;
    let mut first_err = None;
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let owner = controller_ref("apps/v1", "StatefulSet", &name, &uid);

    // Replace failed pods, create missing ones.
    let mut to_create = Vec::new();
    let mut to_delete: Vec<Arc<PodInfo>> = Vec::new();
    for i in 0..replicas {
        match by_ord.get(&i) {
            None => {
                to_create.push(i);
                if !parallel {
                    break;
                }
            }
            Some(p) if matches!(p.phase, Phase::Failed | Phase::Succeeded) && !p.terminating => {
                to_delete.push(p.clone());
                if !parallel {
                    break;
                }
            }
            Some(p) => {
                if !parallel && !healthy(p) {
                    break;
                }
            }
        }
    }
    if !to_create.is_empty()
        && !super::owner_alive(&ctx, "apps/v1", "StatefulSet", &ns, &name, &uid).await?
    {
        return Ok(None);
    }
    for i in to_create {
        let pod_name = format!("{name}-{i}");
        ensure_claims(&ctx, &sts, &ns, &name, i).await?;
        let mut pod = pod_from_template(
            &spec.template,
            &ns,
            pod_name.clone(),
            None,
            owner.clone(),
            &[
                ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                ("apps.kubernetes.io/pod-index", i.to_string()),
                (REVISION_LABEL, revision.clone()),
            ],
        );
        if let Some(ps) = pod.spec.as_mut() {
            ps.hostname = Some(pod_name.clone());
            if !spec.service_name.as_deref().unwrap_or("").is_empty() {
                ps.subdomain = spec.service_name.clone();
            }
        }
        match api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                if let Some(info) = PodInfo::from_pod(&p) {
                    ctx.pods.apply(&ns, info);
                }
            }
            Err(e) if crate::kubelet::api_code(&e) == Some(409) => {}
            Err(e) => {
                first_err.get_or_insert(api_err(format!("creating pod {ns}/{pod_name}"))(e));
            }
        }
    }
    // Scale down: highest ordinals first.
    let condemned: Vec<Arc<PodInfo>> = by_ord
        .range(replicas..)
        .rev()
        .map(|(_, p)| p.clone())
        .filter(|p| !p.terminating)
        .collect();
    let any_terminating = by_ord.values().any(|p| p.terminating);
    if parallel {
        to_delete.extend(condemned);
    } else if let Some(p) = condemned.first()
        && !any_terminating
    {
        to_delete.push(p.clone());
    }
    // Rolling update: once all wanted pods are healthy, replace the highest outdated one.
    let is_rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
        .max(0) as usize;
    let all_healthy = (0..replicas).all(|i| by_ord.get(&i).is_some_and(|p| healthy(p)));
    if is_rolling
        && all_healthy
        && to_delete.is_empty()
        && !any_terminating
        && let Some(p) = (partition..replicas)
            .rev()
            .filter_map(|i| by_ord.get(&i))
            .find(|p| p.labels.get(REVISION_LABEL) != Some(&revision))
    {
        to_delete.push(p.clone());
    }
    if !to_delete.is_empty() {
        delete_pods(&ctx, &ns, &to_delete, &mut first_err).await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }

    let pods: Vec<Arc<PodInfo>> = ctx
        .pods
        .owned_by(&uid)
        .into_iter()
        .filter(|p| !p.terminating)
        .collect();
    let count = |f: &dyn Fn(&PodInfo) -> bool| pods.iter().filter(|p| f(p)).count();
    let updated = count(&|p| p.labels.get(REVISION_LABEL) == Some(&revision));
    let current_revision = sts
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|_| updated < pods.len())
        .unwrap_or_else(|| revision.clone());
    let status = json!({
        "observedGeneration": sts.metadata.generation.unwrap_or(0),
        "replicas": pods.len(),
        "readyReplicas": count(&|p| p.ready),
        "availableReplicas": count(&|p| p.available(min_ready, now)),
        "currentReplicas": count(&|p| p.labels.get(REVISION_LABEL) == Some(&current_revision)),
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": sts.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0),
    });
    let old = serde_json::to_value(&sts.status).unwrap_or_default();
    let sapi: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&sapi, &name, status, &old, || {
        format!("updating statefulset status {ns}/{name}")
    })
    .await?;
    let waiting_available = pods.iter().any(|p| p.ready && !p.available(min_ready, now));
    Ok(waiting_available.then(|| std::time::Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        assert_eq!(ordinal("web", "web-0"), Some(0));
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "web-x"), None);
        assert_eq!(ordinal("web", "webby-1"), None);
        assert_eq!(ordinal("web-a", "web-a-3"), Some(3));
    }
}
