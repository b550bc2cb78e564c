//! Starting points and copies: templates (listing, reading, saving a project as one),
//! forks, and a project's export and import as a document.

use super::*;

/// The routes of this part in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(templates, template, fork, export, import, save_as_template),
    components(schemas(
        TemplateView,
        TemplatesBody,
        TemplateBody,
        ForkBody,
        ImportBody,
        NewTemplateBody
    ))
)]
pub(crate) struct Api;

/// A design to start a project from.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TemplateView {
    id: String,
    name: String,
    description: String,
    category: String,
    /// One of sdsim's own (no author).
    is_system: bool,
    is_public: bool,
    author_id: Option<String>,
    /// The engine design. In a listing, null for a large one (or past 2 MiB of designs in
    /// all): `GET /api/templates/{id}` has it.
    #[schema(value_type = Object, nullable)]
    design: Box<RawValue>,
}

impl From<pb::Template> for TemplateView {
    fn from(t: pb::Template) -> Self {
        Self {
            design: raw(t.configuration_json),
            id: t.template_id,
            name: t.name,
            description: t.description,
            category: t.category,
            is_system: t.is_system,
            is_public: t.is_public,
            author_id: (!t.author_id.is_empty()).then_some(t.author_id),
        }
    }
}

/// Which templates.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplatesQuery {
    /// Only this category; every one when absent.
    #[serde(default)]
    category: String,
}

/// The templates the caller may use.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TemplatesBody {
    templates: Vec<TemplateView>,
}

/// The templates the caller may start a project from: sdsim's, public ones and their own.
#[utoipa::path(get, path = "/api/templates", tag = "projects",
    params(TemplatesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The templates", body = TemplatesBody),
        crate::http::openapi::Unauthenticated,
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn templates(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<TemplatesQuery>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ListTemplatesRequest {
        category: q.into_inner().category,
        user_id: user.user_id,
        ..Default::default()
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListTemplates", list_templates, call).await?;
    Ok(HttpResponse::Ok().json(TemplatesBody {
        templates: res.templates.into_iter().map(Into::into).collect(),
    }))
}

/// A template.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TemplateBody {
    template: TemplateView,
}

/// A template with its design.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "projects",
    params(("id" = String, Path, description = "The template's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The template", body = TemplateBody),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such template", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn template(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetTemplateRequest {
        template_id: path.into_inner(),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "GetTemplate", get_template, call).await?;
    Ok(HttpResponse::Ok().json(TemplateBody {
        template: res.template.unwrap_or_default().into(),
    }))
}

/// A copy of a project for the caller (`{}` for the current design).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ForkProjectBody)]
pub(super) struct ForkBody {
    /// The version to copy; absent: the current design.
    #[serde(default)]
    version: i32,
    /// The fork's name; absent: the project's name and "(fork)".
    #[serde(default)]
    name: String,
}

/// Copies a project (its current design or an old version) into a new one of the caller's.
#[utoipa::path(post, path = "/api/projects/{id}/fork", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = ForkBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The fork", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project or version", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The name is invalid", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn fork(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<ForkBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ForkProjectRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        version: b.version,
        name: b.name,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ForkProject", fork_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

/// What the export holds.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    /// With the version history.
    #[serde(default)]
    versions: bool,
}

/// A project as one self-contained JSON document (a download), for `POST /api/projects/import`.
#[utoipa::path(get, path = "/api/projects/{id}/export", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ExportQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project document (its design, layout and details, with its versions when asked)", body = serde_json::Value, headers(("Content-Disposition" = String, description = "attachment; filename=\"<id>.sdsim.json\""))),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn export(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: crate::body::ApiQuery<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let project_id = path.into_inner();
    let call = pb::ExportProjectRequest {
        caller: Some(caller(&user)),
        project_id: project_id.clone(),
        include_versions: q.versions,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ExportProject", export_project, call).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{project_id}.sdsim.json\""),
        ))
        .body(res.document_json))
}

/// A project to create from a document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ImportProjectBody)]
pub(super) struct ImportBody {
    /// A project document (from export) or a bare engine design.
    #[schema(value_type = Object)]
    document: Value,
    /// The new project's name; absent: the document's.
    #[serde(default)]
    name: String,
}

/// Creates a project from a document: an export, or a bare engine design.
#[utoipa::path(post, path = "/api/projects/import", tag = "projects",
    request_body = ImportBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 422, description = "The document is not a project document or a design (the part at fault in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn import(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ImportProjectRequest {
        caller: Some(caller(&user)),
        // The rest of the message (the name, the caller) is far under 64 KiB.
        document_json: crate::body::json_text(
            &b.document,
            "document",
            sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES - (64 << 10),
        )?,
        name: b.name,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ImportProject", import_project, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}

/// A template made of a project's design; absent fields: the project's.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTemplateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    is_public: bool,
}

/// Makes a template of a project's design.
#[utoipa::path(post, path = "/api/projects/{id}/template", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = NewTemplateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new template", body = TemplateBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may make a template of it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn save_as_template(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<NewTemplateBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::SaveAsTemplateRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        name: b.name,
        description: b.description,
        category: b.category,
        is_public: b.is_public,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "SaveAsTemplate", save_as_template, call).await?;
    Ok(HttpResponse::Created().json(TemplateBody {
        template: res.template.unwrap_or_default().into(),
    }))
}
