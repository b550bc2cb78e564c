//! The project service: its settings, its supervision tree and its gRPC adapter.
//!
//! Layout:
//! - [`grpc`]: the tonic adapter of `project.ProjectService`;
//! - [`ProjectSettings`] (`[project]`) and [`tree`].
#![forbid(unsafe_code)]

pub mod grpc;

use sdsim_protocols::ports;
use sdsim_protocols::proto::project::project_service_server::ProjectServiceServer;
use sdsim_runtime::config::Listen;
use sdsim_runtime::service::{routes, standard_tree, Shared};
use sdsim_runtime::supervision::SupervisorSpec;
use serde::{Deserialize, Serialize};
use std::net::TcpListener;

/// The project service's settings (`[project]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectSettings {
    /// Where the project service listens.
    pub listen: Listen,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            listen: Listen::local(ports::PROJECT_GRPC, ports::PROJECT_HTTP),
        }
    }
}

/// Problems with the project settings, each naming the setting.
pub fn validate(_: &ProjectSettings, _: &mut Vec<String>) {}

/// The project service's tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    _settings: &ProjectSettings,
    grpc: TcpListener,
    http: TcpListener,
) -> SupervisorSpec {
    let adapter = grpc::ProjectGrpc {
        health: shared.probe(true),
    };
    let routes = routes(&["project.ProjectService"], move |b| {
        b.add_service(ProjectServiceServer::new(adapter.clone()));
    });
    standard_tree(shared, "project", Vec::new(), routes, grpc, http, None)
}
