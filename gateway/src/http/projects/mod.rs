//! `/api/projects/*` and `/api/templates/*`: designs people save, version and find again.
//! The gateway authenticates and calls the project service; the rules live there.
//!
//! Optimistic concurrency: every answer carrying a project has its version as the `ETag`;
//! a change of the design or layout must send it back as `If-Match` (428 without it), and a
//! stale one is refused with 412 and the current version, nothing written.

use super::extract::AuthUser;
use super::json_resource;
use crate::body::{json_text, ApiJson, BodyLimit};
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use sdsim_protocols::limits::{MAX_DESIGN_BYTES, MAX_DESIGN_MESSAGE_BYTES, MAX_LAYOUT_BYTES};
use sdsim_protocols::proto::project as pb;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

mod presence;
mod sharing;
mod templates;
mod versions;

/// The routes of this file in the OpenAPI document ([`openapi_parts`] has the others).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create, list, get, update, delete, restore, purge),
    components(schemas(
        ListScope,
        ListSort,
        ShareRole,
        PermissionRole,
        LinkAccess,
        ProblemView,
        ProjectView,
        ProjectBody,
        CreateBody,
        Summary,
        ListBody,
        UpdateBody,
        Deleted,
        Purged
    ))
)]
pub(crate) struct Api;

/// The routes of this area in the OpenAPI document, part by part.
pub(crate) fn openapi_parts() -> [utoipa::openapi::OpenApi; 5] {
    use utoipa::OpenApi;
    [
        Api::openapi(),
        versions::Api::openapi(),
        templates::Api::openapi(),
        sharing::Api::openapi(),
        presence::Api::openapi(),
    ]
}

/// The routes of this area. Bodies that carry a design may be as large as a design.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let big = BodyLimit(MAX_DESIGN_MESSAGE_BYTES);
    cfg.service(
        json_resource("/api/projects/import")
            .app_data(big)
            .route(web::post().to(templates::import)),
    )
    .service(
        json_resource("/api/projects")
            .app_data(big)
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        json_resource("/api/projects/{id}")
            .app_data(big)
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(json_resource("/api/projects/{id}/restore").route(web::post().to(restore)))
    .service(json_resource("/api/projects/{id}/purge").route(web::post().to(purge)))
    .service(json_resource("/api/projects/{id}/versions").route(web::get().to(versions::versions)))
    .service(
        json_resource("/api/projects/{id}/versions/{version}")
            .route(web::get().to(versions::version)),
    )
    .service(json_resource("/api/projects/{id}/diff").route(web::get().to(versions::diff)))
    .service(json_resource("/api/projects/{id}/rollback").route(web::post().to(versions::rollback)))
    .service(json_resource("/api/projects/{id}/fork").route(web::post().to(templates::fork)))
    .service(
        json_resource("/api/projects/{id}/template")
            .route(web::post().to(templates::save_as_template)),
    )
    .service(
        json_resource("/api/projects/{id}/shares")
            .route(web::post().to(sharing::share))
            .route(web::delete().to(sharing::unshare)),
    )
    .service(
        json_resource("/api/projects/{id}/permissions").route(web::get().to(sharing::permissions)),
    )
    .service(json_resource("/api/projects/{id}/owner").route(web::post().to(sharing::transfer)))
    .service(
        json_resource("/api/projects/{id}/links")
            .route(web::post().to(sharing::create_link))
            .route(web::get().to(sharing::list_links)),
    )
    .service(
        json_resource("/api/projects/{id}/links/{link_id}")
            .route(web::delete().to(sharing::revoke_link)),
    )
    .service(
        json_resource("/api/projects/{id}/collaboration").route(web::post().to(presence::join)),
    )
    .service(
        json_resource("/api/projects/{id}/collaboration/{session_id}")
            .route(web::delete().to(presence::leave)),
    )
    .service(
        json_resource("/api/projects/{id}/collaborators")
            .route(web::get().to(presence::collaborators)),
    )
    .service(
        json_resource("/api/projects/{id}/analytics").route(web::get().to(presence::analytics)),
    )
    .service(json_resource("/api/links/{token}").route(web::get().to(sharing::open_link)))
    .service(json_resource("/api/links/{token}/fork").route(web::post().to(sharing::fork_link)))
    .service(json_resource("/api/projects/{id}/export").route(web::get().to(templates::export)))
    .service(json_resource("/api/templates").route(web::get().to(templates::templates)))
    .service(json_resource("/api/templates/{id}").route(web::get().to(templates::template)));
}

fn timestamp(secs: i64) -> Option<String> {
    super::views::timestamp(secs)
}

/// A problem the engine finds in a design.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DesignProblem)]
struct ProblemView {
    /// The JSON path of the part at fault.
    path: String,
    message: String,
}

/// A project as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct ProjectView {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    tags: Vec<String>,
    is_public: bool,
    /// Goes up by one on every change; the `ETag` of the answer.
    version: i32,
    /// The engine design (a draft may be incomplete).
    #[schema(value_type = Object, nullable)]
    design: Box<RawValue>,
    /// Where the editor draws each component; `null` when there is none yet.
    #[schema(value_type = Object, nullable)]
    layout: Box<RawValue>,
    /// The engine's problems with the design (a draft may have many); empty when it runs.
    problems: Vec<ProblemView>,
    /// The caller's role: `owner`, `editor` or `viewer`.
    access_level: String,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// When it went to the trash; `null` when it is not there.
    deleted_at: Option<String>,
    /// The template it was created from.
    template_id: Option<String>,
    /// The project it is a fork of.
    forked_from: Option<String>,
}

/// A JSON document from a service, passed through as it is (a design can be megabytes:
/// parsing it only to print it again would cost every read).
/// An empty document (a list item, a draft without a layout) is `null`; one that is not
/// JSON (never written by the services) is logged and shown as `null` too.
pub(super) fn raw(text: String) -> Box<RawValue> {
    if text.is_empty() {
        return RawValue::NULL.to_owned();
    }
    RawValue::from_string(text).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a service sent a document that is not JSON");
        RawValue::NULL.to_owned()
    })
}

fn problems(p: Vec<pb::DesignProblem>) -> Vec<ProblemView> {
    p.into_iter()
        .map(|p| ProblemView {
            path: p.path,
            message: p.message,
        })
        .collect()
}

impl From<pb::Project> for ProjectView {
    fn from(p: pb::Project) -> Self {
        Self {
            design: raw(p.design_json),
            layout: raw(p.layout_json),
            problems: problems(p.problems),
            id: p.project_id,
            name: p.name,
            description: p.description,
            owner_id: p.owner_id,
            tags: p.tags,
            is_public: p.is_public,
            version: p.version,
            access_level: p.access_level,
            created_at: timestamp(p.created_at),
            updated_at: timestamp(p.updated_at),
            deleted_at: timestamp(p.deleted_at),
            template_id: (!p.template_id.is_empty()).then_some(p.template_id),
            forked_from: (!p.forked_from.is_empty()).then_some(p.forked_from),
        }
    }
}

/// A project (its version is the `ETag` of the answer).
#[derive(Serialize, utoipa::ToSchema)]
struct ProjectBody {
    project: ProjectView,
}

/// A project answer: the body and its version as the `ETag`.
fn project_response(status: StatusCode, p: Option<pb::Project>) -> HttpResponse {
    let p = p.unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", p.version)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ProjectBody { project: p.into() })
}

fn caller(user: &AuthUser) -> pb::Caller {
    pb::Caller {
        user_id: user.user_id.clone(),
        is_admin: is_admin(user),
    }
}

fn is_admin(user: &AuthUser) -> bool {
    user.is_admin || user.permissions.iter().any(|p| p == "admin:projects")
}

/// The version an `If-Match` header names (`"7"`, `W/"7"` or `7`); 0 when absent.
fn if_match(req: &HttpRequest) -> Result<i32, ApiError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(0);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text == "*" {
        // "Whatever is there" is the blind overwrite this header exists to prevent.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_if_match",
            "If-Match: * is not taken: name the version the change is based on, as a GET answered it (e.g. \"7\")",
        )
        .field("If-Match"));
    }
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_if_match",
            "If-Match must be the project's ETag, as a GET answered it (e.g. \"7\")",
        )
        .field("If-Match")
    })
}

/// A new project: empty, from a template, or from a design.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateProjectBody)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    is_public: bool,
    /// A template's id (from `/api/templates`).
    #[serde(default)]
    template_id: Option<String>,
    /// An engine design to start from (a draft is fine).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    design: Option<Value>,
    /// The editor's layout of the design.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    layout: Option<Value>,
}

/// Creates a project: empty, from a template, or from a design.
#[utoipa::path(post, path = "/api/projects", tag = "projects",
    request_body = CreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 422, description = "A field is invalid, or the template does not exist (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn create(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::CreateProjectRequest {
        user_id: user.user_id,
        name: b.name,
        description: b.description,
        template_id: b.template_id.unwrap_or_default(),
        configuration: Default::default(),
        is_public: b.is_public,
        design_json: design_text(b.design.as_ref())?.unwrap_or_default(),
        layout_json: layout_text(b.layout.as_ref())?.unwrap_or_default(),
        tags: b.tags,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "CreateProject", create_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

/// The values of the API's fixed-choice strings, for the document only: the handlers read
/// strings and name a wrong one in a 422.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ListScope {
    Mine,
    Shared,
    Public,
    Trash,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ListSort {
    Updated,
    Name,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ShareRole {
    Viewer,
    Editor,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum PermissionRole {
    Owner,
    Editor,
    Viewer,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum LinkAccess {
    View,
    Fork,
}

/// Which projects, in what order, one page at a time.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `mine` (the default), `shared`, `public` or `trash`.
    #[serde(default)]
    #[param(value_type = Option<ListScope>)]
    scope: String,
    /// Words to look for in the name.
    #[serde(default)]
    search: String,
    /// Only projects with this tag.
    #[serde(default)]
    tag: String,
    /// `updated` (the default, newest first) or `name`.
    #[serde(default)]
    #[param(value_type = Option<ListSort>)]
    sort: String,
    /// 1 to 100; 20 when absent.
    #[serde(default)]
    page_size: i32,
    /// The `next_page_token` of the previous page.
    #[serde(default)]
    page_token: String,
}

/// A project in a list (without its design).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectSummary)]
struct Summary {
    id: String,
    name: String,
    description: String,
    owner_id: String,
    tags: Vec<String>,
    is_public: bool,
    version: i32,
    access_level: String,
    updated_at: Option<String>,
    deleted_at: Option<String>,
}

/// A page of projects.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectList)]
struct ListBody {
    projects: Vec<Summary>,
    /// Pass as `page_token` for the next page; absent on the last.
    next_page_token: Option<String>,
}

/// The caller's projects (or those shared with them, public ones, or the trash), a page at a time.
#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of projects", body = ListBody),
        crate::http::openapi::Unauthenticated,
        (status = 422, description = "A bad scope, sort, page_size or page_token (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn list(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::ListProjectsRequest {
        user_id: user.user_id,
        page_size: q.page_size,
        page_token: q.page_token,
        include_shared: false,
        email: user.email.clone(),
        search: q.search,
        scope: q.scope,
        tag: q.tag,
        sort: q.sort,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListProjects", list_projects, call).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ListBody {
            projects: res
                .projects
                .into_iter()
                .map(|p| Summary {
                    id: p.project_id,
                    name: p.name,
                    description: p.description,
                    owner_id: p.owner_id,
                    tags: p.tags,
                    is_public: p.is_public,
                    version: p.version,
                    access_level: p.access_level,
                    updated_at: timestamp(p.updated_at),
                    deleted_at: timestamp(p.deleted_at),
                })
                .collect(),
            next_page_token: (!res.next_page_token.is_empty()).then_some(res.next_page_token),
        }))
}

/// A project with its design; its version is the `ETag`.
#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn get(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        email: user.email.clone(),
        user_id: user.user_id,
        include_configuration: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetProject", get_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

/// The changes to a project; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateProjectBody)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Replaces every tag.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Only the owner may change it.
    #[serde(default)]
    is_public: Option<bool>,
    /// A new design (needs If-Match).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    design: Option<Value>,
    /// A new layout (needs If-Match).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    layout: Option<Value>,
    /// What this save is (shown in the history).
    #[serde(default)]
    message: String,
    /// A named save: never replaced by a later autosave.
    #[serde(default)]
    named: bool,
}

/// Changes a project. A change of the design or layout must send the version it is based on
/// as `If-Match` (428 without it); a stale one is refused with 412, nothing written.
#[utoipa::path(patch, path = "/api/projects/{id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version this change is based on (e.g. \"7\"): required when the design or layout changes, checked whenever sent"),
    ),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The changed project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 400, description = "If-Match is not a project ETag", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may only view it, or only its owner may change is_public", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash (`in_trash`), has live edits not saved yet (`live_session`), or has as many versions as it may keep (`version_limit`)", body = crate::http::openapi::ErrorBody),
        (status = 412, description = "Someone saved first: If-Match is not the current version (in `error.current_version` and the ETag); nothing was written", body = crate::http::openapi::ErrorBody,
            headers(("ETag" = String, description = "The current version"))),
        (status = 422, description = "A field is invalid (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = 428, description = "The design or layout changes without If-Match", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn update(
    state: web::Data<GatewayState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let b = body.0;
    let call = pb::UpdateProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
        name: b.name,
        description: b.description,
        configuration: Default::default(),
        is_public: b.is_public,
        expected_version: expected,
        change_summary: b.message,
        design_json: design_text(b.design.as_ref())?,
        layout_json: layout_text(b.layout.as_ref())?,
        set_tags: b.tags.is_some(),
        tags: b.tags.unwrap_or_default(),
        named: b.named,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "UpdateProject", update_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

/// A deletion.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectDeleted)]
struct Deleted {
    /// False when it was in the trash already.
    deleted: bool,
    /// Where it went: it can be restored from the trash until it is purged.
    in_trash: bool,
}

/// Moves a project to the trash (it can be restored until it is purged).
#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "In the trash", body = Deleted),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may delete it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn delete(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::DeleteProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "DeleteProject", delete_project, call).await?;
    Ok(HttpResponse::Ok().json(Deleted {
        deleted: res.deleted,
        in_trash: true,
    }))
}

/// Takes a project out of the trash.
#[utoipa::path(post, path = "/api/projects/{id}/restore", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The restored project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may restore it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is not in the trash (`not_in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn restore(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RestoreProject", restore_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

/// A deletion for good.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectPurged)]
struct Purged {
    purged: bool,
}

/// Deletes a project in the trash for good, with its versions and shares.
#[utoipa::path(post, path = "/api/projects/{id}/purge", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Gone for good", body = Purged),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may purge it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is not in the trash: delete it first (`not_in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn purge(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "PurgeProject", purge_project, call).await?;
    Ok(HttpResponse::Ok().json(Purged { purged: res.purged }))
}

/// A design from a body as the project service receives it (see [`json_text`]).
pub(crate) fn design_text(d: Option<&serde_json::Value>) -> Result<Option<String>, ApiError> {
    d.map(|d| json_text(d, "design", MAX_DESIGN_BYTES))
        .transpose()
}

/// A layout from a body as the project service receives it (see [`json_text`]).
fn layout_text(l: Option<&serde_json::Value>) -> Result<Option<String>, ApiError> {
    l.map(|l| json_text(l, "layout", MAX_LAYOUT_BYTES))
        .transpose()
}
