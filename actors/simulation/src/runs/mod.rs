//! Runs: one per started simulation, each on a thread of its own (the engine is CPU-bound
//! and never runs on the async executor), advancing window by window and paced by its
//! speed. A run that panics is not restarted (a deterministic run would panic again): it
//! ends as failed with its reason, is counted in `sdsim_supervisor_restarts_total` (under
//! the supervisor `runs`, reason `panic`), and touches no other run. The state a run needs
//! to be replayed is its design, seed and options, stored when it starts. Leases, takeover
//! and retention are in [`crate::leases`], admission in [`crate::admission`].

mod control;
mod ending;
mod reads;

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
/// The slowest pace: a window of an hour every 42 days (slower would hold a place for ever,
/// and a pace past `Duration`'s range would panic).
pub const MIN_SPEED: f64 = 0.001;
/// Chaos entries injected into one run at most (each is kept with the run and listed in its
/// status).
pub const MAX_INJECTIONS: usize = 500;
/// What a run thread may have handed its publisher and the publisher not yet taken (windows,
/// chaos, the end): past it the run waits.
const FEED_WINDOWS: usize = 64;

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
    /// Held by a pause, resume or speed change from its atomic to its stored row, so two at
    /// once cannot leave the row saying other than the run does.
    changing: tokio::sync::Mutex<()>,
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
    /// Not read with the row (a design may be 4 MiB, and every status poll, control and
    /// history page reads rows): always null here; [`Runs::design_of`] reads the design
    /// where it is needed (a replay, a resume, chaos checked against it).
    #[diesel(select_expression = diesel::dsl::sql::<diesel::sql_types::Jsonb>("'null'::jsonb"))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<diesel::sql_types::Jsonb>)]
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
    /// Windows streamed and not yet stored, over every run here, in KiB (see
    /// [`crate::stream`]): while PostgreSQL is down runs wait once it is spent.
    pub(crate) unstored: Arc<tokio::sync::Semaphore>,
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

/// The engine's problems in one line, each with its path (for an error's message).
pub(crate) fn problems_text(problems: &[engine::Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_speed(speed: f64) -> Result<(), ServiceError> {
    if speed == 0.0 || (speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed)) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "speed",
            format!("speed must be 0 (as fast as possible) or between {MIN_SPEED} and {MAX_SPEED}"),
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
            unstored: Arc::new(tokio::sync::Semaphore::new(
                crate::stream::UNSTORED_BYTES >> 10,
            )),
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
        // A window override is validated as part of the design: the engine's limits on
        // windows (how many, times components) hold for the window actually used.
        let json = match s.window_s {
            Some(w) => {
                let mut v: Value = serde_json::from_str(&s.design_json).map_err(|e| {
                    ServiceError::invalid("design", format!("the design is not JSON: {e}"))
                })?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("window_s".into(), serde_json::json!(w));
                }
                v.to_string()
            }
            None => s.design_json.clone(),
        };
        let checked = tokio::task::spawn_blocking(move || engine::validate_json(&json))
            .await
            .map_err(|e| ServiceError::Internal(format!("validation task: {e}")))?;
        let design = checked.map_err(|problems| {
            ServiceError::invalid(
                "design",
                format!("the design cannot run: {}", problems_text(&problems)),
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
        // Bounded: a run thread ahead of its publisher (Redis or PostgreSQL slow) waits for
        // it instead of queueing windows without end.
        let (feed, rx) = tokio::sync::mpsc::channel(FEED_WINDOWS);
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
                         feed: &tokio::sync::mpsc::Sender<Feed>| {
                            while scheduled.last().is_some_and(|(at, _)| *at <= sim.now()) {
                                if let Some((_, c)) = scheduled.pop() {
                                    let at_s = sim.now();
                                    if let Ok(chaos) = sim.inject(c) {
                                        if !resume.taken_over {
                                            let _ = feed.blocking_send(Feed::Chaos { at_s, chaos });
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
                                    let _ = feed.blocking_send(Feed::Restored {
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
                            // Answered first: it is applied, even if the publisher (storing
                            // it before any later window) has to wait for PostgreSQL.
                            let _ = reply.send(applied.clone().map(|c| (at_s, c)));
                            if let Ok(chaos) = applied {
                                let _ = feed.blocking_send(Feed::Chaos { at_s, chaos });
                            }
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
                        let _ = feed.blocking_send(Feed::Window {
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
                let _ = feed.blocking_send(Feed::End { outcome, wall_s });
            });
        if let Err(e) = spawned {
            // No thread ever sent on it: there is room.
            let _ = end_feed.try_send(Feed::End {
                outcome: Outcome::Failed(format!("cannot start: {e}")),
                wall_s: 0.0,
            });
        }
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
