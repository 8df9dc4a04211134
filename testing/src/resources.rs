//! The table of API resources the simulated server serves.
//!
//! One `const` table drives discovery, routing, storage, field selectors and subresources; no
//! resource has its own handler. Adding a resource is adding a row.

/// Subresource flags of a [`ResourceDef`].
pub mod sub {
    /// `/status`.
    pub const STATUS: u8 = 1;
    /// `/scale` (autoscaling/v1 Scale).
    pub const SCALE: u8 = 2;
    /// `/binding` (pods).
    pub const BINDING: u8 = 4;
    /// `/eviction` (pods).
    pub const EVICTION: u8 = 8;
}

/// How object names of a resource are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces, services).
    Label,
    /// Any path-segment name (e.g. RBAC roles allow ':').
    PathSegment,
}

/// One API resource served by the simulator.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural (URL) name.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Whether the resource is in the `all` category.
    pub all: bool,
    /// Subresource flags (see [`sub`]).
    pub subresources: u8,
    /// Whether `metadata.generation` is tracked (bumped on spec changes).
    pub generation: bool,
    /// Name validation rule.
    pub name_rule: NameRule,
    /// Extra field-selector labels supported besides `metadata.name`/`metadata.namespace`.
    pub fields: &'static [&'static str],
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> &'static str {
        API_VERSIONS
            .iter()
            .find(|(g, v, _)| *g == self.group && *v == self.version)
            .map(|(_, _, av)| *av)
            .unwrap_or("v1")
    }

    /// Whether the subresource flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.subresources & flag != 0
    }

    /// The metrics/`apiserver_storage_objects` resource label (`pods`, `deployments.apps`).
    pub fn storage_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// (group, version, apiVersion) of every served group version.
pub const API_VERSIONS: &[(&str, &str, &str)] = &[
    ("", "v1", "v1"),
    ("apps", "v1", "apps/v1"),
    ("batch", "v1", "batch/v1"),
    ("coordination.k8s.io", "v1", "coordination.k8s.io/v1"),
    ("discovery.k8s.io", "v1", "discovery.k8s.io/v1"),
    ("events.k8s.io", "v1", "events.k8s.io/v1"),
    ("networking.k8s.io", "v1", "networking.k8s.io/v1"),
    ("policy", "v1", "policy/v1"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rbac.authorization.k8s.io/v1",
    ),
    ("scheduling.k8s.io", "v1", "scheduling.k8s.io/v1"),
    ("storage.k8s.io", "v1", "storage.k8s.io/v1"),
];

const NONE: &[&str] = &[];
const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const NEW_EVENT_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "reason",
    "reportingController",
    "type",
];

macro_rules! res {
    ($g:expr, $v:expr, $plural:expr, $singular:expr, $kind:expr, $ns:expr, $short:expr, $all:expr, $sub:expr, $gen:expr, $rule:ident, $fields:expr) => {
        ResourceDef {
            group: $g,
            version: $v,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            all: $all,
            subresources: $sub,
            generation: $gen,
            name_rule: NameRule::$rule,
            fields: $fields,
        }
    };
}

use sub::{BINDING, EVICTION, SCALE, STATUS};

/// Every served resource, in discovery order per group.
#[rustfmt::skip]
pub const RESOURCES: &[ResourceDef] = &[
    res!("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], false, 0, false, Subdomain, NONE),
    res!("", "v1", "endpoints", "endpoints", "Endpoints", true, &["ep"], false, 0, false, Subdomain, NONE),
    res!("", "v1", "events", "event", "Event", true, &["ev"], false, 0, false, Subdomain, EVENT_FIELDS),
    res!("", "v1", "limitranges", "limitrange", "LimitRange", true, &["limits"], false, 0, false, Subdomain, NONE),
    res!("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], false, STATUS, false, Label, &["status.phase"]),
    res!("", "v1", "nodes", "node", "Node", false, &["no"], false, STATUS, false, Subdomain, &["spec.unschedulable"]),
    res!("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, &["pvc"], false, STATUS, false, Subdomain, NONE),
    res!("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, &["pv"], false, STATUS, false, Subdomain, NONE),
    res!("", "v1", "pods", "pod", "Pod", true, &["po"], true, STATUS | BINDING | EVICTION, true, Subdomain, POD_FIELDS),
    res!("", "v1", "podtemplates", "podtemplate", "PodTemplate", true, NONE, false, 0, false, Subdomain, NONE),
    res!("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", true, &["rc"], true, STATUS | SCALE, true, Subdomain, &["status.replicas"]),
    res!("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, &["quota"], false, STATUS, false, Subdomain, NONE),
    res!("", "v1", "secrets", "secret", "Secret", true, NONE, false, 0, false, Subdomain, &["type"]),
    res!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], false, 0, false, Subdomain, NONE),
    res!("", "v1", "services", "service", "Service", true, &["svc"], true, STATUS, false, Label, &["spec.clusterIP", "spec.type"]),
    res!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true, NONE, false, 0, false, Subdomain, NONE),
    res!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, &["ds"], true, STATUS, true, Subdomain, NONE),
    res!("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], true, STATUS | SCALE, true, Subdomain, NONE),
    res!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], true, STATUS | SCALE, true, Subdomain, &["status.replicas"]),
    res!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], true, STATUS | SCALE, true, Subdomain, NONE),
    res!("batch", "v1", "cronjobs", "cronjob", "CronJob", true, &["cj"], true, STATUS, true, Subdomain, NONE),
    res!("batch", "v1", "jobs", "job", "Job", true, NONE, true, STATUS, true, Subdomain, &["status.successful"]),
    res!("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, NONE, false, 0, false, Subdomain, NONE),
    res!("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true, NONE, false, 0, false, Subdomain, &["addressType"]),
    res!("events.k8s.io", "v1", "events", "event", "Event", true, &["ev"], false, 0, false, Subdomain, NEW_EVENT_FIELDS),
    res!("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true, &["ing"], false, STATUS, true, Subdomain, NONE),
    res!("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true, &["netpol"], false, 0, true, Subdomain, NONE),
    res!("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, &["pdb"], false, STATUS, true, Subdomain, NONE),
    res!("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, NONE, false, 0, false, PathSegment, NONE),
    res!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, NONE, false, 0, false, PathSegment, NONE),
    res!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, NONE, false, 0, false, PathSegment, NONE),
    res!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, NONE, false, 0, false, PathSegment, NONE),
    res!("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", false, &["pc"], false, 0, false, Subdomain, NONE),
    res!("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false, &["sc"], false, 0, false, Subdomain, NONE),
];

/// Index of a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Index of a resource by apiVersion and kind.
pub fn find_kind(api_version: &str, kind: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.api_version() == api_version && r.kind == kind)
}

/// Index of a resource by group and plural (any version).
pub fn idx(group: &str, plural: &str) -> usize {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.plural == plural)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_is_unique_and_group_versions_known() {
        let mut seen = HashSet::new();
        for r in RESOURCES {
            assert!(
                seen.insert((r.group, r.version, r.plural)),
                "duplicate {}",
                r.plural
            );
            assert!(
                API_VERSIONS
                    .iter()
                    .any(|(g, v, _)| *g == r.group && *v == r.version)
            );
        }
        assert_eq!(
            RESOURCES[find("apps", "v1", "deployments").unwrap()].kind,
            "Deployment"
        );
        assert_eq!(RESOURCES[find_kind("v1", "Pod").unwrap()].plural, "pods");
        assert_eq!(RESOURCES[idx("", "pods")].plural, "pods");
    }
}
