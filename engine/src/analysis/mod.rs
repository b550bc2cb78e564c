//! Analysis of a run: bottlenecks in plain words, anomalies, trends, capacity forecasts,
//! and the alerts that fired; plus the analytic preview computed before a run.
//!
//! Layout: `queueing` (closed-form results), `series` (statistics on window series),
//! `preview` (traffic equations and M/G/c per component).

pub mod preview;
pub mod queueing;
pub mod series;

use serde::Serialize;

use crate::catalogue::{self, Role};
use crate::metrics::AlertEvent;
use crate::report::ComponentSummary;
use crate::sim::Point;

/// Utilisation from which a component is called a bottleneck.
const HOT: f64 = 0.8;
/// Most anomalies listed.
const MAX_ANOMALIES: usize = 100;
/// Most trends listed (the strongest fits; five series per component would be 10,000).
pub const MAX_TRENDS: usize = 200;
/// Most bottlenecks listed (worst first).
pub const MAX_BOTTLENECKS: usize = 50;
/// Most alert events kept in the report (the first ones; each window still carries its own).
pub const MAX_ALERT_EVENTS: usize = 1_000;

/// Everything the analysis found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The components that limit the system, worst first, with what to change.
    pub bottlenecks: Vec<Finding>,
    /// Windows that stand out from their series.
    pub anomalies: Vec<Anomaly>,
    /// Metrics that move steadily over the run.
    pub trends: Vec<Trend>,
    /// How much more load each component takes before it saturates.
    pub forecasts: Vec<Forecast>,
    /// Alert rules that fired or resolved, in order, the first `MAX_ALERT_EVENTS`.
    pub alerts: Vec<AlertEvent>,
    /// How many entries each list left out to stay bounded (all zero for most runs).
    pub omitted: Omitted,
}

/// Entries left out of the analysis's lists, by list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Omitted {
    /// Bottlenecks past `MAX_BOTTLENECKS` (the least pressed).
    pub bottlenecks: u64,
    /// Anomalies past the first hundred.
    pub anomalies: u64,
    /// Trends past `MAX_TRENDS` (the weakest fits).
    pub trends: u64,
    /// Alert events past `MAX_ALERT_EVENTS` (the latest).
    pub alerts: u64,
}

/// A component under pressure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Component name.
    pub component: String,
    /// "critical" (saturated or losing requests), "warning" (hot) or "info".
    pub severity: &'static str,
    /// What happens, in words.
    pub message: String,
    /// What to change.
    pub suggestion: String,
}

/// One window standing out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// Component name, or "end to end".
    pub component: String,
    /// Which series.
    pub metric: &'static str,
    /// End of the window, s.
    pub at_s: f64,
    /// The value.
    pub value: f64,
    /// "z-score" or "iqr".
    pub method: &'static str,
    /// The z-score, or the distance past the quartile in IQRs.
    pub score: f64,
}

/// A steady rise or fall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Component name, or "end to end".
    pub component: String,
    /// Which series.
    pub metric: &'static str,
    /// Least-squares slope, metric units per second.
    pub slope_per_s: f64,
    /// Goodness of fit, 0..1.
    pub r_squared: f64,
    /// "rising" or "falling".
    pub direction: &'static str,
}

/// Headroom of one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// Component name.
    pub component: String,
    /// Utilisation over the run.
    pub utilisation: f64,
    /// Factor by which its load can grow before it saturates.
    pub saturation_load_factor: Option<f64>,
    /// Its arrival rate at saturation, requests/s.
    pub saturation_arrival_rate: Option<f64>,
    /// At the rising trend of its utilisation, seconds after the end of the run until it
    /// reaches 100%.
    pub time_to_saturation_s: Option<f64>,
}

pub(crate) fn analyse(
    comps: &[ComponentSummary],
    history: &[Vec<Point>],
    alerts: &[AlertEvent],
    alerts_omitted: u64,
) -> Analysis {
    let mut trends = Vec::new();
    let mut anomalies = Vec::new();
    let name_of = |i: usize| {
        comps
            .get(i)
            .map_or_else(|| "end to end".to_string(), |c| c.name.clone())
    };
    let mut util_trend: Vec<Option<(f64, f64)>> = vec![None; comps.len()];
    for (i, series) in history.iter().enumerate() {
        if comps.get(i).is_some_and(|c| c.role == Role::Source) || series.len() < 4 {
            continue;
        }
        let t: Vec<f64> = series.iter().map(|p| p.end_s).collect();
        let metrics: [(&'static str, Vec<f64>); 5] = [
            (
                "utilisation",
                series.iter().map(|p| p.utilisation).collect(),
            ),
            ("queue_length", series.iter().map(|p| p.queue).collect()),
            ("p99_ms", series.iter().map(|p| p.p99_ms).collect()),
            ("throughput", series.iter().map(|p| p.throughput).collect()),
            ("error_rate", series.iter().map(|p| p.error_rate).collect()),
        ];
        for (metric, ys) in &metrics {
            if i == comps.len() && *metric == "utilisation" {
                continue;
            }
            if let Some((slope, _, r2)) = series::linear_fit(&t, ys) {
                let (mean, _) = series::mean_sd(ys);
                let span = t.last().unwrap_or(&0.0) - t.first().unwrap_or(&0.0);
                let change = (slope * span).abs();
                if r2 >= 0.5 && change > 0.1 * mean.abs().max(1e-9) && change > 1e-6 {
                    trends.push(Trend {
                        component: name_of(i),
                        metric,
                        slope_per_s: slope,
                        r_squared: r2,
                        direction: if slope > 0.0 { "rising" } else { "falling" },
                    });
                    if *metric == "utilisation" && i < comps.len() {
                        util_trend[i] = Some((slope, *ys.last().unwrap_or(&0.0)));
                    }
                }
            }
            if series.len() >= 8 {
                for (k, z) in series::zscore_outliers(ys, 3.0) {
                    anomalies.push(Anomaly {
                        component: name_of(i),
                        metric,
                        at_s: t[k],
                        value: ys[k],
                        method: "z-score",
                        score: z,
                    });
                }
                for (k, d) in series::iqr_outliers(ys, 3.0) {
                    anomalies.push(Anomaly {
                        component: name_of(i),
                        metric,
                        at_s: t[k],
                        value: ys[k],
                        method: "iqr",
                        score: d,
                    });
                }
            }
        }
    }
    let mut omitted = Omitted {
        anomalies: anomalies.len().saturating_sub(MAX_ANOMALIES) as u64,
        trends: trends.len().saturating_sub(MAX_TRENDS) as u64,
        alerts: alerts_omitted + alerts.len().saturating_sub(MAX_ALERT_EVENTS) as u64,
        bottlenecks: 0,
    };
    anomalies.truncate(MAX_ANOMALIES);
    strongest(&mut trends, MAX_TRENDS);

    let mut forecasts = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if c.role == Role::Source {
            continue;
        }
        let factor = (c.utilisation > 0.0).then(|| 1.0 / c.utilisation);
        let time = util_trend[i]
            .and_then(|(slope, last)| (slope > 0.0 && last < 1.0).then(|| (1.0 - last) / slope));
        forecasts.push(Forecast {
            component: c.name.clone(),
            utilisation: c.utilisation,
            saturation_load_factor: factor,
            saturation_arrival_rate: factor.map(|f| f * c.arrival_rate),
            time_to_saturation_s: time,
        });
    }

    let mut bottlenecks = bottlenecks(comps);
    omitted.bottlenecks = bottlenecks.len().saturating_sub(MAX_BOTTLENECKS) as u64;
    bottlenecks.truncate(MAX_BOTTLENECKS);
    Analysis {
        bottlenecks,
        anomalies,
        trends,
        forecasts,
        alerts: alerts[..alerts.len().min(MAX_ALERT_EVENTS)].to_vec(),
        omitted,
    }
}

/// Keeps the `cap` best-fitting trends, in their order (component, then metric).
fn strongest(trends: &mut Vec<Trend>, cap: usize) {
    if trends.len() <= cap {
        return;
    }
    let mut order: Vec<usize> = (0..trends.len()).collect();
    order.sort_by(|&a, &b| trends[b].r_squared.total_cmp(&trends[a].r_squared));
    let mut keep = vec![false; trends.len()];
    for &i in &order[..cap] {
        keep[i] = true;
    }
    let mut i = 0;
    trends.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn bottlenecks(comps: &[ComponentSummary]) -> Vec<Finding> {
    let mut ranked: Vec<&ComponentSummary> = comps
        .iter()
        .filter(|c| c.role != Role::Source && c.arrivals > 0)
        .collect();
    let pressure = |c: &ComponentSummary| c.utilisation + 10.0 * c.drop_rate() + c.timeout_rate();
    ranked.sort_by(|a, b| pressure(b).total_cmp(&pressure(a)));
    let mut out = Vec::new();
    for c in &ranked {
        let label = catalogue::profile(&c.kind).map_or(c.kind.as_str(), |p| p.label);
        let losing = c.drops > 0 || c.timeouts > 0;
        if c.utilisation < HOT && !losing {
            continue;
        }
        let mut message = format!(
            "'{}' ({label}) is {}: its {} server(s){} were busy {:.0}% of the time at {:.0} req/s",
            c.name,
            if c.utilisation >= 0.97 || losing {
                "saturated"
            } else {
                "running hot"
            },
            c.servers,
            if c.replicas > 1 {
                format!(" on each of {} replicas", c.replicas)
            } else {
                String::new()
            },
            c.utilisation * 100.0,
            c.arrival_rate,
        );
        if c.drops > 0 {
            message += &format!(
                ", and it turned away {:.1}% of its requests because its queue was full",
                c.drop_rate() * 100.0
            );
        }
        if c.timeouts > 0 {
            message += &format!(
                ", and {:.1}% of its requests timed out waiting",
                c.timeout_rate() * 100.0
            );
        }
        if let Some(w) = c.mean_wait_ms {
            message += &format!("; requests waited {w:.1} ms on average before service");
        }
        let target = 0.7;
        let need = ((f64::from(c.replicas) * c.utilisation.max(1.0 - 1e-9) / target).ceil() as u64)
            .max(u64::from(c.replicas) + 1);
        let suggestion = match c.role {
            Role::Cache => format!(
                "add replicas (about {need} would keep it near {:.0}% busy), or raise its hit ratio so fewer misses go on",
                target * 100.0
            ),
            Role::Balancer => format!(
                "add balancer replicas (about {need} for {:.0}% utilisation) or a faster tier of balancers",
                target * 100.0
            ),
            _ => format!(
                "add replicas (about {need} would keep it near {:.0}% busy) or servers per replica, or reduce its work: a cache in front, fewer calls per request, faster queries",
                target * 100.0
            ),
        };
        out.push(Finding {
            component: c.name.clone(),
            severity: if c.utilisation >= 0.97 || losing {
                "critical"
            } else {
                "warning"
            },
            message,
            suggestion,
        });
    }
    if out.is_empty() {
        if let Some(c) = ranked.first() {
            out.push(Finding {
                component: c.name.clone(),
                severity: "info",
                message: format!(
                    "no bottleneck: the busiest component, '{}', was busy {:.0}% of the time",
                    c.name,
                    c.utilisation * 100.0
                ),
                suggestion: if c.utilisation > 0.0 {
                    format!(
                        "load can grow about {:.1}x before '{}' saturates",
                        1.0 / c.utilisation,
                        c.name
                    )
                } else {
                    "nothing to change".into()
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trend(name: &str, r_squared: f64) -> Trend {
        Trend {
            component: name.into(),
            metric: "p99_ms",
            slope_per_s: 1.0,
            r_squared,
            direction: "rising",
        }
    }

    #[test]
    fn strongest_keeps_the_best_fits_in_their_order() {
        let mut t = vec![
            trend("a", 0.6),
            trend("b", 0.9),
            trend("c", 0.5),
            trend("d", 0.95),
        ];
        strongest(&mut t, 2);
        let names: Vec<&str> = t.iter().map(|t| t.component.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        strongest(&mut t, 5);
        assert_eq!(t.len(), 2);
    }
}
