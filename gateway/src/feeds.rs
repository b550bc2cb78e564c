//! Live runs to their watchers: one feed per watched run per gateway instance.
//!
//! A run's windows are the Redis Stream `simulation:stream:{id}` whose entry ids are
//! `{window number}-0` (window 1 is `1-0`), ending with one `simulation.completed|failed|
//! stopped` entry. A watcher's offset is the last entry it has: it gets exactly the entries
//! after it, in order, once each.
//!
//! - **Catching up** ([`Feeds::watch`]): a task of the watcher's own reads what it lacks,
//!   a page at a time and at the pace its socket drains: from the stream, and from the
//!   windows the simulation service stored (`GetSimulationWindows`) for whatever the stream
//!   no longer holds (trimmed, or expired after the run ended). When it reaches the end of
//!   the stream it hands the watcher, with its offset, to the run's feed.
//! - **Live** (the feed task): one dedicated Redis connection per watched run, one
//!   `XREAD BLOCK` loop from the last entry it fanned out, each entry serialized once and
//!   offered to every watcher whose offset is behind it. A joiner behind the feed gets the
//!   gap from `XRANGE` first; one ahead of it skips what it has. A watcher that falls too far
//!   behind (its [`crate::outlet::Backlog`]) is cut off with 4008; the others never wait for
//!   it (delivery is a non-blocking send to its session). After the end entry every watcher
//!   is closed (1000, once its frames are written) and the feed ends; it also ends when its
//!   last watcher leaves.
//!
//! Feeds run on the process's multi-threaded runtime, so the runs watched spread over every
//! core.

use crate::outlet::{Deliver, Disconnect, Offer, Outlet};
use crate::upstream::Upstreams;
use redis::streams::{StreamRangeReply, StreamReadReply};
use sdsim_protocols::frames::run_end_data;
use sdsim_protocols::names::Namespace;
use sdsim_protocols::proto::simulation as spb;
use sdsim_runtime::error::ServiceError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Entries read per XRANGE or XREAD.
const PAGE: usize = 256;
/// How long one XREAD blocks before the feed looks around.
const BLOCK_MS: u64 = 5_000;

/// One watcher of a run: its session, who it is, and the run's project (if saved).
#[derive(Clone)]
pub struct Watcher {
    pub id: Uuid,
    pub user_id: String,
    pub project_id: Option<String>,
    pub outlet: Outlet,
}

enum Cmd {
    Join { watcher: Watcher, offset: u64 },
    Leave(Uuid),
}

/// Every feed of this gateway instance; cheap to clone.
#[derive(Clone)]
pub struct Feeds {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    redis: redis::aio::ConnectionManager,
    ns: Namespace,
    upstream: Upstreams,
    runtime: tokio::runtime::Handle,
    feeds: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Cmd>>>,
    /// `sdsim_live_feeds`: the feeds (XREAD loops) running.
    open: prometheus::IntGauge,
    /// Every watcher and its run (to close them when the gateway drains, or when their
    /// access to the run's project ends).
    watchers: Mutex<HashMap<Uuid, (Uuid, Watcher)>>,
}

/// An entry of a run's stream, ready to send.
struct Entry {
    number: u64,
    frame: Arc<str>,
    last: bool,
}

/// The entry number of a stream id `N-0`.
fn number_of(id: &str) -> Option<u64> {
    id.split_once('-')
        .map_or(Some(id), |(ms, _)| Some(ms))
        .and_then(|ms| ms.parse().ok())
}

/// Past any offset a stream gives (a run has at most a few million windows); a `since` above
/// it is refused as malformed.
const MAX_OFFSET: u64 = 1 << 53;

/// A client's `since`: the last offset it has (`17-0`, or `17`; `0` or empty: none).
pub fn parse_since(since: &str) -> Result<u64, String> {
    let s = since.trim();
    if s.is_empty() {
        return Ok(0);
    }
    let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
    match (ms.parse::<u64>(), seq.parse::<u64>()) {
        (Ok(n), Ok(_)) if n <= MAX_OFFSET => Ok(n),
        _ => Err(format!(
            "since must be an offset this stream gave, like 17-0 (got {since:?})"
        )),
    }
}

/// The frame of one entry: `{"type","channel","offset","data"}`, `data` as stored (JSON).
fn frame(run: &Uuid, kind: &str, number: u64, data: &str) -> Arc<str> {
    let kind = serde_json::to_string(kind).unwrap_or_else(|_| "\"\"".into());
    format!(
        r#"{{"type":{kind},"channel":"simulation:stream:{run}","offset":"{number}-0","data":{data}}}"#
    )
    .into()
}

fn entry_of(run: &Uuid, id: &redis::streams::StreamId) -> Option<Entry> {
    let number = number_of(&id.id)?;
    let kind: String = id.get("type")?;
    let data: String = id.get("data")?;
    Some(Entry {
        number,
        last: kind != "simulation.window",
        frame: frame(run, &kind, number, &data),
    })
}

impl Feeds {
    /// `user` (None: anyone but the owner) lost project `project` (see [`crate::access`]):
    /// each of their watches of its runs is asked about again, and closed with 4004 if it may
    /// no longer see the run.
    pub fn lost_access(&self, project: &str, user: Option<&str>) {
        let affected: Vec<(Uuid, Watcher)> = self
            .inner
            .watchers
            .lock()
            .map(|w| {
                w.values()
                    .filter(|(_, w)| w.project_id.as_deref() == Some(project))
                    .filter(|(_, w)| user.is_none_or(|u| u == w.user_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for (run, w) in affected {
            let inner = self.inner.clone();
            self.inner
                .runtime
                .spawn(async move { inner.recheck(run, w).await });
        }
    }

    pub fn new(
        client: redis::Client,
        redis: redis::aio::ConnectionManager,
        ns: Namespace,
        upstream: Upstreams,
        runtime: tokio::runtime::Handle,
        open: prometheus::IntGauge,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                redis,
                ns,
                upstream,
                runtime,
                open,
                feeds: Mutex::new(HashMap::new()),
                watchers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts sending run `run` to `watcher` from after entry `since` (0: from the start).
    pub fn watch(&self, run: Uuid, since: u64, watcher: Watcher) {
        if let Ok(mut w) = self.inner.watchers.lock() {
            w.insert(watcher.id, (run, watcher.clone()));
        }
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let id = watcher.id;
            let outlet = watcher.outlet.clone();
            if let Err(e) = inner.catch_up(run, since, watcher).await {
                tracing::warn!(run = %run, watcher = %id, error = %e, "watcher not caught up");
                // Not left open and silent: the client reconnects with the `since` it has.
                outlet.disconnect.do_send(Disconnect {
                    code: 1011,
                    reason: "the run's windows could not be read; reconnect with since".into(),
                    drain: true,
                });
            }
        });
    }

    /// The watcher's session ended.
    pub fn leave(&self, run: Uuid, watcher: Uuid) {
        if let Ok(mut w) = self.inner.watchers.lock() {
            w.remove(&watcher);
        }
        if let Ok(f) = self.inner.feeds.lock() {
            if let Some(tx) = f.get(&run) {
                let _ = tx.send(Cmd::Leave(watcher));
            }
        }
    }

    /// Closes every watcher (the gateway is draining); answers how many.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let outlets: Vec<Outlet> = self
            .inner
            .watchers
            .lock()
            .map(|w| w.values().map(|(_, w)| w.outlet.clone()).collect())
            .unwrap_or_default();
        for o in &outlets {
            o.disconnect.do_send(Disconnect {
                code,
                reason: reason.to_string(),
                drain: false,
            });
        }
        outlets.len()
    }
}

/// What sending to one watcher came to.
enum Sent {
    Ok,
    /// Cut off (too slow) or gone.
    Gone,
}

/// Offers `e` to `w`, cutting it off with 4008 when it is too far behind.
fn offer(w: &Watcher, e: &Entry) -> Sent {
    if !w.outlet.deliver.connected() {
        return Sent::Gone;
    }
    match w.outlet.offer(&Deliver(e.frame.clone())) {
        Offer::Sent => Sent::Ok,
        Offer::Overflowed => {
            w.outlet.disconnect.do_send(Disconnect::too_slow());
            Sent::Gone
        }
        Offer::Refused => Sent::Gone,
    }
}

/// The watcher may not see `run` (any more): 4004, as for an unknown run.
fn lost(w: &Watcher, run: Uuid) {
    w.outlet.disconnect.do_send(Disconnect {
        code: sdsim_protocols::frames::close_codes::NOT_FOUND,
        reason: format!("no simulation {run}"),
        drain: false,
    });
}

/// The run is over for this watcher: close once what it was sent is written.
fn finished(w: &Watcher) {
    w.outlet.disconnect.do_send(Disconnect {
        code: 1000,
        reason: "the run ended".into(),
        drain: true,
    });
}

impl Inner {
    /// Closes `w` with 4004 if it may no longer view `run`.
    async fn recheck(&self, run: Uuid, w: Watcher) {
        let up = &self.upstream;
        let call = spb::GetSimulationStatusRequest {
            simulation_id: run.to_string(),
            user_id: w.user_id.clone(),
        };
        match crate::rpc!(
            up,
            simulation,
            "GetSimulationStatus",
            get_simulation_status,
            call
        )
        .await
        {
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => lost(&w, run),
            Ok(_) => {}
            Err(e) => tracing::warn!(run = %run, error = %e, "watcher's access not rechecked"),
        }
    }

    fn key(&self, run: &Uuid) -> String {
        self.ns.simulation_stream(&run.to_string())
    }

    /// Up to [`PAGE`] entries of the stream from entry `from` on.
    async fn range(&self, run: &Uuid, from: u64, to: Option<u64>) -> Result<Vec<Entry>, String> {
        let mut conn = self.redis.clone();
        let end = to.map_or("+".to_string(), |t| format!("{t}-0"));
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.key(run))
            .arg(format!("{from}-0"))
            .arg(end)
            .arg("COUNT")
            .arg(PAGE)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("XRANGE: {e}"))?;
        Ok(reply.ids.iter().filter_map(|i| entry_of(run, i)).collect())
    }

    /// The number of the stream's newest entry (0: none yet).
    async fn top(&self, run: &Uuid) -> Result<u64, String> {
        let mut conn = self.redis.clone();
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key(run))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("XREVRANGE: {e}"))?;
        Ok(reply
            .ids
            .first()
            .and_then(|i| number_of(&i.id))
            .unwrap_or(0))
    }

    /// Stored windows of the run from window number `from` (1-based) on.
    async fn stored(
        &self,
        run: &Uuid,
        user: &str,
        from: u64,
    ) -> Result<spb::GetSimulationWindowsResponse, ServiceError> {
        let up = &self.upstream;
        let call = spb::GetSimulationWindowsRequest {
            simulation_id: run.to_string(),
            user_id: user.to_string(),
            from_index: from.saturating_sub(1),
            limit: PAGE as u32,
        };
        crate::rpc!(
            up,
            simulation,
            "GetSimulationWindows",
            get_simulation_windows,
            call
        )
        .await
    }

    /// Waits while the watcher's socket has half its allowance or more waiting.
    async fn room(w: &Watcher) {
        let (max_bytes, max_frames) = w.outlet.backlog.limits();
        loop {
            let (bytes, frames) = w.outlet.backlog.pending();
            if (bytes < max_bytes / 2 && frames < max_frames / 2)
                || w.outlet.backlog.overflowed()
                || !w.outlet.deliver.connected()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends the watcher what it lacks, then hands it to the live feed.
    async fn catch_up(self: Arc<Self>, run: Uuid, since: u64, w: Watcher) -> Result<(), String> {
        let mut offset = since;
        loop {
            let page = self.range(&run, offset + 1, None).await?;
            let first = page.first().map(|e| e.number);
            if first == Some(offset + 1) {
                for e in page {
                    Self::room(&w).await;
                    if let Sent::Gone = offer(&w, &e) {
                        return Ok(());
                    }
                    offset = e.number;
                    if e.last {
                        finished(&w);
                        return Ok(());
                    }
                }
                continue;
            }
            // The stream does not hold the next entry: from the stored windows, up to what
            // the stream holds (or all of them).
            let stored = match self.stored(&run, &w.user_id, offset + 1).await {
                Ok(stored) => stored,
                // Its access ended meanwhile (unshared, made private): as the recheck says.
                Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => {
                    lost(&w, run);
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            };
            let mut took = false;
            for win in stored.windows {
                let number = win.index + 1;
                if first.is_some_and(|f| number >= f) || number != offset + 1 {
                    break;
                }
                let e = Entry {
                    number,
                    frame: frame(&run, "simulation.window", number, &win.window_json),
                    last: false,
                };
                Self::room(&w).await;
                if let Sent::Gone = offer(&w, &e) {
                    return Ok(());
                }
                offset = number;
                took = true;
            }
            if took {
                continue;
            }
            if first.is_some() {
                return Err(format!(
                    "entries {}..{} are neither streamed nor stored",
                    offset + 1,
                    first.unwrap_or_default()
                ));
            }
            if matches!(stored.status.as_str(), "completed" | "failed" | "stopped")
                && offset >= stored.stored_windows
            {
                // Over, and its stream gone: the end, rebuilt from the stored run.
                let error = (!stored.error.is_empty()).then_some(stored.error.as_str());
                let data = run_end_data(&stored.status, error, stored.stored_windows);
                let kind = format!("simulation.{}", stored.status);
                let e = Entry {
                    number: stored.stored_windows + 1,
                    frame: frame(&run, &kind, stored.stored_windows + 1, &data.to_string()),
                    last: true,
                };
                if let Sent::Ok = offer(&w, &e) {
                    finished(&w);
                }
                return Ok(());
            }
            // Live, and caught up: the feed takes over, from an offset the stream has given.
            // A `since` past the stream's newest entry would have the run's feed on this
            // gateway wait for entries that are not there yet, and every other watcher with it.
            let top = self.top(&run).await?;
            if offset > top.max(stored.stored_windows) {
                w.outlet.disconnect.do_send(Disconnect {
                    code: 1008,
                    reason: format!("since {offset}-0 is past the run's last offset {top}-0"),
                    drain: false,
                });
                return Ok(());
            }
            self.join(run, w, offset);
            return Ok(());
        }
    }

    /// Hands the watcher to the run's feed, starting the feed if there is none.
    fn join(self: &Arc<Self>, run: Uuid, watcher: Watcher, offset: u64) {
        let Ok(mut feeds) = self.feeds.lock() else {
            return;
        };
        let cmd = Cmd::Join { watcher, offset };
        let cmd = match feeds.get(&run) {
            Some(tx) => match tx.send(cmd) {
                Ok(()) => return,
                Err(mpsc::error::SendError(cmd)) => cmd,
            },
            None => cmd,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(cmd);
        feeds.insert(run, tx);
        self.runtime.spawn(self.clone().feed(run, rx));
    }

    /// The live loop of one run (see the module's documentation).
    async fn feed(self: Arc<Self>, run: Uuid, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        struct Open(prometheus::IntGauge);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        self.open.inc();
        let _open = Open(self.open.clone());
        let key = self.key(&run);
        let mut watchers: Vec<(Watcher, u64)> = Vec::new();
        let mut last: Option<u64> = None;
        let mut conn = None;
        loop {
            if watchers.is_empty() && last.is_some() {
                // Nobody left: end, unless a join is on its way (joins are sent under the lock).
                let Ok(mut feeds) = self.feeds.lock() else {
                    return;
                };
                if rx.is_empty() {
                    feeds.remove(&run);
                    return;
                }
            }
            let from = last;
            let read = async {
                let Some(from) = from else {
                    return std::future::pending().await;
                };
                if conn.is_none() {
                    // A blocking read answers after up to BLOCK_MS: the client's default
                    // response timeout (500 ms) would cut every quiet read short.
                    let config = redis::AsyncConnectionConfig::new()
                        .set_response_timeout(Some(Duration::from_millis(BLOCK_MS + 5_000)));
                    conn = Some(
                        self.client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await
                            .map_err(|e| format!("connect: {e}"))?,
                    );
                }
                let c = conn.as_mut().ok_or("no connection")?;
                let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(PAGE)
                    .arg("BLOCK")
                    .arg(BLOCK_MS)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(format!("{from}-0"))
                    .query_async(c)
                    .await
                    .map_err(|e| format!("XREAD: {e}"))?;
                Ok::<_, String>(reply)
            };
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Join { watcher, offset }) => {
                        let mut at = offset;
                        match last {
                            None => last = Some(offset),
                            Some(l) if offset < l => {
                                // Behind the feed: the gap first, from the stream.
                                while at < l {
                                    let Ok(page) = self.range(&run, at + 1, Some(l)).await else {
                                        break;
                                    };
                                    if page.is_empty() {
                                        break;
                                    }
                                    for e in &page {
                                        if let Sent::Gone = offer(&watcher, e) {
                                            break;
                                        }
                                        at = e.number;
                                    }
                                }
                            }
                            Some(_) => {}
                        }
                        watchers.push((watcher, at));
                    }
                    Some(Cmd::Leave(id)) => watchers.retain(|(w, _)| w.id != id),
                    None => return,
                },
                res = read => match res {
                    Ok(Some(reply)) => {
                        let entries: Vec<Entry> = reply
                            .keys
                            .iter()
                            .flat_map(|k| k.ids.iter())
                            .filter_map(|i| entry_of(&run, i))
                            .collect();
                        let mut ended = false;
                        for e in &entries {
                            watchers.retain_mut(|(w, at)| {
                                if *at >= e.number {
                                    return true;
                                }
                                *at = e.number;
                                matches!(offer(w, e), Sent::Ok)
                            });
                            last = Some(e.number);
                            ended |= e.last;
                        }
                        if ended {
                            for (w, _) in &watchers {
                                finished(w);
                            }
                            if let Ok(mut feeds) = self.feeds.lock() {
                                feeds.remove(&run);
                            }
                            // Joins already sent find the stream's end in their catch-up.
                            while let Ok(cmd) = rx.try_recv() {
                                if let Cmd::Join { watcher, offset } = cmd {
                                    let inner = self.clone();
                                    self.runtime.spawn(async move {
                                        let _ = inner.catch_up(run, offset, watcher).await;
                                    });
                                }
                            }
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(run = %run, error = %e, "live feed read failed; retrying");
                        conn = None;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_as_entry_numbers() {
        assert_eq!(parse_since(""), Ok(0));
        assert_eq!(parse_since("0"), Ok(0));
        assert_eq!(parse_since("17-0"), Ok(17));
        assert_eq!(parse_since("17"), Ok(17));
        assert!(parse_since("abc").is_err());
        assert!(parse_since("1-x").is_err());
        assert_eq!(parse_since(&format!("{MAX_OFFSET}-0")), Ok(MAX_OFFSET));
        assert!(parse_since(&(MAX_OFFSET + 1).to_string()).is_err());
        assert!(parse_since(&u64::MAX.to_string()).is_err());
        assert_eq!(number_of("42-0"), Some(42));
    }

    #[test]
    fn a_frame_carries_the_data_as_json() {
        let run = Uuid::nil();
        let f = frame(&run, "simulation.window", 3, r#"{"index":2}"#);
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["type"], "simulation.window");
        assert_eq!(v["offset"], "3-0");
        assert_eq!(v["channel"], format!("simulation:stream:{run}"));
        assert_eq!(v["data"]["index"], 2);
    }
}
