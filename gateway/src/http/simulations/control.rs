//! A run changed while it runs: stop, pause, resume, speed, chaos injected, a fault (tests).

use super::*;

/// The routes of this file in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(stop, pause, resume, speed, chaos, fault),
    components(schemas(Injected, SpeedBody, Stopping))
)]
pub(crate) struct Api;

/// Stops a run at its next window (a queued one at once); its results are kept.
#[utoipa::path(post, path = "/api/simulations/{id}/stop", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Stopping", body = Stopping),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn stop(
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
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running, or ended before the chaos applied (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "Not a chaos entry the engine knows, or not valid for this design (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn chaos(
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
        chaos: crate::http::projects::raw(res.applied_json),
    }))
}

/// Fault injection (`admin.fault_injection`, tests only; 404 otherwise): the run panics at
/// its next window boundary, and must fail alone.
#[utoipa::path(post, path = "/api/simulations/{id}/fault", tag = "simulations",
    params(("id" = String, Path, description = "The run's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run, to fail at its next window", body = RunBody),
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "Fault injection is off (`route_not_found`), or no such run", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn fault(
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
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn pause(
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
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn resume(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    control(&state, user, path.into_inner(), "resume", 0.0).await
}

/// A new pace.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SpeedBody {
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
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is not running (`not_running`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "speed out of range (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed, too large, not JSON, or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn speed(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    body: ApiJson<SpeedBody>,
) -> Result<HttpResponse, ApiError> {
    control(&state, user, path.into_inner(), "speed", body.0.speed).await
}

/// A run on its way to stop.
#[derive(Serialize, utoipa::ToSchema)]
struct Stopping {
    id: String,
    /// `stopping`: the run ends at its next window, and its results are kept.
    status: String,
}
