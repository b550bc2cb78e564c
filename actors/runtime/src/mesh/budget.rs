//! The global channel budget of one process: every pool asks it before adding a channel.
//!
//! Below the cap a request is granted. At the cap, a pool of a higher-priority service takes
//! a channel from the lowest-priority pool that is above its minimum (that pool is told to
//! give one up); otherwise the request is refused and counted. The accounting here is the
//! truth: the sum of granted channels never exceeds the cap.

use std::collections::HashMap;
use std::sync::Mutex;

/// Priority of calls to a service: 0 is the highest (auth > project > simulation > gateway).
pub type Priority = u8;

/// Told to a pool that must give a channel up to a higher-priority pool.
pub type YieldFn = Box<dyn Fn() + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Under the cap.
    Granted,
    /// At the cap: taken from the pool `from` (which was told to shrink).
    Rebalanced { from: u64 },
    /// At the cap and nothing lower to take from.
    Refused,
}

impl Grant {
    pub fn granted(self) -> bool {
        !matches!(self, Grant::Refused)
    }
}

struct Entry {
    priority: Priority,
    min: usize,
    held: usize,
    label: String,
    on_yield: YieldFn,
}

#[derive(Default)]
struct State {
    total: usize,
    pools: HashMap<u64, Entry>,
}

pub struct Budget {
    cap: usize,
    state: Mutex<State>,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            state: Mutex::new(State::default()),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Channels granted to every pool together.
    pub fn total(&self) -> usize {
        self.state.lock().map(|s| s.total).unwrap_or(0)
    }

    /// Channels granted to pool `id`.
    pub fn held(&self, id: u64) -> usize {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.pools.get(&id).map(|e| e.held))
            .unwrap_or(0)
    }

    /// The label (service) a pool joined with, for metrics.
    pub fn label(&self, id: u64) -> Option<String> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.pools.get(&id).map(|e| e.label.clone()))
    }

    pub fn join(&self, id: u64, label: &str, priority: Priority, min: usize, on_yield: YieldFn) {
        if let Ok(mut s) = self.state.lock() {
            s.pools.insert(
                id,
                Entry {
                    priority,
                    min,
                    held: 0,
                    label: label.to_string(),
                    on_yield,
                },
            );
        }
    }

    /// Gives back every channel of pool `id` and forgets it.
    pub fn leave(&self, id: u64) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(e) = s.pools.remove(&id) {
                s.total -= e.held;
            }
        }
    }

    /// One more channel for pool `id`?
    pub fn acquire(&self, id: u64) -> Grant {
        let Ok(mut s) = self.state.lock() else {
            return Grant::Refused;
        };
        let Some(priority) = s.pools.get(&id).map(|e| e.priority) else {
            return Grant::Refused;
        };
        if s.total < self.cap {
            s.total += 1;
            if let Some(e) = s.pools.get_mut(&id) {
                e.held += 1;
            }
            return Grant::Granted;
        }
        // The lowest priority first, then the pool holding the most.
        let victim = s
            .pools
            .iter()
            .filter(|(&v, e)| v != id && e.priority > priority && e.held > e.min)
            .max_by_key(|(&v, e)| (e.priority, e.held, std::cmp::Reverse(v)))
            .map(|(&v, _)| v);
        let Some(v) = victim else {
            return Grant::Refused;
        };
        if let Some(e) = s.pools.get_mut(&v) {
            e.held -= 1;
            (e.on_yield)();
        }
        if let Some(e) = s.pools.get_mut(&id) {
            e.held += 1;
        }
        Grant::Rebalanced { from: v }
    }

    /// Pool `id` gives one channel back.
    pub fn release(&self, id: u64) {
        if let Ok(mut s) = self.state.lock() {
            let released = match s.pools.get_mut(&id) {
                Some(e) if e.held > 0 => {
                    e.held -= 1;
                    true
                }
                _ => false,
            };
            if released {
                s.total -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counter() -> (Arc<AtomicUsize>, YieldFn) {
        let c = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        (
            c,
            Box::new(move || {
                c2.fetch_add(1, Ordering::SeqCst);
            }),
        )
    }

    #[test]
    fn grants_up_to_the_cap_then_refuses_equal_priorities() {
        let b = Budget::new(3);
        b.join(1, "project", 1, 1, Box::new(|| {}));
        b.join(2, "project", 1, 1, Box::new(|| {}));
        assert_eq!(b.acquire(1), Grant::Granted);
        assert_eq!(b.acquire(1), Grant::Granted);
        assert_eq!(b.acquire(2), Grant::Granted);
        assert_eq!(b.acquire(2), Grant::Refused);
        assert_eq!(b.total(), 3);
        b.release(1);
        assert_eq!(b.acquire(2), Grant::Granted);
        assert_eq!((b.held(1), b.held(2), b.total()), (1, 2, 3));
    }

    #[test]
    fn a_higher_priority_pool_takes_from_the_lowest_above_its_minimum() {
        let b = Budget::new(6);
        let (sim_yields, sim) = counter();
        let (gw_yields, gw) = counter();
        b.join(1, "auth", 0, 1, Box::new(|| {}));
        b.join(2, "simulation", 2, 1, sim);
        b.join(3, "gateway", 3, 2, gw);
        for _ in 0..3 {
            assert!(b.acquire(2).granted());
        }
        for _ in 0..3 {
            assert!(b.acquire(3).granted());
        }
        assert_eq!(b.total(), 6);
        // The gateway pool (lowest) gives first, down to its minimum of 2...
        assert_eq!(b.acquire(1), Grant::Rebalanced { from: 3 });
        assert_eq!(gw_yields.load(Ordering::SeqCst), 1);
        // ...then the simulation pool, down to its minimum of 1.
        assert_eq!(b.acquire(1), Grant::Rebalanced { from: 2 });
        assert_eq!(b.acquire(1), Grant::Rebalanced { from: 2 });
        assert_eq!(b.acquire(1), Grant::Refused);
        assert_eq!(sim_yields.load(Ordering::SeqCst), 2);
        assert_eq!((b.held(1), b.held(2), b.held(3), b.total()), (3, 1, 2, 6));
        // A lower-priority pool never takes from a higher one.
        assert_eq!(b.acquire(3), Grant::Refused);
    }

    #[test]
    fn leaving_gives_everything_back() {
        let b = Budget::new(2);
        b.join(1, "auth", 0, 1, Box::new(|| {}));
        b.join(2, "auth", 0, 1, Box::new(|| {}));
        assert!(b.acquire(1).granted());
        assert!(b.acquire(1).granted());
        assert_eq!(b.acquire(2), Grant::Refused);
        b.leave(1);
        assert_eq!(b.total(), 0);
        assert!(b.acquire(2).granted());
        // Unknown pools get nothing, and releasing more than held is harmless.
        assert_eq!(b.acquire(9), Grant::Refused);
        b.release(2);
        b.release(2);
        assert_eq!(b.total(), 0);
    }
}
