//! A run's live output: every window XADDed to `simulation:stream:{id}` as the run produces
//! it, stored in `simulation_windows`, and the run's end after the last window.
//!
//! The run thread hands each window (already JSON) to the run's publisher task, which owns
//! the order of everything a watcher sees:
//! 1. windows go to the stream at once (pipelined when several are waiting), with explicit
//!    entry ids `{index + 1}-0`: an offset *is* a window number, so a watcher's `since` maps
//!    onto the stored windows exactly, and a second writer of the same window is refused by
//!    Redis (ids only grow);
//! 2. every `store_every_ms` (and at the end) the windows not yet stored are written to
//!    PostgreSQL; only then may the stream be trimmed, and only past stored windows
//!    (`XTRIM MINID`, keeping the newest `stream_maxlen` entries, fewer for large windows:
//!    about 64 MiB of them, never fewer than 16);
//! 3. at the end: the last windows stored, the outcome stored (the run's row and report),
//!    then the end entry (`simulation.completed|failed|stopped`) after the last window, the
//!    `simulation:events:{status}` event, and the stream's expiry (`stream_ttl_seconds`).
//!
//! Redis being down costs watchers their live view (logged), never the run or its windows:
//! a watcher that reconnects reads what the stream lacks from PostgreSQL.
//! PostgreSQL being down holds windows in the storers up to `UNSTORED_BYTES` per instance;
//! past that publishers wait, then their run threads (a run's feed is bounded too): a run
//! waits for its database, it never drops a window or grows without end.

use crate::runs::{Outcome, RunRow, Runs};
use diesel::PgJsonbExpressionMethods;
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use sdsim_protocols::frames::run_end_data;
use sdsim_schema::tables::simulation_schema::simulation_windows;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use uuid::Uuid;

/// What a run thread tells its publisher.
pub enum Feed {
    Window {
        index: u64,
        json: Arc<str>,
    },
    /// A window re-simulated after a takeover, already streamed by the instance that died
    /// but not yet stored: stored, not streamed again.
    Restored {
        index: u64,
        json: Arc<str>,
    },
    /// Chaos applied at `at_s`: stored before any later window is streamed.
    Chaos {
        at_s: f64,
        chaos: sdsim_engine::Chaos,
    },
    End {
        outcome: Outcome,
        wall_s: f64,
    },
}

/// The stream entry id of window `index` (0-based).
pub fn entry_id(index: u64) -> String {
    format!("{}-0", index + 1)
}

/// How the publisher stores and trims (from `[simulation]`).
/// About how many bytes of windows a run's stream keeps once they are stored (a watcher
/// further behind reads them from PostgreSQL).
const STREAM_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub maxlen: u64,
    pub ttl_s: u64,
    pub store_every: Duration,
}

struct Publisher {
    runs: Arc<Runs>,
    id: Uuid,
    key: String,
    /// Windows streamed so far.
    streamed: u64,
    /// Another instance owns the run now: nothing more is streamed.
    fenced: bool,
    /// The run's storer: windows go there once streamed.
    store: mpsc::UnboundedSender<ToStore>,
}

/// Windows the storers of one instance may hold before they are stored (PostgreSQL slow or
/// down), over all its runs (`Runs::unstored`, in KiB).
pub const UNSTORED_BYTES: usize = 256 << 20;

impl Storer {
    /// Stores the windows not yet stored, then trims the stream past them.
    async fn store(&mut self, limits: StreamLimits) {
        self.last_store = Instant::now();
        if self.unstored.is_empty() {
            return;
        }
        let rows: Vec<_> = self
            .unstored
            .iter()
            .map(|(index, json)| {
                (
                    simulation_windows::simulation_id.eq(self.id),
                    simulation_windows::window_index.eq(*index as i64),
                    simulation_windows::data.eq(&**json),
                )
            })
            .collect();
        let written = async {
            let mut conn = sdsim_schema::pool::get(&self.runs.pool).await?;
            for chunk in rows.chunks(1_000) {
                diesel::insert_into(simulation_windows::table)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(&mut conn)
                    .await?;
            }
            Ok::<_, sdsim_runtime::error::ServiceError>(())
        }
        .await;
        if let Err(e) = written {
            if self.run_is_gone().await {
                // Deleted (ended elsewhere, then removed): they can never be stored, and
                // holding them would hold the instance's budget for ever.
                tracing::warn!(run = %self.id, windows = self.unstored.len(), "the run is gone: its unstored windows are dropped");
                self.unstored.clear();
                self.held.clear();
                return;
            }
            // Kept for the next attempt; the stream is not trimmed past them meanwhile.
            tracing::warn!(run = %self.id, error = %e, "windows not stored yet");
            return;
        }
        // Windows of a large design are large (2,000 components: about 0.8 MB each): the
        // stream keeps about STREAM_BYTES of them, and never fewer than 16.
        let bytes: usize = self.unstored.iter().map(|(_, json)| json.len()).sum();
        let average = (bytes / self.unstored.len()).max(1) as u64;
        let maxlen = (STREAM_BYTES / average).clamp(16, limits.maxlen.max(16));
        self.stored = self.unstored.last().map_or(self.stored, |(i, _)| i + 1);
        self.unstored.clear();
        self.held.clear();
        // Entries below MINID go: never one not stored, never the newest `maxlen`.
        let keep_from = (self.streamed + 1).saturating_sub(maxlen).max(1);
        let min_id = keep_from.min(self.stored + 1);
        if min_id > 1 {
            let mut conn = self.runs.redis.clone();
            let trimmed: redis::RedisResult<i64> = redis::cmd("XTRIM")
                .arg(&self.key)
                .arg("MINID")
                .arg(format!("{min_id}-0"))
                .query_async(&mut conn)
                .await;
            if let Err(e) = trimmed {
                tracing::debug!(run = %self.id, error = %e, "stream not trimmed");
            }
        }
    }
}

impl Storer {
    /// The run's row is known to be gone (false when PostgreSQL cannot say).
    async fn run_is_gone(&self) -> bool {
        use sdsim_schema::tables::simulation_schema::simulations;
        let found = async {
            let mut conn = sdsim_schema::pool::get(&self.runs.pool).await?;
            let n: i64 = simulations::table
                .find(self.id)
                .count()
                .get_result(&mut conn)
                .await?;
            Ok::<_, sdsim_runtime::error::ServiceError>(n)
        }
        .await;
        matches!(found, Ok(0))
    }
}

/// What the publisher hands its storer.
enum ToStore {
    /// Windows, with their share of the unstored budget.
    Windows(Vec<(u64, Arc<str>)>, Option<OwnedSemaphorePermit>),
    /// Store everything received, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Stores a run's windows in PostgreSQL, apart from the publisher, so a slow database never
/// delays a live window; trims the stream only past what it stored.
struct Storer {
    runs: Arc<Runs>,
    id: Uuid,
    key: String,
    /// Windows received and not yet stored.
    unstored: Vec<(u64, Arc<str>)>,
    /// Their share of the budget, given back once they are stored.
    held: Vec<OwnedSemaphorePermit>,
    /// Windows stored so far (all of indexes `0..stored`).
    stored: u64,
    /// Windows streamed so far (as far as the storer knows).
    streamed: u64,
    last_store: Instant,
}

async fn storer(mut s: Storer, mut rx: mpsc::UnboundedReceiver<ToStore>, limits: StreamLimits) {
    loop {
        match tokio::time::timeout(limits.store_every, rx.recv()).await {
            Ok(Some(ToStore::Windows(w, permit))) => {
                s.streamed = w.last().map_or(s.streamed, |(i, _)| s.streamed.max(i + 1));
                s.unstored.extend(w);
                s.held.extend(permit);
                if s.last_store.elapsed() >= limits.store_every {
                    s.store(limits).await;
                }
            }
            Ok(Some(ToStore::Flush(done))) => {
                for _ in 0..5 {
                    s.store(limits).await;
                    if s.unstored.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let _ = done.send(());
            }
            Ok(None) => {
                s.store(limits).await;
                return;
            }
            Err(_) => s.store(limits).await,
        }
    }
}

/// The publisher of run `id`: runs until the run's end is published.
pub async fn publish(
    runs: Arc<Runs>,
    row: RunRow,
    mut rx: mpsc::Receiver<Feed>,
    resume: crate::runs::Resume,
) {
    let id = row.id;
    // This instance writes the stream from now on, unless another already does (it took the
    // run over while this one stalled): then this publisher is fenced from its first write.
    claim(&runs, id).await;
    if !resume.taken_over {
        runs.announce(&row).await;
    }
    let key = runs.ns.simulation_stream(&id.to_string());
    let limits = runs.limits;
    let (store, store_rx) = mpsc::unbounded_channel();
    tokio::spawn(storer(
        Storer {
            runs: runs.clone(),
            id,
            key: key.clone(),
            unstored: Vec::new(),
            held: Vec::new(),
            stored: resume.stored,
            streamed: resume.streamed,
            last_store: Instant::now(),
        },
        store_rx,
        limits,
    ));
    let mut p = Publisher {
        runs,
        id,
        key,
        streamed: resume.streamed,
        fenced: false,
        store,
    };
    loop {
        let first = match rx.recv().await {
            Some(f) => f,
            // The run thread is gone without its end: it cannot happen (its end is sent
            // after catch_unwind), but a run must never stay "running".
            None => Feed::End {
                outcome: Outcome::Failed("the run ended without its outcome".into()),
                wall_s: 0.0,
            },
        };
        let mut batch = vec![first];
        while let Ok(f) = rx.try_recv() {
            batch.push(f);
        }
        let mut windows = Vec::with_capacity(batch.len());
        for f in batch {
            match f {
                Feed::Window { index, json } => windows.push((index, json)),
                Feed::Restored { index, json } => p.hand_to_storer(vec![(index, json)]).await,
                Feed::Chaos { at_s, chaos } => {
                    // The windows before it go out; none after it before it is stored.
                    p.stream(&windows).await;
                    p.hand_to_storer(std::mem::take(&mut windows)).await;
                    p.record_chaos(at_s, &chaos).await;
                }
                Feed::End { outcome, wall_s } => {
                    p.stream(&windows).await;
                    p.hand_to_storer(std::mem::take(&mut windows)).await;
                    p.end(outcome, wall_s).await;
                    return;
                }
            }
        }
        p.stream(&windows).await;
        p.hand_to_storer(windows).await;
    }
}

/// XADDs windows only while this instance owns the run (KEYS[2] holds the owner's id):
/// a holder whose run was taken over while it stalled publishes nothing more. An entry
/// whose id is taken (a window already there) is skipped. Answers the windows added, or
/// -1 when fenced out.
const FENCED_XADD: &str = r"
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then return -1 end
if not owner then redis.call('SET', KEYS[2], ARGV[1], 'EX', 86400) end
local n = 0
for i = 2, #ARGV, 2 do
  local ok = redis.pcall('XADD', KEYS[1], ARGV[i], 'type', 'simulation.window', 'by', ARGV[1], 'data', ARGV[i + 1])
  if type(ok) == 'string' then n = n + 1 end
end
return n
";

/// Makes this instance the one that may write run `id`'s stream if no other is (a run's
/// start, or a takeover whose claimer set it already).
async fn claim(runs: &Runs, id: Uuid) {
    const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 86400)
return 1
";
    let mut conn = runs.redis.clone();
    let set: redis::RedisResult<i64> = redis::cmd("EVAL")
        .arg(CLAIM)
        .arg(1)
        .arg(runs.ns.simulation_owner(&id.to_string()))
        .arg(&runs.instance_id)
        .query_async(&mut conn)
        .await;
    match set {
        Ok(1) => {}
        Ok(_) => tracing::warn!(run = %id, "another instance owns this run's stream"),
        Err(e) => tracing::warn!(run = %id, error = %e, "run owner not set in Redis"),
    }
}

/// Makes this instance the one that may write run `id`'s stream, whoever did before: only
/// for the instance that has just claimed the run in PostgreSQL (the lease's single claimer).
pub async fn own(runs: &Runs, id: Uuid) {
    let mut conn = runs.redis.clone();
    let set: redis::RedisResult<()> = redis::cmd("SET")
        .arg(runs.ns.simulation_owner(&id.to_string()))
        .arg(&runs.instance_id)
        .arg("EX")
        .arg(86_400)
        .query_async(&mut conn)
        .await;
    if let Err(e) = set {
        tracing::warn!(run = %id, error = %e, "run owner not set in Redis");
    }
}

impl Publisher {
    /// Hands windows to the storer once its budget has room for them.
    async fn hand_to_storer(&self, windows: Vec<(u64, Arc<str>)>) {
        if windows.is_empty() {
            return;
        }
        let bytes: usize = windows.iter().map(|(_, json)| json.len()).sum();
        let kib = (bytes >> 10).clamp(1, UNSTORED_BYTES >> 10) as u32;
        let permit = self
            .runs
            .unstored
            .clone()
            .acquire_many_owned(kib)
            .await
            .ok();
        let _ = self.store.send(ToStore::Windows(windows, permit));
    }

    async fn stream(&mut self, windows: &[(u64, Arc<str>)]) {
        if windows.is_empty() || self.fenced {
            return;
        }
        let mut script = redis::cmd("EVAL");
        script
            .arg(FENCED_XADD)
            .arg(2)
            .arg(&self.key)
            .arg(self.runs.ns.simulation_owner(&self.id.to_string()))
            .arg(&self.runs.instance_id);
        for (index, json) in windows {
            script.arg(entry_id(*index)).arg(&**json);
        }
        let mut conn = self.runs.redis.clone();
        match script.query_async::<i64>(&mut conn).await {
            Ok(-1) => {
                tracing::warn!(run = %self.id, "another instance took this run over: it stops here");
                self.fenced = true;
                self.runs.lost(self.id);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(run = %self.id, error = %e, "windows not streamed (watchers resume from the stored ones)")
            }
        }
        self.streamed = windows.last().map_or(self.streamed, |(i, _)| i + 1);
    }

    /// Appends an injection to the run's row (retried until stored: a replay needs it).
    async fn record_chaos(&mut self, at_s: f64, chaos: &sdsim_engine::Chaos) {
        use sdsim_schema::tables::simulation_schema::simulations;
        let entry = serde_json::json!([{ "at_s": at_s, "chaos": chaos }]);
        for attempt in 0u32.. {
            let stored = async {
                let mut conn = sdsim_schema::pool::get(&self.runs.pool).await?;
                diesel::update(simulations::table.find(self.id))
                    .set(simulations::injections.eq(simulations::injections.concat(&entry)))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, sdsim_runtime::error::ServiceError>(())
            }
            .await;
            match stored {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(run = %self.id, error = %e, attempt, "injection not stored yet; the run's windows wait");
                    tokio::time::sleep(Duration::from_millis(200 << attempt.min(5))).await;
                }
            }
        }
    }

    async fn end(self, outcome: Outcome, wall_s: f64) {
        // Every window stored before the outcome, so a finished run's windows are complete.
        let (done, stored) = tokio::sync::oneshot::channel();
        if self.store.send(ToStore::Flush(done)).is_ok() {
            let _ = stored.await;
        }
        let (status, error) = outcome.status();
        let user_project = self.runs.finish(self.id, outcome, wall_s).await;
        self.runs.release(self.id).await;
        match user_project {
            Ok((user, project)) => {
                let end = End {
                    id: self.id,
                    user,
                    project,
                    status,
                    error: error.as_deref(),
                    windows: self.streamed,
                };
                publish_end(&self.runs, &end).await;
            }
            // Ended by the sweep meanwhile (its lease ran out): that end was published.
            Err(e) => tracing::error!(run = %self.id, error = %e, "run outcome not stored"),
        }
    }
}

/// A run's end, as its stream, its starter and `simulation:events:*` hear of it.
struct End<'a> {
    id: Uuid,
    user: Uuid,
    project: Option<Uuid>,
    status: &'static str,
    error: Option<&'a str>,
    windows: u64,
}

/// The end entry after the last window, the stream's expiry, the starter's notification
/// (stored once, by an id derived from the run) and the lifecycle event.
async fn publish_end(runs: &Runs, e: &End<'_>) {
    let key = runs.ns.simulation_stream(&e.id.to_string());
    let data = run_end_data(e.status, e.error, e.windows);
    let mut conn = runs.redis.clone();
    let mut pipe = redis::pipe();
    pipe.cmd("XADD")
        .arg(&key)
        .arg(entry_id(e.windows))
        .arg("type")
        .arg(format!("simulation.{}", e.status))
        .arg("data")
        .arg(data.to_string())
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(runs.limits.ttl_s.max(1))
        .ignore()
        .cmd("EXPIRE")
        .arg(runs.ns.simulation_owner(&e.id.to_string()))
        .arg(runs.limits.ttl_s.max(1))
        .ignore();
    let link = match e.project {
        Some(p) => format!("/projects/{p}/runs/{}", e.id),
        None => format!("/runs/{}", e.id),
    };
    let job = sdsim_protocols::events::NotificationJob {
        id: Uuid::new_v5(&e.id, b"run-ended").to_string(),
        user_id: e.user.to_string(),
        kind: format!("simulation.{}", e.status),
        title: match e.status {
            "completed" => "Your simulation run finished".into(),
            "stopped" => "Your simulation run was stopped".into(),
            _ => "Your simulation run failed".into(),
        },
        body: e.error.unwrap_or_default().to_string(),
        link,
        data: serde_json::json!({
            "simulation_id": e.id.to_string(),
            "project_id": e.project.map(|p| p.to_string()),
            "status": e.status,
        }),
    };
    if let Ok(payload) = serde_json::to_string(&job) {
        pipe.cmd("LPUSH")
            .arg(runs.ns.async_queue("notifications"))
            .arg(payload)
            .ignore();
    }
    let event = serde_json::json!({
        "simulation_id": e.id.to_string(),
        "user_id": e.user.to_string(),
        "project_id": e.project.map(|p| p.to_string()),
        "status": e.status,
        "error": e.error,
        "windows": e.windows,
    });
    pipe.cmd("PUBLISH")
        .arg(runs.ns.simulation_events(e.status))
        .arg(event.to_string())
        .ignore();
    if let Err(err) = pipe.query_async::<()>(&mut conn).await {
        tracing::warn!(run = %e.id, error = %err, "run end not streamed");
    }
}

/// The number of the last window run `id`'s stream holds (0: none, or no stream).
pub async fn last_window(runs: &Runs, id: Uuid) -> u64 {
    let key = runs.ns.simulation_stream(&id.to_string());
    let mut conn = runs.redis.clone();
    let last: redis::RedisResult<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
        .arg(&key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await;
    last.ok()
        .and_then(|r| r.ids.into_iter().next())
        .filter(|l| l.get::<String>("type").as_deref() == Some("simulation.window"))
        .and_then(|l| l.id.split('-').next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The end of a run that could not go on (taken over, and its design no longer runs):
/// after the last window its stream holds, as failed with `reason`. (If its end is there
/// already, Redis refuses the second one: ids only grow.)
pub async fn end_orphan(runs: &Runs, id: Uuid, user: Uuid, project: Option<Uuid>, reason: &str) {
    let windows = last_window(runs, id).await;
    let end = End {
        id,
        user,
        project,
        status: "failed",
        error: Some(reason),
        windows,
    };
    publish_end(runs, &end).await;
}
