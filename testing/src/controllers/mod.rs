//! Workload controllers of the simulated cluster (deployments, replicasets, ...), talking to the
//! API server through `kube::Client` like real controllers.
