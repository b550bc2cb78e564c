//! PostgreSQL storage shared by the sdsim services.
//!
//! Layout:
//! - [`tables`]: diesel `table!` definitions of auth_schema, project_schema, simulation_schema.
//! - [`models`]: row types for the tables the services read and write.
//! - [`migrate`]: the embedded migrations and the function that applies (or reverts) them.
//! - [`pool`]: the diesel-async connection pool.
#![forbid(unsafe_code)]

pub mod migrate;
pub mod models;
pub mod pool;
pub mod tables;

pub use pool::{DbPool, PoolError};
