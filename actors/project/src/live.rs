//! The live document of a project (docs/collaboration.md): edits committed in one order,
//! then streamed; the document saved as a project version now and then.
//!
//! PostgreSQL orders the edits: an edit's transaction locks the project's row for share and
//! its `collaboration_documents` row for update, so across every project instance exactly one
//! edit of a project commits at a time, each with the next `seq`, and an edit is acknowledged
//! only once committed. After the commit the edit is XADDed to
//! `collaboration:stream:{project_id}`; a process killed between the two leaves a gap that
//! the gateways fill from [`ProjectCore::edits_after`]. A design change through REST goes
//! into the live document as an edit too (so open editors see it), and is refused with 409
//! `live_session` while live edits are not yet a version (it would overwrite them).

use crate::access::{self, Op};
use crate::core::{in_trash, project_id, role_of, Caller, ProjectCore};
use crate::ops;
use crate::store::{self, ProjectRow};
use crate::versions::save_version;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_protocols::events::kinds;
use sdsim_protocols::limits::{MAX_DESIGN_BYTES, MAX_LAYOUT_BYTES};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::project_schema::{
    collaboration_documents as docs, collaboration_edits as edits, projects,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// Entries a collaboration stream keeps (about; edits older than these come from PostgreSQL).
pub const STREAM_MAXLEN: usize = 1_000;
/// An edit larger than this (a REST save carries the whole design) trims the stream to
/// [`STREAM_MAXLEN_AFTER_LARGE`] entries: a project's stream holds at most about 64 MiB of
/// ordinary edits, or a few large ones, never a thousand designs.
pub const LARGE_EDIT_BYTES: usize = 64 << 10;
pub const STREAM_MAXLEN_AFTER_LARGE: usize = 8;
/// Longest client id.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Edits already saved as a version are kept this long (for clients resuming).
pub const KEEP_EDITS: chrono::Duration = chrono::Duration::hours(1);
/// Most edits one `GetEdits` answers.
pub const MAX_EDITS_PAGE: i64 = 1_000;
/// Most bytes of operations one `GetEdits` answers (its message's limit is 5.25 MiB; an
/// edit, up to a whole design and layout, still goes alone; the caller asks for the next
/// page).
pub const MAX_EDITS_PAGE_BYTES: i64 = 3 << 20;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = docs)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct DocRow {
    pub project_id: Uuid,
    pub seq: i64,
    pub design: Value,
    pub layout: Value,
    pub based_on_version: i32,
    pub snapshot_seq: i64,
    pub editors: Vec<Uuid>,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = edits)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct EditRow {
    pub seq: i64,
    pub user_id: Uuid,
    pub client_id: String,
    pub edit_id: i64,
    #[diesel(column_name = operations)]
    pub ops: Value,
}

/// What a person joining gets.
pub struct Joined {
    pub session: Uuid,
    pub present: Vec<Uuid>,
    pub role: access::Role,
    pub doc: DocRow,
}

/// The live document of `row` (locked until the transaction ends), made from the project
/// when there is none, and brought up to the project when the project changed outside it
/// while it had nothing unsaved.
async fn doc_for_update(
    conn: &mut AsyncPgConnection,
    row: &ProjectRow,
) -> Result<DocRow, ServiceError> {
    diesel::insert_into(docs::table)
        .values((
            docs::project_id.eq(row.id),
            docs::design.eq(&row.configuration),
            docs::layout.eq(&row.layout),
            docs::based_on_version.eq(row.version),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let doc: DocRow = docs::table
        .find(row.id)
        .for_update()
        .select(DocRow::as_select())
        .first(conn)
        .await?;
    if doc.seq == doc.snapshot_seq && doc.based_on_version != row.version {
        return Ok(diesel::update(docs::table.find(row.id))
            .set((
                docs::design.eq(&row.configuration),
                docs::layout.eq(&row.layout),
                docs::based_on_version.eq(row.version),
            ))
            .returning(DocRow::as_returning())
            .get_result(conn)
            .await?);
    }
    Ok(doc)
}

/// The project's row, locked for share (edits wait for a REST change and a REST change for
/// them), and `caller`'s role, once `op` is allowed to them.
async fn share_checked(
    conn: &mut AsyncPgConnection,
    pid: Uuid,
    id: &str,
    caller: Caller,
    op: Op,
) -> Result<(ProjectRow, access::Role), ServiceError> {
    let row: ProjectRow = projects::table
        .find(pid)
        .for_share()
        .select(ProjectRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| access::not_found(id))?;
    let role = role_of(conn, &row, caller).await?;
    access::check(role, Op::Read, id)?;
    access::check(role, op, id)?;
    if row.deleted_at.is_some() {
        return Err(in_trash(id));
    }
    Ok((row, role))
}

/// Refuses a REST change of the design while live edits are not yet a version; otherwise
/// the change becomes the live document's next edit (by `author`, as `client_id` "rest"),
/// answered for streaming once committed. Call inside the transaction that holds the
/// project's row for update, after `row` took its new design and version.
pub(crate) async fn through_live(
    conn: &mut AsyncPgConnection,
    row: &ProjectRow,
    author: Uuid,
) -> Result<Option<EditRow>, ServiceError> {
    let doc: Option<DocRow> = docs::table
        .find(row.id)
        .for_update()
        .select(DocRow::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(doc) = doc else {
        return Ok(None);
    };
    if doc.seq > doc.snapshot_seq {
        return Err(ServiceError::Conflict {
            code: "live_session".into(),
            field: "design".into(),
            message: format!(
                "project {} is being edited live and its latest edits are not a version yet; \
                 edit it live, or try again in a few seconds",
                row.id
            ),
        });
    }
    let seq = doc.seq + 1;
    let ops = json!([
        {"op": "set", "path": ["design"], "value": row.configuration},
        {"op": "set", "path": ["layout"], "value": row.layout},
    ]);
    diesel::update(docs::table.find(row.id))
        .set((
            docs::seq.eq(seq),
            docs::snapshot_seq.eq(seq),
            docs::design.eq(&row.configuration),
            docs::layout.eq(&row.layout),
            docs::based_on_version.eq(row.version),
            docs::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    let edit_id = i64::from(row.version);
    diesel::insert_into(edits::table)
        .values((
            edits::project_id.eq(row.id),
            edits::seq.eq(seq),
            edits::user_id.eq(author),
            edits::client_id.eq("rest"),
            edits::edit_id.eq(edit_id),
            edits::operations.eq(&ops),
        ))
        .execute(conn)
        .await?;
    Ok(Some(EditRow {
        seq,
        user_id: author,
        client_id: "rest".into(),
        edit_id,
        ops,
    }))
}

/// The live document of `project`, locked, when it has edits that are not a version yet.
pub(crate) async fn unsaved(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<Option<DocRow>, ServiceError> {
    Ok(docs::table
        .find(project)
        .for_update()
        .select(DocRow::as_select())
        .first(conn)
        .await
        .optional()?
        .filter(|d: &DocRow| d.seq > d.snapshot_seq))
}

/// The live document's edits up to `seq` are version `version` now.
pub(crate) async fn mark_saved(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    seq: i64,
    version: i32,
) -> Result<(), ServiceError> {
    diesel::update(docs::table.find(project))
        .set((
            docs::snapshot_seq.eq(seq),
            docs::based_on_version.eq(version),
            docs::editors.eq(Vec::<Uuid>::new()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

impl ProjectCore {
    /// Saves project `id`'s live edits as a version first, if it has unsaved ones, so that
    /// what reads the design to use it (a run, an export, a fork, a look) gets what people
    /// see. Only for a caller who may see the project (checked before). Answers whether it
    /// saved.
    pub async fn settle_live(&self, id: &str) -> Result<bool, ServiceError> {
        let Ok(pid) = id.parse::<Uuid>() else {
            return Ok(false);
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let unsaved: Option<bool> = docs::table
            .find(pid)
            .select(docs::seq.gt(docs::snapshot_seq))
            .first(&mut conn)
            .await
            .optional()?;
        drop(conn);
        if unsaved == Some(true) {
            return self.snapshot(pid).await;
        }
        Ok(false)
    }

    /// `caller` joins project `id`'s live session (any role that may read it): their
    /// session, who is present, their role and the live document.
    pub async fn join_live(
        &self,
        caller: Caller,
        id: &str,
        gateway_instance: &str,
    ) -> Result<Joined, ServiceError> {
        let (session, present) = self.join(caller, id, gateway_instance).await?;
        let pid = project_id(id)?;
        let id_text = id.to_string();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (role, doc) = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let (row, role) = share_checked(conn, pid, &id_text, caller, Op::Read).await?;
                Ok((role, doc_for_update(conn, &row).await?))
            })
            .await?;
        Ok(Joined {
            session,
            present,
            role,
            doc,
        })
    }

    /// Applies one edit of `caller` (an owner or editor) to project `id`'s live document:
    /// its seq, and whether it had been applied already (the same client and edit id).
    pub async fn apply_edit(
        &self,
        caller: Caller,
        id: &str,
        client_id: &str,
        edit_id: i64,
        ops_json: &str,
    ) -> Result<(i64, bool), ServiceError> {
        let pid = project_id(id)?;
        if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID_CHARS {
            return Err(ServiceError::invalid(
                "client_id",
                format!("client_id is 1 to {MAX_CLIENT_ID_CHARS} characters"),
            ));
        }
        if edit_id < 1 {
            return Err(ServiceError::invalid(
                "edit_id",
                "edit_id is a whole number from 1",
            ));
        }
        if ops_json.len() > MAX_DESIGN_BYTES + MAX_LAYOUT_BYTES {
            return Err(ServiceError::invalid("ops", "the edit is too large"));
        }
        let raw: Value = serde_json::from_str(ops_json)
            .map_err(|e| ServiceError::invalid("ops", format!("ops is not JSON: {e}")))?;
        let parsed = ops::parse(&raw).map_err(|e| ServiceError::invalid("ops", e))?;
        let (id_text, client) = (id.to_string(), client_id.to_string());
        let raw_in = raw.clone();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (edit, duplicate) = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let (row, _) = share_checked(conn, pid, &id_text, caller, Op::Edit).await?;
                let before: Option<EditRow> = edits::table
                    .filter(edits::project_id.eq(pid))
                    .filter(edits::client_id.eq(&client))
                    .filter(edits::edit_id.eq(edit_id))
                    .select(EditRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(e) = before {
                    return Ok((e, true));
                }
                let doc = doc_for_update(conn, &row).await?;
                let mut live = json!({"design": doc.design, "layout": doc.layout});
                ops::apply_all(&mut live, &parsed);
                let (design, layout) = (live["design"].take(), live["layout"].take());
                for (part, v, limit) in [
                    ("design", &design, MAX_DESIGN_BYTES),
                    ("layout", &layout, MAX_LAYOUT_BYTES),
                ] {
                    let n = serde_json::to_vec(v).map_or(usize::MAX, |b| b.len());
                    if n > limit {
                        return Err(ServiceError::invalid(
                            "ops",
                            format!("the edit makes the {part} {n} bytes; the limit is {limit}"),
                        ));
                    }
                    // Each op is within serde_json's depth, but several together could build
                    // a document too deep to be read back.
                    let d = crate::core::depth(v);
                    if d > crate::core::MAX_DEPTH {
                        return Err(ServiceError::invalid(
                            "ops",
                            format!(
                                "the edit makes the {part} nest {d} levels deep; the limit is {}",
                                crate::core::MAX_DEPTH
                            ),
                        ));
                    }
                }
                let seq = doc.seq + 1;
                let mut editors = doc.editors;
                if !editors.contains(&caller.user_id) {
                    editors.push(caller.user_id);
                }
                diesel::update(docs::table.find(pid))
                    .set((
                        docs::seq.eq(seq),
                        docs::design.eq(&design),
                        docs::layout.eq(&layout),
                        docs::editors.eq(&editors),
                        docs::updated_at.eq(Utc::now()),
                    ))
                    .execute(conn)
                    .await?;
                diesel::insert_into(edits::table)
                    .values((
                        edits::project_id.eq(pid),
                        edits::seq.eq(seq),
                        edits::user_id.eq(caller.user_id),
                        edits::client_id.eq(&client),
                        edits::edit_id.eq(edit_id),
                        edits::operations.eq(&raw_in),
                    ))
                    .execute(conn)
                    .await?;
                Ok((
                    EditRow {
                        seq,
                        user_id: caller.user_id,
                        client_id: client,
                        edit_id,
                        ops: raw_in,
                    },
                    false,
                ))
            })
            .await?;
        // Streamed once committed; a duplicate is streamed again, in case the first time its
        // process died between the commit and the XADD (gateways drop what they have).
        let seq = edit.seq;
        self.stream_edit(pid, &edit).await;
        Ok((seq, duplicate))
    }

    /// XADDs a committed edit to the project's collaboration stream (a failure is logged:
    /// the gateways fill gaps from PostgreSQL).
    pub(crate) async fn stream_edit(&self, project: Uuid, e: &EditRow) {
        let data = json!({
            "user_id": e.user_id,
            "client_id": e.client_id,
            "edit_id": e.edit_id,
            "ops": e.ops,
        })
        .to_string();
        let mut redis = self.redis.clone();
        let key = self.ns.collaboration_stream(&project.to_string());
        // Exact trimming after a large one (approximate trimming only drops whole nodes of
        // about 100 entries, which would keep a hundred designs).
        let (trim, maxlen) = if data.len() > LARGE_EDIT_BYTES {
            ("=", STREAM_MAXLEN_AFTER_LARGE)
        } else {
            ("~", STREAM_MAXLEN)
        };
        let res: redis::RedisResult<()> = redis::pipe()
            .cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg(trim)
            .arg(maxlen)
            .arg("*")
            .arg("kind")
            .arg("edit")
            .arg("seq")
            .arg(e.seq)
            .arg("data")
            .arg(data)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(sdsim_protocols::limits::COLLABORATION_TTL_SECS)
            .ignore()
            .query_async(&mut redis)
            .await;
        if let Err(err) = res {
            tracing::warn!(%project, seq = e.seq, error = %err, "edit not streamed (gateways will fill the gap)");
        }
    }

    /// The committed edits of project `id` after `after` (up to `upto`; 0: the latest), for
    /// anyone who may see the project; and whether they are all there (false: the oldest
    /// were dropped once saved as a version, and the client needs a full sync).
    pub async fn edits_after(
        &self,
        caller: Caller,
        id: &str,
        after: i64,
        upto: i64,
    ) -> Result<(Vec<EditRow>, bool), ServiceError> {
        let view = self.get(caller, id).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        // At most MAX_EDITS_PAGE edits and MAX_EDITS_PAGE_BYTES of them (at least one),
        // counted in PostgreSQL: a REST save is one edit carrying a whole design.
        let found: Vec<EditRow> = diesel::sql_query(
            "SELECT seq, user_id, client_id, edit_id, operations FROM ( \
               SELECT seq, user_id, client_id, edit_id, operations, \
                 sum(octet_length(operations::text)) OVER (ORDER BY seq) AS upto_here, \
                 row_number() OVER (ORDER BY seq) AS n \
               FROM project_schema.collaboration_edits \
               WHERE project_id = $1 AND seq > $2 AND ($3 <= 0 OR seq <= $3) \
               ORDER BY seq LIMIT $4) page \
             WHERE upto_here <= $5 OR n = 1 ORDER BY seq",
        )
        .bind::<diesel::sql_types::Uuid, _>(view.row.id)
        .bind::<diesel::sql_types::BigInt, _>(after)
        .bind::<diesel::sql_types::BigInt, _>(upto)
        .bind::<diesel::sql_types::BigInt, _>(MAX_EDITS_PAGE)
        .bind::<diesel::sql_types::BigInt, _>(MAX_EDITS_PAGE_BYTES)
        .load(&mut conn)
        .await?;
        let complete = match <[EditRow]>::first(&found) {
            Some(e) => e.seq == after + 1,
            None => {
                // Nothing kept after `after`: complete only if nothing was ever after it.
                let seq: Option<i64> = docs::table
                    .find(view.row.id)
                    .select(docs::seq)
                    .first(&mut conn)
                    .await
                    .optional()?;
                seq.unwrap_or(0) <= after
            }
        };
        Ok((found, complete))
    }

    /// A session's socket is still open: it keeps counting as present.
    pub async fn touch(&self, caller: Caller, session: &str) -> Result<bool, ServiceError> {
        use sdsim_schema::tables::project_schema::collaboration_sessions as s;
        let session: Uuid = session.parse().map_err(|_| {
            ServiceError::invalid(
                "collaboration_session_id",
                "collaboration_session_id must be a UUID",
            )
        })?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let n = diesel::update(
            s::table
                .filter(s::id.eq(session))
                .filter(s::user_id.eq(caller.user_id))
                .filter(s::left_at.is_null()),
        )
        .set(s::last_seen_at.eq(Utc::now()))
        .execute(&mut conn)
        .await?;
        Ok(n > 0)
    }

    /// Saves project `project`'s live document as a version when it has edits that are not
    /// one yet (authored by its latest editor; the message names how many edited). Answers
    /// whether it saved.
    pub async fn snapshot(&self, project: Uuid) -> Result<bool, ServiceError> {
        let settings = self.settings.clone();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let saved = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let Some(mut row) = store::get_for_update(conn, project).await? else {
                    return Ok(None);
                };
                let doc: Option<DocRow> = docs::table
                    .find(project)
                    .for_update()
                    .select(DocRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let Some(doc) = doc.filter(|d| d.seq > d.snapshot_seq) else {
                    return Ok(None);
                };
                if row.deleted_at.is_some() {
                    return Ok(None);
                }
                let seq = doc.seq;
                let author = doc.editors.last().copied().unwrap_or(row.owner_id);
                row.configuration = doc.design;
                row.layout = doc.layout;
                row.version += 1;
                row.updated_at = Utc::now();
                let message = match doc.editors.len() {
                    0 | 1 => "Live edit".to_string(),
                    n => format!("Live edit by {n} people"),
                };
                save_version(conn, &settings, &row, author, &message, false).await?;
                store::save(conn, &row).await?;
                mark_saved(conn, project, seq, row.version).await?;
                Ok(Some((row, author)))
            })
            .await?;
        match saved {
            Some((row, author)) => {
                self.publish(kinds::PROJECT_UPDATED, "updated", &row, author);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Saves every live document with unsaved edits; forgets edits saved long ago. Answers
    /// how many it saved.
    pub async fn snapshot_due(&self) -> Result<usize, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let due: Vec<Uuid> = docs::table
            .filter(docs::seq.gt(docs::snapshot_seq))
            .select(docs::project_id)
            .limit(500)
            .load(&mut conn)
            .await?;
        diesel::sql_query(
            "DELETE FROM project_schema.collaboration_edits e \
             USING project_schema.collaboration_documents d \
             WHERE e.project_id = d.project_id AND e.seq <= d.snapshot_seq \
               AND e.created_at < now() - make_interval(secs => $1)",
        )
        .bind::<diesel::sql_types::Double, _>(KEEP_EDITS.num_seconds() as f64)
        .execute(&mut conn)
        .await?;
        drop(conn);
        let mut n = 0;
        for p in due {
            match self.snapshot(p).await {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(project = %p, error = %e, "live document not saved"),
            }
        }
        Ok(n)
    }
}
