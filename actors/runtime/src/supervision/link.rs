//! The link a child holds to its supervisor. Dropping it reports the child's exit.

use actix::{Message, Recipient};
use std::sync::Mutex;

/// Why a child stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Stopped on purpose (its work is done, or it was told to stop).
    Normal,
    /// Failed with an error it reported through [`ChildLink::fail`].
    Failure(String),
    /// Panicked.
    Panic,
}

impl ExitReason {
    /// Label used in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ExitReason::Normal => "normal",
            ExitReason::Failure(_) => "failure",
            ExitReason::Panic => "panic",
        }
    }

    pub fn is_abnormal(&self) -> bool {
        !matches!(self, ExitReason::Normal)
    }
}

/// Sent by a [`ChildLink`] when the child holding it is dropped.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ChildExited {
    pub child: String,
    pub generation: u64,
    pub reason: ExitReason,
}

/// Held by a supervised child (as a field). When the child is dropped, after a normal stop
/// or while a panic unwinds, the link tells the supervisor why.
pub struct ChildLink {
    child: String,
    generation: u64,
    supervisor: Recipient<ChildExited>,
    failure: Mutex<Option<String>>,
}

impl std::fmt::Debug for ChildLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildLink")
            .field("child", &self.child)
            .field("generation", &self.generation)
            .finish()
    }
}

impl ChildLink {
    pub(crate) fn new(child: String, generation: u64, supervisor: Recipient<ChildExited>) -> Self {
        Self {
            child,
            generation,
            supervisor,
            failure: Mutex::new(None),
        }
    }

    /// The child's id in its supervisor.
    pub fn child_id(&self) -> &str {
        &self.child
    }

    /// Marks the coming stop as a failure, so transient children are restarted and the
    /// reason is counted. Call it just before `ctx.stop()`.
    pub fn fail(&self, reason: impl Into<String>) {
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(reason.into());
        }
    }
}

impl Drop for ChildLink {
    fn drop(&mut self) {
        // Never panic here: this runs while a panic unwinds.
        let reason = if std::thread::panicking() {
            ExitReason::Panic
        } else {
            match self.failure.get_mut().ok().and_then(|f| f.take()) {
                Some(msg) => ExitReason::Failure(msg),
                None => ExitReason::Normal,
            }
        };
        self.supervisor.do_send(ChildExited {
            child: std::mem::take(&mut self.child),
            generation: self.generation,
            reason,
        });
    }
}
