//! Hollow kubelets: register a Node, renew its Lease, drive bound pods to Running.
