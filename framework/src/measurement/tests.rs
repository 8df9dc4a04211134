use super::*;
use crate::config::MeasurementInstance;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A client pointing nowhere: enough for measurements that never call the API.
pub(crate) fn offline_context() -> MeasurementContext {
    MeasurementContext::new(Cluster::offline(), "unit")
}

static DISPOSED: AtomicUsize = AtomicUsize::new(0);

/// Counts actions; `gather` returns a summary naming how many actions it saw.
#[derive(Default)]
struct Counter {
    actions: usize,
}

#[async_trait::async_trait]
impl Measurement for Counter {
    async fn execute(
        &mut self,
        ctx: &MeasurementContext,
        params: &Params,
    ) -> Result<Vec<Summary>, MeasurementError> {
        assert!(!params.contains_key(LOAD_LEVEL_PARAM));
        self.actions += 1;
        match params.get("action").and_then(|v| v.as_str()) {
            Some("gather") => {
                let mut s = Summary::new(
                    format!("Counter_{}", ctx.identifier),
                    serde_json::json!({"actions": self.actions, "finishing": ctx.finishing}),
                );
                s.verdict = Verdict::Pass;
                Ok(vec![s])
            }
            Some("fail") => Err(MeasurementError::failed("Counter", &ctx.identifier, "boom")),
            _ => Ok(vec![]),
        }
    }

    async fn dispose(&mut self) {
        DISPOSED.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> Box<dyn Measurement> {
    Box::new(Counter::default())
}

const COUNTER: MeasurementDescriptor = MeasurementDescriptor {
    name: "Counter",
    summary: "counts actions",
    new: counter,
};
const OTHER: MeasurementDescriptor = MeasurementDescriptor {
    name: "Another",
    summary: "another",
    new: counter,
};

fn spec(method: &str, instances: &[(&str, serde_json::Value)]) -> MeasurementSpec {
    MeasurementSpec {
        method: method.into(),
        instances: instances
            .iter()
            .map(|(id, p)| MeasurementInstance {
                identifier: (*id).into(),
                params: p.as_object().cloned().unwrap(),
            })
            .collect(),
    }
}

#[test]
fn registry_is_sorted_and_rejects_duplicates() {
    let r = Registry::new(&[COUNTER, OTHER]).unwrap();
    assert_eq!(r.names(), vec!["Another", "Counter"]);
    assert!(r.get("Counter").is_some());
    assert!(r.get("counter").is_none());
    assert_eq!(
        Registry::new(&[COUNTER, COUNTER]).unwrap_err(),
        RegistryError::Duplicate {
            name: "Counter".into()
        }
    );
    let mut r2 = r.clone();
    r2.register_plugin("PodCounter", "/bin/true").unwrap();
    assert!(r2.register_plugin("Counter", "/bin/true").is_err());
    assert!(r2.register_plugin("exec:x", "/bin/true").is_err());
    assert_eq!(r2.names(), vec!["Another", "Counter", "PodCounter"]);
    assert!(r2.contains("exec:/bin/true"));
    assert_eq!(r2.entries().len(), 3);
}

#[test]
fn registry_suggests_close_names() {
    let r = Registry::new(&[COUNTER, OTHER]).unwrap();
    assert_eq!(r.suggest("Countr").as_deref(), Some("Counter"));
    assert_eq!(r.suggest("zzzzzzzzzzzz"), None);
    let err = r.create("Countr").err().unwrap();
    assert!(
        err.to_string().contains("did you mean \"Counter\""),
        "{err}"
    );
}

#[tokio::test]
async fn manager_keeps_one_instance_per_identifier_and_gathers_at_finish() {
    let before = DISPOSED.load(Ordering::SeqCst);
    let r = Arc::new(Registry::new(&[COUNTER]).unwrap());
    let m = MeasurementManager::new(r, offline_context());
    m.execute(&spec(
        "Counter",
        &[
            (
                "a",
                serde_json::json!({"action": "start", "loadLevel": "10%"}),
            ),
            ("b", serde_json::json!({"action": "start"})),
        ],
    ))
    .await
    .unwrap();
    m.execute(&spec(
        "Counter",
        &[("a", serde_json::json!({"action": "gather"}))],
    ))
    .await
    .unwrap();
    let err = m
        .execute(&spec(
            "Counter",
            &[("c", serde_json::json!({"action": "fail"}))],
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("boom"));
    let unknown = m
        .execute(&spec("Nope", &[("x", serde_json::json!({}))]))
        .await
        .unwrap_err();
    assert!(matches!(unknown, MeasurementError::UnknownMethod { .. }));

    let results = m.finish().await;
    assert_eq!(results.len(), 3);
    let a = &results[0];
    assert_eq!(
        (a.identifier.as_str(), a.load_level.as_deref()),
        ("a", Some("10%"))
    );
    assert_eq!(a.summaries[0].content["actions"], 2);
    assert!(!a.gathered_at_finish);
    assert_eq!(a.verdict(), Verdict::Pass);
    // b was started and never gathered: finish gathered it.
    let b = &results[1];
    assert!(b.gathered_at_finish);
    assert_eq!(b.summaries[0].content["finishing"], true);
    assert_eq!(b.actions, vec!["start", "gather"]);
    // c failed: error kept, verdict Fail, still disposed.
    assert_eq!(results[2].verdict(), Verdict::Fail);
    assert!(DISPOSED.load(Ordering::SeqCst) >= before + 3);
}

#[test]
fn verdicts_combine() {
    assert_eq!(Verdict::Pass.worst(Verdict::Fail), Verdict::Fail);
    assert_eq!(Verdict::None.worst(Verdict::Pass), Verdict::Pass);
    assert_eq!(Verdict::Warn.worst(Verdict::Pass), Verdict::Warn);
}
