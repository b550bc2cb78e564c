//! Live collaboration to its members: one feed per edited project per gateway instance
//! (docs/collaboration.md).
//!
//! The project service commits each edit with the project's next `seq` and XADDs it to
//! `collaboration:stream:{project_id}` (entry fields `kind`=`edit`, `seq`, `data`); this
//! gateway adds presence entries (`kind`=`presence`|`left`, `session`, `data`) to the same
//! stream. A feed is one task with one `XREAD BLOCK` loop over the stream; it sends each
//! member every edit after the last one it has, in `seq` order, once:
//! - a member joins with the document as of edit `S` (`JoinCollaboration`); the feed was
//!   started (its stream position taken) before that call, so it reads every edit after
//!   `S`; a feed already past `S` sends the joiner the edits in between from PostgreSQL
//!   (`GetEdits`);
//! - an edit whose `seq` is more than one past the feed's last (the project process died
//!   between its commit and its XADD, or two project instances XADDed out of order) makes
//!   the feed fetch the missing ones from PostgreSQL first; an edit already sent is dropped.
//!
//! Presence: a hash `collaboration:presence:{project_id}` (session -> presence, with when it
//! was last refreshed) says who is there to people joining; presence entries in the stream
//! tell those already there. Each feed drops (and announces as left) the presences nobody
//! refreshed for [`PRESENCE_TTL`] (a gateway killed without a word).

use crate::outlet::{Deliver, Disconnect, Offer, Outlet};
use crate::upstream::Upstreams;
use redis::streams::{StreamId, StreamReadReply};
use sdsim_protocols::limits::{COLLABORATION_TTL_SECS, MAX_DESIGN_BYTES, MAX_LAYOUT_BYTES};
use sdsim_protocols::names::Namespace;
use sdsim_protocols::proto::project as ppb;
use sdsim_runtime::error::ServiceError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Entries read per XREAD.
const PAGE: usize = 256;
/// How long one XREAD blocks before the feed looks around.
const BLOCK_MS: u64 = 5_000;
/// A presence nobody refreshed for this long is gone.
pub const PRESENCE_TTL: Duration = Duration::from_secs(60);
/// How often a session refreshes its presence and its session with the project service.
pub const REFRESH: Duration = Duration::from_secs(20);
/// Entries a collaboration stream keeps (about).
const STREAM_MAXLEN: usize = 1_000;
/// Most bytes of edits replayed to one client: past it the whole document is smaller.
const REPLAY_BYTES: usize = MAX_DESIGN_BYTES + MAX_LAYOUT_BYTES;

/// One member of a project's live session on this gateway.
#[derive(Clone)]
pub struct Member {
    /// The WebSocket session's id.
    pub id: Uuid,
    pub user_id: String,
    /// The collaboration session (the project service's).
    pub session: String,
    pub outlet: Outlet,
}

enum Cmd {
    Attach { member: Member, after: i64 },
    Leave(Uuid),
}

/// Every collaboration feed of this gateway instance; cheap to clone.
#[derive(Clone)]
pub struct Collab {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    redis: redis::aio::ConnectionManager,
    ns: Namespace,
    upstream: Upstreams,
    runtime: tokio::runtime::Handle,
    feeds: Mutex<HashMap<Uuid, mpsc::UnboundedSender<Cmd>>>,
    /// Every member and its project (to close them when their access ends).
    members: Mutex<HashMap<Uuid, (Uuid, Member)>>,
}

/// What a person joining gets: the frames to send first, and where they are.
pub struct Joined {
    /// This person as the others see them (named from their profile).
    pub me: Presence,
    pub frames: Vec<Arc<str>>,
    pub role: String,
    pub session: String,
    pub seq: i64,
}

/// Someone as the others see them.
#[derive(Clone, Debug)]
pub struct Presence {
    pub session: String,
    pub user_id: String,
    pub name: String,
    pub colour: String,
}

/// A colour for a person, the same on every screen.
pub fn colour_of(user_id: &str) -> String {
    const PALETTE: [&str; 12] = [
        "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
        "#469990", "#800000", "#808000", "#000075",
    ];
    let h = user_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[(h as usize) % PALETTE.len()].to_string()
}

fn channel(project: &Uuid) -> String {
    format!("collaboration:stream:{project}")
}

/// A frame `{"type","channel","offset"?,"data"}` with `data` given as JSON text.
fn frame(project: &Uuid, kind: &str, offset: Option<i64>, data: &str) -> Arc<str> {
    let offset = offset.map_or(String::new(), |o| format!(r#","offset":"{o}""#));
    format!(
        r#"{{"type":"{kind}","channel":"{}"{offset},"data":{data}}}"#,
        channel(project)
    )
    .into()
}

/// One entry of the stream.
enum Entry {
    Edit { seq: i64, frame: Arc<str> },
    Presence { session: String, frame: Arc<str> },
}

fn entry_of(project: &Uuid, id: &StreamId) -> Option<Entry> {
    let kind: String = id.get("kind")?;
    let data: String = id.get("data")?;
    match kind.as_str() {
        "edit" => {
            let seq: i64 = id.get("seq")?;
            Some(Entry::Edit {
                seq,
                frame: frame(project, "collaboration.edit", Some(seq), &data),
            })
        }
        "presence" | "left" => Some(Entry::Presence {
            session: id.get("session")?,
            frame: frame(project, &format!("collaboration.{kind}"), None, &data),
        }),
        _ => None,
    }
}

fn edit_frame(project: &Uuid, e: &ppb::Edit) -> Arc<str> {
    let data = json!({
        "user_id": e.user_id,
        "client_id": e.client_id,
        "edit_id": e.edit_id,
        "ops": serde_json::from_str::<Value>(&e.ops_json).unwrap_or(Value::Null),
    });
    frame(
        project,
        "collaboration.edit",
        Some(e.seq),
        &data.to_string(),
    )
}

/// Offers `frame` to `m`; false when it is gone (or was cut off as too slow).
fn offer(m: &Member, frame: &Arc<str>) -> bool {
    if !m.outlet.deliver.connected() {
        return false;
    }
    match m.outlet.offer(&Deliver(frame.clone())) {
        Offer::Sent => true,
        Offer::Overflowed => {
            m.outlet.disconnect.do_send(Disconnect::too_slow());
            false
        }
        Offer::Refused => false,
    }
}

/// `m` may not see `project` (any more): 4004, as for an unknown project.
fn lost(m: &Member, project: impl std::fmt::Display) {
    m.outlet.disconnect.do_send(Disconnect {
        code: sdsim_protocols::frames::close_codes::NOT_FOUND,
        reason: format!("no project {project}"),
        drain: false,
    });
}

/// Closes `m` with 1013 once what it was sent is written: it missed edits that cannot be
/// fetched now, and syncs the whole document when it reconnects.
fn resync(m: &Member) {
    m.outlet.disconnect.do_send(Disconnect {
        code: 1013,
        reason: "edits were missed; reconnect to sync the document".into(),
        drain: true,
    });
}

impl Collab {
    pub fn new(
        client: redis::Client,
        redis: redis::aio::ConnectionManager,
        ns: Namespace,
        upstream: Upstreams,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                redis,
                ns,
                upstream,
                runtime,
                feeds: Mutex::new(HashMap::new()),
                members: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Joins `user` to project `project`'s live session: the frames to send first (the
    /// document, or the edits after `since` when they are all kept), with `me` among the
    /// peers. Not visible (or unknown): NotFound.
    pub async fn join(
        &self,
        project: Uuid,
        user: &str,
        is_admin: bool,
        gateway_instance: &str,
        since: Option<i64>,
        mut me: Presence,
    ) -> Result<Joined, ServiceError> {
        let inner = &self.inner;
        // The feed's position first, so that it reads every edit after the document.
        inner.clone().ensure_feed(project).await;
        let up = &inner.upstream;
        let call = ppb::JoinCollaborationRequest {
            project_id: project.to_string(),
            user_id: user.to_string(),
            gateway_instance: gateway_instance.to_string(),
            is_admin,
        };
        let j = crate::rpc!(up, project, "JoinCollaboration", join_collaboration, call).await?;
        let seq: i64 = j.last_offset.parse().unwrap_or(0);
        // Shown by name where the profile has one (else by e-mail address).
        let call = sdsim_protocols::proto::auth::GetProfileRequest {
            user_id: user.to_string(),
        };
        if let Ok(p) = crate::rpc!(up, auth, "GetProfile", get_profile, call).await {
            let name = format!("{} {}", p.first_name.trim(), p.last_name.trim());
            if !name.trim().is_empty() {
                me.name = name.trim().to_string();
            }
        }
        let peers = inner.peers(project, &me).await;
        let mut frames = Vec::new();
        let resumed = match since {
            // The edits since `since` when all are there; else (dropped once saved, or too
            // many to fetch) the whole document.
            Some(s) if s <= seq => match inner.edits(project, user, s, seq).await {
                Ok((edits, true)) => Some(edits),
                Ok((_, false)) => None,
                Err(e) => {
                    tracing::warn!(%project, error = %e, "edits since the client's offset not fetched; sending the document");
                    None
                }
            },
            _ => None,
        };
        let you = presence_json(&me, &Value::Null, &Value::Null);
        let mut data = json!({
            "version": j.version,
            "role": j.role,
            "you": you,
            "peers": peers,
        });
        match resumed {
            Some(edits) => {
                data["resumed"] = json!(true);
                frames.push(frame(
                    &project,
                    "collaboration.sync",
                    Some(seq),
                    &data.to_string(),
                ));
                frames.extend(edits.iter().map(|e| edit_frame(&project, e)));
            }
            None => {
                data["resumed"] = json!(false);
                data["design"] = serde_json::from_str(&j.design_json).unwrap_or(json!({}));
                data["layout"] = serde_json::from_str(&j.layout_json).unwrap_or(json!({}));
                frames.push(frame(
                    &project,
                    "collaboration.sync",
                    Some(seq),
                    &data.to_string(),
                ));
            }
        }
        Ok(Joined {
            me,
            frames,
            role: j.role,
            session: j.collaboration_session_id,
            seq,
        })
    }

    /// Hands `member` (who has every edit up to `after`) to the project's feed.
    pub fn attach(&self, project: Uuid, member: Member, after: i64) {
        if let Ok(mut m) = self.inner.members.lock() {
            m.insert(member.id, (project, member.clone()));
        }
        let inner = self.inner.clone();
        let Ok(mut feeds) = inner.feeds.lock() else {
            return;
        };
        let cmd = Cmd::Attach { member, after };
        let cmd = match feeds.get(&project) {
            Some(tx) => match tx.send(cmd) {
                Ok(()) => return,
                Err(mpsc::error::SendError(cmd)) => cmd,
            },
            None => cmd,
        };
        // The feed ended meanwhile: a new one reads the stream from its start (the
        // edits it already sent are dropped by seq).
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(cmd);
        feeds.insert(project, tx);
        self.inner
            .runtime
            .spawn(self.inner.clone().feed(project, "0-0".into(), rx));
    }

    /// The member's socket closed.
    pub fn leave(&self, project: Uuid, member: Uuid) {
        if let Ok(mut m) = self.inner.members.lock() {
            m.remove(&member);
        }
        if let Ok(f) = self.inner.feeds.lock() {
            if let Some(tx) = f.get(&project) {
                let _ = tx.send(Cmd::Leave(member));
            }
        }
    }

    /// The members of `project` on this gateway (of `user` only, if given).
    pub fn members_of(&self, project: &str, user: Option<&str>) -> Vec<(Uuid, Member)> {
        self.inner
            .members
            .lock()
            .map(|m| {
                m.values()
                    .filter(|(p, _)| p.to_string() == project)
                    .filter(|(_, m)| user.is_none_or(|u| u == m.user_id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes every member (the gateway is draining); answers how many.
    pub fn close_all(&self, code: u16, reason: &str) -> usize {
        let outlets: Vec<Outlet> = self
            .inner
            .members
            .lock()
            .map(|m| m.values().map(|(_, m)| m.outlet.clone()).collect())
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

    /// Publishes `me`'s presence (joined, or moved): in the hash for people joining, and
    /// in the stream for those there.
    pub fn publish_presence(&self, project: Uuid, me: &Presence, selection: Value, pointer: Value) {
        let inner = self.inner.clone();
        let data = presence_json(me, &selection, &pointer);
        let session = me.session.clone();
        self.inner.runtime.spawn(async move {
            let mut stored = data.clone();
            stored["seen_ms"] = json!(now_ms());
            let mut conn = inner.redis.clone();
            let res: redis::RedisResult<()> = redis::pipe()
                .cmd("HSET")
                .arg(inner.presence_key(&project))
                .arg(&session)
                .arg(stored.to_string())
                .ignore()
                .cmd("XADD")
                .arg(inner.ns.collaboration_stream(&project.to_string()))
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAXLEN)
                .arg("*")
                .arg("kind")
                .arg("presence")
                .arg("session")
                .arg(&session)
                .arg("data")
                .arg(data.to_string())
                .ignore()
                .cmd("EXPIRE")
                .arg(inner.ns.collaboration_stream(&project.to_string()))
                .arg(COLLABORATION_TTL_SECS)
                .ignore()
                .cmd("EXPIRE")
                .arg(inner.presence_key(&project))
                .arg(COLLABORATION_TTL_SECS)
                .ignore()
                .query_async(&mut conn)
                .await;
            if let Err(e) = res {
                tracing::debug!(%project, error = %e, "presence not published");
            }
        });
    }

    /// Refreshes `session`'s presence (its socket is alive) without telling anyone.
    pub fn refresh_presence(&self, project: Uuid, session: String) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            let key = inner.presence_key(&project);
            let mut conn = inner.redis.clone();
            let current: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg(&session)
                .query_async(&mut conn)
                .await
                .ok()
                .flatten();
            if let Some(mut v) = current.and_then(|c| serde_json::from_str::<Value>(&c).ok()) {
                v["seen_ms"] = json!(now_ms());
                let _: redis::RedisResult<()> = redis::cmd("HSET")
                    .arg(&key)
                    .arg(&session)
                    .arg(v.to_string())
                    .query_async(&mut conn)
                    .await;
            }
        });
    }

    /// `session` left: out of the hash, and announced.
    pub fn publish_left(&self, project: Uuid, session: String, user_id: String) {
        let inner = self.inner.clone();
        self.inner
            .runtime
            .spawn(async move { inner.left(project, &session, &user_id).await });
    }

    /// `user` (None: anyone but the owner) lost project `project` (see [`crate::access`]):
    /// each of their sockets on it is asked about again, and closed with 4004 if they may no
    /// longer see it.
    pub fn lost_access(&self, project: &str, user: Option<&str>) {
        for (_, m) in self.members_of(project, user) {
            let inner = self.inner.clone();
            let project = project.to_string();
            self.inner
                .runtime
                .spawn(async move { inner.recheck(&project, m).await });
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn presence_json(me: &Presence, selection: &Value, pointer: &Value) -> Value {
    json!({
        "session": me.session,
        "user_id": me.user_id,
        "name": me.name,
        "colour": me.colour,
        "selection": selection,
        "pointer": pointer,
    })
}

impl Inner {
    fn presence_key(&self, project: &Uuid) -> String {
        self.ns.collaboration_presence(&project.to_string())
    }

    /// The presences in the hash refreshed lately, but `me`'s.
    async fn peers(&self, project: Uuid, me: &Presence) -> Vec<Value> {
        let mut conn = self.redis.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.presence_key(&project))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let fresh = now_ms() - PRESENCE_TTL.as_millis() as i64;
        let mut peers: Vec<Value> = all
            .into_iter()
            .filter(|(s, _)| *s != me.session)
            .filter_map(|(_, v)| serde_json::from_str::<Value>(&v).ok())
            .filter(|v| v["seen_ms"].as_i64().is_some_and(|t| t >= fresh))
            .map(|mut v| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("seen_ms");
                }
                v
            })
            .collect();
        peers.sort_by(|a, b| a["session"].as_str().cmp(&b["session"].as_str()));
        peers
    }

    async fn left(&self, project: Uuid, session: &str, user_id: &str) {
        let mut conn = self.redis.clone();
        let removed: i64 = redis::cmd("HDEL")
            .arg(self.presence_key(&project))
            .arg(session)
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
        if removed == 0 {
            return;
        }
        let data = json!({"session": session, "user_id": user_id}).to_string();
        let key = self.ns.collaboration_stream(&project.to_string());
        let res: redis::RedisResult<()> = redis::pipe()
            .cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAXLEN)
            .arg("*")
            .arg("kind")
            .arg("left")
            .arg("session")
            .arg(session)
            .arg("data")
            .arg(data)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(COLLABORATION_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::debug!(%project, error = %e, "leave not announced");
        }
    }

    /// Drops the presences of `project` nobody refreshed lately, announcing each as left.
    async fn sweep_presence(&self, project: Uuid) {
        let mut conn = self.redis.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.presence_key(&project))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let stale = now_ms() - PRESENCE_TTL.as_millis() as i64;
        for (session, v) in all {
            let Ok(v) = serde_json::from_str::<Value>(&v) else {
                continue;
            };
            if v["seen_ms"].as_i64().is_none_or(|t| t < stale) {
                let user = v["user_id"].as_str().unwrap_or_default().to_string();
                self.left(project, &session, &user).await;
            }
        }
    }

    /// The committed edits of `project` in (`after`, `upto`], and whether all are kept
    /// (false too past `REPLAY_BYTES` of them: the whole document is then the smaller
    /// answer, and the caller sends it instead).
    async fn edits(
        &self,
        project: Uuid,
        user: &str,
        after: i64,
        upto: i64,
    ) -> Result<(Vec<ppb::Edit>, bool), ServiceError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut from = after;
        loop {
            let up = &self.upstream;
            let call = ppb::GetEditsRequest {
                caller: Some(ppb::Caller {
                    user_id: user.to_string(),
                    is_admin: false,
                }),
                project_id: project.to_string(),
                after: from,
                upto,
            };
            let r = crate::rpc!(up, project, "GetEdits", get_edits, call).await?;
            if !r.complete {
                return Ok((out, false));
            }
            let Some(last) = r.edits.last().map(|e| e.seq) else {
                return Ok((out, from >= upto));
            };
            from = last;
            bytes += r.edits.iter().map(|e| e.ops_json.len()).sum::<usize>();
            if bytes > REPLAY_BYTES {
                return Ok((Vec::new(), false));
            }
            out.extend(r.edits);
            if upto > 0 && from >= upto {
                return Ok((out, true));
            }
        }
    }

    /// Starts the project's feed if there is none, at the stream's current end.
    async fn ensure_feed(self: Arc<Self>, project: Uuid) {
        if self.feeds.lock().is_ok_and(|f| f.contains_key(&project)) {
            return;
        }
        let mut conn = self.redis.clone();
        let top: Option<redis::streams::StreamRangeReply> = redis::cmd("XREVRANGE")
            .arg(self.ns.collaboration_stream(&project.to_string()))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .ok();
        let start = top
            .and_then(|r| r.ids.first().map(|i| i.id.clone()))
            .unwrap_or_else(|| "0-0".into());
        let Ok(mut feeds) = self.feeds.lock() else {
            return;
        };
        if feeds.contains_key(&project) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        feeds.insert(project, tx);
        self.runtime.spawn(self.clone().feed(project, start, rx));
    }

    /// Closes `m` with 4004 if they may no longer see `project`.
    async fn recheck(&self, project: &str, m: Member) {
        let up = &self.upstream;
        let call = ppb::GetProjectRequest {
            user_id: m.user_id.clone(),
            project_id: project.to_string(),
            ..Default::default()
        };
        match crate::rpc!(up, project, "GetProject", get_project, call).await {
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => lost(&m, project),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%project, error = %e, "collaborator's access not rechecked")
            }
        }
    }

    /// Sends `m` the edits in (`after`, `upto`] from PostgreSQL; false when it is gone.
    async fn fill(&self, project: Uuid, m: &Member, after: i64, upto: i64) -> bool {
        match self.edits(project, &m.user_id, after, upto).await {
            Ok((edits, true)) => edits.iter().all(|e| offer(m, &edit_frame(&project, e))),
            // Its access ended meanwhile: the recheck says so too.
            Err(ServiceError::NotFound(_) | ServiceError::Forbidden(_)) => {
                lost(m, project);
                false
            }
            other => {
                if let Err(e) = other {
                    tracing::warn!(%project, error = %e, "edits not fetched for a member");
                }
                resync(m);
                false
            }
        }
    }

    /// The live loop of one project (see the module's documentation).
    async fn feed(
        self: Arc<Self>,
        project: Uuid,
        start: String,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
    ) {
        let key = self.ns.collaboration_stream(&project.to_string());
        let mut members: Vec<(Member, i64)> = Vec::new();
        // The last edit sent (None until the first member attaches).
        let mut last: Option<i64> = None;
        let mut position = start;
        let mut conn = None;
        let mut sweep = tokio::time::interval(REFRESH);
        let mut unattached_ticks = 0u32;
        loop {
            if members.is_empty() && last.is_some() {
                let Ok(mut feeds) = self.feeds.lock() else {
                    return;
                };
                if rx.is_empty() {
                    feeds.remove(&project);
                    return;
                }
            }
            let reading = last.is_some();
            let from = position.clone();
            let read = async {
                if !reading {
                    return std::future::pending().await;
                }
                if conn.is_none() {
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
                    .arg(&from)
                    .query_async(c)
                    .await
                    .map_err(|e| format!("XREAD: {e}"))?;
                Ok::<_, String>(reply)
            };
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Attach { member, after }) => {
                        let mut at = after;
                        match last {
                            None => last = Some(after),
                            Some(l) if after < l => {
                                if !self.fill(project, &member, after, l).await {
                                    continue;
                                }
                                at = l;
                            }
                            Some(_) => {}
                        }
                        members.push((member, at));
                    }
                    Some(Cmd::Leave(id)) => members.retain(|(m, _)| m.id != id),
                    None => return,
                },
                _ = sweep.tick() => {
                    if reading {
                        self.sweep_presence(project).await;
                    } else {
                        // Started for a join that was then refused (no such project, no
                        // access): nobody attached for a whole interval (the first tick is
                        // at once), so end. A later attach starts a feed again.
                        unattached_ticks += 1;
                        if unattached_ticks > 1 && members.is_empty() {
                            let Ok(mut feeds) = self.feeds.lock() else {
                                return;
                            };
                            if rx.is_empty() {
                                feeds.remove(&project);
                                return;
                            }
                        }
                    }
                }
                res = read => match res {
                    Ok(Some(reply)) => {
                        let ids: Vec<&StreamId> =
                            reply.keys.iter().flat_map(|k| k.ids.iter()).collect();
                        for id in ids {
                            position = id.id.clone();
                            match entry_of(&project, id) {
                                Some(Entry::Edit { seq, frame }) => {
                                    let l = last.unwrap_or(0);
                                    if seq <= l {
                                        continue;
                                    }
                                    if seq > l + 1 {
                                        // A gap: the missing edits from PostgreSQL first. If
                                        // they cannot all be had, the members are closed with
                                        // 1013 and sync the whole document when they come
                                        // back, rather than go on without some edits.
                                        if let Some((m, _)) = members.first() {
                                            let m = m.clone();
                                            match self.edits(project, &m.user_id, l, seq - 1).await
                                            {
                                                Ok((edits, true)) => {
                                                    for e in &edits {
                                                        let f = edit_frame(&project, e);
                                                        members.retain_mut(|(m, at)| {
                                                            if *at >= e.seq {
                                                                return true;
                                                            }
                                                            *at = e.seq;
                                                            offer(m, &f)
                                                        });
                                                    }
                                                }
                                                other => {
                                                    // Fetched as the first member: one who
                                                    // lost access is closed with 4004.
                                                    let gone = matches!(
                                                        other,
                                                        Err(ServiceError::NotFound(_)
                                                            | ServiceError::Forbidden(_))
                                                    );
                                                    if let (Err(e), false) = (&other, gone) {
                                                        tracing::warn!(%project, error = %e, "a gap of edits not fetched; members resync");
                                                    }
                                                    for (i, (m, _)) in
                                                        members.drain(..).enumerate()
                                                    {
                                                        if i == 0 && gone {
                                                            lost(&m, project);
                                                        } else {
                                                            resync(&m);
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    members.retain_mut(|(m, at)| {
                                        if *at >= seq {
                                            return true;
                                        }
                                        *at = seq;
                                        offer(m, &frame)
                                    });
                                    last = Some(seq);
                                }
                                Some(Entry::Presence { session, frame }) => {
                                    members.retain(|(m, _)| m.session == session || offer(m, &frame));
                                }
                                None => {}
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%project, error = %e, "collaboration feed read failed; retrying");
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
    fn frames_carry_channel_offset_and_data() {
        let p = Uuid::nil();
        let f = frame(&p, "collaboration.edit", Some(7), r#"{"ops":[]}"#);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["type"], "collaboration.edit");
        assert_eq!(v["offset"], "7");
        assert_eq!(v["channel"], format!("collaboration:stream:{p}"));
        assert_eq!(v["data"]["ops"], json!([]));
        let f = frame(&p, "collaboration.left", None, r#"{"session":"s"}"#);
        let v: Value = serde_json::from_str(&f).unwrap();
        assert!(v.get("offset").is_none());
    }

    #[test]
    fn a_person_has_one_colour() {
        assert_eq!(colour_of("a"), colour_of("a"));
        assert!(colour_of("b").starts_with('#'));
    }
}
