//! The notification subscriber: one Redis pub/sub connection per gateway instance, subscribed
//! to `system:announcements`, to `notifications:user:{id}` for every user with a session
//! here, and to every channel `RegisterClient` attached to a session here
//! (`simulation:events:*`, `project:events:*`), forwarding each event to the sessions that
//! should have it: the user's, every session, or those attached to the channel.
//!
//! The [`Registry`] decides which channels are needed and sends [`Resync`] when that may have
//! changed; the subscriber compares with what it is subscribed to, so it UNSUBSCRIBEs a
//! channel as soon as no session here needs it, and messages arriving in any order end in the
//! registry's state.
//!
//! A lost connection is not a crash: the actor reconnects with backoff (up to 5 s) and
//! resubscribes every channel from the [`Registry`], so a Redis restart costs the events
//! published while it was down (pub/sub keeps nothing) and nothing else. Panics are its
//! supervisor's business.

use crate::outlet::{Deliver, Resync};
use crate::registry::{Channel, Registry};
use actix::prelude::*;
use redis::aio::PubSubSink;
use sdsim_protocols::events::Envelope;
use sdsim_protocols::frames::EventFrame;
use sdsim_protocols::names::Namespace;
use sdsim_runtime::metrics::{channel_family, Metrics};
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for Redis to confirm a SUBSCRIBE or UNSUBSCRIBE.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

pub struct NotificationSubscriber {
    client: redis::Client,
    registry: Registry,
    ns: Namespace,
    metrics: Arc<Metrics>,
    sink: Option<PubSubSink>,
    /// Relative names of the channels subscribed on the current connection.
    subscribed: HashSet<String>,
    attempts: u32,
    _link: ChildLink,
}

impl NotificationSubscriber {
    pub fn child(
        client: redis::Client,
        registry: Registry,
        ns: Namespace,
        metrics: Arc<Metrics>,
    ) -> ChildSpec {
        ChildSpec::worker("notifications", Restart::Permanent, move |link| {
            let addr = NotificationSubscriber {
                client: client.clone(),
                registry: registry.clone(),
                ns: ns.clone(),
                metrics: metrics.clone(),
                sink: None,
                subscribed: HashSet::new(),
                attempts: 0,
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let registry = self.registry.clone();
        let ns = self.ns.clone();
        let fut = async move {
            let pubsub = client.get_async_pubsub().await?;
            let (mut sink, stream) = pubsub.split();
            // Read when connected: what changes from here on arrives as Resync after this.
            let relative = registry.channels();
            let channels: Vec<String> = relative
                .iter()
                .filter_map(|c| Channel::parse(c))
                .map(|c| c.in_namespace(&ns))
                .collect();
            sink.subscribe(channels).await?;
            Ok::<_, redis::RedisError>((sink, stream, relative))
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((sink, stream, relative)) => {
                if act.attempts > 0 {
                    tracing::info!("notification subscriber reconnected to Redis");
                }
                act.attempts = 0;
                act.sink = Some(sink);
                act.subscribed = relative.into_iter().collect();
                ctx.add_stream(stream);
            }
            Err(e) => {
                act.attempts = act.attempts.saturating_add(1);
                let delay = Duration::from_millis(
                    (100u64 << act.attempts.min(6)).min(5_000),
                );
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "notification subscriber cannot reach Redis");
                ctx.run_later(delay, |act, ctx| act.connect(ctx));
            }
        }));
    }

    fn dispatch(&self, msg: redis::Msg) {
        let channel = msg.get_channel_name().to_string();
        let Some(relative) = self.ns.strip(&channel) else {
            return;
        };
        self.metrics
            .events_received
            .with_label_values(&[channel_family(relative)])
            .inc();
        let payload: String = match msg.get_payload() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "event payload is not text; dropped");
                return;
            }
        };
        let envelope: Envelope = match serde_json::from_str(&payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "event is not an envelope; dropped");
                return;
            }
        };
        let frame = EventFrame {
            kind: envelope.kind,
            channel: relative.to_string(),
            offset: envelope.id,
            data: envelope.data,
        };
        let Ok(text) = serde_json::to_string(&frame) else {
            return;
        };
        let deliver = Deliver(Arc::from(text));
        match Channel::parse(relative) {
            Some(Channel::User(user)) => self.registry.deliver_to_user(&user, &deliver),
            Some(Channel::Announcements) => self.registry.broadcast(None, &deliver),
            Some(_) => self.registry.deliver_to_channel(relative, &deliver),
            None => 0,
        };
    }
}

impl Actor for NotificationSubscriber {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Be reachable first: a change after this arrives as Resync; one before is in the
        // registry that connect() reads.
        self.registry.attach_subscriber(ctx.address().recipient());
        self.connect(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.registry.detach_subscriber(&ctx.address().recipient());
    }
}
sdsim_runtime::impl_supervised!(NotificationSubscriber);

impl StreamHandler<redis::Msg> for NotificationSubscriber {
    fn handle(&mut self, msg: redis::Msg, _: &mut Context<Self>) {
        self.dispatch(msg);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!("notification subscriber lost its Redis connection; reconnecting");
        self.sink = None;
        self.subscribed.clear();
        self.attempts = self.attempts.saturating_add(1);
        ctx.run_later(Duration::from_millis(100), |act, ctx| act.connect(ctx));
    }
}

impl Handler<Resync> for NotificationSubscriber {
    /// Atomic: runs under `ctx.wait`, so commands reach Redis in the order decided.
    type Result = AtomicResponse<Self, bool>;

    fn handle(&mut self, msg: Resync, _: &mut Context<Self>) -> Self::Result {
        let Some(mut sink) = self.sink.clone() else {
            // Reconnecting: connect() reads the registry again.
            return AtomicResponse::new(Box::pin(fut::ready(false)));
        };
        let (mut subscribe, mut unsubscribe) = (Vec::new(), Vec::new());
        for channel in msg.0 {
            let needed = self.registry.needs(&channel);
            let have = self.subscribed.contains(&channel);
            if needed && !have {
                self.subscribed.insert(channel.clone());
                subscribe.push(channel);
            } else if !needed && have {
                self.subscribed.remove(&channel);
                unsubscribe.push(channel);
            }
        }
        let ns = self.ns.clone();
        let names = move |v: &[String]| -> Vec<String> {
            v.iter()
                .filter_map(|c| Channel::parse(c))
                .map(|c| c.in_namespace(&ns))
                .collect()
        };
        let (sub_names, unsub_names) = (names(&subscribe), names(&unsubscribe));
        let work = async move {
            let mut ok = true;
            // Bounded: this runs under ctx.wait, and a Redis that hangs must not stall delivery.
            if !sub_names.is_empty() {
                match tokio::time::timeout(COMMAND_TIMEOUT, sink.subscribe(&sub_names)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(channels = ?sub_names, error = %e, "SUBSCRIBE failed");
                        ok = false;
                    }
                    Err(_) => {
                        tracing::warn!(channels = ?sub_names, "SUBSCRIBE timed out");
                        ok = false;
                    }
                }
            }
            if !unsub_names.is_empty() {
                match tokio::time::timeout(COMMAND_TIMEOUT, sink.unsubscribe(&unsub_names)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(channels = ?unsub_names, error = %e, "UNSUBSCRIBE failed")
                    }
                    Err(_) => tracing::warn!(channels = ?unsub_names, "UNSUBSCRIBE timed out"),
                }
            }
            ok
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(move |ok, act, _| {
            if !ok {
                // Not subscribed after all: a later Resync (or the reconnect) retries.
                for c in &subscribe {
                    act.subscribed.remove(c);
                }
            }
            ok
        })))
    }
}
