//! User administration: list and find users, assign and remove roles, lock and unlock
//! accounts, end a user's sessions, read the audit log. Every operation needs a valid access
//! token whose user holds the permission (`admin:users`, or `admin:roles` for roles), is
//! written to the audit log, and role changes publish `auth:events:permission_changed`.

use crate::core::{AuthCore, Origin, Profile};
use crate::store::{self, Audit, AuditRow};
use chrono::Utc;
use sdsim_protocols::events::{kinds, Envelope, EventData, PermissionChangedEvent, RoleChange};
use sdsim_runtime::error::ServiceError;
use std::sync::Arc;
use uuid::Uuid;

/// The largest page of users or audit entries.
pub const MAX_PAGE: i64 = 200;

#[derive(Debug, Clone)]
pub enum AdminOp {
    ListUsers {
        query: String,
        limit: i64,
        offset: i64,
    },
    AddRole {
        user_id: Uuid,
        role: String,
    },
    RemoveRole {
        user_id: Uuid,
        role: String,
    },
    SetLocked {
        user_id: Uuid,
        locked: bool,
    },
    EndSessions {
        user_id: Uuid,
    },
    Audit {
        user_id: Option<Uuid>,
        event: Option<String>,
        before_id: Option<i64>,
        limit: i64,
    },
}

#[derive(Debug)]
pub enum AdminOutcome {
    Users { users: Vec<Profile>, total: i64 },
    User(Profile),
    SessionsEnded(usize),
    Audit(Vec<AuditRow>),
}

#[derive(Debug)]
pub struct Admin {
    pub access_token: String,
    pub op: AdminOp,
    pub origin: Origin,
}

async fn profile_of(
    conn: &mut diesel_async::AsyncPgConnection,
    user: sdsim_schema::models::User,
) -> Result<Profile, ServiceError> {
    let roles = store::roles(conn, user.id).await?;
    Ok(Profile::new(user, roles))
}

fn page(limit: i64, field: &str) -> Result<i64, ServiceError> {
    match limit {
        0 => Ok(50),
        1..=MAX_PAGE => Ok(limit),
        _ => Err(ServiceError::invalid(
            field,
            format!("{field} must be between 1 and {MAX_PAGE} (0 for the default of 50)"),
        )),
    }
}

impl AuthCore {
    pub async fn admin(self: Arc<Self>, m: Admin) -> Result<AdminOutcome, ServiceError> {
        let caller = self.clone().validate(&m.access_token).await?;
        let needed = match m.op {
            AdminOp::AddRole { .. } | AdminOp::RemoveRole { .. } => "admin:roles",
            _ => "admin:users",
        };
        if !caller.permissions.iter().any(|p| p == needed) {
            return Err(ServiceError::Forbidden(format!(
                "this needs the {needed} permission"
            )));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let audit = |event: &'static str, user: Uuid, detail: serde_json::Value| Audit {
            event,
            user_id: Some(user),
            session_id: Some(caller.session_id),
            ip: &m.origin.ip,
            user_agent: &m.origin.user_agent,
            detail: serde_json::json!({ "by": caller.user_id.to_string(), "detail": detail }),
        };
        match m.op {
            AdminOp::ListUsers {
                query,
                limit,
                offset,
            } => {
                if offset < 0 {
                    return Err(ServiceError::invalid(
                        "offset",
                        "offset must not be negative",
                    ));
                }
                let (users, total) =
                    store::list_users(&mut conn, &query, page(limit, "limit")?, offset).await?;
                let mut out = Vec::with_capacity(users.len());
                for u in users {
                    out.push(profile_of(&mut conn, u).await?);
                }
                Ok(AdminOutcome::Users { users: out, total })
            }
            AdminOp::AddRole { user_id, role } | AdminOp::RemoveRole { user_id, role }
                if store::user_by_id(&mut conn, user_id).await?.is_none() =>
            {
                let _ = role;
                Err(ServiceError::NotFound(format!("no user {user_id}")))
            }
            AdminOp::AddRole { user_id, role } => {
                let changed =
                    store::add_role(&mut conn, user_id, &role, Some(caller.user_id)).await?;
                self.role_changed(&mut conn, changed, "role.assigned", user_id, &role, &audit)
                    .await?;
                let user = store::user_by_id(&mut conn, user_id)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
                Ok(AdminOutcome::User(profile_of(&mut conn, user).await?))
            }
            AdminOp::RemoveRole { user_id, role } => {
                let changed = store::remove_role(&mut conn, user_id, &role).await?;
                self.role_changed(&mut conn, changed, "role.removed", user_id, &role, &audit)
                    .await?;
                let user = store::user_by_id(&mut conn, user_id)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
                Ok(AdminOutcome::User(profile_of(&mut conn, user).await?))
            }
            AdminOp::SetLocked { user_id, locked } => {
                if locked && user_id == caller.user_id {
                    return Err(ServiceError::Conflict {
                        code: "cannot_lock_self".into(),
                        field: "user_id".into(),
                        message: "you cannot lock your own account".into(),
                    });
                }
                let user = store::set_active(&mut conn, user_id, !locked).await?;
                let ended = if locked {
                    store::revoke_all_sessions(&mut conn, user_id, "account_locked").await?
                } else {
                    Vec::new()
                };
                // Refused everywhere before anything else can fail: the sessions are ended.
                self.sessions_ended(user_id, &ended, "account_locked").await;
                let event = if locked {
                    "account.locked"
                } else {
                    "account.unlocked"
                };
                store::audit(
                    &mut conn,
                    audit(
                        event,
                        user_id,
                        serde_json::json!({ "sessions_ended": ended.len() }),
                    ),
                )
                .await?;
                drop(conn);
                let mut conn = sdsim_schema::pool::get(&self.pool).await?;
                Ok(AdminOutcome::User(profile_of(&mut conn, user).await?))
            }
            AdminOp::EndSessions { user_id } => {
                if store::user_by_id(&mut conn, user_id).await?.is_none() {
                    return Err(ServiceError::NotFound(format!("no user {user_id}")));
                }
                let ended =
                    store::revoke_all_sessions(&mut conn, user_id, "ended_by_admin").await?;
                self.sessions_ended(user_id, &ended, "ended_by_admin").await;
                store::audit(
                    &mut conn,
                    audit(
                        "sessions.ended_by_admin",
                        user_id,
                        serde_json::json!({ "sessions_ended": ended.len() }),
                    ),
                )
                .await?;
                Ok(AdminOutcome::SessionsEnded(ended.len()))
            }
            AdminOp::Audit {
                user_id,
                event,
                before_id,
                limit,
            } => {
                let rows = store::audit_entries(
                    &mut conn,
                    user_id,
                    event.as_deref(),
                    before_id,
                    page(limit, "limit")?,
                )
                .await?;
                Ok(AdminOutcome::Audit(rows))
            }
        }
    }

    async fn role_changed<'o>(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        changed: bool,
        event: &'static str,
        user_id: Uuid,
        role: &str,
        audit: &impl Fn(&'static str, Uuid, serde_json::Value) -> Audit<'o>,
    ) -> Result<(), ServiceError> {
        if !changed {
            return Ok(());
        }
        self.validated.clear(); // permissions are read again at the next validation
        store::audit(
            conn,
            audit(event, user_id, serde_json::json!({ "role": role })),
        )
        .await?;
        let env = Envelope::new(
            kinds::AUTH_PERMISSION_CHANGED,
            "auth",
            Some(user_id.to_string()),
            PermissionChangedEvent {
                user_id: user_id.to_string(),
                role: role.to_string(),
                change: if event == "role.assigned" {
                    RoleChange::Assigned
                } else {
                    RoleChange::Removed
                },
                at: Utc::now(),
            }
            .data(),
        );
        self.events
            .publish(self.ns.auth_events("permission_changed"), env.clone());
        self.events
            .publish(self.ns.user_notifications(&user_id.to_string()), env);
        Ok(())
    }
}
