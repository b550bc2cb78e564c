//! The ends of people's access to projects, for the live sockets that depend on it.
//!
//! One subscription per gateway instance to `project:events:unshared` (one person lost a
//! project) and `project:events:deleted` (everyone but its owner may have), for as long as
//! the process runs, reconnecting with backoff. Each event is handed to every listener
//! ([`crate::feeds`]'s run watchers, [`crate::collab`]'s collaborators), which asks the
//! project service again about the sockets concerned and closes with 4004 those that may no
//! longer see it.

use sdsim_protocols::names::Namespace;
use std::sync::Arc;
use std::time::Duration;

/// Told of each lost access: the project, and the person (None: anyone but the owner).
pub type OnLost = Arc<dyn Fn(&str, Option<&str>) + Send + Sync>;

/// Starts the listener on `runtime`.
pub fn watch(
    client: redis::Client,
    ns: Namespace,
    runtime: &tokio::runtime::Handle,
    listeners: Vec<OnLost>,
) {
    runtime.spawn(async move {
        let mut attempts = 0u32;
        loop {
            match listen(&client, &ns, &listeners).await {
                Ok(()) => attempts = 0,
                Err(e) => {
                    attempts = attempts.saturating_add(1);
                    tracing::warn!(error = %e, "access events: Redis unreachable; retrying");
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
    ns: &Namespace,
    listeners: &[OnLost],
) -> Result<(), String> {
    use futures_util::StreamExt;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub
        .subscribe(&[ns.project_events("unshared"), ns.project_events("deleted")])
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = pubsub.on_message();
    while let Some(msg) = messages.next().await {
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<sdsim_protocols::events::Envelope>(&payload) else {
            continue;
        };
        let Some(project) = event.data["project_id"].as_str() else {
            continue;
        };
        let user = event.data["user_id"].as_str();
        for l in listeners {
            l(project, user);
        }
    }
    Ok(())
}
