//! [`AuthCore`], the auth service's logic and state, and the domain types it answers with.
//! Its operations live by concern in [`crate::accounts`] and [`crate::sessions`]; the
//! gRPC adapter calls them on the multi-threaded runtime (see [`crate::actor`] for who owns
//! the core). bcrypt always runs on the hashing pool, never on the executor.

use crate::limits::Limits;
use crate::store::{self, Audit};
use crate::tokens::TokenService;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::events::EventSink;
use sdsim_schema::models::User;
use sdsim_schema::DbPool;
use std::sync::Arc;
use uuid::Uuid;

pub struct AuthCore {
    pub pool: DbPool,
    pub tokens: TokenService,
    pub bcrypt_cost: u32,
    /// A hash of a random password, checked when the e-mail is unknown so that a wrong
    /// e-mail costs the same time as a wrong password.
    pub dummy_hash: String,
    pub events: EventSink,
    pub redis: ConnectionManager,
    pub ns: Namespace,
    pub limits: Limits,
    pub min_password_score: u8,
    /// Recent validations (see [`crate::cache`]).
    pub validated: crate::cache::ValidationCache,
    /// Session checks under way, shared by concurrent validations.
    pub checks: crate::cache::Flights<Result<Option<Arc<Vec<String>>>, ServiceError>>,
    /// `sdsim_auth_session_checks_total{outcome}`.
    pub session_checks: prometheus::IntCounterVec,
    /// The bcrypt pool (see [`crate::hasher`]).
    pub hashing: Arc<crate::hasher::Hasher>,
    pub mail: crate::settings::MailSettings,
}

impl std::fmt::Debug for AuthCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCore").finish_non_exhaustive()
    }
}

/// Public view of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl Profile {
    pub(crate) fn new(u: User, roles: Vec<String>) -> Self {
        Self {
            id: u.id,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            company: u.company,
            is_active: u.is_active,
            is_verified: u.is_verified,
            roles,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoginOutcome {
    pub profile: Profile,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: Uuid,
}

/// One of a user's sessions, as the user sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub id: Uuid,
    pub ip: String,
    pub user_agent: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub current: bool,
}

/// What a valid access token says, once its session is known to be live.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub user_id: Uuid,
    pub email: String,
    pub is_admin: bool,
    pub session_id: Uuid,
    pub permissions: Vec<String>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked: Option<String>,
}

pub(crate) async fn hash_password(
    hashing: &crate::hasher::Hasher,
    password: String,
    cost: u32,
) -> Result<String, ServiceError> {
    hashing
        .run(move || bcrypt::hash(password, cost))
        .await?
        .map_err(|e| ServiceError::Internal(format!("bcrypt: {e}")))
}

pub(crate) async fn verify_password(
    hashing: &crate::hasher::Hasher,
    password: String,
    hash: String,
) -> Result<bool, ServiceError> {
    hashing
        .run(move || bcrypt::verify(password, &hash))
        .await?
        .map_err(|e| ServiceError::Internal(format!("bcrypt: {e}")))
}

pub(crate) fn bad_credentials() -> ServiceError {
    ServiceError::unauthenticated("invalid_credentials", "email or password is incorrect")
}

impl AuthCore {
    /// bcrypt of a new password, off the executor, one hash per core at most.
    pub(crate) async fn hash(&self, password: String) -> Result<String, ServiceError> {
        hash_password(&self.hashing, password, self.bcrypt_cost).await
    }

    /// Creates the hash checked for unknown e-mails.
    pub fn dummy_hash(cost: u32) -> Result<String, String> {
        bcrypt::hash(crate::tokens::new_refresh_token(), cost).map_err(|e| e.to_string())
    }

    /// Appends to the audit log; a failure is logged, never the caller's error.
    pub(crate) async fn audit(&self, a: Audit<'_>) {
        let event = a.event;
        let res = match sdsim_schema::pool::get(&self.pool).await {
            Ok(mut conn) => store::audit(&mut conn, a).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = res {
            tracing::error!(%event, error = %e, "audit event not recorded");
        }
    }
}
