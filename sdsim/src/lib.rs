//! The `sdsim` binary's library: settings loading and the application runner, so that tests
//! start exactly what `sdsim up` and `sdsim serve` start.
#![forbid(unsafe_code)]

pub mod app;
pub mod settings;

pub use app::{Application, Running, ServiceAddrs};
