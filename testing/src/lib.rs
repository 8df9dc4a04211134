//! `cl2-hollow`: cl2's embedded simulated Kubernetes cluster and hollow nodes.
