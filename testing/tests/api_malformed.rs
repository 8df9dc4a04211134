//! Malformed input never panics or kills the simulated API server: truncated JSON, wrong
//! kinds, huge bodies, bad selectors, bad patches, unsupported media types, garbage paths and
//! wrong methods all get 4xx `Status` bodies, and the server still answers afterwards. A
//! property test throws arbitrary requests at the request-decoding layer.

use std::net::SocketAddr;
use std::time::Duration;

use cl2_hollow::server::handle_for_test;
use cl2_hollow::sim::{SimConfig, start};
use cl2_hollow::store::{Store, StoreConfig};
use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request and returns (status code, body).
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    ctype: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(c) = ctype {
        head.push_str(&format!("Content-Type: {c}\r\n"));
    }
    head.push_str("\r\n");
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        for chunk in body.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
        }
        // Keep the write half open (dropping it half-closes the connection).
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut buf)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn assert_status(code: u16, body: &str, want: u16, reason: &str) {
    assert_eq!(code, want, "body: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    assert_eq!(v["kind"], "Status", "{body}");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], want);
    assert_eq!(v["reason"], reason, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_status_bodies() {
    let sim = start(SimConfig::api_only()).await.unwrap();
    let a = sim.addr();
    let cms = "/api/v1/namespaces/default/configmaps";
    let json = Some("application/json");

    // Truncated JSON, wrong kind or group, not an object, wrong field type.
    for body in [
        &br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"na"#[..],
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#,
        br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        b"[1,2,3]",
        br#"{"metadata":"nope"}"#,
    ] {
        let (c, b) = raw(a, "POST", cms, json, body.to_vec()).await;
        assert_status(c, &b, 400, "BadRequest");
    }
    let (c, b) = raw(
        a,
        "POST",
        cms,
        json,
        br#"{"metadata":{"name":"Not_Valid"}}"#.to_vec(),
    )
    .await;
    assert_status(c, &b, 422, "Invalid");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");
    let (c, b) = raw(
        a,
        "POST",
        "/api/v1/namespaces/default/pods",
        json,
        br#"{"metadata":{"name":"p"},"spec":{}}"#.to_vec(),
    )
    .await;
    assert_status(c, &b, 422, "Invalid");
    // Huge body.
    let mut huge = br#"{"metadata":{"name":"big"},"data":{"k":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
    huge.extend(br#""}}"#);
    let (c, b) = raw(a, "POST", cms, json, huge).await;
    assert_status(c, &b, 413, "RequestEntityTooLarge");
    // Unsupported media type.
    let (c, b) = raw(a, "POST", cms, Some("text/plain"), b"hello".to_vec()).await;
    assert_status(c, &b, 415, "UnsupportedMediaType");
    // Bad selectors.
    let (c, b) = raw(
        a,
        "GET",
        &format!("{cms}?labelSelector=a%20in%20(b"),
        None,
        Vec::new(),
    )
    .await;
    assert_status(c, &b, 400, "BadRequest");
    let (c, b) = raw(
        a,
        "GET",
        &format!("{cms}?fieldSelector=spec.bogus%3Dx"),
        None,
        Vec::new(),
    )
    .await;
    assert_status(c, &b, 400, "BadRequest");
    assert!(b.contains("field label not supported"), "{b}");
    let (c, b) = raw(a, "GET", &format!("{cms}?limit=-3"), None, Vec::new()).await;
    assert_status(c, &b, 400, "BadRequest");
    let (c, b) = raw(
        a,
        "GET",
        &format!("{cms}?limit=5&continue=%21%21garbage"),
        None,
        Vec::new(),
    )
    .await;
    assert_status(c, &b, 400, "BadRequest");
    // Bad patches.
    let (c, _) = raw(
        a,
        "POST",
        cms,
        json,
        br#"{"metadata":{"name":"p1"}}"#.to_vec(),
    )
    .await;
    assert_eq!(c, 201);
    let one = format!("{cms}/p1");
    for (ctype, patch, want, reason) in [
        (
            "application/merge-patch+json",
            &b"{not json"[..],
            400,
            "BadRequest",
        ),
        (
            "application/json-patch+json",
            br#"{"op":"add"}"#,
            400,
            "BadRequest",
        ),
        (
            "application/json-patch+json",
            br#"[{"op":"remove","path":"/nope/deeper"}]"#,
            422,
            "Invalid",
        ),
        (
            "application/strategic-merge-patch+json",
            b"42",
            400,
            "BadRequest",
        ),
        ("application/x-unknown", b"{}", 415, "UnsupportedMediaType"),
    ] {
        let (c, b) = raw(a, "PATCH", &one, Some(ctype), patch.to_vec()).await;
        assert_status(c, &b, want, reason);
    }
    let (c, b) = raw(
        a,
        "PATCH",
        &one,
        Some("application/merge-patch+json"),
        br#"{"metadata":{"name":"other"}}"#.to_vec(),
    )
    .await;
    assert_eq!(c / 100, 4, "{b}");
    // Garbage paths and wrong methods.
    for p in [
        "/nope",
        "/api/v9/pods",
        "/apis/apps/v1/namespaces/x/pods",
        "/api/v1/namespaces/default/configmaps/a/b/c/d",
        "/apis/%ff%fe/v1",
        "/api/v1/namespaces/default/configmaps/p1/bogus",
    ] {
        let (c, b) = raw(a, "GET", p, None, Vec::new()).await;
        assert_status(c, &b, 404, "NotFound");
    }
    let (c, b) = raw(a, "POST", &one, json, b"{}".to_vec()).await;
    assert_status(c, &b, 405, "MethodNotAllowed");
    let (c, b) = raw(a, "PUT", cms, json, b"{}".to_vec()).await;
    assert_status(c, &b, 405, "MethodNotAllowed");
    let (c, b) = raw(a, "DELETE", &one, json, b"{broken".to_vec()).await;
    assert_status(c, &b, 400, "BadRequest");
    let (c, b) = raw(
        a,
        "GET",
        &format!("{cms}?watch=true&resourceVersion=abc"),
        None,
        Vec::new(),
    )
    .await;
    assert_status(c, &b, 400, "BadRequest");
    // Still serving.
    let (c, b) = raw(a, "GET", &one, None, Vec::new()).await;
    assert_eq!(c, 200, "{b}");
    let (c, b) = raw(a, "GET", "/healthz", None, Vec::new()).await;
    assert_eq!((c, b.as_str()), (200, "ok"));
    sim.shutdown().await;
}

fn seeded_store() -> std::sync::Arc<Store> {
    let store = Store::new(StoreConfig::default());
    cl2_hollow::server::seed(&store);
    store
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("api".to_string()),
        Just("apis".to_string()),
        Just("v1".to_string()),
        Just("apps".to_string()),
        Just("namespaces".to_string()),
        Just("default".to_string()),
        Just("pods".to_string()),
        Just("configmaps".to_string()),
        Just("deployments".to_string()),
        Just("status".to_string()),
        Just("scale".to_string()),
        Just("binding".to_string()),
        Just("kubernetes".to_string()),
        "[a-z0-9%._-]{0,12}",
    ]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE"),
        Just("OPTIONS")
    ]
}

fn ctype() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("application/json"),
        Just("application/yaml"),
        Just("application/merge-patch+json"),
        Just("application/json-patch+json"),
        Just("application/strategic-merge-patch+json"),
        Just("application/apply-patch+yaml"),
        Just("application/vnd.kubernetes.protobuf"),
        Just("text/plain"),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "\\{\"metadata\":\\{\"name\":\"[a-z]{1,5}\"\\}(,\"spec\":\\{\\})?\\}"
            .prop_map(String::into_bytes),
        "\\[\\{\"op\":\"(add|remove|replace)\",\"path\":\"/[a-z/]{0,10}\"(,\"value\":1)?\\}\\]"
            .prop_map(String::into_bytes),
        "k8s\u{0}[\\x00-\\xff]{0,40}".prop_map(String::into_bytes),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "(watch|limit|continue|labelSelector|fieldSelector|resourceVersion|gracePeriodSeconds|propagationPolicy|dryRun|timeoutSeconds)=[a-zA-Z0-9%=,!()._ -]{0,16}",
        "[\\x21-\\x7e]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_panic(
        m in method(),
        segs in proptest::collection::vec(segment(), 0..7),
        q in query(),
        ct in ctype(),
        b in body(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = seeded_store();
        let mut uri = format!("/{}", segs.join("/"));
        if !q.is_empty() {
            uri.push('?');
            uri.push_str(&q.replace(' ', "%20"));
        }
        let Ok(req) = http::Request::builder().method(m).uri(&uri).header("content-type", ct).body(axum::body::Body::from(b)) else {
            return Ok(());
        };
        let (code, ctype, body) = rt.block_on(handle_for_test(store, req));
        let text = String::from_utf8_lossy(&body);
        prop_assert!(!text.contains("an internal error occurred"), "handler panicked for {} {}", m, uri);
        prop_assert!(code < 500, "{} {} -> {} {}", m, uri, code, text);
        if code >= 400 {
            prop_assert_eq!(ctype.as_str(), "application/json");
            let v: Value = serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(v["kind"].as_str(), Some("Status"));
            prop_assert_eq!(v["code"].as_u64(), Some(u64::from(code)));
        }
    }
}
