//! An OTP-style supervision runtime on top of actix.
//!
//! actix's own `Supervisor` only re-runs an actor that stopped: it does not notice panics,
//! has no restart limit, no backoff and no counters. This module adds what Erlang/OTP has:
//!
//! - strategies [`Strategy::OneForOne`], [`Strategy::OneForAll`], [`Strategy::RestForOne`];
//! - restart types [`Restart::Permanent`], [`Restart::Transient`], [`Restart::Temporary`];
//! - restart intensity: at most `max_restarts` in `period`, past which the supervisor stops
//!   its children, stops itself and so escalates to its parent (or, at the root, to the
//!   process's `on_give_up` hook);
//! - exponential backoff with jitter between restarts of the same child;
//! - panic detection: every child holds a [`ChildLink`]; its `Drop` reports the exit to the
//!   supervisor, and `std::thread::panicking()` tells a panic from a normal stop (tokio drops a
//!   task's future while unwinding when it panics);
//! - fault injection: [`InjectFault`] makes a named child panic (operators turn it on with
//!   `admin.fault_injection`; tests use it to prove restarts);
//! - every restart counted in `sdsim_supervisor_restarts_total{service,supervisor,child,reason}`,
//!   logged, and the live tree published to a [`TreeView`] that admin endpoints serve as JSON.

mod backoff;
mod link;
mod spec;
mod supervisor;
mod tree;

pub use backoff::Backoff;
pub use link::{ChildLink, ExitReason};
pub use spec::{ChildHandle, ChildSpec, Intensity, Restart, StartError, Strategy, SupervisorSpec};
pub use supervisor::{Crash, InjectFault, Shutdown, Supervisor};
pub use tree::{ChildStatus, TreeView};

/// Implements [`Shutdown`] and [`Crash`] for an actor whose context is `Context<Self>`, so a
/// supervisor can stop it (for one_for_all / rest_for_one restarts and orderly shutdown) and
/// an operator can inject a panic into it (fault injection, off unless configured).
#[macro_export]
macro_rules! impl_supervised {
    ($actor:ty) => {
        impl ::actix::Handler<$crate::supervision::Shutdown> for $actor {
            type Result = ();
            fn handle(
                &mut self,
                _: $crate::supervision::Shutdown,
                ctx: &mut ::actix::Context<Self>,
            ) {
                ::actix::ActorContext::stop(ctx);
            }
        }
        impl ::actix::Handler<$crate::supervision::Crash> for $actor {
            type Result = ();
            fn handle(&mut self, msg: $crate::supervision::Crash, _: &mut ::actix::Context<Self>) {
                panic!("fault injected: {}", msg.0);
            }
        }
    };
}

#[cfg(test)]
mod tests;
