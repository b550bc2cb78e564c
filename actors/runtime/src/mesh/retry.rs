//! Retries that cannot multiply a failure: a token bucket in the manner of Finagle's retry
//! budget. Every call deposits `ratio` of a token, time adds `min_per_second`, a retry takes
//! a whole one; the bucket holds at most ten seconds' worth of the floor. When a target fails
//! for everyone, retries stay at `ratio` of the calls (plus the floor) instead of doubling
//! the load on what is left.

use rand::Rng;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_second: f64,
    max_tokens: f64,
    bucket: Mutex<Bucket>,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: f64) -> Self {
        let max_tokens = (min_per_second * 10.0).max(1.0);
        Self {
            ratio,
            min_per_second,
            max_tokens,
            bucket: Mutex::new(Bucket {
                tokens: max_tokens,
                at: Instant::now(),
            }),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.min_per_second).min(self.max_tokens);
        b.at = now;
    }

    /// A call was made.
    pub fn deposit(&self) {
        if let Ok(mut b) = self.bucket.lock() {
            b.tokens = (b.tokens + self.ratio).min(self.max_tokens);
        }
    }

    /// May a retry be made now? Takes a token if so.
    pub fn withdraw_at(&self, now: Instant) -> bool {
        let Ok(mut b) = self.bucket.lock() else {
            return false;
        };
        self.refill(&mut b, now);
        // (Deposits of 0.1 add up to 0.999...: allow for rounding.)
        if b.tokens >= 1.0 - 1e-9 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn withdraw(&self) -> bool {
        self.withdraw_at(Instant::now())
    }

    /// Tokens left (for the admin view).
    pub fn tokens(&self) -> f64 {
        self.bucket.lock().map(|b| b.tokens).unwrap_or(0.0)
    }
}

/// Exponential backoff with full jitter before retry number `retry` (1, 2, ...).
pub fn backoff(retry: u32, base: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.saturating_sub(1).min(16));
    let cap = exp.min(max);
    if cap.is_zero() {
        return cap;
    }
    Duration::from_micros(rng.random_range(0..=cap.as_micros() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_by_the_ratio_once_the_floor_is_spent() {
        let b = RetryBudget::new(0.1, 10.0);
        let now = Instant::now();
        // The bucket starts with ten seconds of floor (100 retries)...
        let mut allowed = 0;
        while b.withdraw_at(now) {
            allowed += 1;
        }
        assert_eq!(allowed, 100);
        // ...then 1000 failing calls in the same instant earn 100 retries, not 1000.
        let mut retried = 0;
        for _ in 0..1000 {
            b.deposit();
            if b.withdraw_at(now) {
                retried += 1;
            }
        }
        assert_eq!(retried, 100);
        // Time refills the floor: 10 per second.
        assert!(b.withdraw_at(now + Duration::from_millis(150)));
        assert!(!b.withdraw_at(now + Duration::from_millis(150)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut rng = rand::rng();
        let base = Duration::from_millis(10);
        let max = Duration::from_millis(200);
        for _ in 0..200 {
            assert!(backoff(1, base, max, &mut rng) <= Duration::from_millis(10));
            assert!(backoff(3, base, max, &mut rng) <= Duration::from_millis(40));
            assert!(backoff(30, base, max, &mut rng) <= max);
        }
        let spread: Vec<_> = (0..50).map(|_| backoff(5, base, max, &mut rng)).collect();
        assert!(spread.iter().any(|d| *d != spread[0]), "jitter");
    }
}
