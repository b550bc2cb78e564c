//! What the handlers and session actors of one gateway instance share.

use crate::registry::Registry;
use crate::settings::GatewaySettings;
use crate::upstream::Upstreams;
use sdsim_runtime::discovery::View;
use sdsim_runtime::health::HealthProbe;
use sdsim_runtime::metrics::Metrics;
use sdsim_runtime::supervision::TreeView;
use std::sync::Arc;

/// Everything the handlers and session actors of one gateway share; cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub upstream: Upstreams,
    pub registry: Registry,
    pub feeds: crate::feeds::Feeds,
    pub collab: crate::collab::Collab,
    /// Every authenticated WebSocket by its auth session (closed when the session ends).
    pub sockets: Arc<crate::sockets::SessionSockets>,
    pub limiter: crate::limits::Limiter,
    pub settings: GatewaySettings,
    pub metrics: Arc<Metrics>,
    pub view: TreeView,
    pub probe: HealthProbe,
    pub instance_id: String,
    pub fault_injection: bool,
    pub instances: View,
    /// `/livez` and `/readyz`.
    pub probes: sdsim_runtime::probes::Probes,
}
