//! The discrete-event simulator.
//!
//! [`Simulation`] owns the compiled design, the event list, the request slab and the
//! metric accumulators. It runs either to the end ([`Simulation::run_to_end`]) or window
//! by window ([`Simulation::advance`]), so that a caller can stream results at any speed.
//! The request life cycle (arrive, queue, serve, route, finish) lives in `flow`.

mod acc;
mod events;
mod flow;
mod hist;
mod network;
mod sampler;

use crate::analysis::MAX_ALERT_EVENTS;
use crate::error::EngineError;
use crate::limits::{DEFAULT_MAX_EVENTS, MAX_WINDOWS, MAX_WINDOW_CELLS};
use crate::metrics::{AlertEvent, ComponentWindow, EndToEndWindow, WindowMetrics};
use crate::model::{AlertMetric, AlertRule, Chaos, Design};
use crate::report::RunReport;
use crate::rng::Rng;
use crate::validate::validate;
use std::collections::BTreeMap;

pub(crate) use acc::Acc;
use events::{Ev, EventQueue};
pub(crate) use network::Node;
use network::{Action, RandomCrash, Source, SourceKind, Station};

/// Seed used when neither the run nor the design gives one.
pub const DEFAULT_SEED: u64 = 1;

/// A request in flight.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Req {
    born: f64,
    arrived: f64,
    hops: u32,
    source: u32,
}

/// One window's figures kept for the analysis at the end of the run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Point {
    pub end_s: f64,
    pub utilisation: f64,
    pub queue: f64,
    pub p99_ms: f64,
    pub throughput: f64,
    pub error_rate: f64,
}

#[derive(Debug, Clone, Default)]
struct AlertState {
    held_since: Option<f64>,
    firing: bool,
}

/// A running simulation of one design.
pub struct Simulation {
    pub(crate) design_name: String,
    pub(crate) seed: u64,
    pub(crate) nodes: Vec<Node>,
    stations: Vec<Station>,
    sources: Vec<Source>,
    actions: Vec<(f64, Action)>,
    random_crashes: Vec<RandomCrash>,
    crash_of_station: Vec<Option<u32>>,
    reqs: Vec<Req>,
    free: Vec<u32>,
    in_flight: u64,
    q: EventQueue,
    rng: Rng,
    pub(crate) now: f64,
    end: f64,
    pub(crate) events: u64,
    max_events: u64,
    pub(crate) stopped: Option<String>,
    win: Vec<Acc>,
    pub(crate) tot: Vec<Acc>,
    e2e_win: Acc,
    pub(crate) e2e_tot: Acc,
    window_start: f64,
    window_index: u64,
    pub(crate) requests: u64,
    window_s: f64,
    /// Per component, then end to end (last): one point per closed window.
    pub(crate) history: Vec<Vec<Point>>,
    pub(crate) history_truncated: bool,
    rules: Vec<AlertRule>,
    rule_target: Vec<Option<usize>>,
    alert_state: Vec<AlertState>,
    /// The first `MAX_ALERT_EVENTS` events; the rest are counted.
    pub(crate) alert_log: Vec<AlertEvent>,
    pub(crate) alerts_omitted: u64,
}

impl Simulation {
    /// Validates and compiles `design`; `seed` overrides the design's own seed.
    pub fn new(design: &Design, seed: Option<u64>) -> Result<Self, EngineError> {
        validate(design).map_err(EngineError::Invalid)?;
        let c = network::compile(design)?;
        let seed = seed.or(design.seed).unwrap_or(DEFAULT_SEED);
        let n = c.nodes.len();
        let mut win = Vec::with_capacity(n);
        let mut tot = Vec::with_capacity(n);
        for _ in 0..n {
            win.push(Acc::new());
            tot.push(Acc::new());
        }
        let rule_target = design
            .alerts
            .iter()
            .map(|a| {
                a.component
                    .as_ref()
                    .and_then(|name| design.components.iter().position(|c| &c.name == name))
            })
            .collect();
        let mut sim = Simulation {
            design_name: design.name.clone(),
            seed,
            nodes: c.nodes,
            stations: c.stations,
            sources: c.sources,
            actions: c.actions,
            random_crashes: c.random_crashes,
            crash_of_station: c.crash_of_station,
            reqs: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            q: EventQueue::default(),
            rng: Rng::new(seed),
            now: 0.0,
            end: design.duration_s,
            events: 0,
            max_events: design.max_events.unwrap_or(DEFAULT_MAX_EVENTS),
            stopped: None,
            win,
            tot,
            e2e_win: Acc::new(),
            e2e_tot: Acc::new(),
            window_start: 0.0,
            window_index: 0,
            requests: 0,
            window_s: design.window_s.unwrap_or(1.0),
            history: vec![Vec::new(); n + 1],
            history_truncated: false,
            rules: design.alerts.clone(),
            rule_target,
            alert_state: vec![AlertState::default(); design.alerts.len()],
            alert_log: Vec::new(),
            alerts_omitted: 0,
        };
        sim.schedule_start();
        Ok(sim)
    }

    fn schedule_start(&mut self) {
        for s in 0..self.sources.len() {
            match self.sources[s].kind {
                SourceKind::Open { .. } => self.schedule_arrival(s),
                SourceKind::Closed { users, think } => {
                    for _ in 0..users {
                        let t = self.rng.exp(think);
                        self.q.push(t, Ev::Think { source: s as u32 });
                    }
                }
            }
        }
        for (k, (t, _)) in self.actions.iter().enumerate() {
            if *t <= self.end {
                self.q.push(*t, Ev::Chaos { action: k as u32 });
            }
        }
        for s in 0..self.stations.len() {
            if let Some(k) = self.crash_of_station[s] {
                let mtbf = self.random_crashes[k as usize].mtbf;
                let t = self.rng.exp(mtbf);
                if t <= self.end {
                    self.q.push(t, Ev::Fail { station: s as u32 });
                }
            }
        }
    }

    /// Simulates the next `dt_seconds` of simulated time (clipped to the duration) and
    /// returns that window's metrics. A non-positive or non-finite `dt` gives an empty window.
    pub fn advance(&mut self, dt_seconds: f64) -> WindowMetrics {
        let dt = if dt_seconds.is_finite() && dt_seconds > 0.0 {
            dt_seconds
        } else {
            0.0
        };
        let mut target = (self.now + dt).min(self.end);
        if self.end - target <= 1e-9 * self.end {
            // Windows that add up to the duration end exactly there despite rounding.
            target = self.end;
        }
        loop {
            if self.events >= self.max_events {
                if self.q.peek_time().is_some_and(|t| t <= target) {
                    self.stopped = Some(format!(
                        "stopped at {:.3} s: the event budget of {} events was spent",
                        self.now, self.max_events
                    ));
                }
                break;
            }
            let Some((t, ev)) = self.q.pop_until(target) else {
                break;
            };
            self.now = t;
            self.events += 1;
            self.dispatch(ev);
        }
        if self.stopped.is_some() {
            self.end = self.now;
        } else {
            self.now = target;
        }
        self.close_window()
    }

    /// Injects `chaos` now, into the running simulation: its `at_s` (for the kinds that have
    /// one) becomes [`Simulation::now`], and its effects are scheduled as if the design had
    /// held it (a random crash draws its first failures from the run's generator now). The
    /// entry as applied is returned. Deterministic: the same entries injected at the same
    /// simulated times of runs of the same design and seed give the same runs. Check the
    /// entry first with [`crate::validate_injection`]; an entry aimed at no component is
    /// refused here too.
    pub fn inject(&mut self, mut chaos: Chaos) -> Result<Chaos, EngineError> {
        use crate::model::Chaos as C;
        let now = self.now;
        match &mut chaos {
            C::Crash { at_s, .. }
            | C::Latency { at_s, .. }
            | C::Errors { at_s, .. }
            | C::Partition { at_s, .. }
            | C::TrafficSpike { at_s, .. }
            | C::CacheMissStorm { at_s, .. } => *at_s = now,
            C::RandomCrash { .. } => {}
        }
        let names: BTreeMap<&str, u32> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i as u32))
            .collect();
        let targets: Vec<&str> = match &chaos {
            C::Crash { component, .. }
            | C::RandomCrash { component, .. }
            | C::Latency { component, .. }
            | C::Errors { component, .. }
            | C::CacheMissStorm { component, .. } => vec![component],
            C::Partition { from, to, .. } => vec![from, to],
            C::TrafficSpike { source, .. } => source.iter().map(String::as_str).collect(),
        };
        if let Some(missing) = targets.iter().find(|t| !names.contains_key(*t)) {
            return Err(EngineError::Invalid(vec![crate::validate::Problem {
                path: "$".into(),
                message: format!("no component is named '{missing}'"),
            }]));
        }
        let node_of = |name: &str| names.get(name).copied();
        let (mut actions, mut crashes) = (Vec::new(), Vec::new());
        network::compile_chaos(&chaos, &node_of, &mut actions, &mut crashes);
        drop(names);
        for (t, action) in actions {
            let k = self.actions.len() as u32;
            self.actions.push((t, action));
            if t <= self.end {
                self.q.push(t.max(now), Ev::Chaos { action: k });
            }
        }
        for rc in crashes {
            let k = self.random_crashes.len() as u32;
            let (node, mtbf) = (rc.node as usize, rc.mtbf);
            self.random_crashes.push(rc);
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            for st in n.first_station..n.first_station + n.replicas {
                if let Some(slot) = self.crash_of_station.get_mut(st as usize) {
                    *slot = Some(k);
                    let t = now + self.rng.exp(mtbf);
                    if t <= self.end {
                        self.q.push(t, Ev::Fail { station: st });
                    }
                }
            }
        }
        Ok(chaos)
    }

    /// Runs to the end of the design's duration in windows of the design's `window_s`.
    pub fn run_to_end(&mut self) {
        while !self.is_finished() {
            self.advance(self.window_s);
        }
    }

    /// True once the duration is reached or the event budget is spent.
    pub fn is_finished(&self) -> bool {
        self.now >= self.end || self.stopped.is_some()
    }

    /// Simulated time so far, seconds.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Requests generated by the clients so far.
    pub fn requests_simulated(&self) -> u64 {
        self.requests
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// The summary of everything simulated so far.
    pub fn report(&self) -> RunReport {
        crate::report::build(self)
    }

    /// Adds the busy and queue time of `station` since its last change to the window.
    #[inline]
    fn touch(&mut self, s: usize) {
        let st = &mut self.stations[s];
        let dt = self.now - st.last;
        if dt > 0.0 {
            let acc = &mut self.win[st.node as usize];
            acc.busy_area += f64::from(st.busy) * dt;
            acc.queue_area += st.queue.len() as f64 * dt;
        }
        st.last = self.now;
    }

    /// Totals including the window in progress.
    pub(crate) fn totals(&self) -> (Vec<Acc>, Acc) {
        let mut tot = self.tot.clone();
        for (t, w) in tot.iter_mut().zip(&self.win) {
            t.absorb(w);
        }
        for st in &self.stations {
            let dt = self.now - st.last;
            if dt > 0.0 {
                if let Some(t) = tot.get_mut(st.node as usize) {
                    t.busy_area += f64::from(st.busy) * dt;
                    t.queue_area += st.queue.len() as f64 * dt;
                }
            }
        }
        let mut e2e = self.e2e_tot.clone();
        e2e.absorb(&self.e2e_win);
        (tot, e2e)
    }

    fn close_window(&mut self) -> WindowMetrics {
        for s in 0..self.stations.len() {
            self.touch(s);
        }
        let start = self.window_start;
        let end = self.now;
        let len = end - start;
        let per_s = |x: u64| if len > 0.0 { x as f64 / len } else { 0.0 };
        let mut components = Vec::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            let w = &self.win[i];
            let capacity = f64::from(node.servers) * f64::from(node.replicas) * len;
            let stations = &self.stations
                [node.first_station as usize..(node.first_station + node.replicas) as usize];
            let queue_length: u64 = stations.iter().map(|s| s.queue.len() as u64).sum();
            let replicas_up = stations.iter().filter(|s| s.down == 0).count() as u32;
            components.push(ComponentWindow {
                name: node.name.clone(),
                arrivals: w.arrivals,
                completions: w.completions,
                drops: w.drops,
                errors: w.errors,
                timeouts: w.timeouts,
                utilisation: if capacity > 0.0 {
                    w.busy_area / capacity
                } else {
                    0.0
                },
                mean_queue_length: if len > 0.0 { w.queue_area / len } else { 0.0 },
                mean_in_system: if len > 0.0 {
                    (w.queue_area + w.busy_area) / len
                } else {
                    0.0
                },
                queue_length,
                throughput: per_s(w.completions),
                mean_wait_ms: w.mean_wait_ms(),
                mean_response_ms: w.mean_resp_ms(),
                p50_ms: w.quantile_ms(0.5),
                p95_ms: w.quantile_ms(0.95),
                p99_ms: w.quantile_ms(0.99),
                replicas_up,
            });
        }
        let e = &self.e2e_win;
        let end_to_end = EndToEndWindow {
            arrivals: e.arrivals,
            completions: e.completions,
            drops: e.drops,
            errors: e.errors,
            in_flight: self.in_flight,
            throughput: per_s(e.completions),
            mean_response_ms: e.mean_resp_ms(),
            p50_ms: e.quantile_ms(0.5),
            p95_ms: e.quantile_ms(0.95),
            p99_ms: e.quantile_ms(0.99),
        };
        let alerts = self.evaluate_alerts(start, end, &components, &end_to_end);
        if len > 0.0 {
            self.record_history(end, &components, &end_to_end);
        }
        for (t, w) in self.tot.iter_mut().zip(self.win.iter_mut()) {
            t.absorb(w);
            w.reset();
        }
        self.e2e_tot.absorb(&self.e2e_win);
        self.e2e_win.reset();
        let index = self.window_index;
        self.window_index += 1;
        self.window_start = end;
        WindowMetrics {
            index,
            start_s: start,
            end_s: end,
            components,
            end_to_end,
            alerts,
            finished: self.is_finished(),
        }
    }

    fn record_history(&mut self, end: f64, comps: &[ComponentWindow], e2e: &EndToEndWindow) {
        let windows = self.history.first().map_or(0, Vec::len) as f64;
        if windows >= MAX_WINDOWS || (windows + 1.0) * self.history.len() as f64 > MAX_WINDOW_CELLS
        {
            self.history_truncated = true;
            return;
        }
        let rate = |x: u64, of: u64| if of > 0 { x as f64 / of as f64 } else { 0.0 };
        for (h, c) in self.history.iter_mut().zip(comps) {
            h.push(Point {
                end_s: end,
                utilisation: c.utilisation,
                queue: c.mean_queue_length,
                p99_ms: c.p99_ms.unwrap_or(0.0),
                throughput: c.throughput,
                error_rate: rate(c.errors + c.drops, c.arrivals),
            });
        }
        if let Some(h) = self.history.last_mut() {
            h.push(Point {
                end_s: end,
                utilisation: 0.0,
                queue: e2e.in_flight as f64,
                p99_ms: e2e.p99_ms.unwrap_or(0.0),
                throughput: e2e.throughput,
                error_rate: rate(e2e.errors + e2e.drops, e2e.arrivals),
            });
        }
    }

    fn evaluate_alerts(
        &mut self,
        start: f64,
        end: f64,
        comps: &[ComponentWindow],
        e2e: &EndToEndWindow,
    ) -> Vec<AlertEvent> {
        let mut out = Vec::new();
        if end <= start {
            return out;
        }
        for (k, rule) in self.rules.iter().enumerate() {
            let value = match self.rule_target[k] {
                Some(i) => comps.get(i).and_then(|c| component_metric(c, rule.metric)),
                None => e2e_metric(e2e, rule.metric),
            };
            let holds = value.is_some_and(|v| match (rule.above, rule.below) {
                (Some(a), _) => v > a,
                (None, Some(b)) => v < b,
                (None, None) => false,
            });
            let st = &mut self.alert_state[k];
            if holds {
                let since = *st.held_since.get_or_insert(start);
                if !st.firing && end - since >= rule.for_s - 1e-9 {
                    st.firing = true;
                    out.push(AlertEvent {
                        rule: rule.name.clone(),
                        component: rule.component.clone(),
                        state: "firing",
                        at_s: end,
                        value: value.unwrap_or(0.0),
                    });
                }
            } else {
                st.held_since = None;
                if st.firing {
                    st.firing = false;
                    out.push(AlertEvent {
                        rule: rule.name.clone(),
                        component: rule.component.clone(),
                        state: "resolved",
                        at_s: end,
                        value: value.unwrap_or(0.0),
                    });
                }
            }
        }
        let room = MAX_ALERT_EVENTS.saturating_sub(self.alert_log.len());
        self.alert_log.extend(out.iter().take(room).cloned());
        self.alerts_omitted += out.len().saturating_sub(room) as u64;
        out
    }
}

fn ratio(x: u64, of: u64) -> f64 {
    if of > 0 {
        x as f64 / of as f64
    } else {
        0.0
    }
}

fn component_metric(c: &ComponentWindow, m: AlertMetric) -> Option<f64> {
    match m {
        AlertMetric::Utilisation => Some(c.utilisation),
        AlertMetric::QueueLength => Some(c.mean_queue_length),
        AlertMetric::P50Ms => c.p50_ms,
        AlertMetric::P95Ms => c.p95_ms,
        AlertMetric::P99Ms => c.p99_ms,
        AlertMetric::MeanResponseMs => c.mean_response_ms,
        AlertMetric::Throughput => Some(c.throughput),
        AlertMetric::ErrorRate => Some(ratio(c.errors, c.arrivals)),
        AlertMetric::DropRate => Some(ratio(c.drops, c.arrivals)),
    }
}

fn e2e_metric(e: &EndToEndWindow, m: AlertMetric) -> Option<f64> {
    match m {
        AlertMetric::Utilisation => None,
        AlertMetric::QueueLength => Some(e.in_flight as f64),
        AlertMetric::P50Ms => e.p50_ms,
        AlertMetric::P95Ms => e.p95_ms,
        AlertMetric::P99Ms => e.p99_ms,
        AlertMetric::MeanResponseMs => e.mean_response_ms,
        AlertMetric::Throughput => Some(e.throughput),
        AlertMetric::ErrorRate => Some(ratio(e.errors, e.arrivals)),
        AlertMetric::DropRate => Some(ratio(e.drops, e.arrivals)),
    }
}
