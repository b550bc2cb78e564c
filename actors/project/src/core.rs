//! [`ProjectCore`]: the project service's operations. The gRPC adapter runs them on the
//! multi-threaded runtime (every core); every multi-row change is one transaction, and
//! every write to a project locks its row first, so concurrent writes are serialized and
//! a write based on a stale version is refused with nothing written.

use crate::access::{self, Op, Role};
use crate::store::{self, Cursor, ProjectRow, Scope, Sort, TemplateRow};
use crate::versions::save_version;
use crate::ProjectSettings;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use sdsim_protocols::events::{kinds, Envelope, EventData, ProjectEvent};
use sdsim_protocols::limits::{MAX_DESIGN_BYTES, MAX_LAYOUT_BYTES};
use sdsim_protocols::names::Namespace;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::events::EventSink;
use sdsim_runtime::mesh::Mesh;
use sdsim_schema::DbPool;
use serde_json::Value;
use uuid::Uuid;

/// Longest project name, description, tag; most tags.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_TAG_CHARS: usize = 40;
pub const MAX_TAGS: usize = 20;
/// Largest page of a listing.
pub const MAX_PAGE: i64 = 100;

/// Who asks (authenticated by the gateway).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
    pub is_admin: bool,
}

/// A project as one person sees it.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub row: ProjectRow,
    pub role: Role,
    /// The engine's validation problems of the design (a draft may have many).
    pub problems: Vec<engine::Problem>,
}

use sdsim_engine as engine;

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub is_public: Option<bool>,
    pub design: Option<String>,
    pub layout: Option<String>,
    /// The version the client has; required when the design or layout changes.
    pub expected_version: i32,
    pub message: String,
    pub named: bool,
}

/// A new project.
#[derive(Debug, Default, Clone)]
pub struct Creation {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub is_public: bool,
    /// A template's id or slug.
    pub template: String,
    pub design: String,
    pub layout: String,
}

/// What a listing asks for.
pub struct Listing<'a> {
    pub scope: Scope,
    pub search: &'a str,
    pub tag: &'a str,
    pub sort: Sort,
    pub page_size: i32,
    /// Where the previous page ended (empty: the first page).
    pub token: &'a str,
}

/// One page of a listing, and where the next starts.
pub struct Page {
    pub items: Vec<(store::ProjectSummaryRow, Role)>,
    pub next: String,
}

pub struct ProjectCore {
    pub pool: DbPool,
    pub settings: ProjectSettings,
    pub events: EventSink,
    pub ns: Namespace,
    /// Calls to auth (who an e-mail address is).
    pub mesh: Mesh,
    /// Invitation mails go on the mail queue (`async:email:queue`).
    pub redis: redis::aio::ConnectionManager,
}

/// Someone a project is shared with, or an address invited.
#[derive(Debug, Clone)]
pub struct Permission {
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub level: String,
    pub granted_by: Option<Uuid>,
    pub granted_at: DateTime<Utc>,
}

pub(crate) fn name(field: &str, v: &str) -> Result<String, ServiceError> {
    let t = v.trim();
    if t.is_empty() {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if t.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(
            field,
            format!("{field} is longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            format!("{field} has control characters"),
        ));
    }
    Ok(t.to_string())
}

pub(crate) fn description(v: &str) -> Result<String, ServiceError> {
    if v.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::invalid(
            "description",
            format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(v.trim().to_string())
}

pub(crate) fn tags(v: &[String]) -> Result<Vec<String>, ServiceError> {
    if v.len() > MAX_TAGS {
        return Err(ServiceError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in v.iter().enumerate() {
        let t = t.trim().to_lowercase();
        let field = format!("tags[{i}]");
        if t.is_empty() || t.chars().count() > MAX_TAG_CHARS {
            return Err(ServiceError::invalid(
                &field,
                format!("a tag has 1 to {MAX_TAG_CHARS} characters"),
            ));
        }
        if !t
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.'))
        {
            return Err(ServiceError::invalid(
                &field,
                "a tag has letters, digits, spaces, '-', '_' and '.' only",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A design document: JSON, within the size limit. Drafts (invalid designs) are stored.
/// How deep a design or a layout may nest. PostgreSQL keeps any depth, but serde_json reads
/// at most 128 levels, and a project's documents are read inside larger ones (an export holds
/// its design a few levels down): past this, a project could be written once and never read
/// again. Real designs nest about 6 levels.
pub(crate) const MAX_DEPTH: usize = 64;

/// Refuses `v` (named `field`) when it nests deeper than [`MAX_DEPTH`].
/// Refusal of a change to a project in the trash.
pub(crate) fn in_trash(id: &str) -> ServiceError {
    ServiceError::Conflict {
        code: "in_trash".into(),
        field: "project_id".into(),
        message: format!("project {id} is in the trash; restore it first"),
    }
}

pub(crate) fn check_depth(field: &str, v: &Value) -> Result<(), ServiceError> {
    let d = depth(v);
    if d > MAX_DEPTH {
        return Err(ServiceError::invalid(
            field,
            format!("{field} nests {d} levels deep; the limit is {MAX_DEPTH}"),
        ));
    }
    Ok(())
}

/// Levels of arrays and objects in `v` (a scalar: 0; `{}`: 1), without recursion.
pub(crate) fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => {
                max = max.max(d);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            Value::Object(o) => {
                max = max.max(d);
                stack.extend(o.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    max
}

pub(crate) fn design_doc(json: &str) -> Result<Value, ServiceError> {
    if json.len() > MAX_DESIGN_BYTES {
        return Err(ServiceError::invalid(
            "design",
            format!(
                "the design is {} bytes; the limit is {MAX_DESIGN_BYTES}",
                json.len()
            ),
        ));
    }
    let v: Value = serde_json::from_str(json)
        .map_err(|e| ServiceError::invalid("design", format!("the design is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ServiceError::invalid("design", "a design is a JSON object"));
    }
    check_depth("design", &v)?;
    Ok(v)
}

pub(crate) fn layout_doc(json: &str) -> Result<Value, ServiceError> {
    if json.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    if json.len() > MAX_LAYOUT_BYTES {
        return Err(ServiceError::invalid(
            "layout",
            format!(
                "the layout is {} bytes; the limit is {MAX_LAYOUT_BYTES}",
                json.len()
            ),
        ));
    }
    let v: Value = serde_json::from_str(json)
        .map_err(|e| ServiceError::invalid("layout", format!("the layout is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ServiceError::invalid("layout", "a layout is a JSON object"));
    }
    check_depth("layout", &v)?;
    Ok(v)
}

/// The engine's problems with a design document.
pub fn problems(design: &Value) -> Vec<engine::Problem> {
    match engine::validate_json(&design.to_string()) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

type ProblemsMemo = std::sync::Mutex<std::collections::HashMap<(Uuid, i32), Vec<engine::Problem>>>;
/// Problems of versions already validated, by (project, version); cleared when full.
static PROBLEMS: std::sync::LazyLock<ProblemsMemo> = std::sync::LazyLock::new(Default::default);
const PROBLEMS_KEPT: usize = 10_000;

fn known_problems(id: Uuid, version: i32) -> Option<Vec<engine::Problem>> {
    PROBLEMS.lock().ok()?.get(&(id, version)).cloned()
}

fn remember_problems(id: Uuid, version: i32, p: Vec<engine::Problem>) {
    if let Ok(mut m) = PROBLEMS.lock() {
        if m.len() >= PROBLEMS_KEPT {
            m.clear();
        }
        m.insert((id, version), p);
    }
}

/// The problems of version `version` of project `id`, whose design is `design`. A
/// version's design never changes, so the answer is kept (a bounded memo): reads of a
/// project do not validate its design again.
pub fn problems_of(id: Uuid, version: i32, design: &Value) -> Vec<engine::Problem> {
    if let Some(p) = known_problems(id, version) {
        return p;
    }
    let p = problems(design);
    remember_problems(id, version, p.clone());
    p
}

/// Version `to` of project `id` has the design of version `from` (a change of its name,
/// description, tags or visibility): it has the same problems, known without validating
/// the design again if `from`'s are.
pub fn carry_problems(id: Uuid, from: i32, to: i32) {
    if let Some(p) = known_problems(id, from) {
        remember_problems(id, to, p);
    }
}

fn empty_design(name: &str) -> Value {
    serde_json::json!({"name": name, "duration_s": 60, "components": [], "connections": []})
}

/// What `caller` is to a project.
pub(crate) async fn role_of(
    conn: &mut diesel_async::AsyncPgConnection,
    row: &ProjectRow,
    caller: Caller,
) -> Result<Role, ServiceError> {
    let role = if row.owner_id == caller.user_id {
        Role::Owner
    } else {
        match store::share_level(conn, row.id, caller.user_id)
            .await?
            .as_deref()
        {
            Some("editor") => Role::Editor,
            Some(_) => Role::Viewer,
            None if caller.is_admin => Role::Admin,
            None if row.is_public => Role::Public,
            None => Role::Stranger,
        }
    };
    // In the trash, a project exists for its owner (and admins) only.
    Ok(match (row.deleted_at.is_some(), role) {
        (true, Role::Owner | Role::Admin) | (false, _) => role,
        (true, _) => Role::Stranger,
    })
}

/// The project's row, locked until the transaction ends, and `caller`'s role in it, once
/// `op` is allowed to them.
pub(crate) async fn lock_checked(
    conn: &mut diesel_async::AsyncPgConnection,
    pid: Uuid,
    id: &str,
    caller: Caller,
    op: Op,
) -> Result<(ProjectRow, Role), ServiceError> {
    let row = store::get_for_update(conn, pid)
        .await?
        .ok_or_else(|| access::not_found(id))?;
    let role = role_of(conn, &row, caller).await?;
    access::check(role, op, id)?;
    Ok((row, role))
}

pub(crate) fn uuid(field: &str, v: &str) -> Result<Uuid, ServiceError> {
    v.parse()
        .map_err(|_| ServiceError::invalid(field, format!("{field} must be a UUID")))
}

/// Parses a project id; an id that is not a UUID is simply not a project.
pub fn project_id(v: &str) -> Result<Uuid, ServiceError> {
    v.parse().map_err(|_| access::not_found(v))
}

fn encode_cursor(c: &Cursor) -> String {
    let raw = match c {
        Cursor::Updated(at, id) => format!("u:{}:{id}", at.timestamp_micros()),
        Cursor::Name(name, id) => format!("n:{id}:{name}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(token: &str, sort: Sort) -> Result<Option<Cursor>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ServiceError::invalid("page_token", "page_token is not one this API gave");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    match (sort, raw.split_once(':')) {
        (Sort::Updated, Some(("u", rest))) => {
            let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
            let at = micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::<Utc>::from_timestamp_micros)
                .ok_or_else(bad)?;
            Ok(Some(Cursor::Updated(at, id.parse().map_err(|_| bad())?)))
        }
        (Sort::Name, Some(("n", rest))) => {
            let (id, name) = rest.split_once(':').ok_or_else(bad)?;
            Ok(Some(Cursor::Name(
                name.to_string(),
                id.parse().map_err(|_| bad())?,
            )))
        }
        _ => Err(bad()),
    }
}

impl ProjectCore {
    pub(crate) fn publish(&self, kind: &str, event: &str, row: &ProjectRow, actor: Uuid) {
        let data = ProjectEvent {
            project_id: row.id.to_string(),
            owner_id: row.owner_id.to_string(),
            actor_id: actor.to_string(),
            name: row.name.clone(),
            version: row.version,
            at: Utc::now(),
        };
        let env = Envelope::new(kind, "project", Some(row.owner_id.to_string()), data.data());
        self.events.publish(self.ns.project_events(event), env);
    }

    pub(crate) fn view(row: ProjectRow, role: Role) -> ProjectView {
        let problems = problems_of(row.id, row.version, &row.configuration);
        ProjectView {
            row,
            role,
            problems,
        }
    }

    pub async fn create(&self, caller: Caller, c: Creation) -> Result<ProjectView, ServiceError> {
        let project_name = name("name", &c.name)?;
        let description = description(&c.description)?;
        let tags = tags(&c.tags)?;
        let layout = layout_doc(&c.layout)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let template: Option<TemplateRow> = if c.template.trim().is_empty() {
            None
        } else {
            Some(
                store::template(&mut conn, c.template.trim())
                    .await?
                    .filter(|t| t.is_system || t.is_public || t.author_id == Some(caller.user_id))
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "template_id",
                            format!("no template {:?}", c.template.trim()),
                        )
                    })?,
            )
        };
        let design = if !c.design.trim().is_empty() {
            design_doc(&c.design)?
        } else if let Some(t) = &template {
            t.configuration.clone()
        } else {
            empty_design(&project_name)
        };
        let new = store::NewProject {
            id: Uuid::new_v4(),
            owner_id: caller.user_id,
            name: project_name,
            description,
            configuration: design,
            template_id: template.as_ref().map(|t| t.id),
            is_public: c.is_public,
            tags,
            layout,
            forked_from: None,
            forked_from_version: None,
        };
        let message = match &template {
            Some(t) => format!("created from the template {}", t.name),
            None => "created".to_string(),
        };
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                store::insert(conn, new, &message).await
            })
            .await?;
        tracing::info!(project_id = %row.id, owner = %caller.user_id, "project created");
        self.publish(kinds::PROJECT_CREATED, "created", &row, caller.user_id);
        Ok(Self::view(row, Role::Owner))
    }

    /// The project, if `caller` may see it.
    pub async fn get(&self, caller: Caller, id: &str) -> Result<ProjectView, ServiceError> {
        Ok(self.get_live(caller, id).await?.0)
    }

    /// The project as `caller` may read it, and whether a live session holds edits not yet
    /// saved in it (then [`Self::settle_live`] first, and read it again).
    pub async fn get_live(
        &self,
        caller: Caller,
        id: &str,
    ) -> Result<(ProjectView, bool), ServiceError> {
        let pid = project_id(id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let (row, unsaved) = store::get_with_unsaved(&mut conn, pid)
            .await?
            .ok_or_else(|| access::not_found(id))?;
        let role = role_of(&mut conn, &row, caller).await?;
        access::check(role, Op::Read, id)?;
        Ok((Self::view(row, role), unsaved))
    }

    pub async fn update(
        &self,
        caller: Caller,
        id: &str,
        ch: Changes,
    ) -> Result<ProjectView, ServiceError> {
        let made_private = ch.is_public == Some(false);
        let view = self.change(caller, id, ch).await?;
        if made_private {
            // Whoever read it because it was public may not any more: their open views
            // (live runs, the live session) are checked again (`project:events:unshared`
            // without a person).
            self.unshared(view.row.id, None);
        }
        Ok(view)
    }

    async fn change(
        &self,
        caller: Caller,
        id: &str,
        ch: Changes,
    ) -> Result<ProjectView, ServiceError> {
        let pid = project_id(id)?;
        // Check and parse everything before touching the database.
        let new_name = ch.name.as_deref().map(|n| name("name", n)).transpose()?;
        let new_description = ch.description.as_deref().map(description).transpose()?;
        let new_tags = ch.tags.as_deref().map(tags).transpose()?;
        let new_design = ch.design.as_deref().map(design_doc).transpose()?;
        let new_layout = ch.layout.as_deref().map(layout_doc).transpose()?;
        let drawing = new_design.is_some() || new_layout.is_some();
        if drawing && ch.expected_version <= 0 {
            return Err(ServiceError::PreconditionRequired(
                "a change of the design must say which version it is based on (If-Match)".into(),
            ));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let owner_may = access::allowed(Role::Owner, Op::Edit)
            && (ch.is_public.is_none() || access::allowed(Role::Owner, Op::SetVisibility));
        if !drawing && !ch.named && owner_may {
            // The common case (an owner renames, retags, describes): one statement. Anything
            // it does not cover (another role, the trash, a stale version) takes the locked
            // path below, which answers it.
            let change = store::MetaChange {
                name: new_name.as_deref(),
                description: new_description.as_deref(),
                tags: new_tags.as_deref(),
                is_public: ch.is_public,
            };
            let owned = store::update_owned_meta(
                &mut conn,
                pid,
                caller.user_id,
                ch.expected_version,
                Utc::now(),
                change,
            )
            .await?;
            if let Some(row) = owned {
                return Ok(self.updated_meta(row, Role::Owner, caller));
            }
        }
        let settings = self.settings.clone();
        let id_text = id.to_string();
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let (mut row, role) = lock_checked(conn, pid, &id_text, caller, Op::Edit).await?;
                if ch.is_public.is_some() {
                    access::check(role, Op::SetVisibility, &id_text)?;
                }
                if row.deleted_at.is_some() {
                    return Err(in_trash(&id_text));
                }
                if ch.expected_version > 0 && ch.expected_version != row.version {
                    return Err(ServiceError::Stale {
                        current: row.version,
                        message: format!(
                            "project {id_text} is at version {}, not {}: someone saved first; \
                                 nothing was written",
                            row.version, ch.expected_version
                        ),
                    });
                }
                if let Some(n) = new_name {
                    row.name = n;
                }
                if let Some(d) = new_description {
                    row.description = d;
                }
                if let Some(t) = new_tags {
                    row.tags = t;
                }
                if let Some(p) = ch.is_public {
                    row.is_public = p;
                }
                // A named save with no design is a named version of what is there now: the
                // live document's unsaved edits, if any, else the design as it is.
                let named_only = ch.named && new_design.is_none() && new_layout.is_none();
                let mut saved_live = None;
                if named_only {
                    if let Some(doc) = crate::live::unsaved(conn, row.id).await? {
                        row.configuration = doc.design;
                        row.layout = doc.layout;
                        saved_live = Some(doc.seq);
                    }
                }
                let design_changed = named_only
                    || new_design.as_ref().is_some_and(|d| *d != row.configuration)
                    || new_layout.as_ref().is_some_and(|l| *l != row.layout);
                if let Some(d) = new_design {
                    row.configuration = d;
                }
                if let Some(l) = new_layout {
                    row.layout = l;
                }
                row.version += 1;
                row.updated_at = Utc::now();
                let mut live = None;
                if design_changed {
                    save_version(conn, &settings, &row, caller.user_id, &ch.message, ch.named)
                        .await?;
                    match saved_live {
                        Some(seq) => {
                            crate::live::mark_saved(conn, row.id, seq, row.version).await?
                        }
                        None if named_only => {}
                        None => {
                            live = crate::live::through_live(conn, &row, caller.user_id).await?
                        }
                    }
                }
                if design_changed {
                    store::save(conn, &row).await?;
                } else {
                    store::save_meta(conn, &row).await?;
                }
                Ok((row, role, live, design_changed))
            })
            .await;
        let (row, role, live, design_changed) = row?;
        if !design_changed {
            return Ok(self.updated_meta(row, role, caller));
        }
        if let Some(edit) = live {
            self.stream_edit(row.id, &edit).await;
        }
        self.publish(kinds::PROJECT_UPDATED, "updated", &row, caller.user_id);
        Ok(Self::view(row, role))
    }

    /// The answer to an update that left the design as it was: the new version has the
    /// problems of the one before.
    fn updated_meta(&self, row: ProjectRow, role: Role, caller: Caller) -> ProjectView {
        carry_problems(row.id, row.version - 1, row.version);
        self.publish(kinds::PROJECT_UPDATED, "updated", &row, caller.user_id);
        Self::view(row, role)
    }

    /// Moves a project to the trash (restorable for `trash_days`).
    pub async fn delete(&self, caller: Caller, id: &str) -> Result<bool, ServiceError> {
        let row = self
            .in_lock(caller, id, Op::Delete, |row| {
                if row.deleted_at.is_some() {
                    return Ok(false);
                }
                row.deleted_at = Some(Utc::now());
                row.status = "deleted".into();
                Ok(true)
            })
            .await?;
        if let (true, r) = &row {
            self.publish(kinds::PROJECT_DELETED, "deleted", r, caller.user_id);
        }
        Ok(row.0)
    }

    /// Takes a project out of the trash.
    pub async fn restore(&self, caller: Caller, id: &str) -> Result<ProjectView, ServiceError> {
        let (_, row) = self
            .in_lock(caller, id, Op::Delete, |row| {
                if row.deleted_at.is_none() {
                    return Err(ServiceError::Conflict {
                        code: "not_in_trash".into(),
                        field: "project_id".into(),
                        message: format!("project {} is not in the trash", row.id),
                    });
                }
                row.deleted_at = None;
                row.status = "active".into();
                Ok(true)
            })
            .await?;
        self.publish(kinds::PROJECT_RESTORED, "restored", &row, caller.user_id);
        let role = if row.owner_id == caller.user_id {
            Role::Owner
        } else {
            Role::Admin
        };
        Ok(Self::view(row, role))
    }

    /// Deletes a project in the trash for good, with its versions and shares.
    pub async fn purge(&self, caller: Caller, id: &str) -> Result<bool, ServiceError> {
        let pid = project_id(id)?;
        let id_text = id.to_string();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let (row, _) = lock_checked(conn, pid, &id_text, caller, Op::Delete).await?;
            if row.deleted_at.is_none() {
                return Err(ServiceError::Conflict {
                    code: "not_in_trash".into(),
                    field: "project_id".into(),
                    message: format!("project {id_text} is not in the trash; delete it first"),
                });
            }
            store::purge(conn, pid).await
        })
        .await
        .inspect(|&purged| {
            if purged {
                self.forget_live(pid);
            }
        })
    }

    /// A purged project's live state leaves Redis too (its stream and presence would
    /// otherwise wait for their expiry).
    fn forget_live(&self, project: Uuid) {
        let mut redis = self.redis.clone();
        let keys = [
            self.ns.collaboration_stream(&project.to_string()),
            self.ns.collaboration_presence(&project.to_string()),
        ];
        tokio::spawn(async move {
            let res: redis::RedisResult<i64> =
                redis::cmd("DEL").arg(&keys).query_async(&mut redis).await;
            if let Err(e) = res {
                tracing::warn!(%project, error = %e, "live state of a purged project not removed (it expires)");
            }
        });
    }

    /// Runs `change` on the locked row after checking `op`; saves the row when it says so.
    async fn in_lock(
        &self,
        caller: Caller,
        id: &str,
        op: Op,
        change: impl FnOnce(&mut ProjectRow) -> Result<bool, ServiceError> + Send + 'static,
    ) -> Result<(bool, ProjectRow), ServiceError> {
        let pid = project_id(id)?;
        let id_text = id.to_string();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let (mut row, _) = lock_checked(conn, pid, &id_text, caller, op).await?;
            let changed = change(&mut row)?;
            if changed {
                row.updated_at = Utc::now();
                store::save(conn, &row).await?;
            }
            Ok((changed, row))
        })
        .await
    }

    pub async fn list(&self, caller: Caller, l: Listing<'_>) -> Result<Page, ServiceError> {
        let Listing {
            scope,
            search,
            tag,
            sort,
            page_size,
            token,
        } = l;
        if search.chars().count() > MAX_NAME_CHARS {
            return Err(ServiceError::invalid("search", "search is too long"));
        }
        let limit = match page_size {
            0 => 20,
            n if n < 0 || i64::from(n) > MAX_PAGE => {
                return Err(ServiceError::invalid(
                    "page_size",
                    format!("page_size must be between 1 and {MAX_PAGE}"),
                ))
            }
            n => i64::from(n),
        };
        let after = decode_cursor(token, sort)?;
        let search = Some(search.trim()).filter(|s| !s.is_empty());
        let tag = Some(tag.trim())
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut rows = store::list(
            &mut conn,
            caller.user_id,
            scope,
            search,
            tag.as_deref(),
            sort,
            after,
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = match (more, rows.last()) {
            (true, Some((r, _))) => encode_cursor(&match sort {
                Sort::Updated => Cursor::Updated(r.updated_at, r.id),
                Sort::Name => Cursor::Name(r.name.clone(), r.id),
            }),
            _ => String::new(),
        };
        let items = rows
            .into_iter()
            .map(|(row, share)| {
                let role = if row.owner_id == caller.user_id {
                    Role::Owner
                } else {
                    match share.as_deref() {
                        Some("editor") => Role::Editor,
                        Some(_) => Role::Viewer,
                        None => Role::Public,
                    }
                };
                (row, role)
            })
            .collect();
        Ok(Page { items, next })
    }
}

/// A caller from the wire.
pub fn caller(user_id: &str, is_admin: bool) -> Result<Caller, ServiceError> {
    Ok(Caller {
        user_id: uuid("user_id", user_id)?,
        is_admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_nested_past_the_limit_are_refused_by_name() {
        assert_eq!(depth(&serde_json::json!(1)), 0);
        assert_eq!(depth(&serde_json::json!({"a": [1, {"b": {}}]})), 4);
        let mut v = serde_json::json!({});
        for _ in 1..MAX_DEPTH {
            v = serde_json::json!({ "a": v });
        }
        assert_eq!(depth(&v), MAX_DEPTH);
        assert!(design_doc(&v.to_string()).is_ok());
        assert!(layout_doc(&v.to_string()).is_ok());
        let deeper = serde_json::json!({ "a": v });
        let err = design_doc(&deeper.to_string()).unwrap_err();
        assert_eq!(err.field(), Some("design"), "{err:?}");
        assert!(err.to_string().contains("65 levels"), "{err}");
        assert_eq!(
            layout_doc(&deeper.to_string()).unwrap_err().field(),
            Some("layout")
        );
    }

    #[test]
    fn a_version_with_the_same_design_carries_its_problems_without_validating_again() {
        let id = Uuid::new_v4();
        let broken = serde_json::json!({"name": "x", "components": "not a list"});
        let found = problems_of(id, 1, &broken);
        assert!(!found.is_empty(), "the broken design has problems");
        carry_problems(id, 1, 2);
        // Version 2's answer comes from the memo: the design passed is not looked at.
        let other = empty_design("x");
        assert_ne!(problems(&other), found);
        assert_eq!(problems_of(id, 2, &other), found);
        // Nothing known of version 5, so nothing carried to 6: 6 is validated on its own.
        carry_problems(id, 5, 6);
        assert_eq!(problems_of(id, 6, &other), problems(&other));
    }
}
