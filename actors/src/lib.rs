//! The actor side of sdsim: the supervision runtime and the backend service trees.
//!
//! Layout:
//! - [`supervision`]: OTP-style supervisors over actix (strategies, restart types, intensity,
//!   backoff, panic detection, restart metrics, the live tree).
//! - [`metrics`]: the Prometheus registry of a process.
//! - [`config`]: the settings of every service.
//! - [`error`]: [`error::ServiceError`] and its mapping to and from gRPC status.
//! - [`server`]: supervised actors that own a gRPC or HTTP listener.
//! - [`slot`]: the address of a supervised actor that survives its restarts.
//! - [`breaker`]: the circuit breaker (closed, open, half-open) of calls to a service.
//! - [`discovery`]: instance registration in Redis and the live view of instances.
//! - [`events`]: the event bridge (Redis pub/sub publishing).
//! - [`health`], [`admin`]: health probes and the admin HTTP endpoints.
//! - [`grpc`]: health and reflection services, per-RPC metrics.
//! - [`auth`]: the auth service (accounts, sessions, tokens) and its gRPC adapter.
//! - [`backend`]: the project and simulation services' gRPC adapters.
//! - [`services`]: the supervision tree of each backend service.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod backend;
pub mod breaker;
pub mod config;
pub mod discovery;
pub mod error;
pub mod events;
pub mod grpc;
pub mod health;
pub mod mesh;
pub mod metrics;
pub mod server;
pub mod services;
pub mod slot;
pub mod supervision;
