//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes
//! strategic merge patch for the built-in types.
//!
//! Strategic merge knows the list merge keys of the built-in types kubectl relies on
//! (containers/volumes/env by `name`, container ports by `containerPort`, service ports by
//! `port`, conditions and node addresses by `type`, ownerReferences by `uid`, ...) and the
//! `$patch: delete|replace|merge`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
//! `$setElementOrder/<field>` directives. Lists without a merge key are replaced, as upstream.
//! Server-side apply (`application/apply-patch+yaml`) is served as a strategic merge of the
//! applied configuration (no managed-fields ownership tracking).

use serde_json::{Map, Value};
use thiserror::Error;

/// A patch could not be applied (400/422).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The patch document is not valid for its type.
    #[error("{0}")]
    BadPatch(String),
    /// A JSON patch operation failed (test failed, path missing).
    #[error("the server rejected our request due to an error in our request: {0}")]
    Failed(String),
}

/// Supported patch types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// application/merge-patch+json.
    Merge,
    /// application/json-patch+json.
    Json,
    /// application/strategic-merge-patch+json.
    Strategic,
    /// application/apply-patch+yaml.
    Apply,
}

impl PatchType {
    /// From a Content-Type header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// Applies a patch document of the given type to `current`.
pub fn apply(current: &Value, ty: PatchType, body: &[u8]) -> Result<Value, PatchError> {
    match ty {
        PatchType::Merge => {
            let p: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::BadPatch(e.to_string()))?;
            if !p.is_object() {
                return Err(PatchError::BadPatch(
                    "merge patch must be a JSON object".into(),
                ));
            }
            let mut out = current.clone();
            merge_patch(&mut out, &p);
            Ok(out)
        }
        PatchType::Json => {
            let p: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| PatchError::BadPatch(e.to_string()))?;
            let mut out = current.clone();
            json_patch::patch(&mut out, &p).map_err(|e| PatchError::Failed(e.to_string()))?;
            Ok(out)
        }
        PatchType::Strategic => {
            let p: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::BadPatch(e.to_string()))?;
            if !p.is_object() {
                return Err(PatchError::BadPatch(
                    "strategic merge patch must be a JSON object".into(),
                ));
            }
            let mut out = current.clone();
            strategic_merge(&mut out, &p, "");
            Ok(out)
        }
        PatchType::Apply => {
            let p: Value =
                serde_yaml::from_slice(body).map_err(|e| PatchError::BadPatch(e.to_string()))?;
            if !p.is_object() {
                return Err(PatchError::BadPatch(
                    "apply configuration must be an object".into(),
                ));
            }
            let mut out = current.clone();
            strategic_merge(&mut out, &p, "");
            Ok(out)
        }
    }
}

/// Merge key of a list field (by field name and, for `ports`, item shape).
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "resourceClaims" => {
            if field == "containerStatuses" || field == "initContainerStatuses" {
                return None;
            }
            "name"
        }
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "addresses" => "type",
        "ownerReferences" => "uid",
        "podIPs" | "hostIPs" => "ip",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Primitive lists merged as sets.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch in place. `field` is the name of the field holding
/// `target` ("" at the root).
pub fn strategic_merge(target: &mut Value, patch: &Value, field: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = p.clone();
        clean.remove("$patch");
        *target = Value::Object(clean);
        return;
    }
    if p.get("$patch").and_then(Value::as_str) == Some("delete") {
        *target = Value::Null;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let _ = field;
    let Value::Object(t) = target else { return };
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()) || p.contains_key(k));
    }
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(del)) = (t.get_mut(f), v) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match v {
            Value::Object(_) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(slot, v, k);
                if slot.is_null() {
                    t.remove(k);
                }
            }
            Value::Array(items) => {
                let key = merge_key(k, items.first());
                let slot = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                if let Some(mk) = key {
                    merge_list(slot, items, mk);
                } else if is_set_list(k) {
                    if let Value::Array(cur) = slot {
                        for it in items {
                            if !cur.contains(it) {
                                cur.push(it.clone());
                            }
                        }
                    } else {
                        *slot = v.clone();
                    }
                } else {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect();
                    *slot = Value::Array(cleaned);
                }
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list(slot: &mut Value, items: &[Value], mk: &str) {
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(cur) = slot else { return };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *cur = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    for it in items {
        let Some(kv) = it.get(mk) else {
            cur.push(it.clone());
            continue;
        };
        let pos = cur.iter().position(|c| c.get(mk) == Some(kv));
        if it.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                cur.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut cur[i], it, ""),
            None => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, it, "");
                cur.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_containers_by_name() {
        let cur = json!({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"}],"tolerations":[{"key":"k"}]}});
        let p = br#"{"spec":{"containers":[{"name":"b","image":"z"},{"name":"c","image":"w"},{"name":"a","$patch":"delete"}],"tolerations":[{"key":"q"}]}}"#;
        let out = apply(&cur, PatchType::Strategic, p).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name":"b","image":"z"},{"name":"c","image":"w"}])
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key":"q"}]));
    }

    #[test]
    fn strategic_conditions_and_directives() {
        let cur = json!({"metadata":{"finalizers":["a"],"labels":{"x":"1","y":"2"}},"status":{"conditions":[{"type":"Ready","status":"False"}]}});
        let p = br#"{"metadata":{"finalizers":["b"],"labels":{"x":null},"$deleteFromPrimitiveList/finalizers":["a"]},"status":{"conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}}"#;
        let out = apply(&cur, PatchType::Strategic, p).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["metadata"]["labels"], json!({"y":"2"}));
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 2);
        assert_eq!(out["status"]["conditions"][0]["status"], "True");
    }

    #[test]
    fn merge_and_json_patch() {
        let cur = json!({"a":{"b":1,"c":2}});
        let out = apply(&cur, PatchType::Merge, br#"{"a":{"b":null,"d":3}}"#).unwrap();
        assert_eq!(out, json!({"a":{"c":2,"d":3}}));
        let out = apply(
            &cur,
            PatchType::Json,
            br#"[{"op":"replace","path":"/a/b","value":5}]"#,
        )
        .unwrap();
        assert_eq!(out["a"]["b"], 5);
        assert!(apply(&cur, PatchType::Json, br#"[{"op":"remove","path":"/zz"}]"#).is_err());
        assert!(apply(&cur, PatchType::Merge, b"[1]").is_err());
        assert!(apply(&cur, PatchType::Strategic, b"{").is_err());
        let out = apply(&cur, PatchType::Apply, b"a:\n  b: 7\n").unwrap();
        assert_eq!(out["a"]["b"], 7);
    }
}
