//! The error every service returns, and its mapping to and from gRPC status.
//!
//! Services speak in [`ServiceError`]; the tonic adapters turn it into a `tonic::Status`
//! carrying the machine-readable code and field in metadata; the gateway turns that status
//! into an HTTP answer. Only the gateway knows HTTP status codes.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

pub const CODE_KEY: &str = "x-sdsim-error-code";
pub const FIELD_KEY: &str = "x-sdsim-error-field";
pub const RETRY_KEY: &str = "x-sdsim-retry-after";
/// The current version of a resource a stale write was refused for.
pub const CURRENT_VERSION_KEY: &str = "x-sdsim-current-version";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServiceError {
    /// The input is wrong; `field` names it.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The input conflicts with existing data (e.g. the e-mail is taken).
    #[error("{message}")]
    Conflict {
        code: String,
        field: String,
        message: String,
    },
    /// Credentials or token missing, wrong, expired or revoked.
    #[error("{message}")]
    Unauthenticated { code: String, message: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (database, Redis, another service) is down or too slow.
    #[error("{0}")]
    Unavailable(String),
    /// Every instance of a dependency is failing: calls are refused at once (circuit open)
    /// for about `retry_after_ms`.
    #[error("{message}")]
    CircuitOpen {
        message: String,
        retry_after_ms: u64,
    },
    /// A write based on a version that is no longer the current one (optimistic
    /// concurrency): nothing was written; `current` is the version to rebase on.
    #[error("{message}")]
    Stale { current: i32, message: String },
    /// A write that must say which version it is based on did not.
    #[error("{0}")]
    PreconditionRequired(String),
    /// The thing existed and is gone for good (an expired or revoked link).
    #[error("{0}")]
    Gone(String),
    #[error("not implemented yet: {0}")]
    Unimplemented(String),
    /// A bug. The message is logged, never sent to clients in full.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn unauthenticated(code: &str, message: impl Into<String>) -> Self {
        ServiceError::Unauthenticated {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Stable machine-readable code, sent to clients.
    pub fn code(&self) -> &str {
        match self {
            ServiceError::Invalid { .. } => "invalid_input",
            ServiceError::Conflict { code, .. } => code,
            ServiceError::Unauthenticated { code, .. } => code,
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::RateLimited { .. } => "rate_limited",
            ServiceError::Unavailable(_) => "unavailable",
            ServiceError::CircuitOpen { .. } => "circuit_open",
            ServiceError::Stale { .. } => "version_conflict",
            ServiceError::PreconditionRequired(_) => "precondition_required",
            ServiceError::Gone(_) => "gone",
            ServiceError::Unimplemented(_) => "not_implemented",
            ServiceError::Internal(_) => "internal",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid { field, .. } | ServiceError::Conflict { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }

    pub fn to_status(&self) -> Status {
        let (code, message) = match self {
            ServiceError::Invalid { .. } => (Code::InvalidArgument, self.to_string()),
            ServiceError::Conflict { .. } => (Code::AlreadyExists, self.to_string()),
            ServiceError::Unauthenticated { .. } => (Code::Unauthenticated, self.to_string()),
            ServiceError::Forbidden(_) => (Code::PermissionDenied, self.to_string()),
            ServiceError::NotFound(_) => (Code::NotFound, self.to_string()),
            ServiceError::RateLimited { .. } => (Code::ResourceExhausted, self.to_string()),
            ServiceError::Unavailable(_) | ServiceError::CircuitOpen { .. } => {
                (Code::Unavailable, self.to_string())
            }
            ServiceError::Stale { .. }
            | ServiceError::PreconditionRequired(_)
            | ServiceError::Gone(_) => (Code::FailedPrecondition, self.to_string()),
            ServiceError::Unimplemented(_) => (Code::Unimplemented, self.to_string()),
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (Code::Internal, "internal error".to_string())
            }
        };
        let mut status = Status::new(code, message);
        if let Ok(v) = MetadataValue::try_from(self.code()) {
            status.metadata_mut().insert(CODE_KEY, v);
        }
        if let Some(field) = self.field() {
            if let Ok(v) = MetadataValue::try_from(field) {
                status.metadata_mut().insert(FIELD_KEY, v);
            }
        }
        let retry_after_secs = match self {
            ServiceError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ServiceError::CircuitOpen { retry_after_ms, .. } => Some(retry_after_ms.div_ceil(1000)),
            _ => None,
        };
        if let ServiceError::Stale { current, .. } = self {
            if let Ok(v) = MetadataValue::try_from(current.to_string()) {
                status.metadata_mut().insert(CURRENT_VERSION_KEY, v);
            }
        }
        if let Some(secs) = retry_after_secs {
            if let Ok(v) = MetadataValue::try_from(secs.max(1).to_string()) {
                status.metadata_mut().insert(RETRY_KEY, v);
            }
        }
        status
    }

    /// Reads back what [`ServiceError::to_status`] wrote (or classifies a transport error).
    pub fn from_status(status: &Status) -> Self {
        let meta = |k: &str| {
            status
                .metadata()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = meta(CODE_KEY);
        let field = meta(FIELD_KEY).unwrap_or_default();
        let message = status.message().to_string();
        match status.code() {
            Code::InvalidArgument => ServiceError::Invalid { field, message },
            Code::AlreadyExists => ServiceError::Conflict {
                code: code.unwrap_or_else(|| "conflict".into()),
                field,
                message,
            },
            Code::Unauthenticated => ServiceError::Unauthenticated {
                code: code.unwrap_or_else(|| "unauthenticated".into()),
                message,
            },
            Code::PermissionDenied => ServiceError::Forbidden(message),
            Code::NotFound => ServiceError::NotFound(message),
            Code::ResourceExhausted => ServiceError::RateLimited {
                retry_after_secs: meta(RETRY_KEY).and_then(|s| s.parse().ok()).unwrap_or(1),
            },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                ServiceError::Unavailable(message)
            }
            Code::Unimplemented => ServiceError::Unimplemented(message),
            // A message over the gRPC size limit (tonic's own check, either side): the
            // input's size, not a failing service (no breaker counts it).
            Code::OutOfRange => ServiceError::invalid(
                &field,
                format!("the request or its answer is too large: {message}"),
            ),
            Code::FailedPrecondition if code.as_deref() == Some("precondition_required") => {
                ServiceError::PreconditionRequired(message)
            }
            Code::FailedPrecondition if code.as_deref() == Some("gone") => {
                ServiceError::Gone(message)
            }
            Code::FailedPrecondition if code.as_deref() == Some("version_conflict") => {
                ServiceError::Stale {
                    current: meta(CURRENT_VERSION_KEY)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    message,
                }
            }
            _ => ServiceError::Internal(format!("{:?}: {}", status.code(), message)),
        }
    }
}

impl From<actix::MailboxError> for ServiceError {
    fn from(e: actix::MailboxError) -> Self {
        ServiceError::Unavailable(format!("service actor unavailable: {e}"))
    }
}

impl From<sdsim_schema::PoolError> for ServiceError {
    fn from(e: sdsim_schema::PoolError) -> Self {
        ServiceError::Unavailable(e.to_string())
    }
}

impl From<diesel::result::Error> for ServiceError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error as E;
        match e {
            E::NotFound => ServiceError::NotFound("not found".into()),
            E::DatabaseError(kind, info) => {
                use diesel::result::DatabaseErrorKind as K;
                let message = info.message();
                match kind {
                    K::ClosedConnection | K::SerializationFailure => {
                        ServiceError::Unavailable(format!("database: {message}"))
                    }
                    // PostgreSQL keeps no NUL character in text or jsonb: the input is at
                    // fault, not the service (and a breaker must not open over it).
                    _ if message.contains("invalid byte sequence for encoding")
                        || message.contains("unsupported Unicode escape sequence") =>
                    {
                        ServiceError::invalid(
                            "input",
                            "text may not contain the NUL character (\\u0000)",
                        )
                    }
                    _ => ServiceError::Internal(format!("database: {message}")),
                }
            }
            other => ServiceError::Unavailable(format!("database: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_keeps_code_and_field() {
        let e = ServiceError::Conflict {
            code: "email_taken".into(),
            field: "email".into(),
            message: "an account with this e-mail already exists".into(),
        };
        let back = ServiceError::from_status(&e.to_status());
        assert_eq!(back, e);
        let e = ServiceError::invalid("password", "too long");
        assert_eq!(ServiceError::from_status(&e.to_status()), e);
        let e = ServiceError::RateLimited {
            retry_after_secs: 7,
        };
        assert_eq!(ServiceError::from_status(&e.to_status()), e);
    }

    #[test]
    fn internal_details_do_not_leak() {
        let s = ServiceError::Internal("password column missing".into()).to_status();
        assert_eq!(s.message(), "internal error");
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let s = Status::unavailable("tcp connect error");
        assert!(matches!(
            ServiceError::from_status(&s),
            ServiceError::Unavailable(_)
        ));
    }
}
