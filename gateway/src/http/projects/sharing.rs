//! Who may see and change a project: shares by e-mail, permissions, ownership transfer,
//! and share links (made, listed, revoked, opened, forked).

use super::*;

/// The routes of this part in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        share,
        unshare,
        permissions,
        transfer,
        create_link,
        list_links,
        revoke_link,
        open_link,
        fork_link
    ),
    components(schemas(
        ShareBody,
        ShareAnswer,
        PermissionView,
        PermissionsBody,
        TransferBody,
        LinkBody,
        LinkView,
        LinksBody,
        Revoked
    ))
)]
pub(crate) struct Api;

/// Whom to share the project with (a person without an account gets an invitation).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareBody {
    email: String,
    /// `viewer` or `editor`.
    #[schema(value_type = ShareRole)]
    role: String,
}

/// What was done, in words.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ShareResult)]
pub(super) struct ShareAnswer {
    message: String,
}

/// Shares a project with someone by e-mail (an invitation when they have no account yet).
#[utoipa::path(post, path = "/api/projects/{id}/shares", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = ShareBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Shared", body = ShareAnswer),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may share it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "It is in the trash (`in_trash`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad e-mail address or role, or the caller's own address", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn share(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<ShareBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::ShareProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        owner_id: user.user_id,
        share_with_user_id: String::new(),
        share_with_email: b.email,
        access_level: b.role,
        revoke: false,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ShareProject", share_project, call).await?;
    Ok(HttpResponse::Ok().json(ShareAnswer {
        message: res.message,
    }))
}

/// Whose share ends: `email` (a person or an invitation), or `user_id` (an accepted share,
/// as the permissions list names it).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct UnshareQuery {
    /// A person's or an invitation's e-mail address.
    #[serde(default)]
    email: Option<String>,
    /// The account id of an accepted share.
    #[serde(default)]
    user_id: Option<String>,
}

/// Ends someone's access: `?email=` or `?user_id=`, one of them.
#[utoipa::path(delete, path = "/api/projects/{id}/shares", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        UnshareQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Unshared", body = ShareAnswer),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may unshare it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or it is not shared with them", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "Neither or both of email and user_id, or a bad one", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn unshare(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: crate::body::ApiQuery<UnshareQuery>,
) -> Result<HttpResponse, ApiError> {
    let (email, user_id) = match q.into_inner() {
        UnshareQuery {
            email: Some(e),
            user_id: None,
        } => (e, String::new()),
        UnshareQuery {
            email: None,
            user_id: Some(u),
        } => (String::new(), u),
        _ => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "say whose share ends: ?email=<address> or ?user_id=<account id>, one of them",
            )
            .field("email"))
        }
    };
    let call = pb::ShareProjectRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        owner_id: user.user_id,
        share_with_user_id: user_id,
        share_with_email: email,
        access_level: String::new(),
        revoke: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ShareProject", share_project, call).await?;
    Ok(HttpResponse::Ok().json(ShareAnswer {
        message: res.message,
    }))
}

/// Someone the project is shared with.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PermissionView {
    user_id: Option<String>,
    email: Option<String>,
    /// `owner` (the project's owner comes first), `editor` or `viewer`.
    #[schema(value_type = PermissionRole)]
    role: String,
    /// An invitation not accepted yet (no account id).
    pending: bool,
    granted_by: Option<String>,
    granted_at: Option<String>,
}

/// Who has access to a project.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PermissionsBody {
    /// The caller's own role.
    access_level: String,
    permissions: Vec<PermissionView>,
}

/// Who has access to a project, and the caller's own role.
#[utoipa::path(get, path = "/api/projects/{id}/permissions", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The shares and invitations", body = PermissionsBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller's role does not allow this", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn permissions(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetProjectPermissionsRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        project,
        "GetProjectPermissions",
        get_project_permissions,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(PermissionsBody {
        access_level: res.access_level,
        permissions: res
            .permissions
            .into_iter()
            .map(|p| PermissionView {
                user_id: (!p.user_id.is_empty()).then_some(p.user_id),
                email: (!p.email.is_empty()).then_some(p.email),
                role: p.access_level,
                pending: p.pending,
                granted_by: (!p.granted_by.is_empty()).then_some(p.granted_by),
                granted_at: timestamp(p.granted_at),
            })
            .collect(),
    }))
}

/// The new owner: someone the project is shared with (the old owner becomes an editor).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    user_id: String,
}

/// Gives a project to someone it is shared with; the old owner stays as an editor.
#[utoipa::path(post, path = "/api/projects/{id}/owner", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = TransferBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project with its new owner", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may give it away", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The person is its owner already, or it is not shared with them", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn transfer(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<TransferBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::TransferOwnershipRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        new_owner_id: body.0.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "TransferOwnership", transfer_ownership, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

/// A new share link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkBody {
    /// `view` (open and fork) or `fork` (fork only).
    #[schema(value_type = LinkAccess)]
    access: String,
    /// Absent or 0: never expires.
    #[serde(default)]
    expires_in_seconds: i64,
}

/// A share link: anyone signed in who has it may open or fork the project.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct LinkView {
    id: String,
    #[schema(value_type = LinkAccess)]
    access: String,
    /// Only in the answer that created the link: it is not kept in clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The path a signed-in person opens (`GET`) or forks (`POST .../fork`).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    created_at: Option<String>,
    expires_at: Option<String>,
    revoked: bool,
}

impl From<pb::ShareLink> for LinkView {
    fn from(l: pb::ShareLink) -> Self {
        let token = (!l.token.is_empty()).then_some(l.token);
        Self {
            path: token.as_ref().map(|t| format!("/api/links/{t}")),
            token,
            id: l.link_id,
            access: l.access,
            created_at: timestamp(l.created_at),
            expires_at: timestamp(l.expires_at),
            revoked: l.revoked,
        }
    }
}

/// Creates a share link; its token is shown in this answer only.
#[utoipa::path(post, path = "/api/projects/{id}/links", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    request_body = LinkBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The link, with its token and path", body = LinkView),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may create links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "A bad access or expiry, or too many links (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large or not JSON (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn create_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<LinkBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::CreateShareLinkRequest {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
        access: b.access,
        expires_in_seconds: b.expires_in_seconds,
    };
    let up = &state.upstream;
    let link = rpc!(up, project, "CreateShareLink", create_share_link, call).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LinkView::from(link)))
}

/// A project's share links (without their tokens).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct LinksBody {
    links: Vec<LinkView>,
}

/// A project's share links (their tokens are not kept).
#[utoipa::path(get, path = "/api/projects/{id}/links", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The links", body = LinksBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may see its links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn list_links(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListShareLinks", list_share_links, call).await?;
    Ok(HttpResponse::Ok().json(LinksBody {
        links: res.links.into_iter().map(Into::into).collect(),
    }))
}

/// A revocation.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LinkRevoked)]
pub(super) struct Revoked {
    /// False when it was revoked already.
    revoked: bool,
}

/// Revokes a share link: opening it answers 410 from now on.
#[utoipa::path(delete, path = "/api/projects/{id}/links/{link_id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("link_id" = String, Path, description = "The link's id"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "Only its owner may revoke links", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project or link", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn revoke_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, link_id) = path.into_inner();
    let call = pb::RevokeShareLinkRequest {
        caller: Some(caller(&user)),
        project_id,
        link_id,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "RevokeShareLink", revoke_share_link, call).await?;
    Ok(HttpResponse::Ok().json(Revoked {
        revoked: res.revoked,
    }))
}

/// Opens a project through a share link (`view` links).
#[utoipa::path(get, path = "/api/links/{token}", tag = "projects",
    params(("token" = String, Path, description = "The link's token")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The link lets the caller fork the project, not open it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such link, or its project is gone", body = crate::http::openapi::ErrorBody),
        (status = 410, description = "The link was revoked or has expired", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn open_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::OpenShareLinkRequest {
        caller: Some(caller(&user)),
        token: path.into_inner(),
        fork: false,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "OpenShareLink", open_share_link, call).await?;
    Ok(project_response(StatusCode::OK, res.project))
}

/// Forks the project of a share link into a new one of the caller's.
#[utoipa::path(post, path = "/api/links/{token}/fork", tag = "projects",
    params(("token" = String, Path, description = "The link's token")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The fork", body = ProjectBody, headers(("ETag" = String, description = "The project's version, quoted: send it back as If-Match"))),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such link, or its project is gone", body = crate::http::openapi::ErrorBody),
        (status = 410, description = "The link was revoked or has expired", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn fork_link(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::OpenShareLinkRequest {
        caller: Some(caller(&user)),
        token: path.into_inner(),
        fork: true,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "OpenShareLink", open_share_link, call).await?;
    Ok(project_response(StatusCode::CREATED, res.project))
}
