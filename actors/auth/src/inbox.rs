//! The notification inbox. Services queue [`NotificationJob`]s on
//! `async:notifications:queue`; the [`InboxWorker`] (a child of the auth tree) stores each in
//! the person's inbox, at most once by its id, and publishes it on their notification
//! channel, so it shows at once on every open session and waits for them when they are
//! offline. A job is moved to a processing list while it is handled and removed only once
//! stored, so a crash loses none (a restarted worker puts unfinished ones back first).

use crate::core::AuthCore;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use redis::aio::ConnectionManager;
use sdsim_protocols::events::{Envelope, NotificationJob};
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::events::EventSink;
use sdsim_runtime::queue;
use sdsim_runtime::supervision::{ChildHandle, ChildLink, ChildSpec, Restart};
use sdsim_schema::tables::auth_schema::notifications;
use sdsim_schema::DbPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How often the worker looks at the queue when it is empty.
const POLL: Duration = Duration::from_millis(100);
/// The largest page of an inbox listing.
pub const MAX_PAGE: i64 = 100;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A page of a user's inbox.
#[derive(Debug)]
pub struct ListNotifications {
    pub user_id: Uuid,
    pub limit: i64,
    pub before: Option<Uuid>,
    pub unread_only: bool,
}

/// Marks some (or all) of a user's notifications read.
#[derive(Debug)]
pub struct MarkRead {
    pub user_id: Uuid,
    pub ids: Vec<Uuid>,
    pub all: bool,
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Notifications one inbox keeps: the newest (a flood of shares cannot grow it for ever).
pub const KEPT_PER_USER: i64 = 1_000;

/// Stores a job; false when it was stored before (same id) or names nobody we know.
async fn store(conn: &mut AsyncPgConnection, job: &NotificationJob) -> Result<bool, ServiceError> {
    let (Ok(id), Ok(user)) = (job.id.parse::<Uuid>(), job.user_id.parse::<Uuid>()) else {
        return Ok(false);
    };
    let res = diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(id),
            notifications::user_id.eq(user),
            notifications::kind.eq(cut(&job.kind, 100)),
            notifications::title.eq(cut(&job.title, 500)),
            notifications::body.eq(cut(&job.body, 5000)),
            notifications::link.eq(cut(&job.link, 2000)),
            notifications::data.eq(&job.data),
        ))
        .on_conflict(notifications::id)
        .do_nothing()
        .execute(conn)
        .await;
    match res {
        Ok(1) => {
            // An inbox keeps its newest `KEPT_PER_USER` (older ones go, read or not).
            diesel::sql_query(
                "DELETE FROM auth_schema.notifications WHERE id IN ( \
                   SELECT id FROM auth_schema.notifications WHERE user_id = $1 \
                   ORDER BY created_at DESC, id DESC OFFSET $2)",
            )
            .bind::<diesel::sql_types::Uuid, _>(user)
            .bind::<diesel::sql_types::BigInt, _>(KEPT_PER_USER)
            .execute(conn)
            .await?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        // A user that no longer exists: nothing to keep.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn unread(conn: &mut AsyncPgConnection, user: Uuid) -> Result<i64, ServiceError> {
    Ok(notifications::table
        .filter(notifications::user_id.eq(user))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
        .await?)
}

impl AuthCore {
    /// A page of the inbox, newest first, with the unread count.
    pub async fn list_notifications(
        self: Arc<Self>,
        m: ListNotifications,
    ) -> Result<(Vec<Notification>, i64), ServiceError> {
        if !(1..=MAX_PAGE).contains(&m.limit) {
            return Err(ServiceError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            ));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // One snapshot for the page and the count: a notification stored between two separate
        // reads would be counted but missing from the page (or the other way round).
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run::<_, ServiceError, _>(async |conn| {
                let mut q = notifications::table
                    .filter(notifications::user_id.eq(m.user_id))
                    .into_boxed();
                if m.unread_only {
                    q = q.filter(notifications::read_at.is_null());
                }
                if let Some(before) = m.before {
                    let at: Option<DateTime<Utc>> = notifications::table
                        .filter(notifications::id.eq(before))
                        .filter(notifications::user_id.eq(m.user_id))
                        .select(notifications::created_at)
                        .first(conn)
                        .await
                        .optional()?;
                    let at = at.ok_or_else(|| {
                        ServiceError::invalid("before", "before is not one of yours")
                    })?;
                    q = q.filter(
                        notifications::created_at
                            .lt(at)
                            .or(notifications::created_at
                                .eq(at)
                                .and(notifications::id.lt(before))),
                    );
                }
                let rows = q
                    .order((notifications::created_at.desc(), notifications::id.desc()))
                    .limit(m.limit)
                    .select(Notification::as_select())
                    .load(conn)
                    .await?;
                let count = unread(conn, m.user_id).await?;
                Ok((rows, count))
            })
            .await
    }

    /// Marks notifications read; how many changed, and the unread count after.
    pub async fn mark_notifications_read(
        self: Arc<Self>,
        m: MarkRead,
    ) -> Result<(i64, i64), ServiceError> {
        if !m.all && m.ids.is_empty() {
            return Err(ServiceError::invalid(
                "ids",
                "name the notifications, or all",
            ));
        }
        if m.ids.len() > MAX_PAGE as usize {
            return Err(ServiceError::invalid(
                "ids",
                format!("at most {MAX_PAGE} ids"),
            ));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut q = diesel::update(notifications::table)
            .filter(notifications::user_id.eq(m.user_id))
            .filter(notifications::read_at.is_null())
            .into_boxed();
        if !m.all {
            q = q.filter(notifications::id.eq_any(m.ids));
        }
        let marked = q
            .set(notifications::read_at.eq(Utc::now()))
            .execute(&mut conn)
            .await? as i64;
        Ok((marked, unread(&mut conn, m.user_id).await?))
    }
}

/// Moves queued notifications into inboxes and onto notification channels.
pub struct InboxWorker {
    pool: DbPool,
    redis: ConnectionManager,
    ns: Namespace,
    events: EventSink,
    busy: bool,
    _link: ChildLink,
}

impl InboxWorker {
    pub fn child(
        pool: DbPool,
        redis: ConnectionManager,
        ns: Namespace,
        events: EventSink,
    ) -> ChildSpec {
        ChildSpec::worker("inbox", Restart::Permanent, move |link| {
            Ok(ChildHandle::from_addr(
                InboxWorker {
                    pool: pool.clone(),
                    redis: redis.clone(),
                    ns: ns.clone(),
                    events: events.clone(),
                    busy: false,
                    _link: link,
                }
                .start(),
            ))
        })
    }

    fn drain(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let (pool, mut conn, ns, events) = (
            self.pool.clone(),
            self.redis.clone(),
            self.ns.clone(),
            self.events.clone(),
        );
        let queue = ns.async_queue("notifications");
        let processing = ns.async_processing("notifications");
        let fut = async move {
            loop {
                let raw = match queue::take(&mut conn, &queue, &processing).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification queue unreachable");
                        return;
                    }
                };
                let Some(raw) = raw else { return };
                let job = match serde_json::from_str::<NotificationJob>(&raw) {
                    Ok(job) => Some(job),
                    Err(e) => {
                        tracing::error!(error = %e, "malformed notification job dropped");
                        None
                    }
                };
                if let Some(job) = &job {
                    let stored = match sdsim_schema::pool::get(&pool).await {
                        Ok(mut db) => store(&mut db, job).await,
                        Err(e) => Err(e.into()),
                    };
                    match stored {
                        Ok(true) => {
                            let env = Envelope {
                                kind: job.kind.clone(),
                                id: job.id.clone(),
                                source: "auth".into(),
                                occurred_at: Utc::now(),
                                user_id: Some(job.user_id.clone()),
                                data: serde_json::json!({
                                    "notification_id": job.id,
                                    "title": job.title,
                                    "body": job.body,
                                    "link": job.link,
                                    "data": job.data,
                                }),
                            };
                            events.publish(ns.user_notifications(&job.user_id), env);
                        }
                        Ok(false) => {}
                        Err(ServiceError::Unavailable(e)) => {
                            // PostgreSQL away: back at the head of the queue, tried again at
                            // the next poll (in order: nothing overtakes it).
                            tracing::warn!(id = %job.id, error = %e, "notification not stored yet");
                            queue::retry(&mut conn, &processing, &queue, &raw).await;
                            return;
                        }
                        Err(e) => {
                            // Refused by the database itself: it never will be stored.
                            tracing::error!(id = %job.id, error = %e, "notification dropped: it cannot be stored");
                        }
                    }
                }
                queue::done(&mut conn, &processing, &raw).await;
            }
        };
        ctx.spawn(fut.into_actor(self).map(|_, act, _| act.busy = false));
    }
}

impl Actor for InboxWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Jobs a previous worker was handling when it died go back in the queue first.
        let mut conn = self.redis.clone();
        let queue = self.ns.async_queue("notifications");
        let processing = self.ns.async_processing("notifications");
        ctx.wait(
            async move { queue::recover(&mut conn, &processing, &queue).await }.into_actor(self),
        );
        ctx.run_interval(POLL, |act, ctx| act.drain(ctx));
    }
}
sdsim_runtime::impl_supervised!(InboxWorker);
