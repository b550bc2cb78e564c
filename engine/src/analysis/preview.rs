//! The analytic preview: what queueing theory predicts before anything is simulated.
//!
//! The traffic equations `lambda = gamma + P^T lambda` give each component's arrival rate
//! (routing probabilities, even splits for round robin and friends, exits and cache hits
//! included). Each replica is then an M/G/c queue: Erlang C with the Allen-Cunneen
//! correction for the service-time variability (exact for exponential service, and the
//! Pollaczek-Khinchine formula for one server). Closed workloads are solved by a
//! fixed point `X = N / (Z + R(X))` on their throughput. Finite queues, drops and chaos
//! are not in the preview; the simulation shows them.

use serde::Serialize;

use crate::analysis::queueing::{mgc_wait, mmck_blocking};
use crate::catalogue::Role;
use crate::model::{Design, Routing, Traffic};
use crate::resolve::{resolve, Resolved};
use crate::validate::{peak_rate, validate};

/// Predicted figures of one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewComponent {
    /// Component name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Mean arrival rate over all replicas, requests/s.
    pub arrival_rate: f64,
    /// Arrival rate at the traffic's peak.
    pub peak_arrival_rate: f64,
    /// Most it can serve: replicas x servers / mean service time.
    pub capacity_per_s: f64,
    /// Arrival rate / capacity; 1 or more means it cannot keep up.
    pub utilisation: f64,
    /// Utilisation at the traffic's peak.
    pub peak_utilisation: f64,
    /// Mean wait in queue, ms (`None` when saturated).
    pub mean_wait_ms: Option<f64>,
    /// Mean wait plus service, ms (`None` when saturated).
    pub mean_response_ms: Option<f64>,
    /// Share of arrivals a finite queue would turn away (M/M/c/K), if finite.
    pub drop_probability: Option<f64>,
    /// Utilisation >= 1 at the mean load.
    pub saturated: bool,
    /// The factor by which all traffic can grow before this component saturates.
    pub saturates_at_load_factor: Option<f64>,
}

/// The whole preview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// Per component, in design order (clients left out).
    pub components: Vec<PreviewComponent>,
    /// Requests/s entering from all clients.
    pub entry_rate: f64,
    /// Predicted mean end-to-end response of a request, ms (`None` if anything saturates).
    pub end_to_end_response_ms: Option<f64>,
    /// Components with utilisation >= 1.
    pub saturated: Vec<String>,
    /// The component that saturates first as load grows, in words.
    pub bottleneck: Option<String>,
    /// Caveats, and the validation problems if the design is invalid.
    pub notes: Vec<String>,
}

struct Net {
    res: Vec<Resolved>,
    /// `(from, to, probability, latency_s)`, probability conditional on leaving `from`.
    edges: Vec<(usize, usize, f64, f64)>,
}

impl Net {
    /// Arrival rates given external rates into each node (`gamma`, already routed out of
    /// the clients), by fixed-point iteration. `None` if it does not converge.
    fn solve(&self, gamma: &[f64]) -> Option<Vec<f64>> {
        let n = gamma.len();
        let mut lambda = gamma.to_vec();
        let budget = (100_000_000 / (self.edges.len() + n).max(1)).clamp(100, 100_000);
        for _ in 0..budget {
            let mut next = gamma.to_vec();
            for &(f, t, p, _) in &self.edges {
                if self.res[f].role == Role::Source {
                    continue;
                }
                next[t] += lambda[f] * p * self.cont(f);
            }
            let diff = next
                .iter()
                .zip(&lambda)
                .map(|(a, b)| (a - b).abs() / a.abs().max(1e-12))
                .fold(0.0, f64::max);
            lambda = next;
            if diff < 1e-12 {
                return Some(lambda);
            }
        }
        None
    }

    /// Probability a request served at `i` goes on.
    fn cont(&self, i: usize) -> f64 {
        (1.0 - self.res[i].exit_probability) * (1.0 - self.res[i].failure_probability)
    }

    /// External rate into each node when each client sends `rates[client]` requests/s.
    fn gamma(&self, rates: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.res.len()];
        for &(f, t, p, _) in &self.edges {
            if self.res[f].role == Role::Source {
                g[t] += rates[f] * p;
            }
        }
        g
    }

    /// Mean response (wait + service) at node `i` under arrival rate `lambda`.
    fn response(&self, i: usize, lambda: f64) -> Option<(f64, f64)> {
        let r = &self.res[i];
        let s = r.service.mean_ms() / 1000.0;
        let per = lambda / f64::from(r.replicas.max(1));
        let w = if per == 0.0 {
            0.0
        } else {
            mgc_wait(per, s, r.servers, r.service.scv())?
        };
        Some((w, w + s))
    }

    /// Mean end-to-end response for client rates `rates`.
    fn end_to_end(&self, rates: &[f64]) -> Option<f64> {
        let total: f64 = rates.iter().sum();
        if total <= 0.0 {
            return Some(0.0);
        }
        let lambda = self.solve(&self.gamma(rates))?;
        let mut sum = 0.0;
        for (i, r) in self.res.iter().enumerate() {
            if r.role != Role::Source && lambda[i] > 0.0 {
                sum += lambda[i] * self.response(i, lambda[i])?.1;
            }
        }
        for &(f, _, p, lat) in &self.edges {
            let flow = if self.res[f].role == Role::Source {
                rates[f] * p
            } else {
                lambda[f] * p * self.cont(f)
            };
            sum += flow * lat;
        }
        Some(sum / total)
    }
}

/// Predicts utilisation and response time of every component from queueing theory.
pub fn analytic_preview(design: &Design) -> Preview {
    let mut notes = Vec::new();
    if let Err(problems) = validate(design) {
        notes.extend(problems.iter().map(|p| format!("invalid design: {p}")));
        return Preview {
            components: Vec::new(),
            entry_rate: 0.0,
            end_to_end_response_ms: None,
            saturated: Vec::new(),
            bottleneck: None,
            notes,
        };
    }
    let res: Vec<Resolved> = design.components.iter().filter_map(resolve).collect();
    let index = |name: &str| design.components.iter().position(|c| c.name == name);
    let mut edges = Vec::new();
    for (i, r) in res.iter().enumerate() {
        let out: Vec<_> = design
            .connections
            .iter()
            .filter(|e| e.from == design.components[i].name)
            .collect();
        let k = out.len() as f64;
        for e in &out {
            let Some(t) = index(&e.to) else { continue };
            let p = match r.routing {
                Routing::Probabilistic => e.probability.unwrap_or(1.0 / k),
                _ => 1.0 / k,
            };
            edges.push((i, t, p, e.latency_ms.unwrap_or(0.0) / 1000.0));
        }
    }
    let net = Net { res, edges };
    let n = net.res.len();

    // Client rates: open ones directly, closed ones by a fixed point on throughput.
    let mut mean = vec![0.0; n];
    let mut peak = vec![0.0; n];
    for (i, r) in net.res.iter().enumerate() {
        if let Some(Traffic::Open { rate, pattern }) = &r.traffic {
            mean[i] = *rate; // patterns average out near the base rate
            peak[i] = peak_rate(*rate, pattern);
        }
    }
    for i in 0..n {
        if let Some(Traffic::Closed {
            users,
            think_time_ms,
        }) = &net.res[i].traffic
        {
            let users = f64::from(*users);
            let z = think_time_ms / 1000.0;
            let f = |x: f64, mean: &mut Vec<f64>| -> f64 {
                mean[i] = x;
                match net.end_to_end(mean) {
                    Some(r) => x * (z + r) - users,
                    None => f64::INFINITY,
                }
            };
            let mut lo = 0.0;
            let mut hi = if z > 0.0 { users / z } else { 1e9 };
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if f(mid, &mut mean) > 0.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            mean[i] = lo;
            peak[i] = lo;
            notes.push(format!(
                "'{}' is a closed workload: its rate {lo:.1} req/s comes from a mean-value fixed point",
                design.components[i].name
            ));
        }
    }
    let entry_rate: f64 = mean.iter().sum();
    let lam = net.solve(&net.gamma(&mean));
    let lam_peak = net.solve(&net.gamma(&peak));
    let (Some(lam), Some(lam_peak)) = (lam, lam_peak) else {
        notes.push(
            "the traffic equations did not converge: requests loop for a very long time".into(),
        );
        return Preview {
            components: Vec::new(),
            entry_rate,
            end_to_end_response_ms: None,
            saturated: Vec::new(),
            bottleneck: None,
            notes,
        };
    };
    let mut components = Vec::new();
    let mut saturated = Vec::new();
    let mut first: Option<(f64, usize)> = None;
    for (i, r) in net.res.iter().enumerate() {
        if r.role == Role::Source {
            continue;
        }
        let c = &design.components[i];
        let s = r.service.mean_ms() / 1000.0;
        let capacity = f64::from(r.replicas) * f64::from(r.servers) / s;
        let util = lam[i] / capacity;
        let peak_util = lam_peak[i] / capacity;
        let resp = net.response(i, lam[i]);
        let per = lam[i] / f64::from(r.replicas.max(1));
        let drop_probability = r.queue_capacity.and_then(|q| {
            mmck_blocking(
                per,
                1.0 / s,
                r.servers,
                u64::from(r.servers).saturating_add(q),
            )
        });
        let factor = (lam[i] > 0.0).then(|| capacity / lam[i]);
        if util >= 1.0 {
            saturated.push(c.name.clone());
        }
        if let Some(f) = factor {
            if first.is_none_or(|(g, _)| f < g) {
                first = Some((f, i));
            }
        }
        components.push(PreviewComponent {
            name: c.name.clone(),
            kind: c.kind.clone(),
            arrival_rate: lam[i],
            peak_arrival_rate: lam_peak[i],
            capacity_per_s: capacity,
            utilisation: util,
            peak_utilisation: peak_util,
            mean_wait_ms: resp.map(|r| r.0 * 1000.0),
            mean_response_ms: resp.map(|r| r.1 * 1000.0),
            drop_probability,
            saturated: util >= 1.0,
            saturates_at_load_factor: factor,
        });
    }
    let bottleneck = first.map(|(f, i)| {
        let name = &design.components[i].name;
        if f <= 1.0 {
            format!(
                "'{name}' is saturated: it receives {:.0} req/s but can serve only {:.0} req/s; add replicas or servers, or send it less work",
                lam[i],
                lam[i] * f
            )
        } else {
            format!(
                "'{name}' saturates first, when traffic grows {f:.2}x (about {:.0} req/s entering)",
                entry_rate * f
            )
        }
    });
    if design.components.iter().any(|c| {
        matches!(
            c.service_time,
            Some(
                crate::model::ServiceTime::Lognormal { .. }
                    | crate::model::ServiceTime::Uniform { .. }
            )
        )
    }) {
        notes.push(
            "non-exponential multi-server stations use the Allen-Cunneen approximation".into(),
        );
    }
    Preview {
        components,
        entry_rate,
        end_to_end_response_ms: if saturated.is_empty() {
            net.end_to_end(&mean).map(|r| r * 1000.0)
        } else {
            None
        },
        saturated,
        bottleneck,
        notes,
    }
}
