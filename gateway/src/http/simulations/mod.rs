//! `/api/simulations/*`: checking a design before running it; starting a run of a design or
//! of a saved project (at a version), its status, stopping it, its results.

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

mod control;
mod results;

use control::{chaos, fault, pause, resume, speed, stop};
use results::{analysis, compare, delete, history, results};

/// The routes of this file in the OpenAPI document ([`openapi_parts`] has the others).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(validate, start, status),
    components(schemas(ValidateBody, Problem, Validation, StartBody, RunView, RunBody))
)]
pub(crate) struct Api;

/// The routes of this area in the OpenAPI document, part by part.
pub(crate) fn openapi_parts() -> [utoipa::openapi::OpenApi; 3] {
    use utoipa::OpenApi;
    [
        Api::openapi(),
        control::Api::openapi(),
        results::Api::openapi(),
    ]
}

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        json_resource("/api/simulations/validate")
            .app_data(BodyLimit(MAX_DESIGN_MESSAGE_BYTES))
            .route(web::post().to(validate)),
    )
    .service(
        json_resource("/api/simulations")
            .app_data(BodyLimit(MAX_DESIGN_MESSAGE_BYTES))
            .route(web::post().to(start))
            .route(web::get().to(history)),
    )
    .service(json_resource("/api/simulations/compare").route(web::get().to(compare)))
    .service(
        json_resource("/api/simulations/{id}")
            .route(web::get().to(status))
            .route(web::delete().to(delete)),
    )
    .service(json_resource("/api/simulations/{id}/stop").route(web::post().to(stop)))
    .service(json_resource("/api/simulations/{id}/pause").route(web::post().to(pause)))
    .service(json_resource("/api/simulations/{id}/resume").route(web::post().to(resume)))
    .service(json_resource("/api/simulations/{id}/speed").route(web::put().to(speed)))
    .service(json_resource("/api/simulations/{id}/chaos").route(web::post().to(chaos)))
    .service(json_resource("/api/simulations/{id}/fault").route(web::post().to(fault)))
    .service(json_resource("/api/simulations/{id}/analysis").route(web::get().to(analysis)))
    .service(json_resource("/api/simulations/{id}/results").route(web::get().to(results)));
}

/// A design to check.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    /// An engine design.
    #[schema(value_type = Object)]
    design: Value,
}

/// One problem of a design.
#[derive(Serialize, utoipa::ToSchema)]
struct Problem {
    /// Where, as a JSON path (`$.components[0].kind`).
    path: String,
    message: String,
}

/// What a design is worth before running it.
#[derive(Serialize, utoipa::ToSchema)]
struct Validation {
    valid: bool,
    /// Every problem with its JSON path (empty when valid).
    problems: Vec<Problem>,
    /// The analytic preview (utilisation and response per component), when valid.
    #[schema(value_type = Option<Object>)]
    preview: Option<Box<RawValue>>,
}

/// Checks a design without running it: every problem with its JSON path, or (when valid)
/// the analytic preview.
#[utoipa::path(post, path = "/api/simulations/validate", tag = "simulations",
    request_body = ValidateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verdict: a design with problems is `valid: false` (still 200)", body = Validation),
        crate::http::openapi::Unauthenticated,
        (status = 422, description = "No design, or one larger than the limit (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn validate(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<ValidateBody>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ValidateConfigurationRequest {
        user_id: user.user_id,
        design_json: crate::http::projects::design_text(Some(&body.0.design))?.unwrap_or_default(),
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

/// What to run: a `design`, a saved `project_id` (at `version`), or `replay_of` an earlier run.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// An engine design to run...
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    design: Option<Value>,
    /// ...or a saved project, at `version` (absent: its current design).
    #[serde(default)]
    project_id: Option<String>,
    /// The project's version to run; 0 (the default) is its current design.
    #[serde(default)]
    version: i32,
    /// The random seed (absent: the design's, else the engine's default).
    #[serde(default)]
    seed: Option<u64>,
    /// Simulated seconds per wall second: 1 is real time; 0 (the default) as fast as it goes.
    #[serde(default)]
    speed: f64,
    /// Simulated seconds per metrics window (0.01 to 3600); 0 (the default): the design's,
    /// else 1.
    #[serde(default)]
    window_seconds: f64,
    /// ...or an earlier run to replay: its design, seed, window and chaos injections.
    #[serde(default)]
    replay_of: Option<String>,
}

/// A run and where it stands.
#[derive(Serialize, utoipa::ToSchema)]
struct RunView {
    id: String,
    /// `pending`, `running`, `paused`, `completed`, `failed` or `stopped`.
    status: String,
    /// The saved project it runs, if any.
    project_id: Option<String>,
    /// Percent of its simulated duration done (0 to 100).
    progress: i32,
    /// Simulated seconds run so far.
    simulated_seconds: f64,
    /// The simulated length of the run (the design's duration).
    duration_seconds: f64,
    /// Simulated seconds per wall second; 0: as fast as it goes.
    speed: f64,
    /// As given (stored as its 64 bits).
    seed: u64,
    /// Why it failed.
    error: Option<String>,
    /// RFC 3339.
    started_at: Option<String>,
    /// RFC 3339.
    completed_at: Option<String>,
    /// Simulated seconds per metrics window.
    window_seconds: f64,
    /// While it waits for a place (`pending`): its place in the queue, 1 being next.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_position: Option<i32>,
    /// The chaos injected while it ran: `[{"at_s", "chaos"}]`, in order.
    #[schema(value_type = Vec<Object>)]
    chaos: Box<RawValue>,
}

/// `{"simulation": ...}`.
#[derive(Serialize, utoipa::ToSchema)]
struct RunBody {
    simulation: RunView,
}

fn run_view(s: pb::GetSimulationStatusResponse) -> RunBody {
    RunBody {
        simulation: RunView {
            id: s.simulation_id,
            status: s.status,
            project_id: (!s.project_id.is_empty()).then_some(s.project_id),
            progress: s.progress_percentage,
            simulated_seconds: s.simulated_seconds,
            duration_seconds: s.duration_seconds,
            speed: s.speed,
            seed: s.seed as u64,
            error: (!s.error.is_empty()).then_some(s.error),
            started_at: super::views::timestamp(s.started_at),
            completed_at: super::views::timestamp(s.completed_at),
            window_seconds: s.window_seconds,
            queue_position: (s.queue_position > 0).then_some(s.queue_position),
            chaos: super::projects::raw(s.injections_json),
        },
    }
}

async fn get_status(
    state: &GatewayState,
    user_id: String,
    id: String,
) -> Result<pb::GetSimulationStatusResponse, ApiError> {
    let call = pb::GetSimulationStatusRequest {
        simulation_id: id,
        user_id,
    };
    let up = &state.upstream;
    Ok(rpc!(
        up,
        simulation,
        "GetSimulationStatus",
        get_simulation_status,
        call
    )
    .await?)
}

/// Starts a run of a design, of a saved project (at a version), or a replay of an earlier run
/// (its design, seed, window and chaos injections). It may wait in a queue (`pending`).
#[utoipa::path(post, path = "/api/simulations", tag = "simulations",
    request_body = StartBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new run", body = RunBody),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project, version, or run to replay (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The design cannot run, both or neither of design and project_id, replay_of with either, or speed / window_seconds out of range (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "The caller has too many runs going", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn start(
    state: web::Data<GatewayState>,
    user: AuthUser,
    body: ApiJson<StartBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.0;
    if b.replay_of.is_some() && (b.design.is_some() || b.project_id.is_some()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "a replay runs the design of the run it replays: give replay_of alone, without design or project_id",
        )
        .field("replay_of"));
    }
    let call = pb::StartSimulationRequest {
        user_id: user.user_id.clone(),
        replay_of: b.replay_of.unwrap_or_default(),
        project_id: b.project_id.unwrap_or_default(),
        design_json: crate::http::projects::design_text(b.design.as_ref())?.unwrap_or_default(),
        has_seed: b.seed.is_some(),
        seed: b.seed.unwrap_or_default(),
        speed: b.speed,
        window_seconds: b.window_seconds,
        project_version: b.version,
        ..Default::default()
    };
    let up = &state.upstream;
    let started = rpc!(up, simulation, "StartSimulation", start_simulation, call).await?;
    let s = get_status(&state, user.user_id, started.simulation_id).await?;
    Ok(HttpResponse::Created().json(run_view(s)))
}

/// A run's status and progress.
#[utoipa::path(get, path = "/api/simulations/{id}", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = RunBody),
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
async fn status(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = get_status(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(run_view(s)))
}
