//! Drawing service times and evaluating traffic rates over time.

use crate::model::{Pattern, ServiceTime};
use crate::rng::Rng;

/// A service-time distribution in seconds, with its parameters precomputed.
#[derive(Debug, Clone)]
pub(crate) enum Sampler {
    Exp(f64),
    Det(f64),
    LogNormal { mu: f64, sigma: f64 },
    Erlang { k: u32, phase_mean: f64 },
    Uniform { lo: f64, width: f64 },
}

impl Sampler {
    pub(crate) fn new(st: &ServiceTime) -> Self {
        match *st {
            ServiceTime::Exponential { mean_ms } => Sampler::Exp(mean_ms / 1000.0),
            ServiceTime::Deterministic { mean_ms } => Sampler::Det(mean_ms / 1000.0),
            ServiceTime::Lognormal { mean_ms, cv } => {
                if cv <= 0.0 {
                    Sampler::Det(mean_ms / 1000.0)
                } else {
                    let s2 = (1.0 + cv * cv).ln();
                    Sampler::LogNormal {
                        mu: (mean_ms / 1000.0).ln() - s2 / 2.0,
                        sigma: s2.sqrt(),
                    }
                }
            }
            ServiceTime::Erlang { mean_ms, k } => {
                let k = k.max(1);
                Sampler::Erlang {
                    k,
                    phase_mean: mean_ms / 1000.0 / f64::from(k),
                }
            }
            ServiceTime::Uniform { min_ms, max_ms } => Sampler::Uniform {
                lo: min_ms / 1000.0,
                width: (max_ms - min_ms) / 1000.0,
            },
        }
    }

    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Sampler::Exp(mean) => rng.exp(mean),
            Sampler::Det(v) => v,
            Sampler::LogNormal { mu, sigma } => (mu + sigma * rng.normal()).exp(),
            Sampler::Erlang { k, phase_mean } => {
                // Sum of logs: a product of many uniforms would underflow.
                let mut s = 0.0;
                for _ in 0..k {
                    s += rng.open01().ln();
                }
                -phase_mean * s
            }
            Sampler::Uniform { lo, width } => lo + width * rng.uniform(),
        }
    }
}

/// Rate of an open workload at time `t` (requests/s), `duration` being the run's length.
pub(crate) fn rate_at(rate: f64, pattern: &Pattern, t: f64, duration: f64) -> f64 {
    use std::f64::consts::TAU;
    match *pattern {
        Pattern::Constant => rate,
        Pattern::Ramp {
            to_rate,
            start_s,
            end_s,
        } => {
            let end = end_s.unwrap_or(duration);
            if t <= start_s {
                rate
            } else if t >= end || end <= start_s {
                to_rate
            } else {
                rate + (to_rate - rate) * (t - start_s) / (end - start_s)
            }
        }
        Pattern::Spike {
            peak_rate,
            at_s,
            duration_s,
        } => {
            if t >= at_s && t < at_s + duration_s {
                peak_rate
            } else {
                rate
            }
        }
        Pattern::Wave {
            amplitude,
            period_s,
        } => rate * (1.0 + amplitude * (TAU * t / period_s).sin()),
        Pattern::Diurnal {
            amplitude,
            period_s,
            peak_at_s,
        } => {
            let p = period_s.unwrap_or(86_400.0);
            let peak = peak_at_s.unwrap_or(p / 2.0);
            rate * (1.0 + amplitude * (TAU * (t - peak) / p).cos())
        }
    }
    .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(st: ServiceTime) -> f64 {
        let s = Sampler::new(&st);
        let mut r = Rng::new(11);
        let n = 100_000;
        (0..n).map(|_| s.sample(&mut r)).sum::<f64>() / n as f64
    }

    #[test]
    fn every_distribution_has_the_mean_it_was_given() {
        for st in [
            ServiceTime::Exponential { mean_ms: 4.0 },
            ServiceTime::Deterministic { mean_ms: 4.0 },
            ServiceTime::Lognormal {
                mean_ms: 4.0,
                cv: 0.8,
            },
            ServiceTime::Erlang { mean_ms: 4.0, k: 3 },
            ServiceTime::Uniform {
                min_ms: 2.0,
                max_ms: 6.0,
            },
        ] {
            let m = mean_of(st.clone()) * 1000.0;
            assert!((m - 4.0).abs() < 0.08, "{st:?}: {m}");
        }
    }

    #[test]
    fn patterns_follow_their_shape() {
        let ramp = Pattern::Ramp {
            to_rate: 300.0,
            start_s: 0.0,
            end_s: Some(10.0),
        };
        assert_eq!(rate_at(100.0, &ramp, 5.0, 20.0), 200.0);
        assert_eq!(rate_at(100.0, &ramp, 15.0, 20.0), 300.0);
        let spike = Pattern::Spike {
            peak_rate: 900.0,
            at_s: 3.0,
            duration_s: 1.0,
        };
        assert_eq!(rate_at(100.0, &spike, 3.5, 20.0), 900.0);
        assert_eq!(rate_at(100.0, &spike, 4.5, 20.0), 100.0);
        let day = Pattern::Diurnal {
            amplitude: 0.5,
            period_s: Some(100.0),
            peak_at_s: None,
        };
        assert!((rate_at(100.0, &day, 50.0, 200.0) - 150.0).abs() < 1e-9);
        assert!((rate_at(100.0, &day, 0.0, 200.0) - 50.0).abs() < 1e-9);
    }
}
