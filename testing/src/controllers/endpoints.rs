//! Endpoints controller: for every Service with a selector, the IPs of the matching pods, split
//! into `addresses` (Ready, or all with `publishNotReadyAddresses`) and `notReadyAddresses`,
//! with the service ports resolved against each pod (numeric or named `targetPort`), grouped
//! into subsets by port set. Endpoints of deleted services are removed. The same endpoints are
//! mirrored into EndpointSlices (one per port set, labelled `kubernetes.io/service-name`, owned
//! by the Service) when the server serves `discovery.k8s.io/v1`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
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

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// The EndpointSlice bodies (endpoints + ports, one per port set) of a service.
pub(crate) fn slice_bodies(svc: &Service, pods: &[Arc<PodInfo>]) -> Vec<(Value, Value)> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let mut groups: BTreeMap<Vec<EpPort>, Vec<Value>> = BTreeMap::new();
    let mut sorted: Vec<&Arc<PodInfo>> = pods.iter().collect();
    sorted.sort_by(|a, b| a.ip.cmp(&b.ip).then(a.name.cmp(&b.name)));
    for p in sorted {
        let Some(ip) = &p.ip else { continue };
        if matches!(p.phase, Phase::Succeeded | Phase::Failed) {
            continue;
        }
        let ready = p.ready && !p.terminating;
        let mut ep = json!({
            "addresses": [ip],
            "conditions": { "ready": ready, "serving": p.ready, "terminating": p.terminating },
            "targetRef": { "kind": "Pod", "namespace": ns, "name": p.name, "uid": p.uid },
        });
        if let Some(n) = &p.node {
            ep["nodeName"] = json!(n);
        }
        if let (Some(h), Some(sd)) = (&p.hostname, &p.subdomain)
            && *sd == svc_name
        {
            ep["hostname"] = json!(h);
        }
        groups.entry(resolve_ports(svc, p)).or_default().push(ep);
    }
    groups
        .into_iter()
        .map(|(ports, eps)| {
            let ports: Vec<Value> = ports
                .into_iter()
                .map(|(name, port, protocol)| {
                    json!({"name": name.unwrap_or_default(), "port": port, "protocol": protocol})
                })
                .collect();
            (json!(eps), json!(ports))
        })
        .collect()
}

/// Mirrors the service's endpoints into EndpointSlices (best effort when the server does
/// not serve them).
async fn sync_slices(
    ctx: &Ctx,
    svc: &Service,
    ns: &str,
    name: &str,
    pods: &[Arc<PodInfo>],
) -> Result<(), super::ReconcileError> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let lp = ListParams::default().labels(&format!(
        "{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}"
    ));
    let mut existing = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) if matches!(crate::kubelet::api_code(&e), Some(404 | 405)) => return Ok(()),
        Err(e) => return Err(api_err(format!("listing endpointslices of {ns}/{name}"))(e)),
    };
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut bodies = slice_bodies(svc, pods);
    if bodies.is_empty() {
        bodies.push((json!([]), json!([])));
    }
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.to_string(), name.to_string());
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
    let owner = super::controller_ref(
        "v1",
        "Service",
        name,
        svc.metadata.uid.as_deref().unwrap_or(""),
    );
    for (i, (eps, ports)) in bodies.into_iter().enumerate() {
        match existing.get(i) {
            Some(cur) => {
                let same = serde_json::to_value(&cur.endpoints).unwrap_or_default() == eps
                    && serde_json::to_value(&cur.ports).unwrap_or_default() == ports;
                if same {
                    continue;
                }
                let mut next = cur.clone();
                next.endpoints = serde_json::from_value(eps).unwrap_or_default();
                next.ports = serde_json::from_value(ports).unwrap_or_default();
                match api
                    .replace(
                        cur.metadata.name.as_deref().unwrap_or(""),
                        &PostParams::default(),
                        &next,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if matches!(crate::kubelet::api_code(&e), Some(404 | 409)) => {}
                    Err(e) => {
                        return Err(api_err(format!("updating endpointslice of {ns}/{name}"))(e));
                    }
                }
            }
            None => {
                let body: Result<EndpointSlice, _> = serde_json::from_value(json!({
                    "metadata": {
                        "name": super::generated_name(&format!("{name}-")),
                        "generateName": format!("{name}-"),
                        "namespace": ns, "labels": labels, "ownerReferences": [owner],
                    },
                    "addressType": "IPv4",
                    "endpoints": eps,
                    "ports": ports,
                }));
                let Ok(body) = body else { continue };
                if let Err(e) = api.create(&PostParams::default(), &body).await
                    && !matches!(crate::kubelet::api_code(&e), Some(409))
                {
                    return Err(api_err(format!("creating endpointslice of {ns}/{name}"))(e));
                }
            }
        }
    }
    let wanted = slice_bodies(svc, pods).len().max(1);
    for extra in existing.iter().skip(wanted) {
        if let Some(n) = extra.metadata.name.as_deref()
            && let Err(e) = api.delete(n, &DeleteParams::default()).await
            && crate::kubelet::api_code(&e) != Some(404)
        {
            return Err(api_err(format!("deleting endpointslice {ns}/{n}"))(e));
        }
    }
    Ok(())
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
    sync_slices(&ctx, &svc, &ns, &name, &pods).await?;
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

    #[test]
    fn slices_carry_conditions_and_ports() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .unwrap();
        let pods = vec![
            pod("a", "10.0.0.1", true, Some(8080)),
            pod("b", "10.0.0.2", false, Some(8080)),
        ];
        let bodies = slice_bodies(&svc, &pods);
        assert_eq!(bodies.len(), 1);
        let (eps, ports) = &bodies[0];
        assert_eq!(eps[0]["addresses"][0], "10.0.0.1");
        assert_eq!(eps[0]["conditions"]["ready"], true);
        assert_eq!(eps[1]["conditions"]["ready"], false);
        assert_eq!(ports[0]["port"], 8080);
        assert_eq!(ports[0]["name"], "http");
    }
}
