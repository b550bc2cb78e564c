//! Validation: every problem of a design at once, each with a JSON path.
//!
//! [`validate_json`] first checks the document's shape item by item (so one malformed
//! component does not hide the others), then checks the meaning of what parsed: unknown
//! kinds, impossible numbers, connections to nothing, probabilities that do not sum to 1,
//! loops no request can leave, and the size caps of [`crate::limits`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::catalogue::{self, Role};
use crate::limits::*;
use crate::model::{
    AlertRule, Chaos, Component, Connection, Design, Pattern, Routing, ServiceTime, Traffic,
};
use crate::resolve::{resolve, Resolved};

/// One thing wrong with a design.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path of the offending value, such as `$.components[2].service_time`.
    pub path: String,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Parses and validates a design document, listing every problem found.
pub fn validate_json(json: &str) -> Result<Design, Vec<Problem>> {
    let mut v = Validator::default();
    if json.len() > MAX_JSON_BYTES {
        v.push(
            "$",
            format!(
                "the document is {} bytes; the limit is {MAX_JSON_BYTES}",
                json.len()
            ),
        );
        return Err(v.problems);
    }
    let root: Value = match serde_json::from_str(json) {
        Ok(root) => root,
        Err(e) => {
            v.push("$", format!("not valid JSON: {e}"));
            return Err(v.problems);
        }
    };
    let Some(obj) = root.as_object() else {
        v.push("$", "a design must be a JSON object");
        return Err(v.problems);
    };
    const FIELDS: &[&str] = &[
        "name",
        "description",
        "seed",
        "duration_s",
        "window_s",
        "max_events",
        "components",
        "connections",
        "chaos",
        "alerts",
    ];
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            v.push(
                format!("$.{key}"),
                format!("unknown field; expected one of {}", FIELDS.join(", ")),
            );
        }
    }
    let name: String = v.field(obj, "name").unwrap_or_default();
    if name.len() > MAX_NAME_LEN {
        v.push(
            "$.name",
            format!("names are limited to {MAX_NAME_LEN} bytes"),
        );
    }
    let description: String = v.field(obj, "description").unwrap_or_default();
    let seed: Option<u64> = v.field(obj, "seed");
    let window_s: Option<f64> = v.field(obj, "window_s");
    let max_events: Option<u64> = v.field(obj, "max_events");
    let duration_s: Option<f64> = v.field(obj, "duration_s");
    if !obj.contains_key("duration_s") {
        v.push("$.duration_s", "missing: how many seconds to simulate");
    }
    if !obj.contains_key("components") {
        v.push("$.components", "missing: the list of components");
    }
    let (components, comp_idx) = v.list::<Component>(obj, "components", MAX_COMPONENTS);
    let (connections, conn_idx) = v.list::<Connection>(obj, "connections", MAX_CONNECTIONS);
    let (chaos, chaos_idx) = v.list::<Chaos>(obj, "chaos", MAX_RULES);
    let (alerts, alert_idx) = v.list::<AlertRule>(obj, "alerts", MAX_RULES);
    // Names of components that failed to parse still exist for the user: do not also
    // report every connection to them as a connection to nothing.
    if let Some(Value::Array(items)) = obj.get("components") {
        for (i, item) in items.iter().enumerate().take(MAX_COMPONENTS) {
            if !comp_idx.contains(&i) {
                if let Some(n) = item.get("name").and_then(Value::as_str) {
                    v.unparsed_names.insert(n.to_string());
                }
            }
        }
    }
    let design = Design {
        name,
        description,
        seed,
        duration_s: duration_s.unwrap_or(f64::NAN),
        window_s,
        max_events,
        components,
        connections,
        chaos,
        alerts,
    };
    v.paths = Paths {
        comps: comp_idx,
        conns: conn_idx,
        chaos: chaos_idx,
        alerts: alert_idx,
    };
    v.skip_duration = duration_s.is_none();
    v.check(&design);
    if v.problems.is_empty() {
        Ok(design)
    } else {
        Err(v.problems)
    }
}

/// Validates a design built in code (or deserialized directly).
pub fn validate(design: &Design) -> Result<(), Vec<Problem>> {
    let mut v = Validator {
        paths: Paths {
            comps: (0..design.components.len()).collect(),
            conns: (0..design.connections.len()).collect(),
            chaos: (0..design.chaos.len()).collect(),
            alerts: (0..design.alerts.len()).collect(),
        },
        ..Validator::default()
    };
    v.check(design);
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(v.problems)
    }
}

/// Original JSON index of each parsed item (items that failed to parse are skipped).
#[derive(Default)]
struct Paths {
    comps: Vec<usize>,
    conns: Vec<usize>,
    chaos: Vec<usize>,
    alerts: Vec<usize>,
}

/// Problems listed at most for one document (the last one says more were found).
pub const MAX_PROBLEMS: usize = 100;
/// Longest path or message of a problem, in bytes (longer ones end with `…`).
pub const MAX_PROBLEM_CHARS: usize = 300;

fn clip(mut s: String) -> String {
    if s.len() > MAX_PROBLEM_CHARS {
        let mut end = MAX_PROBLEM_CHARS;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
    paths: Paths,
    unparsed_names: BTreeSet<String>,
    skip_duration: bool,
}

fn at(idx: &[usize], i: usize) -> usize {
    idx.get(i).copied().unwrap_or(i)
}

impl Validator {
    /// Records a problem: at most [`MAX_PROBLEMS`] (the last says that more were found), each
    /// path and message at most [`MAX_PROBLEM_CHARS`] bytes, as a message may quote the input
    /// (an unknown key of a megabyte would come back whole, in every answer about the design).
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        match self.problems.len() {
            n if n + 1 < MAX_PROBLEMS => self.problems.push(Problem {
                path: clip(path.into()),
                message: clip(message.into()),
            }),
            n if n + 1 == MAX_PROBLEMS => self.problems.push(Problem {
                path: "$".into(),
                message: format!(
                    "more problems than these {}; fix these and validate again",
                    MAX_PROBLEMS - 1
                ),
            }),
            _ => {}
        }
    }

    fn field<T: DeserializeOwned>(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        key: &str,
    ) -> Option<T> {
        let value = obj.get(key)?;
        match T::deserialize(value) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(format!("$.{key}"), e.to_string());
                None
            }
        }
    }

    fn list<T: DeserializeOwned>(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        key: &str,
        max: usize,
    ) -> (Vec<T>, Vec<usize>) {
        let mut items = Vec::new();
        let mut idx = Vec::new();
        match obj.get(key) {
            None => {}
            Some(Value::Array(values)) if values.len() > max => self.push(
                format!("$.{key}"),
                format!("{} entries; the limit is {max}", values.len()),
            ),
            Some(Value::Array(values)) => {
                for (i, value) in values.iter().enumerate() {
                    match T::deserialize(value) {
                        Ok(t) => {
                            items.push(t);
                            idx.push(i);
                        }
                        Err(e) => self.push(format!("$.{key}[{i}]"), e.to_string()),
                    }
                }
            }
            Some(_) => self.push(format!("$.{key}"), "must be a list"),
        }
        (items, idx)
    }

    fn number(&mut self, path: &str, v: f64, min: f64, min_inclusive: bool, max: f64) -> bool {
        let (v_, min_, max_) = (show(v), show(min), show(max));
        let msg = if v.is_nan() {
            "must be a number, not NaN".to_string()
        } else if !v.is_finite() {
            format!("must be finite (got {v_})")
        } else if v < min || (!min_inclusive && v == min) {
            if min_inclusive {
                format!("must be at least {min_} (got {v_})")
            } else {
                format!("must be greater than {min_} (got {v_})")
            }
        } else if v > max {
            format!("must be at most {max_} (got {v_})")
        } else {
            return true;
        };
        self.push(path, msg);
        false
    }

    fn positive(&mut self, path: &str, v: f64, max: f64) -> bool {
        self.number(path, v, 0.0, false, max)
    }

    fn non_negative(&mut self, path: &str, v: f64, max: f64) -> bool {
        self.number(path, v, 0.0, true, max)
    }

    fn probability(&mut self, path: &str, v: f64) -> bool {
        self.number(path, v, 0.0, true, 1.0)
    }

    fn comp_path(&self, i: usize) -> String {
        format!("$.components[{}]", at(&self.paths.comps, i))
    }

    fn check(&mut self, d: &Design) {
        let n = d.components.len();
        if n == 0 && self.problems.is_empty() {
            self.push("$.components", "a design needs at least one component");
        }
        if n > MAX_COMPONENTS {
            self.push(
                "$.components",
                format!("{n} components; the limit is {MAX_COMPONENTS}"),
            );
            return;
        }
        if !self.skip_duration {
            self.positive("$.duration_s", d.duration_s, MAX_DURATION_S);
        }
        let duration = if d.duration_s.is_finite() && d.duration_s > 0.0 {
            d.duration_s.min(MAX_DURATION_S)
        } else {
            1.0
        };
        if let Some(w) = d.window_s {
            if self.positive("$.window_s", w, MAX_DURATION_S) {
                let windows = duration / w;
                if windows > MAX_WINDOWS {
                    self.push(
                        "$.window_s",
                        format!(
                            "{windows:.0} windows; the limit is {MAX_WINDOWS}: use longer windows"
                        ),
                    );
                } else if windows * n as f64 > MAX_WINDOW_CELLS {
                    self.push(
                        "$.window_s",
                        format!(
                            "{windows:.0} windows of {n} components exceed {MAX_WINDOW_CELLS} series points: use longer windows"
                        ),
                    );
                }
            }
        } else if duration * n as f64 > MAX_WINDOW_CELLS {
            self.push(
                "$.window_s",
                "the default 1 s windows would store too many series points: set a longer window_s",
            );
        }
        if let Some(m) = d.max_events {
            if m == 0 || m > MAX_EVENTS {
                self.push(
                    "$.max_events",
                    format!("must be between 1 and {MAX_EVENTS} (got {m})"),
                );
            }
        }

        // Components.
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut resolved: Vec<Option<Resolved>> = Vec::with_capacity(n);
        let mut stations: u64 = 0;
        let mut expected_requests = 0.0;
        for (i, c) in d.components.iter().enumerate() {
            let path = self.comp_path(i);
            if c.name.trim().is_empty() {
                self.push(format!("{path}.name"), "a component needs a name");
            } else if c.name.len() > MAX_NAME_LEN {
                self.push(
                    format!("{path}.name"),
                    format!("names are limited to {MAX_NAME_LEN} bytes"),
                );
            } else if let Some(&j) = names.get(c.name.as_str()) {
                let other = self.comp_path(j);
                self.push(
                    format!("{path}.name"),
                    format!("the name '{}' is already used by {other}", c.name),
                );
            } else {
                names.insert(&c.name, i);
            }
            let Some(r) = resolve(c) else {
                self.push(
                    format!("{path}.kind"),
                    format!(
                        "unknown kind '{}'; known kinds: {}",
                        c.kind,
                        catalogue::kinds().join(", ")
                    ),
                );
                resolved.push(None);
                continue;
            };
            self.check_component(&path, c, &r);
            stations += u64::from(r.replicas.min(MAX_REPLICAS));
            if let Some(Traffic::Open { rate, pattern }) = &r.traffic {
                if rate.is_finite() {
                    expected_requests += peak_rate(*rate, pattern) * duration;
                }
            }
            resolved.push(Some(r));
        }
        if stations > MAX_STATIONS {
            self.push(
                "$.components",
                format!("{stations} replicas in all; the limit is {MAX_STATIONS}"),
            );
        }
        if expected_requests > MAX_EXPECTED_REQUESTS {
            self.push(
                "$.duration_s",
                format!(
                    "the clients would send about {expected_requests:.3e} requests; the limit is {MAX_EXPECTED_REQUESTS:.0e}: shorten the run or lower the rates"
                ),
            );
        }
        let has_source = resolved.iter().flatten().any(|r| r.role == Role::Source);
        if n > 0 && !has_source && self.problems.is_empty() {
            self.push(
                "$.components",
                "no traffic: add a component of kind 'client' with a traffic workload",
            );
        }

        // Connections.
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for (k, e) in d.connections.iter().enumerate() {
            let path = format!("$.connections[{}]", at(&self.paths.conns, k));
            let from = self.lookup(
                &names,
                &e.from,
                &format!("{path}.from"),
                "connects from nothing",
            );
            let to = self.lookup(&names, &e.to, &format!("{path}.to"), "connects to nothing");
            if let Some(p) = e.probability {
                self.probability(&format!("{path}.probability"), p);
            }
            if let Some(l) = e.latency_ms {
                self.non_negative(&format!("{path}.latency_ms"), l, MAX_MS);
            }
            if let (Some(f), Some(t)) = (from, to) {
                if resolved[t].as_ref().is_some_and(|r| r.role == Role::Source) {
                    self.push(
                        format!("{path}.to"),
                        format!(
                            "'{}' is a client: clients send requests but do not receive them",
                            e.to
                        ),
                    );
                }
                if let Some(&first) = seen.get(&(f, t)) {
                    self.push(
                        path.clone(),
                        format!(
                            "a second connection from '{}' to '{}' (the first is $.connections[{}])",
                            e.from,
                            e.to,
                            at(&self.paths.conns, first)
                        ),
                    );
                } else {
                    seen.insert((f, t), k);
                    out[f].push(k);
                }
            }
        }

        // Routing out of each component.
        for i in 0..n {
            let Some(r) = &resolved[i] else { continue };
            let path = self.comp_path(i);
            let edges = &out[i];
            if r.role == Role::Source && edges.is_empty() {
                self.push(
                    path.clone(),
                    format!(
                        "client '{}' sends to nothing: connect it to the component that receives its requests",
                        d.components[i].name
                    ),
                );
            }
            let probs: Vec<Option<f64>> = edges
                .iter()
                .map(|&k| d.connections[k].probability)
                .collect();
            if r.routing == Routing::Probabilistic {
                let given = probs.iter().filter(|p| p.is_some()).count();
                if given > 0 && given < probs.len() {
                    self.push(
                        format!("{path}.routing"),
                        format!(
                            "some connections from '{}' have a probability and some do not: give all of them one, or none for an even split",
                            d.components[i].name
                        ),
                    );
                } else if given > 0 {
                    let sum: f64 = probs.iter().flatten().sum();
                    if sum.is_finite() && (sum - 1.0).abs() > 1e-6 {
                        self.push(
                            format!("{path}.routing"),
                            format!(
                                "the probabilities of the connections from '{}' sum to {sum}, not 1",
                                d.components[i].name
                            ),
                        );
                    }
                }
            } else {
                for &k in edges {
                    if d.connections[k].probability.is_some() {
                        let cpath =
                            format!("$.connections[{}].probability", at(&self.paths.conns, k));
                        self.push(
                            cpath,
                            format!(
                                "'{}' routes by {}; probabilities are only used with probabilistic routing",
                                d.components[i].name,
                                serde_json::to_string(&r.routing).unwrap_or_default().trim_matches('"')
                            ),
                        );
                    }
                }
            }
        }
        self.check_loops(d, &resolved, &out);

        // Chaos and alerts.
        for (k, c) in d.chaos.iter().enumerate() {
            let path = format!("$.chaos[{}]", at(&self.paths.chaos, k));
            self.check_chaos(&path, c, &names, &resolved, duration);
        }
        for (k, a) in d.alerts.iter().enumerate() {
            let path = format!("$.alerts[{}]", at(&self.paths.alerts, k));
            if a.name.trim().is_empty() {
                self.push(format!("{path}.name"), "an alert needs a name");
            } else if a.name.len() > MAX_NAME_LEN {
                self.push(
                    format!("{path}.name"),
                    format!("names are limited to {MAX_NAME_LEN} bytes"),
                );
            }
            if let Some(c) = &a.component {
                self.lookup(&names, c, &format!("{path}.component"), "watches nothing");
            }
            match (a.above, a.below) {
                (Some(x), None) | (None, Some(x)) => {
                    self.number(&format!("{path}.above"), x, f64::MIN, true, f64::MAX);
                }
                _ => self.push(path.clone(), "give exactly one of 'above' or 'below'"),
            }
            self.non_negative(&format!("{path}.for_s"), a.for_s, MAX_DURATION_S);
        }
    }

    fn lookup(
        &mut self,
        names: &BTreeMap<&str, usize>,
        name: &str,
        path: &str,
        what: &str,
    ) -> Option<usize> {
        let found = names.get(name).copied();
        if found.is_none() && !self.unparsed_names.contains(name) {
            self.push(path, format!("{what}: no component is named '{name}'"));
        }
        found
    }

    fn check_component(&mut self, path: &str, c: &Component, r: &Resolved) {
        if let Some(s) = c.servers {
            if s == 0 || s > MAX_SERVERS {
                self.push(
                    format!("{path}.servers"),
                    format!("must be between 1 and {MAX_SERVERS} (got {s})"),
                );
            }
        }
        if let Some(s) = c.replicas {
            if s == 0 || s > MAX_REPLICAS {
                self.push(
                    format!("{path}.replicas"),
                    format!("must be between 1 and {MAX_REPLICAS} (got {s})"),
                );
            }
        }
        if let Some(st) = &c.service_time {
            self.check_service(&format!("{path}.service_time"), st);
        }
        if let Some(t) = c.timeout_ms {
            self.positive(&format!("{path}.timeout_ms"), t, MAX_MS);
        }
        if let Some(p) = c.failure_probability {
            self.probability(&format!("{path}.failure_probability"), p);
        }
        if let Some(p) = c.exit_probability {
            self.probability(&format!("{path}.exit_probability"), p);
        }
        if let Some(h) = c.hit_ratio {
            self.probability(&format!("{path}.hit_ratio"), h);
            if r.role != Role::Cache {
                self.push(
                    format!("{path}.hit_ratio"),
                    format!(
                        "only caches ({}) have a hit ratio; use exit_probability for requests that end here",
                        cache_kinds()
                    ),
                );
            }
            if c.exit_probability.is_some() {
                self.push(
                    format!("{path}.exit_probability"),
                    "set hit_ratio or exit_probability, not both",
                );
            }
        }
        match (&r.traffic, r.role) {
            (Some(t), Role::Source) => self.check_traffic(&format!("{path}.traffic"), t),
            (None, Role::Source) => self.push(
                format!("{path}.traffic"),
                format!("client '{}' needs a traffic workload", c.name),
            ),
            (Some(_), _) => self.push(
                format!("{path}.traffic"),
                "only components of kind 'client' generate traffic",
            ),
            (None, _) => {}
        }
    }

    fn check_service(&mut self, path: &str, st: &ServiceTime) {
        let mean = format!("{path}.mean_ms");
        match *st {
            ServiceTime::Exponential { mean_ms } | ServiceTime::Deterministic { mean_ms } => {
                self.positive(&mean, mean_ms, MAX_MS);
            }
            ServiceTime::Lognormal { mean_ms, cv } => {
                self.positive(&mean, mean_ms, MAX_MS);
                self.non_negative(&format!("{path}.cv"), cv, 100.0);
            }
            ServiceTime::Erlang { mean_ms, k } => {
                self.positive(&mean, mean_ms, MAX_MS);
                if k == 0 || k > 1_000 {
                    self.push(
                        format!("{path}.k"),
                        format!("must be between 1 and 1000 (got {k})"),
                    );
                }
            }
            ServiceTime::Uniform { min_ms, max_ms } => {
                self.non_negative(&format!("{path}.min_ms"), min_ms, MAX_MS);
                if self.positive(&format!("{path}.max_ms"), max_ms, MAX_MS) && min_ms > max_ms {
                    self.push(format!("{path}.max_ms"), "must not be below min_ms");
                }
            }
        }
    }

    fn check_traffic(&mut self, path: &str, t: &Traffic) {
        match t {
            Traffic::Open { rate, pattern } => {
                self.positive(&format!("{path}.rate"), *rate, MAX_RATE);
                let p = format!("{path}.pattern");
                match *pattern {
                    Pattern::Constant => {}
                    Pattern::Ramp {
                        to_rate,
                        start_s,
                        end_s,
                    } => {
                        self.non_negative(&format!("{p}.to_rate"), to_rate, MAX_RATE);
                        self.non_negative(&format!("{p}.start_s"), start_s, MAX_DURATION_S);
                        if let Some(e) = end_s {
                            if self.non_negative(&format!("{p}.end_s"), e, MAX_DURATION_S)
                                && e <= start_s
                            {
                                self.push(format!("{p}.end_s"), "must be after start_s");
                            }
                        }
                    }
                    Pattern::Spike {
                        peak_rate,
                        at_s,
                        duration_s,
                    } => {
                        self.non_negative(&format!("{p}.peak_rate"), peak_rate, MAX_RATE);
                        self.non_negative(&format!("{p}.at_s"), at_s, MAX_DURATION_S);
                        self.positive(&format!("{p}.duration_s"), duration_s, MAX_DURATION_S);
                    }
                    Pattern::Wave {
                        amplitude,
                        period_s,
                    } => {
                        self.probability(&format!("{p}.amplitude"), amplitude);
                        self.positive(&format!("{p}.period_s"), period_s, MAX_DURATION_S);
                    }
                    Pattern::Diurnal {
                        amplitude,
                        period_s,
                        peak_at_s,
                    } => {
                        self.probability(&format!("{p}.amplitude"), amplitude);
                        if let Some(ps) = period_s {
                            self.positive(&format!("{p}.period_s"), ps, MAX_DURATION_S);
                        }
                        if let Some(pk) = peak_at_s {
                            self.non_negative(&format!("{p}.peak_at_s"), pk, MAX_DURATION_S);
                        }
                    }
                }
            }
            Traffic::Closed {
                users,
                think_time_ms,
            } => {
                if *users == 0 || *users > MAX_USERS {
                    self.push(
                        format!("{path}.users"),
                        format!("must be between 1 and {MAX_USERS} (got {users})"),
                    );
                }
                self.non_negative(&format!("{path}.think_time_ms"), *think_time_ms, MAX_MS);
            }
        }
    }

    /// A request must be able to finish from every component a client can reach.
    fn check_loops(&mut self, d: &Design, resolved: &[Option<Resolved>], out: &[Vec<usize>]) {
        let n = resolved.len();
        let names: BTreeMap<&str, usize> = d
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.as_str(), i))
            .collect();
        let targets = |i: usize| -> Vec<usize> {
            out[i]
                .iter()
                .filter(|&&k| d.connections[k].probability != Some(0.0))
                .filter_map(|&k| names.get(d.connections[k].to.as_str()).copied())
                .collect()
        };
        let succ: Vec<Vec<usize>> = (0..n).map(targets).collect();
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in succ.iter().enumerate() {
            for &j in s {
                pred[j].push(i);
            }
        }
        // Components where a request can finish, then everything that can reach them.
        let mut can_exit = vec![false; n];
        let mut stack: Vec<usize> = Vec::new();
        for i in 0..n {
            let Some(r) = &resolved[i] else {
                can_exit[i] = true; // unknown kind: already reported
                stack.push(i);
                continue;
            };
            if r.role != Role::Source && (succ[i].is_empty() || r.exit_probability > 0.0) {
                can_exit[i] = true;
                stack.push(i);
            }
        }
        while let Some(j) = stack.pop() {
            for &i in &pred[j] {
                if !can_exit[i] {
                    can_exit[i] = true;
                    stack.push(i);
                }
            }
        }
        // Reachable from a client.
        let mut reach = vec![false; n];
        let mut stack: Vec<usize> = (0..n)
            .filter(|&i| resolved[i].as_ref().is_some_and(|r| r.role == Role::Source))
            .collect();
        for &i in &stack {
            reach[i] = true;
        }
        while let Some(i) = stack.pop() {
            for &j in &succ[i] {
                if !reach[j] {
                    reach[j] = true;
                    stack.push(j);
                }
            }
        }
        for i in 0..n {
            let is_source = resolved[i].as_ref().is_some_and(|r| r.role == Role::Source);
            if reach[i] && !can_exit[i] && !is_source {
                let members: Vec<&str> = (0..n)
                    .filter(|&j| !can_exit[j] && reach[j] && j != i)
                    .take(8)
                    .map(|j| d.components[j].name.as_str())
                    .collect();
                let path = self.comp_path(i);
                self.push(
                    path,
                    format!(
                        "requests reaching '{}' can never finish: they loop forever{}; give a component of the loop an exit_probability or a connection to one that ends requests",
                        d.components[i].name,
                        if members.is_empty() {
                            String::new()
                        } else {
                            format!(" (with {})", members.join(", "))
                        }
                    ),
                );
            }
        }
    }

    fn check_chaos(
        &mut self,
        path: &str,
        c: &Chaos,
        names: &BTreeMap<&str, usize>,
        resolved: &[Option<Resolved>],
        duration: f64,
    ) {
        let window = |v: &mut Self, at_s: f64, duration_s: f64| {
            v.non_negative(&format!("{path}.at_s"), at_s, MAX_DURATION_S);
            v.positive(&format!("{path}.duration_s"), duration_s, MAX_DURATION_S);
        };
        let target = |v: &mut Self, name: &str| -> Option<usize> {
            let i = v.lookup(names, name, &format!("{path}.component"), "targets nothing")?;
            if resolved[i].as_ref().is_some_and(|r| r.role == Role::Source) {
                v.push(
                    format!("{path}.component"),
                    format!("'{name}' is a client; target a component that serves requests"),
                );
                return None;
            }
            Some(i)
        };
        match c {
            Chaos::Crash {
                component,
                replica,
                at_s,
                duration_s,
            } => {
                let i = target(self, component);
                self.non_negative(&format!("{path}.at_s"), *at_s, MAX_DURATION_S);
                if let Some(d) = duration_s {
                    self.positive(&format!("{path}.duration_s"), *d, MAX_DURATION_S);
                }
                if let (Some(i), Some(rep)) = (i, replica) {
                    let reps = resolved[i].as_ref().map_or(1, |r| r.replicas);
                    if *rep >= reps {
                        self.push(
                            format!("{path}.replica"),
                            format!("'{component}' has {reps} replica(s), numbered from 0"),
                        );
                    }
                }
            }
            Chaos::RandomCrash {
                component,
                mtbf_s,
                mttr_s,
            } => {
                target(self, component);
                let floor = duration / 1e5;
                if self.positive(&format!("{path}.mtbf_s"), *mtbf_s, MAX_DURATION_S * 100.0)
                    && *mtbf_s < floor
                {
                    self.push(
                        format!("{path}.mtbf_s"),
                        format!("below {floor} s it would inject more than 100,000 failures per replica"),
                    );
                }
                if self.positive(&format!("{path}.mttr_s"), *mttr_s, MAX_DURATION_S)
                    && *mttr_s < floor
                {
                    self.push(
                        format!("{path}.mttr_s"),
                        format!("must be at least {floor} s"),
                    );
                }
            }
            Chaos::Latency {
                component,
                at_s,
                duration_s,
                extra_ms,
            } => {
                target(self, component);
                window(self, *at_s, *duration_s);
                self.non_negative(&format!("{path}.extra_ms"), *extra_ms, MAX_MS);
            }
            Chaos::Errors {
                component,
                at_s,
                duration_s,
                probability,
            } => {
                target(self, component);
                window(self, *at_s, *duration_s);
                self.probability(&format!("{path}.probability"), *probability);
            }
            Chaos::Partition {
                from,
                to,
                at_s,
                duration_s,
            } => {
                let a = self.lookup(names, from, &format!("{path}.from"), "targets nothing");
                let b = self.lookup(names, to, &format!("{path}.to"), "targets nothing");
                if a.is_some() && a == b {
                    self.push(path, "a partition needs two different components");
                }
                window(self, *at_s, *duration_s);
            }
            Chaos::TrafficSpike {
                source,
                at_s,
                duration_s,
                multiplier,
            } => {
                if let Some(s) = source {
                    if let Some(i) =
                        self.lookup(names, s, &format!("{path}.source"), "targets nothing")
                    {
                        if resolved[i].as_ref().is_some_and(|r| r.role != Role::Source) {
                            self.push(format!("{path}.source"), format!("'{s}' is not a client"));
                        }
                    }
                }
                window(self, *at_s, *duration_s);
                self.positive(&format!("{path}.multiplier"), *multiplier, 1_000.0);
            }
            Chaos::CacheMissStorm {
                component,
                at_s,
                duration_s,
                hit_ratio,
            } => {
                if let Some(i) = target(self, component) {
                    if resolved[i].as_ref().is_some_and(|r| r.role != Role::Cache) {
                        self.push(
                            format!("{path}.component"),
                            format!("'{component}' is not a cache ({})", cache_kinds()),
                        );
                    }
                }
                window(self, *at_s, *duration_s);
                self.probability(&format!("{path}.hit_ratio"), *hit_ratio);
            }
        }
    }
}

/// A number as people read it: huge and tiny ones in exponent form.
fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && (v.abs() >= 1e9 || v.abs() < 1e-4) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn cache_kinds() -> String {
    catalogue::CATALOGUE
        .iter()
        .filter(|p| p.role == Role::Cache)
        .map(|p| p.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Highest rate an open workload reaches.
pub(crate) fn peak_rate(rate: f64, pattern: &Pattern) -> f64 {
    match *pattern {
        Pattern::Constant => rate,
        Pattern::Ramp { to_rate, .. } => rate.max(to_rate),
        Pattern::Spike { peak_rate, .. } => rate.max(peak_rate),
        Pattern::Wave { amplitude, .. } | Pattern::Diurnal { amplitude, .. } => {
            rate * (1.0 + amplitude)
        }
    }
}

/// Checks one chaos entry to inject into a running simulation of `design` (see
/// [`crate::Simulation::inject`]) as the design's own chaos would be checked; each problem's
/// path is relative to the entry (`$.duration_s`, `$.component`).
pub fn validate_injection(
    design: &Design,
    chaos: &crate::model::Chaos,
) -> Result<(), Vec<Problem>> {
    let mut d = design.clone();
    let n = d.chaos.len();
    d.chaos.push(chaos.clone());
    let prefix = format!("$.chaos[{n}]");
    match validate(&d) {
        Ok(()) => Ok(()),
        Err(problems) => {
            let mine: Vec<Problem> = problems
                .into_iter()
                .filter_map(|p| {
                    p.path.strip_prefix(&prefix).map(|rest| Problem {
                        path: format!("${rest}"),
                        message: p.message,
                    })
                })
                .collect();
            if mine.is_empty() {
                Ok(())
            } else {
                Err(mine)
            }
        }
    }
}
