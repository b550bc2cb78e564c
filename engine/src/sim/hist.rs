//! A log-linear latency histogram, read straight from the bits of an `f64`.
//!
//! Each power of two of seconds is split into 2^7 = 128 equal sub-buckets, so a bucket is
//! at most 0.8% of the values in it wide (HDR-style: about two significant digits at every
//! scale). The bucket of a value is its exponent and top mantissa bits, one shift, so
//! recording costs a few instructions. Values below 2^-30 s (about 1 ns) share the first
//! bucket; values above 2^24 s (194 days) share the last. The exact minimum and maximum
//! are kept too, so quantiles never leave the observed range (a constant service time
//! reports exactly its value).
//!
//! Counts grow on demand up to the largest bucket seen, and only the touched range is
//! cleared or merged, which keeps windows of many components cheap.

/// Sub-bucket bits per power of two.
const SUB_BITS: u32 = 7;
/// Smallest resolved value: 2^MIN_EXP seconds.
const MIN_EXP: i64 = -30;
/// Values from 2^MAX_EXP seconds on share the last bucket.
const MAX_EXP: i64 = 24;
const SHIFT: u32 = 52 - SUB_BITS;
const BASE: u64 = ((1023 + MIN_EXP) as u64) << SUB_BITS;
const BUCKETS: usize = ((MAX_EXP - MIN_EXP) as usize) << SUB_BITS;

/// Latency histogram over seconds.
#[derive(Debug, Clone)]
pub(crate) struct Hist {
    counts: Vec<u64>,
    total: u64,
    /// Touched range of `counts`: `lo..hi` (empty when `lo >= hi`).
    lo: usize,
    hi: usize,
    min: f64,
    max: f64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: Vec::new(),
            total: 0,
            lo: usize::MAX,
            hi: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

#[inline]
fn index(v: f64) -> usize {
    if v > 0.0 {
        let b = (v.to_bits() >> SHIFT).saturating_sub(BASE) as usize;
        b.min(BUCKETS - 1)
    } else {
        0
    }
}

/// The middle of bucket `i`.
fn midpoint(i: usize) -> f64 {
    let lo = f64::from_bits((i as u64 + BASE) << SHIFT);
    let hi = f64::from_bits((i as u64 + 1 + BASE) << SHIFT);
    (lo + hi) / 2.0
}

impl Hist {
    /// Values recorded.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// Records one value, seconds (a negative or NaN value counts as 0).
    #[inline]
    pub(crate) fn record(&mut self, v: f64) {
        let i = index(v);
        if i >= self.counts.len() {
            self.grow(i + 1);
        }
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i + 1);
        self.total += 1;
        let v = if v > 0.0 { v } else { 0.0 };
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    #[cold]
    fn grow(&mut self, len: usize) {
        // Grow in steps of an octave at least, so a slowly rising latency does not resize
        // at every new bucket.
        let len = len.max(self.counts.len() + (1 << SUB_BITS)).min(BUCKETS);
        self.counts.resize(len, 0);
    }

    /// Adds every value of `other`.
    pub(crate) fn add(&mut self, other: &Hist) {
        if other.total == 0 {
            return;
        }
        if other.hi > self.counts.len() {
            self.grow(other.hi);
        }
        for (a, b) in self.counts[other.lo..other.hi]
            .iter_mut()
            .zip(&other.counts[other.lo..other.hi])
        {
            *a += b;
        }
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Forgets every value (keeps the memory).
    pub(crate) fn reset(&mut self) {
        if self.lo < self.hi {
            self.counts[self.lo..self.hi].fill(0);
        }
        let counts = std::mem::take(&mut self.counts);
        *self = Hist {
            counts,
            ..Hist::default()
        };
    }

    /// The value at quantile `q` in [0, 1], seconds; `None` when empty.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let q = if q.is_finite() {
            q.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        // The extremes are known exactly.
        if rank == 1 {
            return Some(self.min);
        }
        if rank == self.total {
            return Some(self.max);
        }
        let mut seen = 0;
        for i in self.lo..self.hi {
            seen += self.counts[i];
            if seen >= rank {
                return Some(midpoint(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let mut h = Hist::default();
        let n: u32 = 100_000;
        for k in 1..=n {
            h.record(f64::from(k) * 1e-5); // 10 us .. 1 s, uniform
        }
        assert_eq!(h.len(), u64::from(n));
        for q in [0.01, 0.5, 0.95, 0.99] {
            let got = h.quantile(q).unwrap_or(0.0);
            let want = q;
            assert!(
                (got - want).abs() <= want / 128.0 + 1e-5,
                "q {q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(0.0), Some(1e-5));
        assert_eq!(h.quantile(1.0), Some(1.0));
    }

    #[test]
    fn constant_values_are_exact_and_extremes_are_clamped() {
        let mut h = Hist::default();
        for _ in 0..10 {
            h.record(0.001);
        }
        assert_eq!(h.quantile(0.5), Some(0.001));
        let mut odd = Hist::default();
        for v in [0.0, -1.0, f64::NAN, 1e-40, 1e30, f64::INFINITY] {
            odd.record(v);
        }
        assert_eq!(odd.len(), 6);
        assert_eq!(odd.quantile(0.0), Some(0.0));
        assert_eq!(odd.quantile(1.0), Some(f64::INFINITY));
    }

    #[test]
    fn add_and_reset_merge_and_clear() {
        let (mut a, mut b) = (Hist::default(), Hist::default());
        a.record(0.002);
        b.record(0.5);
        b.record(0.7);
        a.add(&b);
        assert_eq!(a.len(), 3);
        assert!((a.quantile(0.5).unwrap_or(0.0) - 0.5).abs() < 0.5 / 128.0);
        a.reset();
        assert_eq!((a.len(), a.quantile(0.5)), (0, None));
        a.record(0.003);
        assert_eq!(a.quantile(0.99), Some(0.003));
        a.add(&Hist::default());
        assert_eq!(a.len(), 1);
    }
}
