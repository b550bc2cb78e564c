//! Service discovery in Redis (first part of the mesh).
//!
//! - [`Registrar`]: one per service in a process. Registers the instance under
//!   `services:{service}:{instance_id}` (a JSON [`InstanceInfo`]) with a TTL renewed by a
//!   heartbeat, announces `join`/`leave` on `services:membership`, and deletes its key on
//!   graceful shutdown. An instance that dies without a word disappears when its TTL runs out.
//! - [`Directory`]: the process's live view of every instance of the services it knows, read
//!   with `SCAN` every `refresh_ms`; when Redis is unreachable it keeps the last view.
//!
//! Routing over the view (pools, breakers, failover) is in [`crate::mesh`].

use crate::metrics::Metrics;
use crate::supervision::{ChildHandle, ChildLink, ChildSpec, Crash, Restart, Shutdown};
use actix::prelude::*;
use redis::aio::ConnectionManager;
use sdsim_protocols::names::Namespace;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What an instance says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub service: String,
    pub instance_id: String,
    pub grpc_addr: String,
    pub http_addr: String,
    pub status: String,
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds of the last heartbeat.
    pub heartbeat_at: i64,
    /// gRPC requests the instance was serving at its last heartbeat.
    #[serde(default)]
    pub load: i64,
}

/// Registers one service instance and keeps it alive.
pub struct Registrar {
    redis: ConnectionManager,
    ns: Namespace,
    info: InstanceInfo,
    ttl: Duration,
    heartbeat: Duration,
    load: Option<prometheus::IntGauge>,
    _link: ChildLink,
}

impl Registrar {
    pub fn child(
        redis: ConnectionManager,
        ns: Namespace,
        info: InstanceInfo,
        ttl: Duration,
        heartbeat: Duration,
        load: Option<prometheus::IntGauge>,
    ) -> ChildSpec {
        ChildSpec::worker("registrar", Restart::Permanent, move |link| {
            let addr = Registrar {
                redis: redis.clone(),
                ns: ns.clone(),
                info: info.clone(),
                ttl,
                heartbeat,
                load: load.clone(),
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }

    fn key(&self) -> String {
        self.ns
            .service_instance(&self.info.service, &self.info.instance_id)
    }

    fn beat(&mut self, ctx: &mut Context<Self>, announce: bool) {
        self.info.heartbeat_at = chrono::Utc::now().timestamp();
        if let Some(g) = &self.load {
            self.info.load = g.get();
        }
        let Ok(payload) = serde_json::to_string(&self.info) else {
            return;
        };
        let (key, channel) = (self.key(), self.ns.service_membership());
        let ttl_ms = self.ttl.as_millis() as u64;
        let mut conn = self.redis.clone();
        let event = serde_json::json!({ "event": "join", "instance": &self.info }).to_string();
        ctx.spawn(
            async move {
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(&key)
                    .arg(&payload)
                    .arg("PX")
                    .arg(ttl_ms);
                if announce {
                    pipe.cmd("PUBLISH").arg(&channel).arg(&event);
                }
                let res: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
                if let Err(e) = res {
                    tracing::warn!(%key, error = %e, "registration not renewed (Redis)");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for Registrar {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx, true);
        ctx.run_interval(self.heartbeat, |act, ctx| act.beat(ctx, false));
    }
}

impl Handler<Shutdown> for Registrar {
    type Result = ();
    /// Graceful: delete the key and say goodbye before stopping.
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        let (key, channel) = (self.key(), self.ns.service_membership());
        let event = serde_json::json!({ "event": "leave", "instance": &self.info }).to_string();
        let mut conn = self.redis.clone();
        ctx.wait(
            async move {
                let res: redis::RedisResult<()> = redis::pipe()
                    .cmd("DEL")
                    .arg(&key)
                    .cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&event)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = res {
                    tracing::warn!(%key, error = %e, "deregistration failed; the TTL will expire it");
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        );
    }
}

impl Handler<Crash> for Registrar {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("fault injected: {}", msg.0);
    }
}

/// The live view of instances, by service, shared with whoever routes or reports.
#[derive(Clone, Default)]
pub struct View {
    inner: Arc<RwLock<BTreeMap<String, Vec<InstanceInfo>>>>,
    /// When Redis last answered a refresh.
    refreshed: Arc<RwLock<Option<Instant>>>,
}

impl View {
    /// Whether Redis answered a refresh within `within` (else the view is the last known one).
    pub fn fresh(&self, within: Duration) -> bool {
        self.refreshed
            .read()
            .ok()
            .and_then(|r| *r)
            .is_some_and(|t| t.elapsed() <= within)
    }

    /// How long ago Redis last answered, if ever.
    pub fn age(&self) -> Option<Duration> {
        self.refreshed
            .read()
            .ok()
            .and_then(|r| *r)
            .map(|t| t.elapsed())
    }

    /// Replaces the view (what the [`Directory`] does after each refresh; public for tests).
    pub fn replace(&self, found: BTreeMap<String, Vec<InstanceInfo>>) {
        if let Ok(mut v) = self.inner.write() {
            *v = found;
        }
        if let Ok(mut r) = self.refreshed.write() {
            *r = Some(Instant::now());
        }
    }

    pub fn instances(&self, service: &str) -> Vec<InstanceInfo> {
        self.inner
            .read()
            .ok()
            .and_then(|m| m.get(service).cloned())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self.inner.read() {
            Ok(m) => serde_json::to_value(&*m).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }
}

/// Keeps a [`View`] of the instances of `services` current.
pub struct Directory {
    redis: ConnectionManager,
    ns: Namespace,
    services: Vec<String>,
    view: View,
    metrics: Arc<Metrics>,
    refresh: Duration,
    busy: bool,
    _link: ChildLink,
}

impl Directory {
    pub fn child(
        redis: ConnectionManager,
        ns: Namespace,
        services: Vec<String>,
        view: View,
        metrics: Arc<Metrics>,
        refresh: Duration,
    ) -> ChildSpec {
        ChildSpec::worker("directory", Restart::Permanent, move |link| {
            let addr = Directory {
                redis: redis.clone(),
                ns: ns.clone(),
                services: services.clone(),
                view: view.clone(),
                metrics: metrics.clone(),
                refresh,
                busy: false,
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let mut conn = self.redis.clone();
        let patterns: Vec<(String, String)> = self
            .services
            .iter()
            .map(|s| (s.clone(), self.ns.service_instances_pattern(s)))
            .collect();
        let fut = async move {
            let mut found: BTreeMap<String, Vec<InstanceInfo>> = BTreeMap::new();
            for (service, pattern) in patterns {
                let mut keys: Vec<String> = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut conn)
                        .await?;
                    keys.extend(batch);
                    cursor = next;
                    if cursor == 0 || keys.len() > 10_000 {
                        break;
                    }
                }
                let mut list = Vec::new();
                if !keys.is_empty() {
                    let values: Vec<Option<String>> =
                        redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
                    for v in values.into_iter().flatten() {
                        if let Ok(i) = serde_json::from_str::<InstanceInfo>(&v) {
                            list.push(i);
                        }
                    }
                }
                list.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
                found.insert(service, list);
            }
            Ok::<_, redis::RedisError>(found)
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, _| {
            act.busy = false;
            match res {
                Ok(found) => {
                    for (service, list) in &found {
                        act.metrics
                            .discovered_instances
                            .with_label_values(&[service])
                            .set(list.len() as i64);
                    }
                    act.view.replace(found);
                }
                // Keep the last view: routing goes on while Redis is away.
                Err(e) => {
                    tracing::warn!(error = %e, "discovery refresh failed; keeping the last view")
                }
            }
        }));
    }
}

impl Actor for Directory {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.refresh(ctx);
        ctx.run_interval(self.refresh, |act, ctx| act.refresh(ctx));
    }
}
crate::impl_supervised!(Directory);
