//! `cl2-measurements`: the built-in measurements, one file each, listed in [`BUILTIN`].
//!
//! Every measurement decodes its own typed params (`deny_unknown_fields`, CL2 spellings
//! accepted through serde aliases), watches or polls the cluster through the shared client in
//! its [`MeasurementContext`](cl2_framework::measurement::MeasurementContext), and returns
//! [`Summary`](cl2_framework::measurement::Summary)s with an SLO verdict. Semantics follow
//! upstream ClusterLoader2 unless `docs/measurements.md` says otherwise.

use cl2_framework::measurement::MeasurementDescriptor;

mod api_responsiveness;
mod common;
mod exec;
mod node_startup_latency;
pub mod pod_startup_latency;
mod scheduling_throughput;
mod sleep;
mod timer;
mod wait_for_controlled_pods_running;
mod wait_for_finished_jobs;
mod wait_for_generic_k8s_objects;
mod wait_for_nodes;
mod wait_for_running_pods;

pub use common::node_schedulable;

/// Every built-in measurement, sorted by name. `cmd` registers these explicitly.
pub const BUILTIN: &[MeasurementDescriptor] = &[
    api_responsiveness::DESCRIPTOR,
    api_responsiveness::DESCRIPTOR_PROMETHEUS,
    exec::DESCRIPTOR,
    node_startup_latency::DESCRIPTOR,
    pod_startup_latency::DESCRIPTOR,
    scheduling_throughput::DESCRIPTOR,
    sleep::DESCRIPTOR,
    timer::DESCRIPTOR,
    wait_for_controlled_pods_running::DESCRIPTOR,
    wait_for_finished_jobs::DESCRIPTOR,
    wait_for_generic_k8s_objects::DESCRIPTOR,
    wait_for_nodes::DESCRIPTOR,
    wait_for_running_pods::DESCRIPTOR,
];

/// A registry holding [`BUILTIN`].
pub fn builtin_registry() -> cl2_framework::measurement::Registry {
    // BUILTIN is guarded by tests to be unique, so this cannot fail in practice.
    cl2_framework::measurement::Registry::new(BUILTIN).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_sorted_and_unique() {
        let names: Vec<&str> = BUILTIN.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            names, sorted,
            "BUILTIN must be sorted by name without duplicates"
        );
        assert_eq!(builtin_registry().names().len(), BUILTIN.len());
    }

    #[test]
    fn builtin_summaries_are_one_line() {
        for d in BUILTIN {
            assert!(
                !d.summary.is_empty() && !d.summary.contains('\n'),
                "{}",
                d.name
            );
            assert!(d.summary.len() <= 100, "{} summary too long", d.name);
        }
    }

    #[test]
    fn issue_measurements_are_registered() {
        let r = builtin_registry();
        for m in [
            "PodStartupLatency",
            "APIResponsiveness",
            "APIResponsivenessPrometheus",
            "SchedulingThroughput",
            "WaitForControlledPodsRunning",
            "WaitForRunningPods",
            "WaitForNodes",
            "WaitForGenericK8sObjects",
            "WaitForFinishedJobs",
            "NodeStartupLatency",
            "Sleep",
            "Timer",
            "Exec",
        ] {
            assert!(r.get(m).is_some(), "{m} not registered");
        }
    }
}
