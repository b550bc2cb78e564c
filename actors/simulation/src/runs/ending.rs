//! A run announced and ended: the `started` event; its outcome, report, series and analytics stored.

use super::*;

impl Runs {
    /// `simulation:events:started`, for whoever listens (best effort).
    pub async fn announce(&self, row: &RunRow) {
        let event = serde_json::json!({
            "simulation_id": row.id.to_string(),
            "user_id": row.user_id.to_string(),
            "project_id": row.project_id.map(|p| p.to_string()),
            "status": "started",
        });
        let mut conn = self.redis.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(self.ns.simulation_events("started"))
            .arg(event.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::debug!(run = %row.id, error = %e, "started event not published");
        }
    }

    /// Stores how a run ended; answers who started it and of which project.
    pub async fn finish(
        &self,
        id: Uuid,
        outcome: Outcome,
        wall_s: f64,
    ) -> Result<(Uuid, Option<Uuid>), ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (status, report, error) = match outcome {
            Outcome::Completed(r) => ("completed", Some(r), None),
            Outcome::Stopped(r) => ("stopped", Some(r), None),
            Outcome::Failed(e) => ("failed", None, Some(e)),
        };
        // One transaction: whoever reads the run as ended also finds its results.
        let owner = conn
            .transaction::<_, ServiceError, _>(async |conn| {
                self.record_end(conn, id, status, report, error, wall_s)
                    .await
            })
            .await?;
        if owner.is_some() {
            self.metrics
                .runs_finished
                .with_label_values(&[status])
                .inc();
        }
        let Some(owner) = owner else {
            return Err(ServiceError::Conflict {
                code: "not_ours".into(),
                field: "simulation_id".into(),
                message: format!("simulation {id} is no longer this instance's to end"),
            });
        };
        Ok(owner)
    }

    /// Stores a run's end: its status (only if it is still live and this instance's:
    /// fencing, a run whose lease expired was already ended elsewhere), its report, analysis,
    /// series and the starter's history. None when the run was not ours to end.
    async fn record_end(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        id: Uuid,
        status: &str,
        report: Option<Box<engine::RunReport>>,
        error: Option<String>,
        wall_s: f64,
    ) -> Result<Option<(Uuid, Option<Uuid>)>, ServiceError> {
        // Only a run still live and ours ends here (fencing: a run whose lease expired was
        // already ended by the sweep, and its late outcome is not written over that).
        let owner: Option<(Uuid, Option<Uuid>)> = diesel::update(
            simulations::table
                .find(id)
                .filter(simulations::status.eq_any(["pending", "running", "paused"]))
                .filter(simulations::owner_instance.eq(&self.instance_id)),
        )
        .set((
            simulations::status.eq(status),
            simulations::error.eq(error),
            simulations::progress.eq(if status == "completed" { 1.0 } else { 0.0 }),
            simulations::completed_at.eq(Some(Utc::now())),
        ))
        .returning((simulations::user_id, simulations::project_id))
        .get_result(conn)
        .await
        .optional()?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        // A failed run has no report and keeps no series.
        let components = report.as_ref().map(|r| r.components.len());
        if let Some(report) = report {
            let summary = serde_json::to_value(&*report)
                .map_err(|e| ServiceError::Internal(format!("report: {e}")))?;
            diesel::insert_into(simulation_results::table)
                .values((
                    simulation_results::simulation_id.eq(id),
                    simulation_results::summary.eq(summary),
                    simulation_results::requests_simulated.eq(report.requests_simulated as i64),
                    simulation_results::simulated_seconds.eq(report.simulated_s),
                    simulation_results::wall_seconds.eq(wall_s),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            // The analysis, a row per finding, for queries across runs.
            let analysis = serde_json::to_value(&report.analysis)
                .map_err(|e| ServiceError::Internal(format!("analysis: {e}")))?;
            let mut rows = Vec::new();
            for (key, kind) in [
                ("bottlenecks", "bottleneck"),
                ("anomalies", "anomaly"),
                ("forecasts", "forecast"),
                ("alerts", "alert"),
            ] {
                for finding in analysis[key].as_array().into_iter().flatten() {
                    rows.push((
                        simulation_analytics::simulation_id.eq(id),
                        simulation_analytics::kind.eq(kind),
                        simulation_analytics::component_id
                            .eq(finding["component"].as_str().map(str::to_string)),
                        simulation_analytics::payload.eq(finding.clone()),
                    ));
                }
            }
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(simulation_analytics::table)
                    .values(chunk)
                    .execute(conn)
                    .await?;
            }
        }
        if let Some(components) = components {
            self.store_series(conn, id, components).await?;
        }
        // The starter's history.
        diesel::insert_into(simulation_history::table)
            .values((
                simulation_history::user_id.eq(owner.0),
                simulation_history::simulation_id.eq(id),
                simulation_history::action.eq(status),
                simulation_history::detail.eq(serde_json::json!({ "wall_seconds": wall_s })),
            ))
            .execute(conn)
            .await?;
        Ok(Some(owner))
    }

    /// The run's per-window series, bounded (see [`crate::series`]), in
    /// `performance_metrics`.
    async fn store_series(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        id: Uuid,
        components: usize,
    ) -> Result<(), ServiceError> {
        use sdsim_schema::tables::simulation_schema::simulation_windows as w;
        // Read in pages of about `PAGE_CELLS` component windows (a run may hold 2 million,
        // hundreds of megabytes of text), each parsed off the async runtime.
        const PAGE_CELLS: i64 = 50_000;
        let total: i64 = w::table
            .filter(w::simulation_id.eq(id))
            .count()
            .get_result(conn)
            .await?;
        let page = (PAGE_CELLS / (components as i64 + 1)).max(1);
        let mut series = crate::series::Series::new(total as usize, crate::series::MAX_POINTS);
        let mut after = -1i64;
        loop {
            let texts: Vec<(i64, String)> = w::table
                .filter(w::simulation_id.eq(id))
                .filter(w::window_index.gt(after))
                .order(w::window_index.asc())
                .select((w::window_index, w::data))
                .limit(page)
                .load(conn)
                .await?;
            let Some(&(last, _)) = texts.last() else {
                break;
            };
            after = last;
            let (back, points) = tokio::task::spawn_blocking(move || {
                for (_, text) in &texts {
                    if let Ok(window) = serde_json::from_str::<Value>(text) {
                        series.push(&window);
                    }
                }
                let points = series.take_points();
                (series, points)
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("series: {e}")))?;
            series = back;
            insert_points(conn, id, points).await?;
        }
        insert_points(conn, id, series.finish()).await?;
        Ok(())
    }
}

/// Inserts points of run `id`'s series into `performance_metrics`.
async fn insert_points(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
    points: Vec<crate::series::Point>,
) -> Result<(), ServiceError> {
    use sdsim_schema::tables::simulation_schema::performance_metrics as pm;
    for chunk in points.chunks(1_000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|p| {
                (
                    pm::simulation_id.eq(id),
                    pm::component_id.eq(&p.component),
                    pm::window_start.eq(p.start_s),
                    pm::window_end.eq(p.end_s),
                    pm::arrivals.eq(p.arrivals),
                    pm::completions.eq(p.completions),
                    pm::drops.eq(p.drops),
                    pm::errors.eq(p.errors),
                    pm::utilization.eq(p.utilisation),
                    pm::queue_length.eq(p.queue_length),
                    pm::throughput.eq(p.throughput),
                    pm::latency_p50_ms.eq(p.p50_ms),
                    pm::latency_p95_ms.eq(p.p95_ms),
                    pm::latency_p99_ms.eq(p.p99_ms),
                )
            })
            .collect();
        diesel::insert_into(pm::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    Ok(())
}
