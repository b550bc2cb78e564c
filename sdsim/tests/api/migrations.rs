//! `sdsim migrate` against a real PostgreSQL: every table of the three schemas appears, the
//! migrations revert cleanly and apply again, and a second run has nothing to do.

use crate::helpers::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::process::Command;

#[derive(diesel::QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn tables(url: &str) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<Table> = diesel::sql_query(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables \
         WHERE table_schema IN ('auth_schema', 'project_schema', 'simulation_schema') ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|t| t.name).collect()
}

fn sdsim(args: &[&str], db: &TestDb) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sdsim"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("SDSIM_CONFIG")
        .output()
        .expect("run sdsim");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_every_table_and_reverts() {
    let db = TestDb::create().await;
    let (ok, out) = sdsim(&["migrate"], &db);
    assert!(ok, "{out}");
    assert!(out.contains("applied"), "{out}");
    let expected = [
        "auth_schema.audit_log",
        "auth_schema.email_tokens",
        "auth_schema.permissions",
        "auth_schema.refresh_token_uses",
        "auth_schema.role_permissions",
        "auth_schema.roles",
        "auth_schema.sessions",
        "auth_schema.user_roles",
        "auth_schema.users",
        "project_schema.collaboration_sessions",
        "project_schema.project_sharing",
        "project_schema.project_versions",
        "project_schema.projects",
        "project_schema.templates",
        "simulation_schema.performance_metrics",
        "simulation_schema.simulation_analytics",
        "simulation_schema.simulation_history",
        "simulation_schema.simulation_results",
        "simulation_schema.simulations",
    ];
    let found = tables(&db.url).await;
    for t in expected {
        assert!(found.iter().any(|f| f == t), "{t} missing from {found:?}");
    }

    let (ok, out) = sdsim(&["migrate"], &db);
    assert!(ok && out.contains("nothing to do"), "{out}");

    let (ok, out) = sdsim(&["migrate", "--down"], &db);
    assert!(ok && out.contains("reverted"), "{out}");
    assert!(tables(&db.url).await.is_empty());

    let (ok, out) = sdsim(&["migrate"], &db);
    assert!(ok, "{out}");
    assert_eq!(tables(&db.url).await.len(), found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_explains_an_unreachable_database_and_bad_config() {
    let db = TestDb::create().await;
    let out = Command::new(env!("CARGO_BIN_EXE_sdsim"))
        .args(["migrate"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sdsim:"), "{err}");

    let (ok, out) = {
        let o = Command::new(env!("CARGO_BIN_EXE_sdsim"))
            .args(["migrate"])
            .env("DATABASE_URL", &db.url)
            .env("SDSIM_DATABASE__POOL_SIZE", "0")
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    assert!(!ok);
    assert!(out.contains("database.pool_size"), "{out}");
}
