//! auth_schema queries (diesel-async).

use crate::error::ServiceError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_schema::models::{NewSession, NewUser, Session, User};
use sdsim_schema::tables::auth_schema::{
    permissions, role_permissions, roles, sessions, user_roles, users,
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

/// Swaps a session's refresh token for a new one, if the presented one is current.
/// Returns the session, or `None` if the token is unknown, revoked or expired.
pub async fn rotate_refresh(
    conn: &mut AsyncPgConnection,
    old_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, ServiceError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::refresh_token_hash.eq(old_hash))
            .filter(sessions::revoked_at.is_null())
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::refresh_token_hash.eq(new_hash),
        sessions::last_used_at.eq(now),
    ))
    .returning(Session::as_returning())
    .get_result(conn)
    .await
    .optional()?)
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
