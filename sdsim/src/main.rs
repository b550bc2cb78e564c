//! `sdsim`: every service of the System Design Simulator backend, and its tools.
//!
//! ```text
//! sdsim up                       all four services in this process (each on its own ports)
//! sdsim serve <service>          one service: gateway | auth | project | simulation
//! sdsim migrate [--down]         apply (or revert) the database migrations
//! sdsim config                   print the effective configuration (secrets hidden)
//! sdsim sim run <design.json>    simulate a design offline and print the summary
//! sdsim sim validate <design>    list every problem of a design with its JSON path
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
    /// Operator tasks on the database.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Offline simulation of a design (see engine/README.md); needs no database.
    #[command(subcommand)]
    Sim(SimCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give an account a role (e.g. make the first admin): `sdsim admin grant-role a@b.c admin`.
    GrantRole { email: String, role: String },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Run a design to its duration and print the summary per component and end to end.
    Run {
        /// The design, as JSON (`-` reads standard input).
        design: PathBuf,
        /// Seed of the run (overrides the design's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Also print every window, as a live run streams them (`windows` in the JSON).
        #[arg(long)]
        windows: bool,
        /// Window length in simulated seconds (default: the design's, else 1).
        #[arg(long, requires = "windows")]
        window_seconds: Option<f64>,
    },
    /// Validate a design: every problem, each with its JSON path.
    Validate {
        design: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// `sdsim sim ...`: the text goes to stdout, problems to stderr (or stdout with --json).
fn sim(cmd: SimCommand) -> ExitCode {
    let (res, json) = match cmd {
        SimCommand::Run {
            design,
            seed,
            json,
            windows,
            window_seconds,
        } => (
            sdsim_engine::cli::run_file_with(
                &design,
                seed,
                json,
                windows.then_some(window_seconds),
            ),
            json,
        ),
        SimCommand::Validate { design, json } => {
            (sdsim_engine::cli::validate_file(&design, json), json)
        }
    };
    match res {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            } else {
                eprintln!("sdsim: {e}");
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sdsim::init_logging();
    let settings = match cli.command {
        // Offline: no configuration, database or Redis needed.
        Command::Sim(cmd) => return sim(cmd),
        _ => match sdsim::settings::load(cli.config.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sdsim: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let result = match cli.command {
        Command::Sim(cmd) => return sim(cmd),
        Command::Up => serve(settings, &Service::ALL),
        Command::Serve { service } => serve(settings, &[service]),
        Command::Migrate { down } => migrate_db(&settings, down),
        Command::Config => {
            print_config(&settings);
            Ok(())
        }
        Command::Admin(AdminCommand::GrantRole { email, role }) => {
            grant_role(&settings, &email, &role)
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

fn migrate_db(settings: &sdsim::settings::Settings, down: bool) -> Result<(), String> {
    let direction = if down {
        Direction::DownAll
    } else {
        Direction::Up
    };
    let done = actix_rt::System::new()
        .block_on(migrate::run(settings.database.url.expose(), direction))
        .map_err(|e| e.to_string())?;
    if done.is_empty() {
        println!("nothing to do");
    }
    for v in done {
        println!("{} {v}", if down { "reverted" } else { "applied" });
    }
    Ok(())
}

fn grant_role(settings: &sdsim::settings::Settings, email: &str, role: &str) -> Result<(), String> {
    use diesel_async::AsyncConnection;
    let url = settings.database.url.expose().to_string();
    actix_rt::System::new().block_on(async move {
        let mut conn = diesel_async::AsyncPgConnection::establish(&url)
            .await
            .map_err(|e| format!("cannot reach the database: {e}"))?;
        let added = sdsim_auth::store::grant_role_by_email(&mut conn, email, role)
            .await
            .map_err(|e| e.to_string())?;
        if added {
            println!("{email} now has the role {role} (effective at once; the admin flag in tokens at the next login)");
        } else {
            println!("{email} already had the role {role}");
        }
        Ok(())
    })
}

/// Secrets print redacted by their type (`sdsim_runtime::config::Secret`).
fn print_config(settings: &sdsim::settings::Settings) {
    // A closed pipe (`sdsim config | head`) ends the output, not the process with a panic.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", settings.to_pretty_json());
}

fn serve(settings: sdsim::settings::Settings, services: &[Service]) -> Result<(), String> {
    raise_open_files();
    let app = Application::bind(settings, services)?;
    for (s, a) in app.addresses() {
        eprintln!("sdsim: {s:<10} gRPC {}  HTTP {}", a.grpc, a.http);
    }
    actix_rt::System::new().block_on(app.run(shutdown_signal()))
}

/// Raises the soft limit of open files to the hard one (each WebSocket is a file), and says
/// how many connections that allows.
fn raise_open_files() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur < lim.rlim_max {
        let wanted = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            lim = wanted;
        }
    }
    // Pools, listeners and logs hold a few hundred; the rest are for clients.
    let clients = lim.rlim_cur.saturating_sub(512);
    tracing::info!(
        open_files = lim.rlim_cur,
        "open files limit {}: room for about {clients} WebSocket and HTTP connections",
        lim.rlim_cur
    );
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
