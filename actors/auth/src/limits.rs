//! Abuse limits of the auth service, counted in Redis so that they hold across instances.
//!
//! Two mechanisms, both atomic (one `INCR` decides, so parallel attempts cannot slip past):
//! - [`Limits::hit`]: fixed-window rate limits per client address (login, register, refresh);
//! - [`Limits::login_attempt`]: failed-login lockout. An attempt is counted *before* the
//!   password is checked (and forgiven on success), per account+address and per account.
//!   Past the allowance the attempt is refused with 429 without hashing. Accounts are keyed
//!   by a digest of the normalised e-mail, so unknown e-mails behave exactly like known ones.
//!   The window runs from the first failure and is never extended, so a lockout lasts at most
//!   `login_lockout_seconds`, and locks only the guessing address unless the account-wide
//!   allowance (distributed guessing) is spent too.
//!
//! If Redis is unreachable the same windows are counted in this process instead
//! ([`LocalCounts`], logged): a Redis outage must not stop every login, nor leave guessing
//! unthrottled. Each auth instance then counts on its own, so behind N instances an address
//! gets at most N times its allowance until Redis is back; bcrypt's cost bounds the rest.

use crate::settings::AuthLimits;
use redis::aio::ConnectionManager;
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Limits {
    pub redis: ConnectionManager,
    pub ns: Namespace,
    pub config: AuthLimits,
    /// The windows counted here while Redis is away.
    pub local: LocalCounts,
}

/// Keys counted at most in the in-process fallback; past it, expired windows are dropped
/// first, then the counts start over (a bounded memory beats a perfect count in an outage).
const LOCAL_MAX_KEYS: usize = 100_000;

/// Fixed windows counted in this process: the fallback while Redis cannot be reached.
#[derive(Clone, Default)]
pub struct LocalCounts {
    windows: Arc<Mutex<HashMap<String, (u64, Instant)>>>,
}

impl LocalCounts {
    /// Counts one event of `key` in a window of `window` starting at its first event; the
    /// count and the time left.
    fn count(&self, key: &str, window: Duration, now: Instant) -> (u64, Duration) {
        let Ok(mut w) = self.windows.lock() else {
            return (0, window);
        };
        if w.len() >= LOCAL_MAX_KEYS && !w.contains_key(key) {
            w.retain(|_, (_, end)| *end > now);
            if w.len() >= LOCAL_MAX_KEYS {
                w.clear();
            }
        }
        let entry = w.entry(key.to_string()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1 - now)
    }

    /// Forgets `pair` and takes one event off `account` (a correct password).
    fn forgive(&self, pair: &str, account: &str) {
        if let Ok(mut w) = self.windows.lock() {
            w.remove(pair);
            if let Some(e) = w.get_mut(account) {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }
}

/// A ticket for a counted login attempt; give it back with [`Limits::login_succeeded`].
pub struct Attempt {
    pair_key: String,
    account_key: String,
}

fn account_digest(email: &str) -> String {
    let d = Sha256::digest(email.as_bytes());
    d.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

impl Limits {
    /// Counts one event in the window of `key`; `Err(RateLimited)` past `limit`.
    async fn count(&self, key: &str, limit: u32, window_secs: u64) -> Result<(), ServiceError> {
        if limit == 0 {
            return Ok(()); // 0 disables a limit
        }
        let mut conn = self.redis.clone();
        // INCR and EXPIRE NX in one transaction: the window starts at the first hit.
        let res: redis::RedisResult<(u64, i64, i64)> = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(key)
            .cmd("EXPIRE")
            .arg(key)
            .arg(window_secs)
            .arg("NX")
            .cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await;
        match res {
            Ok((n, _, ttl)) if n > u64::from(limit) => Err(ServiceError::RateLimited {
                retry_after_secs: ttl.max(1) as u64,
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(%key, error = %e, "rate limit counted in this process (Redis is away)");
                let window = Duration::from_secs(window_secs.max(1));
                let (n, left) = self.local.count(key, window, Instant::now());
                if n > u64::from(limit) {
                    Err(ServiceError::RateLimited {
                        retry_after_secs: left.as_secs().max(1),
                    })
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A fixed-window rate limit per client address: `action` at most `limit` per `window`.
    pub async fn hit(
        &self,
        action: &str,
        ip: &str,
        limit: u32,
        window_secs: u64,
    ) -> Result<(), ServiceError> {
        let ip = if ip.is_empty() { "unknown" } else { ip };
        let key = self.ns.rate_limit(action, "ip", ip);
        self.count(&key, limit, window_secs).await
    }

    /// Counts one `action` (a mail) sent to the address `email`, from any client address:
    /// many addresses cannot flood one inbox. Keyed by the address's digest, and counted
    /// whether or not it has an account (the answer must not tell).
    pub async fn hit_address(
        &self,
        action: &str,
        email: &str,
        limit: u32,
        window_secs: u64,
    ) -> Result<(), ServiceError> {
        let key = self.ns.rate_limit(action, "to", &account_digest(email));
        self.count(&key, limit, window_secs).await
    }

    /// Counts a login attempt for `email` from `ip` before the password is checked.
    pub async fn login_attempt(&self, email: &str, ip: &str) -> Result<Attempt, ServiceError> {
        let c = &self.config;
        self.hit("login", ip, c.login_per_ip_per_minute, 60).await?;
        let account = account_digest(email);
        let ip = if ip.is_empty() { "unknown" } else { ip };
        let window = c.login_lockout_seconds.max(1);
        let pair_key = self.ns.login_failures(&account, Some(ip));
        let account_key = self.ns.login_failures(&account, None);
        self.count(&pair_key, c.login_failures_per_account_ip, window)
            .await?;
        self.count(&account_key, c.login_failures_per_account, window)
            .await?;
        Ok(Attempt {
            pair_key,
            account_key,
        })
    }

    /// A correct password: this address's failures for the account are forgiven, and this
    /// attempt no longer counts against the account.
    pub async fn login_succeeded(&self, attempt: Attempt) {
        const FORGIVE: &str = "redis.call('DEL', KEYS[1]) \
            if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end \
            return 1";
        let mut conn = self.redis.clone();
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(FORGIVE)
            .arg(2)
            .arg(&attempt.pair_key)
            .arg(&attempt.account_key)
            .query_async(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "login failures reset in this process only (Redis is away)");
        }
        // Either way: the attempt may have been counted here while Redis was away.
        self.local.forgive(&attempt.pair_key, &attempt.account_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_digest_is_stable_and_short() {
        let a = super::account_digest("ada@example.com");
        assert_eq!(a, super::account_digest("ada@example.com"));
        assert_ne!(a, super::account_digest("bob@example.com"));
        assert_eq!(a.len(), 24);
    }

    #[test]
    fn the_local_fallback_counts_fixed_windows_and_forgives() {
        let l = LocalCounts::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        assert_eq!(l.count("a", w, t0).0, 1);
        assert_eq!(
            l.count("a", w, t0 + Duration::from_secs(10)),
            (2, Duration::from_secs(50))
        );
        // The window runs from the first event and is not extended.
        assert_eq!(l.count("a", w, t0 + Duration::from_secs(61)).0, 1);
        l.count("acct", w, t0);
        l.count("acct", w, t0);
        l.forgive("a", "acct");
        assert_eq!(l.count("a", w, t0).0, 1);
        assert_eq!(l.count("acct", w, t0).0, 2);
    }
}
