//! The offline commands behind `sdsim sim run` and `sdsim sim validate`.
//!
//! Both read a design document from a file (or standard input when the path is `-`) and
//! return the text to print; the binary only parses its arguments, prints, and exits with
//! [`CliError::exit_code`]:
//!
//! ```text
//! sdsim sim run <design.json> [--seed N] [--json]   -> run_file(path, seed, json)
//!   ... [--windows [--window-seconds W]]              -> run_file_with(.., Some(W))
//! sdsim sim validate <design.json> [--json]         -> validate_file(path, json)
//! ```
//!
//! On failure, print the error's `Display` to standard error (or, with `--json`,
//! [`CliError::to_json`] to standard output) and exit with its code: 2 when the design or
//! the command line is at fault (invalid JSON, validation problems, bad arguments), 1 when
//! the file could not be read or the engine failed.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::limits::MAX_JSON_BYTES;
use crate::validate::{validate_json, Problem};
use crate::{Design, EngineError, Simulation};

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not a JSON document (or not UTF-8 text).
    NotJson {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        message: String,
    },
    /// The document is JSON but not a valid design: every problem, with its JSON path.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems found.
        problems: Vec<Problem>,
    },
    /// The command line was wrong (for the binary's own argument checks).
    Usage(String),
    /// The engine could not run a design that passed validation.
    Engine(EngineError),
}

impl CliError {
    /// The process exit code: 2 for an invalid design or usage, 1 for I/O or engine failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Io { .. } | CliError::Engine(_) => 1,
            CliError::NotJson { .. } | CliError::Invalid { .. } | CliError::Usage(_) => 2,
        }
    }

    /// The problems of an invalid design (empty for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            CliError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    /// The error as a pretty JSON document, for `--json`:
    /// `{"valid": false, "error": "invalid_design", "message": ..., "problems": [{"path", "message"}]}`.
    pub fn to_json(&self) -> String {
        let kind = match self {
            CliError::Io { .. } => "io",
            CliError::NotJson { .. } => "not_json",
            CliError::Invalid { .. } => "invalid_design",
            CliError::Usage(_) => "usage",
            CliError::Engine(_) => "engine",
        };
        let doc = json!({
            "valid": false,
            "error": kind,
            "message": self.to_string(),
            "problems": self.problems(),
        });
        pretty(&doc)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", shown(path))
            }
            CliError::NotJson { path, message } => {
                write!(f, "{} is not a JSON design: {message}", shown(path))
            }
            CliError::Invalid { path, problems } => {
                let n = problems.len();
                write!(
                    f,
                    "{} is not a valid design: {n} problem{}",
                    shown(path),
                    if n == 1 { "" } else { "s" }
                )?;
                for p in problems {
                    write!(f, "\n  {}: {}", p.path, p.message)?;
                }
                Ok(())
            }
            CliError::Usage(message) => write!(f, "usage: {message}"),
            CliError::Engine(e) => write!(f, "the simulation failed: {e}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Io { source, .. } => Some(source),
            CliError::Engine(e) => Some(e),
            _ => None,
        }
    }
}

fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Reads the document at `path` (`-` is standard input), refusing more than the engine's
/// size limit without reading it all.
fn read_document(path: &Path) -> Result<String, CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let limit = MAX_JSON_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        let file = std::fs::File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("it is a directory")));
        }
        file.take(limit).read_to_end(&mut bytes).map_err(io)?;
    }
    if bytes.len() > MAX_JSON_BYTES {
        return Err(CliError::Invalid {
            path: path.to_path_buf(),
            problems: vec![Problem {
                path: "$".into(),
                message: format!("the document is larger than the limit of {MAX_JSON_BYTES} bytes"),
            }],
        });
    }
    String::from_utf8(bytes).map_err(|e| CliError::NotJson {
        path: path.to_path_buf(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Reads, parses and validates the design at `path`.
pub fn load_design(path: &Path) -> Result<Design, CliError> {
    let text = read_document(path)?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        return Err(CliError::NotJson {
            path: path.to_path_buf(),
            message: e.to_string(),
        });
    }
    validate_json(&text).map_err(|problems| CliError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

/// `sdsim sim validate <design.json> [--json]`: "valid" and a one-line summary of the
/// design, or [`CliError::Invalid`] listing every problem with its JSON path.
///
/// With `json`, a valid design gives `{"valid": true, "design": ..., "components": N,
/// "connections": N, "problems": []}`.
pub fn validate_file(path: &Path, json: bool) -> Result<String, CliError> {
    let d = load_design(path)?;
    let clients = d.components.iter().filter(|c| c.kind == "client").count();
    if json {
        return Ok(pretty(&json!({
            "valid": true,
            "design": d.name,
            "components": d.components.len(),
            "connections": d.connections.len(),
            "clients": clients,
            "duration_s": d.duration_s,
            "problems": [],
        })));
    }
    let name = if d.name.is_empty() {
        shown(path)
    } else {
        format!("'{}'", d.name)
    };
    Ok(format!(
        "valid: {name}: {} components ({clients} client{}), {} connections, {} chaos entr{}, {} s\n",
        d.components.len(),
        if clients == 1 { "" } else { "s" },
        d.connections.len(),
        d.chaos.len(),
        if d.chaos.len() == 1 { "y" } else { "ies" },
        d.duration_s
    ))
}

/// `sdsim sim run <design.json> [--seed N] [--json]`: runs the design to its duration
/// (`seed` overrides the design's own) and returns the summary.
///
/// The text gives, per component and end to end, utilisation, mean wait, mean response,
/// p50/p95/p99, throughput, drops and errors; then the bottlenecks and alerts; then the
/// requests simulated and the wall time. With `json`, the [`crate::RunReport`] as JSON
/// plus `wall_time_s` and `requests_per_wall_s`.
pub fn run_file(path: &Path, seed: Option<u64>, json: bool) -> Result<String, CliError> {
    run_file_with(path, seed, json, None)
}

/// `sdsim sim run ... --windows [--window-seconds W]`: as [`run_file`], advancing window by
/// window (`W`, else the design's `window_s`, else 1 s) as the simulation service does, and
/// printing every window: with `json`, the report gets a `windows` array of the engine's
/// [`crate::WindowMetrics`], exactly as a live run streams them; in text, one line each.
pub fn run_file_with(
    path: &Path,
    seed: Option<u64>,
    json: bool,
    windows: Option<Option<f64>>,
) -> Result<String, CliError> {
    let design = load_design(path)?;
    if let Some(Some(w)) = windows {
        if !(0.01..=3_600.0).contains(&w) {
            return Err(CliError::Usage(
                "--window-seconds must be between 0.01 and 3600".into(),
            ));
        }
    }
    let window_s = windows.map(|w| w.or(design.window_s).unwrap_or(1.0));
    let started = Instant::now();
    let mut sim = Simulation::new(&design, seed).map_err(|e| match e {
        EngineError::Invalid(problems) => CliError::Invalid {
            path: path.to_path_buf(),
            problems,
        },
        e => CliError::Engine(e),
    })?;
    let mut series = Vec::new();
    match window_s {
        Some(w) => {
            while !sim.is_finished() {
                series.push(sim.advance(w));
            }
        }
        None => sim.run_to_end(),
    }
    let report = sim.report();
    let wall = started.elapsed().as_secs_f64();
    let requests = report.requests_simulated();
    let rate = if wall > 0.0 {
        requests as f64 / wall
    } else {
        0.0
    };
    if json {
        let mut doc = serde_json::to_value(&report)
            .map_err(|e| CliError::Engine(EngineError::Internal(format!("report: {e}"))))?;
        if let Value::Object(map) = &mut doc {
            map.insert("wall_time_s".into(), json!(wall));
            map.insert("requests_per_wall_s".into(), json!(rate));
            if window_s.is_some() {
                let series = serde_json::to_value(&series).map_err(|e| {
                    CliError::Engine(EngineError::Internal(format!("windows: {e}")))
                })?;
                map.insert("windows".into(), series);
            }
        }
        return Ok(pretty(&doc));
    }
    let mut lines = String::new();
    for w in &series {
        let e = &w.end_to_end;
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        lines.push_str(&format!(
            "window {:>5} {:>9.2}-{:<9.2}s  {:>10.1} req/s  p50 {:>8} ms  p99 {:>8} ms  drops {:>6}  errors {:>6}\n",
            w.index,
            w.start_s,
            w.end_s,
            e.throughput,
            ms(e.p50_ms),
            ms(e.p99_ms),
            e.drops,
            e.errors
        ));
    }
    Ok(format!(
        "{lines}{report}simulated {requests} requests ({} events, {:.1} s of simulated time) in {wall:.3} s of wall time: {} requests/s\n",
        report.events,
        report.simulated_s,
        thousands(rate)
    ))
}

/// `12345678.9` as `12,345,679`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A file in the system's temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &[u8]) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "sdsim-cli-{}-{}.json",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            if let Err(e) = std::fs::write(&path, contents) {
                panic!("cannot write {}: {e}", path.display());
            }
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const SMALL: &str = r#"{
        "name": "small shop",
        "duration_s": 3,
        "components": [
            { "name": "users", "kind": "client", "traffic": { "type": "open", "rate": 500 } },
            { "name": "web", "kind": "web_server", "replicas": 2 },
            { "name": "db", "kind": "postgresql", "queue_capacity": 5 }
        ],
        "connections": [
            { "from": "users", "to": "web", "latency_ms": 5 },
            { "from": "web", "to": "db" }
        ]
    }"#;

    fn ok<T>(r: Result<T, CliError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    fn err<T: fmt::Debug>(r: Result<T, CliError>) -> CliError {
        match r {
            Ok(t) => panic!("expected an error, got {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn run_prints_every_component_end_to_end_and_the_wall_time() {
        let f = TempFile::new(SMALL.as_bytes());
        let text = ok(run_file(&f.0, Some(7), false));
        for want in [
            "small shop",
            "web",
            "db",
            "end to end",
            "util",
            "wait ms",
            "resp ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "thru/s",
            "drops",
            "seed 7",
            "requests",
            "wall time",
        ] {
            assert!(text.contains(want), "missing '{want}' in:\n{text}");
        }
    }

    #[test]
    fn run_json_is_the_report_plus_wall_time_and_is_reproducible() {
        let f = TempFile::new(SMALL.as_bytes());
        let parse = |s: String| -> Value {
            serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"))
        };
        let mut a = parse(ok(run_file(&f.0, Some(3), true)));
        let mut b = parse(ok(run_file(&f.0, Some(3), true)));
        assert_eq!(a["seed"], 3);
        assert!(
            a["requests_simulated"].as_u64().is_some_and(|n| n > 1000),
            "{a}"
        );
        assert!(a["wall_time_s"].as_f64().is_some_and(|w| w > 0.0));
        assert_eq!(a["components"].as_array().map(Vec::len), Some(2));
        assert!(a["components"][0]["p99_ms"].as_f64().is_some());
        assert!(a["end_to_end"]["throughput"]
            .as_f64()
            .is_some_and(|x| x > 400.0));
        // Everything but the wall clock is the same from run to run.
        for doc in [&mut a, &mut b] {
            if let Value::Object(m) = doc {
                m.remove("wall_time_s");
                m.remove("requests_per_wall_s");
            }
        }
        assert_eq!(a, b);
        let c = parse(ok(run_file(&f.0, Some(4), true)));
        assert_ne!(a["end_to_end"], c["end_to_end"]);
    }

    #[test]
    fn validate_says_valid_or_lists_every_problem_with_its_path() {
        let f = TempFile::new(SMALL.as_bytes());
        let text = ok(validate_file(&f.0, false));
        assert!(
            text.starts_with("valid: 'small shop': 3 components (1 client)"),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&ok(validate_file(&f.0, true))).unwrap_or_default();
        assert_eq!(doc["valid"], true);

        let bad = TempFile::new(
            br#"{ "duration_s": -1,
                  "components": [ { "name": "c", "kind": "client", "traffic": { "type": "open", "rate": 0 } },
                                  { "name": "x", "kind": "quantum_db" } ],
                  "connections": [ { "from": "c", "to": "nowhere" } ] }"#,
        );
        let e = err(validate_file(&bad.0, false));
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        for path in [
            "$.duration_s",
            "$.components[1].kind",
            "$.connections[0].to",
        ] {
            assert!(msg.contains(path), "missing {path} in:\n{msg}");
        }
        assert!(e.problems().len() >= 3, "{msg}");
        assert!(msg.contains("is not a valid design"), "{msg}");
        let doc: Value = serde_json::from_str(&e.to_json()).unwrap_or_default();
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["error"], "invalid_design");
        assert!(doc["problems"]
            .as_array()
            .is_some_and(|p| p.len() == e.problems().len()));
        // The run refuses the same design the same way.
        assert_eq!(err(run_file(&bad.0, None, false)).problems(), e.problems());
    }

    #[test]
    fn broken_json_and_binary_files_are_usage_errors_with_a_position() {
        let f = TempFile::new(b"{ \"duration_s\": 10,\n  \"components\": [ }");
        let e = err(validate_file(&f.0, false));
        assert!(matches!(e, CliError::NotJson { .. }), "{e:?}");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("line 2"), "{e}");
        let bin = TempFile::new(&[0x7b, 0xff, 0xfe, 0x00]);
        let e = err(run_file(&bin.0, None, false));
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn unreadable_files_are_io_errors() {
        let missing = std::env::temp_dir().join("sdsim-cli-surely-missing/design.json");
        let e = err(run_file(&missing, None, false));
        assert_eq!(e.exit_code(), 1);
        let msg = e.to_string();
        assert!(
            msg.starts_with("cannot read") && msg.contains("design.json"),
            "{msg}"
        );
        let e = err(validate_file(&std::env::temp_dir(), false));
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("directory"), "{e}");
        assert_eq!(
            CliError::Usage("--seed needs a number".into()).exit_code(),
            2
        );
    }

    #[test]
    fn oversized_documents_are_refused_without_reading_them_all() {
        let mut big = b"{\"name\": \"".to_vec();
        big.resize(MAX_JSON_BYTES + 10, b'a');
        let f = TempFile::new(&big);
        let e = err(validate_file(&f.0, false));
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("larger than the limit"), "{e}");
    }

    #[test]
    fn every_template_file_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut n = 0;
        for entry in ok(std::fs::read_dir(&dir).map_err(|source| CliError::Io {
            path: dir.clone(),
            source,
        })) {
            let path = ok(entry.map_err(|source| CliError::Io {
                path: dir.clone(),
                source,
            }))
            .path();
            if path.extension().is_some_and(|x| x == "json") {
                ok(validate_file(&path, false));
                n += 1;
            }
        }
        assert!(n >= 6);
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }
}
