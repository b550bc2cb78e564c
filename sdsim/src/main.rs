//! `sdsim`: every service of the System Design Simulator backend, and its tools.
//!
//! ```text
//! sdsim up                       all four services in this process (each on its own ports)
//! sdsim serve <service>          one service: gateway | auth | project | simulation
//! sdsim migrate [--down]         apply (or revert) the database migrations
//! sdsim config                   print the effective configuration (secrets hidden)
//! ```
//! Configuration: `--config FILE` (or `SDSIM_CONFIG`), `DATABASE_URL`, `REDIS_URL` and
//! `SDSIM_*` variables; see `sdsim/src/settings.rs`. Logs: `SDSIM_LOG` (e.g. `info,sdsim=debug`).

use clap::{Parser, Subcommand};
use sdsim::Application;
use sdsim_protocols::Service;
use sdsim_schema::migrate::{self, Direction};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sdsim", version, about = "System Design Simulator backend")]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "SDSIM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all four services in this process.
    Up,
    /// Run one service.
    Serve {
        /// gateway, auth, project or simulation
        service: Service,
    },
    /// Apply pending database migrations (or revert them all with --down).
    Migrate {
        /// Revert every migration: drops the three schemas and their data.
        #[arg(long)]
        down: bool,
    },
    /// Print the effective configuration as JSON, with secrets hidden.
    Config,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SDSIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let settings = match sdsim::settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sdsim: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Up => serve(settings, &Service::ALL),
        Command::Serve { service } => serve(settings, &[service]),
        Command::Migrate { down } => {
            let direction = if down {
                Direction::DownAll
            } else {
                Direction::Up
            };
            actix_rt::System::new()
                .block_on(migrate::run(settings.database.url.expose(), direction))
                .map(|done| {
                    if done.is_empty() {
                        println!("nothing to do");
                    }
                    for v in done {
                        println!("{} {v}", if down { "reverted" } else { "applied" });
                    }
                })
                .map_err(|e| e.to_string())
        }
        Command::Config => {
            let mut v = serde_json::to_value(&settings).unwrap_or_default();
            for (section, key) in [
                ("database", "url"),
                ("redis", "url"),
                ("auth", "jwt_secret"),
            ] {
                if let Some(x) = v.get_mut(section).and_then(|s| s.get_mut(key)) {
                    *x = serde_json::Value::String("***".into());
                }
            }
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sdsim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: sdsim_actors::config::Settings, services: &[Service]) -> Result<(), String> {
    let app = Application::bind(settings, services)?;
    for (s, a) in app.addresses() {
        eprintln!("sdsim: {s:<10} gRPC {}  HTTP {}", a.grpc, a.http);
    }
    actix_rt::System::new().block_on(app.run(shutdown_signal()))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("sdsim: stopping");
}
