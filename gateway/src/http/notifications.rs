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

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(json_resource("/api/notifications").route(web::get().to(list)))
        .service(json_resource("/api/notifications/read").route(web::post().to(mark_read)));
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    limit: i32,
    #[serde(default)]
    before: String,
    #[serde(default)]
    unread: bool,
}

#[derive(Serialize)]
struct NotificationView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    body: String,
    link: String,
    data: serde_json::Value,
    created_at: Option<String>,
    read_at: Option<String>,
}

#[derive(Serialize)]
struct ListBody {
    notifications: Vec<NotificationView>,
    unread_count: i64,
    /// Pass as `before` for older ones; absent on the last page.
    next_before: Option<String>,
}

async fn list(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<ListQuery>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    all: bool,
}

#[derive(Serialize)]
struct ReadAnswer {
    marked: i64,
    unread_count: i64,
}

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
