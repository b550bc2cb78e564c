//! A live run changed while it runs: stop, pace, pause, chaos injected; a replay.

use super::*;

impl Runs {
    /// The control of a run live on this instance; a run that is not is a conflict.
    fn live_control(&self, row: &RunRow) -> Result<Arc<Control>, ServiceError> {
        // The stored status is the truth once the run has ended (its live entry goes a
        // moment after the outcome is stored).
        let live = matches!(row.status.as_str(), "running" | "paused");
        self.live
            .lock()
            .ok()
            .and_then(|l| l.get(&row.id).map(|r| r.control.clone()))
            .filter(|_| live)
            .ok_or_else(|| ServiceError::Conflict {
                code: "not_running".into(),
                field: "simulation_id".into(),
                message: format!(
                    "simulation {} is not running (it is {})",
                    row.id, row.status
                ),
            })
    }

    /// Asks a running run to stop (a queued one ends at once); a finished one is a conflict.
    pub async fn stop(&self, row: RunRow) -> Result<RunRow, ServiceError> {
        let queued = self.queue.lock().ok().and_then(|mut q| {
            let at = q.iter().position(|(r, _)| *r == row.id)?;
            q.remove(at)
        });
        if queued.is_some() {
            let mut conn = sdsim_schema::pool::get(&self.pool).await?;
            diesel::update(
                simulations::table
                    .find(row.id)
                    .filter(simulations::status.eq("pending")),
            )
            .set((
                simulations::status.eq("stopped"),
                simulations::completed_at.eq(Some(Utc::now())),
            ))
            .execute(&mut conn)
            .await?;
            return Ok(row);
        }
        self.live_control(&row)?.stop.store(true, Ordering::Relaxed);
        Ok(row)
    }

    /// Pauses, resumes or re-paces a running run; the stored row says its state and speed.
    pub async fn control(&self, row: RunRow, change: Change) -> Result<(), ServiceError> {
        if let Change::Speed(s) = change {
            check_speed(s)?;
        }
        let control = self.live_control(&row)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let _one_at_a_time = control.changing.lock().await;
        // The row changes only while the run is live, so its end (which sets the final
        // status) is never overwritten by a late pause.
        let live = simulations::table
            .find(row.id)
            .filter(simulations::status.eq_any(["running", "paused"]));
        match change {
            Change::Panic => control.panic.store(true, Ordering::Relaxed),
            Change::Pause | Change::Resume => {
                let paused = change == Change::Pause;
                control.paused.store(paused, Ordering::Relaxed);
                diesel::update(live)
                    .set(simulations::status.eq(if paused { "paused" } else { "running" }))
                    .execute(&mut conn)
                    .await?;
            }
            Change::Speed(s) => {
                control.speed.store(s.to_bits(), Ordering::Relaxed);
                diesel::update(live)
                    .set(simulations::speed.eq(s))
                    .execute(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Injects `chaos` (one entry of the engine's `chaos`, at most [`MAX_INJECTIONS`] in a
    /// run, `at_s` optional) into a running
    /// run at its current simulated time; answers the time and the entry as applied.
    pub async fn inject(
        &self,
        row: RunRow,
        chaos: &str,
    ) -> Result<(f64, engine::Chaos), ServiceError> {
        let control = self.live_control(&row)?;
        // Every injection is kept with the run (for its replay) and shown in its status.
        let injected = row.injections.as_array().map_or(0, Vec::len);
        if injected >= MAX_INJECTIONS {
            return Err(ServiceError::invalid(
                "chaos",
                format!("a run takes at most {MAX_INJECTIONS} injected chaos entries"),
            ));
        }
        let mut entry: Value = serde_json::from_str(chaos)
            .map_err(|e| ServiceError::invalid("chaos", format!("not JSON: {e}")))?;
        let Some(fields) = entry.as_object_mut() else {
            return Err(ServiceError::invalid(
                "chaos",
                "a chaos entry is a JSON object",
            ));
        };
        if fields.get("type").and_then(Value::as_str) != Some("random_crash") {
            fields.entry("at_s").or_insert(Value::from(0.0));
        }
        let entry: engine::Chaos = serde_json::from_value(entry).map_err(|e| {
            ServiceError::invalid("chaos", format!("not a chaos entry the engine knows: {e}"))
        })?;
        let design: engine::Design = serde_json::from_value(self.design_of(row.id).await?)
            .map_err(|e| ServiceError::Internal(format!("stored design: {e}")))?;
        let mut timed = entry.clone();
        // Checked as at the run's start; the engine moves it to the current time.
        set_at(&mut timed, 0.0);
        engine::validate_injection(&design, &timed).map_err(|problems| {
            let p = &problems[0];
            ServiceError::invalid(
                &format!("chaos{}", p.path.trim_start_matches('$')),
                problems_text(&problems),
            )
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        control
            .inject
            .lock()
            .map_err(|_| ServiceError::Internal("the run's control is poisoned".into()))?
            .push((entry, tx));
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(Ok(applied))) => Ok(applied),
            Ok(Ok(Err(e))) => Err(ServiceError::invalid("chaos", e)),
            // The run ended before its next window boundary.
            Ok(Err(_)) | Err(_) => Err(ServiceError::Conflict {
                code: "not_running".into(),
                field: "simulation_id".into(),
                message: format!("simulation {} ended before the chaos applied", row.id),
            }),
        }
    }

    /// What replaying `row` (whose design is `design`, [`Self::design_of`]) needs: its
    /// design, seed, window and injections.
    pub fn replay_of(
        row: &RunRow,
        design: &Value,
        user: Uuid,
        speed: f64,
    ) -> Result<Start, ServiceError> {
        let scheduled = row
            .injections
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|i| {
                        let at = i["at_s"].as_f64().unwrap_or(0.0);
                        serde_json::from_value(i["chaos"].clone()).map(|c| (at, c))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| ServiceError::Internal(format!("stored injections: {e}")))?
            .unwrap_or_default();
        Ok(Start {
            user,
            project: row.project_id,
            design_json: design.to_string(),
            seed: Some(row.seed as u64),
            speed,
            window_s: Some(row.window_seconds),
            scheduled,
        })
    }
}
