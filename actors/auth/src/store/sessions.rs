//! Sessions: start, refresh-token rotation and reuse, listing, revocation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::models::{NewSession, Session};
use sdsim_schema::tables::auth_schema::{refresh_token_uses, sessions, users};
use uuid::Uuid;

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
