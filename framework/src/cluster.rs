//! Connecting to a cluster: a `kube::Client` with client-side QPS/burst limiting, retries with
//! backoff (429 honouring Retry-After, 5xx, transport errors) and a latency histogram per
//! (verb, resource), all in a tower layer under the client.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use kube::client::{Body, ConfigExt};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::tuning::TokenBucket;

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Explicit kubeconfig path; None = `KUBECONFIG` / `~/.kube/config` as kubectl does.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// Client-side rate limit (default 100 QPS, as CL2's clients).
    pub qps: f64,
    /// Client-side burst (default 200).
    pub burst: u32,
}

impl ConnectOptions {
    /// CL2's client limits for a cluster of `nodes` nodes: `ceil(nodes/100)` clients (at least
    /// one) of 100 QPS / 200 burst each, as one aggregate limit `(qps, burst)`.
    pub fn cl2_limits_for_nodes(nodes: u64) -> (f64, u32) {
        let clients = nodes.div_ceil(100).max(1);
        let burst = u32::try_from(clients.saturating_mul(200)).unwrap_or(u32::MAX);
        (clients as f64 * 100.0, burst)
    }
}

/// Retry policy of the client layer: exponential backoff on 429 (honouring `Retry-After`), 5xx
/// and transport errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 5).
    pub max_retries: u32,
    /// First backoff (default 100ms), doubled each retry up to `max_backoff` (default 10s).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            context: None,
            qps: 100.0,
            burst: 200,
        }
    }
}

/// A connected cluster: the shared client and what it records.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// Client-side latency seen by every request through `client`.
    pub latency: Arc<ClientLatency>,
    /// Kubeconfig file that reaches this cluster (given, or written for the embedded one),
    /// handed to out-of-process plugins and `Exec`.
    pub kubeconfig_path: Option<PathBuf>,
    /// True when this is cl2's embedded simulated cluster.
    pub simulated: bool,
}

impl Cluster {
    /// A cluster whose client points at a closed local port: enough for measurements and
    /// tests that never call the API (any request fails to connect).
    pub fn offline() -> Cluster {
        let cfg = kube::Config::new("http://127.0.0.1:9".parse().expect("a valid literal URI"));
        let client = kube::Client::try_from(cfg).expect("a client for a plain-HTTP URI");
        Cluster {
            client,
            latency: Arc::default(),
            kubeconfig_path: None,
            simulated: true,
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field("simulated", &self.simulated)
            .finish_non_exhaustive()
    }
}

/// Client-side latency summary of one (verb, resource).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyEntry {
    pub verb: String,
    pub resource: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Client-side request latency per (verb, resource), recorded in microseconds, plus how much
/// the client-side rate limiter held requests back.
#[derive(Default)]
pub struct ClientLatency {
    /// verb → resource → cell. Nested so that recording into an existing cell looks up by
    /// `&str` without allocating; iteration order equals (verb, resource) order.
    inner: Mutex<BTreeMap<String, BTreeMap<String, LatencyCell>>>,
    requests: AtomicU64,
    throttled: AtomicU64,
    throttle_wait_us: AtomicU64,
    retries: AtomicU64,
}

/// How often the client-side rate limiter made requests wait.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSummary {
    /// Requests sent through the client (including watches, excluding retries).
    pub requests: u64,
    /// Requests that waited on the limiter for more than 1ms.
    pub throttled: u64,
    /// Total time requests spent waiting on the limiter.
    pub total_wait_secs: f64,
    /// Retries performed (429, 5xx, transport errors).
    pub retries: u64,
}

impl ThrottleSummary {
    /// True when a noticeable share of requests (≥ 5 %) waited on the client-side limiter,
    /// i.e. the client rather than the cluster limited the load.
    pub fn client_was_bottleneck(&self) -> bool {
        self.requests > 0 && self.throttled * 20 >= self.requests
    }
}

struct LatencyCell {
    hist: hdrhistogram::Histogram<u64>,
    errors: u64,
}

impl ClientLatency {
    /// Records one request. `verb` is the Kubernetes verb (`GET`, `LIST`, `POST`, ...).
    pub fn record(&self, verb: &str, resource: &str, micros: u64, error: bool) {
        let mut map = self.inner.lock();
        if !map.contains_key(verb) {
            map.insert(verb.to_string(), BTreeMap::new());
        }
        let Some(by_resource) = map.get_mut(verb) else {
            return;
        };
        if !by_resource.contains_key(resource) {
            let Ok(hist) = hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3) else {
                return;
            };
            by_resource.insert(resource.to_string(), LatencyCell { hist, errors: 0 });
        }
        let Some(cell) = by_resource.get_mut(resource) else {
            return;
        };
        cell.hist.saturating_record(micros.max(1));
        if error {
            cell.errors += 1;
        }
    }

    /// Limiter and retry counters.
    pub fn throttle(&self) -> ThrottleSummary {
        ThrottleSummary {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            total_wait_secs: self.throttle_wait_us.load(Ordering::Relaxed) as f64 / 1e6,
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    /// Summaries sorted by (verb, resource).
    pub fn snapshot(&self) -> Vec<LatencyEntry> {
        let map = self.inner.lock();
        map.iter()
            .flat_map(|(verb, by_resource)| {
                by_resource
                    .iter()
                    .map(move |(resource, cell)| (verb, resource, cell))
            })
            .map(|(verb, resource, cell)| LatencyEntry {
                verb: verb.clone(),
                resource: resource.clone(),
                count: cell.hist.len(),
                errors: cell.errors,
                p50_ms: cell.hist.value_at_quantile(0.50) as f64 / 1000.0,
                p90_ms: cell.hist.value_at_quantile(0.90) as f64 / 1000.0,
                p99_ms: cell.hist.value_at_quantile(0.99) as f64 / 1000.0,
                max_ms: cell.hist.max() as f64 / 1000.0,
            })
            .collect()
    }
}

/// Errors connecting to a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot load kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("cannot build client: {0}")]
    Client(String),
    #[error("cluster at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
}

/// Connects using a kubeconfig (see [`ConnectOptions`]) and checks the server answers
/// `/version`.
pub async fn connect(opts: &ConnectOptions) -> Result<Cluster, ClusterError> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let kubeconfig = match &opts.kubeconfig {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    }
    .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
    let kopts = KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kopts)
        .await
        .map_err(|e| ClusterError::Kubeconfig(e.to_string()))?;
    let url = config.cluster_url.to_string();
    let cluster = from_kube_config(config, opts, opts.kubeconfig.clone(), false)?;
    check_reachable(&cluster, &url).await?;
    Ok(cluster)
}

/// A cheap `/version` call; `Unreachable` with the URL when it fails.
pub async fn check_reachable(cluster: &Cluster, url: &str) -> Result<(), ClusterError> {
    match tokio::time::timeout(Duration::from_secs(15), cluster.client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Unreachable {
            url: url.to_string(),
            message: error_chain(&e),
        }),
        Err(_) => Err(ClusterError::Unreachable {
            url: url.to_string(),
            message: "no answer to /version within 15s".into(),
        }),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        src = s.source();
    }
    out
}

/// Wraps an already-built `kube::Config` (e.g. the embedded cluster's) with cl2's client layers.
pub fn from_kube_config(
    config: kube::Config,
    opts: &ConnectOptions,
    kubeconfig_path: Option<PathBuf>,
    simulated: bool,
) -> Result<Cluster, ClusterError> {
    let latency = Arc::new(ClientLatency::default());
    let layer = Cl2Layer {
        limiter: (opts.qps > 0.0).then(|| Arc::new(TokenBucket::new(opts.qps, opts.burst))),
        latency: latency.clone(),
        retry: RetryPolicy::default(),
    };
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(
        config.connect_timeout.unwrap_or(Duration::from_secs(10)),
    ));
    http.set_nodelay(true);
    let https = config
        .rustls_https_connector_with_connector(http)
        .map_err(|e| ClusterError::Client(error_chain(&e)))?;
    let hyper_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(https);
    let auth = config
        .auth_layer()
        .map_err(|e| ClusterError::Client(error_chain(&e)))?;
    let headers = config
        .extra_headers_layer()
        .map_err(|e| ClusterError::Client(error_chain(&e)))?;
    let service = tower::ServiceBuilder::new()
        .layer(layer)
        .layer(config.base_uri_layer())
        .option_layer(auth)
        .layer(headers)
        .map_err(BoxError::from)
        .service(hyper_client);
    let client =
        kube::client::ClientBuilder::new(service, config.default_namespace.clone()).build();
    Ok(Cluster {
        client,
        latency,
        kubeconfig_path,
        simulated,
    })
}

/// The tower layer under cl2's client: rate limit → retries → latency recording.
#[derive(Clone)]
pub struct Cl2Layer {
    limiter: Option<Arc<TokenBucket>>,
    latency: Arc<ClientLatency>,
    retry: RetryPolicy,
}

impl Cl2Layer {
    /// A layer limiting to `qps`/`burst` (no limit when `qps <= 0`) and recording into `latency`.
    pub fn new(qps: f64, burst: u32, latency: Arc<ClientLatency>, retry: RetryPolicy) -> Self {
        Self {
            limiter: (qps > 0.0).then(|| Arc::new(TokenBucket::new(qps, burst))),
            latency,
            retry,
        }
    }
}

impl<S> Layer<S> for Cl2Layer {
    type Service = Cl2Service<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Cl2Service {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service produced by [`Cl2Layer`].
#[derive(Clone)]
pub struct Cl2Service<S> {
    inner: S,
    layer: Cl2Layer,
}

/// (verb, resource, is_watch) of a request, as the apiserver's metrics name them.
pub fn classify(method: &Method, path_and_query: &str) -> (String, String, bool) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1")
        || path.contains("/watch/");
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let api_path = match segs.next() {
        Some("api") => segs.next().is_some(),
        Some("apis") => segs.next().is_some() && segs.next().is_some(),
        _ => false,
    };
    // At most `namespaces/<ns>/<resource>/<name>/<sub>` matters: the first five segments
    // after the group version, without `watch`; kept on the stack (this runs per request).
    let mut buf = [""; 5];
    let mut len = 0;
    if api_path {
        for (i, s) in segs.filter(|s| *s != "watch").take(buf.len()).enumerate() {
            buf[i] = s;
            len = i + 1;
        }
    }
    let rest = &buf[..len];
    if rest.is_empty() {
        // Not an API path, or discovery of a group version (`/api/v1`, `/apis/apps/v1`).
        return (method.as_str().to_string(), path.to_string(), watch);
    }
    let (resource, name, sub) = match rest {
        ["namespaces", _ns, resource, tail @ ..] => {
            (*resource, tail.first().copied(), tail.get(1).copied())
        }
        [resource, tail @ ..] => (*resource, tail.first().copied(), tail.get(1).copied()),
        [] => ("", None, None),
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource.to_string(),
    };
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", false) => "LIST",
        ("DELETE", false) => "DELETECOLLECTION",
        (m, _) => m,
    };
    (verb.to_string(), resource, watch)
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn is_connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if err.to_string().contains("Connection refused") {
            return true;
        }
        cur = err.source();
    }
    false
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<Body>> for Cl2Service<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFut<Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let layer = self.layer.clone();
        Box::pin(async move {
            let path = req.uri().path_and_query().map_or("", |p| p.as_str());
            let (verb, resource, watch) = classify(req.method(), path);
            let idempotent = !matches!(*req.method(), Method::POST | Method::PATCH);
            layer.latency.requests.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &layer.limiter {
                let waited = l.acquire().await;
                if waited > Duration::from_millis(1) {
                    layer.latency.throttled.fetch_add(1, Ordering::Relaxed);
                    layer
                        .latency
                        .throttle_wait_us
                        .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
                }
            }
            let (parts, body) = req.into_parts();
            // Bodies built by kube are in-memory; anything else is sent once without retries.
            let (body_bytes, mut once_body): (Option<Bytes>, Option<Body>) =
                if body.try_clone().is_some() {
                    (
                        Some(body.collect_bytes().await.map_err(BoxError::from)?),
                        None,
                    )
                } else {
                    (None, Some(body))
                };
            let mut attempt: u32 = 0;
            let mut backoff = layer.retry.initial_backoff;
            loop {
                let body = match (&body_bytes, once_body.take()) {
                    (Some(b), _) => Body::from(b.clone()),
                    (None, Some(b)) => b,
                    (None, None) => Body::empty(),
                };
                // `Parts::clone` carries the extensions along.
                let req = Request::from_parts(parts.clone(), body);
                let start = std::time::Instant::now();
                let result = inner.clone().oneshot(req).await;
                let micros = start.elapsed().as_micros() as u64;
                let can_retry = attempt < layer.retry.max_retries && body_bytes.is_some();
                match result {
                    Ok(resp) => {
                        let status = resp.status();
                        if !watch {
                            layer
                                .latency
                                .record(&verb, &resource, micros, status.as_u16() >= 400);
                        }
                        let retryable = status == StatusCode::TOO_MANY_REQUESTS
                            || (idempotent && matches!(status.as_u16(), 500 | 502 | 503 | 504));
                        if retryable && can_retry {
                            let wait = retry_after(resp.headers())
                                .unwrap_or(backoff)
                                .min(Duration::from_secs(60));
                            layer.latency.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                            backoff = (backoff * 2).min(layer.retry.max_backoff);
                            continue;
                        }
                        return Ok(resp);
                    }
                    Err(e) => {
                        if !watch {
                            layer.latency.record(&verb, &resource, micros, true);
                        }
                        let retryable = idempotent || is_connection_refused(e.as_ref());
                        if retryable && can_retry {
                            layer.latency.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(backoff).await;
                            attempt += 1;
                            backoff = (backoff * 2).min(layer.retry.max_backoff);
                            continue;
                        }
                        return Err(e);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_like_apiserver_metrics() {
        let c = |m: Method, p: &str| classify(&m, p);
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a/pods"),
            ("LIST".into(), "pods".into(), false)
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a/pods/p1"),
            ("GET".into(), "pods".into(), false)
        );
        assert!(c(Method::GET, "/api/v1/namespaces/a/pods?watch=true&rv=1").2);
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces"),
            ("LIST".into(), "namespaces".into(), false)
        );
        assert_eq!(
            c(Method::DELETE, "/api/v1/namespaces/x"),
            ("DELETE".into(), "namespaces".into(), false)
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/d/status"
            ),
            ("PATCH".into(), "deployments/status".into(), false)
        );
        assert_eq!(
            c(Method::POST, "/apis/apps/v1/namespaces/a/deployments").1,
            "deployments"
        );
        assert_eq!(
            c(Method::DELETE, "/api/v1/namespaces/a/configmaps").0,
            "DELETECOLLECTION"
        );
        assert_eq!(
            c(Method::GET, "/api/v1/nodes"),
            ("LIST".into(), "nodes".into(), false)
        );
        assert_eq!(
            c(Method::GET, "/version"),
            ("GET".into(), "/version".into(), false)
        );
    }

    #[test]
    fn classifies_watch_discovery_and_short_paths() {
        let c = |m: Method, p: &str| classify(&m, p);
        assert_eq!(
            c(Method::GET, "/api/v1/watch/namespaces/a/pods"),
            ("LIST".into(), "pods".into(), true)
        );
        assert_eq!(
            c(Method::GET, "/apis/apps/v1"),
            ("GET".into(), "/apis/apps/v1".into(), false)
        );
        assert_eq!(c(Method::GET, "/api"), ("GET".into(), "/api".into(), false));
        assert_eq!(
            c(Method::GET, "/apis/apps"),
            ("GET".into(), "/apis/apps".into(), false)
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/a"),
            ("GET".into(), "namespaces".into(), false)
        );
        assert_eq!(
            c(Method::PUT, "/api/v1/namespaces/a/pods/p/status/extra"),
            ("PUT".into(), "pods/status".into(), false)
        );
    }

    #[test]
    fn cl2_limits_scale_with_nodes() {
        assert_eq!(ConnectOptions::cl2_limits_for_nodes(0), (100.0, 200));
        assert_eq!(ConnectOptions::cl2_limits_for_nodes(100), (100.0, 200));
        assert_eq!(ConnectOptions::cl2_limits_for_nodes(101), (200.0, 400));
        assert_eq!(ConnectOptions::cl2_limits_for_nodes(5000), (5000.0, 10000));
    }

    #[test]
    fn latency_snapshot_and_throttle() {
        let l = ClientLatency::default();
        l.record("GET", "pods", 1000, false);
        l.record("GET", "pods", 3000, true);
        let s = l.snapshot();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].count, 2);
        assert_eq!(s[0].errors, 1);
        assert!(s[0].max_ms >= 2.9);
        assert!(!l.throttle().client_was_bottleneck());
    }

    use std::sync::atomic::AtomicUsize;

    /// The scripted transport under test.
    type TestSvc = tower::util::BoxCloneService<Request<Body>, Response<String>, BoxError>;

    /// A transport answering with `statuses` in turn (then 200; 0 = connection reset),
    /// counting calls.
    fn scripted(statuses: Vec<u16>, calls: Arc<AtomicUsize>) -> TestSvc {
        tower::util::BoxCloneService::new(tower::service_fn(move |req: Request<Body>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let status = statuses.get(n).copied().unwrap_or(200);
            async move {
                let body = req
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(BoxError::from)?;
                if status == 0 {
                    return Err(BoxError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "reset",
                    )));
                }
                let mut resp = Response::new(String::from_utf8_lossy(&body).to_string());
                *resp.status_mut() = StatusCode::from_u16(status).map_err(BoxError::from)?;
                if status == 429 {
                    resp.headers_mut()
                        .insert(http::header::RETRY_AFTER, "1".parse()?);
                }
                Ok(resp)
            }
        }))
    }

    fn layered(
        statuses: Vec<u16>,
        qps: f64,
        burst: u32,
    ) -> (Cl2Service<TestSvc>, Arc<AtomicUsize>, Arc<ClientLatency>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let latency = Arc::new(ClientLatency::default());
        let layer = Cl2Layer::new(qps, burst, latency.clone(), RetryPolicy::default());
        (
            layer.layer(scripted(statuses, calls.clone())),
            calls,
            latency,
        )
    }

    fn req(method: Method, path: &str, body: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body.as_bytes().to_vec()))
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn retries_429_honouring_retry_after_even_for_post() {
        let (mut svc, calls, latency) = layered(vec![429, 429], 0.0, 0);
        let t0 = tokio::time::Instant::now();
        let resp = svc
            .call(req(
                Method::POST,
                "/api/v1/namespaces/a/configmaps",
                "payload",
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.body(),
            "payload",
            "the body is re-sent on every attempt"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(2),
            "Retry-After: 1 honoured twice"
        );
        assert_eq!(latency.throttle().retries, 2);
        let snap = latency.snapshot();
        assert_eq!(
            (snap[0].verb.as_str(), snap[0].count, snap[0].errors),
            ("POST", 3, 2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_5xx_and_transport_errors_only_when_idempotent() {
        let (mut svc, calls, _) = layered(vec![503, 0, 500], 0.0, 0);
        let t0 = tokio::time::Instant::now();
        let resp = svc
            .call(req(Method::GET, "/api/v1/namespaces/a/pods/p", ""))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Exponential backoff: 100ms + 200ms + 400ms.
        assert_eq!(t0.elapsed(), Duration::from_millis(700));

        let (mut svc, calls, _) = layered(vec![503], 0.0, 0);
        let resp = svc
            .call(req(Method::POST, "/api/v1/namespaces/a/pods", "{}"))
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "POST is not retried on 5xx");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let (mut svc, calls, _) = layered(vec![0], 0.0, 0);
        assert!(
            svc.call(req(Method::POST, "/api/v1/namespaces/a/pods", "{}"))
                .await
                .is_err()
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "POST is not retried after a reset"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries() {
        let (mut svc, calls, _) = layered(vec![500; 20], 0.0, 0);
        let resp = svc
            .call(req(Method::DELETE, "/api/v1/namespaces/a/pods/p", ""))
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_paces_requests_and_counts_throttling() {
        let (svc, calls, latency) = layered(vec![], 10.0, 2);
        let t0 = tokio::time::Instant::now();
        let futs: Vec<_> = (0..6)
            .map(|_| {
                svc.clone()
                    .call(req(Method::GET, "/api/v1/namespaces/a/pods/p", ""))
            })
            .collect();
        for r in futures::future::join_all(futs).await {
            assert_eq!(r.unwrap().status(), 200);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        // Burst 2 at once, then 4 more at 10/s.
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
        let t = latency.throttle();
        assert_eq!((t.requests, t.throttled), (6, 4));
        assert!(t.client_was_bottleneck());
        assert!(
            (t.total_wait_secs - 1.0).abs() < 1e-6,
            "{}",
            t.total_wait_secs
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_reported_with_its_url() {
        // A port nothing listens on: bind, read the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user: {{}}\n"
            ),
        )
        .unwrap();
        let opts = ConnectOptions {
            kubeconfig: Some(path),
            ..Default::default()
        };
        match connect(&opts).await {
            Err(ClusterError::Unreachable { url, .. }) => {
                assert!(url.contains(&port.to_string()), "{url}")
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
