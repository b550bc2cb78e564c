//! The `sdsim` binary's library: settings loading and the application runner, so that tests
//! start exactly what `sdsim up` and `sdsim serve` start.
#![forbid(unsafe_code)]

pub mod app;
pub mod settings;

pub use app::{Application, Running, ServiceAddrs};

/// Logs to stderr at the level `SDSIM_LOG` names (an `EnvFilter`: `warn`,
/// `info,sdsim_auth=debug`, ...), `info` by default; as JSON lines (one object per event,
/// with its spans: the request id among them) when `SDSIM_LOG_FORMAT=json`. Does nothing if
/// a subscriber is set.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SDSIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("SDSIM_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
}
