//! The ends of people's access, heard from Redis by every gateway instance: to projects, for
//! the live sockets that depend on it, and to sessions, for the validations it trusts.
//!
//! One subscription per gateway instance to `project:events:unshared` (one person lost a
//! project, or, naming nobody, it was made private) and `project:events:deleted` (everyone
//! but its owner may have lost it), for as long as
//! the process runs, reconnecting with backoff. Each event is handed to every listener
//! ([`crate::feeds`]'s run watchers, [`crate::collab`]'s collaborators), which asks the
//! project service again about the sockets concerned and closes with 4004 those that may no
//! longer see it.

use sdsim_protocols::events::{kinds, Envelope};
use sdsim_protocols::names::Namespace;
use std::sync::Arc;
use std::time::Duration;

/// Told of each lost access: the project, and the person (None: anyone but the owner).
pub type OnLost = Arc<dyn Fn(&str, Option<&str>) + Send + Sync>;

/// Handed each event of the channels subscribed to.
type OnEvent = Box<dyn Fn(&Envelope) + Send + Sync>;

/// Starts the listener of lost access on `runtime`.
pub fn watch(
    client: redis::Client,
    ns: &Namespace,
    runtime: &tokio::runtime::Handle,
    listeners: Vec<OnLost>,
) {
    let channels = vec![ns.project_events("unshared"), ns.project_events("deleted")];
    subscribe(
        client,
        channels,
        runtime,
        "access events",
        Box::new(move |event| {
            let Some(project) = event.data["project_id"].as_str() else {
                return;
            };
            let user = event.data["user_id"].as_str();
            for l in &listeners {
                l(project, user);
            }
        }),
    );
}

/// Starts the listener of ended sessions and changed permissions on `runtime`: the
/// validations this gateway trusts ([`crate::tokens`]) follow what other gateways did, and
/// the WebSockets of an ended session close ([`crate::sockets`]).
pub fn watch_sessions(
    client: redis::Client,
    ns: &Namespace,
    runtime: &tokio::runtime::Handle,
    tokens: Arc<crate::tokens::TokenCache>,
    sockets: Arc<crate::sockets::SessionSockets>,
) {
    let channels = vec![
        ns.auth_events("logout"),
        ns.auth_events("permission_changed"),
    ];
    subscribe(
        client,
        channels,
        runtime,
        "session events",
        Box::new(move |event| match event.kind.as_str() {
            kinds::AUTH_LOGOUT => match event.data["session_ids"].as_array() {
                Some(ids) => {
                    tokens.end_sessions(ids.iter().filter_map(|s| s.as_str()));
                    sockets.end(ids.iter().filter_map(|s| s.as_str()));
                }
                None => tokens.clear(),
            },
            _ => tokens.clear(),
        }),
    );
}

/// One subscription to `channels` for as long as the process runs, reconnecting with
/// backoff; each event is handed to `on_event`.
fn subscribe(
    client: redis::Client,
    channels: Vec<String>,
    runtime: &tokio::runtime::Handle,
    what: &'static str,
    on_event: OnEvent,
) {
    runtime.spawn(async move {
        let mut attempts = 0u32;
        loop {
            match listen(&client, &channels, &on_event).await {
                Ok(()) => attempts = 0,
                Err(e) => {
                    attempts = attempts.saturating_add(1);
                    tracing::warn!(error = %e, "{what}: Redis unreachable; retrying");
                }
            }
            let delay = (100u64 << attempts.min(6)).min(5_000);
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    });
}

/// One subscription's life: until the connection drops.
async fn listen(
    client: &redis::Client,
    channels: &[String],
    on_event: &OnEvent,
) -> Result<(), String> {
    use futures_util::StreamExt;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub
        .subscribe(channels)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        if let Ok(event) = serde_json::from_str::<Envelope>(&payload) {
            on_event(&event);
        }
    }
    Ok(())
}
