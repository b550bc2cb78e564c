//! Calls most API tests make: a signed-in user, a JSON request, a run settling.

use super::*;

/// A new user, registered and logged in: their access token.
pub async fn signed_in(s: &Stack, tag: &str) -> String {
    let email = unique_email(tag);
    s.register(&email, "a long enough password").await;
    s.login(&email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A new user at `email` whose address is verified (a share with them applies at once):
/// their access token.
pub async fn verified(s: &Stack, email: &str) -> String {
    s.register(email, "a long enough password").await;
    let token = s.login(email, "a long enough password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    s.verify(email, &token).await;
    token
}

/// `method path` with `token` and an optional JSON body: the status and the JSON answer
/// (null when there is none).
pub async fn call(
    s: &Stack,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = s.authed(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or_default())
}

/// Waits until run `id` has ended (not pending, running or paused); its last view.
pub async fn settled(s: &Stack, token: &str, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (_, b) = call(
            s,
            reqwest::Method::GET,
            &format!("/api/simulations/{id}"),
            token,
            None,
        )
        .await;
        if !matches!(
            b["simulation"]["status"].as_str(),
            Some("pending" | "running" | "paused")
        ) {
            return b["simulation"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("simulation {id} never settled");
}
