//! JSON frames exchanged over the gateway's WebSockets. Every frame has a `type` field.

use serde::{Deserialize, Serialize};

/// Frames a client sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Must be the first frame unless an `Authorization` header was sent.
    Auth {
        token: String,
        /// Resume after this offset (a stream's entry id), on `/ws/simulation/{id}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// An edit of the live document (`/ws/collaboration/{project_id}`; docs/collaboration.md).
    Edit {
        client_id: String,
        edit_id: i64,
        ops: serde_json::Value,
    },
    /// What this person has selected and where their pointer is (`/ws/collaboration`).
    Presence {
        #[serde(default)]
        selection: serde_json::Value,
        #[serde(default)]
        pointer: serde_json::Value,
    },
    /// Application-level ping; answered with `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

/// A server event: `{"type", "channel", "offset", "data"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventFrame {
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: String,
    /// Position of this event in its source (stream entry id, or event id for pub/sub).
    pub offset: String,
    pub data: serde_json::Value,
}

/// Control frames the server sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Authentication accepted.
    AuthOk { user_id: String, session_id: String },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A frame the server could not accept; the socket stays open unless said otherwise.
    Error { code: String, message: String },
}

/// The `data` of a run's end frame (`simulation.completed|failed|stopped`): the same whether
/// it comes live from the stream or is rebuilt from the stored run.
pub fn run_end_data(status: &str, error: Option<&str>, windows: u64) -> serde_json::Value {
    serde_json::json!({ "status": status, "error": error, "windows": windows })
}

/// WebSocket close codes in the 4000 range, saying why the server closed.
pub mod close_codes {
    pub const UNAUTHENTICATED: u16 = 4001;
    pub const FORBIDDEN: u16 = 4003;
    /// Unknown, or not visible to this user (the same code for both).
    pub const NOT_FOUND: u16 = 4004;
    pub const TOO_SLOW: u16 = 4008;
    pub const TOKEN_EXPIRED: u16 = 4009;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_frame_parses() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"auth","token":"abc"}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Auth {
                token: "abc".into(),
                since: None
            }
        );
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"auth","token":"abc","since":"7-0"}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Auth {
                token: "abc".into(),
                since: Some("7-0".into())
            }
        );
    }

    #[test]
    fn unknown_frame_is_an_error() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"token":"abc"}"#).is_err());
    }

    #[test]
    fn server_frames_carry_type() {
        let s = serde_json::to_string(&ServerFrame::AuthOk {
            user_id: "u".into(),
            session_id: "s".into(),
        })
        .unwrap();
        assert!(s.contains("\"type\":\"auth_ok\""));
    }
}
