//! The auth service: accounts, sessions, tokens (first slice of issue 2; RBAC admin, abuse
//! protection and key rotation come with the auth issue).
//!
//! - [`validate`]: input checks, each naming its field;
//! - [`tokens`]: JWT access tokens and hashed refresh tokens;
//! - [`store`]: auth_schema queries;
//! - [`service`]: the supervised auth actor and its messages;
//! - [`grpc`]: the tonic adapter.

pub mod admin;
pub mod cache;
pub mod grpc;
pub mod hasher;
pub mod limits;
pub mod mailer;
pub mod recovery;
pub mod service;
pub mod store;
pub mod tokens;
pub mod validate;
