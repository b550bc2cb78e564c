//! Accounts: registration, login, token refresh, profile and password changes.

use crate::core::{
    bad_credentials, hash_password, verify_password, AuthCore, LoginOutcome, Origin, Profile,
};
use crate::store::{self, Audit, Rotation};
use crate::tokens;
use crate::validate;
use chrono::{DateTime, Utc};
use sdsim_protocols::events::{kinds, Envelope, EventData, LoginEvent};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::models::{NewSession, NewUser};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug)]
pub struct Register {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct Login {
    pub email: String,
    pub password: String,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct Refresh {
    pub refresh_token: String,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct UpdateProfile {
    pub access_token: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `Some("")` clears it.
    pub company: Option<String>,
}

/// Returns how many other sessions were ended.
#[derive(Debug)]
pub struct ChangePassword {
    pub access_token: String,
    pub current_password: String,
    pub new_password: String,
    pub origin: Origin,
}

impl AuthCore {
    pub async fn register(self: Arc<Self>, r: Register) -> Result<Profile, ServiceError> {
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

    pub async fn login(self: Arc<Self>, l: Login) -> Result<LoginOutcome, ServiceError> {
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
        let roles = store::roles(&mut conn, user.id).await?;
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
        let env = Envelope::new(
            kinds::AUTH_LOGIN,
            "auth",
            Some(p.id.to_string()),
            event.data(),
        );
        self.events
            .publish(self.ns.auth_events("login"), env.clone());
        self.events
            .publish(self.ns.user_notifications(&p.id.to_string()), env);
    }

    pub async fn refresh(self: Arc<Self>, r: Refresh) -> Result<LoginOutcome, ServiceError> {
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
                self.sessions_ended(user_id, &[session_id], "refresh_token_reuse")
                    .await;
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
        let roles = store::roles(&mut conn, user.id).await?;
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

    pub async fn update_profile(
        self: Arc<Self>,
        m: UpdateProfile,
    ) -> Result<Profile, ServiceError> {
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
        let roles = store::roles(&mut conn, user.id).await?;
        Ok(Profile::new(user, roles))
    }

    pub async fn change_password(
        self: Arc<Self>,
        m: ChangePassword,
    ) -> Result<usize, ServiceError> {
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
        self.sessions_ended(user.id, &ended, "password_changed")
            .await;
        self.audit(Audit {
            event: "password.changed",
            user_id: Some(user.id),
            session_id: Some(info.session_id),
            ip: &m.origin.ip,
            user_agent: &m.origin.user_agent,
            detail: serde_json::json!({ "sessions_ended": ended.len() }),
        })
        .await;
        Ok(ended.len())
    }
}
