//! Runs: one per started simulation, each on a thread of its own (the engine is CPU-bound
//! and never runs on the async executor), advancing window by window and paced by its
//! speed. A run that panics is not restarted (a deterministic run would panic again): it
//! ends as failed with its reason, is counted in `sdsim_supervisor_restarts_total` (under
//! the supervisor `runs`, reason `panic`), and touches no other run. The state a run needs
//! to be replayed is its design, seed and options, stored when it starts. Leases, takeover
//! and retention are in [`crate::leases`], admission in [`crate::admission`].

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use sdsim_engine as engine;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::metrics::Metrics;
use sdsim_schema::tables::simulation_schema::{
    simulation_analytics, simulation_history, simulation_results, simulations,
};
use sdsim_schema::DbPool;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::stream::{Feed, StreamLimits};
use sdsim_protocols::names::Namespace;

/// The fastest pace (simulated seconds per wall second); 0 means "as fast as it goes".
pub const MAX_SPEED: f64 = 10_000.0;

/// How a run is asked for.
#[derive(Debug, Clone)]
pub struct Start {
    pub user: Uuid,
    pub project: Option<Uuid>,
    pub design_json: String,
    pub seed: Option<u64>,
    pub speed: f64,
    pub window_s: Option<f64>,
    /// Chaos to apply at simulated times (a replay's injections), in order.
    pub scheduled: Vec<(f64, engine::Chaos)>,
}

/// A chaos entry asked of a running run, and where its time and applied form go.
type Injection = (
    engine::Chaos,
    tokio::sync::oneshot::Sender<Result<(f64, engine::Chaos), String>>,
);

/// Where a live run is.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub simulated_s: f64,
    pub windows: u64,
    /// The latest window, as streamed.
    pub last: Option<Arc<str>>,
}

/// What the run's owner may change while it runs; the run thread reads it between windows.
#[derive(Default)]
pub(crate) struct Control {
    pub(crate) stop: AtomicBool,
    paused: AtomicBool,
    /// The pace, as `f64` bits.
    speed: AtomicU64,
    /// Chaos to inject at the next window boundary (at once while paused).
    inject: Mutex<Vec<Injection>>,
    /// Fault injection: panic at the next boundary.
    panic: AtomicBool,
}

impl Control {
    fn speed(&self) -> f64 {
        f64::from_bits(AtomicU64::load(&self.speed, Ordering::Relaxed))
    }
    fn stopped(&self) -> bool {
        AtomicBool::load(&self.stop, Ordering::Relaxed)
    }
}

/// A change asked of a running run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Pause,
    Resume,
    Speed(f64),
    /// Fault injection (tests, `admin.fault_injection` only): the run panics at its next
    /// window boundary.
    Panic,
}

pub(crate) struct Live {
    pub(crate) control: Arc<Control>,
    progress: Arc<Mutex<Progress>>,
    /// The run's actor, once it started (see [`crate::run_actor`]).
    actor: Option<actix::Addr<crate::run_actor::RunActor>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = simulations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct RunRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    pub status: String,
    pub configuration: Value,
    pub seed: i64,
    pub duration_seconds: f64,
    pub speed: f64,
    pub progress: f64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub window_seconds: f64,
    pub injections: Value,
    pub owner_instance: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

/// A run as its reader sees it: the stored row and, while it runs, where it is.
pub struct Status {
    pub row: RunRow,
    pub live: Option<Progress>,
    /// Its place in this instance's queue, while it waits.
    pub queue_position: Option<usize>,
}

/// The runs of this instance.
pub struct Runs {
    pub pool: DbPool,
    /// Where the runs' publishers run.
    pub runtime: tokio::runtime::Handle,
    pub metrics: Arc<Metrics>,
    pub redis: redis::aio::ConnectionManager,
    pub ns: Namespace,
    pub limits: StreamLimits,
    pub caps: Caps,
    /// This process's id in the mesh: the owner of the runs it leases.
    pub instance_id: String,
    /// How long a lease lasts unless renewed.
    pub lease_ms: u64,
    /// Finished runs are deleted this many days after they ended (0: kept).
    pub retention_days: u32,
    pub(crate) live: Mutex<HashMap<Uuid, Live>>,
    /// The `runs` supervisor, which starts each run's actor (empty while it restarts: a run
    /// then starts without one).
    pub(crate) supervisor: sdsim_runtime::slot::Slot<crate::keeper::Keeper>,
    /// Runs stored as pending, waiting for a place on this instance, oldest first.
    pub(crate) queue: Mutex<VecDeque<(Uuid, Ready)>>,
    /// Places taken (runs live here, or about to start).
    pub(crate) active: AtomicUsize,
}

/// Admission: how many runs may go at once.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Per user, across every instance (pending, running or paused); beyond: 429.
    pub per_user: u32,
    /// On this instance; beyond, a run waits in the queue.
    pub running: usize,
}

/// A run checked and stored, ready to start.
pub(crate) struct Ready {
    pub(crate) design: engine::Design,
    pub(crate) seed: u64,
    pub(crate) window: f64,
    pub(crate) speed: f64,
    /// Reversed: the earliest at the end.
    pub(crate) scheduled: Vec<(f64, engine::Chaos)>,
    /// Taken over from a dead instance: windows already streamed (re-simulated, not
    /// streamed again), of which the first `stored` are in PostgreSQL; and whether it was
    /// paused.
    pub(crate) resume: Resume,
}

/// Where a run taken over picks up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume {
    pub streamed: u64,
    pub stored: u64,
    pub paused: bool,
    /// A takeover: its chaos and start are already recorded.
    pub taken_over: bool,
}

/// How a run ended.
pub enum Outcome {
    Completed(Box<engine::RunReport>),
    Stopped(Box<engine::RunReport>),
    Failed(String),
}

impl Outcome {
    /// The stored status and error.
    pub fn status(&self) -> (&'static str, Option<String>) {
        match self {
            Outcome::Completed(_) => ("completed", None),
            Outcome::Stopped(_) => ("stopped", None),
            Outcome::Failed(e) => ("failed", Some(e.clone())),
        }
    }
}

/// Waits until the next window is due on the run's schedule at the current speed (re-read
/// while waiting, so a new speed applies at once), and while the run is paused. The
/// schedule is the run's, not each window's: a run that fell behind (a slow window, a busy
/// machine) goes on at once until it is back on time, catching up at most 2 s; a resumed
/// run's schedule starts again when it resumes. Stop ends either wait.
fn pace(window_s: f64, next: &mut Instant, control: &Control, between: &mut dyn FnMut()) {
    let tick = Duration::from_millis(20);
    let mut was_paused = false;
    loop {
        between();
        if control.stopped() {
            return;
        }
        if AtomicBool::load(&control.paused, Ordering::Relaxed) {
            was_paused = true;
            std::thread::sleep(tick);
            continue;
        }
        let now = Instant::now();
        if was_paused {
            *next = now;
            was_paused = false;
        }
        let speed = control.speed();
        if speed <= 0.0 {
            *next = now;
            return;
        }
        let due = *next + Duration::from_secs_f64(window_s / speed);
        if now >= due {
            *next = due.max(now - Duration::from_secs(2).min(now - *next));
            return;
        }
        std::thread::sleep((due - now).min(tick));
    }
}

/// How much nicer than the process a run's thread is: when runs fill the cores, the
/// runtimes that serve requests, stream windows and renew leases still get to run (the runs
/// fall behind their schedule instead, and catch up when the machine is free).
const RUN_NICE: i32 = 5;

/// Lowers the calling thread's priority by [`RUN_NICE`] (Linux; elsewhere `setpriority`
/// would lower the whole process, so it keeps normal priority).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        if let Err(e) = getpriority_process(me)
            .and_then(|nice| setpriority_process(me, (nice + RUN_NICE).min(19)))
        {
            tracing::debug!(error = %e, "a run's thread keeps normal priority");
        }
    }
}

/// Windows a run has simulated so far.
fn progress_windows(p: &Mutex<Progress>) -> u64 {
    p.lock().map_or(0, |p| p.windows)
}

/// Sets the `at_s` of the kinds that have one.
fn set_at(c: &mut engine::Chaos, t: f64) {
    use engine::Chaos as C;
    match c {
        C::Crash { at_s, .. }
        | C::Latency { at_s, .. }
        | C::Errors { at_s, .. }
        | C::Partition { at_s, .. }
        | C::TrafficSpike { at_s, .. }
        | C::CacheMissStorm { at_s, .. } => *at_s = t,
        C::RandomCrash { .. } => {}
    }
}

fn check_speed(speed: f64) -> Result<(), ServiceError> {
    if speed.is_finite() && (0.0..=MAX_SPEED).contains(&speed) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "speed",
            format!("speed must be between 0 (as fast as possible) and {MAX_SPEED}"),
        ))
    }
}

/// What a run needs besides its database.
pub struct RunsDeps {
    pub instance_id: String,
    pub lease_ms: u64,
    pub retention_days: u32,
    pub runtime: tokio::runtime::Handle,
    pub metrics: Arc<Metrics>,
    pub redis: redis::aio::ConnectionManager,
    pub ns: Namespace,
    pub limits: StreamLimits,
    pub caps: Caps,
}

impl Runs {
    pub fn new(pool: DbPool, d: RunsDeps) -> Self {
        Self {
            pool,
            runtime: d.runtime,
            metrics: d.metrics,
            redis: d.redis,
            ns: d.ns,
            limits: d.limits,
            caps: d.caps,
            instance_id: d.instance_id,
            lease_ms: d.lease_ms,
            retention_days: d.retention_days,
            live: Mutex::new(HashMap::new()),
            supervisor: sdsim_runtime::slot::Slot::new(),
            queue: Mutex::new(VecDeque::new()),
            active: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.lease_ms as i64)
    }

    /// Whether the run is live (or queued) on this instance.
    pub fn is_local(&self, id: Uuid) -> bool {
        self.live.lock().is_ok_and(|l| l.contains_key(&id)) || self.position(id).is_some()
    }

    /// The run is over and its end stored: it is no longer live here, and its actor stops.
    pub fn forget(&self, id: Uuid) {
        let gone = self.live.lock().ok().and_then(|mut l| l.remove(&id));
        if let Some(actor) = gone.and_then(|g| g.actor) {
            actor.do_send(crate::run_actor::Ended);
        }
    }

    /// Run `id`'s actor started.
    pub(crate) fn attach(&self, id: Uuid, actor: actix::Addr<crate::run_actor::RunActor>) {
        let attached = self
            .live
            .lock()
            .ok()
            .is_some_and(|mut l| match l.get_mut(&id) {
                Some(live) => {
                    live.actor = Some(actor.clone());
                    true
                }
                None => false,
            });
        if !attached {
            // It already ended.
            actor.do_send(crate::run_actor::Ended);
        }
    }

    /// Checks and stores a run, then starts it on a thread of its own.
    pub async fn start(self: &Arc<Self>, s: Start) -> Result<RunRow, ServiceError> {
        check_speed(s.speed)?;
        if let Some(w) = s.window_s {
            if !(0.01..=3_600.0).contains(&w) {
                return Err(ServiceError::invalid(
                    "window_seconds",
                    "window_seconds must be between 0.01 and 3600",
                ));
            }
        }
        let json = s.design_json.clone();
        let checked = tokio::task::spawn_blocking(move || engine::validate_json(&json))
            .await
            .map_err(|e| ServiceError::Internal(format!("validation task: {e}")))?;
        let design = checked.map_err(|problems| {
            ServiceError::invalid(
                "design",
                format!(
                    "the design cannot run: {}",
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        })?;
        let seed = s.seed.or(design.seed).unwrap_or(engine::DEFAULT_SEED);
        let window = s.window_s.or(design.window_s).unwrap_or(1.0);
        let mut scheduled = s.scheduled.clone();
        scheduled.reverse(); // popped from the end, earliest first
        let configuration: Value = serde_json::from_str(&s.design_json)
            .map_err(|e| ServiceError::invalid("design", e.to_string()))?;
        let ready = Ready {
            design,
            seed,
            window,
            speed: s.speed,
            scheduled,
            resume: Resume::default(),
        };
        // A place on this instance now, or the queue.
        let placed = self.reserve();
        let stored = self.insert(&s, &ready, configuration, placed).await;
        let row = match stored {
            Ok(row) => row,
            Err(e) => {
                if placed {
                    self.active.fetch_sub(1, Ordering::AcqRel);
                }
                return Err(e);
            }
        };
        if placed {
            self.launch(row.clone(), ready);
        } else if let Ok(mut q) = self.queue.lock() {
            q.push_back((row.id, ready));
        }
        Ok(row)
    }

    /// Starts a stored run: live here at once (its controls work from now on), then its
    /// actor under the `runs` supervisor, which starts its thread and publisher.
    pub(crate) fn launch(self: &Arc<Self>, row: RunRow, ready: Ready) {
        let control = Arc::new(Control {
            speed: AtomicU64::new(ready.speed.to_bits()),
            paused: AtomicBool::new(ready.resume.paused),
            ..Default::default()
        });
        let progress = Arc::new(Mutex::new(Progress::default()));
        if let Ok(mut l) = self.live.lock() {
            l.insert(
                row.id,
                Live {
                    control: control.clone(),
                    progress: progress.clone(),
                    actor: None,
                },
            );
        }
        let start = crate::run_actor::StartRun {
            row,
            ready,
            control,
            progress,
        };
        match self.supervisor.get() {
            Some(keeper) => keeper.do_send(start),
            None => {
                tracing::warn!(run = %start.row.id, "the runs supervisor is restarting: the run starts without its actor");
                self.launch_now(start.row, start.ready, start.control, start.progress);
            }
        }
    }

    /// Starts a run's thread and its publisher (its actor calls this when it starts).
    pub(crate) fn launch_now(
        self: &Arc<Self>,
        row: RunRow,
        ready: Ready,
        control: Arc<Control>,
        progress: Arc<Mutex<Progress>>,
    ) {
        let Ready {
            design,
            seed,
            window,
            speed: _,
            mut scheduled,
            resume,
        } = ready;
        let id = row.id;
        let (feed, rx) = tokio::sync::mpsc::unbounded_channel();
        self.runtime.spawn(crate::stream::publish(
            self.clone(),
            row.clone(),
            rx,
            resume,
        ));
        let runs = self.clone();
        let end_feed = feed.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sdsim-run-{}", &id.simple().to_string()[..8]))
            .spawn(move || {
                lower_priority();
                let started = Instant::now();
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    let mut sim = match engine::Simulation::new(&design, Some(seed)) {
                        Ok(sim) => sim,
                        Err(e) => return Outcome::Failed(e.to_string()),
                    };
                    // The chaos of a replay (or of a run taken over) due now.
                    let due =
                        |sim: &mut engine::Simulation,
                         scheduled: &mut Vec<(f64, engine::Chaos)>,
                         feed: &tokio::sync::mpsc::UnboundedSender<Feed>| {
                            while scheduled.last().is_some_and(|(at, _)| *at <= sim.now()) {
                                if let Some((_, c)) = scheduled.pop() {
                                    let at_s = sim.now();
                                    if let Ok(chaos) = sim.inject(c) {
                                        if !resume.taken_over {
                                            let _ = feed.send(Feed::Chaos { at_s, chaos });
                                        }
                                    }
                                }
                            }
                        };
                    // Taken over: the windows already streamed again, fast and unpaced, the
                    // same byte for byte (same seed, same chaos at the same times); those
                    // PostgreSQL lacks are stored, none is streamed twice.
                    while !sim.is_finished() && progress_windows(&progress) < resume.streamed {
                        due(&mut sim, &mut scheduled, &feed);
                        let w = sim.advance(window);
                        if w.index >= resume.stored {
                            match serde_json::to_string(&w) {
                                Ok(j) => {
                                    let _ = feed.send(Feed::Restored {
                                        index: w.index,
                                        json: j.into(),
                                    });
                                }
                                Err(e) => {
                                    return Outcome::Failed(format!("window {}: {e}", w.index))
                                }
                            }
                        }
                        if let Ok(mut p) = progress.lock() {
                            p.simulated_s = w.end_s;
                            p.windows = w.index + 1;
                        }
                    }
                    // Between two windows: the chaos due now, then what was asked.
                    let mut between = |sim: &mut engine::Simulation| {
                        due(sim, &mut scheduled, &feed);
                        if AtomicBool::load(&control.panic, Ordering::Relaxed) {
                            panic!("fault injection: this run was asked to panic");
                        }
                        let asked: Vec<Injection> = control
                            .inject
                            .lock()
                            .map(|mut q| std::mem::take(&mut *q))
                            .unwrap_or_default();
                        for (c, reply) in asked {
                            let at_s = sim.now();
                            let applied = sim.inject(c).map_err(|e| e.to_string());
                            if let Ok(chaos) = &applied {
                                let _ = feed.send(Feed::Chaos {
                                    at_s,
                                    chaos: chaos.clone(),
                                });
                            }
                            let _ = reply.send(applied.map(|c| (at_s, c)));
                        }
                    };
                    let mut next = Instant::now();
                    while !sim.is_finished() {
                        if control.stopped() {
                            return Outcome::Stopped(Box::new(sim.report()));
                        }
                        between(&mut sim);
                        let w = sim.advance(window);
                        let json: Arc<str> = match serde_json::to_string(&w) {
                            Ok(j) => j.into(),
                            Err(e) => return Outcome::Failed(format!("window {}: {e}", w.index)),
                        };
                        if let Ok(mut p) = progress.lock() {
                            p.simulated_s = w.end_s;
                            p.windows = w.index + 1;
                            p.last = Some(json.clone());
                        }
                        let _ = feed.send(Feed::Window {
                            index: w.index,
                            json,
                        });
                        pace(window, &mut next, &control, &mut || between(&mut sim));
                    }
                    Outcome::Completed(Box::new(sim.report()))
                }))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "the run panicked".into());
                    runs.metrics
                        .supervisor_restarts
                        .with_label_values(&["simulation", "runs", "run", "panic"])
                        .inc();
                    tracing::error!(run = %id, panic = %what, "a run panicked; it ends as failed");
                    Outcome::Failed(format!("the run failed: {what}"))
                });
                let wall_s = started.elapsed().as_secs_f64();
                // Injections asked too late are refused now (their senders dropped), not
                // left waiting for a boundary that will not come.
                if let Ok(mut late) = control.inject.lock() {
                    late.clear();
                }
                // The publisher stores the outcome after the last window.
                let _ = feed.send(Feed::End { outcome, wall_s });
            });
        if let Err(e) = spawned {
            let _ = end_feed.send(Feed::End {
                outcome: Outcome::Failed(format!("cannot start: {e}")),
                wall_s: 0.0,
            });
        }
    }

    /// `simulation:events:started`, for whoever listens (best effort).
    pub async fn announce(&self, row: &RunRow) {
        let event = serde_json::json!({
            "simulation_id": row.id.to_string(),
            "user_id": row.user_id.to_string(),
            "project_id": row.project_id.map(|p| p.to_string()),
            "status": "started",
        });
        let mut conn = self.redis.clone();
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(self.ns.simulation_events("started"))
            .arg(event.to_string())
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::debug!(run = %row.id, error = %e, "started event not published");
        }
    }

    /// Stores how a run ended; answers who started it and of which project.
    pub async fn finish(
        &self,
        id: Uuid,
        outcome: Outcome,
        wall_s: f64,
    ) -> Result<(Uuid, Option<Uuid>), ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (status, report, error) = match outcome {
            Outcome::Completed(r) => ("completed", Some(r), None),
            Outcome::Stopped(r) => ("stopped", Some(r), None),
            Outcome::Failed(e) => ("failed", None, Some(e)),
        };
        // One transaction: whoever reads the run as ended also finds its results.
        let owner = conn
            .transaction::<_, ServiceError, _>(async |conn| {
                self.record_end(conn, id, status, report, error, wall_s)
                    .await
            })
            .await?;
        if owner.is_some() {
            self.metrics
                .runs_finished
                .with_label_values(&[status])
                .inc();
        }
        let Some(owner) = owner else {
            return Err(ServiceError::Conflict {
                code: "not_ours".into(),
                field: "simulation_id".into(),
                message: format!("simulation {id} is no longer this instance's to end"),
            });
        };
        Ok(owner)
    }

    /// Stores a run's end: its status (only if it is still live and this instance's:
    /// fencing, a run whose lease expired was already ended elsewhere), its report, analysis,
    /// series and the starter's history. None when the run was not ours to end.
    async fn record_end(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        id: Uuid,
        status: &str,
        report: Option<Box<engine::RunReport>>,
        error: Option<String>,
        wall_s: f64,
    ) -> Result<Option<(Uuid, Option<Uuid>)>, ServiceError> {
        // Only a run still live and ours ends here (fencing: a run whose lease expired was
        // already ended by the sweep, and its late outcome is not written over that).
        let owner: Option<(Uuid, Option<Uuid>)> = diesel::update(
            simulations::table
                .find(id)
                .filter(simulations::status.eq_any(["pending", "running", "paused"]))
                .filter(simulations::owner_instance.eq(&self.instance_id)),
        )
        .set((
            simulations::status.eq(status),
            simulations::error.eq(error),
            simulations::progress.eq(if status == "completed" { 1.0 } else { 0.0 }),
            simulations::completed_at.eq(Some(Utc::now())),
        ))
        .returning((simulations::user_id, simulations::project_id))
        .get_result(conn)
        .await
        .optional()?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        if let Some(report) = report {
            let summary = serde_json::to_value(&*report)
                .map_err(|e| ServiceError::Internal(format!("report: {e}")))?;
            diesel::insert_into(simulation_results::table)
                .values((
                    simulation_results::simulation_id.eq(id),
                    simulation_results::summary.eq(summary),
                    simulation_results::requests_simulated.eq(report.requests_simulated as i64),
                    simulation_results::simulated_seconds.eq(report.simulated_s),
                    simulation_results::wall_seconds.eq(wall_s),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            // The analysis, a row per finding, for queries across runs.
            let analysis = serde_json::to_value(&report.analysis)
                .map_err(|e| ServiceError::Internal(format!("analysis: {e}")))?;
            let mut rows = Vec::new();
            for (key, kind) in [
                ("bottlenecks", "bottleneck"),
                ("anomalies", "anomaly"),
                ("forecasts", "forecast"),
                ("alerts", "alert"),
            ] {
                for finding in analysis[key].as_array().into_iter().flatten() {
                    rows.push((
                        simulation_analytics::simulation_id.eq(id),
                        simulation_analytics::kind.eq(kind),
                        simulation_analytics::component_id
                            .eq(finding["component"].as_str().map(str::to_string)),
                        simulation_analytics::payload.eq(finding.clone()),
                    ));
                }
            }
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(simulation_analytics::table)
                    .values(chunk)
                    .execute(conn)
                    .await?;
            }
        }
        if status != "failed" {
            self.store_series(conn, id).await?;
        }
        // The starter's history.
        diesel::insert_into(simulation_history::table)
            .values((
                simulation_history::user_id.eq(owner.0),
                simulation_history::simulation_id.eq(id),
                simulation_history::action.eq(status),
                simulation_history::detail.eq(serde_json::json!({ "wall_seconds": wall_s })),
            ))
            .execute(conn)
            .await?;
        Ok(Some(owner))
    }

    /// The run's per-window series, bounded (see [`crate::series`]), in
    /// `performance_metrics`.
    async fn store_series(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        id: Uuid,
    ) -> Result<(), ServiceError> {
        use sdsim_schema::tables::simulation_schema::{
            performance_metrics as pm, simulation_windows as w,
        };
        let texts: Vec<String> = w::table
            .filter(w::simulation_id.eq(id))
            .order(w::window_index.asc())
            .select(w::data)
            .load(conn)
            .await?;
        let windows: Vec<Value> = texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect();
        let points = crate::series::downsample(&windows, crate::series::MAX_POINTS);
        let rows: Vec<_> = points
            .into_iter()
            .map(|p| {
                (
                    pm::simulation_id.eq(id),
                    pm::component_id.eq(p.component),
                    pm::window_start.eq(p.start_s),
                    pm::window_end.eq(p.end_s),
                    pm::arrivals.eq(p.arrivals),
                    pm::completions.eq(p.completions),
                    pm::drops.eq(p.drops),
                    pm::errors.eq(p.errors),
                    pm::utilization.eq(p.utilisation),
                    pm::queue_length.eq(p.queue_length),
                    pm::throughput.eq(p.throughput),
                    pm::latency_p50_ms.eq(p.p50_ms),
                    pm::latency_p95_ms.eq(p.p95_ms),
                    pm::latency_p99_ms.eq(p.p99_ms),
                )
            })
            .collect();
        for chunk in rows.chunks(1_000) {
            diesel::insert_into(pm::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// The analysis of a finished run (bottlenecks in words with what to change, anomalies,
    /// forecasts, the alert log), from its report.
    pub async fn analysis(&self, row: RunRow) -> Result<Value, ServiceError> {
        let (_, summary) = self.results(row).await?;
        Ok(summary["analysis"].clone())
    }

    /// The run and, while it runs, where it is.
    pub async fn status(&self, row: RunRow) -> Result<Status, ServiceError> {
        let live = self.live.lock().ok().and_then(|l| {
            l.get(&row.id)
                .and_then(|r| r.progress.lock().ok().map(|p| p.clone()))
        });
        let queue_position = self.position(row.id);
        // Live on another instance: where it is, from the windows stored so far.
        let live = match live {
            None if matches!(row.status.as_str(), "running" | "paused") => {
                let (_, stored) = self.windows(&row, u64::MAX, 1).await?;
                Some(Progress {
                    simulated_s: (stored as f64 * row.window_seconds).min(row.duration_seconds),
                    windows: stored,
                    last: None,
                })
            }
            live => live,
        };
        Ok(Status {
            row,
            live,
            queue_position,
        })
    }

    /// The stored run; who may see or change it is the adapter's to decide.
    pub async fn row(&self, id: &str) -> Result<RunRow, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("no simulation {id}"));
        let run: Uuid = id.parse().map_err(|_| not_found())?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        simulations::table
            .find(run)
            .select(RunRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(not_found)
    }

    /// The control of a run live on this instance; a run that is not is a conflict.
    fn live_control(&self, row: &RunRow) -> Result<Arc<Control>, ServiceError> {
        // The stored status is the truth once the run has ended (its live entry goes a
        // moment after the outcome is stored).
        let live = matches!(row.status.as_str(), "running" | "paused");
        self.live
            .lock()
            .ok()
            .and_then(|l| l.get(&row.id).map(|r| r.control.clone()))
            .filter(|_| live)
            .ok_or_else(|| ServiceError::Conflict {
                code: "not_running".into(),
                field: "simulation_id".into(),
                message: format!(
                    "simulation {} is not running (it is {})",
                    row.id, row.status
                ),
            })
    }

    /// Asks a running run to stop (a queued one ends at once); a finished one is a conflict.
    pub async fn stop(&self, row: RunRow) -> Result<RunRow, ServiceError> {
        let queued = self.queue.lock().ok().and_then(|mut q| {
            let at = q.iter().position(|(r, _)| *r == row.id)?;
            q.remove(at)
        });
        if queued.is_some() {
            let mut conn = sdsim_schema::pool::get(&self.pool).await?;
            diesel::update(
                simulations::table
                    .find(row.id)
                    .filter(simulations::status.eq("pending")),
            )
            .set((
                simulations::status.eq("stopped"),
                simulations::completed_at.eq(Some(Utc::now())),
            ))
            .execute(&mut conn)
            .await?;
            return Ok(row);
        }
        self.live_control(&row)?.stop.store(true, Ordering::Relaxed);
        Ok(row)
    }

    /// Pauses, resumes or re-paces a running run; the stored row says its state and speed.
    pub async fn control(&self, row: RunRow, change: Change) -> Result<(), ServiceError> {
        if let Change::Speed(s) = change {
            check_speed(s)?;
        }
        let control = self.live_control(&row)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // The row changes only while the run is live, so its end (which sets the final
        // status) is never overwritten by a late pause.
        let live = simulations::table
            .find(row.id)
            .filter(simulations::status.eq_any(["running", "paused"]));
        match change {
            Change::Panic => control.panic.store(true, Ordering::Relaxed),
            Change::Pause | Change::Resume => {
                let paused = change == Change::Pause;
                control.paused.store(paused, Ordering::Relaxed);
                diesel::update(live)
                    .set(simulations::status.eq(if paused { "paused" } else { "running" }))
                    .execute(&mut conn)
                    .await?;
            }
            Change::Speed(s) => {
                control.speed.store(s.to_bits(), Ordering::Relaxed);
                diesel::update(live)
                    .set(simulations::speed.eq(s))
                    .execute(&mut conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// Injects `chaos` (one entry of the engine's `chaos`, `at_s` optional) into a running
    /// run at its current simulated time; answers the time and the entry as applied.
    pub async fn inject(
        &self,
        row: RunRow,
        chaos: &str,
    ) -> Result<(f64, engine::Chaos), ServiceError> {
        let control = self.live_control(&row)?;
        let mut entry: Value = serde_json::from_str(chaos)
            .map_err(|e| ServiceError::invalid("chaos", format!("not JSON: {e}")))?;
        let Some(fields) = entry.as_object_mut() else {
            return Err(ServiceError::invalid(
                "chaos",
                "a chaos entry is a JSON object",
            ));
        };
        if fields.get("type").and_then(Value::as_str) != Some("random_crash") {
            fields.entry("at_s").or_insert(Value::from(0.0));
        }
        let entry: engine::Chaos = serde_json::from_value(entry).map_err(|e| {
            ServiceError::invalid("chaos", format!("not a chaos entry the engine knows: {e}"))
        })?;
        let design: engine::Design = serde_json::from_value(row.configuration.clone())
            .map_err(|e| ServiceError::Internal(format!("stored design: {e}")))?;
        let mut timed = entry.clone();
        // Checked as at the run's start; the engine moves it to the current time.
        set_at(&mut timed, 0.0);
        engine::validate_injection(&design, &timed).map_err(|problems| {
            let p = &problems[0];
            ServiceError::invalid(
                &format!("chaos{}", p.path.trim_start_matches('$')),
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        control
            .inject
            .lock()
            .map_err(|_| ServiceError::Internal("the run's control is poisoned".into()))?
            .push((entry, tx));
        match tokio::time::timeout(Duration::from_secs(10), rx).await {
            Ok(Ok(Ok(applied))) => Ok(applied),
            Ok(Ok(Err(e))) => Err(ServiceError::invalid("chaos", e)),
            // The run ended before its next window boundary.
            Ok(Err(_)) | Err(_) => Err(ServiceError::Conflict {
                code: "not_running".into(),
                field: "simulation_id".into(),
                message: format!("simulation {} ended before the chaos applied", row.id),
            }),
        }
    }

    /// What replaying `row` needs: its design, seed, window and injections.
    pub fn replay_of(row: &RunRow, user: Uuid, speed: f64) -> Result<Start, ServiceError> {
        let scheduled = row
            .injections
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|i| {
                        let at = i["at_s"].as_f64().unwrap_or(0.0);
                        serde_json::from_value(i["chaos"].clone()).map(|c| (at, c))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|e| ServiceError::Internal(format!("stored injections: {e}")))?
            .unwrap_or_default();
        Ok(Start {
            user,
            project: row.project_id,
            design_json: row.configuration.to_string(),
            seed: Some(row.seed as u64),
            speed,
            window_s: Some(row.window_seconds),
            scheduled,
        })
    }

    /// Runs newest first: those `user` started (of one project or of all), or every run of
    /// `project` when `user` is None; `after` is the page token of the previous page
    /// (`{created_at µs}_{id}`).
    pub async fn history(
        &self,
        user: Option<Uuid>,
        project: Option<Uuid>,
        page_size: i32,
        after: &str,
    ) -> Result<(Vec<RunRow>, String), ServiceError> {
        let size = match page_size {
            0 => 20,
            n @ 1..=100 => i64::from(n),
            _ => {
                return Err(ServiceError::invalid(
                    "page_size",
                    "page_size must be between 1 and 100",
                ))
            }
        };
        let bad_token = || ServiceError::invalid("page_token", "page_token is not one we gave");
        let mut q = simulations::table
            .select(RunRow::as_select())
            .order((simulations::created_at.desc(), simulations::id.desc()))
            .limit(size + 1)
            .into_boxed();
        if let Some(u) = user {
            q = q.filter(simulations::user_id.eq(u));
        }
        if let Some(p) = project {
            q = q.filter(simulations::project_id.eq(p));
        }
        if !after.is_empty() {
            let (micros, id) = after.split_once('_').ok_or_else(bad_token)?;
            let at = micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .ok_or_else(bad_token)?;
            let id: Uuid = id.parse().map_err(|_| bad_token())?;
            q = q.filter(
                simulations::created_at
                    .lt(at)
                    .or(simulations::created_at.eq(at).and(simulations::id.lt(id))),
            );
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut rows: Vec<RunRow> = q.load(&mut conn).await?;
        let next = if rows.len() as i64 > size {
            rows.truncate(size as usize);
            rows.last()
                .map(|r| format!("{}_{}", r.created_at.timestamp_micros(), r.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((rows, next))
    }

    /// Deletes a finished run and, with it, its results; a live one is a conflict (stop it
    /// first), so a run's end is never written to a row that is gone.
    pub async fn delete(&self, row: RunRow) -> Result<(), ServiceError> {
        let id = row.id;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let gone = diesel::delete(
            simulations::table
                .find(row.id)
                .filter(simulations::status.ne_all(["pending", "running", "paused"])),
        )
        .execute(&mut conn)
        .await?;
        if gone == 0 {
            return Err(ServiceError::Conflict {
                code: "still_running".into(),
                field: "simulation_id".into(),
                message: format!("simulation {id} is {}: stop it first", row.status),
            });
        }
        Ok(())
    }

    /// Up to `limit` stored windows of a run from window `from` on, and how many it has
    /// stored in all.
    pub async fn windows(
        &self,
        row: &RunRow,
        from: u64,
        limit: u32,
    ) -> Result<(Vec<(u64, String)>, u64), ServiceError> {
        use sdsim_schema::tables::simulation_schema::simulation_windows as w;
        let limit = match limit {
            0 => 500,
            n => i64::from(n.min(500)),
        };
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let rows: Vec<(i64, String)> = w::table
            .filter(w::simulation_id.eq(row.id))
            .filter(w::window_index.ge(from))
            .order(w::window_index.asc())
            .limit(limit)
            .select((w::window_index, w::data))
            .load(&mut conn)
            .await?;
        let stored: Option<i64> = w::table
            .filter(w::simulation_id.eq(row.id))
            .select(diesel::dsl::max(w::window_index))
            .first(&mut conn)
            .await?;
        Ok((
            rows.into_iter().map(|(i, d)| (i as u64, d)).collect(),
            stored.map_or(0, |m| m as u64 + 1),
        ))
    }

    /// The stored report of a finished run.
    pub async fn results(&self, row: RunRow) -> Result<(RunRow, Value), ServiceError> {
        let id = row.id;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let summary: Option<Value> = simulation_results::table
            .find(row.id)
            .select(simulation_results::summary)
            .first(&mut conn)
            .await
            .optional()?;
        let summary = summary.ok_or_else(|| ServiceError::Conflict {
            code: "no_results_yet".into(),
            field: "simulation_id".into(),
            message: format!("simulation {id} has no results ({})", row.status),
        })?;
        Ok((row, summary))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_run_thread_yields_to_the_runtimes() {
        use rustix::process::getpriority_process;
        let own = getpriority_process(None).unwrap();
        let theirs = std::thread::spawn(|| {
            super::lower_priority();
            getpriority_process(Some(rustix::thread::gettid())).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(theirs, (own + super::RUN_NICE).min(19));
        assert_eq!(
            getpriority_process(None).unwrap(),
            own,
            "the process keeps its own"
        );
    }
}
