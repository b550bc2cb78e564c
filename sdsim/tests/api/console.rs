//! The console's half of the gateway: the page at `/` (never shadowing the API) and the
//! refresh token kept in an httpOnly cookie for requests marked `X-Sdsim-Console`.

use crate::helpers::*;
use reqwest::header::{CONTENT_TYPE, SET_COOKIE};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_and_never_shadows_the_api() {
    let db = TestDb::create().await;
    let stack = Stack::up(&db).await;
    let get = |path: &str| stack.http.get(stack.url(path)).send();

    // The page and its client-side routes (the links of the e-mails among them).
    for path in [
        "/",
        "/projects/abc",
        "/verify-email?token=x",
        "/reset-password",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let kind = r.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let etag = r.headers()["etag"].clone();
        assert!(r.text().await.unwrap().contains("<html"), "{path}");
        // Revalidation saves the bytes.
        let again = stack
            .http
            .get(stack.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // The API's answers are untouched: an unknown API path is still a JSON 404, and so is a
    // missing asset (not the page).
    for path in [
        "/api/nope",
        "/api",
        "/ws/nope",
        "/admin/nope",
        "/no-such-file.js",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_error(&body, "route_not_found");
    }
    let health = get("/health").await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .contains("json"));
    // Only reads reach the page.
    let post = stack.http.post(stack.url("/")).send().await.unwrap();
    assert_eq!(post.status(), 404);
    // A gzip-capable browser gets the page compressed.
    let raw = reqwest::Client::builder().build().unwrap();
    let gz = raw
        .get(stack.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
}

fn cookie_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sdsim_refresh="))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_keeps_its_refresh_token_in_an_http_only_cookie() {
    let db = TestDb::create().await;
    let stack = Stack::up(&db).await;
    let email = unique_email("console");
    stack.register(&email, PASSWORD).await;

    let login = stack
        .http
        .post(stack.url("/api/auth/login"))
        .header("x-sdsim-console", "1")
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let set = cookie_of(&login).expect("a refresh cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api/auth"] {
        assert!(set.contains(attr), "{set}");
    }
    let body: serde_json::Value = login.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "the page never sees it: {body}"
    );
    let cookie = set.split(';').next().unwrap().to_string();

    // Without the console's header a body is required (the CSRF guard: a cross-site form
    // cannot add the header).
    let forged = stack
        .http
        .post(stack.url("/api/auth/refresh"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        415,
        "a JSON body with the refresh token is asked for"
    );

    // With it, the cookie refreshes and rotates.
    let refreshed = stack
        .http
        .post(stack.url("/api/auth/refresh"))
        .header("x-sdsim-console", "1")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let rotated = cookie_of(&refreshed).expect("a rotated cookie");
    assert_ne!(rotated.split(';').next().unwrap(), cookie);
    let body: serde_json::Value = refreshed.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(stack.profile(&token).await.0, 200);

    // Logout clears it.
    let out = stack
        .authed(reqwest::Method::POST, "/api/auth/logout", &token)
        .header("x-sdsim-console", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let cleared = cookie_of(&out).expect("a clearing cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // After logout the old cookies are spent, and no cookie is a clear 401.
    let rotated_pair = rotated.split(';').next().unwrap().to_string();
    for c in [Some(cookie.as_str()), Some(rotated_pair.as_str()), None] {
        let mut req = stack
            .http
            .post(stack.url("/api/auth/refresh"))
            .header("x-sdsim-console", "1");
        if let Some(c) = c {
            req = req.header("cookie", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{c:?}");
    }
}

/// Every answer carries the security headers; CORS answers only for configured origins
/// (none by default), never with cookies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_everywhere_and_cors_only_for_configured_origins() {
    let db = TestDb::create().await;
    let stack = Stack::up(&db).await;
    for path in ["/health", "/api/nope", "/"] {
        let r = stack.http.get(stack.url(path)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    // The page keeps its own policy (scripts from itself), the API the strictest.
    let page = stack.http.get(stack.url("/")).send().await.unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let preflight = |s: &Stack, origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/api/projects"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let r = preflight(&stack, "https://evil.example").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let mut s = settings(&db);
    s.gateway.cors_origins = vec!["https://app.example".into()];
    let other = Stack::start(s, &sdsim_protocols::Service::ALL);
    other.wait_ready().await;
    let ok = preflight(&other, "https://app.example").await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(!ok
        .headers()
        .contains_key("access-control-allow-credentials"));
    let no = preflight(&other, "https://evil.example").await.unwrap();
    assert!(!no.headers().contains_key("access-control-allow-origin"));
    // A real call from the allowed origin sees the headers it needs.
    let r = other
        .http
        .get(other.url("/health"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase()
        .contains("x-request-id"));
}
