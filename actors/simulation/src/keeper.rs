//! The simulation service's `runs` supervisor: it starts a [`RunActor`] per run live here
//! (and forgets it when it stops), and keeps house: six times per lease
//! it renews the leases of this instance's live runs and takes over the runs whose lease
//! ran out (their process stopped): each goes on here from its last streamed window, or
//! ends as failed if it cannot (no run stays "running" forever); every hour it deletes the
//! finished runs past `simulation.retention_days` and the runs of projects that were purged
//! (every `simulation.janitor_interval_s`). Supervised: a failure is retried at
//! its next tick, a panic restarts it.

use crate::run_actor::{RunActor, RunGone, StartRun};
use crate::runs::Runs;
use actix::prelude::*;
use sdsim_protocols::Service;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::mesh::Mesh;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use std::sync::Arc;
use std::time::Duration;

pub struct Keeper {
    runs: Arc<Runs>,
    mesh: Mesh,
    purge_every: Duration,
    /// The actor of each live run of this instance (see [`crate::run_actor`]).
    run_actors: std::collections::HashMap<uuid::Uuid, Addr<RunActor>>,
    _link: ChildLink,
}

impl Keeper {
    pub fn child(runs: Arc<Runs>, mesh: Mesh, purge_every: Duration) -> ChildSpec {
        ChildSpec::worker("runs", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                Keeper {
                    runs: runs.clone(),
                    mesh: mesh.clone(),
                    purge_every,
                    run_actors: Default::default(),
                    _link: link,
                }
                .start(),
            ))
        })
    }
}

/// Deletes the runs of projects the project service no longer knows (purged, by hand or
/// from the trash): answers how many runs went.
async fn orphans(runs: &Runs, mesh: &Mesh) -> Result<usize, ServiceError> {
    use sdsim_protocols::proto::project as ppb;
    let mut gone = 0;
    for project in runs.run_projects(500).await? {
        let req = ppb::GetProjectPermissionsRequest {
            project_id: project.to_string(),
            user_id: uuid::Uuid::nil().to_string(),
            is_admin: true,
        };
        let known = mesh
            .call(Service::Project, "GetProjectPermissions", |ch| {
                let req = req.clone();
                let mut c = ppb::project_service_client::ProjectServiceClient::new(ch);
                async move {
                    c.get_project_permissions(sdsim_runtime::request_id::request(req))
                        .await
                }
            })
            .await;
        match known {
            Err(ServiceError::NotFound(_)) => gone += runs.delete_project_runs(project).await?,
            Ok(_) | Err(ServiceError::Forbidden(_)) => {}
            // The project service is away: try again at the next sweep.
            Err(e) => return Err(e),
        }
    }
    Ok(gone)
}

impl Actor for Keeper {
    type Context = Context<Self>;

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        // Runs started meanwhile start without an actor; those running keep theirs.
        self.runs.supervisor.clear(&ctx.address());
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.runs.supervisor.set(ctx.address());
        // Renewed six times per lease (a stalled tick or two does not lose a run) and runs of
        // stopped instances looked for as often: a run is taken over at most a lease and a
        // sixth after its process died (1.75 s with the default lease).
        let every = Duration::from_millis((self.runs.lease_ms / 6).max(50));
        let ticking = Arc::new(std::sync::atomic::AtomicBool::new(false));
        ctx.run_interval(every, move |act, ctx| {
            // One tick at a time: a slow one (a pool wait) is not overtaken by the next.
            if ticking.swap(true, std::sync::atomic::Ordering::AcqRel) {
                return;
            }
            let done = ticking.clone();
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
                    done.store(false, std::sync::atomic::Ordering::Release);
                }
                .into_actor(act),
            );
        });
        ctx.run_interval(self.purge_every, |act, ctx| {
            let runs = act.runs.clone();
            let mesh = act.mesh.clone();
            let handle = runs.runtime.clone();
            ctx.spawn(
                async move {
                    let work = handle.spawn(async move {
                        (runs.purge_expired().await, orphans(&runs, &mesh).await)
                    });
                    match work.await {
                        Ok((expired, orphaned)) => {
                            match expired {
                                Ok(0) => {}
                                Ok(n) => {
                                    tracing::info!(runs = n, "runs past their retention deleted")
                                }
                                Err(e) => tracing::warn!(error = %e, "old runs not purged"),
                            }
                            match orphaned {
                                Ok(0) => {}
                                Ok(n) => {
                                    tracing::info!(runs = n, "runs of purged projects deleted")
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "runs of purged projects not swept")
                                }
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "purge task failed"),
                    }
                }
                .into_actor(act),
            );
        });
    }
}
sdsim_runtime::impl_supervised!(Keeper);

impl Handler<StartRun> for Keeper {
    type Result = ();
    fn handle(&mut self, msg: StartRun, ctx: &mut Context<Self>) {
        let id = msg.row.id;
        let actor = RunActor::new(self.runs.clone(), msg, ctx.address()).start();
        self.run_actors.insert(id, actor);
    }
}

impl Handler<RunGone> for Keeper {
    type Result = ();
    fn handle(&mut self, msg: RunGone, _: &mut Context<Self>) {
        if self.run_actors.get(&msg.0) == Some(&msg.1) {
            self.run_actors.remove(&msg.0);
        }
    }
}
