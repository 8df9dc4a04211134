//! ReplicaSet and ReplicationController controller (one implementation, two kinds): keeps
//! `spec.replicas` active pods owned by the object, creating them from the template with
//! generated names and deleting the least valuable ones first (unscheduled, pending, not ready,
//! newest), and reports replicas / fullyLabeledReplicas / readyReplicas / availableReplicas /
//! observedGeneration.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use kube::api::{Api, DeleteParams};
use serde_json::json;

use super::cache::{Phase, PodInfo};
use super::{
    Ctx, Key, ReconcileError, Reconciled, api_err, controller_ref, create_pods, generated_name,
    pod_from_template, write_status,
};

/// The kind-independent view of a ReplicaSet or ReplicationController.
pub(crate) struct ReplicaOwner {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub replicas: i32,
    pub min_ready_seconds: i32,
    pub template: Option<PodTemplateSpec>,
    pub status: serde_json::Value,
    pub terminating: bool,
}

pub(crate) async fn reconcile_rs(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(rs) = ctx.replicasets.get(&key) else {
        return Ok(None);
    };
    let spec = rs.spec.as_ref();
    let owner = ReplicaOwner {
        kind: "ReplicaSet",
        api_version: "apps/v1",
        namespace: key.0.clone(),
        name: key.1.clone(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        generation: rs.metadata.generation.unwrap_or(0),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        min_ready_seconds: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
        template: spec.and_then(|s| s.template.clone()),
        status: serde_json::to_value(&rs.status).unwrap_or_default(),
        terminating: rs.metadata.deletion_timestamp.is_some(),
    };
    let res = sync(&ctx, &owner).await?;
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.0);
    write_status(&api, &owner.name, res.0, &owner.status, || {
        format!("updating status of {} {}", owner.kind, owner.name)
    })
    .await?;
    Ok(res.1)
}

pub(crate) async fn reconcile_rc(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(rc) = ctx.rcs.get(&key) else {
        return Ok(None);
    };
    let spec = rc.spec.as_ref();
    let mut template = spec.and_then(|s| s.template.clone());
    // RC selectors default to the template labels; nothing else to resolve.
    if let Some(t) = template.as_mut()
        && t.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .is_none()
        && let Some(sel) = spec.and_then(|s| s.selector.clone())
    {
        t.metadata.get_or_insert_with(Default::default).labels = Some(sel);
    }
    let owner = ReplicaOwner {
        kind: "ReplicationController",
        api_version: "v1",
        namespace: key.0.clone(),
        name: key.1.clone(),
        uid: rc.metadata.uid.clone().unwrap_or_default(),
        generation: rc.metadata.generation.unwrap_or(0),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        min_ready_seconds: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
        template,
        status: serde_json::to_value(&rc.status).unwrap_or_default(),
        terminating: rc.metadata.deletion_timestamp.is_some(),
    };
    let res = sync(&ctx, &owner).await?;
    let api: Api<ReplicationController> = Api::namespaced(ctx.client.clone(), &key.0);
    write_status(&api, &owner.name, res.0, &owner.status, || {
        format!("updating status of {} {}", owner.kind, owner.name)
    })
    .await?;
    Ok(res.1)
}

/// Deletion preference: lower sorts first (deleted first).
pub(crate) fn deletion_rank(
    p: &PodInfo,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<Option<k8s_openapi::jiff::Timestamp>>,
) {
    let unassigned = u8::from(p.node.is_some());
    let phase = match p.phase {
        Phase::Pending => 0,
        Phase::Unknown => 1,
        _ => 2,
    };
    (
        unassigned,
        phase,
        u8::from(p.ready),
        std::cmp::Reverse(p.created),
    )
}

/// Creates/deletes pods to match `replicas`; returns the status to write and a requeue delay.
pub(crate) async fn sync(
    ctx: &Ctx,
    o: &ReplicaOwner,
) -> Result<(serde_json::Value, Option<Duration>), ReconcileError> {
    let mut pods: Vec<Arc<PodInfo>> = ctx.pods.owned_by(&o.uid);
    pods.retain(|p| p.active());
    let want = if o.terminating {
        0
    } else {
        o.replicas.max(0) as usize
    };
    let mut first_err: Option<ReconcileError> = None;
    if pods.len() < want && !o.terminating {
        let alive =
            super::owner_alive(ctx, o.api_version, o.kind, &o.namespace, &o.name, &o.uid).await?;
        if let Some(template) = o.template.as_ref().filter(|_| alive) {
            let n = (want - pods.len()).min(500);
            let prefix = format!("{}-", o.name);
            let owner = controller_ref(o.api_version, o.kind, &o.name, &o.uid);
            let new_pods = (0..n).map(|_| {
                pod_from_template(
                    template,
                    &o.namespace,
                    generated_name(&prefix),
                    Some(prefix.clone()),
                    owner.clone(),
                    &[],
                )
            });
            let action = format!("creating pod for {} {}", o.kind, o.name);
            create_pods(ctx, &o.namespace, new_pods, &action, &mut first_err).await;
        }
    } else if pods.len() > want {
        pods.sort_by_key(|p| deletion_rank(p));
        let victims: Vec<Arc<PodInfo>> = pods[..pods.len() - want].to_vec();
        delete_pods(ctx, &o.namespace, &victims, &mut first_err).await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    // Status from the (write-through) cache.
    let now = k8s_openapi::jiff::Timestamp::now();
    let owned = ctx.pods.owned_by(&o.uid);
    let active: Vec<&Arc<PodInfo>> = owned.iter().filter(|p| p.active()).collect();
    let template_labels = o
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let fully = active
        .iter()
        .filter(|p| {
            template_labels
                .into_iter()
                .flatten()
                .all(|(k, v)| p.labels.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| p.ready).count();
    let available = active
        .iter()
        .filter(|p| p.available(o.min_ready_seconds, now))
        .count();
    let terminating = owned.iter().filter(|p| p.terminating).count();
    let requeue = (available < ready).then(|| Duration::from_secs(1));
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": o.generation,
    });
    if o.kind == "ReplicaSet" {
        status["terminatingReplicas"] = json!(terminating);
    }
    Ok((status, requeue))
}

/// Deletes pods (bounded concurrency), marking them terminating in the cache.
pub(crate) async fn delete_pods(
    ctx: &Ctx,
    ns: &str,
    victims: &[Arc<PodInfo>],
    first_err: &mut Option<ReconcileError>,
) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let results: Vec<(String, Result<(), kube::Error>)> =
        futures::stream::iter(victims.iter().cloned())
            .map(|p| {
                let api = api.clone();
                async move {
                    let r = api.delete(&p.name, &DeleteParams::default()).await;
                    let r = match r {
                        Ok(_) => Ok(()),
                        Err(e) if crate::kubelet::api_code(&e) == Some(404) => Ok(()),
                        Err(e) => Err(e),
                    };
                    (p.name.clone(), r)
                }
            })
            .buffer_unordered(ctx.opts.burst.max(1))
            .collect()
            .await;
    for (name, r) in results {
        match r {
            Ok(()) => ctx.pods.mark_terminating(&(ns.to_string(), name)),
            Err(e) => {
                if first_err.is_none() {
                    *first_err = Some(api_err(format!("deleting pod {ns}/{name}"))(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info(name: &str, node: Option<&str>, phase: Phase, ready: bool, age_s: i64) -> PodInfo {
        PodInfo {
            name: name.into(),
            uid: name.into(),
            rv: 1,
            owner: None,
            labels: BTreeMap::new(),
            node: node.map(Into::into),
            target_node: None,
            phase,
            ready,
            ready_since: None,
            terminating: false,
            ip: None,
            created: k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 - age_s).ok(),
            named_ports: vec![],
            hostname: None,
            subdomain: None,
        }
    }

    #[test]
    fn deletes_least_valuable_first() {
        let mut pods = [
            info("ready-old", Some("n"), Phase::Running, true, 100),
            info("ready-new", Some("n"), Phase::Running, true, 10),
            info("unscheduled", None, Phase::Pending, false, 50),
            info("pending", Some("n"), Phase::Pending, false, 50),
            info("notready", Some("n"), Phase::Running, false, 50),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "notready",
                "ready-new",
                "ready-old"
            ]
        );
    }
}
