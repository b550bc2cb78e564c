//! The engine's error type: what can stop a design from being simulated.

use crate::validate::Problem;

/// Why a simulation could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The design failed validation; every problem found is listed.
    #[error("the design has {} problem(s): {}", .0.len(), join(.0))]
    Invalid(Vec<Problem>),
    /// An internal resource (such as a latency histogram) could not be created.
    #[error("internal error: {0}")]
    Internal(String),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
