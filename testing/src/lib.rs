//! `cl2-hollow`: cl2's embedded simulated Kubernetes cluster and hollow nodes.
//!
//! A real HTTP Kubernetes API server ([`server`] over an in-memory [`store`]), control loops
//! ([`scheduler`], [`controllers`]) and hollow kubelets ([`kubelet`]) that talk to it only
//! through `kube::Client`, so the same kubelet code runs against real clusters.
//! [`sim`] starts the whole thing in-process.
//!
//! The API server side: [`resources`] is the table of served resources, [`store`] the
//! compact in-memory store (resourceVersions, watches, finalizers, garbage collection,
//! namespace lifecycle), [`admission`] defaults and validation, [`patch`] merge/JSON/strategic
//! patches, [`selectors`] label and field selectors, [`tables`] `kubectl get` tables,
//! [`openapi`] and [`protobuf`] what kubectl needs beyond JSON, [`metrics`] the Prometheus
//! registry shared with the scheduler, and [`stages`] the declarative realism/fault settings.

pub mod admission;
pub mod controllers;
pub mod kubelet;
pub mod metrics;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod scheduler;
pub mod selectors;
pub mod server;
pub mod sim;
pub mod stages;
pub mod store;
pub mod tables;
