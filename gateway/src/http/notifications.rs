//! `/api/notifications`: the caller's inbox (kept by the auth service): what was sent to
//! them, newest first, with the unread count; marking read.

use super::extract::AuthUser;
use super::json_resource;
use crate::body::ApiJson;
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sdsim_protocols::proto::auth as pb;
use serde::{Deserialize, Serialize};

/// The routes of this area in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, mark_read),
    components(schemas(NotificationView, ListBody, ReadBody, ReadAnswer))
)]
pub(crate) struct Api;

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/api/notifications").route(web::get().to(list)))
        .service(json_resource("/api/notifications/read").route(web::post().to(mark_read)));
}

/// Which page of the inbox.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Page size, 1 to 100 (0 or absent: 20).
    #[serde(default)]
    limit: i32,
    /// Only notifications older than this one (the `next_before` of the previous page).
    #[serde(default)]
    before: String,
    /// Only unread notifications.
    #[serde(default)]
    unread: bool,
}

/// One notification.
#[derive(Serialize, utoipa::ToSchema)]
struct NotificationView {
    id: String,
    /// What happened (e.g. `project.shared`, `simulation.completed`).
    #[serde(rename = "type")]
    kind: String,
    title: String,
    body: String,
    /// Where in the console it points; may be empty.
    link: String,
    /// What the event carries, by type.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    created_at: Option<String>,
    /// `null` while unread.
    read_at: Option<String>,
}

/// A page of the inbox, newest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = NotificationList)]
struct ListBody {
    notifications: Vec<NotificationView>,
    unread_count: i64,
    /// Pass as `before` for older ones; absent on the last page.
    next_before: Option<String>,
}

/// The user's notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of notifications (Cache-Control no-store)", body = ListBody),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`limit` is out of range, `before` is not one of the user's notifications, or the query string is malformed", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Rate limited (429, Retry-After)", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn list(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::ListNotificationsRequest {
        user_id: user.user_id,
        limit: q.limit,
        before_id: q.before,
        unread_only: q.unread,
    };
    let up = &state.upstream;
    let res = rpc!(up, auth, "ListNotifications", list_notifications, call).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ListBody {
            notifications: res
                .notifications
                .into_iter()
                .map(|n| NotificationView {
                    data: serde_json::from_str(&n.data_json).unwrap_or_default(),
                    id: n.id,
                    kind: n.kind,
                    title: n.title,
                    body: n.body,
                    link: n.link,
                    created_at: super::views::timestamp(n.created_at),
                    read_at: super::views::timestamp(n.read_at),
                })
                .collect(),
            unread_count: res.unread_count,
            next_before: (!res.next_before_id.is_empty()).then_some(res.next_before_id),
        }))
}

/// Which notifications to mark read: some by id, or all of them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    /// The notifications' ids (at most 100).
    #[serde(default)]
    ids: Vec<String>,
    /// Every notification of the user.
    #[serde(default)]
    all: bool,
}

/// How many were marked read, and how many are unread now.
#[derive(Serialize, utoipa::ToSchema)]
struct ReadAnswer {
    marked: i64,
    unread_count: i64,
}

/// Marks notifications read.
#[utoipa::path(post, path = "/api/notifications/read", tag = "notifications", request_body = ReadBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many changed, and the unread count after", body = ReadAnswer),
        (status = 401, description = "No token, or it is invalid, expired or revoked", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "Neither `ids` nor `all`, too many ids, an id is not a UUID, or an unknown field (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn mark_read(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ReadBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    let call = pb::MarkNotificationsReadRequest {
        user_id: user.user_id,
        ids: b.ids,
        all: b.all,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        auth,
        "MarkNotificationsRead",
        mark_notifications_read,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(ReadAnswer {
        marked: res.marked,
        unread_count: res.unread_count,
    }))
}
