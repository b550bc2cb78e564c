//! The API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations (each area's `Api` lists its own), served at `/api/openapi.json`; and the
//! interactive explorer (Swagger UI, vendored in the binary: nothing is fetched at build or
//! run time) at `/api/docs/`.
//!
//! A test (`every_route_is_in_the_spec`) reads the routes each area registers and fails when
//! one is missing from the document, or the document has one that does not exist.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable `code` to branch on, a `message` for people, and the input
/// `field` at fault when there is one.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    code: String,
    message: String,
    field: Option<String>,
}

/// The answer of a protected route without a valid token (the same on every one).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Unauthenticated {
    #[response(status = 401, description = "No valid access token")]
    NoToken(ErrorBody),
}

/// The answer of any route when a dependency is down (the same on every one).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Unavailable {
    #[response(
        status = "5XX",
        description = "A dependency is down (503, Retry-After)"
    )]
    DependencyDown(ErrorBody),
}

/// The bearer token every protected route takes.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access_token of POST /api/auth/login (or /refresh).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sdsim",
        description = "Draw a system, run it under traffic and failures, watch it live. \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"}}` with the status that \
            fits; 429 and 503 carry Retry-After. WebSockets (`/ws/notifications`, \
            `/ws/simulation/{id}`, `/ws/collaboration/{project_id}`) are described in the \
            README and docs/collaboration.md.",
    ),
    paths(spec),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Accounts, sessions and tokens"),
        (name = "projects", description = "Designs people save, version, share and fork"),
        (name = "simulations", description = "Runs of a design: start, control, results"),
        (name = "notifications", description = "The user's inbox"),
        (name = "operations", description = "Health, probes, metrics and administration"),
    )
)]
struct Base;

/// The whole document (built once).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Base::openapi();
        let parts = [
            super::auth::Api::openapi(),
            super::admin::Api::openapi(),
            super::notifications::Api::openapi(),
            super::health::Api::openapi(),
        ];
        let areas = super::projects::openapi_parts()
            .into_iter()
            .chain(super::simulations::openapi_parts());
        for part in areas.chain(parts) {
            doc.merge(part);
        }
        doc
    })
}

fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().unwrap_or_else(|_| "{}".into()))
}

/// The routes of this area.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::json_resource("/api/openapi.json").route(web::get().to(spec)))
        .route("/api/docs", web::get().to(to_docs))
        .route("/api/docs/{tail:.*}", web::get().to(explorer));
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(json())
}

async fn to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/api/docs/"))
        .finish()
}

/// Swagger UI's files, from the binary.
async fn explorer(tail: web::Path<String>) -> HttpResponse {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config =
        CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("/api/openapi.json")));
    match utoipa_swagger_ui::serve(&tail, config.clone()) {
        Ok(Some(file)) => HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            // Swagger UI styles elements inline and draws icons as data: URIs.
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                 base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
            ))
            .body(file.bytes.into_owned()),
        Ok(None) => crate::error::ApiError::route_not_found(&format!("/api/docs/{tail}"))
            .error_response_json(),
        Err(e) => {
            tracing::error!(error = %e, "API explorer file");
            crate::error::ApiError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the API explorer could not be served",
            )
            .error_response_json()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// (METHOD, path) of every route an area's `configure` registers, read from its source:
    /// each `json_resource("<path>")` and the `web::<method>()` routes that follow it.
    fn registered() -> BTreeSet<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
        let mut out = BTreeSet::new();
        for file in [
            "auth",
            "admin",
            "projects/mod",
            "notifications",
            "simulations/mod",
            "health",
            "openapi",
        ] {
            let src = std::fs::read_to_string(format!("{dir}/{file}.rs")).unwrap();
            let src = &src[..src.find("#[cfg(test)]").unwrap_or(src.len())];
            let mut path: Option<String> = None;
            let mut rest = src;
            while let Some(at) = rest.find(['j', 'w']) {
                rest = &rest[at..];
                if let Some(r) = rest.strip_prefix("json_resource(\"") {
                    let end = r.find('"').unwrap();
                    path = Some(r[..end].to_string());
                    rest = &r[end..];
                } else if let Some(r) = rest.strip_prefix("web::") {
                    let end = r.find('(').unwrap_or(0);
                    let m = &r[..end];
                    if ["get", "post", "put", "patch", "delete"].contains(&m) {
                        if let Some(p) = &path {
                            out.insert((m.to_uppercase(), p.clone()));
                        }
                    }
                    rest = &r[end..];
                } else {
                    rest = &rest[1..];
                }
            }
        }
        out
    }

    fn documented() -> BTreeSet<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(json()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in v["paths"].as_object().unwrap() {
            for m in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                    out.insert((m.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_in_the_spec() {
        let routes = registered();
        assert!(routes.len() > 60, "the route reader found {}", routes.len());
        let docs = documented();
        let missing: Vec<_> = routes.difference(&docs).collect();
        // The operator endpoints every process has (/health, /metrics, ...) are documented
        // too but registered by the runtime: only the API's own paths must exist here.
        let extra: Vec<_> = docs
            .difference(&routes)
            .filter(|(_, p)| p.starts_with("/api/"))
            .collect();
        assert!(
            missing.is_empty(),
            "routes missing from the spec: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "the spec has routes that do not exist: {extra:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_bearer_auth() {
        let v: serde_json::Value = serde_json::from_str(json()).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            v["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert!(v["components"]["schemas"]["ErrorBody"].is_object());
        // Fixed-choice strings are enums, so clients (and the fuzzer) know the values.
        assert_eq!(
            v["components"]["schemas"]["ShareRole"]["enum"],
            serde_json::json!(["viewer", "editor"])
        );
    }
}
