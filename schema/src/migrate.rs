//! Embedded migrations. `sdsim migrate` and every service at start-up call [`run`]; several
//! processes may start at once, so the run holds a PostgreSQL advisory lock.

use diesel::connection::Connection;
use diesel::RunQueryDsl;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Arbitrary, fixed key of the advisory lock that serialises migration runs.
const MIGRATION_LOCK_KEY: i64 = 0x7364_7369_6d00_0001;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    Up,
    /// Revert every migration (drops the three schemas).
    DownAll,
}

/// Applies every pending migration (or reverts all), returning the versions touched.
/// Blocking work runs on tokio's blocking pool, so this is safe to await on any executor.
pub async fn run(database_url: &str, direction: Direction) -> Result<Vec<String>, MigrateError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || run_blocking(&url, direction))
        .await
        .map_err(|e| MigrateError::Migration(format!("migration task failed: {e}")))?
}

fn run_blocking(url: &str, direction: Direction) -> Result<Vec<String>, MigrateError> {
    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url)
        .map_err(|e| MigrateError::Connect(e.to_string()))?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn)
        .map_err(|e| MigrateError::Migration(e.to_string()))?;
    let result = match direction {
        Direction::Up => conn
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
        Direction::DownAll => conn
            .revert_all_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
    };
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(&mut conn);
    result.map_err(|e| MigrateError::Migration(e.to_string()))
}
