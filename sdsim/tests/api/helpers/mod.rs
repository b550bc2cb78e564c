//! Harness of the black-box tests: a fresh PostgreSQL database and Redis prefix per test, the
//! real services on port 0 in their own thread, and HTTP/WebSocket clients.
//!
//! PostgreSQL and Redis are real servers: `SDSIM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`, a role allowed to create databases) and
//! `SDSIM_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`). `deploy/test.sh` starts them.
#![allow(dead_code)]

mod calls;
mod db;
mod process;
mod smtp;
mod stack;
mod tokens;
mod ws;

pub use calls::*;
pub use db::*;
pub use process::*;
pub use smtp::*;
pub use stack::*;
pub use tokens::*;
pub use ws::*;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use sdsim::settings::Settings;
use sdsim::Running;
use sdsim_protocols::Service;
use sdsim_runtime::config::{Listen, Secret};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
