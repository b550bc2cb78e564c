//! The live supervision tree of a process, as operators see it.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// State of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    Starting,
    Running,
    /// Waiting out its backoff before the next start.
    Restarting,
    /// Stopped for good (temporary child, transient child that exited normally, or given up).
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildSnapshot {
    pub id: String,
    pub kind: &'static str,
    pub restart: super::Restart,
    pub status: ChildStatus,
    pub restarts: u64,
    pub generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupervisorSnapshot {
    pub name: String,
    pub service: String,
    pub strategy: super::Strategy,
    pub max_restarts: u32,
    pub period_seconds: f64,
    /// Restarts counted against the intensity limit right now.
    pub recent_restarts: usize,
    pub gave_up: bool,
    pub children: Vec<ChildSnapshot>,
}

/// Shared, process-wide view of every supervisor, updated by the supervisors themselves.
#[derive(Debug, Clone, Default)]
pub struct TreeView {
    inner: Arc<Mutex<BTreeMap<String, SupervisorSnapshot>>>,
    controls: Arc<Mutex<BTreeMap<String, actix::Recipient<super::InjectFault>>>>,
}

impl TreeView {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn publish(&self, snapshot: SupervisorSnapshot) {
        if let Ok(mut map) = self.inner.lock() {
            map.insert(snapshot.name.clone(), snapshot);
        }
    }

    pub(crate) fn register_control(
        &self,
        name: &str,
        recipient: actix::Recipient<super::InjectFault>,
    ) {
        if let Ok(mut map) = self.controls.lock() {
            map.insert(name.to_string(), recipient);
        }
    }

    /// Makes `child` of `supervisor` crash (see [`super::InjectFault`]).
    pub async fn inject_fault(&self, supervisor: &str, child: &str) -> Result<(), String> {
        let recipient = self
            .controls
            .lock()
            .ok()
            .and_then(|m| m.get(supervisor).cloned())
            .ok_or_else(|| format!("no supervisor named {supervisor}"))?;
        recipient
            .send(super::InjectFault {
                child: child.to_string(),
            })
            .await
            .map_err(|_| format!("supervisor {supervisor} is not running"))?
    }

    pub fn snapshot(&self, name: &str) -> Option<SupervisorSnapshot> {
        self.inner.lock().ok()?.get(name).cloned()
    }

    /// The whole forest as JSON: each root supervisor with its children, nested supervisors
    /// inlined under the child that runs them.
    pub fn to_json(&self) -> serde_json::Value {
        let map = match self.inner.lock() {
            Ok(m) => m.clone(),
            Err(_) => return serde_json::json!({"error": "tree view poisoned"}),
        };
        let nested: std::collections::BTreeSet<&str> = map
            .values()
            .flat_map(|s| s.children.iter())
            .filter(|c| c.kind == "supervisor")
            .map(|c| c.id.as_str())
            .collect();
        let roots: Vec<serde_json::Value> = map
            .keys()
            .filter(|name| !nested.contains(name.as_str()))
            .map(|name| render(&map, name, 0))
            .collect();
        serde_json::json!({ "supervisors": roots })
    }
}

fn render(
    map: &BTreeMap<String, SupervisorSnapshot>,
    name: &str,
    depth: usize,
) -> serde_json::Value {
    let Some(s) = map.get(name) else {
        return serde_json::json!({"name": name, "status": "not_started"});
    };
    let children: Vec<serde_json::Value> = s
        .children
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
            if c.kind == "supervisor" && depth < 16 {
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("supervisor".into(), render(map, &c.id, depth + 1));
                }
            }
            v
        })
        .collect();
    serde_json::json!({
        "name": s.name,
        "service": s.service,
        "strategy": s.strategy,
        "max_restarts": s.max_restarts,
        "period_seconds": s.period_seconds,
        "recent_restarts": s.recent_restarts,
        "gave_up": s.gave_up,
        "children": children,
    })
}
