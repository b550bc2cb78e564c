//! What a supervisor supervises, and how.

use super::{Backoff, ChildLink};
use std::time::Duration;

/// Which children restart when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the failed child.
    OneForOne,
    /// Every child (they depend on each other).
    OneForAll,
    /// The failed child and every child started after it.
    RestForOne,
}

/// When a stopped child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit (panic or failure).
    Transient,
    /// Never.
    Temporary,
}

/// At most `max_restarts` restarts within `period`; one more and the supervisor gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub period: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            period: Duration::from_secs(60),
        }
    }
}

/// A started child, as its supervisor sees it.
pub struct ChildHandle {
    /// Asks the child to stop (it then drops its link, which reports the exit).
    pub stop: Box<dyn Fn()>,
    /// Makes the child fail as if it had panicked (fault injection).
    pub crash: Box<dyn Fn(String)>,
}

impl ChildHandle {
    /// A handle for an actor that handles [`super::Shutdown`] and [`super::Crash`] (see
    /// [`crate::impl_supervised!`]).
    pub fn from_addr<A>(addr: actix::Addr<A>) -> Self
    where
        A: actix::Actor + actix::Handler<super::Shutdown> + actix::Handler<super::Crash>,
        A::Context:
            actix::dev::ToEnvelope<A, super::Shutdown> + actix::dev::ToEnvelope<A, super::Crash>,
    {
        let crash_addr = addr.clone();
        ChildHandle {
            stop: Box::new(move || addr.do_send(super::Shutdown)),
            crash: Box::new(move |why| crash_addr.do_send(super::Crash(why))),
        }
    }
}

/// Why a child could not start; counts as a failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

type StartFn = Box<dyn Fn(ChildLink) -> Result<ChildHandle, StartError>>;

/// One child: an id unique within its supervisor, a restart type and a start function that
/// is called again at each restart. The start function must hand the link to the child.
pub struct ChildSpec {
    pub id: String,
    pub restart: Restart,
    pub(crate) kind: &'static str,
    pub(crate) start: StartFn,
}

impl ChildSpec {
    pub fn worker(
        id: impl Into<String>,
        restart: Restart,
        start: impl Fn(ChildLink) -> Result<ChildHandle, StartError> + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            restart,
            kind: "worker",
            start: Box::new(start),
        }
    }

    /// A child that is itself a supervisor; `build` makes a fresh spec at each restart.
    pub fn supervisor(
        restart: Restart,
        build: impl Fn() -> SupervisorSpec + 'static,
        view: super::TreeView,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        let probe = build();
        let id = probe.name.clone();
        Self {
            id,
            restart,
            kind: "supervisor",
            start: Box::new(move |link| {
                let addr =
                    super::Supervisor::start_child(build(), view.clone(), metrics.clone(), link);
                Ok(ChildHandle::from_addr(addr))
            }),
        }
    }
}

/// A supervisor's configuration and children, in start order.
pub struct SupervisorSpec {
    /// Unique name within the process, e.g. `auth` or `auth/servers`.
    pub name: String,
    /// The service label of the restart counter.
    pub service: String,
    pub strategy: Strategy,
    pub intensity: Intensity,
    pub backoff: Backoff,
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    pub fn new(service: impl Into<String>, name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            service: service.into(),
            strategy,
            intensity: Intensity::default(),
            backoff: Backoff::default(),
            children: Vec::new(),
        }
    }

    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}
