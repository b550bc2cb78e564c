//! The design compiled for simulation: components become nodes with replicas (stations),
//! names become indices, chaos becomes a list of timed actions.

use std::collections::{BTreeMap, VecDeque};

use crate::catalogue::Role;
use crate::error::EngineError;
use crate::model::{Balancer, Chaos, Design, Pattern, Routing, Traffic};
use crate::resolve::resolve;
use crate::sim::sampler::Sampler;

/// An outgoing connection.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub to: u32,
    pub latency: f64,
    /// Active partitions cutting this connection.
    pub cut: u32,
}

/// One component: static parameters plus the little state routing needs.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub kind: String,
    pub role: Role,
    pub first_station: u32,
    pub replicas: u32,
    pub servers: u32,
    pub service: Sampler,
    pub timeout: f64,
    pub fail_p: f64,
    pub exit_p: f64,
    pub routing: Routing,
    pub balancer: Balancer,
    pub edges: Vec<Edge>,
    /// Cumulative probabilities over `edges` (probabilistic routing).
    pub cum: Vec<f64>,
    // Dynamic state.
    pub rr_edge: u32,
    pub rr_replica: u32,
    pub in_system: u64,
    pub extra_latency: f64,
    pub extra_error: f64,
    pub hit_override: Option<f64>,
}

/// One replica: a multi-server queue.
#[derive(Debug, Clone)]
pub(crate) struct Station {
    pub node: u32,
    pub servers: u32,
    pub busy: u32,
    pub queue: VecDeque<u32>,
    pub cap: u64,
    /// Overlapping crashes holding it down.
    pub down: u32,
    /// Bumped at each crash so that services begun before it are recognised as lost.
    pub epoch: u32,
    pub last: f64,
}

/// A traffic source.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub node: u32,
    pub kind: SourceKind,
    pub multiplier: f64,
    pub generation: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum SourceKind {
    Open {
        rate: f64,
        pattern: Pattern,
        peak: f64,
    },
    Closed {
        users: u32,
        think: f64,
    },
}

/// A timed chaos action.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Crash {
        node: u32,
        replica: Option<u32>,
        up: bool,
    },
    Latency {
        node: u32,
        extra: f64,
    },
    Errors {
        node: u32,
        p: f64,
    },
    Partition {
        a: u32,
        b: u32,
        cut: bool,
    },
    Spike {
        source: Option<u32>,
        factor: f64,
    },
    Storm {
        node: u32,
        hit: Option<f64>,
    },
}

/// Random crash processes, per component.
#[derive(Debug, Clone)]
pub(crate) struct RandomCrash {
    pub node: u32,
    pub mtbf: f64,
    pub mttr: f64,
}

pub(crate) struct Compiled {
    pub nodes: Vec<Node>,
    pub stations: Vec<Station>,
    pub sources: Vec<Source>,
    pub actions: Vec<(f64, Action)>,
    pub random_crashes: Vec<RandomCrash>,
    /// Station -> index into `random_crashes`.
    pub crash_of_station: Vec<Option<u32>>,
}

/// Compiles a design that passed validation.
pub(crate) fn compile(d: &Design) -> Result<Compiled, EngineError> {
    let index: BTreeMap<&str, u32> = d
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i as u32))
        .collect();
    let mut nodes = Vec::with_capacity(d.components.len());
    let mut stations = Vec::new();
    let mut sources = Vec::new();
    for (i, c) in d.components.iter().enumerate() {
        let Some(r) = resolve(c) else {
            return Err(EngineError::Internal(format!("unknown kind '{}'", c.kind)));
        };
        let first_station = stations.len() as u32;
        let replicas = if r.role == Role::Source {
            0
        } else {
            r.replicas
        };
        for _ in 0..replicas {
            stations.push(Station {
                node: i as u32,
                servers: r.servers,
                busy: 0,
                queue: VecDeque::new(),
                cap: r.queue_capacity.unwrap_or(u64::MAX),
                down: 0,
                epoch: 0,
                last: 0.0,
            });
        }
        if let Some(t) = &r.traffic {
            let kind = match t {
                Traffic::Open { rate, pattern } => SourceKind::Open {
                    rate: *rate,
                    pattern: pattern.clone(),
                    peak: crate::validate::peak_rate(*rate, pattern),
                },
                Traffic::Closed {
                    users,
                    think_time_ms,
                } => SourceKind::Closed {
                    users: *users,
                    think: think_time_ms / 1000.0,
                },
            };
            sources.push(Source {
                node: i as u32,
                kind,
                multiplier: 1.0,
                generation: 0,
            });
        }
        nodes.push(Node {
            name: c.name.clone(),
            kind: c.kind.clone(),
            role: r.role,
            first_station,
            replicas,
            servers: r.servers,
            service: Sampler::new(&r.service),
            timeout: r.timeout_s,
            fail_p: r.failure_probability,
            exit_p: r.exit_probability,
            routing: r.routing,
            balancer: r.balancer,
            edges: Vec::new(),
            cum: Vec::new(),
            rr_edge: 0,
            rr_replica: 0,
            in_system: 0,
            extra_latency: 0.0,
            extra_error: 0.0,
            hit_override: None,
        });
    }
    let mut probs: Vec<Vec<Option<f64>>> = vec![Vec::new(); nodes.len()];
    for e in &d.connections {
        if let (Some(&f), Some(&t)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
            if let Some(n) = nodes.get_mut(f as usize) {
                n.edges.push(Edge {
                    to: t,
                    latency: e.latency_ms.unwrap_or(0.0) / 1000.0,
                    cut: 0,
                });
                probs[f as usize].push(e.probability);
            }
        }
    }
    for (n, p) in nodes.iter_mut().zip(&probs) {
        let k = n.edges.len();
        let mut acc = 0.0;
        n.cum = p
            .iter()
            .map(|q| {
                acc += q.unwrap_or(1.0 / k as f64);
                acc
            })
            .collect();
        if let Some(last) = n.cum.last_mut() {
            *last = f64::INFINITY; // rounding can never leave a request unrouted
        }
    }
    let mut actions = Vec::new();
    let mut random_crashes = Vec::new();
    let node_of = |name: &str| index.get(name).copied();
    for c in &d.chaos {
        compile_chaos(c, &node_of, &mut actions, &mut random_crashes);
    }
    let mut crash_of_station = vec![None; stations.len()];
    for (k, rc) in random_crashes.iter().enumerate() {
        if let Some(n) = nodes.get(rc.node as usize) {
            for s in n.first_station..n.first_station + n.replicas {
                if let Some(slot) = crash_of_station.get_mut(s as usize) {
                    *slot = Some(k as u32);
                }
            }
        }
    }
    Ok(Compiled {
        nodes,
        stations,
        sources,
        actions,
        random_crashes,
        crash_of_station,
    })
}

/// Turns one chaos entry into timed actions (and random crashes); an entry aimed at no
/// component compiles to nothing (validation reports it).
pub(crate) fn compile_chaos(
    c: &Chaos,
    node_of: &dyn Fn(&str) -> Option<u32>,
    actions: &mut Vec<(f64, Action)>,
    random_crashes: &mut Vec<RandomCrash>,
) {
    match c {
        Chaos::Crash {
            component,
            replica,
            at_s,
            duration_s,
        } => {
            if let Some(node) = node_of(component) {
                actions.push((
                    *at_s,
                    Action::Crash {
                        node,
                        replica: *replica,
                        up: false,
                    },
                ));
                if let Some(dur) = duration_s {
                    actions.push((
                        at_s + dur,
                        Action::Crash {
                            node,
                            replica: *replica,
                            up: true,
                        },
                    ));
                }
            }
        }
        Chaos::RandomCrash {
            component,
            mtbf_s,
            mttr_s,
        } => {
            if let Some(node) = node_of(component) {
                random_crashes.push(RandomCrash {
                    node,
                    mtbf: *mtbf_s,
                    mttr: *mttr_s,
                });
            }
        }
        Chaos::Latency {
            component,
            at_s,
            duration_s,
            extra_ms,
        } => {
            if let Some(node) = node_of(component) {
                let extra = extra_ms / 1000.0;
                actions.push((*at_s, Action::Latency { node, extra }));
                actions.push((
                    at_s + duration_s,
                    Action::Latency {
                        node,
                        extra: -extra,
                    },
                ));
            }
        }
        Chaos::Errors {
            component,
            at_s,
            duration_s,
            probability,
        } => {
            if let Some(node) = node_of(component) {
                actions.push((
                    *at_s,
                    Action::Errors {
                        node,
                        p: *probability,
                    },
                ));
                actions.push((
                    at_s + duration_s,
                    Action::Errors {
                        node,
                        p: -probability,
                    },
                ));
            }
        }
        Chaos::Partition {
            from,
            to,
            at_s,
            duration_s,
        } => {
            if let (Some(a), Some(b)) = (node_of(from), node_of(to)) {
                actions.push((*at_s, Action::Partition { a, b, cut: true }));
                actions.push((at_s + duration_s, Action::Partition { a, b, cut: false }));
            }
        }
        Chaos::TrafficSpike {
            source,
            at_s,
            duration_s,
            multiplier,
        } => {
            let src = match source {
                Some(s) => match node_of(s) {
                    Some(n) => Some(n),
                    None => return,
                },
                None => None,
            };
            actions.push((
                *at_s,
                Action::Spike {
                    source: src,
                    factor: *multiplier,
                },
            ));
            actions.push((
                at_s + duration_s,
                Action::Spike {
                    source: src,
                    factor: 1.0 / multiplier,
                },
            ));
        }
        Chaos::CacheMissStorm {
            component,
            at_s,
            duration_s,
            hit_ratio,
        } => {
            if let Some(node) = node_of(component) {
                actions.push((
                    *at_s,
                    Action::Storm {
                        node,
                        hit: Some(*hit_ratio),
                    },
                ));
                actions.push((at_s + duration_s, Action::Storm { node, hit: None }));
            }
        }
    }
}
