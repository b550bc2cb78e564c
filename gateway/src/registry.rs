//! The WebSocket sessions connected to this gateway instance, by user and by channel.
//!
//! A plain shared structure rather than an actor: session actors add and remove themselves,
//! the notification subscriber and the gRPC adapter read it. It outlives every actor that
//! uses it, so a restarted subscriber finds every channel it must listen on.
//!
//! It is also the one place that knows which Redis channels this instance needs: every change
//! that makes a channel needed or unneeded (a user's first or last session, a
//! `RegisterClient`, a session closing) tells the subscriber with [`Resync`], and the
//! subscriber compares with what it is subscribed to.
//!
//! Frames go to a session through its [`Outlet`], which counts what the session has not yet
//! handed to its socket ([`Backlog`]): a session over its limits is evicted here at once (it
//! receives nothing more) and told to close with 4008.

use crate::outlet::{Deliver, Disconnect, Offer, Outlet, Resync};
use actix::Recipient;
use chrono::{DateTime, Utc};
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// Channels a session may be given with `RegisterClient`, beyond its own two, at most.
pub const MAX_SESSION_CHANNELS: usize = 64;

/// What the gateway knows of one connected client.
#[derive(Debug, Clone)]
pub struct ClientSummary {
    pub client_id: Uuid,
    pub user_id: String,
    pub session_id: String,
    pub endpoint: &'static str,
    pub remote_addr: String,
    pub connected_at: DateTime<Utc>,
    /// Relative channel names: the user's notifications, system announcements, then those
    /// attached by `RegisterClient`.
    pub subscriptions: Vec<String>,
}

/// A pub/sub channel a WebSocket session can receive, known by its family. Names are built
/// and recognised through [`Namespace`], which defines them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `notifications:user:{id}`: every session of the user, always.
    User(String),
    /// `system:announcements`: every session, always.
    Announcements,
    /// `simulation:events:{name}`: sessions it was attached to.
    SimulationEvents(String),
    /// `project:events:{name}`: sessions it was attached to.
    ProjectEvents(String),
}

/// The relative name families (`simulation:events:` ...), from the one definition.
struct Families {
    simulation: String,
    project: String,
    announcements: String,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let ns = Namespace::default();
    Families {
        simulation: ns.simulation_events(""),
        project: ns.project_events(""),
        announcements: ns.system_announcements(),
    }
});

impl Channel {
    /// Recognises a relative channel name; None for names outside the families above or with
    /// an empty id.
    pub fn parse(name: &str) -> Option<Channel> {
        let f = &*FAMILIES;
        if name == f.announcements {
            return Some(Channel::Announcements);
        }
        if let Some(user) = Namespace::default().notification_user(name) {
            return Some(Channel::User(user.to_string()));
        }
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(rest) = name.strip_prefix(f.simulation.as_str()) {
            return nonempty(rest).map(Channel::SimulationEvents);
        }
        if let Some(rest) = name.strip_prefix(f.project.as_str()) {
            return nonempty(rest).map(Channel::ProjectEvents);
        }
        None
    }

    /// The relative name (what clients see in a frame's `channel`).
    pub fn name(&self) -> String {
        self.in_namespace(&Namespace::default())
    }

    /// The name on Redis under `ns`'s prefix.
    pub fn in_namespace(&self, ns: &Namespace) -> String {
        match self {
            Channel::User(u) => ns.user_notifications(u),
            Channel::Announcements => ns.system_announcements(),
            Channel::SimulationEvents(n) => ns.simulation_events(n),
            Channel::ProjectEvents(n) => ns.project_events(n),
        }
    }

    /// The two every authenticated session has.
    fn is_default(&self) -> bool {
        matches!(self, Channel::User(_) | Channel::Announcements)
    }
}

struct Entry {
    summary: ClientSummary,
    outlet: Outlet,
    /// Channels attached by `RegisterClient` (relative names).
    extra: BTreeSet<String>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<Uuid, Entry>,
    by_user: HashMap<String, Vec<Uuid>>,
    /// Sessions by attached channel (relative name).
    by_channel: HashMap<String, HashSet<Uuid>>,
}

impl Inner {
    fn take(&mut self, client_id: Uuid) -> Option<(Entry, Vec<String>)> {
        let entry = self.clients.remove(&client_id)?;
        let mut freed = Vec::new();
        let user = &entry.summary.user_id;
        let last = match self.by_user.get_mut(user) {
            Some(ids) => {
                ids.retain(|id| *id != client_id);
                ids.is_empty()
            }
            None => true,
        };
        if last {
            self.by_user.remove(user);
            freed.push(Channel::User(user.clone()).name());
        }
        for ch in &entry.extra {
            if let Some(ids) = self.by_channel.get_mut(ch) {
                ids.remove(&client_id);
                if ids.is_empty() {
                    self.by_channel.remove(ch);
                    freed.push(ch.clone());
                }
            }
        }
        Some((entry, freed))
    }
}

/// What `RegisterClient` changed.
#[derive(Debug, Clone)]
pub struct Attached {
    pub summary: ClientSummary,
    /// Channels no session here had before: the subscriber must SUBSCRIBE them.
    pub new_here: Vec<String>,
}

/// How long a new session's answer (`auth_ok`, `RegisterClient`) waits for its channels'
/// Redis subscription before it is sent anyway.
pub const SUBSCRIBE_WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
    /// The live notification subscriber (it puts itself here when it starts). A recipient,
    /// not an address: the registry knows what it tells, not who listens.
    subscriber: Arc<RwLock<Option<Recipient<Resync>>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Called by the subscriber when it starts and stops.
    pub fn attach_subscriber(&self, subscriber: Recipient<Resync>) {
        if let Ok(mut g) = self.subscriber.write() {
            *g = Some(subscriber);
        }
    }

    /// Forgets `subscriber` if it is still the one attached (a newer one may already be).
    pub fn detach_subscriber(&self, subscriber: &Recipient<Resync>) {
        if let Ok(mut g) = self.subscriber.write() {
            if g.as_ref() == Some(subscriber) {
                *g = None;
            }
        }
    }

    fn subscriber(&self) -> Option<Recipient<Resync>> {
        self.subscriber.read().ok().and_then(|g| g.clone())
    }

    /// Tells the subscriber that these channels may have become needed or unneeded.
    fn notify(&self, channels: Vec<String>) {
        if channels.is_empty() {
            return;
        }
        match self.subscriber() {
            Some(sub) => sub.do_send(Resync(channels)),
            None => tracing::debug!("subscriber restarting; it resubscribes from the registry"),
        }
    }

    /// Like [`Self::notify`], waiting (at most `within`) until the subscriber has subscribed:
    /// true when every needed channel is subscribed on Redis.
    pub async fn resync(&self, channels: Vec<String>, within: Duration) -> bool {
        if channels.is_empty() {
            return true;
        }
        let Some(sub) = self.subscriber() else {
            return false;
        };
        matches!(
            tokio::time::timeout(within, sub.send(Resync(channels))).await,
            Ok(Ok(true))
        )
    }

    /// Tells every session to close with `code` and `reason` once the events already queued
    /// for it are written (draining: 1001, going away, so clients reconnect elsewhere); how
    /// many were told.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let outlets: Vec<Outlet> = self
            .inner
            .read()
            .map(|g| g.clients.values().map(|e| e.outlet.clone()).collect())
            .unwrap_or_default();
        for o in &outlets {
            o.disconnect.do_send(Disconnect {
                code,
                reason: reason.to_string(),
                drain: true,
            });
        }
        outlets.len()
    }

    /// Adds an authenticated session; true when it is the user's first on this instance.
    pub fn add(&self, summary: ClientSummary, outlet: Outlet) -> bool {
        let user = summary.user_id.clone();
        let first = {
            let Ok(mut g) = self.inner.write() else {
                return false;
            };
            let ids = g.by_user.entry(user.clone()).or_default();
            let first = ids.is_empty();
            ids.push(summary.client_id);
            g.clients.insert(
                summary.client_id,
                Entry {
                    summary,
                    outlet,
                    extra: BTreeSet::new(),
                },
            );
            first
        };
        if first {
            self.notify(vec![Channel::User(user).name()]);
        }
        first
    }

    /// Removes a session and releases the channels only it needed; returns its summary.
    pub fn remove(&self, client_id: Uuid) -> Option<ClientSummary> {
        self.evict(client_id).map(|(summary, _)| summary)
    }

    /// Removes a session (it receives nothing more from now on) and hands back its outlet, so
    /// the caller can tell it to close.
    pub fn evict(&self, client_id: Uuid) -> Option<(ClientSummary, Outlet)> {
        let (entry, freed) = self.inner.write().ok()?.take(client_id)?;
        self.notify(freed);
        Some((entry.summary, entry.outlet))
    }

    /// Attaches `channels` to the open session `client_id` of `user_id` (all or nothing).
    pub fn attach(
        &self,
        client_id: Uuid,
        user_id: &str,
        channels: &[Channel],
    ) -> Result<Attached, ServiceError> {
        let mut g = self
            .inner
            .write()
            .map_err(|_| ServiceError::Internal("registry lock poisoned".into()))?;
        let inner = &mut *g;
        let entry = inner.clients.get_mut(&client_id).ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no open WebSocket session {client_id} on this gateway instance"
            ))
        })?;
        if entry.summary.user_id != user_id {
            return Err(ServiceError::Forbidden(format!(
                "WebSocket session {client_id} is not a session of user {user_id}"
            )));
        }
        let wanted: BTreeSet<String> = channels
            .iter()
            .filter(|c| !c.is_default())
            .map(Channel::name)
            .filter(|n| !entry.extra.contains(n))
            .collect();
        let total = entry.extra.len() + wanted.len();
        if total > MAX_SESSION_CHANNELS {
            return Err(ServiceError::invalid(
                "subscriptions",
                format!(
                    "the session would have {total} attached channels; at most \
                     {MAX_SESSION_CHANNELS}"
                ),
            ));
        }
        let mut new_here = Vec::new();
        for ch in wanted {
            let ids = inner.by_channel.entry(ch.clone()).or_default();
            if ids.is_empty() {
                new_here.push(ch.clone());
            }
            ids.insert(client_id);
            entry.summary.subscriptions.push(ch.clone());
            entry.extra.insert(ch);
        }
        Ok(Attached {
            summary: entry.summary.clone(),
            new_here,
        })
    }

    /// Whether some session here needs the (relative) channel.
    pub fn needs(&self, channel: &str) -> bool {
        let Ok(g) = self.inner.read() else {
            return false;
        };
        match Channel::parse(channel) {
            Some(Channel::Announcements) => true,
            Some(Channel::User(u)) => g.by_user.contains_key(&u),
            Some(_) => g.by_channel.contains_key(channel),
            None => false,
        }
    }

    /// Every channel this instance needs (relative names).
    pub fn channels(&self) -> Vec<String> {
        let Ok(g) = self.inner.read() else {
            return vec![Channel::Announcements.name()];
        };
        let mut all = vec![Channel::Announcements.name()];
        all.extend(g.by_user.keys().map(|u| Channel::User(u.clone()).name()));
        all.extend(g.by_channel.keys().cloned());
        all
    }

    /// Offers `frame` to the given sessions: how many got it, and those it took over their
    /// limits.
    fn offer_to(g: &Inner, ids: &[Uuid], frame: &Deliver) -> (usize, Vec<Uuid>) {
        let mut sent = 0;
        let mut slow = Vec::new();
        for id in ids {
            let Some(e) = g.clients.get(id) else { continue };
            match e.outlet.offer(frame) {
                Offer::Sent => sent += 1,
                Offer::Overflowed => slow.push(*id),
                Offer::Refused => {}
            }
        }
        (sent, slow)
    }

    /// Closes sessions whose backlog went over the limits (outside the read lock).
    fn evict_slow(&self, slow: Vec<Uuid>) {
        for id in slow {
            if let Some((summary, outlet)) = self.evict(id) {
                let (bytes, frames) = outlet.backlog.pending();
                tracing::info!(
                    client = %id,
                    user = %summary.user_id,
                    pending_bytes = bytes,
                    pending_frames = frames,
                    "WebSocket client too slow; closing it with 4008"
                );
                outlet.disconnect.do_send(Disconnect::too_slow());
            }
        }
    }

    fn deliver_where(&self, frame: &Deliver, pick: impl FnOnce(&Inner) -> Vec<Uuid>) -> usize {
        let (sent, slow) = {
            let Ok(g) = self.inner.read() else { return 0 };
            let ids = pick(&g);
            Self::offer_to(&g, &ids, frame)
        };
        self.evict_slow(slow);
        sent
    }

    /// Sends `frame` to every session of `user_id`; returns how many got it.
    pub fn deliver_to_user(&self, user_id: &str, frame: &Deliver) -> usize {
        self.deliver_where(frame, |g| {
            g.by_user.get(user_id).cloned().unwrap_or_default()
        })
    }

    /// Sends `frame` to every session attached to the (relative) `channel`.
    pub fn deliver_to_channel(&self, channel: &str, frame: &Deliver) -> usize {
        self.deliver_where(frame, |g| {
            g.by_channel
                .get(channel)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default()
        })
    }

    /// Sends `frame` to every session (optionally only those subscribed to `channel`).
    pub fn broadcast(&self, channel: Option<&str>, frame: &Deliver) -> usize {
        self.deliver_where(frame, |g| {
            g.clients
                .values()
                .filter(|e| channel.is_none_or(|c| e.summary.subscriptions.iter().any(|s| s == c)))
                .map(|e| e.summary.client_id)
                .collect()
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outlet::Backlog;
    use actix::prelude::*;
    use std::sync::Mutex;

    #[derive(Default, Clone)]
    struct Seen {
        frames: Arc<Mutex<Vec<String>>>,
        closed: Arc<Mutex<Option<u16>>>,
    }

    /// Stands for a session actor; never releases its backlog (a client that never reads).
    struct Probe(Seen);
    impl Actor for Probe {
        type Context = Context<Self>;
    }
    impl Handler<Deliver> for Probe {
        type Result = ();
        fn handle(&mut self, m: Deliver, _: &mut Context<Self>) {
            self.0.frames.lock().unwrap().push(m.0.to_string());
        }
    }
    impl Handler<Disconnect> for Probe {
        type Result = ();
        fn handle(&mut self, m: Disconnect, _: &mut Context<Self>) {
            *self.0.closed.lock().unwrap() = Some(m.code);
        }
    }

    fn session(reg: &Registry, user: &str, backlog: Backlog) -> (Uuid, Seen) {
        let seen = Seen::default();
        let addr = Probe(seen.clone()).start();
        let id = Uuid::new_v4();
        reg.add(
            ClientSummary {
                client_id: id,
                user_id: user.into(),
                session_id: format!("s-{id}"),
                endpoint: "/ws/notifications",
                remote_addr: "127.0.0.1".into(),
                connected_at: Utc::now(),
                subscriptions: vec![
                    Channel::User(user.into()).name(),
                    Channel::Announcements.name(),
                ],
            },
            Outlet {
                deliver: addr.clone().recipient(),
                disconnect: addr.recipient(),
                backlog: Arc::new(backlog),
            },
        );
        (id, seen)
    }

    fn roomy() -> Backlog {
        Backlog::new(1 << 20, 1000)
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[test]
    fn channel_names_are_recognised_and_rebuilt() {
        let sim = Channel::parse("simulation:events:sim-1").unwrap();
        assert_eq!(sim, Channel::SimulationEvents("sim-1".into()));
        assert_eq!(sim.name(), "simulation:events:sim-1");
        assert_eq!(
            sim.in_namespace(&Namespace::new("t:")),
            "t:simulation:events:sim-1"
        );
        assert_eq!(
            Channel::parse("project:events:p.7:updated"),
            Some(Channel::ProjectEvents("p.7:updated".into()))
        );
        assert_eq!(
            Channel::parse("system:announcements"),
            Some(Channel::Announcements)
        );
        assert_eq!(
            Channel::parse("notifications:user:u1"),
            Some(Channel::User("u1".into()))
        );
        for bad in [
            "simulation:events:",
            "project:events:",
            "auth:events:login",
            "simulation:stream:s1",
            "system:announcements:x",
            "notifications:user:",
            "",
        ] {
            assert_eq!(Channel::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn attach_checks_the_session_and_counts_who_needs_a_channel() {
        System::new().block_on(async {
            let reg = Registry::new();
            let (a, seen_a) = session(&reg, "u1", roomy());
            let (b, seen_b) = session(&reg, "u2", roomy());
            let sim = Channel::SimulationEvents("s1".into());

            let err = reg
                .attach(Uuid::new_v4(), "u1", std::slice::from_ref(&sim))
                .unwrap_err();
            assert!(matches!(err, ServiceError::NotFound(_)), "{err:?}");
            let err = reg.attach(a, "u2", std::slice::from_ref(&sim)).unwrap_err();
            assert!(matches!(err, ServiceError::Forbidden(_)), "{err:?}");
            assert!(!reg.needs("simulation:events:s1"));

            let got = reg
                .attach(a, "u1", &[sim.clone(), sim.clone(), Channel::Announcements])
                .unwrap();
            assert_eq!(got.new_here, vec!["simulation:events:s1".to_string()]);
            assert_eq!(
                got.summary.subscriptions,
                vec![
                    "notifications:user:u1",
                    "system:announcements",
                    "simulation:events:s1"
                ]
            );
            // Again: nothing new.
            assert!(reg
                .attach(a, "u1", std::slice::from_ref(&sim))
                .unwrap()
                .new_here
                .is_empty());
            assert!(reg
                .attach(b, "u2", std::slice::from_ref(&sim))
                .unwrap()
                .new_here
                .is_empty());
            assert!(reg.channels().contains(&"simulation:events:s1".to_string()));

            let frame = Deliver(Arc::from("{}"));
            assert_eq!(reg.deliver_to_channel("simulation:events:s1", &frame), 2);
            assert_eq!(reg.deliver_to_channel("simulation:events:s2", &frame), 0);
            settle().await;
            assert_eq!(seen_a.frames.lock().unwrap().len(), 1);
            assert_eq!(seen_b.frames.lock().unwrap().len(), 1);

            assert!(reg.remove(a).is_some());
            assert!(reg.needs("simulation:events:s1"), "b still needs it");
            assert!(!reg.needs("notifications:user:u1"));
            assert!(reg.remove(b).is_some());
            assert!(!reg.needs("simulation:events:s1"));
            assert!(reg.needs("system:announcements"));
        });
    }

    #[test]
    fn a_session_has_at_most_so_many_attached_channels() {
        System::new().block_on(async {
            let reg = Registry::new();
            let (a, _) = session(&reg, "u1", roomy());
            let many: Vec<Channel> = (0..MAX_SESSION_CHANNELS)
                .map(|i| Channel::ProjectEvents(format!("p{i}")))
                .collect();
            reg.attach(a, "u1", &many).unwrap();
            let err = reg
                .attach(a, "u1", &[Channel::ProjectEvents("one-more".into())])
                .unwrap_err();
            assert_eq!(err.field(), Some("subscriptions"), "{err:?}");
            assert!(!reg.needs("project:events:one-more"));
        });
    }

    #[test]
    fn a_session_over_its_backlog_is_evicted_and_told_4008() {
        System::new().block_on(async {
            let reg = Registry::new();
            let (slow, seen_slow) = session(&reg, "u1", Backlog::new(100, 10));
            let (_, seen_other) = session(&reg, "u1", roomy());
            let frame = Deliver(Arc::from("x".repeat(40)));
            assert_eq!(reg.deliver_to_user("u1", &frame), 2);
            assert_eq!(reg.deliver_to_user("u1", &frame), 2);
            // 120 bytes > 100: the slow one is dropped, the other still gets it.
            assert_eq!(reg.deliver_to_user("u1", &frame), 1);
            assert!(reg.get(slow).is_none());
            assert_eq!(reg.deliver_to_user("u1", &frame), 1);
            settle().await;
            assert_eq!(*seen_slow.closed.lock().unwrap(), Some(4008));
            assert_eq!(seen_slow.frames.lock().unwrap().len(), 2);
            assert_eq!(seen_other.frames.lock().unwrap().len(), 4);
            assert_eq!(*seen_other.closed.lock().unwrap(), None);
        });
    }
}
