//! The gateway's cache of token validations: token → who it is (user, session, permissions),
//! for at most `gateway.token_cache_ms` (250 ms by default), so an authenticated request
//! costs one RPC (its own) instead of two (`ValidateToken`, then its own).
//!
//! Freshness, the rule every authenticated route relies on:
//! - A session ended or a permission changed *through this gateway* is seen by the next
//!   request: auth stamps the answer of any call during which it ended sessions or changed
//!   permissions (`sdsim_protocols::rpc::SESSIONS_CHANGED_HEADER`), and [`Upstreams`] drops
//!   the whole cache before the handler sees that answer. (With several auth instances the
//!   next check may meet another instance's own cache, 500 ms at most, until the event below
//!   arrives: the promise is then the one-second one.)
//! - Through another gateway: `auth:events:logout` ends the named sessions here and
//!   `auth:events:permission_changed` drops the cache, within milliseconds; were an event
//!   lost, an entry still lives at most the ttl. With auth's own cache (`auth.validation_cache_ms`,
//!   500 ms) that keeps the system's promise: a revoked session is refused everywhere within
//!   one second (settings refuse the two adding up to a second or more).
//! - An entry never outlives its token's `exp`, and a session seen ended is refused from then
//!   on without asking (ending is final), even if a stale answer would say otherwise.
//!
//! Refresh ahead: past half its life an entry still answers, and the first request to see it
//! so checks the token again itself ([`Lookup::Check`]) while the others keep answering from
//! the entry, so a token in steady use never sends a burst of checks when its entry expires.
//! A check that began before the cache was dropped cannot put its (older) answer back: every
//! lookup carries the cache's epoch. Only answers that accepted the token are kept.
//!
//! [`Upstreams`]: crate::upstream::Upstreams

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Past this many entries the cache starts over (a bound on memory, not a policy).
const MAX_ENTRIES: usize = 50_000;

/// Who a token is, as auth said.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub user_id: String,
    pub session_id: String,
    pub email: String,
    pub is_admin: bool,
    pub permissions: Vec<String>,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: i64,
}

#[derive(Debug)]
struct Entry {
    who: Arc<Validated>,
    /// When the check that produced it began.
    at: Instant,
    checking: bool,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<String, Entry>,
    /// Sessions known to have ended; bounded, never expired (ending is final).
    ended: HashSet<String>,
    /// Bumped by every [`TokenCache::clear`].
    epoch: u64,
}

/// What the cache knows of a token.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Accepted less than half the ttl ago.
    Fresh(Arc<Validated>),
    /// Unknown, old or ending soon: ask auth, then [`TokenCache::put`] with this epoch.
    Check(u64),
    /// Its session has ended: refuse it without asking.
    Ended,
}

#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    state: Mutex<State>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl TokenCache {
    /// A zero ttl turns the cache off: every request asks auth.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn get(&self, token: &str) -> Lookup {
        let Ok(mut st) = self.state.lock() else {
            return Lookup::Check(u64::MAX);
        };
        let State { map, ended, epoch } = &mut *st;
        let Some(e) = map.get_mut(token) else {
            return Lookup::Check(*epoch);
        };
        if ended.contains(&e.who.session_id) {
            map.remove(token);
            return Lookup::Ended;
        }
        let age = e.at.elapsed();
        if age >= self.ttl || e.who.expires_at <= now_secs() {
            map.remove(token);
            return Lookup::Check(*epoch);
        }
        if age >= self.ttl / 2 && !e.checking {
            e.checking = true;
            return Lookup::Check(*epoch);
        }
        Lookup::Fresh(e.who.clone())
    }

    /// Auth accepted `token` as `who`, by a check that began at `checked` and at `epoch`.
    pub fn put(&self, token: &str, who: Arc<Validated>, epoch: u64, checked: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.epoch != epoch || st.ended.contains(&who.session_id) {
            st.map.remove(token);
            return; // dropped or ended meanwhile: the next request asks again
        }
        if st.map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            st.map.retain(|_, e| e.at.elapsed() < ttl);
            if st.map.len() >= MAX_ENTRIES {
                st.map.clear();
            }
        }
        st.map.insert(
            token.to_string(),
            Entry {
                who,
                at: checked,
                checking: false,
            },
        );
    }

    /// Auth refused a token it had been asked about again, or could not be asked.
    pub fn refused(&self, token: &str) {
        if let Ok(mut st) = self.state.lock() {
            st.map.remove(token);
        }
    }

    /// A check past half an entry's life failed without an answer: let the next request try.
    pub fn check_failed(&self, token: &str) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(e) = st.map.get_mut(token) {
                e.checking = false;
            }
        }
    }

    /// These sessions ended (`auth:events:logout`): their tokens are refused from now on.
    pub fn end_sessions<'a>(&self, sessions: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut st) = self.state.lock() {
            for s in sessions {
                if st.ended.len() >= MAX_ENTRIES {
                    // Forgotten ones are asked about again, and refused again by auth.
                    st.ended.clear();
                    st.map.clear();
                    st.epoch += 1;
                }
                st.ended.insert(s.to_string());
            }
        }
    }

    /// Sessions ended or permissions changed where we cannot tell which tokens they touch:
    /// every token is checked again, and no check under way puts its answer back.
    pub fn clear(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.epoch += 1;
            st.map.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map_or(0, |st| st.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(session: &str, expires_in: i64) -> Arc<Validated> {
        Arc::new(Validated {
            user_id: "u1".into(),
            session_id: session.into(),
            email: "a@example.com".into(),
            is_admin: false,
            permissions: vec!["projects:read".into()],
            expires_at: now_secs() + expires_in,
        })
    }

    fn epoch_of(l: Lookup) -> u64 {
        match l {
            Lookup::Check(e) => e,
            other => panic!("expected a check, got {other:?}"),
        }
    }

    #[test]
    fn an_accepted_token_answers_until_half_its_life_then_one_request_checks() {
        let c = TokenCache::new(Duration::from_millis(200));
        let e = epoch_of(c.get("t"));
        c.put("t", who("s1", 60), e, Instant::now());
        assert_eq!(c.get("t"), Lookup::Fresh(who("s1", 60)));
        std::thread::sleep(Duration::from_millis(110));
        // The first request past half the ttl checks; the others keep the entry.
        let e = epoch_of(c.get("t"));
        assert!(matches!(c.get("t"), Lookup::Fresh(_)));
        c.put("t", who("s1", 60), e, Instant::now());
        assert!(matches!(c.get("t"), Lookup::Fresh(_)));
        // Past the ttl nothing answers from the entry.
        std::thread::sleep(Duration::from_millis(210));
        assert!(matches!(c.get("t"), Lookup::Check(_)));
    }

    #[test]
    fn a_failed_check_lets_the_next_request_check() {
        let c = TokenCache::new(Duration::from_millis(100));
        c.put(
            "t",
            who("s1", 60),
            0,
            Instant::now() - Duration::from_millis(60),
        );
        assert!(matches!(c.get("t"), Lookup::Check(_)));
        assert!(matches!(c.get("t"), Lookup::Fresh(_)));
        c.check_failed("t");
        assert!(matches!(c.get("t"), Lookup::Check(_)));
        c.refused("t");
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn an_ended_session_is_refused_and_never_comes_back() {
        let c = TokenCache::new(Duration::from_secs(10));
        c.put("t", who("s1", 60), 0, Instant::now());
        c.put("u", who("s2", 60), 0, Instant::now());
        c.end_sessions(["s1"]);
        assert_eq!(c.get("t"), Lookup::Ended);
        assert!(matches!(c.get("u"), Lookup::Fresh(_)));
        // A stale answer (another auth instance's cache) cannot bring it back.
        c.put("t", who("s1", 60), 0, Instant::now());
        assert!(matches!(c.get("t"), Lookup::Check(_)));
    }

    #[test]
    fn a_check_that_began_before_a_clear_cannot_put_its_answer_back() {
        let c = TokenCache::new(Duration::from_secs(10));
        let e = epoch_of(c.get("t"));
        c.clear();
        c.put("t", who("s1", 60), e, Instant::now());
        assert_eq!(c.len(), 0);
        let e = epoch_of(c.get("t"));
        c.put("t", who("s1", 60), e, Instant::now());
        assert!(matches!(c.get("t"), Lookup::Fresh(_)));
        c.clear();
        assert!(matches!(c.get("t"), Lookup::Check(_)));
    }

    #[test]
    fn an_entry_never_outlives_its_token_and_a_zero_ttl_keeps_nothing() {
        let c = TokenCache::new(Duration::from_secs(10));
        c.put("t", who("s1", 0), 0, Instant::now());
        assert!(matches!(c.get("t"), Lookup::Check(_)));
        let off = TokenCache::new(Duration::ZERO);
        off.put("t", who("s1", 60), 0, Instant::now());
        assert!(matches!(off.get("t"), Lookup::Check(_)));
    }
}
