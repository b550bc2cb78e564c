//! The notification subscriber: one Redis pub/sub connection per gateway instance, subscribed
//! to `notifications:user:{id}` for every user with a session here and to
//! `system:announcements`, forwarding each event to the user's session actors.
//!
//! A lost connection is not a crash: the actor reconnects with backoff (up to 5 s) and
//! resubscribes every channel from the [`Registry`], so a Redis restart costs the events
//! published while it was down (pub/sub keeps nothing) and nothing else. Panics are its
//! supervisor's business.

use crate::registry::Registry;
use crate::ws::Deliver;
use actix::prelude::*;
use redis::aio::PubSubSink;
use sdsim_actors::metrics::{channel_family, Metrics};
use sdsim_actors::slot::Slot;
use sdsim_actors::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use sdsim_protocols::events::Envelope;
use sdsim_protocols::frames::EventFrame;
use sdsim_protocols::names::Namespace;
use std::sync::Arc;
use std::time::Duration;

/// Start listening for a user's notifications.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub String);

/// Stop listening for a user's notifications (ignored if the user came back meanwhile).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub String);

pub struct NotificationSubscriber {
    client: redis::Client,
    registry: Registry,
    ns: Namespace,
    metrics: Arc<Metrics>,
    slot: Slot<NotificationSubscriber>,
    sink: Option<PubSubSink>,
    attempts: u32,
    _link: ChildLink,
}

impl NotificationSubscriber {
    pub fn child(
        client: redis::Client,
        registry: Registry,
        ns: Namespace,
        metrics: Arc<Metrics>,
        slot: Slot<NotificationSubscriber>,
    ) -> ChildSpec {
        ChildSpec::worker("notifications", Restart::Permanent, move |link| {
            let addr = NotificationSubscriber {
                client: client.clone(),
                registry: registry.clone(),
                ns: ns.clone(),
                metrics: metrics.clone(),
                slot: slot.clone(),
                sink: None,
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
            let mut channels = vec![ns.system_announcements()];
            channels.extend(registry.users().iter().map(|u| ns.user_notifications(u)));
            sink.subscribe(channels).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((sink, stream)) => {
                if act.attempts > 0 {
                    tracing::info!("notification subscriber reconnected to Redis");
                }
                act.attempts = 0;
                act.sink = Some(sink);
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
        if let Some(user) = self.ns.notification_user(&channel) {
            self.registry.deliver_to_user(user, &deliver);
        } else if channel == self.ns.system_announcements() {
            self.registry.broadcast(None, &deliver);
        }
    }

    fn send_command(&mut self, ctx: &mut Context<Self>, subscribe: bool, channel: String) {
        let Some(mut sink) = self.sink.clone() else {
            return; // reconnecting: the registry is read again on reconnect
        };
        ctx.wait(
            async move {
                let res = if subscribe {
                    sink.subscribe(&channel).await
                } else {
                    sink.unsubscribe(&channel).await
                };
                if let Err(e) = res {
                    tracing::warn!(%channel, error = %e, subscribe, "pub/sub command failed");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for NotificationSubscriber {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Fill the slot first: a session that registers after this sends Subscribe; one that
        // registered before is in the registry that connect() reads.
        self.slot.set(ctx.address());
        self.connect(ctx);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.slot.clear(&ctx.address());
    }
}
sdsim_actors::impl_supervised!(NotificationSubscriber);

impl StreamHandler<redis::Msg> for NotificationSubscriber {
    fn handle(&mut self, msg: redis::Msg, _: &mut Context<Self>) {
        self.dispatch(msg);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!("notification subscriber lost its Redis connection; reconnecting");
        self.sink = None;
        self.attempts = self.attempts.saturating_add(1);
        ctx.run_later(Duration::from_millis(100), |act, ctx| act.connect(ctx));
    }
}

impl Handler<Subscribe> for NotificationSubscriber {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        let channel = self.ns.user_notifications(&msg.0);
        self.send_command(ctx, true, channel);
    }
}

impl Handler<Unsubscribe> for NotificationSubscriber {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        if self.registry.has_user(&msg.0) {
            return;
        }
        let channel = self.ns.user_notifications(&msg.0);
        self.send_command(ctx, false, channel);
    }
}
