//! The simulation service's housekeeping actor (`runs` in its tree): every third of a lease
//! it renews the leases of this instance's live runs and takes over the runs whose lease
//! ran out (their process stopped): each goes on here from its last streamed window, or
//! ends as failed if it cannot (no run stays "running" forever); every hour it deletes the
//! finished runs past `simulation.retention_days`. Supervised: a failure is retried at
//! its next tick, a panic restarts it.

use crate::runs::Runs;
use actix::prelude::*;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::sync::Arc;
use std::time::Duration;

/// How often finished runs past their retention are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(3_600);

pub struct Keeper {
    runs: Arc<Runs>,
    _link: ChildLink,
}

impl Keeper {
    pub fn child(runs: Arc<Runs>) -> ChildSpec {
        ChildSpec::worker("runs", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                Keeper {
                    runs: runs.clone(),
                    _link: link,
                }
                .start(),
            ))
        })
    }
}

impl Actor for Keeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_millis((self.runs.lease_ms / 3).max(50));
        ctx.run_interval(every, |act, ctx| {
            let runs = act.runs.clone();
            // On the gRPC runtime, where the pool's connections live.
            let handle = runs.runtime.clone();
            ctx.spawn(
                async move {
                    let work = handle.spawn(async move {
                        if let Err(e) = runs.renew().await {
                            tracing::warn!(error = %e, "run leases not renewed");
                        }
                        if let Err(e) = runs.take_over().await {
                            tracing::warn!(error = %e, "runs of stopped instances not taken over");
                        }
                    });
                    let _ = work.await;
                }
                .into_actor(act),
            );
        });
        ctx.run_interval(PURGE_EVERY, |act, ctx| {
            let runs = act.runs.clone();
            let handle = runs.runtime.clone();
            ctx.spawn(
                async move {
                    let work = handle.spawn(async move { runs.purge_expired().await });
                    match work.await {
                        Ok(Ok(0)) => {}
                        Ok(Ok(n)) => tracing::info!(runs = n, "runs past their retention deleted"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "old runs not purged"),
                        Err(e) => tracing::warn!(error = %e, "purge task failed"),
                    }
                }
                .into_actor(act),
            );
        });
    }
}
sdsim_runtime::impl_supervised!(Keeper);
