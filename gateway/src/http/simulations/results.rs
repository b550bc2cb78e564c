//! What a run left: its analysis, results (JSON or CSV), two runs compared, the history of
//! runs; deletion.

use super::*;

/// The routes of this file in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(history, compare, delete, analysis, results),
    components(schemas(BottleneckView, AnalysisBody, RunSummary, HistoryBody, ResultsBody))
)]
pub(crate) struct Api;

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
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn analysis(
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
        analysis: crate::http::projects::raw(res.analysis_json),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct CompareQuery {
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
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "A run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "`a` or `b` missing, or an unknown query parameter", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn compare(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<CompareQuery>,
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
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
    /// As given (stored as its 64 bits).
    seed: u64,
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
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such project (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "project_id not a UUID, page_size out of range, a page_token we did not give, or an unknown query parameter (named in `field`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn history(
    state: web::Data<GatewayState>,
    user: AuthUser,
    q: crate::body::ApiQuery<HistoryQuery>,
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
    let ts = crate::http::views::timestamp;
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
                seed: s.seed as u64,
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
        crate::http::openapi::Unauthenticated,
        (status = 403, description = "The caller may watch this run but not change it", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run is pending, running or paused: stop it first (`still_running`)", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn delete(
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ResultsQuery {
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

/// A text cell a spreadsheet shows as text: one that would start a formula (`=`, `+`, `-`,
/// `@`, a tab or a carriage return: a component named `=HYPERLINK(...)`) is prefixed with `'`.
fn text_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The report as a table for a spreadsheet; a value the report lacks is an empty cell.
fn report_csv(report: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
    let internal = |e: String| ApiError::from(sdsim_runtime::error::ServiceError::Internal(e));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)
        .map_err(|e| internal(e.to_string()))?;
    let cell = |row: &serde_json::Value, column: &str| match &row[column] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => text_cell(s),
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
        crate::http::openapi::Unauthenticated,
        (status = 404, description = "No such run (or not visible to the caller)", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The run has no results yet (`no_results_yet`)", body = crate::http::openapi::ErrorBody),
        (status = 422, description = "format is neither json nor csv, or an unknown query parameter", body = crate::http::openapi::ErrorBody),
        (status = "4XX", description = "Malformed or rate limited", body = crate::http::openapi::ErrorBody),
        crate::http::openapi::Unavailable,
    ))]
pub(super) async fn results(
    state: web::Data<GatewayState>,
    user: AuthUser,
    path: web::Path<String>,
    q: crate::body::ApiQuery<ResultsQuery>,
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
        completed_at: crate::http::views::timestamp(res.completed_at),
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

    #[test]
    fn a_name_that_would_be_a_formula_stays_text() {
        let report = json!({
            "components": [
                {"name": "=HYPERLINK(\"https://x\")", "kind": "web", "arrivals": -1},
                {"name": "@sum", "kind": "+db"},
                {"name": "api-1", "kind": "web"}
            ]
        });
        let text = String::from_utf8(report_csv(&report).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("\"'=HYPERLINK(\"\"https://x\"\")\",web,-1,"),
            "{text}"
        );
        assert!(lines[2].starts_with("'@sum,'+db,"), "{text}");
        assert!(lines[3].starts_with("api-1,web,"), "{text}");
    }
}
