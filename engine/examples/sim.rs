//! The engine's two offline commands without the `sdsim` binary:
//!
//! ```text
//! cargo run --release -p sdsim-engine --example sim -- run <design.json> [--seed N] [--json]
//! cargo run --release -p sdsim-engine --example sim -- validate <design.json> [--json]
//! ```
//!
//! `sdsim sim run` and `sdsim sim validate` call the same functions of `sdsim_engine::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use sdsim_engine::cli::{run_file, validate_file, CliError};

fn parse(args: &[String]) -> Result<(String, PathBuf, Option<u64>, bool), CliError> {
    let usage = || {
        CliError::Usage(
            "sim (run <design.json> [--seed N] | validate <design.json>) [--json]".into(),
        )
    };
    let mut it = args.iter();
    let command = it.next().ok_or_else(usage)?.clone();
    let (mut path, mut seed, mut json) = (None, None, false);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--seed" => {
                let v = it.next().ok_or_else(usage)?;
                seed = Some(v.parse().map_err(|_| {
                    CliError::Usage(format!("--seed takes a whole number, not '{v}'"))
                })?);
            }
            _ if path.is_none() => path = Some(PathBuf::from(a)),
            _ => return Err(usage()),
        }
    }
    Ok((command, path.ok_or_else(usage)?, seed, json))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let result = parse(&args).and_then(|(command, path, seed, json)| match command.as_str() {
        "run" => run_file(&path, seed, json),
        "validate" if seed.is_none() => validate_file(&path, json),
        _ => Err(CliError::Usage(format!(
            "unknown command '{command}'; use run or validate"
        ))),
    });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                print!("{}", e.to_json());
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
