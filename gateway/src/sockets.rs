//! Every authenticated WebSocket of this gateway instance, by the auth session it signed in
//! with, so that a session ended anywhere (signed out, revoked from another device, the
//! account locked, the password changed or reset) closes its sockets at once with 4001,
//! rather than when their access token expires. `auth:events:logout` names the sessions
//! ([`crate::access::watch_sessions`]); every gateway hears it, this one included.

use crate::outlet::Disconnect;
use actix::Recipient;
use sdsim_protocols::frames::close_codes;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Sockets by auth session id; cheap to share behind an `Arc`.
#[derive(Default)]
pub struct SessionSockets {
    by_session: Mutex<HashMap<String, HashMap<Uuid, Recipient<Disconnect>>>>,
}

impl SessionSockets {
    /// Socket `socket` signed in with `session`.
    pub fn add(&self, session: &str, socket: Uuid, disconnect: Recipient<Disconnect>) {
        if let Ok(mut m) = self.by_session.lock() {
            m.entry(session.to_string())
                .or_default()
                .insert(socket, disconnect);
        }
    }

    /// Socket `socket` closed.
    pub fn remove(&self, session: &str, socket: Uuid) {
        if let Ok(mut m) = self.by_session.lock() {
            if let Some(sockets) = m.get_mut(session) {
                sockets.remove(&socket);
                if sockets.is_empty() {
                    m.remove(session);
                }
            }
        }
    }

    /// Closes every socket of the ended `sessions` with 4001; answers how many.
    pub fn end<'a>(&self, sessions: impl IntoIterator<Item = &'a str>) -> usize {
        let ended: Vec<Recipient<Disconnect>> = match self.by_session.lock() {
            Ok(mut m) => sessions
                .into_iter()
                .filter_map(|s| m.remove(s))
                .flat_map(HashMap::into_values)
                .collect(),
            Err(_) => return 0,
        };
        for d in &ended {
            d.do_send(Disconnect {
                code: close_codes::UNAUTHENTICATED,
                reason: "the session ended (signed out or revoked); sign in again".into(),
                drain: false,
            });
        }
        ended.len()
    }

    /// Sockets open, over every session.
    pub fn len(&self) -> usize {
        self.by_session
            .lock()
            .map(|m| m.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, Context, Handler};
    use std::sync::Arc;

    struct Sock(Arc<Mutex<Vec<u16>>>);
    impl Actor for Sock {
        type Context = Context<Self>;
    }
    impl Handler<Disconnect> for Sock {
        type Result = ();
        fn handle(&mut self, m: Disconnect, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(m.code);
        }
    }

    #[test]
    fn an_ended_session_closes_its_sockets_and_no_others() {
        actix::System::new().block_on(async {
            let sockets = SessionSockets::default();
            let closed = Arc::new(Mutex::new(Vec::new()));
            let kept = Arc::new(Mutex::new(Vec::new()));
            let (a1, a2, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
            sockets.add("s-a", a1, Sock(closed.clone()).start().recipient());
            sockets.add("s-a", a2, Sock(closed.clone()).start().recipient());
            sockets.add("s-b", b, Sock(kept.clone()).start().recipient());
            assert_eq!(sockets.len(), 3);
            // A socket that closed by itself is not told again.
            sockets.remove("s-a", a2);
            assert_eq!(sockets.end(["s-a", "s-unknown"]), 1);
            assert_eq!(sockets.end(["s-a"]), 0, "ended once");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert_eq!(*closed.lock().unwrap(), [close_codes::UNAUTHENTICATED]);
            assert!(kept.lock().unwrap().is_empty());
            assert_eq!(sockets.len(), 1);
            sockets.remove("s-b", b);
            assert!(sockets.is_empty());
        });
    }
}
