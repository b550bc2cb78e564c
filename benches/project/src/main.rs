//! Project operations through the whole path of `sdsim up` (gateway, token validation,
//! mesh, project service, PostgreSQL) against the peer a user might write instead: a bare
//! actix-web handler (one worker per core) that verifies the same JWT in-process and runs
//! the same SQL (the project service's own `store` functions, through diesel-async on the
//! same database). Measured in the same run, from one command (`benches/project/run.sh`):
//!
//! 1. throughput of create, get, update (metadata) and list, closed loop (`wrk -t1
//!    -c32`), and the ratio sdsim / peer (goal: at least 0.5);
//! 2. the latency of get and update at a paced 1,000 requests per second (open loop: calls
//!    leave on schedule whatever the answers do), p50 and p99 (goal: p99 under 10 ms).
//!
//! sdsim does more per answer than the peer: it checks access (a share lookup), lists the
//! engine's validation problems of the design, and crosses two processes' worth of gRPC.
//! Environment: SDSIM_BIN, SDSIM_PG_BASE, REDIS_URL, BENCH_SECONDS (default 6),
//! BENCH_CONNECTIONS (32), BENCH_RATE (1000), BENCH_TRACE (a directory: each paced run's
//! latencies, one per line in the order the calls left, to see when the slow ones came).

use actix_web::{web, App, HttpRequest, HttpResponse};
use diesel_async::AsyncConnection;
use sdsim_bench_gateway::peers::{Peer, TokenCheck};
use sdsim_bench_gateway::*;
use sdsim_project::store::{self, NewProject, Scope, Sort};
use sdsim_runtime::error::ServiceError;
use sdsim_schema::DbPool;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct PeerState {
    pool: DbPool,
    tokens: TokenCheck,
}

fn view(r: &store::ProjectRow) -> Value {
    json!({"project": {
        "id": r.id, "name": r.name, "description": r.description, "owner_id": r.owner_id,
        "tags": r.tags, "is_public": r.is_public, "version": r.version,
        "design": r.configuration, "layout": r.layout,
        "updated_at": r.updated_at.to_rfc3339(),
    }})
}

async fn peer_create(
    s: web::Data<PeerState>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(user) = s.tokens.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let name = body["name"].as_str().unwrap_or("bench").to_string();
    let Ok(mut conn) = sdsim_schema::pool::get(&s.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let new = NewProject {
        id: uuid::Uuid::new_v4(),
        owner_id: user,
        name: name.clone(),
        description: String::new(),
        configuration: json!({"name": name, "duration_s": 60, "components": [], "connections": []}),
        template_id: None,
        is_public: false,
        tags: Vec::new(),
        layout: json!({}),
        forked_from: None,
        forked_from_version: None,
    };
    let row = conn
        .transaction::<_, ServiceError, _>(async move |conn| {
            store::insert(conn, new, "created").await
        })
        .await;
    match row {
        Ok(r) => HttpResponse::Created().json(view(&r)),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn peer_get(
    s: web::Data<PeerState>,
    req: HttpRequest,
    path: web::Path<uuid::Uuid>,
) -> HttpResponse {
    let Some(user) = s.tokens.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(mut conn) = sdsim_schema::pool::get(&s.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let id = path.into_inner();
    match store::get(&mut conn, id).await {
        Ok(Some(r)) if r.owner_id == user => HttpResponse::Ok().json(view(&r)),
        Ok(Some(r)) => match store::share_level(&mut conn, id, user).await {
            Ok(Some(_)) => HttpResponse::Ok().json(view(&r)),
            _ => HttpResponse::NotFound().finish(),
        },
        _ => HttpResponse::NotFound().finish(),
    }
}

async fn peer_update(
    s: web::Data<PeerState>,
    req: HttpRequest,
    path: web::Path<uuid::Uuid>,
    body: web::Json<Value>,
) -> HttpResponse {
    let Some(user) = s.tokens.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(mut conn) = sdsim_schema::pool::get(&s.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let id = path.into_inner();
    let description = body["description"].as_str().unwrap_or("");
    // The same statement as sdsim's update of an owner's metadata (one, no transaction).
    let change = store::MetaChange {
        name: None,
        description: Some(description),
        tags: None,
        is_public: None,
    };
    let now = chrono::Utc::now();
    let res = store::update_owned_meta(&mut conn, id, user, 0, now, change).await;
    match res {
        Ok(Some(r)) => HttpResponse::Ok().json(view(&r)),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn peer_list(s: web::Data<PeerState>, req: HttpRequest) -> HttpResponse {
    let Some(user) = s.tokens.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(mut conn) = sdsim_schema::pool::get(&s.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    match store::list(
        &mut conn,
        user,
        Scope::Mine,
        None,
        None,
        Sort::Updated,
        None,
        21,
    )
    .await
    {
        Ok(rows) => HttpResponse::Ok().json(json!({
            "projects": rows.iter().take(20).map(|(r, _)| json!({
                "id": r.id, "name": r.name, "version": r.version,
                "updated_at": r.updated_at.to_rfc3339(), "tags": r.tags,
            })).collect::<Vec<_>>()
        })),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

fn peer(database_url: &str, runtime: tokio::runtime::Handle) -> std::io::Result<Peer> {
    let pool =
        sdsim_bench_gateway::peers::pool(database_url, runtime).map_err(std::io::Error::other)?;
    let state = PeerState {
        pool,
        tokens: TokenCheck::new(SECRET),
    };
    sdsim_bench_gateway::serve!(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .service(
                web::resource("/api/projects")
                    .route(web::post().to(peer_create))
                    .route(web::get().to(peer_list)),
            )
            .service(
                web::resource("/api/projects/{id}")
                    .route(web::get().to(peer_get))
                    .route(web::patch().to(peer_update)),
            )
    })
}

/// `rate` GETs or PATCHes a second for `seconds`, each on schedule, round-robin over `urls`
/// (different projects: updates of one project are serialized by its row lock, as they
/// must be): (p50, p99) in ms, the count of answers that were not 2xx, and each call's
/// latency in the order they left.
async fn paced(
    http: &reqwest::Client,
    urls: &[String],
    token: &str,
    patch: bool,
    rate: u64,
    seconds: u64,
) -> (f64, f64, usize, Vec<f64>) {
    let total = rate * seconds;
    let every = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + every * i as u32).await;
        let url = urls[i as usize % urls.len()].clone();
        let (http, token) = (http.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let req = if patch {
                http.patch(&url)
                    .json(&json!({"description": format!("paced {i}")}))
            } else {
                http.get(&url)
            };
            let ok = req
                .bearer_auth(&token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (t.elapsed().as_secs_f64() * 1000.0, ok)
        }));
    }
    let mut in_order = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (ms, ok) = t.await.unwrap();
        in_order.push(ms);
        failed += usize::from(!ok);
    }
    let mut lat = in_order.clone();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    (q(0.5), q(0.99), failed, in_order)
}

#[actix_rt::main]
async fn main() {
    let bin = std::env::var("SDSIM_BIN").unwrap_or_else(|_| "target/release/sdsim".into());
    let pg_base = std::env::var("SDSIM_PG_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let seconds: u64 = env_or("BENCH_SECONDS", 6);
    let connections: u32 = env_or("BENCH_CONNECTIONS", 32);
    let rate: u64 = env_or("BENCH_RATE", 1000);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let setup = Setup::new("project", &bin, &pg_base, &redis_url).await;
    let (http, token) = (setup.http.clone(), setup.token.clone());
    let db_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
        .unwrap();
    let p = peer(&setup.database_url, db_runtime.handle().clone()).unwrap();
    let peer_base = format!("http://{}", p.addr);
    // One project (the same row for both: the same user on the same database) to read
    // and update, and a few to list.
    let mut id = String::new();
    let mut ids = Vec::new();
    for i in 0..25 {
        let b: Value = http
            .post(format!("{}/api/projects", setup.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench {i}"), "template_id": "three-tier-web-app"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        id = b["project"]["id"].as_str().expect("created").to_string();
        ids.push(id.clone());
    }
    let check: Value = http
        .get(format!("{peer_base}/api/projects/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        check["project"]["id"],
        id.as_str(),
        "the peer reads the same row"
    );

    let dir = std::env::temp_dir().join(format!("sdsim-bench-{}", setup.db));
    std::fs::create_dir_all(&dir).unwrap();
    let script = |name: &str, method: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!("wrk.method = \"{method}\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"),
        )
        .unwrap();
        p.display().to_string()
    };
    let create = script("create.lua", "POST", r#"{"name":"bench"}"#);
    let update = script("update.lua", "PATCH", r#"{"description":"updated"}"#);
    println!("project bench: {cores} cores, wrk -t1 -c{connections}, {seconds} s per run");
    let ops: [(&str, String, Option<String>); 4] = [
        ("create", "/api/projects".into(), Some(create)),
        ("get", format!("/api/projects/{id}"), None),
        ("update", format!("/api/projects/{id}"), Some(update)),
        ("list", "/api/projects?page_size=20".into(), None),
    ];
    println!(
        "\n{:<8} {:>12} {:>12} {:>8} {:>11} {:>11}",
        "op", "sdsim req/s", "peer req/s", "ratio", "sdsim p99", "peer p99"
    );
    for (op, path, script) in &ops {
        let mut runs = Vec::new();
        for base in [&setup.base, &peer_base] {
            let (url, token, script) = (format!("{base}{path}"), token.clone(), script.clone());
            let r = tokio::task::spawn_blocking(move || {
                wrk(&url, &token, seconds, connections, script.as_deref())
            })
            .await
            .unwrap();
            runs.push(r);
        }
        println!(
            "{:<8} {:>12.0} {:>12.0} {:>7.2}x {:>9.2}ms {:>9.2}ms{}",
            op,
            runs[0].rps,
            runs[1].rps,
            runs[0].rps / runs[1].rps,
            runs[0].p99_ms,
            runs[1].p99_ms,
            if runs[0].non_2xx + runs[1].non_2xx > 0 {
                format!("  (non-2xx: {} / {})", runs[0].non_2xx, runs[1].non_2xx)
            } else {
                String::new()
            }
        );
    }
    println!("\nat {rate} requests/s, {seconds} s each (open loop): p50 / p99 ms, failed");
    for (op, patch) in [("get", false), ("update", true)] {
        for (name, base) in [("sdsim", &setup.base), ("peer", &peer_base)] {
            let urls: Vec<String> = ids
                .iter()
                .map(|id| format!("{base}/api/projects/{id}"))
                .collect();
            // Each paced run starts right after a checkpoint, so that PostgreSQL's timed one
            // (its writes, then full-page images in the WAL) does not fall in one target's
            // run and not the other's.
            psql(&pg_base, "CHECKPOINT");
            let (p50, p99, failed, each) = paced(&http, &urls, &token, patch, rate, seconds).await;
            if let Ok(dir) = std::env::var("BENCH_TRACE") {
                let lines: String = each.iter().map(|ms| format!("{ms:.3}\n")).collect();
                let file = format!("{dir}/{op}-{name}.txt");
                if let Err(e) = std::fs::write(&file, lines) {
                    eprintln!("cannot write {file}: {e}");
                }
            }
            println!(
                "  {op:<7} {name:<6} {p50:>7.2} / {p99:>7.2}{}  {failed}",
                if name == "sdsim" {
                    "  (goal p99 < 10)".to_string()
                } else {
                    String::new()
                }
            );
        }
    }
    p.handle.stop(false).await;
    let _ = std::fs::remove_dir_all(&dir);
    setup.finish();
    db_runtime.shutdown_background();
}
