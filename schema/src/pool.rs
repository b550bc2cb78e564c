//! The async connection pool (diesel-async over deadpool).

use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use std::time::Duration;

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
pub fn build(database_url: &str, max_size: usize, wait: Duration) -> Result<DbPool, PoolError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Pool::builder(manager)
        .max_size(max_size.max(1))
        .build()
        .map(|pool| DbPool { pool, wait })
        .map_err(|e| PoolError::Build(e.to_string()))
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
