//! Outlier ejection (as Envoy's outlier detection does): an instance whose connections are
//! refused is out of rotation at once, for a base time that doubles with each consecutive
//! refusal (up to a cap), and comes back by itself when that time is over: the next call
//! that picks it is the probe. A call that reaches it resets the count. The circuit breaker
//! needs a minimum number of calls in its window before it opens; a refused connection is a
//! certainty about the instance, not a statistic, so it acts on the first one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a first refusal ejects an instance.
pub const BASE_EJECTION: Duration = Duration::from_millis(500);
/// The longest ejection, however many refusals in a row.
pub const MAX_EJECTION: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    until: Option<Instant>,
    strikes: u32,
}

/// The ejection state of one target.
#[derive(Debug, Default)]
pub struct Ejection {
    state: Mutex<State>,
}

impl Ejection {
    /// A refused connection at `now`: out of rotation until the returned instant.
    pub fn eject(&self, now: Instant) -> Instant {
        let Ok(mut s) = self.state.lock() else {
            return now;
        };
        s.strikes = s.strikes.saturating_add(1);
        let factor = 1u32 << (s.strikes - 1).min(16);
        let time = BASE_EJECTION.saturating_mul(factor).min(MAX_EJECTION);
        let until = now + time;
        s.until = Some(until);
        until
    }

    /// The instance answered: back to a clean record.
    pub fn reachable(&self) {
        if let Ok(mut s) = self.state.lock() {
            if s.strikes != 0 || s.until.is_some() {
                *s = State::default();
            }
        }
    }

    /// Whether the instance is out of rotation at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.state
            .lock()
            .map(|s| s.until.is_some_and(|u| now < u))
            .unwrap_or(false)
    }

    /// Consecutive refusals.
    pub fn strikes(&self) -> u32 {
        self.state.lock().map(|s| s.strikes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_ejects_at_once_for_a_time_that_doubles_then_caps() {
        let e = Ejection::default();
        let t0 = Instant::now();
        assert!(!e.is_ejected(t0));
        let until = e.eject(t0);
        assert_eq!(until - t0, BASE_EJECTION);
        assert!(e.is_ejected(t0 + BASE_EJECTION / 2));
        // Back by itself when the time is over: the next call is the probe.
        assert!(!e.is_ejected(until));
        assert_eq!(e.eject(until) - until, BASE_EJECTION * 2);
        assert_eq!(e.strikes(), 2);
        for _ in 0..20 {
            e.eject(t0);
        }
        assert_eq!(e.eject(t0) - t0, MAX_EJECTION);
    }

    #[test]
    fn an_answer_clears_the_record() {
        let e = Ejection::default();
        let t0 = Instant::now();
        e.eject(t0);
        e.eject(t0);
        e.reachable();
        assert!(!e.is_ejected(t0));
        assert_eq!(e.eject(t0) - t0, BASE_EJECTION);
    }
}
