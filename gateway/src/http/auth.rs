//! `/api/auth/*`: accounts, logins, sessions, profile, e-mail verification, password reset.

use super::console;
use super::extract::{AuthUser, ClientOrigin};
use super::json_resource;
use super::views::{
    Ended, Message, OtherSessionsEnded, SessionBody, SessionsBody, SessionsEnded, UserBody,
    VerificationSent, Verified,
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

#[derive(Debug, Deserialize)]
struct RegisterBody {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    company: Option<String>,
}

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

#[derive(Debug, Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

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

async fn profile(state: web::Data<GatewayState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let up = &state.upstream;
    let call = pb::GetProfileRequest {
        user_id: user.user_id,
    };
    let profile = rpc!(up, auth, "GetProfile", get_profile, call).await?;
    Ok(private(UserBody::from_pb(Some(profile))))
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

#[derive(Debug, Deserialize)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

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
    Ok(HttpResponse::Ok().json(Verified { verified: true }))
}

#[derive(Debug, Deserialize)]
struct ResetRequestBody {
    email: String,
}

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

#[derive(Debug, Deserialize)]
struct ResetBody {
    token: String,
    new_password: String,
}

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

#[derive(Debug, Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

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

#[derive(Debug, Default, Deserialize)]
struct LogoutBody {
    #[serde(default)]
    all_sessions: bool,
}

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
