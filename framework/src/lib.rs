//! `cl2-framework`: everything one cl2 test run needs except the concrete measurements.
//!
//! Data flow (see `docs/architecture.md`):
//! [`config`] loads and resolves a templated test config, [`cluster`] connects a rate-limited,
//! latency-recording `kube::Client`, [`executor`] runs steps and phases paced by [`tuning`] sets
//! while [`measurement`] instances observe the cluster, and [`report`] writes the results.
//! [`run`] holds the records a run produces and ties the pieces together.

pub mod cluster;
pub mod config;
pub mod duration;
pub mod executor;
pub mod measurement;
pub mod report;
pub mod run;
pub mod template;
pub mod tuning;
