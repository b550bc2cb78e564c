//! The simulation service: its settings, its supervision tree and its gRPC adapter.
//!
//! Layout:
//! - [`runs`]: runs on threads of their own, paced, stopped, stored; [`stream`]: each run's
//!   publisher (its windows to the Redis stream and PostgreSQL, then its end);
//! - [`admission`]: caps per user and per instance, the queue;
//! - [`keeper`]: the supervised housekeeping actor, and [`leases`]: what it does (leases,
//!   takeover, retention);
//! - [`grpc`]: the tonic adapter of `simulation.SimulationService`; [`validation`]: a
//!   design's problems and its analytic preview;
//! - [`SimulationSettings`] (`[simulation]`) and [`tree`].
#![forbid(unsafe_code)]

pub mod admission;
pub mod compare;
pub mod grpc;
pub mod keeper;
pub mod leases;
pub mod run_actor;
pub mod runs;
pub mod series;
pub mod stream;
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
    /// Entries a run's live stream keeps at least (it is trimmed only past stored windows).
    pub stream_maxlen: u64,
    /// How long a finished run's stream stays in Redis (watchers then read stored windows).
    pub stream_ttl_seconds: u64,
    /// How often a running run's new windows are written to PostgreSQL.
    pub store_every_ms: u64,
    /// Runs a user may have going at once (pending, running or paused), across every
    /// instance; one more is refused with 429.
    pub max_runs_per_user: u32,
    /// Runs this instance simulates at once; more wait in its queue (their status says
    /// where).
    pub max_running: usize,
    /// How long a run's lease lasts unless its instance renews it (six times per lease); a run
    /// whose lease runs out (its process stopped) is taken over by another instance.
    pub lease_ms: u64,
    /// Finished runs (with their windows and results) are deleted this many days after they
    /// ended; 0 keeps them.
    pub retention_days: u32,
    /// How often runs past their retention, and the runs of purged projects, are deleted.
    pub janitor_interval_s: u64,
}

impl Default for SimulationSettings {
    fn default() -> Self {
        Self {
            listen: Listen::local(ports::SIMULATION_GRPC, ports::SIMULATION_HTTP),
            stream_maxlen: 1_000,
            stream_ttl_seconds: 3_600,
            store_every_ms: 500,
            max_runs_per_user: 10,
            max_running: 64,
            lease_ms: 1_500,
            retention_days: 90,
            janitor_interval_s: 3_600,
        }
    }
}

/// Problems with the simulation settings, each naming the setting.
pub fn validate(s: &SimulationSettings, errors: &mut Vec<String>) {
    if s.stream_maxlen < 10 {
        errors.push("simulation.stream_maxlen must be at least 10".into());
    }
    if s.stream_ttl_seconds == 0 {
        errors.push("simulation.stream_ttl_seconds must be at least 1".into());
    }
    if s.max_runs_per_user == 0 {
        errors.push("simulation.max_runs_per_user must be at least 1".into());
    }
    if !(300..=600_000).contains(&s.lease_ms) {
        errors.push("simulation.lease_ms must be between 300 and 600000".into());
    }
    if s.max_running == 0 {
        errors.push("simulation.max_running must be at least 1".into());
    }
    if !(10..=60_000).contains(&s.store_every_ms) {
        errors.push("simulation.store_every_ms must be between 10 and 60000".into());
    }
}

/// The simulation service's tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    settings: &SimulationSettings,
    grpc: TcpListener,
    http: TcpListener,
) -> SupervisorSpec {
    let runtime = shared
        .grpc_runtime
        .clone()
        .unwrap_or_else(tokio::runtime::Handle::current);
    let runs = std::sync::Arc::new(runs::Runs::new(
        shared.pool.clone(),
        runs::RunsDeps {
            instance_id: shared.instance_id.clone(),
            lease_ms: settings.lease_ms,
            retention_days: settings.retention_days,
            runtime,
            metrics: shared.metrics.clone(),
            redis: shared.redis.clone(),
            ns: shared.ns.clone(),
            caps: runs::Caps {
                per_user: settings.max_runs_per_user,
                running: settings.max_running,
            },
            limits: stream::StreamLimits {
                maxlen: settings.stream_maxlen,
                ttl_s: settings.stream_ttl_seconds,
                store_every: std::time::Duration::from_millis(settings.store_every_ms),
            },
        },
    ));
    let adapter = grpc::SimulationGrpc {
        health: shared.probe(true),
        runs: runs.clone(),
        mesh: shared.mesh.clone(),
        instances: shared.instances.clone(),
        fault_injection: shared.settings.admin.fault_injection,
        peers: Default::default(),
    };
    for outcome in ["completed", "stopped", "failed"] {
        shared.metrics.runs_finished.with_label_values(&[outcome]);
    }
    // A panicking run is counted here (see `runs`): the series exists from the start.
    shared
        .metrics
        .supervisor_restarts
        .with_label_values(&["simulation", "runs", "run", "panic"]);
    // Runs of saved projects ask the project service for their design.
    shared.mesh.want(sdsim_protocols::Service::Project);
    let routes = routes(&["simulation.SimulationService"], move |b| {
        b.add_service(
            SimulationServiceServer::new(adapter.clone())
                .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_DESIGN_MESSAGE_BYTES),
        );
    });
    standard_tree(
        shared,
        "simulation",
        vec![keeper::Keeper::child(
            runs,
            shared.mesh.clone(),
            std::time::Duration::from_secs(settings.janitor_interval_s.max(1)),
        )],
        routes,
        grpc,
        http,
        None,
    )
}
