//! The event bridge: publishes events on Redis pub/sub for the rest of the mesh.
//!
//! Publishing is fire-and-forget, as pub/sub is: a failed publish is logged and counted in
//! `sdsim_events_published_total{outcome="error"}`, never an error for the caller (a login
//! must not fail because Redis is down). The connection is a redis `ConnectionManager` that
//! connects lazily and reconnects by itself.

use crate::metrics::{channel_family, Metrics};
use crate::slot::Slot;
use crate::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use actix::prelude::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sdsim_protocols::events::Envelope;
use std::sync::Arc;
use std::time::Duration;

/// Opens a lazily-connecting, self-reconnecting Redis connection with bounded timeouts, so a
/// down Redis makes calls fail fast instead of hanging.
pub fn connection_manager(url: &str, timeout: Duration) -> Result<ConnectionManager, String> {
    let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL: {e}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| format!("cannot create Redis connection: {e}"))
}

/// [`connection_manager`] whose I/O task runs on `runtime`: the manager is made there and its
/// first command (a PING, whose failure only means "connect on first use") runs there. Without
/// this the task lands on whichever thread sends the first command, which may be a busy
/// actor thread that every other caller would then wait on.
pub async fn connection_manager_on(
    runtime: &tokio::runtime::Handle,
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, String> {
    let conn = {
        let _on = runtime.enter();
        connection_manager(url, timeout)?
    };
    let mut first = conn.clone();
    let ping = runtime.spawn(async move { redis::cmd("PING").query_async::<()>(&mut first).await });
    if let Ok(Err(e)) = ping.await {
        tracing::warn!(error = %e, "Redis not reachable yet; connecting on first use");
    }
    Ok(conn)
}

/// Publishes one event on one channel.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub channel: String,
    pub envelope: Envelope,
}

pub struct EventBridge {
    conn: ConnectionManager,
    metrics: Arc<Metrics>,
    /// The key prefix, left out of the metric's channel family.
    prefix: String,
    slot: Slot<EventBridge>,
    _link: ChildLink,
}

impl EventBridge {
    /// The bridge of a service that publishes on the channel `families` (e.g.
    /// `auth:events`): their `sdsim_events_published_total` series exist from the start.
    pub fn child(
        conn: ConnectionManager,
        metrics: Arc<Metrics>,
        prefix: &str,
        families: &[&str],
        slot: Slot<EventBridge>,
    ) -> ChildSpec {
        for family in families {
            for outcome in ["ok", "error"] {
                metrics
                    .events_published
                    .with_label_values(&[family, outcome]);
            }
        }
        let prefix = prefix.to_string();
        ChildSpec::worker("event_bridge", Restart::Permanent, move |link| {
            let addr = EventBridge {
                conn: conn.clone(),
                metrics: metrics.clone(),
                prefix: prefix.clone(),
                slot: slot.clone(),
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }
}

impl Actor for EventBridge {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.slot.set(ctx.address());
    }
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.slot.clear(&ctx.address());
    }
}
crate::impl_supervised!(EventBridge);

impl Handler<Publish> for EventBridge {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        let mut conn = self.conn.clone();
        let metrics = self.metrics.clone();
        let unprefixed = msg
            .channel
            .strip_prefix(self.prefix.as_str())
            .unwrap_or(&msg.channel);
        let family = channel_family(unprefixed).to_string();
        Box::pin(async move {
            let payload = match serde_json::to_string(&msg.envelope) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode event");
                    return;
                }
            };
            let res: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&msg.channel)
                .arg(payload)
                .query_async(&mut conn)
                .await;
            let outcome = match res {
                Ok(_) => "ok",
                Err(e) => {
                    tracing::warn!(channel = %msg.channel, error = %e, "event not published");
                    "error"
                }
            };
            metrics
                .events_published
                .with_label_values(&[&family, outcome])
                .inc();
        })
    }
}

/// Publishes through whichever event bridge instance is live (none while it restarts).
#[derive(Clone, Debug, Default)]
pub struct EventSink {
    slot: Slot<EventBridge>,
}

impl EventSink {
    pub fn new(slot: Slot<EventBridge>) -> Self {
        Self { slot }
    }

    pub fn publish(&self, channel: String, envelope: Envelope) {
        match self.slot.get() {
            Some(addr) => addr.do_send(Publish { channel, envelope }),
            None => tracing::warn!(%channel, "event bridge restarting; event dropped"),
        }
    }
}
