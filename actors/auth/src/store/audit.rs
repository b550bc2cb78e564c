//! The security audit log: writing events, counting failed logins, reading entries.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::auth_schema::{audit_log, users};
use uuid::Uuid;

/// One security event for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Audit<'a> {
    pub event: &'a str,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub detail: serde_json::Value,
}

/// Appends to the audit log.
pub async fn audit(conn: &mut AsyncPgConnection, a: Audit<'_>) -> Result<(), ServiceError> {
    let detail = if a.detail.is_null() {
        serde_json::json!({})
    } else {
        a.detail
    };
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::event.eq(a.event),
            audit_log::user_id.eq(a.user_id),
            audit_log::session_id.eq(a.session_id),
            audit_log::ip.eq(a.ip),
            audit_log::user_agent.eq(a.user_agent),
            audit_log::detail.eq(detail),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a failed password for a known account (kept for admins and the audit trail;
/// throttling itself is in Redis so that it holds for unknown e-mails too).
pub async fn count_failed_login(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<i32, ServiceError> {
    Ok(diesel::update(users::table.find(user_id))
        .set(users::failed_logins.eq(users::failed_logins + 1))
        .returning(users::failed_logins)
        .get_result(conn)
        .await?)
}

/// One audit-log row.
#[derive(Debug, Clone, Queryable)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub event: String,
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub ip: String,
    pub user_agent: String,
    pub detail: serde_json::Value,
}

/// The newest audit entries, optionally of one user and/or one event, before `before_id`.
pub async fn audit_entries(
    conn: &mut AsyncPgConnection,
    user_id: Option<Uuid>,
    event: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, ServiceError> {
    let mut q = audit_log::table.into_boxed();
    if let Some(u) = user_id {
        q = q.filter(audit_log::user_id.eq(u));
    }
    if let Some(e) = event {
        q = q.filter(audit_log::event.eq(e.to_string()));
    }
    if let Some(b) = before_id {
        q = q.filter(audit_log::id.lt(b));
    }
    Ok(q.order(audit_log::id.desc())
        .limit(limit)
        .select((
            audit_log::id,
            audit_log::occurred_at,
            audit_log::event,
            audit_log::user_id,
            audit_log::session_id,
            audit_log::ip,
            audit_log::user_agent,
            audit_log::detail,
        ))
        .load(conn)
        .await?)
}
