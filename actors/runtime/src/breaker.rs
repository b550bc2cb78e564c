//! A circuit breaker in the manner of resilience4j: closed, open, half-open, over a
//! time-based sliding window.
//!
//! - Closed: calls pass; outcomes are counted per second over `window`. Once at least
//!   `min_calls` were seen and the failure rate (failures and slow calls over calls) reaches
//!   `failure_rate`, the breaker opens.
//! - Open: calls are refused at once (the caller answers 503 with Retry-After in
//!   microseconds instead of waiting for a timeout) until `open_for` has passed.
//! - Half-open: `half_open_calls` trial calls pass; if all succeed the breaker closes (with a
//!   fresh window), any failure opens it again.
//!
//! The state machine is pure (time is passed in) so it is tested exhaustively; [`Breaker`]
//! wraps it for concurrent callers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub window: Duration,
    pub failure_rate: f64,
    pub min_calls: u32,
    /// A call slower than this counts as a failure (a stuck dependency is a failing one).
    pub slow_call: Duration,
    pub open_for: Duration,
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            failure_rate: 0.5,
            min_calls: 10,
            slow_call: Duration::from_secs(2),
            open_for: Duration::from_secs(5),
            half_open_calls: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// For the `sdsim_circuit_breaker_state` gauge.
    pub fn code(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// Refused: the breaker is open; retry after this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rejected {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
pub struct Machine {
    config: BreakerConfig,
    state: State,
    epoch: Instant,
    buckets: Vec<Bucket>,
    opened_at: Option<Instant>,
    trials_started: u32,
    trials_ok: u32,
}

impl Machine {
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        let n = config.window.as_secs().max(1) as usize;
        Self {
            config,
            state: State::Closed,
            epoch: now,
            buckets: vec![Bucket::default(); n],
            opened_at: None,
            trials_started: 0,
            trials_ok: 0,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    /// Would [`Machine::try_acquire`] let a call go now? Changes nothing (for routing, which
    /// looks at several instances before choosing one).
    pub fn peek(&self, now: Instant) -> Result<(), Rejected> {
        match self.state {
            State::Closed => Ok(()),
            State::Open => {
                let waited = now.saturating_duration_since(self.opened_at.unwrap_or(now));
                if waited >= self.config.open_for {
                    Ok(())
                } else {
                    Err(Rejected {
                        retry_after: self.config.open_for - waited,
                    })
                }
            }
            State::HalfOpen if self.trials_started < self.config.half_open_calls.max(1) => Ok(()),
            State::HalfOpen => Err(Rejected {
                retry_after: Duration::from_millis(100),
            }),
        }
    }

    /// May a call go now? Moves open → half-open when the wait is over.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Rejected> {
        match self.state {
            State::Closed => Ok(()),
            State::Open => {
                let opened = self.opened_at.unwrap_or(now);
                let waited = now.saturating_duration_since(opened);
                if waited >= self.config.open_for {
                    self.state = State::HalfOpen;
                    self.trials_started = 1;
                    self.trials_ok = 0;
                    Ok(())
                } else {
                    Err(Rejected {
                        retry_after: self.config.open_for - waited,
                    })
                }
            }
            State::HalfOpen => {
                if self.trials_started < self.config.half_open_calls.max(1) {
                    self.trials_started += 1;
                    Ok(())
                } else {
                    Err(Rejected {
                        retry_after: Duration::from_millis(100),
                    })
                }
            }
        }
    }

    /// The outcome of a call that was let through; `failed` for errors of the dependency.
    pub fn record(&mut self, now: Instant, failed: bool, took: Duration) {
        let failed = failed || took >= self.config.slow_call;
        match self.state {
            State::HalfOpen => {
                if failed {
                    self.open(now);
                } else {
                    self.trials_ok += 1;
                    if self.trials_ok >= self.config.half_open_calls.max(1) {
                        self.state = State::Closed;
                        self.buckets.iter_mut().for_each(|b| *b = Bucket::default());
                    }
                }
            }
            State::Open => {} // a call from before it opened
            State::Closed => {
                let s = self.second(now);
                let n = self.buckets.len();
                let b = &mut self.buckets[(s as usize) % n];
                if b.second != s {
                    *b = Bucket {
                        second: s,
                        calls: 0,
                        failures: 0,
                    };
                }
                b.calls += 1;
                if failed {
                    b.failures += 1;
                }
                let oldest = s.saturating_sub(n as u64 - 1);
                let (calls, failures) = self
                    .buckets
                    .iter()
                    .filter(|b| b.second >= oldest && b.second <= s)
                    .fold((0u32, 0u32), |(c, f), b| (c + b.calls, f + b.failures));
                if calls >= self.config.min_calls.max(1)
                    && f64::from(failures) / f64::from(calls) >= self.config.failure_rate
                {
                    self.open(now);
                }
            }
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open;
        self.opened_at = Some(now);
    }
}

/// A [`Machine`] shared by concurrent callers.
#[derive(Debug)]
pub struct Breaker {
    machine: Mutex<Machine>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            machine: Mutex::new(Machine::new(config, Instant::now())),
        }
    }

    pub fn try_acquire(&self) -> Result<(), Rejected> {
        match self.machine.lock() {
            Ok(mut m) => m.try_acquire(Instant::now()),
            Err(_) => Ok(()),
        }
    }

    /// Records an outcome; returns the state after it.
    pub fn record(&self, failed: bool, took: Duration) -> State {
        match self.machine.lock() {
            Ok(mut m) => {
                m.record(Instant::now(), failed, took);
                m.state()
            }
            Err(_) => State::Closed,
        }
    }

    /// [`Breaker::try_acquire`], and the state after it.
    pub fn acquire(&self) -> (Result<(), Rejected>, State) {
        match self.machine.lock() {
            Ok(mut m) => {
                let r = m.try_acquire(Instant::now());
                (r, m.state())
            }
            Err(_) => (Ok(()), State::Closed),
        }
    }

    /// See [`Machine::peek`].
    pub fn peek(&self) -> Result<(), Rejected> {
        match self.machine.lock() {
            Ok(m) => m.peek(Instant::now()),
            Err(_) => Ok(()),
        }
    }

    pub fn state(&self) -> State {
        self.machine
            .lock()
            .map(|m| m.state())
            .unwrap_or(State::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            window: Duration::from_secs(10),
            failure_rate: 0.5,
            min_calls: 4,
            slow_call: Duration::from_secs(1),
            open_for: Duration::from_secs(5),
            half_open_calls: 2,
        }
    }

    const FAST: Duration = Duration::from_millis(1);

    #[test]
    fn opens_at_the_failure_rate_once_enough_calls_were_seen() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0);
        m.record(t0, true, FAST);
        m.record(t0, true, FAST);
        m.record(t0, true, FAST);
        assert_eq!(m.state(), State::Closed, "fewer than min_calls");
        m.record(t0, false, FAST);
        assert_eq!(m.state(), State::Open, "3 of 4 failed");
        let r = m.try_acquire(t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(r.retry_after, Duration::from_secs(3));
    }

    #[test]
    fn stays_closed_below_the_rate_and_forgets_old_failures() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0);
        for _ in 0..3 {
            m.record(t0, true, FAST);
        }
        // 11 s later those failures are out of the window.
        let later = t0 + Duration::from_secs(11);
        for _ in 0..4 {
            m.record(later, false, FAST);
        }
        m.record(later, true, FAST);
        assert_eq!(m.state(), State::Closed, "1 of 5 in the window");
    }

    #[test]
    fn slow_calls_count_as_failures() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0);
        for _ in 0..4 {
            m.record(t0, false, Duration::from_secs(2));
        }
        assert_eq!(m.state(), State::Open);
    }

    #[test]
    fn half_open_trials_close_or_reopen() {
        let t0 = Instant::now();
        let mut m = Machine::new(cfg(), t0);
        for _ in 0..4 {
            m.record(t0, true, FAST);
        }
        let t1 = t0 + Duration::from_secs(5);
        assert!(m.try_acquire(t1).is_ok());
        assert_eq!(m.state(), State::HalfOpen);
        assert!(m.try_acquire(t1).is_ok());
        assert!(m.try_acquire(t1).is_err(), "only half_open_calls trials");
        m.record(t1, false, FAST);
        m.record(t1, false, FAST);
        assert_eq!(m.state(), State::Closed);
        // The old failures do not reopen it.
        m.record(t1, false, FAST);
        assert_eq!(m.state(), State::Closed);

        // A failing trial reopens it, for a full wait.
        for _ in 0..4 {
            m.record(t1, true, FAST);
        }
        let t2 = t1 + Duration::from_secs(5);
        assert!(m.try_acquire(t2).is_ok());
        m.record(t2, true, FAST);
        assert_eq!(m.state(), State::Open);
        assert!(m.try_acquire(t2 + Duration::from_secs(4)).is_err());
        assert!(m.try_acquire(t2 + Duration::from_secs(5)).is_ok());
    }
}
