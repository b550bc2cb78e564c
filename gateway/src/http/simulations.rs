//! `/api/simulations/*`: so far, checking a design before running it.

use super::extract::AuthUser;
use super::json_resource;
use crate::body::{ApiJson, BodyLimit};
use crate::error::ApiError;
use crate::rpc;
use crate::state::GatewayState;
use actix_web::{web, HttpResponse};
use sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES;
use sdsim_protocols::proto::simulation as pb;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        json_resource("/api/simulations/validate")
            .app_data(BodyLimit(MAX_DESIGN_MESSAGE_BYTES))
            .route(web::post().to(validate)),
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    /// An engine design.
    design: Value,
}

#[derive(Serialize)]
struct Problem {
    path: String,
    message: String,
}

#[derive(Serialize)]
struct Validation {
    valid: bool,
    /// Every problem with its JSON path (empty when valid).
    problems: Vec<Problem>,
    /// The analytic preview (utilisation and response per component), when valid.
    preview: Option<Box<RawValue>>,
}

async fn validate(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ValidateBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ValidateConfigurationRequest {
        user_id: user.user_id,
        design_json: body.0.design.to_string(),
        configuration: Default::default(),
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        simulation,
        "ValidateConfiguration",
        validate_configuration,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(Validation {
        valid: res.valid,
        problems: res
            .problems
            .into_iter()
            .map(|p| Problem {
                path: p.path,
                message: p.message,
            })
            .collect(),
        preview: (!res.preview_json.is_empty())
            .then(|| RawValue::from_string(res.preview_json).ok())
            .flatten(),
    }))
}
