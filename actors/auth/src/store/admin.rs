//! Administration: finding users, roles, locks, the operator's bootstrap grant.

use chrono::Utc;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::models::User;
use sdsim_schema::tables::auth_schema::{roles, user_roles, users};
use uuid::Uuid;

use super::users::user_by_email;

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
