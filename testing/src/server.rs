//! The HTTP Kubernetes API server.
