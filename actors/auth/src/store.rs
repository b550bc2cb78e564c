//! auth_schema queries (diesel-async).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::models::{NewSession, NewUser, Session, User};
use sdsim_schema::tables::auth_schema::{
    audit_log, permissions, refresh_token_uses, role_permissions, roles, sessions, user_roles,
    users,
};
use uuid::Uuid;

/// The role every new account gets.
pub const DEFAULT_ROLE: &str = "member";

/// Inserts a user and gives them the default role, atomically.
pub async fn create_user(
    conn: &mut AsyncPgConnection,
    new: NewUser<'_>,
) -> Result<User, ServiceError> {
    let result = conn
        .transaction::<User, DieselError, _>(async |conn| {
            let user: User = diesel::insert_into(users::table)
                .values(&new)
                .returning(User::as_returning())
                .get_result(conn)
                .await?;
            let role_id: i32 = roles::table
                .filter(roles::name.eq(DEFAULT_ROLE))
                .select(roles::id)
                .first(conn)
                .await?;
            diesel::insert_into(user_roles::table)
                .values((
                    user_roles::user_id.eq(user.id),
                    user_roles::role_id.eq(role_id),
                ))
                .execute(conn)
                .await?;
            Ok(user)
        })
        .await;
    match result {
        Ok(u) => Ok(u),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(ServiceError::Conflict {
                code: "email_taken".into(),
                field: "email".into(),
                message: "an account with this email already exists".into(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn user_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<User>, ServiceError> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn user_by_id(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<User>, ServiceError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The user's role names and the union of their permissions, both sorted.
pub async fn roles_and_permissions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<(Vec<String>, Vec<String>), ServiceError> {
    let role_names: Vec<String> = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .select(roles::name)
        .order(roles::name)
        .load(conn)
        .await?;
    let perms: Vec<String> = user_roles::table
        .inner_join(roles::table.inner_join(role_permissions::table.inner_join(permissions::table)))
        .filter(user_roles::user_id.eq(user_id))
        .select(permissions::name)
        .distinct()
        .order(permissions::name)
        .load(conn)
        .await?;
    Ok((role_names, perms))
}

/// Records a successful login: a new session and the user's last-login time.
pub async fn start_session(
    conn: &mut AsyncPgConnection,
    new: NewSession<'_>,
) -> Result<Session, ServiceError> {
    let user_id = new.user_id;
    let session = conn
        .transaction::<Session, DieselError, _>(async |conn| {
            let s: Session = diesel::insert_into(sessions::table)
                .values(&new)
                .returning(Session::as_returning())
                .get_result(conn)
                .await?;
            diesel::update(users::table.find(user_id))
                .set((
                    users::last_login_at.eq(Some(s.created_at)),
                    users::failed_logins.eq(0),
                ))
                .execute(conn)
                .await?;
            Ok(s)
        })
        .await?;
    Ok(session)
}

pub async fn session_by_id(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Session>, ServiceError> {
    Ok(sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// What presenting a refresh token did.
#[derive(Debug)]
pub enum Rotation {
    /// The token was current: the session now holds the new one.
    Rotated(Session),
    /// The token had already been rotated away: it was stolen or replayed. The session (the
    /// whole token family) has been revoked with reason `refresh_token_reuse`.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Unknown, or its session is revoked or expired.
    Invalid,
}

/// Swaps a session's refresh token for a new one if the presented one is current, and
/// remembers the old one; a token presented a second time revokes its session. Atomic: of
/// two concurrent uses of one token, exactly one rotates.
pub async fn rotate_refresh(
    conn: &mut AsyncPgConnection,
    old_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<Rotation, ServiceError> {
    let old = old_hash.to_string();
    let new = new_hash.to_string();
    Ok(conn
        .transaction::<Rotation, DieselError, _>(async move |conn| {
            let rotated: Option<Session> = diesel::update(
                sessions::table
                    .filter(sessions::refresh_token_hash.eq(&old))
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(now)),
            )
            .set((
                sessions::refresh_token_hash.eq(&new),
                sessions::last_used_at.eq(now),
            ))
            .returning(Session::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if let Some(s) = rotated {
                diesel::insert_into(refresh_token_uses::table)
                    .values((
                        refresh_token_uses::token_hash.eq(&old),
                        refresh_token_uses::session_id.eq(s.id),
                        refresh_token_uses::used_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                return Ok(Rotation::Rotated(s));
            }
            let used: Option<Uuid> = refresh_token_uses::table
                .find(&old)
                .select(refresh_token_uses::session_id)
                .first(conn)
                .await
                .optional()?;
            let Some(session_id) = used else {
                return Ok(Rotation::Invalid);
            };
            let user_id: Uuid = diesel::update(sessions::table.find(session_id))
                .set((
                    sessions::revoked_at.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                    >("COALESCE(revoked_at, now())")),
                    sessions::revoked_reason.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Text>,
                    >(
                        "COALESCE(revoked_reason, 'refresh_token_reuse')",
                    )),
                ))
                .returning(sessions::user_id)
                .get_result(conn)
                .await?;
            Ok(Rotation::Reused {
                session_id,
                user_id,
            })
        })
        .await?)
}

/// Updates the given profile fields; `company: Some(None)` clears it.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<Option<String>>,
) -> Result<User, ServiceError> {
    let current = user_by_id(conn, user_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
    Ok(diesel::update(users::table.find(user_id))
        .set((
            users::first_name.eq(first_name.unwrap_or(current.first_name)),
            users::last_name.eq(last_name.unwrap_or(current.last_name)),
            users::company.eq(company.unwrap_or(current.company)),
            users::updated_at.eq(Utc::now()),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await?)
}

/// Sets a new password hash and revokes every other live session of the user, atomically;
/// returns the revoked session ids.
pub async fn change_password(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    keep_session: Uuid,
    new_hash: &str,
) -> Result<Vec<Uuid>, ServiceError> {
    let hash = new_hash.to_string();
    Ok(conn
        .transaction::<Vec<Uuid>, DieselError, _>(async move |conn| {
            diesel::update(users::table.find(user_id))
                .set((
                    users::password_hash.eq(&hash),
                    users::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .filter(sessions::id.ne(keep_session))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set((
                sessions::revoked_at.eq(Some(Utc::now())),
                sessions::revoked_reason.eq(Some("password_changed")),
            ))
            .returning(sessions::id)
            .get_results(conn)
            .await
        })
        .await?)
}

/// The live sessions of a user, most recently used first.
pub async fn live_sessions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, ServiceError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .order(sessions::last_used_at.desc())
        .limit(200)
        .select(Session::as_select())
        .load(conn)
        .await?)
}

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

/// Revokes one session (if live); returns how many were revoked.
pub async fn revoke_session(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
) -> Result<usize, ServiceError> {
    Ok(diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Some(Utc::now())),
        sessions::revoked_reason.eq(Some(reason)),
    ))
    .execute(conn)
    .await?)
}

/// Revokes every live session of a user; returns their ids.
pub async fn revoke_all_sessions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    reason: &str,
) -> Result<Vec<Uuid>, ServiceError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Some(Utc::now())),
        sessions::revoked_reason.eq(Some(reason)),
    ))
    .returning(sessions::id)
    .get_results(conn)
    .await?)
}

// ---------------------------------------------------------------------------------------
// Administration

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Users whose e-mail or name contains `query` (all when empty), newest first, with the
/// total count of matches.
pub async fn list_users(
    conn: &mut AsyncPgConnection,
    query: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<User>, i64), ServiceError> {
    let pattern = like_pattern(query.trim());
    let filter = users::email
        .ilike(pattern.clone())
        .or(users::first_name.ilike(pattern.clone()))
        .or(users::last_name.ilike(pattern));
    let total: i64 = users::table
        .filter(filter.clone())
        .count()
        .get_result(conn)
        .await?;
    let list = users::table
        .filter(filter)
        .order((users::created_at.desc(), users::id))
        .limit(limit)
        .offset(offset)
        .select(User::as_select())
        .load(conn)
        .await?;
    Ok((list, total))
}

/// Gives `user_id` the role `role`; false if they had it. NotFound for an unknown role.
pub async fn add_role(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    role: &str,
    granted_by: Option<Uuid>,
) -> Result<bool, ServiceError> {
    let role_id: i32 = roles::table
        .filter(roles::name.eq(role))
        .select(roles::id)
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| ServiceError::invalid("role", format!("there is no role named {role:?}")))?;
    let n = diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id),
            user_roles::role_id.eq(role_id),
            user_roles::granted_by.eq(granted_by),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Takes `role` from `user_id`; false if they did not have it. Refuses to remove the last
/// active admin (nobody could administer the system any more).
pub async fn remove_role(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    role: &str,
) -> Result<bool, ServiceError> {
    let role = role.to_string();
    let res = conn
        .transaction::<Result<bool, ServiceError>, DieselError, _>(async move |conn| {
            // Serialise admin removals so two concurrent ones cannot both pass the check.
            diesel::sql_query("SELECT pg_advisory_xact_lock(7302010)")
                .execute(conn)
                .await?;
            let Some(role_id) = roles::table
                .filter(roles::name.eq(&role))
                .select(roles::id)
                .first::<i32>(conn)
                .await
                .optional()?
            else {
                return Ok(Err(ServiceError::invalid(
                    "role",
                    format!("there is no role named {role:?}"),
                )));
            };
            if role == "admin" {
                let admins: i64 = user_roles::table
                    .inner_join(users::table.on(users::id.eq(user_roles::user_id)))
                    .filter(user_roles::role_id.eq(role_id))
                    .filter(users::is_active.eq(true))
                    .filter(users::id.ne(user_id))
                    .count()
                    .get_result(conn)
                    .await?;
                if admins == 0 {
                    return Ok(Err(ServiceError::Conflict {
                        code: "last_admin".into(),
                        field: "role".into(),
                        message: "this is the last active admin; make someone else admin first"
                            .into(),
                    }));
                }
            }
            let n = diesel::delete(
                user_roles::table
                    .filter(user_roles::user_id.eq(user_id))
                    .filter(user_roles::role_id.eq(role_id)),
            )
            .execute(conn)
            .await?;
            Ok(Ok(n > 0))
        })
        .await?;
    res
}

/// Enables or disables an account.
pub async fn set_active(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    active: bool,
) -> Result<User, ServiceError> {
    diesel::update(users::table.find(user_id))
        .set((
            users::is_active.eq(active),
            users::updated_at.eq(Utc::now()),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .ok_or_else(|| ServiceError::NotFound("no such user".into()))
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

/// Grants a role by e-mail (operator bootstrap: `sdsim admin grant-role`).
pub async fn grant_role_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
    role: &str,
) -> Result<bool, ServiceError> {
    let user = user_by_email(conn, &email.trim().to_lowercase())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no account with e-mail {email}")))?;
    add_role(conn, user.id, role, None).await
}

// ---------------------------------------------------------------------------------------
// E-mail tokens (verification, password reset)

use sdsim_schema::tables::auth_schema::email_tokens;

/// Stores the hash of a new single-use token.
pub async fn create_email_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    user_id: Uuid,
    purpose: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::token_hash.eq(token_hash),
            email_tokens::user_id.eq(user_id),
            email_tokens::purpose.eq(purpose),
            email_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The user of a token that is unused and unexpired, without using it.
pub async fn peek_email_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, ServiceError> {
    Ok(email_tokens::table
        .find(token_hash)
        .filter(email_tokens::purpose.eq(purpose))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(now))
        .select(email_tokens::user_id)
        .first(conn)
        .await
        .optional()?)
}

/// Marks a usable token (unused, unexpired, of `purpose`) used; its user, or None.
async fn use_email_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DieselError> {
    diesel::update(
        email_tokens::table
            .find(token_hash)
            .filter(email_tokens::purpose.eq(purpose))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(now)),
    )
    .set(email_tokens::used_at.eq(Some(now)))
    .returning(email_tokens::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Uses a verification token and marks the address verified; the user, or None if the
/// token is unknown, used or expired.
pub async fn verify_email_with_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, ServiceError> {
    let hash = token_hash.to_string();
    Ok(conn
        .transaction::<Option<Uuid>, DieselError, _>(async move |conn| {
            let user = use_email_token(conn, &hash, "verify_email", now).await?;
            if let Some(u) = user {
                diesel::update(users::table.find(u))
                    .set((users::is_verified.eq(true), users::updated_at.eq(now)))
                    .execute(conn)
                    .await?;
            }
            Ok(user)
        })
        .await?)
}

/// Uses a reset token, sets the new password hash and ends every session of the user, in
/// one transaction; the user and the ended sessions, or None if the token is not usable.
pub async fn reset_password_with_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Vec<Uuid>)>, ServiceError> {
    let (hash, new_hash) = (token_hash.to_string(), new_hash.to_string());
    Ok(conn
        .transaction::<Option<(Uuid, Vec<Uuid>)>, DieselError, _>(async move |conn| {
            let user = use_email_token(conn, &hash, "reset_password", now).await?;
            let Some(u) = user else { return Ok(None) };
            diesel::update(users::table.find(u))
                .set((
                    users::password_hash.eq(&new_hash),
                    users::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            // Other reset links of the user die with this one.
            diesel::update(
                email_tokens::table
                    .filter(email_tokens::user_id.eq(u))
                    .filter(email_tokens::purpose.eq("reset_password"))
                    .filter(email_tokens::used_at.is_null()),
            )
            .set(email_tokens::used_at.eq(Some(now)))
            .execute(conn)
            .await?;
            let ended: Vec<Uuid> = diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(u))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set((
                sessions::revoked_at.eq(Some(now)),
                sessions::revoked_reason.eq(Some("password_reset")),
            ))
            .returning(sessions::id)
            .get_results(conn)
            .await?;
            Ok(Some((u, ended)))
        })
        .await?)
}
