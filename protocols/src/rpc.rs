//! Every RPC of the four services' contracts, and whether it is idempotent: declared once,
//! here, next to the contracts, and read by every caller (`Mesh::call` looks it up).
//!
//! The retry rule (the brief's): a call that may have reached a server (it timed out, its
//! connection was reset, the server answered UNAVAILABLE) is retried on another instance
//! only if it is idempotent, since the first attempt may have done its work. A connection
//! that was refused never reached a server, so any call may then go to another instance.
//! An RPC missing from this table counts as not idempotent; a test checks that the table
//! names every RPC of the protos, so a new RPC must be declared here.

use crate::Service;

/// One RPC of a service's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rpc {
    pub service: Service,
    /// The method's name as in the proto (`Login`), which is also the metrics label.
    pub method: &'static str,
    /// Whether repeating it is harmless: it changes nothing, or a second time changes
    /// nothing more (it sets, rather than adds or sends).
    pub idempotent: bool,
}

const fn rpc(service: Service, method: &'static str, idempotent: bool) -> Rpc {
    Rpc {
        service,
        method,
        idempotent,
    }
}

use Service::{Auth, Gateway, Project, Simulation};

/// Whether repeating a call can do harm; see [`Rpc::idempotent`].
const SAFE: bool = true;
const ONCE: bool = false;

/// Every RPC, by service.
pub const RPCS: &[Rpc] = &[
    // auth: anything that creates, rotates, sends mail or consumes a one-time token is ONCE.
    rpc(Auth, "Register", ONCE),
    rpc(Auth, "Login", ONCE),
    rpc(Auth, "RefreshToken", ONCE),
    rpc(Auth, "Logout", SAFE),
    rpc(Auth, "GetProfile", SAFE),
    rpc(Auth, "UpdateProfile", SAFE),
    rpc(Auth, "ChangePassword", ONCE),
    rpc(Auth, "ListSessions", SAFE),
    rpc(Auth, "RequestEmailVerification", ONCE),
    rpc(Auth, "VerifyEmail", ONCE),
    rpc(Auth, "RequestPasswordReset", ONCE),
    rpc(Auth, "ResetPassword", ONCE),
    rpc(Auth, "AdminListUsers", SAFE),
    rpc(Auth, "AdminChangeRole", SAFE),
    rpc(Auth, "AdminSetLocked", SAFE),
    rpc(Auth, "AdminEndSessions", SAFE),
    rpc(Auth, "AdminAuditLog", SAFE),
    rpc(Auth, "EndSession", SAFE),
    rpc(Auth, "ValidateToken", SAFE),
    rpc(Auth, "GetUserContext", SAFE),
    rpc(Auth, "LookupUser", SAFE),
    rpc(Auth, "ListNotifications", SAFE),
    rpc(Auth, "MarkNotificationsRead", SAFE),
    rpc(Auth, "CheckPermission", SAFE),
    rpc(Auth, "ValidateSession", SAFE),
    rpc(Auth, "GetUserPermissions", SAFE),
    rpc(Auth, "HealthCheck", SAFE),
    // gateway: a routed or broadcast message would be delivered twice.
    rpc(Gateway, "RegisterClient", SAFE),
    rpc(Gateway, "UnregisterClient", ONCE),
    rpc(Gateway, "RouteMessage", ONCE),
    rpc(Gateway, "BroadcastMessage", ONCE),
    rpc(Gateway, "GetConnectedClients", SAFE),
    rpc(Gateway, "GetClientInfo", SAFE),
    rpc(Gateway, "HealthCheck", SAFE),
    // project: a create twice is two projects; an update or a delete twice answers a
    // conflict or not-found for work that was done; a share sends its mail twice.
    rpc(Project, "CreateProject", ONCE),
    rpc(Project, "GetProject", SAFE),
    rpc(Project, "UpdateProject", ONCE),
    rpc(Project, "DeleteProject", ONCE),
    rpc(Project, "ListProjects", SAFE),
    rpc(Project, "ShareProject", ONCE),
    rpc(Project, "GetProjectPermissions", SAFE),
    rpc(Project, "GetTemplate", SAFE),
    rpc(Project, "ListTemplates", SAFE),
    rpc(Project, "SaveAsTemplate", ONCE),
    rpc(Project, "JoinCollaboration", ONCE),
    rpc(Project, "LeaveCollaboration", SAFE),
    rpc(Project, "TouchCollaboration", SAFE),
    // Applied once per (client_id, edit_id): sent again, it answers the first one's seq.
    rpc(Project, "ApplyEdit", SAFE),
    rpc(Project, "GetEdits", SAFE),
    rpc(Project, "RestoreProject", SAFE),
    rpc(Project, "PurgeProject", ONCE),
    rpc(Project, "ListVersions", SAFE),
    rpc(Project, "GetVersion", SAFE),
    rpc(Project, "DiffVersions", SAFE),
    rpc(Project, "RollbackProject", ONCE),
    rpc(Project, "ForkProject", ONCE),
    rpc(Project, "TransferOwnership", ONCE),
    rpc(Project, "CreateShareLink", ONCE),
    rpc(Project, "ListShareLinks", SAFE),
    rpc(Project, "RevokeShareLink", SAFE),
    // Opening to view reads; opening to fork creates a project.
    rpc(Project, "OpenShareLink", ONCE),
    rpc(Project, "ListCollaborators", SAFE),
    rpc(Project, "GetProjectAnalytics", SAFE),
    rpc(Project, "ExportProject", SAFE),
    rpc(Project, "ImportProject", ONCE),
    rpc(Project, "HealthCheck", SAFE),
    // simulation: a start twice is two runs.
    rpc(Simulation, "StartSimulation", ONCE),
    rpc(Simulation, "StopSimulation", ONCE),
    // A second delete is a 404: the first one's answer would be lost.
    rpc(Simulation, "DeleteSimulation", ONCE),
    // Sets a state (paused, running, a speed): the same call twice leaves the same run.
    rpc(Simulation, "ControlSimulation", SAFE),
    rpc(Simulation, "GetSimulationStatus", SAFE),
    rpc(Simulation, "GetSimulationResults", SAFE),
    rpc(Simulation, "GetLiveMetrics", SAFE),
    rpc(Simulation, "InjectChaos", ONCE),
    rpc(Simulation, "CompareSimulations", SAFE),
    rpc(Simulation, "GetSimulationWindows", SAFE),
    rpc(Simulation, "GetPerformanceAnalysis", SAFE),
    rpc(Simulation, "ValidateConfiguration", SAFE),
    rpc(Simulation, "GetSimulationHistory", SAFE),
    rpc(Simulation, "HealthCheck", SAFE),
];

/// The declared RPC `method` of `service`, if any.
pub fn find(service: Service, method: &str) -> Option<&'static Rpc> {
    RPCS.iter()
        .find(|r| r.service == service && r.method == method)
}

/// Whether a call of `method` on `service` that may have reached a server can be made again
/// on another instance. Unknown methods are not (the safe answer).
pub fn is_idempotent(service: Service, method: &str) -> bool {
    find(service, method).is_some_and(|r| r.idempotent)
}

/// Response metadata set by auth when a call ended sessions or changed permissions on the
/// instance that answered it: whoever caches token validations drops them before using the
/// answer, so the caller's next request is checked afresh (the gateway's `tokens` cache).
pub const SESSIONS_CHANGED_HEADER: &str = "sdsim-sessions-changed";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::collections::BTreeSet;

    fn package(s: Service) -> &'static str {
        match s {
            Gateway => "gateway",
            Auth => "auth",
            Project => "project",
            Simulation => "simulation",
        }
    }

    /// The table and the protos name the same RPCs, each once.
    #[test]
    fn every_rpc_of_the_protos_is_declared_once() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut in_protos = BTreeSet::new();
        for file in &set.file {
            for svc in &file.service {
                for m in &svc.method {
                    in_protos.insert(format!("{}.{}/{}", file.package(), svc.name(), m.name()));
                }
            }
        }
        let mut declared = BTreeSet::new();
        for r in RPCS {
            let p = package(r.service);
            let mut name = p.to_string();
            name[..1].make_ascii_uppercase();
            let key = format!("{p}.{name}Service/{}", r.method);
            assert!(declared.insert(key.clone()), "{key} is declared twice");
        }
        assert_eq!(declared, in_protos);
    }

    #[test]
    fn creations_are_not_retried_and_reads_are() {
        assert!(!is_idempotent(Auth, "Login"));
        assert!(!is_idempotent(Project, "CreateProject"));
        assert!(!is_idempotent(Simulation, "StartSimulation"));
        assert!(!is_idempotent(Auth, "NoSuchMethod"));
        assert!(is_idempotent(Auth, "ValidateToken"));
        assert!(is_idempotent(Project, "GetProject"));
    }
}
