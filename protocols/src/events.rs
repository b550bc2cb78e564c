//! Payloads published on Redis pub/sub. Every event is an [`Envelope`] whose `type` names it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What every event on a Redis channel looks like.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    /// Dotted event type, e.g. `auth.login`; becomes the WebSocket frame's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique id of this event (idempotent consumers de-duplicate on it).
    pub id: String,
    /// The service that published it.
    pub source: String,
    pub occurred_at: DateTime<Utc>,
    /// The user the event concerns, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub data: serde_json::Value,
}

impl Envelope {
    pub fn new(
        kind: impl Into<String>,
        source: impl Into<String>,
        user_id: Option<String>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            kind: kind.into(),
            id: uuid::Uuid::new_v4().to_string(),
            source: source.into(),
            occurred_at: Utc::now(),
            user_id,
            data,
        }
    }
}

/// An event's payload as the envelope's `data`: every typed event (`LoginEvent`, ...) is
/// one, so a payload has one definition, its struct.
pub trait EventData: Serialize {
    fn data(&self) -> serde_json::Value {
        // These payloads are plain fields (strings, numbers, times): encoding cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl<T: Serialize> EventData for T {}

/// Data of `auth.login`, published on `auth:events:login` and on the user's
/// notification channel at each successful login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginEvent {
    pub user_id: String,
    pub email: String,
    pub session_id: String,
    /// When the login happened.
    pub at: DateTime<Utc>,
    /// Where from: the client address the gateway saw, and its user agent.
    pub ip: String,
    pub user_agent: String,
}

/// Data of `auth.logout`, published on `auth:events:logout` when sessions end (logout,
/// password change or reset, an admin, a lock).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogoutEvent {
    pub user_id: String,
    pub session_ids: Vec<String>,
    /// Why: `logout`, `password_changed`, `admin`, ...
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// How a role changed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleChange {
    Assigned,
    Removed,
}

/// Data of `auth.permission_changed`, published on `auth:events:permission_changed` and on
/// the user's notification channel when a role is assigned or removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PermissionChangedEvent {
    pub user_id: String,
    pub role: String,
    pub change: RoleChange,
    pub at: DateTime<Utc>,
}

/// Data of `project.created`, `project.updated`, `project.deleted`, `project.restored`,
/// published on `project:events:{created|updated|deleted|restored}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProjectEvent {
    pub project_id: String,
    pub owner_id: String,
    /// Who did it.
    pub actor_id: String,
    pub name: String,
    /// The project's version after it.
    pub version: i32,
    pub at: DateTime<Utc>,
}

/// Data of `project.shared`, sent to the person a project was shared with (on their
/// notification channel): who shared what, at which level, and where it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProjectShared {
    pub project_id: String,
    pub project_name: String,
    pub by_user_id: String,
    pub access_level: String,
    /// Where the project opens (the console's link).
    pub link: String,
    pub at: DateTime<Utc>,
}

/// A notification for a person, queued by any service on `async:notifications:queue` (a
/// Redis list). The auth service stores it in the person's inbox (so it waits while they
/// are offline) and publishes it on their notification channel (so it shows at once on
/// every session they have open), as an envelope whose `type` is `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotificationJob {
    /// Unique id: storing it twice stores it once.
    pub id: String,
    pub user_id: String,
    /// Event type, e.g. `project.shared`.
    pub kind: String,
    /// One line for people, e.g. "Ada shared 'Shop' with you".
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// Where it leads (the console's link).
    #[serde(default)]
    pub link: String,
    /// The typed event's data.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Event type names, used both as the envelope `type` and as the WebSocket frame `type`.
pub mod kinds {
    pub const AUTH_LOGIN: &str = "auth.login";
    pub const AUTH_LOGOUT: &str = "auth.logout";
    pub const AUTH_PERMISSION_CHANGED: &str = "auth.permission_changed";
    pub const SYSTEM_ANNOUNCEMENT: &str = "system.announcement";
    pub const PROJECT_CREATED: &str = "project.created";
    pub const PROJECT_UPDATED: &str = "project.updated";
    pub const PROJECT_DELETED: &str = "project.deleted";
    pub const PROJECT_RESTORED: &str = "project.restored";
    pub const PROJECT_SHARED: &str = "project.shared";
    /// Someone's share of a project ended (`data`: `project_id`, `user_id`), on
    /// `project:events:unshared`: their live views of it close.
    pub const PROJECT_UNSHARED: &str = "project.unshared";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_type_field() {
        let e = Envelope::new(
            kinds::AUTH_LOGIN,
            "auth",
            Some("u".into()),
            serde_json::json!({"a": 1}),
        );
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"type\":\"auth.login\""));
        let back: Envelope = serde_json::from_str(&s).unwrap();
        assert_eq!(back, e);
    }
}

/// A mail to send, queued on `async:email:queue` (a Redis list) for the mail worker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailJob {
    /// Unique id; also the outbox file name.
    pub id: String,
    pub to: String,
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// What the mail is for: `verify_email`, `reset_password`.
    pub kind: String,
    /// Delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
}
