//! What a run says about itself: status, results, analysis, history, windows; deletion.

use super::*;

/// The most bytes of windows one page of stored windows carries (its message's limit is
/// 5.25 MiB; one window larger than this still goes, alone).
pub const PAGE_BYTES: i64 = 3 << 20;

impl Runs {
    /// The analysis of a finished run (bottlenecks in words with what to change, anomalies,
    /// forecasts, the alert log), from its report.
    pub async fn analysis(&self, row: RunRow) -> Result<Value, ServiceError> {
        let (_, summary) = self.results(row).await?;
        Ok(summary["analysis"].clone())
    }

    /// The run and, while it runs, where it is.
    pub async fn status(&self, row: RunRow) -> Result<Status, ServiceError> {
        let live = self.live.lock().ok().and_then(|l| {
            l.get(&row.id)
                .and_then(|r| r.progress.lock().ok().map(|p| p.clone()))
        });
        let queue_position = self.position(row.id);
        // Live on another instance: where it is, from the windows stored so far.
        let live = match live {
            None if matches!(row.status.as_str(), "running" | "paused") => {
                let (_, stored) = self.windows(&row, u64::MAX, 1).await?;
                Some(Progress {
                    simulated_s: (stored as f64 * row.window_seconds).min(row.duration_seconds),
                    windows: stored,
                    last: None,
                })
            }
            live => live,
        };
        Ok(Status {
            row,
            live,
            queue_position,
        })
    }

    /// The stored run; who may see or change it is the adapter's to decide.
    /// The design run `id` ran (not part of [`RunRow`]).
    pub async fn design_of(&self, id: Uuid) -> Result<Value, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        Ok(simulations::table
            .find(id)
            .select(simulations::configuration)
            .first(&mut conn)
            .await?)
    }

    pub async fn row(&self, id: &str) -> Result<RunRow, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("no simulation {id}"));
        let run: Uuid = id.parse().map_err(|_| not_found())?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        simulations::table
            .find(run)
            .select(RunRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(not_found)
    }

    /// Runs newest first: those `user` started (of one project or of all), or every run of
    /// `project` when `user` is None; `after` is the page token of the previous page
    /// (`{created_at µs}_{id}`).
    pub async fn history(
        &self,
        user: Option<Uuid>,
        project: Option<Uuid>,
        page_size: i32,
        after: &str,
    ) -> Result<(Vec<RunRow>, String), ServiceError> {
        let size = match page_size {
            0 => 20,
            n @ 1..=100 => i64::from(n),
            _ => {
                return Err(ServiceError::invalid(
                    "page_size",
                    "page_size must be between 1 and 100",
                ))
            }
        };
        let bad_token = || ServiceError::invalid("page_token", "page_token is not one we gave");
        let mut q = simulations::table
            .select(RunRow::as_select())
            .order((simulations::created_at.desc(), simulations::id.desc()))
            .limit(size + 1)
            .into_boxed();
        if let Some(u) = user {
            q = q.filter(simulations::user_id.eq(u));
        }
        if let Some(p) = project {
            q = q.filter(simulations::project_id.eq(p));
        }
        if !after.is_empty() {
            let (micros, id) = after.split_once('_').ok_or_else(bad_token)?;
            let at = micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .ok_or_else(bad_token)?;
            let id: Uuid = id.parse().map_err(|_| bad_token())?;
            q = q.filter(
                simulations::created_at
                    .lt(at)
                    .or(simulations::created_at.eq(at).and(simulations::id.lt(id))),
            );
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut rows: Vec<RunRow> = q.load(&mut conn).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|r| format!("{}_{}", r.created_at.timestamp_micros(), r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    /// Deletes a finished run and, with it, its results; a live one is a conflict (stop it
    /// first), so a run's end is never written to a row that is gone.
    pub async fn delete(&self, row: RunRow) -> Result<(), ServiceError> {
        let id = row.id;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let gone = diesel::delete(
            simulations::table
                .find(row.id)
                .filter(simulations::status.ne_all(["pending", "running", "paused"])),
        )
        .execute(&mut conn)
        .await?;
        if gone == 0 {
            return Err(ServiceError::Conflict {
                code: "still_running".into(),
                field: "simulation_id".into(),
                message: format!("simulation {id} is {}: stop it first", row.status),
            });
        }
        Ok(())
    }

    /// Up to `limit` stored windows of a run from window `from` on (fewer past
    /// [`PAGE_BYTES`]), and how many it has stored in all.
    pub async fn windows(
        &self,
        row: &RunRow,
        from: u64,
        limit: u32,
    ) -> Result<(Vec<(u64, String)>, u64), ServiceError> {
        use sdsim_schema::tables::simulation_schema::simulation_windows as w;
        let limit = match limit {
            0 => 500,
            n => i64::from(n.min(500)),
        };
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // At most PAGE_BYTES of windows (and at least one), counted in PostgreSQL: a page
        // of large windows (2,000 components are about 0.8 MB each) must fit one message.
        #[derive(diesel::QueryableByName)]
        struct Win {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            window_index: i64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            data: String,
        }
        let rows: Vec<Win> = diesel::sql_query(
            "SELECT window_index, data FROM ( \
               SELECT window_index, data, \
                 sum(octet_length(data)) OVER (ORDER BY window_index) - octet_length(data) AS before \
               FROM simulation_schema.simulation_windows \
               WHERE simulation_id = $1 AND window_index >= $2 \
               ORDER BY window_index LIMIT $3) page \
             WHERE before < $4 ORDER BY window_index",
        )
        .bind::<diesel::sql_types::Uuid, _>(row.id)
        .bind::<diesel::sql_types::BigInt, _>(from)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .bind::<diesel::sql_types::BigInt, _>(PAGE_BYTES)
        .load(&mut conn)
        .await?;
        let rows: Vec<(i64, String)> = rows.into_iter().map(|r| (r.window_index, r.data)).collect();
        let stored: Option<i64> = w::table
            .filter(w::simulation_id.eq(row.id))
            .select(diesel::dsl::max(w::window_index))
            .first(&mut conn)
            .await?;
        Ok((
            rows.into_iter().map(|(i, d)| (i as u64, d)).collect(),
            stored.map_or(0, |m| m as u64 + 1),
        ))
    }

    /// The stored report of a finished run.
    pub async fn results(&self, row: RunRow) -> Result<(RunRow, Value), ServiceError> {
        let id = row.id;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let summary: Option<Value> = simulation_results::table
            .find(row.id)
            .select(simulation_results::summary)
            .first(&mut conn)
            .await
            .optional()?;
        let summary = summary.ok_or_else(|| ServiceError::Conflict {
            code: "no_results_yet".into(),
            field: "simulation_id".into(),
            message: format!("simulation {id} has no results ({})", row.status),
        })?;
        Ok((row, summary))
    }
}
