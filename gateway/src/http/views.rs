//! The JSON bodies the REST API answers with, one typed definition each.

use sdsim_protocols::proto::auth as pb;
use serde::Serialize;

/// An RFC 3339 time from Unix seconds; `null` for 0 (never).
pub fn timestamp(secs: i64) -> Option<String> {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) if secs > 0 => Some(t.to_rfc3339()),
        _ => None,
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub company: Option<String>,
    pub is_active: bool,
    pub is_verified: bool,
    pub is_admin: bool,
    pub roles: Vec<String>,
    pub created_at: Option<String>,
    pub last_login: Option<String>,
}

impl From<pb::UserProfile> for UserView {
    fn from(u: pb::UserProfile) -> Self {
        Self {
            id: u.user_id,
            company: (!u.company.is_empty()).then_some(u.company),
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_active: u.is_active,
            is_verified: u.is_verified,
            is_admin: u.is_admin,
            roles: u.roles,
            created_at: timestamp(u.created_at),
            last_login: timestamp(u.last_login),
        }
    }
}

/// `{"user": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pub user: UserView,
}

impl UserBody {
    pub fn from_pb(u: Option<pb::UserProfile>) -> Self {
        Self {
            user: u.unwrap_or_default().into(),
        }
    }
}

/// The answer to a login or a refresh: the user and the session's tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    pub user: UserView,
    pub access_token: String,
    /// Empty (left out) for the console, which gets it as an httpOnly cookie.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub session_id: String,
}

impl From<pb::LoginResponse> for SessionBody {
    fn from(r: pb::LoginResponse) -> Self {
        Self {
            user: r.user.unwrap_or_default().into(),
            access_token: r.access_token,
            refresh_token: r.refresh_token,
            token_type: "Bearer",
            expires_in: r.expires_in,
            session_id: r.session_id,
        }
    }
}

/// One of the user's sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: Option<String>,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    /// Whether this is the session of the request's token.
    pub current: bool,
}

impl From<pb::SessionInfo> for SessionView {
    fn from(s: pb::SessionInfo) -> Self {
        Self {
            id: s.session_id,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: timestamp(s.created_at),
            last_used_at: timestamp(s.last_used_at),
            expires_at: timestamp(s.expires_at),
            current: s.current,
        }
    }
}

/// `{"sessions": [...]}`: the user's active sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionsBody {
    pub sessions: Vec<SessionView>,
}

/// A page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsersBody {
    pub users: Vec<UserView>,
    /// How many users match, over every page.
    pub total: i64,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub occurred_at: Option<String>,
    pub event: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: String,
    pub user_agent: String,
    /// What the event carries (who did it, what changed).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<pb::AuditEntry> for AuditView {
    fn from(e: pb::AuditEntry) -> Self {
        Self {
            id: e.id,
            occurred_at: timestamp(e.occurred_at),
            event: e.event,
            user_id: (!e.user_id.is_empty()).then_some(e.user_id),
            session_id: (!e.session_id.is_empty()).then_some(e.session_id),
            ip: e.ip,
            user_agent: e.user_agent,
            detail: serde_json::from_str(&e.detail_json).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditBody {
    pub entries: Vec<AuditView>,
}

/// How many sessions were ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: i64,
}

/// How many of the user's other sessions were ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OtherSessionsEnded {
    pub other_sessions_ended: i64,
}

/// Whether the session was ended (false if it had already ended).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ended {
    pub ended: bool,
}

/// `{"verified": true}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub verified: bool,
}

/// Whether a confirmation mail was sent (false: the address is already verified).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationSent {
    pub sent: bool,
    pub message: &'static str,
}

/// A sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub message: &'static str,
}
