//! `meta.k8s.io/v1` Table responses (what `kubectl get` asks for), with the columns a real
//! API server prints for each built-in resource.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// What `rows[].object` carries (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The full object.
    Object,
}

/// kubectl-style short human duration.
pub fn human_duration(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age_of(ts: Option<&str>) -> String {
    let Some(ts) = ts else {
        return "<unknown>".into();
    };
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()),
        Err(_) => "<unknown>".into(),
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(x: String) -> String {
    if x.is_empty() { "<none>".into() } else { x }
}

/// A column definition; rendered to JSON once per table, not once per row.
#[derive(Clone, Copy)]
struct Col {
    name: &'static str,
    ty: &'static str,
    priority: i64,
}

impl Col {
    fn to_json(self) -> Value {
        let format = if self.name == "Name" { "name" } else { "" };
        json!({"name": self.name, "type": self.ty, "format": format, "description": "", "priority": self.priority})
    }
}

fn col(name: &'static str, ty: &'static str, priority: i64) -> Col {
    Col { name, ty, priority }
}

/// `k=v` pairs of a label map, comma-separated (how selectors and node selectors print).
pub(crate) fn labels_string(m: &serde_json::Map<String, Value>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

fn selector_string(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::Object(m))
            if m.contains_key("matchLabels") || m.contains_key("matchExpressions") =>
        {
            let mut parts: Vec<String> = m
                .get("matchLabels")
                .and_then(Value::as_object)
                .map(labels_string)
                .into_iter()
                .filter(|l| !l.is_empty())
                .collect();
            for e in m
                .get("matchExpressions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let vals: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let k = s(e, "/key");
                match s(e, "/operator") {
                    "In" => parts.push(format!("{k} in ({})", vals.join(","))),
                    "NotIn" => parts.push(format!("{k} notin ({})", vals.join(","))),
                    "Exists" => parts.push(k.to_string()),
                    "DoesNotExist" => parts.push(format!("!{k}")),
                    _ => {}
                }
            }
            parts.join(",")
        }
        Some(Value::Object(m)) => labels_string(m),
        _ => String::new(),
    }
}

fn containers_images(v: &Value, ptr: &str) -> (String, String) {
    let cs = v
        .pointer(ptr)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn pod_status(v: &Value) -> String {
    if v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
    {
        return "Terminating".into();
    }
    let mut reason = s(v, "/status/reason").to_string();
    if reason.is_empty() {
        reason = s(v, "/status/phase").to_string();
    }
    for c in v
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = s(c, "/state/waiting/reason");
        let t = s(c, "/state/terminated/reason");
        if !w.is_empty() {
            reason = w.to_string();
        } else if !t.is_empty() && reason != "Running" {
            reason = t.to_string();
        }
    }
    if reason == "Pending"
        && !s(v, "/spec/nodeName").is_empty()
        && v.pointer("/status/containerStatuses").is_none()
    {
        reason = "ContainerCreating".into();
    }
    reason
}

fn node_status(v: &Value) -> String {
    let mut st = "Unknown".to_string();
    for c in v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(c, "/type") == "Ready" {
            st = match s(c, "/status") {
                "True" => "Ready".into(),
                "False" => "NotReady".into(),
                _ => "Unknown".into(),
            };
        }
    }
    if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        st.push_str(",SchedulingDisabled");
    }
    st
}

fn node_roles(v: &Value) -> String {
    let mut roles: Vec<String> = v
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, val)| {
                    if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(r.to_string())
                    } else if k == "kubernetes.io/role" {
                        val.as_str().map(str::to_string)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    or_none(roles.join(","))
}

fn node_ip(v: &Value, ty: &str) -> String {
    v.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| s(x, "/type") == ty))
        .map(|x| s(x, "/address").to_string())
        .unwrap_or_default()
}

fn service_ports(v: &Value) -> String {
    let ports: Vec<String> = v
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let np = i(p, "/nodePort");
            let proto = s(p, "/protocol");
            let proto = if proto.is_empty() { "TCP" } else { proto };
            if np > 0 {
                format!("{}:{np}/{proto}", i(p, "/port"))
            } else {
                format!("{}/{proto}", i(p, "/port"))
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn data_count(v: &Value) -> i64 {
    let n = |k: &str| {
        v.get(k)
            .and_then(Value::as_object)
            .map(|m| m.len() as i64)
            .unwrap_or(0)
    };
    n("data") + n("binaryData") + n("stringData")
}

fn columns_and_cells(def: &ResourceDef, v: &Value) -> (Vec<Col>, Vec<Value>) {
    let name = s(v, "/metadata/name").to_string();
    let age = age_of(
        v.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str),
    );
    match (def.group, def.kind) {
        ("", "Pod") => {
            let total = v
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            let statuses = v
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses.iter().map(|c| i(c, "/restartCount")).sum();
            let gates = v
                .pointer("/spec/readinessGates")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            (
                vec![
                    col("Name", "string", 0),
                    col("Ready", "string", 0),
                    col("Status", "string", 0),
                    col("Restarts", "string", 0),
                    col("Age", "string", 0),
                    col("IP", "string", 1),
                    col("Node", "string", 1),
                    col("Nominated Node", "string", 1),
                    col("Readiness Gates", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(v)),
                    json!(restarts.to_string()),
                    json!(age),
                    json!(or_none(s(v, "/status/podIP").into())),
                    json!(or_none(s(v, "/spec/nodeName").into())),
                    json!(or_none(s(v, "/status/nominatedNodeName").into())),
                    json!(if gates == 0 {
                        "<none>".to_string()
                    } else {
                        format!("0/{gates}")
                    }),
                ],
            )
        }
        ("", "Node") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Roles", "string", 0),
                col("Age", "string", 0),
                col("Version", "string", 0),
                col("Internal-IP", "string", 1),
                col("External-IP", "string", 1),
                col("OS-Image", "string", 1),
                col("Kernel-Version", "string", 1),
                col("Container-Runtime", "string", 1),
            ],
            vec![
                json!(name),
                json!(node_status(v)),
                json!(node_roles(v)),
                json!(age),
                json!(s(v, "/status/nodeInfo/kubeletVersion")),
                json!(or_none(node_ip(v, "InternalIP"))),
                json!(or_none(node_ip(v, "ExternalIP"))),
                json!(s(v, "/status/nodeInfo/osImage")),
                json!(s(v, "/status/nodeInfo/kernelVersion")),
                json!(s(v, "/status/nodeInfo/containerRuntimeVersion")),
            ],
        ),
        ("", "Namespace") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Age", "string", 0),
            ],
            vec![json!(name), json!(s(v, "/status/phase")), json!(age)],
        ),
        ("apps", "Deployment") => {
            let (c, im) = containers_images(v, "/spec/template/spec/containers");
            (
                vec![
                    col("Name", "string", 0),
                    col("Ready", "string", 0),
                    col("Up-to-date", "string", 0),
                    col("Available", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(format!(
                        "{}/{}",
                        i(v, "/status/readyReplicas"),
                        i(v, "/spec/replicas")
                    )),
                    json!(i(v, "/status/updatedReplicas")),
                    json!(i(v, "/status/availableReplicas")),
                    json!(age),
                    json!(c),
                    json!(im),
                    json!(selector_string(v, "/spec/selector")),
                ],
            )
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            let (c, im) = containers_images(v, "/spec/template/spec/containers");
            (
                vec![
                    col("Name", "string", 0),
                    col("Desired", "integer", 0),
                    col("Current", "integer", 0),
                    col("Ready", "integer", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(i(v, "/spec/replicas")),
                    json!(i(v, "/status/replicas")),
                    json!(i(v, "/status/readyReplicas")),
                    json!(age),
                    json!(c),
                    json!(im),
                    json!(selector_string(v, "/spec/selector")),
                ],
            )
        }
        ("apps", "StatefulSet") => {
            let (c, im) = containers_images(v, "/spec/template/spec/containers");
            (
                vec![
                    col("Name", "string", 0),
                    col("Ready", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(format!(
                        "{}/{}",
                        i(v, "/status/readyReplicas"),
                        i(v, "/spec/replicas")
                    )),
                    json!(age),
                    json!(c),
                    json!(im),
                ],
            )
        }
        ("apps", "DaemonSet") => {
            let (c, im) = containers_images(v, "/spec/template/spec/containers");
            let ns = v
                .pointer("/spec/template/spec/nodeSelector")
                .and_then(Value::as_object)
                .map(labels_string)
                .unwrap_or_default();
            (
                vec![
                    col("Name", "string", 0),
                    col("Desired", "integer", 0),
                    col("Current", "integer", 0),
                    col("Ready", "integer", 0),
                    col("Up-to-date", "integer", 0),
                    col("Available", "integer", 0),
                    col("Node Selector", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(i(v, "/status/desiredNumberScheduled")),
                    json!(i(v, "/status/currentNumberScheduled")),
                    json!(i(v, "/status/numberReady")),
                    json!(i(v, "/status/updatedNumberScheduled")),
                    json!(i(v, "/status/numberAvailable")),
                    json!(or_none(ns)),
                    json!(age),
                    json!(c),
                    json!(im),
                    json!(selector_string(v, "/spec/selector")),
                ],
            )
        }
        ("batch", "Job") => {
            let (c, im) = containers_images(v, "/spec/template/spec/containers");
            let conds = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let has = |t: &str| {
                conds
                    .iter()
                    .any(|c| s(c, "/type") == t && s(c, "/status") == "True")
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("Suspended") {
                "Suspended"
            } else {
                "Running"
            };
            let dur = match (
                v.pointer("/status/startTime").and_then(Value::as_str),
                v.pointer("/status/completionTime").and_then(Value::as_str),
            ) {
                (Some(a), Some(b)) => match (
                    chrono::DateTime::parse_from_rfc3339(a),
                    chrono::DateTime::parse_from_rfc3339(b),
                ) {
                    (Ok(a), Ok(b)) => human_duration((b - a).num_seconds()),
                    _ => String::new(),
                },
                (Some(a), None) => age_of(Some(a)),
                _ => String::new(),
            };
            (
                vec![
                    col("Name", "string", 0),
                    col("Status", "string", 0),
                    col("Completions", "string", 0),
                    col("Duration", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(status),
                    json!(format!(
                        "{}/{}",
                        i(v, "/status/succeeded"),
                        i(v, "/spec/completions")
                    )),
                    json!(dur),
                    json!(age),
                    json!(c),
                    json!(im),
                    json!(selector_string(v, "/spec/selector")),
                ],
            )
        }
        ("", "Service") => {
            let sel = v
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(labels_string)
                .unwrap_or_default();
            let ext = v
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (
                vec![
                    col("Name", "string", 0),
                    col("Type", "string", 0),
                    col("Cluster-IP", "string", 0),
                    col("External-IP", "string", 0),
                    col("Port(s)", "string", 0),
                    col("Age", "string", 0),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(name),
                    json!(s(v, "/spec/type")),
                    json!(or_none(s(v, "/spec/clusterIP").into())),
                    json!(or_none(ext)),
                    json!(service_ports(v)),
                    json!(age),
                    json!(or_none(sel)),
                ],
            )
        }
        ("", "Event") => {
            let last = v
                .pointer("/lastTimestamp")
                .and_then(Value::as_str)
                .or_else(|| v.pointer("/eventTime").and_then(Value::as_str))
                .or_else(|| {
                    v.pointer("/metadata/creationTimestamp")
                        .and_then(Value::as_str)
                });
            let first = v
                .pointer("/firstTimestamp")
                .and_then(Value::as_str)
                .or(last);
            let obj = format!(
                "{}/{}",
                s(v, "/involvedObject/kind").to_lowercase(),
                s(v, "/involvedObject/name")
            );
            let mut source = s(v, "/source/component").to_string();
            if source.is_empty() {
                source = s(v, "/reportingComponent").to_string();
            }
            let host = s(v, "/source/host");
            if !host.is_empty() {
                source = format!("{source}, {host}");
            }
            let count = i(v, "/count").max(1);
            (
                vec![
                    col("Last Seen", "string", 0),
                    col("Type", "string", 0),
                    col("Reason", "string", 0),
                    col("Object", "string", 0),
                    col("Subobject", "string", 1),
                    col("Source", "string", 1),
                    col("Message", "string", 0),
                    col("First Seen", "string", 1),
                    col("Count", "string", 1),
                    col("Name", "string", 1),
                ],
                vec![
                    json!(age_of(last)),
                    json!(s(v, "/type")),
                    json!(s(v, "/reason")),
                    json!(obj),
                    json!(s(v, "/involvedObject/fieldPath")),
                    json!(source),
                    json!(s(v, "/message")),
                    json!(age_of(first)),
                    json!(count.to_string()),
                    json!(name),
                ],
            )
        }
        ("events.k8s.io", "Event") => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
                col("Name", "string", 1),
            ],
            vec![
                json!(age),
                json!(s(v, "/type")),
                json!(s(v, "/reason")),
                json!(format!(
                    "{}/{}",
                    s(v, "/regarding/kind").to_lowercase(),
                    s(v, "/regarding/name")
                )),
                json!(s(v, "/note")),
                json!(name),
            ],
        ),
        ("coordination.k8s.io", "Lease") => (
            vec![
                col("Name", "string", 0),
                col("Holder", "string", 0),
                col("Age", "string", 0),
            ],
            vec![json!(name), json!(s(v, "/spec/holderIdentity")), json!(age)],
        ),
        ("", "ConfigMap") => (
            vec![
                col("Name", "string", 0),
                col("Data", "string", 0),
                col("Age", "string", 0),
            ],
            vec![json!(name), json!(data_count(v).to_string()), json!(age)],
        ),
        ("", "Secret") => (
            vec![
                col("Name", "string", 0),
                col("Type", "string", 0),
                col("Data", "string", 0),
                col("Age", "string", 0),
            ],
            vec![
                json!(name),
                json!(s(v, "/type")),
                json!(data_count(v).to_string()),
                json!(age),
            ],
        ),
        ("", "ServiceAccount") => (
            vec![
                col("Name", "string", 0),
                col("Secrets", "string", 0),
                col("Age", "string", 0),
            ],
            vec![
                json!(name),
                json!(
                    v.get("secrets")
                        .and_then(Value::as_array)
                        .map(Vec::len)
                        .unwrap_or(0)
                        .to_string()
                ),
                json!(age),
            ],
        ),
        ("", "Endpoints") => {
            let mut eps = Vec::new();
            for sub in v
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<i64> = sub
                    .get("ports")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(|p| i(p, "/port")).collect())
                    .unwrap_or_default();
                for a in sub
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let ip = s(a, "/ip");
                    if ports.is_empty() {
                        eps.push(ip.to_string());
                    }
                    for p in &ports {
                        eps.push(format!("{ip}:{p}"));
                    }
                }
            }
            let shown = if eps.len() > 3 {
                format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
            } else {
                eps.join(",")
            };
            (
                vec![
                    col("Name", "string", 0),
                    col("Endpoints", "string", 0),
                    col("Age", "string", 0),
                ],
                vec![json!(name), json!(or_none(shown)), json!(age)],
            )
        }
        ("scheduling.k8s.io", "PriorityClass") => (
            vec![
                col("Name", "string", 0),
                col("Value", "integer", 0),
                col("Global-Default", "boolean", 0),
                col("Age", "string", 0),
                col("PreemptionPolicy", "string", 0),
            ],
            vec![
                json!(name),
                json!(i(v, "/value")),
                json!(
                    v.get("globalDefault")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                ),
                json!(age),
                json!(s(v, "/preemptionPolicy")),
            ],
        ),
        ("", "PersistentVolumeClaim") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Volume", "string", 0),
                col("Capacity", "string", 0),
                col("Access Modes", "string", 0),
                col("StorageClass", "string", 0),
                col("VolumeAttributesClass", "string", 0),
                col("Age", "string", 0),
                col("VolumeMode", "string", 1),
            ],
            vec![
                json!(name),
                json!(s(v, "/status/phase")),
                json!(s(v, "/spec/volumeName")),
                json!(s(v, "/status/capacity/storage")),
                json!("RWO"),
                json!(s(v, "/spec/storageClassName")),
                json!("<unset>"),
                json!(age),
                json!(s(v, "/spec/volumeMode")),
            ],
        ),
        _ => (
            vec![col("Name", "string", 0), col("Age", "string", 0)],
            vec![json!(name), json!(age)],
        ),
    }
}

/// Builds a Table for `items` of resource `def` (taking them, so rows can own the objects).
pub fn to_table(
    def: &ResourceDef,
    items: Vec<Value>,
    include: Include,
    rv: u64,
    cont: Option<&str>,
) -> Value {
    let mut columns = None;
    let mut rows = Vec::with_capacity(items.len());
    for mut v in items {
        let (cols, cells) = columns_and_cells(def, &v);
        if columns.is_none() {
            columns = Some(cols);
        }
        let mut row = json!({"cells": cells});
        match include {
            Include::None => {}
            Include::Object => row["object"] = v,
            Include::Metadata => {
                let metadata = v.get_mut("metadata").map(Value::take).unwrap_or(json!({}));
                row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
            }
        }
        rows.push(row);
    }
    let columns: Vec<Value> = columns
        .unwrap_or_else(|| columns_and_cells(def, &json!({})).0)
        .into_iter()
        .map(Col::to_json)
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{RESOURCES, idx};

    #[test]
    fn pod_table_has_real_columns() {
        let pod = json!({"metadata":{"name":"p","creationTimestamp":"2020-01-01T00:00:00Z"},"spec":{"nodeName":"n1","containers":[{"name":"c"}]},"status":{"phase":"Running","podIP":"10.0.0.1","containerStatuses":[{"ready":true,"restartCount":0,"state":{"running":{}}}]}});
        let t = to_table(
            &RESOURCES[idx("", "pods")],
            vec![pod],
            Include::Metadata,
            5,
            None,
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(t["rows"][0]["cells"][1], "1/1");
        assert_eq!(t["rows"][0]["cells"][2], "Running");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 3 + 60), "3h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }
}
