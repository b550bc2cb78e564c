//! Share links: an unguessable token (32 random bytes; only its SHA-256 is stored) that
//! lets any signed-in person view a project (and fork it), or only fork it, until the link
//! expires or its owner revokes it. An unknown token is 404; an expired or revoked one is
//! 410, saying which.

use crate::access::{self, Op, Role};
use crate::core::{in_trash, Caller, ProjectCore, ProjectView};
use crate::store::{self, ProjectRow};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sdsim_runtime::error::ServiceError;
use sdsim_schema::tables::project_schema::project_links;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The longest a link may live.
pub const MAX_LINK_SECONDS: i64 = 365 * 86_400;
/// The most live links a project may have.
pub const MAX_LINKS: i64 = 50;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = project_links)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct LinkRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub token_hash: String,
    pub access: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A link as its owner sees it; `token` only right after creation.
#[derive(Debug, Clone)]
pub struct Link {
    pub row: LinkRow,
    pub token: Option<String>,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn live_links(conn: &mut AsyncPgConnection, project: Uuid) -> Result<i64, ServiceError> {
    Ok(project_links::table
        .filter(project_links::project_id.eq(project))
        .filter(project_links::revoked_at.is_null())
        // An expired link opens nothing: it does not hold a place.
        .filter(
            project_links::expires_at
                .is_null()
                .or(project_links::expires_at.gt(Utc::now())),
        )
        .count()
        .get_result(conn)
        .await?)
}

impl ProjectCore {
    pub async fn create_link(
        &self,
        caller: Caller,
        id: &str,
        access_kind: &str,
        expires_in_seconds: i64,
    ) -> Result<Link, ServiceError> {
        if !matches!(access_kind, "view" | "fork") {
            return Err(ServiceError::invalid(
                "access",
                format!("access must be view or fork, not {access_kind:?}"),
            ));
        }
        if !(0..=MAX_LINK_SECONDS).contains(&expires_in_seconds) {
            return Err(ServiceError::invalid(
                "expires_in_seconds",
                format!("expires_in_seconds must be between 0 (never) and {MAX_LINK_SECONDS}"),
            ));
        }
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        if view.row.deleted_at.is_some() {
            return Err(in_trash(id));
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        if live_links(&mut conn, view.row.id).await? >= MAX_LINKS {
            return Err(ServiceError::invalid(
                "access",
                format!("a project has at most {MAX_LINKS} links; revoke one first"),
            ));
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let expires_at = (expires_in_seconds > 0)
            .then(|| Utc::now() + chrono::Duration::seconds(expires_in_seconds));
        let row: LinkRow = diesel::insert_into(project_links::table)
            .values((
                project_links::project_id.eq(view.row.id),
                project_links::token_hash.eq(hash(&token)),
                project_links::access.eq(access_kind),
                project_links::created_by.eq(caller.user_id),
                project_links::expires_at.eq(expires_at),
            ))
            .returning(LinkRow::as_returning())
            .get_result(&mut conn)
            .await?;
        Ok(Link {
            row,
            token: Some(token),
        })
    }

    pub async fn list_links(&self, caller: Caller, id: &str) -> Result<Vec<Link>, ServiceError> {
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let rows: Vec<LinkRow> = project_links::table
            .filter(project_links::project_id.eq(view.row.id))
            .order(project_links::created_at.desc())
            .select(LinkRow::as_select())
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Link { row, token: None })
            .collect())
    }

    pub async fn revoke_link(
        &self,
        caller: Caller,
        id: &str,
        link_id: &str,
    ) -> Result<bool, ServiceError> {
        let link: Uuid = link_id
            .parse()
            .map_err(|_| ServiceError::NotFound(format!("no link {link_id}")))?;
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let n = diesel::update(
            project_links::table
                .filter(project_links::id.eq(link))
                .filter(project_links::project_id.eq(view.row.id))
                .filter(project_links::revoked_at.is_null()),
        )
        .set(project_links::revoked_at.eq(Utc::now()))
        .execute(&mut conn)
        .await?;
        Ok(n > 0)
    }

    /// What a link gives `caller`: the project (view links), or a fork of its current
    /// design in their own projects (`fork`, which a fork-only link requires).
    pub async fn open_link(
        &self,
        caller: Caller,
        token: &str,
        fork: bool,
    ) -> Result<ProjectView, ServiceError> {
        let unknown = || ServiceError::NotFound("no such link".into());
        if token.is_empty() || token.len() > 100 {
            return Err(unknown());
        }
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let link: LinkRow = project_links::table
            .filter(project_links::token_hash.eq(hash(token)))
            .select(LinkRow::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(unknown)?;
        if link.revoked_at.is_some() {
            return Err(ServiceError::Gone(
                "this link was revoked by the project's owner".into(),
            ));
        }
        if link.expires_at.is_some_and(|e| e <= Utc::now()) {
            return Err(ServiceError::Gone("this link has expired".into()));
        }
        let row: ProjectRow = store::get(&mut conn, link.project_id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(unknown)?;
        drop(conn);
        if fork {
            let (design, layout, at) = (row.configuration.clone(), row.layout.clone(), row.version);
            return self.fork_of(caller, &row, design, layout, at, "").await;
        }
        if link.access != "view" {
            return Err(ServiceError::Forbidden(
                "this link lets you fork the project, not open it".into(),
            ));
        }
        // The owner and those it is shared with keep their own role.
        let role = match self.get(caller, &row.id.to_string()).await {
            Ok(v) if v.role != Role::Public => v.role,
            _ => Role::Public,
        };
        Ok(Self::view(row, role))
    }
}
