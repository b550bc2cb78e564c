//! The API's OpenAPI document and its explorer, served by the gateway with nothing fetched
//! from elsewhere.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_and_the_explorer_are_served_offline() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let r = s.http.get(s.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let spec: Value = r.json().await.unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    for path in [
        "/api/auth/login",
        "/api/projects/{id}",
        "/api/simulations/{id}/chaos",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    // The explorer: its page and its script come from the binary.
    let r = s.http.get(s.url("/api/docs/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(!page.contains("https://"), "nothing from elsewhere: {page}");
    let init = s
        .http
        .get(s.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/api/openapi.json"));
    let ui = s
        .http
        .get(s.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.bytes().await.unwrap().len() > 100_000);
    // An unknown file of the explorer is a JSON 404.
    let r = s
        .http
        .get(s.url("/api/docs/nothing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// PostgreSQL keeps no NUL character: text carrying one is the input's fault (422), never a
/// 500, and it does not open the breaker of the service that stored it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_a_named_422_and_a_path_of_the_wrong_type_a_json_404() {
    use reqwest::Method;
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = signed_in(&s, "nul").await;
    for _ in 0..8 {
        let (st, b) = call(
            &s,
            Method::POST,
            "/api/projects",
            &ada,
            Some(serde_json::json!({"name": "n", "description": "a\u{0}b"})),
        )
        .await;
        assert_eq!(st, 422, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("NUL"),
            "{b}"
        );
        let (st, b) = call(&s, Method::GET, "/api/projects?tag=a%00b", &ada, None).await;
        assert_eq!(st, 422, "{b}");
    }
    // The project service is still there for everyone.
    let (st, b) = call(
        &s,
        Method::POST,
        "/api/projects",
        &ada,
        Some(serde_json::json!({"name": "fine"})),
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let id = b["project"]["id"].as_str().unwrap().to_string();
    let r = s
        .authed(
            Method::GET,
            &format!("/api/projects/{id}/versions/abc"),
            &ada,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "not_found", "{b}");
}
