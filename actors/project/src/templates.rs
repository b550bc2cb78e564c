//! The system templates (the engine's, kept in step at start-up) and the trash's expiry.

use crate::core::ProjectCore;
use crate::store::{self, TemplateRow};
use chrono::Utc;
use sdsim_engine as engine;
use sdsim_runtime::error::ServiceError;
use serde_json::Value;
use std::time::Duration;

impl ProjectCore {
    pub async fn templates(&self, category: &str) -> Result<Vec<TemplateRow>, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::templates(&mut conn, Some(category.trim()).filter(|c| !c.is_empty())).await
    }

    pub async fn template(&self, key: &str) -> Result<TemplateRow, ServiceError> {
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        store::template(&mut conn, key.trim())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no template {key:?}")))
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
