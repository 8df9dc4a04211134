//! Defaulting and validation applied to objects before they are stored, mirroring what the
//! real API server's defaulters, admission plugins and validation do for the fields clients
//! and `kubectl get -o yaml` notice.

use serde_json::{Map, Value, json};

use crate::resources::{NameRule, RESOURCES, ResourceDef};
use crate::selectors::valid_label_value;

/// One failed validation (becomes a `details.causes` entry of a 422 Invalid Status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// Field path.
    pub field: String,
    /// Human message.
    pub message: String,
}

impl Cause {
    fn required(field: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }

    fn invalid(field: &str, value: &str, msg: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: \"{value}\": {msg}"),
        }
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || c == '-')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// RFC 1123 subdomain.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn valid_name(rule: NameRule, name: &str) -> Option<&'static str> {
    match rule {
        NameRule::Subdomain if !is_dns_subdomain(name) => Some(SUBDOMAIN_MSG),
        NameRule::Label if !is_dns_label(name) => Some(LABEL_MSG),
        NameRule::PathSegment
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '%']) =>
        {
            Some("may not contain '/' or '%' and may not be '.' or '..'")
        }
        _ => None,
    }
}

/// Validates an object about to be created or updated.
pub fn validate(def: &ResourceDef, v: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = v.get("metadata").cloned().unwrap_or(Value::Null);
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        if generate.is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            });
        } else {
            let probe = format!("{generate}a");
            if let Some(msg) = valid_name(def.name_rule, &probe) {
                causes.push(Cause::invalid("metadata.generateName", generate, msg));
            }
        }
    } else if let Some(msg) = valid_name(def.name_rule, name) {
        causes.push(Cause::invalid("metadata.name", name, msg));
    }
    if let Some(labels) = meta.get("labels") {
        match labels.as_object() {
            Some(m) => {
                for (k, val) in m {
                    let ok = val.as_str().is_some_and(valid_label_value);
                    if !ok {
                        causes.push(Cause::invalid(
                            &format!("metadata.labels.{k}"),
                            &val.to_string(),
                            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                        ));
                    }
                }
            }
            None if !labels.is_null() => {
                causes.push(Cause::invalid("metadata.labels", "", "must be a map"))
            }
            None => {}
        }
    }
    match (def.group, def.kind) {
        ("", "Pod") => validate_pod_spec(v.get("spec"), "spec", &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
            let spec = v.get("spec");
            if def.kind != "Job" && spec.and_then(|s| s.get("selector")).is_none() {
                causes.push(Cause::required("spec.selector"));
            }
            validate_template(spec, &mut causes);
            if let (Some(sel), Some(labels)) = (
                spec.and_then(|s| s.get("selector"))
                    .and_then(|s| s.get("matchLabels"))
                    .and_then(Value::as_object),
                spec.and_then(|s| s.pointer("/template/metadata/labels"))
                    .and_then(Value::as_object),
            ) && sel.iter().any(|(k, val)| labels.get(k) != Some(val))
            {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &Value::Object(labels.clone()).to_string(),
                    "`selector` does not match template `labels`",
                ));
            }
            if def.kind == "Job"
                && let Some(rp) = spec
                    .and_then(|s| s.pointer("/template/spec/restartPolicy"))
                    .and_then(Value::as_str)
                && rp != "Never"
                && rp != "OnFailure"
            {
                causes.push(Cause {
                    reason: "FieldValueNotSupported",
                    field: "spec.template.spec.restartPolicy".into(),
                    message: format!(
                        "Unsupported value: \"{rp}\": supported values: \"OnFailure\", \"Never\""
                    ),
                });
            }
        }
        ("", "ReplicationController") => validate_template(v.get("spec"), &mut causes),
        ("", "Service") => {
            if let Some(ports) = v.pointer("/spec/ports").and_then(Value::as_array) {
                for (i, p) in ports.iter().enumerate() {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if !(1..=65535).contains(&port) {
                        causes.push(Cause::invalid(
                            &format!("spec.ports[{i}].port"),
                            &port.to_string(),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    causes
}

fn validate_template(spec: Option<&Value>, causes: &mut Vec<Cause>) {
    match spec.and_then(|s| s.get("template")) {
        None => causes.push(Cause::required("spec.template")),
        Some(t) => validate_pod_spec(t.get("spec"), "spec.template.spec", causes),
    }
}

fn validate_pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(&format!("{path}.containers"))),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(&format!("{path}.containers"))),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::required(&format!("{path}.containers[{i}].name")));
                } else if !is_dns_label(name) {
                    causes.push(Cause::invalid(
                        &format!("{path}.containers[{i}].name"),
                        name,
                        LABEL_MSG,
                    ));
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(&format!("{path}.containers[{i}].image")));
                }
            }
        }
    }
}

fn obj(v: &mut Value) -> Option<&mut Map<String, Value>> {
    v.as_object_mut()
}

fn ensure<'a>(m: &'a mut Map<String, Value>, k: &str, default: Value) -> &'a mut Value {
    let empty = m.get(k).is_some_and(|v| {
        v.is_null()
            || v.as_object().is_some_and(|o| o.is_empty())
                && default.as_object().is_some_and(|d| !d.is_empty())
    });
    if empty {
        m.insert(k.to_string(), default.clone());
    }
    m.entry(k.to_string()).or_insert(default)
}

fn default_containers(spec: &mut Map<String, Value>, key: &str) {
    if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
        for c in cs.iter_mut() {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let last = image.rsplit('/').next().unwrap_or("");
            let policy = if !last.contains(':') || last.ends_with(":latest") {
                "Always"
            } else {
                "IfNotPresent"
            };
            ensure(c, "imagePullPolicy", json!(policy));
            ensure(c, "terminationMessagePath", json!("/dev/termination-log"));
            ensure(c, "terminationMessagePolicy", json!("File"));
            let res = ensure(c, "resources", json!({}));
            if let Some(r) = res.as_object_mut()
                && let Some(limits) = r
                    .get("limits")
                    .cloned()
                    .and_then(|l| l.as_object().cloned())
            {
                let req = r.entry("requests").or_insert_with(|| json!({}));
                if let Some(req) = req.as_object_mut() {
                    for (k, v) in limits {
                        req.entry(k).or_insert(v);
                    }
                }
            }
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    ensure(p, "protocol", json!("TCP"));
                }
            }
        }
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    ensure(spec, "restartPolicy", json!("Always"));
    ensure(spec, "terminationGracePeriodSeconds", json!(30));
    ensure(spec, "dnsPolicy", json!("ClusterFirst"));
    ensure(spec, "securityContext", json!({}));
    ensure(spec, "schedulerName", json!("default-scheduler"));
    default_containers(spec, "containers");
    default_containers(spec, "initContainers");
}

fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(r));
            let q = req.and_then(|q| q.get(r));
            if l.is_none() || (q.is_some() && q != l) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Context the defaulters need from the store.
pub trait DefaultsContext {
    /// Value of a PriorityClass, if it exists.
    fn priority_class_value(&self, name: &str) -> Option<i64>;
    /// Allocates a service cluster IP.
    fn allocate_cluster_ip(&self) -> String;
}

/// A defaulting failure (e.g. unknown priority class → 403 Forbidden).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden(pub String);

/// Applies the defaults a real API server applies on every write (create, update, patch) to
/// workload objects: their pod templates and specs. A merge patch that replaces a container
/// list must not leave the template without `imagePullPolicy`, `terminationMessagePath`, ...:
/// controllers compare the workload's template with their children's (defaulted at create), and
/// an undefaulted template would never match. Only missing fields are filled, so this is
/// idempotent and safe to run on updates.
pub fn apply_update_defaults(def: &ResourceDef, v: &mut Value, ctx: &dyn DefaultsContext) {
    if matches!(
        (def.group, def.kind),
        (
            "apps",
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet"
        ) | ("", "ReplicationController")
            | ("batch", "Job")
    ) {
        // Workload defaulting never refuses (only pods can, on unknown priority classes).
        let _ = apply_defaults(def, v, ctx);
    }
}

/// Applies create-time defaults to an object of resource `def`.
pub fn apply_defaults(
    def: &ResourceDef,
    v: &mut Value,
    ctx: &dyn DefaultsContext,
) -> Result<(), Forbidden> {
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let storage = v
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or(json!("1Gi"));
    let access = v
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or(json!(["ReadWriteOnce"]));
    let Some(root) = obj(v) else { return Ok(()) };
    match (def.group, def.kind) {
        ("", "Pod") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                default_pod_spec(s);
                ensure(s, "serviceAccountName", json!("default"));
                let sa = s
                    .get("serviceAccountName")
                    .cloned()
                    .unwrap_or(json!("default"));
                ensure(s, "serviceAccount", sa);
                ensure(s, "enableServiceLinks", json!(true));
                ensure(s, "preemptionPolicy", json!("PreemptLowerPriority"));
                let pc = s
                    .get("priorityClassName")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let prio = match pc.as_deref() {
                    Some(name) if !name.is_empty() => match ctx.priority_class_value(name) {
                        Some(p) => p,
                        None => {
                            return Err(Forbidden(format!(
                                "no PriorityClass with name {name} was found"
                            )));
                        }
                    },
                    _ => 0,
                };
                s.insert("priority".into(), json!(prio));
                let tols = ensure(s, "tolerations", json!([]));
                if let Some(t) = tols.as_array_mut() {
                    for key in [
                        "node.kubernetes.io/not-ready",
                        "node.kubernetes.io/unreachable",
                    ] {
                        if !t
                            .iter()
                            .any(|x| x.get("key").and_then(Value::as_str) == Some(key))
                        {
                            t.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                        }
                    }
                }
            }
            let qos = root.get("spec").map(qos_class).unwrap_or("BestEffort");
            root.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
        ("apps", "Deployment") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "replicas", json!(1));
                ensure(s, "revisionHistoryLimit", json!(10));
                ensure(s, "progressDeadlineSeconds", json!(600));
                ensure(
                    s,
                    "strategy",
                    json!({"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}}),
                );
                template_defaults(s);
            }
        }
        ("apps", "ReplicaSet") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "replicas", json!(1));
                template_defaults(s);
            }
        }
        ("", "ReplicationController") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "replicas", json!(1));
                if s.get("selector").is_none()
                    && let Some(l) = s
                        .get("template")
                        .and_then(|t| t.pointer("/metadata/labels"))
                        .cloned()
                {
                    s.insert("selector".into(), l);
                }
                template_defaults(s);
            }
        }
        ("apps", "StatefulSet") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "replicas", json!(1));
                ensure(s, "podManagementPolicy", json!("OrderedReady"));
                ensure(
                    s,
                    "updateStrategy",
                    json!({"type":"RollingUpdate","rollingUpdate":{"partition":0}}),
                );
                ensure(s, "revisionHistoryLimit", json!(10));
                ensure(
                    s,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted":"Retain","whenScaled":"Retain"}),
                );
                template_defaults(s);
            }
        }
        ("apps", "DaemonSet") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(
                    s,
                    "updateStrategy",
                    json!({"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}}),
                );
                ensure(s, "revisionHistoryLimit", json!(10));
                template_defaults(s);
            }
        }
        ("batch", "Job") => {
            let uid = root
                .get("metadata")
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_default();
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "parallelism", json!(1));
                ensure(s, "completions", json!(1));
                ensure(s, "backoffLimit", json!(6));
                ensure(s, "completionMode", json!("NonIndexed"));
                ensure(s, "suspend", json!(false));
                ensure(s, "podReplacementPolicy", json!("TerminatingOrFailed"));
                let manual = s
                    .get("manualSelector")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !manual && !uid.is_empty() {
                    s.insert(
                        "selector".into(),
                        json!({"matchLabels":{"batch.kubernetes.io/controller-uid": uid}}),
                    );
                    if let Some(t) = s.get_mut("template").and_then(Value::as_object_mut) {
                        let meta = ensure(t, "metadata", json!({}));
                        if let Some(m) = meta.as_object_mut() {
                            let labels = ensure(m, "labels", json!({}));
                            if let Some(l) = labels.as_object_mut() {
                                l.insert("batch.kubernetes.io/controller-uid".into(), json!(uid));
                                l.insert("controller-uid".into(), json!(uid));
                                l.insert("batch.kubernetes.io/job-name".into(), json!(name));
                                l.insert("job-name".into(), json!(name));
                            }
                        }
                    }
                }
                template_defaults(s);
            }
        }
        ("", "Service") => {
            let spec = ensure(root, "spec", json!({}));
            if let Some(s) = spec.as_object_mut() {
                ensure(s, "type", json!("ClusterIP"));
                ensure(s, "sessionAffinity", json!("None"));
                let ty = s
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP")
                    .to_string();
                if ty != "ExternalName" {
                    let ip = match s.get("clusterIP").and_then(Value::as_str) {
                        Some(ip) if !ip.is_empty() => ip.to_string(),
                        _ => ctx.allocate_cluster_ip(),
                    };
                    s.insert("clusterIP".into(), json!(ip));
                    ensure(s, "clusterIPs", json!([ip]));
                    ensure(s, "ipFamilies", json!(["IPv4"]));
                    ensure(s, "ipFamilyPolicy", json!("SingleStack"));
                    ensure(s, "internalTrafficPolicy", json!("Cluster"));
                }
                if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
                    for (i, p) in ports
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .enumerate()
                    {
                        ensure(p, "protocol", json!("TCP"));
                        let port = p.get("port").cloned().unwrap_or(json!(0));
                        ensure(p, "targetPort", port);
                        if ty == "NodePort" || ty == "LoadBalancer" {
                            ensure(
                                p,
                                "nodePort",
                                json!(30000 + (rand::random::<u16>() % 2767) as i64 + i as i64),
                            );
                        }
                    }
                }
            }
            root.insert("status".into(), json!({"loadBalancer": {}}));
        }
        ("", "Namespace") => {
            if let Some(m) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                let labels = ensure(m, "labels", json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            root.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
            root.insert("status".into(), json!({"phase": "Active"}));
        }
        ("", "Secret") => {
            ensure(root, "type", json!("Opaque"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            ensure(root, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(s) = root.get_mut("spec").and_then(Value::as_object_mut) {
                ensure(s, "volumeMode", json!("Filesystem"));
            }
            root.insert(
                "status".into(),
                json!({"phase":"Bound","accessModes":access,"capacity":{"storage":storage}}),
            );
        }
        ("", "ServiceAccount" | "ConfigMap" | "Endpoints" | "Event") => {}
        _ => {}
    }
    Ok(())
}

fn template_defaults(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        ensure(t, "metadata", json!({}));
        let ps = ensure(t, "spec", json!({}));
        if let Some(ps) = ps.as_object_mut() {
            default_pod_spec(ps);
        }
    }
}

/// Resource index lookups used by callers.
pub fn def(res: usize) -> &'static ResourceDef {
    &RESOURCES[res.min(RESOURCES.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::idx;

    struct Ctx;
    impl DefaultsContext for Ctx {
        fn priority_class_value(&self, name: &str) -> Option<i64> {
            (name == "high").then_some(1000)
        }
        fn allocate_cluster_ip(&self) -> String {
            "10.96.0.10".into()
        }
    }

    #[test]
    fn pod_defaults_and_validation() {
        let d = def(idx("", "pods"));
        let mut p = json!({"metadata":{"name":"p"},"spec":{"priorityClassName":"high","containers":[{"name":"c","image":"nginx","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}});
        apply_defaults(d, &mut p, &Ctx).unwrap();
        assert_eq!(p["spec"]["priority"], 1000);
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert!(validate(d, &p).is_empty());
        let bad = json!({"metadata":{"name":"Bad_Name"},"spec":{"containers":[]}});
        let causes = validate(d, &bad);
        assert_eq!(causes.len(), 2, "{causes:?}");
        let mut missing =
            json!({"metadata":{"name":"p"},"spec":{"priorityClassName":"nope","containers":[]}});
        assert!(apply_defaults(d, &mut missing, &Ctx).is_err());
    }

    #[test]
    fn names() {
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("A"));
        assert!(is_dns_label("abc-1"));
        assert!(!is_dns_label("a.b"));
    }
}
