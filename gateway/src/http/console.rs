//! The console: the web page at `/`, and how it holds its session.
//!
//! # Assets
//! The files of `console/web/` are embedded in the binary (rust-embed; a debug build reads
//! them from disk, so the page can be edited without rebuilding). Every path that no API
//! route matched comes here: a file of the console is served with its type and ETag; any other
//! path without a file extension is a page of the single-page app (`/projects/...`,
//! `/verify-email?token=...`) and gets `index.html`. The API's own prefixes (`/api/`, `/ws/`,
//! `/admin/` and the operator endpoints) are never the page's: an unknown path there is the
//! JSON 404 it always was.
//!
//! # Tokens (OWASP's advice for single-page apps)
//! A request carrying `X-Sdsim-Console: 1` is the console's. Its login and refresh answers
//! keep the access token in the body (the page holds it in memory only, never in storage)
//! and move the refresh token into the `sdsim_refresh` cookie: `HttpOnly` (no script reads
//! it), `SameSite=Strict`, `Path=/api/auth` (sent to nothing else), `Secure` over HTTPS.
//! The console refreshes with an empty body and the header; the header is the CSRF guard: a
//! cross-site page cannot send a custom header without a CORS preflight, which the gateway
//! never grants, and the strict cookie is not sent cross-site anyway. Logout clears it.

use super::not_found;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

/// The header that marks the console's requests.
pub const CONSOLE_HEADER: &str = "x-sdsim-console";
/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "sdsim_refresh";
/// How long the browser keeps the cookie; the token's own expiry is what counts.
const COOKIE_MAX_AGE_SECONDS: u64 = 30 * 24 * 3600;

#[derive(RustEmbed)]
#[folder = "../console/web/"]
struct Assets;

/// Paths that belong to the API and the operators, never to the page.
const RESERVED: [&str; 3] = ["/api/", "/ws/", "/admin/"];
const RESERVED_EXACT: [&str; 7] = [
    "/api", "/ws", "/health", "/metrics", "/livez", "/readyz", "/admin",
];

/// The page's catch-all, registered after every API route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{tail:.*}")
            .wrap(actix_web::middleware::Compress::default())
            .route(web::get().to(serve))
            .route(web::head().to(serve))
            .default_service(web::to(not_found)),
    );
}

async fn serve(req: HttpRequest) -> HttpResponse {
    let path = super::routed_path(&req);
    if RESERVED.iter().any(|p| path.starts_with(p)) || RESERVED_EXACT.contains(&path) {
        return not_found(req).await;
    }
    let file = path.trim_start_matches('/');
    if let Some(asset) = Assets::get(file).filter(|_| !file.is_empty()) {
        return answer(&req, file, asset);
    }
    let last = file.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        // A missing asset is a plain 404, not the page.
        return not_found(req).await;
    }
    match Assets::get("index.html") {
        Some(index) => answer(&req, "index.html", index),
        None => not_found(req).await,
    }
}

fn answer(req: &HttpRequest, name: &str, asset: rust_embed::EmbeddedFile) -> HttpResponse {
    let etag = format!(
        "\"{}\"",
        asset.metadata.sha256_hash()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        // No hashed file names (no build step): the browser revalidates, the ETag saves
        // the bytes.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; \
             img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
             object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        ));
    if fresh {
        return res.finish();
    }
    res.content_type(content_type(name))
        .body(asset.data.into_owned())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a request is the console's (it carries [`CONSOLE_HEADER`]).
pub fn is_console(req: &HttpRequest) -> bool {
    req.headers().contains_key(CONSOLE_HEADER)
}

/// The refresh token from the console's cookie.
pub fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn secure(req: &HttpRequest) -> &'static str {
    if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    }
}

/// The `Set-Cookie` value holding a refresh token.
pub fn set_refresh_cookie(req: &HttpRequest, token: &str) -> String {
    format!(
        "{REFRESH_COOKIE}={token}; Path=/api/auth; Max-Age={COOKIE_MAX_AGE_SECONDS}; \
         HttpOnly; SameSite=Strict{}",
        secure(req)
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_refresh_cookie(req: &HttpRequest) -> String {
    format!(
        "{REFRESH_COOKIE}=; Path=/api/auth; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure(req)
    )
}
