//! The project document: a project as one self-contained JSON file (its design, layout,
//! metadata and optionally its history) that imports back to the same design. A bare
//! engine design (an object with `components`) imports too.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `format` of a project document.
pub const FORMAT: &str = "sdsim.project";
/// The version of the format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectDocument {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub design: Value,
    #[serde(default)]
    pub layout: Value,
    /// Oldest first; the last is the current design.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<DocumentVersion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentVersion {
    pub version: i32,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub named: bool,
    /// When it was saved (RFC 3339), for the record.
    #[serde(default)]
    pub saved_at: String,
    pub design: Value,
    #[serde(default)]
    pub layout: Value,
}

/// What a document to import turned out to be.
pub enum Imported {
    Project(ProjectDocument),
    /// A bare engine design.
    Design(Value),
}

/// Reads a document to import: a project document (its format checked) or a bare design.
pub fn read(json: &str) -> Result<Imported, (String, String)> {
    let v: Value = serde_json::from_str(json).map_err(|e| {
        (
            "document".to_string(),
            format!("the document is not JSON: {e}"),
        )
    })?;
    let Some(obj) = v.as_object() else {
        return Err(("document".into(), "a document is a JSON object".into()));
    };
    match obj.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {
            let doc: ProjectDocument =
                serde_path_to_error::deserialize(v.clone()).map_err(|e| {
                    let at = e.path().to_string();
                    let field = if at == "." {
                        "document".to_string()
                    } else {
                        format!("document.{at}")
                    };
                    (field, format!("not a project document: {}", e.inner()))
                })?;
            if doc.format_version != FORMAT_VERSION {
                return Err((
                    "document.format_version".into(),
                    format!(
                        "format_version {} is not one this server reads ({FORMAT_VERSION})",
                        doc.format_version
                    ),
                ));
            }
            if !doc.design.is_object() {
                return Err(("document.design".into(), "a design is a JSON object".into()));
            }
            Ok(Imported::Project(doc))
        }
        Some(other) => Err((
            "document.format".into(),
            format!("unknown format {other:?}; expected {FORMAT:?} or a bare design"),
        )),
        None if obj.contains_key("components") => Ok(Imported::Design(v)),
        None => Err((
            "document".into(),
            format!("neither a project document (format {FORMAT:?}) nor a design (components)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_and_bare_designs_are_told_apart_and_bad_ones_named() {
        let doc = json!({"format": FORMAT, "format_version": 1, "name": "A",
            "design": {"components": []}, "layout": {}});
        assert!(matches!(read(&doc.to_string()), Ok(Imported::Project(_))));
        assert!(matches!(
            read(r#"{"components": []}"#),
            Ok(Imported::Design(_))
        ));
        let field = |j: &str| read(j).err().map(|e| e.0).unwrap_or_default();
        assert_eq!(field("nope"), "document");
        assert_eq!(field(r#"{"format": "other"}"#), "document.format");
        assert_eq!(
            field(
                &json!({"format": FORMAT, "format_version": 9, "name": "A", "design": {}})
                    .to_string()
            ),
            "document.format_version"
        );
        assert_eq!(
            field(&json!({"format": FORMAT, "format_version": 1, "design": {}}).to_string()),
            "document"
        );
        assert_eq!(field(r#"{"name": "x"}"#), "document");
    }
}
