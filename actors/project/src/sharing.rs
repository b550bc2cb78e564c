//! Sharing: with people by e-mail (invitations for addresses without an account yet),
//! who has what, revoking, handing ownership over.

use crate::access::{self, Op, Role};
use crate::core::{
    in_trash, lock_checked, project_id, uuid, Caller, Permission, ProjectCore, ProjectView,
};
use crate::store;
use chrono::Utc;
use diesel_async::AsyncConnection;
use sdsim_protocols::events::{kinds, Envelope, EventData};
use sdsim_protocols::proto::auth as auth_pb;
use sdsim_protocols::Service;
use sdsim_runtime::error::ServiceError;
use uuid::Uuid;

/// Share mails and notifications one address gets in an hour at most (from every sharer).
const INVITATIONS_PER_HOUR: i64 = 10;

impl ProjectCore {
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
                async move { c.lookup_user(sdsim_runtime::request_id::request(req)).await }
            })
            .await?;
        Ok(match r.found {
            true => Some((uuid("user_id", &r.user_id)?, r.is_verified)),
            false => None,
        })
    }

    /// Ends the share of project `id` with the account `user` (an accepted share, as the
    /// permissions list gives it: by account, not address).
    pub async fn unshare_user(
        &self,
        caller: Caller,
        id: &str,
        user: &str,
    ) -> Result<String, ServiceError> {
        let user = uuid("user_id", user)?;
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        if !store::delete_share(&mut conn, view.row.id, user).await? {
            return Err(ServiceError::NotFound(format!(
                "project {id} is not shared with user {user}"
            )));
        }
        self.unshared(view.row.id, Some(user));
        Ok(format!("user {user} no longer has access to this project"))
    }

    /// `project:events:unshared`: the person's open views of the project (live runs, the
    /// live session) close; without a person (the project was made private), every open view
    /// is checked again and those of people who may no longer see it close.
    pub(crate) fn unshared(&self, project: Uuid, user: Option<Uuid>) {
        let mut data = serde_json::json!({ "project_id": project.to_string() });
        if let Some(user) = user {
            data["user_id"] = serde_json::json!(user.to_string());
        }
        self.events.publish(
            self.ns.project_events("unshared"),
            Envelope::new(
                kinds::PROJECT_UNSHARED,
                "project",
                user.map(|u| u.to_string()),
                data,
            ),
        );
    }

    /// Shares project `id` with the person at `email` as `level` (or changes their level),
    /// or ends their access with `revoke`. The answer is the same whether the address has
    /// an account or not (no way to learn who is registered): without one, the share waits
    /// as an invitation and applies once that person has an account with the address
    /// verified (an unverified account's too). An invitation mail goes out either way, when
    /// the share is new or changed, up to `INVITATIONS_PER_HOUR` to one address.
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
            return Err(in_trash(id));
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
        // A share goes to an account whose address is verified; for any other address it
        // waits as an invitation, claimed once that address is verified by its account.
        // Whatever else is pending for the address goes: a revoked or replaced invitation
        // must not be claimed later.
        let verified = account
            .filter(|(_, verified)| *verified)
            .map(|(user, _)| user);
        let (changed, share_ended) = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let mut changed = false;
                let mut share_ended = false;
                if let Some(user) = account.map(|(user, _)| user) {
                    if revoke || verified.is_none() {
                        share_ended = store::delete_share(conn, pid, user).await?;
                        changed |= share_ended;
                    }
                }
                if revoke || verified.is_some() {
                    changed |= store::delete_invitation(conn, pid, &email_owned).await?;
                }
                if !revoke {
                    changed |= match verified {
                        Some(user) => {
                            store::upsert_share(conn, pid, user, &level_owned, caller.user_id)
                                .await?
                        }
                        None => {
                            store::upsert_invitation(
                                conn,
                                pid,
                                &email_owned,
                                &level_owned,
                                caller.user_id,
                            )
                            .await?
                        }
                    };
                }
                Ok((changed, share_ended))
            })
            .await?;
        // An account that had the project and now waits for its address to be verified:
        // its open views are rechecked (and closed), as a revoke's are.
        if share_ended && !revoke {
            self.unshared(pid, account.map(|(user, _)| user));
        }
        if revoke {
            if let Some((user, _)) = account {
                self.unshared(pid, Some(user));
            }
            return Ok(format!("{email} no longer has access to this project"));
        }
        // Told once per change, and at most `INVITATIONS_PER_HOUR` times an hour per
        // address: sharing is no way to send someone mail without end.
        if !changed {
            return Ok(format!("shared with {email} as {level}"));
        }
        if !self.may_invite(&email).await {
            tracing::info!(project_id = %pid, "share done; its mail and notification are past the address's hourly limit");
            return Ok(format!("shared with {email} as {level}"));
        }
        let link = format!(
            "{}/projects/{pid}",
            self.settings.public_url.trim_end_matches('/')
        );
        self.mail_invitation(&email, &view.row.name, level, &link)
            .await;
        if let Some(user) = verified {
            let data = sdsim_protocols::events::ProjectShared {
                project_id: pid.to_string(),
                project_name: view.row.name.clone(),
                by_user_id: caller.user_id.to_string(),
                access_level: level.to_string(),
                link: link.clone(),
                at: Utc::now(),
            };
            self.events.publish(
                self.ns.project_events("shared"),
                Envelope::new(
                    kinds::PROJECT_SHARED,
                    "project",
                    Some(user.to_string()),
                    data.data(),
                ),
            );
            // To the person: through the inbox, so it waits while they are offline.
            self.notify(sdsim_protocols::events::NotificationJob {
                id: Uuid::new_v4().to_string(),
                user_id: user.to_string(),
                kind: kinds::PROJECT_SHARED.into(),
                title: format!("\"{}\" was shared with you as {level}", view.row.name),
                body: String::new(),
                link,
                data: data.data(),
            })
            .await;
        }
        Ok(format!("shared with {email} as {level}"))
    }

    /// Counts a share's mail to `email` in this hour: false past `INVITATIONS_PER_HOUR`
    /// (true when Redis cannot say: the mail queue needs it anyway).
    async fn may_invite(&self, email: &str) -> bool {
        let key = self.ns.rate_limit("invitation", "address", email);
        let mut conn = self.redis.clone();
        let counted: redis::RedisResult<(i64,)> = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(3600)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await;
        counted.map_or(true, |(n,)| n <= INVITATIONS_PER_HOUR)
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
        sdsim_runtime::queue::push_retrying(
            self.redis.clone(),
            self.ns.async_queue("email"),
            payload,
        );
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
                let (mut row, _) = lock_checked(conn, pid, &id_text, caller, Op::Share).await?;
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

    /// Queues a notification for the auth service's inbox worker; a failure is logged,
    /// not the caller's error.
    pub(crate) async fn notify(&self, job: sdsim_protocols::events::NotificationJob) {
        let Ok(payload) = serde_json::to_string(&job) else {
            return;
        };
        sdsim_runtime::queue::push_retrying(
            self.redis.clone(),
            self.ns.async_queue("notifications"),
            payload,
        );
    }
}
