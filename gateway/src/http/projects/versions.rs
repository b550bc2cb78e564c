//! A project's history: its saved versions, one version, the diff of two, and rolling back.

use super::*;

/// The routes of this part in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(versions, version, diff, rollback),
    components(schemas(VersionView, VersionsBody, VersionBody, RollbackBody))
)]
pub(crate) struct Api;

/// A saved version of a project's design.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct VersionView {
    version: i32,
    author_id: String,
    /// What the save was.
    message: String,
    /// A named save (an autosave within a few minutes replaces the previous unnamed one).
    named: bool,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl From<pb::VersionInfo> for VersionView {
    fn from(v: pb::VersionInfo) -> Self {
        Self {
            version: v.version,
            author_id: v.author_id,
            message: v.message,
            named: v.named,
            created_at: timestamp(v.created_at),
            updated_at: timestamp(v.updated_at),
        }
    }
}

/// A page of versions, newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionsQuery {
    /// Versions older than this one (the previous page's `next_before`).
    #[serde(default)]
    before: i32,
    /// 1 to 100; 20 when absent.
    #[serde(default)]
    page_size: i32,
}

/// A page of a project's versions, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct VersionsBody {
    versions: Vec<VersionView>,
    /// Pass as `before` for older versions; absent on the last page.
    next_before: Option<i32>,
}

/// A project's saved versions, newest first.
#[utoipa::path(get, path = "/api/projects/{id}/versions", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        VersionsQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of versions", body = VersionsBody),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad page_size (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn versions(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: crate::body::ApiQuery<VersionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListVersionsRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        page_size: q.page_size,
        before_version: q.before,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListVersions", list_versions, call).await?;
    Ok(HttpResponse::Ok().json(VersionsBody {
        versions: res.versions.into_iter().map(Into::into).collect(),
        next_before: (res.next_before_version > 0).then_some(res.next_before_version),
    }))
}

/// One version with its design.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct VersionBody {
    version: VersionView,
    #[schema(value_type = Object, nullable)]
    design: Box<RawValue>,
    #[schema(value_type = Object, nullable)]
    layout: Box<RawValue>,
    /// The engine's problems with this design.
    problems: Vec<ProblemView>,
}

/// One saved version of a project, with its design.
#[utoipa::path(get, path = "/api/projects/{id}/versions/{version}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("version" = i32, Path, description = "The version number"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The version", body = VersionBody),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn version(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, version) = path.into_inner();
    let call = pb::GetVersionRequest {
        caller: Some(caller(&user)),
        project_id,
        version,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetVersion", get_version, call).await?;
    Ok(HttpResponse::Ok().json(VersionBody {
        version: res.info.unwrap_or_default().into(),
        design: raw(res.design_json),
        layout: raw(res.layout_json),
        problems: problems(res.problems),
    }))
}

/// The two versions to compare.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DiffQuery {
    /// The older version.
    from: i32,
    /// The newer version.
    to: i32,
}

/// What changed between two versions of a project's design.
#[utoipa::path(get, path = "/api/projects/{id}/diff", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        DiffQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`{from, to, diff}`: the two versions and the difference: `diff.fields` (top-level fields changed, with `from` and `to`), `diff.components` (`added`, `removed`, `renamed`, `changed`) and `diff.connections`", body = serde_json::Value),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "from or to is missing or not a number", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn diff(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: crate::body::ApiQuery<DiffQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::DiffVersionsRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        from_version: q.from,
        to_version: q.to,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "DiffVersions", diff_versions, call).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(
            "{{\"from\":{},\"to\":{},\"diff\":{}}}",
            q.from, q.to, res.diff_json
        )))
}

/// The version to go back to (it becomes a new version).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    version: i32,
}

/// Makes an old version's design the current one, as a new version (history is never
/// rewritten). `If-Match` is required: a stale one is refused with 412, nothing written.
#[utoipa::path(post, path = "/api/projects/{id}/rollback", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag of the version this rollback is based on (e.g. \"7\"); required"),
    ),
    request_body = RollbackBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project at its new version", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        (status = 400, description = "If-Match is not a project ETag", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may only view it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash, has live edits not saved yet, or has as many versions as it may keep", body = crate::http::openapi::ErrorBody),
        (status = 412, description = "Someone saved first: If-Match is not the current version (in `error.current_version` and the ETag); nothing was written", body = crate::http::openapi::ErrorBody,
            headers(("ETag" = String, description = "The current version"))),
        (status = 428, description = "If-Match is missing", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn rollback(
    state: web::Data<GatewayState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<String>,
    body: ApiJson<RollbackBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    if expected == 0 {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "a rollback must say which version it is based on (If-Match)",
        )
        .field("If-Match"));
    }
    let call = pb::RollbackProjectRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        to_version: body.0.version,
        expected_version: expected,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RollbackProject", rollback_project, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}
