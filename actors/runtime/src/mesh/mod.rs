//! The mesh: how a process calls other services' instances.
//!
//! ```text
//! mesh (one_for_one)
//! ├── directory      (discovery::Directory: the view of instances in Redis)
//! └── router         (Router: turns the view + the static list into targets, every 100 ms)
//!       ├── per target instance: Scaler (its pool of channels; asks the Budget to grow)
//!       └── per target instance: BreakerWatch (the breaker's transitions: metrics, log, view)
//! ```
//!
//! A call ([`Mesh::call`]) picks the least-loaded of two random healthy instances (power of
//! two choices), passes that instance's circuit breaker, takes a permit on the least-busy
//! channel of its pool (queueing when all are busy) and runs with the call's deadline. An
//! idempotent call that fails for want of the instance (unavailable, transport error) is
//! retried on another instance after a jittered exponential backoff, if the service's
//! [`retry::RetryBudget`] allows. When every instance's breaker is open the call fails at once
//! with [`ServiceError::CircuitOpen`] (the gateway: 503 with Retry-After).
//!
//! Targets come from discovery; when Redis has not answered for a while, or discovery knows no
//! instance of a service, the static list (`upstream.*`) is added, so routing goes on while
//! Redis is away. A vanished target's breaker is remembered for `mesh.forget_after_ms`: an
//! instance that comes back on the same address starts half-open, not trusted blindly.

pub mod budget;
pub mod outlier;
pub mod pool;
pub mod retry;
pub mod scaler;

use crate::breaker::{Breaker, BreakerConfig, State};
use crate::config::MeshSettings;
use crate::discovery::View;
use crate::error::ServiceError;
use crate::metrics::Metrics;
use crate::supervision::{ChildHandle, ChildLink, ChildSpec, Crash, Restart};
use actix::prelude::*;
use budget::{Budget, Priority};
use outlier::Ejection;
use pool::{NoChannel, Pool};
use retry::RetryBudget;
use scaler::{Retire, Rules, Scaler, Stats};
use sdsim_protocols::Service;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Calls to higher-priority services win channels at the global cap.
pub fn priority(s: Service) -> Priority {
    match s {
        Service::Auth => 0,
        Service::Project => 1,
        Service::Simulation => 2,
        Service::Gateway => 3,
    }
}

fn index(s: Service) -> usize {
    match s {
        Service::Gateway => 0,
        Service::Auth => 1,
        Service::Project => 2,
        Service::Simulation => 3,
    }
}

/// `host:port` from `http://host:port/`, `host:port`; `None` when it is not an address.
pub fn normalize(addr: &str) -> Option<String> {
    let a = addr.trim();
    let a = a
        .strip_prefix("http://")
        .or_else(|| a.strip_prefix("https://"))
        .unwrap_or(a)
        .trim_end_matches('/');
    let (host, port) = a.rsplit_once(':')?;
    if host.is_empty() || port.parse::<u16>().ok()? == 0 || a.contains('/') {
        return None;
    }
    Some(a.to_string())
}

/// A scale action, kept for the admin view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScaleEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub direction: &'static str,
    pub trigger: &'static str,
    pub channels: usize,
    /// For scale-ups: from the trigger to the new channel serving.
    pub serving_after_ms: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct TransitionRecord {
    at: chrono::DateTime<chrono::Utc>,
    from: &'static str,
    to: &'static str,
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
    }
}

fn state_of(code: i64) -> State {
    match code {
        1 => State::Open,
        2 => State::HalfOpen,
        _ => State::Closed,
    }
}

/// One instance of a service this process calls: its pool and its breaker.
pub struct Target {
    pub service: Service,
    /// `host:port`, the key of the target (an instance restarted on it is the same target).
    pub address: String,
    pub pool: Arc<Pool>,
    pub breaker: Breaker,
    pool_id: u64,
    instance_id: RwLock<String>,
    stats: Mutex<Stats>,
    events: Mutex<VecDeque<ScaleEvent>>,
    transitions: Mutex<VecDeque<TransitionRecord>>,
    last_state: AtomicI64,
    observer: RwLock<Option<Recipient<Transition>>>,
    /// `sdsim_circuit_breaker_calls_total` for this target, looked up once.
    ok_calls: prometheus::IntCounter,
    failed_calls: prometheus::IntCounter,
    /// Out of rotation after a refused connection (see [`outlier`]).
    pub ejection: Ejection,
}

const KEPT_EVENTS: usize = 32;

/// Appends to a history that keeps the last [`KEPT_EVENTS`] entries.
fn keep_last<T>(history: &Mutex<VecDeque<T>>, item: T) {
    if let Ok(mut q) = history.lock() {
        if q.len() == KEPT_EVENTS {
            q.pop_front();
        }
        q.push_back(item);
    }
}

impl Target {
    fn push_event(&self, e: ScaleEvent) {
        keep_last(&self.events, e);
    }

    fn set_stats(&self, s: Stats) {
        if let Ok(mut m) = self.stats.lock() {
            *m = s;
        }
    }

    /// The last scale actions (oldest first).
    pub fn events(&self) -> Vec<ScaleEvent> {
        self.events
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    pub fn instance_id(&self) -> String {
        self.instance_id
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Tells the breaker's actor when the state changed.
    fn observe(&self, state: State) {
        let prev = self.last_state.swap(state.code(), Ordering::AcqRel);
        if prev != state.code() {
            if let Ok(o) = self.observer.read() {
                if let Some(r) = o.as_ref() {
                    r.do_send(Transition {
                        from: state_of(prev),
                        to: state,
                    });
                }
            }
        }
    }

    fn snapshot(&self, routable: bool) -> serde_json::Value {
        let transitions: Vec<TransitionRecord> = self
            .transitions
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default();
        serde_json::json!({
            "address": self.address,
            "instance_id": self.instance_id(),
            "routable": routable,
            "ejected": self.ejection.is_ejected(Instant::now()),
            "refusals_in_a_row": self.ejection.strikes(),
            "pool": {
                "channels": self.pool.len(),
                "in_flight": self.pool.in_flight(),
                "queue": self.pool.queue(),
                "stats": self.stats(),
                "events": self.events(),
            },
            "breaker": {
                "state": state_name(self.breaker.state()),
                "transitions": transitions,
            },
        })
    }
}

struct Table {
    wanted: AtomicBool,
    targets: RwLock<Arc<Vec<Arc<Target>>>>,
    retry: RetryBudget,
}

struct Managed {
    target: Arc<Target>,
    scaler: Option<Addr<Scaler>>,
    watch: Option<Addr<BreakerWatch>>,
    gone_since: Option<Instant>,
}

pub struct Inner {
    budget: Budget,
    rules: Rules,
    metrics: Arc<Metrics>,
    scale_interval: Duration,
    call_timeout: Duration,
    connect_timeout: Duration,
    retry_attempts: u32,
    backoff: (Duration, Duration),
    forget_after: Duration,
    breaker: BreakerConfig,
    concurrency: usize,
    runtime: Option<tokio::runtime::Handle>,
    view: View,
    fresh_within: Duration,
    statics: BTreeMap<Service, Vec<String>>,
    tables: [Table; 4],
    managed: Mutex<HashMap<(Service, String), Managed>>,
    next_pool: AtomicU64,
}

impl Inner {
    fn endpoint(&self, address: &str) -> Result<Endpoint, String> {
        Ok(Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("invalid address {address:?}: {e}"))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5)))
    }

    /// A channel that connects on first use, driven by the gRPC runtime's threads.
    fn lazy(&self, address: &str) -> Option<Channel> {
        let ep = self.endpoint(address).ok()?;
        let _guard = self.runtime.as_ref().map(|h| h.enter());
        Some(ep.connect_lazy())
    }

    /// A channel connected now (the handshake done), on the gRPC runtime.
    fn connect(&self, address: &str) -> impl Future<Output = Result<Channel, String>> + 'static {
        let ep = self.endpoint(address);
        let handle = self.runtime.clone();
        async move {
            let ep = ep?;
            let res = match handle {
                Some(h) => h
                    .spawn(async move { ep.connect().await })
                    .await
                    .map_err(|e| e.to_string())?,
                None => ep.connect().await,
            };
            res.map_err(|e| format!("connect: {e}"))
        }
    }

    fn table(&self, s: Service) -> &Table {
        &self.tables[index(s)]
    }
}

/// The process's handle on the mesh; cheap to clone.
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

/// How one attempt failed, for the retry rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The instance, not the request, failed, and the call never reached a server (no
    /// channel): any call may go to another instance, outside the retry budget.
    NotSent,
    /// As `NotSent`, because the instance refused the connection: it is also ejected.
    Refused,
    /// The instance failed and the call may have reached it (unavailable, reset,
    /// cancelled): only an idempotent call may go to another instance.
    MaybeSent,
    /// The request failed (an answer, a timeout): not retried.
    Final,
}

/// Whether `status` says the connection was refused (the request was never sent).
fn refused(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = e.source();
    }
    false
}

impl Mesh {
    /// `statics`: the static list per service (URLs or `host:port`); a malformed entry is an
    /// error naming it.
    pub fn new(
        s: &MeshSettings,
        statics: BTreeMap<Service, Vec<String>>,
        view: View,
        discovery_refresh: Duration,
        metrics: Arc<Metrics>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<Self, String> {
        let mut normalized = BTreeMap::new();
        for (service, list) in statics {
            let mut out = Vec::new();
            for entry in list.iter().filter(|e| !e.trim().is_empty()) {
                out.push(normalize(entry).ok_or_else(|| {
                    format!(
                        "upstream.{service}: {entry:?} is not a gRPC address (http://host:port)"
                    )
                })?);
            }
            normalized.insert(service, out);
        }
        let table = || Table {
            wanted: AtomicBool::new(false),
            targets: RwLock::new(Arc::new(Vec::new())),
            retry: RetryBudget::new(s.retry_budget_ratio, s.retry_budget_min_per_second),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                budget: Budget::new(s.global_max_channels),
                rules: Rules {
                    min: s.min_channels,
                    max: s.max_channels,
                    up_utilisation: s.scale_up_utilisation,
                    up_queue: s.scale_up_queue,
                    up_rate: s.scale_up_rate,
                    up_latency_ms: s.scale_up_latency_ms,
                    up_max_error_rate: s.scale_up_max_error_rate,
                    down_utilisation: s.scale_down_utilisation,
                    down_queue: s.scale_down_queue,
                    cooldown: Duration::from_millis(s.scale_down_cooldown_ms),
                },
                metrics,
                scale_interval: Duration::from_millis(s.scale_interval_ms.max(1)),
                call_timeout: Duration::from_millis(s.call_timeout_ms),
                connect_timeout: Duration::from_millis(s.connect_timeout_ms),
                retry_attempts: s.retry_attempts.max(1),
                backoff: (
                    Duration::from_millis(s.retry_backoff_ms),
                    Duration::from_millis(s.retry_backoff_max_ms.max(s.retry_backoff_ms)),
                ),
                forget_after: Duration::from_millis(s.forget_after_ms),
                breaker: s.breaker.config(),
                concurrency: s.channel_concurrency,
                runtime,
                view,
                fresh_within: discovery_refresh * 3,
                statics: normalized,
                tables: [table(), table(), table(), table()],
                managed: Mutex::new(HashMap::new()),
                next_pool: AtomicU64::new(1),
            }),
        })
    }

    /// This process calls `service`: keep pools to its instances.
    pub fn want(&self, service: Service) {
        self.inner
            .table(service)
            .wanted
            .store(true, Ordering::Relaxed);
        // The series operators alert on exist from the start, at zero.
        let m = &self.inner.metrics;
        let name = service.as_str();
        for outcome in ["retried", "budget_exhausted"] {
            m.mesh_retries.with_label_values(&[name, outcome]);
        }
        m.pool_refused.with_label_values(&[name]);
        m.pool_scale_up_seconds.with_label_values(&[name]);
        for (direction, trigger) in [
            ("up", "utilisation"),
            ("up", "queue"),
            ("up", "rate"),
            ("up", "latency"),
            ("down", "idle"),
            ("down", "rebalance"),
        ] {
            m.pool_scale_events
                .with_label_values(&[name, direction, trigger]);
        }
        for other in Service::ALL {
            m.pool_rebalanced.with_label_values(&[other.as_str(), name]);
        }
    }

    /// The routable targets of `service` now.
    pub fn targets(&self, service: Service) -> Vec<Arc<Target>> {
        self.inner
            .table(service)
            .targets
            .read()
            .map(|t| t.as_ref().clone())
            .unwrap_or_default()
    }

    /// Channels granted by the global budget, and its cap.
    pub fn channels(&self) -> (usize, usize) {
        (self.inner.budget.total(), self.inner.budget.cap())
    }

    /// The router, a child of the `mesh` supervisor: reconciles targets every `every`.
    pub fn router(&self, every: Duration) -> ChildSpec {
        let mesh = self.clone();
        ChildSpec::worker("router", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                Router {
                    mesh: mesh.clone(),
                    every,
                    _link: link,
                }
                .start(),
            ))
        })
    }

    fn pick(&self, service: Service, tried: &[Arc<Target>]) -> Result<Arc<Target>, ServiceError> {
        let targets = self
            .inner
            .table(service)
            .targets
            .read()
            .map(|t| t.clone())
            .unwrap_or_default();
        if targets.is_empty() {
            return Err(ServiceError::Unavailable(format!(
                "no instance of the {service} service is known (discovery is empty and upstream.{service} lists none)"
            )));
        }
        let mut open_for: Option<Duration> = None;
        let now = Instant::now();
        let untried = |t: &&Arc<Target>| !tried.iter().any(|x| Arc::ptr_eq(x, t));
        // Ejected instances are skipped while another can take the call; if every one is
        // ejected, trying one beats refusing outright.
        let all_ejected = targets
            .iter()
            .filter(untried)
            .all(|t| t.ejection.is_ejected(now));
        let candidates: Vec<&Arc<Target>> = targets
            .iter()
            .filter(|t| untried(t) && !t.pool.is_empty())
            .filter(|t| all_ejected || !t.ejection.is_ejected(now))
            .filter(|t| match t.breaker.peek() {
                Ok(()) => true,
                Err(r) => {
                    self.inner
                        .metrics
                        .breaker_calls
                        .with_label_values(&[service.as_str(), t.address.as_str(), "rejected"])
                        .inc();
                    open_for = Some(open_for.map_or(r.retry_after, |d| d.min(r.retry_after)));
                    false
                }
            })
            .collect();
        match candidates.len() {
            0 => Err(match open_for {
                Some(d) => ServiceError::CircuitOpen {
                    message: format!(
                        "every instance of the {service} service is failing; calls are suspended for {} ms (circuit open)",
                        d.as_millis().max(1)
                    ),
                    retry_after_ms: d.as_millis().max(1) as u64,
                },
                None => ServiceError::Unavailable(format!(
                    "no instance of the {service} service can take a call now"
                )),
            }),
            1 => Ok(candidates[0].clone()),
            n => {
                use rand::Rng;
                let mut rng = rand::rng();
                let i = rng.random_range(0..n);
                let mut j = rng.random_range(0..n - 1);
                if j >= i {
                    j += 1;
                }
                let (a, b) = (candidates[i], candidates[j]);
                Ok(if b.pool.load() < a.pool.load() { b } else { a }.clone())
            }
        }
    }

    /// Calls `method` of `service`: `f` makes the RPC on the channel it is given. It may be
    /// called again on another instance when the call never reached a server, or when it
    /// may have and `method` is idempotent ([`sdsim_protocols::rpc`] says which).
    pub async fn call<T, F, Fut>(
        &self,
        service: Service,
        method: &'static str,
        mut f: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &*self.inner;
        let idempotent = sdsim_protocols::rpc::is_idempotent(service, method);
        let table = inner.table(service);
        table.retry.deposit();
        let deadline = Instant::now() + inner.call_timeout;
        let mut tried: Vec<Arc<Target>> = Vec::new();
        let mut attempts = 0u32;
        let mut last: Option<ServiceError> = None;
        loop {
            let target = match self.pick(service, &tried) {
                Ok(t) => t,
                Err(e) => return Err(last.unwrap_or(e)),
            };
            let labels = [service.as_str(), target.address.as_str()];
            let (gate, state) = target.breaker.acquire();
            target.observe(state);
            if gate.is_err() {
                // Lost a race for the last trial slot; try the others.
                inner
                    .metrics
                    .breaker_calls
                    .with_label_values(&[labels[0], labels[1], "rejected"])
                    .inc();
                tried.push(target);
                continue;
            }
            attempts += 1;
            let started = Instant::now();
            let (res, failure) = self.attempt(&target, method, &mut f, deadline).await;
            let took = started.elapsed();
            let failed = matches!(
                res,
                Err(ServiceError::Unavailable(_)) | Err(ServiceError::Internal(_))
            );
            target.pool.record(failed, took);
            target.observe(target.breaker.record(failed, took));
            if failed {
                target.failed_calls.inc();
            } else {
                target.ok_calls.inc();
            }
            match failure {
                Failure::Refused => {
                    let until = target.ejection.eject(Instant::now());
                    tracing::warn!(
                        %service,
                        address = %target.address,
                        ejected_for_ms = until.saturating_duration_since(Instant::now()).as_millis() as u64,
                        "instance refused the connection: out of rotation"
                    );
                }
                Failure::Final => target.ejection.reachable(),
                Failure::NotSent | Failure::MaybeSent => {}
            }
            let err = match res {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retry = match failure {
                Failure::NotSent | Failure::Refused => true,
                Failure::MaybeSent => idempotent,
                Failure::Final => false,
            };
            if !retry || attempts >= inner.retry_attempts || Instant::now() >= deadline {
                return Err(err);
            }
            tried.push(target);
            let others = table
                .targets
                .read()
                .map(|t| t.iter().any(|x| !tried.iter().any(|y| Arc::ptr_eq(x, y))))
                .unwrap_or(false);
            if !others {
                return Err(err);
            }
            // A call that never reached a server costs nothing to send elsewhere; only
            // retries of calls that may have done work are rationed.
            if failure == Failure::MaybeSent && !table.retry.withdraw() {
                inner
                    .metrics
                    .mesh_retries
                    .with_label_values(&[service.as_str(), "budget_exhausted"])
                    .inc();
                return Err(err);
            }
            inner
                .metrics
                .mesh_retries
                .with_label_values(&[service.as_str(), "retried"])
                .inc();
            let pause =
                retry::backoff(attempts, inner.backoff.0, inner.backoff.1, &mut rand::rng());
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
            last = Some(err);
        }
    }

    /// One attempt on one target: the answer, and how it failed. The instance (not the
    /// request) failed when the answer is unavailable, cancelled, or a transport error
    /// without our error code.
    async fn attempt<T, F, Fut>(
        &self,
        target: &Target,
        method: &'static str,
        f: &mut F,
        deadline: Instant,
    ) -> (Result<T, ServiceError>, Failure)
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let inner = &*self.inner;
        let service = target.service;
        let start = Instant::now();
        let (res, failure) = match target.pool.acquire(deadline).await {
            Err(NoChannel::Empty) => (
                Err(ServiceError::Unavailable(format!(
                    "the {service} instance at {} has no channel",
                    target.address
                ))),
                Failure::NotSent,
            ),
            Err(NoChannel::Timeout) => (
                Err(ServiceError::Unavailable(format!(
                    "every channel to the {service} instance at {} stayed busy for {} ms",
                    target.address,
                    inner.call_timeout.as_millis()
                ))),
                Failure::Final,
            ),
            Ok(permit) => {
                match tokio::time::timeout_at(deadline.into(), f(permit.channel())).await {
                    Ok(Ok(r)) => (Ok(r.into_inner()), Failure::Final),
                    Ok(Err(status)) => {
                        let ours = status.metadata().contains_key(crate::error::CODE_KEY);
                        let transient = matches!(
                            status.code(),
                            tonic::Code::Unavailable | tonic::Code::Cancelled
                        ) || (status.code() == tonic::Code::Unknown && !ours);
                        let e = if transient {
                            ServiceError::Unavailable(format!(
                                "the {service} service is unavailable: {}",
                                status.message()
                            ))
                        } else {
                            ServiceError::from_status(&status)
                        };
                        let failure = if !transient {
                            Failure::Final
                        } else if refused(&status) {
                            Failure::Refused
                        } else {
                            Failure::MaybeSent
                        };
                        (Err(e), failure)
                    }
                    Err(_) => (
                        Err(ServiceError::Unavailable(format!(
                            "the {service} service did not answer within {} ms",
                            inner.call_timeout.as_millis()
                        ))),
                        Failure::Final,
                    ),
                }
            }
        };
        let outcome = match &res {
            Ok(_) => "ok",
            Err(ServiceError::Unavailable(_)) => "unavailable",
            Err(ServiceError::Internal(_)) => "error",
            Err(_) => "rejected",
        };
        inner
            .metrics
            .grpc_client_seconds
            .with_label_values(&[service.as_str(), method, outcome])
            .observe(start.elapsed().as_secs_f64());
        (res, failure)
    }

    /// The first instance of `service` whose `f` succeeds within `deadline`, tried on all at
    /// once and ignoring breakers (health checks must see the real state).
    pub async fn first_ok<T, F, Fut>(
        &self,
        service: Service,
        deadline: Duration,
        f: F,
    ) -> Result<T, ServiceError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let channels: Vec<Channel> = self
            .targets(service)
            .iter()
            .filter_map(|t| t.pool.any_channel())
            .collect();
        if channels.is_empty() {
            return Err(ServiceError::Unavailable(format!(
                "no instance of the {service} service is known"
            )));
        }
        let calls = channels.into_iter().map(|c| Box::pin(f(c)));
        match tokio::time::timeout(deadline, futures_util::future::select_ok(calls)).await {
            Ok(Ok((r, _))) => Ok(r.into_inner()),
            Ok(Err(status)) => Err(ServiceError::Unavailable(format!(
                "the {service} service is unavailable: {}",
                status.message()
            ))),
            Err(_) => Err(ServiceError::Unavailable(format!(
                "the {service} service did not answer within {} ms",
                deadline.as_millis()
            ))),
        }
    }

    /// Brings the targets in line with discovery and the static list; starts and retires the
    /// per-target actors. Runs in the router (needs an actix context).
    fn reconcile(&self) {
        let inner = &*self.inner;
        let fresh = inner.view.fresh(inner.fresh_within);
        let Ok(mut managed) = inner.managed.lock() else {
            return;
        };
        let now = Instant::now();
        for service in Service::ALL {
            let table = inner.table(service);
            if !table.wanted.load(Ordering::Relaxed) {
                continue;
            }
            let mut desired: BTreeMap<String, String> = inner
                .view
                .instances(service.as_str())
                .into_iter()
                .filter_map(|i| normalize(&i.grpc_addr).map(|a| (a, i.instance_id)))
                .collect();
            if !fresh || desired.is_empty() {
                for a in inner.statics.get(&service).into_iter().flatten() {
                    desired
                        .entry(a.clone())
                        .or_insert_with(|| "static".to_string());
                }
            }
            for (address, instance_id) in &desired {
                let key = (service, address.clone());
                let m = managed.entry(key).or_insert_with(|| Managed {
                    target: Arc::new(Target {
                        service,
                        address: address.clone(),
                        pool: Pool::new(inner.concurrency, inner.endpoint(address).ok()),
                        breaker: Breaker::new(inner.breaker),
                        pool_id: inner.next_pool.fetch_add(1, Ordering::Relaxed),
                        instance_id: RwLock::new(String::new()),
                        stats: Mutex::new(Stats::default()),
                        events: Mutex::new(VecDeque::new()),
                        transitions: Mutex::new(VecDeque::new()),
                        last_state: AtomicI64::new(0),
                        observer: RwLock::new(None),
                        ejection: Ejection::default(),
                        ok_calls: inner.metrics.breaker_calls.with_label_values(&[
                            service.as_str(),
                            address,
                            "success",
                        ]),
                        failed_calls: inner.metrics.breaker_calls.with_label_values(&[
                            service.as_str(),
                            address,
                            "failure",
                        ]),
                    }),
                    scaler: None,
                    watch: None,
                    gone_since: Some(now),
                });
                if let Ok(mut id) = m.target.instance_id.write() {
                    if *id != *instance_id {
                        *id = instance_id.clone();
                    }
                }
                let scaler_down = m.scaler.as_ref().is_none_or(|a| !a.connected());
                let watch_down = m.watch.as_ref().is_none_or(|a| !a.connected());
                if m.gone_since.take().is_some() {
                    inner
                        .metrics
                        .discovery_changes
                        .with_label_values(&[service.as_str(), "added"])
                        .inc();
                    tracing::info!(%service, %address, %instance_id, "instance in use");
                } else if scaler_down || watch_down {
                    tracing::warn!(%service, %address, "a target's actor stopped; starting it again");
                }
                if scaler_down {
                    m.scaler = Some(Scaler::start(m.target.clone(), self.inner.clone()));
                }
                if watch_down {
                    m.watch = Some(BreakerWatch::start(m.target.clone(), inner.metrics.clone()));
                }
            }
            for ((s, address), m) in managed.iter_mut() {
                if *s != service || desired.contains_key(address) || m.gone_since.is_some() {
                    continue;
                }
                m.gone_since = Some(now);
                if let Some(a) = m.scaler.take() {
                    a.do_send(Retire);
                }
                if let Some(a) = m.watch.take() {
                    a.do_send(Retire);
                }
                inner
                    .metrics
                    .discovery_changes
                    .with_label_values(&[service.as_str(), "removed"])
                    .inc();
                tracing::info!(%service, %address, "instance dropped from routing");
            }
            let mut routable: Vec<Arc<Target>> = managed
                .iter()
                .filter(|((s, _), m)| *s == service && m.gone_since.is_none())
                .map(|(_, m)| m.target.clone())
                .collect();
            routable.sort_by(|a, b| a.address.cmp(&b.address));
            if let Ok(mut t) = table.targets.write() {
                *t = Arc::new(routable);
            }
        }
        managed.retain(|_, m| {
            m.gone_since
                .is_none_or(|t| now.duration_since(t) < inner.forget_after)
        });
    }

    /// The admin view: discovery freshness, the budget, every target's pool and breaker.
    pub fn snapshot(&self) -> serde_json::Value {
        let inner = &*self.inner;
        let mut services = serde_json::Map::new();
        if let Ok(managed) = inner.managed.lock() {
            for service in Service::ALL {
                let table = inner.table(service);
                if !table.wanted.load(Ordering::Relaxed) {
                    continue;
                }
                let mut targets: Vec<(&String, serde_json::Value)> = managed
                    .iter()
                    .filter(|((s, _), _)| *s == service)
                    .map(|((_, a), m)| (a, m.target.snapshot(m.gone_since.is_none())))
                    .collect();
                targets.sort_by(|a, b| a.0.cmp(b.0));
                services.insert(
                    service.to_string(),
                    serde_json::json!({
                        "priority": priority(service),
                        "retry_budget_tokens": table.retry.tokens(),
                        "static": inner.statics.get(&service).cloned().unwrap_or_default(),
                        "targets": targets.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
                    }),
                );
            }
        }
        serde_json::json!({
            "discovery": {
                "fresh": inner.view.fresh(inner.fresh_within),
                "last_refresh_ms_ago": inner.view.age().map(|d| d.as_millis() as u64),
            },
            "channels": { "total": inner.budget.total(), "cap": inner.budget.cap() },
            "services": services,
        })
    }
}

impl Pool {
    /// Some channel of the pool, without a permit (health checks).
    pub fn any_channel(&self) -> Option<Channel> {
        self.channel_at(0)
    }
}

/// Reconciles the mesh's targets with discovery on a timer.
pub struct Router {
    mesh: Mesh,
    every: Duration,
    _link: ChildLink,
}

impl Actor for Router {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.mesh.reconcile();
        ctx.run_interval(self.every, |act, _| act.mesh.reconcile());
    }
}
crate::impl_supervised!(Router);

/// A breaker state change, sent by whichever call saw it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Transition {
    pub from: State,
    pub to: State,
}

/// The actor of one target's circuit breaker: turns its transitions into metrics, log lines
/// and the admin view's history. (Calls consult the breaker itself, without a message hop.)
pub struct BreakerWatch {
    target: Arc<Target>,
    metrics: Arc<Metrics>,
}

impl BreakerWatch {
    fn start(target: Arc<Target>, metrics: Arc<Metrics>) -> Addr<Self> {
        BreakerWatch { target, metrics }.start()
    }

    fn labels(&self) -> [&str; 2] {
        [self.target.service.as_str(), self.target.address.as_str()]
    }
}

impl Actor for BreakerWatch {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Ok(mut o) = self.target.observer.write() {
            *o = Some(ctx.address().recipient());
        }
        self.metrics
            .breaker_state
            .with_label_values(&self.labels())
            .set(self.target.breaker.state().code());
        let labels = self.labels();
        for to in [State::Closed, State::Open, State::HalfOpen] {
            self.metrics.breaker_transitions.with_label_values(&[
                labels[0],
                labels[1],
                state_name(to),
            ]);
        }
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        let _ = self
            .metrics
            .breaker_state
            .remove_label_values(&self.labels());
    }
}

impl Handler<Transition> for BreakerWatch {
    type Result = ();
    fn handle(&mut self, t: Transition, _: &mut Context<Self>) {
        let labels = self.labels();
        self.metrics
            .breaker_state
            .with_label_values(&labels)
            .set(t.to.code());
        self.metrics
            .breaker_transitions
            .with_label_values(&[labels[0], labels[1], state_name(t.to)])
            .inc();
        if t.to == State::Open {
            tracing::warn!(
                service = labels[0],
                instance = labels[1],
                "circuit breaker open"
            );
        } else {
            tracing::info!(
                service = labels[0],
                instance = labels[1],
                from = state_name(t.from),
                to = state_name(t.to),
                "circuit breaker"
            );
        }
        keep_last(
            &self.target.transitions,
            TransitionRecord {
                at: chrono::Utc::now(),
                from: state_name(t.from),
                to: state_name(t.to),
            },
        );
    }
}

impl Handler<Retire> for BreakerWatch {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Crash> for BreakerWatch {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("fault injected: {}", msg.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_normalized_and_garbage_refused() {
        use super::normalize;
        assert_eq!(
            normalize("http://127.0.0.1:9000/").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(normalize(" auth-1:9000 ").as_deref(), Some("auth-1:9000"));
        assert_eq!(normalize("https://a.b:1").as_deref(), Some("a.b:1"));
        for bad in [
            "",
            "http://",
            "host",
            "host:0",
            "host:x",
            ":9000",
            "http://h:1/path",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
