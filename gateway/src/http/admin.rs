//! `/api/admin/*`: user administration and the audit log (permissions `admin:users` and
//! `admin:roles`, checked by auth).

use super::extract::{AuthUser, ClientOrigin};
use super::json_resource;
use super::views::{AuditBody, AuditView, SessionsEnded, UserBody, UsersBody};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::{web, HttpRequest, HttpResponse};
use sdsim_protocols::proto::auth as pb;
use serde::Deserialize;

/// The routes of this area in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(users, add_role, remove_role, end_sessions, lock, audit),
    components(schemas(RoleBody, UserBody, UsersBody, AuditView, AuditBody, SessionsEnded))
)]
pub(crate) struct Api;

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/api/admin/users").route(web::get().to(users)))
        .service(json_resource("/api/admin/users/{user_id}/roles").route(web::post().to(add_role)))
        .service(
            json_resource("/api/admin/users/{user_id}/roles/{role}")
                .route(web::delete().to(remove_role)),
        )
        .service(
            json_resource("/api/admin/users/{user_id}/sessions")
                .route(web::delete().to(end_sessions)),
        )
        // After the fixed sub-paths above: actix matches resources in order.
        .service(json_resource("/api/admin/users/{user_id}/{action}").route(web::post().to(lock)))
        .service(json_resource("/api/admin/audit").route(web::get().to(audit)));
}

/// Which users, and which page of them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsersQuery {
    /// Part of an e-mail address or name; empty: every user.
    #[serde(default)]
    query: String,
    /// Page size, 1 to 200 (0 or absent: 50).
    #[serde(default)]
    limit: i32,
    /// How many matching users to skip.
    #[serde(default)]
    offset: i32,
}

/// Finds users (permission `admin:users`).
#[utoipa::path(get, path = "/api/admin/users", tag = "operations", params(UsersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of users and how many match", body = crate::http::views::UsersBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:users` permission", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`limit` or `offset` is out of range, or the query string is malformed", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn users(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::AdminListUsersRequest {
        access_token: user.token,
        query: q.query,
        limit: q.limit,
        offset: q.offset,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminListUsers", admin_list_users, call).await?;
    Ok(HttpResponse::Ok().json(UsersBody {
        users: res.users.into_iter().map(Into::into).collect(),
        total: res.total,
    }))
}

/// The role to assign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RoleBody {
    role: String,
}

async fn change_role(
    state: &GatewayState,
    user: AuthUser,
    origin: ClientOrigin,
    user_id: String,
    role: String,
    remove: bool,
) -> Result<HttpResponse, ApiError> {
    let call = pb::AdminChangeRoleRequest {
        access_token: user.token,
        user_id,
        role,
        remove,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let changed = rpc!(up, auth, "AdminChangeRole", admin_change_role, call).await?;
    Ok(HttpResponse::Ok().json(UserBody::from_pb(Some(changed))))
}

/// Assigns a role to a user (permission `admin:roles`); assigning one they have changes
/// nothing.
#[utoipa::path(post, path = "/api/admin/users/{user_id}/roles", tag = "operations",
    params(("user_id" = String, Path, description = "The user's id (a UUID)")),
    request_body = RoleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user with their roles", body = crate::http::views::UserBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:roles` permission", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`user_id` is not a UUID, or there is no such role (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn add_role(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    change_role(&state, user, origin, path.into_inner(), body.0.role, false).await
}

/// Takes a role from a user (permission `admin:roles`); the last active admin keeps theirs.
#[utoipa::path(delete, path = "/api/admin/users/{user_id}/roles/{role}", tag = "operations",
    params(
        ("user_id" = String, Path, description = "The user's id (a UUID)"),
        ("role" = String, Path, description = "The role's name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user with their roles", body = crate::http::views::UserBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:roles` permission", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "This is the last active admin (`last_admin`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`user_id` is not a UUID, or there is no such role", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn remove_role(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, role) = path.into_inner();
    change_role(&state, user, origin, user_id, role, true).await
}

/// Locks a user's account (ending every session of theirs) or unlocks it (permission
/// `admin:users`).
#[utoipa::path(post, path = "/api/admin/users/{user_id}/{action}", tag = "operations",
    params(
        ("user_id" = String, Path, description = "The user's id (a UUID)"),
        ("action" = String, Path, description = "`lock` or `unlock`"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user (`is_active` false when locked)", body = crate::http::views::UserBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:users` permission", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such user, or `action` is neither `lock` nor `unlock` (`route_not_found`)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "An admin cannot lock their own account (`cannot_lock_self`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`user_id` is not a UUID", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn lock(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    user: AuthUser,
    origin: ClientOrigin,
) -> Result<HttpResponse, ApiError> {
    let (user_id, action) = path.into_inner();
    let locked = match action.as_str() {
        "lock" => true,
        "unlock" => false,
        _ => return Err(ApiError::route_not_found(req.path())),
    };
    let call = pb::AdminSetLockedRequest {
        access_token: user.token,
        user_id,
        locked,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let changed = rpc!(up, auth, "AdminSetLocked", admin_set_locked, call).await?;
    Ok(HttpResponse::Ok().json(UserBody::from_pb(Some(changed))))
}

/// Ends every session of a user (permission `admin:users`).
#[utoipa::path(delete, path = "/api/admin/users/{user_id}/sessions", tag = "operations",
    params(("user_id" = String, Path, description = "The user's id (a UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many sessions ended", body = crate::http::views::SessionsEnded),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:users` permission", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such user", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`user_id` is not a UUID", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn end_sessions(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::AdminEndSessionsRequest {
        access_token: user.token,
        user_id: path.into_inner(),
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminEndSessions", admin_end_sessions, call).await?;
    Ok(HttpResponse::Ok().json(SessionsEnded {
        sessions_ended: res.sessions_ended.into(),
    }))
}

/// Which audit entries, and which page of them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only this user's entries (a UUID); empty: everyone's.
    #[serde(default)]
    user_id: String,
    /// Only this event (e.g. `account.locked`); empty: every event.
    #[serde(default)]
    event: String,
    /// Only entries older than this id (the last `id` of the previous page); 0: the newest.
    #[serde(default)]
    before_id: i64,
    /// Page size, 1 to 200 (0 or absent: 50).
    #[serde(default)]
    limit: i32,
}

/// The audit log, newest first (permission `admin:users`).
#[utoipa::path(get, path = "/api/admin/audit", tag = "operations", params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of entries", body = crate::http::views::AuditBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The user lacks the `admin:users` permission", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`user_id` is not a UUID, `limit` is out of range, or the query string is malformed", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn audit(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::AdminAuditLogRequest {
        access_token: user.token,
        user_id: q.user_id,
        event: q.event,
        before_id: q.before_id,
        limit: q.limit,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminAuditLog", admin_audit_log, call).await?;
    Ok(HttpResponse::Ok().json(AuditBody {
        entries: res.entries.into_iter().map(Into::into).collect(),
    }))
}
