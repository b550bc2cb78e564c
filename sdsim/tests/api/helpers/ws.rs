//! A WebSocket client of the gateway.

use super::*;

pub struct Ws {
    pub socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What the server did next.
#[derive(Debug)]
pub enum Next {
    Frame(serde_json::Value),
    Closed(Option<u16>, String),
    Timeout,
}

impl Ws {
    pub async fn send(&mut self, v: serde_json::Value) {
        self.socket
            .send(Message::text(v.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, t: &str) {
        self.socket
            .send(Message::text(t.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON frame or close, skipping pings.
    pub async fn next(&mut self, within: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::Timeout,
                Ok(None) => return Next::Closed(None, "stream ended".into()),
                Ok(Some(Err(e))) => return Next::Closed(None, e.to_string()),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    return Next::Frame(serde_json::from_str(t.as_str()).expect("JSON frame"))
                }
                Message::Close(Some(c)) => {
                    return Next::Closed(Some(u16::from(c.code)), c.reason.to_string())
                }
                Message::Close(None) => return Next::Closed(None, String::new()),
                _ => continue,
            }
        }
    }

    pub async fn frame(&mut self, within: Duration) -> serde_json::Value {
        match self.next(within).await {
            Next::Frame(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    pub async fn expect_close(&mut self, code: u16, within: Duration) -> String {
        match self.next(within).await {
            Next::Closed(Some(c), reason) if c == code => reason,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    pub async fn authenticate(&mut self, token: &str) -> serde_json::Value {
        self.send(serde_json::json!({"type": "auth", "token": token}))
            .await;
        let f = self.frame(Duration::from_secs(5)).await;
        assert_eq!(f["type"], "auth_ok", "{f}");
        f
    }
}
