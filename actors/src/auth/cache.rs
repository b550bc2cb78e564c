//! In-process cache of recent token validations: session id → (when, the user's permissions).
//!
//! A validation hit skips Redis and PostgreSQL entirely, so `ValidateToken` costs a JWT check
//! and a map lookup. Entries live `ttl` (500 ms by default): a session revoked on another
//! instance (seen through the Redis session cache) is refused here within that time, well
//! inside the one-second revocation promise; one revoked on this instance is forgotten at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Past this many entries the cache starts over (a bound on memory, not a policy).
const MAX_ENTRIES: usize = 100_000;

/// When a session was validated, and its user's permissions then.
type Entry = (Instant, Arc<Vec<String>>);

#[derive(Debug)]
pub struct ValidationCache {
    ttl: Duration,
    map: Mutex<HashMap<Uuid, Entry>>,
}

impl ValidationCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The permissions of a session validated less than `ttl` ago.
    pub fn get(&self, session: Uuid) -> Option<Arc<Vec<String>>> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().ok()?;
        let (at, perms) = map.get(&session)?;
        (at.elapsed() < self.ttl).then(|| perms.clone())
    }

    pub fn put(&self, session: Uuid, perms: Arc<Vec<String>>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                map.retain(|_, (at, _)| at.elapsed() < ttl);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(session, (Instant::now(), perms));
        }
    }

    /// A session ended here: refuse it at once.
    pub fn forget(&self, session: Uuid) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&session);
        }
    }

    /// Roles or accounts changed: everything is read again.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let c = ValidationCache::new(Duration::from_millis(50));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        c.put(a, Arc::new(vec!["x".into()]));
        c.put(b, Arc::new(vec![]));
        assert_eq!(c.get(a).unwrap()[0], "x");
        c.forget(a);
        assert!(c.get(a).is_none());
        assert!(c.get(b).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get(b).is_none());
        let off = ValidationCache::new(Duration::ZERO);
        off.put(a, Arc::new(vec![]));
        assert!(off.get(a).is_none());
    }
}
