//! `/api/auth/*`: accounts, logins, sessions, profile, e-mail verification, password reset.

use super::console;
use super::extract::{AuthUser, ClientOrigin};
use super::json_resource;
use super::views::{
    Ended, Message, OtherSessionsEnded, SessionBody, SessionView, SessionsBody, SessionsEnded,
    UserBody, UserView, VerificationSent, Verified,
};
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use sdsim_protocols::proto::auth as pb;
use serde::Deserialize;

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/api/auth/register").route(web::post().to(register)))
        .service(json_resource("/api/auth/login").route(web::post().to(login)))
        .service(
            json_resource("/api/auth/profile")
                .route(web::get().to(profile))
                .route(web::put().to(update_profile)),
        )
        .service(json_resource("/api/auth/password").route(web::post().to(change_password)))
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
        );
}

/// An answer that carries tokens or personal data: never cached.
fn private(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// The routes of this area in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        register,
        login,
        profile,
        update_profile,
        change_password,
        refresh,
        request_verification,
        verify_email,
        request_reset,
        reset_password,
        logout,
        list_sessions,
        end_session
    ),
    components(schemas(
        RegisterBody,
        LoginBody,
        ProfileBody,
        PasswordBody,
        TokenBody,
        ResetRequestBody,
        ResetBody,
        RefreshBody,
        LogoutBody,
        UserView,
        UserBody,
        SessionBody,
        SessionView,
        SessionsBody,
        SessionsEnded,
        OtherSessionsEnded,
        Ended,
        Verified,
        VerificationSent,
        Message
    ))
)]
pub(crate) struct Api;

/// A new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RegisterBody {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    company: Option<String>,
}

/// Creates an account (a verification mail follows).
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, description = "The new user", body = crate::http::views::UserBody),
        (status = 409, description = "The e-mail address is taken", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn register(
    state: web::Data<GatewayState>,
    origin: ClientOrigin,
    body: ApiJson<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::RegisterRequest {
        email: b.email,
        password: b.password,
        first_name: b.first_name,
        last_name: b.last_name,
        company: b.company,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "Register", register, call).await?;
    Ok(HttpResponse::Created().json(UserBody::from_pb(res.user)))
}

/// E-mail and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct LoginBody {
    email: String,
    password: String,
}

/// Signs in: an access token and a refresh token (a console request gets the refresh
/// token as the `sdsim_refresh` cookie instead).
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = crate::http::views::SessionBody),
        (status = 401, description = "Wrong e-mail or password", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "Too many attempts (Retry-After)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or invalid input", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn login(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::LoginRequest {
        email: b.email,
        password: b.password,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "Login", login, call).await?;
    Ok(session_answer(&req, SessionBody::from(res)))
}

/// The signed-in user's profile.
#[utoipa::path(get, path = "/api/auth/profile", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user (not cached: Cache-Control no-store)", body = crate::http::views::UserBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn profile(state: web::Data<GatewayState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let up = &state.upstream;
    let call = pb::GetProfileRequest {
        user_id: user.user_id,
    };
    let profile = rpc!(up, auth, "GetProfile", get_profile, call).await?;
    Ok(private(UserBody::from_pb(Some(profile))))
}

/// The profile fields to change; absent ones are left as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    /// `null` or `""` clears it.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<String>)]
    company: Option<String>,
}

/// A field that may be absent (None), null or a string (Some("") for null: clear it).
fn clearable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

/// Changes the signed-in user's name or company.
#[utoipa::path(put, path = "/api/auth/profile", tag = "auth", request_body = ProfileBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated user (Cache-Control no-store)", body = crate::http::views::UserBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A field is invalid or unknown (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn update_profile(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ProfileBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::UpdateProfileRequest {
        access_token: user.token,
        first_name: b.first_name,
        last_name: b.last_name,
        company: b.company,
    };
    let up = &state.upstream;
    let profile = rpc!(up, auth, "UpdateProfile", update_profile, call).await?;
    Ok(private(UserBody::from_pb(Some(profile))))
}

/// The current password and the new one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// Changes the password; every other session of the user ends.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth", request_body = PasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed; how many other sessions ended", body = crate::http::views::OtherSessionsEnded),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`current_password` is wrong, or `new_password` is too weak (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "Too many attempts (Retry-After)", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "4XX", description = "Malformed, too large or not JSON", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn change_password(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
    body: ApiJson<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ChangePasswordRequest {
        access_token: user.token,
        current_password: body.0.current_password,
        new_password: body.0.new_password,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ChangePassword", change_password, call).await?;
    Ok(HttpResponse::Ok().json(OtherSessionsEnded {
        other_sessions_ended: res.sessions_ended.into(),
    }))
}

/// Sends (again) the mail that confirms the user's e-mail address.
#[utoipa::path(post, path = "/api/auth/verify-email/request", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Sent, or not needed (`sent` false: already verified)", body = crate::http::views::VerificationSent),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "Too many mails from this client address, or to this e-mail address (Retry-After)", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "4XX", description = "Another client error", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency (or the mail queue) is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn request_verification(
    state: web::Data<GatewayState>,
    user: AuthUser,
    origin: ClientOrigin,
) -> Result<HttpResponse, ApiError> {
    let call = pb::RequestEmailVerificationRequest {
        access_token: user.token,
        ip: origin.ip,
        user_agent: origin.user_agent,
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
    Ok(HttpResponse::Accepted().json(VerificationSent {
        sent: res.sent,
        message: if res.sent {
            "a confirmation link is on its way"
        } else {
            "this address is already verified"
        },
    }))
}

/// The token of the confirmation link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct TokenBody {
    token: String,
}

/// Confirms an e-mail address with the token of the link mailed to it.
#[utoipa::path(post, path = "/api/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses(
        (status = 200, description = "The address is verified", body = crate::http::views::Verified),
        (status = 422, description = "The token is invalid, already used or expired (`field`: token)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn verify_email(
    state: web::Data<GatewayState>,
    body: ApiJson<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::VerifyEmailRequest {
        token: body.0.token,
    };
    let up = &state.upstream;
    rpc!(up, auth, "VerifyEmail", verify_email, call).await?;
    Ok(HttpResponse::Ok().json(Verified { verified: true }))
}

/// The address of the account whose password was forgotten.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ResetRequestBody {
    email: String,
}

/// Mails a password reset link. The answer is the same whether or not the address has an
/// account.
#[utoipa::path(post, path = "/api/auth/password-reset/request", tag = "auth", request_body = ResetRequestBody,
    responses(
        (status = 202, description = "Accepted (a link is mailed if the account exists)", body = crate::http::views::Message),
        (status = 422, description = "`email` is not an e-mail address", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "Too many mails from this client address, or to this e-mail address (Retry-After)", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "4XX", description = "Malformed, too large or not JSON", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn request_reset(
    state: web::Data<GatewayState>,
    origin: ClientOrigin,
    body: ApiJson<ResetRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::RequestPasswordResetRequest {
        email: body.0.email,
        ip: origin.ip,
        user_agent: origin.user_agent,
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
    Ok(HttpResponse::Accepted().json(Message {
        message: "if an account exists for this address, a reset link is on its way",
    }))
}

/// The token of the reset link and the new password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ResetBody {
    token: String,
    new_password: String,
}

/// Sets a new password with the token of a reset link; every session of the user ends.
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth", request_body = ResetBody,
    responses(
        (status = 200, description = "Changed; how many sessions ended", body = crate::http::views::SessionsEnded),
        (status = 422, description = "The token is invalid, used or expired, or `new_password` is too weak (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn reset_password(
    state: web::Data<GatewayState>,
    origin: ClientOrigin,
    body: ApiJson<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ResetPasswordRequest {
        token: b.token,
        new_password: b.new_password,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ResetPassword", reset_password, call).await?;
    Ok(HttpResponse::Ok().json(SessionsEnded {
        sessions_ended: res.sessions_ended.into(),
    }))
}

/// The refresh token of a session (API clients; the console sends no body).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

/// A new access token for a session, and a new refresh token (the one sent can no longer be
/// used). The console sends no body: its refresh token is the `sdsim_refresh` cookie, and the
/// new one comes back as that cookie.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth",
    request_body(content = Option<RefreshBody>, description = "Required, except from the console (cookie)"),
    responses(
        (status = 200, description = "A new access token and refresh token (Cache-Control no-store)", body = crate::http::views::SessionBody),
        (status = 401, description = "The refresh token is unknown, expired, revoked or reused (reuse ends the session), or the console's cookie is missing", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`refresh_token` is missing or malformed", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "Too many refreshes from this address (Retry-After)", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = "4XX", description = "Malformed, too large or not JSON", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn refresh(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    origin: ClientOrigin,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The console sends no body: its refresh token is the cookie (see `console_cookie`).
    let refresh_token = if console::is_console(&req) && !has_body(&req) {
        console::refresh_cookie(&req).ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "no console session: the sdsim_refresh cookie is missing (log in again)",
            )
        })?
    } else {
        let mut p = payload.into_inner();
        <ApiJson<RefreshBody> as actix_web::FromRequest>::from_request(&req, &mut p)
            .await?
            .0
            .refresh_token
    };
    let call = pb::RefreshTokenRequest {
        refresh_token,
        ip: origin.ip,
        user_agent: origin.user_agent,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "RefreshToken", refresh_token, call).await?;
    Ok(session_answer(&req, SessionBody::from(res)))
}

/// A new session's answer: the JSON body for API clients; for the console, the refresh token
/// moves out of the body into its httpOnly cookie.
fn session_answer(req: &HttpRequest, mut body: SessionBody) -> HttpResponse {
    if !console::is_console(req) {
        return private(body);
    }
    let cookie = console::set_refresh_cookie(req, &body.refresh_token);
    body.refresh_token = String::new();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::SET_COOKIE, cookie))
        .json(body)
}

/// Whether a request carries a body.
fn has_body(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || req.headers().contains_key(header::TRANSFER_ENCODING)
}

/// Which sessions to end (no body: this one).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct LogoutBody {
    /// End every session of the user, not only this one.
    #[serde(default)]
    all_sessions: bool,
}

/// Ends this session (or, with `all_sessions`, every session of the user); the console's
/// refresh cookie is cleared.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    request_body(content = Option<LogoutBody>, description = "Optional: no body ends this session only"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many sessions ended", body = crate::http::views::SessionsEnded),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn logout(
    state: web::Data<GatewayState>,
    user: AuthUser,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The body is optional: no body means "this session".
    let body = if has_body(&req) {
        let mut p = payload.into_inner();
        <ApiJson<LogoutBody> as actix_web::FromRequest>::from_request(&req, &mut p)
            .await?
            .0
    } else {
        LogoutBody::default()
    };
    let up = &state.upstream;
    let call = pb::LogoutRequest {
        access_token: user.token,
        all_sessions: body.all_sessions,
    };
    let res = rpc!(up, auth, "Logout", logout, call).await?;
    let mut answer = HttpResponse::Ok();
    if console::is_console(&req) {
        answer.insert_header((header::SET_COOKIE, console::clear_refresh_cookie(&req)));
    }
    Ok(answer.json(SessionsEnded {
        sessions_ended: res.sessions_ended.into(),
    }))
}

/// The user's active sessions (`current` marks the one of this token).
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions (Cache-Control no-store)", body = crate::http::views::SessionsBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn list_sessions(
    state: web::Data<GatewayState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListSessionsRequest {
        access_token: user.token,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ListSessions", list_sessions, call).await?;
    Ok(private(SessionsBody {
        sessions: res.sessions.into_iter().map(Into::into).collect(),
    }))
}

/// Ends one of the user's sessions (signs that device out).
#[utoipa::path(delete, path = "/api/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = String, Path, description = "The session's id (a UUID, from GET /api/auth/sessions)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Whether it was ended (false: it had already ended)", body = crate::http::views::Ended),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "The user has no such session", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`session_id` is not a UUID", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn end_session(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::EndSessionRequest {
        access_token: user.token,
        session_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "EndSession", end_session, call).await?;
    Ok(HttpResponse::Ok().json(Ended { ended: res.ended }))
}
