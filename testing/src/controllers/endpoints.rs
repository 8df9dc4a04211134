//! Endpoints controller: for every Service with a selector, the IPs of the matching pods, split
//! into `addresses` (Ready, or all with `publishNotReadyAddresses`) and `notReadyAddresses`,
//! with the service ports resolved against each pod (numeric or named `targetPort`), grouped
//! into subsets by port set. Endpoints of deleted services are removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use super::cache::{Phase, PodInfo};
use super::{Ctx, Key, Reconciled, api_err};

/// One resolved endpoint port `(name, port, protocol)`.
type EpPort = (Option<String>, i32, String);

/// Resolves the service's ports against one pod; `None` when a named port is missing.
pub(crate) fn resolve_ports(svc: &Service, pod: &PodInfo) -> Vec<EpPort> {
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".to_string());
            let port = match &p.target_port {
                None => p.port,
                Some(IntOrString::Int(i)) => *i,
                Some(IntOrString::String(name)) => pod
                    .named_ports
                    .iter()
                    .find(|(n, _, pr)| n == name && *pr == proto)
                    .map(|(_, port, _)| *port)?,
            };
            Some((p.name.clone(), port, proto))
        })
        .collect()
}

/// Computes the subsets of a service from its pods (deterministic order).
pub(crate) fn subsets(svc: &Service, pods: &[Arc<PodInfo>]) -> Vec<Value> {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    // port set → (ready addresses, not-ready addresses)
    let mut groups: BTreeMap<Vec<EpPort>, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let mut sorted: Vec<&Arc<PodInfo>> = pods.iter().collect();
    sorted.sort_by(|a, b| a.ip.cmp(&b.ip).then(a.name.cmp(&b.name)));
    for p in sorted {
        let Some(ip) = &p.ip else { continue };
        if p.terminating || matches!(p.phase, Phase::Succeeded | Phase::Failed) {
            continue;
        }
        let mut addr = json!({
            "ip": ip,
            "targetRef": { "kind": "Pod", "namespace": ns, "name": p.name, "uid": p.uid },
        });
        if let Some(n) = &p.node {
            addr["nodeName"] = json!(n);
        }
        if let (Some(h), Some(sd)) = (&p.hostname, &p.subdomain)
            && *sd == svc_name
        {
            addr["hostname"] = json!(h);
        }
        let entry = groups.entry(resolve_ports(svc, p)).or_default();
        if p.ready || publish_not_ready {
            entry.0.push(addr);
        } else {
            entry.1.push(addr);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| {
            let mut s = json!({});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            if !ports.is_empty() {
                s["ports"] = json!(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| {
                            let mut p = json!({"port": port, "protocol": protocol});
                            if let Some(n) = name {
                                p["name"] = json!(n);
                            }
                            p
                        })
                        .collect::<Vec<_>>()
                );
            }
            s
        })
        .collect()
}

pub(crate) async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Reconciled {
    let (ns, name) = key.clone();
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(svc) = ctx.services.get(&key) else {
        // Service gone: remove its endpoints (they carry no owner reference).
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if matches!(crate::kubelet::api_code(&e), Some(404 | 405)) => {}
            Err(e) => return Err(api_err(format!("deleting endpoints {ns}/{name}"))(e)),
        }
        return Ok(None);
    };
    let Some(selector) = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if svc.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let pods = ctx.pods.in_namespace(&ns, |p| {
        selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
    });
    let subsets = subsets(&svc, &pods);
    let existing = api
        .get_opt(&name)
        .await
        .map_err(api_err(format!("reading endpoints {ns}/{name}")))?;
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    match existing {
        Some(mut ep) => {
            let cur = serde_json::to_value(&ep.subsets).unwrap_or(Value::Null);
            let want = if subsets.is_empty() {
                Value::Null
            } else {
                json!(subsets)
            };
            let cur = if cur == json!([]) { Value::Null } else { cur };
            if cur == want && ep.metadata.labels.clone().unwrap_or_default() == labels {
                return Ok(None);
            }
            ep.subsets = serde_json::from_value(want).unwrap_or_default();
            ep.metadata.labels = Some(labels);
            match api.replace(&name, &PostParams::default(), &ep).await {
                Ok(_) => Ok(None),
                // Stale read: retry soon.
                Err(e) if crate::kubelet::api_code(&e) == Some(409) => {
                    Ok(Some(std::time::Duration::from_millis(50)))
                }
                Err(e) if crate::kubelet::api_code(&e) == Some(404) => {
                    Ok(Some(std::time::Duration::ZERO))
                }
                Err(e) => Err(api_err(format!("updating endpoints {ns}/{name}"))(e)),
            }
        }
        None => {
            let ep: Endpoints = serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": ns, "labels": labels },
                "subsets": subsets,
            }))
            .unwrap_or_default();
            match api.create(&PostParams::default(), &ep).await {
                Ok(_) => Ok(None),
                Err(e) if crate::kubelet::api_code(&e) == Some(409) => {
                    Ok(Some(std::time::Duration::from_millis(50)))
                }
                Err(e) => Err(api_err(format!("creating endpoints {ns}/{name}"))(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, port: Option<i32>) -> Arc<PodInfo> {
        Arc::new(PodInfo {
            name: name.into(),
            uid: format!("uid-{name}"),
            rv: 1,
            owner: None,
            labels: BTreeMap::new(),
            node: Some("n1".into()),
            target_node: None,
            phase: Phase::Running,
            ready,
            ready_since: None,
            terminating: false,
            ip: Some(ip.into()),
            created: None,
            named_ports: port
                .map(|p| vec![("http".into(), p, "TCP".into())])
                .unwrap_or_default(),
            hostname: None,
            subdomain: None,
        })
    }

    #[test]
    fn subsets_split_ready_and_group_ports() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .unwrap();
        let pods = vec![
            pod("b", "10.0.0.2", true, Some(8080)),
            pod("a", "10.0.0.1", false, Some(8080)),
            pod("c", "10.0.0.3", true, Some(9090)),
        ];
        let s = subsets(&svc, &pods);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["ports"][0]["port"], 8080);
        assert_eq!(s[0]["addresses"][0]["ip"], "10.0.0.2");
        assert_eq!(s[0]["notReadyAddresses"][0]["ip"], "10.0.0.1");
        assert_eq!(s[1]["addresses"][0]["targetRef"]["name"], "c");
        let numeric: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}
        }))
        .unwrap();
        assert_eq!(
            resolve_ports(&numeric, &pods[0]),
            vec![(None, 8000, "TCP".to_string())]
        );
    }
}
