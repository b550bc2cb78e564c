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

/// The routes of this area in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        validate, start, history, compare, status, delete, stop, pause, resume, speed, chaos,
        fault, analysis, results
    ),
    components(schemas(
        ValidateBody,
        Problem,
        Validation,
        StartBody,
        RunView,
        RunBody,
        Injected,
        BottleneckView,
        AnalysisBody,
        SpeedBody,
        RunSummary,
        HistoryBody,
        Stopping,
        ResultsBody
    ))
)]
pub(crate) struct Api;

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
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "No design, or one larger than the limit (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
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
    seed: i64,
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
            seed: s.seed,
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
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project, version, or run to replay (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "The design cannot run, both or neither of design and project_id, replay_of with either, or speed / window_seconds out of range (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = 429, description = "The caller has too many runs going", body = crate::http::openapi::ErrorBody,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
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
        design_json: b.design.map(|d| d.to_string()).unwrap_or_default(),
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
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn status(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = get_status(&state, user.user_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(run_view(s)))
}

/// Stops a run at its next window (a queued one at once); its results are kept.
#[utoipa::path(post, path = "/api/simulations/{id}/stop", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stopping", body = Stopping),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn stop(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::StopSimulationRequest {
        simulation_id: path.into_inner(),
        user_id: user.user_id,
        reason: String::new(),
    };
    let up = &state.upstream;
    let res = rpc!(up, simulation, "StopSimulation", stop_simulation, call).await?;
    Ok(HttpResponse::Accepted().json(Stopping {
        id: res.simulation_id,
        status: res.status,
    }))
}

async fn control(
    state: &GatewayState,
    user: AuthUser,
    id: String,
    action: &str,
    speed: f64,
) -> Result<HttpResponse, ApiError> {
    let call = pb::ControlSimulationRequest {
        simulation_id: id,
        user_id: user.user_id,
        action: action.into(),
        speed,
    };
    let up = &state.upstream;
    let s = rpc!(
        up,
        simulation,
        "ControlSimulation",
        control_simulation,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(run_view(s)))
}

/// A chaos entry, applied.
#[derive(Serialize, utoipa::ToSchema)]
struct Injected {
    /// The simulated time it applied at.
    at_s: f64,
    /// The entry as applied.
    #[schema(value_type = Object)]
    chaos: Box<RawValue>,
}

/// Injects one chaos entry (the engine's `chaos` format; `at_s` may be left out) into a
/// running run at its current simulated time.
#[utoipa::path(post, path = "/api/simulations/{id}/chaos", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    request_body(content = Object, description = "One chaos entry in the engine's `chaos` format (`type` and its fields; `at_s` may be left out)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied", body = Injected),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running, or ended before the chaos applied (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "Not a chaos entry the engine knows, or not valid for this design (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn chaos(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<Value>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::InjectChaosRequest {
        simulation_id: path.into_inner(),
        user_id: user.user_id,
        chaos_json: body.0.to_string(),
    };
    let up = &state.upstream;
    let res = rpc!(up, simulation, "InjectChaos", inject_chaos, call).await?;
    Ok(HttpResponse::Ok().json(Injected {
        at_s: res.at_s,
        chaos: super::projects::raw(res.applied_json),
    }))
}

/// A component that limits the design.
#[derive(Serialize, utoipa::ToSchema)]
struct BottleneckView {
    /// The component's name.
    component: String,
    description: String,
    recommendation: String,
    /// 0 to 1.
    utilisation: f64,
    /// How many times today's load the component takes before it saturates.
    saturation_load: f64,
}

/// A finished run's analysis.
#[derive(Serialize, utoipa::ToSchema)]
struct AnalysisBody {
    id: String,
    bottlenecks: Vec<BottleneckView>,
    recommendations: Vec<String>,
    /// The engine's whole analysis: bottlenecks, anomalies, forecasts, alerts.
    #[schema(value_type = Object)]
    analysis: Box<RawValue>,
}

/// A finished run's analysis: where it saturates and what to change.
#[utoipa::path(get, path = "/api/simulations/{id}/analysis", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The analysis", body = AnalysisBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn analysis(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::GetPerformanceAnalysisRequest {
        simulation_id: path.into_inner(),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        simulation,
        "GetPerformanceAnalysis",
        get_performance_analysis,
        call
    )
    .await?;
    Ok(HttpResponse::Ok().json(AnalysisBody {
        id: res.simulation_id,
        bottlenecks: res
            .bottlenecks
            .into_iter()
            .map(|b| BottleneckView {
                component: b.component_id,
                description: b.description,
                recommendation: b.recommendation,
                utilisation: b.utilization,
                saturation_load: b.saturation_load,
            })
            .collect(),
        recommendations: res.recommendations,
        analysis: super::projects::raw(res.analysis_json),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CompareQuery {
    /// The first run's id.
    a: String,
    /// The second run's id.
    b: String,
}

/// Two finished runs side by side (`?a=<run>&b=<run>`): per component and end to end.
#[utoipa::path(get, path = "/api/simulations/compare", tag = "simulations",
    params(CompareQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The comparison: `a` and `b` (each run's id, name, project_id, seed, status, created_at), `same_seed`, `end_to_end` (per figure `{a, b, change, ratio}`), `components` (per component `name`, `in` (both, a or b) and `metrics`, each figure `{a, b, change, ratio}`), and `summary` (the notable changes in words)", body = serde_json::Value),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "A run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`a` or `b` missing, or an unknown query parameter", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn compare(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<CompareQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::CompareSimulationsRequest {
        user_id: user.user_id,
        simulation_a: q.a,
        simulation_b: q.b,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        simulation,
        "CompareSimulations",
        compare_simulations,
        call
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(res.comparison_json))
}

/// Fault injection (`admin.fault_injection`, tests only; 404 otherwise): the run panics at
/// its next window boundary, and must fail alone.
#[utoipa::path(post, path = "/api/simulations/{id}/fault", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, to fail at its next window", body = RunBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "Fault injection is off (`route_not_found`), or no such run", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn fault(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.fault_injection {
        return Err(ApiError::route_not_found(req.path()));
    }
    control(&state, user, path.into_inner(), "panic", 0.0).await
}

/// Holds a running run between windows; its simulated clock stands still.
#[utoipa::path(post, path = "/api/simulations/{id}/pause", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, paused", body = RunBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn pause(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    control(&state, user, path.into_inner(), "pause", 0.0).await
}

/// Lets a paused run go on.
#[utoipa::path(post, path = "/api/simulations/{id}/resume", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, running again", body = RunBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn resume(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    control(&state, user, path.into_inner(), "resume", 0.0).await
}

/// A new pace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SpeedBody {
    /// Simulated seconds per wall second (up to 10000); 0 is as fast as the engine goes.
    speed: f64,
}

/// A new pace, applied from the window under way.
#[utoipa::path(put, path = "/api/simulations/{id}/speed", tag = "simulations",
    request_body = SpeedBody,
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, at its new pace", body = RunBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "speed out of range (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn speed(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<SpeedBody>,
) -> Result<HttpResponse, ApiError> {
    control(&state, user, path.into_inner(), "speed", body.0.speed).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// Only this project's runs (whoever started them, for anyone who may view it).
    #[serde(default)]
    project_id: String,
    /// 1 to 100; 0 (the default) is 20.
    #[serde(default)]
    page_size: i32,
    /// The `next_page_token` of the page before.
    #[serde(default)]
    page_token: String,
}

/// A run in a list.
#[derive(Serialize, utoipa::ToSchema)]
struct RunSummary {
    id: String,
    name: String,
    project_id: Option<String>,
    /// `pending`, `running`, `paused`, `completed`, `failed` or `stopped`.
    status: String,
    /// The simulated length of the run, rounded.
    duration_seconds: i32,
    seed: i64,
    speed: f64,
    /// RFC 3339.
    created_at: Option<String>,
    /// RFC 3339.
    started_at: Option<String>,
    /// RFC 3339.
    completed_at: Option<String>,
}

/// A page of runs.
#[derive(Serialize, utoipa::ToSchema)]
struct HistoryBody {
    simulations: Vec<RunSummary>,
    /// Pass as `page_token` for the next page; absent on the last.
    next_page_token: Option<String>,
}

/// The runs the caller started, newest first; `project_id` keeps one project's.
#[utoipa::path(get, path = "/api/simulations", tag = "simulations",
    params(HistoryQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of runs", body = HistoryBody),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such project (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "project_id not a UUID, page_size out of range, a page_token we did not give, or an unknown query parameter (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn history(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let call = pb::GetSimulationHistoryRequest {
        user_id: user.user_id,
        project_id: q.project_id,
        page_size: q.page_size,
        page_token: q.page_token,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        simulation,
        "GetSimulationHistory",
        get_simulation_history,
        call
    )
    .await?;
    let ts = super::views::timestamp;
    Ok(HttpResponse::Ok().json(HistoryBody {
        simulations: res
            .simulations
            .into_iter()
            .map(|s| RunSummary {
                id: s.simulation_id,
                name: s.name,
                project_id: (!s.project_id.is_empty()).then_some(s.project_id),
                status: s.status,
                duration_seconds: s.duration_seconds,
                seed: s.seed,
                speed: s.speed,
                created_at: ts(s.created_at),
                started_at: ts(s.started_at),
                completed_at: ts(s.completed_at),
            })
            .collect(),
        next_page_token: (!res.next_page_token.is_empty()).then_some(res.next_page_token),
    }))
}

/// A finished run and its results, gone (204); a live one is 409.
#[utoipa::path(delete, path = "/api/simulations/{id}", tag = "simulations",
    operation_id = "delete_simulation",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is pending, running or paused: stop it first (`still_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn delete(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let call = pb::DeleteSimulationRequest {
        simulation_id: path.into_inner(),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    rpc!(up, simulation, "DeleteSimulation", delete_simulation, call).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A run on its way to stop.
#[derive(Serialize, utoipa::ToSchema)]
struct Stopping {
    id: String,
    /// `stopping`: the run ends at its next window, and its results are kept.
    status: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ResultsQuery {
    /// `json` (the default) or `csv`.
    #[serde(default)]
    format: Option<String>,
}

/// The columns of a results CSV: one row per component, then `end_to_end`.
const CSV_COLUMNS: [&str; 14] = [
    "component",
    "kind",
    "arrivals",
    "completions",
    "drops",
    "errors",
    "timeouts",
    "throughput",
    "utilisation",
    "mean_response_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_wait_ms",
];

/// The report as a table for a spreadsheet; a value the report lacks is an empty cell.
fn report_csv(report: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
    let internal = |e: String| ApiError::from(sdsim_runtime::error::ServiceError::Internal(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)
        .map_err(|e| internal(e.to_string()))?;
    let cell = |row: &serde_json::Value, column: &str| match &row[column] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let empty = Vec::new();
    let components = report["components"].as_array().unwrap_or(&empty);
    for c in components {
        let mut record = vec![cell(c, "name")];
        record.extend(CSV_COLUMNS[1..].iter().map(|col| cell(c, col)));
        w.write_record(&record)
            .map_err(|e| internal(e.to_string()))?;
    }
    let e2e = &report["end_to_end"];
    let mut record = vec!["end_to_end".to_string(), String::new()];
    record.extend(CSV_COLUMNS[2..].iter().map(|col| cell(e2e, col)));
    w.write_record(&record)
        .map_err(|e| internal(e.to_string()))?;
    w.into_inner().map_err(|e| internal(e.to_string()))
}

/// A finished run's results.
#[derive(Serialize, utoipa::ToSchema)]
struct ResultsBody {
    id: String,
    status: String,
    /// RFC 3339.
    completed_at: Option<String>,
    /// The engine's report: `components` (one entry per component), `end_to_end`, `analysis`
    /// and more.
    #[schema(value_type = Object)]
    report: Box<RawValue>,
}

/// A finished run's results: the engine's report as JSON, or (`?format=csv`) a table of one
/// row per component, then `end_to_end`.
#[utoipa::path(get, path = "/api/simulations/{id}/results", tag = "simulations",
    params(("id" = String, Path, description = "The run's id"), ResultsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The results: JSON, or with `?format=csv` a CSV attachment (columns component, kind, arrivals, completions, drops, errors, timeouts, throughput, utilisation, mean_response_ms, p50_ms, p95_ms, p99_ms, mean_wait_ms)",
            content(
                (ResultsBody = "application/json"),
                (String = "text/csv")
            ),
            headers(("Content-Disposition" = String, description = "With CSV: `attachment; filename=\"simulation-<id>.csv\"`"))),
        (status = 401, description = "No valid access token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "format is neither json nor csv, or an unknown query parameter", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        (status = "5XX", description = "A dependency is down (503, Retry-After)", body = crate::http::openapi::ErrorBody),
    ))]
async fn results(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: web::Query<ResultsQuery>,
) -> Result<HttpResponse, ApiError> {
    let csv = match q.into_inner().format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("format must be json or csv, not {other:?}"),
            )
            .field("format"))
        }
    };
    let call = pb::GetSimulationResultsRequest {
        simulation_id: path.into_inner(),
        user_id: user.user_id,
    };
    let up = &state.upstream;
    let res = rpc!(
        up,
        simulation,
        "GetSimulationResults",
        get_simulation_results,
        call
    )
    .await?;
    if csv {
        let report: serde_json::Value = serde_json::from_str(&res.summary_json).map_err(|e| {
            ApiError::from(sdsim_runtime::error::ServiceError::Internal(e.to_string()))
        })?;
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                actix_web::http::header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"simulation-{}.csv\"",
                    res.simulation_id
                ),
            ))
            .body(report_csv(&report)?));
    }
    Ok(HttpResponse::Ok().json(ResultsBody {
        id: res.simulation_id,
        status: res.status,
        completed_at: super::views::timestamp(res.completed_at),
        report: RawValue::from_string(res.summary_json).map_err(|e| {
            ApiError::from(sdsim_runtime::error::ServiceError::Internal(e.to_string()))
        })?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_quoting_and_leaves_missing_cells_empty() {
        let report = json!({
            "components": [
                {"name": "db, \"primary\"", "kind": "database", "arrivals": 3, "p99_ms": null}
            ],
            "end_to_end": {"arrivals": 3, "completions": 2}
        });
        let text = String::from_utf8(report_csv(&report).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(lines[1], "\"db, \"\"primary\"\"\",database,3,,,,,,,,,,,");
        assert_eq!(lines[2], "end_to_end,,3,2,,,,,,,,,,");
    }
}
