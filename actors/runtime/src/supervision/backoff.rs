//! Exponential backoff with jitter between restarts.

use rand::Rng;
use std::time::Duration;

/// Delay before the n-th consecutive restart: `base * 2^(n-1)`, capped at `max`, then scaled
/// by a random factor in `[1 - jitter, 1 + jitter]` so siblings do not restart in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Fraction in `[0, 1]`.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            max: Duration::from_secs(10),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// No delay at all; for tests that want immediate restarts.
    pub fn none() -> Self {
        Self {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    /// Delay before restart number `attempt` (1-based) of one child.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 || raw.is_zero() {
            return raw;
        }
        let factor = rng.random_range((1.0 - jitter)..=(1.0 + jitter));
        raw.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn grows_exponentially_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            jitter: 0.0,
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(b.delay(1, &mut rng), Duration::from_millis(10));
        assert_eq!(b.delay(2, &mut rng), Duration::from_millis(20));
        assert_eq!(b.delay(4, &mut rng), Duration::from_millis(80));
        assert_eq!(b.delay(5, &mut rng), Duration::from_millis(100));
        assert_eq!(b.delay(60, &mut rng), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.5,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = b.delay(1, &mut rng);
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(150));
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 10, "jitter should spread delays");
    }
}
