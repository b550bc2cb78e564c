//! `/api/admin/*`: user administration and the audit log (permissions `admin:users` and
//! `admin:roles`, checked by auth).

use super::extract::{AuthUser, ClientOrigin};
use super::json_resource;
use super::views::{AuditBody, SessionsEnded, UserBody, UsersBody};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::{web, HttpRequest, HttpResponse};
use sdsim_protocols::proto::auth as pb;
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
struct UsersQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    limit: i32,
    #[serde(default)]
    offset: i32,
}

async fn users(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<UsersQuery>,
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

#[derive(Debug, Deserialize)]
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

async fn add_role(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    path: web::Path<String>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    change_role(&state, user, origin, path.into_inner(), body.0.role, false).await
}

async fn remove_role(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, role) = path.into_inner();
    change_role(&state, user, origin, user_id, role, true).await
}

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

#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    before_id: i64,
    #[serde(default)]
    limit: i32,
}

async fn audit(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<AuditQuery>,
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
