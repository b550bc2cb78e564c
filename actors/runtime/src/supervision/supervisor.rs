//! The supervisor actor.

use super::link::ChildExited;
use super::tree::{ChildSnapshot, SupervisorSnapshot};
use super::{
    Backoff, ChildHandle, ChildLink, ChildSpec, ChildStatus, ExitReason, Intensity, Restart,
    Strategy, SupervisorSpec, TreeView,
};
use crate::metrics::Metrics;
use actix::prelude::*;
use rand::{rngs::StdRng, SeedableRng};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks a supervised actor (or a supervisor, with its whole subtree) to stop.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

struct ChildState {
    spec: ChildSpec,
    generation: u64,
    handle: Option<ChildHandle>,
    status: ChildStatus,
    restarts: u64,
    /// Restarts since the child last ran for a whole intensity period; drives the backoff.
    consecutive: u32,
    last_start: Instant,
    last_exit: Option<String>,
}

/// Supervises children according to a [`SupervisorSpec`]. See the module docs.
pub struct Supervisor {
    name: String,
    service: String,
    strategy: Strategy,
    intensity: Intensity,
    backoff: Backoff,
    children: Vec<ChildState>,
    restart_log: VecDeque<Instant>,
    /// Link to the parent supervisor; `None` at a root.
    link: Option<ChildLink>,
    on_give_up: Option<Box<dyn FnOnce()>>,
    view: TreeView,
    metrics: Arc<Metrics>,
    rng: StdRng,
    gave_up: bool,
}

impl Supervisor {
    fn new(
        spec: SupervisorSpec,
        view: TreeView,
        metrics: Arc<Metrics>,
        link: Option<ChildLink>,
        on_give_up: Option<Box<dyn FnOnce()>>,
    ) -> Self {
        let now = Instant::now();
        Self {
            name: spec.name,
            service: spec.service,
            strategy: spec.strategy,
            intensity: spec.intensity,
            backoff: spec.backoff,
            children: spec
                .children
                .into_iter()
                .map(|spec| ChildState {
                    spec,
                    generation: 0,
                    handle: None,
                    status: ChildStatus::Starting,
                    restarts: 0,
                    consecutive: 0,
                    last_start: now,
                    last_exit: None,
                })
                .collect(),
            restart_log: VecDeque::new(),
            link,
            on_give_up,
            view,
            metrics,
            rng: StdRng::from_os_rng(),
            gave_up: false,
        }
    }

    /// Starts a root supervisor in the current arbiter. `on_give_up` runs when its restart
    /// intensity is exceeded (typically: stop the process so the OS supervisor restarts it).
    pub fn start_root(
        spec: SupervisorSpec,
        view: TreeView,
        metrics: Arc<Metrics>,
        on_give_up: impl FnOnce() + 'static,
    ) -> Addr<Supervisor> {
        Supervisor::new(spec, view, metrics, None, Some(Box::new(on_give_up))).start()
    }

    pub(crate) fn start_child(
        spec: SupervisorSpec,
        view: TreeView,
        metrics: Arc<Metrics>,
        link: ChildLink,
    ) -> Addr<Supervisor> {
        Supervisor::new(spec, view, metrics, Some(link), None).start()
    }

    fn publish(&self) {
        self.view.publish(SupervisorSnapshot {
            name: self.name.clone(),
            service: self.service.clone(),
            strategy: self.strategy,
            max_restarts: self.intensity.max_restarts,
            period_seconds: self.intensity.period.as_secs_f64(),
            recent_restarts: self.restart_log.len(),
            gave_up: self.gave_up,
            children: self
                .children
                .iter()
                .map(|c| ChildSnapshot {
                    id: c.spec.id.clone(),
                    kind: c.spec.kind,
                    restart: c.spec.restart,
                    status: c.status,
                    restarts: c.restarts,
                    generation: c.generation,
                    last_exit: c.last_exit.clone(),
                })
                .collect(),
        });
    }

    fn start_one(&mut self, idx: usize, ctx: &mut Context<Self>) {
        let me = ctx.address().recipient();
        let child = &mut self.children[idx];
        child.generation += 1;
        child.last_start = Instant::now();
        let link = ChildLink::new(child.spec.id.clone(), child.generation, me);
        match (child.spec.start)(link) {
            Ok(handle) => {
                child.handle = Some(handle);
                child.status = ChildStatus::Running;
            }
            Err(e) => {
                // The start function dropped the link, which reports a normal exit of this
                // generation. Move to a fresh generation so that report is ignored, and
                // report the real reason under it.
                tracing::warn!(supervisor = %self.name, child = %child.spec.id, error = %e, "child failed to start");
                child.generation += 1;
                child.status = ChildStatus::Starting;
                ctx.notify(ChildExited {
                    child: child.spec.id.clone(),
                    generation: child.generation,
                    reason: ExitReason::Failure(format!("start failed: {e}")),
                });
            }
        }
    }

    /// Stops a running child on purpose; its exit report is then ignored.
    fn stop_child(&mut self, idx: usize) {
        let child = &mut self.children[idx];
        child.generation += 1;
        if let Some(handle) = child.handle.take() {
            (handle.stop)();
        }
    }

    fn give_up(&mut self, ctx: &mut Context<Self>, why: String) {
        tracing::error!(supervisor = %self.name, service = %self.service, %why, "supervisor gives up");
        self.gave_up = true;
        for idx in (0..self.children.len()).rev() {
            self.stop_child(idx);
            self.children[idx].status = ChildStatus::Stopped;
        }
        self.publish();
        if let Some(link) = &self.link {
            link.fail(why);
        } else if let Some(hook) = self.on_give_up.take() {
            hook();
        }
        ctx.stop();
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.view
            .register_control(&self.name, ctx.address().recipient());
        tracing::debug!(supervisor = %self.name, children = self.children.len(), "supervisor started");
        // Every child's restart counters exist from the start, at zero, so `rate()` and
        // `absent()` over them mean what they say before the first restart.
        for child in &self.children {
            for reason in ["normal", "failure", "panic", "sibling_restart"] {
                self.metrics.supervisor_restarts.with_label_values(&[
                    &self.service,
                    &self.name,
                    &child.spec.id,
                    reason,
                ]);
            }
        }
        for idx in 0..self.children.len() {
            self.start_one(idx, ctx);
        }
        self.publish();
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        for idx in (0..self.children.len()).rev() {
            self.stop_child(idx);
            self.children[idx].status = ChildStatus::Stopped;
        }
        self.publish();
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if self.gave_up {
            return;
        }
        let Some(idx) = self.children.iter().position(|c| c.spec.id == msg.child) else {
            return;
        };
        if self.children[idx].generation != msg.generation {
            return; // a report from an instance we already replaced or stopped on purpose
        }
        let reason = msg.reason;
        {
            let child = &mut self.children[idx];
            child.handle = None;
            child.last_exit = Some(match &reason {
                ExitReason::Failure(m) => format!("failure: {m}"),
                other => other.label().to_string(),
            });
        }
        let restart = match self.children[idx].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        };
        if reason.is_abnormal() {
            tracing::warn!(supervisor = %self.name, child = %msg.child, reason = ?reason, "child exited abnormally");
        } else {
            tracing::info!(supervisor = %self.name, child = %msg.child, "child exited");
        }
        if !restart {
            self.children[idx].status = ChildStatus::Stopped;
            self.publish();
            return;
        }

        // Restart intensity: count this restart, forget the ones older than the period.
        let now = Instant::now();
        self.restart_log.push_back(now);
        while let Some(first) = self.restart_log.front() {
            if now.duration_since(*first) > self.intensity.period {
                self.restart_log.pop_front();
            } else {
                break;
            }
        }
        if self.restart_log.len() > self.intensity.max_restarts as usize {
            let why = format!(
                "restart intensity exceeded: more than {} restarts in {:?}",
                self.intensity.max_restarts, self.intensity.period
            );
            self.give_up(ctx, why);
            return;
        }

        let group: Vec<usize> = match self.strategy {
            Strategy::OneForOne => vec![idx],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (idx..self.children.len()).collect(),
        };
        // Stop the siblings that restart with it, last started first.
        for &other in group.iter().rev() {
            if other != idx && self.children[other].handle.is_some() {
                self.stop_child(other);
            }
        }
        for &i in &group {
            let label = if i == idx {
                reason.label()
            } else {
                "sibling_restart"
            };
            self.metrics
                .supervisor_restarts
                .with_label_values(&[&self.service, &self.name, &self.children[i].spec.id, label])
                .inc();
            self.children[i].restarts += 1;
            self.children[i].status = ChildStatus::Restarting;
        }

        let child = &mut self.children[idx];
        if now.duration_since(child.last_start) > self.intensity.period {
            child.consecutive = 0;
        }
        child.consecutive = child.consecutive.saturating_add(1);
        let delay = self.backoff.delay(child.consecutive, &mut self.rng);
        tracing::info!(supervisor = %self.name, child = %msg.child, delay_ms = delay.as_millis() as u64, "restarting");
        self.publish();
        let start_group = move |act: &mut Supervisor, ctx: &mut Context<Supervisor>| {
            if act.gave_up {
                return;
            }
            for i in group {
                if act.children[i].status == ChildStatus::Restarting {
                    act.start_one(i, ctx);
                }
            }
            act.publish();
        };
        if delay == Duration::ZERO {
            start_group(self, ctx);
        } else {
            ctx.run_later(delay, start_group);
        }
    }
}

/// Makes a supervised actor panic (an [`impl_supervised!`](crate::impl_supervised) actor), or a
/// supervisor fail (it stops its children and exits as a failure, so its parent restarts it).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Crash(pub String);

/// Asks a supervisor to crash one of its children, by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), String>")]
pub struct InjectFault {
    pub child: String,
}

impl Handler<InjectFault> for Supervisor {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: InjectFault, _: &mut Context<Self>) -> Self::Result {
        let child = self
            .children
            .iter()
            .find(|c| c.spec.id == msg.child)
            .ok_or_else(|| format!("supervisor {} has no child {}", self.name, msg.child))?;
        let handle = child
            .handle
            .as_ref()
            .ok_or_else(|| format!("child {} is not running", msg.child))?;
        tracing::warn!(supervisor = %self.name, child = %msg.child, "fault injected");
        (handle.crash)(format!("{}/{}", self.name, msg.child));
        Ok(())
    }
}

impl Handler<Crash> for Supervisor {
    type Result = ();
    fn handle(&mut self, msg: Crash, ctx: &mut Context<Self>) {
        if let Some(link) = &self.link {
            link.fail(format!("fault injected: {}", msg.0));
        }
        ctx.stop();
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ();
    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
