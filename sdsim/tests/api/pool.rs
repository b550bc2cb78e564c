//! The database pool (`sdsim_schema::pool`) against a real PostgreSQL: a checkout costs no
//! round trip of its own, and a connection that sat idle past `verify_idle` is checked before
//! it is handed out, so one the database dropped meanwhile is replaced, not given to a
//! request.

use crate::helpers::*;
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sdsim_schema::pool::{self, DbPool};
use std::time::Duration;

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(diesel::QueryableByName)]
struct Last {
    #[diesel(sql_type = Text)]
    query: String,
}

const WHO: &str = "SELECT pg_backend_pid() AS pid";

/// The backend a checkout got, asked through it.
async fn backend(pool: &DbPool) -> i32 {
    let mut conn = pool::get(pool).await.expect("a connection");
    diesel::sql_query(WHO)
        .get_result::<Pid>(&mut conn)
        .await
        .expect("the connection works")
        .pid
}

/// The last statement backend `pid` ran, as PostgreSQL saw it.
async fn last_statement(admin: &mut AsyncPgConnection, pid: i32) -> String {
    diesel::sql_query("SELECT query FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Last>(admin)
        .await
        .expect("the backend is listed")
        .query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_costs_no_query_and_an_idle_connection_is_checked_first() {
    let db = TestDb::create().await;
    let verify_idle = Duration::from_millis(300);
    let pool = pool::build(&db.url, 1, Duration::from_secs(2), verify_idle, None).unwrap();
    let mut admin = AsyncPgConnection::establish(&db.url).await.unwrap();

    // Used a moment ago: handed out as is, without a `SELECT 1` of its own.
    let first = backend(&pool).await;
    let conn = pool::get(&pool).await.unwrap();
    assert_eq!(last_statement(&mut admin, first).await, WHO);
    drop(conn);

    // Idle past `verify_idle`, it is checked before use...
    tokio::time::sleep(verify_idle + Duration::from_millis(200)).await;
    let conn = pool::get(&pool).await.unwrap();
    assert_eq!(last_statement(&mut admin, first).await, "SELECT 1");
    drop(conn);

    // ...so a connection the database ended meanwhile is replaced, not handed out broken.
    let ended: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "pg_terminate_backend({first})"
    )))
    .get_result(&mut admin)
    .await
    .unwrap();
    assert!(ended);
    tokio::time::sleep(verify_idle + Duration::from_millis(200)).await;
    let second = backend(&pool).await;
    assert_ne!(second, first, "a new connection replaced the ended one");
    assert_eq!(pool.status().0, 1, "the ended connection left the pool");
}
