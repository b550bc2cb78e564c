//! Leases of live runs and what follows from them: renewing this instance's (a run lost
//! meanwhile stops here), taking over the runs of instances that stopped (each goes on from
//! its last streamed window), and deleting runs past their retention or of purged projects.
//! The keeper calls these on its ticks.

use crate::runs::{Control, Outcome, Ready, Resume, RunRow, Runs};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sdsim_engine as engine;
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::simulation_schema::simulations;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use uuid::Uuid;

impl Runs {
    /// Renews the leases of this instance's live runs; a run it no longer holds (its lease
    /// ran out while this process was stalled, and another instance took it over) stops
    /// here at once, writing nothing more. Answers how many it holds.
    pub async fn renew(&self) -> Result<usize, ServiceError> {
        // The runs live here before the renewal: one that starts meanwhile is not "lost".
        let before: Vec<(Uuid, Arc<Control>)> = self
            .live
            .lock()
            .map(|l| l.iter().map(|(id, r)| (*id, r.control.clone())).collect())
            .unwrap_or_default();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let held: Vec<Uuid> = diesel::update(
            simulations::table
                .filter(simulations::owner_instance.eq(&self.instance_id))
                .filter(simulations::status.eq_any(["pending", "running", "paused"])),
        )
        .set(simulations::lease_until.eq(Some(Utc::now() + self.lease())))
        .returning(simulations::id)
        .get_results(&mut conn)
        .await?;
        for (_, control) in before.iter().filter(|(id, _)| !held.contains(id)) {
            control.stop.store(true, Ordering::Relaxed);
        }
        Ok(held.len())
    }

    /// Takes over the live runs whose lease ran out (their process died): each goes on
    /// here from its last streamed window (see [`Resume`]); a queued one joins this
    /// instance's queue. Answers how many it took.
    pub async fn take_over(self: &Arc<Self>) -> Result<usize, ServiceError> {
        #[derive(diesel::QueryableByName)]
        struct Claimed {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            id: Uuid,
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let claimed: Vec<Claimed> = diesel::sql_query(
            "UPDATE simulation_schema.simulations \
             SET owner_instance = $1, lease_until = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM simulation_schema.simulations \
                          WHERE status IN ('pending', 'running', 'paused') \
                            AND lease_until < now() \
                          ORDER BY lease_until LIMIT 16 FOR UPDATE SKIP LOCKED) \
             RETURNING id",
        )
        .bind::<diesel::sql_types::Text, _>(&self.instance_id)
        .bind::<diesel::sql_types::Double, _>(self.lease_ms as f64 / 1000.0)
        .load(&mut conn)
        .await?;
        drop(conn);
        let n = claimed.len();
        // Fence the former holder out of the stream at once: it may be only stalled, and
        // must not add a window between this claim and the resumed run's first one.
        for c in &claimed {
            crate::stream::own(self, c.id).await;
        }
        for c in claimed {
            match self.row(&c.id.to_string()).await {
                Ok(row) => {
                    tracing::warn!(run = %row.id, "lease expired: this instance takes the run over");
                    self.resume(row).await;
                }
                // Let it go at once (a later tick, here or elsewhere, claims it again) rather
                // than hold a run that runs nowhere.
                Err(e) => {
                    tracing::warn!(run = %c.id, error = %e, "a claimed run could not be read: released");
                    self.release_lease(c.id).await;
                }
            }
        }
        Ok(n)
    }

    /// Ends this instance's lease of run `id` now.
    async fn release_lease(&self, id: Uuid) {
        let released = async {
            let mut conn = sdsim_schema::pool::get(&self.pool).await?;
            diesel::update(
                simulations::table
                    .find(id)
                    .filter(simulations::owner_instance.eq(&self.instance_id)),
            )
            .set((
                // No owner (this instance's renewals skip it) and run out: the next claim
                // takes it.
                simulations::owner_instance.eq(None::<String>),
                simulations::lease_until.eq(Some(Utc::now() - chrono::Duration::seconds(1))),
            ))
            .execute(&mut conn)
            .await?;
            Ok::<_, ServiceError>(())
        };
        if let Err(e) = released.await {
            tracing::warn!(run = %id, error = %e, "lease not released (it runs out by itself)");
        }
    }

    /// Goes on with a run taken over; one that cannot (its design no longer runs) ends as
    /// failed with the reason.
    async fn resume(self: &Arc<Self>, row: RunRow) {
        let ready = async {
            let design = self.design_of(row.id).await?;
            let start = Self::replay_of(&row, &design, row.user_id, row.speed)?;
            let design = engine::validate_json(&start.design_json).map_err(|problems| {
                ServiceError::invalid("design", crate::runs::problems_text(&problems))
            })?;
            let (_, stored) = self.windows(&row, u64::MAX, 1).await?;
            let streamed = crate::stream::last_window(self, row.id).await.max(stored);
            let mut scheduled = start.scheduled;
            scheduled.reverse();
            Ok::<_, ServiceError>(Ready {
                design,
                seed: row.seed as u64,
                window: row.window_seconds,
                speed: row.speed,
                scheduled,
                resume: Resume {
                    streamed,
                    stored,
                    paused: row.status == "paused",
                    taken_over: true,
                },
            })
        }
        .await;
        match ready {
            Ok(ready) if row.status == "pending" => {
                if let Ok(mut q) = self.queue.lock() {
                    q.push_back((row.id, ready));
                }
            }
            Ok(ready) => {
                self.active.fetch_add(1, Ordering::AcqRel);
                self.launch(row, ready);
            }
            Err(e) => {
                let reason =
                    format!("the run could not be resumed after its instance stopped: {e}");
                tracing::error!(run = %row.id, %reason);
                if self
                    .finish(row.id, Outcome::Failed(reason.clone()), 0.0)
                    .await
                    .is_ok()
                {
                    crate::stream::end_orphan(self, row.id, row.user_id, row.project_id, &reason)
                        .await;
                }
            }
        }
    }

    /// Up to `limit` projects that finished runs belong to, for the orphan sweep.
    pub async fn run_projects(&self, limit: i64) -> Result<Vec<Uuid>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let ids: Vec<Option<Uuid>> = simulations::table
            .filter(simulations::project_id.is_not_null())
            .filter(simulations::status.ne_all(["pending", "running", "paused"]))
            .select(simulations::project_id)
            .distinct()
            .limit(limit)
            .load(&mut conn)
            .await?;
        Ok(ids.into_iter().flatten().collect())
    }

    /// Deletes the finished runs of a project that no longer exists (purged).
    pub async fn delete_project_runs(&self, project: Uuid) -> Result<usize, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        Ok(diesel::delete(
            simulations::table
                .filter(simulations::project_id.eq(project))
                .filter(simulations::status.ne_all(["pending", "running", "paused"])),
        )
        .execute(&mut conn)
        .await?)
    }

    /// Deletes finished runs (and with them their windows, results and analysis) that ended
    /// more than `retention_days` ago.
    pub async fn purge_expired(&self) -> Result<usize, ServiceError> {
        if self.retention_days == 0 {
            return Ok(0);
        }
        let before = Utc::now() - chrono::Duration::days(i64::from(self.retention_days));
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        Ok(diesel::delete(
            simulations::table
                .filter(simulations::status.ne_all(["pending", "running", "paused"]))
                .filter(simulations::completed_at.lt(before)),
        )
        .execute(&mut conn)
        .await?)
    }

    /// Run `id` is no longer this instance's (taken over): it stops here, writing nothing.
    pub fn lost(&self, id: Uuid) {
        if let Some(c) = self
            .live
            .lock()
            .ok()
            .and_then(|l| l.get(&id).map(|r| r.control.clone()))
        {
            c.stop.store(true, Ordering::Relaxed);
        }
    }
}
