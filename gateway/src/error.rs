//! The gateway's HTTP errors. Every error a client sees is JSON:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` with the right status.
//! This is the only place in sdsim that knows HTTP status codes for service errors.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use sdsim_runtime::error::ServiceError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// The current version of the resource (412): in the body and as the `ETag`.
    pub current_version: Option<i32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            retry_after: None,
            current_version: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty()).then_some(f);
        self
    }

    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
        e.retry_after = Some(1);
        e
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no route for {path}"),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code, "message": self.message, "field": self.field
        });
        if let Some(v) = self.current_version {
            error["current_version"] = v.into();
        }
        serde_json::json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after {
            b.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        if let Some(v) = self.current_version {
            b.insert_header((header::ETAG, format!("\"{v}\"")));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header((
                header::WWW_AUTHENTICATE,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.code
                ),
            ));
        }
        b.json(self.body())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let code = e.code().to_string();
        match e {
            ServiceError::Invalid { field, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, &code, message).field(field)
            }
            ServiceError::Conflict { field, message, .. } => {
                ApiError::new(StatusCode::CONFLICT, &code, message).field(field)
            }
            ServiceError::Unauthenticated { message, .. } => ApiError::unauthorized(&code, message),
            ServiceError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, &code, m),
            ServiceError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, &code, m),
            ServiceError::RateLimited { retry_after_secs } => {
                let mut a = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    &code,
                    format!("too many requests; retry in {retry_after_secs} s"),
                );
                a.retry_after = Some(retry_after_secs.max(1));
                a
            }
            ServiceError::Unavailable(m) => ApiError::unavailable(m),
            ServiceError::CircuitOpen {
                message,
                retry_after_ms,
            } => {
                let mut a = ApiError::unavailable(message);
                a.code = "circuit_open".into();
                a.retry_after = Some(retry_after_ms.div_ceil(1000).max(1));
                a
            }
            ServiceError::Stale { current, message } => {
                let mut a = ApiError::new(StatusCode::PRECONDITION_FAILED, &code, message);
                a.current_version = Some(current);
                a
            }
            ServiceError::Gone(m) => ApiError::new(StatusCode::GONE, &code, m),
            ServiceError::PreconditionRequired(m) => {
                ApiError::new(StatusCode::PRECONDITION_REQUIRED, &code, m).field("If-Match")
            }
            ServiceError::Unimplemented(m) => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                &code,
                format!("not implemented: {m}"),
            ),
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error behind the gateway");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, &code, "internal error")
            }
        }
    }
}

/// What a refused token's reason code means, in words (REST errors and WebSocket closes).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_map_to_statuses() {
        let e: ApiError = ServiceError::invalid("email", "bad e-mail").into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("email"));
        let e: ApiError = ServiceError::Conflict {
            code: "email_taken".into(),
            field: "email".into(),
            message: "taken".into(),
        }
        .into();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::CONFLICT, "email_taken")
        );
        let e: ApiError = ServiceError::Unavailable("auth down".into()).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after, Some(1));
        let e: ApiError = ServiceError::Internal("secret detail".into()).into();
        assert_eq!(e.message, "internal error");
    }

    #[test]
    fn body_has_code_message_field() {
        let e = ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "bad").field("");
        let b = e.body();
        assert_eq!(b["error"]["code"], "malformed_json");
        assert!(b["error"]["field"].is_null());
    }
}
