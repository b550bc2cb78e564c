//! Who is in a project right now (`collaboration_sessions`: joined, seen, left), and the
//! project's counts (views, forks, runs). Live co-editing builds on this later.

use crate::access::{self, Op};
use crate::core::{Caller, ProjectCore};
use crate::store;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::project_schema::{collaboration_sessions, project_stats};
use uuid::Uuid;

/// A session not seen for this long no longer counts as present.
pub const PRESENT_FOR: chrono::Duration = chrono::Duration::minutes(2);

/// What a project's counts say.
#[derive(Debug, Clone, Default)]
pub struct Analytics {
    pub views: i64,
    pub forks: i64,
    pub runs: i64,
    pub versions: i64,
    pub collaborators_now: i64,
}

/// Which count to add one to.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    View,
    Fork,
}

impl ProjectCore {
    /// `caller` is in the project now (from `gateway_instance`): their session's id, and
    /// everyone present.
    pub async fn join(
        &self,
        caller: Caller,
        id: &str,
        gateway_instance: &str,
    ) -> Result<(Uuid, Vec<Uuid>), ServiceError> {
        let view = self.get(caller, id).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let session: Uuid = diesel::insert_into(collaboration_sessions::table)
            .values((
                collaboration_sessions::project_id.eq(view.row.id),
                collaboration_sessions::user_id.eq(caller.user_id),
                collaboration_sessions::gateway_instance
                    .eq(gateway_instance.chars().take(200).collect::<String>()),
            ))
            .returning(collaboration_sessions::id)
            .get_result(&mut conn)
            .await?;
        let present = self.present(view.row.id).await?;
        Ok((session, present))
    }

    /// `caller` left (their session ends); true when it was open.
    pub async fn leave(
        &self,
        caller: Caller,
        id: &str,
        session: &str,
    ) -> Result<bool, ServiceError> {
        let view = self.get(caller, id).await?;
        let session: Uuid = session.parse().map_err(|_| {
            ServiceError::invalid(
                "collaboration_session_id",
                "collaboration_session_id must be a UUID",
            )
        })?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let n = diesel::update(
            collaboration_sessions::table
                .filter(collaboration_sessions::id.eq(session))
                .filter(collaboration_sessions::project_id.eq(view.row.id))
                .filter(collaboration_sessions::user_id.eq(caller.user_id))
                .filter(collaboration_sessions::left_at.is_null()),
        )
        .set(collaboration_sessions::left_at.eq(Utc::now()))
        .execute(&mut conn)
        .await?;
        Ok(n > 0)
    }

    /// The people present in a project (an open session seen recently).
    pub async fn present(&self, project: Uuid) -> Result<Vec<Uuid>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        Ok(collaboration_sessions::table
            .filter(collaboration_sessions::project_id.eq(project))
            .filter(collaboration_sessions::left_at.is_null())
            .filter(collaboration_sessions::last_seen_at.gt(Utc::now() - PRESENT_FOR))
            .select(collaboration_sessions::user_id)
            .distinct()
            .load(&mut conn)
            .await?)
    }

    /// Who is in project `id` now, for those who may see it.
    pub async fn collaborators(&self, caller: Caller, id: &str) -> Result<Vec<Uuid>, ServiceError> {
        let view = self.get(caller, id).await?;
        self.present(view.row.id).await
    }

    /// Adds one to a count, off the request's path (a failure is logged).
    pub(crate) fn count(&self, project: Uuid, what: Count) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let res = async {
                let mut conn = sdsim_schema::pool::get(&pool).await?;
                let q = diesel::insert_into(project_stats::table);
                match what {
                    Count::View => {
                        q.values((
                            project_stats::project_id.eq(project),
                            project_stats::views.eq(1),
                        ))
                        .on_conflict(project_stats::project_id)
                        .do_update()
                        .set(project_stats::views.eq(project_stats::views + 1))
                        .execute(&mut conn)
                        .await
                    }
                    Count::Fork => {
                        q.values((
                            project_stats::project_id.eq(project),
                            project_stats::forks.eq(1),
                        ))
                        .on_conflict(project_stats::project_id)
                        .do_update()
                        .set(project_stats::forks.eq(project_stats::forks + 1))
                        .execute(&mut conn)
                        .await
                    }
                }
                .map_err(ServiceError::from)
            }
            .await;
            if let Err(e) = res {
                tracing::debug!(error = %e, %project, "project count not added");
            }
        });
    }

    /// The project's counts, for those who may see who has access.
    pub async fn analytics(&self, caller: Caller, id: &str) -> Result<Analytics, ServiceError> {
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::ReadPermissions, id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (views, forks, runs): (i64, i64, i64) = project_stats::table
            .find(view.row.id)
            .select((
                project_stats::views,
                project_stats::forks,
                project_stats::runs,
            ))
            .first(&mut conn)
            .await
            .optional()?
            .unwrap_or_default();
        let versions = store::count_versions(&mut conn, view.row.id).await?;
        drop(conn);
        let collaborators_now = self.present(view.row.id).await?.len() as i64;
        Ok(Analytics {
            views,
            forks,
            runs,
            versions,
            collaborators_now,
        })
    }
}
