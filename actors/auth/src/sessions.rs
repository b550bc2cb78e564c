//! Sessions: token validation (with the in-process cache and its single flight), logout,
//! listing and ending sessions, and what other services ask about a user or a session.

use crate::cache::Lookup;
use crate::core::{AuthCore, Profile, SessionState, SessionView, TokenInfo};
use crate::store::{self, Audit};
use chrono::Utc;
use sdsim_protocols::events::{kinds, Envelope, EventData, LogoutEvent};
use sdsim_runtime::error::ServiceError;
use std::sync::Arc;
use uuid::Uuid;

/// How long a validated session stays cached in Redis before the database is asked again.
const SESSION_CACHE_SECONDS: u64 = 30;

/// The live sessions of the access token's user.
#[derive(Debug)]
pub struct ListSessions {
    pub access_token: String,
}

/// Ends one session of the access token's user; false if it was not live.
#[derive(Debug)]
pub struct EndSession {
    pub access_token: String,
    pub session_id: Uuid,
}

#[derive(Debug)]
pub struct Logout {
    pub access_token: String,
    pub all_sessions: bool,
}

#[derive(Debug)]
pub struct ValidateToken {
    pub token: String,
}

#[derive(Debug)]
pub struct GetUser {
    pub user_id: Uuid,
}

/// A user's profile (their roles, not what the roles allow).
#[derive(Debug)]
pub struct GetProfile {
    pub user_id: Uuid,
}

/// The account of an e-mail address, for other services (never exposed to clients).
#[derive(Debug)]
pub struct LookupUser {
    pub email: String,
}

#[derive(Debug)]
pub struct GetSession {
    pub session_id: Uuid,
}

impl AuthCore {
    pub async fn logout(self: Arc<Self>, l: Logout) -> Result<usize, ServiceError> {
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
        self.revoked(&ended).await;
        let reason = if l.all_sessions {
            "logout_all"
        } else {
            "logout"
        };
        self.publish_logout(info.user_id, &ended, reason);
        self.audit(Audit {
            event: "logout",
            user_id: Some(info.user_id),
            session_id: Some(info.session_id),
            detail: serde_json::json!({ "sessions_ended": ended.len(), "all": l.all_sessions }),
            ..Default::default()
        })
        .await;
        Ok(ended.len())
    }

    /// After sessions were revoked in the database: refuse their tokens everywhere at once
    /// (Redis cache) and tell the mesh.
    pub(crate) async fn sessions_ended(
        self: &Arc<Self>,
        user_id: Uuid,
        ended: &[Uuid],
        reason: &str,
    ) {
        self.revoked(ended).await;
        if !ended.is_empty() {
            self.publish_logout(user_id, ended, reason);
        }
    }

    pub(crate) fn publish_logout(&self, user_id: Uuid, ended: &[Uuid], reason: &str) {
        let env = Envelope::new(
            kinds::AUTH_LOGOUT,
            "auth",
            Some(user_id.to_string()),
            LogoutEvent {
                user_id: user_id.to_string(),
                session_ids: ended.iter().map(Uuid::to_string).collect(),
                reason: reason.to_string(),
                at: Utc::now(),
            }
            .data(),
        );
        self.events.publish(self.ns.auth_events("logout"), env);
    }

    pub async fn list_sessions(
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

    pub async fn end_session(self: Arc<Self>, m: EndSession) -> Result<bool, ServiceError> {
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
            self.sessions_ended(info.user_id, &[m.session_id], "ended_by_user")
                .await;
            self.audit(Audit {
                event: "session.ended",
                user_id: Some(info.user_id),
                session_id: Some(m.session_id),
                detail: serde_json::json!({ "by_session": info.session_id.to_string() }),
                ..Default::default()
            })
            .await;
        }
        Ok(n > 0)
    }

    /// Sessions just revoked in the database: refused by this instance at once, then marked
    /// revoked in Redis for every instance on a task of its own, awaited: a caller that gives
    /// up meanwhile (its deadline) cannot leave the mark undone, and with it the session
    /// accepted elsewhere for as long as Redis said "active".
    pub(crate) async fn revoked(self: &Arc<Self>, ended: &[Uuid]) {
        for sid in ended {
            self.validated.forget(*sid);
        }
        if ended.is_empty() {
            return;
        }
        let core = self.clone();
        let ended = ended.to_vec();
        let marked = tokio::spawn(async move {
            for sid in ended {
                core.cache_session(sid, false).await;
            }
        });
        if let Err(e) = marked.await {
            tracing::warn!(error = %e, "revoked sessions not marked in Redis");
        }
    }

    /// Remembers a session's liveness in Redis so every instance sees a revocation at once
    /// (this one's own cache is [`Self::revoked`]'s to update).
    pub(crate) async fn cache_session(&self, session_id: Uuid, live: bool) {
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

    pub(crate) async fn session_live(&self, session_id: Uuid) -> Result<bool, ServiceError> {
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
    pub(crate) async fn check_session(
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
        let permissions = store::permissions(&mut conn, user_id).await?;
        let p = Arc::new(permissions);
        self.validated.put(session_id, p.clone(), epoch, began);
        Ok(Some(p))
    }

    /// [`Self::check_session`], shared by every concurrent call for this session and epoch.
    pub(crate) async fn check_shared(
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

    pub async fn get_user(
        self: Arc<Self>,
        GetUser { user_id }: GetUser,
    ) -> Result<(Profile, Vec<String>), ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_id(&mut conn, user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {user_id}")))?;
        let (roles, perms) = store::roles_and_permissions(&mut conn, user_id).await?;
        Ok((Profile::new(user, roles), perms))
    }

    pub async fn get_profile(
        self: Arc<Self>,
        GetProfile { user_id }: GetProfile,
    ) -> Result<Profile, ServiceError> {
        let conn = sdsim_schema::pool::get(&self.pool).await?;
        let (user, roles) = store::user_with_roles(&conn, user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no user {user_id}")))?;
        Ok(Profile::new(user, roles))
    }

    pub async fn get_session(
        self: Arc<Self>,
        GetSession { session_id: id }: GetSession,
    ) -> Result<SessionState, ServiceError> {
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

    pub async fn validate_token(
        self: Arc<Self>,
        m: ValidateToken,
    ) -> Result<TokenInfo, ServiceError> {
        self.validate(&m.token).await
    }

    /// The account of `email` (normalised as at registration), if any.
    pub async fn lookup_user(
        self: Arc<Self>,
        m: LookupUser,
    ) -> Result<Option<Profile>, ServiceError> {
        let email = m.email.trim().to_lowercase();
        if email.is_empty() || email.len() > 320 {
            return Err(ServiceError::invalid(
                "email",
                "email must be an e-mail address",
            ));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let Some(user) = store::user_by_email(&mut conn, &email).await? else {
            return Ok(None);
        };
        let roles = store::roles(&mut conn, user.id).await?;
        Ok(Some(Profile::new(user, roles)))
    }
}
