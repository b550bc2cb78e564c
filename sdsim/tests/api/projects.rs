//! Projects through the gateway, against real PostgreSQL and Redis: the life of a project
//! (template, edits with optimistic concurrency, drafts, versions, diff, rollback, trash,
//! restore, purge), who sees what, concurrent writers, and bad input.

use crate::helpers::*;
use diesel_async::AsyncConnection;
use reqwest::Method;
use sdsim_protocols::Service;
use serde_json::{json, Value};

const PASSWORD: &str = "a long enough password";

/// A user of `s` whose address is verified (shares with them apply at once): their token.
async fn user(s: &Stack, tag: &str) -> String {
    verified(s, &unique_email(tag)).await
}

/// A request with a JSON body (or none) and optional If-Match: status, ETag, body.
async fn call(
    s: &Stack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut r = s.authed(method, path, token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(m) = if_match {
        r = r.header("if-match", m);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, etag, r.json().await.unwrap_or(Value::Null))
}

async fn create(s: &Stack, token: &str, body: Value) -> Value {
    let (st, etag, b) = call(s, Method::POST, "/api/projects", token, Some(body), None).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    b["project"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_life_of_a_project() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "life").await;

    // The system templates are the engine's.
    let (st, _, t) = call(&s, Method::GET, "/api/templates", &ada, None, None).await;
    assert_eq!(st, 200, "{t}");
    let ids: Vec<&str> = t["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"three-tier-web-app"), "{ids:?}");
    assert_eq!(ids.len(), 8, "{ids:?}");

    // Create from a template: its design, no problems.
    let p = create(
        &s,
        &ada,
        json!({"name": "Shop", "tags": ["Retail", "web"], "template_id": "three-tier-web-app"}),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    let path = format!("/api/projects/{id}");
    assert_eq!(p["version"], 1);
    assert_eq!(p["access_level"], "owner");
    assert_eq!(p["tags"], json!(["retail", "web"]));
    assert_eq!(p["problems"], json!([]), "{p}");
    let design = p["design"].clone();
    assert!(design["components"].as_array().unwrap().len() > 3);

    // Metadata needs no If-Match; a design change does (428), and a stale one is 412.
    let (st, etag, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"name": "Shop v2"})),
        None,
    )
    .await;
    assert_eq!((st, etag.as_deref()), (200, Some("\"2\"")), "{b}");
    let mut edited = design.clone();
    edited["duration_s"] = json!(120);
    let (st, _, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": edited})),
        None,
    )
    .await;
    assert_eq!(st, 428, "{b}");
    assert_eq!(b["error"]["code"], "precondition_required");
    let (st, etag, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": edited})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(st, 412, "{b}");
    assert_eq!(b["error"]["current_version"], 2, "{b}");
    assert_eq!(etag.as_deref(), Some("\"2\""));

    // A named save with stable ids in the layout, then a rename of a component.
    let names: Vec<String> = design["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let ids_of = |names: &[String]| -> Value {
        json!({"ids": names.iter().enumerate().map(|(i, n)| (n.clone(), json!(format!("c{i}")))).collect::<serde_json::Map<_, _>>()})
    };
    let (st, etag, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": edited, "layout": ids_of(&names), "message": "longer run", "named": true})),
        Some("\"2\""),
    )
    .await;
    assert_eq!((st, etag.as_deref()), (200, Some("\"3\"")), "{b}");
    let old_name = names[1].clone();
    let mut renamed = edited.clone();
    let text = serde_json::to_string(&renamed)
        .unwrap()
        .replace(&format!("\"{old_name}\""), "\"front door\"");
    renamed = serde_json::from_str(&text).unwrap();
    let mut new_names = names.clone();
    new_names[1] = "front door".into();
    let (st, _, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": renamed, "layout": ids_of(&new_names), "named": true, "message": "rename"})),
        Some("\"3\""),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["project"]["problems"], json!([]), "{b}");
    let (st, _, d) = call(
        &s,
        Method::GET,
        &format!("{path}/diff?from=3&to=4"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(
        d["diff"]["components"]["renamed"],
        json!([{"id": "c1", "from": old_name, "to": "front door"}]),
        "{d}"
    );
    assert_eq!(d["diff"]["components"]["added"], json!([]), "{d}");
    assert_eq!(d["diff"]["components"]["removed"], json!([]), "{d}");

    // A draft: stored with its problems and their paths.
    let mut draft = renamed.clone();
    draft["components"].as_array_mut().unwrap().truncate(1);
    let (st, _, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": draft})),
        Some("\"4\""),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let problems = b["project"]["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{b}");
    assert!(
        problems
            .iter()
            .all(|p| p["path"].as_str().unwrap().starts_with('$')),
        "{b}"
    );

    // History, newest first; then a rollback is a new version equal to the old one.
    let (st, _, v) = call(
        &s,
        Method::GET,
        &format!("{path}/versions"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let numbers: Vec<i64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![5, 4, 3, 1], "{v}");
    let (st, _, b) = call(
        &s,
        Method::POST,
        &format!("{path}/rollback"),
        &ada,
        Some(json!({"version": 3})),
        Some("\"5\""),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["project"]["version"], 6);
    assert_eq!(b["project"]["design"], edited);
    let (_, _, v3) = call(
        &s,
        Method::GET,
        &format!("{path}/versions/3"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(v3["design"], edited);
    assert_eq!(v3["version"]["message"], "longer run");

    // Found by listing, search and tag.
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?search=shop",
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"][0]["id"], id.as_str(), "{l}");
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?tag=retail",
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"].as_array().unwrap().len(), 1, "{l}");
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?search=nothing-like-it",
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"], json!([]), "{l}");

    // Trash: gone from the list, in the trash, read-only; restored; purged for good.
    let (st, _, b) = call(&s, Method::DELETE, &path, &ada, None, None).await;
    assert_eq!((st, &b["deleted"]), (200, &json!(true)), "{b}");
    let (_, _, l) = call(&s, Method::GET, "/api/projects", &ada, None, None).await;
    assert_eq!(l["projects"], json!([]), "{l}");
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?scope=trash",
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"][0]["id"], id.as_str(), "{l}");
    let (st, _, b) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"name": "x"})),
        None,
    )
    .await;
    assert_eq!((st, &b["error"]["code"]), (409, &json!("in_trash")), "{b}");
    let (st, _, b) = call(
        &s,
        Method::POST,
        &format!("{path}/restore"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["project"]["deleted_at"], Value::Null);
    let (st, _, _) = call(&s, Method::POST, &format!("{path}/purge"), &ada, None, None).await;
    assert_eq!(st, 409, "purging needs the trash first");
    call(&s, Method::DELETE, &path, &ada, None, None).await;
    let (st, _, b) = call(&s, Method::POST, &format!("{path}/purge"), &ada, None, None).await;
    assert_eq!((st, &b["purged"]), (200, &json!(true)), "{b}");
    let (st, _, _) = call(&s, Method::GET, &path, &ada, None, None).await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_see_nothing_and_the_public_only_reads() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let (ada, bob) = (user(&s, "owner").await, user(&s, "stranger").await);
    let p = create(&s, &ada, json!({"name": "Private"})).await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    for (method, sub, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"name": "mine now"}))),
        (Method::DELETE, "", None),
        (Method::GET, "/versions", None),
        (Method::POST, "/restore", None),
    ] {
        let (st, _, b) = call(
            &s,
            method.clone(),
            &format!("{path}{sub}"),
            &bob,
            body,
            None,
        )
        .await;
        assert_eq!(st, 404, "{method} {sub}: {b}");
    }
    // An id that is not a project is the same 404; no token is 401.
    let (st, _, _) = call(
        &s,
        Method::GET,
        "/api/projects/not-a-uuid",
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let r = s.http.get(s.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Public: anyone reads (as a viewer), nobody else writes or deletes.
    let (st, _, _) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"is_public": true})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _, b) = call(&s, Method::GET, &path, &bob, None, None).await;
    assert_eq!(
        (st, &b["project"]["access_level"]),
        (200, &json!("viewer")),
        "{b}"
    );
    let (st, _, b) = call(
        &s,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"name": "x"})),
        None,
    )
    .await;
    assert_eq!((st, &b["error"]["code"]), (403, &json!("forbidden")), "{b}");
    let (st, _, _) = call(&s, Method::DELETE, &path, &bob, None, None).await;
    assert_eq!(st, 403);
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?scope=public",
        &bob,
        None,
        None,
    )
    .await;
    assert!(
        l["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == p["id"]),
        "{l}"
    );
    let (_, _, l) = call(&s, Method::GET, "/api/projects", &bob, None, None).await;
    assert_eq!(l["projects"], json!([]), "not in bob's own projects: {l}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_saves_from_one_version_exactly_one_lands() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "race").await;
    let p = create(
        &s,
        &ada,
        json!({"name": "Race", "template_id": "three-tier-web-app"}),
    )
    .await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let saves = (0..20).map(|i| {
        let mut d = p["design"].clone();
        d["duration_s"] = json!(100 + i);
        let (s, ada, path) = (&s, &ada, &path);
        async move {
            call(
                s,
                Method::PATCH,
                path,
                ada,
                Some(json!({"design": d, "named": true})),
                Some("\"1\""),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(saves).await;
    let ok: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| &r.2)
        .collect();
    let stale = results.iter().filter(|r| r.0 == 412).count();
    assert_eq!(
        (ok.len(), stale),
        (1, 19),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let winner = ok[0]["project"]["design"]["duration_s"].clone();
    let (_, _, v) = call(
        &s,
        Method::GET,
        &format!("{path}/versions"),
        &ada,
        None,
        None,
    )
    .await;
    let versions = v["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{v}");
    let (_, _, v2) = call(
        &s,
        Method::GET,
        &format!("{path}/versions/2"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(v2["design"]["duration_s"], winner);

    // A change of metadata only takes one statement, not the locked path: the version test
    // must hold there too. Twenty renames from version 2: one lands, 19 are stale.
    let renames = (0..20).map(|i| {
        let (s, ada, path) = (&s, &ada, &path);
        async move {
            let body = json!({"name": format!("Race {i}"), "tags": [format!("t{i}")]});
            call(s, Method::PATCH, path, ada, Some(body), Some("\"2\"")).await
        }
    });
    let results = futures_util::future::join_all(renames).await;
    let codes: Vec<u16> = results.iter().map(|r| r.0).collect();
    let ok: Vec<&Value> = results
        .iter()
        .filter(|r| r.0 == 200)
        .map(|r| &r.2)
        .collect();
    assert_eq!((ok.len(), codes.len()), (1, 20), "{codes:?}");
    for (st, _, b) in results.iter().filter(|r| r.0 != 200) {
        assert_eq!(
            (*st, &b["error"]["current_version"]),
            (412, &json!(3)),
            "{b}"
        );
    }
    let (st, etag, now) = call(&s, Method::GET, &path, &ada, None, None).await;
    assert_eq!((st, etag.as_deref()), (200, Some("\"3\"")), "{now}");
    let (won, now) = (&ok[0]["project"], &now["project"]);
    assert_eq!(
        (&now["name"], &now["tags"]),
        (&won["name"], &won["tags"]),
        "{now}"
    );
    assert_eq!(now["design"]["duration_s"], winner, "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autosaves_replace_each_other_and_named_saves_stay() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "autosave").await;
    let p = create(
        &s,
        &ada,
        json!({"name": "Auto", "template_id": "three-tier-web-app"}),
    )
    .await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let mut version = 1;
    for (i, named) in [
        (1, false),
        (2, false),
        (3, false),
        (4, true),
        (5, false),
        (6, false),
    ] {
        let mut d = p["design"].clone();
        d["duration_s"] = json!(200 + i);
        let (st, _, b) = call(
            &s,
            Method::PATCH,
            &path,
            &ada,
            Some(json!({"design": d, "named": named})),
            Some(&format!("\"{version}\"")),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        version = b["project"]["version"].as_i64().unwrap();
    }
    let (_, _, v) = call(
        &s,
        Method::GET,
        &format!("{path}/versions"),
        &ada,
        None,
        None,
    )
    .await;
    let kept: Vec<(i64, bool)> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["named"].as_bool().unwrap(),
            )
        })
        .collect();
    // v1 (created), the last of the three autosaves (v4), the named v5, the last autosave (v7).
    assert_eq!(
        kept,
        vec![(7, false), (5, true), (4, false), (1, true)],
        "{v}"
    );
    let (_, _, v4) = call(
        &s,
        Method::GET,
        &format!("{path}/versions/4"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(v4["design"]["duration_s"], 203);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_project_input_is_named() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "bad").await;
    for (body, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (
            json!({"name": "a", "tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        (json!({"name": "a", "tags": ["ok", "no/slash"]}), "tags[1]"),
        (
            json!({"name": "a", "template_id": "no-such-template"}),
            "template_id",
        ),
        (json!({"name": "a", "design": [1, 2]}), "design"),
        (json!({"name": "a", "layout": "flat"}), "layout"),
    ] {
        let (st, _, b) = call(
            &s,
            Method::POST,
            "/api/projects",
            &ada,
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(st, 422, "{body}: {b}");
        assert_eq!(b["error"]["field"], field, "{body}: {b}");
    }
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects",
        &ada,
        Some(json!({"name": "a", "colour": "red"})),
        None,
    )
    .await;
    assert_eq!(st, 422, "unknown field: {b}");
    let r = s
        .authed(Method::POST, "/api/projects", &ada)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Past the one size limit: 413 naming it.
    let huge = "x".repeat(sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES + 1);
    let r = s
        .authed(Method::POST, "/api/projects", &ada)
        .json(&json!({"name": "big", "description": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Within the body limit, but over the design limit once written back (`1e15` is 4 bytes
    // sent and 18 stored): refused by name, for projects and runs alike, not a 500.
    let grown = format!("{{\"a\": [{}1]}}", "1e15,".repeat(300_000));
    for (path, body) in [
        (
            "/api/projects",
            format!("{{\"name\": \"grown\", \"design\": {grown}}}"),
        ),
        ("/api/simulations", format!("{{\"design\": {grown}}}")),
    ] {
        let r = s
            .authed(Method::POST, path, &ada)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            (st, &b["error"]["field"]),
            (422, &json!("design")),
            "{path}: {b}"
        );
    }
    let p = create(&s, &ada, json!({"name": "ok"})).await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    // Not a version, or "whatever is there" (the blind overwrite the header prevents).
    for if_match in ["seven", "*"] {
        let (st, _, b) = call(
            &s,
            Method::PATCH,
            &path,
            &ada,
            Some(json!({"design": {}})),
            Some(if_match),
        )
        .await;
        assert_eq!((st, &b["error"]["field"]), (400, &json!("If-Match")), "{b}");
    }
    // Each bad parameter is refused, named when it is a value of the wrong type or a
    // parameter that does not exist.
    for (q, field) in [
        ("page_size=1000", None),
        ("page_token=garbage", None),
        ("scope=everything", None),
        ("sort=size", None),
        ("page_size=abc", Some("page_size")),
        ("pagesize=5", Some("pagesize")),
    ] {
        let (st, _, b) = call(
            &s,
            Method::GET,
            &format!("/api/projects?{q}"),
            &ada,
            None,
            None,
        )
        .await;
        assert_eq!(st, 422, "{q}: {b}");
        if let Some(field) = field {
            assert_eq!(b["error"]["field"], field, "{q}: {b}");
        }
    }
    // Pages do not overlap and end.
    create(&s, &ada, json!({"name": "ok 2"})).await;
    create(&s, &ada, json!({"name": "ok 3"})).await;
    let (_, _, first) = call(
        &s,
        Method::GET,
        "/api/projects?page_size=2&sort=name",
        &ada,
        None,
        None,
    )
    .await;
    let token = first["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, _, second) = call(
        &s,
        Method::GET,
        &format!("/api/projects?page_size=2&sort=name&page_token={token}"),
        &ada,
        None,
        None,
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), vec!["ok", "ok 2"]);
    assert_eq!(names(&second), vec!["ok 3"]);
    assert_eq!(second["next_page_token"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_export_and_import_round_trip() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let (ada, bob) = (user(&s, "exporter").await, user(&s, "forker").await);
    let p = create(
        &s,
        &ada,
        json!({"name": "Platform", "tags": ["big"], "template_id": "large-platform", "is_public": true,
               "layout": {"ids": {"a": "c1"}, "positions": {"a": [10, 20]}}}),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let path = format!("/api/projects/{id}");
    let mut d = p["design"].clone();
    d["duration_s"] = json!(90);
    let (st, _, _) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"design": d, "named": true, "message": "shorter"})),
        Some("\"1\""),
    )
    .await;
    assert_eq!(st, 200);

    // Export with history, import: the same design and layout, byte for byte, and history.
    let r = s
        .authed(Method::GET, &format!("{path}/export?versions=true"), &ada)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let exported = r.text().await.unwrap();
    let doc: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["format"], "sdsim.project");
    assert_eq!(doc["versions"].as_array().unwrap().len(), 2, "{doc}");
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects/import",
        &ada,
        Some(json!({"document": doc})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let copy = b["project"].clone();
    assert_eq!(copy["name"], "Platform");
    assert_eq!(copy["version"], 2, "the history came along");
    let again = s
        .authed(
            Method::GET,
            &format!(
                "/api/projects/{}/export?versions=true",
                copy["id"].as_str().unwrap()
            ),
            &ada,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        again["design"].to_string(),
        doc["design"].to_string(),
        "same design, byte for byte"
    );
    assert_eq!(again["layout"].to_string(), doc["layout"].to_string());
    assert_eq!(
        again["versions"][0]["design"].to_string(),
        doc["versions"][0]["design"].to_string()
    );
    // A bare engine design imports as a new project; junk is named.
    let bare = json!({"name": "Bare", "duration_s": 10, "components": [{"name": "c", "kind": "client", "traffic": {"type": "open", "rate": 5}}]});
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects/import",
        &bob,
        Some(json!({"document": bare})),
        None,
    )
    .await;
    assert_eq!((st, &b["project"]["name"]), (201, &json!("Bare")), "{b}");
    // A history of the most versions a project keeps, plus a different current design, is
    // one version too many (max_versions is 1,000 by default); ending on the current design
    // it fits.
    let full: Vec<Value> = (1..=1000)
        .map(|i| json!({"version": i, "design": {"v": i}}))
        .collect();
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects/import",
        &bob,
        Some(
            json!({"document": {"format": "sdsim.project", "format_version": 1, "name": "full",
                                 "design": {"v": 1000}, "versions": full}}),
        ),
        None,
    )
    .await;
    assert_eq!((st, &b["project"]["version"]), (201, &json!(1000)), "{b}");
    for (document, field) in [
        (
            json!({"format": "sdsim.project", "format_version": 1, "name": "x", "design": {"v": 0}, "versions": full}),
            "document.versions",
        ),
        (json!({"format": "zip"}), "document.format"),
        (json!({"name": "x"}), "document"),
        (
            json!({"format": "sdsim.project", "format_version": 1, "name": "x", "design": [1]}),
            "document.design",
        ),
    ] {
        let (st, _, b) = call(
            &s,
            Method::POST,
            "/api/projects/import",
            &bob,
            Some(json!({"document": document})),
            None,
        )
        .await;
        assert_eq!((st, &b["error"]["field"]), (422, &json!(field)), "{b}");
    }

    // Bob forks Ada's public project (version 1): his own, private, remembering its source.
    let (st, _, b) = call(
        &s,
        Method::POST,
        &format!("{path}/fork"),
        &bob,
        Some(json!({"version": 1})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    let f = &b["project"];
    assert_eq!(f["access_level"], "owner");
    assert_eq!(f["name"], "Platform (fork)");
    assert_eq!(f["forked_from"], id);
    assert_eq!(f["is_public"], false);
    assert_eq!(f["design"], p["design"], "version 1's design");
    // A private project cannot be forked by a stranger: it does not exist for them.
    let (st, _, _) = call(
        &s,
        Method::PATCH,
        &path,
        &ada,
        Some(json!({"is_public": false})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("{path}/fork"),
        &bob,
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(st, 404);
}

/// The mails in `outbox` sent to `to`, decoded, once at least `n` are there.
async fn mails_to(outbox: &str, to: &str, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let found = mails_in(outbox, to);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} mails to {to} in {outbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_by_e_mail_before_and_after_an_account_exists() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let outbox = s.settings.auth.mail.outbox_dir.clone();
    let ada = user(&s, "sharer").await;
    let bob_email = unique_email("editor");
    let bob = verified(&s, &bob_email).await;
    let p = create(
        &s,
        &ada,
        json!({"name": "Shared", "template_id": "three-tier-web-app"}),
    )
    .await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());

    // Bob as editor: he edits, but may not share, delete or publish.
    let (st, _, known) = call(
        &s,
        Method::POST,
        &format!("{path}/shares"),
        &ada,
        Some(json!({"email": bob_email, "role": "editor"})),
        None,
    )
    .await;
    assert_eq!(st, 200, "{known}");
    let (st, _, b) = call(&s, Method::GET, &path, &bob, None, None).await;
    assert_eq!(
        (st, &b["project"]["access_level"]),
        (200, &json!("editor")),
        "{b}"
    );
    let (st, _, _) = call(
        &s,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({"description": "by bob"})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    for (method, sub, body) in [
        (
            Method::POST,
            "/shares",
            Some(json!({"email": "x@example.com", "role": "viewer"})),
        ),
        (Method::DELETE, "", None),
        (Method::PATCH, "", Some(json!({"is_public": true}))),
    ] {
        let (st, _, b) = call(
            &s,
            method.clone(),
            &format!("{path}{sub}"),
            &bob,
            body,
            None,
        )
        .await;
        assert_eq!(st, 403, "{method} {sub}: {b}");
    }
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?scope=shared",
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"][0]["access_level"], "editor", "{l}");
    // The invitation mail went out (after the verification mail).
    let mail = mails_to(&outbox, &bob_email, 2).await;
    let invitation = mail
        .iter()
        .find(|m| m.contains("Shared") && m.contains("/projects/"));
    assert!(invitation.is_some(), "{mail:?}");

    // An address with no account gets exactly the same answer, and the share waits.
    let carol_email = unique_email("later");
    let (st, _, unknown) = call(
        &s,
        Method::POST,
        &format!("{path}/shares"),
        &ada,
        Some(json!({"email": carol_email, "role": "viewer"})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        unknown["message"]
            .as_str()
            .unwrap()
            .replace(&carol_email, "X"),
        known["message"]
            .as_str()
            .unwrap()
            .replace(&bob_email, "X")
            .replace("editor", "viewer"),
    );
    let (_, _, perms) = call(
        &s,
        Method::GET,
        &format!("{path}/permissions"),
        &ada,
        None,
        None,
    )
    .await;
    let roles: Vec<(String, bool)> = perms["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["role"].as_str().unwrap().to_string(),
                p["pending"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("owner".into(), false),
            ("editor".into(), false),
            ("viewer".into(), true)
        ],
        "{perms}"
    );
    // Bob sees who has access, but not the pending addresses.
    let (st, _, bp) = call(
        &s,
        Method::GET,
        &format!("{path}/permissions"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(!bp.to_string().contains(&carol_email), "{bp}");

    // Carol registers: nothing until her address is verified; then it is hers to see.
    s.register(&carol_email, PASSWORD).await;
    let carol = s.login(&carol_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, _) = call(&s, Method::GET, &path, &carol, None, None).await;
    assert_eq!(st, 404, "not before her address is verified");
    s.verify(&carol_email, &carol).await;
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?scope=shared",
        &carol,
        None,
        None,
    )
    .await;
    assert_eq!(l["projects"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["projects"][0]["access_level"], "viewer");

    // An account whose address is not verified is anyone's who typed it: a share with it
    // waits as an invitation, and one revoked before it was claimed is gone for good.
    let dave_email = unique_email("unverified");
    s.register(&dave_email, PASSWORD).await;
    let dave = s.login(&dave_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let shares = format!("{path}/shares");
    let (st, _, _) = call(
        &s,
        Method::POST,
        &shares,
        &ada,
        Some(json!({"email": dave_email, "role": "editor"})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _, _) = call(&s, Method::GET, &path, &dave, None, None).await;
    assert_eq!(st, 404, "not before the address is verified");
    let (st, _, _) = call(
        &s,
        Method::DELETE,
        &format!("{shares}?email={dave_email}"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    s.verify(&dave_email, &dave).await;
    let (_, _, l) = call(
        &s,
        Method::GET,
        "/api/projects?scope=shared",
        &dave,
        None,
        None,
    )
    .await;
    assert_eq!(
        l["projects"],
        json!([]),
        "the revoked invitation is not claimed: {l}"
    );
    let (st, _, _) = call(&s, Method::GET, &path, &dave, None, None).await;
    assert_eq!(st, 404);

    // Ownership goes to Bob; Ada stays an editor. Revoking ends access.
    let bob_id = s.profile(&bob).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, b) = call(
        &s,
        Method::POST,
        &format!("{path}/owner"),
        &ada,
        Some(json!({"user_id": bob_id})),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let (_, _, b) = call(&s, Method::GET, &path, &ada, None, None).await;
    assert_eq!(b["project"]["access_level"], "editor");
    let (st, _, _) = call(
        &s,
        Method::DELETE,
        &format!("{path}/shares?email={carol_email}"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _, _) = call(&s, Method::GET, &path, &carol, None, None).await;
    assert_eq!(st, 404);
    // An accepted share can also end by account, as the permissions list names it; Ada
    // (not the owner any more) may not end shares, and a query must say whose.
    let ada_id = s.profile(&ada).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let unshare = format!("{path}/shares?user_id={ada_id}");
    for (who, query, status) in [
        (&ada, unshare.clone(), 403),
        (&bob, format!("{path}/shares"), 422),
        (
            &bob,
            format!("{path}/shares?user_id={ada_id}&email={carol_email}"),
            422,
        ),
        (&bob, format!("{path}/shares?user_id=nope"), 422),
        (&bob, unshare.clone(), 200),
        (&bob, unshare.clone(), 404),
    ] {
        let (st, _, b) = call(&s, Method::DELETE, &query, who, None, None).await;
        assert_eq!(st, status, "{query}: {b}");
    }
    let (st, _, _) = call(&s, Method::GET, &path, &ada, None, None).await;
    assert_eq!(st, 404, "Ada's access ended");

    // Bad input: a role that is not one, not an address, sharing with oneself.
    for (body, field) in [
        (json!({"email": carol_email, "role": "admin"}), "role"),
        (
            json!({"email": "not an address", "role": "viewer"}),
            "email",
        ),
        (json!({"email": bob_email, "role": "viewer"}), "email"),
    ] {
        let (st, _, b) = call(
            &s,
            Method::POST,
            &format!("{path}/shares"),
            &bob,
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(
            (st, &b["error"]["field"]),
            (422, &json!(field)),
            "{body}: {b}"
        );
    }
}

/// Every role against every operation, as one table: what each may do, and what the
/// others get (404 for those who may not see the project, 403 for those who may).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    // Admins: an account granted the admin role by the operator's bootstrap command.
    let admin_email = unique_email("admin");
    s.register(&admin_email, PASSWORD).await;
    let mut conn = diesel_async::AsyncPgConnection::establish(&db.url)
        .await
        .unwrap();
    sdsim_auth::store::grant_role_by_email(&mut conn, &admin_email, "admin")
        .await
        .unwrap();
    let admin = s.login(&admin_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = user(&s, "m-owner").await;
    let (editor_email, viewer_email) = (unique_email("m-editor"), unique_email("m-viewer"));
    let editor = verified(&s, &editor_email).await;
    let viewer = verified(&s, &viewer_email).await;
    let stranger = user(&s, "m-stranger").await;
    // A link holder: a stranger with a view link, who uses it for what a link allows.
    let holder = user(&s, "m-holder").await;
    let who = [
        ("owner", &owner),
        ("editor", &editor),
        ("viewer", &viewer),
        ("link holder", &holder),
        ("stranger", &stranger),
        ("admin", &admin),
    ];

    // (operation, method, path below the project, body, the path a link holder takes if
    // the link gives one, expected status for owner, editor, viewer, link holder,
    // stranger, admin)
    type Op = (
        &'static str,
        Method,
        &'static str,
        Option<Value>,
        Option<&'static str>,
        [u16; 6],
    );
    let ops: Vec<Op> = vec![
        (
            "read",
            Method::GET,
            "",
            None,
            Some(""),
            [200, 200, 200, 200, 404, 200],
        ),
        (
            "versions",
            Method::GET,
            "/versions",
            None,
            None,
            [200, 200, 200, 404, 404, 200],
        ),
        (
            "export",
            Method::GET,
            "/export",
            None,
            None,
            [200, 200, 200, 404, 404, 200],
        ),
        (
            "permissions",
            Method::GET,
            "/permissions",
            None,
            None,
            [200, 200, 200, 404, 404, 200],
        ),
        (
            "fork",
            Method::POST,
            "/fork",
            Some(json!({})),
            Some("/fork"),
            [201, 201, 201, 201, 404, 201],
        ),
        (
            "edit",
            Method::PATCH,
            "",
            Some(json!({"description": "x"})),
            None,
            [200, 200, 403, 404, 404, 403],
        ),
        (
            "publish",
            Method::PATCH,
            "",
            Some(json!({"is_public": false})),
            None,
            [200, 403, 403, 404, 404, 403],
        ),
        (
            "share",
            Method::POST,
            "/shares",
            Some(json!({"email": "z@example.com", "role": "viewer"})),
            None,
            [200, 403, 403, 404, 404, 403],
        ),
        (
            "links",
            Method::GET,
            "/links",
            None,
            None,
            [200, 403, 403, 404, 404, 403],
        ),
        (
            "delete",
            Method::DELETE,
            "",
            None,
            None,
            [200, 403, 403, 404, 404, 200],
        ),
    ];
    for (name, method, sub, body, by_link, expected) in ops {
        for (i, (role, token)) in who.iter().enumerate() {
            // A fresh project per cell, so that no cell depends on another.
            let p = create(&s, &owner, json!({"name": format!("{name} by {role}")})).await;
            let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
            for (email, level) in [(&editor_email, "editor"), (&viewer_email, "viewer")] {
                let (st, _, b) = call(
                    &s,
                    Method::POST,
                    &format!("{path}/shares"),
                    &owner,
                    Some(json!({"email": email, "role": level})),
                    None,
                )
                .await;
                assert_eq!(st, 200, "{b}");
            }
            let (_, _, link) = call(
                &s,
                Method::POST,
                &format!("{path}/links"),
                &owner,
                Some(json!({"access": "view"})),
                None,
            )
            .await;
            let target = match (*role, by_link) {
                ("link holder", Some(rest)) => {
                    format!("/api/links/{}{rest}", link["token"].as_str().unwrap())
                }
                _ => format!("{path}{sub}"),
            };
            let (st, _, b) = call(&s, method.clone(), &target, token, body.clone(), None).await;
            assert_eq!(st, expected[i], "{role} {name}: {b}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_notifies_at_once_when_online_and_waits_in_the_inbox_when_not() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "notifier").await;
    let bob_email = unique_email("notified");
    let bob = verified(&s, &bob_email).await;
    let first = create(&s, &ada, json!({"name": "While away"})).await;
    let second = create(&s, &ada, json!({"name": "While here"})).await;

    // Bob is offline: the notification waits in his inbox.
    let share = |p: &Value| format!("/api/projects/{}/shares", p["id"].as_str().unwrap());
    let (st, _, _) = call(
        &s,
        Method::POST,
        &share(&first),
        &ada,
        Some(json!({"email": bob_email, "role": "viewer"})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let mut inbox = Value::Null;
    for _ in 0..100 {
        inbox = call(&s, Method::GET, "/api/notifications", &bob, None, None)
            .await
            .2;
        if inbox["unread_count"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(inbox["unread_count"], 1, "{inbox}");
    let n = &inbox["notifications"][0];
    assert_eq!(n["type"], "project.shared");
    assert!(n["title"].as_str().unwrap().contains("While away"), "{n}");
    assert!(
        n["link"]
            .as_str()
            .unwrap()
            .ends_with(first["id"].as_str().unwrap()),
        "{n}"
    );
    assert_eq!(n["read_at"], Value::Null);

    // Online: it arrives on his WebSocket at once, and is in the inbox too.
    let mut ws = s.ws().await;
    ws.authenticate(&bob).await;
    let (st, _, _) = call(
        &s,
        Method::POST,
        &share(&second),
        &ada,
        Some(json!({"email": bob_email, "role": "editor"})),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let frame = ws.frame(std::time::Duration::from_secs(5)).await;
    assert_eq!(frame["type"], "project.shared", "{frame}");
    assert!(
        frame["data"]["title"]
            .as_str()
            .unwrap()
            .contains("While here"),
        "{frame}"
    );
    let inbox = call(&s, Method::GET, "/api/notifications", &bob, None, None)
        .await
        .2;
    assert_eq!(inbox["unread_count"], 2, "{inbox}");

    // Marked read, one and then all; someone else's ids mark nothing.
    let id = inbox["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/notifications/read",
        &ada,
        Some(json!({"ids": [id]})),
        None,
    )
    .await;
    assert_eq!((st, &b["marked"]), (200, &json!(0)), "{b}");
    let (_, _, b) = call(
        &s,
        Method::POST,
        "/api/notifications/read",
        &bob,
        Some(json!({"ids": [id]})),
        None,
    )
    .await;
    assert_eq!(
        (&b["marked"], &b["unread_count"]),
        (&json!(1), &json!(1)),
        "{b}"
    );
    let (_, _, b) = call(
        &s,
        Method::POST,
        "/api/notifications/read",
        &bob,
        Some(json!({"all": true})),
        None,
    )
    .await;
    assert_eq!(b["unread_count"], 0, "{b}");
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/notifications/read",
        &bob,
        Some(json!({"ids": ["nope"]})),
        None,
    )
    .await;
    assert_eq!((st, &b["error"]["field"]), (422, &json!("ids[0]")), "{b}");
    let (st, _, _) = call(
        &s,
        Method::GET,
        "/api/notifications?limit=500",
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_links_open_or_fork_until_revoked_or_expired() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let (ada, bob) = (user(&s, "linker").await, user(&s, "holder").await);
    let p = create(
        &s,
        &ada,
        json!({"name": "Linked", "template_id": "three-tier-web-app"}),
    )
    .await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());

    let (st, _, view) = call(
        &s,
        Method::POST,
        &format!("{path}/links"),
        &ada,
        Some(json!({"access": "view"})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{view}");
    let token = view["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 40, "unguessable: {token}");
    // Bob (no share) opens it: he reads it; the project itself stays closed to him.
    let (st, _, b) = call(
        &s,
        Method::GET,
        &format!("/api/links/{token}"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(
        (st, &b["project"]["access_level"]),
        (200, &json!("viewer")),
        "{b}"
    );
    assert_eq!(b["project"]["design"], p["design"]);
    let (st, _, _) = call(&s, Method::GET, &path, &bob, None, None).await;
    assert_eq!(st, 404);
    let (st, _, f) = call(
        &s,
        Method::POST,
        &format!("/api/links/{token}/fork"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(
        (st, &f["project"]["access_level"]),
        (201, &json!("owner")),
        "{f}"
    );

    // A fork-only link forks but does not open; the list never shows tokens.
    let (_, _, fork_only) = call(
        &s,
        Method::POST,
        &format!("{path}/links"),
        &ada,
        Some(json!({"access": "fork", "expires_in_seconds": 3600})),
        None,
    )
    .await;
    let ft = fork_only["token"].as_str().unwrap();
    let (st, _, _) = call(
        &s,
        Method::GET,
        &format!("/api/links/{ft}"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("/api/links/{ft}/fork"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 201);
    let (_, _, links) = call(&s, Method::GET, &format!("{path}/links"), &ada, None, None).await;
    assert_eq!(links["links"].as_array().unwrap().len(), 2, "{links}");
    assert!(!links.to_string().contains(&token), "{links}");
    let (st, _, _) = call(&s, Method::GET, &format!("{path}/links"), &bob, None, None).await;
    assert_eq!(st, 404, "only the owner manages links");

    // Revoked: 410, saying so. Unknown: 404. Expired: 410.
    let (st, _, _) = call(
        &s,
        Method::DELETE,
        &format!("{path}/links/{}", view["id"].as_str().unwrap()),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _, b) = call(
        &s,
        Method::GET,
        &format!("/api/links/{token}"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 410, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("revoked"),
        "{b}"
    );
    let (st, _, _) = call(
        &s,
        Method::GET,
        "/api/links/not-a-real-token",
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (_, _, short) = call(
        &s,
        Method::POST,
        &format!("{path}/links"),
        &ada,
        Some(json!({"access": "view", "expires_in_seconds": 1})),
        None,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (st, _, b) = call(
        &s,
        Method::GET,
        &format!("/api/links/{}", short["token"].as_str().unwrap()),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 410, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("expired"),
        "{b}"
    );
    for (body, field) in [
        (json!({"access": "edit"}), "access"),
        (
            json!({"access": "view", "expires_in_seconds": -5}),
            "expires_in_seconds",
        ),
    ] {
        let (st, _, b) = call(
            &s,
            Method::POST,
            &format!("{path}/links"),
            &ada,
            Some(body),
            None,
        )
        .await;
        assert_eq!((st, &b["error"]["field"]), (422, &json!(field)), "{b}");
    }
    // A project holds a bounded number of live links; expired ones hold no place.
    let links = format!("{path}/links");
    let link = |expires: i64| {
        call(
            &s,
            Method::POST,
            &links,
            &ada,
            Some(json!({"access": "view", "expires_in_seconds": expires})),
            None,
        )
    };
    let mut made = 0;
    while link(1).await.0 == 201 {
        made += 1;
        assert!(made <= 50, "no cap on links");
    }
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(
        link(60).await.0,
        201,
        "the expired links still held their places"
    );
    // No new link into a project in the trash.
    let (st, _, _) = call(&s, Method::DELETE, &path, &ada, None, None).await;
    assert_eq!(st, 200);
    let (st, _, b) = link(60).await;
    assert_eq!((st, &b["error"]["code"]), (409, &json!("in_trash")), "{b}");
}

/// The project process is killed with SIGKILL during a stream of creates and updates;
/// after it restarts, every write that was answered 2xx is there, and every project is
/// whole (its current design is its newest version's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_project_writes_survive_a_sigkill_of_the_project_process() {
    let db = TestDb::create().await;
    let s = settings(&db);
    let logs = std::env::temp_dir().join(format!(
        "sdsim-project-kill-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&logs).unwrap();
    let (grpc, http) = (free_addr(), free_addr());
    let mut project = ServiceProcess::spawn("project", &s, grpc, http, &logs.join("p1.log"));
    project.wait_healthy().await;
    let mut rest = s.clone();
    rest.upstream.project = format!("http://{grpc}");
    let stack = Stack::start(
        rest,
        &[Service::Gateway, Service::Auth, Service::Simulation],
    );
    stack.wait_ready().await;
    let ada = user(&stack, "durable").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (base, ada, stop) = (stack.base.clone(), ada.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap();
            // (id, name) created, and (id, version, duration) saved, as acknowledged.
            let mut created: Vec<(String, String)> = Vec::new();
            let mut saved: Vec<(String, i64, i64)> = Vec::new();
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let name = format!("durable {i}");
                let design = json!({"name": name, "duration_s": 10 + i, "components": [], "connections": []});
                if let Ok(r) = http
                    .post(format!("{base}/api/projects"))
                    .bearer_auth(&ada)
                    .json(&json!({"name": name, "design": design}))
                    .send()
                    .await
                {
                    if r.status() == 201 {
                        let b: Value = r.json().await.unwrap();
                        created.push((
                            b["project"]["id"].as_str().unwrap().to_string(),
                            name.clone(),
                        ));
                    }
                }
                // Save a new design on the latest project, based on its current version.
                if let Some((id, _)) = created.last().cloned() {
                    if let Ok(r) = http
                        .get(format!("{base}/api/projects/{id}"))
                        .bearer_auth(&ada)
                        .send()
                        .await
                    {
                        if r.status() == 200 {
                            let b: Value = r.json().await.unwrap();
                            let v = b["project"]["version"].as_i64().unwrap();
                            let mut d = b["project"]["design"].clone();
                            d["duration_s"] = json!(1000 + i);
                            if let Ok(r) = http
                                .patch(format!("{base}/api/projects/{id}"))
                                .bearer_auth(&ada)
                                .header("if-match", format!("\"{v}\""))
                                .json(&json!({"design": d, "named": true}))
                                .send()
                                .await
                            {
                                if r.status() == 200 {
                                    let b: Value = r.json().await.unwrap();
                                    saved.push((
                                        id,
                                        b["project"]["version"].as_i64().unwrap(),
                                        1000 + i,
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            (created, saved)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    project.sigkill();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let project = ServiceProcess::spawn("project", &s, grpc, http, &logs.join("p2.log"));
    project.wait_healthy().await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (created, saved) = writer.await.unwrap();
    // The gateway's breaker opened while the only instance was gone; wait until it serves
    // again (half-open, then closed) before reading back.
    let first = &created[0].0;
    let back = std::time::Instant::now();
    while call(
        &stack,
        Method::GET,
        &format!("/api/projects/{first}"),
        &ada,
        None,
        None,
    )
    .await
    .0 != 200
    {
        assert!(
            back.elapsed() < std::time::Duration::from_secs(20),
            "the project service never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        created.len() > 5 && saved.len() > 5,
        "too few writes: {} {}",
        created.len(),
        saved.len()
    );

    for (id, name) in &created {
        let (st, _, b) = call(
            &stack,
            Method::GET,
            &format!("/api/projects/{id}"),
            &ada,
            None,
            None,
        )
        .await;
        assert_eq!(
            (st, &b["project"]["name"]),
            (200, &json!(name)),
            "acknowledged create {id} lost: {b}"
        );
    }
    for (id, version, duration) in &saved {
        let (st, _, b) = call(
            &stack,
            Method::GET,
            &format!("/api/projects/{id}/versions/{version}"),
            &ada,
            None,
            None,
        )
        .await;
        assert_eq!(st, 200, "acknowledged save {id} v{version} lost: {b}");
        assert_eq!(b["design"]["duration_s"], json!(duration));
    }
    // Whole: every project's design is its newest version's.
    let (_, _, l) = call(
        &stack,
        Method::GET,
        "/api/projects?page_size=100",
        &ada,
        None,
        None,
    )
    .await;
    for p in l["projects"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let (_, _, cur) = call(
            &stack,
            Method::GET,
            &format!("/api/projects/{id}"),
            &ada,
            None,
            None,
        )
        .await;
        let (_, _, versions) = call(
            &stack,
            Method::GET,
            &format!("/api/projects/{id}/versions?page_size=1"),
            &ada,
            None,
            None,
        )
        .await;
        let newest = versions["versions"][0]["version"].as_i64().unwrap();
        let (_, _, v) = call(
            &stack,
            Method::GET,
            &format!("/api/projects/{id}/versions/{newest}"),
            &ada,
            None,
            None,
        )
        .await;
        assert_eq!(
            v["design"], cur["project"]["design"],
            "project {id} is not whole"
        );
        assert_eq!(newest, cur["project"]["version"].as_i64().unwrap());
    }
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_counts() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let (ada, bob) = (user(&s, "present").await, user(&s, "visitor").await);
    let p = create(&s, &ada, json!({"name": "Busy", "is_public": true})).await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let (st, _, joined) = call(
        &s,
        Method::POST,
        &format!("{path}/collaboration"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 201, "{joined}");
    let (_, _, b) = call(
        &s,
        Method::POST,
        &format!("{path}/collaboration"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(b["present"].as_array().unwrap().len(), 2, "{b}");
    let (_, _, b) = call(
        &s,
        Method::GET,
        &format!("{path}/collaborators"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(b["present"].as_array().unwrap().len(), 2, "{b}");
    let session = joined["session_id"].as_str().unwrap();
    let (st, _, b) = call(
        &s,
        Method::DELETE,
        &format!("{path}/collaboration/{session}"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!((st, &b["left"]), (200, &json!(true)), "{b}");
    let (_, _, b) = call(
        &s,
        Method::DELETE,
        &format!("{path}/collaboration/{session}"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(b["left"], false, "leaving twice changes nothing");
    let (_, _, b) = call(
        &s,
        Method::GET,
        &format!("{path}/collaborators"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(b["present"].as_array().unwrap().len(), 1, "{b}");

    // Views (by others) and forks are counted; analytics are for those who see permissions.
    for _ in 0..3 {
        call(&s, Method::GET, &path, &bob, None, None).await;
    }
    call(&s, Method::GET, &path, &ada, None, None).await;
    call(
        &s,
        Method::POST,
        &format!("{path}/fork"),
        &bob,
        Some(json!({})),
        None,
    )
    .await;
    let mut a = Value::Null;
    for _ in 0..50 {
        a = call(
            &s,
            Method::GET,
            &format!("{path}/analytics"),
            &ada,
            None,
            None,
        )
        .await
        .2;
        if a["views"] == 3 && a["forks"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        (&a["views"], &a["forks"], &a["versions"]),
        (&json!(3), &json!(1), &json!(1)),
        "{a}"
    );
    let (st, _, _) = call(
        &s,
        Method::GET,
        &format!("{path}/analytics"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 403, "a public reader does not see the counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_saved_as_templates_private_or_public() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let (ada, bob) = (user(&s, "templater").await, user(&s, "template-user").await);
    let p = create(
        &s,
        &ada,
        json!({"name": "House style", "template_id": "cdn-fronted-site"}),
    )
    .await;
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let (st, _, private) = call(
        &s,
        Method::POST,
        &format!("{path}/template"),
        &ada,
        Some(json!({"category": "house"})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{private}");
    let private_id = private["template"]["id"].as_str().unwrap().to_string();
    assert_eq!(private["template"]["is_system"], false);
    let (st, _, public) = call(
        &s,
        Method::POST,
        &format!("{path}/template"),
        &ada,
        Some(json!({"name": "Shared style", "is_public": true})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{public}");
    let public_id = public["template"]["id"].as_str().unwrap().to_string();
    // Ada sees both; Bob sees the public one only, and cannot use the private one.
    let ids = |v: &Value| -> Vec<String> {
        v["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, _, mine) = call(&s, Method::GET, "/api/templates", &ada, None, None).await;
    assert!(
        ids(&mine).contains(&private_id) && ids(&mine).contains(&public_id),
        "{mine}"
    );
    let (_, _, house) = call(
        &s,
        Method::GET,
        "/api/templates?category=house",
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(ids(&house), vec![private_id.clone()], "{house}");
    let (_, _, theirs) = call(&s, Method::GET, "/api/templates", &bob, None, None).await;
    assert!(
        !ids(&theirs).contains(&private_id) && ids(&theirs).contains(&public_id),
        "{theirs}"
    );
    let (st, _, _) = call(
        &s,
        Method::GET,
        &format!("/api/templates/{private_id}"),
        &bob,
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects",
        &bob,
        Some(json!({"name": "x", "template_id": private_id})),
        None,
    )
    .await;
    assert_eq!(
        (st, &b["error"]["field"]),
        (422, &json!("template_id")),
        "{b}"
    );
    let (st, _, b) = call(
        &s,
        Method::POST,
        "/api/projects",
        &bob,
        Some(json!({"name": "mine", "template_id": public_id})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["project"]["design"], p["design"]);
    // Only the owner makes templates of a project.
    let (st, _, _) = call(
        &s,
        Method::POST,
        &format!("{path}/template"),
        &bob,
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(st, 404);

    // Anyone may publish templates, so a listing carries designs only while they are small
    // (twenty of 300 KB would otherwise not fit one answer): a large one is listed without
    // its design, which the template itself gives.
    let big = create(
        &s,
        &bob,
        json!({"name": "Big", "design": {"name": "big", "notes": "x".repeat(300_000)}}),
    )
    .await;
    let (st, _, t) = call(
        &s,
        Method::POST,
        &format!("/api/projects/{}/template", big["id"].as_str().unwrap()),
        &bob,
        Some(json!({"name": "Big style", "is_public": true})),
        None,
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let big_id = t["template"]["id"].as_str().unwrap().to_string();
    let (st, _, all) = call(&s, Method::GET, "/api/templates", &ada, None, None).await;
    assert_eq!(st, 200);
    let listed = |id: &str| {
        all["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} listed"))
    };
    assert_eq!(listed(&big_id)["design"], Value::Null);
    assert_eq!(
        listed(&public_id)["design"],
        p["design"],
        "small ones keep theirs"
    );
    let (st, _, one) = call(
        &s,
        Method::GET,
        &format!("/api/templates/{big_id}"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(
        one["template"]["design"]["notes"].as_str().map(str::len),
        Some(300_000)
    );
}

/// The engine's largest valid design (2,000 components) fits the one size limit, through
/// the gateway and gRPC, and comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_valid_design_fits() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let ada = user(&s, "large").await;
    let mut components =
        vec![json!({"name": "users", "kind": "client", "traffic": {"type": "open", "rate": 10}})];
    let mut connections = Vec::new();
    for i in 1..2000 {
        components
            .push(json!({"name": format!("service-{i:04}"), "kind": "web_server", "replicas": 2}));
        connections.push(
            json!({"from": "users", "to": format!("service-{i:04}"), "probability": 1.0 / 1999.0}),
        );
    }
    let design = json!({"name": "huge", "duration_s": 1, "components": components, "connections": connections});
    let size = design.to_string().len();
    assert!(size < sdsim_protocols::limits::MAX_DESIGN_BYTES, "{size}");
    let p = create(&s, &ada, json!({"name": "Huge", "design": design})).await;
    assert_eq!(p["design"]["components"].as_array().unwrap().len(), 2000);
    let (st, _, b) = call(
        &s,
        Method::GET,
        &format!("/api/projects/{}", p["id"].as_str().unwrap()),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(b["project"]["design"], p["design"]);

    // Named saves until the history no longer fits one export document (one gRPC message):
    // the export with versions is refused by name, the export without them still works.
    let path = format!("/api/projects/{}", p["id"].as_str().unwrap());
    let mut version = 1;
    let mut design = p["design"].clone();
    let saves = sdsim_protocols::limits::MAX_DESIGN_MESSAGE_BYTES / size + 2;
    for i in 0..saves {
        design["duration_s"] = json!(2 + i);
        let (st, _, b) = call(
            &s,
            Method::PATCH,
            &path,
            &ada,
            Some(json!({"design": design, "named": true})),
            Some(&format!("\"{version}\"")),
        )
        .await;
        assert_eq!(st, 200, "{b}");
        version = b["project"]["version"].as_i64().unwrap();
    }
    let (st, _, b) = call(
        &s,
        Method::GET,
        &format!("{path}/export?versions=true"),
        &ada,
        None,
        None,
    )
    .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["field"], "versions", "{b}");
    let (st, _, b) = call(&s, Method::GET, &format!("{path}/export"), &ada, None, None).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["design"]["duration_s"], json!(2 + saves - 1));
}
