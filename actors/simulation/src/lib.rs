//! The simulation service: its settings, its supervision tree and its gRPC adapter.
//!
//! Layout:
//! - [`runs`]: runs on threads of their own, paced, stopped, stored;
//! - [`grpc`]: the tonic adapter of `simulation.SimulationService`; [`validation`]: a
//!   design's problems and its analytic preview;
//! - [`SimulationSettings`] (`[simulation]`) and [`tree`].
#![forbid(unsafe_code)]

pub mod grpc;
pub mod runs;
pub mod validation;

use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
use sdsim_protocols::ports;
use sdsim_protocols::proto::simulation::simulation_service_server::SimulationServiceServer;
use sdsim_runtime::config::Listen;
use sdsim_runtime::service::{routes, standard_tree, Shared};
use sdsim_runtime::supervision::SupervisorSpec;
use serde::{Deserialize, Serialize};
use std::net::TcpListener;

/// The simulation service's settings (`[simulation]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationSettings {
    /// Where the simulation service listens.
    pub listen: Listen,
}

impl Default for SimulationSettings {
    fn default() -> Self {
        Self {
            listen: Listen::local(ports::SIMULATION_GRPC, ports::SIMULATION_HTTP),
        }
    }
}

/// Problems with the simulation settings, each naming the setting.
pub fn validate(_: &SimulationSettings, _: &mut Vec<String>) {}

/// The simulation service's tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    _settings: &SimulationSettings,
    grpc: TcpListener,
    http: TcpListener,
) -> SupervisorSpec {
    let runtime = shared
        .grpc_runtime
        .clone()
        .unwrap_or_else(tokio::runtime::Handle::current);
    let adapter = grpc::SimulationGrpc {
        health: shared.probe(true),
        runs: std::sync::Arc::new(runs::Runs::new(
            shared.pool.clone(),
            runtime,
            shared.metrics.clone(),
        )),
        mesh: shared.mesh.clone(),
    };
    // Runs of saved projects ask the project service for their design.
    shared.mesh.want(sdsim_protocols::Service::Project);
    let routes = routes(&["simulation.SimulationService"], move |b| {
        b.add_service(
            SimulationServiceServer::new(adapter.clone())
                .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_DESIGN_MESSAGE_BYTES),
        );
    });
    standard_tree(shared, "simulation", Vec::new(), routes, grpc, http, None)
}
