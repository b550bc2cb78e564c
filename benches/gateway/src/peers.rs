//! The peers sdsim's gateway is measured against, in this process on port 0, each an
//! actix-web server with as many workers as sdsim's gateway (one per core):
//! - [`bare`]: the ceiling, a route that reads the Authorization header and answers a fixed
//!   body, sdsim's own answer recorded once (so the same bytes travel);
//! - [`monolith`]: what a user might write instead of sdsim: one process that verifies the
//!   same JWT in-process and runs the same SQL as sdsim's auth service (its own
//!   `sdsim_auth::store` functions, so the statements are identical, prepared once per
//!   connection by diesel-async) through a deadpool pool on the same database, whose
//!   connections run on a runtime of their own, as sdsim's do.

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sdsim_schema::DbPool;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Peer {
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
}

/// Starts an actix-web server of `$app` (an `App` factory) on 127.0.0.1:0 with one worker
/// per core, in the background: a [`Peer`].
#[macro_export]
macro_rules! serve {
    ($app:expr) => {{
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let server = ::actix_web::HttpServer::new($app)
            .workers(workers)
            .tcp_nodelay(true)
            .disable_signals()
            .listen(listener)?
            .run();
        let handle = server.handle();
        ::actix_rt::spawn(server);
        Ok($crate::peers::Peer { addr, handle })
    }};
}

/// Answers `body` to any request with an `Authorization` header, 401 without one.
pub fn bare(body: Arc<Vec<u8>>) -> std::io::Result<Peer> {
    crate::serve!(move || {
        let body = body.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let body = body.clone();
            async move {
                if req.headers().get(header::AUTHORIZATION).is_none() {
                    return HttpResponse::Unauthorized().finish();
                }
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .body(body.as_ref().clone())
            }
        }))
    })
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
}

/// Verifies sdsim's access tokens in-process (HS256, sdsim's issuer and audience), as the
/// monoliths do.
#[derive(Clone)]
pub struct TokenCheck {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl TokenCheck {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["sdsim-auth"]);
        validation.set_audience(&["sdsim"]);
        Self {
            key: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            validation: Arc::new(validation),
        }
    }

    /// The token's user, or None (answered 401).
    pub fn user(&self, req: &HttpRequest) -> Option<uuid::Uuid> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).ok()?;
        data.claims.sub.parse().ok()
    }
}

#[derive(Serialize)]
struct UserView {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
    company: Option<String>,
    is_active: bool,
    is_verified: bool,
    is_admin: bool,
    roles: Vec<String>,
    created_at: Option<String>,
    last_login: Option<String>,
}

#[derive(Serialize)]
struct UserBody {
    user: UserView,
}

fn view(u: sdsim_schema::models::User, roles: Vec<String>) -> UserBody {
    UserBody {
        user: UserView {
            id: u.id.to_string(),
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            company: u.company,
            is_active: u.is_active,
            is_verified: u.is_verified,
            is_admin: roles.iter().any(|r| r == "admin"),
            roles,
            created_at: Some(u.created_at.to_rfc3339()),
            last_login: u.last_login_at.map(|t| t.to_rfc3339()),
        },
    }
}

#[derive(Clone)]
struct Monolith {
    pool: DbPool,
    tokens: TokenCheck,
}

impl Monolith {
    fn user(&self, req: &HttpRequest) -> Option<uuid::Uuid> {
        self.tokens.user(req)
    }
}

#[derive(Deserialize)]
struct ProfileUpdate {
    first_name: Option<String>,
}

async fn monolith_get(m: web::Data<Monolith>, req: HttpRequest) -> HttpResponse {
    let Some(id) = m.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(mut conn) = sdsim_schema::pool::get(&m.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let Ok(Some(user)) = sdsim_auth::store::user_by_id(&mut conn, id).await else {
        return HttpResponse::NotFound().finish();
    };
    let Ok(roles) = sdsim_auth::store::roles(&mut conn, id).await else {
        return HttpResponse::InternalServerError().finish();
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view(user, roles))
}

async fn monolith_put(
    m: web::Data<Monolith>,
    req: HttpRequest,
    body: web::Json<ProfileUpdate>,
) -> HttpResponse {
    let Some(id) = m.user(&req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Ok(mut conn) = sdsim_schema::pool::get(&m.pool).await else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let first = body.into_inner().first_name;
    let Ok(user) = sdsim_auth::store::update_profile(&mut conn, id, first, None, None).await else {
        return HttpResponse::InternalServerError().finish();
    };
    let Ok(roles) = sdsim_auth::store::roles(&mut conn, id).await else {
        return HttpResponse::InternalServerError().finish();
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view(user, roles))
}

/// The monolith on `database_url`, verifying tokens signed with `secret` for sdsim's issuer
/// and audience. `runtime` runs its database connections.
pub fn monolith(
    database_url: &str,
    secret: &str,
    runtime: tokio::runtime::Handle,
) -> Result<Peer, String> {
    let pool = pool(database_url, runtime)?;
    let state = Monolith {
        pool,
        tokens: TokenCheck::new(secret),
    };
    let serve = || -> std::io::Result<Peer> {
        crate::serve!(move || {
            App::new().app_data(web::Data::new(state.clone())).service(
                web::resource("/api/auth/profile")
                    .route(web::get().to(monolith_get))
                    .route(web::put().to(monolith_put)),
            )
        })
    };
    serve().map_err(|e| e.to_string())
}

/// The database pool a peer uses: the one sdsim's services build, with their settings.
pub fn pool(database_url: &str, runtime: tokio::runtime::Handle) -> Result<DbPool, String> {
    sdsim_schema::pool::build(
        database_url,
        16,
        Duration::from_secs(2),
        sdsim_schema::pool::VERIFY_IDLE,
        Some(runtime),
    )
    .map_err(|e| e.to_string())
}
