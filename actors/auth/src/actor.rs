//! Who owns the auth core, and how requests reach it.
//!
//! Requests do not queue in an actor's mailbox: an actix actor runs on one thread, so a
//! service whose every request waits on one actor has one core. Instead the gRPC adapter
//! runs each request's future on the task that received it, on the multi-threaded gRPC
//! runtime (every core), against the shared [`AuthCore`]. The [`AuthActor`] stays its
//! supervised owner: the core is reachable (through the [`CoreCell`]) only while the actor
//! runs, so a restart is seen by callers as "unavailable" for its duration, and a request
//! that panics makes the actor panic with its message, so the supervisor counts the failure
//! in `sdsim_supervisor_restarts_total`, applies its restart intensity and backoff, and
//! starts a fresh actor, as it would for a panic inside the actor itself.

use crate::accounts::{ChangePassword, Login, Refresh, Register, UpdateProfile};
use crate::admin::{Admin, AdminOutcome};
use crate::core::{AuthCore, LoginOutcome, Profile, SessionState, SessionView, TokenInfo};
use crate::inbox::{ListNotifications, MarkRead, Notification};
use crate::recovery::{RequestReset, RequestVerification, ResetPassword, VerifyEmail};
use crate::sessions::{
    EndSession, GetProfile, GetSession, GetUser, ListSessions, Logout, LookupUser, ValidateToken,
};
use actix::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Crash, Restart};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};

/// The core and the actor that owns it, while that actor runs.
type Live = (Arc<AuthCore>, Addr<AuthActor>);

/// The live core and the actor that owns it, as the adapters reach them.
#[derive(Clone, Default)]
pub struct CoreCell {
    inner: Arc<RwLock<Option<Live>>>,
}

impl CoreCell {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the owning actor runs (the service can answer).
    pub fn is_live(&self) -> bool {
        self.live().is_some()
    }

    fn live(&self) -> Option<Live> {
        self.inner.read().ok().and_then(|g| g.clone())
    }

    /// Runs `req` against the live core on the calling task, or says the service is
    /// restarting. A panic in it is reported to the owning actor (see the module doc).
    pub async fn call<R: Request>(&self, req: R) -> Result<R::Output, ServiceError> {
        let (core, owner) = self
            .live()
            .ok_or_else(|| ServiceError::Unavailable("auth service is restarting".into()))?;
        match AssertUnwindSafe(req.run(core)).catch_unwind().await {
            Ok(answer) => answer,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a request panicked".into());
                tracing::error!(panic = %what, "an auth request panicked; restarting its owner");
                owner.do_send(Crash(format!("request panicked: {what}")));
                Err(ServiceError::Internal(
                    "the auth service failed while answering".into(),
                ))
            }
        }
    }
}

/// One operation of the auth core: what it answers and how it runs.
pub trait Request: Send + 'static {
    type Output: Send + 'static;
    fn run(self, core: Arc<AuthCore>) -> BoxFuture<'static, Result<Self::Output, ServiceError>>;
}

macro_rules! requests {
    ($($req:ty => $out:ty, $method:ident;)*) => {
        $(
            impl Request for $req {
                type Output = $out;
                fn run(
                    self,
                    core: Arc<AuthCore>,
                ) -> BoxFuture<'static, Result<$out, ServiceError>> {
                    Box::pin(core.$method(self))
                }
            }
        )*
    };
}

requests! {
    Register => Profile, register;
    Login => LoginOutcome, login;
    Refresh => LoginOutcome, refresh;
    Logout => usize, logout;
    UpdateProfile => Profile, update_profile;
    ChangePassword => usize, change_password;
    ListSessions => Vec<SessionView>, list_sessions;
    EndSession => bool, end_session;
    ValidateToken => TokenInfo, validate_token;
    GetUser => (Profile, Vec<String>), get_user;
    GetProfile => Profile, get_profile;
    LookupUser => Option<Profile>, lookup_user;
    GetSession => SessionState, get_session;
    RequestVerification => bool, request_verification;
    VerifyEmail => (), verify_email;
    RequestReset => (), request_reset;
    ResetPassword => usize, reset_password;
    Admin => AdminOutcome, admin;
    ListNotifications => (Vec<Notification>, i64), list_notifications;
    MarkRead => (i64, i64), mark_notifications_read;
}

/// The supervised owner of the auth core (child `accounts` of the auth tree).
pub struct AuthActor {
    core: Arc<AuthCore>,
    cell: CoreCell,
    _link: ChildLink,
}

impl AuthActor {
    pub fn child(core: Arc<AuthCore>, cell: CoreCell) -> ChildSpec {
        ChildSpec::worker("accounts", Restart::Permanent, move |link| {
            let addr = AuthActor {
                core: core.clone(),
                cell: cell.clone(),
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }
}

impl Actor for AuthActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Ok(mut g) = self.cell.inner.write() {
            *g = Some((self.core.clone(), ctx.address()));
        }
    }
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        if let Ok(mut g) = self.cell.inner.write() {
            if g.as_ref().is_some_and(|(_, a)| *a == ctx.address()) {
                *g = None;
            }
        }
    }
}
sdsim_runtime::impl_supervised!(AuthActor);
