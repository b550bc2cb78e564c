//! What a handler takes from a request besides its body: the bearer token, the client's
//! origin, and the authenticated user.

use crate::error::{token_error_message, ApiError};
use crate::rpc;
use crate::state::GatewayState;
use crate::tokens::{Lookup, Validated};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use sdsim_protocols::proto::auth as pb;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::Instant;

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

/// The bearer token, required.
pub fn required_token(req: &HttpRequest) -> Result<String, ApiError> {
    bearer_token(req)?.ok_or_else(|| {
        ApiError::unauthorized(
            "missing_token",
            "this route needs an `Authorization: Bearer <access token>` header",
        )
    })
}

fn state(req: &HttpRequest) -> Result<&web::Data<GatewayState>, ApiError> {
    req.app_data::<web::Data<GatewayState>>().ok_or_else(|| {
        ApiError::from(sdsim_runtime::error::ServiceError::Internal(
            "the gateway state is missing".into(),
        ))
    })
}

/// Where a request comes from: the client's address (the TCP peer, or the last
/// `X-Forwarded-For` hop, the one the proxy itself added, when the peer is one of
/// `gateway.trusted_proxies` or any peer with `gateway.trust_forwarded_for`) and its user
/// agent (at most 512 characters). Only `X-Forwarded-For` is read: a `Forwarded` or
/// `X-Real-IP` header that a proxy passes through untouched would be the client's choice.
#[derive(Debug, Clone)]
pub struct ClientOrigin {
    pub ip: String,
    pub user_agent: String,
}

impl ClientOrigin {
    pub fn of(req: &HttpRequest, settings: &crate::settings::GatewaySettings) -> Self {
        let peer = req.peer_addr().map(|a| a.ip());
        let trusted = settings.trust_forwarded_for
            || peer.is_some_and(|p| {
                settings
                    .trusted_proxies
                    .iter()
                    .filter_map(|c| crate::settings::Cidr::parse(c))
                    .any(|c| c.contains(p))
            });
        let forwarded = trusted
            .then(|| {
                let hops = req.headers().get_all("x-forwarded-for");
                let last = hops
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .next_back()?;
                last.trim()
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| ip.to_string())
            })
            .flatten();
        let ip = forwarded.unwrap_or_else(|| {
            req.peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        });
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect())
            .unwrap_or_default();
        Self { ip, user_agent }
    }
}

impl FromRequest for ClientOrigin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).map(|s| Self::of(req, &s.settings)))
    }
}

/// The user a request acts for: its bearer token validated through auth (`ValidateToken`),
/// so the handler holds the user's id, session and permissions. Every protected route takes
/// one; a missing, malformed, expired or revoked token is a 401 naming why, before the
/// handler runs. `token` is kept for the auth RPCs that act on the session itself.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub session_id: String,
    pub email: String,
    pub is_admin: bool,
    pub permissions: Vec<String>,
    pub token: String,
}

impl AuthUser {
    /// Validates `token`: from the gateway's cache of recent validations when it may
    /// ([`crate::tokens`]), else through auth.
    pub async fn validate(state: &GatewayState, token: String) -> Result<Self, ApiError> {
        let up = &state.upstream;
        let epoch = match up.tokens().get(&token) {
            Lookup::Fresh(who) => return Ok(Self::from_validated(&who, token)),
            Lookup::Ended => {
                return Err(ApiError::unauthorized(
                    "token_revoked",
                    token_error_message("token_revoked"),
                ))
            }
            Lookup::Check(epoch) => epoch,
        };
        let checked = Instant::now();
        let call = pb::ValidateTokenRequest {
            token: token.clone(),
            calling_service: "gateway".into(),
            request_id: String::new(),
        };
        let v = match rpc!(up, auth, "ValidateToken", validate_token, call).await {
            Ok(v) => v,
            Err(e) => {
                up.tokens().check_failed(&token);
                return Err(e.into());
            }
        };
        if !v.valid {
            up.tokens().refused(&token);
            let code = if v.error.is_empty() {
                "invalid_token"
            } else {
                &v.error
            };
            return Err(ApiError::unauthorized(code, token_error_message(code)));
        }
        let who = Arc::new(Validated {
            user_id: v.user_id,
            session_id: v.session_id,
            email: v.email,
            is_admin: v.is_admin,
            permissions: v.permissions,
            expires_at: v.expires_at,
        });
        up.tokens().put(&token, who.clone(), epoch, checked);
        Ok(Self::from_validated(&who, token))
    }

    fn from_validated(who: &Validated, token: String) -> Self {
        Self {
            user_id: who.user_id.clone(),
            session_id: who.session_id.clone(),
            email: who.email.clone(),
            is_admin: who.is_admin,
            permissions: who.permissions.clone(),
            token,
        }
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pre = required_token(req).and_then(|t| Ok((t, state(req)?.clone())));
        let req = req.clone();
        Box::pin(async move {
            let (token, state) = pre?;
            let user = Self::validate(&state, token).await?;
            // The user's limit for this kind of request, shared by every gateway instance.
            let class = crate::limits::Class::of(req.method().as_str(), super::routed_path(&req));
            if let Some(standing) = state.limiter.user(&user.user_id, class).await {
                req.extensions_mut().insert(standing);
                if standing.exceeded() {
                    return Err(ApiError::from(
                        sdsim_runtime::error::ServiceError::RateLimited {
                            retry_after_secs: standing.reset.max(1),
                        },
                    ));
                }
            }
            Ok(user)
        })
    }
}
