//! OpenAPI documents for client-side tooling (`kubectl create/apply` validation, strategic
//! merge metadata, `kubectl explain`).
//!
//! `/openapi/v2` serves a trimmed copy of the Kubernetes 1.36 document (only the resources
//! this server implements, descriptions dropped) as JSON; protobuf requests get a minimal
//! document listing only the PATCH operations (see `v2_protobuf`). `/openapi/v3` serves an index and one document per group-version,
//! derived from the same data, whose PATCH operations advertise the `fieldValidation` query
//! parameter — kubectl then validates server-side instead of needing protobuf schemas.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use serde_json::{Map, Value, json};

use crate::resources::API_VERSIONS;

/// The trimmed OpenAPI v2 document (JSON).
pub const V2_JSON: &[u8] = include_bytes!("../fixtures/openapi/v2.json");

const V3_HASH: &str = "C15C2A7A5E1D0001";

fn json_body(code: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: u16, reason: &str, msg: &str) -> Response {
    let v = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":msg,"reason":reason,"code":code});
    json_body(
        StatusCode::from_u16(code).unwrap_or(StatusCode::NOT_FOUND),
        serde_json::to_vec(&v).unwrap_or_default(),
    )
}

fn v2() -> &'static Value {
    static V2: OnceLock<Value> = OnceLock::new();
    V2.get_or_init(|| serde_json::from_slice(V2_JSON).unwrap_or(Value::Null))
}

/// Path prefix (`/api/v1/`, `/apis/apps/v1/`) and v3 key (`api/v1`, `apis/apps/v1`) of each
/// served group-version.
fn gv_keys() -> Vec<(String, String)> {
    API_VERSIONS
        .iter()
        .map(|(g, v, _)| {
            if g.is_empty() {
                (format!("/api/{v}/"), format!("api/{v}"))
            } else {
                (format!("/apis/{g}/{v}/"), format!("apis/{g}/{v}"))
            }
        })
        .collect()
}

fn v3_param(p: &Value) -> Option<Value> {
    let inn = p.get("in")?.as_str()?;
    if inn == "body" {
        return None;
    }
    let mut out = json!({"name": p.get("name")?, "in": inn});
    if let Some(r) = p.get("required") {
        out["required"] = r.clone();
    }
    let ty = p.get("type").cloned().unwrap_or(json!("string"));
    out["schema"] = json!({"type": ty});
    Some(out)
}

/// The v3 document of group-version `key`, built on first request and then served from memory
/// (building it copies every schema definition).
fn v3_doc_cached(key: &str) -> Option<Bytes> {
    static DOCS: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let docs = DOCS.get_or_init(Mutex::default);
    if let Some(doc) = docs.lock().get(key) {
        return Some(doc.clone());
    }
    let doc = Bytes::from(v3_doc(key)?);
    docs.lock().insert(key.to_string(), doc.clone());
    Some(doc)
}

fn v3_doc(key: &str) -> Option<Vec<u8>> {
    let prefix = gv_keys().into_iter().find(|(_, k)| k == key)?.0;
    let doc = v2();
    let paths = doc.get("paths")?.as_object()?;
    let mut out_paths = Map::new();
    for (p, item) in paths.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        let Some(ops) = item.as_object() else {
            continue;
        };
        let common: Vec<Value> = ops
            .get("parameters")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(v3_param).collect())
            .unwrap_or_default();
        let mut out_item = Map::new();
        for (verb, op) in ops {
            if verb == "parameters" {
                continue;
            }
            let mut params = common.clone();
            if let Some(a) = op.get("parameters").and_then(Value::as_array) {
                params.extend(a.iter().filter_map(v3_param));
            }
            let mut o = json!({"parameters": params, "responses": {"200": {"description": "OK"}}});
            for k in [
                "operationId",
                "x-kubernetes-action",
                "x-kubernetes-group-version-kind",
                "tags",
            ] {
                if let Some(v) = op.get(k) {
                    o[k] = v.clone();
                }
            }
            if let Some(schema) = op.pointer("/responses/200/schema") {
                o["responses"]["200"]["content"] = json!({"application/json": {"schema": schema}});
            }
            out_item.insert(verb.clone(), o);
        }
        out_paths.insert(p.clone(), Value::Object(out_item));
    }
    let out = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0-cl2sim"},
        "paths": out_paths,
        "components": {"schemas": doc.get("definitions").cloned().unwrap_or(json!({}))},
    });
    let s = serde_json::to_string(&out).ok()?;
    Some(
        s.replace("#/definitions/", "#/components/schemas/")
            .into_bytes(),
    )
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, field: u64, payload: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// The gnostic `openapi_v2.Document` protobuf older kubectl versions download for
/// validation. It lists every PATCH operation with its `fieldValidation` query parameter and
/// `x-kubernetes-group-version-kind` extension (so kubectl validates server-side) and no
/// schema definitions (kubectl skips client-side validation of types it cannot find).
fn v2_protobuf() -> &'static [u8] {
    static PB: OnceLock<Vec<u8>> = OnceLock::new();
    PB.get_or_init(|| {
        let mut doc = Vec::new();
        put_len(&mut doc, 1, b"2.0");
        let mut info = Vec::new();
        put_len(&mut info, 1, b"Kubernetes");
        put_len(&mut info, 2, b"v1.36.0-cl2sim");
        put_len(&mut doc, 2, &info);
        let mut paths = Vec::new();
        if let Some(ps) = v2().get("paths").and_then(Value::as_object) {
            for (path, item) in ps {
                let Some(gvk) = item.pointer("/patch/x-kubernetes-group-version-kind") else {
                    continue;
                };
                let yaml = format!(
                    "group: \"{}\"\nkind: {}\nversion: {}\n",
                    gvk.get("group").and_then(Value::as_str).unwrap_or(""),
                    gvk.get("kind").and_then(Value::as_str).unwrap_or(""),
                    gvk.get("version").and_then(Value::as_str).unwrap_or("")
                );
                // QueryParameterSubSchema{in=2, name=4, type=6}
                let mut q = Vec::new();
                put_len(&mut q, 2, b"query");
                put_len(&mut q, 4, b"fieldValidation");
                put_len(&mut q, 6, b"string");
                let mut nbp = Vec::new();
                put_len(&mut nbp, 3, &q);
                let mut param = Vec::new();
                put_len(&mut param, 2, &nbp);
                let mut pitem = Vec::new();
                put_len(&mut pitem, 1, &param);
                let mut any = Vec::new();
                put_len(&mut any, 2, yaml.as_bytes());
                let mut named = Vec::new();
                put_len(&mut named, 1, b"x-kubernetes-group-version-kind");
                put_len(&mut named, 2, &any);
                let mut op = Vec::new();
                if let Some(id) = item.pointer("/patch/operationId").and_then(Value::as_str) {
                    put_len(&mut op, 5, id.as_bytes());
                }
                put_len(&mut op, 8, &pitem);
                put_len(&mut op, 13, &named);
                let mut pi = Vec::new();
                put_len(&mut pi, 8, &op);
                let mut npi = Vec::new();
                put_len(&mut npi, 1, path.as_bytes());
                put_len(&mut npi, 2, &pi);
                put_len(&mut paths, 2, &npi);
            }
        }
        put_len(&mut doc, 8, &paths);
        doc
    })
}

/// Serves `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<gv>`.
pub fn serve(path: &str, accept: &str) -> Response {
    match path {
        "/openapi/v2" => {
            let wants_json =
                accept.is_empty() || accept.contains("application/json") || accept.contains("*/*");
            if accept.contains("protobuf") {
                let mut r = Response::new(Body::from(v2_protobuf()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                r
            } else if wants_json {
                json_body(StatusCode::OK, V2_JSON)
            } else {
                status(
                    406,
                    "NotAcceptable",
                    "unsupported media type for /openapi/v2",
                )
            }
        }
        "/openapi/v3" | "/openapi/v3/" => {
            let mut paths = Map::new();
            for (_, k) in gv_keys() {
                paths.insert(
                    k.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={V3_HASH}")}),
                );
            }
            json_body(
                StatusCode::OK,
                serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default(),
            )
        }
        p => match p.strip_prefix("/openapi/v3/").and_then(v3_doc_cached) {
            Some(doc) => {
                let mut r = json_body(StatusCode::OK, doc);
                r.headers_mut().insert(
                    header::ETAG,
                    HeaderValue::from_static("\"C15C2A7A5E1D0001\""),
                );
                r
            }
            None => status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_is_valid_and_v3_has_field_validation() {
        assert!(
            v2().get("definitions")
                .and_then(|d| d.get("io.k8s.api.core.v1.Pod"))
                .is_some()
        );
        let doc: Value = serde_json::from_slice(&v3_doc("apis/apps/v1").unwrap()).unwrap();
        let patch = doc
            .pointer("/paths/~1apis~1apps~1v1~1namespaces~1{namespace}~1deployments~1{name}/patch")
            .unwrap();
        let params = patch["parameters"].as_array().unwrap();
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        assert!(
            doc.pointer("/components/schemas/io.k8s.api.apps.v1.Deployment")
                .is_some()
        );
        assert!(v3_doc("apis/nope/v1").is_none());
    }
}
