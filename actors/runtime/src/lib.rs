//! The runtime every sdsim service stands on: supervision, servers, the mesh, discovery,
//! metrics, events, errors and the shared service context. Nothing here knows a particular
//! service: auth, project, simulation and the gateway each live in a crate of their own and
//! build their tree from these parts.
//!
//! Layout:
//! - [`supervision`]: OTP-style supervisors over actix (strategies, restart types, intensity,
//!   backoff, panic detection, restart metrics, the live tree).
//! - [`service`]: [`service::Shared`] (what every service of a process shares) and
//!   [`service::standard_tree`] (children, registrar, gRPC server, HTTP server).
//! - [`config`]: the settings every process shares, [`config::Listen`] and [`config::Secret`].
//! - [`metrics`]: the Prometheus registry of a process.
//! - [`error`]: [`error::ServiceError`] and its mapping to and from gRPC status.
//! - [`server`]: supervised actors that own a gRPC or HTTP listener; the gRPC timing layer.
//! - [`slot`]: the address of a supervised actor that survives its restarts.
//! - [`breaker`]: the circuit breaker (closed, open, half-open) of calls to a service.
//! - [`mesh`]: how a process calls other services (pools, scaler, budget, retries).
//! - [`discovery`]: instance registration in Redis and the live view of instances.
//! - [`events`]: the event bridge (Redis pub/sub publishing); [`queue`]: reliable Redis
//!   work queues.
//! - [`health`], [`probes`], [`admin`]: health, liveness and readiness, and the admin HTTP
//!   endpoints.
//! - [`grpc`]: the standard health and reflection services.
#![forbid(unsafe_code)]

pub mod admin;
pub mod breaker;
pub mod config;
pub mod discovery;
pub mod error;
pub mod events;
pub mod grpc;
pub mod health;
pub mod mesh;
pub mod metrics;
pub mod probes;
pub mod queue;
pub mod request_id;
pub mod server;
pub mod service;
pub mod slot;
pub mod supervision;
