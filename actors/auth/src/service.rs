//! The auth actor: accounts, logins, sessions and token validation.
//!
//! The actor holds an `Arc<AuthCore>`; each handler clones it into a future, so requests run
//! concurrently while the actor stays the supervised unit (a panic in it is seen and
//! restarted). bcrypt always runs on the blocking pool, never on the executor.

use crate::cache::Lookup;
use crate::limits::Limits;
use crate::store::{Audit, Rotation};
use crate::tokens::{self, TokenService};
use crate::{store, validate};
use actix::prelude::*;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use sdsim_protocols::events::{kinds, Envelope, LoginEvent};
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::events::EventSink;
use sdsim_runtime::slot::Slot;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use sdsim_schema::models::{NewSession, NewUser, User};
use sdsim_schema::DbPool;
use std::sync::Arc;
use uuid::Uuid;

/// How long a validated session stays cached in Redis before the database is asked again.
const SESSION_CACHE_SECONDS: u64 = 30;

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

#[derive(Debug, Message)]
#[rtype(result = "Result<Profile, ServiceError>")]
pub struct Register {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoginOutcome {
    pub profile: Profile,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: Uuid,
}

#[derive(Debug, Message)]
#[rtype(result = "Result<LoginOutcome, ServiceError>")]
pub struct Login {
    pub email: String,
    pub password: String,
    pub origin: Origin,
}

#[derive(Debug, Message)]
#[rtype(result = "Result<LoginOutcome, ServiceError>")]
pub struct Refresh {
    pub refresh_token: String,
    pub origin: Origin,
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

#[derive(Debug, Message)]
#[rtype(result = "Result<Profile, ServiceError>")]
pub struct UpdateProfile {
    pub access_token: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `Some("")` clears it.
    pub company: Option<String>,
}

/// Returns how many other sessions were ended.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ServiceError>")]
pub struct ChangePassword {
    pub access_token: String,
    pub current_password: String,
    pub new_password: String,
    pub origin: Origin,
}

/// The live sessions of the access token's user.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<SessionView>, ServiceError>")]
pub struct ListSessions {
    pub access_token: String,
}

/// Ends one session of the access token's user; false if it was not live.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, ServiceError>")]
pub struct EndSession {
    pub access_token: String,
    pub session_id: Uuid,
}

#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ServiceError>")]
pub struct Logout {
    pub access_token: String,
    pub all_sessions: bool,
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

#[derive(Debug, Message)]
#[rtype(result = "Result<TokenInfo, ServiceError>")]
pub struct ValidateToken {
    pub token: String,
}

#[derive(Debug, Message)]
#[rtype(result = "Result<(Profile, Vec<String>), ServiceError>")]
pub struct GetUser {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked: Option<String>,
}

#[derive(Debug, Message)]
#[rtype(result = "Result<SessionState, ServiceError>")]
pub struct GetSession {
    pub session_id: Uuid,
}

pub struct AuthActor {
    core: Arc<AuthCore>,
    slot: Slot<AuthActor>,
    _link: ChildLink,
}

impl AuthActor {
    pub fn child(core: Arc<AuthCore>, slot: Slot<AuthActor>) -> ChildSpec {
        ChildSpec::worker("accounts", Restart::Permanent, move |link| {
            let addr = AuthActor {
                core: core.clone(),
                slot: slot.clone(),
                _link: link,
            }
            .start();
            Ok(ChildHandle::from_addr(addr))
        })
    }
}

impl Actor for AuthActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.slot.set(ctx.address());
    }
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.slot.clear(&ctx.address());
    }
}
sdsim_runtime::impl_supervised!(AuthActor);

async fn hash_password(
    hashing: &crate::hasher::Hasher,
    password: String,
    cost: u32,
) -> Result<String, ServiceError> {
    hashing
        .run(move || bcrypt::hash(password, cost))
        .await?
        .map_err(|e| ServiceError::Internal(format!("bcrypt: {e}")))
}

async fn verify_password(
    hashing: &crate::hasher::Hasher,
    password: String,
    hash: String,
) -> Result<bool, ServiceError> {
    hashing
        .run(move || bcrypt::verify(password, &hash))
        .await?
        .map_err(|e| ServiceError::Internal(format!("bcrypt: {e}")))
}

fn bad_credentials() -> ServiceError {
    ServiceError::unauthenticated("invalid_credentials", "email or password is incorrect")
}

impl AuthCore {
    /// bcrypt of a new password, off the executor, one hash per core at most.
    pub(crate) async fn hash(&self, password: String) -> Result<String, ServiceError> {
        hash_password(&self.hashing, password, self.bcrypt_cost).await
    }

    /// Creates the hash checked for unknown e-mails.
    pub fn dummy_hash(cost: u32) -> Result<String, String> {
        bcrypt::hash(tokens::new_refresh_token(), cost).map_err(|e| e.to_string())
    }

    async fn register(self: Arc<Self>, r: Register) -> Result<Profile, ServiceError> {
        let email = validate::email(&r.email)?;
        validate::new_password(&r.password)?;
        let first = validate::name("first_name", &r.first_name)?;
        let last = validate::name("last_name", &r.last_name)?;
        validate::password_strength(
            &r.password,
            &[&email, &first, &last],
            self.min_password_score,
        )?;
        let company = validate::company(r.company.as_deref())?;
        let l = &self.limits.config;
        self.limits
            .hit("register", &r.origin.ip, l.register_per_ip_per_hour, 3600)
            .await?;
        // Refuse a taken e-mail before paying for a hash; the unique index still decides races.
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        if store::user_by_email(&mut conn, &email).await?.is_some() {
            return Err(ServiceError::Conflict {
                code: "email_taken".into(),
                field: "email".into(),
                message: "an account with this email already exists".into(),
            });
        }
        drop(conn);
        let hash = hash_password(&self.hashing, r.password, self.bcrypt_cost).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::create_user(
            &mut conn,
            NewUser {
                email: &email,
                password_hash: &hash,
                first_name: &first,
                last_name: &last,
                company: company.as_deref(),
            },
        )
        .await?;
        tracing::info!(user_id = %user.id, "account registered");
        self.audit(Audit {
            event: "account.registered",
            user_id: Some(user.id),
            ip: &r.origin.ip,
            user_agent: &r.origin.user_agent,
            ..Default::default()
        })
        .await;
        Ok(Profile::new(user, vec![store::DEFAULT_ROLE.to_string()]))
    }

    async fn login(self: Arc<Self>, l: Login) -> Result<LoginOutcome, ServiceError> {
        let email = validate::email(&l.email).map_err(|e| match e {
            // A malformed e-mail is a client error worth naming; it reveals nothing.
            ServiceError::Invalid { .. } => e,
            other => other,
        })?;
        validate::login_password(&l.password)?;
        // Counted before the password is checked: parallel guesses cannot slip past.
        let attempt = match self.limits.login_attempt(&email, &l.origin.ip).await {
            Ok(a) => a,
            Err(e) => {
                self.audit(Audit {
                    event: "login.throttled",
                    ip: &l.origin.ip,
                    user_agent: &l.origin.user_agent,
                    detail: serde_json::json!({ "email": email }),
                    ..Default::default()
                })
                .await;
                return Err(e);
            }
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_email(&mut conn, &email).await?;
        drop(conn);
        let Some(user) = user else {
            // Same work as for a known e-mail, so timing does not reveal accounts.
            let _ = verify_password(&self.hashing, l.password, self.dummy_hash.clone()).await;
            self.audit(Audit {
                event: "login.failed",
                ip: &l.origin.ip,
                user_agent: &l.origin.user_agent,
                detail: serde_json::json!({ "email": email, "reason": "unknown_email" }),
                ..Default::default()
            })
            .await;
            return Err(bad_credentials());
        };
        if !verify_password(&self.hashing, l.password, user.password_hash.clone()).await? {
            let failures = match sdsim_schema::pool::get(&self.pool).await {
                Ok(mut conn) => store::count_failed_login(&mut conn, user.id).await.ok(),
                Err(_) => None,
            };
            self.audit(Audit {
                event: "login.failed",
                user_id: Some(user.id),
                ip: &l.origin.ip,
                user_agent: &l.origin.user_agent,
                detail: serde_json::json!({ "reason": "wrong_password", "failures": failures }),
                ..Default::default()
            })
            .await;
            return Err(bad_credentials());
        }
        self.limits.login_succeeded(attempt).await;
        if !user.is_active {
            return Err(ServiceError::unauthenticated(
                "account_disabled",
                "this account is disabled",
            ));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (roles, _) = store::roles_and_permissions(&mut conn, user.id).await?;
        let session_id = Uuid::new_v4();
        let refresh = tokens::new_refresh_token();
        let refresh_hash = tokens::hash_refresh_token(&refresh);
        let now = Utc::now();
        let session = store::start_session(
            &mut conn,
            NewSession {
                id: session_id,
                user_id: user.id,
                refresh_token_hash: &refresh_hash,
                ip: &l.origin.ip,
                user_agent: &l.origin.user_agent,
                expires_at: now + chrono::Duration::seconds(self.tokens.refresh_ttl),
            },
        )
        .await?;
        drop(conn);
        let mut profile = Profile::new(user, roles);
        profile.last_login_at = Some(session.created_at);
        let (access, exp) = self.tokens.issue(
            profile.id,
            session_id,
            &profile.email,
            profile.is_admin(),
            now,
        )?;
        self.cache_session(session_id, true).await;
        self.publish_login(&profile, session_id, session.created_at, &l.origin);
        self.audit(Audit {
            event: "login",
            user_id: Some(profile.id),
            session_id: Some(session_id),
            ip: &l.origin.ip,
            user_agent: &l.origin.user_agent,
            ..Default::default()
        })
        .await;
        tracing::info!(user_id = %profile.id, %session_id, "login");
        Ok(LoginOutcome {
            profile,
            access_token: access,
            refresh_token: refresh,
            expires_in: exp - now.timestamp(),
            session_id,
        })
    }

    fn publish_login(&self, p: &Profile, session_id: Uuid, at: DateTime<Utc>, o: &Origin) {
        let event = LoginEvent {
            user_id: p.id.to_string(),
            email: p.email.clone(),
            session_id: session_id.to_string(),
            at,
            ip: o.ip.clone(),
            user_agent: o.user_agent.clone(),
        };
        let data = match serde_json::to_value(&event) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode login event");
                return;
            }
        };
        let env = Envelope::new(kinds::AUTH_LOGIN, "auth", Some(p.id.to_string()), data);
        self.events
            .publish(self.ns.auth_events("login"), env.clone());
        self.events
            .publish(self.ns.user_notifications(&p.id.to_string()), env);
    }

    async fn refresh(self: Arc<Self>, r: Refresh) -> Result<LoginOutcome, ServiceError> {
        if r.refresh_token.is_empty() || r.refresh_token.len() > 256 {
            return Err(ServiceError::invalid(
                "refresh_token",
                "refresh_token is missing or malformed",
            ));
        }
        let lim = &self.limits.config;
        self.limits
            .hit("refresh", &r.origin.ip, lim.refresh_per_ip_per_minute, 60)
            .await?;
        let now = Utc::now();
        let new_refresh = tokens::new_refresh_token();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let rotation = store::rotate_refresh(
            &mut conn,
            &tokens::hash_refresh_token(&r.refresh_token),
            &tokens::hash_refresh_token(&new_refresh),
            now,
        )
        .await?;
        drop(conn);
        let session = match rotation {
            Rotation::Rotated(s) => s,
            Rotation::Invalid => {
                return Err(ServiceError::unauthenticated(
                    "refresh_token_invalid",
                    "refresh token is unknown, revoked or expired",
                ))
            }
            Rotation::Reused {
                session_id,
                user_id,
            } => {
                // A rotated-away token came back: someone else holds the family. End it.
                self.cache_session(session_id, false).await;
                tracing::warn!(%user_id, %session_id, "refresh token reused; session revoked");
                self.audit(Audit {
                    event: "token.reuse",
                    user_id: Some(user_id),
                    session_id: Some(session_id),
                    ip: &r.origin.ip,
                    user_agent: &r.origin.user_agent,
                    detail: serde_json::json!({ "action": "session_revoked" }),
                })
                .await;
                self.publish_logout(user_id, &[session_id], "refresh_token_reuse");
                return Err(ServiceError::unauthenticated(
                    "refresh_token_reused",
                    "this refresh token was already used; the session has been ended for safety",
                ));
            }
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_id(&mut conn, session.user_id)
            .await?
            .ok_or_else(|| {
                ServiceError::unauthenticated("refresh_token_invalid", "account no longer exists")
            })?;
        let (roles, _) = store::roles_and_permissions(&mut conn, user.id).await?;
        drop(conn);
        let profile = Profile::new(user, roles);
        let (access, exp) = self.tokens.issue(
            profile.id,
            session.id,
            &profile.email,
            profile.is_admin(),
            now,
        )?;
        Ok(LoginOutcome {
            profile,
            access_token: access,
            refresh_token: new_refresh,
            expires_in: exp - now.timestamp(),
            session_id: session.id,
        })
    }

    async fn logout(self: Arc<Self>, l: Logout) -> Result<usize, ServiceError> {
        let info = self.clone().validate(&l.access_token).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let ended: Vec<Uuid> = if l.all_sessions {
            store::revoke_all_sessions(&mut conn, info.user_id, "logout_all").await?
        } else {
            let n = store::revoke_session(&mut conn, info.session_id, "logout").await?;
            if n > 0 {
                vec![info.session_id]
            } else {
                vec![]
            }
        };
        drop(conn);
        for sid in &ended {
            self.cache_session(*sid, false).await;
        }
        let reason = if l.all_sessions {
            "logout_all"
        } else {
            "logout"
        };
        self.audit(Audit {
            event: "logout",
            user_id: Some(info.user_id),
            session_id: Some(info.session_id),
            detail: serde_json::json!({ "sessions_ended": ended.len(), "all": l.all_sessions }),
            ..Default::default()
        })
        .await;
        self.publish_logout(info.user_id, &ended, reason);
        Ok(ended.len())
    }

    /// After sessions were revoked in the database: refuse their tokens everywhere at once
    /// (Redis cache) and tell the mesh.
    pub(crate) async fn sessions_ended(&self, user_id: Uuid, ended: &[Uuid], reason: &str) {
        for sid in ended {
            self.cache_session(*sid, false).await;
        }
        if !ended.is_empty() {
            self.publish_logout(user_id, ended, reason);
        }
    }

    fn publish_logout(&self, user_id: Uuid, ended: &[Uuid], reason: &str) {
        let env = Envelope::new(
            kinds::AUTH_LOGOUT,
            "auth",
            Some(user_id.to_string()),
            serde_json::json!({
                "user_id": user_id.to_string(),
                "session_ids": ended.iter().map(Uuid::to_string).collect::<Vec<_>>(),
                "reason": reason,
                "at": Utc::now(),
            }),
        );
        self.events.publish(self.ns.auth_events("logout"), env);
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

    async fn update_profile(self: Arc<Self>, m: UpdateProfile) -> Result<Profile, ServiceError> {
        let info = self.clone().validate(&m.access_token).await?;
        let first = m
            .first_name
            .as_deref()
            .map(|f| validate::name("first_name", f))
            .transpose()?;
        let last = m
            .last_name
            .as_deref()
            .map(|l| validate::name("last_name", l))
            .transpose()?;
        let company = match m.company.as_deref() {
            None => None,
            Some(c) if c.trim().is_empty() => Some(None),
            Some(c) => Some(validate::company(Some(c))?),
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::update_profile(&mut conn, info.user_id, first, last, company).await?;
        let (roles, _) = store::roles_and_permissions(&mut conn, user.id).await?;
        Ok(Profile::new(user, roles))
    }

    async fn change_password(self: Arc<Self>, m: ChangePassword) -> Result<usize, ServiceError> {
        let info = self.clone().validate(&m.access_token).await?;
        validate::login_password(&m.current_password).map_err(|_| {
            ServiceError::invalid("current_password", "current_password is required")
        })?;
        validate::new_password(&m.new_password).map_err(|e| match e {
            ServiceError::Invalid { message, .. } => ServiceError::invalid(
                "new_password",
                message.replacen("password", "new_password", 1),
            ),
            other => other,
        })?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_id(&mut conn, info.user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        drop(conn);
        validate::password_strength(
            &m.new_password,
            &[&user.email, &user.first_name, &user.last_name],
            self.min_password_score,
        )
        .map_err(|e| match e {
            ServiceError::Invalid { message, .. } => ServiceError::invalid("new_password", message),
            other => other,
        })?;
        // The current password is a password guess like any login: same throttle.
        let attempt = self.limits.login_attempt(&user.email, &m.origin.ip).await?;
        if !verify_password(
            &self.hashing,
            m.current_password,
            user.password_hash.clone(),
        )
        .await?
        {
            self.audit(Audit {
                event: "password.change_failed",
                user_id: Some(user.id),
                session_id: Some(info.session_id),
                ip: &m.origin.ip,
                user_agent: &m.origin.user_agent,
                ..Default::default()
            })
            .await;
            return Err(ServiceError::invalid(
                "current_password",
                "current_password is incorrect",
            ));
        }
        self.limits.login_succeeded(attempt).await;
        let hash = hash_password(&self.hashing, m.new_password, self.bcrypt_cost).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let ended = store::change_password(&mut conn, user.id, info.session_id, &hash).await?;
        drop(conn);
        for sid in &ended {
            self.cache_session(*sid, false).await;
        }
        self.audit(Audit {
            event: "password.changed",
            user_id: Some(user.id),
            session_id: Some(info.session_id),
            ip: &m.origin.ip,
            user_agent: &m.origin.user_agent,
            detail: serde_json::json!({ "sessions_ended": ended.len() }),
        })
        .await;
        if !ended.is_empty() {
            self.publish_logout(user.id, &ended, "password_changed");
        }
        Ok(ended.len())
    }

    async fn list_sessions(
        self: Arc<Self>,
        m: ListSessions,
    ) -> Result<Vec<SessionView>, ServiceError> {
        let info = self.clone().validate(&m.access_token).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let sessions = store::live_sessions(&mut conn, info.user_id, Utc::now()).await?;
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.id == info.session_id,
                id: s.id,
                ip: s.ip,
                user_agent: s.user_agent,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
            })
            .collect())
    }

    async fn end_session(self: Arc<Self>, m: EndSession) -> Result<bool, ServiceError> {
        let info = self.clone().validate(&m.access_token).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // Only the caller's own sessions: someone else's id is "not found", not "forbidden",
        // so ids of other users' sessions cannot be probed.
        let owned = store::session_by_id(&mut conn, m.session_id)
            .await?
            .is_some_and(|s| s.user_id == info.user_id);
        if !owned {
            return Err(ServiceError::NotFound("no such session".into()));
        }
        let n = store::revoke_session(&mut conn, m.session_id, "ended_by_user").await?;
        drop(conn);
        if n > 0 {
            self.cache_session(m.session_id, false).await;
            self.audit(Audit {
                event: "session.ended",
                user_id: Some(info.user_id),
                session_id: Some(m.session_id),
                detail: serde_json::json!({ "by_session": info.session_id.to_string() }),
                ..Default::default()
            })
            .await;
            self.publish_logout(info.user_id, &[m.session_id], "ended_by_user");
        }
        Ok(n > 0)
    }

    /// Remembers a session's liveness in Redis so every gateway sees a revocation at once.
    async fn cache_session(&self, session_id: Uuid, live: bool) {
        if !live {
            self.validated.forget(session_id);
        }
        let key = self.ns.session_cache(&session_id.to_string());
        let mut conn = self.redis.clone();
        let (value, ttl) = if live {
            ("active", SESSION_CACHE_SECONDS)
        } else {
            ("revoked", self.tokens.access_ttl.max(1) as u64 + 60)
        };
        let res: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("EX")
            .arg(ttl)
            .query_async(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "session cache not updated");
        }
    }

    async fn session_live(&self, session_id: Uuid) -> Result<bool, ServiceError> {
        let key = self.ns.session_cache(&session_id.to_string());
        let mut conn = self.redis.clone();
        let cached: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(&key).query_async(&mut conn).await;
        match cached.ok().flatten().as_deref() {
            Some("active") => return Ok(true),
            Some("revoked") => return Ok(false),
            _ => {}
        }
        let mut db = sdsim_schema::pool::get(&self.pool).await?;
        let live = store::session_by_id(&mut db, session_id)
            .await?
            .is_some_and(|s| s.revoked_at.is_none() && s.expires_at > Utc::now());
        drop(db);
        self.cache_session(session_id, live).await;
        Ok(live)
    }

    /// Whether the session is live and, if so, its user's permissions (now in the cache).
    async fn check_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        epoch: u64,
    ) -> Result<Option<Arc<Vec<String>>>, ServiceError> {
        let began = std::time::Instant::now();
        if !self.session_live(session_id).await? {
            self.validated.mark_ended(session_id);
            return Ok(None);
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (_, permissions) = store::roles_and_permissions(&mut conn, user_id).await?;
        let p = Arc::new(permissions);
        self.validated.put(session_id, p.clone(), epoch, began);
        Ok(Some(p))
    }

    /// [`Self::check_session`], shared by every concurrent call for this session and epoch.
    async fn check_shared(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        epoch: u64,
    ) -> Result<Option<Arc<Vec<String>>>, ServiceError> {
        self.checks
            .run(session_id, epoch, || async move {
                let out = self.check_session(user_id, session_id, epoch).await;
                let outcome = match &out {
                    Ok(Some(_)) => "live",
                    Ok(None) => "ended",
                    Err(_) => "error",
                };
                self.session_checks.with_label_values(&[outcome]).inc();
                out
            })
            .await
    }

    pub async fn validate(self: Arc<Self>, token: &str) -> Result<TokenInfo, ServiceError> {
        let claims = self.tokens.verify(token)?;
        let bad = || ServiceError::unauthenticated("token_malformed", "token is malformed");
        let user_id: Uuid = claims.sub.parse().map_err(|_| bad())?;
        let session_id: Uuid = claims.sid.parse().map_err(|_| bad())?;
        let ended = || {
            ServiceError::unauthenticated("token_revoked", "this session has ended; log in again")
        };
        let permissions = match self.validated.get(session_id) {
            Lookup::Fresh(p) => p,
            Lookup::Refresh(p, epoch) => {
                // Answer now; check the session again off this call's path (a session found
                // ended is marked so by the check).
                let core = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = core.check_shared(user_id, session_id, epoch).await {
                        tracing::debug!(error = %e, "session refresh failed");
                        core.validated.refresh_failed(session_id);
                    }
                });
                p
            }
            Lookup::Miss(epoch) => self
                .check_shared(user_id, session_id, epoch)
                .await?
                .ok_or_else(ended)?,
            Lookup::Ended => return Err(ended()),
        };
        Ok(TokenInfo {
            user_id,
            email: claims.email.clone(),
            is_admin: claims.adm,
            session_id,
            permissions: permissions.as_ref().clone(),
            expires_at: claims.exp,
        })
    }

    async fn get_user(
        self: Arc<Self>,
        user_id: Uuid,
    ) -> Result<(Profile, Vec<String>), ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_id(&mut conn, user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {user_id}")))?;
        let (roles, perms) = store::roles_and_permissions(&mut conn, user_id).await?;
        Ok((Profile::new(user, roles), perms))
    }

    async fn get_session(self: Arc<Self>, id: Uuid) -> Result<SessionState, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let s = store::session_by_id(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no session {id}")))?;
        let revoked = match (&s.revoked_at, s.expires_at <= Utc::now()) {
            (Some(_), _) => Some(s.revoked_reason.clone().unwrap_or_else(|| "revoked".into())),
            (None, true) => Some("expired".into()),
            (None, false) => None,
        };
        Ok(SessionState {
            user_id: s.user_id,
            expires_at: s.expires_at,
            last_used_at: s.last_used_at,
            revoked,
        })
    }
}

macro_rules! forward {
    ($msg:ty, $out:ty, |$core:ident, $m:ident| $body:expr) => {
        impl Handler<$msg> for AuthActor {
            type Result = ResponseFuture<Result<$out, ServiceError>>;
            fn handle(&mut self, $m: $msg, _: &mut Context<Self>) -> Self::Result {
                let $core = self.core.clone();
                Box::pin(async move { $body.await })
            }
        }
    };
}

forward!(Register, Profile, |core, m| core.register(m));
forward!(Login, LoginOutcome, |core, m| core.login(m));
forward!(Refresh, LoginOutcome, |core, m| core.refresh(m));
forward!(Logout, usize, |core, m| core.logout(m));
forward!(ValidateToken, TokenInfo, |core, m| async move {
    core.validate(&m.token).await
});
forward!(GetUser, (Profile, Vec<String>), |core, m| core
    .get_user(m.user_id));
forward!(GetSession, SessionState, |core, m| core
    .get_session(m.session_id));
forward!(ListSessions, Vec<SessionView>, |core, m| core
    .list_sessions(m));
forward!(EndSession, bool, |core, m| core.end_session(m));
forward!(crate::recovery::RequestVerification, bool, |core, m| core
    .request_verification(m));
forward!(crate::recovery::VerifyEmail, (), |core, m| core
    .verify_email(m));
forward!(crate::recovery::RequestReset, (), |core, m| core
    .request_reset(m));
forward!(crate::recovery::ResetPassword, usize, |core, m| core
    .reset_password(m));
forward!(
    crate::admin::Admin,
    crate::admin::AdminOutcome,
    |core, m| core.admin(m)
);
forward!(UpdateProfile, Profile, |core, m| core.update_profile(m));
forward!(ChangePassword, usize, |core, m| core.change_password(m));

/// Sends a message to the live auth actor, or says the service is restarting.
pub async fn call<M>(slot: &Slot<AuthActor>, msg: M) -> Result<M::Result, ServiceError>
where
    M: Message + Send + 'static,
    M::Result: Send,
    AuthActor: Handler<M>,
{
    let addr = slot
        .get()
        .ok_or_else(|| ServiceError::Unavailable("auth service is restarting".into()))?;
    Ok(addr.send(msg).await?)
}
