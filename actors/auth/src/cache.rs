//! In-process cache of recent token validations: session id → (when, the user's permissions).
//!
//! A validation hit skips Redis and PostgreSQL entirely, so `ValidateToken` costs a JWT check
//! and a map lookup. Entries live `ttl` (500 ms by default): a session revoked on another
//! instance (seen through the Redis session cache) is refused here within that time, well
//! inside the one-second revocation promise; one revoked on this instance is forgotten at once.
//!
//! Refresh ahead: past half its life an entry still answers, and the first caller to see it
//! so is asked to check the session again in the background ([`Lookup::Refresh`]); the others
//! keep answering from the entry. A session in steady use therefore never misses, and never
//! sends a burst of concurrent checks to Redis and PostgreSQL when its entry expires.
//!
//! A check that started before a `forget` or `clear` cannot put its (older) answer back: every
//! lookup carries the cache's epoch, and `put` with an older epoch is ignored. An entry's life
//! counts from when its check began (not ended), so a slow check cannot stretch how long a
//! session revoked elsewhere is still accepted.
//!
//! Ended is final: a session found ended (here or by a check) is refused from then on without
//! a check ([`Lookup::Ended`]), so replaying a revoked token costs no I/O.
//!
//! Single flight ([`Flights`]): calls that need the same session checked at the same epoch
//! share one check. When an entry has expired under load, the burst of calls behind it sends
//! one check to Redis and PostgreSQL, not one each (which, with a pool of a few connections
//! shared with logins, turned a short delay into seconds of queueing).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Past this many entries the cache starts over (a bound on memory, not a policy).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
struct Entry {
    /// When the session was last checked.
    at: Instant,
    permissions: Arc<Vec<String>>,
    /// A background check is under way.
    refreshing: bool,
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Uuid, Entry>,
    /// Sessions known to have ended. An ended session never comes back (revocation and
    /// expiry are final), so this needs no expiry; it is only bounded.
    ended: HashSet<Uuid>,
    /// Bumped by every `forget` and `clear`.
    epoch: u64,
}

/// What the cache knows of a session; the epoch goes back with [`ValidationCache::put`].
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Checked less than half the ttl ago.
    Fresh(Arc<Vec<String>>),
    /// Still valid; the caller should check the session again in the background.
    Refresh(Arc<Vec<String>>, u64),
    /// Unknown or expired: check before answering.
    Miss(u64),
    /// The session has ended: refuse without asking anyone.
    Ended,
}

#[derive(Debug)]
pub struct ValidationCache {
    ttl: Duration,
    state: Mutex<State>,
}

impl ValidationCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn get(&self, session: Uuid) -> Lookup {
        let Ok(mut st) = self.state.lock() else {
            return Lookup::Miss(u64::MAX);
        };
        let epoch = st.epoch;
        if st.ended.contains(&session) {
            return Lookup::Ended;
        }
        if self.ttl.is_zero() {
            return Lookup::Miss(epoch);
        }
        let Some(e) = st.map.get_mut(&session) else {
            return Lookup::Miss(epoch);
        };
        let age = e.at.elapsed();
        if age >= self.ttl {
            Lookup::Miss(epoch)
        } else if age < self.ttl / 2 || e.refreshing {
            Lookup::Fresh(e.permissions.clone())
        } else {
            e.refreshing = true;
            Lookup::Refresh(e.permissions.clone(), epoch)
        }
    }

    /// The session was found live with these permissions by a check that began at `checked`,
    /// at `epoch`.
    pub fn put(&self, session: Uuid, permissions: Arc<Vec<String>>, epoch: u64, checked: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.epoch != epoch || st.ended.contains(&session) {
            return; // something was revoked meanwhile; the next call checks again
        }
        if st.map.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            st.map.retain(|_, e| e.at.elapsed() < ttl);
            if st.map.len() >= MAX_ENTRIES {
                st.map.clear();
            }
        }
        st.map.insert(
            session,
            Entry {
                at: checked,
                permissions,
                refreshing: false,
            },
        );
    }

    /// A background check failed (not a revocation): let the next caller try again.
    pub fn refresh_failed(&self, session: Uuid) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(e) = st.map.get_mut(&session) {
                e.refreshing = false;
            }
        }
    }

    /// A session ended here: refuse it at once, and let no check under way answer otherwise.
    pub fn forget(&self, session: Uuid) {
        if let Ok(mut st) = self.state.lock() {
            st.epoch += 1;
            Self::end(&mut st, session);
        }
    }

    /// A check found the session ended: refuse it from now on without checking again.
    pub fn mark_ended(&self, session: Uuid) {
        if let Ok(mut st) = self.state.lock() {
            Self::end(&mut st, session);
        }
    }

    fn end(st: &mut State, session: Uuid) {
        st.map.remove(&session);
        if st.ended.len() >= MAX_ENTRIES {
            st.ended.clear(); // forgotten ones are checked again, and refused again
        }
        st.ended.insert(session);
    }

    /// Bumped by every local revocation ([`Self::forget`], [`Self::clear`]): a call during
    /// which it moved ended sessions or changed permissions here.
    pub fn epoch(&self) -> u64 {
        self.state.lock().map_or(u64::MAX, |st| st.epoch)
    }

    /// Roles or accounts changed: every live session is read again (ended ones stay ended).
    pub fn clear(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.epoch += 1;
            st.map.clear();
        }
    }
}

/// A check under way; every caller waiting for it holds the cell.
type Flight<V> = Arc<tokio::sync::OnceCell<V>>;

/// One check per (session, epoch) at a time; see the module documentation.
#[derive(Debug)]
pub struct Flights<V> {
    calls: Mutex<HashMap<(Uuid, u64), Flight<V>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Self {
            calls: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Flights<V> {
    /// Runs `check` unless a check of this session at this epoch is under way, in which case
    /// its answer is shared. If the caller running it goes away, a waiting one takes over.
    pub async fn run<Fut>(&self, session: Uuid, epoch: u64, check: impl FnOnce() -> Fut) -> V
    where
        Fut: Future<Output = V>,
    {
        let key = (session, epoch);
        let cell = match self.calls.lock() {
            Ok(mut calls) => calls.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let out = cell.get_or_init(check).await.clone();
        if let Ok(mut calls) = self.calls.lock() {
            if calls.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                calls.remove(&key);
            }
        }
        out
    }

    /// Checks under way.
    pub fn in_flight(&self) -> usize {
        self.calls.lock().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(p: &[&str]) -> Arc<Vec<String>> {
        Arc::new(p.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let c = ValidationCache::new(Duration::from_millis(50));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let Lookup::Miss(epoch) = c.get(a) else {
            panic!("an empty cache knows nothing")
        };
        c.put(a, perms(&["x"]), epoch, Instant::now());
        c.put(b, perms(&[]), epoch, Instant::now());
        assert_eq!(c.get(a), Lookup::Fresh(perms(&["x"])));
        c.forget(a);
        assert_eq!(c.get(a), Lookup::Ended);
        assert!(matches!(c.get(b), Lookup::Fresh(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(c.get(b), Lookup::Miss(_)));
        // Ended is final: past the ttl, after a clear, and whatever a later check says.
        assert_eq!(c.get(a), Lookup::Ended);
        c.clear();
        let Lookup::Miss(now) = c.get(b) else {
            panic!("cleared")
        };
        c.put(a, perms(&["x"]), now, Instant::now());
        assert_eq!(c.get(a), Lookup::Ended);
        c.mark_ended(b);
        assert_eq!(c.get(b), Lookup::Ended);
        let off = ValidationCache::new(Duration::ZERO);
        off.put(a, perms(&[]), 0, Instant::now());
        assert!(matches!(off.get(a), Lookup::Miss(_)));
    }

    #[test]
    fn past_half_its_life_one_caller_refreshes_while_the_others_are_served() {
        let c = ValidationCache::new(Duration::from_millis(100));
        let s = Uuid::new_v4();
        c.put(s, perms(&["p"]), 0, Instant::now());
        std::thread::sleep(Duration::from_millis(60));
        let Lookup::Refresh(p, epoch) = c.get(s) else {
            panic!("past half its life the entry asks for a refresh")
        };
        assert_eq!(p, perms(&["p"]));
        // Only the first caller refreshes.
        assert_eq!(c.get(s), Lookup::Fresh(perms(&["p"])));
        assert_eq!(c.get(s), Lookup::Fresh(perms(&["p"])));
        // The refresh brings new permissions and a new life.
        c.put(s, perms(&["p", "q"]), epoch, Instant::now());
        assert_eq!(c.get(s), Lookup::Fresh(perms(&["p", "q"])));
        // A failed refresh lets the next caller try.
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(c.get(s), Lookup::Refresh(..)));
        c.refresh_failed(s);
        assert!(matches!(c.get(s), Lookup::Refresh(..)));
        // Past the ttl nothing is served, refreshing or not.
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(c.get(s), Lookup::Miss(_)));
    }

    #[test]
    fn a_check_that_began_before_a_revocation_cannot_restore_the_session() {
        let c = ValidationCache::new(Duration::from_secs(10));
        let s = Uuid::new_v4();
        let Lookup::Miss(before) = c.get(s) else {
            panic!("unknown")
        };
        let other = Uuid::new_v4();
        c.forget(other); // another session logged out while this check was under way
        c.put(s, perms(&["p"]), before, Instant::now());
        assert!(matches!(c.get(s), Lookup::Miss(_)));
        let Lookup::Miss(now) = c.get(s) else {
            panic!("unknown")
        };
        c.clear();
        c.put(s, perms(&["p"]), now, Instant::now());
        assert!(matches!(c.get(s), Lookup::Miss(_)));
        let Lookup::Miss(now) = c.get(s) else {
            panic!("unknown")
        };
        c.put(s, perms(&["p"]), now, Instant::now());
        assert!(matches!(c.get(s), Lookup::Fresh(_)));
    }

    #[test]
    fn an_entry_lives_from_when_its_check_began() {
        let c = ValidationCache::new(Duration::from_millis(200));
        let (slow, slower) = (Uuid::new_v4(), Uuid::new_v4());
        let began = Instant::now() - Duration::from_millis(120);
        c.put(slow, perms(&["p"]), 0, began);
        assert!(matches!(c.get(slow), Lookup::Refresh(..)));
        c.put(
            slower,
            perms(&["p"]),
            0,
            Instant::now() - Duration::from_millis(250),
        );
        assert!(matches!(c.get(slower), Lookup::Miss(_)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_of_one_session_share_one() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let flights = Arc::new(Flights::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let s = Uuid::new_v4();
        let check = |runs: Arc<AtomicUsize>| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            runs.fetch_add(1, Ordering::SeqCst) + 1
        };
        let mut calls = Vec::new();
        for _ in 0..20 {
            let (flights, runs) = (flights.clone(), runs.clone());
            calls.push(tokio::spawn(async move {
                flights.run(s, 7, || check(runs)).await
            }));
        }
        // Another epoch (a revocation happened meanwhile) does not join the old check.
        let other = flights.run(s, 8, || check(runs.clone())).await;
        let mut answers = Vec::new();
        for c in calls {
            answers.push(c.await.unwrap());
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one check per epoch");
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert_ne!(answers[0], other);
        assert_eq!(flights.in_flight(), 0, "finished checks are not kept");
        // A later call checks again.
        assert_eq!(flights.run(s, 7, || check(runs.clone())).await, 3);

        // The caller running a check goes away: a waiting one takes over.
        let (f2, r2) = (flights.clone(), runs.clone());
        let first = tokio::spawn(async move {
            f2.run(s, 9, || async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                r2.fetch_add(100, Ordering::SeqCst)
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (f3, r3) = (flights.clone(), runs.clone());
        let waiter = tokio::spawn(async move { f3.run(s, 9, || check(r3)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.abort();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter took over")
            .unwrap();
        assert_eq!(got, 4);
    }
}
