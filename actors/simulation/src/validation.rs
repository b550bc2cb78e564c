//! `ValidateConfiguration`: every problem of a design with its JSON path, and when it is
//! valid the engine's analytic preview (utilisation and response per component, before any
//! run). CPU-bound (a large design takes milliseconds), so it runs on the blocking pool,
//! never on the async executor.

use sdsim_engine as engine;
use sdsim_protocols::limits::MAX_DESIGN_BYTES;
use sdsim_runtime::error::ServiceError;

/// What a design is worth before running it.
#[derive(Debug, Clone)]
pub enum Verdict {
    Valid { preview_json: String },
    Invalid(Vec<engine::Problem>),
}

/// Checks `design_json` and previews it.
pub async fn validate(design_json: String) -> Result<Verdict, ServiceError> {
    if design_json.trim().is_empty() {
        return Err(ServiceError::invalid("design", "a design is required"));
    }
    if design_json.len() > MAX_DESIGN_BYTES {
        return Err(ServiceError::invalid(
            "design",
            format!(
                "the design is {} bytes; the limit is {MAX_DESIGN_BYTES}",
                design_json.len()
            ),
        ));
    }
    tokio::task::spawn_blocking(move || match engine::validate_json(&design_json) {
        Ok(design) => {
            let preview = engine::analytic_preview(&design);
            serde_json::to_string(&preview)
                .map(|preview_json| Verdict::Valid { preview_json })
                .map_err(|e| ServiceError::Internal(format!("preview: {e}")))
        }
        Err(problems) => Ok(Verdict::Invalid(problems)),
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("validation task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_template_is_valid_with_a_preview_and_a_broken_one_lists_its_problems() {
        let three_tier = engine::template("three_tier_web_app").unwrap().to_string();
        match validate(three_tier).await.unwrap() {
            Verdict::Valid { preview_json } => {
                let v: serde_json::Value = serde_json::from_str(&preview_json).unwrap();
                assert!(!v["components"].as_array().unwrap().is_empty(), "{v}");
            }
            other => panic!("{other:?}"),
        }
        let broken = r#"{"duration_s": 10, "components": [{"name": "a", "kind": "nope"}]}"#;
        match validate(broken.into()).await.unwrap() {
            Verdict::Invalid(p) => assert!(
                p.iter().any(|p| p.path.starts_with("$.components[0]")),
                "{p:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(validate(String::new()).await.is_err());
    }
}
