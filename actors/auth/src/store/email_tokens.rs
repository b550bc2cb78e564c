//! E-mail tokens (verification, password reset): single use, stored as hashes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::auth_schema::{sessions, users};
use uuid::Uuid;

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
