//! The HTTP Kubernetes API server of the simulated cluster (axum / hyper on loopback).
//!
//! One fallback handler parses every request path itself against the resource table
//! ([`crate::resources::RESOURCES`]) and dispatches on the verb; there is no handler per type.
//! Every error is a Kubernetes `Status` body with the real code and reason. A panic while
//! handling a request becomes a 500 Status; the server keeps serving.
//!
//! Hot paths (get/list/watch) serve the stored JSON bytes as they are: lists and watch events
//! are concatenations, never re-serializations.
//!
//! Known simplifications (documented, not hidden): list `continue` tokens resume from the
//! current state rather than a snapshot; `resourceVersion`/`resourceVersionMatch` on lists are
//! accepted but the latest state is served; server-side apply is a strategic merge without
//! `managedFields` ownership; `fieldValidation=Strict` is accepted without rejecting unknown
//! fields; core/v1 and events.k8s.io/v1 events are stored separately; protobuf request bodies
//! are decoded for the kinds `kubectl create <kind>` sends (others get 415).

// Handlers return `Result<_, Response>` so an error is already the Status to send; the large
// `Err` only exists on failure paths.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt as _;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admission::{self, Cause, DefaultsContext};
use crate::metrics::{RequestKey, Scope, SimMetrics};
use crate::patch::{self, PatchType};
use crate::resources::{API_VERSIONS, RESOURCES, ResourceDef, idx, sub};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::stages::ServerStages;
use crate::store::{
    DeleteOptions, DeleteOutcome, Entry, Filter, Propagation, Store, StoreError, UpdateMode,
    WatchFrom, WatchItem,
};
use crate::{openapi, tables};

/// Version reported on `/version`.
pub const GIT_VERSION: &str = "v1.36.0-cl2sim";

/// Largest accepted request body (like kube-apiserver's 3 MiB limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (default 127.0.0.1:0).
    pub listen: SocketAddr,
    /// Realism settings.
    pub stages: ServerStages,
    /// Period of BOOKMARK events on watches that asked for them.
    pub bookmark_interval: Duration,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stages: ServerStages::default(),
            bookmark_interval: Duration::from_secs(10),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// Server start-up failure.
#[derive(Debug, Error)]
pub enum ServerError {
    /// Binding the listen address failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A running API server.
#[derive(Debug)]
pub struct ApiServer {
    /// Bound address.
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
}

impl ApiServer {
    /// Stops serving (open watches end) and waits up to 5 s for connections to drain.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let mut handle = self.handle;
        if tokio::time::timeout(Duration::from_secs(5), &mut handle)
            .await
            .is_err()
        {
            handle.abort();
        }
    }
}

struct AppInner {
    store: Arc<Store>,
    metrics: Arc<SimMetrics>,
    cfg: ServerConfig,
    started: Instant,
    shutdown: CancellationToken,
    addr: SocketAddr,
}

#[derive(Clone)]
struct App(Arc<AppInner>);

/// Starts the API server on `cfg.listen`; returns once it accepts connections.
pub async fn start(
    cfg: ServerConfig,
    store: Arc<Store>,
    metrics: Arc<SimMetrics>,
    shutdown: CancellationToken,
) -> Result<ApiServer, ServerError> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let app = App(Arc::new(AppInner {
        store,
        metrics,
        cfg,
        started: Instant::now(),
        shutdown: shutdown.clone(),
        addr,
    }));
    let router = Router::new().fallback(move |req: Request| {
        let app = app.clone();
        async move { app.handle_safe(req).await }
    });
    let sd = shutdown.clone();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { sd.cancelled().await })
            .await;
    });
    Ok(ApiServer {
        addr,
        handle,
        shutdown,
    })
}

// ---------------------------------------------------------------------------------------------
// Status helpers

fn json_response(code: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn value_response(code: StatusCode, v: &Value) -> Response {
    json_response(code, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

/// Builds a Failure `Status` response.
pub fn status_error(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    value_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &s,
    )
}

fn success_status(code: u16, details: Option<Value>) -> Response {
    let mut s =
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":code});
    if let Some(d) = details {
        s["details"] = d;
    }
    value_response(StatusCode::from_u16(code).unwrap_or(StatusCode::OK), &s)
}

fn details(def: &ResourceDef, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": def.plural});
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    d
}

fn bad_request(msg: &str) -> Response {
    status_error(400, "BadRequest", msg, None)
}

fn not_found_path() -> Response {
    status_error(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn method_not_allowed(method: &Method) -> Response {
    let mut r = status_error(
        405,
        "MethodNotAllowed",
        &format!("the server does not allow this method on the requested resource ({method})"),
        Some(json!({})),
    );
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
    );
    r
}

fn store_error(def: &ResourceDef, e: StoreError) -> Response {
    match &e {
        StoreError::NotFound { resource, name } => {
            let mut d = json!({"name": name, "kind": resource.split('.').next().unwrap_or("")});
            if let Some((_, g)) = resource.split_once('.') {
                d["group"] = json!(g);
            }
            status_error(404, "NotFound", &e.to_string(), Some(d))
        }
        StoreError::AlreadyExists { name, .. } => status_error(
            409,
            "AlreadyExists",
            &e.to_string(),
            Some(details(def, name)),
        ),
        StoreError::Conflict { name, .. } => {
            status_error(409, "Conflict", &e.to_string(), Some(details(def, name)))
        }
        StoreError::NamespaceTerminating {
            name, namespace, ..
        } => {
            let mut d = details(def, name);
            d["causes"] = json!([{"reason":"NamespaceTerminating","message":format!("namespace {namespace} is being terminated"),"field":"metadata.namespace"}]);
            status_error(403, "Forbidden", &e.to_string(), Some(d))
        }
        StoreError::Gone { .. } => status_error(410, "Expired", &e.to_string(), None),
        StoreError::Invalid(msg) => status_error(400, "BadRequest", msg, None),
        StoreError::Internal(msg) => status_error(500, "InternalError", msg, None),
    }
}

fn invalid(def: &ResourceDef, name: &str, causes: &[Cause]) -> Response {
    let msgs: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let message = if msgs.len() == 1 {
        format!("{} \"{}\" is invalid: {}", def.kind, name, msgs[0])
    } else {
        format!(
            "{} \"{}\" is invalid: [{}]",
            def.kind,
            name,
            msgs.join(", ")
        )
    };
    let mut d = json!({
        "name": name,
        "kind": def.kind,
        "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
    });
    if !def.group.is_empty() {
        d["group"] = json!(def.group);
    }
    status_error(422, "Invalid", &message, Some(d))
}

// ---------------------------------------------------------------------------------------------
// Request parsing

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Resource index in [`RESOURCES`].
    pub res: usize,
    /// Namespace from the path ("" when none).
    pub namespace: String,
    /// Whether the path had a namespace segment.
    pub ns_given: bool,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub sub: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/<g>/<v>/...` resource paths.
pub fn parse_target(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() || rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mk =
        |res: usize, ns: &str, ns_given: bool, name: Option<&&str>, sub: Option<&&str>| Target {
            res,
            namespace: ns.to_string(),
            ns_given,
            name: name.map(|s| s.to_string()),
            sub: sub.map(|s| s.to_string()),
        };
    if rest[0] == "namespaces" && rest.len() >= 3 && group.is_empty()
        || rest[0] == "namespaces" && !group.is_empty() && rest.len() >= 3
    {
        let ns = rest[1];
        if let Some(r) = crate::resources::find(group, version, rest[2])
            && RESOURCES[r].namespaced
        {
            if rest.len() > 5 {
                return None;
            }
            return Some(mk(r, ns, true, rest.get(3), rest.get(4)));
        }
        if group.is_empty() && (rest[2] == "status" || rest[2] == "finalize") && rest.len() == 3 {
            let r = crate::resources::find("", version, "namespaces")?;
            return Some(mk(r, "", false, rest.get(1), rest.get(2)));
        }
        return None;
    }
    let r = crate::resources::find(group, version, rest[0])?;
    if rest.len() > 3 {
        return None;
    }
    Some(mk(r, "", false, rest.get(1), rest.get(2)))
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn is_true(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

/// What the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    Json,
    Table,
}

fn wants(headers: &http::HeaderMap) -> Wants {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("");
    if first.contains("as=Table") {
        Wants::Table
    } else {
        Wants::Json
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    fn metric(self, apply: bool) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch if apply => "APPLY",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }
}

struct DefaultsCtx<'a>(&'a Store);

impl DefaultsContext for DefaultsCtx<'_> {
    fn priority_class_value(&self, name: &str) -> Option<i64> {
        let e = self
            .0
            .get(idx("scheduling.k8s.io", "priorityclasses"), "", name)?;
        e.value().ok()?.get("value")?.as_i64()
    }

    fn allocate_cluster_ip(&self) -> String {
        self.0.allocate_cluster_ip()
    }
}

fn list_prefix(
    def: &ResourceDef,
    rv: u64,
    cont: Option<&str>,
    remaining: Option<usize>,
) -> BytesMut {
    let mut b = BytesMut::with_capacity(4096);
    b.put_slice(b"{\"kind\":\"");
    b.put_slice(def.kind.as_bytes());
    b.put_slice(b"List\",\"apiVersion\":\"");
    b.put_slice(def.api_version().as_bytes());
    b.put_slice(b"\",\"metadata\":{\"resourceVersion\":\"");
    b.put_slice(rv.to_string().as_bytes());
    b.put_slice(b"\"");
    if let Some(c) = cont {
        b.put_slice(b",\"continue\":\"");
        b.put_slice(c.as_bytes());
        b.put_slice(b"\"");
    }
    if let Some(r) = remaining {
        b.put_slice(b",\"remainingItemCount\":");
        b.put_slice(r.to_string().as_bytes());
    }
    b.put_slice(b"},\"items\":[");
    b
}

fn encode_continue(rv: u64, key: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(tok: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    Some(v.get("start")?.as_str()?.to_string())
}

fn watch_line(ty: &str, obj: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(obj.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(ty.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(obj);
    b.put_slice(b"}\n");
    b.freeze()
}

impl App {
    async fn handle_safe(&self, req: Request) -> Response {
        match AssertUnwindSafe(self.handle(req)).catch_unwind().await {
            Ok(r) => r,
            Err(_) => status_error(
                500,
                "InternalError",
                "an internal error occurred while handling the request",
                None,
            ),
        }
    }

    async fn handle(&self, req: Request) -> Response {
        let start = Instant::now();
        let path = req.uri().path().to_string();
        match path.as_str() {
            "/healthz" | "/livez" | "/readyz" | "/healthz/ping" | "/livez/ping"
            | "/readyz/ping" => {
                let mut r = Response::new(Body::from("ok"));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return r;
            }
            "/version" => {
                return value_response(
                    StatusCode::OK,
                    &json!({"major":"1","minor":"36","emulationMajor":"1","emulationMinor":"36","minCompatibilityMajor":"1","minCompatibilityMinor":"35","gitVersion":GIT_VERSION,"gitCommit":"0000000000000000000000000000000000000000","gitTreeState":"clean","buildDate":"2026-01-01T00:00:00Z","goVersion":"go1.25.0","compiler":"gc","platform":"linux/amd64"}),
                );
            }
            "/metrics" => {
                self.0.metrics.set_storage_objects(self.0.store.counts());
                let mut r = Response::new(Body::from(self.0.metrics.render()));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                return r;
            }
            "/api" | "/api/" | "/apis" | "/apis/" if wants_aggregated(req.headers()) => {
                let v = aggregated_discovery(path.starts_with("/apis"));
                let mut r = value_response(StatusCode::OK, &v);
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                    ),
                );
                return r;
            }
            "/api" | "/api/" => return value_response(StatusCode::OK, &self.api_versions()),
            "/apis" | "/apis/" => return value_response(StatusCode::OK, &api_group_list()),
            _ => {}
        }
        if path.starts_with("/openapi/") || path == "/swagger-2.0.0.pb-v1" {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return openapi::serve(&path, accept);
        }
        if let Some(r) = discovery(&path) {
            return r;
        }
        let Some(target) = parse_target(&path) else {
            return not_found_path();
        };
        let def = &RESOURCES[target.res];
        let query = parse_query(req.uri().query());
        let method = req.method().clone();
        let verb = match (&method, target.name.is_some()) {
            (&Method::GET, true) => Verb::Get,
            (&Method::GET, false) => {
                if is_true(&query, "watch") {
                    Verb::Watch
                } else {
                    Verb::List
                }
            }
            (&Method::POST, false) => Verb::Create,
            (&Method::POST, true) if target.sub.is_some() => Verb::Create,
            (&Method::PUT, true) => Verb::Update,
            (&Method::PATCH, true) => Verb::Patch,
            (&Method::DELETE, true) => Verb::Delete,
            (&Method::DELETE, false) => Verb::DeleteCollection,
            _ => return method_not_allowed(&method),
        };
        // Subresource sanity.
        if let Some(s) = &target.sub {
            let ok = match s.as_str() {
                "status" => def.has(sub::STATUS),
                "scale" => def.has(sub::SCALE),
                "binding" => def.has(sub::BINDING) && verb == Verb::Create,
                "eviction" => def.has(sub::EVICTION) && verb == Verb::Create,
                "finalize" => def.plural == "namespaces" && verb == Verb::Update,
                _ => false,
            };
            if !ok {
                return if matches!(s.as_str(), "binding" | "eviction") && def.has(sub::BINDING) {
                    method_not_allowed(&method)
                } else {
                    not_found_path()
                };
            }
        }
        let is_apply = verb == Verb::Patch
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/apply-patch"));
        let dry_run = is_dry_run(&query);
        let key = RequestKey {
            verb: verb.metric(is_apply),
            dry_run,
            group: def.group,
            version: def.version,
            resource: def.plural,
            subresource: match target.sub.as_deref() {
                Some("status") => "status",
                Some("scale") => "scale",
                Some("binding") => "binding",
                Some("eviction") => "eviction",
                Some("finalize") => "finalize",
                _ => "",
            },
            scope: if target.name.is_some() {
                Scope::Resource
            } else if target.ns_given {
                Scope::Namespace
            } else {
                Scope::Cluster
            },
        };
        let mutating = !matches!(verb, Verb::Get | Verb::List | Verb::Watch);
        let limits = &self.0.cfg.stages.max_in_flight;
        let (_guard, n) = self.0.metrics.inflight(mutating);
        let limit = if mutating {
            limits.mutating
        } else {
            limits.read_only
        };
        if verb != Verb::Watch && limit > 0 && n > limit {
            let mut r = status_error(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
                Some(json!({"retryAfterSeconds": 1})),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            self.0.metrics.record_request(key, 429, start.elapsed());
            return r;
        }
        let injected = self
            .0
            .cfg
            .stages
            .latency_for(key.verb, self.0.started.elapsed());
        if !injected.is_zero() {
            tokio::time::sleep(injected).await;
        }
        if let Some(code) = self.0.cfg.stages.fault_for(key.verb, def.plural) {
            let reason = match code {
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                409 => "Conflict",
                _ => "InternalError",
            };
            let mut r = status_error(code, reason, "injected fault (cl2 simulator stages)", None);
            if code == 429 {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            self.0.metrics.record_request(key, code, start.elapsed());
            return r;
        }
        let table = wants(req.headers());
        let resp = match verb {
            Verb::Get => self.get(&target, &query, table),
            Verb::List => self.list(&target, &query, table),
            Verb::Watch => self.watch(&target, &query, table),
            _ => {
                let (parts, body) = req.into_parts();
                let headers = &parts.headers;
                let body = match axum::body::to_bytes(body, self.0.cfg.max_body_bytes).await {
                    Ok(b) => b,
                    Err(_) => {
                        let r = status_error(
                            413,
                            "RequestEntityTooLarge",
                            &format!(
                                "Request entity too large: limit is {}",
                                self.0.cfg.max_body_bytes
                            ),
                            None,
                        );
                        self.0.metrics.record_request(key, 413, start.elapsed());
                        return r;
                    }
                };
                match verb {
                    Verb::Create => self.create(&target, &query, headers, &body),
                    Verb::Update => self.update(&target, &query, headers, &body),
                    Verb::Patch => self.patch(&target, &query, headers, &body),
                    Verb::Delete => self.delete(&target, &query, &body),
                    _ => self.delete_collection(&target, &query, &body),
                }
            }
        };
        self.0
            .metrics
            .record_request(key, resp.status().as_u16(), start.elapsed());
        resp
    }

    fn api_versions(&self) -> Value {
        json!({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":self.0.addr.to_string()}]})
    }

    fn filter(&self, target: &Target, query: &HashMap<String, String>) -> Result<Filter, Response> {
        let def = &RESOURCES[target.res];
        let label =
            LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
                .map_err(|e| bad_request(&e.to_string()))?;
        let field = FieldSelector::parse(
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
            def.fields,
        )
        .map_err(|e| bad_request(&e.to_string()))?;
        Ok(Filter {
            namespace: if target.ns_given && def.namespaced {
                Some(target.namespace.clone())
            } else {
                None
            },
            label,
            field,
        })
    }

    fn get(&self, target: &Target, query: &HashMap<String, String>, table: Wants) -> Response {
        let def = &RESOURCES[target.res];
        let name = target.name.as_deref().unwrap_or("");
        let Some(e) = self.0.store.get(target.res, &target.namespace, name) else {
            return store_error(
                def,
                StoreError::NotFound {
                    resource: crate::store::qualified_resource(target.res),
                    name: name.to_string(),
                },
            );
        };
        match target.sub.as_deref() {
            Some("scale") => match e.value() {
                Ok(v) => value_response(StatusCode::OK, &scale_of(&v)),
                Err(err) => store_error(def, err),
            },
            _ if table == Wants::Table => {
                let items = vec![e.value().unwrap_or(Value::Null)];
                value_response(
                    StatusCode::OK,
                    &tables::to_table(def, items, include_object(query), e.rv, None),
                )
            }
            _ => json_response(StatusCode::OK, e.bytes.clone()),
        }
    }

    fn list(&self, target: &Target, query: &HashMap<String, String>, table: Wants) -> Response {
        let def = &RESOURCES[target.res];
        let filter = match self.filter(target, query) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let limit: usize = match query.get("limit").map(|l| l.parse::<i64>()) {
            None => 0,
            Some(Ok(n)) if n >= 0 => n as usize,
            Some(_) => return bad_request("invalid limit"),
        };
        let after = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(c) => match decode_continue(c) {
                Some(k) => Some(k),
                None => return bad_request("continue key is not valid: invalid continue token"),
            },
            None => None,
        };
        let res = self
            .0
            .store
            .list(target.res, &filter, limit, after.as_deref());
        let cont = res
            .continue_after
            .as_ref()
            .map(|k| encode_continue(res.rv, k));
        if table == Wants::Table {
            let items: Vec<Value> = res.items.iter().filter_map(|e| e.value().ok()).collect();
            return value_response(
                StatusCode::OK,
                &tables::to_table(def, items, include_object(query), res.rv, cont.as_deref()),
            );
        }
        let mut b = list_prefix(def, res.rv, cont.as_deref(), res.remaining);
        for (i, e) in res.items.iter().enumerate() {
            if i > 0 {
                b.put_u8(b',');
            }
            b.put_slice(&e.bytes);
        }
        b.put_slice(b"]}");
        json_response(StatusCode::OK, b.freeze())
    }

    fn watch(&self, target: &Target, query: &HashMap<String, String>, table: Wants) -> Response {
        let def = &RESOURCES[target.res];
        let mut filter = match self.filter(target, query) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Some(n) = &target.name {
            // Legacy single-object watch.
            match FieldSelector::parse(&format!("metadata.name={n}"), &[]) {
                Ok(f) => filter.field = f,
                Err(e) => return bad_request(&e.to_string()),
            }
        }
        let rv = query
            .get("resourceVersion")
            .map(String::as_str)
            .unwrap_or("");
        let send_initial = is_true(query, "sendInitialEvents");
        let bookmarks = is_true(query, "allowWatchBookmarks");
        let from = if send_initial || rv.is_empty() || rv == "0" {
            if rv.is_empty() || rv == "0" || send_initial {
                WatchFrom::Initial
            } else {
                WatchFrom::Now
            }
        } else {
            match rv.parse::<u64>() {
                Ok(n) => WatchFrom::Rv(n),
                Err(_) => return bad_request(&format!("invalid resource version: {rv}")),
            }
        };
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800 + rand::random::<u64>() % 1800));
        let drop_after = self.0.cfg.stages.drop_watches_every_seconds;
        let timeout = if drop_after > 0.0 {
            timeout.min(Duration::from_secs_f64(drop_after))
        } else {
            timeout
        };
        let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
        let start = self.0.store.watch(target.res, filter, from);
        let store = self.0.store.clone();
        let shutdown = self.0.shutdown.clone();
        let bookmark_every = self.0.cfg.bookmark_interval;
        let kind = def.kind;
        let api_version = def.api_version();
        let def = *def;
        let include = include_object(query);
        tokio::spawn(async move {
            let encode = move |item: &WatchItem| -> Bytes {
                if table == Wants::Table {
                    let v = item.obj.value().unwrap_or(Value::Null);
                    let t = tables::to_table(&def, vec![v], include, item.obj.rv, None);
                    watch_line(
                        item.ty.as_str(),
                        &serde_json::to_vec(&t).unwrap_or_default(),
                    )
                } else {
                    watch_line(item.ty.as_str(), &item.obj.bytes)
                }
            };
            let mut w = match start {
                Ok(w) => w,
                Err(e) => {
                    let status = json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":e.to_string(),"reason":"Expired","code":410});
                    let _ = tx
                        .send(Ok(watch_line(
                            "ERROR",
                            &serde_json::to_vec(&status).unwrap_or_default(),
                        )))
                        .await;
                    return;
                }
            };
            let mut last_rv = w.rv;
            for item in std::mem::take(&mut w.initial) {
                if tx.send(Ok(encode(&item))).await.is_err() {
                    return;
                }
            }
            let bookmark = |rv: u64, initial_end: bool| -> Bytes {
                let mut meta = json!({"resourceVersion": rv.to_string()});
                if initial_end {
                    meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": meta});
                watch_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
            };
            if send_initial && bookmarks && tx.send(Ok(bookmark(last_rv, true))).await.is_err() {
                return;
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut tick = tokio::time::interval(bookmark_every.max(Duration::from_millis(50)));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                    item = w.rx.recv() => {
                        let Some(item) = item else { return };
                        last_rv = item.obj.rv;
                        if tx.send(Ok(encode(&item))).await.is_err() {
                            return;
                        }
                    }
                    _ = tick.tick(), if bookmarks => {
                        let committed = store.current_rv();
                        loop {
                            match w.rx.try_recv() {
                                Ok(item) => {
                                    last_rv = item.obj.rv;
                                    if tx.send(Ok(encode(&item))).await.is_err() {
                                        return;
                                    }
                                }
                                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                                // The store dropped this (slow) watcher: events after `last_rv`
                                // may be missing from the channel, so a bookmark at `committed`
                                // would make the client skip them for good. End the stream
                                // instead; the client resumes from the last event it saw.
                                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
                            }
                        }
                        let rv = committed.max(last_rv);
                        if tx.send(Ok(bookmark(rv, false))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let mut r = Response::new(body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        r
    }

    fn parse_body(
        &self,
        def: &ResourceDef,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Value, Response> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let base = ct.split(';').next().unwrap_or("").trim();
        let v: Value = match base {
            "application/json" | "" | "*/*" => serde_json::from_slice(body)
                .map_err(|e| bad_request(&format!("error decoding request body: {e}")))?,
            "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(body)
                .map_err(|e| bad_request(&format!("error decoding YAML request body: {e}")))?,
            "application/vnd.kubernetes.protobuf" => match crate::protobuf::decode(body) {
                Ok(v) => v,
                Err(crate::protobuf::ProtoError::Malformed) => {
                    return Err(bad_request("error decoding protobuf request body"));
                }
                Err(crate::protobuf::ProtoError::Unsupported(k)) => {
                    return Err(status_error(
                        415,
                        "UnsupportedMediaType",
                        &format!(
                            "the body of the request was in an unknown format - protobuf is not supported for {k}; accepted media types include: application/json, application/yaml"
                        ),
                        None,
                    ));
                }
            },
            _ => {
                return Err(status_error(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {base})"
                    ),
                    None,
                ));
            }
        };
        if !v.is_object() {
            return Err(bad_request("the request body must be a JSON object"));
        }
        let _ = def;
        Ok(v)
    }

    fn check_kind(
        &self,
        def: &ResourceDef,
        v: &mut Value,
        expect_kind: &str,
        expect_av: &str,
    ) -> Result<(), Response> {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        let av = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if !kind.is_empty() && kind != expect_kind {
            return Err(bad_request(&format!(
                "the kind in the data ({kind}) does not match the expected kind ({expect_kind}) for {}",
                def.plural
            )));
        }
        if !av.is_empty() && av != expect_av {
            return Err(bad_request(&format!(
                "the API version in the data ({av}) does not match the expected API version ({expect_av})"
            )));
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), json!(expect_kind));
            o.insert("apiVersion".into(), json!(expect_av));
        }
        if v.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(bad_request("metadata must be an object"));
        }
        Ok(())
    }

    fn create(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Response {
        let def = &RESOURCES[target.res];
        let dry_run = is_dry_run(query);
        match target.sub.as_deref() {
            Some("binding") => return self.bind(target, headers, body),
            Some("eviction") => return self.evict(target, headers, body),
            Some(_) => return method_not_allowed(&Method::POST),
            None => {}
        }
        if def.namespaced && !target.ns_given {
            return method_not_allowed(&Method::POST);
        }
        let mut v = match self.parse_body(def, headers, body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if let Err(r) = self.check_kind(def, &mut v, def.kind, def.api_version()) {
            return r;
        }
        if def.namespaced
            && let Some(ns) = v.pointer("/metadata/namespace").and_then(Value::as_str)
            && !ns.is_empty()
            && ns != target.namespace
        {
            return bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            );
        }
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.remove("resourceVersion");
            m.remove("managedFields");
        } else if let Some(o) = v.as_object_mut() {
            o.insert(
                "metadata".into(),
                json!({"uid": uuid::Uuid::new_v4().to_string()}),
            );
        }
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Err(admission::Forbidden(msg)) =
            admission::apply_defaults(def, &mut v, &DefaultsCtx(&self.0.store))
        {
            return status_error(
                403,
                "Forbidden",
                &format!("{} \"{name}\" is forbidden: {msg}", def.plural),
                Some(details(def, &name)),
            );
        }
        let causes = admission::validate(def, &v);
        if !causes.is_empty() {
            return invalid(def, &name, &causes);
        }
        match self
            .0
            .store
            .create(target.res, &target.namespace, v, dry_run)
        {
            Ok(e) => json_response(StatusCode::CREATED, e.bytes.clone()),
            Err(e) => store_error(def, e),
        }
    }

    fn bind(&self, target: &Target, headers: &http::HeaderMap, body: &[u8]) -> Response {
        let def = &RESOURCES[target.res];
        let name = target.name.clone().unwrap_or_default();
        let v = match self.parse_body(def, headers, body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let node = v
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            return invalid(
                def,
                &name,
                &[Cause {
                    reason: "FieldValueRequired",
                    field: "target.name".into(),
                    message: "Required value".into(),
                }],
            );
        }
        let res = self.0.store.update(target.res, &target.namespace, &name, UpdateMode::Raw, false, |old| {
            let cur = old.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
            if !cur.is_empty() {
                return Err(StoreError::Conflict {
                    resource: "pods/binding".into(),
                    name: name.clone(),
                    reason: format!("pod {name} is already assigned to node \"{cur}\""),
                });
            }
            if old.pointer("/metadata/deletionTimestamp").is_some_and(|d| !d.is_null()) {
                return Err(StoreError::Conflict {
                    resource: "pods/binding".into(),
                    name: name.clone(),
                    reason: format!("pod {name} is being deleted, cannot be assigned to a host"),
                });
            }
            let mut p = old.clone();
            p["spec"]["nodeName"] = json!(node);
            let cond = json!({"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":crate::store::now_rfc3339()});
            let conds = p["status"].as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
            if let Some(Value::Array(c)) = conds {
                c.retain(|x| x.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                c.push(cond);
            }
            Ok(p)
        });
        match res {
            Ok(_) => success_status(201, None),
            Err(e) => store_error(def, e),
        }
    }

    fn evict(&self, target: &Target, headers: &http::HeaderMap, body: &[u8]) -> Response {
        let def = &RESOURCES[target.res];
        let name = target.name.clone().unwrap_or_default();
        let v = self.parse_body(def, headers, body).unwrap_or(json!({}));
        let opts = DeleteOptions {
            grace: v
                .pointer("/deleteOptions/gracePeriodSeconds")
                .and_then(Value::as_i64),
            ..Default::default()
        };
        match self
            .0
            .store
            .delete(target.res, &target.namespace, &name, &opts)
        {
            Ok(_) => success_status(201, None),
            Err(e) => store_error(def, e),
        }
    }

    fn update(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Response {
        let def = &RESOURCES[target.res];
        let name = target.name.clone().unwrap_or_default();
        let dry_run = is_dry_run(query);
        let mut v = match self.parse_body(def, headers, body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        if target.sub.as_deref() == Some("scale") {
            if let Err(r) = self.check_kind(def, &mut v, "Scale", "autoscaling/v1") {
                return r;
            }
            let Some(replicas) = v.pointer("/spec/replicas").and_then(Value::as_i64) else {
                return invalid(
                    def,
                    &name,
                    &[Cause {
                        reason: "FieldValueRequired",
                        field: "spec.replicas".into(),
                        message: "Required value".into(),
                    }],
                );
            };
            let want_rv = v
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            return self.scale_to(target, &name, replicas, want_rv, dry_run);
        }
        if let Err(r) = self.check_kind(def, &mut v, def.kind, def.api_version()) {
            return r;
        }
        let mode = match target.sub.as_deref() {
            Some("status") => UpdateMode::Status,
            Some("finalize") => UpdateMode::Raw,
            _ => UpdateMode::Main,
        };
        let causes = if mode == UpdateMode::Main {
            admission::validate(def, &v)
        } else {
            Vec::new()
        };
        if !causes.is_empty() {
            return invalid(def, &name, &causes);
        }
        let res = self
            .0
            .store
            .update(target.res, &target.namespace, &name, mode, dry_run, |old| {
                let mut new = v.clone();
                if mode == UpdateMode::Main {
                    admission::apply_update_defaults(def, &mut new, &DefaultsCtx(&self.0.store));
                }
                if mode == UpdateMode::Raw {
                    // namespaces/finalize: only spec.finalizers may change.
                    let mut keep = old.clone();
                    keep["spec"]["finalizers"] = new
                        .pointer("/spec/finalizers")
                        .cloned()
                        .unwrap_or(json!([]));
                    new = keep;
                }
                Ok(new)
            });
        match res {
            Ok(e) => json_response(StatusCode::OK, e.bytes.clone()),
            // Leases and events allow create-on-update, like the real registry strategies.
            Err(StoreError::NotFound { .. })
                if mode == UpdateMode::Main && matches!(def.plural, "leases" | "events") =>
            {
                let t = Target {
                    name: None,
                    ..target.clone()
                };
                self.create(&t, query, headers, body)
            }
            Err(e) => store_error(def, e),
        }
    }

    fn scale_to(
        &self,
        target: &Target,
        name: &str,
        replicas: i64,
        want_rv: Option<String>,
        dry_run: bool,
    ) -> Response {
        let def = &RESOURCES[target.res];
        let res = self.0.store.update(
            target.res,
            &target.namespace,
            name,
            UpdateMode::Main,
            dry_run,
            |old| {
                let mut v = old.clone();
                if let Some(rv) = &want_rv {
                    v["metadata"]["resourceVersion"] = json!(rv);
                }
                v["spec"]["replicas"] = json!(replicas);
                Ok(v)
            },
        );
        match res.and_then(|e| e.value()) {
            Ok(v) => value_response(StatusCode::OK, &scale_of(&v)),
            Err(e) => store_error(def, e),
        }
    }

    fn patch(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Response {
        let def = &RESOURCES[target.res];
        let name = target.name.clone().unwrap_or_default();
        let dry_run = is_dry_run(query);
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(pt) = PatchType::from_content_type(ct) else {
            return status_error(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"
                ),
                None,
            );
        };
        if target.sub.as_deref() == Some("scale") {
            let Some(cur) = self.0.store.get(target.res, &target.namespace, &name) else {
                return store_error(
                    def,
                    StoreError::NotFound {
                        resource: crate::store::qualified_resource(target.res),
                        name,
                    },
                );
            };
            let scale = match cur.value() {
                Ok(v) => scale_of(&v),
                Err(e) => return store_error(def, e),
            };
            let patched = match patch::apply(&scale, pt, body) {
                Ok(p) => p,
                Err(e) => return bad_request(&e.to_string()),
            };
            let Some(replicas) = patched.pointer("/spec/replicas").and_then(Value::as_i64) else {
                return bad_request("spec.replicas must be an integer");
            };
            return self.scale_to(target, &name, replicas, None, dry_run);
        }
        // Server-side apply creates missing objects.
        if pt == PatchType::Apply
            && self
                .0
                .store
                .get(target.res, &target.namespace, &name)
                .is_none()
            && target.sub.is_none()
        {
            let v: Value = match serde_yaml::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request(&format!("error decoding YAML: {e}")),
            };
            let Ok(bytes) = serde_json::to_vec(&v) else {
                return bad_request("invalid apply body");
            };
            let mut h = http::HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let t = Target {
                name: None,
                ..target.clone()
            };
            let mut r = self.create(&t, query, &h, &bytes);
            if r.status() == StatusCode::CREATED {
                *r.status_mut() = StatusCode::CREATED;
            }
            return r;
        }
        let mode = match target.sub.as_deref() {
            Some("status") => UpdateMode::Status,
            _ => UpdateMode::Main,
        };
        let mut patch_err: Option<Response> = None;
        let res = self
            .0
            .store
            .update(target.res, &target.namespace, &name, mode, dry_run, |old| {
                let mut new = match patch::apply(old, pt, body) {
                    Ok(n) => n,
                    Err(e) => {
                        let r = match e {
                            patch::PatchError::BadPatch(m) => bad_request(&m),
                            patch::PatchError::Failed(m) => status_error(422, "Invalid", &m, None),
                        };
                        patch_err = Some(r);
                        return Err(StoreError::Invalid("patch".into()));
                    }
                };
                if let Some(o) = new.as_object_mut() {
                    o.insert("kind".into(), json!(def.kind));
                    o.insert("apiVersion".into(), json!(def.api_version()));
                }
                if mode == UpdateMode::Main {
                    admission::apply_update_defaults(def, &mut new, &DefaultsCtx(&self.0.store));
                    let causes = admission::validate(def, &new);
                    if !causes.is_empty() {
                        patch_err = Some(invalid(def, &name, &causes));
                        return Err(StoreError::Invalid("invalid".into()));
                    }
                }
                Ok(new)
            });
        match res {
            Ok(e) => json_response(StatusCode::OK, e.bytes.clone()),
            Err(e) => patch_err.unwrap_or_else(|| store_error(def, e)),
        }
    }

    fn delete_options(
        &self,
        query: &HashMap<String, String>,
        body: &[u8],
    ) -> Result<DeleteOptions, Response> {
        let mut opts = DeleteOptions::default();
        if !body.is_empty() && body.iter().any(|b| !b.is_ascii_whitespace()) {
            let v: Value = if body.starts_with(b"k8s\0") {
                crate::protobuf::decode(body)
                    .map_err(|_| bad_request("error decoding DeleteOptions protobuf"))?
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| bad_request(&format!("error decoding DeleteOptions: {e}")))?
            };
            if !v.is_object() {
                return Err(bad_request("DeleteOptions must be an object"));
            }
            opts.grace = v.get("gracePeriodSeconds").and_then(Value::as_i64);
            opts.propagation = v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .and_then(parse_propagation);
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                opts.propagation = Some(Propagation::Orphan);
            }
            opts.uid = v
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.resource_version = v
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            if v.get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x == "All"))
            {
                opts.dry_run = true;
            }
        }
        if let Some(g) = query.get("gracePeriodSeconds") {
            opts.grace = Some(
                g.parse()
                    .map_err(|_| bad_request("invalid gracePeriodSeconds"))?,
            );
        }
        if let Some(p) = query.get("propagationPolicy") {
            opts.propagation =
                Some(parse_propagation(p).ok_or_else(|| {
                    bad_request(&format!("propagationPolicy {p} is not supported"))
                })?);
        }
        if is_true(query, "orphanDependents") {
            opts.propagation = Some(Propagation::Orphan);
        }
        if is_dry_run(query) {
            opts.dry_run = true;
        }
        Ok(opts)
    }

    fn delete(&self, target: &Target, query: &HashMap<String, String>, body: &[u8]) -> Response {
        let def = &RESOURCES[target.res];
        if target.sub.is_some() {
            return method_not_allowed(&Method::DELETE);
        }
        let opts = match self.delete_options(query, body) {
            Ok(o) => o,
            Err(r) => return r,
        };
        let name = target.name.clone().unwrap_or_default();
        match self
            .0
            .store
            .delete(target.res, &target.namespace, &name, &opts)
        {
            Ok(DeleteOutcome::Removed(e)) => json_response(StatusCode::OK, e.bytes.clone()),
            Ok(DeleteOutcome::Pending(e)) => {
                let code = if e.foreground {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::OK
                };
                json_response(code, e.bytes.clone())
            }
            Err(e) => store_error(def, e),
        }
    }

    fn delete_collection(
        &self,
        target: &Target,
        query: &HashMap<String, String>,
        body: &[u8],
    ) -> Response {
        let def = &RESOURCES[target.res];
        let filter = match self.filter(target, query) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let opts = match self.delete_options(query, body) {
            Ok(o) => o,
            Err(r) => return r,
        };
        let res = self.0.store.list(target.res, &filter, 0, None);
        let mut b = list_prefix(def, res.rv, None, None);
        let mut first = true;
        for e in &res.items {
            let out = self
                .0
                .store
                .delete(target.res, e.namespace(), e.name(), &opts);
            let entry: Option<Arc<Entry>> = match out {
                Ok(DeleteOutcome::Removed(x)) | Ok(DeleteOutcome::Pending(x)) => Some(x),
                Err(_) => None,
            };
            if let Some(x) = entry {
                if !first {
                    b.put_u8(b',');
                }
                first = false;
                b.put_slice(&x.bytes);
            }
        }
        b.put_slice(b"]}");
        json_response(StatusCode::OK, b.freeze())
    }
}

fn parse_propagation(p: &str) -> Option<Propagation> {
    match p {
        "Background" => Some(Propagation::Background),
        "Foreground" => Some(Propagation::Foreground),
        "Orphan" => Some(Propagation::Orphan),
        _ => None,
    }
}

fn include_object(query: &HashMap<String, String>) -> tables::Include {
    match query.get("includeObject").map(String::as_str) {
        Some("Object") => tables::Include::Object,
        Some("None") => tables::Include::None,
        _ => tables::Include::Metadata,
    }
}

/// The autoscaling/v1 Scale view of a scalable object.
/// `?dryRun=All`: validate and default, but persist nothing.
fn is_dry_run(query: &HashMap<String, String>) -> bool {
    query.get("dryRun").is_some_and(|v| v == "All")
}

fn scale_of(v: &Value) -> Value {
    let meta = v.get("metadata").cloned().unwrap_or(json!({}));
    let selector = match v.pointer("/spec/selector") {
        Some(Value::Object(m))
            if m.contains_key("matchLabels") || m.contains_key("matchExpressions") =>
        {
            m.get("matchLabels")
                .and_then(Value::as_object)
                .map(tables::labels_string)
                .unwrap_or_default()
        }
        Some(Value::Object(m)) => tables::labels_string(m),
        _ => String::new(),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": v.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": v.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    })
}

// ---------------------------------------------------------------------------------------------
// Discovery

fn verbs(def: &ResourceDef) -> Value {
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
    .as_array()
    .cloned()
    .map(|mut v| {
        if def.plural == "namespaces" {
            v.retain(|x| x != "deletecollection");
        }
        Value::Array(v)
    })
    .unwrap_or_default()
}

/// Whether the client prefers the aggregated discovery document (apidiscovery.k8s.io/v2).
fn wants_aggregated(headers: &http::HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("");
    first.contains("g=apidiscovery.k8s.io")
        && first.contains("v=v2")
        && !first.contains("v=v2beta1")
        && first.contains("as=APIGroupDiscoveryList")
}

/// The aggregated discovery document for `/api` (core) or `/apis` (named groups).
fn aggregated_discovery(named: bool) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _, _) in API_VERSIONS {
        if g.is_empty() != named && !groups.contains(g) {
            groups.push(g);
        }
    }
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let versions: Vec<Value> = API_VERSIONS
                .iter()
                .filter(|(gg, _, _)| gg == g)
                .map(|(_, v, _)| {
                    let resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|d| d.group == *g && d.version == *v)
                        .map(|d| {
                            let mut subs = Vec::new();
                            let sub_entry = |name: &str, group: &str, version: &str, kind: &str, verbs: Value| {
                                json!({"subresource": name, "responseKind": {"group": group, "version": version, "kind": kind}, "verbs": verbs})
                            };
                            if d.has(sub::BINDING) {
                                subs.push(sub_entry("binding", "", "v1", "Binding", json!(["create"])));
                            }
                            if d.has(sub::EVICTION) {
                                subs.push(sub_entry("eviction", "policy", "v1", "Eviction", json!(["create"])));
                            }
                            if d.plural == "namespaces" {
                                subs.push(sub_entry("finalize", "", "v1", "Namespace", json!(["update"])));
                            }
                            if d.has(sub::SCALE) {
                                subs.push(sub_entry("scale", "autoscaling", "v1", "Scale", json!(["get", "patch", "update"])));
                            }
                            if d.has(sub::STATUS) {
                                subs.push(sub_entry("status", d.group, d.version, d.kind, json!(["get", "patch", "update"])));
                            }
                            let mut r = json!({
                                "resource": d.plural,
                                "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                                "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular,
                                "verbs": verbs(d),
                            });
                            if !d.short_names.is_empty() {
                                r["shortNames"] = json!(d.short_names);
                            }
                            if d.all {
                                r["categories"] = json!(["all"]);
                            }
                            if !subs.is_empty() {
                                r["subresources"] = Value::Array(subs);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let av = API_VERSIONS
        .iter()
        .find(|(g, v, _)| *g == group && *v == version)?
        .2;
    let mut resources = Vec::new();
    for d in RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let mut r = json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": verbs(d),
            "storageVersionHash": "cl2sim",
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if d.all {
            r["categories"] = json!(["all"]);
        }
        resources.push(r);
        let sub = |name: &str,
                   kind: &str,
                   verbs: Value,
                   group: Option<&str>,
                   version: Option<&str>| {
            let mut s = json!({"name": format!("{}/{name}", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": kind, "verbs": verbs});
            if let Some(g) = group {
                s["group"] = json!(g);
            }
            if let Some(v) = version {
                s["version"] = json!(v);
            }
            s
        };
        if d.has(sub::BINDING) {
            resources.push(sub("binding", "Binding", json!(["create"]), None, None));
        }
        if d.has(sub::EVICTION) {
            resources.push(sub(
                "eviction",
                "Eviction",
                json!(["create"]),
                Some("policy"),
                Some("v1"),
            ));
        }
        if d.plural == "namespaces" {
            resources.push(sub("finalize", "Namespace", json!(["update"]), None, None));
        }
        if d.has(sub::SCALE) {
            resources.push(sub(
                "scale",
                "Scale",
                json!(["get", "patch", "update"]),
                Some("autoscaling"),
                Some("v1"),
            ));
        }
        if d.has(sub::STATUS) {
            resources.push(sub(
                "status",
                d.kind,
                json!(["get", "patch", "update"]),
                None,
                None,
            ));
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": av, "resources": resources}),
    )
}

fn api_group(group: &str) -> Option<Value> {
    let versions: Vec<Value> = API_VERSIONS
        .iter()
        .filter(|(g, _, _)| *g == group && !g.is_empty())
        .map(|(_, v, av)| json!({"groupVersion": av, "version": v}))
        .collect();
    let first = versions.first()?.clone();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": first}),
    )
}

fn api_group_list() -> Value {
    let mut groups: Vec<&str> = API_VERSIONS
        .iter()
        .map(|(g, _, _)| *g)
        .filter(|g| !g.is_empty())
        .collect();
    groups.dedup();
    let list: Vec<Value> = groups
        .iter()
        .filter_map(|g| api_group(g))
        .map(|mut g| {
            if let Some(o) = g.as_object_mut() {
                o.remove("kind");
                o.remove("apiVersion");
            }
            g
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
}

fn discovery(path: &str) -> Option<Response> {
    let segs: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    let v = match segs.as_slice() {
        ["api", v] => resource_list("", v),
        ["apis", g] => api_group(g),
        ["apis", g, v] => resource_list(g, v),
        _ => return None,
    };
    Some(match v {
        Some(v) => value_response(StatusCode::OK, &v),
        None => not_found_path(),
    })
}

/// Handles one request without a network round trip (for in-process property tests):
/// returns status code, content type and body.
pub async fn handle_for_test(store: Arc<Store>, req: http::Request<Body>) -> (u16, String, Bytes) {
    let app = App(Arc::new(AppInner {
        store,
        metrics: Arc::new(SimMetrics::new()),
        cfg: ServerConfig {
            stages: ServerStages::zero(),
            ..ServerConfig::default()
        },
        started: Instant::now(),
        shutdown: CancellationToken::new(),
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    }));
    let r = app.handle_safe(req).await;
    let code = r.status().as_u16();
    let ct = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let is_watch = ct == "application/json" && code == 200;
    let body = if is_watch {
        // Watches never end on their own; read what is immediately available.
        let fut = axum::body::to_bytes(r.into_body(), 64 * 1024 * 1024);
        tokio::time::timeout(Duration::from_millis(200), fut)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    } else {
        axum::body::to_bytes(r.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap_or_default()
    };
    (code, ct, body)
}

/// Seeds the objects a fresh cluster has: the system namespaces, the `kubernetes` service and
/// the system priority classes.
pub fn seed(store: &Store) {
    let ctx = DefaultsCtx(store);
    let put = |res: usize, ns: &str, mut v: Value| {
        let def = &RESOURCES[res];
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
        let _ = admission::apply_defaults(def, &mut v, &ctx);
        let _ = store.create(res, ns, v, false);
    };
    let ns = idx("", "namespaces");
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        put(
            ns,
            "",
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":n}}),
        );
    }
    put(
        idx("", "services"),
        "default",
        json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"kubernetes","labels":{"component":"apiserver","provider":"kubernetes"}},"spec":{"clusterIP":"10.96.0.1","ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":6443}]}}),
    );
    let pc = idx("scheduling.k8s.io", "priorityclasses");
    put(
        pc,
        "",
        json!({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"system-cluster-critical"},"value":2000000000,"description":"Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."}),
    );
    put(
        pc,
        "",
        json!({"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"system-node-critical"},"value":2000001000,"description":"Used for system critical pods that must not be moved from their current node."}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let t = parse_target("/api/v1/namespaces/ns1/pods/p/status").unwrap();
        assert_eq!(RESOURCES[t.res].plural, "pods");
        assert_eq!(t.namespace, "ns1");
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = parse_target("/api/v1/namespaces/ns1").unwrap();
        assert_eq!(RESOURCES[t.res].plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("ns1"));
        let t = parse_target("/api/v1/namespaces/ns1/status").unwrap();
        assert_eq!(t.name.as_deref(), Some("ns1"));
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = parse_target("/apis/apps/v1/namespaces/x/deployments").unwrap();
        assert!(t.ns_given && t.name.is_none());
        let t = parse_target("/api/v1/pods").unwrap();
        assert!(!t.ns_given);
        assert!(parse_target("/api/v1/bogus").is_none());
        assert!(parse_target("/api/v1/namespaces/x/pods/a/b/c").is_none());
        assert!(parse_target("/apis/apps/v1/namespaces/x/pods").is_none());
    }

    #[test]
    fn continue_token_round_trips() {
        let t = encode_continue(5, "ns/name");
        assert_eq!(decode_continue(&t).as_deref(), Some("ns/name"));
        assert!(decode_continue("!!!").is_none());
    }
}
