//! Rate limits of the REST API, counted in Redis so every gateway instance shares them:
//! per user and endpoint class (reads, writes, run starts) once the token is validated
//! ([`crate::http::extract::AuthUser`]), and per client address for every `/api/` request
//! (anonymous floods). Fixed windows of a minute; over the limit, 429 with `Retry-After`.
//! Every limited answer carries the IETF draft's `RateLimit-Limit`, `RateLimit-Remaining`
//! and `RateLimit-Reset` (the tightest of the limits it was counted against). Redis being
//! away lets requests through (logged): the limits protect the service, they never take it
//! down.

use sdsim_protocols::names::Namespace;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// `[gateway.rate_limits]`: requests per minute; 0 turns one off.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Reads (GET) per user.
    pub reads_per_minute: u32,
    /// Writes (POST, PUT, PATCH, DELETE) per user, run starts excepted.
    pub writes_per_minute: u32,
    /// Run starts (`POST /api/simulations`) per user.
    pub run_starts_per_minute: u32,
    /// Any `/api/` request per client address, signed in or not.
    pub per_address_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            reads_per_minute: 1_200,
            writes_per_minute: 300,
            run_starts_per_minute: 30,
            per_address_per_minute: 3_000,
        }
    }
}

/// What a request counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
    RunStart,
}

impl Class {
    pub fn of(method: &str, path: &str) -> Self {
        match method {
            "GET" | "HEAD" | "OPTIONS" => Class::Read,
            "POST" if path.trim_end_matches('/') == "/api/simulations" => Class::RunStart,
            _ => Class::Write,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Read => "reads",
            Class::Write => "writes",
            Class::RunStart => "run_starts",
        }
    }
}

/// Where a request stands against one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset: u64,
    /// This request was past the limit.
    pub over: bool,
}

impl Standing {
    pub fn exceeded(&self) -> bool {
        self.over
    }
}

const WINDOW_S: u64 = 60;

/// INCR the window's key, set its expiry with the first hit; answers the count.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
";

#[derive(Clone)]
pub struct Limiter {
    pub limits: RateLimits,
    redis: redis::aio::ConnectionManager,
    ns: Namespace,
}

impl Limiter {
    pub fn new(limits: RateLimits, redis: redis::aio::ConnectionManager, ns: Namespace) -> Self {
        Self { limits, redis, ns }
    }

    /// Counts one request of `scope` `id` (`user` or `ip`) against `limit` per minute for
    /// `what`; None when the limit is off or Redis is away.
    async fn hit(&self, what: &str, scope: &str, id: &str, limit: u32) -> Option<Standing> {
        if limit == 0 {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let window = now / WINDOW_S;
        let key = self
            .ns
            .rate_limit(&format!("api_{what}"), scope, &format!("{id}:{window}"));
        let mut conn = self.redis.clone();
        let n: i64 = match redis::cmd("EVAL")
            .arg(HIT)
            .arg(1)
            .arg(&key)
            .arg(WINDOW_S * 2)
            .query_async(&mut conn)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "rate limit not counted (Redis); request let through");
                return None;
            }
        };
        let used = u32::try_from(n).unwrap_or(u32::MAX);
        Some(Standing {
            limit,
            remaining: limit.saturating_sub(used),
            reset: (window + 1) * WINDOW_S - now,
            over: used > limit,
        })
    }

    /// A signed-in user's request of `class`.
    pub async fn user(&self, user: &str, class: Class) -> Option<Standing> {
        let limit = match class {
            Class::Read => self.limits.reads_per_minute,
            Class::Write => self.limits.writes_per_minute,
            Class::RunStart => self.limits.run_starts_per_minute,
        };
        self.hit(class.name(), "user", user, limit).await
    }

    /// Any `/api/` request from `address`.
    pub async fn address(&self, address: &str) -> Option<Standing> {
        self.hit("any", "ip", address, self.limits.per_address_per_minute)
            .await
    }
}

/// The tighter of two standings (the one with fewer requests left).
pub fn tightest(a: Option<Standing>, b: Option<Standing>) -> Option<Standing> {
    match (a, b) {
        (Some(a), Some(b)) => Some(match (a.exceeded(), b.exceeded()) {
            (true, false) => a,
            (false, true) => b,
            _ if a.remaining <= b.remaining => a,
            _ => b,
        }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(Class::of("GET", "/api/projects"), Class::Read);
        assert_eq!(Class::of("POST", "/api/simulations"), Class::RunStart);
        assert_eq!(Class::of("POST", "/api/simulations/x/stop"), Class::Write);
        assert_eq!(Class::of("DELETE", "/api/projects/x"), Class::Write);
    }

    #[test]
    fn the_tightest_wins_and_an_exceeded_one_first() {
        let s = |remaining, over| Standing {
            limit: 10,
            remaining,
            reset: 5,
            over,
        };
        assert_eq!(
            tightest(Some(s(3, false)), Some(s(7, false))),
            Some(s(3, false))
        );
        assert_eq!(
            tightest(Some(s(0, true)), Some(s(7, false))),
            Some(s(0, true))
        );
        assert_eq!(tightest(None, Some(s(7, false))), Some(s(7, false)));
    }
}
