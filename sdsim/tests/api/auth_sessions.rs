//! Sessions and abuse protection through the gateway, against real PostgreSQL and Redis:
//! refresh rotation and reuse detection, logout (one or all), session lists, parallel
//! password guessing, rate limits, and the audit log.

use crate::helpers::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::Method;
use sdsim_protocols::Service;
use std::time::Duration;

const PASSWORD: &str = "a long enough password";

#[derive(diesel::QueryableByName)]
struct Event {
    #[diesel(sql_type = Text)]
    event: String,
}

async fn audit_events(db: &TestDb) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    let rows: Vec<Event> = diesel::sql_query("SELECT event FROM auth_schema.audit_log ORDER BY id")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|e| e.event).collect()
}

async fn refresh(s: &Stack, token: &str) -> (u16, serde_json::Value) {
    s.post_json(
        "/api/auth/refresh",
        serde_json::json!({ "refresh_token": token }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_reused_token_ends_the_session() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("refresh");
    s.register(&email, PASSWORD).await;
    let login = s.login(&email, PASSWORD).await;
    let r1 = login["refresh_token"].as_str().unwrap().to_string();
    let a1 = login["access_token"].as_str().unwrap().to_string();

    let (st, second) = refresh(&s, &r1).await;
    assert_eq!(st, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    let a2 = second["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "the refresh token rotates");
    assert_eq!(second["session_id"], login["session_id"]);
    assert_eq!(s.profile(&a2).await.0, 200);

    // The old token again: stolen. The whole family (session) ends, at once, everywhere.
    let (st, b) = refresh(&s, &r1).await;
    assert_eq!(st, 401);
    assert_error(&b, "refresh_token_reused");
    let (st, b) = refresh(&s, &r2).await;
    assert_eq!(st, 401);
    assert_error(&b, "refresh_token_invalid");
    for token in [&a1, &a2] {
        let (st, b) = s.profile(token).await;
        assert_eq!(st, 401);
        assert_error(&b, "token_revoked");
    }
    // Garbage and missing tokens are named.
    let (st, b) = refresh(&s, "not-a-token").await;
    assert_eq!(st, 401);
    assert_error(&b, "refresh_token_invalid");
    let (st, b) = s
        .post_json("/api/auth/refresh", serde_json::json!({}))
        .await;
    assert_eq!(st, 422);
    assert_eq!(b["error"]["field"], "refresh_token");

    let events = audit_events(&db).await;
    for e in ["account.registered", "login", "token.reuse"] {
        assert!(events.iter().any(|x| x == e), "{e} not in {events:?}");
    }
}

/// The close `code`'s reason, once `w` closes within 5 s (frames before it are skipped).
async fn closed_with(w: &mut Ws, code: u16) -> String {
    loop {
        match w.next(Duration::from_secs(5)).await {
            Next::Frame(_) => continue,
            Next::Closed(Some(c), reason) if c == code => return reason,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_this_or_every_session_at_once() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("logout");
    s.register(&email, PASSWORD).await;
    let a = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let c = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A WebSocket of each session: an ended session's sockets close with 4001 at once, not
    // when their access token expires; the others stay open.
    let mut sockets = Vec::new();
    for token in [&a, &b, &c] {
        let mut w = s.ws().await;
        w.authenticate(token).await;
        sockets.push(w);
    }

    let r = s
        .authed(Method::POST, "/api/auth/logout", &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["sessions_ended"],
        1
    );
    let (st, body) = s.profile(&a).await;
    assert_eq!(st, 401, "a logged-out token is refused at once");
    assert_error(&body, "token_revoked");
    assert_eq!(s.profile(&b).await.0, 200);
    let reason = closed_with(&mut sockets[0], 4001).await;
    assert!(reason.contains("session ended"), "{reason}");
    for w in &mut sockets[1..] {
        loop {
            match w.next(Duration::from_millis(500)).await {
                Next::Timeout => break,
                Next::Frame(_) => continue,
                Next::Closed(code, reason) => {
                    panic!("another session's socket closed: {code:?} {reason}")
                }
            }
        }
    }

    // A mistyped body is named, not ignored.
    let r = s
        .authed(Method::POST, "/api/auth/logout", &b)
        .json(&serde_json::json!({"all_sessions": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["field"],
        "all_sessions"
    );

    let r = s
        .authed(Method::POST, "/api/auth/logout", &b)
        .json(&serde_json::json!({"all_sessions": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["sessions_ended"],
        2
    );
    assert_eq!(s.profile(&b).await.0, 401);
    assert_eq!(s.profile(&c).await.0, 401);
    for w in &mut sockets[1..] {
        closed_with(w, 4001).await;
    }
    // Logging out again with a dead token is a 401, not a 500.
    let r = s
        .authed(Method::POST, "/api/auth/logout", &b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s.http.post(s.url("/api/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_and_end_their_own_sessions_only() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("sessions");
    s.register(&email, PASSWORD).await;
    let laptop = s.login(&email, PASSWORD).await;
    let r = s
        .http
        .post(s.url("/api/auth/login"))
        .header("user-agent", "phone/1.0")
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let phone: serde_json::Value = r.json().await.unwrap();
    let token = laptop["access_token"].as_str().unwrap();

    let list = |t: String| {
        let req = s.authed(Method::GET, "/api/auth/sessions", &t);
        async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let l = list(token.to_string()).await;
    let sessions = l["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{l}");
    let current: Vec<_> = sessions.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop["session_id"]);
    let other = sessions.iter().find(|x| x["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "phone/1.0");
    assert_eq!(other["ip"], "127.0.0.1");

    // Someone else's session is "not found", like an unknown one.
    let stranger = unique_email("stranger");
    s.register(&stranger, PASSWORD).await;
    let st_login = s.login(&stranger, PASSWORD).await;
    let path = format!(
        "/api/auth/sessions/{}",
        laptop["session_id"].as_str().unwrap()
    );
    let r = s
        .authed(
            Method::DELETE,
            &path,
            st_login["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .authed(
            Method::DELETE,
            &format!("/api/auth/sessions/{}", uuid::Uuid::new_v4()),
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .authed(Method::DELETE, "/api/auth/sessions/not-a-uuid", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["field"],
        "session_id"
    );

    // End the phone's session: its token dies, the laptop's lives.
    let path = format!(
        "/api/auth/sessions/{}",
        phone["session_id"].as_str().unwrap()
    );
    let r = s.authed(Method::DELETE, &path, token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["ended"], true);
    assert_eq!(
        s.profile(phone["access_token"].as_str().unwrap()).await.0,
        401
    );
    assert_eq!(s.profile(token).await.0, 200);
    assert_eq!(
        list(token.to_string()).await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(audit_events(&db).await.iter().any(|e| e == "session.ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guessing_is_capped_and_locks_only_the_guesser_briefly() {
    let db = TestDb::create().await;
    let mut settings = settings(&db);
    // Client addresses from X-Forwarded-For: the test is the trusted proxy.
    settings.gateway.trusted_proxies = vec!["127.0.0.0/8".into()];
    settings.auth.limits.login_failures_per_account_ip = 5;
    settings.auth.limits.login_failures_per_account = 50;
    settings.auth.limits.login_lockout_seconds = 3;
    settings.auth.limits.register_per_ip_per_hour = 3;
    let s = Stack::start(settings, &Service::ALL);
    s.wait_ready().await;
    let email = unique_email("victim");
    s.register(&email, PASSWORD).await;

    let guess = |email: String, password: &'static str, ip: &'static str| {
        let req = s
            .http
            .post(s.url("/api/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&serde_json::json!({"email": email, "password": password}));
        async move {
            let r = req.send().await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }
    };
    // 20 guesses at once, for a real and for an unknown account: exactly 5 reach bcrypt.
    for target in [email.clone(), unique_email("ghost")] {
        let results = futures_util::future::join_all(
            (0..20).map(|_| guess(target.clone(), "wrong password!", "203.0.113.7")),
        )
        .await;
        let unauthorized = results.iter().filter(|r| r.0 == 401).count();
        let limited = results.iter().filter(|r| r.0 == 429 && r.1).count();
        assert_eq!((unauthorized, limited), (5, 15), "{target}: {results:?}");
    }
    // The guesser is locked out of the account, even with the right password...
    assert_eq!(guess(email.clone(), PASSWORD, "203.0.113.7").await.0, 429);
    // ...the real user, elsewhere, is not.
    assert_eq!(guess(email.clone(), PASSWORD, "198.51.100.2").await.0, 200);
    // And the lockout ends with its window (3 s here), however many attempts came since.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(guess(email.clone(), PASSWORD, "203.0.113.7").await.0, 200);

    // Registrations per address are limited too (3 per hour here; one was used above).
    let reg =
        |n: u32| {
            let req = s
            .http
            .post(s.url("/api/auth/register"))
            .header("x-forwarded-for", "192.0.2.9")
            .json(&serde_json::json!({"email": unique_email(&format!("r{n}")), "password": PASSWORD,
                                      "first_name": "R", "last_name": "L"}));
            async move { req.send().await.unwrap() }
        };
    for n in 0..3 {
        assert_eq!(reg(n).await.status(), 201);
    }
    let r = reg(3).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_error(&r.json().await.unwrap(), "rate_limited");

    let events = audit_events(&db).await;
    assert!(
        events.iter().filter(|e| *e == "login.failed").count() >= 10,
        "{events:?}"
    );
    assert!(events.iter().any(|e| e == "login.throttled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_with_the_reason() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    for weak in ["password123", "qwertyuiop", "Lovelace1815"] {
        let (st, b) = s
            .post_json(
                "/api/auth/register",
                serde_json::json!({"email": unique_email("weak"), "password": weak,
                                   "first_name": "Ada", "last_name": "Lovelace"}),
            )
            .await;
        assert_eq!(st, 422, "{weak}: {b}");
        assert_eq!(b["error"]["field"], "password");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("too weak"),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_and_password_change() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("change");
    s.register(&email, PASSWORD).await;
    let here = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let elsewhere = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Profile: change a name, clear the company; unknown fields and bad values are named.
    let put = |body: serde_json::Value| {
        let req = s
            .authed(Method::PUT, "/api/auth/profile", &here)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (st, b) = put(serde_json::json!({"first_name": "Augusta", "company": null})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["user"]["first_name"], "Augusta");
    assert_eq!(b["user"]["last_name"], "Lovelace");
    assert!(b["user"]["company"].is_null());
    assert_eq!(s.profile(&here).await.1["user"]["first_name"], "Augusta");
    let (st, b) = put(serde_json::json!({"first_name": ""})).await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("first_name")),
        "{b}"
    );
    let (st, b) = put(serde_json::json!({"email": "x@y.zz"})).await;
    assert_eq!(st, 422, "{b}");
    let r = s
        .http
        .put(s.url("/api/auth/profile"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Password change: wrong current, weak new, then success.
    let change = |current: &str, new: &str| {
        let req = s
            .authed(Method::POST, "/api/auth/password", &here)
            .json(&serde_json::json!({"current_password": current, "new_password": new}));
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (st, b) = change("not my password", "a brand new passphrase").await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("current_password")),
        "{b}"
    );
    let (st, b) = change(PASSWORD, "password1").await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("new_password")),
        "{b}"
    );
    let (st, b) = change(PASSWORD, &"x".repeat(80)).await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("new_password")),
        "{b}"
    );
    let (st, b) = change(PASSWORD, "a brand new passphrase").await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["other_sessions_ended"], 1);

    // The other session ended at once; this one lives; only the new password logs in.
    assert_eq!(s.profile(&elsewhere).await.0, 401);
    assert_eq!(s.profile(&here).await.0, 200);
    let (st, _) = s
        .post_json(
            "/api/auth/login",
            serde_json::json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 401);
    s.login(&email, "a brand new passphrase").await;
    let events = audit_events(&db).await;
    assert!(events.iter().any(|e| e == "password.changed"), "{events:?}");
    assert!(
        events.iter().any(|e| e == "password.change_failed"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_and_retire_across_restarts() {
    use sdsim_auth::settings::JwtKey;
    use sdsim_runtime::config::Secret;
    let db = TestDb::create().await;
    let mut first = settings(&db);
    first.auth.jwt_key_id = "k0".into();
    let email = unique_email("rotate");
    let old_token = {
        let s = Stack::start(first.clone(), &Service::ALL);
        s.wait_ready().await;
        s.register(&email, PASSWORD).await;
        s.login(&email, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }; // stopped

    // Restarted with a new signing key; the old one only verifies.
    let mut rotated = first.clone();
    rotated.auth.jwt_key_id = "k1".into();
    rotated.auth.jwt_secret = Secret::new("a-brand-new-signing-secret-for-k1-0123456789");
    rotated.auth.previous_keys = vec![JwtKey {
        kid: "k0".into(),
        secret: first.auth.jwt_secret.clone(),
    }];
    let new_token = {
        let s = Stack::start(rotated.clone(), &Service::ALL);
        s.wait_ready().await;
        assert_eq!(
            s.profile(&old_token).await.0,
            200,
            "a previous key still verifies"
        );
        let t = s.login(&email, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(s.profile(&t).await.0, 200);
        t
    };

    // The old key retired.
    let mut retired = rotated.clone();
    retired.auth.previous_keys.clear();
    let s = Stack::start(retired, &Service::ALL);
    s.wait_ready().await;
    let (st, b) = s.profile(&old_token).await;
    assert_eq!(st, 401);
    assert_error(&b, "token_unknown_key");
    assert_eq!(s.profile(&new_token).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_find_users_change_roles_lock_accounts_and_read_the_audit_log() {
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let admin_email = unique_email("admin");
    let user_email = unique_email("user");
    s.register(&admin_email, PASSWORD).await;
    let user = s.register(&user_email, PASSWORD).await;
    let user_id = user["user"]["id"].as_str().unwrap().to_string();

    // The operator bootstraps the first admin with the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sdsim"))
        .args(["admin", "grant-role", &admin_email, "admin"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = s.login(&admin_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let member = s.login(&user_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let call = |m: Method, path: String, token: String, body: Option<serde_json::Value>| {
        let mut req = s
            .authed(m, &path, &token)
            .header("user-agent", "admin-console/3.1");
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };

    // A member is forbidden; no token is unauthorized.
    let (st, b) = call(Method::GET, "/api/admin/users".into(), member.clone(), None).await;
    assert_eq!(st, 403, "{b}");
    assert_error(&b, "forbidden");
    let r = s.http.get(s.url("/api/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Find users.
    let q = format!("/api/admin/users?query={}", &user_email[..12]);
    let (st, b) = call(Method::GET, q, admin.clone(), None).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["total"], 1);
    assert_eq!(b["users"][0]["email"], user_email.to_lowercase());
    let (st, b) = call(
        Method::GET,
        "/api/admin/users?limit=5000".into(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("limit")),
        "{b}"
    );
    let (st, b) = call(
        Method::GET,
        "/api/admin/users?limit=abc".into(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 422, "{b}");

    // Roles: assign viewer, remove member; unknown roles and users are named.
    let roles = format!("/api/admin/users/{user_id}/roles");
    let (st, b) = call(
        Method::POST,
        roles.clone(),
        admin.clone(),
        Some(serde_json::json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["user"]["roles"], serde_json::json!(["member", "viewer"]));
    let (st, b) = call(
        Method::DELETE,
        format!("{roles}/member"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["user"]["roles"], serde_json::json!(["viewer"]));
    let (st, b) = call(
        Method::POST,
        roles.clone(),
        admin.clone(),
        Some(serde_json::json!({"role": "emperor"})),
    )
    .await;
    assert_eq!(
        (st, b["error"]["field"].as_str()),
        (422, Some("role")),
        "{b}"
    );
    let ghost = format!("/api/admin/users/{}/roles", uuid::Uuid::new_v4());
    let (st, _) = call(
        Method::POST,
        ghost,
        admin.clone(),
        Some(serde_json::json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(st, 404);
    // The last admin cannot be demoted.
    let me = s.profile(&admin).await.1["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, b) = call(
        Method::DELETE,
        format!("/api/admin/users/{me}/roles/admin"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 409, "{b}");
    assert_error(&b, "last_admin");
    // Permissions follow the roles at once: a viewer may not start simulations.
    use sdsim_protocols::proto::auth::{
        auth_service_client::AuthServiceClient, CheckPermissionRequest,
    };
    let mut auth =
        AuthServiceClient::connect(format!("http://{}", s.running.addrs(Service::Auth).grpc))
            .await
            .unwrap();
    let check = auth
        .check_permission(CheckPermissionRequest {
            user_id: user_id.clone(),
            permission: "simulation:start".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!check.allowed, "{}", check.reason);

    // Lock: the user's sessions end at once and login is refused; unlock restores login.
    let (st, b) = call(
        Method::POST,
        format!("/api/admin/users/{user_id}/lock"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["user"]["is_active"], false);
    assert_eq!(s.profile(&member).await.0, 401);
    let (st, b) = s
        .post_json(
            "/api/auth/login",
            serde_json::json!({"email": user_email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(st, 401, "{b}");
    assert_error(&b, "account_disabled");
    let (st, _) = call(
        Method::POST,
        format!("/api/admin/users/{me}/lock"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 409, "an admin cannot lock themselves");
    let (st, _) = call(
        Method::POST,
        format!("/api/admin/users/{user_id}/unlock"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200);
    let again = s.login(&user_email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // End every session of a user.
    let (st, b) = call(
        Method::DELETE,
        format!("/api/admin/users/{user_id}/sessions"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!((st, b["sessions_ended"].as_i64()), (200, Some(1)), "{b}");
    assert_eq!(s.profile(&again).await.0, 401);

    // The audit log tells the story, newest first, filterable.
    let (st, b) = call(
        Method::GET,
        format!("/api/admin/audit?user_id={user_id}"),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    let events: Vec<&str> = b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for e in [
        "account.registered",
        "login",
        "role.assigned",
        "role.removed",
        "account.locked",
        "account.unlocked",
        "sessions.ended_by_admin",
    ] {
        assert!(events.contains(&e), "{e} not in {events:?}");
    }
    assert_eq!(events[0], "sessions.ended_by_admin");
    let (st, b) = call(
        Method::GET,
        "/api/admin/audit?event=account.locked".into(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(b["entries"].as_array().unwrap().len(), 1);
    assert_eq!(b["entries"][0]["detail"]["by"], me);
    // Every admin action records where it came from.
    let (_, b) = call(
        Method::GET,
        format!("/api/admin/audit?user_id={user_id}"),
        admin.clone(),
        None,
    )
    .await;
    for e in b["entries"].as_array().unwrap() {
        let event = e["event"].as_str().unwrap();
        let by_admin = [
            "role.assigned",
            "role.removed",
            "account.locked",
            "account.unlocked",
            "sessions.ended_by_admin",
        ];
        if by_admin.contains(&event) {
            assert_eq!((event, e["ip"].as_str()), (event, Some("127.0.0.1")), "{e}");
            assert_eq!(e["user_agent"], "admin-console/3.1", "{e}");
        }
    }
    let (st, _) = call(
        Method::GET,
        "/api/admin/audit?user_id=nope".into(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(st, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_refused_by_every_instance_within_a_second() {
    let db = TestDb::create().await;
    let shared = settings(&db); // one database, one Redis prefix, two full instances
    let a = Stack::start(shared.clone(), &Service::ALL);
    let b = Stack::start(shared, &Service::ALL);
    a.wait_ready().await;
    b.wait_ready().await;
    let email = unique_email("mesh");
    a.register(&email, PASSWORD).await;
    let token = a.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Instance b has validated (and cached) the token.
    assert_eq!(b.profile(&token).await.0, 200);
    assert_eq!(b.profile(&token).await.0, 200);

    let r = a
        .authed(Method::POST, "/api/auth/logout", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended = std::time::Instant::now();
    // Each gateway routes to either auth instance (each with its own validation cache).
    for (name, stack) in [("b", &b), ("a", &a)] {
        let mut refused_after = None;
        while ended.elapsed() < Duration::from_secs(3) {
            if stack.profile(&token).await.0 == 401 {
                refused_after = Some(ended.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let after = refused_after
            .unwrap_or_else(|| panic!("gateway {name} never refused the ended session"));
        assert!(
            after < Duration::from_secs(1),
            "gateway {name} refused only after {after:?}"
        );
    }
    // From one second on, every path refuses it.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(ended.elapsed())).await;
    for stack in [&a, &b] {
        for _ in 0..10 {
            assert_eq!(stack.profile(&token).await.0, 401);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_through_the_gateway() {
    use base64::Engine;
    let db = TestDb::create().await;
    let s = Stack::up(&db).await;
    let email = unique_email("forge");
    s.register(&email, PASSWORD).await;
    let login = s.login(&email, PASSWORD).await;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let sign = |alg: jsonwebtoken::Algorithm, claims: &serde_json::Value| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let good = claims_for(&login, 600);
    let with = |k: &str, v: serde_json::Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let cases = [
        // alg: none, no signature, admin claimed.
        (
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"})),
                b64(&with("adm", serde_json::json!(true)))
            ),
            "token_malformed",
        ),
        (
            sign(jsonwebtoken::Algorithm::HS512, &good),
            "token_bad_algorithm",
        ),
        (
            sign(jsonwebtoken::Algorithm::HS384, &good),
            "token_bad_algorithm",
        ),
        (
            sign(
                jsonwebtoken::Algorithm::HS256,
                &with("aud", "elsewhere".into()),
            ),
            "token_bad_audience",
        ),
        (
            sign(
                jsonwebtoken::Algorithm::HS256,
                &with("iss", "mallory".into()),
            ),
            "token_bad_issuer",
        ),
        (
            sign(
                jsonwebtoken::Algorithm::HS256,
                &with("nbf", (chrono_now() + 3600).into()),
            ),
            "token_not_yet_valid",
        ),
        (
            forge_token(good.clone(), JWT_SECRET, "k9"),
            "token_unknown_key",
        ),
    ];
    for (token, code) in cases {
        let (st, b) = s.profile(&token).await;
        assert_eq!(st, 401, "{code}: {b}");
        let got = b["error"]["code"].as_str().unwrap();
        assert!(
            got == code || (code == "token_malformed" && got == "token_bad_algorithm"),
            "expected {code}, got {b}"
        );
    }
    // The genuine claims, signed properly, pass: the refusals above are about the forgery.
    assert_eq!(
        s.profile(&sign(jsonwebtoken::Algorithm::HS256, &good))
            .await
            .0,
        200
    );
}

/// Sum of `sdsim_auth_session_checks_total` with this outcome in a /metrics page.
fn session_checks(metrics: &str, outcome: &str) -> u64 {
    let label = format!("sdsim_auth_session_checks_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&label))
        .map(|v| v.trim().parse::<u64>().expect("a counter value"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_validations_checks_the_session_once() {
    use sdsim_protocols::proto::auth::{
        auth_service_client::AuthServiceClient, LogoutRequest, ValidateTokenRequest,
    };
    let db = TestDb::create().await;
    let a = Stack::up(&db).await;
    // A second auth instance on the same database and Redis prefix.
    let b = Stack::start(a.settings.clone(), &[Service::Auth]);
    b.wait_ready().await;
    let email = unique_email("burst");
    a.register(&email, PASSWORD).await;
    let token = a.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let grpc = |s: &Stack| format!("http://{}", s.running.addrs(Service::Auth).grpc);
    let b_http = b.running.addrs(Service::Auth).http;
    let on_b = AuthServiceClient::connect(grpc(&b)).await.unwrap();
    let burst = |n: usize| {
        let calls = (0..n).map(|_| {
            let mut auth = on_b.clone();
            let token = token.clone();
            async move {
                auth.validate_token(ValidateTokenRequest {
                    token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
            }
        });
        futures_util::future::join_all(calls)
    };
    let before = b.metrics(b_http).await;
    let answers = burst(64).await;
    assert!(answers.iter().all(|r| r.valid), "{answers:?}");
    let after = b.metrics(b_http).await;
    let live = session_checks(&after, "live") - session_checks(&before, "live");
    // One check answers the whole burst (two if it straddled a refresh on a slow machine);
    // one check per call would be 64.
    assert!(
        (1..=2).contains(&live),
        "{live} session checks for one burst"
    );

    // Logged out on instance a: b learns it through Redis with one check, then refuses
    // without asking again.
    AuthServiceClient::connect(grpc(&a))
        .await
        .unwrap()
        .logout(LogoutRequest {
            access_token: token.clone(),
            all_sessions: false,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = b.metrics(b_http).await;
    for _ in 0..3 {
        let answers = burst(64).await;
        assert!(
            answers
                .iter()
                .all(|r| !r.valid && r.error == "token_revoked"),
            "{answers:?}"
        );
    }
    let after = b.metrics(b_http).await;
    let ended = session_checks(&after, "ended") - session_checks(&before, "ended");
    assert!(
        (1..=2).contains(&ended),
        "{ended} session checks for three refused bursts"
    );
}

/// `X-Forwarded-For` names the client only when the peer is a trusted proxy; from anyone
/// else it is ignored (a client cannot pick its own address to dodge the limits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_trusted_only_from_the_configured_proxies() {
    let db = TestDb::create().await;
    let email = unique_email("xff");
    for (proxies, seen) in [
        (vec!["10.0.0.0/8"], "127.0.0.1"),
        (vec!["127.0.0.1"], "203.0.113.77"),
    ] {
        let mut settings = settings(&db);
        settings.gateway.trusted_proxies = proxies.iter().map(|p| p.to_string()).collect();
        let s = Stack::start(settings, &Service::ALL);
        s.wait_ready().await;
        if seen == "127.0.0.1" {
            s.register(&email, PASSWORD).await;
        }
        let r = s
            .http
            .post(s.url("/api/auth/login"))
            .header("x-forwarded-for", "203.0.113.77")
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let sessions: serde_json::Value = s
            .authed(Method::GET, "/api/auth/sessions", &token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let current = sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["current"] == true)
            .cloned()
            .unwrap_or_default();
        assert_eq!(current["ip"], seen, "{proxies:?}: {sessions}");
    }
}

/// How many `ValidateToken` calls the gateway has made, from its `/metrics`.
async fn validations_sent(s: &Stack) -> u64 {
    s.metrics(s.running.addrs(Service::Gateway).http)
        .await
        .lines()
        .filter(|l| {
            l.starts_with("sdsim_grpc_client_seconds_count{")
                && l.contains("method=\"ValidateToken\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_trusts_a_validation_a_moment_and_auth_says_when_to_drop_it() {
    use sdsim_protocols::proto::auth::{
        auth_service_client::AuthServiceClient, GetProfileRequest, LogoutRequest,
    };
    let db = TestDb::create().await;
    // A long trust, so that what ends it early can be told from its end.
    let mut cfg = settings(&db);
    cfg.gateway.token_cache_ms = 900;
    cfg.auth.validation_cache_ms = 0;
    let s = Stack::start(cfg, &Service::ALL);
    s.wait_ready().await;
    let email = unique_email("trusted");
    s.register(&email, PASSWORD).await;
    let login = s.login(&email, PASSWORD).await;
    let token = login["access_token"].as_str().unwrap().to_string();
    let other = s.login(&email, PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Forty reads in quick succession cost a handful of validations, not forty.
    let before = validations_sent(&s).await;
    for _ in 0..40 {
        assert_eq!(s.profile(&token).await.0, 200);
    }
    let sent = validations_sent(&s).await - before;
    assert!((1..=10).contains(&sent), "{sent} validations for 40 reads");
    assert_eq!(s.profile(&other).await.0, 200);

    // Auth stamps an answer during which it ended sessions, and only such answers.
    let mut auth =
        AuthServiceClient::connect(format!("http://{}", s.running.addrs(Service::Auth).grpc))
            .await
            .unwrap();
    let stamp = sdsim_protocols::rpc::SESSIONS_CHANGED_HEADER;
    let user_id = login["user"]["id"].as_str().unwrap().to_string();
    let read = auth
        .get_profile(GetProfileRequest {
            user_id: user_id.clone(),
        })
        .await
        .unwrap();
    assert!(
        !read.metadata().contains_key(stamp),
        "{:?}",
        read.metadata()
    );
    let out = auth
        .logout(LogoutRequest {
            access_token: other.clone(),
            all_sessions: false,
        })
        .await
        .unwrap();
    assert!(out.metadata().contains_key(stamp), "{:?}", out.metadata());
    let ended = std::time::Instant::now();
    // The gateway did not carry this logout, yet refuses the token it trusted well before
    // the trust would end (auth:events:logout), and keeps trusting the other session.
    loop {
        let (st, b) = s.profile(&other).await;
        if st == 401 {
            assert_error(&b, "token_revoked");
            break;
        }
        assert!(
            ended.elapsed() < Duration::from_millis(400),
            "an ended session was still accepted after {:?}",
            ended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s.profile(&token).await.0, 200);
    // Through the gateway, the next request after a logout is refused (auth stamps the
    // answer; the event may come first).
    let before = validations_sent(&s).await;
    assert_eq!(s.profile(&token).await.0, 200);
    assert_eq!(validations_sent(&s).await, before, "the token was trusted");
    let r = s
        .authed(Method::POST, "/api/auth/logout", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, b) = s.profile(&token).await;
    assert_eq!(st, 401, "{b}");
}
