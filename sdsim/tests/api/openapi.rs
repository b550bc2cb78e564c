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
