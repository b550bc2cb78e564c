//! Address verification and password reset by e-mail.
//!
//! Tokens: 256 random bits, single use, valid `auth.mail.token_ttl_seconds` (an hour by
//! default), stored only as SHA-256. Mails go through `async:email:queue` to the
//! [`crate::mailer`] worker. A reset request for an unknown address answers exactly as for a
//! known one (same body, same status, no mail, no timing difference worth measuring: no hash
//! is computed in either case).

use crate::core::{AuthCore, Origin};
use crate::store::{self, Audit};
use crate::{tokens, validate};
use chrono::Utc;
use sdsim_protocols::events::EmailJob;
use sdsim_runtime::error::ServiceError;
use std::sync::Arc;
use uuid::Uuid;

/// Sends a verification link to the token's user. Ok(false) if already verified.
#[derive(Debug)]
pub struct RequestVerification {
    pub access_token: String,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct VerifyEmail {
    pub token: String,
}

/// Always Ok(()) for a well-formed address, whether or not it has an account.
#[derive(Debug)]
pub struct RequestReset {
    pub email: String,
    pub origin: Origin,
}

/// Returns how many sessions ended.
#[derive(Debug)]
pub struct ResetPassword {
    pub token: String,
    pub new_password: String,
    pub origin: Origin,
}

fn bad_token() -> ServiceError {
    ServiceError::invalid(
        "token",
        "this link is invalid, already used or expired; ask for a new one",
    )
}

fn token_shape(token: &str) -> Result<(), ServiceError> {
    if token.is_empty() || token.len() > 128 {
        return Err(bad_token());
    }
    Ok(())
}

impl AuthCore {
    async fn mail_token(&self, user_id: Uuid, to: &str, purpose: &str) -> Result<(), ServiceError> {
        let m = &self.mail;
        let token = tokens::new_refresh_token();
        let now = Utc::now();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::create_email_token(
            &mut conn,
            &tokens::hash_refresh_token(&token),
            user_id,
            purpose,
            now + chrono::Duration::seconds(m.token_ttl_seconds),
        )
        .await?;
        drop(conn);
        let base = m.public_url.trim_end_matches('/');
        let minutes = m.token_ttl_seconds / 60;
        let (subject, body) = match purpose {
            "verify_email" => (
                "Confirm your e-mail address",
                format!(
                    "Confirm this address for your sdsim account:\n\n{base}/verify-email?token={token}\n\nThe link works once, for {minutes} minutes.\n"
                ),
            ),
            _ => (
                "Reset your password",
                format!(
                    "Someone (hopefully you) asked to reset the password of your sdsim account.\n\n{base}/reset-password?token={token}\n\nThe link works once, for {minutes} minutes. If it was not you, ignore this mail: nothing changes.\n"
                ),
            ),
        };
        let job = EmailJob {
            id: Uuid::new_v4().to_string(),
            to: to.to_string(),
            subject: subject.into(),
            body,
            kind: purpose.into(),
            attempts: 0,
        };
        let payload = serde_json::to_string(&job)
            .map_err(|e| ServiceError::Internal(format!("cannot encode a mail: {e}")))?;
        let mut conn = self.redis.clone();
        redis::cmd("LPUSH")
            .arg(self.ns.async_queue("email"))
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("mail queue unavailable: {e}")))?;
        Ok(())
    }

    pub async fn request_verification(
        self: Arc<Self>,
        m: RequestVerification,
    ) -> Result<bool, ServiceError> {
        let info = self.clone().validate(&m.access_token).await?;
        let l = &self.limits.config;
        self.limits
            .hit("mail", &m.origin.ip, l.mail_per_ip_per_hour, 3600)
            .await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_id(&mut conn, info.user_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("no such user".into()))?;
        drop(conn);
        if user.is_verified {
            return Ok(false);
        }
        self.limits
            .hit_address("mail", &user.email, l.mail_per_address_per_hour, 3600)
            .await?;
        self.mail_token(user.id, &user.email, "verify_email")
            .await?;
        Ok(true)
    }

    pub async fn verify_email(self: Arc<Self>, m: VerifyEmail) -> Result<(), ServiceError> {
        token_shape(&m.token)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::verify_email_with_token(
            &mut conn,
            &tokens::hash_refresh_token(&m.token),
            Utc::now(),
        )
        .await?
        .ok_or_else(bad_token)?;
        store::audit(
            &mut conn,
            Audit {
                event: "email.verified",
                user_id: Some(user),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    pub async fn request_reset(self: Arc<Self>, m: RequestReset) -> Result<(), ServiceError> {
        let email = validate::email(&m.email)?;
        let l = &self.limits.config;
        self.limits
            .hit("mail", &m.origin.ip, l.mail_per_ip_per_hour, 3600)
            .await?;
        self.limits
            .hit_address("mail", &email, l.mail_per_address_per_hour, 3600)
            .await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user = store::user_by_email(&mut conn, &email).await?;
        drop(conn);
        match user {
            Some(u) if u.is_active => {
                // A failure to queue is logged, not shown: the answer must not depend on
                // whether the address has an account.
                if let Err(e) = self.mail_token(u.id, &u.email, "reset_password").await {
                    tracing::error!(error = %e, "password reset mail not queued");
                }
                self.audit_event("password.reset_requested", Some(u.id), &m.origin)
                    .await;
            }
            _ => {
                self.audit_event("password.reset_requested_unknown", None, &m.origin)
                    .await
            }
        }
        Ok(())
    }

    pub async fn reset_password(self: Arc<Self>, m: ResetPassword) -> Result<usize, ServiceError> {
        token_shape(&m.token)?;
        let field = |e: ServiceError| match e {
            ServiceError::Invalid { message, .. } => ServiceError::invalid(
                "new_password",
                message.replacen("password", "new_password", 1),
            ),
            other => other,
        };
        validate::new_password(&m.new_password).map_err(field)?;
        let hash_of_token = tokens::hash_refresh_token(&m.token);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let user_id =
            store::peek_email_token(&mut conn, &hash_of_token, "reset_password", Utc::now())
                .await?
                .ok_or_else(bad_token)?;
        let user = store::user_by_id(&mut conn, user_id)
            .await?
            .ok_or_else(bad_token)?;
        drop(conn);
        validate::password_strength(
            &m.new_password,
            &[&user.email, &user.first_name, &user.last_name],
            self.min_password_score,
        )
        .map_err(field)?;
        let new_hash = self.hash(m.new_password).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // The token is used inside the transaction: of two concurrent resets, one wins.
        let (user_id, ended) =
            store::reset_password_with_token(&mut conn, &hash_of_token, &new_hash, Utc::now())
                .await?
                .ok_or_else(bad_token)?;
        drop(conn);
        self.sessions_ended(user_id, &ended, "password_reset").await;
        self.audit_event("password.reset", Some(user_id), &m.origin)
            .await;
        Ok(ended.len())
    }

    async fn audit_event(&self, event: &'static str, user_id: Option<Uuid>, o: &Origin) {
        self.audit(Audit {
            event,
            user_id,
            ip: &o.ip,
            user_agent: &o.user_agent,
            ..Default::default()
        })
        .await;
    }
}
