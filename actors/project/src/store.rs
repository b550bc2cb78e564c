//! project_schema queries (diesel-async). Each takes a connection, so a caller can run
//! several in one transaction: a version is always written with its project row.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::project_schema::{
    project_invitations, project_sharing, project_versions, projects, templates,
};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ProjectRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub configuration: Value,
    pub template_id: Option<Uuid>,
    pub is_public: bool,
    pub status: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub layout: Value,
    pub deleted_at: Option<DateTime<Utc>>,
    pub forked_from: Option<Uuid>,
    pub forked_from_version: Option<i32>,
}

/// What a listing shows of a project: no design, no layout (a page of 100 would otherwise
/// read up to 100 documents of 5 MiB to answer with names).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ProjectSummaryRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub is_public: bool,
    pub status: String,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = projects)]
pub struct NewProject {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub description: String,
    pub configuration: Value,
    pub template_id: Option<Uuid>,
    pub is_public: bool,
    pub tags: Vec<String>,
    pub layout: Value,
    pub forked_from: Option<Uuid>,
    pub forked_from_version: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = project_versions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct VersionRow {
    pub version: i32,
    pub configuration: Value,
    pub author_id: Uuid,
    pub change_summary: String,
    pub created_at: DateTime<Utc>,
    pub layout: Value,
    pub named: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = templates)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct TemplateRow {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub is_system: bool,
    pub author_id: Option<Uuid>,
    pub configuration: Value,
    pub created_at: DateTime<Utc>,
    pub is_public: bool,
}

/// Creates a project and its version 1 (the caller runs this in a transaction).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    p: NewProject,
    message: &str,
) -> Result<ProjectRow, ServiceError> {
    let row: ProjectRow = diesel::insert_into(projects::table)
        .values(&p)
        .returning(ProjectRow::as_returning())
        .get_result(conn)
        .await?;
    diesel::insert_into(project_versions::table)
        .values((
            project_versions::project_id.eq(row.id),
            project_versions::version.eq(row.version),
            project_versions::configuration.eq(&row.configuration),
            project_versions::layout.eq(&row.layout),
            project_versions::author_id.eq(row.owner_id),
            project_versions::change_summary.eq(message),
            project_versions::named.eq(true),
        ))
        .execute(conn)
        .await?;
    Ok(row)
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<ProjectRow>, ServiceError> {
    Ok(projects::table
        .find(id)
        .select(ProjectRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The row, and whether a live session holds edits not yet saved in it (one read).
pub async fn get_with_unsaved(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(ProjectRow, bool)>, ServiceError> {
    use sdsim_schema::tables::project_schema::collaboration_documents as docs;
    let found: Option<(ProjectRow, Option<bool>)> = projects::table
        .left_join(docs::table)
        .filter(projects::id.eq(id))
        .select((
            ProjectRow::as_select(),
            docs::seq.nullable().gt(docs::snapshot_seq.nullable()),
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(row, unsaved)| (row, unsaved == Some(true))))
}

/// The row, locked until the transaction ends (writes to one project are serialized).
pub async fn get_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<ProjectRow>, ServiceError> {
    Ok(projects::table
        .find(id)
        .select(ProjectRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// The access level shared with `user` (`viewer` or `editor`), if any.
pub async fn share_level(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    user: Uuid,
) -> Result<Option<String>, ServiceError> {
    Ok(project_sharing::table
        .filter(project_sharing::project_id.eq(project))
        .filter(project_sharing::user_id.eq(user))
        .select(project_sharing::access_level)
        .first(conn)
        .await
        .optional()?)
}

/// The columns a save writes: the design and layout only when given.
#[derive(AsChangeset)]
#[diesel(table_name = projects)]
struct Saved<'a> {
    name: &'a str,
    description: &'a str,
    tags: &'a Vec<String>,
    is_public: bool,
    configuration: Option<&'a Value>,
    layout: Option<&'a Value>,
    version: i32,
    updated_at: DateTime<Utc>,
    status: &'a str,
    #[diesel(treat_none_as_null = true)]
    deleted_at: Option<DateTime<Utc>>,
}

async fn write(
    conn: &mut AsyncPgConnection,
    row: &ProjectRow,
    design: bool,
) -> Result<(), ServiceError> {
    diesel::update(projects::table.find(row.id))
        .set(Saved {
            name: &row.name,
            description: &row.description,
            tags: &row.tags,
            is_public: row.is_public,
            configuration: design.then_some(&row.configuration),
            layout: design.then_some(&row.layout),
            version: row.version,
            updated_at: row.updated_at,
            status: &row.status,
            deleted_at: row.deleted_at,
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes the project row as `row` says (name, description, tags, visibility, design,
/// layout, version, updated_at, status, trash time).
pub async fn save(conn: &mut AsyncPgConnection, row: &ProjectRow) -> Result<(), ServiceError> {
    write(conn, row, true).await
}

/// As [`save`], for a change that leaves the design and layout as they are: they are not
/// sent back (the largest columns; PostgreSQL would write them again).
pub async fn save_meta(conn: &mut AsyncPgConnection, row: &ProjectRow) -> Result<(), ServiceError> {
    write(conn, row, false).await
}

/// A change of an owner's project that leaves the design and layout as they are: the
/// fields given (`None` keeps a field).
#[derive(AsChangeset)]
#[diesel(table_name = projects)]
pub struct MetaChange<'a> {
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub tags: Option<&'a [String]>,
    pub is_public: Option<bool>,
}

/// Applies `change` to project `id` in one statement (no transaction around it: the
/// statement is atomic, and its row lock orders it against every other write) when `owner`
/// owns it, it is not in the trash and, if `expected` is positive, it is at that version;
/// the version goes up by one and `updated_at` becomes `now`, or stays if it is later (a
/// write that waited for the row lock never moves the time of the version before it back).
/// `None` when any condition fails: the caller then takes the locked path, which says which
/// one.
pub async fn update_owned_meta(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
    expected: i32,
    now: DateTime<Utc>,
    change: MetaChange<'_>,
) -> Result<Option<ProjectRow>, ServiceError> {
    use diesel::sql_types::Timestamptz;
    let later = diesel::dsl::sql::<Timestamptz>("GREATEST(updated_at, ")
        .bind::<Timestamptz, _>(now)
        .sql(")");
    let target = projects::table
        .filter(projects::id.eq(id))
        .filter(projects::owner_id.eq(owner))
        .filter(projects::deleted_at.is_null())
        .filter(
            projects::version
                .eq(expected)
                .or((expected <= 0).into_sql::<diesel::sql_types::Bool>()),
        );
    Ok(diesel::update(target)
        .set((
            change,
            projects::version.eq(projects::version + 1),
            projects::updated_at.eq(later),
        ))
        .returning(ProjectRow::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// The newest version row of a project.
pub async fn latest_version(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<Option<VersionRow>, ServiceError> {
    Ok(project_versions::table
        .filter(project_versions::project_id.eq(project))
        .order(project_versions::version.desc())
        .select(VersionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn count_versions(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<i64, ServiceError> {
    Ok(project_versions::table
        .filter(project_versions::project_id.eq(project))
        .count()
        .get_result(conn)
        .await?)
}

/// A new version row.
#[allow(clippy::too_many_arguments)]
pub async fn insert_version(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    version: i32,
    design: &Value,
    layout: &Value,
    author: Uuid,
    message: &str,
    named: bool,
) -> Result<(), ServiceError> {
    diesel::insert_into(project_versions::table)
        .values((
            project_versions::project_id.eq(project),
            project_versions::version.eq(version),
            project_versions::configuration.eq(design),
            project_versions::layout.eq(layout),
            project_versions::author_id.eq(author),
            project_versions::change_summary.eq(message),
            project_versions::named.eq(named),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// An autosave replaces the previous one: the row of version `old` becomes version `new`.
pub async fn replace_version(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    old: i32,
    new: i32,
    design: &Value,
    layout: &Value,
) -> Result<(), ServiceError> {
    diesel::update(
        project_versions::table
            .filter(project_versions::project_id.eq(project))
            .filter(project_versions::version.eq(old)),
    )
    .set((
        project_versions::version.eq(new),
        project_versions::configuration.eq(design),
        project_versions::layout.eq(layout),
        project_versions::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn versions(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    before: Option<i32>,
    limit: i64,
) -> Result<Vec<VersionRow>, ServiceError> {
    let mut q = project_versions::table
        .filter(project_versions::project_id.eq(project))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(project_versions::version.lt(b));
    }
    Ok(q.order(project_versions::version.desc())
        .limit(limit)
        .select(VersionRow::as_select())
        .load(conn)
        .await?)
}

/// About how many bytes a project's history takes in an export: every version's design,
/// layout and message as JSON text, and a little for the rest of each entry. Counted in
/// PostgreSQL, so that a history too large to export is refused without loading it.
pub async fn history_export_bytes(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<i64, ServiceError> {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let t: Total = diesel::sql_query(
        "SELECT COALESCE(SUM(octet_length(configuration::text) + octet_length(layout::text) \
         + octet_length(change_summary) + 128), 0)::int8 AS total \
         FROM project_schema.project_versions WHERE project_id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(project)
    .get_result(conn)
    .await?;
    Ok(t.total)
}

pub async fn version(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    version: i32,
) -> Result<Option<VersionRow>, ServiceError> {
    Ok(project_versions::table
        .filter(project_versions::project_id.eq(project))
        .filter(project_versions::version.eq(version))
        .select(VersionRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub async fn purge(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, ServiceError> {
    Ok(diesel::delete(projects::table.find(id))
        .execute(conn)
        .await?
        > 0)
}

/// Deletes the projects that went to the trash before `before`; how many.
pub async fn purge_trash(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    Ok(
        diesel::delete(projects::table.filter(projects::deleted_at.lt(before)))
            .execute(conn)
            .await?,
    )
}

/// Which projects a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Mine,
    Shared,
    Public,
    Trash,
}

/// How a listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Last change first.
    Updated,
    /// By name, A to Z.
    Name,
}

/// Where the previous page ended: the sort key and the id of its last row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    Updated(DateTime<Utc>, Uuid),
    Name(String, Uuid),
}

/// One page of a listing (rows, and each row's share level for `Shared`).
#[allow(clippy::too_many_arguments)]
pub async fn list(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    scope: Scope,
    search: Option<&str>,
    tag: Option<&str>,
    sort: Sort,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<(ProjectSummaryRow, Option<String>)>, ServiceError> {
    let mut q = projects::table
        .left_join(
            project_sharing::table.on(project_sharing::project_id
                .eq(projects::id)
                .and(project_sharing::user_id.eq(user))),
        )
        .into_boxed();
    q = match scope {
        Scope::Mine => q
            .filter(projects::owner_id.eq(user))
            .filter(projects::deleted_at.is_null()),
        Scope::Shared => q
            .filter(project_sharing::user_id.eq(user))
            .filter(projects::deleted_at.is_null()),
        Scope::Public => q
            .filter(projects::is_public.eq(true))
            .filter(projects::deleted_at.is_null()),
        Scope::Trash => q
            .filter(projects::owner_id.eq(user))
            .filter(projects::deleted_at.is_not_null()),
    };
    if let Some(s) = search {
        let pattern = format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        q = q.filter(
            projects::name
                .ilike(pattern)
                .or(projects::tags.contains(vec![s.to_string()])),
        );
    }
    if let Some(t) = tag {
        q = q.filter(projects::tags.contains(vec![t.to_string()]));
    }
    q = match (sort, after) {
        (Sort::Updated, Some(Cursor::Updated(at, id))) => q.filter(
            projects::updated_at
                .lt(at)
                .or(projects::updated_at.eq(at).and(projects::id.lt(id))),
        ),
        (Sort::Name, Some(Cursor::Name(name, id))) => q.filter(
            projects::name
                .gt(name.clone())
                .or(projects::name.eq(name).and(projects::id.gt(id))),
        ),
        _ => q,
    };
    q = match sort {
        Sort::Updated => q.order((projects::updated_at.desc(), projects::id.desc())),
        Sort::Name => q.order((projects::name.asc(), projects::id.asc())),
    };
    Ok(q.limit(limit)
        .select((
            ProjectSummaryRow::as_select(),
            project_sharing::access_level.nullable(),
        ))
        .load(conn)
        .await?)
}

/// Keeps the system templates in step with the engine's: inserts new ones, updates changed
/// ones (by slug).
pub async fn upsert_system_template(
    conn: &mut AsyncPgConnection,
    slug: &str,
    name: &str,
    description: &str,
    category: &str,
    design: &Value,
) -> Result<(), ServiceError> {
    diesel::insert_into(templates::table)
        .values((
            templates::slug.eq(slug),
            templates::name.eq(name),
            templates::description.eq(description),
            templates::category.eq(category),
            templates::is_system.eq(true),
            templates::configuration.eq(design),
        ))
        .on_conflict(templates::slug)
        .do_update()
        .set((
            templates::name.eq(name),
            templates::description.eq(description),
            templates::category.eq(category),
            templates::configuration.eq(design),
            templates::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The templates `user` may use: the system's, their own and everyone's public ones.
pub async fn templates(
    conn: &mut AsyncPgConnection,
    category: Option<&str>,
    user: Option<Uuid>,
) -> Result<Vec<TemplateRow>, ServiceError> {
    let mut q = templates::table.into_boxed();
    if let Some(c) = category {
        q = q.filter(templates::category.eq(c.to_string()));
    }
    q = match user {
        Some(u) => q.filter(
            templates::is_system
                .eq(true)
                .or(templates::is_public.eq(true))
                .or(templates::author_id.eq(u)),
        ),
        None => q.filter(
            templates::is_system
                .eq(true)
                .or(templates::is_public.eq(true)),
        ),
    };
    Ok(q.order((
        templates::is_system.desc(),
        templates::category.asc(),
        templates::name.asc(),
    ))
    .limit(500)
    .select(TemplateRow::as_select())
    .load(conn)
    .await?)
}

/// A template of someone's (a project's design saved for reuse).
#[derive(Debug, Insertable)]
#[diesel(table_name = templates)]
pub struct NewTemplate<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub is_system: bool,
    pub author_id: Option<Uuid>,
    pub is_public: bool,
    pub configuration: &'a Value,
}

pub async fn insert_template(
    conn: &mut AsyncPgConnection,
    t: NewTemplate<'_>,
) -> Result<TemplateRow, ServiceError> {
    Ok(diesel::insert_into(templates::table)
        .values(&t)
        .returning(TemplateRow::as_returning())
        .get_result(conn)
        .await?)
}

/// A template by id or slug.
pub async fn template(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> Result<Option<TemplateRow>, ServiceError> {
    let q = templates::table.select(TemplateRow::as_select());
    Ok(match key.parse::<Uuid>() {
        Ok(id) => q
            .filter(templates::id.eq(id))
            .first(conn)
            .await
            .optional()?,
        Err(_) => q
            .filter(templates::slug.eq(key.to_string()))
            .first(conn)
            .await
            .optional()?,
    })
}

/// Gives `user` `level` on `project` (or changes it).
pub async fn upsert_share(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    user: Uuid,
    level: &str,
    by: Uuid,
) -> Result<bool, ServiceError> {
    let now: Option<String> = project_sharing::table
        .filter(project_sharing::project_id.eq(project))
        .filter(project_sharing::user_id.eq(user))
        .select(project_sharing::access_level)
        .first(conn)
        .await
        .optional()?;
    if now.as_deref() == Some(level) {
        return Ok(false);
    }
    diesel::insert_into(project_sharing::table)
        .values((
            project_sharing::project_id.eq(project),
            project_sharing::user_id.eq(user),
            project_sharing::access_level.eq(level),
            project_sharing::granted_by.eq(by),
        ))
        .on_conflict((project_sharing::project_id, project_sharing::user_id))
        .do_update()
        .set((
            project_sharing::access_level.eq(level),
            project_sharing::granted_by.eq(by),
        ))
        .execute(conn)
        .await?;
    Ok(true)
}

pub async fn delete_share(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    user: Uuid,
) -> Result<bool, ServiceError> {
    Ok(diesel::delete(
        project_sharing::table
            .filter(project_sharing::project_id.eq(project))
            .filter(project_sharing::user_id.eq(user)),
    )
    .execute(conn)
    .await?
        > 0)
}

/// An invitation of `email` (an address with no verified account) at `level`; false when it
/// was there already at that level (nothing written).
pub async fn upsert_invitation(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    email: &str,
    level: &str,
    by: Uuid,
) -> Result<bool, ServiceError> {
    let now: Option<String> = project_invitations::table
        .filter(project_invitations::project_id.eq(project))
        .filter(project_invitations::email.eq(email))
        .select(project_invitations::access_level)
        .first(conn)
        .await
        .optional()?;
    if now.as_deref() == Some(level) {
        return Ok(false);
    }
    diesel::insert_into(project_invitations::table)
        .values((
            project_invitations::project_id.eq(project),
            project_invitations::email.eq(email),
            project_invitations::access_level.eq(level),
            project_invitations::granted_by.eq(by),
        ))
        .on_conflict((project_invitations::project_id, project_invitations::email))
        .do_update()
        .set((
            project_invitations::access_level.eq(level),
            project_invitations::granted_by.eq(by),
        ))
        .execute(conn)
        .await?;
    Ok(true)
}

pub async fn delete_invitation(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    email: &str,
) -> Result<bool, ServiceError> {
    Ok(diesel::delete(
        project_invitations::table
            .filter(project_invitations::project_id.eq(project))
            .filter(project_invitations::email.eq(email)),
    )
    .execute(conn)
    .await?
        > 0)
}

/// (user, level, granted_by, granted_at) of every share of a project.
pub async fn shares(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<Vec<(Uuid, String, Uuid, DateTime<Utc>)>, ServiceError> {
    Ok(project_sharing::table
        .filter(project_sharing::project_id.eq(project))
        .order(project_sharing::created_at.asc())
        .select((
            project_sharing::user_id,
            project_sharing::access_level,
            project_sharing::granted_by,
            project_sharing::created_at,
        ))
        .load(conn)
        .await?)
}

/// (email, level, granted_by, created_at) of every pending invitation of a project.
pub async fn invitations(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<Vec<(String, String, Uuid, DateTime<Utc>)>, ServiceError> {
    Ok(project_invitations::table
        .filter(project_invitations::project_id.eq(project))
        .order(project_invitations::created_at.asc())
        .select((
            project_invitations::email,
            project_invitations::access_level,
            project_invitations::granted_by,
            project_invitations::created_at,
        ))
        .load(conn)
        .await?)
}

/// Turns the invitations of `email` into shares of `user` (one transaction with the
/// caller's); how many.
pub async fn claim_invitations(
    conn: &mut AsyncPgConnection,
    email: &str,
    user: Uuid,
) -> Result<usize, ServiceError> {
    let pending: Vec<(Uuid, String, Uuid)> = project_invitations::table
        .filter(project_invitations::email.eq(email))
        .select((
            project_invitations::project_id,
            project_invitations::access_level,
            project_invitations::granted_by,
        ))
        .load(conn)
        .await?;
    for (project, level, by) in &pending {
        upsert_share(conn, *project, user, level, *by).await?;
    }
    diesel::delete(project_invitations::table.filter(project_invitations::email.eq(email)))
        .execute(conn)
        .await?;
    Ok(pending.len())
}

/// Whether any invitation waits for `email`.
pub async fn has_invitations(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<bool, ServiceError> {
    Ok(diesel::select(diesel::dsl::exists(
        project_invitations::table.filter(project_invitations::email.eq(email)),
    ))
    .get_result(conn)
    .await?)
}

pub async fn set_owner(
    conn: &mut AsyncPgConnection,
    project: Uuid,
    owner: Uuid,
) -> Result<(), ServiceError> {
    diesel::update(projects::table.find(project))
        .set((
            projects::owner_id.eq(owner),
            projects::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
