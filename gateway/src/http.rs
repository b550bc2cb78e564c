//! The gateway's REST API and WebSocket endpoint on port 8000.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /api/auth/register` | create an account (auth `Register`) |
//! | `POST /api/auth/login` | log in (auth `Login`, with the client's address and agent) |
//! | `GET /api/auth/profile` | the caller's profile (auth `ValidateToken` + `GetProfile`) |
//! | `PUT /api/auth/profile` | update first/last name, company |
//! | `POST /api/auth/password` | change password (ends the user's other sessions) |
//! | `POST /api/auth/verify-email/request`, `POST /api/auth/verify-email` | address verification |
//! | `POST /api/auth/password-reset/request`, `POST /api/auth/password-reset` | password reset |
//! | `POST /api/auth/refresh` | new tokens for a refresh token (rotated; reuse ends the session) |
//! | `POST /api/auth/logout` | end this session, or all of the user's (`{"all_sessions": true}`) |
//! | `GET /api/auth/sessions`, `DELETE /api/auth/sessions/{id}` | the user's live sessions |
//! | `GET /api/admin/users?query=&limit=&offset=` | find users (admin:users) |
//! | `POST /api/admin/users/{id}/roles`, `DELETE .../roles/{role}` | assign, remove a role (admin:roles) |
//! | `POST /api/admin/users/{id}/lock`, `.../unlock` | lock (ends sessions), unlock an account |
//! | `DELETE /api/admin/users/{id}/sessions` | end every session of a user |
//! | `GET /api/admin/audit?user_id=&event=&before_id=&limit=` | the security audit log |
//! | `GET /ws/notifications` | WebSocket of the user's live notifications |
//! | `GET /health` | every backend, PostgreSQL and Redis; 503 naming what is down |
//! | `GET /metrics`, `GET /admin/supervision` | Prometheus text; the live supervision tree |
//!
//! Every error is JSON (see [`crate::error`]); unknown routes and methods too.

use crate::body::{ApiJson, BodyLimit};
use crate::error::ApiError;
use crate::registry::Registry;
use crate::rpc;
use crate::subscriber::NotificationSubscriber;
use crate::upstream::Upstreams;
use crate::ws::WsSession;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse};
use sdsim_actors::admin::configure_common;
use sdsim_actors::config::GatewaySettings;
use sdsim_actors::health::HealthProbe;
use sdsim_actors::metrics::Metrics;
use sdsim_actors::server::HttpFactory;
use sdsim_actors::slot::Slot;
use sdsim_actors::supervision::TreeView;
use sdsim_protocols::proto::auth as pb;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything the handlers and session actors of one gateway share.
#[derive(Clone)]
pub struct GatewayState {
    pub upstream: Upstreams,
    pub registry: Registry,
    pub subscriber: Slot<NotificationSubscriber>,
    pub settings: GatewaySettings,
    pub metrics: Arc<Metrics>,
    pub view: TreeView,
    pub probe: HealthProbe,
    pub instance_id: String,
    pub fault_injection: bool,
    pub instances: sdsim_actors::discovery::View,
}

/// The factory of the gateway's HTTP server (called again at each restart).
pub fn http_factory(state: GatewayState) -> HttpFactory {
    Arc::new(move |listener| {
        let state = state.clone();
        let workers = match state.settings.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let server = actix_web::HttpServer::new(move || app(state.clone()))
            .workers(workers)
            // Live WebSocket frames are small and frequent: send each at once, not after
            // the previous one is acknowledged (Nagle).
            .tcp_nodelay(true)
            .disable_signals()
            .shutdown_timeout(2)
            .listen(listener)?
            .run();
        Ok(server)
    })
}

fn app(
    state: GatewayState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let metrics = state.metrics.clone();
    let view = state.view.clone();
    let fault_injection = state.fault_injection;
    let instances = state.instances.clone();
    let mesh = state.upstream.mesh().clone();
    let limit = BodyLimit(state.settings.max_body_bytes);
    App::new()
        .app_data(web::Data::new(state))
        .app_data(limit)
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("bad query string: {err}"),
            )
            .field("query")
            .into()
        }))
        .wrap_fn({
            let metrics = metrics.clone();
            move |req, srv| {
                let start = Instant::now();
                let method = req.method().to_string();
                let metrics = metrics.clone();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    let route = res
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string());
                    metrics
                        .http_request_seconds
                        .with_label_values(&[&method, &route, res.status().as_str()])
                        .observe(start.elapsed().as_secs_f64());
                    Ok(res)
                }
            }
        })
        .service(json_resource("/api/auth/register").route(web::post().to(register)))
        .service(json_resource("/api/auth/login").route(web::post().to(login)))
        .service(
            json_resource("/api/auth/profile")
                .route(web::get().to(profile))
                .route(web::put().to(update_profile)),
        )
        .service(json_resource("/api/auth/password").route(web::post().to(change_password)))
        .service(json_resource("/api/admin/users").route(web::get().to(admin_users)))
        .service(
            json_resource("/api/admin/users/{user_id}/roles").route(web::post().to(admin_add_role)),
        )
        .service(
            json_resource("/api/admin/users/{user_id}/roles/{role}")
                .route(web::delete().to(admin_remove_role)),
        )
        .service(
            json_resource("/api/admin/users/{user_id}/sessions")
                .route(web::delete().to(admin_end_sessions)),
        )
        // After the fixed sub-paths above: actix matches resources in order.
        .service(
            json_resource("/api/admin/users/{user_id}/{action}").route(web::post().to(admin_lock)),
        )
        .service(json_resource("/api/admin/audit").route(web::get().to(admin_audit)))
        .service(json_resource("/api/auth/refresh").route(web::post().to(refresh)))
        .service(
            json_resource("/api/auth/verify-email/request")
                .route(web::post().to(request_verification)),
        )
        .service(json_resource("/api/auth/verify-email").route(web::post().to(verify_email)))
        .service(
            json_resource("/api/auth/password-reset/request").route(web::post().to(request_reset)),
        )
        .service(json_resource("/api/auth/password-reset").route(web::post().to(reset_password)))
        .service(json_resource("/api/auth/logout").route(web::post().to(logout)))
        .service(json_resource("/api/auth/sessions").route(web::get().to(list_sessions)))
        .service(
            json_resource("/api/auth/sessions/{session_id}").route(web::delete().to(end_session)),
        )
        .service(json_resource("/health").route(web::get().to(health)))
        .service(json_resource("/ws/notifications").route(web::get().to(ws_notifications)))
        .configure(|cfg| configure_common(cfg, metrics, view, instances, mesh, fault_injection))
        .default_service(web::to(not_found))
}

/// A resource whose wrong-method answer is a JSON 405.
fn json_resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        ApiError::method_not_allowed(req.method().as_str(), req.path()).error_response_json()
    }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::route_not_found(req.path()).error_response_json()
}

impl ApiError {
    fn error_response_json(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

// ---------------------------------------------------------------------------------------
// Auth routes

#[derive(Debug, Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    company: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop when the gateway
/// sits behind a trusted load balancer.
fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return ip.to_string();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
        .unwrap_or_default()
}

fn timestamp(secs: i64) -> serde_json::Value {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) if secs > 0 => serde_json::Value::String(t.to_rfc3339()),
        _ => serde_json::Value::Null,
    }
}

/// The answer to a login or a refresh: the user and the session's tokens, never cached.
fn session_response(res: pb::LoginResponse) -> HttpResponse {
    let user = res.user.unwrap_or_default();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "user": user_json(&user),
            "access_token": res.access_token,
            "refresh_token": res.refresh_token,
            "token_type": "Bearer",
            "expires_in": res.expires_in,
            "session_id": res.session_id,
        }))
}

fn user_json(u: &pb::UserProfile) -> serde_json::Value {
    serde_json::json!({
        "id": u.user_id,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "company": (!u.company.is_empty()).then_some(&u.company),
        "is_active": u.is_active,
        "is_verified": u.is_verified,
        "is_admin": u.is_admin,
        "roles": u.roles,
        "created_at": timestamp(u.created_at),
        "last_login": timestamp(u.last_login),
    })
}

async fn register(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::RegisterRequest {
        email: b.email,
        password: b.password,
        first_name: b.first_name,
        last_name: b.last_name,
        company: b.company,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "Register", register, call).await?;
    let user = res.user.unwrap_or_default();
    Ok(HttpResponse::Created().json(serde_json::json!({ "user": user_json(&user) })))
}

async fn login(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::LoginRequest {
        email: b.email,
        password: b.password,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "Login", login, call).await?;
    Ok(session_response(res))
}

/// The bearer token of a request, or a 401 saying what is wrong with the header.
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header is not text",
        )
    })?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header must be `Bearer <access token>`",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthorized(
            "invalid_authorization",
            "the Authorization header must be `Bearer <access token>`",
        ));
    }
    Ok(Some(token.trim().to_string()))
}

/// What a refused token's reason code means, in words.
pub fn token_error_message(code: &str) -> &'static str {
    match code {
        "token_expired" => "the access token has expired",
        "token_not_yet_valid" => "the access token is not valid yet",
        "token_bad_signature" => "the access token's signature is invalid",
        "token_bad_audience" => "the access token is for another audience",
        "token_bad_issuer" => "the access token is from another issuer",
        "token_bad_algorithm" => "the access token uses an algorithm this server does not accept",
        "token_unknown_key" => "the access token is signed with an unknown key",
        "token_revoked" | "session_revoked" | "revoked" => "the session of this token has ended",
        _ => "the access token is invalid",
    }
}

/// Validates the request's bearer token through auth; the token's user id on success.
async fn authenticate(
    state: &GatewayState,
    req: &HttpRequest,
) -> Result<pb::ValidateTokenResponse, ApiError> {
    let token = required_token(req)?;
    let up = &state.upstream;
    let call = pb::ValidateTokenRequest {
        token,
        calling_service: "gateway".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let v = rpc!(up, auth, "ValidateToken", validate_token, call).await?;
    if !v.valid {
        let code = if v.error.is_empty() {
            "invalid_token"
        } else {
            &v.error
        };
        return Err(ApiError::unauthorized(code, token_error_message(code)));
    }
    Ok(v)
}

async fn profile(
    state: web::Data<GatewayState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let v = authenticate(&state, &req).await?;
    let up = &state.upstream;
    let call = pb::GetProfileRequest { user_id: v.user_id };
    let user = rpc!(up, auth, "GetProfile", get_profile, call).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "user": user_json(&user) })))
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

async fn admin_users(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    q: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::AdminListUsersRequest {
        access_token: required_token(&req)?,
        query: q.query,
        limit: q.limit,
        offset: q.offset,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminListUsers", admin_list_users, call).await?;
    let users: Vec<_> = res.users.iter().map(user_json).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users, "total": res.total })))
}

#[derive(Debug, Deserialize)]
struct RoleBody {
    role: String,
}

async fn change_role(
    state: &GatewayState,
    req: &HttpRequest,
    user_id: String,
    role: String,
    remove: bool,
) -> Result<HttpResponse, ApiError> {
    let call = pb::AdminChangeRoleRequest {
        access_token: required_token(req)?,
        user_id,
        role,
        remove,
        ip: client_ip(req, state.settings.trust_forwarded_for),
        user_agent: user_agent(req),
    };
    let up = &state.upstream;
    let user = rpc!(up, auth, "AdminChangeRole", admin_change_role, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": user_json(&user) })))
}

async fn admin_add_role(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    change_role(&state, &req, path.into_inner(), body.0.role, false).await
}

async fn admin_remove_role(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, role) = path.into_inner();
    change_role(&state, &req, user_id, role, true).await
}

async fn admin_lock(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, action) = path.into_inner();
    let locked = match action.as_str() {
        "lock" => true,
        "unlock" => false,
        _ => return Err(ApiError::route_not_found(req.path())),
    };
    let call = pb::AdminSetLockedRequest {
        access_token: required_token(&req)?,
        user_id,
        locked,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let user = rpc!(up, auth, "AdminSetLocked", admin_set_locked, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": user_json(&user) })))
}

async fn admin_end_sessions(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::AdminEndSessionsRequest {
        access_token: required_token(&req)?,
        user_id: path.into_inner(),
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminEndSessions", admin_end_sessions, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions_ended": res.sessions_ended })))
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

async fn admin_audit(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::AdminAuditLogRequest {
        access_token: required_token(&req)?,
        user_id: q.user_id,
        event: q.event,
        before_id: q.before_id,
        limit: q.limit,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "AdminAuditLog", admin_audit_log, call).await?;
    let entries: Vec<serde_json::Value> = res
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "occurred_at": timestamp(e.occurred_at),
                "event": e.event,
                "user_id": (!e.user_id.is_empty()).then_some(&e.user_id),
                "session_id": (!e.session_id.is_empty()).then_some(&e.session_id),
                "ip": e.ip,
                "user_agent": e.user_agent,
                "detail": serde_json::from_str::<serde_json::Value>(&e.detail_json)
                    .unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "clearable")]
    company: Option<String>,
}

/// A field that may be absent (None), null or a string (Some("") for null: clear it).
fn clearable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

async fn update_profile(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::UpdateProfileRequest {
        access_token: required_token(&req)?,
        first_name: b.first_name,
        last_name: b.last_name,
        company: b.company,
    };
    let up = &state.upstream;
    let user = rpc!(up, auth, "UpdateProfile", update_profile, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "user": user_json(&user) })))
}

#[derive(Debug, Deserialize)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

async fn change_password(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ChangePasswordRequest {
        access_token: required_token(&req)?,
        current_password: body.0.current_password,
        new_password: body.0.new_password,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ChangePassword", change_password, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "other_sessions_ended": res.sessions_ended })))
}

async fn request_verification(
    state: web::Data<GatewayState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let call = pb::RequestEmailVerificationRequest {
        access_token: required_token(&req)?,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        auth,
        "RequestEmailVerification",
        request_email_verification,
        call
    )
    .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "sent": res.sent,
        "message": if res.sent { "a confirmation link is on its way" } else { "this address is already verified" },
    })))
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    token: String,
}

async fn verify_email(
    state: web::Data<GatewayState>,
    body: ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::VerifyEmailRequest {
        token: body.0.token,
    };
    let up = &state.upstream;
    rpc!(up, auth, "VerifyEmail", verify_email, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "verified": true })))
}

#[derive(Debug, Deserialize)]
struct ResetRequestBody {
    email: String,
}

async fn request_reset(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<ResetRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::RequestPasswordResetRequest {
        email: body.0.email,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    rpc!(
        up,
        auth,
        "RequestPasswordReset",
        request_password_reset,
        call
    )
    .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "message": "if an account exists for this address, a reset link is on its way"
    })))
}

#[derive(Debug, Deserialize)]
struct ResetBody {
    token: String,
    new_password: String,
}

async fn reset_password(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ResetPasswordRequest {
        token: b.token,
        new_password: b.new_password,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ResetPassword", reset_password, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions_ended": res.sessions_ended })))
}

#[derive(Debug, Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: ApiJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::RefreshTokenRequest {
        refresh_token: body.0.refresh_token,
        ip: client_ip(&req, state.settings.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "RefreshToken", refresh_token, call).await?;
    Ok(session_response(res))
}

#[derive(Debug, Default, Deserialize)]
struct LogoutBody {
    #[serde(default)]
    all_sessions: bool,
}

/// The bearer token, required.
fn required_token(req: &HttpRequest) -> Result<String, ApiError> {
    bearer_token(req)?.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_token",
            "this route needs an `Authorization: Bearer <access token>` header",
        )
    })
}

async fn logout(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = required_token(&req)?;
    // The body is optional: no body means "this session".
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let body = if has_body {
        let mut p = payload.into_inner();
        <ApiJson<LogoutBody> as actix_web::FromRequest>::from_request(&req, &mut p)
            .await?
            .0
    } else {
        LogoutBody::default()
    };
    let up = &state.upstream;
    let call = pb::LogoutRequest {
        access_token: token,
        all_sessions: body.all_sessions,
    };
    let res = rpc!(up, auth, "Logout", logout, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions_ended": res.sessions_ended })))
}

async fn list_sessions(
    state: web::Data<GatewayState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListSessionsRequest {
        access_token: required_token(&req)?,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ListSessions", list_sessions, call).await?;
    let sessions: Vec<serde_json::Value> = res
        .sessions
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.session_id,
                "ip": s.ip,
                "user_agent": s.user_agent,
                "created_at": timestamp(s.created_at),
                "last_used_at": timestamp(s.last_used_at),
                "expires_at": timestamp(s.expires_at),
                "current": s.current,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "sessions": sessions })))
}

async fn end_session(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::EndSessionRequest {
        access_token: required_token(&req)?,
        session_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "EndSession", end_session, call).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": res.ended })))
}

// ---------------------------------------------------------------------------------------
// WebSocket

async fn ws_notifications(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    // A malformed header is refused before the upgrade, with JSON like every REST error.
    let token = bearer_token(&req)?;
    let remote = client_ip(&req, state.settings.trust_forwarded_for);
    let session = WsSession::new(state.get_ref().clone(), remote, token);
    actix_web_actors::ws::start(session, &req, stream).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_upgrade_required",
            format!("this endpoint speaks WebSocket only: {e}"),
        )
        .into()
    })
}

// ---------------------------------------------------------------------------------------
// Health

const BACKENDS: [&str; 3] = ["auth", "project", "simulation"];
/// The longest a backend's health check may take before it counts as down.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

async fn health(state: web::Data<GatewayState>) -> HttpResponse {
    let deadline = HEALTH_DEADLINE;
    let up = &state.upstream;
    let (auth, project, simulation, deps) = futures_util::join!(
        up.health(sdsim_protocols::Service::Auth, deadline),
        up.health(sdsim_protocols::Service::Project, deadline),
        up.health(sdsim_protocols::Service::Simulation, deadline),
        state.probe.dependencies(),
    );
    let mut components = serde_json::Map::new();
    let mut down = Vec::new();
    for (name, res) in BACKENDS.iter().zip([auth, project, simulation]) {
        let entry = match res {
            Ok(h) if h.status == "SERVING" => serde_json::json!({
                "healthy": true, "instance_id": h.instance_id, "version": h.version,
                "uptime_seconds": h.uptime_seconds,
            }),
            Ok(h) => {
                let failing: Vec<String> = h
                    .dependencies
                    .iter()
                    .filter(|d| !d.healthy)
                    .map(|d| format!("{}: {}", d.name, d.detail))
                    .collect();
                serde_json::json!({
                    "healthy": false, "instance_id": h.instance_id,
                    "detail": format!("{} reports {}; failing: {}", name, h.status, failing.join(", ")),
                })
            }
            Err(e) => serde_json::json!({ "healthy": false, "detail": e.to_string() }),
        };
        if entry["healthy"] != true {
            down.push(name.to_string());
        }
        components.insert(name.to_string(), entry);
    }
    for d in deps {
        if !d.healthy {
            down.push(d.name.clone());
        }
        components.insert(
            d.name.clone(),
            serde_json::json!({
                "healthy": d.healthy,
                "latency_ms": (d.latency_ms * 1000.0).round() / 1000.0,
                "detail": (!d.detail.is_empty()).then_some(d.detail),
            }),
        );
    }
    let body = serde_json::json!({
        "status": if down.is_empty() { "ok" } else { "degraded" },
        "service": "gateway",
        "instance_id": state.instance_id,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.probe.started.elapsed().as_secs(),
        "websocket_sessions": state.registry.len(),
        "down": down,
        "components": components,
    });
    if down.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(body)
    }
}
