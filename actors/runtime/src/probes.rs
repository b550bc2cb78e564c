//! Liveness and readiness, as load balancers and orchestrators ask for them.
//!
//! - `GET /livez`: the process answers and its service's root supervisor is alive (has not
//!   given up). 200 or 503.
//! - `GET /readyz`: the process can serve its core requests now. A service that owns data
//!   needs PostgreSQL; a caller (the gateway) needs at least one answering instance of each
//!   service it calls. Redis is not needed: auth and CRUD keep working without it (its
//!   absence shows in `/health` as degraded). A draining process (SIGTERM received) is not
//!   ready, so a load balancer stops sending it new work while it finishes the old.

use crate::supervision::TreeView;
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What must answer for a process to be ready: `Ok`, or the names of what does not.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), Vec<String>>> + Send + Sync>;

/// Something to do once when the process starts draining.
type Hook = Box<dyn Fn() + Send + Sync>;

/// Servers still serving, by service.
type ServingCounts = Arc<Mutex<std::collections::HashMap<String, usize>>>;

/// The process is stopping: not ready any more, and told to its parts (hooks run once, in
/// the order they were added: the gateway closes its WebSockets with 1001, ...).
#[derive(Clone, Default)]
pub struct Drain {
    draining: Arc<AtomicBool>,
    hooks: Arc<Mutex<Vec<Hook>>>,
    /// Servers still serving (or finishing their in-flight requests), by service.
    serving: ServingCounts,
}

/// Held by a server while it serves, dropped once its last request has finished.
pub struct Serving {
    service: String,
    serving: ServingCounts,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(mut s) = self.serving.lock() {
            if let Some(n) = s.get_mut(&self.service) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Runs `hook` when the process starts draining.
    pub fn on_drain(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut h) = self.hooks.lock() {
            h.push(Box::new(hook));
        }
    }

    /// A server of `service` starts serving; it stops counting when the guard is dropped.
    pub fn serving(&self, service: &str) -> Serving {
        if let Ok(mut s) = self.serving.lock() {
            *s.entry(service.to_string()).or_insert(0) += 1;
        }
        Serving {
            service: service.to_string(),
            serving: self.serving.clone(),
        }
    }

    /// Servers of `service` (of every service for `None`) not yet fully stopped.
    pub fn servers(&self, service: Option<&str>) -> usize {
        self.serving
            .lock()
            .map(|s| match service {
                Some(name) => s.get(name).copied().unwrap_or(0),
                None => s.values().sum(),
            })
            .unwrap_or(0)
    }

    /// Turns the process unready and runs the hooks (once).
    pub fn start(&self) {
        if self.draining.swap(true, Ordering::AcqRel) {
            return;
        }
        let hooks = self.hooks.lock().map(|mut h| std::mem::take(&mut *h));
        for hook in hooks.unwrap_or_default() {
            hook();
        }
    }
}

/// What `/livez` and `/readyz` of one service look at.
#[derive(Clone)]
pub struct Probes {
    pub service: &'static str,
    pub view: TreeView,
    pub drain: Drain,
    pub ready: ReadyCheck,
}

impl Probes {
    /// Alive: the service's root supervisor runs and has not given up.
    pub fn live(&self) -> Result<(), String> {
        match self.view.snapshot(self.service) {
            Some(s) if !s.gave_up => Ok(()),
            Some(_) => Err(format!("the {} supervisor gave up", self.service)),
            None => Err(format!("the {} supervisor is not running", self.service)),
        }
    }

    /// Ready: not draining, and everything the service needs answers.
    pub async fn ready(&self) -> Result<(), Vec<String>> {
        if self.drain.is_draining() {
            return Err(vec!["draining".into()]);
        }
        self.live().map_err(|e| vec![e])?;
        (self.ready)().await
    }
}

/// The readiness of a service that owns data: PostgreSQL answers within `timeout`.
pub fn needs_postgres(pool: sdsim_schema::DbPool, timeout: std::time::Duration) -> ReadyCheck {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            match tokio::time::timeout(timeout, sdsim_schema::pool::ping(&pool)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(vec![format!("postgres: {e}")]),
                Err(_) => Err(vec!["postgres: timed out".into()]),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_runs_each_hook_once_and_stays_draining() {
        let d = Drain::new();
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let r = runs.clone();
        d.on_drain(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!d.is_draining());
        d.start();
        d.start();
        assert!(d.is_draining());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
