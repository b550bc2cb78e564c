//! The life of a request: spawned by a source, delivered to a component, balanced onto a
//! replica, queued or served, then finished or forwarded; plus chaos actions.
//!
//! Every random draw happens in a fixed order given the event order, so the whole run is a
//! function of the design and the seed.

use crate::limits::{MAX_HOPS, MAX_IN_FLIGHT};
use crate::model::{Balancer, Routing};

use super::events::Ev;
use super::network::{Action, SourceKind};
use super::sampler::rate_at;
use super::{Req, Simulation};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Error,
    Dropped,
}

impl Simulation {
    pub(super) fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Arrival { source, generation } => self.on_arrival(source as usize, generation),
            Ev::Think { source } => self.spawn(source as usize),
            Ev::Deliver { req, node } => self.arrive(req, node as usize),
            Ev::Depart {
                station,
                req,
                epoch,
            } => self.on_depart(station as usize, req, epoch),
            Ev::Chaos { action } => self.on_chaos(action as usize),
            Ev::Fail { station } => {
                self.crash(station as usize);
                if let Some(k) = self.crash_of_station[station as usize] {
                    let t = self.now + self.rng.exp(self.random_crashes[k as usize].mttr);
                    if t <= self.end {
                        self.q.push(t, Ev::Repair { station });
                    }
                }
            }
            Ev::Repair { station } => {
                self.recover(station as usize);
                if let Some(k) = self.crash_of_station[station as usize] {
                    let t = self.now + self.rng.exp(self.random_crashes[k as usize].mtbf);
                    if t <= self.end {
                        self.q.push(t, Ev::Fail { station });
                    }
                }
            }
        }
    }

    /// Schedules the next candidate arrival of open source `s` (thinning at the peak rate).
    pub(super) fn schedule_arrival(&mut self, s: usize) {
        let src = &self.sources[s];
        if let SourceKind::Open { peak, .. } = src.kind {
            let lambda = peak * src.multiplier;
            if lambda > 0.0 && lambda.is_finite() {
                let t = self.now + self.rng.exp(1.0 / lambda);
                if t <= self.end {
                    let generation = src.generation;
                    self.q.push(
                        t,
                        Ev::Arrival {
                            source: s as u32,
                            generation,
                        },
                    );
                }
            }
        }
    }

    fn on_arrival(&mut self, s: usize, generation: u32) {
        if self.sources[s].generation != generation {
            return; // superseded by a rate change
        }
        self.schedule_arrival(s);
        let src = &self.sources[s];
        if let SourceKind::Open {
            rate,
            ref pattern,
            peak,
        } = src.kind
        {
            if !matches!(pattern, crate::model::Pattern::Constant) {
                let r = rate_at(rate, pattern, self.now, self.end);
                if self.rng.uniform() * peak >= r {
                    return; // thinned out
                }
            }
        }
        self.spawn(s);
    }

    /// A new request from source `s`.
    fn spawn(&mut self, s: usize) {
        self.requests += 1;
        self.e2e_win.arrivals += 1;
        if self.reqs.len() - self.free.len() >= MAX_IN_FLIGHT {
            self.e2e_win.drops += 1;
            self.after_request(s);
            return;
        }
        let r = Req {
            born: self.now,
            arrived: self.now,
            hops: 0,
            source: s as u32,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.reqs[id as usize] = r;
                id
            }
            None => {
                self.reqs.push(r);
                (self.reqs.len() - 1) as u32
            }
        };
        self.in_flight += 1;
        let node = self.sources[s].node as usize;
        self.forward(id, node);
    }

    /// Closed workloads: the user thinks before the next request.
    fn after_request(&mut self, s: usize) {
        let src = &self.sources[s];
        if let SourceKind::Closed { think, .. } = src.kind {
            let mean = think / src.multiplier;
            let t = self.now + self.rng.exp(mean);
            if t <= self.end {
                self.q.push(t, Ev::Think { source: s as u32 });
            }
        }
    }

    fn finish(&mut self, req: u32, outcome: Outcome) {
        let r = self.reqs[req as usize];
        match outcome {
            Outcome::Done => self.e2e_win.complete(self.now - r.born),
            Outcome::Error => self.e2e_win.errors += 1,
            Outcome::Dropped => self.e2e_win.drops += 1,
        }
        self.free.push(req);
        self.in_flight -= 1;
        self.after_request(r.source as usize);
    }

    /// Picks an outgoing connection of `from`.
    fn choose_edge(&mut self, from: usize) -> usize {
        let node = &self.nodes[from];
        let n = node.edges.len();
        if n <= 1 {
            return 0;
        }
        match node.routing {
            Routing::Probabilistic => {
                let u = self.rng.uniform();
                node.cum.iter().position(|&c| u < c).unwrap_or(n - 1)
            }
            Routing::RoundRobin => {
                let k = node.rr_edge as usize % n;
                self.nodes[from].rr_edge = ((k + 1) % n) as u32;
                k
            }
            Routing::Random => self.rng.below(n as u32) as usize,
            Routing::LeastConnections => {
                let start = node.rr_edge as usize % n;
                let mut best = start;
                let mut best_load = u64::MAX;
                for j in 0..n {
                    let k = (start + j) % n;
                    let load = self.nodes[node.edges[k].to as usize].in_system;
                    if load < best_load {
                        best = k;
                        best_load = load;
                    }
                }
                self.nodes[from].rr_edge = ((start + 1) % n) as u32;
                best
            }
        }
    }

    /// Sends a request from `from` along one of its connections.
    fn forward(&mut self, req: u32, from: usize) {
        let k = self.choose_edge(from);
        let Some(edge) = self.nodes[from].edges.get(k) else {
            self.finish(req, Outcome::Done);
            return;
        };
        let (to, latency, cut) = (edge.to as usize, edge.latency, edge.cut);
        let r = &mut self.reqs[req as usize];
        r.hops += 1;
        if cut > 0 || r.hops > MAX_HOPS {
            self.win[to].arrivals += 1;
            self.win[to].errors += 1;
            self.finish(req, Outcome::Error);
        } else if latency > 0.0 {
            self.q.push(
                self.now + latency,
                Ev::Deliver {
                    req,
                    node: to as u32,
                },
            );
        } else {
            self.arrive(req, to);
        }
    }

    /// Picks a live replica of `node`.
    fn pick_station(&mut self, node: usize) -> Option<usize> {
        let nd = &self.nodes[node];
        let first = nd.first_station as usize;
        let n = nd.replicas as usize;
        if n == 1 {
            return (self.stations[first].down == 0).then_some(first);
        }
        let up = |sim: &Self, s: usize| sim.stations[s].down == 0;
        match nd.balancer {
            Balancer::RoundRobin | Balancer::Random => {
                let start = if nd.balancer == Balancer::Random {
                    self.rng.below(n as u32) as usize
                } else {
                    let k = nd.rr_replica as usize % n;
                    self.nodes[node].rr_replica = ((k + 1) % n) as u32;
                    k
                };
                (0..n)
                    .map(|j| first + (start + j) % n)
                    .find(|&s| up(self, s))
            }
            Balancer::LeastConnections => {
                let start = nd.rr_replica as usize % n;
                self.nodes[node].rr_replica = ((start + 1) % n) as u32;
                let mut best = None;
                let mut best_load = usize::MAX;
                for j in 0..n {
                    let s = first + (start + j) % n;
                    let st = &self.stations[s];
                    let load = st.busy as usize + st.queue.len();
                    if st.down == 0 && load < best_load {
                        best = Some(s);
                        best_load = load;
                    }
                }
                best
            }
        }
    }

    /// A request reaches component `node`.
    pub(super) fn arrive(&mut self, req: u32, node: usize) {
        self.win[node].arrivals += 1;
        let Some(s) = self.pick_station(node) else {
            self.win[node].errors += 1;
            self.finish(req, Outcome::Error);
            return;
        };
        self.touch(s);
        self.reqs[req as usize].arrived = self.now;
        let st = &mut self.stations[s];
        if st.busy < st.servers {
            st.busy += 1;
            self.nodes[node].in_system += 1;
            self.start_service(s, req, 0.0);
        } else if (st.queue.len() as u64) < st.cap {
            st.queue.push_back(req);
            self.nodes[node].in_system += 1;
        } else {
            self.win[node].drops += 1;
            self.finish(req, Outcome::Dropped);
        }
    }

    #[inline]
    fn start_service(&mut self, s: usize, req: u32, wait: f64) {
        let st = &self.stations[s];
        let node = st.node as usize;
        let epoch = st.epoch;
        let acc = &mut self.win[node];
        acc.started += 1;
        acc.sum_wait += wait;
        let nd = &self.nodes[node];
        let t = nd.service.sample(&mut self.rng) + nd.extra_latency;
        self.q.push(
            self.now + t,
            Ev::Depart {
                station: s as u32,
                req,
                epoch,
            },
        );
    }

    fn on_depart(&mut self, s: usize, req: u32, epoch: u32) {
        let node = self.stations[s].node as usize;
        self.nodes[node].in_system = self.nodes[node].in_system.saturating_sub(1);
        if self.stations[s].epoch != epoch {
            // The replica crashed while this request was in service.
            self.win[node].errors += 1;
            self.finish(req, Outcome::Error);
            return;
        }
        self.touch(s);
        let resp = self.now - self.reqs[req as usize].arrived;
        let nd = &self.nodes[node];
        let fail_p = nd.fail_p + nd.extra_error;
        let ok = !(fail_p > 0.0 && self.rng.uniform() < fail_p);
        if ok {
            self.win[node].complete(resp);
        } else {
            self.win[node].errors += 1;
        }
        self.next_from_queue(s, node);
        if !ok {
            self.finish(req, Outcome::Error);
            return;
        }
        let nd = &self.nodes[node];
        if nd.edges.is_empty() {
            self.finish(req, Outcome::Done);
            return;
        }
        let exit_p = nd.hit_override.unwrap_or(nd.exit_p);
        if exit_p > 0.0 && (exit_p >= 1.0 || self.rng.uniform() < exit_p) {
            self.finish(req, Outcome::Done);
            return;
        }
        self.forward(req, node);
    }

    /// A server of station `s` is free: serve the next request that has not timed out.
    fn next_from_queue(&mut self, s: usize, node: usize) {
        loop {
            let Some(next) = self.stations[s].queue.pop_front() else {
                let st = &mut self.stations[s];
                st.busy = st.busy.saturating_sub(1);
                return;
            };
            let wait = self.now - self.reqs[next as usize].arrived;
            if wait > self.nodes[node].timeout {
                self.win[node].errors += 1;
                self.win[node].timeouts += 1;
                self.nodes[node].in_system = self.nodes[node].in_system.saturating_sub(1);
                self.finish(next, Outcome::Error);
                continue;
            }
            self.start_service(s, next, wait);
            return;
        }
    }

    fn crash(&mut self, s: usize) {
        self.stations[s].down += 1;
        if self.stations[s].down > 1 {
            return;
        }
        self.touch(s);
        let node = self.stations[s].node as usize;
        let st = &mut self.stations[s];
        st.epoch = st.epoch.wrapping_add(1);
        st.busy = 0;
        let lost: Vec<u32> = st.queue.drain(..).collect();
        for r in lost {
            self.win[node].errors += 1;
            self.nodes[node].in_system = self.nodes[node].in_system.saturating_sub(1);
            self.finish(r, Outcome::Error);
        }
    }

    fn recover(&mut self, s: usize) {
        let st = &mut self.stations[s];
        st.down = st.down.saturating_sub(1);
    }

    fn on_chaos(&mut self, k: usize) {
        let Some((_, action)) = self.actions.get(k).cloned() else {
            return;
        };
        match action {
            Action::Crash { node, replica, up } => {
                let nd = &self.nodes[node as usize];
                let (first, n) = (nd.first_station, nd.replicas);
                let range = match replica {
                    Some(r) if r < n => first + r..first + r + 1,
                    Some(_) => first..first,
                    None => first..first + n,
                };
                for s in range {
                    if up {
                        self.recover(s as usize);
                    } else {
                        self.crash(s as usize);
                    }
                }
            }
            Action::Latency { node, extra } => {
                let nd = &mut self.nodes[node as usize];
                nd.extra_latency = (nd.extra_latency + extra).max(0.0);
            }
            Action::Errors { node, p } => {
                let nd = &mut self.nodes[node as usize];
                nd.extra_error = (nd.extra_error + p).clamp(0.0, 1.0);
            }
            Action::Partition { a, b, cut } => {
                for (x, y) in [(a, b), (b, a)] {
                    for e in self.nodes[x as usize]
                        .edges
                        .iter_mut()
                        .filter(|e| e.to == y)
                    {
                        e.cut = if cut {
                            e.cut + 1
                        } else {
                            e.cut.saturating_sub(1)
                        };
                    }
                }
            }
            Action::Spike { source, factor } => {
                for s in 0..self.sources.len() {
                    let src = &mut self.sources[s];
                    if source.is_none_or(|n| n == src.node) {
                        src.multiplier *= factor;
                        src.generation = src.generation.wrapping_add(1);
                        self.schedule_arrival(s);
                    }
                }
            }
            Action::Storm { node, hit } => self.nodes[node as usize].hit_override = hit,
        }
    }
}
