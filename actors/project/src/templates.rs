//! The system templates (the engine's, kept in step at start-up) and the trash's expiry.

use crate::access::{self, Op};
use crate::core::{self, Caller, ProjectCore};
use crate::store::{self, TemplateRow};
use chrono::Utc;
use sdsim_engine as engine;
use sdsim_runtime::error::ServiceError;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

impl ProjectCore {
    /// The templates `user` may use (system, own, public), by category when one is given.
    pub async fn templates(
        &self,
        category: &str,
        user: Option<Uuid>,
    ) -> Result<Vec<TemplateRow>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::templates(
            &mut conn,
            Some(category.trim()).filter(|c| !c.is_empty()),
            user,
        )
        .await
    }

    /// A template by id or slug, if `user` may use it (a private one is its author's).
    pub async fn template(
        &self,
        key: &str,
        user: Option<Uuid>,
    ) -> Result<TemplateRow, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::template(&mut conn, key.trim())
            .await?
            .filter(|t| t.is_system || t.is_public || (user.is_some() && t.author_id == user))
            .ok_or_else(|| ServiceError::NotFound(format!("no template {key:?}")))
    }

    /// Project `id`'s current design as a template of its owner's.
    pub async fn save_as_template(
        &self,
        caller: Caller,
        id: &str,
        name: &str,
        description: &str,
        category: &str,
        is_public: bool,
    ) -> Result<TemplateRow, ServiceError> {
        let view = self.get(caller, id).await?;
        access::check(view.role, Op::Share, id)?;
        let name = if name.trim().is_empty() {
            view.row.name.clone()
        } else {
            core::name("name", name)?
        };
        let description = if description.trim().is_empty() {
            view.row.description.clone()
        } else {
            core::description(description)?
        };
        let category = match category.trim() {
            "" => "mine".to_string(),
            c if c.len() <= 40 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') => {
                c.to_lowercase()
            }
            _ => {
                return Err(ServiceError::invalid(
                    "category",
                    "a category has at most 40 letters, digits and '-'",
                ))
            }
        };
        // A slug of its own, unique: the name's words and a short random tail.
        let stem: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let stem: String = stem.chars().take(60).collect();
        let slug = format!(
            "{}{}",
            if stem.is_empty() {
                "t".to_string()
            } else {
                format!("{stem}-")
            },
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::insert_template(
            &mut conn,
            store::NewTemplate {
                slug: &slug,
                name: &name,
                description: &description,
                category: &category,
                is_system: false,
                author_id: Some(caller.user_id),
                is_public,
                configuration: &view.row.configuration,
            },
        )
        .await
    }

    /// Brings the system templates in step with the engine's (at start-up).
    pub async fn sync_templates(&self) -> Result<usize, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let mut n = 0;
        for (slug, json) in engine::templates() {
            let design: Value = serde_json::from_str(json)
                .map_err(|e| ServiceError::Internal(format!("template {slug}: {e}")))?;
            let text = |k: &str| {
                design
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let slug = slug.replace('_', "-");
            let name = Some(text("name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| slug.clone());
            let category = template_category(&slug);
            store::upsert_system_template(
                &mut conn,
                &slug,
                &name,
                &text("description"),
                category,
                &design,
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Empties the trash of projects deleted more than `trash_days` ago.
    pub async fn purge_expired(&self) -> Result<usize, ServiceError> {
        let before = Utc::now()
            - chrono::Duration::from_std(Duration::from_secs(self.settings.trash_days * 86_400))
                .unwrap_or(chrono::Duration::days(30));
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::purge_trash(&mut conn, before).await
    }
}

/// A system template's category, from its name.
fn template_category(slug: &str) -> &'static str {
    if slug.contains("chaos") {
        "resilience"
    } else if slug.contains("queue") || slug.contains("write") {
        "data"
    } else if slug.contains("cdn") || slug.contains("cache") {
        "performance"
    } else {
        "architecture"
    }
}
