//! Copies of a project: a fork (a version of any project one may view, remembering where it
//! came from), and the project document: export, and import in one transaction.

use crate::access::Role;
use crate::core::{description, name, tags, Caller, ProjectCore, ProjectView, MAX_NAME_CHARS};
use crate::document;
use crate::store;
use chrono::Utc;
use diesel_async::AsyncConnection;
use sdsim_protocols::events::kinds;
use sdsim_protocols::limits::{MAX_DESIGN_BYTES, MAX_DESIGN_MESSAGE_BYTES, MAX_LAYOUT_BYTES};
use sdsim_runtime::error::ServiceError;
use serde_json::Value;
use uuid::Uuid;

impl ProjectCore {
    /// A new project of `caller`'s, a copy of version `version` (0: the current design) of
    /// a project they may view, remembering where it came from.
    pub async fn fork(
        &self,
        caller: Caller,
        id: &str,
        version: i32,
        new_name: &str,
    ) -> Result<ProjectView, ServiceError> {
        let source = self.get(caller, id).await?;
        let (design, layout, at) = if version > 0 {
            let v = self.version(caller, id, version).await?;
            (v.configuration, v.layout, version)
        } else {
            (
                source.row.configuration.clone(),
                source.row.layout.clone(),
                source.row.version,
            )
        };
        self.fork_of(caller, &source.row, design, layout, at, new_name)
            .await
    }

    /// A new project of `caller`'s copying `design` and `layout` (version `at` of
    /// `source`); the caller's right to it is checked by the caller of this.
    pub(crate) async fn fork_of(
        &self,
        caller: Caller,
        source: &store::ProjectRow,
        design: Value,
        layout: Value,
        at: i32,
        new_name: &str,
    ) -> Result<ProjectView, ServiceError> {
        let id = source.id.to_string();
        let fork_name = if new_name.trim().is_empty() {
            let base: String = source.name.chars().take(MAX_NAME_CHARS - 7).collect();
            format!("{base} (fork)")
        } else {
            name("name", new_name)?
        };
        let new = store::NewProject {
            id: Uuid::new_v4(),
            owner_id: caller.user_id,
            name: fork_name,
            description: source.description.clone(),
            configuration: design,
            template_id: source.template_id,
            is_public: false,
            tags: source.tags.clone(),
            layout,
            forked_from: Some(source.id),
            forked_from_version: Some(at),
        };
        let message = format!("forked from {} (version {at})", source.name);
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                store::insert(conn, new, &message).await
            })
            .await?;
        tracing::info!(project_id = %row.id, from = %id, "project forked");
        self.count(source.id, crate::presence::Count::Fork);
        self.publish(kinds::PROJECT_CREATED, "created", &row, caller.user_id);
        Ok(Self::view(row, Role::Owner))
    }

    /// The project as one self-contained document (with its history when asked).
    pub async fn export(
        &self,
        caller: Caller,
        id: &str,
        include_versions: bool,
    ) -> Result<String, ServiceError> {
        let p = self.get(caller, id).await?.row;
        // The document travels in one gRPC message: refuse what cannot fit, by name, before
        // reading a history that large.
        let too_large = |what: &str, n: usize| {
            ServiceError::invalid(
                "versions",
                format!(
                    "{what} is about {n} bytes as one document; an export holds at most \
                     {MAX_DESIGN_MESSAGE_BYTES}: export it without its versions"
                ),
            )
        };
        let mut versions = Vec::new();
        if include_versions {
            let mut conn = sdsim_schema::pool::get(&self.pool).await?;
            let history = store::history_export_bytes(&mut conn, p.id).await?;
            let current = p.configuration.to_string().len() + p.layout.to_string().len();
            let about = usize::try_from(history)
                .unwrap_or(usize::MAX)
                .saturating_add(current);
            if about > MAX_DESIGN_MESSAGE_BYTES {
                return Err(too_large("the project with its history", about));
            }
            let mut rows =
                store::versions(&mut conn, p.id, None, i64::from(self.settings.max_versions))
                    .await?;
            rows.reverse();
            versions = rows
                .into_iter()
                .map(|v| document::DocumentVersion {
                    version: v.version,
                    message: v.change_summary,
                    named: v.named,
                    saved_at: v.updated_at.to_rfc3339(),
                    design: v.configuration,
                    layout: v.layout,
                })
                .collect();
        }
        let doc = document::ProjectDocument {
            format: document::FORMAT.into(),
            format_version: document::FORMAT_VERSION,
            name: p.name,
            description: p.description,
            tags: p.tags,
            design: p.configuration,
            layout: p.layout,
            versions,
        };
        let json = serde_json::to_string(&doc)
            .map_err(|e| ServiceError::Internal(format!("export: {e}")))?;
        if json.len() > MAX_DESIGN_MESSAGE_BYTES - (16 << 10) {
            return Err(too_large("the project", json.len()));
        }
        Ok(json)
    }

    /// A new project from a project document (with its history, renumbered from 1) or a
    /// bare engine design; one transaction.
    pub async fn import(
        &self,
        caller: Caller,
        json: &str,
        new_name: &str,
    ) -> Result<ProjectView, ServiceError> {
        if json.len() > sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES {
            return Err(ServiceError::invalid(
                "document",
                "the document is larger than a project may be",
            ));
        }
        let doc = match document::read(json) {
            Ok(document::Imported::Project(d)) => d,
            Ok(document::Imported::Design(design)) => document::ProjectDocument {
                format: document::FORMAT.into(),
                format_version: document::FORMAT_VERSION,
                name: design
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or("Imported design")
                    .to_string(),
                description: String::new(),
                tags: Vec::new(),
                design,
                layout: Value::Object(Default::default()),
                versions: Vec::new(),
            },
            Err((field, message)) => return Err(ServiceError::invalid(&field, message)),
        };
        let project_name = if new_name.trim().is_empty() {
            name("name", &doc.name)?
        } else {
            name("name", new_name)?
        };
        let description = description(&doc.description)?;
        let tags = tags(&doc.tags)?;
        // Every design and layout within the limits, each named by its place.
        let check = |v: &Value, field: &str, max: usize| -> Result<(), ServiceError> {
            let len = v.to_string().len();
            if len > max {
                return Err(ServiceError::invalid(
                    field,
                    format!("{field} is {len} bytes; the limit is {max}"),
                ));
            }
            crate::core::check_depth(field, v)
        };
        check(&doc.design, "document.design", MAX_DESIGN_BYTES)?;
        let layout_of = |l: &Value| match l {
            Value::Null => Ok(Value::Object(Default::default())),
            Value::Object(_) => Ok(l.clone()),
            _ => Err(()),
        };
        let layout = layout_of(&doc.layout)
            .map_err(|_| ServiceError::invalid("document.layout", "a layout is a JSON object"))?;
        check(&layout, "document.layout", MAX_LAYOUT_BYTES)?;
        let mut history = Vec::new();
        for (i, v) in doc.versions.iter().enumerate() {
            let at = format!("document.versions[{i}]");
            if !v.design.is_object() {
                return Err(ServiceError::invalid(
                    &format!("{at}.design"),
                    "a design is a JSON object",
                ));
            }
            check(&v.design, &format!("{at}.design"), MAX_DESIGN_BYTES)?;
            let l = layout_of(&v.layout).map_err(|_| {
                ServiceError::invalid(&format!("{at}.layout"), "a layout is a JSON object")
            })?;
            check(&l, &format!("{at}.layout"), MAX_LAYOUT_BYTES)?;
            history.push((v.design.clone(), l, v.message.clone(), v.named));
        }
        // The current design ends the history (unless it already does), and counts.
        if history.last().map(|(d, l, _, _)| (d, l)) != Some((&doc.design, &layout)) {
            history.push((doc.design.clone(), layout.clone(), "imported".into(), true));
        }
        if history.len() > self.settings.max_versions as usize {
            return Err(ServiceError::invalid(
                "document.versions",
                format!(
                    "at most {} versions, the current design included (this has {})",
                    self.settings.max_versions,
                    history.len()
                ),
            ));
        }
        let owner = caller.user_id;
        let new = store::NewProject {
            id: Uuid::new_v4(),
            owner_id: owner,
            name: project_name,
            description,
            configuration: history[0].0.clone(),
            template_id: None,
            is_public: false,
            tags,
            layout: history[0].1.clone(),
            forked_from: None,
            forked_from_version: None,
        };
        let mut conn = sdsim_schema::pool::get(&self.pool).await?;
        let row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let first_message = history[0].2.clone();
                let mut row = store::insert(conn, new, &first_message).await?;
                for (design, layout, message, named) in history.into_iter().skip(1) {
                    row.version += 1;
                    store::insert_version(
                        conn,
                        row.id,
                        row.version,
                        &design,
                        &layout,
                        owner,
                        &message,
                        named,
                    )
                    .await?;
                    row.configuration = design;
                    row.layout = layout;
                }
                row.updated_at = Utc::now();
                store::save(conn, &row).await?;
                Ok(row)
            })
            .await?;
        tracing::info!(project_id = %row.id, "project imported");
        self.publish(kinds::PROJECT_CREATED, "created", &row, caller.user_id);
        Ok(Self::view(row, Role::Owner))
    }
}
