//! The history of a project: its versions, the diff of two, rollback, and how a save
//! becomes a version (autosaves replace each other; named saves stay).

use crate::core::{Caller, Changes, ProjectCore, ProjectView, MAX_PAGE};
use crate::diff::{self, DesignDiff};
use crate::store::{self, ProjectRow, VersionRow};
use crate::ProjectSettings;
use chrono::Utc;
use sdsim_runtime::error::ServiceError;
use uuid::Uuid;

impl ProjectCore {
    pub async fn versions(
        &self,
        caller: Caller,
        id: &str,
        before: i32,
        page_size: i32,
    ) -> Result<(Vec<VersionRow>, i32), ServiceError> {
        let view = self.get(caller, id).await?;
        let limit = match page_size {
            0 => 50,
            n if n < 0 || i64::from(n) > MAX_PAGE => {
                return Err(ServiceError::invalid(
                    "page_size",
                    format!("page_size must be between 1 and {MAX_PAGE}"),
                ))
            }
            n => i64::from(n),
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut rows = store::versions(
            &mut conn,
            view.row.id,
            (before > 0).then_some(before),
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map_or(0, |r| r.version)
        } else {
            0
        };
        Ok((rows, next))
    }

    pub async fn version(
        &self,
        caller: Caller,
        id: &str,
        version: i32,
    ) -> Result<VersionRow, ServiceError> {
        let view = self.get(caller, id).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::version(&mut conn, view.row.id, version)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("project {id} has no version {version}")))
    }

    pub async fn diff(
        &self,
        caller: Caller,
        id: &str,
        from: i32,
        to: i32,
    ) -> Result<DesignDiff, ServiceError> {
        let a = self.version(caller, id, from).await?;
        let b = self.version(caller, id, to).await?;
        Ok(diff::diff(
            &a.configuration,
            &a.layout,
            &b.configuration,
            &b.layout,
        ))
    }

    /// A new version equal to version `to` (history is never rewritten).
    pub async fn rollback(
        &self,
        caller: Caller,
        id: &str,
        to: i32,
        expected_version: i32,
    ) -> Result<ProjectView, ServiceError> {
        let old = self.version(caller, id, to).await?;
        self.update(
            caller,
            id,
            Changes {
                design: Some(old.configuration.to_string()),
                layout: Some(old.layout.to_string()),
                expected_version,
                message: format!("rolled back to version {to}"),
                named: true,
                ..Changes::default()
            },
        )
        .await
    }
}

/// Writes the version row of `row`'s new design: an unnamed save by the same person
/// within `autosave_window_s` of the previous unnamed one replaces it (autosaves do not
/// bury the history); past `max_versions` the save is refused.
pub(crate) async fn save_version(
    conn: &mut diesel_async::AsyncPgConnection,
    settings: &ProjectSettings,
    row: &ProjectRow,
    author: Uuid,
    message: &str,
    named: bool,
) -> Result<(), ServiceError> {
    if !named {
        if let Some(last) = store::latest_version(conn, row.id).await? {
            let window = chrono::Duration::seconds(settings.autosave_window_s as i64);
            if !last.named && last.author_id == author && Utc::now() - last.updated_at < window {
                return store::replace_version(
                    conn,
                    row.id,
                    last.version,
                    row.version,
                    &row.configuration,
                    &row.layout,
                )
                .await;
            }
        }
    }
    let count = store::count_versions(conn, row.id).await?;
    if count >= i64::from(settings.max_versions) {
        return Err(ServiceError::Conflict {
            code: "version_limit".into(),
            field: "design".into(),
            message: format!(
                "project {} has {count} versions, the most it may keep; nothing was written",
                row.id
            ),
        });
    }
    store::insert_version(
        conn,
        row.id,
        row.version,
        &row.configuration,
        &row.layout,
        author,
        message,
        named,
    )
    .await
}
