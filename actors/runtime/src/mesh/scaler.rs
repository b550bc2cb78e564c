//! The scaler of one target instance's pool: every `interval` it measures the pool (rate,
//! error rate, latency EWMA over the last second; utilisation and queue now) and grows or
//! shrinks it, asking the process's [`Budget`] for every channel it adds.
//!
//! [`decide`] is the pure rule (seed 002's): up when utilisation > 80%, or queue > 10, or
//! rate > 100/s, or latency > 50 ms — while the error rate is under 5%; down when utilisation
//! < 30% and queue < 2 and the last action is older than the cooldown, never below the
//! minimum. A new channel connects eagerly and serves as soon as its handshake is done.

use super::budget::{Budget, Grant};
use super::{Inner, ScaleEvent, Target};
use crate::supervision::Crash;
use actix::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub min: usize,
    pub max: usize,
    pub up_utilisation: f64,
    pub up_queue: usize,
    pub up_rate: f64,
    pub up_latency_ms: f64,
    pub up_max_error_rate: f64,
    pub down_utilisation: f64,
    pub down_queue: usize,
    pub cooldown: Duration,
}

/// What the scaler saw at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub channels: usize,
    pub in_flight: usize,
    pub utilisation: f64,
    pub queue: usize,
    /// Calls per second over the last second.
    pub rate: f64,
    pub error_rate: f64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Utilisation,
    Queue,
    Rate,
    Latency,
}

impl Trigger {
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Utilisation => "utilisation",
            Trigger::Queue => "queue",
            Trigger::Rate => "rate",
            Trigger::Latency => "latency",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Up(Trigger),
    Down,
    Hold,
}

pub fn decide(s: &Stats, r: &Rules, since_last_action: Duration) -> Decision {
    let trigger = if s.utilisation > r.up_utilisation {
        Some(Trigger::Utilisation)
    } else if s.queue > r.up_queue {
        Some(Trigger::Queue)
    } else if s.rate > r.up_rate {
        Some(Trigger::Rate)
    } else if s.latency_ms > r.up_latency_ms {
        Some(Trigger::Latency)
    } else {
        None
    };
    if let Some(t) = trigger {
        if s.channels < r.max && s.error_rate < r.up_max_error_rate {
            return Decision::Up(t);
        }
        return Decision::Hold;
    }
    if s.channels > r.min
        && s.utilisation < r.down_utilisation
        && s.queue < r.down_queue
        && since_last_action >= r.cooldown
    {
        return Decision::Down;
    }
    Decision::Hold
}

/// Turns the pool's counters into a one-second window and a latency EWMA.
#[derive(Debug, Default)]
pub struct Sampler {
    window: VecDeque<(Instant, super::pool::Counters)>,
    ewma_ms: f64,
}

const WINDOW: Duration = Duration::from_secs(1);
const EWMA_ALPHA: f64 = 0.3;

impl Sampler {
    pub fn sample(&mut self, pool: &super::pool::Pool, now: Instant) -> Stats {
        let c = pool.counters();
        if let Some(&(_, last)) = self.window.back() {
            let calls = c.calls.saturating_sub(last.calls);
            if calls > 0 {
                let tick_ms =
                    c.latency_us.saturating_sub(last.latency_us) as f64 / 1e3 / calls as f64;
                self.ewma_ms = if self.ewma_ms == 0.0 {
                    tick_ms
                } else {
                    EWMA_ALPHA * tick_ms + (1.0 - EWMA_ALPHA) * self.ewma_ms
                };
            }
        }
        self.window.push_back((now, c));
        while self.window.len() > 2 && now.saturating_duration_since(self.window[1].0) >= WINDOW {
            self.window.pop_front();
        }
        let (t0, c0) = self.window[0];
        let secs = now.saturating_duration_since(t0).as_secs_f64();
        let calls = c.calls.saturating_sub(c0.calls);
        let errors = c.errors.saturating_sub(c0.errors);
        Stats {
            channels: pool.len(),
            in_flight: pool.in_flight(),
            utilisation: pool.utilisation(),
            queue: pool.queue(),
            rate: if secs > 0.0 { calls as f64 / secs } else { 0.0 },
            error_rate: if calls > 0 {
                errors as f64 / calls as f64
            } else {
                0.0
            },
            latency_ms: self.ewma_ms,
        }
    }
}

fn refused(mesh: &Inner, target: &Target) {
    mesh.metrics
        .pool_refused
        .with_label_values(&[target.service.as_str()])
        .inc();
}

fn rebalanced(mesh: &Inner, target: &Target, grant: Grant) {
    if let Grant::Rebalanced { from } = grant {
        let from = mesh.budget.label(from).unwrap_or_else(|| "gone".into());
        mesh.metrics
            .pool_rebalanced
            .with_label_values(&[from.as_str(), target.service.as_str()])
            .inc();
    }
}

/// Told by the budget: give one channel to a higher-priority pool.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Yield;

/// Told by the router: the target is gone; give every channel back and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

pub struct Scaler {
    target: Arc<Target>,
    mesh: Arc<Inner>,
    sampler: Sampler,
    last_action: Instant,
    connecting: bool,
}

impl Scaler {
    /// Starts the scaler with the pool at its minimum already (channels that connect on first
    /// use), so the target is routable the moment it is known.
    pub fn start(target: Arc<Target>, mesh: Arc<Inner>) -> Addr<Scaler> {
        let scaler = Scaler {
            target,
            mesh,
            sampler: Sampler::default(),
            last_action: Instant::now(),
            connecting: false,
        };
        let (target, mesh) = (scaler.target.clone(), scaler.mesh.clone());
        let addr = scaler.start();
        let me = addr.clone();
        mesh.budget.join(
            target.pool_id,
            target.service.as_str(),
            super::priority(target.service),
            mesh.rules.min,
            Box::new(move || me.do_send(Yield)),
        );
        for _ in 0..mesh.rules.min {
            let Some(channel) = mesh.lazy(&target.address) else {
                tracing::warn!(service = %target.service, address = %target.address, "not a gRPC address; no channel");
                break;
            };
            let grant = mesh.budget.acquire(target.pool_id);
            if !grant.granted() {
                refused(&mesh, &target);
                continue;
            }
            rebalanced(&mesh, &target, grant);
            target.pool.add(channel);
        }
        addr
    }

    fn budget(&self) -> &Budget {
        &self.mesh.budget
    }

    fn labels(&self) -> [&str; 2] {
        [self.target.service.as_str(), self.target.address.as_str()]
    }

    fn event(
        &mut self,
        direction: &'static str,
        trigger: &'static str,
        serving_after: Option<Duration>,
    ) {
        let m = &self.mesh.metrics;
        m.pool_scale_events
            .with_label_values(&[self.target.service.as_str(), direction, trigger])
            .inc();
        if let Some(d) = serving_after {
            m.pool_scale_up_seconds
                .with_label_values(&[self.target.service.as_str()])
                .observe(d.as_secs_f64());
        }
        self.target.push_event(ScaleEvent {
            at: chrono::Utc::now(),
            direction,
            trigger,
            channels: self.target.pool.len(),
            serving_after_ms: serving_after.map(|d| d.as_secs_f64() * 1e3),
        });
        self.publish_sizes();
        tracing::debug!(service = %self.target.service, instance = %self.target.address, direction, trigger, channels = self.target.pool.len(), "pool scaled");
    }

    fn publish_sizes(&self) {
        let m = &self.mesh.metrics;
        m.pool_channels
            .with_label_values(&self.labels())
            .set(self.target.pool.len() as i64);
        m.pool_channels_total.set(self.budget().total() as i64);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let stats = self.sampler.sample(&self.target.pool, now);
        self.target.set_stats(stats);
        let m = &self.mesh.metrics;
        m.pool_utilisation
            .with_label_values(&self.labels())
            .set(stats.utilisation);
        m.pool_queue
            .with_label_values(&self.labels())
            .set(stats.queue as i64);
        match decide(
            &stats,
            &self.mesh.rules,
            now.duration_since(self.last_action),
        ) {
            Decision::Up(trigger) if !self.connecting => self.grow(ctx, trigger, now),
            Decision::Down if self.target.pool.remove_one() => {
                self.budget().release(self.target.pool_id);
                self.last_action = now;
                self.event("down", "idle", None);
            }
            _ => {}
        }
    }

    fn grow(&mut self, ctx: &mut Context<Self>, trigger: Trigger, triggered: Instant) {
        let grant = self.budget().acquire(self.target.pool_id);
        if !grant.granted() {
            refused(&self.mesh, &self.target);
            return;
        }
        rebalanced(&self.mesh, &self.target, grant);
        self.connecting = true;
        let connect = self.mesh.connect(&self.target.address);
        ctx.spawn(connect.into_actor(self).map(move |res, act, _| {
            act.connecting = false;
            match res {
                Ok(channel) => {
                    act.target.pool.add(channel);
                    act.last_action = Instant::now();
                    act.event("up", trigger.label(), Some(triggered.elapsed()));
                }
                Err(e) => {
                    act.budget().release(act.target.pool_id);
                    tracing::warn!(service = %act.target.service, instance = %act.target.address, error = %e, "cannot add a channel");
                }
            }
        }));
    }
}

impl Actor for Scaler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.publish_sizes();
        ctx.run_interval(self.mesh.scale_interval, |act, ctx| act.tick(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.budget().leave(self.target.pool_id);
        self.target.pool.clear();
        let m = &self.mesh.metrics;
        let labels = self.labels();
        let _ = m.pool_channels.remove_label_values(&labels);
        let _ = m.pool_utilisation.remove_label_values(&labels);
        let _ = m.pool_queue.remove_label_values(&labels);
        m.pool_channels_total.set(self.budget().total() as i64);
    }
}

impl Handler<Yield> for Scaler {
    type Result = ();
    fn handle(&mut self, _: Yield, _: &mut Context<Self>) {
        // The budget already moved the channel; make the pool match it.
        if self.target.pool.len() > self.budget().held(self.target.pool_id)
            && self.target.pool.remove_one()
        {
            self.last_action = Instant::now();
            self.event("down", "rebalance", None);
        }
    }
}

impl Handler<Retire> for Scaler {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Crash> for Scaler {
    type Result = ();
    fn handle(&mut self, msg: Crash, _: &mut Context<Self>) {
        panic!("fault injected: {}", msg.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            min: 5,
            max: 20,
            up_utilisation: 0.8,
            up_queue: 10,
            up_rate: 100.0,
            up_latency_ms: 50.0,
            up_max_error_rate: 0.05,
            down_utilisation: 0.3,
            down_queue: 2,
            cooldown: Duration::from_secs(300),
        }
    }

    fn quiet(channels: usize) -> Stats {
        Stats {
            channels,
            utilisation: 0.1,
            rate: 10.0,
            latency_ms: 2.0,
            ..Stats::default()
        }
    }

    #[test]
    fn each_trigger_scales_up_while_healthy_and_below_max() {
        let r = rules();
        let cases = [
            (
                Stats {
                    utilisation: 0.85,
                    ..quiet(5)
                },
                Trigger::Utilisation,
            ),
            (
                Stats {
                    queue: 11,
                    ..quiet(5)
                },
                Trigger::Queue,
            ),
            (
                Stats {
                    rate: 150.0,
                    ..quiet(5)
                },
                Trigger::Rate,
            ),
            (
                Stats {
                    latency_ms: 60.0,
                    ..quiet(5)
                },
                Trigger::Latency,
            ),
        ];
        for (s, t) in cases {
            assert_eq!(decide(&s, &r, Duration::ZERO), Decision::Up(t));
            // Not at the maximum, nor while the target fails.
            let at_max = Stats { channels: 20, ..s };
            assert_eq!(decide(&at_max, &r, Duration::ZERO), Decision::Hold);
            let failing = Stats {
                error_rate: 0.06,
                ..s
            };
            assert_eq!(decide(&failing, &r, Duration::ZERO), Decision::Hold);
        }
        // Exactly at a threshold is not above it.
        let edge = Stats {
            utilisation: 0.8,
            queue: 10,
            rate: 100.0,
            latency_ms: 50.0,
            ..quiet(5)
        };
        assert_eq!(decide(&edge, &r, Duration::from_secs(600)), Decision::Hold);
    }

    #[test]
    fn scales_down_only_when_idle_after_the_cooldown_and_above_min() {
        let r = rules();
        let long = Duration::from_secs(301);
        assert_eq!(decide(&quiet(8), &r, long), Decision::Down);
        assert_eq!(
            decide(&quiet(8), &r, Duration::from_secs(299)),
            Decision::Hold
        );
        assert_eq!(decide(&quiet(5), &r, long), Decision::Hold);
        let busy = Stats {
            utilisation: 0.5,
            ..quiet(8)
        };
        assert_eq!(decide(&busy, &r, long), Decision::Hold);
        let queued = Stats {
            queue: 2,
            ..quiet(8)
        };
        assert_eq!(decide(&queued, &r, long), Decision::Hold);
    }

    #[test]
    fn the_sampler_measures_rate_errors_and_latency_over_a_second() {
        let pool = super::super::pool::Pool::new(10, None);
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.sample(&pool, t0);
        for i in 0..50 {
            pool.record(i % 10 == 0, Duration::from_millis(4));
        }
        let st = s.sample(&pool, t0 + Duration::from_millis(100));
        assert!((st.rate - 500.0).abs() < 1e-6, "{st:?}");
        assert!((st.error_rate - 0.1).abs() < 1e-9);
        assert!((st.latency_ms - 4.0).abs() < 1e-9);
        // A quiet second later the window has forgotten the burst.
        for k in 2..=13 {
            s.sample(&pool, t0 + Duration::from_millis(100 * k));
        }
        let st = s.sample(&pool, t0 + Duration::from_millis(1_400));
        assert_eq!(st.rate, 0.0);
        assert_eq!(st.error_rate, 0.0);
    }
}
