//! The project service: designs that people save, version and find again.
//!
//! Layout:
//! - [`core`]: [`core::ProjectCore`] and its main operations (create, read, update with
//!   optimistic concurrency, trash, listing); the others by concern: [`versions`] (history,
//!   diff, rollback, autosaves), [`copies`] (fork, export, import), [`sharing`] (by e-mail,
//!   invitations, permissions, ownership), [`templates`] (system templates, trash expiry);
//! - [`access`]: who may do what, as one table; [`diff`]: the structured diff of two
//!   versions; [`store`]: project_schema queries;
//! - [`janitor`]: the supervised actor that keeps the system templates in step with the
//!   engine and empties the trash; [`grpc`]: the tonic adapter;
//! - [`ProjectSettings`] (`[project]`) and [`tree`].
#![forbid(unsafe_code)]

pub mod access;
pub mod copies;
pub mod core;
pub mod diff;
pub mod document;
pub mod grpc;
pub mod janitor;
pub mod links;
pub mod live;
pub mod live_docs;
pub mod ops;
pub mod presence;
pub mod sharing;
pub mod store;
pub mod templates;
pub mod versions;

use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
use sdsim_protocols::ports;
use sdsim_protocols::proto::project::project_service_server::ProjectServiceServer;
use sdsim_runtime::config::Listen;
use sdsim_runtime::events::{EventBridge, EventSink};
use sdsim_runtime::service::{routes, standard_tree, Shared};
use sdsim_runtime::slot::Slot;
use sdsim_runtime::supervision::SupervisorSpec;
use serde::{Deserialize, Serialize};
use std::net::TcpListener;
use std::sync::Arc;

/// The project service's settings (`[project]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectSettings {
    /// Where the project service listens.
    pub listen: Listen,
    /// How long a deleted project can be restored before it is purged.
    pub trash_days: u64,
    /// Unnamed saves by the same person within this many seconds replace each other.
    pub autosave_window_s: u64,
    /// The most versions a project keeps; past it a save is refused (409).
    pub max_versions: u32,
    /// How often the trash is emptied of expired projects.
    pub purge_interval_s: u64,
    /// Where links in invitation mails and notifications point (the console).
    pub public_url: String,
    /// How often a live document's edits are saved as a project version.
    pub live_snapshot_s: u64,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        Self {
            listen: Listen::local(ports::PROJECT_GRPC, ports::PROJECT_HTTP),
            trash_days: 30,
            autosave_window_s: 300,
            max_versions: 1_000,
            purge_interval_s: 3_600,
            public_url: "http://127.0.0.1:8000".into(),
            live_snapshot_s: 10,
        }
    }
}

/// Problems with the project settings, each naming the setting.
pub fn validate(s: &ProjectSettings, errors: &mut Vec<String>) {
    if s.trash_days == 0 || s.trash_days > 3_650 {
        errors.push("project.trash_days must be between 1 and 3650".into());
    }
    if s.max_versions < 2 {
        errors.push("project.max_versions must be at least 2".into());
    }
    if s.purge_interval_s == 0 {
        errors.push("project.purge_interval_s must be positive".into());
    }
}

/// The project service's tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    settings: &ProjectSettings,
    grpc: TcpListener,
    http: TcpListener,
) -> SupervisorSpec {
    let bridge_slot: Slot<EventBridge> = Slot::new();
    let live_slot: Slot<live_docs::LiveDocs> = Slot::new();
    let core = Arc::new(core::ProjectCore {
        pool: shared.pool.clone(),
        settings: settings.clone(),
        events: EventSink::new(bridge_slot.clone()),
        ns: shared.ns.clone(),
        mesh: shared.mesh.clone(),
        redis: shared.redis.clone(),
    });
    // Sharing asks auth who an address is.
    shared.mesh.want(sdsim_protocols::Service::Auth);
    let adapter = grpc::ProjectGrpc {
        core: core.clone(),
        health: shared.probe(true),
        live_docs: live_slot.clone(),
    };
    let routes = routes(&["project.ProjectService"], move |b| {
        b.add_service(
            ProjectServiceServer::new(adapter.clone())
                .max_decoding_message_size(MAX_DESIGN_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_DESIGN_MESSAGE_BYTES),
        );
    });
    let children = vec![
        EventBridge::child(
            shared.redis.clone(),
            shared.metrics.clone(),
            shared.ns.prefix(),
            &["project:events"],
            bridge_slot,
        ),
        live_docs::LiveDocs::child(core.clone(), live_slot),
        janitor::Janitor::child(core),
    ];
    standard_tree(shared, "project", children, routes, grpc, http, None)
}
