//! The simulated API server driven through `kube::Client`, exactly as cl2 and the hollow
//! kubelets drive it: pagination, watch resume, bookmarks, 410 Gone, optimistic concurrency,
//! generation rules, garbage collection, namespace lifecycle, binding + graceful deletion,
//! and a `/metrics` scrape.

use std::time::{Duration, Instant};

use cl2_hollow::sim::{SimCluster, SimConfig, start};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy, WatchEvent,
    WatchParams,
};
use kube::core::Status;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(30);

async fn sim_with(f: impl FnOnce(&mut SimConfig)) -> SimCluster {
    let mut cfg = SimConfig {
        bookmark_interval: Duration::from_millis(200),
        ..SimConfig::api_only()
    };
    f(&mut cfg);
    start(cfg).await.unwrap()
}

async fn make_ns(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata":{"name":name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn cm(name: &str, owners: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "t"}, "ownerReferences": owners},
        "data": {"k": "v"}
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn api_err(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(ae) => *ae,
        other => panic!("expected API error, got {other:?}"),
    }
}

/// The collection's current resourceVersion, from a LIST.
async fn list_rv(api: &Api<ConfigMap>) -> String {
    api.list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

/// The next event of a watch; fails the test if none comes within [`DEADLINE`].
async fn next_event(
    stream: &mut BoxStream<'_, kube::Result<WatchEvent<ConfigMap>>>,
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(DEADLINE, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_watch_resume_conflict_and_metrics() {
    let sim = sim_with(|_| {}).await;
    let client = sim.client();
    make_ns(&client, "pg").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "pg");
    for i in 0..250 {
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:03}"), json!([])),
        )
        .await
        .unwrap();
    }
    // Pagination: 251 objects (plus kube-root-ca.crt) in pages of 100.
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(100);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => {
                assert!(page.metadata.remaining_item_count.unwrap_or(0) > 0);
                token = Some(t);
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 251);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 251, "pages must not overlap");
    // Label selector on the list.
    let sel = api
        .list(&ListParams::default().labels("app=t"))
        .await
        .unwrap();
    assert_eq!(sel.items.len(), 250);
    let bad = api
        .list(&ListParams::default().labels("app in ("))
        .await
        .unwrap_err();
    assert_eq!(api_err(bad).code, 400);

    // Watch resume from a resourceVersion: exactly the later changes, in order.
    let rv = list_rv(&api).await;
    for v in ["a", "b", "c"] {
        api.patch(
            "cm-000",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": v}})),
        )
        .await
        .unwrap();
    }
    api.delete("cm-001", &DeleteParams::default())
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = next_event(&mut stream).await;
        match ev {
            WatchEvent::Modified(c) => seen.push(format!("M:{}", c.data.unwrap()["k"])),
            WatchEvent::Deleted(c) => seen.push(format!("D:{}", c.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["M:a", "M:b", "M:c", "D:cm-001"]);

    // Bookmarks arrive on a quiet watch.
    let now_rv = list_rv(&api).await;
    let mut stream = api
        .watch(&WatchParams::default(), &now_rv)
        .await
        .unwrap()
        .boxed();
    let ev = next_event(&mut stream).await;
    match ev {
        WatchEvent::Bookmark(b) => {
            assert!(
                b.metadata.resource_version.parse::<u64>().unwrap()
                    >= now_rv.parse::<u64>().unwrap()
            )
        }
        other => panic!("expected bookmark, got {other:?}"),
    }

    // Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    let mut stale = api.get("cm-002").await.unwrap();
    api.patch(
        "cm-002",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "new"}})),
    )
    .await
    .unwrap();
    stale.data = Some([("k".to_string(), "stale".to_string())].into());
    let err = api_err(
        api.replace("cm-002", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    // AlreadyExists and NotFound.
    let err = api_err(
        api.create(&PostParams::default(), &cm("cm-003", json!([])))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = api_err(api.get("missing").await.unwrap_err());
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "configmaps \"missing\" not found")
    );

    // /metrics parses and has the real series.
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let post = scrape.samples.iter().find(|s| {
        s.metric == "apiserver_request_duration_seconds"
            && s.labels.get("verb") == Some("POST")
            && s.labels.get("resource") == Some("configmaps")
            && s.labels.get("scope") == Some("namespace")
    });
    let post = post.expect("POST configmaps histogram");
    assert_eq!(post.labels.get("component"), Some("apiserver"));
    assert_eq!(post.labels.get("group"), Some(""));
    assert_eq!(post.labels.get("version"), Some("v1"));
    assert_eq!(post.labels.get("subresource"), Some(""));
    assert_eq!(post.labels.get("dry_run"), Some(""));
    match &post.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let les: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
            assert_eq!(les.len(), 24, "{les:?}");
            assert_eq!(les[0], 0.005);
            assert_eq!(les[22], 60.0);
            assert!(buckets.last().unwrap().count >= 250.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "apiserver_request_sli_duration_seconds"
                && s.labels.get("verb") == Some("LIST"))
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "apiserver_request_total" && s.labels.get("code") == Some("409"))
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "apiserver_current_inflight_requests")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "apiserver_storage_objects"
                && s.labels.get("resource") == Some("configmaps"))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_resource_version_is_gone() {
    let sim = sim_with(|c| c.event_window = 20).await;
    let client = sim.client();
    make_ns(&client, "gone").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "gone");
    let rv = list_rv(&api).await;
    for i in 0..50 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), json!([])))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let ev = next_event(&mut stream).await;
    match ev {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_rules_and_status_subresource() {
    let sim = sim_with(|_| {}).await;
    let client = sim.client();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "gen"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let d = api.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let pp = PatchParams::default();
    let d = api
        .patch(
            "gen",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata change keeps generation"
    );
    let d = api
        .patch("gen", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let d = api
        .patch_status(
            "gen",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 3}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "status change keeps generation"
    );
    assert_eq!(
        d.spec.unwrap().replicas,
        Some(3),
        "status update ignores spec"
    );
    assert_eq!(d.status.unwrap().replicas, Some(3));
    let d = api
        .patch(
            "gen",
            &pp,
            &Patch::Merge(json!({"status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.status.unwrap().replicas,
        Some(3),
        "main update ignores status"
    );
    // Scale subresource.
    let s = api.get_scale("gen").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(3));
    let s = api
        .patch_scale("gen", &pp, &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    assert_eq!(api.get("gen").await.unwrap().metadata.generation, Some(3));
    // Strategic merge keeps containers merged by name.
    let d = api
        .patch("gen", &pp, &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}})))
        .await
        .unwrap();
    let names: Vec<String> = d
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["c", "side"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_and_namespace_lifecycle() {
    let sim = sim_with(|_| {}).await;
    let client = sim.client();
    make_ns(&client, "gc").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "gc");
    let owner_of = |o: &ConfigMap| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid, "blockOwnerDeletion": true}]);
    let count = |api: Api<ConfigMap>, prefix: &'static str| async move {
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| c.metadata.name.as_deref().unwrap_or("").starts_with(prefix))
            .count()
    };
    for (policy, prefix) in [
        (PropagationPolicy::Background, "bg"),
        (PropagationPolicy::Foreground, "fg"),
        (PropagationPolicy::Orphan, "or"),
    ] {
        let owner = api
            .create(
                &PostParams::default(),
                &cm(&format!("{prefix}-owner"), json!([])),
            )
            .await
            .unwrap();
        for i in 0..3 {
            api.create(
                &PostParams::default(),
                &cm(&format!("{prefix}-dep{i}"), owner_of(&owner)),
            )
            .await
            .unwrap();
        }
        let dp = DeleteParams {
            propagation_policy: Some(policy.clone()),
            ..DeleteParams::default()
        };
        let out = api.delete(&format!("{prefix}-owner"), &dp).await.unwrap();
        if matches!(policy, PropagationPolicy::Foreground) {
            // The owner is kept (deletionTimestamp + foregroundDeletion) until dependents go.
            if let Some(o) = out.left() {
                assert!(o.metadata.deletion_timestamp.is_some());
                assert!(
                    o.metadata
                        .finalizers
                        .unwrap_or_default()
                        .contains(&"foregroundDeletion".to_string())
                );
            }
        }
        match policy {
            PropagationPolicy::Orphan => {
                eventually("owner gone", || {
                    let api = api.clone();
                    async move { api.get_opt("or-owner").await.unwrap().is_none() }
                })
                .await;
                let dep = api.get("or-dep0").await.unwrap();
                assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());
                assert_eq!(count(api.clone(), "or-dep").await, 3);
            }
            _ => {
                eventually("dependents and owner gone", || {
                    let api = api.clone();
                    async move { count(api, prefix).await == 0 }
                })
                .await;
            }
        }
    }

    // Namespace lifecycle: a finalizer keeps the namespace Terminating; creating in it is 403.
    make_ns(&client, "life").await;
    let life: Api<ConfigMap> = Api::namespaced(client.clone(), "life");
    let mut held = cm("held", json!([]));
    held.metadata.finalizers = Some(vec!["cl2.test/hold".into()]);
    life.create(&PostParams::default(), &held).await.unwrap();
    life.create(&PostParams::default(), &cm("plain", json!([])))
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.delete("life", &DeleteParams::default()).await.unwrap();
    let ns = nss.get("life").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(ns.metadata.deletion_timestamp.is_some());
    let err = api_err(
        life.create(&PostParams::default(), &cm("late", json!([])))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert!(
        err.message.contains("is being terminated"),
        "{}",
        err.message
    );
    eventually("plain deleted", || {
        let l = life.clone();
        async move { l.get_opt("plain").await.unwrap().is_none() }
    })
    .await;
    assert!(
        nss.get_opt("life").await.unwrap().is_some(),
        "namespace waits for finalizers"
    );
    life.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", || {
        let n = nss.clone();
        async move { n.get_opt("life").await.unwrap().is_none() }
    })
    .await;
    let err = api_err(
        Api::<ConfigMap>::namespaced(client.clone(), "nope")
            .create(&PostParams::default(), &cm("x", json!([])))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_binding_and_graceful_deletion() {
    let sim = sim_with(|_| {}).await;
    let client = sim.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "p-"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let p = pods.create(&PostParams::default(), &p).await.unwrap();
    let name = p.metadata.name.clone().unwrap();
    assert!(name.starts_with("p-") && name.len() == 7, "{name}");
    let spec = p.spec.unwrap();
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.tolerations.unwrap_or_default().len(), 2);
    let status = p.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    // Field selector for unscheduled pods, then bind.
    let unscheduled = pods
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap();
    assert_eq!(unscheduled.items.len(), 1);
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": "node-a"}});
    let req = http::Request::post(format!("/api/v1/namespaces/default/pods/{name}/binding"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    client.request_text(req).await.unwrap();
    let bound = pods.get(&name).await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-a"));
    let conds = bound.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let req = http::Request::post(format!("/api/v1/namespaces/default/pods/{name}/binding"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    let err = api_err(client.request_text(req).await.unwrap_err());
    assert_eq!(err.code, 409);
    let on_node = pods
        .list(&ListParams::default().fields("spec.nodeName=node-a"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 1);
    // Graceful deletion: bound pods get a deletionTimestamp; grace 0 removes them.
    pods.delete(&name, &DeleteParams::default()).await.unwrap();
    let terminating = pods.get(&name).await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    let uid = terminating.metadata.uid.clone().unwrap();
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    pods.delete(&name, &dp).await.unwrap();
    assert!(pods.get_opt(&name).await.unwrap().is_none());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_deletecollection_and_initial_events() {
    let sim = sim_with(|_| {}).await;
    let client = sim.client();
    make_ns(&client, "dc").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "dc");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let created = api.create(&dry, &cm("dry", json!([]))).await.unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("dry"));
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "dry run must not persist"
    );
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("d{i}"), json!([])))
            .await
            .unwrap();
    }
    // Streaming list: initial ADDED events, then a bookmark marking their end.
    let req = http::Request::get(
        "/api/v1/namespaces/dc/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    )
    .body(Vec::new())
    .unwrap();
    let text = client.request_text(req).await.unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let added = events.iter().take_while(|e| e["type"] == "ADDED").count();
    assert_eq!(added, 6, "5 configmaps + kube-root-ca.crt: {text}");
    assert_eq!(events[added]["type"], "BOOKMARK");
    assert_eq!(
        events[added]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Leases allow create-on-update (PUT of a missing object).
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "dc");
    let lease: k8s_openapi::api::coordination::v1::Lease = serde_json::from_value(
        json!({"metadata": {"name": "l1"}, "spec": {"holderIdentity": "me"}}),
    )
    .unwrap();
    let l = leases
        .replace("l1", &PostParams::default(), &lease)
        .await
        .unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("me"));
    // deletecollection with a label selector.
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=t"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(left.items.len(), 1, "only kube-root-ca.crt is left");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_and_fault_injection() {
    use cl2_hollow::stages::{Fault, Latency, MaxInFlight};
    let sim = sim_with(|c| {
        c.stages.server.max_in_flight = MaxInFlight {
            read_only: 0,
            mutating: 2,
        };
        c.stages
            .server
            .latency
            .insert("POST".into(), Latency::Fixed { ms: 200.0 });
        c.stages.server.faults.push(Fault {
            verb: "DELETE".into(),
            resource: "configmaps".into(),
            error_rate: 1.0,
            code: 500,
        });
    })
    .await;
    let client = sim.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let results = futures::future::join_all((0..20).map(|i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &cm(&format!("f{i}"), json!([])))
                .await
        }
    }))
    .await;
    // kube-rs retries 429s (honouring Retry-After), so count them on the server side.
    assert!(
        results.iter().all(Result::is_ok),
        "all creates succeed after retries"
    );
    let text = sim.metrics().render();
    let throttled = text
        .lines()
        .find(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"configmaps\"")
                && l.contains("verb=\"POST\"")
                && l.contains("code=\"429\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "expected 429s beyond maxInFlight: {text}");
    let err = api_err(
        api.delete("f0", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 500);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_survives_dropped_watches() {
    use kube::runtime::watcher;
    let sim = sim_with(|c| c.stages.server.drop_watches_every_seconds = 0.5).await;
    let client = sim.client();
    make_ns(&client, "drop").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "drop");
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(std::collections::BTreeSet::new()));
    let seen2 = seen.clone();
    let w = api.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(w, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) = ev {
                seen2.lock().insert(cm.metadata.name.unwrap_or_default());
            }
        }
    });
    for i in 0..30 {
        api.create(&PostParams::default(), &cm(&format!("w{i:02}"), json!([])))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually("watcher saw every object across reconnects", || {
        let seen = seen.clone();
        async move { (0..30).all(|i| seen.lock().contains(&format!("w{i:02}"))) }
    })
    .await;
    task.abort();
    sim.shutdown().await;
}
