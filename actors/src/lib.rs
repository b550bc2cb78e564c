//! The actor side of sdsim: the supervision runtime and the service trees.
//!
//! Layout:
//! - [`supervision`]: OTP-style supervisors over actix (strategies, restart types, intensity,
//!   backoff, panic detection, restart metrics, the live tree).
//! - [`metrics`]: the Prometheus registry of a process.
//! - [`server`]: supervised actors that own a gRPC or HTTP listener.
//! - [`slot`]: the address of a supervised actor that survives its restarts.
//! - [`events`]: the event bridge (Redis pub/sub publishing).
//! - [`auth`]: the auth service (accounts, sessions, tokens) and its gRPC adapter.
//! - [`backend`]: the project and simulation services' gRPC adapters.
//! - [`grpc`]: gRPC plumbing shared by every service (health, reflection, error mapping).
#![forbid(unsafe_code)]

pub mod metrics;
pub mod supervision;
