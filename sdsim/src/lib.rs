//! The `sdsim` binary's library: settings loading and the application runner, so that tests
//! start exactly what `sdsim up` and `sdsim serve` start.
#![forbid(unsafe_code)]

pub mod app;
pub mod settings;

pub use app::{Application, Running, ServiceAddrs};

/// Logs to stderr at the level `SDSIM_LOG` names (an `EnvFilter`: `warn`,
/// `info,sdsim_auth=debug`, ...), `info` by default. Does nothing if a subscriber is set.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SDSIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
