//! [`ProjectCore`]: the project service's operations. The gRPC adapter runs them on the
//! multi-threaded runtime (every core); every multi-row change is one transaction, and
//! every write to a project locks its row first, so concurrent writes are serialized and
//! a write based on a stale version is refused with nothing written.

use crate::access::{self, Op, Role};
use crate::diff::{self, DesignDiff};
use crate::document;
use crate::store::{self, Cursor, ProjectRow, Scope, Sort, TemplateRow, VersionRow};
use crate::ProjectSettings;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use sdsim_protocols::events::{kinds, Envelope, EventData, ProjectEvent};
use sdsim_protocols::limits::{MAX_DESIGN_BYTES, MAX_LAYOUT_BYTES};
use sdsim_protocols::names::Namespace;
use sdsim_protocols::proto::auth as auth_pb;
use sdsim_protocols::Service;
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::events::EventSink;
use sdsim_runtime::mesh::Mesh;
use sdsim_schema::DbPool;
use serde_json::Value;
use std::time::Duration;
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
    pub items: Vec<(ProjectRow, Role)>,
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

fn name(field: &str, v: &str) -> Result<String, ServiceError> {
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

fn description(v: &str) -> Result<String, ServiceError> {
    if v.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::invalid(
            "description",
            format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(v.trim().to_string())
}

fn tags(v: &[String]) -> Result<Vec<String>, ServiceError> {
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
fn design_doc(json: &str) -> Result<Value, ServiceError> {
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
    Ok(v)
}

fn layout_doc(json: &str) -> Result<Value, ServiceError> {
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
    Ok(v)
}

/// The engine's problems with a design document.
pub fn problems(design: &Value) -> Vec<engine::Problem> {
    match engine::validate_json(&design.to_string()) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

fn empty_design(name: &str) -> Value {
    serde_json::json!({"name": name, "duration_s": 60, "components": [], "connections": []})
}

/// What `caller` is to a project.
async fn role_of(
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

fn uuid(field: &str, v: &str) -> Result<Uuid, ServiceError> {
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
    fn publish(&self, kind: &str, event: &str, row: &ProjectRow, actor: Uuid) {
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

    fn view(row: ProjectRow, role: Role) -> ProjectView {
        let problems = problems(&row.configuration);
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
        let pid = project_id(id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = store::get(&mut conn, pid)
            .await?
            .ok_or_else(|| access::not_found(id))?;
        let role = role_of(&mut conn, &row, caller).await?;
        access::check(role, Op::Read, id)?;
        Ok(Self::view(row, role))
    }

    pub async fn update(
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
        let settings = self.settings.clone();
        let id_text = id.to_string();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let mut row = store::get_for_update(conn, pid)
                    .await?
                    .ok_or_else(|| access::not_found(&id_text))?;
                let role = role_of(conn, &row, caller).await?;
                access::check(role, Op::Edit, &id_text)?;
                if ch.is_public.is_some() {
                    access::check(role, Op::SetVisibility, &id_text)?;
                }
                if row.deleted_at.is_some() {
                    return Err(ServiceError::Conflict {
                        code: "in_trash".into(),
                        field: "project_id".into(),
                        message: format!("project {id_text} is in the trash; restore it first"),
                    });
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
                let design_changed = new_design.as_ref().is_some_and(|d| *d != row.configuration)
                    || new_layout.as_ref().is_some_and(|l| *l != row.layout);
                if let Some(d) = new_design {
                    row.configuration = d;
                }
                if let Some(l) = new_layout {
                    row.layout = l;
                }
                row.version += 1;
                row.updated_at = Utc::now();
                if design_changed {
                    save_version(conn, &settings, &row, caller.user_id, &ch.message, ch.named)
                        .await?;
                }
                store::save(conn, &row).await?;
                Ok((row, role))
            })
            .await;
        let (row, role) = row?;
        self.publish(kinds::PROJECT_UPDATED, "updated", &row, caller.user_id);
        Ok(Self::view(row, role))
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
            let row = store::get_for_update(conn, pid)
                .await?
                .ok_or_else(|| access::not_found(&id_text))?;
            let role = role_of(conn, &row, caller).await?;
            access::check(role, Op::Delete, &id_text)?;
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
            let mut row = store::get_for_update(conn, pid)
                .await?
                .ok_or_else(|| access::not_found(&id_text))?;
            let role = role_of(conn, &row, caller).await?;
            access::check(role, op, &id_text)?;
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

    pub async fn versions(
        &self,
        caller: Caller,
        id: &str,
        before: i32,
        page_size: i32,
    ) -> Result<(Vec<VersionRow>, i32), ServiceError> {
        let view = self.get(caller, id).await?;
        let limit = match page_size {
            0 => 50,
            n if n < 0 || i64::from(n) > MAX_PAGE => {
                return Err(ServiceError::invalid(
                    "page_size",
                    format!("page_size must be between 1 and {MAX_PAGE}"),
                ))
            }
            n => i64::from(n),
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut rows = store::versions(
            &mut conn,
            view.row.id,
            (before > 0).then_some(before),
            limit + 1,
        )
        .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map_or(0, |r| r.version)
        } else {
            0
        };
        Ok((rows, next))
    }

    pub async fn version(
        &self,
        caller: Caller,
        id: &str,
        version: i32,
    ) -> Result<VersionRow, ServiceError> {
        let view = self.get(caller, id).await?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::version(&mut conn, view.row.id, version)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("project {id} has no version {version}")))
    }

    pub async fn diff(
        &self,
        caller: Caller,
        id: &str,
        from: i32,
        to: i32,
    ) -> Result<DesignDiff, ServiceError> {
        let a = self.version(caller, id, from).await?;
        let b = self.version(caller, id, to).await?;
        Ok(diff::diff(
            &a.configuration,
            &a.layout,
            &b.configuration,
            &b.layout,
        ))
    }

    /// A new version equal to version `to` (history is never rewritten).
    pub async fn rollback(
        &self,
        caller: Caller,
        id: &str,
        to: i32,
        expected_version: i32,
    ) -> Result<ProjectView, ServiceError> {
        let old = self.version(caller, id, to).await?;
        self.update(
            caller,
            id,
            Changes {
                design: Some(old.configuration.to_string()),
                layout: Some(old.layout.to_string()),
                expected_version,
                message: format!("rolled back to version {to}"),
                named: true,
                ..Changes::default()
            },
        )
        .await
    }

    /// A new project of `caller`'s, a copy of version `version` (0: the current design) of
    /// a project they may view, remembering where it came from.
    pub async fn fork(
        &self,
        caller: Caller,
        id: &str,
        version: i32,
        new_name: &str,
    ) -> Result<ProjectView, ServiceError> {
        let source = self.get(caller, id).await?;
        let (design, layout, at) = if version > 0 {
            let v = self.version(caller, id, version).await?;
            (v.configuration, v.layout, version)
        } else {
            (
                source.row.configuration.clone(),
                source.row.layout.clone(),
                source.row.version,
            )
        };
        let fork_name = if new_name.trim().is_empty() {
            let base: String = source.row.name.chars().take(MAX_NAME_CHARS - 7).collect();
            format!("{base} (fork)")
        } else {
            name("name", new_name)?
        };
        let new = store::NewProject {
            id: Uuid::new_v4(),
            owner_id: caller.user_id,
            name: fork_name,
            description: source.row.description.clone(),
            configuration: design,
            template_id: source.row.template_id,
            is_public: false,
            tags: source.row.tags.clone(),
            layout,
            forked_from: Some(source.row.id),
            forked_from_version: Some(at),
        };
        let message = format!("forked from {} (version {at})", source.row.name);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                store::insert(conn, new, &message).await
            })
            .await?;
        tracing::info!(project_id = %row.id, from = %id, "project forked");
        self.publish(kinds::PROJECT_CREATED, "created", &row, caller.user_id);
        Ok(Self::view(row, Role::Owner))
    }

    /// The project as one self-contained document (with its history when asked).
    pub async fn export(
        &self,
        caller: Caller,
        id: &str,
        include_versions: bool,
    ) -> Result<String, ServiceError> {
        let p = self.get(caller, id).await?.row;
        let mut versions = Vec::new();
        if include_versions {
            let mut conn = sdsim_schema::pool::get(&self.pool).await?;
            let mut rows =
                store::versions(&mut conn, p.id, None, i64::from(self.settings.max_versions))
                    .await?;
            rows.reverse();
            versions = rows
                .into_iter()
                .map(|v| document::DocumentVersion {
                    version: v.version,
                    message: v.change_summary,
                    named: v.named,
                    saved_at: v.updated_at.to_rfc3339(),
                    design: v.configuration,
                    layout: v.layout,
                })
                .collect();
        }
        let doc = document::ProjectDocument {
            format: document::FORMAT.into(),
            format_version: document::FORMAT_VERSION,
            name: p.name,
            description: p.description,
            tags: p.tags,
            design: p.configuration,
            layout: p.layout,
            versions,
        };
        serde_json::to_string(&doc).map_err(|e| ServiceError::Internal(format!("export: {e}")))
    }

    /// A new project from a project document (with its history, renumbered from 1) or a
    /// bare engine design; one transaction.
    pub async fn import(
        &self,
        caller: Caller,
        json: &str,
        new_name: &str,
    ) -> Result<ProjectView, ServiceError> {
        if json.len() > sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES {
            return Err(ServiceError::invalid(
                "document",
                "the document is larger than a project may be",
            ));
        }
        let doc = match document::read(json) {
            Ok(document::Imported::Project(d)) => d,
            Ok(document::Imported::Design(design)) => document::ProjectDocument {
                format: document::FORMAT.into(),
                format_version: document::FORMAT_VERSION,
                name: design
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or("Imported design")
                    .to_string(),
                description: String::new(),
                tags: Vec::new(),
                design,
                layout: Value::Object(Default::default()),
                versions: Vec::new(),
            },
            Err((field, message)) => return Err(ServiceError::invalid(&field, message)),
        };
        let project_name = if new_name.trim().is_empty() {
            name("name", &doc.name)?
        } else {
            name("name", new_name)?
        };
        let description = description(&doc.description)?;
        let tags = tags(&doc.tags)?;
        // Every design and layout within the limits, each named by its place.
        let check = |v: &Value, field: &str, max: usize| -> Result<(), ServiceError> {
            let len = v.to_string().len();
            if len > max {
                return Err(ServiceError::invalid(
                    field,
                    format!("{field} is {len} bytes; the limit is {max}"),
                ));
            }
            Ok(())
        };
        check(&doc.design, "document.design", MAX_DESIGN_BYTES)?;
        let layout_of = |l: &Value| match l {
            Value::Null => Ok(Value::Object(Default::default())),
            Value::Object(_) => Ok(l.clone()),
            _ => Err(()),
        };
        let layout = layout_of(&doc.layout)
            .map_err(|_| ServiceError::invalid("document.layout", "a layout is a JSON object"))?;
        check(&layout, "document.layout", MAX_LAYOUT_BYTES)?;
        let mut history = Vec::new();
        for (i, v) in doc.versions.iter().enumerate() {
            let at = format!("document.versions[{i}]");
            if !v.design.is_object() {
                return Err(ServiceError::invalid(
                    &format!("{at}.design"),
                    "a design is a JSON object",
                ));
            }
            check(&v.design, &format!("{at}.design"), MAX_DESIGN_BYTES)?;
            let l = layout_of(&v.layout).map_err(|_| {
                ServiceError::invalid(&format!("{at}.layout"), "a layout is a JSON object")
            })?;
            history.push((v.design.clone(), l, v.message.clone(), v.named));
        }
        if history.len() > self.settings.max_versions as usize {
            return Err(ServiceError::invalid(
                "document.versions",
                format!("at most {} versions", self.settings.max_versions),
            ));
        }
        // The current design ends the history (unless it already does).
        if history.last().map(|(d, l, _, _)| (d, l)) != Some((&doc.design, &layout)) {
            history.push((doc.design.clone(), layout.clone(), "imported".into(), true));
        }
        let owner = caller.user_id;
        let new = store::NewProject {
            id: Uuid::new_v4(),
            owner_id: owner,
            name: project_name,
            description,
            configuration: history[0].0.clone(),
            template_id: None,
            is_public: false,
            tags,
            layout: history[0].1.clone(),
            forked_from: None,
            forked_from_version: None,
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let first_message = history[0].2.clone();
                let mut row = store::insert(conn, new, &first_message).await?;
                for (design, layout, message, named) in history.into_iter().skip(1) {
                    row.version += 1;
                    store::insert_version(
                        conn,
                        row.id,
                        row.version,
                        &design,
                        &layout,
                        owner,
                        &message,
                        named,
                    )
                    .await?;
                    row.configuration = design;
                    row.layout = layout;
                }
                row.updated_at = Utc::now();
                store::save(conn, &row).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(project_id = %row.id, "project imported");
        self.publish(kinds::PROJECT_CREATED, "created", &row, caller.user_id);
        Ok(Self::view(row, Role::Owner))
    }

    /// The account of an address, asked of auth (a service-only RPC).
    async fn lookup(&self, email: &str) -> Result<Option<(Uuid, bool)>, ServiceError> {
        let req = auth_pb::LookupUserRequest {
            email: email.to_string(),
            calling_service: "project".into(),
        };
        let r = self
            .mesh
            .call(Service::Auth, "LookupUser", |ch| {
                let req = req.clone();
                let mut c = auth_pb::auth_service_client::AuthServiceClient::new(ch);
                async move { c.lookup_user(req).await }
            })
            .await?;
        Ok(match r.found {
            true => Some((uuid("user_id", &r.user_id)?, r.is_verified)),
            false => None,
        })
    }

    /// Shares project `id` with the person at `email` as `level` (or changes their level),
    /// or ends their access with `revoke`. The answer is the same whether the address has
    /// an account or not (no way to learn who is registered): without one, the share waits
    /// as an invitation and applies once that person has an account with the address
    /// verified. An invitation mail goes out either way.
    pub async fn share(
        &self,
        caller: Caller,
        id: &str,
        email: &str,
        level: &str,
        revoke: bool,
    ) -> Result<String, ServiceError> {
        let email = email.trim().to_lowercase();
        if email.len() < 3
            || email.len() > 320
            || !email.contains('@')
            || email.contains(char::is_whitespace)
        {
            return Err(ServiceError::invalid(
                "email",
                "email must be an e-mail address",
            ));
        }
        if !revoke && !matches!(level, "viewer" | "editor") {
            return Err(ServiceError::invalid(
                "role",
                format!("role must be viewer or editor, not {level:?}"),
            ));
        }
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        if view.row.deleted_at.is_some() {
            return Err(ServiceError::Conflict {
                code: "in_trash".into(),
                field: "project_id".into(),
                message: format!("project {id} is in the trash; restore it first"),
            });
        }
        let account = self.lookup(&email).await?;
        if account.is_some_and(|(user, _)| user == view.row.owner_id) {
            return Err(ServiceError::invalid(
                "email",
                "you own this project: there is nobody to share it with",
            ));
        }
        let pid = view.row.id;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let level_owned = level.to_string();
        let email_owned = email.clone();
        conn.transaction::<_, ServiceError, _>(async move |conn| match (account, revoke) {
            (Some((user, _)), false) => {
                store::upsert_share(conn, pid, user, &level_owned, caller.user_id).await
            }
            (Some((user, _)), true) => store::delete_share(conn, pid, user).await.map(|_| ()),
            (None, false) => {
                store::upsert_invitation(conn, pid, &email_owned, &level_owned, caller.user_id)
                    .await
            }
            (None, true) => store::delete_invitation(conn, pid, &email_owned)
                .await
                .map(|_| ()),
        })
        .await?;
        if revoke {
            return Ok(format!("{email} no longer has access to this project"));
        }
        let link = format!(
            "{}/projects/{pid}",
            self.settings.public_url.trim_end_matches('/')
        );
        self.mail_invitation(&email, &view.row.name, level, &link)
            .await;
        if let Some((user, _)) = account {
            let data = sdsim_protocols::events::ProjectShared {
                project_id: pid.to_string(),
                project_name: view.row.name.clone(),
                by_user_id: caller.user_id.to_string(),
                access_level: level.to_string(),
                link,
                at: Utc::now(),
            };
            let env = Envelope::new(
                kinds::PROJECT_SHARED,
                "project",
                Some(user.to_string()),
                data.data(),
            );
            self.events
                .publish(self.ns.user_notifications(&user.to_string()), env.clone());
            self.events.publish(self.ns.project_events("shared"), env);
        }
        Ok(format!("shared with {email} as {level}"))
    }

    /// Queues the invitation mail (the auth service's mail worker sends it); a failure is
    /// logged, not the caller's error: the share itself is done.
    async fn mail_invitation(&self, to: &str, project: &str, level: &str, link: &str) {
        let job = sdsim_protocols::events::EmailJob {
            id: Uuid::new_v4().to_string(),
            to: to.to_string(),
            subject: format!("A design was shared with you: {project}"),
            body: format!(
                "Someone shared the design \"{project}\" with you on sdsim, as {level}.\n\n\
                 Open it: {link}\n\nIf you have no account yet, register with this address and \
                 verify it; the design will be waiting for you.\n"
            ),
            kind: "project_invitation".into(),
            attempts: 0,
        };
        let Ok(payload) = serde_json::to_string(&job) else {
            return;
        };
        let mut conn = self.redis.clone();
        let res: redis::RedisResult<i64> = redis::cmd("LPUSH")
            .arg(self.ns.async_queue("email"))
            .arg(payload)
            .query_async(&mut conn)
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "invitation mail not queued (Redis)");
        }
    }

    /// The owner, every share and (for those who may share) every pending invitation.
    pub async fn permissions(
        &self,
        caller: Caller,
        id: &str,
    ) -> Result<(Role, Vec<Permission>), ServiceError> {
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::ReadPermissions, id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut out = vec![Permission {
            user_id: Some(view.row.owner_id),
            email: None,
            level: "owner".into(),
            granted_by: None,
            granted_at: view.row.created_at,
        }];
        for (user, level, by, at) in store::shares(&mut conn, view.row.id).await? {
            out.push(Permission {
                user_id: Some(user),
                email: None,
                level,
                granted_by: Some(by),
                granted_at: at,
            });
        }
        if access::allowed(view.role, Op::Share) {
            for (email, level, by, at) in store::invitations(&mut conn, view.row.id).await? {
                out.push(Permission {
                    user_id: None,
                    email: Some(email),
                    level,
                    granted_by: Some(by),
                    granted_at: at,
                });
            }
        }
        Ok((view.role, out))
    }

    /// Hands project `id` to `new_owner`, who must have a share of it; the old owner keeps
    /// editor access.
    pub async fn transfer(
        &self,
        caller: Caller,
        id: &str,
        new_owner: &str,
    ) -> Result<ProjectView, ServiceError> {
        let new_owner = uuid("new_owner_id", new_owner)?;
        let pid = project_id(id)?;
        let id_text = id.to_string();
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let mut row = store::get_for_update(conn, pid)
                    .await?
                    .ok_or_else(|| access::not_found(&id_text))?;
                let role = role_of(conn, &row, caller).await?;
                access::check(role, Op::Share, &id_text)?;
                if new_owner == row.owner_id {
                    return Err(ServiceError::invalid(
                        "new_owner_id",
                        "that person owns it already",
                    ));
                }
                if store::share_level(conn, pid, new_owner).await?.is_none() {
                    return Err(ServiceError::invalid(
                        "new_owner_id",
                        "ownership goes to someone the project is shared with",
                    ));
                }
                store::delete_share(conn, pid, new_owner).await?;
                store::upsert_share(conn, pid, row.owner_id, "editor", new_owner).await?;
                store::set_owner(conn, pid, new_owner).await?;
                row.owner_id = new_owner;
                Ok(row)
            })
            .await?;
        let role = if caller.user_id == row.owner_id {
            Role::Owner
        } else {
            Role::Editor
        };
        self.publish(kinds::PROJECT_UPDATED, "updated", &row, caller.user_id);
        Ok(Self::view(row, role))
    }

    /// Invitations waiting for the caller's address become shares once that address is
    /// verified (asked of auth; only when one is waiting for it).
    pub async fn claim_invitations(
        &self,
        caller: Caller,
        email: &str,
    ) -> Result<usize, ServiceError> {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return Ok(0);
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        if !store::has_invitations(&mut conn, &email).await? {
            return Ok(0);
        }
        match self.lookup(&email).await? {
            Some((user, true)) if user == caller.user_id => {
                let n = conn
                    .transaction::<_, ServiceError, _>(async move |conn| {
                        store::claim_invitations(conn, &email, user).await
                    })
                    .await?;
                if n > 0 {
                    tracing::info!(user = %user, invitations = n, "invitations claimed");
                }
                Ok(n)
            }
            _ => Ok(0),
        }
    }

    pub async fn templates(&self, category: &str) -> Result<Vec<TemplateRow>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::templates(&mut conn, Some(category.trim()).filter(|c| !c.is_empty())).await
    }

    pub async fn template(&self, key: &str) -> Result<TemplateRow, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::template(&mut conn, key.trim())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no template {key:?}")))
    }

    /// Brings the system templates in step with the engine's (at start-up).
    pub async fn sync_templates(&self) -> Result<usize, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut n = 0;
        for (slug, json) in engine::templates() {
            let design: Value = serde_json::from_str(json)
                .map_err(|e| ServiceError::Internal(format!("template {slug}: {e}")))?;
            let text = |k: &str| {
                design
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let slug = slug.replace('_', "-");
            let name = Some(text("name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| slug.clone());
            let category = template_category(&slug);
            store::upsert_system_template(
                &mut conn,
                &slug,
                &name,
                &text("description"),
                category,
                &design,
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Empties the trash of projects deleted more than `trash_days` ago.
    pub async fn purge_expired(&self) -> Result<usize, ServiceError> {
        let before = Utc::now()
            - chrono::Duration::from_std(Duration::from_secs(self.settings.trash_days * 86_400))
                .unwrap_or(chrono::Duration::days(30));
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::purge_trash(&mut conn, before).await
    }
}

/// A system template's category, from its name.
fn template_category(slug: &str) -> &'static str {
    if slug.contains("chaos") {
        "resilience"
    } else if slug.contains("queue") || slug.contains("write") {
        "data"
    } else if slug.contains("cdn") || slug.contains("cache") {
        "performance"
    } else {
        "architecture"
    }
}

/// Writes the version row of `row`'s new design: an unnamed save by the same person
/// within `autosave_window_s` of the previous unnamed one replaces it (autosaves do not
/// bury the history); past `max_versions` the save is refused.
async fn save_version(
    conn: &mut diesel_async::AsyncPgConnection,
    settings: &ProjectSettings,
    row: &ProjectRow,
    author: Uuid,
    message: &str,
    named: bool,
) -> Result<(), ServiceError> {
    if !named {
        if let Some(last) = store::latest_version(conn, row.id).await? {
            let window = chrono::Duration::seconds(settings.autosave_window_s as i64);
            if !last.named && last.author_id == author && Utc::now() - last.updated_at < window {
                return store::replace_version(
                    conn,
                    row.id,
                    last.version,
                    row.version,
                    &row.configuration,
                    &row.layout,
                )
                .await;
            }
        }
    }
    let count = store::count_versions(conn, row.id).await?;
    if count >= i64::from(settings.max_versions) {
        return Err(ServiceError::Conflict {
            code: "version_limit".into(),
            field: "design".into(),
            message: format!(
                "project {} has {count} versions, the most it may keep; nothing was written",
                row.id
            ),
        });
    }
    store::insert_version(
        conn,
        row.id,
        row.version,
        &row.configuration,
        &row.layout,
        author,
        message,
        named,
    )
    .await
}

/// A caller from the wire.
pub fn caller(user_id: &str, is_admin: bool) -> Result<Caller, ServiceError> {
    Ok(Caller {
        user_id: uuid("user_id", user_id)?,
        is_admin,
    })
}
