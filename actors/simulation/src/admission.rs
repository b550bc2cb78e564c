//! Admission: a user's runs going at once are capped across instances (429), counted under
//! a per-user advisory lock so two starts cannot both take the last place; an instance runs
//! `simulation.max_running` at once and queues the rest, in order, starting each as a place
//! frees.

use crate::runs::{Outcome, Ready, RunRow, Runs, Start};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::simulation_schema::simulations;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use uuid::Uuid;

impl Runs {
    /// Takes a place for a run on this instance, if one is free.
    pub(crate) fn reserve(&self) -> bool {
        let cap = self.caps.running.max(1);
        let queued = self.queue.lock().map_or(0, |q| q.len());
        queued == 0
            && self
                .active
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < cap).then_some(n + 1)
                })
                .is_ok()
    }

    /// Stores a new run, running or queued; refuses it (429) when its starter already has
    /// `max_running_per_user` runs going, counted across every instance (under a lock per
    /// user, so two starts at once cannot both take the last place).
    pub(crate) async fn insert(
        &self,
        s: &Start,
        ready: &Ready,
        configuration: Value,
        running: bool,
    ) -> Result<RunRow, ServiceError> {
        use diesel_async::AsyncConnection;
        let cap = i64::from(self.caps.per_user);
        let user = s.user;
        let values = (
            simulations::id.eq(Uuid::new_v4()),
            simulations::user_id.eq(s.user),
            simulations::project_id.eq(s.project),
            simulations::name.eq(ready.design.name.clone()),
            simulations::status.eq(if running { "running" } else { "pending" }),
            simulations::configuration.eq(configuration),
            simulations::seed.eq(ready.seed as i64),
            simulations::duration_seconds.eq(ready.design.duration_s),
            simulations::speed.eq(ready.speed),
            simulations::window_seconds.eq(ready.window),
            simulations::started_at.eq(running.then(Utc::now)),
            simulations::owner_instance.eq(Some(self.instance_id.clone())),
            simulations::lease_until.eq(Some(Utc::now() + self.lease())),
        );
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 20))")
                .bind::<diesel::sql_types::Text, _>(user.to_string())
                .execute(conn)
                .await?;
            let going: i64 = simulations::table
                .filter(simulations::user_id.eq(user))
                .filter(simulations::status.eq_any(["pending", "running", "paused"]))
                .count()
                .get_result(conn)
                .await?;
            if going >= cap {
                return Err(ServiceError::RateLimited {
                    retry_after_secs: 10,
                });
            }
            Ok(diesel::insert_into(simulations::table)
                .values(values)
                .returning(RunRow::as_returning())
                .get_result(conn)
                .await?)
        })
        .await
    }

    /// Where a queued run of this instance is in the queue (1: next).
    pub fn position(&self, id: Uuid) -> Option<usize> {
        self.queue
            .lock()
            .ok()
            .and_then(|q| q.iter().position(|(r, _)| *r == id))
            .map(|p| p + 1)
    }

    /// A run's place is free (it ended): the next queued run starts in it.
    pub async fn release(self: &Arc<Self>, id: Uuid) {
        self.forget(id);
        self.active.fetch_sub(1, Ordering::AcqRel);
        loop {
            let next = {
                let Ok(mut q) = self.queue.lock() else {
                    return;
                };
                if q.is_empty() {
                    return;
                }
                let cap = self.caps.running.max(1);
                if self
                    .active
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < cap).then_some(n + 1)
                    })
                    .is_err()
                {
                    return;
                }
                q.pop_front()
            };
            let Some((run, ready)) = next else {
                return;
            };
            match self.started(run).await {
                Ok(Some(row)) => {
                    self.launch(row, ready);
                    return;
                }
                // Stopped (or deleted) while it waited: the place goes to the next one.
                Ok(None) => {
                    self.active.fetch_sub(1, Ordering::AcqRel);
                }
                Err(e) => {
                    tracing::error!(run = %run, error = %e, "a queued run could not start");
                    self.active.fetch_sub(1, Ordering::AcqRel);
                    let _ = self
                        .finish(run, Outcome::Failed(format!("could not start: {e}")), 0.0)
                        .await;
                }
            }
        }
    }

    /// Marks a queued run as running; None when it is no longer pending.
    async fn started(&self, run: Uuid) -> Result<Option<RunRow>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        Ok(diesel::update(
            simulations::table
                .find(run)
                .filter(simulations::status.eq("pending"))
                // Still ours: a queued run taken over while this instance stalled is not.
                .filter(simulations::owner_instance.eq(&self.instance_id)),
        )
        .set((
            simulations::status.eq("running"),
            simulations::started_at.eq(Some(Utc::now())),
        ))
        .returning(RunRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()?)
    }
}
