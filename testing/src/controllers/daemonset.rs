//! DaemonSet controller: one pod per eligible node. A node is eligible when the template's
//! nodeSelector and required node affinity match it and its NoSchedule/NoExecute taints are
//! tolerated (the template plus the tolerations every daemon pod gets: not-ready/unreachable
//! NoExecute, pressure and unschedulable NoSchedule). Pods are pinned to their node with a
//! required node affinity on `metadata.name` and placed by the scheduler, like the real
//! controller does. Outdated pods are replaced one at a time (RollingUpdate, maxUnavailable 1
//! by default).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Toleration,
};
use kube::api::Api;
use serde_json::json;

use super::cache::PodInfo;
use super::replicaset::delete_pods;
use super::{
    Ctx, Key, Reconciled, controller_ref, create_pods, generated_name, pod_from_template,
    template_hash, write_status,
};
use crate::scheduler::{term_matches, tolerates};

const REVISION_LABEL: &str = "controller-revision-hash";

/// Tolerations the daemon set controller adds to every daemon pod.
pub(crate) fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Default::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

/// Whether a daemon pod built from `template` should run on `node`.
pub(crate) fn should_run(template: &PodTemplateSpec, node: &Node) -> bool {
    let Some(name) = node.metadata.name.as_deref() else {
        return false;
    };
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let spec = template.spec.as_ref();
    if let Some(sel) = spec.and_then(|s| s.node_selector.as_ref())
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    if let Some(terms) = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        && !terms
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, name, labels))
    {
        return false;
    }
    let mut tols = spec.and_then(|s| s.tolerations.clone()).unwrap_or_default();
    tols.extend(daemon_tolerations());
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect != "PreferNoSchedule")
        .all(|t| {
            tols.iter()
                .any(|tol| tolerates(tol, &t.key, t.value.as_deref().unwrap_or(""), &t.effect))
        })
}

/// Pins a daemon pod to `node` via required node affinity on `metadata.name`.
fn pin_to_node(pod: &mut Pod, node: &str) {
    let field = NodeSelectorRequirement {
        key: "metadata.name".to_string(),
        operator: "In".to_string(),
        values: Some(vec![node.to_string()]),
    };
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let aff = spec.affinity.get_or_insert_with(Affinity::default);
    let na = aff.node_affinity.get_or_insert_with(NodeAffinity::default);
    let req = na
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(|| NodeSelector {
            node_selector_terms: vec![],
        });
    if req.node_selector_terms.is_empty() {
        req.node_selector_terms.push(NodeSelectorTerm::default());
    }
    for t in req.node_selector_terms.iter_mut() {
        t.match_fields = Some(vec![field.clone()]);
    }
    let tols = spec.tolerations.get_or_insert_with(Vec::new);
    for t in daemon_tolerations() {
        if !tols.contains(&t) {
            tols.push(t);
        }
    }
}

pub(crate) async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let Some(ds) = ctx.daemonsets.get(&key) else {
        return Ok(None);
    };
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(None);
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let (ns, name) = key.clone();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let revision = template_hash(
        &spec.template,
        ds.status.as_ref().and_then(|s| s.collision_count),
    );
    let generation = ds.metadata.generation.unwrap_or(0);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let now = k8s_openapi::jiff::Timestamp::now();

    let mut by_node: HashMap<String, Vec<Arc<PodInfo>>> = HashMap::new();
    for p in ctx.pods.owned_by(&uid) {
        if !p.active() {
            continue;
        }
        if let Some(n) = p.node.clone().or_else(|| p.target_node.clone()) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let nodes = ctx.nodes.list();
    let mut to_create = Vec::new();
    let mut to_delete: Vec<Arc<PodInfo>> = Vec::new();
    let mut desired = 0usize;
    let mut eligible = std::collections::HashSet::new();
    for node in &nodes {
        let Some(nname) = node.metadata.name.clone() else {
            continue;
        };
        let run = should_run(&spec.template, node);
        let pods = by_node.get(&nname);
        if run {
            desired += 1;
            eligible.insert(nname.clone());
            match pods {
                None => to_create.push(nname),
                Some(ps) if ps.len() > 1 => to_delete.extend(ps[1..].iter().cloned()),
                _ => {}
            }
        } else if let Some(ps) = pods {
            to_delete.extend(ps.iter().cloned());
        }
    }
    // Pods on nodes that no longer exist.
    for (n, ps) in &by_node {
        if !nodes
            .iter()
            .any(|x| x.metadata.name.as_deref() == Some(n.as_str()))
        {
            to_delete.extend(ps.iter().cloned());
        }
    }
    // Rolling update: replace outdated pods while few enough are unavailable.
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    if rolling {
        let max_unavailable = super::deployment::resolve_int_or_percent(
            spec.update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref()),
            desired as i32,
            0,
            false,
        )
        .max(1) as usize;
        let unavailable = eligible
            .iter()
            .filter(|n| {
                by_node
                    .get(*n)
                    .is_none_or(|ps| !ps.iter().any(|p| p.available(min_ready, now)))
            })
            .count();
        let budget = max_unavailable.saturating_sub(unavailable);
        let outdated: Vec<Arc<PodInfo>> = eligible
            .iter()
            .filter_map(|n| by_node.get(n).and_then(|ps| ps.first()))
            .filter(|p| p.labels.get(REVISION_LABEL) != Some(&revision))
            .take(budget)
            .cloned()
            .collect();
        to_delete.extend(outdated);
    }

    let mut first_err = None;
    let owner = controller_ref("apps/v1", "DaemonSet", &name, &uid);
    let prefix = format!("{name}-");
    if !to_create.is_empty()
        && !super::owner_alive(&ctx, "apps/v1", "DaemonSet", &ns, &name, &uid).await?
    {
        return Ok(None);
    }
    let pods = to_create.into_iter().map(|node| {
        let mut pod = pod_from_template(
            &spec.template,
            &ns,
            generated_name(&prefix),
            Some(prefix.clone()),
            owner.clone(),
            &[
                (REVISION_LABEL, revision.clone()),
                ("pod-template-generation", generation.to_string()),
            ],
        );
        pin_to_node(&mut pod, &node);
        pod
    });
    let action = format!("creating daemon pod for {ns}/{name}");
    create_pods(&ctx, &ns, pods, &action, &mut first_err).await;
    if !to_delete.is_empty() {
        delete_pods(&ctx, &ns, &to_delete, &mut first_err).await;
    }
    if let Some(e) = first_err {
        return Err(e);
    }

    // Status.
    let mut current = 0;
    let mut misscheduled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut updated = 0;
    let mut by_node: HashMap<String, Vec<Arc<PodInfo>>> = HashMap::new();
    for p in ctx.pods.owned_by(&uid) {
        if !p.active() {
            continue;
        }
        if let Some(n) = p.node.clone().or_else(|| p.target_node.clone()) {
            by_node.entry(n).or_default().push(p);
        }
    }
    for (n, ps) in &by_node {
        if eligible.contains(n) {
            current += 1;
            if ps.iter().any(|p| p.ready) {
                ready += 1;
            }
            if ps.iter().any(|p| p.available(min_ready, now)) {
                available += 1;
            }
            if ps
                .iter()
                .any(|p| p.labels.get(REVISION_LABEL) == Some(&revision))
            {
                updated += 1;
            }
        } else {
            misscheduled += 1;
        }
    }
    let status = json!({
        "observedGeneration": generation,
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired.saturating_sub(available),
    });
    let old = serde_json::to_value(&ds.status).unwrap_or_default();
    let dapi: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&dapi, &name, status, &old, || {
        format!("updating daemonset status {ns}/{name}")
    })
    .await?;
    Ok((ready > available).then(|| std::time::Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(taints: serde_json::Value, unschedulable: bool) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"disk": "ssd"}},
            "spec": {"taints": taints, "unschedulable": unschedulable}
        }))
        .unwrap()
    }

    #[test]
    fn eligibility_follows_daemon_rules() {
        let plain: PodTemplateSpec =
            serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        assert!(should_run(&plain, &node(json!([]), false)));
        // Cordoned nodes still run daemons.
        assert!(should_run(&plain, &node(json!([]), true)));
        assert!(should_run(
            &plain,
            &node(
                json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
                false
            )
        ));
        assert!(!should_run(
            &plain,
            &node(json!([{"key": "gpu", "effect": "NoSchedule"}]), false)
        ));
        assert!(should_run(
            &plain,
            &node(json!([{"key": "gpu", "effect": "PreferNoSchedule"}]), false)
        ));
        let sel: PodTemplateSpec = serde_json::from_value(
            json!({"spec": {"containers": [], "nodeSelector": {"disk": "hdd"}}}),
        )
        .unwrap();
        assert!(!should_run(&sel, &node(json!([]), false)));
    }

    #[test]
    fn pinning_sets_match_fields_and_tolerations() {
        let mut pod: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        pin_to_node(&mut pod, "n9");
        let spec = pod.spec.unwrap();
        let terms = spec
            .affinity
            .unwrap()
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms.len(), 1);
        assert_eq!(
            terms[0].match_fields.as_ref().unwrap()[0]
                .values
                .as_ref()
                .unwrap()[0],
            "n9"
        );
        assert_eq!(spec.tolerations.unwrap().len(), 6);
    }
}
