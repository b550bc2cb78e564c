//! The tonic adapter of the auth service: proto in, a request run against the auth core on
//! the calling task (every core; see [`crate::actor`]), proto out. Proto types stop here;
//! the core sees domain types.

use crate::accounts::{ChangePassword, Login, Refresh, Register, UpdateProfile};
use crate::actor::{CoreCell, Request as CoreRequest};
use crate::admin::{Admin, AdminOp, AdminOutcome};
use crate::core::{LoginOutcome, Origin, Profile};
use crate::inbox::{ListNotifications, MarkRead};
use crate::recovery::{RequestReset, RequestVerification, ResetPassword, VerifyEmail};
use crate::sessions::{
    EndSession, GetProfile, GetSession, GetUser, ListSessions, Logout, LookupUser, ValidateToken,
};
use sdsim_protocols::proto::auth as pb;
use sdsim_protocols::proto::auth::auth_service_server::AuthService;
use sdsim_protocols::proto::common::{HealthCheckRequest, HealthCheckResponse};
use sdsim_runtime::error::ServiceError;
use sdsim_runtime::grpc::reply;
use sdsim_runtime::health::HealthProbe;
use tonic::{Request, Response, Status};
use uuid::Uuid;

#[derive(Clone)]
pub struct AuthGrpc {
    /// The live auth core; every RPC runs against it on the task that received it.
    pub cell: CoreCell,
    pub health: HealthProbe,
}

fn profile_pb(p: Profile) -> pb::UserProfile {
    let is_admin = p.is_admin();
    pb::UserProfile {
        user_id: p.id.to_string(),
        email: p.email,
        first_name: p.first_name,
        last_name: p.last_name,
        company: p.company.unwrap_or_default(),
        is_active: p.is_active,
        is_verified: p.is_verified,
        is_admin,
        roles: p.roles,
        created_at: p.created_at.timestamp(),
        last_login: p.last_login_at.map(|t| t.timestamp()).unwrap_or(0),
    }
}

fn login_pb(o: LoginOutcome) -> pb::LoginResponse {
    pb::LoginResponse {
        user: Some(profile_pb(o.profile)),
        access_token: o.access_token,
        refresh_token: o.refresh_token,
        expires_in: o.expires_in,
        session_id: o.session_id.to_string(),
    }
}

fn uuid_field(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    raw.parse()
        .map_err(|_| ServiceError::invalid(field, format!("{field} must be a UUID")))
}

fn origin(ip: String, user_agent: String) -> Origin {
    Origin { ip, user_agent }
}

fn unexpected(o: AdminOutcome) -> ServiceError {
    ServiceError::Internal(format!("unexpected admin outcome {o:?}"))
}

fn user_outcome(o: AdminOutcome) -> Result<pb::UserProfile, ServiceError> {
    match o {
        AdminOutcome::User(p) => Ok(profile_pb(p)),
        other => Err(unexpected(other)),
    }
}

impl AuthGrpc {
    async fn admin(
        &self,
        access_token: String,
        op: AdminOp,
        origin: Origin,
    ) -> Result<AdminOutcome, ServiceError> {
        self.call(Admin {
            access_token,
            op,
            origin,
        })
        .await
    }

    /// Runs `req` against the live core (a restarting service is `Unavailable`).
    async fn call<R: CoreRequest>(&self, req: R) -> Result<R::Output, ServiceError> {
        self.cell.call(req).await
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(Register {
                email: r.email,
                password: r.password,
                first_name: r.first_name,
                last_name: r.last_name,
                company: r.company,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(|p| pb::RegisterResponse {
                user: Some(profile_pb(p)),
            });
        reply(res)
    }

    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(Login {
                email: r.email,
                password: r.password,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(login_pb);
        reply(res)
    }

    async fn refresh_token(
        &self,
        req: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(Refresh {
                refresh_token: r.refresh_token,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(login_pb);
        reply(res)
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(Logout {
                access_token: r.access_token,
                all_sessions: r.all_sessions,
            })
            .await
            .map(|n| pb::LogoutResponse {
                sessions_ended: n as i32,
            });
        reply(res)
    }

    async fn update_profile(
        &self,
        req: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let r = req.into_inner();
        let res = self
            .call(UpdateProfile {
                access_token: r.access_token,
                first_name: r.first_name,
                last_name: r.last_name,
                company: r.company,
            })
            .await
            .map(profile_pb);
        reply(res)
    }

    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(ChangePassword {
                access_token: r.access_token,
                current_password: r.current_password,
                new_password: r.new_password,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(|n| pb::ChangePasswordResponse {
                sessions_ended: n as i32,
            });
        reply(res)
    }

    async fn admin_list_users(
        &self,
        req: Request<pb::AdminListUsersRequest>,
    ) -> Result<Response<pb::AdminListUsersResponse>, Status> {
        let r = req.into_inner();
        let op = AdminOp::ListUsers {
            query: r.query,
            limit: i64::from(r.limit),
            offset: i64::from(r.offset),
        };
        let res = self
            .admin(r.access_token, op, Origin::default())
            .await
            .and_then(|o| match o {
                AdminOutcome::Users { users, total } => Ok(pb::AdminListUsersResponse {
                    users: users.into_iter().map(profile_pb).collect(),
                    total,
                }),
                other => Err(unexpected(other)),
            });
        reply(res)
    }

    async fn admin_change_role(
        &self,
        req: Request<pb::AdminChangeRoleRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => {
                let op = if r.remove {
                    AdminOp::RemoveRole {
                        user_id,
                        role: r.role,
                    }
                } else {
                    AdminOp::AddRole {
                        user_id,
                        role: r.role,
                    }
                };
                self.admin(r.access_token, op, origin(r.ip, r.user_agent))
                    .await
                    .and_then(user_outcome)
            }
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn admin_set_locked(
        &self,
        req: Request<pb::AdminSetLockedRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => self
                .admin(
                    r.access_token,
                    AdminOp::SetLocked {
                        user_id,
                        locked: r.locked,
                    },
                    origin(r.ip, r.user_agent),
                )
                .await
                .and_then(user_outcome),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn admin_end_sessions(
        &self,
        req: Request<pb::AdminEndSessionsRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => self
                .admin(
                    r.access_token,
                    AdminOp::EndSessions { user_id },
                    origin(r.ip, r.user_agent),
                )
                .await
                .and_then(|o| match o {
                    AdminOutcome::SessionsEnded(n) => Ok(pb::LogoutResponse {
                        sessions_ended: n as i32,
                    }),
                    other => Err(unexpected(other)),
                }),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn admin_audit_log(
        &self,
        req: Request<pb::AdminAuditLogRequest>,
    ) -> Result<Response<pb::AdminAuditLogResponse>, Status> {
        let r = req.into_inner();
        let user_id = if r.user_id.is_empty() {
            Ok(None)
        } else {
            uuid_field("user_id", &r.user_id).map(Some)
        };
        let res = match user_id {
            Ok(user_id) => {
                let op = AdminOp::Audit {
                    user_id,
                    event: (!r.event.is_empty()).then_some(r.event),
                    before_id: (r.before_id > 0).then_some(r.before_id),
                    limit: i64::from(r.limit),
                };
                self.admin(r.access_token, op, Origin::default())
                    .await
                    .and_then(|o| match o {
                        AdminOutcome::Audit(rows) => Ok(pb::AdminAuditLogResponse {
                            entries: rows
                                .into_iter()
                                .map(|a| pb::AuditEntry {
                                    id: a.id,
                                    occurred_at: a.occurred_at.timestamp(),
                                    event: a.event,
                                    user_id: a.user_id.map(|u| u.to_string()).unwrap_or_default(),
                                    session_id: a
                                        .session_id
                                        .map(|u| u.to_string())
                                        .unwrap_or_default(),
                                    ip: a.ip,
                                    user_agent: a.user_agent,
                                    detail_json: a.detail.to_string(),
                                })
                                .collect(),
                        }),
                        other => Err(unexpected(other)),
                    })
            }
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn request_email_verification(
        &self,
        req: Request<pb::RequestEmailVerificationRequest>,
    ) -> Result<Response<pb::RequestEmailVerificationResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(RequestVerification {
                access_token: r.access_token,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(|sent| pb::RequestEmailVerificationResponse { sent });
        reply(res)
    }

    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(VerifyEmail { token: r.token })
            .await
            .map(|()| pb::VerifyEmailResponse {});
        reply(res)
    }

    async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(RequestReset {
                email: r.email,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(|()| pb::RequestPasswordResetResponse {});
        reply(res)
    }

    async fn reset_password(
        &self,
        req: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(ResetPassword {
                token: r.token,
                new_password: r.new_password,
                origin: origin(r.ip, r.user_agent),
            })
            .await
            .map(|n| pb::LogoutResponse {
                sessions_ended: n as i32,
            });
        reply(res)
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(ListSessions {
                access_token: r.access_token,
            })
            .await
            .map(|list| pb::ListSessionsResponse {
                sessions: list
                    .into_iter()
                    .map(|s| pb::SessionInfo {
                        session_id: s.id.to_string(),
                        ip: s.ip,
                        user_agent: s.user_agent,
                        created_at: s.created_at.timestamp(),
                        last_used_at: s.last_used_at.timestamp(),
                        expires_at: s.expires_at.timestamp(),
                        current: s.current,
                    })
                    .collect(),
            });
        reply(res)
    }

    async fn end_session(
        &self,
        req: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("session_id", &r.session_id) {
            Ok(session_id) => self
                .call(EndSession {
                    access_token: r.access_token,
                    session_id,
                })
                .await
                .map(|ended| pb::EndSessionResponse { ended }),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn get_profile(
        &self,
        req: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::UserProfile>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => self.call(GetProfile { user_id }).await.map(profile_pb),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn validate_token(
        &self,
        req: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let r = req.into_inner();
        // An invalid token is an answer (valid = false, with the reason), not an RPC error;
        // only an unavailable dependency is an error.
        let res = match self.call(ValidateToken { token: r.token }).await {
            Ok(info) => Ok(pb::ValidateTokenResponse {
                valid: true,
                user_id: info.user_id.to_string(),
                email: info.email,
                is_admin: info.is_admin,
                session_id: info.session_id.to_string(),
                permissions: info.permissions,
                expires_at: info.expires_at,
                error: String::new(),
            }),
            Err(ServiceError::Unauthenticated { code, .. }) => Ok(pb::ValidateTokenResponse {
                valid: false,
                error: code,
                ..Default::default()
            }),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn get_user_context(
        &self,
        req: Request<pb::GetUserContextRequest>,
    ) -> Result<Response<pb::GetUserContextResponse>, Status> {
        let r = req.into_inner();
        let res =
            match uuid_field("user_id", &r.user_id) {
                Ok(user_id) => self.call(GetUser { user_id }).await.map(|(p, perms)| {
                    pb::GetUserContextResponse {
                        user_id: p.id.to_string(),
                        name: format!("{} {}", p.first_name, p.last_name),
                        email: p.email,
                        roles: p.roles,
                        permissions: perms,
                        is_active: p.is_active,
                        is_verified: p.is_verified,
                        last_login: p.last_login_at.map(|t| t.timestamp()).unwrap_or(0),
                    }
                }),
                Err(e) => Err(e),
            };
        reply(res)
    }

    async fn list_notifications(
        &self,
        req: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let user_id = uuid_field("user_id", &r.user_id)?;
            let before = match r.before_id.as_str() {
                "" => None,
                b => Some(uuid_field("before", b)?),
            };
            let limit = if r.limit == 0 { 20 } else { i64::from(r.limit) };
            let (rows, unread) = self
                .call(ListNotifications {
                    user_id,
                    limit,
                    before,
                    unread_only: r.unread_only,
                })
                .await?;
            let next = if rows.len() as i64 == limit {
                rows.last().map(|n| n.id.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(pb::ListNotificationsResponse {
                notifications: rows
                    .into_iter()
                    .map(|n| pb::Notification {
                        id: n.id.to_string(),
                        kind: n.kind,
                        title: n.title,
                        body: n.body,
                        link: n.link,
                        data_json: n.data.to_string(),
                        created_at: n.created_at.timestamp(),
                        read_at: n.read_at.map_or(0, |t| t.timestamp()),
                    })
                    .collect(),
                unread_count: unread,
                next_before_id: next,
            })
        }
        .await;
        reply(res)
    }

    async fn mark_notifications_read(
        &self,
        req: Request<pb::MarkNotificationsReadRequest>,
    ) -> Result<Response<pb::MarkNotificationsReadResponse>, Status> {
        let r = req.into_inner();
        let res = async {
            let user_id = uuid_field("user_id", &r.user_id)?;
            let ids = r
                .ids
                .iter()
                .enumerate()
                .map(|(i, id)| uuid_field(&format!("ids[{i}]"), id))
                .collect::<Result<Vec<_>, _>>()?;
            let (marked, unread) = self
                .call(MarkRead {
                    user_id,
                    ids,
                    all: r.all,
                })
                .await?;
            Ok(pb::MarkNotificationsReadResponse {
                marked,
                unread_count: unread,
            })
        }
        .await;
        reply(res)
    }

    async fn lookup_user(
        &self,
        req: Request<pb::LookupUserRequest>,
    ) -> Result<Response<pb::LookupUserResponse>, Status> {
        let r = req.into_inner();
        let res = self
            .call(LookupUser { email: r.email })
            .await
            .map(|found| match found {
                Some(p) => pb::LookupUserResponse {
                    found: true,
                    user_id: p.id.to_string(),
                    name: format!("{} {}", p.first_name, p.last_name),
                    is_verified: p.is_verified,
                    email: p.email,
                },
                None => pb::LookupUserResponse::default(),
            });
        reply(res)
    }

    async fn check_permission(
        &self,
        req: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => match self.call(GetUser { user_id }).await {
                Ok((p, perms)) => {
                    let allowed = p.is_active && perms.iter().any(|x| x == &r.permission);
                    Ok(pb::CheckPermissionResponse {
                        allowed,
                        reason: if allowed {
                            "granted by role".into()
                        } else if !p.is_active {
                            "account is disabled".into()
                        } else {
                            format!("no role of this user grants {}", r.permission)
                        },
                    })
                }
                Err(ServiceError::NotFound(_)) => Ok(pb::CheckPermissionResponse {
                    allowed: false,
                    reason: "unknown user".into(),
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn validate_session(
        &self,
        req: Request<pb::ValidateSessionRequest>,
    ) -> Result<Response<pb::ValidateSessionResponse>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("session_id", &r.session_id) {
            Ok(session_id) => match self.call(GetSession { session_id }).await {
                Ok(s) => {
                    let owner_ok = r.user_id.is_empty() || r.user_id == s.user_id.to_string();
                    Ok(pb::ValidateSessionResponse {
                        valid: s.revoked.is_none() && owner_ok,
                        user_id: s.user_id.to_string(),
                        expires_at: s.expires_at.timestamp(),
                        last_used_at: s.last_used_at.timestamp(),
                        reason: match (&s.revoked, owner_ok) {
                            (Some(r), _) => r.clone(),
                            (None, false) => "session belongs to another user".into(),
                            (None, true) => String::new(),
                        },
                    })
                }
                Err(ServiceError::NotFound(_)) => Ok(pb::ValidateSessionResponse {
                    valid: false,
                    reason: "unknown session".into(),
                    ..Default::default()
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn get_user_permissions(
        &self,
        req: Request<pb::GetUserPermissionsRequest>,
    ) -> Result<Response<pb::GetUserPermissionsResponse>, Status> {
        let r = req.into_inner();
        let res = match uuid_field("user_id", &r.user_id) {
            Ok(user_id) => self.call(GetUser { user_id }).await.map(|(p, perms)| {
                pb::GetUserPermissionsResponse {
                    user_id: p.id.to_string(),
                    roles: p.roles,
                    permissions: perms,
                }
            }),
            Err(e) => Err(e),
        };
        reply(res)
    }

    async fn health_check(
        &self,
        _req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let serving = self.cell.is_live();
        Ok(Response::new(self.health.check("auth", serving).await))
    }
}

/// Wraps the auth server: a response to a call during which this instance ended sessions or
/// changed permissions (its validation cache's epoch moved) carries
/// [`SESSIONS_CHANGED_HEADER`](sdsim_protocols::rpc::SESSIONS_CHANGED_HEADER), so a caller
/// that caches validations (the gateway) drops them before it answers, and its next request
/// is checked afresh. A concurrent revocation by another call may set it too; dropping the
/// cache once more is harmless.
#[derive(Clone)]
pub struct SessionsChangedStamp<S> {
    pub inner: S,
    pub core: std::sync::Arc<crate::core::AuthCore>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for SessionsChangedStamp<S> {
    const NAME: &'static str = S::NAME;
}

type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

impl<S, B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for SessionsChangedStamp<S>
where
    S: tonic::codegen::Service<
        tonic::codegen::http::Request<B>,
        Response = HttpResponse,
        Error = std::convert::Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<HttpResponse, std::convert::Infallible>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<B>) -> Self::Future {
        let before = self.core.validated.epoch();
        let answer = self.inner.call(req);
        let core = self.core.clone();
        Box::pin(async move {
            let mut res = answer.await?;
            if core.validated.epoch() != before {
                res.headers_mut().insert(
                    sdsim_protocols::rpc::SESSIONS_CHANGED_HEADER,
                    tonic::codegen::http::HeaderValue::from_static("1"),
                );
            }
            Ok(res)
        })
    }
}
