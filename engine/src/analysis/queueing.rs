//! Closed-form queueing results used by the preview and by the exactness tests.
//!
//! Rates are per second, times in seconds. Every function returns `None` where the
//! queue is unstable or an argument is meaningless, never NaN.

/// Erlang B: blocking probability of `c` servers offered `a = lambda / mu` erlangs.
pub fn erlang_b(c: u32, a: f64) -> f64 {
    // The recursion B(k) = a B(k-1) / (k + a B(k-1)) is numerically stable for any c.
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// Erlang C: probability that an arrival waits in an M/M/c queue (`None` if `a >= c`).
pub fn erlang_c(c: u32, a: f64) -> Option<f64> {
    if !(a >= 0.0 && a < f64::from(c)) {
        return None;
    }
    let b = erlang_b(c, a);
    let c = f64::from(c);
    Some(c * b / (c - a * (1.0 - b)))
}

/// Mean wait in queue of M/M/c.
pub fn mmc_wait(lambda: f64, mu: f64, c: u32) -> Option<f64> {
    let a = lambda / mu;
    let pw = erlang_c(c, a)?;
    Some(pw / (f64::from(c) * mu - lambda))
}

/// Mean wait in queue of M/G/c by the Allen-Cunneen approximation (exact for M/M/c and,
/// with c = 1, the Pollaczek-Khinchine formula for M/G/1). `scv` is the squared
/// coefficient of variation of the service time.
pub fn mgc_wait(lambda: f64, mean_service: f64, c: u32, scv: f64) -> Option<f64> {
    Some(mmc_wait(lambda, 1.0 / mean_service, c)? * (1.0 + scv) / 2.0)
}

/// Pollaczek-Khinchine mean wait of M/G/1.
pub fn mg1_wait(lambda: f64, mean_service: f64, scv: f64) -> Option<f64> {
    let rho = lambda * mean_service;
    if !(0.0..1.0).contains(&rho) {
        return None;
    }
    Some(rho * mean_service * (1.0 + scv) / (2.0 * (1.0 - rho)))
}

/// Blocking probability of M/M/c/K, `k >= c` being the most requests in the system.
pub fn mmck_blocking(lambda: f64, mu: f64, c: u32, k: u64) -> Option<f64> {
    if !(lambda >= 0.0 && mu > 0.0) || c == 0 || k < u64::from(c) || k > 10_000_000 {
        return None;
    }
    let a = lambda / mu;
    // Unnormalised p_n, rescaled whenever it grows, so no overflow for large K.
    let mut p = 1.0f64;
    let mut sum = 1.0f64;
    for n in 1..=k {
        let div = if n <= u64::from(c) {
            n as f64
        } else {
            f64::from(c)
        };
        p *= a / div;
        sum += p;
        if sum > 1e250 {
            p /= 1e250;
            sum /= 1e250;
        }
    }
    Some(p / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_values() {
        // M/M/1 at rho 0.5 with mu 1: Wq = rho / (mu - lambda) = 1.
        assert!((mmc_wait(0.5, 1.0, 1).unwrap_or(0.0) - 1.0).abs() < 1e-12);
        // Erlang C for c=2, a=1: 1/3.
        assert!((erlang_c(2, 1.0).unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-12);
        // M/D/1 waits half as long as M/M/1.
        let md1 = mg1_wait(0.5, 1.0, 0.0).unwrap_or(0.0);
        assert!((md1 - 0.5).abs() < 1e-12);
        // M/M/1/K at rho 1: 1/(K+1).
        assert!((mmck_blocking(1.0, 1.0, 1, 4).unwrap_or(0.0) - 0.2).abs() < 1e-12);
        assert!(mmc_wait(2.0, 1.0, 2).is_none());
    }
}
