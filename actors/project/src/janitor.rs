//! The project service's housekeeping actor: at start it brings the system templates in
//! step with the engine's, then every `purge_interval_s` it purges the projects whose time
//! in the trash is over, and every six `live_snapshot_s` it saves the live documents that
//! still have unsaved edits (those of an instance that died; see [`crate::live_docs`]). Supervised: a failure is retried at its next tick, a panic
//! restarts it.

use crate::core::ProjectCore;
use actix::prelude::*;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::sync::Arc;
use std::time::Duration;

pub struct Janitor {
    core: Arc<ProjectCore>,
    _link: ChildLink,
}

impl Janitor {
    pub fn child(core: Arc<ProjectCore>) -> ChildSpec {
        ChildSpec::worker("janitor", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                Janitor {
                    core: core.clone(),
                    _link: link,
                }
                .start(),
            ))
        })
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let core = self.core.clone();
        ctx.spawn(
            async move {
                match core.sync_templates().await {
                    Ok(n) => {
                        tracing::info!(templates = n, "system templates in step with the engine")
                    }
                    Err(e) => tracing::error!(error = %e, "system templates not synced"),
                }
            }
            .into_actor(self),
        );
        let every = Duration::from_secs(self.core.settings.purge_interval_s.max(1));
        ctx.run_interval(every, |act, ctx| {
            let core = act.core.clone();
            ctx.spawn(
                async move {
                    match core.purge_expired().await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(purged = n, "expired projects purged from the trash")
                        }
                        Err(e) => tracing::warn!(error = %e, "trash not emptied; retrying later"),
                    }
                }
                .into_actor(act),
            );
        });
        // A backstop: the LiveDoc actors save what is edited; this saves what an instance
        // that died left unsaved.
        let every = Duration::from_secs(self.core.settings.live_snapshot_s.max(1) * 6);
        ctx.run_interval(every, |act, ctx| {
            let core = act.core.clone();
            ctx.spawn(
                async move {
                    match core.snapshot_due().await {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(saved = n, "live documents saved as versions"),
                        Err(e) => {
                            tracing::warn!(error = %e, "live documents not saved; retrying later")
                        }
                    }
                }
                .into_actor(act),
            );
        });
    }
}
sdsim_runtime::impl_supervised!(Janitor);
