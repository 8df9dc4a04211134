//! A minimal decoder for Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`).
//!
//! Recent client-go typed clientsets (and so `kubectl create namespace|configmap|secret|...`)
//! send built-in objects as protobuf. This server stores JSON, so it decodes the `k8s\0`
//! envelope (`runtime.Unknown`) and, for the simple kinds those generators create, the object
//! itself, with small field tables. Other kinds get 415, like a server that does not speak
//! protobuf for them.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Field value shapes.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    RepStr,
    RepMsg(&'static [Field]),
    Time,
    Skip,
    MapQuantity,
    IntOrStr,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field { num, name, ty }
}

const OWNER_REF: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Skip),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    f(13, "ownerReferences", Ty::RepMsg(OWNER_REF)),
    f(14, "finalizers", Ty::RepStr),
];

const NAMESPACE_SPEC: &[Field] = &[f(1, "finalizers", Ty::RepStr)];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
];

const CONFIGMAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const PRIORITY_CLASS: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "value", Ty::Int),
    f(3, "globalDefault", Ty::Bool),
    f(4, "description", Ty::Str),
    f(5, "preemptionPolicy", Ty::Str),
];

const LEASE_SPEC: &[Field] = &[
    f(1, "holderIdentity", Ty::Str),
    f(2, "leaseDurationSeconds", Ty::Int),
    f(3, "acquireTime", Ty::Time),
    f(4, "renewTime", Ty::Time),
    f(5, "leaseTransitions", Ty::Int),
];

const LEASE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(LEASE_SPEC)),
];

const PRECONDITIONS: &[Field] = &[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)];

const DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::Int),
    f(2, "preconditions", Ty::Msg(PRECONDITIONS)),
    f(3, "orphanDependents", Ty::Bool),
    f(4, "propagationPolicy", Ty::Str),
    f(5, "dryRun", Ty::RepStr),
];

const LABEL_REQ: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    f(3, "values", Ty::RepStr),
];
const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::MapStr),
    f(2, "matchExpressions", Ty::RepMsg(LABEL_REQ)),
];
const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
];
const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];
const RESOURCES: &[Field] = &[
    f(1, "limits", Ty::MapQuantity),
    f(2, "requests", Ty::MapQuantity),
];
const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    f(3, "command", Ty::RepStr),
    f(4, "args", Ty::RepStr),
    f(5, "workingDir", Ty::Str),
    f(6, "ports", Ty::RepMsg(CONTAINER_PORT)),
    f(7, "env", Ty::RepMsg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCES)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(20, "terminationMessagePolicy", Ty::Str),
];
const TOLERATION: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    f(3, "value", Ty::Str),
    f(4, "effect", Ty::Str),
    f(5, "tolerationSeconds", Ty::Int),
];
const POD_SPEC: &[Field] = &[
    f(2, "containers", Ty::RepMsg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    f(4, "terminationGracePeriodSeconds", Ty::Int),
    f(5, "activeDeadlineSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr),
    f(8, "serviceAccountName", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(19, "schedulerName", Ty::Str),
    f(20, "initContainers", Ty::RepMsg(CONTAINER)),
    f(22, "tolerations", Ty::RepMsg(TOLERATION)),
    f(24, "priorityClassName", Ty::Str),
];
const POD_TEMPLATE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];
const DEPLOYMENT_SPEC: &[Field] = &[
    f(1, "replicas", Ty::Int),
    f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE)),
    f(5, "minReadySeconds", Ty::Int),
    f(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    f(9, "progressDeadlineSeconds", Ty::Int),
];
const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
];
const JOB_SPEC: &[Field] = &[
    f(1, "parallelism", Ty::Int),
    f(2, "completions", Ty::Int),
    f(3, "activeDeadlineSeconds", Ty::Int),
    f(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE)),
    f(7, "backoffLimit", Ty::Int),
    f(8, "ttlSecondsAfterFinished", Ty::Int),
    f(9, "completionMode", Ty::Str),
    f(10, "suspend", Ty::Bool),
];
const JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];
const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrStr),
    f(5, "nodePort", Ty::Int),
];
const SERVICE_SPEC: &[Field] = &[
    f(1, "ports", Ty::RepMsg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    f(5, "externalIPs", Ty::RepStr),
    f(7, "sessionAffinity", Ty::Str),
    f(10, "externalName", Ty::Str),
];
const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];

/// Int fields whose zero value is meaningful and kept.
const KEEP_ZERO: &[&str] = &["replicas", "value", "port", "containerPort"];

fn schema(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIGMAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("scheduling.k8s.io/v1", "PriorityClass") => PRIORITY_CLASS,
        ("coordination.k8s.io/v1", "Lease") => LEASE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("batch/v1", "Job") => JOB,
        ("v1", "Service") => SERVICE,
        (_, "DeleteOptions") => DELETE_OPTIONS,
        _ => return None,
    })
}

/// A protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// Not a `k8s\0` envelope or truncated.
    Malformed,
    /// A kind this decoder has no table for.
    Unsupported(String),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Next (field number, wire type, length-delimited payload or varint value).
    fn next(&mut self) -> Option<Option<(u64, Wire<'a>)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        let w = match wt {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.pos = self.pos.checked_add(8)?;
                Wire::Fixed
            }
            2 => Wire::Len(self.bytes()?),
            5 => {
                self.pos = self.pos.checked_add(4)?;
                Wire::Fixed
            }
            _ => return None,
        };
        if self.pos > self.buf.len() {
            return None;
        }
        Some(Some((num, w)))
    }
}

enum Wire<'a> {
    Varint(u64),
    Len(&'a [u8]),
    Fixed,
}

fn decode_map_entry(b: &[u8], bytes_value: bool) -> Option<(String, Value)> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((num, w)) = r.next()? {
        if let Wire::Len(x) = w {
            match num {
                1 => k = String::from_utf8_lossy(x).into_owned(),
                2 if bytes_value => v = json!(base64::engine::general_purpose::STANDARD.encode(x)),
                2 => v = json!(String::from_utf8_lossy(x)),
                _ => {}
            }
        }
    }
    Some((k, v))
}

fn decode_time(b: &[u8]) -> Option<Value> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut secs = 0i64;
    while let Some((num, w)) = r.next()? {
        if let (1, Wire::Varint(v)) = (num, w) {
            secs = v as i64;
        }
    }
    let t = chrono::DateTime::from_timestamp(secs, 0)?;
    Some(json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

fn decode_msg(b: &[u8], fields: &[Field]) -> Option<Value> {
    let mut out = Map::new();
    let mut r = Reader { buf: b, pos: 0 };
    while let Some((num, w)) = r.next()? {
        let Some(fd) = fields.iter().find(|x| x.num == num) else {
            continue;
        };
        match (fd.ty, w) {
            (Ty::Str, Wire::Len(x)) if !x.is_empty() => {
                out.insert(fd.name.into(), json!(String::from_utf8_lossy(x)));
            }
            (Ty::Int, Wire::Varint(v)) if v != 0 || KEEP_ZERO.contains(&fd.name) => {
                out.insert(fd.name.into(), json!(v as i64));
            }
            (Ty::Bool, Wire::Varint(v)) if v != 0 => {
                out.insert(fd.name.into(), json!(true));
            }
            (Ty::IntOrStr, Wire::Len(x)) => {
                let mut r = Reader { buf: x, pos: 0 };
                let (mut ty, mut iv, mut sv) = (0u64, 0u64, String::new());
                while let Some((n, w)) = r.next()? {
                    match (n, w) {
                        (1, Wire::Varint(t)) => ty = t,
                        (2, Wire::Varint(i)) => iv = i,
                        (3, Wire::Len(b)) => sv = String::from_utf8_lossy(b).into_owned(),
                        _ => {}
                    }
                }
                let v = if ty == 1 { json!(sv) } else { json!(iv as i64) };
                out.insert(fd.name.into(), v);
            }
            (Ty::MapQuantity, Wire::Len(x)) => {
                let mut r = Reader { buf: x, pos: 0 };
                let (mut k, mut q) = (String::new(), String::new());
                while let Some((n, w)) = r.next()? {
                    if let Wire::Len(b) = w {
                        match n {
                            1 => k = String::from_utf8_lossy(b).into_owned(),
                            2 => {
                                let mut qr = Reader { buf: b, pos: 0 };
                                while let Some((qn, qw)) = qr.next()? {
                                    if let (1, Wire::Len(qs)) = (qn, qw) {
                                        q = String::from_utf8_lossy(qs).into_owned();
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                let m = out.entry(fd.name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, json!(q));
                }
            }
            (Ty::Msg(sub), Wire::Len(x)) => {
                out.insert(fd.name.into(), decode_msg(x, sub)?);
            }
            (Ty::Time, Wire::Len(x)) => {
                out.insert(fd.name.into(), decode_time(x)?);
            }
            (Ty::MapStr | Ty::MapBytes, Wire::Len(x)) => {
                let (k, v) = decode_map_entry(x, matches!(fd.ty, Ty::MapBytes))?;
                let m = out.entry(fd.name).or_insert_with(|| json!({}));
                if let Some(m) = m.as_object_mut() {
                    m.insert(k, v);
                }
            }
            (Ty::RepStr, Wire::Len(x)) => {
                let a = out.entry(fd.name).or_insert_with(|| json!([]));
                if let Some(a) = a.as_array_mut() {
                    a.push(json!(String::from_utf8_lossy(x)));
                }
            }
            (Ty::RepMsg(sub), Wire::Len(x)) => {
                let item = decode_msg(x, sub)?;
                let a = out.entry(fd.name).or_insert_with(|| json!([]));
                if let Some(a) = a.as_array_mut() {
                    a.push(item);
                }
            }
            _ => {}
        }
    }
    Some(Value::Object(out))
}

/// Decodes a `k8s\0`-prefixed protobuf body into JSON.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body.strip_prefix(b"k8s\0").ok_or(ProtoError::Malformed)?;
    let mut r = Reader { buf: rest, pos: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, w)) = r.next().ok_or(ProtoError::Malformed)? {
        match (num, w) {
            (1, Wire::Len(tm)) => {
                let mut t = Reader { buf: tm, pos: 0 };
                while let Some((n, w)) = t.next().ok_or(ProtoError::Malformed)? {
                    if let Wire::Len(x) = w {
                        match n {
                            1 => api_version = String::from_utf8_lossy(x).into_owned(),
                            2 => kind = String::from_utf8_lossy(x).into_owned(),
                            _ => {}
                        }
                    }
                }
            }
            (2, Wire::Len(x)) => raw = x,
            _ => {}
        }
    }
    let fields = schema(&api_version, &kind)
        .ok_or_else(|| ProtoError::Unsupported(format!("{api_version}/{kind}")))?;
    let mut v = decode_msg(raw, fields).ok_or(ProtoError::Malformed)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_namespace_envelope() {
        let meta = [
            len_field(1, b"demo"),
            len_field(11, &[len_field(1, b"a"), len_field(2, b"b")].concat()),
        ]
        .concat();
        let ns = len_field(1, &meta);
        let tm = [len_field(1, b"v1"), len_field(2, b"Namespace")].concat();
        let body = [b"k8s\0".to_vec(), len_field(1, &tm), len_field(2, &ns)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "demo");
        assert_eq!(v["metadata"]["labels"]["a"], "b");
        assert_eq!(v["kind"], "Namespace");
        assert_eq!(decode(b"k8s\0\x0a"), Err(ProtoError::Malformed));
        assert_eq!(decode(b"nope"), Err(ProtoError::Malformed));
    }
}
