//! sdsim engine: a fast, exact discrete-event simulator of system designs.
//!
//! A design (components from a catalogue, connections, traffic, chaos; see
//! `engine/README.md`) is validated with every problem listed at once, previewed with
//! queueing theory, and simulated deterministically: the same design and seed give
//! byte-identical results. A run goes to the end ([`run_design`]) or window by window
//! ([`Simulation::advance`]) so that a caller can stream it live.
//!
//! The engine knows nothing of actors, async runtimes, networks or databases: it is a pure
//! library, tested, fuzzed and benchmarked alone.
//!
//! # Layout
//! - `model`: the serde types of a design.
//! - `catalogue`: component kinds and their default profiles.
//! - `resolve`: a component's effective parameters (overrides over the profile).
//! - `validate`: every problem of a design with its JSON path.
//! - `limits`: caps on size, duration and work that keep hostile input harmless.
//! - `sim`: the event-driven simulator (`events`, `network`, `flow`, `sampler`, `acc`).
//! - `metrics`: per-window metrics; `report`: the summary of a run.
//! - `analysis`: bottlenecks, anomalies, trends, forecasts; `preview` and `queueing` theory.
//! - `rng`: the deterministic random generator (xoshiro256++).
//! - `templates`: ready-made designs embedded from `engine/templates/*.json`.
//! - `cli`: the offline commands `sdsim sim run` and `sdsim sim validate`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod catalogue;
pub mod cli;
mod error;
pub mod limits;
mod metrics;
pub mod model;
mod report;
mod resolve;
pub mod rng;
mod sim;
mod templates;
mod validate;

pub use analysis::preview::{analytic_preview, Preview, PreviewComponent};
pub use analysis::{Analysis, Omitted};
pub use error::EngineError;
pub use metrics::{AlertEvent, ComponentWindow, EndToEndWindow, WindowMetrics};
pub use model::Chaos;
pub use model::Design;
pub use report::{ComponentSummary, EndToEndSummary, RunReport};
pub use sim::{Simulation, DEFAULT_SEED};
pub use templates::{template, templates};
pub use validate::{
    validate, validate_injection, validate_json, Problem, MAX_PROBLEMS, MAX_PROBLEM_CHARS,
};

/// Runs `design` to its duration; `seed` overrides the design's own seed.
pub fn run_design(design: &Design, seed: Option<u64>) -> Result<RunReport, EngineError> {
    let mut sim = Simulation::new(design, seed)?;
    sim.run_to_end();
    Ok(sim.report())
}
