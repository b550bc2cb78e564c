//! Who is in a project now (joining and leaving a collaboration) and its analytics.

use super::*;

/// The routes of this part in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(join, leave, collaborators, analytics),
    components(schemas(Presence, Left, AnalyticsView))
)]
pub(crate) struct Api;

/// Who is in a project now.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CollaborationPresence)]
pub(super) struct Presence {
    /// The caller's new collaboration session (only when joining).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    /// The people in the project now (user ids).
    present: Vec<String>,
}

/// Joins a project's collaboration: a session and who is there now (edits go over
/// `/ws/collaboration/{project_id}`).
#[utoipa::path(post, path = "/api/projects/{id}/collaboration", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The session and who is present", body = Presence),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn join(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::JoinCollaborationRequest {
        project_id: path.into_inner(),
        is_admin: is_admin(&user),
        user_id: user.user_id,
        gateway_instance: state.instance_id.clone(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "JoinCollaboration", join_collaboration, call).await?;
    Ok(HttpResponse::Created().json(Presence {
        session_id: Some(res.collaboration_session_id),
        present: res.active_users,
    }))
}

/// A departure.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CollaborationLeft)]
pub(super) struct Left {
    /// False when the session had ended already.
    left: bool,
}

/// Leaves a collaboration session.
#[utoipa::path(delete, path = "/api/projects/{id}/collaboration/{session_id}", tag = "projects",
    params(
        ("id" = String, Path, description = "The project's id"),
        ("session_id" = String, Path, description = "The session `POST .../collaboration` answered"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Left", body = Left),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The session id is not a UUID", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn leave(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_id, session) = path.into_inner();
    let call = pb::LeaveCollaborationRequest {
        project_id,
        user_id: user.user_id,
        collaboration_session_id: session,
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "LeaveCollaboration", leave_collaboration, call).await?;
    Ok(HttpResponse::Ok().json(Left { left: res.left }))
}

/// Who is in a project now.
#[utoipa::path(get, path = "/api/projects/{id}/collaborators", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The people present", body = Presence),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn collaborators(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let res = rpc!(up, project, "ListCollaborators", list_collaborators, call).await?;
    Ok(HttpResponse::Ok().json(Presence {
        session_id: None,
        present: res.active_users,
    }))
}

/// A project's counts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ProjectAnalytics)]
pub(super) struct AnalyticsView {
    views: i64,
    forks: i64,
    runs: i64,
    versions: i32,
    collaborators_now: i32,
}

/// A project's views, forks, runs, versions and people present.
#[utoipa::path(get, path = "/api/projects/{id}/analytics", tag = "projects",
    params(("id" = String, Path, description = "The project's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The counts", body = AnalyticsView),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller's role does not allow this", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, or not one the caller may see", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed input (422 names the field), or rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn analytics(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ProjectRef {
        caller: Some(caller(&user)),
        project_id: path.into_inner(),
    };
    let up = &state.upstream;
    let a = rpc!(
        up,
        project,
        "GetProjectAnalytics",
        get_project_analytics,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(AnalyticsView {
        views: a.views,
        forks: a.forks,
        runs: a.runs,
        versions: a.versions,
        collaborators_now: a.collaborators_now,
    }))
}
