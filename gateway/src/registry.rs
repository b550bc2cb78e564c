//! The WebSocket sessions connected to this gateway instance, by user.
//!
//! A plain shared structure rather than an actor: session actors add and remove themselves,
//! the notification subscriber and the gRPC adapter read it. It outlives every actor that
//! uses it, so a restarted subscriber finds every user it must listen for.

use crate::ws::{Deliver, WsSession};
use actix::Addr;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// What the gateway knows of one connected client.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub client_id: Uuid,
    pub user_id: String,
    pub session_id: String,
    pub endpoint: &'static str,
    pub remote_addr: String,
    pub connected_at: DateTime<Utc>,
    pub subscriptions: Vec<String>,
}

struct Entry {
    summary: ClientSummary,
    addr: Addr<WsSession>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<Uuid, Entry>,
    by_user: HashMap<String, Vec<Uuid>>,
}

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an authenticated session; true when it is the user's first on this instance.
    pub fn add(&self, summary: ClientSummary, addr: Addr<WsSession>) -> bool {
        let Ok(mut g) = self.inner.write() else {
            return false;
        };
        let ids = g.by_user.entry(summary.user_id.clone()).or_default();
        let first = ids.is_empty();
        ids.push(summary.client_id);
        g.clients.insert(summary.client_id, Entry { summary, addr });
        first
    }

    /// Removes a session; returns its user and whether it was the user's last one here.
    pub fn remove(&self, client_id: Uuid) -> Option<(String, bool)> {
        let mut g = self.inner.write().ok()?;
        let entry = g.clients.remove(&client_id)?;
        let user = entry.summary.user_id;
        let last = match g.by_user.get_mut(&user) {
            Some(ids) => {
                ids.retain(|id| *id != client_id);
                ids.is_empty()
            }
            None => true,
        };
        if last {
            g.by_user.remove(&user);
        }
        Some((user, last))
    }

    pub fn has_user(&self, user_id: &str) -> bool {
        self.inner
            .read()
            .map(|g| g.by_user.contains_key(user_id))
            .unwrap_or(false)
    }

    /// Every user with at least one session here.
    pub fn users(&self) -> Vec<String> {
        self.inner
            .read()
            .map(|g| g.by_user.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends `frame` to every session of `user_id`; returns how many got it.
    pub fn deliver_to_user(&self, user_id: &str, frame: &Deliver) -> usize {
        let Ok(g) = self.inner.read() else { return 0 };
        let Some(ids) = g.by_user.get(user_id) else {
            return 0;
        };
        ids.iter()
            .filter_map(|id| g.clients.get(id))
            .map(|e| e.addr.do_send(frame.clone()))
            .count()
    }

    /// Sends `frame` to every session (optionally only those subscribed to `channel`).
    pub fn broadcast(&self, channel: Option<&str>, frame: &Deliver) -> usize {
        let Ok(g) = self.inner.read() else { return 0 };
        g.clients
            .values()
            .filter(|e| channel.is_none_or(|c| e.summary.subscriptions.iter().any(|s| s == c)))
            .map(|e| e.addr.do_send(frame.clone()))
            .count()
    }

    /// Connected clients, optionally of one user, at most `limit` (0: all), oldest first.
    pub fn list(&self, user_id: Option<&str>, limit: usize) -> (Vec<ClientSummary>, usize) {
        let Ok(g) = self.inner.read() else {
            return (Vec::new(), 0);
        };
        let mut all: Vec<ClientSummary> = g
            .clients
            .values()
            .filter(|e| user_id.is_none_or(|u| e.summary.user_id == u))
            .map(|e| e.summary.clone())
            .collect();
        all.sort_by_key(|c| (c.connected_at, c.client_id));
        let total = all.len();
        if limit > 0 {
            all.truncate(limit);
        }
        (all, total)
    }

    pub fn get(&self, client_id: Uuid) -> Option<ClientSummary> {
        self.inner
            .read()
            .ok()?
            .clients
            .get(&client_id)
            .map(|e| e.summary.clone())
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|g| g.clients.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
