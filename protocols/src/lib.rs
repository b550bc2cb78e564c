//! The contracts every sdsim process shares.
//!
//! Layout:
//! - [`proto`]: the code tonic generates from `proto/*.proto` (one module per package), and the
//!   file-descriptor set for gRPC server reflection.
//! - [`names`]: every Redis channel, key and stream name, defined once.
//! - [`events`]: the serde types published on Redis (pub/sub payloads).
//! - [`frames`]: the JSON frames exchanged over the gateway's WebSockets.
//! - [`rpc`]: every RPC of the contracts and whether it may be retried (idempotency).
//! - [`ports`]: the default ports of the four services.
#![forbid(unsafe_code)]

pub mod events;
pub mod frames;
pub mod names;
pub mod rpc;

/// Generated gRPC code, one module per protobuf package.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    pub mod common {
        tonic::include_proto!("common");
    }
    pub mod gateway {
        tonic::include_proto!("gateway");
    }
    pub mod auth {
        tonic::include_proto!("auth");
    }
    pub mod project {
        tonic::include_proto!("project");
    }
    pub mod simulation {
        tonic::include_proto!("simulation");
    }

    /// Encoded `FileDescriptorSet` of every sdsim proto, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/sdsim_descriptor.bin"));
}

/// Sizes every party enforces the same way: the gateway's body limit, the gRPC message
/// limits of the services that carry designs, and their own checks.
pub mod limits {
    /// The largest design document (the engine's JSON) a project may hold: room for the
    /// engine's largest valid design (2,000 components with their settings).
    pub const MAX_DESIGN_BYTES: usize = 4 << 20;
    /// The largest layout (positions and drawing state) beside a design.
    pub const MAX_LAYOUT_BYTES: usize = 1 << 20;
    /// The largest gRPC message carrying a design: a design, its layout and the rest.
    pub const MAX_DESIGN_MESSAGE_BYTES: usize = MAX_DESIGN_BYTES + MAX_LAYOUT_BYTES + (256 << 10);
    /// How long a project's collaboration stream and presence hash outlive their last write
    /// (every XADD renews it): the edits are in PostgreSQL, so an idle project's live state
    /// leaves Redis instead of staying forever.
    pub const COLLABORATION_TTL_SECS: u64 = 24 * 3600;
}

/// Default ports, as fixed by the design brief. Every one is configurable.
pub mod ports {
    pub const GATEWAY_HTTP: u16 = 8000;
    pub const GATEWAY_GRPC: u16 = 8001;
    pub const AUTH_GRPC: u16 = 9000;
    pub const AUTH_HTTP: u16 = 9001;
    pub const PROJECT_GRPC: u16 = 10000;
    pub const PROJECT_HTTP: u16 = 10001;
    pub const SIMULATION_GRPC: u16 = 11000;
    pub const SIMULATION_HTTP: u16 = 11001;
}

/// The four services of sdsim.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Gateway,
    Auth,
    Project,
    Simulation,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Gateway,
        Service::Auth,
        Service::Project,
        Service::Simulation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Auth => "auth",
            Service::Project => "project",
            Service::Simulation => "simulation",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Service {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gateway" => Ok(Service::Gateway),
            "auth" => Ok(Service::Auth),
            "project" => Ok(Service::Project),
            "simulation" => Ok(Service::Simulation),
            other => Err(format!(
                "unknown service `{other}`; expected gateway, auth, project or simulation"
            )),
        }
    }
}
