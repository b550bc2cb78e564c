//! The async connection pool (diesel-async over deadpool).

use diesel_async::pooled_connection::deadpool::{Hook, HookError, Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError as CheckError, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use std::time::Duration;

/// The default of `verify_idle` in [`build`] (`database.verify_idle_ms`).
pub const VERIFY_IDLE: Duration = Duration::from_secs(5);

/// A pool of PostgreSQL connections, cheap to clone.
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<AsyncPgConnection>,
    /// Longest wait for a connection (checkout plus connect) before giving up.
    wait: Duration,
}

impl std::fmt::Debug for DbPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("DbPool")
            .field("size", &status.size)
            .field("available", &status.available)
            .field("max_size", &status.max_size)
            .finish()
    }
}

impl DbPool {
    /// (connections open, connections idle, maximum).
    pub fn status(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size, s.available, s.max_size)
    }
}
/// One connection checked out of the pool.
pub type DbConn = Object<AsyncPgConnection>;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("could not build the database pool: {0}")]
    Build(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// Builds a pool of at most `max_size` connections. Connections are opened lazily;
/// waiting for one gives up after `wait`, so a stuck database turns into an error
/// rather than a hung request.
///
/// Each connection's I/O is driven by a task on the runtime it is opened from. With
/// `runtime`, every connection is opened on that runtime whoever asks for it, so a busy or
/// single-threaded caller (an actor's thread) never sits in the path of everyone else's
/// queries.
pub fn build(
    database_url: &str,
    max_size: usize,
    wait: Duration,
    verify_idle: Duration,
    runtime: Option<tokio::runtime::Handle>,
) -> Result<DbPool, PoolError> {
    let mut config = ManagerConfig::default();
    // A checkout does not round-trip `SELECT 1` (diesel-async's default, `Verified`): that
    // was one more query than the work itself on every request. A connection idle for
    // `verify_idle` is still checked before it is handed out (the hook below): that is
    // where a restarted database or a dropped socket shows; a connection that breaks in use
    // is marked broken by diesel-async and not returned to the pool.
    config.recycling_method = RecyclingMethod::Fast;
    if let Some(rt) = runtime {
        config.custom_setup = Box::new(move |url: &str| {
            let url = url.to_string();
            let opened = rt.spawn(async move { AsyncPgConnection::establish(&url).await });
            Box::pin(async move {
                opened.await.unwrap_or_else(|e| {
                    Err(diesel::ConnectionError::BadConnection(format!(
                        "connection task ended: {e}"
                    )))
                })
            })
        });
    }
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .pre_recycle(Hook::async_fn(move |conn, metrics| {
            Box::pin(async move {
                if metrics.last_used() < verify_idle {
                    return Ok(());
                }
                use diesel_async::RunQueryDsl;
                let conn: &mut AsyncPgConnection = conn;
                diesel::sql_query("SELECT 1")
                    .execute(conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| HookError::Backend(CheckError::QueryError(e)))
            })
        }))
        .build()
        .map(|pool| DbPool { pool, wait })
        .map_err(|e| PoolError::Build(e.to_string()))
}

impl DbPool {
    /// Connections open, idle, the most there may be, and checkouts waiting for one.
    pub fn usage(&self) -> [(&'static str, usize); 4] {
        let s = self.pool.status();
        [
            ("open", s.size),
            ("idle", s.available),
            ("max", s.max_size),
            ("waiting", s.waiting),
        ]
    }
}

/// Checks a connection out, mapping every pool failure to [`PoolError::Unavailable`].
pub async fn get(pool: &DbPool) -> Result<DbConn, PoolError> {
    match tokio::time::timeout(pool.wait, pool.pool.get()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(PoolError::Unavailable(e.to_string())),
        Err(_) => Err(PoolError::Unavailable(format!(
            "no connection within {} ms",
            pool.wait.as_millis()
        ))),
    }
}

/// Round-trips `SELECT 1`; used by health checks.
pub async fn ping(pool: &DbPool) -> Result<(), PoolError> {
    use diesel_async::RunQueryDsl;
    let mut conn = get(pool).await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| PoolError::Unavailable(e.to_string()))
}
