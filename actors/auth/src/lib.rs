//! The auth service: accounts, sessions, tokens, RBAC administration, abuse limits and mail.
//!
//! Layout:
//! - [`settings`]: `[auth]` and its checks;
//! - [`validate`]: input checks, each naming its field;
//! - [`tokens`]: JWT access tokens and hashed refresh tokens;
//! - [`store`]: auth_schema queries;
//! - [`core`]: [`core::AuthCore`], the logic and state, with its operations by concern in
//!   [`accounts`] and [`sessions`]; [`actor`]: its supervised owner and how requests reach
//!   it (on every core, not through a mailbox);
//! - [`cache`]: the in-process validation cache; [`hasher`]: the bcrypt thread pool;
//! - [`limits`]: Redis rate limits and login lockout;
//! - [`admin`], [`recovery`]: user administration; e-mail verification and password reset;
//! - [`mailer`]: the mail worker (queue to SMTP or a file outbox); [`inbox`]: the
//!   notification inbox and its worker (queue to inbox and notification channel);
//! - [`grpc`]: the tonic adapter; [`tree`]: the service's supervision tree.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod actor;
pub mod admin;
pub mod cache;
pub mod core;
pub mod grpc;
pub mod hasher;
pub mod inbox;
pub mod limits;
pub mod mailer;
pub mod recovery;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod tokens;
pub mod validate;

pub use settings::AuthSettings;

use crate::actor::{AuthActor, CoreCell};
use crate::core::AuthCore;
use crate::grpc::AuthGrpc;
use crate::tokens::TokenService;
use sdsim_protocols::proto::auth::auth_service_server::AuthServiceServer;
use sdsim_runtime::events::{EventBridge, EventSink};
use sdsim_runtime::service::{routes, standard_tree, Shared};
use sdsim_runtime::slot::Slot;
use sdsim_runtime::supervision::SupervisorSpec;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// The auth service's tree (drawn in ARCHITECTURE.md).
pub fn tree(
    shared: &Shared,
    s: &AuthSettings,
    grpc: TcpListener,
    http: TcpListener,
) -> Result<SupervisorSpec, String> {
    let secret = jwt_secret(s);
    let dummy_hash = AuthCore::dummy_hash(s.bcrypt_cost)?;
    let bridge_slot: Slot<EventBridge> = Slot::new();
    let bridge_slot_for_inbox = bridge_slot.clone();
    let core = Arc::new(AuthCore {
        pool: shared.pool.clone(),
        tokens: TokenService::new(s, &secret),
        bcrypt_cost: s.bcrypt_cost,
        dummy_hash,
        events: EventSink::new(bridge_slot.clone()),
        redis: shared.redis.clone(),
        ns: shared.ns.clone(),
        limits: limits::Limits {
            redis: shared.redis.clone(),
            ns: shared.ns.clone(),
            config: s.limits.clone(),
            local: limits::LocalCounts::default(),
        },
        min_password_score: s.min_password_score,
        validated: cache::ValidationCache::new(Duration::from_millis(s.validation_cache_ms)),
        checks: Default::default(),
        session_checks: {
            // Every outcome from the start, at zero.
            for outcome in ["live", "ended", "error"] {
                shared
                    .metrics
                    .auth_session_checks
                    .with_label_values(&[outcome]);
            }
            shared.metrics.auth_session_checks.clone()
        },
        hashing: Arc::new(hasher::Hasher::for_machine(s.max_concurrent_hashes)?),
        mail: s.mail.clone(),
    });
    let cell = CoreCell::new();
    let adapter = AuthGrpc {
        cell: cell.clone(),
        health: shared.probe(true),
    };
    let stamped_core = core.clone();
    let routes = routes(&["auth.AuthService"], move |b| {
        b.add_service(grpc::SessionsChangedStamp {
            inner: AuthServiceServer::new(adapter.clone()),
            core: stamped_core.clone(),
        });
    });
    let children = vec![
        EventBridge::child(
            shared.redis.clone(),
            shared.metrics.clone(),
            shared.ns.prefix(),
            &["auth:events"],
            bridge_slot,
        ),
        AuthActor::child(core, cell),
        mailer::MailWorker::child(shared.redis.clone(), shared.ns.clone(), s.mail.clone()),
        inbox::InboxWorker::child(
            shared.pool.clone(),
            shared.redis.clone(),
            shared.ns.clone(),
            EventSink::new(bridge_slot_for_inbox),
        ),
    ];
    Ok(standard_tree(
        shared, "auth", children, routes, grpc, http, None,
    ))
}

/// The configured JWT key, or a random one for this process (tokens then die with it).
fn jwt_secret(s: &AuthSettings) -> Vec<u8> {
    let key = s.jwt_secret.expose();
    if !key.is_empty() {
        return key.as_bytes().to_vec();
    }
    tracing::warn!(
        "auth.jwt_secret is not set: using a random key for this process; tokens stop working \
         when it restarts and other auth instances cannot verify them. Set SDSIM_AUTH__JWT_SECRET."
    );
    let mut key = vec![0u8; 48];
    rand::fill(&mut key[..]);
    key
}
