//! Users: accounts, their roles and permissions, profile and password changes.

use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::models::{NewUser, User};
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

/// The user and their role names (sorted), in one round trip: both queries are sent before
/// either answer is read (diesel-async pipelines futures polled together on one connection).
pub async fn user_with_roles(
    conn: &AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(User, Vec<String>)>, ServiceError> {
    let user = users::table
        .find(id)
        .select(User::as_select())
        .first(&mut &*conn);
    let names = user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(id))
        .select(roles::name)
        .order(roles::name)
        .load(&mut &*conn);
    let (user, names) = tokio::join!(user, names);
    match user.optional()? {
        Some(u) => Ok(Some((u, names?))),
        None => Ok(None),
    }
}

/// The user's role names and the union of their permissions, both sorted.
pub async fn roles_and_permissions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<(Vec<String>, Vec<String>), ServiceError> {
    Ok((
        roles(conn, user_id).await?,
        permissions(conn, user_id).await?,
    ))
}

/// The user's role names, sorted.
pub async fn roles(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<String>, ServiceError> {
    Ok(user_roles::table
        .inner_join(roles::table)
        .filter(user_roles::user_id.eq(user_id))
        .select(roles::name)
        .order(roles::name)
        .load(conn)
        .await?)
}

/// What the user's roles allow, sorted, each once.
pub async fn permissions(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<String>, ServiceError> {
    Ok(user_roles::table
        .inner_join(roles::table.inner_join(role_permissions::table.inner_join(permissions::table)))
        .filter(user_roles::user_id.eq(user_id))
        .select(permissions::name)
        .distinct()
        .order(permissions::name)
        .load(conn)
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
